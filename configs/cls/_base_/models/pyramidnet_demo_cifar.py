# The OOD demo's classifier: a shallow CIFAR PyramidNet (depth 20, basic blocks, alpha 24; 0.1M parameters, the
# paper's PyramidNet-200 block design and widening rule at a size that trains on 2 CPU cores in about a minute),
# 10 demo classes. All else as pyramidnet200_cifar100.py: augment mode 'none' is the baseline, beta and prob
# CutMix-PyTorch's CIFAR recipe.
_base_ = './pyramidnet200_cifar100.py'

model = dict(arch='pyramidnet20_a24_basic', num_classes=10)
