"""OOD detection (cutmix_transfer.ood, tools/ood_eval.py) against independent computations: the metrics on
hand-computed cases with ties and against a brute-force count, the detectors against per-image and analytic
computations on tiny models, the noise sets' definition and determinism, the folder reader, the CIFAR layout
checks, and the tool end to end on generated CIFAR-100 batches with a real-format checkpoint."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import DEMO_KWARGS
from helpers import REPO, EvalTool, read_csv, run_torchrun, write_cifar100
from PIL import Image
from sklearn.metrics import roc_auc_score, roc_curve

from cutmix_transfer.backbones import build_model
from cutmix_transfer.datasets import demo
from cutmix_transfer.datasets.common import CIFAR100_CUTMIX_STD
from cutmix_transfer.datasets.demo import cifar as demo_cifar
from cutmix_transfer.datasets.demo.scene import STREAMS, image_rng, render_scene
from cutmix_transfer.errors import ConfigError, DatasetError
from cutmix_transfer.evalmodel import load_eval_classifier
from cutmix_transfer.io import sha256_file
from cutmix_transfer.ood import data as ood_data
from cutmix_transfer.ood import detectors, metrics
from cutmix_transfer.report import table as report
from cutmix_transfer.report.bootstrap import percentile_interval, resample_counts
from cutmix_transfer.report.per_image import per_image_statistic

TOOL = EvalTool(REPO / "tools" / "ood_eval.py")
MEAN = np.array([125.3, 123.0, 113.9], dtype=np.float32) / np.float32(255)
STD = np.array([63.0, 62.1, 66.7], dtype=np.float32) / np.float32(255)


# ------------------------------------------------------------------------------------------------ helpers
def brute_metrics(s_in, s_out, tpr_level: float = 0.95) -> dict[str, float]:
    """The five metrics by direct counting over every distinct threshold (no scikit-learn), in percent; the TNR at
    the first threshold whose TPR reaches `tpr_level`."""
    s_in, s_out = np.asarray(s_in, float), np.asarray(s_out, float)
    thresholds = [np.inf] + sorted(set(s_in) | set(s_out), reverse=True)
    tpr = np.array([(s_in >= t).mean() for t in thresholds])
    fpr = np.array([(s_out >= t).mean() for t in thresholds])
    first = next(i for i in range(len(thresholds)) if tpr[i] >= tpr_level)
    auroc = np.mean([(a > b) + 0.5 * (a == b) for a in s_in for b in s_out])

    def ap(pos, neg):
        total, prev_r = 0.0, 0.0
        for t in sorted(set(pos) | set(neg), reverse=True):
            tp, fp = (pos >= t).sum(), (neg >= t).sum()
            r = tp / len(pos)
            total += (r - prev_r) * tp / (tp + fp)
            prev_r = r
        return total

    return {
        "tnr_at_tpr95": 100 * (1 - fpr[first]),
        "auroc": 100 * auroc,
        "detection_acc": 100 * np.max(0.5 * (tpr + 1 - fpr)),
        "aupr_in": 100 * ap(s_in, s_out),
        "aupr_out": 100 * ap(-s_out, -s_in),
    }


class TwoConv(nn.Module):
    """A 2-layer conv net: conv 3->4, ReLU, conv 4->5, global average pool -> 5 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 5, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(torch.relu(self.c1(x))).mean(dim=(2, 3))


def manual_normalise(images_hwc_uint8: np.ndarray) -> torch.Tensor:
    """(N, 32, 32, 3) uint8 -> (N, 3, 32, 32) float32: / 255, minus CutMix-PyTorch's mean, over its std."""
    x = images_hwc_uint8.astype(np.float32) / np.float32(255)
    return torch.from_numpy(((x - MEAN) / STD).transpose(0, 3, 1, 2).copy())


def msp_by_hand(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        z = model(x).double().numpy()
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).max(axis=1)


