# CutMix-PyTorch's CIFAR schedule: 300 epochs at batch 64, SGD momentum 0.9 nesterov, lr 0.25 x0.1 at epochs
# 150/225, wd 1e-4; validation every epoch.
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.25, momentum=0.9, nesterov=True, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[150, 225], gamma=0.1)]
