"""Robustness of a classifier (CutMix paper, section 4.4): FGSM, centre / boundary occlusion, in-between-class
samples; `evaluate_robustness` runs them on a dataset split and writes the result record and curves."""

from .attacks import (
    FGSM_SPACES,
    PAPER_EPS,
    PixelClassifier,
    check_eps,
    eps_key,
    fgsm_perturb,
    fgsm_predictions,
    input_gradient_sign,
)
from .curves import cutmix_predictions, mixup_predictions, occlusion_predictions, top1_accuracy, top1_error
from .evaluate import TESTS, RobustnessConfig, evaluate_robustness
from .inbetween import DEFAULT_MIXUP_RATIOS, cutmix_images, cutmix_ratio, draw_pairs, hit_rates, mixup_images
from .occlusion import DEFAULT_SIDES, FILLS, centered_span, fill_value, occlude, occlusion_mask, scale_sides

__all__ = [
    "FGSM_SPACES",
    "FILLS",
    "fill_value",
    "PAPER_EPS",
    "PixelClassifier",
    "check_eps",
    "eps_key",
    "fgsm_perturb",
    "fgsm_predictions",
    "input_gradient_sign",
    "cutmix_predictions",
    "mixup_predictions",
    "occlusion_predictions",
    "top1_accuracy",
    "top1_error",
    "TESTS",
    "RobustnessConfig",
    "evaluate_robustness",
    "DEFAULT_MIXUP_RATIOS",
    "cutmix_images",
    "cutmix_ratio",
    "draw_pairs",
    "hit_rates",
    "mixup_images",
    "DEFAULT_SIDES",
    "centered_span",
    "occlude",
    "occlusion_mask",
    "scale_sides",
]
