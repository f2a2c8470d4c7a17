# CIFAR-100 with CutMix, CutMix-PyTorch's CIFAR recipe: 300 epochs, batch 64, SGD momentum 0.9 nesterov,
# lr 0.25 x0.1 at epochs 150/225, wd 1e-4, CutMix beta 1.0 with cutmix_prob 0.5; pad-4 crop 32 + flip.
# The paper's network is PyramidNet-200 (alpha 240; 14.47% top-1 error with CutMix, 16.45% baseline): that is
# cifar100_pyramidnet200_{baseline,mixup,cutout,cutmix}.py. This config is the quicker stand-in: a ResNet-18 with
# the small-input stem (3x3 stride-1 conv1, no max-pool; the loader reads it back as arch 'resnet18_cifar'), so
# its numbers are not comparable with the paper's PyramidNet table.
# Data: the python-pickle layout, data/cifar/cifar-100-python/{train,test,meta}.
_base_ = [
    '_base_/models/resnet18_cifar.py',
    '_base_/datasets/cifar100_bs64.py',
    '_base_/schedules/cifar_bs64_300e.py',
    '_base_/default_runtime.py',
]

model = dict(data_preprocessor=dict(augment=dict(mode='cutmix')))

default_hooks = dict(
    logger=dict(interval=100), checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='top1_err', rule='less')
)
env_cfg = dict(cudnn_benchmark=True)
log_processor = dict(window_size=100)
