# CUB-200-2011 in its raw layout (data/CUB_200_2011) with wsolevaluation's ResNet-50 inputs: Resize 256 +
# RandomCrop 224 + flip for training, Resize 224x224 for testing.
_base_ = './loaders.py'

data_root = 'data/CUB_200_2011'

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    dataset=dict(
        type='CUBCls', root=data_root, split='train', transform=dict(preset='resize_crop_train', size=224, resize=256)
    ),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(type='CUBCls', root=data_root, split='test', transform=dict(preset='resize_test', size=224)),
)
val_evaluator = dict(type='TopKError')
