# The OOD demo (scripts/demo.sh): a shallow PyramidNet trained without mixing augmentation on the generated
# CIFAR-100-layout demo (data/demo_cifar); demo_cifar_pyramidnet_cutmix.py changes only the augment. Then
# tools/ood_eval.py scores it against the demo's OOD folders and noise, as the paper's Table 12 does for
# PyramidNet-200 on CIFAR-100 (the full-size recipe: cifar100_pyramidnet200_{baseline,cutmix}.py).
_base_ = [
    '_base_/models/pyramidnet_demo_cifar.py',
    '_base_/datasets/demo_cifar_bs64.py',
    '_base_/schedules/demo_cifar_cosine.py',
    '_base_/default_runtime.py',
]

default_hooks = dict(logger=dict(interval=8), checkpoint=dict(max_keep_ckpts=1))
log_processor = dict(window_size=8)
