# Faster R-CNN R50-FPN on Pascal VOC07+12 trainval, tested on VOC07 test, with the backbone started from a
# torchvision-style ResNet classification checkpoint (CutMix / Mixup / Cutout / baseline pretraining).
# The configs/voc_faster_rcnn_<method>.py files inherit this and set only `backbone_checkpoint`.
#
# Everything else is mmdet's VOC recipe (RepeatDataset x3, 4 epochs = 12 effective, SGD lr 0.02 for 8x2
# images, lr step at epoch 3). tools/train_det.py converts the checkpoint with the project's loader (any
# supported format, loaded safely, fc dropped) into <work_dir>/backbone_mmdet.pth, points
# model.backbone.init_cfg at it, and sets the ResNet depth and FPN in_channels from the checkpoint's arch
# (resnet18/34: BasicBlock, FPN in_channels [64, 128, 256, 512]; resnet50/101/152: [256, 512, 1024, 2048]).
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py'

# Registers SSDHeadFixed, VOCMetricPerClass and BackboneProvenanceHook (also under a plain mmengine Runner).
custom_imports = dict(imports=['cutmix_transfer.detection'], allow_failed_imports=False)

model = dict(
    # torchvision weights were trained on RGB in [0, 255] normalised with ImageNet mean/std (caffe-style
    # weights would need BGR and std 1); mmdet's R50-FPN base already has these values, repeated on purpose.
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    # torchvision ResNets put the stride on the 3x3 conv ('pytorch' style); BN statistics frozen
    # (norm_eval) and stem + layer1 frozen, as mmdet's ImageNet-initialised detectors do. init_cfg stays
    # mmdet's Pretrained; each method config sets its checkpoint, tools/train_det.py the converted file.
    backbone=dict(style='pytorch', norm_eval=True, frozen_stages=1),
)

# VOC07 mAP at IoU 0.5 with the 11-point interpolated AP, as the CutMix paper reports it ('area' is the
# VOC2012-style AP: tools/test_det.py --eval-mode area). VOCMetricPerClass = mmdet's VOCMetric + per-class AP.
val_evaluator = dict(type='VOCMetricPerClass', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
