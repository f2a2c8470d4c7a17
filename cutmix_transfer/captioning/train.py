"""Fine-tune NIC on COCO captions on mmengine's Runner, with the encoder from any backbone checkpoint.

Before the Runner starts, the vocabulary is built from the training split's captions (count threshold from the
config's `vocab_min_count`) and written to `<work_dir>/vocab.json`; the model and the training dataset read it
from there. The encoder's own learning rate is `optim_wrapper.paramwise_cfg.custom_keys['encoder'].lr_mult`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mmengine.config import Config

from ..datasets.coco_captions import load_coco_captions
from ..distributed import Launcher
from ..errors import ConfigError
from ..runner import apply_run_options, load_config, train_run
from .data import training_tokens
from .vocab import Vocabulary, build_vocab

logger = logging.getLogger(__name__)
VOCAB_FILE = "vocab.json"
# runner.load_config's arguments for a captioning config: where they live, the keys every one must have
CONFIGS_HINT = "configs/caption/ (nic_demo.py for the demo data)"
REQUIRED_KEYS = ("model", "train_dataloader")


def prepare_vocab(cfg: Config, work_dir: str) -> tuple[Vocabulary, Path]:
    """Build the vocabulary from the config's training split and write `<work_dir>/vocab.json`.

    A vocab.json already in the work dir (a resumed run) must equal the rebuilt one: a changed vocabulary would
    silently scramble the trained embeddings, so that is a ConfigError.
    """
    ds = cfg.train_dataloader.dataset
    items = load_coco_captions(
        ds.root, ds.split, source=ds.get("source", "auto"), karpathy_json=ds.get("karpathy_json"), check_files=False
    )
    if ds.get("max_images") is not None:
        items = items[: int(ds.max_images)]
    vocab = build_vocab(training_tokens(items), min_count=int(cfg.get("vocab_min_count", 5)))
    path = Path(work_dir) / VOCAB_FILE
    if path.is_file():
        old = Vocabulary.load(path)
        if old != vocab:
            raise ConfigError(
                f"{path} ({len(old)} words) differs from the vocabulary of {ds.root} split "
                f"{ds.split} ({len(vocab)} words): the data or vocab_min_count changed. Use a new "
                f"--work-dir, or delete {path} to start over."
            )
    vocab.save(path)  # every rank writes the same bytes atomically: no rank reads a half-written file
    logger.info(
        "vocabulary: %d tokens (min count %s, from %d captions of %d images) -> %s",
        len(vocab),
        cfg.get("vocab_min_count", 5),
        sum(len(it.tokens) for it in items),
        len(items),
        path,
    )
    return vocab, path


def train_captioner(
    config: str | os.PathLike,
    backbone: str | None = None,
    freeze_encoder: bool = False,
    work_dir: str | None = None,
    cfg_options: dict | None = None,
    resume: bool = False,
    seed: int | None = None,
    trust_checkpoint: bool = False,
    launcher: Launcher = "none",
    data_root: str | None = None,
) -> dict[str, Any]:
    """Train NIC as the config says; -> {'work_dir', 'checkpoint', 'vocab', 'vocab_size', 'metrics'}.

    `backbone` (any checkpoint the core loader reads) overrides the config's `model.backbone_checkpoint`;
    `freeze_encoder` trains the decoder only; `resume` continues from the work dir's last checkpoint;
    `data_root` replaces the root of every caption dataset in the config.
    """
    cfg = load_config(config, cfg_options, where=CONFIGS_HINT, required=REQUIRED_KEYS)
    apply_run_options(cfg, config, work_dir, resume=resume, seed=seed, launcher=launcher)
    if data_root is not None:
        for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
            if cfg.get(key) is not None:
                cfg[key].dataset.root = str(data_root)
    vocab, vocab_path = prepare_vocab(cfg, cfg.work_dir)
    cfg.model.vocab = str(vocab_path)
    cfg.train_dataloader.dataset.vocab = str(vocab_path)
    if backbone is not None:  # the checkpoint's own arch wins over the config's default encoder
        cfg.model.backbone_checkpoint = str(backbone)
        cfg.model.arch = None
    if cfg.model.get("backbone_checkpoint") and not Path(cfg.model.backbone_checkpoint).is_file():
        raise ConfigError(
            f"backbone checkpoint {cfg.model.backbone_checkpoint} not found; pass --backbone CKPT "
            f"(a classification checkpoint: CutMix-PyTorch, torchvision, tools/train_cls.py, ...)"
        )
    if not cfg.model.get("backbone_checkpoint"):
        logger.warning("no backbone checkpoint: the NIC encoder starts from random weights")
    if trust_checkpoint:
        cfg.model.trust_checkpoint = True
    if freeze_encoder:
        cfg.model.freeze_encoder = True
    _, ckpt, metrics = train_run(cfg, ("BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr", "METEOR"))
    logger.info("captioner trained: checkpoint %s; last validation %s", ckpt, metrics or "none")
    return {
        "work_dir": cfg.work_dir,
        "checkpoint": ckpt,
        "vocab": str(vocab_path),
        "vocab_size": len(vocab),
        "metrics": metrics,
    }
