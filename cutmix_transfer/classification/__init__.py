"""CutMix-family classification pretraining on mmengine: model, metric, hooks and the train entry; the readers and
transforms it trains on live in `datasets/` (datasets.classification, datasets.transforms), shared with the evaluators.

Importing this package registers (in mmengine's root registries) the datasets 'ImageFolderCls', 'CIFARCls',
'CUBCls' (defined in datasets.classification, imported here), the models 'CAMClassifier' and
'MixAugmentPreprocessor', the metric 'TopKError', the hooks 'CheckpointMetaHook' and 'AtomicCheckpointHook', and the
wrapper 'CPUDistributedDataParallel' (the last three from cutmix_transfer.runner).
"""

from ..datasets.classification import CIFARDataset, CUBDataset, ImageFolderDataset
from ..datasets.transforms import PRESETS, build_transform
from ..runner import AtomicCheckpointHook, CheckpointMetaHook
from .metric import TopKError, topk_errors
from .model import CAMClassifier, MixAugmentPreprocessor, zero_init_last_bn
from .train import train_classifier

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
