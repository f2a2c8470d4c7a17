"""Corruption robustness (Hendrycks & Dietterich, ICLR 2019): the evaluator of a classifier on ImageNet-C / CIFAR-C
as released (`evaluate`), the benchmark's numbers (`metrics`: CE, mCE, relative mCE, mean errors) and the generator
of corrupted copies of a clean set (`generate`, `write`), without ImageMagick or external files
(docs/corruption_protocol.md)."""

from .evaluate import CorruptionEvalConfig, evaluate_corruptions
from .metrics import ALEXNET_CLEAN_ERR, ALEXNET_ERR, corruption_error, relative_corruption_error, summarize_errors

__all__ = [
    "ALEXNET_CLEAN_ERR",
    "ALEXNET_ERR",
    "CorruptionEvalConfig",
    "corruption_error",
    "evaluate_corruptions",
    "relative_corruption_error",
    "summarize_errors",
]
