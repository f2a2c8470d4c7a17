"""BLEU-1..4 and METEOR recomputed from per-image sufficient statistics (cutmix_transfer/caption_stats.py): equal to
pycocoevalcap's scorers (the METEOR 1.5 jar) on all images and on explicitly repeated images, and the report's
intervals for them through captions.json."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.meteor.meteor import Meteor

from cutmix_transfer.caption_stats import (
    closest_ref_length,
    corpus_bleu,
    corpus_meteor,
    corpus_statistic,
    meteor_chunks,
    meteor_from_summed,
    parse_meteor_stats,
)
from cutmix_transfer.captioning.metrics import score_captions, simple_tokenize, to_percent
from cutmix_transfer.report.bootstrap import bootstrap_interval
from cutmix_transfer.report.table import add_intervals, build_rows, find_records
from cutmix_transfer.results import checkpoint_info, data_identity, make_record, write_record

REFS = {
    1: ["a man rides a horse along the beach", "a person on a horse near the sea", "a rider on a brown horse"],
    2: ["two dogs play in the snow", "dogs running through snow", "a pair of dogs in a snowy field"],
    3: ["a red bus parked by the road", "a bus on a city street", "the red bus is parked"],
    4: ["a cat sleeps on a wooden table", "a sleeping cat on a table", "a cat lying on the table"],
    5: ["a plate of food", "food on a white plate", "a meal served on a plate"],
    6: ["a boy throws a ball in the park", "a child playing with a ball", "a young boy with a ball outside"],
}
HYPS = {
    1: "a man on a horse",  # shorter than every reference: brevity penalty
    2: "two dogs play in the snow",  # one reference exactly: one METEOR chunk covering every word
    3: "zebra giraffe umbrella",  # nothing matches
    4: "on a table a cat sleeps",  # reordered: several chunks
    5: "a white plate with food on it next to a fork and a knife on a table",  # longer than every reference
    6: "ball",  # one word: no 2- to 4-grams
}
# count vectors over the images in sorted-id order (1..6): how often each image is in the resampled set
COUNTS = [
    [1, 1, 1, 1, 1, 1],
    [2, 0, 1, 3, 0, 1],
    [0, 3, 0, 0, 2, 1],  # long hypotheses dominate: no brevity penalty
    [4, 0, 0, 1, 0, 1],  # short hypotheses dominate: brevity penalty
    [0, 6, 0, 0, 0, 0],  # only the whole-chunk image: the jar adds none of its chunks
    [0, 0, 5, 0, 0, 0],  # only the image with no match
]

# Recorded from the METEOR 1.5 jar (pycocoevalcap, `-l en -norm`): SCORE replies and the EVAL scores of three images
# (refs 'a man rides a horse along the beach' | 'a person on a horse'; 'two dogs play in the snow'; 'a cat'; hyps
# 'a man riding a horse on a beach', 'dogs playing in snow', 'a cat').
JAR_STATS = [
    "8.0 8.0 4.0 3.0 2.0 2.0 2.0 2.0 1.0 1.0 0.0 0.0 0.0 1.0 1.0 0.0 1.0 1.0 1.0 1.0 1.0 8.0 8.0",
    "4.0 6.0 1.0 3.0 2.0 2.0 1.0 1.0 1.0 1.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 2.0 4.0 4.0",
    "2.0 2.0 1.0 1.0 1.0 1.0 1.0 1.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 1.0 2.0 2.0",
]
JAR_SEGMENT_SCORES = [0.8113191416602548, 0.35927290818773205, 1.0]
JAR_AGGREGATE = 0.48279470591004836

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")


def _repeated(captions: dict, ids: list, counts: list[int]) -> dict:
    """The image set with image ids[j] present counts[j] times (each copy under its own key)."""
    return {f"{i}#{c}": captions[i] for i, k in zip(ids, counts) for c in range(k)}


def _bleu(gts: dict, res: dict) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):  # the scorer prints its length statistics
        return Bleu(4).compute_score(gts, res, verbose=0)[0]


def test_bleu_from_stats_equals_pycocoevalcap_on_repeated_images():
    s = score_captions(REFS, HYPS, scorers=("bleu",), tokenizer="simple")
    ids, stats = s["image_ids"], np.array(s["per_image"]["bleu_stats"])
    assert ids == sorted(REFS) and stats.shape == (6, 10)
    # image 6 ('ball'): 1 word, closest reference 6 words (of 8, 6, 7), one unigram guessed and matched
    assert stats[5].tolist() == [1, 6, 1, 0, 0, 0, 1, 0, 0, 0]
    assert closest_ref_length(4, [2, 6, 3]) == 3 and closest_ref_length(4, [6, 2]) == 2  # a tie: the shorter
    full = corpus_bleu(np.ones(6), stats)[0]
    np.testing.assert_allclose(full, [s[f"BLEU-{n}"] for n in range(1, 5)], rtol=0, atol=1e-9)
    gts = simple_tokenize(REFS)
    res = simple_tokenize({i: [h] for i, h in HYPS.items()})
    ratios = []
    for counts in COUNTS:
        expected = _bleu(_repeated(gts, ids, counts), _repeated(res, ids, counts))
        np.testing.assert_allclose(corpus_bleu(np.array([counts]), stats)[0], expected, rtol=0, atol=1e-9)
        ratios.append(np.dot(counts, stats[:, 0]) / np.dot(counts, stats[:, 1]))
    assert min(ratios) < 1 < max(ratios)  # both sides of the brevity penalty
    # the report's statistic: every row of a count matrix at once, in percent
    w = np.array(COUNTS, dtype=np.float64)
    np.testing.assert_allclose(corpus_statistic("BLEU-3", stats)(w), 100 * corpus_bleu(w, stats)[:, 2])


def test_meteor_from_stats_matches_recorded_jar_values():
    stats = np.array([parse_meteor_stats(line) for line in JAR_STATS])
    np.testing.assert_allclose(meteor_from_summed(stats), JAR_SEGMENT_SCORES, rtol=0, atol=1e-12)
    assert corpus_meteor(np.ones(3), stats)[0] == pytest.approx(JAR_AGGREGATE, abs=1e-12)
    assert meteor_chunks(stats).tolist() == [0.0, 2.0, 0.0]  # whole one-chunk segments add no chunk
    with pytest.raises(ValueError, match="23 numbers"):
        parse_meteor_stats("1.0 2.0")
    with pytest.raises(ValueError, match="no corpus statistic"):
        corpus_statistic("CIDEr", stats)


@pytest.fixture(scope="module")
def scored() -> dict:
    """Every scorer on REFS / HYPS (one METEOR JVM; the simple tokenizer needs none)."""
    if shutil.which("java") is None:
        pytest.skip("METEOR needs Java")
    return score_captions(REFS, HYPS, tokenizer="simple")


@pytest.fixture(scope="module")
def jar_on_repeated(scored) -> list[float]:
    """pycocoevalcap's Meteor (the jar's EVAL aggregate) on each COUNTS image set, in one JVM."""
    gts = simple_tokenize(REFS)
    res = simple_tokenize({i: [h] for i, h in HYPS.items()})
    ids = scored["image_ids"]
    m = Meteor()
    try:
        return [m.compute_score(_repeated(gts, ids, c), _repeated(res, ids, c))[0] for c in COUNTS]
    finally:
        m.meteor_p.stdin.close()
        m.meteor_p.kill()
        m.meteor_p.wait()


@needs_java
def test_meteor_from_stats_equals_the_jar(scored, jar_on_repeated):
    stats = np.array(scored["per_image"]["meteor_stats"])
    assert stats.shape == (6, 23)
    np.testing.assert_allclose(meteor_from_summed(stats), scored["per_image"]["METEOR"], rtol=0, atol=1e-9)
    assert corpus_meteor(np.ones(6), stats)[0] == pytest.approx(scored["METEOR"], abs=1e-9)
    got = corpus_meteor(np.array(COUNTS), stats)
    np.testing.assert_allclose(got, jar_on_repeated, rtol=0, atol=1e-6)
    assert got[5] == 0.0 and 0.9 < got[4] <= 1.0
    # the data exercise the chunk rule: summing the raw chunks would give other scores
    assert meteor_chunks(stats)[1] == 0 and stats[1, 20] == 1
    assert meteor_from_summed(np.array(COUNTS, dtype=np.float64) @ stats)[4] < got[4] - 0.05


@needs_java
def test_report_gives_bleu_and_meteor_intervals(scored, tmp_path: Path):
    ids = scored["image_ids"]
    rows = [{"image_id": i, **{k: v[j] for k, v in scored["per_image"].items()}} for j, i in enumerate(ids)]
    (tmp_path / "captions.json").write_text(json.dumps(rows))
    metrics = to_percent(scored)
    ckpt = checkpoint_info("resnet18_cutmix.pth", "ab" * 32, "resnet18")
    rec = make_record("captioning", ckpt, "coco:x", "test", metrics, data=data_identity("coco:x", "test", None, ids))
    write_record(tmp_path, rec)
    records = find_records([tmp_path])
    (row,) = build_rows(records)
    notes: list[str] = []
    add_intervals([row], records, resamples=200, seed=3, notes=notes)
    assert not notes
    for col in ("BLEU-1", "BLEU-4", "METEOR", "CIDEr"):
        ci = row.intervals[col]
        assert ci.value == pytest.approx(metrics[col], abs=1e-6) and ci.n == 6 and ci.low < ci.high
        stats = np.array([r["meteor_stats" if col == "METEOR" else "bleu_stats"] for r in rows])
        if col != "CIDEr":
            direct = bootstrap_interval(corpus_statistic(col, stats), 6, 200, seed=3)
            assert (ci.low, ci.high) == pytest.approx((direct.low, direct.high))
