# The demo pretraining with Cutout; all else as demo_baseline.py. Cutout's square is half the image side, as the
# CutMix paper's baselines (16 of 32 px on CIFAR, 112 of 224 px on ImageNet): 48 of 96 px here.
_base_ = './demo_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='cutout', cutout_size=48)))
