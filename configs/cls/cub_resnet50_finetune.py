# Fine-tune an ImageNet-pretrained ResNet-50 (any method's checkpoint) on CUB-200-2011 in the WSOL form for CAM,
# with wsolevaluation's ResNet-50 CAM settings: layer3 + layer4 stride 1 (large_feature_map, 28x28 CAM at 224),
# batch 32, 50 epochs, SGD momentum 0.9, lr 1.7e-4 (x10 on the new fc head), x0.1 every 15 epochs, wd 1e-4,
# Resize 256 + RandomCrop 224 + flip; test Resize 224x224.
#   python tools/train_cls.py configs/cls/cub_resnet50_finetune.py --cfg-options model.pretrained=CKPT
# CKPT: CutMix-PyTorch's release, torchvision weights, or a checkpoint of imagenet_resnet50_*.py. The fine-tuned
# checkpoints carry the pretraining method of CKPT (from its meta, else its file name, e.g. *cutmix*); the
# fine-tuning itself uses no regional augment.
custom_imports = dict(imports=['cutmix_transfer.classification'], allow_failed_imports=False)

data_root = 'data/CUB_200_2011'

model = dict(
    type='CAMClassifier', arch='resnet50', num_classes=200, wsol=True, large_feature_map=True,
    pretrained=None, pretrained_head='drop',
    data_preprocessor=dict(type='MixAugmentPreprocessor', augment=dict(mode='none')))

train_dataloader = dict(
    batch_size=32, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CUBCls', root=data_root, split='train',
                 transform=dict(preset='resize_crop_train', size=224, resize=256)))
val_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CUBCls', root=data_root, split='test', transform=dict(preset='resize_test', size=224)))
val_evaluator = dict(type='TopKError')

train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=5)
val_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='SGD', lr=1.7e-4, momentum=0.9, weight_decay=1e-4),
                     paramwise_cfg=dict(custom_keys={'backbone.fc': dict(lr_mult=10.0)}))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=15, gamma=0.1)]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=5, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='CheckpointMetaHook')]

env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=True, window_size=50)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
