# ResNet-18 with the small-input stem (3x3 stride-1 conv1, no max-pool) for 32 px CIFAR-100 images, 100 classes.
# A quick stand-in for the paper's PyramidNet-200 (pyramidnet200_cifar100.py, which it extends with only the
# network): its numbers are not comparable. augment mode 'none' is the baseline and a config picks the mode; beta
# and prob are CutMix-PyTorch's CIFAR ones (beta 1.0, cutmix_prob 0.5).
_base_ = './pyramidnet200_cifar100.py'

model = dict(arch='resnet18', small_input_stem=True)
