# ImageNet ResNet-50 with Mixup, alpha = 1.0 (paper: 22.58% top-1 error); all else as imagenet_resnet50_baseline.py.
_base_ = './imagenet_resnet50_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='mixup')))
