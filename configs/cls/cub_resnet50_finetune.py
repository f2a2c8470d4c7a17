# Fine-tune an ImageNet-pretrained ResNet-50 (any method's checkpoint) on CUB-200-2011 in the WSOL form for CAM,
# with wsolevaluation's ResNet-50 CAM settings: layer3 + layer4 stride 1 (large_feature_map, 28x28 CAM at 224),
# batch 32, 50 epochs, SGD momentum 0.9, lr 1.7e-4 (x10 on the new fc head), x0.1 every 15 epochs, wd 1e-4,
# Resize 256 + RandomCrop 224 + flip; test Resize 224x224.
#   python tools/train_cls.py configs/cls/cub_resnet50_finetune.py --cfg-options model.pretrained=CKPT
# CKPT: CutMix-PyTorch's release, torchvision weights, or a checkpoint of imagenet_resnet50_*.py. The fine-tuned
# checkpoints carry the pretraining method of CKPT (from its meta, else its file name, e.g. *cutmix*); the
# fine-tuning itself uses no regional augment.
_base_ = [
    '_base_/models/resnet50_cub_wsol.py',
    '_base_/datasets/cub_bs32.py',
    '_base_/schedules/cub_bs32_50e.py',
    '_base_/default_runtime.py',
]

default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2))
env_cfg = dict(cudnn_benchmark=True)
