# SSD300 (ResNet taps layer2/3/4) on the demo VOC data (data/demo/VOCdevkit from tools/make_demo_data.py), to
# run end to end on a CPU. The backbone is the demo's own pretraining (a ResNet-18, --backbone); the tool sets
# the taps to (128, 256, 512). The input stays 300x300 (the anchors and the 38/19/10/5/3/1 maps of
# configs/det/ssd300_r50_voc0712.py need it); only data and schedule differ from voc_ssd300_cutmix.py.
_base_ = ['./voc_ssd300_cutmix.py', './det/_base_/voc_demo_data.py']

data_root = _base_.voc_train.data_root
backbone_checkpoint = 'work_dirs/demo/cls_cutmix/epoch_3.pth'  # make demo's CutMix run; --backbone overrides
model = dict(backbone=dict(init_cfg=dict(checkpoint=backbone_checkpoint)))

train_pipeline = {{_base_.train_pipeline}}
test_pipeline = {{_base_.test_pipeline}}
# the demo VOC data (det/_base_/voc_demo_data.py) with SSD300's pipelines on the
# recipe's VOC2007 + VOC2012 trainval lists, without worker processes
voc_train = dict(_base_.voc_train, pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        times=1,
        dataset=dict(
            datasets=[
                dict(voc_train, ann_file=d.ann_file, data_prefix=d.data_prefix)
                for d in _base_.train_dataloader.dataset.dataset.datasets
            ]
        ),
    ),
)
val_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root, pipeline=test_pipeline)
)
test_dataloader = val_dataloader

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[6], gamma=0.1),
]
# gradient clipping: from scratch-ish demo backbones, SSD's loss diverged to NaN in epoch 6 without it (seen once the
# random streams became those of exact resume); mmdet clips at 35 for several detectors, the demo's small data at 10
optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=dict(max_norm=10.0))
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
