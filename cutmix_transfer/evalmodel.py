"""The evaluators' one way to build the classifier they evaluate (test_cls, corruption_eval, ood_eval,
robustness_eval, wsol_eval): the checkpoint as a classifier of the data's classes, in the form it was trained in,
with the normalisation it was trained with.

`load_eval_classifier` loads the file (any format checkpoints.py reads), checks its fc head against the data's
class count and labels (CheckpointError naming the file, the data and the fix otherwise), builds it in the form it
was trained in (backbones.build_model + load_weights) and resolves the statistics the inputs are normalised with
(normalization.resolve_normalization: --mean / --std, else the checkpoint's meta, else the dataset's). The
evaluator records `norm.protocol()` in its protocol block and `norm.source` beside it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from .backbones import build_model, load_weights
from .checkpoints import LoadedBackbone, load_backbone_state
from .datasets.wsol_data import EvalData
from .errors import CheckpointError
from .normalization import Normalization, resolve_normalization


@dataclass(frozen=True)
class EvalClassifier:
    """model: the classifier in eval mode (on the CPU); loaded: the checkpoint as read (path, sha256, arch, meta);
    form: which form was built ('wsol_form', 'large_feature_map') and where that came from ('form_source'); norm:
    the statistics its inputs are normalised with and their source."""

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
    """The checkpoint `backbone` as the classifier of `what` (the data, named in errors), with `hint` (the fix) for a
    file without an fc head or with one that does not fit `num_classes` (when the data declares one) or cover
    `max_label`. `wsol_form` / `large_feature_map` None take the form the checkpoint records in its meta (this
    project's checkpoints do; others are standard classifiers). `dataset` (a normalization.DATASET_STATS name)
    gives the fallback statistics; `mean` / `std` (both or neither) override the checkpoint meta's."""
    path = Path(backbone)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; pass --backbone the .pth file of a classifier of {what}")
    loaded = load_backbone_state(path, arch=arch, trust=trust)
    if not loaded.has_fc or not loaded.num_classes:
        raise CheckpointError(f"{path} has no classifier head (fc); {hint}")
    k = int(loaded.num_classes)
    if num_classes is not None and k != int(num_classes):
        raise CheckpointError(
            f"class-count mismatch: {path} has a {k}-class head but {what} has {num_classes} classes; {hint}"
        )
    if max_label is not None and int(max_label) >= k:
        raise CheckpointError(
            f"class-count mismatch: {path} has a {k}-class head but the labels of {what} reach {max_label}; {hint}"
        )
    form_wsol = bool(loaded.meta.get("wsol", False)) if wsol_form is None else bool(wsol_form)
    if large_feature_map is None:
        large_feature_map = form_wsol and bool(loaded.meta.get("large_feature_map", False))
    model = build_model(loaded.arch, k, wsol=form_wsol, large_feature_map=bool(large_feature_map))
    load_weights(model, loaded, head="require")
    form = {
        "wsol_form": form_wsol,
        "large_feature_map": bool(large_feature_map),
        "form_source": "checkpoint meta" if wsol_form is None else "command line",
    }
    model.eval()
    return EvalClassifier(model, loaded, form, resolve_normalization(loaded.meta, dataset, mean, std))


def box_data_classes(dataset: str, data: EvalData) -> dict[str, Any]:
    """`what`, `num_classes` and `max_label` of a box dataset's split (the WSOL and robustness evaluators' data),
    for load_eval_classifier."""
    return {
        "what": f"the {dataset} data at {data.data_root}",
        "num_classes": data.num_classes,
        "max_label": max(int(s.label) for s in data.samples),
    }
