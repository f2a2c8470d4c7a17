"""The exact-resume seeding of runner.py, in process (test_resume.py checks it end to end through killed training
subprocesses, which a mutation tool cannot attribute): every training iteration reseeds the CutMix box, lambda and
partner permutation and the global generators from (seed, stream, iteration, rank); every sample's random crop
and flip come from (seed, stream, epoch, position in the epoch over all ranks). Expectations are computed here
from numpy's SeedSequence and CutMix-PyTorch's box rule, not by calling the library's own helpers."""

from __future__ import annotations

import copy
import logging
import math
import pickle
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATASETS
from PIL import Image

from cutmix_transfer import runner as runner_mod
from cutmix_transfer.classification.model import MixAugmentPreprocessor
from cutmix_transfer.datasets.transforms import build_transform
from cutmix_transfer.runner import (
    ReproducibleRandomnessHook,
    SeededDataset,
    SeededIndex,
    SeededSampler,
    derive_seed,
    make_training_reproducible,
)

GLOBAL, AUGMENT, SAMPLE = 1, 2, 3  # the stream tags docs/reproducibility.md gives


def seed_of(*keys: int) -> int:
    """The documented derivation: numpy's SeedSequence of the keys (mod 2**63), first 64-bit word, top 63 bits."""
    words = np.random.SeedSequence([k % 2**63 for k in keys]).generate_state(2, np.uint64)
    return int(words[0]) >> 1


def cutmix_by_hand(seed: int, batch: int, height: int, width: int) -> tuple[float, list[int], tuple[int, ...]]:
    """CutMix-PyTorch's draws from a fresh numpy Generator: the prob draw, lam ~ Beta(1, 1), the partner
    permutation, the box centre; side int(W * sqrt(1 - lam)), clipped; lambda corrected to the kept area."""
    rng = np.random.default_rng(seed)
    rng.random()  # the "apply at all?" draw (prob 1)
    lam = rng.beta(1.0, 1.0)
    perm = rng.permutation(batch).tolist()
    cut_w, cut_h = int(width * math.sqrt(1 - lam)), int(height * math.sqrt(1 - lam))
    cx, cy = int(rng.integers(width)), int(rng.integers(height))
    x0, x1 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    y0, y1 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    kept = 1 - (x1 - x0) * (y1 - y0) / (width * height)
    return kept, perm, (int(x0), int(y0), int(x1), int(y1))


class _Model(torch.nn.Module):
    """What the hook reads of a classifier: a data preprocessor holding the batch augment."""

    def __init__(self) -> None:
        super().__init__()
        self.data_preprocessor = MixAugmentPreprocessor(augment=dict(mode="cutmix", beta=1.0))


class _Runner:
    def __init__(self, seed: int, iteration: int) -> None:
        self.seed, self.iter, self.model = seed, iteration, _Model()


def _batch(n: int = 5, size: int = 24) -> dict:
    images = torch.arange(n * 3 * size * size, dtype=torch.float32).view(n, 3, size, size)
    return {"inputs": images, "data_samples": torch.arange(n) + 10}


def _iteration(seed: int, iteration: int, rank: int = 0, monkeypatch=None):
    """The hook before `iteration`, then the preprocessor's training step on a fixed batch -> its MixedBatch."""
    if monkeypatch is not None:
        monkeypatch.setattr(runner_mod, "get_rank", lambda: rank)
    run = _Runner(seed, iteration)
    ReproducibleRandomnessHook().before_train_iter(run, batch_idx=iteration % 3)
    return run.model.data_preprocessor(_batch(), training=True)["data_samples"]


def test_derive_seed_is_the_seed_sequence_of_its_keys():
    cases = [(0,), (7, 2, 0, 0), (7, 2, 1, 0), (7, 2, 0, 1), (7, 1, 0, 0), (8, 2, 0, 0), (2, 7, 0, 0), (-1, 3)]
    seeds = [derive_seed(*c) for c in cases]
    assert seeds == [seed_of(*c) for c in cases]
    assert len(set(seeds)) == len(cases)  # each key, and the order of the keys, matters
    assert all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(-1, 3) == derive_seed(2**63 - 1, 3)  # keys are taken mod 2**63


def test_each_iteration_draws_its_own_cutmix_box_lambda_and_partners():
    seed = 5
    got = {it: _iteration(seed, it) for it in range(8)}
    for it, mixed in got.items():
        lam, perm, box = cutmix_by_hand(seed_of(seed, AUGMENT, it, 0), 5, 24, 24)
        assert mixed.box_xyxy == box and mixed.lam == pytest.approx(lam, abs=1e-12), it
        assert mixed.target_b.tolist() == [10 + p for p in perm]
        x0, y0, x1, y1 = box
        src = _batch()["inputs"]
        want = src.clone()
        want[:, :, y0:y1, x0:x1] = src[perm][:, :, y0:y1, x0:x1]
        assert torch.equal(mixed.images, want)
    assert len({m.box_xyxy for m in got.values()}) == 8 and len({m.lam for m in got.values()}) == 8
    # a resumed run (iteration 5 again, after others) draws what iteration 5 drew; other seeds draw otherwise
    again = _iteration(seed, 5)
    assert (
        again.box_xyxy == got[5].box_xyxy and again.lam == got[5].lam and torch.equal(again.target_b, got[5].target_b)
    )
    assert _iteration(seed + 1, 5).box_xyxy != got[5].box_xyxy or _iteration(seed + 1, 5).lam != got[5].lam


