# The OOD demo's schedule: the main demo's (demo_bs64_cosine.py: SGD momentum 0.9, lr 0.1 cosine with a 10% linear
# warm-up, wd 5e-4) with nesterov, for 2 epochs of the 1,000 generated CIFAR-layout images (16 steps of 64 each),
# validation after the last epoch. Sized for scripts/demo.sh's OOD stage (3 minutes on 2 cores, all included).
# The base's epoch counts were evaluated in the base (mmengine), so the loop and both schedulers are re-timed here.
_base_ = './demo_bs64_cosine.py'

max_epochs = 2
warmup_epochs = 0.1 * max_epochs  # changing max_epochs on the command line keeps this value: override both

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(nesterov=True))
param_scheduler = [  # lists are replaced whole: the base's warm-up and cosine with this file's epochs
    dict(_base_.param_scheduler[0], end=warmup_epochs),
    dict(_base_.param_scheduler[1], T_max=max_epochs - warmup_epochs, begin=warmup_epochs, end=max_epochs),
]
