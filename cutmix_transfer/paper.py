"""The CutMix paper's own numbers (Yun et al., ICCV 2019), keyed by the report's column titles: the reference rows
`tools/report.py --paper` prints beside the measured ones."""

from __future__ import annotations

# The CutMix paper (Yun et al., ICCV 2019), ResNet-50 pretrained on ImageNet: Tables 3 (ImageNet cls),
# 5 (WSOL, CAM), 6 (transfer to VOC detection and COCO captioning). MaxBoxAccV2 is not in the paper.
PAPER_ROWS: dict[str, dict[str, float]] = {
    "baseline": {
        "top-1 err": 23.68,
        "CUB loc acc": 49.41,
        "ImageNet loc acc": 46.30,
        "SSD VOC07 mAP": 76.7,
        "Faster R-CNN VOC07 mAP": 75.6,
        "BLEU-1": 61.4,
        "BLEU-4": 22.9,
        "METEOR": 22.8,
        "CIDEr": 71.2,
    },
    "mixup": {
        "top-1 err": 22.58,
        "CUB loc acc": 49.30,
        "ImageNet loc acc": 45.84,
        "SSD VOC07 mAP": 76.6,
        "Faster R-CNN VOC07 mAP": 73.9,
        "BLEU-1": 61.6,
        "BLEU-4": 23.2,
        "METEOR": 22.9,
        "CIDEr": 72.2,
    },
    "cutout": {
        "top-1 err": 22.93,
        "CUB loc acc": 52.78,
        "ImageNet loc acc": 46.69,
        "SSD VOC07 mAP": 76.8,
        "Faster R-CNN VOC07 mAP": 75.0,
        "BLEU-1": 63.0,
        "BLEU-4": 24.0,
        "METEOR": 22.6,
        "CIDEr": 74.1,
    },
    "cutmix": {
        "top-1 err": 21.40,
        "CUB loc acc": 54.81,
        "ImageNet loc acc": 47.25,
        "SSD VOC07 mAP": 77.6,
        "Faster R-CNN VOC07 mAP": 76.7,
        "BLEU-1": 64.2,
        "BLEU-4": 24.9,
        "METEOR": 23.1,
        "CIDEr": 77.6,
    },
}

# Table 12 (and Table 3's top-1 error): PyramidNet-200 (alpha 240) trained on CIFAR-100, the max-softmax detector,
# mean over seven OOD sets (TinyImageNet crop / resize, LSUN crop / resize, iSUN, uniform, Gaussian noise); their
# own rows with --paper, apart from the ResNet-50 / ImageNet rows above.
PAPER_PYRAMIDNET_ARCH = "pyramidnet200_a240_bottleneck"
PAPER_TABLE12_OOD: dict[str, dict[str, float]] = {
    "baseline": {"CIFAR-100 top-1 err": 16.45, "OOD TNR@TPR95 (mean)": 26.3, "OOD AUROC (mean)": 87.3},
    "mixup": {"OOD TNR@TPR95 (mean)": 11.8, "OOD AUROC (mean)": 49.3},
    "cutout": {"OOD TNR@TPR95 (mean)": 18.8, "OOD AUROC (mean)": 68.7},
    "cutmix": {"CIFAR-100 top-1 err": 14.47, "OOD TNR@TPR95 (mean)": 69.0, "OOD AUROC (mean)": 94.4},
}

# Table 11: top-1 accuracy (%) of the ResNet-50s above on ImageNet val under FGSM, eps 8/255
# (docs/robustness_protocol.md says where the eps comes from).
PAPER_TABLE11_FGSM = {"baseline": 8.2, "mixup": 24.4, "cutout": 11.5, "cutmix": 31.0}
for _method, _top1 in PAPER_TABLE11_FGSM.items():
    PAPER_ROWS[_method]["ImageNet FGSM top-1"] = _top1
