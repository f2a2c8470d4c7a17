# ImageNet ResNet-50 without regional augment (paper: 23.68% top-1 error); all else as imagenet_resnet50_cutmix.py.
_base_ = './imagenet_resnet50_cutmix.py'
model = dict(data_preprocessor=dict(augment=dict(mode='none')))