def test_ranks_draw_different_boxes_from_their_own_seed(monkeypatch):
    seed, it = 3, 4
    r0, r1 = _iteration(seed, it, 0, monkeypatch), _iteration(seed, it, 1, monkeypatch)
    assert (r1.lam, r1.box_xyxy) != (r0.lam, r0.box_xyxy)
    lam, perm, box = cutmix_by_hand(seed_of(seed, AUGMENT, it, 1), 5, 24, 24)
    assert r1.box_xyxy == box and r1.lam == pytest.approx(lam, abs=1e-12)
    assert r1.target_b.tolist() == [10 + p for p in perm]


def test_global_generators_are_reseeded_from_seed_iteration_and_rank(monkeypatch):
    for rank in (0, 1):
        monkeypatch.setattr(runner_mod, "get_rank", lambda r=rank: r)
        for it in (0, 1, 9):
            random.seed(123)  # whatever state the generators had before
            np.random.seed(123)
            torch.manual_seed(123)
            ReproducibleRandomnessHook().before_train_iter(_Runner(11, it), batch_idx=0)
            s = seed_of(11, GLOBAL, it, rank)
            got = (random.random(), float(np.random.rand()), float(torch.rand(())))
            ref = torch.Generator().manual_seed(s)
            want = (
                random.Random(s).random(),
                float(np.random.RandomState(s % 2**32).rand()),
                float(torch.rand((), generator=ref)),
            )
            assert got == want, (rank, it)


def test_the_hook_finds_the_augment_of_the_model():
    run = _Runner(2, 6)
    assert runner_mod.batch_augments(run.model) == [run.model.data_preprocessor.augment]
    assert runner_mod.batch_augments(torch.nn.Linear(2, 2)) == []  # no preprocessor: nothing to reseed
    ReproducibleRandomnessHook().before_train_iter(run, batch_idx=0)
    lam, _, box = cutmix_by_hand(seed_of(2, AUGMENT, 6, 0), 5, 24, 24)
    mixed = run.model.data_preprocessor(_batch(), training=True)["data_samples"]
    assert mixed.box_xyxy == box and mixed.lam == pytest.approx(lam, abs=1e-12)


class _Range(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


@pytest.mark.parametrize("rank,world", [(0, 1), (1, 2), (2, 3)])
def test_sampler_seeds_follow_seed_epoch_and_position_over_all_ranks(monkeypatch, rank, world):
    import mmengine.dataset.sampler as mm_sampler

    monkeypatch.setattr(mm_sampler, "get_dist_info", lambda: (rank, world))
    data = _Range(10)
    ours, theirs = SeededSampler(data, shuffle=True, seed=4), DefaultSampler(data, shuffle=True, seed=4)
    for epoch in (0, 3):
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        got = list(ours)
        order = torch.randperm(10, generator=torch.Generator().manual_seed(4 + epoch)).tolist()
        total = math.ceil(10 / world) * world
        order = (order * 2)[:total][rank::world]
        assert [int(i) for i in got] == order == list(theirs)  # mmengine's order, unchanged
        assert all(isinstance(i, SeededIndex) for i in got)
        assert [i.seed for i in got] == [seed_of(4, SAMPLE, epoch, rank + k * world) for k in range(len(got))]
    epoch0 = [i.seed for i in (ours.set_epoch(0) or ours)]
    assert len(set(epoch0)) == len(epoch0)


class _Crops(torch.utils.data.Dataset):
    """Gradient images through the CIFAR recipe (pad 4, random 16x16 crop, flip): the crop shows in the pixels."""

    def __init__(self) -> None:
        self.transform = build_transform("pad_crop_train", 16, mean=(0, 0, 0), std=(1, 1, 1))
        yy, xx = np.mgrid[0:16, 0:16]
        self.images = [
            Image.fromarray(np.stack([xx * 16, yy * 16, np.full_like(xx, k * 40)], -1).astype(np.uint8))
            for k in range(3)
        ]

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.images[index])


def test_sample_crops_come_from_the_sample_seed_and_restore_the_generators():
    data, wrapped = _Crops(), SeededDataset(_Crops())
    crops = {}
    for epoch in range(6):
        s = seed_of(9, SAMPLE, epoch, 1)
        torch.manual_seed(77)
        before = torch.rand(3)
        torch.manual_seed(77)
        got = wrapped[SeededIndex(1, s)]
        assert torch.equal(torch.rand(3), before)  # the main process's generators are left as they were
        torch.manual_seed(s)
        random.seed(s)
        np.random.seed(s % 2**32)
        assert torch.equal(got, data[1]), epoch  # the transform drew from generators seeded with s
        crops[epoch] = got
        assert torch.equal(wrapped[SeededIndex(1, s)], got)  # the same seed, the same crop (a resume)
    assert len({c.numpy().tobytes() for c in crops.values()}) >= 4  # epochs crop differently
    torch.manual_seed(5)
    plain = wrapped[2]  # a plain index (no seed) draws from the global generators as they are
    torch.manual_seed(5)
    assert torch.equal(plain, data[2])
    assert len(wrapped) == 3 and wrapped.images is wrapped.dataset.images  # other attributes are the dataset's


