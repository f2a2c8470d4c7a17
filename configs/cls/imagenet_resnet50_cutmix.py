# ImageNet ResNet-50 with CutMix, the recipe of Yun et al. (ICCV 2019) and clovaai/CutMix-PyTorch:
# 300 epochs, batch 256 in total, SGD momentum 0.9 nesterov, lr 0.1 x0.1 at epochs 75/150/225, wd 1e-4,
# CutMix beta 1.0 applied to every batch (cutmix_prob 1.0); RandomResizedCrop 224 + flip + ColorJitter 0.4 +
# PCA lighting 0.1. Paper: 21.40% top-1 error (baseline 23.68%).
# batch_size is per process: tools/dist_train.sh configs/cls/imagenet_resnet50_cutmix.py 4 gives 4 x 64 = 256.
# With another GPU count N keep the total: --cfg-options train_dataloader.batch_size=$((256 / N)) num_gpus=N.
# Data: the torchvision ImageFolder layout, data/ILSVRC/Data/CLS-LOC/{train,val}/<wnid>/*.JPEG (val sorted into
# class folders, e.g. with the usual valprep.sh).
custom_imports = dict(imports=['cutmix_transfer.classification'], allow_failed_imports=False)

data_root = 'data/ILSVRC/Data/CLS-LOC'
num_gpus = 4

model = dict(
    type='CAMClassifier', arch='resnet50', num_classes=1000, wsol=False,
    data_preprocessor=dict(type='MixAugmentPreprocessor', augment=dict(mode='cutmix', beta=1.0, prob=1.0)))

train_dataloader = dict(
    batch_size=256 // num_gpus, num_workers=8, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageFolderCls', root=data_root, split='train',
                 transform=dict(preset='imagenet_train', size=224)))
val_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageFolderCls', root=data_root, split='val',
                 transform=dict(preset='imagenet_test', size=224)))
val_evaluator = dict(type='TopKError')

train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[75, 150, 225], gamma=0.1)]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_best='top1_err', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='CheckpointMetaHook')]

env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=True, window_size=100)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
