"""The CutMix paper's own numbers (Yun et al., ICCV 2019), keyed by the report's column titles: the reference rows
`tools/report.py --paper` prints beside the measured ones."""

from __future__ import annotations

# The CutMix paper (Yun et al., ICCV 2019, arXiv 1905.04899), ResNet-50 pretrained on ImageNet: Table 3 (ImageNet
# classification), Table 9 (WSOL, CAM: CUB200-2011 and ImageNet loc acc), Table 10 (transfer: SSD / Faster R-CNN
# VOC07 mAP, NIC BLEU-1 / BLEU-4), Table A1 (Appendix D: METEOR, CIDEr). MaxBoxAccV2 is not in the paper.
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

# PyramidNet-200 (alpha 240) trained on CIFAR-100 (section 4.1.2), their own rows with --paper, apart from the
# ResNet-50 / ImageNet rows above:
# - top-1 error from Table 5 (CIFAR-100; Mixup is its alpha = 1.0 row, 15.63, the alpha the paper chose for
#   ImageNet; its alpha = 0.5 row is 15.78; Cutout is "+ Cutout" without label smoothing);
# - Table 12 (section 4.4): the max-softmax detector, TNR at TPR 95%, AUROC and detection accuracy, each the mean
#   over the seven OOD sets of Table A2 (TinyImageNet crop / resize, LSUN crop / resize, iSUN, uniform, Gaussian).
PAPER_PYRAMIDNET_ARCH = "pyramidnet200_a240_bottleneck"
PAPER_TABLE12_OOD: dict[str, dict[str, float]] = {
    "baseline": {
        "CIFAR-100 top-1 err": 16.45,
        "OOD TNR@TPR95 (mean)": 26.3,
        "OOD AUROC (mean)": 87.3,
        "OOD detection acc (mean)": 82.0,
    },
    "mixup": {
        "CIFAR-100 top-1 err": 15.63,
        "OOD TNR@TPR95 (mean)": 11.8,
        "OOD AUROC (mean)": 49.3,
        "OOD detection acc (mean)": 60.9,
    },
    "cutout": {
        "CIFAR-100 top-1 err": 16.53,
        "OOD TNR@TPR95 (mean)": 18.8,
        "OOD AUROC (mean)": 68.7,
        "OOD detection acc (mean)": 71.3,
    },
    "cutmix": {
        "CIFAR-100 top-1 err": 14.47,
        "OOD TNR@TPR95 (mean)": 69.0,
        "OOD AUROC (mean)": 94.4,
        "OOD detection acc (mean)": 89.1,
    },
}

# Table A2 (Appendix E.2): per OOD set, (TNR at TPR 95%, AUROC, detection accuracy) in percent, keyed by the set
# names of ODIN's release folders as tools/ood_eval.py names them (Imagenet = TinyImageNet crop, ...) and the noise
# sets. Table 12 is the mean of these seven rows (tests/test_report.py checks it).
PAPER_TABLE_A2_SETS: dict[str, str] = {
    "Imagenet": "TinyImageNet (crop)",
    "Imagenet_resize": "TinyImageNet (resize)",
    "LSUN": "LSUN (crop)",
    "LSUN_resize": "LSUN (resize)",
    "iSUN": "iSUN",
    "uniform": "Uniform noise",
    "gaussian": "Gaussian noise",
}
PAPER_TABLE_A2_METRICS = ("tnr_at_tpr95", "auroc", "detection_acc")
PAPER_TABLE_A2: dict[str, dict[str, tuple[float, float, float]]] = {
    "baseline": {
        "Imagenet": (43.0, 88.9, 81.3),
        "Imagenet_resize": (29.8, 84.2, 77.0),
        "LSUN": (34.6, 86.5, 79.5),
        "LSUN_resize": (34.3, 86.4, 79.0),
        "iSUN": (32.0, 85.1, 77.8),
        "uniform": (0.0, 89.2, 89.2),
        "gaussian": (10.4, 90.7, 89.9),
    },
    "mixup": {
        "Imagenet": (22.6, 71.6, 69.8),
        "Imagenet_resize": (12.3, 56.8, 61.0),
        "LSUN": (22.9, 76.3, 72.3),
        "LSUN_resize": (13.0, 59.0, 61.8),
        "iSUN": (11.8, 57.0, 61.0),
        "uniform": (0.0, 0.8, 50.0),
        "gaussian": (0.0, 23.4, 50.5),
    },
    "cutout": {
        "Imagenet": (30.5, 85.6, 79.0),
        "Imagenet_resize": (22.0, 82.8, 77.1),
        "LSUN": (33.2, 85.7, 78.5),
        "LSUN_resize": (23.7, 84.0, 78.4),
        "iSUN": (22.2, 82.8, 76.8),
        "uniform": (0.0, 35.6, 59.1),
        "gaussian": (0.0, 24.3, 50.0),
    },
    "cutmix": {
        "Imagenet": (57.1, 92.4, 85.0),
        "Imagenet_resize": (55.4, 91.9, 84.5),
        "LSUN": (47.6, 90.3, 82.8),
        "LSUN_resize": (62.8, 93.7, 86.7),
        "iSUN": (60.1, 93.0, 85.7),
        "uniform": (100.0, 99.8, 99.7),
        "gaussian": (100.0, 99.7, 99.0),
    },
}

# Table 11 (section 4.4): top-1 accuracy (%) of the ResNet-50s above on ImageNet val under FGSM, eps 8/255
# (Appendix E.1, eq. 3).
PAPER_TABLE11_FGSM = {"baseline": 8.2, "mixup": 24.4, "cutout": 11.5, "cutmix": 31.0}
for _method, _top1 in PAPER_TABLE11_FGSM.items():
    PAPER_ROWS[_method]["ImageNet FGSM top-1"] = _top1
