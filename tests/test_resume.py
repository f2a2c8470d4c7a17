"""Exact resume (issue 17) and runs that cannot break each other (issue 22): a training run killed with SIGKILL
and continued with --resume ends with the same weights, optimizer state, logged values and result metrics, bit for
bit, as a run that was never interrupted; a second run on a busy work dir is refused in one line and touches
nothing; when only torchrun is killed, its ranks are gone within 60 s and wrote nothing more.

Every run is a subprocess of the real tool on the tiny generated demo data, one thread each. The kill points are
reached deterministically: a `sitecustomize` module on the killed run's PYTHONPATH makes the run pause at a named
point (half-way through writing a checkpoint, before the final validation, after training and before the record),
says so in a marker file and waits there until the test kills it, however slow the machine is. A kill ends every
process of the run: the launcher's group and, recorded before the kill, each descendant's group (torchrun starts
every rank in a session of its own). A stage that outlasts its deadline fails naming the stage.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
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
STAGE_TIMEOUT = 900  # s for one run of a tiny config: generous, for a loaded 2-core machine
ORPHAN_BOUND = 60  # s: the most a rank may outlive its launcher (issue 22)

# Pause points, loaded by the killed run only (CUTMIX_TEST_PAUSE: comma-separated points, CUTMIX_TEST_PAUSE_DIR:
# where the marker goes). 'write:epoch_2.pth': write the first half of that checkpoint's temporary file, then
# pause; 'final_val': pause before the validation of the last epoch; 'after_train': pause when Runner.train()
# returns (the last checkpoint is written, the record not yet).
_PAUSE = """
import os, time

_points = set(filter(None, os.environ.get("CUTMIX_TEST_PAUSE", "").split(",")))
_dir = os.environ.get("CUTMIX_TEST_PAUSE_DIR", "")


