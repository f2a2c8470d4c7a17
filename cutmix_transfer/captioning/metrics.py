"""COCO caption metrics through pycocoevalcap: PTB tokenizer, BLEU-1..4, METEOR, ROUGE-L, CIDEr-D.

What the numbers are (read from pycocoevalcap 1.2's source):
- the PTB tokenizer (Stanford CoreNLP 3.4.1, lower-cased, punctuation removed) runs on hypotheses and references;
- BLEU: corpus-level BLEU-n with the 'closest' reference length brevity penalty (coco-caption's); each image's
  sufficient statistics (lengths, n-gram counts and clipped matches) are kept so that the report can recompute it
  on a resampled image set (cutmix_transfer/caption_stats.py);
- METEOR 1.5 (Java, `-l en -norm`), corpus score from the jar's aggregate statistics; each image's statistics
  (the jar's SCORE reply, which compute_score sums in its EVAL line) are kept for the same reason;
- ROUGE-L: per-image F-measure (beta 1.2) of the longest common subsequence, best over the references, averaged;
- CIDEr: `pycocoevalcap.cider` is CIDEr-D, what the COCO server reports as "CIDEr": clipped n-gram counts
  (min(hyp, ref)), a Gaussian length penalty (sigma 6), x10, IDF from the evaluated split's references (no
  stemming, unlike the CIDEr paper's CIDEr-D).
- SPICE needs Stanford CoreNLP models downloaded at first use and fails offline, and COCOEvalCap.evaluate()
  always builds SPICE, so the scorers are called one by one and SPICE is reported as unavailable.
All scores here are fractions (BLEU 1.0 for identical captions, CIDEr-D can exceed 1); the record multiplies by 100.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from ..caption_stats import BLEU_STATS_KEY, METEOR_STATS_KEY, bleu_image_stats, parse_meteor_stats
from ..datasets.text import tokenize
from ..errors import ConfigError

logger = logging.getLogger(__name__)

METRIC_NAMES = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
SCORERS = ("bleu", "meteor", "rouge", "cider")
SPICE_NOTE = (
    "SPICE not computed: it needs Stanford CoreNLP models that pycocoevalcap downloads at first use, "
    "and there is no network access here"
)


def _need_java(what: str) -> None:
    if shutil.which("java") is None:
        raise ConfigError(
            f"{what} needs Java (a `java` on PATH), which was not found; install a JRE "
            f"(e.g. apt-get install openjdk-17-jre-headless) or score with tokenizer='simple' and "
            f"without METEOR"
        )


def ptb_tokenize(captions: Mapping[Any, Sequence[str]]) -> dict[Any, list[str]]:
    """{id: [caption, ...]} -> {id: [PTB-tokenised lower-case caption without punctuation, ...]} (Java)."""
    _need_java("the PTB tokenizer")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    payload = {k: [{"caption": c} for c in v] for k, v in captions.items()}
    try:
        return PTBTokenizer().tokenize(payload)
    except PermissionError as e:
        import pycocoevalcap

        raise ConfigError(
            f"the PTB tokenizer writes a temporary file into {os.path.dirname(pycocoevalcap.__file__)}"
            f" and cannot ({e}); install pycocoevalcap into a writable environment (a venv)"
        ) from e


def simple_tokenize(captions: Mapping[Any, Sequence[str]]) -> dict[Any, list[str]]:
    """A Java-free stand-in for the PTB tokenizer (lower-case [a-z0-9] runs), for quick validation only."""
    return {k: [" ".join(tokenize(c)) for c in v] for k, v in captions.items()}


def score_captions(
    references: Mapping[Any, Sequence[str]],
    hypotheses: Mapping[Any, str],
    scorers: Iterable[str] = SCORERS,
    tokenizer: str = "ptb",
) -> dict[str, Any]:
    """Score one hypothesis per image against its references with the COCO caption scorers.

    references {image_id: [raw captions]} and hypotheses {image_id: raw caption} must cover the same images.
    Returns {'BLEU-1'..'BLEU-4', 'METEOR', 'ROUGE-L', 'CIDEr': fraction (as pycocoevalcap gives it), 'SPICE':
    None, 'per_image': {name: [per-image scores in sorted-id order], 'bleu_stats' / 'meteor_stats': [per-image
    sufficient statistics, caption_stats.py]}, 'image_ids': [...], 'notes': [...]}.
    """
    scorers = tuple(scorers)
    unknown = [s for s in scorers if s not in SCORERS]
    if unknown:
        raise ConfigError(f"unknown caption scorers {unknown}: choose from {', '.join(SCORERS)}")
    if tokenizer not in ("ptb", "simple"):
        raise ConfigError(f"tokenizer must be 'ptb' or 'simple', got {tokenizer!r}")
    ref_ids, hyp_ids = set(references), set(hypotheses)
    if ref_ids != hyp_ids:
        raise ValueError(
            f"hypotheses and references must cover the same images: {len(hyp_ids - ref_ids)} "
            f"hypotheses without references, {len(ref_ids - hyp_ids)} references without a hypothesis"
        )
    if not ref_ids:
        raise ValueError("nothing to score: no images")
    empty = [k for k, v in references.items() if not v]
    if empty:
        raise ValueError(f"{len(empty)} images have no reference caption, e.g. {empty[0]!r}")
    ids = sorted(ref_ids)
    tok = ptb_tokenize if tokenizer == "ptb" else simple_tokenize
    gts = tok({i: list(references[i]) for i in ids})
    res = tok({i: [hypotheses[i]] for i in ids})
    out: dict[str, Any] = {"per_image": {}, "image_ids": ids, "notes": [SPICE_NOTE], "tokenizer": tokenizer}
    for name in scorers:
        if name == "bleu":
            from pycocoevalcap.bleu.bleu import Bleu
            from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):  # the BLEU scorer prints its length statistics
                score, per = Bleu(4).compute_score(gts, res)
            logger.debug("BLEU scorer: %s", buf.getvalue().strip())
            for n in range(4):
                out[f"BLEU-{n + 1}"] = float(score[n])
                out["per_image"][f"BLEU-{n + 1}"] = [float(x) for x in per[n]]
            # each image's statistics cooked as Bleu cooks them (BleuScorer += (hypothesis, references))
            cooked = [cook_test(res[i][0], cook_refs(gts[i])) for i in ids]
            out["per_image"][BLEU_STATS_KEY] = [
                bleu_image_stats(c["testlen"], c["reflen"], c["guess"], c["correct"]) for c in cooked
            ]
        elif name == "meteor":
            out["METEOR"], per, stats = _meteor(gts, res)
            if out["METEOR"] is None:
                out["notes"].append("METEOR failed (see the log): the Java process gave no score")
            else:
                out["per_image"]["METEOR"], out["per_image"][METEOR_STATS_KEY] = per, stats
        elif name == "rouge":
            from pycocoevalcap.rouge.rouge import Rouge

            score, per = Rouge().compute_score(gts, res)
            out["ROUGE-L"], out["per_image"]["ROUGE-L"] = float(score), [float(x) for x in per]
        elif name == "cider":
            from pycocoevalcap.cider.cider import Cider

            score, per = Cider().compute_score(gts, res)
            out["CIDEr"], out["per_image"]["CIDEr"] = float(score), [float(x) for x in per]
    out["SPICE"] = None
    return out


def _meteor(gts: dict, res: dict) -> tuple[float | None, list[float], list[list[float]]]:
    """METEOR 1.5 through its Java process (about 1.5 GB): (corpus score, per-image scores, per-image statistics),
    images in the order of `gts`; (None, [], []) when the process fails. The process is always stopped."""
    _need_java("METEOR")
    from pycocoevalcap.meteor.meteor import Meteor

    m = Meteor()
    lines: list[str] = []
    score_line = m._stat

    def keep_stats(hypothesis: str, references: list[str]) -> str:
        # compute_score asks the jar for each image's statistics (its SCORE reply) and sends their list back in
        # one EVAL line; keeping them lets the report re-sum them over resampled images (caption_stats.py)
        line = score_line(hypothesis, references)
        lines.append(line)
        return line

    m._stat = keep_stats
    try:
        score, per = m.compute_score(gts, res)
        return float(score), [float(x) for x in per], [parse_meteor_stats(line) for line in lines]
    except (ValueError, BrokenPipeError, OSError) as e:
        err = b""
        try:
            m.meteor_p.kill()
            err = m.meteor_p.stderr.read() or b""
        except OSError:
            pass
        logger.error("METEOR failed (%s: %s); java said: %s", type(e).__name__, e, err.decode(errors="replace")[-500:])
        if m.lock.locked():
            m.lock.release()
        return None, [], []
    finally:
        with contextlib.suppress(OSError, ValueError):
            m.meteor_p.stdin.close()
        m.meteor_p.kill()
        m.meteor_p.wait()


def to_percent(scores: Mapping[str, Any]) -> dict[str, float]:
    """The headline metrics x100 (the paper's table), skipping those not computed."""
    return {k: 100.0 * float(scores[k]) for k in METRIC_NAMES if scores.get(k) is not None}


@METRICS.register_module(name="CaptionMetric")
class CaptionMetric(BaseMetric):
    """mmengine metric: collects the model's predicted captions and scores them against
    `dataset_meta['references']`; returns percentages. Validation default: BLEU, ROUGE-L and CIDEr-D with the PTB
    tokenizer (METEOR's JVM is left to tools/test_caption.py)."""

    default_prefix = None

    def __init__(
        self,
        scorers: Sequence[str] = ("bleu", "rouge", "cider"),
        tokenizer: str = "ptb",
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.scorers, self.tokenizer = tuple(scorers), tokenizer

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            self.results.append({"image_id": int(s["image_id"]), "caption": str(s["caption"])})

    def compute_metrics(self, results: list) -> dict[str, float]:
        refs_all = (self.dataset_meta or {}).get("references")
        if not refs_all:
            raise ConfigError(
                "CaptionMetric needs the dataset's references (dataset_meta['references']); use the "
                "CocoCaptions dataset in the val/test dataloader"
            )
        hyps = {r["image_id"]: r["caption"] for r in results}  # a distributed sampler may repeat images
        refs = {i: refs_all[i] for i in hyps}
        scores = score_captions(refs, hyps, scorers=self.scorers, tokenizer=self.tokenizer)
        return to_percent(scores)
