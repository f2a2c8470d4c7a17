"""CutMix-family classification pretraining on mmengine: datasets, model, metric, hooks and the train entry.

Importing this package registers (in mmengine's root registries) the datasets 'ImageFolderCls', 'CIFARCls',
'CUBCls', the models 'CAMClassifier' and 'MixAugmentPreprocessor', the metric 'TopKError', the hooks
'CheckpointMetaHook' and 'AtomicCheckpointHook', and the wrapper 'CPUDistributedDataParallel'.
"""

from .. import distributed  # noqa: F401  (registers CPUDistributedDataParallel)
from ..runner import AtomicCheckpointHook, CheckpointMetaHook
from .datasets import CIFARDataset, CUBDataset, ImageFolderDataset
from .metric import TopKError, topk_errors
from .model import CAMClassifier, MixAugmentPreprocessor, zero_init_last_bn
from .train import train_classifier
from .transforms import PRESETS, build_transform

__all__ = [
    "AtomicCheckpointHook",
    "CAMClassifier",
    "CheckpointMetaHook",
    "CIFARDataset",
    "CUBDataset",
    "ImageFolderDataset",
    "MixAugmentPreprocessor",
    "PRESETS",
    "TopKError",
    "build_transform",
    "topk_errors",
    "train_classifier",
    "zero_init_last_bn",
]
