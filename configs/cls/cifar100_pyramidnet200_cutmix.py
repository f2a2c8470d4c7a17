# PyramidNet-200 on CIFAR-100 with CutMix as CutMix-PyTorch's README: Beta(1, 1) box area, applied to a batch with
# probability 0.5 (--beta 1.0 --cutmix_prob 0.5). Paper: 14.47% top-1 error; its released checkpoint 14.23%.
_base_ = './cifar100_pyramidnet200_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='cutmix', beta=1.0, prob=0.5)))
