# Faster R-CNN R50-C4 on VOC07+12, backbone from the CutMix pretrained ResNet-50.
# The siblings voc_faster_rcnn_c4_{cutmix,baseline,mixup,cutout}.py differ only in `backbone_checkpoint`.
# The paper's CutMix ResNet-50 (ImageNet top-1 err 21.40) is released at github.com/clovaai/CutMix-PyTorch
# ('Pretrained models'); save it at this path or pass `--backbone CKPT` to tools/train_det.py.
# The tool reads any supported format (CutMix-PyTorch, torchvision, timm, mmengine, this project's), converts
# it for mmdet and follows its depth (a ResNet-18/34 works too).
_base_ = './det/faster_rcnn_r50_c4_voc0712.py'

backbone_checkpoint = 'checkpoints/resnet50_cutmix.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    roi_head=dict(shared_head=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint))),
)
