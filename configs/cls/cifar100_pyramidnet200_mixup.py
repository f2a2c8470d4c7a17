# PyramidNet-200 on CIFAR-100 with Mixup as the paper's comparison: alpha 1 (lambda ~ Beta(1, 1)), every batch.
_base_ = './cifar100_pyramidnet200_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='mixup', beta=1.0, prob=1.0)))
