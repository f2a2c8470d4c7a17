# The demo's classifier in the WSOL form directly: ResNet-18 with layer4 stride 1 (a 6x6 CAM at 96 px) and
# zero_init_residual (without it and the warm-up the first demo run diverged), 10 classes.
# augment mode 'none' is the paper's baseline; demo_{cutmix,mixup,cutout}.py set the mode. beta and prob are
# shared by the mixing variants: Beta(1, 1) for CutMix's area and Mixup's lambda, applied to every batch.
_base_ = './cam_classifier.py'

num_classes = 10

model = dict(
    arch='resnet18',
    num_classes=num_classes,
    wsol=True,
    zero_init_residual=True,
    data_preprocessor=dict(augment=dict(beta=1.0, prob=1.0)),
)
