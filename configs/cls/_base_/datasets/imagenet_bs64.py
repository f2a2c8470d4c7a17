# ImageNet in the torchvision ImageFolder layout, data/ILSVRC/Data/CLS-LOC/{train,val}/<wnid>/*.JPEG (val sorted
# into class folders, e.g. with the usual valprep.sh): RandomResizedCrop 224 + flip + ColorJitter 0.4 + PCA
# lighting 0.1 for training; Resize 256 + CenterCrop 224 for testing.
# batch_size is per process: tools/dist_train.sh CONFIG 4 gives 4 x 64 = the paper's 256. With another GPU count
# N keep the total: --cfg-options train_dataloader.batch_size=$((256 / N)) num_gpus=N.
_base_ = './loaders.py'

data_root = 'data/ILSVRC/Data/CLS-LOC'
num_gpus = 4

train_dataloader = dict(
    batch_size=256 // num_gpus,
    num_workers=8,
    pin_memory=True,
    dataset=dict(
        type='ImageFolderCls', root=data_root, split='train', transform=dict(preset='imagenet_train', size=224)
    ),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    pin_memory=True,
    dataset=dict(type='ImageFolderCls', root=data_root, split='val', transform=dict(preset='imagenet_test', size=224)),
)
val_evaluator = dict(type='TopKError')
