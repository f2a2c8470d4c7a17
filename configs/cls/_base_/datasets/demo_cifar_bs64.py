# The generated demo in CIFAR-100's python layout (data/demo_cifar/cifar-100-python from tools/make_demo_data.py
# --layouts cifar100 ood: 10 classes, 32 px scenes), read by CIFARCls with the CIFAR-100 inputs of
# cifar100_bs64.py: pad-4 crop 32 + flip for training, the 32 px image for testing, CutMix-PyTorch's mean / std.
# The arrays sit in memory, so the loader runs in the main process (no worker start-up on 2 cores).
_base_ = './cifar100_bs64.py'

data_root = 'data/demo_cifar'

train_dataloader = dict(batch_size=64, num_workers=0, persistent_workers=False, dataset=dict(root=data_root))
val_dataloader = dict(batch_size=200, num_workers=0, persistent_workers=False, dataset=dict(root=data_root))
