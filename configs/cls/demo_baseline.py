# The demo pretraining without any regional augment (the paper's baseline), on the generated demo
# (data/demo/CUB_200_2011: 96 px, 10 classes), in the WSOL form directly. demo_{cutmix,mixup,cutout}.py are this
# config with another augment mode and differ in nothing else.
# Settings measured in DEMO_NOTES (each in its base): ResNet-18 with layer4 stride 1 (6x6 CAM), zero_init_residual;
# batch 64, pad-8 random crop + flip; SGD 0.9, lr 0.1 cosine with 10% linear warm-up, wd 5e-4, 3 epochs.
_base_ = [
    '_base_/models/resnet18_demo.py',
    '_base_/datasets/demo_cub_bs64.py',
    '_base_/schedules/demo_bs64_cosine.py',
    '_base_/default_runtime.py',
]

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=2))
log_processor = dict(window_size=10)
