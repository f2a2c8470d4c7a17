# SSD300 with a ResNet-50 backbone on Pascal VOC07+12 (mmdet has SSD300 only with VGG16), as in the CutMix
# paper, which replaced SSD's VGG16 by ResNet-50 and took the output of layer2 where VGG's conv4_3 was tapped.
#
# Derivation (input 300x300, torchvision ResNet-50, 'pytorch' style, padding as torchvision):
#   conv1 7x7/2 p3: 300 -> 150;  maxpool 3x3/2 p1: 150 -> 75;  layer1: 75 (256 ch)
#   layer2 (stride 2 on its first 3x3): 75 -> 38  (512 ch)   <- replaces VGG conv4_3 (38x38, stride 8)
#   layer3: 38 -> 19  (1024 ch)                              <- same grid as VGG fc7 (19x19, stride 16)
#   layer4: 19 -> 10  (2048 ch)                              <- same grid as VGG's first extra layer (10x10)
#   so out_indices=(1, 2, 3) gives the 38/19/10 maps, and SSDNeck adds three extra levels on top of layer4:
#   1x1 2048->256 + 3x3/2 p1 256->512: 10 -> 5;  1x1 512->128 + 3x3/1 p0 128->256: 5 -> 3;
#   1x1 256->128 + 3x3/1 p0 128->256: 3 -> 1.
#   The six maps are 38, 19, 10, 5, 3, 1: exactly VGG SSD300's, so mmdet's VOC SSD300 anchors apply unchanged
#   (strides 8, 16, 32, 64, 100, 300; ratios [2], [2,3], [2,3], [2,3], [2], [2]; basesize_ratio_range
#   (0.2, 0.9) from configs/pascal_voc/ssd300_voc0712.py). Channels (512, 1024, 2048, 512, 256, 256).
#   The L2Norm (scale 20) that SSD puts on conv4_3 is kept on the layer2 tap: only the backbone changes.
#   With a ResNet-18/34 checkpoint tools/train_det.py sets the taps to (128, 256, 512) and keeps the extra
#   layers' widths: (128, 256, 512, 512, 256, 256). Inputs below ~260 px leave no 1x1 level (the last two
#   extra convs have no padding): keep input_size 300.
_base_ = 'mmdet::pascal_voc/ssd300_voc0712.py'

custom_imports = dict(imports=['cutmix_transfer.detection'], allow_failed_imports=False)

model = dict(
    # torchvision normalisation (RGB, ImageNet mean/std on 0-255) instead of VGG-caffe's std 1. The mean is
    # the one the Expand transform of the base pipeline already fills with.
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=1
    ),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
    ),  # init_cfg: set by each method config / tools/train_det.py
    neck=dict(
        in_channels=(512, 1024, 2048),
        out_channels=(512, 1024, 2048, 512, 256, 256),
        level_strides=(2, 1, 1),
        level_paddings=(1, 0, 0),
        l2_norm_scale=20,
    ),
    bbox_head=dict(
        # mmdet 3.3.0's SSDHead fails in predict ('no attribute loss_cls'); cutmix_transfer.compat's fix.
        type='SSDHeadFixed',
        in_channels=(512, 1024, 2048, 512, 256, 256),
    ),
)

val_evaluator = dict(type='VOCMetricPerClass', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
