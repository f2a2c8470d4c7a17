"""Captioning transfer: NIC (Show and Tell) with a backbone checkpoint as encoder, trained on mmengine's Runner,
decoded with batched beam search and scored with the COCO caption metrics.

Importing this package registers in mmengine's root registries: the dataset 'CocoCaptions', the model
'NICCaptioner', the metric 'CaptionMetric', and (from cutmix_transfer.runner) the hooks
'AtomicCheckpointHook' / 'CheckpointMetaHook' and the wrapper 'CPUDistributedDataParallel'.
"""

from ..datasets.text import tokenize
from ..runner import AtomicCheckpointHook, CheckpointMetaHook
from .data import CocoCaptionDataset, caption_transform, training_tokens
from .decode import BeamOutput, beam_search
from .evaluate import CaptionEval, caption_dataset, evaluate_captioner, load_captioner, sample_figure
from .metrics import METRIC_NAMES, CaptionMetric, score_captions, to_percent
from .model import NICCaptioner
from .train import prepare_vocab, train_captioner
from .vocab import END_ID, PAD_ID, SPECIALS, START_ID, UNK_ID, Vocabulary, build_vocab, encode_batch

__all__ = [
    "AtomicCheckpointHook",
    "BeamOutput",
    "CaptionEval",
    "CaptionMetric",
    "CheckpointMetaHook",
    "CocoCaptionDataset",
    "END_ID",
    "METRIC_NAMES",
    "NICCaptioner",
    "PAD_ID",
    "SPECIALS",
    "START_ID",
    "UNK_ID",
    "Vocabulary",
    "beam_search",
    "build_vocab",
    "caption_dataset",
    "caption_transform",
    "encode_batch",
    "evaluate_captioner",
    "load_captioner",
    "prepare_vocab",
    "sample_figure",
    "score_captions",
    "to_percent",
    "tokenize",
    "train_captioner",
    "training_tokens",
]
