# The OOD demo's schedule: SGD momentum 0.9 nesterov, lr 0.1 cosine with a 10% linear warm-up, wd 5e-4 (the main
# demo's, demo_bs64_cosine.py), 2 epochs of the 1,000 generated CIFAR-layout images (16 steps of 64 each),
# validation after the last epoch. Sized for scripts/demo.sh's OOD stage (3 minutes on 2 cores, all included).
max_epochs = 2
warmup_epochs = 0.1 * max_epochs  # changing max_epochs on the command line keeps this value: override both

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