def _error_line(main, args: list[str], capsys) -> str:
    assert main(args + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ------------------------------------------------------------------------------------------------ metrics
def test_metrics_hand_computed_tie_between_in_and_out():
    # thresholds 0.9, 0.8, 0.7, 0.5 (one in- and one out-score tied), 0.4, 0.1
    m = metrics.ood_metrics([0.9, 0.8, 0.7, 0.5], [0.5, 0.4, 0.1])
    assert m["tnr_at_tpr95"] == pytest.approx(100 * 2 / 3)  # TPR reaches 1 only at 0.5, where 1 of 3 OOD passes
    assert m["auroc"] == pytest.approx(100 * 11.5 / 12)  # 11 pairs won, the tied pair counts one half
    assert m["detection_acc"] == pytest.approx(100 * 0.5 * (0.75 + 1.0))  # at 0.7: TPR 3/4, TNR 1
    assert m["aupr_in"] == pytest.approx(100 * (0.25 + 0.25 + 0.25 + 0.25 * 4 / 5))
    assert m["aupr_out"] == pytest.approx(100 * (1 / 3 + 1 / 3 + 1 / 3 * 3 / 4))


def test_metrics_all_tied_and_perfect():
    m = metrics.ood_metrics([1.0, 1.0], [1.0, 1.0, 1.0])
    assert m == pytest.approx(
        {"tnr_at_tpr95": 0.0, "auroc": 50.0, "detection_acc": 50.0, "aupr_in": 40.0, "aupr_out": 60.0}
    )
    m = metrics.ood_metrics([3, 2, 2], [1, 0, 1])
    assert m == pytest.approx({k: 100.0 for k in metrics.METRICS})


def test_tnr_uses_the_first_point_reaching_exactly_95():
    s_in = np.arange(2, 22, dtype=float)  # 20 scores: at threshold 3, TPR is 19/20 = 0.95 exactly
    s_out = np.array([2.5, 1.5, 0.5, 0.2])
    m = metrics.ood_metrics(s_in, s_out)
    assert m["tnr_at_tpr95"] == 100.0  # a strict '>' would move to threshold 2 (TPR 1, TNR 3/4)
    s_in_tied = np.concatenate([[3.0] * 2, np.arange(4, 22, dtype=float)])  # ties jump TPR from 18/20 to 20/20
    m = metrics.ood_metrics(s_in_tied, np.array([3.0, 3.5, 1.0, 0.0]))
    assert m["tnr_at_tpr95"] == pytest.approx(50.0)  # the tied threshold 3 passes 2 of 4 OOD scores


def test_metrics_against_brute_force_on_tie_heavy_scores():
    rng = np.random.default_rng(0)
    for _ in range(6):
        s_in = rng.integers(0, 8, size=int(rng.integers(5, 40))).astype(float) + 2
        s_out = rng.integers(0, 8, size=int(rng.integers(5, 40))).astype(float)
        got, want = metrics.ood_metrics(s_in, s_out), brute_metrics(s_in, s_out)
        assert got == pytest.approx(want, abs=1e-9)


def test_mean_metrics_and_bad_input():
    per = {"a": {k: 10.0 for k in metrics.METRICS}, "b": {k: 30.0 for k in metrics.METRICS}}
    assert metrics.mean_metrics(per) == {k: 20.0 for k in metrics.METRICS}
    with pytest.raises(ValueError, match="both sides"):
        metrics.ood_metrics([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        metrics.ood_metrics([np.nan, 1.0], [1.0])


def _tie_heavy(rng, low: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer scores (many ties, in- and out-scores overlapping) and integer weights (B = 4 rows, zeros included,
    at least `low` per side and row)."""
    s_in = rng.integers(0, 6, size=int(rng.integers(1, 25))).astype(float) + rng.integers(0, 3)
    s_out = rng.integers(0, 6, size=int(rng.integers(1, 25))).astype(float)
    w_in, w_out = rng.integers(0, 4, size=(4, s_in.size)), rng.integers(0, 4, size=(4, s_out.size))
    w_in[:, 0] += low
    w_out[:, -1] += low
    return s_in, s_out, w_in, w_out


def test_weighted_roc_metrics_equal_the_duplicated_scores_and_scikit_learn():
    rng = np.random.default_rng(7)
    for _ in range(40):
        s_in, s_out, w_in, w_out = _tie_heavy(rng)
        got = metrics.weighted_ood_metrics(s_in, s_out, w_in, w_out)
        ones = metrics.weighted_ood_metrics(s_in, s_out, np.ones(s_in.size), np.ones(s_out.size))
        plain = metrics.ood_metrics(s_in, s_out)
        assert {k: v[0] for k, v in ones.items()} == {k: plain[k] for k in metrics.ROC_METRICS}  # bit for bit
        y, s = np.r_[np.ones(s_in.size), np.zeros(s_out.size)], np.r_[s_in, s_out]
        for b in range(4):
            dup = metrics.ood_metrics(np.repeat(s_in, w_in[b]), np.repeat(s_out, w_out[b]))
            assert {k: got[k][b] for k in metrics.ROC_METRICS} == {k: dup[k] for k in metrics.ROC_METRICS}
            sw = np.r_[w_in[b], w_out[b]]
            fpr, tpr, _ = roc_curve(y, s, sample_weight=sw, drop_intermediate=False)
            assert got["tnr_at_tpr95"][b] == pytest.approx(100 * (1 - fpr[np.argmax(tpr >= 0.95)]), abs=1e-9)
            assert got["auroc"][b] == pytest.approx(100 * roc_auc_score(y, s, sample_weight=sw), abs=1e-9)
            assert got["detection_acc"][b] == pytest.approx(100 * np.max(0.5 * (tpr + 1 - fpr)), abs=1e-9)
    # roc_points is the same curve as scikit-learn's (thresholds included); a side of weight 0 is an error
    s_in, s_out, w_in, w_out = _tie_heavy(rng)
    y, s = np.r_[np.ones(s_in.size), np.zeros(s_out.size)], np.r_[s_in, s_out]
    for got_a, want_a in zip(metrics.roc_points(s_in, s_out), roc_curve(y, s, drop_intermediate=False)):
        assert np.allclose(got_a, want_a, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="positive total weight"):
        metrics.weighted_ood_metrics(s_in, s_out, np.zeros(s_in.size), np.ones(s_out.size))


def _duplicated_mean(scores: np.ndarray, groups: np.ndarray, counts: np.ndarray, metric: str) -> float:
    """The mean over OOD sets (groups >= 1) of `ood_metrics` on the scores repeated `counts` times (no weights)."""
    reps = np.repeat(scores, counts.astype(int))
    g = np.repeat(groups, counts.astype(int))
    return float(
        np.mean([metrics.ood_metrics(reps[g == 0], reps[g == k])[metric] for k in np.unique(groups[groups > 0])])
    )


def test_mean_over_sets_statistic_and_stratified_draws():
    rng = np.random.default_rng(3)
    s_in, s_a, _, _ = _tie_heavy(rng)
    s_b = rng.integers(0, 9, size=11).astype(float)
    scores, groups = np.r_[s_in, s_a, s_b], np.repeat([0, 1, 2], [s_in.size, s_a.size, s_b.size])
    perm = rng.permutation(scores.size)  # any column order: the groups say which image is which
    scores, groups = scores[perm], groups[perm]
    for metric in metrics.ROC_METRICS:
        stat = metrics.MeanOverSetsStatistic(scores, groups, metric)
        per_set = {name: metrics.ood_metrics(s_in, s) for name, s in (("a", s_a), ("b", s_b))}
        assert stat(np.ones((1, scores.size)))[0] == metrics.mean_metrics(per_set)[metric]
        w = resample_counts(scores.size, 6, seed=1, strata=stat.strata)
        for g in range(3):  # stratified: every resample keeps each set's size
            assert (w[:, groups == g].sum(axis=1) == (groups == g).sum()).all()
        assert stat(w) == pytest.approx([_duplicated_mean(scores, groups, wb, metric) for wb in w], abs=1e-9)
    with pytest.raises(ValueError, match="no weighted OOD metric"):
        metrics.MeanOverSetsStatistic(scores, groups, "aupr_in")
    # the draws depend on the partition, not on the labels; the unstratified draws are the plain multinomial
    relabelled = np.array([7, 3, 5])[groups]
    assert np.array_equal(resample_counts(scores.size, 4, 2, groups), resample_counts(scores.size, 4, 2, relabelled))
    want = np.random.default_rng(2).multinomial(scores.size, np.full(scores.size, 1 / scores.size), size=4)
    assert np.array_equal(resample_counts(scores.size, 4, 2), want)
    with pytest.raises(ValueError, match="strata must label"):
        resample_counts(scores.size, 4, 2, groups[1:])


def test_another_tpr_level_reaches_every_roc_metric_and_the_pooled_statistic():
    rng = np.random.default_rng(5)
    s_in, s_a, _, _ = _tie_heavy(rng)
    s_b = rng.integers(0, 9, size=11).astype(float)
    want_a, want_b = brute_metrics(s_in, s_a, 0.6), brute_metrics(s_in, s_b, 0.6)
    assert want_a["tnr_at_tpr95"] != brute_metrics(s_in, s_a)["tnr_at_tpr95"]  # the level matters for these scores
    got = metrics.ood_metrics(s_in, s_a, tpr_level=0.6)
    assert got["tnr_at_tpr95"] == pytest.approx(want_a["tnr_at_tpr95"], abs=1e-9)
    weighted = metrics.weighted_ood_metrics(s_in, s_a, np.ones(s_in.size), np.ones(s_a.size), tpr_level=0.6)
    assert weighted["tnr_at_tpr95"] == pytest.approx(want_a["tnr_at_tpr95"], abs=1e-9)
    assert metrics.ood_metrics(s_in, s_a, 0.6)["auroc"] == pytest.approx(want_a["auroc"], abs=1e-9)
    scores, groups = np.r_[s_in, s_a, s_b], np.repeat([0, 1, 2], [s_in.size, s_a.size, s_b.size])
    stat = metrics.MeanOverSetsStatistic(scores, groups, "tnr_at_tpr95", tpr_level=0.6)
    mean = (want_a["tnr_at_tpr95"] + want_b["tnr_at_tpr95"]) / 2
    assert stat(np.ones((1, scores.size)))[0] == pytest.approx(mean, abs=1e-9)
    # pooled: [self's scores, other's] with both groupings, the same metric and level; counts [1, 0] give self's
    other = metrics.MeanOverSetsStatistic(scores[::-1].copy(), groups, "tnr_at_tpr95", tpr_level=0.6)
    both = stat.pooled(other)
    assert np.array_equal(both.scores, np.r_[scores, scores[::-1]]) and np.array_equal(
        both.strata, np.r_[groups, groups]
    )
    assert (both.metric, both.tpr_level) == ("tnr_at_tpr95", 0.6)
    assert both(np.r_[np.ones(scores.size), np.zeros(scores.size)][None])[0] == pytest.approx(mean, abs=1e-9)
    with pytest.raises(ValueError, match="must be"):
        metrics.MeanOverSetsStatistic(scores, groups[1:], "auroc")
    with pytest.raises(ValueError, match="must be"):
        metrics.MeanOverSetsStatistic(scores[None], groups[None], "auroc")
    for a, b in (([], s_a), (s_in, [])):  # either side empty
        with pytest.raises(ValueError, match="scores on both sides"):
            metrics.ood_metrics(a, b)


# ------------------------------------------------------------------------------------------------ detectors
def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 3, 32, 32)).astype(np.float32))


def test_msp_and_energy_against_numpy():
    torch.manual_seed(0)
    model = TwoConv().eval()
    x = _images()
    with torch.no_grad():
        z = model(x).double().numpy()
    s, logits = detectors.build_detector("msp")(model, x)
    assert np.allclose(s.numpy(), msp_by_hand(model, x), rtol=0, atol=1e-15)
    assert np.array_equal(logits.numpy(), model(x).detach().numpy())
    for t in (1.0, 2.5):
        e, _ = detectors.build_detector("energy", temperature=t)(model, x)
        zt = z / t
        want = t * (zt.max(axis=1) + np.log(np.exp(zt - zt.max(axis=1, keepdims=True)).sum(axis=1)))
        assert np.allclose(e.numpy(), want, rtol=1e-13)


def _odin_one_image(model: nn.Module, x1: torch.Tensor, temperature: float, epsilon: float) -> float:
    """ODIN on one image, step by step as its reference code: CE on logits / T, sign by torch.ge, / std."""
    inputs = x1.clone().requires_grad_(True)
    outputs = model(inputs)
    label = outputs.detach().argmax(dim=1)
    loss = nn.CrossEntropyLoss()(outputs / temperature, label)
    loss.backward()
    gradient = (torch.ge(inputs.grad, 0).float() - 0.5) * 2
    for c in range(3):
        gradient[0][c] = gradient[0][c] / float(STD[c])
    temp = torch.add(inputs.detach(), gradient, alpha=-epsilon)
    with torch.no_grad():
        z = model(temp).double() / temperature  # the project scores in float64 (ODIN's code divides in float32)
    return float(torch.softmax(z, dim=1).max())


def test_odin_against_one_image_reference_on_a_conv_net():
    torch.manual_seed(1)
    model = TwoConv().eval()
    x = _images(5, seed=1)
    for t, eps in ((1000.0, 0.0014), (10.0, 0.01), (1.0, 0.03)):
        odin = detectors.build_detector("odin", temperature=t, epsilon=eps)
        want = np.array([_odin_one_image(model, x[i : i + 1], t, eps) for i in range(len(x))])
        one = np.array([float(odin(model, x[i : i + 1])[0][0]) for i in range(len(x))])
        assert np.allclose(one, want, rtol=0, atol=1e-8), (t, eps)  # float32 rounding: eps * sign / std order
        # batched: each image's score is its own (eval mode); float32 convolutions differ only in the last bits
        assert np.allclose(odin(model, x)[0].numpy(), want, rtol=0, atol=1e-8), (t, eps)
        s0, _ = detectors.build_detector("odin", temperature=t, epsilon=0.0)(model, x)
        assert np.abs(want - s0.numpy()).min() > 1e-8  # the perturbation did move every score (T = 1000: ~1e-7)
    s_odin, _ = detectors.build_detector("odin", temperature=1.0, epsilon=0.0)(model, x)
    s_msp, _ = detectors.build_detector("msp")(model, x)
    assert np.allclose(s_odin.numpy(), s_msp.numpy(), atol=1e-15)  # T = 1, no perturbation: ODIN is MSP


def test_odin_against_the_analytic_gradient_of_a_linear_model():
    torch.manual_seed(2)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4)).eval()
    x = _images(4, seed=2)
    t, eps = 7.0, 0.05
    w = lin[1].weight.detach().double().numpy()
    b = lin[1].bias.detach().double().numpy()
    xf = x.double().numpy().reshape(4, -1)
    z = xf @ w.T + b
    p = np.exp(z / t - (z / t).max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(4)[z.argmax(axis=1)]
    grad = (p - onehot) @ w / t  # d CE(z / T, yhat) / dx
    std = np.repeat(STD.astype(np.float64), 32 * 32)
    x2 = xf - eps * np.where(grad >= 0, 1.0, -1.0) / std
    z2 = (x2 @ w.T + b) / t
    want = np.exp(z2 - z2.max(axis=1, keepdims=True))
    want = (want / want.sum(axis=1, keepdims=True)).max(axis=1)
    s, _ = detectors.build_detector("odin", temperature=t, epsilon=eps)(lin, x)
    assert np.allclose(s.numpy(), want, rtol=1e-5)


def test_detector_options_are_checked_and_a_new_detector_is_a_function():
    with pytest.raises(ConfigError, match="--epsilon"):
        detectors.build_detector("msp", epsilon=0.1)
    with pytest.raises(ConfigError, match="choose one of"):
        detectors.build_detector("nope")
    with pytest.raises(ConfigError, match="temperature"):
        detectors.build_detector("odin", temperature=0.0)
    assert detectors.build_detector("odin").all_params()["temperature"] == 1000.0

    @detectors.register_detector("max_logit")
    def max_logit(model, images):
        with torch.no_grad():
            logits = model(images).float().cpu()
        return logits.double().max(dim=1).values, logits

    try:
        model = TwoConv().eval()
        s, _ = detectors.build_detector("max_logit")(model, _images(3))
        assert np.allclose(s.numpy(), model(_images(3)).detach().double().max(dim=1).values.numpy())
    finally:
        del detectors.DETECTORS["max_logit"]


def test_odin_takes_the_input_std_it_is_given_and_records_every_parameter():
    """build_detector's input_std reaches the step (eps / std per channel, against the analytic gradient of a
    linear model), is kept as floats and listed by all_params; a detector without the parameter ignores it."""
    std = (0.5, 0.25, 0.125)
    det = detectors.build_detector("odin", temperature=7.0, epsilon=0.05, input_std=np.array(std))
    assert det.params["input_std"] == std and all(type(v) is float for v in det.params["input_std"])
    assert det.all_params() == {"temperature": 7.0, "epsilon": 0.05, "input_std": list(std), "score_dtype": "float64"}
    assert detectors.build_detector("odin").all_params()["input_std"] == list(CIFAR100_CUTMIX_STD)  # the default
    assert detectors.build_detector("msp", input_std=std).params == {}
    torch.manual_seed(3)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).eval()
    x = torch.rand(2, 3, 4, 4)
    w, b = (p.detach().double().numpy() for p in lin[1].parameters())
    xf = x.double().numpy().reshape(2, -1)
    z = xf @ w.T + b
    p = np.exp(z / 7.0 - (z / 7.0).max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    grad = (p - np.eye(3)[z.argmax(axis=1)]) @ w / 7.0
    x2 = xf - 0.05 * np.where(grad >= 0, 1.0, -1.0) / np.repeat(np.array(std), 16)
    z2 = (x2 @ w.T + b) / 7.0
    want = np.exp(z2 - z2.max(axis=1, keepdims=True))
    want = (want / want.sum(axis=1, keepdims=True)).max(axis=1)
    assert np.allclose(det(lin, x)[0].numpy(), want, rtol=1e-5)


def test_detector_checks_its_own_parameters_and_energy_defaults_to_t1():
    with pytest.raises(ConfigError, match="takes no temperature"):
        detectors.Detector("msp", {"temperature": 2.0})
    with pytest.raises(ConfigError, match="epsilon must be >= 0, got -0.1"):
        detectors.Detector("odin", {"epsilon": -0.1})
    assert detectors.Detector("odin", {"epsilon": 0.0}).params == {"epsilon": 0.0}
    z = torch.tensor([[3.0, 1.0, 0.0], [0.5, 0.5, 2.0]])
    e, _ = detectors.build_detector("energy")(lambda t: t, z)
    assert np.allclose(e.numpy(), np.log(np.exp(z.double().numpy()).sum(axis=1)), rtol=1e-12)


class _InputDtypes(nn.Module):
    """Logits from the mean colour, recording the dtype of every input it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.dtype)
        return x.float().mean(dim=(2, 3)) * torch.tensor([1.0, -2.0, 3.0])


class _TinyLinear(nn.Module):
    """logits (a.x, -a.x) with a = 1e-44 (near float32's smallest numbers), recording every input."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        z = (x.flatten(1) * 1e-44).sum(dim=1)
        return torch.stack([z, -z], dim=1)


def test_odin_gradient_sign_of_an_image_is_its_own_even_when_tiny():
    """The loss is summed, not averaged: each image's gradient (-a per pixel, a tiny negative number) keeps its sign
    in a batch of 64, so ODIN moves every pixel by +epsilon / std (averaged, the gradient would round to -0.0,
    which ODIN's `>= 0` rule reads as positive)."""
    model = _TinyLinear()
    x = torch.rand(64, 3, 2, 2)
    detectors.build_detector("odin", temperature=1.0, epsilon=0.01, input_std=(1.0, 1.0, 1.0))(model, x)
    torch.testing.assert_close(model.seen[1], x + 0.01, rtol=0, atol=1e-7)


def test_odin_perturbs_at_the_images_precision():
    """The sign and the std take the images' dtype, so the perturbed input keeps it (half stays half)."""
    model = _InputDtypes()
    x = torch.rand(2, 3, 4, 4).half()
    s, _ = detectors.build_detector("odin", temperature=1.0, epsilon=0.01)(model, x)
    assert model.seen == [torch.float16, torch.float16] and s.dtype == torch.float64


# ------------------------------------------------------------------------------------------------ data
def test_noise_sets_follow_odin_and_are_deterministic():
    u = np.stack([ood_data.noise_image("uniform", 0, i) for i in range(200)])
    g = np.stack([ood_data.noise_image("gaussian", 0, i) for i in range(200)])
    assert u.shape == (200, 3, 32, 32) and u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.std() - np.sqrt(1 / 12)) < 0.01
    # N(0.5, 1) clipped to [0, 1]: P(x <= 0) = P(x >= 1) = Phi(-0.5) = 0.3085
    assert g.min() == 0.0 and g.max() == 1.0
    assert abs((g == 0).mean() - 0.3085) < 0.01 and abs((g == 1).mean() - 0.3085) < 0.01
    assert np.array_equal(ood_data.noise_image("uniform", 0, 7), u[7])  # image i depends on (seed, set, i) only
    assert not np.array_equal(ood_data.noise_image("uniform", 1, 7), u[7])
    assert not np.allclose(ood_data.noise_image("gaussian", 0, 0), ood_data.noise_image("uniform", 0, 0))
    s10, s3 = ood_data.noise_set("gaussian", 10, seed=4), ood_data.noise_set("gaussian", 3, seed=4)
    a = ood_data.OODImages(s10)
    b = ood_data.OODImages(s3)
    assert all(torch.equal(a[i]["image"], b[i]["image"]) for i in range(3))
    want = (ood_data.noise_image("gaussian", 4, 2) - MEAN[:, None, None]) / STD[:, None, None]
    assert np.allclose(a[2]["image"].numpy(), want, atol=1e-6)
    assert s10.image_ids[0] == "gaussian/0" and len(s10) == 10


def test_folder_reader_recursive_sorted_resized(tmp_path):
    root = tmp_path / "LSUN_resize"
    (root / "test" / "b").mkdir(parents=True)
    (root / "test" / "a").mkdir()
    rng = np.random.default_rng(0)
    img32 = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    big = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(img32).save(root / "test" / "b" / "2.png")
    Image.fromarray(big).save(root / "test" / "a" / "9.png")
    Image.fromarray(img32[:, :, 0]).save(root / "test" / "gray.png")  # one channel -> RGB
    (root / "test" / "notes.txt").write_text("not an image")
    Image.fromarray(img32).save(root / "test" / ".hidden.png")
    s = ood_data.folder_set(root)
    assert s.name == "LSUN_resize" and s.image_ids == ["test/a/9.png", "test/b/2.png", "test/gray.png"]
    items = ood_data.OODImages(s)
    x_big = np.asarray(Image.fromarray(big).resize((32, 32), Image.BILINEAR), np.float32) / np.float32(255)
    for i, arr in enumerate(
        (
            x_big,
            img32.astype(np.float32) / np.float32(255),
            np.repeat(img32[:, :, :1], 3, axis=2).astype(np.float32) / np.float32(255),
        )
    ):
        want = ((arr - MEAN) / STD).transpose(2, 0, 1)
        assert np.allclose(items[i]["image"].numpy(), want, atol=1e-6) and items[i]["error"] == ""


def test_folder_and_set_errors(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"empty holds no images"):
        ood_data.folder_set(tmp_path / "empty")
    with pytest.raises(DatasetError, match="OOD folder not found"):
        ood_data.resolve_ood_sets([str(tmp_path / "missing")])
    for d in ("x/LSUN", "y/LSUN"):
        (tmp_path / d).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / d / "0.png")
    with pytest.raises(ConfigError, match="two sets are named 'LSUN'"):
        ood_data.resolve_ood_sets([str(tmp_path / "x/LSUN"), str(tmp_path / "y/LSUN")])
    sets = ood_data.resolve_ood_sets([str(tmp_path / "x/LSUN"), "Uniform", "gaussian"], seed=3, noise_count=5)
    assert [(s.name, s.kind, len(s)) for s in sets] == [
        ("LSUN", "folder", 1),
        ("uniform", "uniform", 5),
        ("gaussian", "gaussian", 5),
    ]
    (tmp_path / "x/LSUN/1.jpg").write_bytes(b"not a jpeg")
    item = ood_data.OODImages(ood_data.folder_set(tmp_path / "x/LSUN"))[1]
    assert "unreadable image" in item["error"] and "1.jpg" in item["error"]


def test_cifar_layout_errors_name_the_python_version(tmp_path):
    with pytest.raises(DatasetError, match=r"(?s)not found.*python version of CIFAR-100.*cifar-100-python"):
        ood_data.resolve_cifar_folder(tmp_path / "nowhere")
    (tmp_path / "cifar-100-python").mkdir()
    (tmp_path / "cifar-100-python" / "meta").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"(?s)missing test.*python version of CIFAR-100.*\{test,meta\}"):
        ood_data.resolve_cifar_folder(tmp_path)
    (tmp_path / "cifar-100-binary").mkdir()
    with pytest.raises(DatasetError, match="cifar-100-binary: the binary version"):
        ood_data.resolve_cifar_folder(tmp_path)


