"""The evaluators' one way to build the classifier they evaluate (test_cls, corruption_eval, ood_eval,
robustness_eval, wsol_eval): the checkpoint as a classifier of the data's classes, in the form it was trained in,
with the normalisation it was trained with.

`load_eval_classifier` loads the file (backbones.load_classifier: its fc head checked against the data's class
count and labels, CheckpointError naming the file, the data and the fix otherwise) and resolves the statistics the
inputs are normalised with (normalization.resolve_normalization: --mean / --std, else the checkpoint's meta, else
the dataset's). The evaluator records `norm.protocol()` in its protocol block and `norm.source` beside it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from .backbones import load_classifier
from .checkpoints import LoadedBackbone
from .datasets.wsol_data import EvalData
from .normalization import Normalization, resolve_normalization


@dataclass(frozen=True)
class EvalClassifier:
    """model: the classifier in eval mode (on the CPU); loaded: the checkpoint as read (path, sha256, arch, meta);
    form: which form was built and where that came from (backbones.load_classifier); norm: the statistics its
    inputs are normalised with and their source."""

    model: nn.Module
    loaded: LoadedBackbone
    form: dict[str, Any]
    norm: Normalization


def load_eval_classifier(
    backbone: str | os.PathLike,
    dataset: str,
    what: str,
    hint: str,
    num_classes: int | None = None,
    max_label: int | None = None,
    arch: str | None = None,
    trust: bool = False,
    wsol_form: bool | None = None,
    large_feature_map: bool | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> EvalClassifier:
    """The checkpoint `backbone` as the classifier of `what` (the data, named in errors) with `hint` (the fix) for a
    head that does not fit `num_classes` / `max_label`; `wsol_form` / `large_feature_map` None: the form its meta
    records. `dataset` (a normalization.DATASET_STATS name) gives the fallback statistics; `mean` / `std` (both or
    neither) override the checkpoint's."""
    model, loaded, form = load_classifier(
        backbone,
        what,
        hint,
        num_classes=num_classes,
        max_label=max_label,
        arch=arch,
        trust=trust,
        wsol=wsol_form,
        large_feature_map=large_feature_map,
    )
    return EvalClassifier(model, loaded, form, resolve_normalization(loaded.meta, dataset, mean, std))


def box_data_classes(dataset: str, data: EvalData) -> dict[str, Any]:
    """`what`, `num_classes` and `max_label` of a box dataset's split (the WSOL and robustness evaluators' data),
    for load_eval_classifier."""
    return {
        "what": f"the {dataset} data at {data.data_root}",
        "num_classes": data.num_classes,
        "max_label": max(int(s.label) for s in data.samples),
    }
