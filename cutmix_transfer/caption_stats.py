"""Corpus BLEU-1..4 and METEOR 1.5 recomputed from per-image sufficient statistics, so the report can resample them.

Neither metric is a mean of per-image scores: pycocoevalcap's BLEU pools n-gram counts and lengths over the corpus,
and METEOR's jar scores the SUM of the per-segment statistics. Both are therefore exact functions of per-image
counts, and a bootstrap resample (a count vector w: image i drawn w_i times) is the weighted sum of those counts.
Numpy only: the report imports this module (captioning/metrics.py writes the statistics, per_image.py reads them).

- BLEU (pycocoevalcap `BleuScorer.compute_score(option='closest')`): per image [hypothesis length, the 'closest'
  reference length, hypothesis n-gram counts for n = 1..4 (`guess`), clipped n-gram matches (`correct`)]; corpus
  BLEU-n = (prod_k (correct_k + 1e-15) / (guess_k + 1e-9))^(1/n) times exp(1 - ref/hyp) when hyp < ref.
- METEOR 1.5 (`-l en -norm`, task 'Ranking': exact / stem / synonym / paraphrase, weights 1.0 0.6 0.8 0.6,
  alpha 0.85, beta 0.2, gamma 0.6, delta 0.75, as the jar prints them): per image the 23 numbers of the jar's
  SCORE reply (MeteorStats: test / reference length and function words, then per module test / reference content
  and function matches, chunks, test / reference word matches); the corpus score is MeteorScorer.computeMetrics on
  their sum, where MeteorStats.addStats adds no chunks for a segment matched whole in one chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .report.bootstrap import Statistic, SumsStatistic

BLEU_STATS_KEY = "bleu_stats"  # captions.json: per image [hyp len, closest ref len, guess 1..4, correct 1..4]
METEOR_STATS_KEY = "meteor_stats"  # captions.json: per image the jar's 23 SCORE-reply statistics
BLEU_N = 4
BLEU_SMALL, BLEU_TINY = 1e-9, 1e-15  # pycocoevalcap's guards: 'small' in denominators, 'tiny' in numerators

METEOR_ALPHA, METEOR_BETA, METEOR_GAMMA, METEOR_DELTA = 0.85, 0.2, 0.6, 0.75
METEOR_MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)  # exact, stem, synonym, paraphrase
METEOR_STATS_LENGTH = 23

# the report's metric name -> the per-image statistics it is recomputed from
STATS_KEYS = {**{f"BLEU-{n}": BLEU_STATS_KEY for n in range(1, BLEU_N + 1)}, "METEOR": METEOR_STATS_KEY}


def closest_ref_length(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """pycocoevalcap's 'closest' effective reference length: the nearest to the hypothesis', the shorter on a tie."""
    return min((abs(r - hyp_len), r) for r in ref_lens)[1]


def bleu_image_stats(hyp_len: int, ref_lens: Sequence[int], guess: Sequence[int], correct: Sequence[int]) -> list[int]:
    """One image's BLEU statistics from pycocoevalcap's cooked test (testlen, reflen list, guess, correct)."""
    if len(guess) != BLEU_N or len(correct) != BLEU_N:
        raise ValueError(f"need {BLEU_N} n-gram orders, got guess {list(guess)} and correct {list(correct)}")
    return [int(hyp_len), int(closest_ref_length(hyp_len, ref_lens)), *map(int, guess), *map(int, correct)]


def parse_meteor_stats(line: str) -> list[float]:
    """The jar's SCORE reply ('8.0 8.0 4.0 ...') as its 23 numbers; ValueError for anything else."""
    values = [float(x) for x in line.split()]
    if len(values) != METEOR_STATS_LENGTH:
        raise ValueError(f"METEOR statistics need {METEOR_STATS_LENGTH} numbers, got {len(values)}: {line!r}")
    return values


def _weights(w: np.ndarray, n: int) -> np.ndarray:
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    if w.shape[1] != n:
        raise ValueError(f"counts have {w.shape[1]} columns for {n} images")
    return w


