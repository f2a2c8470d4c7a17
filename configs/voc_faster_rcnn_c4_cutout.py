# Faster R-CNN R50-C4 on VOC07+12, backbone from the Cutout pretrained ResNet-50.
# The siblings voc_faster_rcnn_c4_{cutmix,baseline,mixup,cutout}.py differ only in `backbone_checkpoint`.
# A Cutout ResNet-50 (the paper's: top-1 err 22.93), e.g. from tools/train_cls.py with Cutout.
# Save it at this path or pass `--backbone CKPT` to tools/train_det.py.
# The tool reads any supported format (CutMix-PyTorch, torchvision, timm, mmengine, this project's), converts
# it for mmdet and follows its depth (a ResNet-18/34 works too).
_base_ = './det/faster_rcnn_r50_c4_voc0712.py'

backbone_checkpoint = 'checkpoints/resnet50_cutout.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    roi_head=dict(shared_head=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint))),
)