def _pause(point):
    with open(os.path.join(_dir, point.replace(":", "-")), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(3600)  # the test kills the run here


if _points and _dir:
    import io
    import torch
    import mmengine.runner.runner as _runner
    from mmengine.runner import loops as _loops

    _save = _runner.save_checkpoint

    def _save_checkpoint(checkpoint, filename, **kwargs):
        name = os.path.basename(filename)
        point = next((p for p in _points if p.startswith("write:") and name.startswith("." + p[6:] + ".")), None)
        if point is None:
            return _save(checkpoint, filename, **kwargs)
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        data = buf.getvalue()
        with open(filename, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            _pause(point)

    _val_run = _loops.ValLoop.run

    def _run_val(self):
        if "final_val" in _points and self.runner.epoch >= self.runner.max_epochs:
            _pause("final_val")
        return _val_run(self)

    _train = _runner.Runner.train

    def _train_then_pause(self):
        model = _train(self)
        if "after_train" in _points:
            _pause("after_train")
        return model

    _runner.save_checkpoint = _save_checkpoint
    _loops.ValLoop.run = _run_val
    _runner.Runner.train = _train_then_pause
"""


def _env(pause: Path | None = None, points: str = "", **extra: str) -> dict:
    """One thread, the repository importable; with `pause` (a folder) the run pauses at `points` (see _PAUSE)."""
    path = [str(REPO)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    if pause is not None:
        site = pause / "site"
        site.mkdir(parents=True, exist_ok=True)
        (site / "sitecustomize.py").write_text(_PAUSE)
        path.insert(0, str(site))
        env.update(CUTMIX_TEST_PAUSE=points, CUTMIX_TEST_PAUSE_DIR=str(pause))
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def _run(cmd: list[str], stage: str, env: dict | None = None, timeout: float = STAGE_TIMEOUT) -> None:
    try:
        res = subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"stage '{stage}' was slow: still running after {timeout:.0f} s")
    assert res.returncode == 0, f"stage '{stage}' failed: {res.stderr[-3000:]}"


# ------------------------------------------------------------------------------------- processes of a run
def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...); None for a process gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Any thread of `pid` not yet dead: a killed process's leader shows as a zombie while its other threads still
    exit, and its files (a lock among them) are closed only when the last one has."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            if (task / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                return True
        except (OSError, IndexError):
            continue
    return False


def _descendants(pid: int) -> dict[int, int]:
    """{pid: process group} of every live descendant of `pid` (its children, theirs, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    groups: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (stat := _proc_stat(int(d.name))) is not None:
            children.setdefault(int(stat[1]), []).append(int(d.name))
            groups[int(d.name)] = int(stat[2])
    out, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out[child] = groups[child]
            todo.append(child)
    return out


def _wait_gone(pids: list[int], bound: float, what: str) -> float:
    """Seconds until none of `pids` lives; fails naming the survivors after `bound` seconds."""
    t0 = time.monotonic()
    while any(_alive(p) for p in pids):
        assert time.monotonic() - t0 < bound, f"{what}: still alive after {bound:.0f} s: " + ", ".join(
            str(p) for p in pids if _alive(p)
        )
        time.sleep(0.05)
    return time.monotonic() - t0


class Run:
    """A tool run in its own session (its process group is the launcher's), stdout and stderr into `log`."""

    def __init__(self, cmd: list[str], env: dict, log: Path, stage: str) -> None:
        self.log, self.stage = log, stage
        self._out = open(log, "w")  # noqa: SIM115  (closed in kill())
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_for(self, ready: Any, what: str, timeout: float = STAGE_TIMEOUT) -> None:
        """Poll `ready()` every 20 ms; fail naming the stage and `what` if the run ends first or is too slow."""
        t0 = time.monotonic()
        while not ready():
            assert self.proc.poll() is None, f"stage '{self.stage}' ended before {what}: {self.log.read_text()[-3000:]}"
            if time.monotonic() - t0 > timeout:
                self.kill()
                pytest.fail(f"stage '{self.stage}' was slow: {what} not reached after {timeout:.0f} s")
            time.sleep(0.02)

    def tree(self) -> dict[int, int]:
        """{pid: process group} of the run's processes below the launcher (ranks, loader workers), recorded now:
        once the launcher is dead they are re-parented and cannot be found from it."""
        return _descendants(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the launcher's process group and each descendant's, as a user ending the whole run does; wait
        until every one of them is gone."""
        tree = self.tree()
        for group in {self.proc.pid, *tree.values()}:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self._out.close()
        assert self.proc.returncode == -signal.SIGKILL, f"stage '{self.stage}' finished before the kill"
        _wait_gone(list(tree), ORPHAN_BOUND, f"stage '{self.stage}': processes SIGKILLed")


def _start_until(cmd: list[str], work: Path, point: str, stage: str, env: dict | None = None) -> Run:
    """Start `cmd` with the pause `point` and return once it waits there."""
    pause = work.parent / f"{work.name}_{point.replace(':', '-')}"
    marker = pause / point.replace(":", "-")
    marker.unlink(missing_ok=True)
    run = Run(cmd, dict(_env(pause, point), **(env or {})), work.parent / f"{pause.name}.log", stage)
    run.wait_for(marker.exists, f"pause point {point}")
    return run


def _last(work: Path) -> str:
    marker = work / "last_checkpoint"
    return marker.read_text().strip() if marker.is_file() else ""


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and folder below `folder`: (inode, size, mtime in ns); a write, rename or deletion changes it."""
    return {
        str(p.relative_to(folder)): (st.st_ino, st.st_size, st.st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        for st in [p.lstat()]
    }


def _settled_snapshot(folder: Path, quiet: float = 1.0) -> dict[str, tuple[int, int, int]]:
    """`_snapshot` once it held still for `quiet` seconds (a paused run's other rank may still be logging)."""
    t0, last = time.monotonic(), _snapshot(folder)
    while True:
        time.sleep(quiet)
        now = _snapshot(folder)
        if now == last:
            return now
        assert time.monotonic() - t0 < STAGE_TIMEOUT, f"{folder} kept changing for {STAGE_TIMEOUT} s"
        last = now


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


def _kill_in_write_then_resume(cmd: list[str], work: Path, epoch: int, env: dict | None = None) -> None:
    """Run `cmd` in `work`, SIGKILL every process of it half-way through writing epoch `epoch`'s checkpoint, then
    resume to the end. The partial file names its writer; the resumed run removes it (its writer is gone)."""
    run = _start_until(cmd, work, f"write:epoch_{epoch}.pth", f"{work.name}: run to the write of epoch {epoch}", env)
    partial = list(work.glob(f".epoch_{epoch}.pth.*@*.tmp"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0, partial
    host, pid = partial[0].name[: -len(".tmp")].rsplit(".", 1)[1].split("@")
    writer = _descendants(run.proc.pid)
    assert int(pid) in writer or int(pid) == run.proc.pid, (pid, writer)  # the run's own rank 0 writes it
    run.kill()
    assert partial[0].exists() and not (work / f"epoch_{epoch}.pth").exists()
    assert _last(work) == (str(work / f"epoch_{epoch - 1}.pth") if epoch > 1 else "")
    _run(cmd + ["--resume"], f"{work.name}: --resume after the kill", env=dict(_env(), **(env or {})))
    assert not partial[0].exists()  # removed at the start of the resumed run: its writer was gone


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
    _run(cmd(ref), "train_cls reference run")
    return {"cmd": cmd, "work": ref, "tmp": tmp, "config": config}


def _assert_cls_same(ref: Path, work: Path) -> None:
    final = assert_same_checkpoint(ref / "epoch_3.pth", work / "epoch_3.pth")
    assert final["meta"]["epoch"] == 3 and final["meta"]["iter"] == 6
    rec_a, rec_b = (json.loads((w / "results.json").read_text()) for w in (ref, work))
    assert rec_a["metrics"] == rec_b["metrics"] and set(rec_a["metrics"]) == {"top1_err", "top5_err"}
    assert rec_a["epochs"] == rec_b["epochs"] == 3
    assert (ref / "per_image.csv").read_bytes() == (work / "per_image.csv").read_bytes()  # same predictions


@pytest.fixture(scope="module")
def ddp_reference(cls_reference) -> dict:
    """The tiny pretraining under torchrun (tools/dist_train.sh: 2 CPU processes, gloo, torchrun picks the port),
    uninterrupted: its command maker and work dir."""
    env = dict(PYTHON=sys.executable)

    def cmd(work: Path) -> list[str]:
        config = str(cls_reference["config"])
        return ["bash", str(REPO / "tools" / "dist_train.sh"), config, "2", "--work-dir", str(work), "--seed", "3"]

    ref = cls_reference["tmp"] / "ddp_reference"
    _run(cmd(ref), "train_cls reference run under torchrun", env=dict(_env(), **env))
    return {"cmd": cmd, "work": ref, "env": env, "tmp": cls_reference["tmp"]}


def _assert_ddp_same(ref: Path, work: Path) -> None:
    final = assert_same_checkpoint(ref / "epoch_3.pth", work / "epoch_3.pth")
    assert final["meta"]["iter"] == 3
    rec_a, rec_b = (json.loads((w / "results.json").read_text()) for w in (ref, work))
    assert rec_a["metrics"] == rec_b["metrics"]
    per_image = [(w / "per_image.csv").read_text() for w in (ref, work)]
    assert per_image[0] == per_image[1] and per_image[0].count("\n") == 1 + 8  # gathered: each image once


@pytest.mark.slow
def test_train_cls_under_torchrun_killed_during_a_checkpoint_write_resumes_exactly(ddp_reference):
    """2 CPU processes (gloo): 8 images per rank per step over the 16 training images, 1 iteration an epoch."""
    work = ddp_reference["tmp"] / "ddp_killed"
    _kill_in_write_then_resume(ddp_reference["cmd"](work), work, 2, env=ddp_reference["env"])
    _assert_ddp_same(ddp_reference["work"], work)


@pytest.mark.slow
def test_torchrun_killed_alone_leaves_no_rank_and_a_busy_work_dir_is_refused(ddp_reference):
    """The user's case: only the launcher is killed (kill -9, a scheduler), during a checkpoint write. While the run
    lives, a --resume in its work dir is refused in one line and touches nothing; after the launcher's death every
    rank and loader worker is gone within 60 s and wrote nothing more; --resume then ends exactly."""
    work = ddp_reference["tmp"] / "launcher_killed"
    cmd, env = ddp_reference["cmd"](work), ddp_reference["env"]
    run = _start_until(cmd, work, "write:epoch_2.pth", "torchrun to the write of epoch 2", env)
    tree = run.tree()
    ranks = [p for p in tree if _proc_stat(p) is not None and int(_proc_stat(p)[1]) == run.proc.pid]
    assert len(ranks) == 2, tree
    before = _settled_snapshot(work)

    t0 = time.monotonic()
    busy = subprocess.run(
        cmd + ["--resume"], env=dict(_env(), **env), capture_output=True, text=True, timeout=STAGE_TIMEOUT
    )
    refused_in = time.monotonic() - t0
    assert busy.returncode == 2, busy.stderr[-3000:]
    lines = busy.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: work dir {work} is in use by another run"), lines
    holder = json.loads((work / "run.lock").read_text())
    assert holder["pid"] in ranks and f"pid {holder['pid']} on host {holder['host']}" in lines[0]
    assert f"ps -p {holder['pid']}" in lines[0]
    assert refused_in < 60, f"the refusal took {refused_in:.1f} s"
    assert _snapshot(work) == before  # the refused run wrote, renamed and deleted nothing

    os.kill(run.proc.pid, signal.SIGKILL)  # the launcher alone
    run.proc.wait()
    gone_in = _wait_gone(list(tree), ORPHAN_BOUND, "ranks and loader workers of the killed torchrun")
    assert _snapshot(work) == before, f"the orphans wrote into {work} (all gone after {gone_in:.2f} s)"
    print(
        f"\n{len(tree)} processes of the killed torchrun gone {gone_in:.2f} s after it; refusal in {refused_in:.1f} s"
    )
    assert not (work / "epoch_2.pth").exists() and _last(work) == str(work / "epoch_1.pth")

    _run(cmd + ["--resume"], "torchrun --resume after the launcher's death", env=dict(_env(), **env))
    _assert_ddp_same(ddp_reference["work"], work)


@pytest.mark.slow
def test_train_cls_killed_at_random_then_in_final_validation_resumes_exactly(cls_reference):
    work = cls_reference["tmp"] / "killed_twice"
    cmd = cls_reference["cmd"](work)
    # 1. a moment after the first checkpoint (seeded, reported on failure); the run cannot get past the final
    # validation meanwhile, however the machine's load shifts the timing
    delay = random.Random(22).uniform(0.0, 1.0)
    pause = work.parent / "killed_twice_random"
    run = Run(cmd, _env(pause, "final_val"), work.parent / "random.log", "train_cls to its first checkpoint")
    run.wait_for(lambda: bool(_last(work)), "the first checkpoint")
    time.sleep(delay)
    run.kill()
    assert not (work / "results.json").exists(), f"delay {delay:.3f} s"
    # 2. during the final validation (epoch 3's checkpoint is written after it)
    _start_until(cmd + ["--resume"], work, "final_val", "--resume to the final validation").kill()
    assert _last(work) == str(work / "epoch_2.pth"), f"delay {delay:.3f} s"
    # 3. after the last checkpoint, before the record
    _start_until(cmd + ["--resume"], work, "after_train", "--resume to the end of training").kill()
    assert _last(work) == str(work / "epoch_3.pth") and not (work / "results.json").exists()
    _run(cmd + ["--resume"], "last --resume")  # trains no further, but still validates and writes the record
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

    _run(cmd(tmp_path / "reference"), f"{tool} reference run")
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
