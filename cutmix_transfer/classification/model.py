"""CutMix-family pretraining as an mmengine model: a CAMNet backbone, the batch augment in the data preprocessor.

Checkpoints of `CAMClassifier` have keys 'backbone.conv1.weight' ... 'backbone.fc.weight', which
`checkpoints.load_backbone_state` maps back to torchvision names; `checkpoint_meta()` says how it was trained.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch
import torch.nn as nn
import torchvision
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import MODELS

from ..augment import BatchAugment, MixedBatch
from ..backbones import build_model, load_weights, use_small_input_stem
from ..checkpoints import load_backbone_state
from ..errors import ConfigError
from ..results import guess_method

logger = logging.getLogger(__name__)


def _as_batch(inputs: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Accept default_collate (stacked tensors) or pseudo_collate (lists) output -> ((B, C, H, W), (B,) int64)."""
    if isinstance(inputs, (list, tuple)):
        inputs = torch.stack(list(inputs))
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(list(labels), dtype=torch.int64, device=inputs.device)
    return inputs, labels.to(device=inputs.device, dtype=torch.int64)


@MODELS.register_module(name="MixAugmentPreprocessor")
class MixAugmentPreprocessor(BaseDataPreprocessor):
    """Moves the batch to the model's device; in training applies the batch augment (none/mixup/cutout/cutmix).

    Returns {'inputs': (B, 3, H, W), 'data_samples': MixedBatch (training) or (B,) int64 labels (evaluation)}.
    Normalisation happens in the dataset transform, so Cutout's zero fill is the dataset mean.
    """

    def __init__(self, augment: dict | None = None, non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        self.augment = BatchAugment(**{"inplace": True, **(augment or {})})  # the collated batch is ours

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, labels = _as_batch(data["inputs"], data["data_samples"])
        if training:
            return {"inputs": inputs, "data_samples": self.augment(inputs, labels)}
        return {"inputs": inputs, "data_samples": labels}


def zero_init_last_bn(model: nn.Module) -> int:
    """Zero the last BN weight of every residual block (Goyal et al.; torchvision's zero_init_residual); -> count."""
    n = 0
    for m in model.modules():
        if isinstance(m, torchvision.models.resnet.Bottleneck):
            nn.init.zeros_(m.bn3.weight)
            n += 1
        elif isinstance(m, torchvision.models.resnet.BasicBlock):
            nn.init.zeros_(m.bn2.weight)
            n += 1
    return n


@MODELS.register_module(name="CAMClassifier")
class CAMClassifier(BaseModel):
    """A CAMNet (`backbone`) trained with lam * CE(y_a) + (1 - lam) * CE(y_b) on augmented batches.

    forward modes: 'tensor' -> (B, K) logits; 'loss' -> {'loss'}; 'predict' -> one dict per image with
    'gt_label' (int) and 'pred_topk' ((k,) int64 classes, best first, k = min(5, K)), for `TopKError`.
    """

    def __init__(
        self,
        arch: str,
        num_classes: int,
        wsol: bool = False,
        large_feature_map: bool = False,
        zero_init_residual: bool = False,
        small_input_stem: bool = False,
        pretrained: str | None = None,
        pretrained_head: Literal["require", "drop", "if-match"] = "drop",
        trust_pretrained: bool = False,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        """`small_input_stem`: ResNet conv1 3x3 stride 1 and no max-pool, the usual ResNet for 32 px CIFAR images.
        `pretrained`: any checkpoint the core loader reads (CutMix-PyTorch, torchvision, ours, ...) loaded into the
        backbone at construction, with the fc head handled by `pretrained_head` (fine-tuning: 'drop').
        """
        if data_preprocessor is None:
            data_preprocessor = dict(type="MixAugmentPreprocessor")
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_model(arch, num_classes, wsol=wsol, large_feature_map=large_feature_map)
        is_resnet = arch.startswith("resnet")
        if (zero_init_residual or small_input_stem) and not is_resnet:
            raise ConfigError(f"zero_init_residual / small_input_stem apply to ResNets only, not arch={arch!r}")
        if zero_init_residual:
            logger.info("zero-initialised the last BN of %d residual blocks", zero_init_last_bn(self.backbone))
        if small_input_stem:
            use_small_input_stem(self.backbone)
        self.pretrained_method: str | None = None
        if pretrained is not None:
            if small_input_stem:
                raise ConfigError("pretrained weights have the ImageNet stem; drop small_input_stem to load them")
            loaded = load_backbone_state(pretrained, arch=arch, trust=trust_pretrained)
            report = load_weights(self.backbone, loaded, head=pretrained_head)
            self.pretrained_method = loaded.meta.get("method") or guess_method(str(pretrained))
            logger.info(
                "loaded %d tensors from %s (%s, method %s); fresh: %s",
                len(report.loaded),
                pretrained,
                loaded.source_format,
                self.pretrained_method,
                report.missing[:6],
            )
        self.arch, self.num_classes, self.wsol, self.large_feature_map = arch, num_classes, wsol, large_feature_map
        self.small_input_stem, self.pretrained = small_input_stem, pretrained

    @property
    def method(self) -> str:
        """The pretraining method behind these weights: 'baseline' | 'mixup' | 'cutout' | 'cutmix'.

        Fine-tuning from a `pretrained` checkpoint inherits that checkpoint's method (as recorded in it, or named
        in its file name); otherwise it is the method of this run's augment.
        """
        if self.pretrained_method is not None:
            return self.pretrained_method
        augment = getattr(self.data_preprocessor, "augment", None)
        return augment.method if isinstance(augment, BatchAugment) else "baseline"

    def checkpoint_meta(self) -> dict[str, Any]:
        """What the core loader and the report read from meta['cutmix_transfer']."""
        augment = getattr(self.data_preprocessor, "augment", None)
        meta = {
            "arch": self.arch,
            "method": self.method,
            "num_classes": self.num_classes,
            "wsol": self.wsol,
            "large_feature_map": self.large_feature_map,
            "small_input_stem": self.small_input_stem,
            "pretrained": self.pretrained,
            "pretrained_method": self.pretrained_method,
        }
        if isinstance(augment, BatchAugment):
            meta.update(
                augment_mode=augment.mode, beta=augment.beta, prob=augment.prob, cutout_size=augment.cutout_size
            )
        return meta

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: MixedBatch | torch.Tensor | None = None,
        mode: Literal["tensor", "loss", "predict"] = "tensor",
    ) -> Any:
        logits = self.backbone(inputs)
        if mode == "tensor":
            return logits
        if mode == "loss":
            if isinstance(data_samples, MixedBatch):
                return {"loss": data_samples.loss(logits)}
            if data_samples is None:
                raise ValueError("mode='loss' needs labels or a MixedBatch as data_samples")
            return {"loss": nn.functional.cross_entropy(logits, data_samples)}
        if mode == "predict":
            k = min(5, logits.shape[1])
            topk = logits.topk(k, dim=1).indices.cpu()
            labels = data_samples.target_a if isinstance(data_samples, MixedBatch) else data_samples
            labels = labels.tolist() if labels is not None else [None] * len(topk)
            return [{"gt_label": y, "pred_topk": t} for y, t in zip(labels, topk)]
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
