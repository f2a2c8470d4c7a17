# ImageNet ResNet-50 with Cutout, a 112x112 square (half the side), as the paper's Cutout baseline (22.93% top-1
# error); all else as imagenet_resnet50_baseline.py.
_base_ = './imagenet_resnet50_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='cutout', cutout_size=112)))
