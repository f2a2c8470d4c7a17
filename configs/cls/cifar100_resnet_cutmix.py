# CIFAR-100 with CutMix, CutMix-PyTorch's CIFAR recipe: 300 epochs, batch 64, SGD momentum 0.9 nesterov,
# lr 0.25 x0.1 at epochs 150/225, wd 1e-4, CutMix beta 1.0 with cutmix_prob 0.5; pad-4 crop 32 + flip.
# The paper's network is PyramidNet-200 (alpha 240; 14.47% top-1 error with CutMix, 16.45% baseline). It is not
# part of this toolkit: this config trains a ResNet-18 with the small-input stem (3x3 stride-1 conv1, no
# max-pool), so its numbers are not comparable with the paper's PyramidNet table.
# Data: the python-pickle layout, data/cifar/cifar-100-python/{train,test,meta}.
custom_imports = dict(imports=['cutmix_transfer.classification'], allow_failed_imports=False)

data_root = 'data/cifar'
norm = dict(mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))

model = dict(
    type='CAMClassifier', arch='resnet18', num_classes=100, small_input_stem=True,
    data_preprocessor=dict(type='MixAugmentPreprocessor', augment=dict(mode='cutmix', beta=1.0, prob=0.5)))

train_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CIFARCls', root=data_root, split='train', variant='cifar100',
                 transform=dict(preset='pad_crop_train', size=32, pad=4, **norm)))
val_dataloader = dict(
    batch_size=256, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CIFARCls', root=data_root, split='test', variant='cifar100',
                 transform=dict(preset='resize_test', size=32, **norm)))
val_evaluator = dict(type='TopKError')

train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.25, momentum=0.9, nesterov=True, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[150, 225], gamma=0.1)]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=10, max_keep_ckpts=2, save_best='top1_err', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='CheckpointMetaHook')]

env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=True, window_size=100)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
