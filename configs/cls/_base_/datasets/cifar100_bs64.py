# CIFAR-100 in the python-pickle layout, data/cifar/cifar-100-python/{train,test,meta}, with CutMix-PyTorch's
# CIFAR inputs: pad-4 random crop 32 + flip for training, the 32 px image for testing.
_base_ = './loaders.py'

data_root = 'data/cifar'
norm = dict(mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))

train_dataloader = dict(
    batch_size=64, num_workers=4,
    dataset=dict(type='CIFARCls', root=data_root, split='train', variant='cifar100',
                 transform=dict(preset='pad_crop_train', size=32, pad=4, **norm)))
val_dataloader = dict(
    batch_size=256, num_workers=4,
    dataset=dict(type='CIFARCls', root=data_root, split='test', variant='cifar100',
                 transform=dict(preset='resize_test', size=32, **norm)))
val_evaluator = dict(type='TopKError')
