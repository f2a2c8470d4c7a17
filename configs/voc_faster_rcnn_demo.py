# Faster R-CNN R-FPN on the demo VOC data (data/demo/VOCdevkit from tools/make_demo_data.py: 128-192 px
# scenes, VOC07+12 trainval, VOC07 test, real VOC class names), so that the pipeline runs end to end on a CPU.
# The backbone is the demo's own pretraining (a ResNet-18): pass it with --backbone; the tool sets depth 18
# and FPN in_channels [64, 128, 256, 512] from it. Only data, input size and schedule differ from
# voc_faster_rcnn_cutmix.py; the VOC07 11-point metric is the same.
_base_ = ['./voc_faster_rcnn_cutmix.py', './det/_base_/voc_demo_data.py']

data_root = _base_.voc_train.data_root
backbone_checkpoint = 'work_dirs/demo/cls_cutmix/epoch_3.pth'  # make demo's CutMix run; --backbone overrides
img_scale = (160, 160)  # images are about that size: no upscaling (mmdet's VOC recipe resizes to 1000x600)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# the demo VOC data (det/_base_/voc_demo_data.py) with this detector's pipelines on the
# recipe's VOC2007 + VOC2012 trainval lists, without worker processes
voc_train = dict(_base_.voc_train, pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=4,
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

# One epoch: `make demo` fine-tunes for 24 iterations (48 + 48 trainval images, batch 4), three seeds per backbone.
max_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20)]
optim_wrapper = dict(optimizer=dict(lr=0.01))
# 1-3 objects per demo image: fewer proposals and sampled RoIs than VOC's 1000 / 512 (the RoI head dominates
# the CPU time: 1.48 s per iteration with 128 sampled RoIs per image). At test 300 proposals: 100 (from the 300
# best anchors per level) cost 6 s less per run but, with an RPN trained for 30 iterations, cut mAP from 9.4 to 5.7.
# FPN, RPN and RoI features 128 channels wide instead of 256: on 160 px inputs the FPN's 3x3 convolutions and the
# RPN conv cost about 5 GFLOPs an image against the ResNet-18's 0.9, and dominated the training step on the CPU.
# A demo economy only: voc_faster_rcnn_cutmix.py keeps the recipe's 256.
neck_channels = 128
model = dict(
    backbone=dict(init_cfg=dict(checkpoint=backbone_checkpoint)),
    neck=dict(out_channels=neck_channels),
    rpn_head=dict(in_channels=neck_channels, feat_channels=neck_channels),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=neck_channels), bbox_head=dict(in_channels=neck_channels)),
    train_cfg=dict(rpn_proposal=dict(max_per_img=300), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(max_per_img=300)),
)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
