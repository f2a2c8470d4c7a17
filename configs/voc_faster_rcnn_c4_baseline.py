# Faster R-CNN R50-C4 on VOC07+12, backbone from the plain (baseline) pretrained ResNet-50.
# The siblings voc_faster_rcnn_c4_{cutmix,baseline,mixup,cutout}.py differ only in `backbone_checkpoint`.
# A plainly trained ResNet-50 (the paper's baseline: top-1 err 23.68); torchvision's resnet50 IMAGENET1K_V1
# weights are the closest public file. Save it at this path or pass `--backbone CKPT` to tools/train_det.py.
# The tool reads any supported format (CutMix-PyTorch, torchvision, timm, mmengine, this project's), converts
# it for mmdet and follows its depth (a ResNet-18/34 works too).
_base_ = './det/faster_rcnn_r50_c4_voc0712.py'

backbone_checkpoint = 'checkpoints/resnet50_baseline.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    roi_head=dict(shared_head=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint))),
)
