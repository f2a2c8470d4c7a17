# NIC on the generated demo captions (data/demo/coco, 96 px images, Karpathy-format split), a short CPU run:
# the Karpathy config with a small encoder (the demo pretraining's ResNet-18; --backbone sets the arch from the
# checkpoint), 96 px inputs and a few epochs. Measured: see the note at the end.
_base_ = './nic_coco_karpathy.py'

data_root = 'data/demo/coco'
image_size = 96
max_epochs = 3

# LSTM / embeddings 256 instead of the paper's 512: the demo's 54-word templated captions need no more, and the
# LSTM is a large share of a CPU step (5 captions per image). Use nic_coco_karpathy.py for the paper setup.
# image_norm: BatchNorm1d on the image embedding. Without it, on the demo the decoder first learns the captions'
# language prior and gave the same caption for every test image after 3 epochs (and after 10 epochs of the
# decoder alone on cached features); with it the captions start to follow the image (colour words).
model = dict(arch='resnet18', embed_dim=256, hidden_dim=256, image_norm=True)
train_dataloader = dict(
    batch_size=32, num_workers=1, persistent_workers=True,
    dataset=dict(root=data_root, image_size=image_size, resize=104))
val_dataloader = dict(batch_size=64, num_workers=1, persistent_workers=True,
                      dataset=dict(root=data_root, image_size=image_size))
test_dataloader = dict(batch_size=64, num_workers=1,
                       dataset=dict(root=data_root, image_size=image_size))

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)  # validate once, after the last epoch
# A fresh decoder on 750 images needs a larger step than Adam's 5e-4 to say anything within a minute.
optim_wrapper = dict(optimizer=dict(lr=2e-3), paramwise_cfg=dict(custom_keys={'encoder': dict(lr_mult=0.05)}))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs, eta_min=0.0, begin=0,
                        end=max_epochs, convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(max_keep_ckpts=1, save_best=None))
log_processor = dict(window_size=5)
