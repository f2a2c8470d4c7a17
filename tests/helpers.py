"""Helpers shared by the tests that drive the real tools (tools/*.py): load a tool's main in-process, run it as a
subprocess or under torchrun, build its common arguments, read its one-line errors and CSV outputs, and the checks
every evaluation tool must pass (`EvalTool`); a CIFAR-100 python-pickle writer; and mmdet's VOC mAP, the reference
the detection statistics meet."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# --cfg-options shrinking configs/caption/nic_demo.py to seconds on the CPU: 16-wide embedding and LSTM, 8 tokens,
# 8 training images of 32 px at batch 4, validation in the main process after every epoch, a log line per iteration.
NIC_TINY_OPTIONS = [
    "model.embed_dim=16",
    "model.freeze_encoder=False",
    "model.hidden_dim=16",
    "model.max_len=8",
    "train_dataloader.batch_size=4",
    "train_dataloader.dataset.image_size=32",
    "train_dataloader.dataset.resize=36",
    "train_dataloader.dataset.max_images=8",
    "train_dataloader.dataset.max_len=8",
    "val_dataloader.num_workers=0",
    "val_dataloader.persistent_workers=False",
    "val_dataloader.dataset.image_size=32",
    "train_cfg.val_interval=1",
    "default_hooks.logger.interval=1",
]


def load_tool(tool: Path, module_name: str) -> ModuleType:
    """A tool script as a module named `module_name`, loaded from its file (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(module_name, tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_tool_main(tool: Path, module_name: str) -> Callable[[list[str]], int]:
    """The main() of a tool script, loaded from its file (`load_tool`)."""
    return load_tool(tool, module_name).main


def tool_env() -> dict[str, str]:
    """The environment of a tool subprocess: one intra-op thread for every threaded library (OpenMP, MKL, OpenBLAS:
    under the CPU pin, MKL's own count would otherwise stay at the pin's 2 while torchrun's ranks use 1, and thread
    counts change float results), the repository importable."""
    one = dict(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if os.environ.get("CUTMIX_PINNED") == "1":
        one["CUTMIX_PIN_THREADS"] = "1"  # still pinned, with one thread
    return dict(os.environ, **one, PYTHONPATH=str(REPO))


def run_tool(tool: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """The tool as a subprocess, with --no-progress --workers 0 added; output captured as text."""
    return subprocess.run(
        [sys.executable, str(tool), *args, "--no-progress", "--workers", "0"],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for torchrun's --master_port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_torchrun(tool: Path, args: Sequence[str], nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """The tool under torch.distributed.run with `nproc` processes on one node, on a free local port."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        str(tool),
        *args,
    ]
    return subprocess.run(cmd, cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=timeout)


def eval_args(source_flag: str, source: Path, dataset: str, data_root: Path, out: Path, *extra: str) -> list[str]:
    """An evaluation tool's arguments: the model or maps (`source_flag` source), the dataset, --out, no workers and
    no progress bar, then `extra`."""
    return [
        source_flag,
        str(source),
        "--dataset",
        dataset,
        "--data-root",
        str(data_root),
        "--out",
        str(out),
        "--workers",
        "0",
        "--no-progress",
        *extra,
    ]


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single 'error: ' line of a tool that exited 2 without a traceback (asserted)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return errors[0]


def write_cifar100(
    root: Path, splits: Mapping[str, tuple[np.ndarray, Sequence[int]]], class_names: Sequence[str]
) -> Path:
    """The python version of CIFAR-100 written by hand as released: root/cifar-100-python/{train,test,meta}, pickled
    dicts with bytes keys, data as (N, 3072) uint8 rows of R, G, B planes. `splits` maps "train" / "test" to
    (images, fine labels), images either such rows or (N, 32, 32, 3) HWC images (converted to planes); coarse labels
    are fine // 5 (20 superclasses); `class_names` are meta's fine label names. -> the cifar-100-python folder."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in splits.items():
        images = np.asarray(images)
        rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1) if images.ndim == 4 else images
        assert rows.shape == (len(labels), 3072) and rows.dtype == np.uint8, (rows.shape, rows.dtype)
        batch = {
            b"batch_label": split.encode(),
            b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
            b"fine_labels": [int(y) for y in labels],
            b"coarse_labels": [int(y) // 5 for y in labels],
            b"data": np.ascontiguousarray(rows),
        }
        (folder / split).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {
        b"fine_label_names": [n.encode() for n in class_names],
        b"coarse_label_names": [f"super_{i}".encode() for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV file with a header, as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True)
class EvalTool:
    """An evaluation tool under test, bound to its script (tools/<name>.py): its main() in-process, the script as a
    subprocess or under torchrun, and the checks every evaluation tool must pass."""

    path: Path

    def main(self) -> Callable[[list[str]], int]:
        """The tool's main(), loaded from its file."""
        return load_tool_main(self.path, f"{self.path.stem}_tool")

    def run(self, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
        """The tool as a subprocess (`run_tool`)."""
        return run_tool(self.path, *args, timeout=timeout)

    def run_single_threaded(self, args: list[str]) -> int:
        """The tool's main(args) in-process with one intra-op thread, as each torchrun worker uses (the thread count
        changes the convolutions' float rounding); the previous thread count is restored."""
        main = self.main()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return main(args)
        finally:
            torch.set_num_threads(threads)

    def check_torchrun_equals_single(self, args: list[str], out: Path, single: Path) -> tuple[dict, dict]:
        """The tool under torchrun with two processes on `args` (which write to `out`) against its single-process
        run in `single`: it succeeds, its results.json says world size 2 (the single run's 1) and holds the same
        metrics and curves, and its per_image.csv is the same text. -> (torchrun's record, the single run's)."""
        proc = run_torchrun(self.path, args)
        assert proc.returncode == 0, proc.stderr[-3000:]
        dist_rec = json.loads((out / "results.json").read_text())
        single_rec = json.loads((single / "results.json").read_text())
        assert dist_rec["world_size"] == 2 and single_rec["world_size"] == 1
        assert dist_rec["metrics"] == single_rec["metrics"] and dist_rec["curves"] == single_rec["curves"]
        assert (out / "per_image.csv").read_text() == (single / "per_image.csv").read_text()
        return dist_rec, single_rec

    def check_unreadable_image(self, args: list[str], out_root: Path, bad_sample, kept: int) -> None:
        """The project's rule for an unreadable image: without --skip-unreadable a one-line error naming the file and
        the flag and no results.json; with it the run completes on `kept` images, recording the skipped one in
        results.json and leaving it out of per_image.csv."""
        line = one_line_error(self.run(*args, "--out", str(out_root / "fail")))
        assert str(bad_sample.path) in line and "--skip-unreadable" in line
        assert not (out_root / "fail" / "results.json").exists()
        skip = out_root / "skip"
        assert self.main()([*args, "--out", str(skip), "--skip-unreadable", "--workers", "0", "--no-progress"]) == 0
        rec = json.loads((skip / "results.json").read_text())
        assert rec["skipped_unreadable"]["count"] == 1 and rec["num_images"] == kept
        assert rec["skipped_unreadable"]["images"][0]["image_id"] == bad_sample.image_id
        assert len(read_csv(skip / "per_image.csv")) == kept

    def check_option_errors(
        self, base: list[str], cases: Sequence[tuple[list[str], str]], capsys: pytest.CaptureFixture
    ) -> None:
        """Each (extra, needle) of `cases`: main(base + extra) returns 2 and writes one stderr line, an 'error: '
        line that holds `needle`."""
        main = self.main()
        for extra, needle in cases:
            assert main(base + extra) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], (extra, err)


def mmdet_voc_map(dets: Sequence[Sequence[np.ndarray]], gts: Sequence[dict], mode: str = "11points") -> float:
    """mmdet's eval_map VOC mAP (a fraction) at IoU 0.5 with VOC's legacy +1 coordinates, in one process: the
    independent reference for the project's detection statistics (dets and gts as eval_map takes them)."""
    # imported here, not at the top: mmdet adds ~2 s (measured) to every test module that imports helpers
    from mmdet.evaluation.functional import eval_map

    mean_ap, _ = eval_map(
        dets, gts, iou_thr=0.5, dataset="voc", logger="silent", eval_mode=mode, use_legacy_coordinate=True, nproc=1
    )
    return mean_ap


def varied_resnet18(num_classes: int, seed: int = 21) -> torch.nn.Module:
    """This project's ResNet-18 classifier (backbones.build_model) with seeded weights and non-trivial BN statistics,
    so that its predictions vary between images."""
    from cutmix_transfer.backbones import build_model

    torch.manual_seed(seed)
    net = build_model("resnet18", num_classes)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return net


def resize_crop_resnet18_logits(
    ckpt: Path, paths: Sequence[Path], size: int, mean: Sequence[float], std: Sequence[float], num_classes: int
) -> torch.Tensor:
    """The ImageNet val pipeline written out: resize the short side to round(size / 0.875), centre crop, [0, 1],
    (x - mean) / std per channel, then torchvision's ResNet-18 with the state dict at `ckpt`: (N, K) logits."""
    import torchvision
    from PIL import Image
    from torchvision.transforms import functional as TF

    net = torchvision.models.resnet18(num_classes=num_classes)
    net.load_state_dict(torch.load(ckpt, weights_only=True))
    xs = []
    for p in paths:
        with Image.open(p) as im:
            xs.append(TF.to_tensor(TF.center_crop(TF.resize(im.convert("RGB"), round(size / 0.875)), size)))
    x = torch.stack(xs)
    m, s = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1), torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    with torch.no_grad():
        return net.eval()((x - m) / s)
