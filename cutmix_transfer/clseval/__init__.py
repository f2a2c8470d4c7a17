"""The classification evaluator: a checkpoint's own top-1 / top-5 error (CutMix-PyTorch's test.py), NLL, ECE, RMS
calibration error, temperature scaling and a reliability diagram (docs/classification_protocol.md)."""

from .calibration import (
    classification_metrics,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    rms_calibration_error,
)
from .data import DATASETS, load_cls_data
from .evaluate import ClsEvalConfig, evaluate_classification

__all__ = [
    "DATASETS",
    "ClsEvalConfig",
    "classification_metrics",
    "evaluate_classification",
    "expected_calibration_error",
    "fit_temperature",
    "load_cls_data",
    "reliability_bins",
    "rms_calibration_error",
]