# ------------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """Generated CIFAR-100 batches (20 test images), two OOD folders, checkpoints in real formats."""
    d = tmp_path_factory.mktemp("ood")
    rng = np.random.default_rng(0)
    test = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    test_labels = rng.integers(0, 100, 20)
    train = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    names = [f"class_{i:02d}" for i in range(100)]
    write_cifar100(d / "cifar", {"train": (train, [0, 1, 2, 3]), "test": (test, test_labels)}, names)
    ood_images = {}
    for name, size in (("LSUN", (32, 32)), ("Imagenet_resize", (48, 40))):
        (d / "ood" / name / "test").mkdir(parents=True)
        arrs = []
        for i in range(7):
            a = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            a[..., i % 3] //= 4  # some colour structure, so scores differ from the in-distribution ones
            Image.fromarray(a).save(d / "ood" / name / "test" / f"{i:03d}.png")
            arrs.append(a)
        ood_images[name] = arrs
    torch.manual_seed(0)
    model = build_model("resnet18", 100)
    ckpt = d / "cutmix_r18_cifar.pth.tar"  # CutMix-PyTorch's release format
    torch.save(
        {
            "epoch": 1,
            "arch": "resnet18",
            "best_err1": 99.0,
            "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
        },
        ckpt,
    )
    torch.manual_seed(1)
    torch.save(build_model("resnet18", 10).state_dict(), d / "ten_classes.pth")
    return {
        "root": d,
        "cifar": d / "cifar",
        "test": test,
        "labels": test_labels,
        "ood": d / "ood",
        "ood_images": ood_images,
        "model": model.eval(),
        "ckpt": ckpt,
        "ten": d / "ten_classes.pth",
    }


