# ImageNet ResNet-50 without regional augment (paper: 23.68% top-1 error), the recipe of Yun et al. (ICCV 2019)
# and clovaai/CutMix-PyTorch: 300 epochs, batch 256 in total, SGD momentum 0.9 nesterov, lr 0.1 x0.1 at epochs
# 75/150/225, wd 1e-4; RandomResizedCrop 224 + flip + ColorJitter 0.4 + PCA lighting 0.1.
# imagenet_resnet50_{cutmix,mixup,cutout}.py are this config with another augment mode.
# batch_size is per process: tools/dist_train.sh configs/cls/imagenet_resnet50_cutmix.py 4 gives 4 x 64 = 256
# (datasets/imagenet_bs64.py says how to keep the total with another GPU count).
_base_ = [
    '_base_/models/resnet50.py',
    '_base_/datasets/imagenet_bs64.py',
    '_base_/schedules/imagenet_bs256_300e.py',
    '_base_/default_runtime.py',
]

default_hooks = dict(logger=dict(interval=100), checkpoint=dict(max_keep_ckpts=3, save_best='top1_err', rule='less'))
env_cfg = dict(cudnn_benchmark=True)
log_processor = dict(window_size=100)
visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
