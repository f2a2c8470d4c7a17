# The demo pretraining with Mixup instead of CutMix (see demo_cutmix.py); only the augment mode differs.
# Mixup's lambda ~ Beta(beta, beta) with the same beta = 1.0 as CutMix (the paper's Mixup baseline, alpha = 1).
_base_ = './demo_cutmix.py'
model = dict(data_preprocessor=dict(augment=dict(mode='mixup')))
