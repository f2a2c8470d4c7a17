# CIFAR-100 in the python-pickle layout, data/cifar/cifar-100-python/{train,test,meta}, with CutMix-PyTorch's
# CIFAR inputs: pad-4 random crop 32 + flip for training, the 32 px image for testing (no crop), normalised with
# CutMix-PyTorch's statistics: pixels / 255, mean (125.3, 123.0, 113.9) / 255, std (63.0, 62.1, 66.7) / 255 (the
# constants CIFAR100_CUTMIX_MEAN / _STD of cutmix_transfer.datasets.common, which tools/ood_eval.py uses too).
_base_ = './loaders.py'

data_root = 'data/cifar'
norm = dict(mean=(125.3 / 255, 123.0 / 255, 113.9 / 255), std=(63.0 / 255, 62.1 / 255, 66.7 / 255))

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(
        type='CIFARCls',
        root=data_root,
        split='train',
        variant='cifar100',
        transform=dict(preset='pad_crop_train', size=32, pad=4, **norm),
    ),
)
# the training set's dataset on the test split, with the test transform
val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    dataset=dict(train_dataloader['dataset'], split='test', transform=dict(preset='resize_test', size=32, **norm)),
)
val_evaluator = dict(type='TopKError')