def corpus_bleu(w: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """(B, 4) corpus BLEU-1..4 (fractions) of each row of counts w (B, n), from per-image stats (n, 10).

    The operations and their order are pycocoevalcap's, so all-ones weights give its corpus score to rounding
    and integer counts give its score on the image set with each image repeated that often.
    """
    s = np.asarray(stats, dtype=np.float64).reshape(-1, 2 + 2 * BLEU_N)
    return bleu_from_summed(_weights(w, len(s)) @ s)


def bleu_from_summed(tot: np.ndarray) -> np.ndarray:
    """(B, 4) corpus BLEU-1..4 (fractions) of summed per-image BLEU statistics (B, 10), pycocoevalcap's steps."""
    tot = np.atleast_2d(np.asarray(tot, dtype=np.float64))
    guess, correct = tot[:, 2 : 2 + BLEU_N], tot[:, 2 + BLEU_N :]
    out = np.empty((len(tot), BLEU_N))
    prod = np.ones(len(tot))
    for k in range(BLEU_N):
        prod = prod * ((correct[:, k] + BLEU_TINY) / (guess[:, k] + BLEU_SMALL))
        out[:, k] = prod ** (1.0 / (k + 1))
    ratio = (tot[:, 0] + BLEU_TINY) / (tot[:, 1] + BLEU_SMALL)
    short = ratio < 1
    out[short] *= np.exp(1.0 - 1.0 / ratio[short])[:, None]
    return out


def meteor_chunks(stats: np.ndarray) -> np.ndarray:
    """(n,) the chunks each segment adds to a sum: none for a segment whose words all match in one chunk."""
    s = np.asarray(stats, dtype=np.float64).reshape(-1, METEOR_STATS_LENGTH)
    test_total = s[:, 4:20:4].sum(axis=1) + s[:, 6:20:4].sum(axis=1)
    ref_total = s[:, 5:20:4].sum(axis=1) + s[:, 7:20:4].sum(axis=1)
    whole = (test_total == s[:, 0]) & (ref_total == s[:, 1]) & (s[:, 20] == 1)
    return np.where(whole, 0.0, s[:, 20])


def _summable_meteor(stats: np.ndarray) -> np.ndarray:
    """Per-image METEOR statistics (n, 23) with the chunks column as a sum takes it (meteor_chunks)."""
    s = np.asarray(stats, dtype=np.float64).reshape(-1, METEOR_STATS_LENGTH).copy()
    s[:, 20] = meteor_chunks(s)
    return s


def meteor_from_summed(tot: np.ndarray) -> np.ndarray:
    """(B,) METEOR of summed statistics (B, 23): MeteorScorer.computeMetrics, step by step in its order."""
    tot = np.atleast_2d(np.asarray(tot, dtype=np.float64))
    tl, rl, tf, rf = tot[:, 0], tot[:, 1], tot[:, 2], tot[:, 3]
    stage = tot[:, 4:20].reshape(-1, 4, 4)  # module i: test content, ref content, test function, ref function
    d = METEOR_DELTA
    with np.errstate(divide="ignore", invalid="ignore"):
        test_len = d * (tl - tf) + (1.0 - d) * tf
        ref_len = d * (rl - rf) + (1.0 - d) * rf
        test_m, ref_m = np.zeros(len(tot)), np.zeros(len(tot))
        for i, mw in enumerate(METEOR_MODULE_WEIGHTS):
            test_m = test_m + stage[:, i, 0] * mw * d
        for i, mw in enumerate(METEOR_MODULE_WEIGHTS):
            ref_m = ref_m + stage[:, i, 1] * mw * d
        for i, mw in enumerate(METEOR_MODULE_WEIGHTS):
            test_m = test_m + stage[:, i, 2] * mw * (1.0 - d)
        for i, mw in enumerate(METEOR_MODULE_WEIGHTS):
            ref_m = ref_m + stage[:, i, 3] * mw * (1.0 - d)
        precision, recall = test_m / test_len, ref_m / ref_len
        fmean = 1.0 / (((1.0 - METEOR_ALPHA) / precision) + (METEOR_ALPHA / recall))
        test_total = stage[:, :, 0].sum(axis=1) + stage[:, :, 2].sum(axis=1)
        ref_total = stage[:, :, 1].sum(axis=1) + stage[:, :, 3].sum(axis=1)
        chunks, word_matches = tot[:, 20], tot[:, 21] + tot[:, 22]
        whole = (test_total == tl) & (ref_total == rl) & (chunks == 1)
        frag = np.where(whole, 0.0, chunks / (word_matches / 2.0))
        score = fmean * (1.0 - METEOR_GAMMA * np.power(frag, METEOR_BETA))
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))  # the jar: NaN (0 / 0) -> 0, never below 0


def corpus_meteor(w: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """(B,) corpus METEOR (fraction) of each row of counts w (B, n) from per-image SCORE statistics (n, 23),
    as the jar's EVAL line scores the images repeated that often (summed statistics, addStats' chunk rule)."""
    s = _summable_meteor(stats)
    return meteor_from_summed(_weights(w, len(s)) @ s)


def corpus_statistic(metric: str, stats: np.ndarray, scale: float = 100.0) -> Statistic:
    """'BLEU-1'..'BLEU-4' or 'METEOR' (x scale: the record's percent) on resamples, from per-image statistics."""
    s = np.asarray(stats, dtype=np.float64)
    if metric == "METEOR":  # a SumsStatistic, so significance.py's swap test can pool two checkpoints' statistics
        return SumsStatistic(_summable_meteor(s), lambda tot: scale * meteor_from_summed(tot))
    if STATS_KEYS.get(metric) == BLEU_STATS_KEY:
        k = int(metric.rsplit("-", 1)[1]) - 1
        return SumsStatistic(s.reshape(-1, 2 + 2 * BLEU_N), lambda tot: scale * bleu_from_summed(tot)[:, k])
    raise ValueError(f"no corpus statistic for {metric!r}: choose from {', '.join(STATS_KEYS)}")
