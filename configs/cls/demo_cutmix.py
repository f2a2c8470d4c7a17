# The demo pretraining with CutMix, as the paper: Beta(1, 1), applied to every batch (prob 1.0); all else as
# demo_baseline.py.
_base_ = './demo_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='cutmix')))
