# The demo pretraining with Mixup: lambda ~ Beta(beta, beta) with the same beta = 1.0 as CutMix (the paper's Mixup
# baseline, alpha = 1); all else as demo_baseline.py.
_base_ = './demo_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='mixup')))
