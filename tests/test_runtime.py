"""The evaluation tools' shared set-up: device, seeds, input size (runtime.py) and the torchrun helpers
(distributed.py), checked against plain torch / numpy."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.distributed as dist

from cutmix_transfer.distributed import TorchrunRank, all_gather_objects, all_reduce_counts, setup_torchrun
from cutmix_transfer.errors import ConfigError
from cutmix_transfer.runtime import check_input_size, resolve_device, seed_everything


def test_resolve_device():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device 'gpu0' is not a device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device is visible"):
            resolve_device("cuda:0")


def test_seed_everything_repeats_every_generator():
    def draw() -> tuple:
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first
    seed_everything(2**32 + 123)  # numpy's seed is taken modulo 2**32 (numpy refuses larger ones), Python's is not
    again = draw()
    assert again[1] == first[1] and again[0] != first[0]


@pytest.mark.parametrize("size,ok", [(31, False), (32, True), (224, True), (1024, True), (1025, False)])
def test_check_input_size(size, ok):
    if ok:
        check_input_size(size)
    else:
        with pytest.raises(ConfigError, match=f"--image-size {size}: .*32..1024"):
            check_input_size(size)


def test_setup_torchrun_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert setup_torchrun(torch.device("cpu")) == TorchrunRank(0, 1, False, torch.device("cpu"))


def test_all_reduce_and_gather_on_a_one_process_group(tmp_path):
    """World size 1 (gloo, file store): the sum of one rank is its own counts, the gather is [its object]."""
    assert not dist.is_initialized()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        counts = {"b": np.array([[1, 2], [3, 2**40]], dtype=np.int64), "a": np.arange(3)}
        summed = all_reduce_counts(counts, torch.device("cpu"))
        assert list(summed) == ["a", "b"]  # sorted: every rank reduces the keys in the same order
        assert all(summed[k].dtype == np.int64 and np.array_equal(summed[k], counts[k]) for k in counts)
        assert all_gather_objects([{"index": 4}]) == [[{"index": 4}]]
    finally:
        dist.destroy_process_group()
