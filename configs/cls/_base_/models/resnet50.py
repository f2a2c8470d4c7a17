# ResNet-50 for ImageNet classification (1000 classes, the standard strides: no WSOL change).
# augment mode 'none' is the paper's baseline; imagenet_resnet50_{cutmix,mixup,cutout}.py set the mode. beta and
# prob are shared by the mixing variants: Beta(1, 1) for CutMix's area and Mixup's lambda, on every batch.
_base_ = './cam_classifier.py'

model = dict(arch='resnet50', num_classes=1000, wsol=False, data_preprocessor=dict(augment=dict(beta=1.0, prob=1.0)))
