"""Caption a split with a trained NIC checkpoint, score it with the COCO metrics, write the record and a figure.

Outputs in `out`: results.json (kind 'captioning'; BLEU-1..4, METEOR, ROUGE-L, CIDEr in percent; the
`checkpoint` block is the BACKBONE the captioner was fine-tuned from, so the report lines it up with the same
backbone's WSOL and detection numbers; the captioner's own file and sha256 are in `captioner_checkpoint`),
captions.json (COCO results format [{image_id, caption}] plus per-image scores and the per-image BLEU / METEOR
sufficient statistics `bleu_stats` / `meteor_stats`, from which the report recomputes the corpus BLEU and METEOR of
a resampled image set: cutmix_transfer/caption_stats.py) and samples.png.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoints import PROJECT_META_KEY, check_state_fits, safe_torch_load
from ..datasets.common import load_rgb
from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_bytes, atomic_write_json, sha256_file
from ..results import (
    TRAIN_SEED,
    TRAIN_SEED_META,
    WrittenRecord,
    checkpoint_info,
    data_identity,
    make_record,
    write_record,
)
from ..runner import load_config
from .data import CocoCaptionDataset
from .metrics import METRIC_NAMES, SPICE_NOTE, score_captions, to_percent
from .model import NICCaptioner
from .train import CONFIGS_HINT, REQUIRED_KEYS

logger = logging.getLogger(__name__)


@dataclass
class CaptionEval(WrittenRecord):
    """What evaluate_captioner produced: the record, where it went, the generated captions."""

    captions: dict[int, str]


def load_captioner(
    checkpoint: str | os.PathLike, cfg_model: dict | None = None, trust: bool = False
) -> tuple[NICCaptioner, dict]:
    """Rebuild a NICCaptioner from a checkpoint written by tools/train_caption.py; -> (model in eval mode, meta).

    The vocabulary, arch and sizes come from the checkpoint's meta[PROJECT_META_KEY]; `cfg_model` may add
    decoding settings (beam_size, length_norm). Weights must fit exactly. The returned meta adds TRAIN_SEED: the
    fine-tuning run's seed (mmengine's meta['seed']), None when the file does not say.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"captioner checkpoint {path} not found: pass a .pth that tools/train_caption.py wrote")
    obj = safe_torch_load(path, trust=trust)
    file_meta = (obj.get("meta") or {}) if isinstance(obj, dict) else {}
    meta = dict(file_meta.get(PROJECT_META_KEY) or {})
    if meta.get("task") != "captioning" or "vocab" not in meta:
        raise CheckpointError(
            f"{path} is not a NIC captioner checkpoint (its meta has no captioning vocabulary); "
            f"train one with tools/train_caption.py, or pass a backbone to it with --backbone"
        )
    state = obj.get("state_dict", obj)
    kw = {k: v for k, v in (cfg_model or {}).items() if k in ("beam_size", "length_norm", "norm_eval")}
    model = NICCaptioner(
        vocab=meta["vocab"],
        arch=meta["arch"],
        embed_dim=meta["embed_dim"],
        hidden_dim=meta["hidden_dim"],
        dropout=meta.get("dropout", 0.5),
        max_len=meta["max_len"],
        image_norm=bool(meta.get("image_norm", False)),
        **kw,
    )
    check_state_fits(model, state, path, "the NIC model its meta describes")
    model.load_state_dict({k: state[k] for k in model.state_dict()})
    model.encoder_info = dict(meta.get("encoder") or model.encoder_info)
    meta[TRAIN_SEED] = file_meta.get(TRAIN_SEED_META)
    return model.eval(), meta


