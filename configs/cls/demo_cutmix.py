# CutMix pretraining on the generated demo (data/demo/CUB_200_2011: 96 px, 10 classes), the WSOL form directly.
# Settings measured in DEMO_NOTES: ResNet-18 with layer4 stride 1 (6x6 CAM), SGD 0.9, lr 0.1 cosine with 10%
# linear warm-up, zero_init_residual (without warm-up and zero-init the first attempt diverged), wd 5e-4,
# batch 64, pad-8 random crop + flip. CutMix as the paper: Beta(1, 1), prob 1.0.
# demo_{baseline,mixup,cutout}.py change only model.data_preprocessor.augment.mode.
custom_imports = dict(imports=['cutmix_transfer.classification'], allow_failed_imports=False)

data_root = 'data/demo/CUB_200_2011'
image_size = 96
num_classes = 10
# DEMO_NOTES trained 7 epochs on 300 images per class (about 195 s per model there). On this project's 2-core
# machines a step of batch 64 takes 1.2-1.5 s (45-53 images/s), so `make demo` generates 160 per class and trains
# 4 epochs (100 steps, 2.5-3 minutes per model) to fit its 15-minute budget; use 7 epochs for the notes' setup.
max_epochs = 4
warmup_epochs = 0.1 * max_epochs  # changing max_epochs on the command line keeps this value: override both

model = dict(
    type='CAMClassifier', arch='resnet18', num_classes=num_classes, wsol=True, zero_init_residual=True,
    data_preprocessor=dict(type='MixAugmentPreprocessor', augment=dict(mode='cutmix', beta=1.0, prob=1.0)))

train_dataloader = dict(
    batch_size=64, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CUBCls', root=data_root, split='train',
                 transform=dict(preset='pad_crop_train', size=image_size, pad=8)))
val_dataloader = dict(
    batch_size=128, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CUBCls', root=data_root, split='test',
                 transform=dict(preset='resize_test', size=image_size)))
val_evaluator = dict(type='TopKError')

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)  # validate after the last epoch
val_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='CheckpointMetaHook')]

env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=True, window_size=10)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
