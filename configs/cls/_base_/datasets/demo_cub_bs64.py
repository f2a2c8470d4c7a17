# The generated demo in CUB's layout (data/demo/CUB_200_2011 from tools/make_demo_data.py: 96 px images,
# 10 classes), read by CUBCls: pad-8 random crop + flip for training, the whole 96 px image for testing.
_base_ = './loaders.py'

data_root = 'data/demo/CUB_200_2011'
image_size = 96

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    dataset=dict(
        type='CUBCls', root=data_root, split='train', transform=dict(preset='pad_crop_train', size=image_size, pad=8)
    ),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=1,
    dataset=dict(type='CUBCls', root=data_root, split='test', transform=dict(preset='resize_test', size=image_size)),
)
val_evaluator = dict(type='TopKError')
