# PyramidNet-200 on CIFAR-100 with Cutout as the paper's comparison: one 16x16 px square per image, every batch.
_base_ = './cifar100_pyramidnet200_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='cutout', cutout_size=16, prob=1.0)))
