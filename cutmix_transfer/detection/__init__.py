"""MMDetection glue: backbone conversion and depth adaptation, VOC checks, metric, train (train.py) and test
(evaluate.py) on mmengine.

Importing this package registers, in mmdet's registries: `SSDHeadFixed` (compat fix for SSD predict),
`VOCMetricPerClass` (mmdet's VOCMetric + per-class AP) and `BackboneProvenanceHook`. The detection configs
list it in `custom_imports`, so a plain mmengine Runner on them gets the same registrations.
"""

from ..compat import register_mmdet_fixes

register_mmdet_fixes()

from .backbone import (  # noqa: E402
    KeyReport,
    adapt_config_to_arch,
    backbone_key_report,
    backbone_provenance,
    convert_backbone,
    resnet_depth,
    set_backbone_init,
    stage_channels,
)
from .data import check_voc_data, set_data_root  # noqa: E402
from .evaluate import EvalOutcome, detector_name, evaluate_detector, summary_lines  # noqa: E402
from .hooks import BackboneProvenanceHook  # noqa: E402
from .metric import VOCMetricPerClass  # noqa: E402
from .train import PreparedTraining, prepare_training, report_backbone_keys, train_detector  # noqa: E402

__all__ = [
    "KeyReport",
    "adapt_config_to_arch",
    "backbone_key_report",
    "backbone_provenance",
    "convert_backbone",
    "resnet_depth",
    "set_backbone_init",
    "stage_channels",
    "check_voc_data",
    "set_data_root",
    "BackboneProvenanceHook",
    "VOCMetricPerClass",
    "EvalOutcome",
    "detector_name",
    "evaluate_detector",
    "summary_lines",
    "PreparedTraining",
    "prepare_training",
    "report_backbone_keys",
    "train_detector",
]