def test_tool_end_to_end(tiny, tmp_path):
    out = tmp_path / "run"
    args = [
        "--backbone",
        str(tiny["ckpt"]),
        "--in-dataset",
        "cifar100",
        "--data-root",
        str(tiny["cifar"]),
        "--ood",
        str(tiny["ood"] / "LSUN"),
        str(tiny["ood"] / "Imagenet_resize"),
        "uniform",
        "gaussian",
        "--noise-count",
        "9",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--seed",
        "5",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = TOOL.run(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mean" in proc.stdout and "tnr_at_tpr95" in proc.stdout
    rec = json.loads((out / "results.json").read_text())
    assert rec["kind"] == "ood" and rec["checkpoint"]["sha256"] == sha256_file(tiny["ckpt"])
    assert rec["checkpoint"]["method"] == "cutmix" and rec["arch"] == "resnet18" and rec["detector"] == "msp"
    assert rec["ood_sets"] == ["LSUN", "Imagenet_resize", "uniform", "gaussian"]

    scores = np.load(out / "scores.npz")
    assert list(scores.keys()) == ["in_distribution", *rec["ood_sets"]]
    model = tiny["model"]
    # in-distribution: MSP of the model on the test batch normalised by hand, in the batch file's order
    want = msp_by_hand(model, manual_normalise(tiny["test"]))
    assert np.allclose(scores["in_distribution"], want, rtol=1e-5)  # float32 rounding across threads
    for name in ("LSUN", "Imagenet_resize"):
        arrs = [
            np.asarray(Image.fromarray(a).resize((32, 32), Image.BILINEAR)) if a.shape[:2] != (32, 32) else a
            for a in tiny["ood_images"][name]
        ]
        assert np.allclose(scores[name], msp_by_hand(model, manual_normalise(np.stack(arrs))), rtol=1e-5)
    for kind in ("uniform", "gaussian"):
        noise = np.stack([ood_data.noise_image(kind, 5, i) for i in range(9)])
        x = torch.from_numpy((noise - MEAN[:, None, None]) / STD[:, None, None])
        assert np.allclose(scores[kind], msp_by_hand(model, x), rtol=1e-5)

    # every metric recomputed from scores.npz without scikit-learn, and the mean of the sets
    for name in rec["ood_sets"]:
        want = brute_metrics(scores["in_distribution"], scores[name])
        assert {k: rec["per_set"][name][k] for k in metrics.METRICS} == pytest.approx(want, abs=1e-9)
        assert rec["per_set"][name]["num_images"] == scores[name].size
    for k in metrics.METRICS:
        assert rec["metrics"][k] == pytest.approx(np.mean([rec["per_set"][n][k] for n in rec["ood_sets"]]))
        assert rec["mean"][k] == rec["metrics"][k]
    preds = model(manual_normalise(tiny["test"])).argmax(dim=1).numpy()
    assert rec["metrics"]["top1_err"] == pytest.approx(100 * np.mean(preds != tiny["labels"]))

    rows = read_csv(out / "per_image" / "in_distribution.csv")
    assert [int(r["label"]) for r in rows] == list(tiny["labels"])
    assert np.array_equal([float(r["score"]) for r in rows], scores["in_distribution"])
    assert [int(r["predicted"]) for r in rows] == list(preds)
    rows = read_csv(out / "per_image" / "Imagenet_resize.csv")
    assert [r["image_id"] for r in rows] == [f"test/{i:03d}.png" for i in range(7)]
    assert np.array_equal([float(r["score"]) for r in rows], scores["Imagenet_resize"])
    assert (out / "ood.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # same seed, same numbers: two in-process runs agree bit for bit (the subprocess ran on one thread, so it
    # agrees to float32 rounding only)
    main = TOOL.main()
    for run in ("again", "again2"):
        assert main(args[:-3] + ["--out", str(tmp_path / run), "--no-progress"]) == 0
    again, again2 = np.load(tmp_path / "again" / "scores.npz"), np.load(tmp_path / "again2" / "scores.npz")
    assert all(np.array_equal(again[k], again2[k]) for k in scores.keys())
    assert all(np.allclose(again[k], scores[k], rtol=1e-6) for k in scores.keys())
    assert main(args[:-3] + ["--out", str(tmp_path / "energy"), "--detector", "energy", "--no-progress"]) == 0
    energy = np.load(tmp_path / "energy" / "scores.npz")
    with torch.no_grad():
        z = model(manual_normalise(tiny["test"])).double()
    assert np.allclose(energy["in_distribution"], torch.logsumexp(z, dim=1).numpy(), rtol=1e-6)


def test_checkpoint_is_built_in_the_form_it_was_trained_in(tiny, tmp_path):
    torch.manual_seed(3)
    net = build_model("resnet18", 100, wsol=True).eval()  # stride-1 layer4: 2x2 maps at 32 px instead of 1x1
    path = tmp_path / "wsol_r18.pth"
    torch.save(
        {
            "meta": {"cutmix_transfer": {"arch": "resnet18", "wsol": True, "num_classes": 100}},
            "state_dict": net.state_dict(),
        },
        path,
    )
    found = load_eval_classifier(path, "cifar100", "the CIFAR-100 test set", "hint", num_classes=100)
    model, loaded = found.model, found.loaded
    standard = build_model("resnet18", 100, wsol=False).eval()
    standard.load_state_dict(net.state_dict())
    x = manual_normalise(tiny["test"][:4])
    with torch.no_grad():
        assert model.wsol and loaded.source_format == "cutmix_transfer"
        assert torch.allclose(model(x), net(x)) and not torch.allclose(model(x), standard(x), atol=1e-3)


def test_tool_errors(tiny, tmp_path, capsys):
    main = TOOL.main()
    base = [
        "--backbone",
        str(tiny["ckpt"]),
        "--data-root",
        str(tiny["cifar"]),
        "--out",
        str(tmp_path / "o"),
        "--device",
        "cpu",
    ]
    lsun = str(tiny["ood"] / "LSUN")
    line = _error_line(main, ["--backbone", str(tiny["ten"]), "--data-root", str(tiny["cifar"]), "--ood", lsun], capsys)
    assert "class-count mismatch" in line and "10-class" in line and "100 classes" in line
    line = _error_line(main, base[:2] + ["--data-root", str(tmp_path), "--ood", lsun], capsys)
    assert "python version of CIFAR-100" in line and "cifar-100-python" in line and str(tmp_path) in line
    (tmp_path / "empty_set").mkdir()
    line = _error_line(main, base + ["--ood", str(tmp_path / "empty_set")], capsys)
    assert "empty_set holds no images" in line
    bad = tmp_path / "broken"
    (bad / "test").mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(bad / "test" / "0.png")
    (bad / "test" / "1.png").write_bytes(b"not a png")
    line = _error_line(main, base + ["--ood", str(bad)], capsys)
    assert str(bad / "test" / "1.png") in line and "--skip-unreadable" in line
    assert not (tmp_path / "o" / "results.json").exists()
    line = _error_line(main, base + ["--ood", lsun, "--detector", "msp", "--temperature", "2"], capsys)
    assert "--temperature does not apply" in line
    assert main(base + ["--ood", str(bad), "uniform", "--noise-count", "3", "--skip-unreadable", "--no-progress"]) == 0
    rec = json.loads((tmp_path / "o" / "results.json").read_text())
    assert rec["skipped_unreadable"]["count"] == 1
    assert rec["skipped_unreadable"]["images"][0]["image_id"] == "test/1.png"
    assert rec["per_set"]["broken"]["num_images"] == 1 and rec["per_set"]["broken"]["num_skipped"] == 1
    assert np.load(tmp_path / "o" / "scores.npz")["broken"].shape == (1,)


# ------------------------------------------------------------------------------------------------ report intervals
@pytest.fixture(scope="module")
def two_runs(tiny, tmp_path_factory) -> dict[str, Path]:
    """tools/ood_eval.py (msp, in process) for two 100-class checkpoints on the same images: LSUN, Imagenet_resize
    and 9 uniform-noise images -> {'cutmix': out dir, 'plain': out dir}."""
    d = tmp_path_factory.mktemp("ood_two")
    torch.manual_seed(2)
    torch.save(build_model("resnet18", 100).state_dict(), d / "plain_r18.pth")
    main, outs = TOOL.main(), {}
    for name, ckpt in (("cutmix", tiny["ckpt"]), ("plain", d / "plain_r18.pth")):
        outs[name] = d / name
        sets = [str(tiny["ood"] / "LSUN"), str(tiny["ood"] / "Imagenet_resize"), "uniform"]
        args = ["--backbone", str(ckpt), "--data-root", str(tiny["cifar"]), "--ood", *sets, "--noise-count", "9"]
        assert main(args + ["--device", "cpu", "--out", str(outs[name]), "--no-progress"]) == 0
    return outs


def _scores_by_id(out: Path) -> dict[str, float]:
    """'<set>/<image id>' -> score, from scores.npz (the in-distribution id: its index) and the CSVs' image ids."""
    scores = np.load(out / "scores.npz")
    got = {f"in_distribution/{i}": float(v) for i, v in enumerate(scores["in_distribution"])}
    for name in json.loads((out / "results.json").read_text())["ood_sets"]:
        rows = read_csv(out / "per_image" / f"{name}.csv")
        got.update({f"{name}/{r['image_id']}": float(v) for r, v in zip(rows, scores[name])})
    return got


def test_ood_reader_on_a_real_run(two_runs):
    out = two_runs["cutmix"]
    rec = json.loads((out / "results.json").read_text())
    by_id = _scores_by_id(out)
    assert len(by_id) == 20 + 7 + 7 + 9
    for metric in ("tnr_at_tpr95", "auroc"):
        ids, stat = per_image_statistic(out / "results.json", rec, metric)
        assert ids == sorted(by_id)  # every evaluated image once, set-prefixed, sorted
        assert stat(np.ones((1, len(ids))))[0] == rec["metrics"][metric]  # bit for bit the record's number
        scores = np.array([by_id[i] for i in ids])
        groups = np.array(
            [0 if i.startswith("in_distribution/") else 1 + rec["ood_sets"].index(i.split("/")[0]) for i in ids]
        )
        w = resample_counts(len(ids), 8, seed=4, strata=stat.strata)
        assert stat(w) == pytest.approx([_duplicated_mean(scores, groups, wb, metric) for wb in w], abs=1e-9)
    assert per_image_statistic(out / "results.json", rec, "aupr_in") is None  # no weighted AUPR
    missing = {**rec, "ood_sets": [*rec["ood_sets"], "iSUN"]}  # a set without its per-image file: no interval
    assert per_image_statistic(out / "results.json", missing, "auroc") is None


def test_report_gives_ood_intervals_and_the_paired_difference(two_runs):
    records = report.find_records(two_runs.values())
    notes: list[str] = []
    rows = report.build_rows(records, notes)
    lines = report.add_intervals(rows, records, resamples=200, seed=5, notes=notes)
    assert [r.label for r in rows] == ["baseline", "cutmix"] and notes == []  # a plain state_dict: baseline
    # independent: draws stratified by the set name (string labels), metric on the weighted per-set scores
    values = {}
    for r in rows:
        by_id = _scores_by_id(Path(r.sources["OOD AUROC (mean)"]).parent)
        ids = sorted(by_id)
        names = np.array([i.split("/")[0] for i in ids])
        w = resample_counts(len(ids), 200, seed=5, strata=names)
        s = np.array([by_id[i] for i in ids])
        sets = [n for n in dict.fromkeys(names) if n != "in_distribution"]
        for title, metric in (("OOD TNR@TPR95 (mean)", "tnr_at_tpr95"), ("OOD AUROC (mean)", "auroc")):
            per_set = [
                metrics.weighted_ood_metrics(
                    s[names == "in_distribution"], s[names == n], w[:, names == "in_distribution"], w[:, names == n]
                )[metric]
                for n in sets
            ]
            values[(r.label, title)] = np.mean(per_set, axis=0)
            ci = r.intervals[title]
            assert (ci.value, ci.n, ci.resamples) == (r.values[title], len(ids), 200)
            assert (ci.low, ci.high) == pytest.approx(percentile_interval(values[(r.label, title)]), abs=1e-9)
    for title in ("OOD TNR@TPR95 (mean)", "OOD AUROC (mean)"):
        d = values[("cutmix", title)] - values[("baseline", title)]
        lo, hi = percentile_interval(d)
        want = (
            f"{title}, cutmix − baseline: {rows[1].values[title] - rows[0].values[title]:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        )
        assert any(line.startswith(want) and line.endswith(f"({len(ids)} images)") for line in lines), (want, lines)
    table = report.to_markdown(rows).splitlines()
    for r, line in zip(rows, table[2:4]):
        assert f"{r.values['OOD AUROC (mean)']:.2f} [{r.intervals['OOD AUROC (mean)'].low:.2f}, " in line


# ------------------------------------------------------------------------------------------------ demo writers
def test_demo_cifar100_and_ood_layouts(tmp_path):
    # the shared tiny demo's settings (conftest), with its CIFAR-100 and OOD layouts only
    sizes = {"cifar_train_per_class": 3, "cifar_test_per_class": 2, "ood_images_per_set": 3}
    kwargs = {**DEMO_KWARGS, "seed": 2, **sizes, "layouts": ("cifar100", "ood")}
    d = demo.make_demo_data(tmp_path / "a", **kwargs)
    assert d.counts == {
        "cifar100": {"train": 12, "test": 8},
        "ood": {"Backgrounds": 3, "Backgrounds_resize": 3, "Crops_48": 3},
    }
    assert "cifar100" not in demo.DEFAULT_LAYOUTS and "ood" not in demo.DEFAULT_LAYOUTS
    folder = tmp_path / "a" / "cifar-100-python"
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "test", "train"]
    # the raw pickles: bytes keys, (N, 3072) uint8 rows of R, G, B planes, labels 0..num_classes-1
    with open(folder / "test", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert set(raw) == {b"batch_label", b"filenames", b"fine_labels", b"coarse_labels", b"data"}
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape == (8, 3072)
    assert sorted(raw[b"fine_labels"]) == [0, 0, 1, 1, 2, 2, 3, 3] and raw[b"coarse_labels"] == [0] * 8
    spec = demo.DemoSpec(seed=2, num_classes=4, cifar_test_per_class=2)
    data, labels, _ = demo_cifar.render_batch(spec, "test", 2)
    assert np.array_equal(raw[b"data"], data) and raw[b"fine_labels"] == labels
    first = render_scene(
        image_rng(2, STREAMS["cifar_test"], 1), 32, 32, [labels[0]], 4, size_range=demo_cifar.OBJECT_SIZE
    ).image
    assert np.array_equal(raw[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0), first)
    # read by the project's CIFAR reader, through the OOD evaluation's in-distribution loader
    ind = ood_data.load_in_distribution("cifar100", tmp_path / "a")
    assert ind.classes == demo.demo_class_names(4) and ind.labels == labels and len(ind.dataset) == 8
    x = ind.dataset[0]["inputs"].numpy()
    assert np.allclose(x, ((first.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1), atol=1e-6)
    # OOD folders in ODIN's layout: 32x32 crops and resized sets, 48x48 crops (resized by the reader)
    for name, size in (("Backgrounds", (32, 32)), ("Backgrounds_resize", (32, 32)), ("Crops_48", (48, 48))):
        s = ood_data.folder_set(tmp_path / "a" / "ood" / name)
        assert s.name == name and s.image_ids == [f"test/{i:05d}.jpg" for i in (1, 2, 3)]
        with Image.open(s.root / s.image_ids[0]) as im:
            assert im.size == size
    # same settings, same bytes
    demo.make_demo_data(tmp_path / "b", **kwargs)
    for p in sorted((tmp_path / "a").rglob("*")):
        if p.is_file() and p.name != "demo_manifest.json":
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes(), p


# ------------------------------------------------------------------------------------------------ --metrics-as
def odin_reference(x, y, start: float) -> dict[str, float]:
    """calMetric.py's baseline branch re-implemented as its loops: one pass over np.arange(start, 1, gap) with the
    running sums / minimum, then AUPR-out's pass downwards; the counts at each threshold by direct comparison of
    every score with it (broadcast over the grid), NaN where the reference divides by zero or never sets a
    variable."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    nx, ny = float(len(x)), float(len(y))
    end = 1.0
    gap = (end - start) / 100000
    grid = np.arange(start, end, gap)
    x_ge = ((x[None, :] >= grid[:, None]).sum(1) / nx).tolist()
    x_lt = ((x[None, :] < grid[:, None]).sum(1) / nx).tolist()
    y_gt = ((y[None, :] > grid[:, None]).sum(1) / ny).tolist()
    y_ge = ((y[None, :] >= grid[:, None]).sum(1) / ny).tolist()
    fpr_sum, total, auroc, fpr_temp, error = 0.0, 0.0, 0.0, 1.0, 1.0
    aupr_in, recall_temp, last_in = 0.0, 1.0, None
    for tpr, fpr, miss, fp in zip(x_ge, y_gt, x_lt, y_ge):
        if 0.9495 <= tpr <= 0.9505:
            fpr_sum += fpr
            total += 1
        auroc += (-fpr + fpr_temp) * tpr
        fpr_temp = fpr
        error = min(error, (miss + fpr) / 2.0)
        if tpr + fp == 0:
            continue
        precision = tpr / (tpr + fp)
        aupr_in += (recall_temp - tpr) * precision
        recall_temp, last_in = tpr, (tpr, precision)
    auroc += fpr * tpr
    aupr_in = aupr_in + last_in[0] * last_in[1] if last_in else float("nan")
    down = np.arange(end, start, -gap)
    in_lt = ((x[None, :] < down[:, None]).sum(1) / nx).tolist()
    out_lt = ((y[None, :] < down[:, None]).sum(1) / ny).tolist()
    aupr_out, recall_temp, last_out = 0.0, 1.0, None
    for fp, tp in zip(in_lt, out_lt):
        if tp + fp == 0:
            break
        precision = tp / (tp + fp)
        aupr_out += (recall_temp - tp) * precision
        recall_temp, last_out = tp, (tp, precision)
    aupr_out = aupr_out + last_out[0] * last_out[1] if last_out else float("nan")
    return {
        "tnr_at_tpr95": 100 * (1 - fpr_sum / total) if total else float("nan"),
        "auroc": 100 * auroc,
        "detection_acc": 100 * (1 - error),
        "aupr_in": 100 * aupr_in,
        "aupr_out": 100 * aupr_out,
    }


def lee_reference(s_in, s_out) -> dict[str, float]:
    """calculate_log.py re-implemented as its merge walk over the two sorted lists (an in-distribution image
    leaves first at a tie) and explicit trapezoid sums over its padded curves."""
    known, novel = sorted(float(v) for v in s_in), sorted(float(v) for v in s_out)
    nk, nn_ = len(known), len(novel)
    tp, fp = [nk], [nn_]
    k = n = 0
    while k < nk or n < nn_:
        if k < nk and (n == nn_ or not novel[n] < known[k]):
            k += 1
            tp.append(tp[-1] - 1)
            fp.append(fp[-1])
        else:
            n += 1
            tp.append(tp[-1])
            fp.append(fp[-1] - 1)
    dist = [abs(t / nk - 0.95) for t in tp]
    pos = dist.index(min(dist))

    def trapz(ys, xs):
        return sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(len(xs) - 1))

    tpr = [1.0] + [t / nk for t in tp] + [0.0]
    fpr = [1.0] + [f / nn_ for f in fp] + [0.0]
    pin = [(0.5, 1.0)] + [(t / (t + f), t / nk) for t, f in zip(tp, fp) if t + f > 0] + [(0.0, 0.0)]
    pout = [(0.0, 0.0)]
    pout += [((nn_ - f) / (nk - t + nn_ - f), 1 - f / nn_) for t, f in zip(tp, fp) if nk - t + nn_ - f > 0]
    pout += [(0.5, 1.0)]
    return {
        "tnr_at_tpr95": 100 * (1 - fp[pos] / nn_),
        "auroc": -100 * trapz([1 - v for v in fpr], tpr),
        "detection_acc": 100 * max(0.5 * (t / nk + 1 - f / nn_) for t, f in zip(tp, fp)),
        "aupr_in": -100 * trapz([p for p, _ in pin], [r for _, r in pin]),
        "aupr_out": 100 * trapz([p for p, _ in pout], [r for _, r in pout]),
    }


def _tied_scores() -> tuple[np.ndarray, np.ndarray]:
    """20 in- and 15 out-of-distribution scores in [0, 1] with ties inside each side and across them (0.9, 0.5),
    one score below ODIN's grid start 0.01 and TPR passing exactly 19/20 = 0.95."""
    s_in = np.array([1.0, 0.99, 0.99, 0.97, 0.95, 0.9, 0.9, 0.9, 0.85, 0.8] + [0.75, 0.7, 0.7, 0.6, 0.5] * 2)
    s_in[-1] = 0.3  # the lowest in-score alone (tied with two OOD scores): TPR = 19/20 on the grid in (0.3, 0.5]
    s_out = np.array([0.9, 0.9, 0.5, 0.5, 0.45, 0.4, 0.3, 0.3, 0.2, 0.1, 0.05, 0.005, 0.6, 0.95, 0.02])
    return s_in, s_out


def _float32_saturated() -> tuple[np.ndarray, np.ndarray]:
    """MSP scores through the msp detector in float32 and float64: in-distribution logits so confident that every
    float32 maximum is exactly 1.0; OOD logits partly as confident (ties at 1.0), partly not."""
    z_in = torch.zeros(12, 10)
    z_in[:, 0] = torch.linspace(20.0, 30.0, 12)  # 9 exp(-20) < 2^-25: float32 rounds to 1.0, float64 does not
    z_out = torch.zeros(9, 10)
    z_out[:, 3] = torch.tensor([22.0, 25.0, 2.0, 1.0, 0.5, 3.0, 0.0, 5.0, 21.0])
    out = {}
    for dtype in ("float32", "float64"):
        det = detectors.build_detector("msp", score_dtype=dtype)
        out[dtype] = (det(lambda t: t, z_in)[0].numpy(), det(lambda t: t, z_out)[0].numpy())
    return out["float32"], out["float64"]


def test_metrics_as_odin_lee_exact_against_reference_loops_with_ties():
    s_in, s_out = _tied_scores()
    for name, start in (("cifar100", 0.01), ("cifar10", 0.1)):
        got, want = metrics.metrics_as("odin", s_in, s_out, name), odin_reference(s_in, s_out, start)
        assert got == pytest.approx(want, abs=1e-9), name
    assert metrics.metrics_as("lee", s_in, s_out) == pytest.approx(lee_reference(s_in, s_out), abs=1e-9)
    low_in = np.append(s_in, -1.0)  # the lowest score in-distribution: the walk's first step removes an in-image
    assert metrics.metrics_as("lee", low_in, s_out) == pytest.approx(lee_reference(low_in, s_out), abs=1e-9)
    assert metrics.metrics_as("exact", s_in, s_out) == pytest.approx(brute_metrics(s_in, s_out), abs=1e-9)
    # the codes disagree at ties: the exact AUROC counts the tied pairs as one half, the grid / walk do not
    assert metrics.metrics_as("odin", s_in, s_out)["auroc"] != pytest.approx(brute_metrics(s_in, s_out)["auroc"])
    with pytest.raises(ValueError, match="metrics_as"):
        metrics.metrics_as("sklearn", s_in, s_out)


def test_metrics_as_odin_on_scores_at_the_grid_points_the_window_edges_and_above_the_grid():
    """Scores that sit exactly on ODIN's thresholds (ge / gt / lt differ there), above the last threshold (the
    last-point terms of AUROC and AUPR count), and 2000 in-distribution scores spread so that the TPR passes through
    exactly 0.9505 and 0.9495 (1901 / 2000, 1899 / 2000: the FPR95 window's closed ends)."""
    grid = metrics.odin_grid("cifar100")
    s_in = np.linspace(0.02, 0.9999, 2000)
    s_in[1900:1905] = grid[[98000, 98000, 98500, 99000, 99998]]  # ties on thresholds, near the window
    s_in[-3:] = [grid[-1], 0.999995, 1.0]  # at and above the last threshold
    # the thresholds where TPR is 1901, 1900 and 1899 / 2000 lie between the 99th, ..., 102nd smallest in-scores:
    # out-scores between them and on thresholds there make the FPR differ across the window
    lo = np.sort(s_in)[98:102]
    window = grid[(grid > lo[0]) & (grid <= lo[-1])]
    rng = np.random.default_rng(7)
    s_out = np.concatenate(
        [
            rng.uniform(0.0, 0.97, 280),
            (lo[:-1] + lo[1:]) / 2,
            window[[2, len(window) // 2, -3]],  # exactly on thresholds inside the window
            grid[[5, 5, 50000, 98000, 98500, 99999]],  # on thresholds, two of them shared with in-scores
            [0.999999, 1.0] * 5,
            [0.0] * 5,
        ]
    )
    got, want = metrics.metrics_as("odin", s_in, s_out, "cifar100"), odin_reference(s_in, s_out, 0.01)
    assert np.isfinite(list(want.values())).all()
    assert metrics.metrics_as("lee", s_in, s_out) == pytest.approx(lee_reference(s_in, s_out), abs=1e-9)
    assert metrics.metrics_as("exact", s_in, s_out) == pytest.approx(brute_metrics(s_in, s_out), abs=1e-9)
    assert metrics._sequential_sum(np.array([])) == 0.0  # an empty loop adds nothing
    assert metrics._sequential_sum(np.array([1e16, 1.0, -1e16])) == 0.0  # left to right: 1e16 + 1 rounds to 1e16
    assert got == pytest.approx(want, abs=1e-9)


def test_metrics_as_with_every_in_distribution_score_at_one_in_float32():
    (in32, out32), (in64, out64) = _float32_saturated()
    assert (in32 == 1.0).all() and (in64 < 1.0).all()  # float32 rounds every maximum to 1.0, float64 does not
    assert (out32 == 1.0).sum() == 3 and (out64 < 1.0).all()
    odin = metrics.metrics_as("odin", in32, out32, "cifar100")
    want = odin_reference(in32, out32, 0.01)
    assert np.isnan(odin["tnr_at_tpr95"]) and np.isnan(want["tnr_at_tpr95"])  # TPR = 1 on the whole grid
    assert {k: v for k, v in odin.items() if k != "tnr_at_tpr95"} == pytest.approx(
        {k: v for k, v in want.items() if k != "tnr_at_tpr95"}, abs=1e-9
    )
    assert odin["auroc"] == pytest.approx(100.0)  # whatever the OOD scores: TPR is 1 at every grid point
    lee = metrics.metrics_as("lee", in32, out32)
    assert lee == pytest.approx(lee_reference(in32, out32), abs=1e-9)
    exact = metrics.metrics_as("exact", in32, out32)
    assert exact == pytest.approx(brute_metrics(in32, out32), abs=1e-9)
    assert exact["auroc"] == pytest.approx(100 * (1 - 3 * 12 * 0.5 / (12 * 9)))  # 3 OOD ties at 1.0 count one half
    # in float64 the in-distribution scores are apart, and the exact code ranks them
    assert metrics.metrics_as("exact", in64, out64) == pytest.approx(brute_metrics(in64, out64), abs=1e-9)


def test_score_dtype_of_the_detectors():
    z = torch.tensor([[3.0, 1.0, 0.0], [20.0, -5.0, 0.0]])
    for dtype, np_dtype in (("float32", np.float32), ("float64", np.float64)):
        s, logits = detectors.build_detector("msp", score_dtype=dtype)(lambda t: t, z)
        e = np.exp(z.numpy().astype(np_dtype) - z.numpy().astype(np_dtype).max(1, keepdims=True))
        assert s.dtype == torch.float64 and np.allclose(s.numpy(), (e / e.sum(1, keepdims=True)).max(1), rtol=1e-6)
        assert (float(s[1]) == 1.0) == (dtype == "float32")  # 1 + 2e-9 is 1.0 in float32 only
    assert detectors.build_detector("energy", score_dtype="float32").all_params()["score_dtype"] == "float32"
    with pytest.raises(ConfigError, match="--score-dtype"):
        detectors.build_detector("msp", score_dtype="float16")


def test_tool_skip_first_metrics_as_and_score_dtype(tiny, tmp_path, capsys):
    main = TOOL.main()
    base = ["--backbone", str(tiny["ckpt"]), "--data-root", str(tiny["cifar"]), "--device", "cpu", "--seed", "5"]
    base += ["--ood", str(tiny["ood"] / "LSUN"), "uniform", "--noise-count", "9", "--batch-size", "8"]
    assert main(base + ["--out", str(tmp_path / "full"), "--no-progress"]) == 0
    extra = ["--skip-first", "2", "--metrics-as", "lee", "--score-dtype", "float32"]
    assert main(base + extra + ["--out", str(tmp_path / "skip"), "--no-progress"]) == 0
    full, skip = np.load(tmp_path / "full" / "scores.npz"), np.load(tmp_path / "skip" / "scores.npz")
    rec = json.loads((tmp_path / "skip" / "results.json").read_text())
    for key in ("in_distribution", "LSUN", "uniform"):  # every set loses its first 2 images, in-distribution too
        assert skip[key].size == full[key].size - 2
        assert np.allclose(skip[key], full[key][2:], rtol=1e-6)  # float32 softmax vs float64
        assert np.array_equal(skip[key].astype(np.float32).astype(np.float64), skip[key])  # float32 values
    for name in ("LSUN", "uniform"):
        want = lee_reference(skip["in_distribution"], skip[name])
        assert {k: rec["per_set"][name][k] for k in metrics.METRICS} == pytest.approx(want, abs=1e-9)
    proto = rec["protocol"]
    assert rec["record_version"] == 2 and (proto["cpu_pin"] == "unpinned" or proto["cpu_pin"].startswith("avx2-"))
    assert (proto["metrics_as"], proto["score_dtype"], proto["skip_first"], proto["detector"]) == (
        "lee",
        "float32",
        2,
        "msp",
    )
    rows = read_csv(tmp_path / "skip" / "per_image" / "in_distribution.csv")
    assert [int(r["index"]) for r in rows] == list(range(2, 20))
    assert [int(r["label"]) for r in rows] == list(tiny["labels"][2:])
    assert rec["data"]["num_images"] == 18 + 5 + 7
    full_rec = json.loads((tmp_path / "full" / "results.json").read_text())
    assert full_rec["data"]["images_sha256"] != rec["data"]["images_sha256"]
    # the report computes no bootstrap interval from a reference code's numbers
    assert per_image_statistic(tmp_path / "skip" / "results.json", rec, "auroc") is None
    # odin / lee need scores in [0, 1]: refused for the energy detector, in one line
    out = ["--out", str(tmp_path / "o")]
    line = _error_line(main, base + out + ["--detector", "energy", "--metrics-as", "odin"], capsys)
    assert "--metrics-as odin needs scores in [0, 1]" in line and "energy" in line
    line = _error_line(main, base + out + ["--skip-first", "9"], capsys)
    assert "--skip-first 9 leaves no image" in line


def test_torchrun_two_processes_equal_single(tiny, tmp_path):
    """Under torchrun each rank scores whole batches of the single-process sequence: the same scores, bit for bit,
    as one process on one thread (torchrun's workers run one intra-op thread), rank 0 alone writing."""
    args = ["--backbone", str(tiny["ckpt"]), "--data-root", str(tiny["cifar"]), "--device", "cpu", "--seed", "5"]
    args += ["--ood", str(tiny["ood"] / "LSUN"), "uniform", "--noise-count", "9", "--batch-size", "4"]
    args += ["--skip-first", "1", "--no-progress"]
    assert TOOL.run_single_threaded(args + ["--out", str(tmp_path / "single")]) == 0
    proc = run_torchrun(TOOL.path, args + ["--out", str(tmp_path / "dist")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("mean") == 1  # rank 0 prints, rank 1 does not
    single, dist = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("single", "dist"))
    assert (single["world_size"], dist["world_size"]) == (1, 2)
    assert dist["metrics"] == single["metrics"] and dist["per_set"] == single["per_set"]
    a, b = np.load(tmp_path / "single" / "scores.npz"), np.load(tmp_path / "dist" / "scores.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    for name in ("in_distribution", "LSUN", "uniform"):
        csv_a, csv_b = (tmp_path / d / "per_image" / f"{name}.csv" for d in ("single", "dist"))
        assert csv_a.read_text() == csv_b.read_text()
