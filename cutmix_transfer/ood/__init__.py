"""Out-of-distribution detection with a classifier: the CutMix paper's uncertainty test (Table 12).

``data`` reads the in-distribution CIFAR test set and the OOD sets (ODIN's folders, uniform / Gaussian noise),
``detectors`` scores images (msp, odin, energy), ``metrics`` turns scores into TNR at 95% TPR, AUROC, detection
accuracy (one ROC implementation, image weights too) and AUPR (scikit-learn), ``evaluate`` runs it all for one
checkpoint (tools/ood_eval.py), ``figure`` draws the score histograms and ROC curves. docs/ood_protocol.md defines
every number.
"""

from .data import NOISE_SETS, ODIN_SETS, OODSet, list_images, load_in_distribution, noise_image, resolve_ood_sets
from .detectors import DETECTORS, Detector, build_detector, register_detector
from .evaluate import OODEvalConfig, OODResult, evaluate_ood
from .metrics import METRICS, METRICS_AS, lee_metrics, mean_metrics, metrics_as, odin_metrics, ood_metrics, roc_points

__all__ = [
    "NOISE_SETS",
    "ODIN_SETS",
    "OODSet",
    "list_images",
    "load_in_distribution",
    "noise_image",
    "resolve_ood_sets",
    "DETECTORS",
    "Detector",
    "build_detector",
    "register_detector",
    "OODEvalConfig",
    "OODResult",
    "evaluate_ood",
    "METRICS",
    "METRICS_AS",
    "lee_metrics",
    "metrics_as",
    "odin_metrics",
    "mean_metrics",
    "ood_metrics",
    "roc_points",
]
