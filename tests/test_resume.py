"""Exact resume (issue 17): a training run killed with SIGKILL and continued with --resume ends with the same
weights, optimizer state, logged values and result metrics, bit for bit, as a run that was never interrupted.

Every run is a subprocess of the real tool on the tiny generated demo data, one thread each. Kill points:
train_cls at a random moment after the first checkpoint, then (resumed) during its final validation, then
(resumed) between its last checkpoint and its record; train_cls under torchrun (2 CPU processes, gloo),
train_det and train_caption during a checkpoint write (the last one for train_det and train_caption, which is
written after the final validation). A kill point that is not reached, or a run that ends first, fails the test.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import NIC_TINY_OPTIONS
from mmengine.logging import HistoryBuffer

from cutmix_transfer.checkpoints import safe_torch_load
from cutmix_transfer.errors import ConfigError
from cutmix_transfer.runner import (
    SAMPLE_STREAM,
    SeededDataset,
    SeededIndex,
    SeededSampler,
    derive_seed,
    train_and_validate,
)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "cls"
UNTIMED = ("train/time", "train/data_time", "val/time", "val/data_time")  # wall-clock values, never equal


# A slow disk for the runs killed during a checkpoint write: mmengine's save_checkpoint (as the Runner calls it)
# writes the real checkpoint bytes in two halves 3 s apart, so the kill lands inside the write on a busy machine.
# Loaded through a sitecustomize module on the killed run's PYTHONPATH only; the resumed run writes normally.
_SLOW_DISK = '''
import io, time
import torch
import mmengine.runner.runner as _runner

def _slow_save_checkpoint(checkpoint, filename, **kwargs):
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    data = buf.getvalue()
    with open(filename, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(3)
        f.write(data[len(data) // 2:])

_runner.save_checkpoint = _slow_save_checkpoint
'''


def _env(slow_disk: Path | None = None) -> dict:
    """One thread, the repository importable; with `slow_disk` (a folder) checkpoint writes take 3 s."""
    path = [str(REPO)]
    if slow_disk is not None:
        slow_disk.mkdir(parents=True, exist_ok=True)
        (slow_disk / "sitecustomize.py").write_text(_SLOW_DISK)
        path.insert(0, str(slow_disk))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _run(cmd: list[str], timeout: float = 300, env: dict | None = None) -> None:
    res = subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]


def _kill_when(
    cmd: list[str], ready: Callable[[], bool], delay: float, log: Path, timeout: float = 240, env: dict | None = None
) -> None:
    """Start `cmd`, SIGKILL its process group (loader workers, torchrun's ranks) `delay` seconds after `ready()`
    first holds (polled every millisecond)."""
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, env=env or _env(), stdout=err, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while not ready():
            assert proc.poll() is None, f"ended before the kill point: {log.read_text()[-3000:]}"
            assert time.time() < deadline, "kill point not reached in time"
            time.sleep(0.001)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"finished before the kill (delay {delay:.2f} s)"


def _last(work: Path) -> str:
    marker = work / "last_checkpoint"
    return marker.read_text().strip() if marker.is_file() else ""


def _assert_same(a: Any, b: Any, where: str) -> None:
    """Equal to the bit: tensors (dtype, shape, values), arrays, history buffers, containers, plain values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, HistoryBuffer):
        _assert_same(a.data, b.data, where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_checkpoint(a: Path, b: Path) -> dict:
    """Weights, optimizer, schedulers, epoch/iter/seed and every logged scalar's history (timings aside) equal."""
    ca, cb = safe_torch_load(a), safe_torch_load(b)
    for key in ("epoch", "iter", "seed"):
        assert ca["meta"][key] == cb["meta"][key], key
    for key in ("state_dict", "optimizer", "param_schedulers"):
        assert (key in ca) == (key in cb), key
        if key in ca:
            _assert_same(ca[key], cb[key], key)
    sa, sb = ca["message_hub"]["log_scalars"], cb["message_hub"]["log_scalars"]
    logged = sorted(k for k in sa if k not in UNTIMED)
    assert logged == sorted(k for k in sb if k not in UNTIMED) and any("loss" in k for k in logged), logged
    for k in logged:
        _assert_same(sa[k], sb[k], f"message_hub.{k}")
    return ca


# ----------------------------------------------------------------------------------------------- train_cls
def _tiny_cls_config(tmp_path: Path, demo_root: Path, max_epochs: int = 3) -> Path:
    """demo_cutmix on the tiny demo (16 train images, 64 px, batch 8: 2 iterations an epoch), with the demo's
    persistent loader worker, validation every epoch and every checkpoint kept."""
    path = tmp_path / "tiny_cutmix.py"
    path.write_text(f"""
_base_ = {str(CONFIGS / 'demo_cutmix.py')!r}
data_root = {str(demo_root / 'CUB_200_2011')!r}
model = dict(num_classes=4)
train_dataloader = dict(batch_size=8, num_workers=1, persistent_workers=True,
                        dataset=dict(root=data_root, transform=dict(size=64)))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                      dataset=dict(root=data_root, transform=dict(size=64)))
train_cfg = dict(max_epochs={max_epochs}, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
                   dict(type='CosineAnnealingLR', T_max={max_epochs}, by_epoch=True, begin=0, end={max_epochs},
                        convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=1))
visualizer = dict(vis_backends=[])
""")
    return path


@pytest.fixture(scope="module")
def cls_reference(tmp_path_factory, demo_root) -> dict:
    """An uninterrupted tiny CutMix pretraining: its config, command maker and work dir."""
    tmp = tmp_path_factory.mktemp("cls_resume")
    config = _tiny_cls_config(tmp, demo_root)

    def cmd(work: Path) -> list[str]:
        return [
            sys.executable,
            str(REPO / "tools" / "train_cls.py"),
            str(config),
            "--work-dir",
            str(work),
            "--seed",
            "3",
        ]

    ref = tmp / "reference"
    _run(cmd(ref))
    return {"cmd": cmd, "work": ref, "tmp": tmp}


def _assert_cls_same(ref: Path, work: Path) -> None:
    final = assert_same_checkpoint(ref / "epoch_3.pth", work / "epoch_3.pth")
    assert final["meta"]["epoch"] == 3 and final["meta"]["iter"] == 6
    rec_a, rec_b = (json.loads((w / "results.json").read_text()) for w in (ref, work))
    assert rec_a["metrics"] == rec_b["metrics"] and set(rec_a["metrics"]) == {"top1_err", "top5_err"}
    assert rec_a["epochs"] == rec_b["epochs"] == 3
    assert (ref / "per_image.csv").read_bytes() == (work / "per_image.csv").read_bytes()  # same predictions


@pytest.mark.slow
def test_train_cls_under_torchrun_killed_during_a_checkpoint_write_resumes_exactly(cls_reference):
    """2 CPU processes (gloo): 8 images per rank per step over the 16 training images, 1 iteration an epoch."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(PYTHON=sys.executable, PORT=str(port))
    config = cls_reference["cmd"](Path("unused"))[2]

    def cmd(work: Path) -> list[str]:
        return ["bash", str(REPO / "tools" / "dist_train.sh"), config, "2", "--work-dir", str(work), "--seed", "3"]

    tmp = cls_reference["tmp"]
    _run(cmd(tmp / "ddp_reference"), env=dict(_env(), **env))
    _kill_in_write_then_resume(cmd(tmp / "ddp_killed"), tmp / "ddp_killed", 2, env=env)
    final = assert_same_checkpoint(tmp / "ddp_reference" / "epoch_3.pth", tmp / "ddp_killed" / "epoch_3.pth")
    assert final["meta"]["iter"] == 3
    rec_a, rec_b = (json.loads((tmp / w / "results.json").read_text()) for w in ("ddp_reference", "ddp_killed"))
    assert rec_a["metrics"] == rec_b["metrics"]
    per_image = [(tmp / w / "per_image.csv").read_text() for w in ("ddp_reference", "ddp_killed")]
    assert per_image[0] == per_image[1] and per_image[0].count("\n") == 1 + 8  # gathered: each image once


@pytest.mark.slow
def test_train_cls_killed_at_random_then_in_final_validation_resumes_exactly(cls_reference):
    work = cls_reference["tmp"] / "killed_twice"
    cmd = cls_reference["cmd"](work)
    delay = random.Random().uniform(0.0, 1.0)  # a random moment after the first checkpoint (reported on failure)
    _kill_when(cmd, lambda: bool(_last(work)), delay, work.parent / "random.log")
    assert not (work / "results.json").exists(), f"delay {delay:.3f} s"
    log = work.parent / "final_val.log"
    _kill_when(cmd + ["--resume"], lambda: "Epoch(val) [3][" in log.read_text(), 0.0, log)
    assert _last(work) == str(work / "epoch_2.pth")  # killed during the final validation
    final = str(work / "epoch_3.pth")
    _kill_when(cmd + ["--resume"], lambda: _last(work) == final, 0.0, work.parent / "after_final.log")
    assert not (work / "results.json").exists()  # killed after the last checkpoint, before the record
    _run(cmd + ["--resume"])  # trains no further, but still validates and writes the record
    _assert_cls_same(cls_reference["work"], work)


# ----------------------------------------------------------------------------------------- train_det, train_caption
@pytest.fixture(scope="module")
def r18_backbone(tmp_path_factory) -> Path:
    """A torchvision-format ResNet-18 checkpoint (random weights) for the detector's and captioner's encoder."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("r18") / "resnet18_cutmix.pth"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=10).state_dict(), path)
    return path


def _kill_in_write_then_resume(cmd: list[str], work: Path, epoch: int, env: dict | None = None) -> None:
    """Run `cmd` in `work`, SIGKILL it while it writes epoch `epoch`'s checkpoint (on a slow disk), then resume to
    the end. `env`: extra environment variables of both runs."""
    partial = work / f".epoch_{epoch}.pth.tmp"
    slow = dict(_env(slow_disk=work.parent / f"{work.name}_slow_disk"), **(env or {}))
    _kill_when(
        cmd, lambda: partial.exists() and partial.stat().st_size > 0, 0.5, work.parent / f"{work.name}.log", env=slow
    )
    assert partial.exists() and not (work / f"epoch_{epoch}.pth").exists()
    assert _last(work) == (str(work / f"epoch_{epoch - 1}.pth") if epoch > 1 else "")
    _run(cmd + ["--resume"], env=dict(_env(), **(env or {})))


def _killed_mmengine_training_resumes_exactly(
    tmp_path: Path, tool: str, config: Path, backbone: Path, seed: str, data_root: Path, options: list[str]
) -> dict:
    """tools/<tool> run to the end in reference/, and in killed/ SIGKILLed while writing epoch 2's checkpoint then
    resumed; both final checkpoints must be the same (asserted). Returns the final checkpoint."""

    def cmd(work: Path) -> list[str]:
        return [
            sys.executable,
            str(REPO / "tools" / tool),
            str(config),
            "--backbone",
            str(backbone),
            "--work-dir",
            str(work),
            "--seed",
            seed,
            "--data-root",
            str(data_root),
            "--cfg-options",
            *options,
        ]

    _run(cmd(tmp_path / "reference"))
    _kill_in_write_then_resume(cmd(tmp_path / "killed"), tmp_path / "killed", 2)
    return assert_same_checkpoint(tmp_path / "reference" / "epoch_2.pth", tmp_path / "killed" / "epoch_2.pth")


# Faster R-CNN on the demo config at 128 px with few proposals; 4 + 4 trainval images at batch 4: 2 iterations an
# epoch, 2 epochs, validation (mAP on the 4 test images) after the last one.
DET_OPTIONS = (
    [f"train_dataloader.dataset.dataset.datasets.{i}.pipeline.2.scale=(128,128)" for i in (0, 1)]
    + [f"train_dataloader.dataset.dataset.datasets.{i}.indices=4" for i in (0, 1)]
    + [
        "val_dataloader.dataset.pipeline.1.scale=(128,128)",
        "train_dataloader.batch_size=4",
        "model.train_cfg.rpn_proposal.max_per_img=100",
        "model.train_cfg.rcnn.sampler.num=64",
        "model.test_cfg.rpn.nms_pre=200",
        "model.test_cfg.rpn.max_per_img=50",
        "train_cfg.max_epochs=2",
        "train_cfg.val_interval=2",
        "default_hooks.checkpoint.interval=1",
        "default_hooks.checkpoint.max_keep_ckpts=1",
        "default_hooks.logger.interval=1",
    ]
)


@pytest.mark.slow
def test_train_det_killed_during_a_checkpoint_write_resumes_exactly(tmp_path, demo_root, r18_backbone):
    pytest.importorskip("mmdet")

    config = REPO / "configs" / "voc_faster_rcnn_demo.py"
    train = ("train_det.py", config, r18_backbone, "2", demo_root / "VOCdevkit", DET_OPTIONS)
    final = _killed_mmengine_training_resumes_exactly(tmp_path, *train)
    assert final["meta"]["iter"] == 4 and "val/pascal_voc/mAP" in final["message_hub"]["log_scalars"]


CAPTION_OPTIONS = [*NIC_TINY_OPTIONS, "train_dataloader.num_workers=1", "train_cfg.max_epochs=2"]


@pytest.mark.slow
def test_train_caption_killed_during_a_checkpoint_write_resumes_exactly(tmp_path, demo_root, r18_backbone):
    config = REPO / "configs" / "caption" / "nic_demo.py"
    train = ("train_caption.py", config, r18_backbone, "4", demo_root / "coco", CAPTION_OPTIONS)
    final = _killed_mmengine_training_resumes_exactly(tmp_path, *train)
    assert final["meta"]["iter"] == 4 and any(k.startswith("val/") for k in final["message_hub"]["log_scalars"])


# ----------------------------------------------------------------------------------------------- seeded samples
class _RandomDataset(torch.utils.data.Dataset):
    """Each item: its index and one draw from each global generator (what a random transform would use)."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> tuple[int, float, float, float]:
        return int(index), random.random(), float(np.random.rand()), float(torch.rand(()))


def _epoch_draws(loader: torch.utils.data.DataLoader, epoch: int) -> list[tuple]:
    loader.sampler.set_epoch(epoch)
    return [tuple(float(x) for x in row) for batch in loader for row in zip(*batch)]


def test_seeded_samples_do_not_depend_on_workers_and_differ_by_epoch():

    def loader(workers: int) -> torch.utils.data.DataLoader:
        ds = SeededDataset(_RandomDataset())
        return torch.utils.data.DataLoader(
            ds,
            batch_size=2,
            sampler=SeededSampler(ds, shuffle=True, seed=5),
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    torch.manual_seed(0)
    before = torch.rand(())
    torch.manual_seed(0)
    item = SeededDataset(_RandomDataset())[SeededIndex(3, 7)]
    assert float(torch.rand(())) == float(before)  # in the main process the global generators are restored
    assert item == SeededDataset(_RandomDataset())[SeededIndex(3, 7)] and item[0] == 3
    main, workers = loader(0), loader(2)
    e0, e1 = _epoch_draws(main, 0), _epoch_draws(main, 1)
    assert _epoch_draws(workers, 0) == e0 and _epoch_draws(workers, 1) == e1  # persistent workers, 2 epochs
    assert sorted(int(r[0]) for r in e0) == list(range(6)) and e0 != e1
    # independently: the first sample of epoch 1 drew from python's generator seeded (seed, stream, epoch, 0)
    rng = random.Random(derive_seed(5, SAMPLE_STREAM, 1, 0))
    assert e1[0][1] == rng.random()


class _DivergingRunner:
    """Just enough of a Runner for train_and_validate: train() fails the way mmengine's CheckInvalidLossHook does."""

    def __init__(self, message: str) -> None:
        self.message, self.epoch, self.iter, self.work_dir = message, 5, 137, "work_dirs/ssd_demo"

    def train(self) -> None:
        raise AssertionError(self.message)


def test_a_diverging_loss_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"diverged.*epoch 6 \(iteration 137\).*work_dirs/ssd_demo.*clip_grad"):
        train_and_validate(_DivergingRunner("loss become infinite or NaN!"))
    with pytest.raises(AssertionError, match="something else"):  # other assertions are not hidden
        train_and_validate(_DivergingRunner("something else"))
