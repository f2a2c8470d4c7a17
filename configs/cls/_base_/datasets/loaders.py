# What every dataloader of the project's classification and captioning configs shares: mmengine's
# DefaultSampler (shuffled for training; the runtime's DistSamplerSeedHook reseeds it each epoch), torch's
# default_collate, workers kept alive between epochs. The dataset bases add batch size, workers and the dataset.
train_dataloader = dict(
    persistent_workers=True, sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='default_collate')
)
val_dataloader = dict(
    persistent_workers=True, sampler=dict(type='DefaultSampler', shuffle=False), collate_fn=dict(type='default_collate')
)
