# The demo pretraining without any regional augment (the paper's baseline); see demo_cutmix.py.
_base_ = './demo_cutmix.py'
model = dict(data_preprocessor=dict(augment=dict(mode='none')))
