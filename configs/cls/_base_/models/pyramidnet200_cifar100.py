# PyramidNet-200 (alpha 240, bottleneck; 26.8M parameters), the CutMix paper's CIFAR-100 network, with the module
# and parameter names of clovaai/CutMix-PyTorch's pyramidnet.py, so its release checkpoints load into it and this
# project's checkpoints load into that repository's code. augment mode 'none' is the baseline; beta and prob are
# CutMix-PyTorch's CIFAR ones (--beta 1.0 --cutmix_prob 0.5); the mixup / cutout configs set their own prob.
_base_ = './cam_classifier.py'

model = dict(
    arch='pyramidnet200_a240_bottleneck', num_classes=100, data_preprocessor=dict(augment=dict(beta=1.0, prob=0.5))
)
