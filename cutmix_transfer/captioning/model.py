"""NIC (Show and Tell, Vinyals et al. 2015) on mmengine: a CNN encoder from any backbone checkpoint and an LSTM.

The encoder's globally average-pooled feature is projected to the word-embedding size and fed as the LSTM's
first input (x_-1 = W_I GAP(CNN(I))); then <start>, w_1 .. w_n are fed and the outputs predict w_1 .. w_n, <end>.
The loss is the per-word cross-entropy on those predictions (padding ignored). Dropout acts on the LSTM inputs
(image and word embeddings) and on its output before the word classifier.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from ..backbones import CAMNet, build_from_checkpoint, build_model
from ..errors import ConfigError
from ..results import guess_method
from .decode import BeamOutput, State, beam_search
from .vocab import PAD_ID, Vocabulary

logger = logging.getLogger(__name__)


def _as_vocab(vocab: Vocabulary | Sequence[str] | str) -> Vocabulary:
    if isinstance(vocab, Vocabulary):
        return vocab
    if isinstance(vocab, str):
        return Vocabulary.load(vocab)
    return Vocabulary(list(vocab))


@MODELS.register_module(name="NICCaptioner")
class NICCaptioner(BaseModel):
    """Show and Tell with a CAMNet encoder (ResNet / VGG16-GAP from `build_model` or a checkpoint).

    forward(inputs (B, 3, H, W) normalised images, captions (B, S, T) int64 <start> .. <end> <pad>.. targets, S
    captions per image, image_id (B,)): mode 'loss' -> {'loss'}; 'predict' -> one dict per image
    {'image_id', 'tokens' (list[int]), 'caption' (str), 'score' (float)}; 'tensor' -> (B*S, T-1, V) logits.
    """

    def __init__(
        self,
        vocab: Vocabulary | Sequence[str] | str,
        arch: str | None = "resnet50",
        backbone_checkpoint: str | None = None,
        trust_checkpoint: bool = False,
        embed_dim: int = 512,
        hidden_dim: int = 512,
        dropout: float = 0.5,
        freeze_encoder: bool = False,
        norm_eval: bool = True,
        max_len: int = 16,
        beam_size: int = 3,
        length_norm: bool = False,
        image_norm: bool = False,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        """`backbone_checkpoint`: any checkpoint the core loader reads (its fc head is dropped); arch=None takes the
        checkpoint's. `freeze_encoder`: encoder weights fixed and in eval mode. `norm_eval`: the encoder's
        BatchNorm layers keep their pretrained statistics while training (small caption batches). `image_norm`:
        BatchNorm1d on the image embedding (not in Show and Tell; common in PyTorch NIC re-implementations, and on
        the demo it makes the captions depend on the image sooner)."""
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.vocab = _as_vocab(vocab)
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.encoder_info: dict[str, Any] = {"path": None, "sha256": None, "source_format": None, "method": None}
        if backbone_checkpoint:
            encoder, loaded, report = build_from_checkpoint(
                backbone_checkpoint, arch=arch, num_classes=1, wsol=False, trust=trust_checkpoint, head="drop"
            )
            self.encoder_info = {
                "path": str(backbone_checkpoint),
                "sha256": loaded.sha256,
                "source_format": loaded.source_format,
                "method": loaded.meta.get("method") or guess_method(str(backbone_checkpoint)),
            }
            logger.info(
                "NIC encoder %s from %s (%s): %s",
                loaded.arch,
                backbone_checkpoint,
                loaded.source_format,
                report.summary(),
            )
        else:
            if arch is None:
                raise ConfigError(
                    "NICCaptioner needs an arch when no backbone_checkpoint is given "
                    "(e.g. arch='resnet50'), or pass --backbone CKPT"
                )
            encoder = build_model(arch, 1)
            logger.info("NIC encoder %s freshly initialised (no backbone checkpoint)", arch)
        self.arch = encoder.arch
        self.feat_dim = encoder.feature_dim
        encoder.fc = nn.Identity()  # the classifier head is not part of the encoder
        self.encoder: CAMNet = encoder
        self.img_proj = nn.Linear(self.feat_dim, embed_dim)
        self.img_norm = nn.BatchNorm1d(embed_dim) if image_norm else nn.Identity()
        self.embed = nn.Embedding(len(self.vocab), embed_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=1, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.logit = nn.Linear(hidden_dim, len(self.vocab))
        self._init_decoder()
        self.embed_dim, self.hidden_dim, self.dropout_p = embed_dim, hidden_dim, float(dropout)
        self.max_len, self.beam_size, self.length_norm = int(max_len), int(beam_size), bool(length_norm)
        self.freeze_encoder, self.norm_eval, self.image_norm = bool(freeze_encoder), bool(norm_eval), bool(image_norm)
        if self.freeze_encoder:
            for p in self.encoder.parameters():
                p.requires_grad_(False)
            self.encoder.eval()

    def _init_decoder(self) -> None:
        """Show and Tell / im2txt: uniform(-0.08, 0.08) for the decoder weights, zero biases."""
        for m in (self.img_proj, self.embed, self.lstm, self.logit):
            for name, p in m.named_parameters():
                if "bias" in name:
                    nn.init.zeros_(p)
                else:
                    nn.init.uniform_(p, -0.08, 0.08)

    def train(self, mode: bool = True) -> NICCaptioner:
        """As nn.Module.train, but a frozen encoder stays in eval mode and, with norm_eval, so do its BN layers."""
        super().train(mode)
        if mode and self.freeze_encoder:
            self.encoder.eval()
        elif mode and self.norm_eval:
            for m in self.encoder.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    # ------------------------------------------------------------------ parts
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, E) image embeddings W_I GAP(features) (BatchNorm1d'd with image_norm; before dropout)."""
        if self.freeze_encoder:
            with torch.no_grad():
                feats = self.encoder.features(images)
        else:
            feats = self.encoder.features(images)
        return self.img_norm(self.img_proj(feats.mean(dim=(2, 3))))

    def init_state(self, img_emb: torch.Tensor) -> State:
        """LSTM state after reading the image embedding (B, E): ((1, B, H), (1, B, H))."""
        _, state = self.lstm(self.drop(img_emb)[:, None, :])
        return state

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One word: tokens (N,) int64 and state -> ((N, V) log-probabilities of the next word, new state)."""
        out, state = self.lstm(self.drop(self.embed(tokens))[:, None, :], state)
        return F.log_softmax(self.logit(self.drop(out[:, 0])), dim=-1), state

    def sequence_logits(self, img_emb: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: img_emb (N, E), captions (N, T) <start> w .. <end> <pad> -> (N, T-1, V) logits, where
        position t predicts captions[:, t + 1]."""
        words = self.embed(captions[:, :-1])
        x = self.drop(torch.cat([img_emb[:, None, :], words], dim=1))
        out, _ = self.lstm(x)
        return self.logit(self.drop(out[:, 1:]))

    def caption_loss(self, img_emb: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the non-padding target words of (N, T) captions."""
        T = int((captions != PAD_ID).sum(dim=1).max())  # trim trailing all-padding columns
        captions = captions[:, :T]
        logits = self.sequence_logits(img_emb, captions)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), captions[:, 1:].reshape(-1), ignore_index=PAD_ID)

    @torch.inference_mode()
    def generate(self, images: torch.Tensor, beam_size: int | None = None, max_len: int | None = None) -> BeamOutput:
        """Beam-search captions for (B, 3, H, W) images (eval mode is the caller's business)."""
        return beam_search(
            self,
            self.encode(images),
            beam_size=beam_size or self.beam_size,
            max_len=max_len or self.max_len,
            length_norm=self.length_norm,
        )

    # ------------------------------------------------------------------ mmengine
    def forward(
        self,
        inputs: torch.Tensor,
        captions: torch.Tensor | None = None,
        image_id: torch.Tensor | Sequence[int] | None = None,
        mode: Literal["tensor", "loss", "predict"] = "tensor",
    ) -> Any:
        if mode in ("loss", "tensor"):
            if captions is None:
                raise ValueError(f"mode={mode!r} needs captions (B, S, T)")
            if captions.dim() == 2:
                captions = captions[:, None]
            B, S, T = captions.shape
            emb = self.encode(inputs).repeat_interleave(S, dim=0)
            flat = captions.reshape(B * S, T)
            if mode == "tensor":
                return self.sequence_logits(emb, flat)
            return {"loss": self.caption_loss(emb, flat)}
        if mode == "predict":
            out = self.generate(inputs)
            ids = image_id.tolist() if isinstance(image_id, torch.Tensor) else list(image_id or [None] * len(inputs))
            return [
                {
                    "image_id": None if i is None else int(i),
                    "tokens": t[:n].tolist(),
                    "caption": self.vocab.decode(t[:n].tolist()),
                    "score": float(s),
                }
                for i, t, n, s in zip(ids, out.tokens.cpu(), out.lengths.cpu(), out.scores.cpu())
            ]
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")

    def checkpoint_meta(self) -> dict[str, Any]:
        """What tools/test_caption.py needs to rebuild the model, and the encoder's provenance for the record."""
        return {
            "task": "captioning",
            "arch": self.arch,
            "vocab": list(self.vocab.words),
            "embed_dim": self.embed_dim,
            "hidden_dim": self.hidden_dim,
            "dropout": self.dropout_p,
            "max_len": self.max_len,
            "image_norm": self.image_norm,
            "freeze_encoder": self.freeze_encoder,
            "encoder": dict(self.encoder_info),
            "method": self.encoder_info.get("method"),
        }
