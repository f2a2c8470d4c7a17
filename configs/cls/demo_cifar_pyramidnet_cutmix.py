# The OOD demo's CutMix classifier: as demo_cifar_pyramidnet_baseline.py with CutMix (Beta(1, 1) box area,
# applied to a batch with probability 0.5, as CutMix-PyTorch's CIFAR command).
_base_ = './demo_cifar_pyramidnet_baseline.py'
model = dict(data_preprocessor=dict(augment=dict(mode='cutmix', beta=1.0, prob=0.5)))