def test_make_training_reproducible_rewrites_the_config_once(caplog):
    cfg = _Cfg(
        custom_hooks=[dict(type="EMAHook")],
        train_dataloader=dict(
            dataset=dict(type="CIFARDataset", root="x"), sampler=dict(type="DefaultSampler", shuffle=True)
        ),
    )
    make_training_reproducible(cfg)
    assert cfg.custom_hooks == [dict(type="EMAHook"), dict(type="ReproducibleRandomnessHook")]
    assert cfg.train_dataloader["dataset"] == dict(type="SeededDataset", dataset=dict(type="CIFARDataset", root="x"))
    assert cfg.train_dataloader["sampler"] == dict(type="SeededSampler", shuffle=True)
    make_training_reproducible(cfg)  # idempotent: nothing wrapped or added twice
    assert [h["type"] for h in cfg.custom_hooks] == ["EMAHook", "ReproducibleRandomnessHook"]
    assert cfg.train_dataloader["dataset"]["dataset"] == dict(type="CIFARDataset", root="x")
    no_sampler = _Cfg(train_dataloader=dict(dataset=dict(type="D")))
    make_training_reproducible(no_sampler)
    assert no_sampler.train_dataloader["sampler"] == dict(type="SeededSampler")
    assert no_sampler.custom_hooks == [dict(type="ReproducibleRandomnessHook")]
    other = _Cfg(train_dataloader=dict(dataset=dict(type="D"), sampler=dict(type="InfiniteSampler")))
    make_training_reproducible(other)
    assert other.train_dataloader["sampler"] == dict(type="InfiniteSampler")  # left alone (and warned about)
    already = _Cfg(
        train_dataloader=dict(dataset=dict(type="SeededDataset", dataset={}), sampler=dict(type="SeededSampler"))
    )
    with caplog.at_level(logging.WARNING, logger="cutmix_transfer.runner"):
        caplog.clear()
        make_training_reproducible(already)  # already seeded: no warning
        assert not caplog.records
        make_training_reproducible(other)
        assert [r.levelno for r in caplog.records] == [logging.WARNING] and "InfiniteSampler" in caplog.text
    bare = _Cfg()
    make_training_reproducible(bare)
    assert bare.custom_hooks == [dict(type="ReproducibleRandomnessHook")] and "train_dataloader" not in bare


class _Cfg(dict):
    """The part of mmengine's Config that make_training_reproducible uses: get() and attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


class _Tiny(torch.utils.data.Dataset):
    """A registered dataset with a dunder attribute of its own (module level: the wrapper is pickled)."""

    __marker__ = "the wrapped dataset's"

    def __init__(self, n: int = 4) -> None:
        self.n, self.metainfo = n, {"classes": ("a", "b")}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def test_seeded_dataset_wrapper_builds_copies_and_never_recurses():
    """A config dict is built through the registry; pickling, copying and a half-built wrapper (no `dataset` yet)
    answer AttributeError for the wrapped dataset's names instead of recursing; dunder names are not forwarded."""

    DATASETS.register_module(name="_TinySeedTestDataset", module=_Tiny, force=True)
    built = SeededDataset(dict(type="_TinySeedTestDataset", n=6))
    assert isinstance(built.dataset, _Tiny) and len(built) == 6 and built.metainfo == {"classes": ("a", "b")}
    for clone in (pickle.loads(pickle.dumps(built)), copy.deepcopy(built), copy.copy(built)):
        assert len(clone) == 6 and clone[SeededIndex(2, 11)] == 2
    assert not hasattr(built, "__marker__")  # dunder names stay the wrapper's own (copy / pickle protocols)
    bare = SeededDataset.__new__(SeededDataset)
    assert not hasattr(bare, "dataset") and not hasattr(bare, "metainfo")


def test_seeded_samples_never_touch_cuda_generators(monkeypatch):
    """Loading a sample reseeds only the CPU generators, in the main process and in a loader worker: seeding CUDA
    there would initialise CUDA in a forked worker."""
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls.append(seed))
    # torch.manual_seed skips CUDA in a process forked after CUDA was probed (as a mutation tool's children are):
    # the check must not depend on that
    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: False)
    wrapped = SeededDataset(_Crops())
    wrapped[SeededIndex(1, 123)]
    monkeypatch.setattr(runner_mod, "get_worker_info", lambda: object())  # as inside a worker
    torch.default_generator.manual_seed(0)
    got = wrapped[SeededIndex(1, 123)]
    assert calls == [] and torch.initial_seed() == 123  # the worker's generators are left seeded
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    assert torch.equal(got, _Crops()[1])
