# Faster R-CNN R50-C4 on VOC07+12 (the CutMix paper's closer setup: RPN and RoI pooling on layer3, layer4 as
# the RoI head), adapted from mmdet's caffe-style C4 recipe to torchvision-style weights:
#   - RGB input normalised with ImageNet mean/std (caffe: BGR, std 1);
#   - style='pytorch' (stride on the 3x3 conv) in the backbone and in the layer4 shared head;
#   - both the backbone (conv1..layer3) and roi_head.shared_head (layer4) start from the same converted file
#     (strict=False loading: each takes its own keys; tools/train_det.py logs which).
# Kept from mmdet: multi-scale training, 18k iterations, frozen BN (requires_grad=False, norm_eval).
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py'

custom_imports = dict(imports=['cutmix_transfer.detection'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    # init_cfg stays mmdet's Pretrained (a caffe file here); method configs / train_det.py replace the path
    backbone=dict(style='pytorch'),
    roi_head=dict(shared_head=dict(style='pytorch')),
)

val_evaluator = dict(type='VOCMetricPerClass', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
