# The CutMix paper's CIFAR-100 recipe (Table 3 / Table 12): PyramidNet-200 (alpha 240, bottleneck), as
# clovaai/CutMix-PyTorch's README command and train.py: 300 epochs at batch 64, SGD momentum 0.9 nesterov, lr 0.25
# x0.1 at epochs 150 and 225, wd 1e-4; pad-4 crop 32 + flip; CutMix-PyTorch's mean/std. Paper: 16.45% top-1
# error (baseline), 14.47% (CutMix). This file is the baseline (no mixing augmentation); cifar100_pyramidnet200_
# {mixup,cutout,cutmix}.py each change only the augment. configs/cls/cifar100_resnet_cutmix.py is a quicker,
# smaller stand-in (ResNet-18), not the paper's network.
# Data: data/cifar/cifar-100-python/{train,test,meta} (the python version of CIFAR-100).
_base_ = [
    '_base_/models/pyramidnet200_cifar100.py',
    '_base_/datasets/cifar100_bs64.py',
    '_base_/schedules/cifar_bs64_300e.py',
    '_base_/default_runtime.py',
]

default_hooks = dict(
    logger=dict(interval=100), checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='top1_err', rule='less')
)
env_cfg = dict(cudnn_benchmark=True)
log_processor = dict(window_size=100)
