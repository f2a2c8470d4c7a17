# The mmengine runtime of the project's own Runner configs (classification, and captioning through
# configs/caption/nic_coco_karpathy.py; detection uses mmdet's): atomic checkpoints that carry the project's meta
# (arch, pretraining method: what the evaluation tools read), logs every 50 iterations, a local visualizer,
# seed 0. A config changes only what differs: the logger interval and log window, the checkpoint cadence and
# best metric, cudnn_benchmark (on for the fixed-size GPU recipes), the visualizer backends.
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
custom_hooks = [dict(type='CheckpointMetaHook')]

env_cfg = dict(
    cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0), dist_cfg=dict(backend='nccl')
)
log_processor = dict(by_epoch=True, window_size=50)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
