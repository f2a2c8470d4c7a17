# ImageNet ResNet-50 with CutMix, beta 1.0 applied to every batch (cutmix_prob 1.0); paper: 21.40% top-1 error.
# All else as imagenet_resnet50_baseline.py.
_base_ = './imagenet_resnet50_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='cutmix')))