def caption_dataset(
    model: NICCaptioner,
    dataset: CocoCaptionDataset,
    batch_size: int = 32,
    num_workers: int = 0,
    beam_size: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[int, dict[str, Any]]:
    """Beam-search a caption for every image of `dataset`: {image_id: {'caption', 'score', 'tokens'}}."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    model = model.to(device).eval()
    out: dict[int, dict[str, Any]] = {}
    for batch in tqdm(loader, desc="captioning", disable=not progress):
        res = model.generate(batch["inputs"].to(device), beam_size=beam_size)
        for i, t, n, s in zip(batch["image_id"].tolist(), res.tokens.cpu(), res.lengths.cpu(), res.scores.cpu()):
            ids = t[: int(n)].tolist()
            out[int(i)] = {"caption": model.vocab.decode(ids), "score": float(s), "tokens": ids}
    return out


def sample_figure(
    dataset: CocoCaptionDataset,
    captions: dict[int, str],
    path: str | os.PathLike,
    num: int = 8,
    seed: int = 0,
    title: str = "",
) -> Path:
    """A grid of `num` images (seeded choice) with the generated caption (bold) and two references under each."""
    import matplotlib

    matplotlib.use("Agg")
    import io
    import textwrap

    import matplotlib.pyplot as plt

    items = [it for it in dataset.items if it.image_id in captions]
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(items), size=min(num, len(items)), replace=False).tolist())
    cols = min(4, len(pick))
    rows = -(-len(pick) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, k in zip(axes.ravel(), pick):
        it = items[k]
        ax.imshow(load_rgb(it.path).resize((224, 224)))  # one square size: the captions line up under every image
        gen = textwrap.fill("gen: " + (captions[it.image_id] or "(empty)"), 44)
        refs = "\n".join(textwrap.fill("ref: " + r, 44) for r in it.captions[:2])
        ax.set_title(f"id {it.image_id}", fontsize=8)
        ax.text(0.0, -0.03, gen, transform=ax.transAxes, va="top", fontsize=8, fontweight="bold", color="#1f4e9e")
        ax.text(
            0.0,
            -0.03 - 0.05 * (gen.count("\n") + 1),
            refs,
            transform=ax.transAxes,
            va="top",
            fontsize=7,
            color="#333333",
        )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(hspace=0.9, wspace=0.15, top=0.92 if title else 0.97, bottom=0.12)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def evaluate_captioner(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    split: str = "test",
    beam_size: int = 3,
    seed: int = 0,
    trust: bool = False,
    cfg_options: dict | None = None,
    data_root: str | None = None,
    device: str | None = None,
    scorers: Sequence[str] = ("bleu", "meteor", "rouge", "cider"),
    num_figure: int = 8,
    progress: bool = True,
) -> CaptionEval:
    """Caption `split` of the config's test data with `checkpoint`, score it, write record + captions + figure."""
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"--beam must be a positive integer, got {beam_size!r}")
    torch.manual_seed(seed)
    cfg = load_config(config, cfg_options, where=CONFIGS_HINT, required=REQUIRED_KEYS)
    loader_cfg = cfg.get("test_dataloader") or cfg.get("val_dataloader")
    if loader_cfg is None:
        raise ConfigError(f"config {config} has no test_dataloader or val_dataloader to take the data from")
    model, meta = load_captioner(checkpoint, cfg.model, trust=trust)
    ds_cfg = {k: v for k, v in dict(loader_cfg.dataset).items() if k not in ("type", "vocab", "train")}
    ds_cfg["split"] = split
    if data_root is not None:
        ds_cfg["root"] = str(data_root)
    dataset = CocoCaptionDataset(train=False, **ds_cfg)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    gen = caption_dataset(
        model,
        dataset,
        batch_size=int(loader_cfg.get("batch_size", 32)),
        num_workers=int(loader_cfg.get("num_workers", 0)),
        beam_size=beam_size,
        device=device,
        progress=progress,
    )
    hyps = {i: g["caption"] for i, g in gen.items()}
    scores = score_captions(dataset.references(), hyps, scorers=scorers)
    metrics = to_percent(scores)
    out = Path(out) if out is not None else Path(checkpoint).parent / f"test_{Path(checkpoint).stem}_{split}"
    per_image = scores["per_image"]
    rows = [
        {
            "image_id": i,
            "caption": gen[i]["caption"],
            "log_prob": gen[i]["score"],
            **{name: vals[k] for name, vals in per_image.items()},
        }
        for k, i in enumerate(scores["image_ids"])
    ]
    atomic_write_json(out / "captions.json", rows)
    fig = sample_figure(
        dataset,
        hyps,
        out / "samples.png",
        num=num_figure,
        seed=seed,
        title=f"NIC {meta['arch']} beam {beam_size} on {split}: BLEU-4 {metrics.get('BLEU-4', 0):.1f}"
        f" CIDEr {metrics.get('CIDEr', 0):.1f}",
    )
    enc = meta.get("encoder") or {}
    ckpt_sha = sha256_file(checkpoint)
    if enc.get("sha256"):
        block = checkpoint_info(enc["path"], enc["sha256"], meta["arch"], enc.get("method"))
    else:  # trained from random weights: the captioner is its own row
        block = checkpoint_info(checkpoint, ckpt_sha, meta["arch"], None)
    record = make_record(
        "captioning",
        block,
        dataset=f"coco:{ds_cfg.get('root')}",
        split=split,
        metrics=metrics,
        data=data_identity(f"coco:{ds_cfg.get('root')}", split, ds_cfg.get("root"), scores["image_ids"]),
        unavailable={"SPICE": SPICE_NOTE, **{k: "not computed" for k in METRIC_NAMES if k not in metrics}},
        captioner_checkpoint={"path": str(checkpoint), "sha256": ckpt_sha},
        encoder_pretrained=bool(enc.get("sha256")),
        encoder_freeze=bool(meta.get("freeze_encoder")),
        source=str(ds_cfg.get("source", "auto")),
        num_images=len(hyps),
        beam_size=beam_size,
        max_len=meta["max_len"],
        vocab_size=len(meta["vocab"]),
        tokenizer=scores["tokenizer"],
        cider_variant="CIDEr-D (pycocoevalcap Cider: clipped counts, Gaussian length penalty sigma 6, x10)",
        notes=scores["notes"],
        config=str(config),
        seed=seed,  # the sample figure's seed; the fine-tuning seed is TRAIN_SEED
        **{TRAIN_SEED: meta[TRAIN_SEED]},
        captions=str(out / "captions.json"),
        figure=str(fig),
    )
    path = write_record(out, record)
    logger.info("captioning %s: %s -> %s", split, ", ".join(f"{k} {v:.1f}" for k, v in metrics.items()), path)
    return CaptionEval(record=record, path=path, captions=hyps)
