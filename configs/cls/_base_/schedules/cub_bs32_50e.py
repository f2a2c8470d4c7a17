# wsolevaluation's ResNet-50 CUB fine-tuning schedule: 50 epochs at batch 32, SGD momentum 0.9, lr 1.7e-4 (x10 on
# the new fc head), x0.1 every 15 epochs, wd 1e-4; validation every 5 epochs.
train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=5)
val_cfg = dict()

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1.7e-4, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'backbone.fc': dict(lr_mult=10.0)}),
)
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=15, gamma=0.1)]
