"""Weakly-supervised object localization: score maps -> boxes at all thresholds (boxes), evaluators."""

from .boxes import (
    box_iou_plus1,
    boxes_at_threshold,
    cam_thresholds,
    curves_for_batch,
    iou_curves,
    max_iou_curve,
    max_iou_curve_reference,
    quantize_scoremap,
    resize_boxes,
)
from .metrics import BoxEvaluator, MaskEvaluator, resize_mask

__all__ = [
    "boxes_at_threshold",
    "box_iou_plus1",
    "cam_thresholds",
    "curves_for_batch",
    "iou_curves",
    "max_iou_curve",
    "max_iou_curve_reference",
    "quantize_scoremap",
    "resize_boxes",
    "BoxEvaluator",
    "MaskEvaluator",
    "resize_mask",
]
