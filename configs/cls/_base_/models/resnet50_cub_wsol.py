# ResNet-50 in wsolevaluation's CAM form for CUB (200 classes): layer3 + layer4 stride 1 (large_feature_map, a
# 28x28 CAM at 224 px). `pretrained` takes an ImageNet checkpoint of any supported format; its fc head is dropped
# for the new 200-class one. Fine-tuning uses no regional augment (the checkpoint carries its pretraining method):
# the base's mode 'none', no beta or prob.
_base_ = './cam_classifier.py'

model = dict(
    arch='resnet50', num_classes=200, wsol=True, large_feature_map=True, pretrained=None, pretrained_head='drop'
)
