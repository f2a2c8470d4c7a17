"""Classification pretraining: readers, transforms, model, metric, configs, checkpoints, resume after kill -9, DDP."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import REPO, read_csv, write_cifar100
from mmengine.registry import DATASETS
from PIL import Image

from cutmix_transfer.augment import MixedBatch
from cutmix_transfer.backbones import build_from_checkpoint
from cutmix_transfer.checkpoints import PROJECT_META_KEY, load_backbone_state, safe_torch_load
from cutmix_transfer.classification import (
    AtomicCheckpointHook,
    CAMClassifier,
    CIFARDataset,
    CUBDataset,
    ImageFolderDataset,
    TopKError,
    build_transform,
    topk_errors,
    train_classifier,
)
from cutmix_transfer.datasets.cub import load_cub
from cutmix_transfer.distributed import prepare_launcher
from cutmix_transfer.errors import ConfigError, DatasetError
from cutmix_transfer.report.bootstrap import resample_counts
from cutmix_transfer.report.per_image import per_image_statistic
from cutmix_transfer.report.table import add_intervals, build_rows, find_records
from cutmix_transfer.results import data_identity
from cutmix_transfer.runner import load_config

CONFIGS = REPO / "configs" / "cls"
IDENTITY = dict(preset="resize_test", size=32, mean=(0, 0, 0), std=(1, 1, 1))  # pixels / 255, nothing else


# ----------------------------------------------------------------------------------------------- readers
def _write_cifar100(root: Path, n_train: int = 6, n_test: int = 4) -> dict[str, tuple[np.ndarray, list[int]]]:
    """A tiny cifar-100-python/ of random planes and labels (`helpers.write_cifar100`), fine names class0..class99.
    -> split -> (the (N, 3072) rows written, their fine labels)."""
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        out[split] = (data, [int(x) for x in rng.integers(0, 100, size=n)])
    write_cifar100(root, out, [f"class{i}" for i in range(100)])
    return out


def test_cifar100_reader_decodes_planes_exactly(tmp_path):
    written = _write_cifar100(tmp_path)
    ds = CIFARDataset(str(tmp_path), "test", IDENTITY)
    data, labels = written["test"]
    assert len(ds) == 4 and ds.labels == labels and len(ds.classes) == 100 and ds.classes[7] == "class7"
    for i in range(4):
        item = ds[i]
        assert item["data_samples"] == labels[i]
        ref = data[i].reshape(3, 32, 32).astype(np.float32) / 255.0  # R plane, G plane, B plane
        assert np.allclose(item["inputs"].numpy(), ref, atol=1e-6)
    assert len(CIFARDataset(str(tmp_path / "cifar-100-python"), "train", IDENTITY)) == 6  # the folder itself


def test_cifar10_reader(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = {
            b"data": rng.integers(0, 256, size=(2, 3072), dtype=np.uint8),
            b"labels": [1, 9],
            b"batch_label": name.encode(),
            b"filenames": [b"a.png", b"b.png"],
        }
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))
    assert len(CIFARDataset(str(tmp_path), "train", IDENTITY)) == 10
    test = CIFARDataset(str(tmp_path), "test", IDENTITY)
    assert test.labels == [1, 9] and test.classes[9] == "c9"


def test_cifar_errors(tmp_path):
    with pytest.raises(DatasetError, match="cifar-100-python"):
        CIFARDataset(str(tmp_path), "train", IDENTITY)
    _write_cifar100(tmp_path)
    with pytest.raises(ConfigError):
        CIFARDataset(str(tmp_path), "val", IDENTITY)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "cifar-100-python" / "train").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DatasetError, match="not allowed"):
        CIFARDataset(str(tmp_path), "train", IDENTITY)


def test_imagefolder_reader(tmp_path):
    colors = {"cat": (255, 0, 0), "dog": (0, 255, 0), "emu": (0, 0, 255)}
    for split in ("train", "val"):
        for name, rgb in colors.items():
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 30), rgb).save(tmp_path / split / name / f"{i}.png")
    ds = ImageFolderDataset(str(tmp_path), "val", dict(IDENTITY, size=16))
    assert ds.classes == ["cat", "dog", "emu"] and ds.labels == [0, 0, 1, 1, 2, 2]
    for i in range(len(ds)):
        item = ds[i]
        channel = item["data_samples"]  # class k is pure colour in channel k
        assert item["inputs"].shape == (3, 16, 16)
        assert torch.allclose(item["inputs"].mean(dim=(1, 2)), F.one_hot(torch.tensor(channel), 3).float())
    with pytest.raises(DatasetError, match="ImageFolder layout"):
        ImageFolderDataset(str(tmp_path), "test", IDENTITY)


def test_cub_reader_matches_load_cub(demo_root):
    root = demo_root / "CUB_200_2011"
    ds = CUBDataset(str(root), "train", dict(preset="pad_crop_train", size=64, pad=8))
    samples = load_cub(root, "train")
    assert ds.labels == [s.label for s in samples] and len(ds) == len(samples)
    item = ds[0]
    assert item["inputs"].shape == (3, 64, 64) and item["inputs"].dtype == torch.float32


def test_transforms():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 260, 3), dtype=np.uint8))
    assert build_transform("imagenet_train", 224)(img).shape == (3, 224, 224)
    assert build_transform("imagenet_test", 224)(img).shape == (3, 224, 224)
    assert build_transform("resize_crop_train", 224, resize=256)(img).shape == (3, 224, 224)
    with pytest.raises(ConfigError, match="preset"):
        build_transform("autoaugment", 224)


# ----------------------------------------------------------------------------------------------- model, metric
def test_model_keys_forward_and_mixed_loss():
    torch.manual_seed(0)
    model = CAMClassifier(
        "resnet18",
        5,
        wsol=True,
        zero_init_residual=True,
        data_preprocessor=dict(type="MixAugmentPreprocessor", augment=dict(mode="cutmix", beta=1.0, prob=1.0, seed=3)),
    )
    keys = set(model.state_dict())
    assert {"backbone.conv1.weight", "backbone.layer4.1.bn2.weight", "backbone.fc.weight"} <= keys
    assert all(k.startswith("backbone.") for k in keys)
    assert float(model.backbone.layer1[0].bn2.weight.detach().abs().sum()) == 0.0  # zero_init_residual
    images = torch.randn(6, 3, 64, 64)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    batch = model.data_preprocessor({"inputs": images, "data_samples": labels}, training=True)
    mixed = batch["data_samples"]
    assert isinstance(mixed, MixedBatch) and torch.equal(mixed.target_a, labels) and 0.0 <= mixed.lam <= 1.0
    model.eval()  # BN in eval mode: the logits below are the same function as inside the loss
    logits = model(batch["inputs"], mode="tensor")
    assert logits.shape == (6, 5)
    expected = mixed.lam * F.cross_entropy(logits, labels) + (1 - mixed.lam) * F.cross_entropy(logits, mixed.target_b)
    loss = model(batch["inputs"], mixed, mode="loss")["loss"]
    assert torch.allclose(loss, expected)
    plain = model.data_preprocessor({"inputs": list(images), "data_samples": labels.tolist()}, training=False)
    assert torch.equal(plain["inputs"], images) and torch.equal(plain["data_samples"], labels)
    preds = model(plain["inputs"], plain["data_samples"], mode="predict")
    assert [p["gt_label"] for p in preds] == labels.tolist()
    assert torch.equal(torch.stack([p["pred_topk"] for p in preds]), model(images).topk(5, dim=1).indices)
    meta = model.checkpoint_meta()
    assert meta["arch"] == "resnet18" and meta["method"] == "cutmix" and meta["num_classes"] == 5 and meta["wsol"]


def test_model_rejects_bad_arch_and_mode():
    with pytest.raises(ConfigError):
        CAMClassifier("resnet7", 5)
    with pytest.raises(ConfigError):
        CAMClassifier(
            "resnet18", 5, data_preprocessor=dict(type="MixAugmentPreprocessor", augment=dict(mode="cutmixup"))
        )


def test_topk_errors_against_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 12))
    labels = rng.integers(0, 12, size=50)
    order = np.argsort(-logits, axis=1)
    top1 = 100 * np.mean(order[:, 0] != labels)
    top5 = 100 * np.mean([labels[i] not in order[i, :5] for i in range(50)])
    metric = TopKError()
    metric.process(
        {}, [{"gt_label": int(y), "pred_topk": torch.from_numpy(o[:5].copy())} for y, o in zip(labels, order)]
    )
    out = metric.compute_metrics(metric.results)
    assert out["top1_err"] == pytest.approx(top1) and out["top5_err"] == pytest.approx(top5)
    assert topk_errors(torch.tensor([[2, 0]]), torch.tensor([0]))["top1_err"] == 100.0
    assert metric.per_image is None  # no sample indices in the batches: no per-image rows


def test_topk_error_counts_padded_samples_once_and_keeps_per_image_rows():
    """A distributed sampler pads its last slice with samples from the start: keyed by index, they count once."""
    rng = np.random.default_rng(1)
    n, k = 10, 6
    labels = rng.integers(0, k, size=n)
    order = np.argsort(-rng.normal(size=(n, k)), axis=1)[:, :5]
    order[:4, 0] = labels[:4]  # images 0-3 right at top-1
    order[4:7, 0] = (labels[4:7] + 1) % k  # images 4-6 wrong at top-1 (but maybe in the top 5)
    top1 = 100 * np.mean(order[:, 0] != labels)
    top5 = 100 * np.mean([labels[i] not in order[i] for i in range(n)])
    # two ranks' slices, gathered rank by rank: 0, 2, 4, ... then 1, 3, ..., padding repeats indices 0 and 1
    served = [*range(0, n, 2), 0, *range(1, n, 2), 1]
    metric = TopKError()
    for start in range(0, len(served), 4):
        idx = served[start : start + 4]
        samples = [{"gt_label": int(labels[i]), "pred_topk": torch.from_numpy(order[i].copy())} for i in idx]
        metric.process({"sample_idx": torch.tensor(idx)}, samples)
    out = metric.compute_metrics(metric.results)
    assert out["top1_err"] == pytest.approx(top1) and out["top5_err"] == pytest.approx(top5)
    rows = metric.per_image
    assert [r["index"] for r in rows] == list(range(n))
    assert [r["label"] for r in rows] == labels.tolist() and [r["pred"] for r in rows] == order[:, 0].tolist()
    assert [r["correct_top1"] for r in rows] == (order[:, 0] == labels).astype(int).tolist()
    assert 100 * (1 - np.mean([r["correct_top5"] for r in rows])) == pytest.approx(top5)
    once = [i for j, i in enumerate(served) if i not in served[:j]]
    plain = TopKError()  # each sample once (in the same order), without indices: the same numbers, to the bit
    plain.process({}, [{"gt_label": int(labels[i]), "pred_topk": torch.from_numpy(order[i].copy())} for i in once])
    assert plain.compute_metrics(plain.results) == out


# ----------------------------------------------------------------------------------------------- configs
def test_imagenet_config_is_the_paper_recipe():
    cfg = load_config(CONFIGS / "imagenet_resnet50_cutmix.py")
    assert cfg.model.arch == "resnet50" and cfg.model.num_classes == 1000
    assert cfg.model.data_preprocessor.augment == dict(mode="cutmix", beta=1.0, prob=1.0)
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.train_dataloader.batch_size * cfg.num_gpus == 256
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.nesterov, opt.weight_decay) == ("SGD", 0.1, 0.9, True, 1e-4)
    (sched,) = cfg.param_scheduler
    assert sched.type == "MultiStepLR" and sched.milestones == [75, 150, 225] and sched.gamma == 0.1
    assert cfg.train_dataloader.dataset.transform.preset == "imagenet_train"


@pytest.mark.parametrize(
    "family,modes", [("imagenet_resnet50", ("baseline", "mixup", "cutout")), ("demo", ("baseline", "mixup", "cutout"))]
)
def test_variants_differ_only_in_the_augment(family, modes):
    ref = load_config(CONFIGS / f"{family}_cutmix.py").to_dict()
    ref_aug = ref["model"]["data_preprocessor"].pop("augment")
    assert ref_aug["mode"] == "cutmix"
    for m in modes:
        cfg = load_config(CONFIGS / f"{family}_{m}.py").to_dict()
        aug = cfg["model"]["data_preprocessor"].pop("augment")
        assert aug["mode"] == {"baseline": "none"}.get(m, m)
        assert cfg == ref


def test_other_configs_load():
    cifar = load_config(CONFIGS / "cifar100_resnet_cutmix.py")
    assert cifar.model.data_preprocessor.augment == dict(mode="cutmix", beta=1.0, prob=0.5)
    assert cifar.optim_wrapper.optimizer.lr == 0.25 and cifar.train_dataloader.batch_size == 64
    assert cifar.param_scheduler[0].milestones == [150, 225] and cifar.train_cfg.max_epochs == 300
    cub = load_config(CONFIGS / "cub_resnet50_finetune.py")
    assert cub.model.num_classes == 200 and cub.model.pretrained_head == "drop"
    demo = load_config(CONFIGS / "demo_cutmix.py")
    assert demo.model.arch == "resnet18" and demo.model.wsol and demo.model.zero_init_residual
    assert demo.optim_wrapper.optimizer.weight_decay == 5e-4 and demo.train_dataloader.batch_size == 64
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(CONFIGS / "nope.py")


# ----------------------------------------------------------------------------------------------- training runs
def _tiny_config(tmp_path: Path, demo_root: Path, mode: str = "cutmix", max_epochs: int = 1, extra: str = "") -> Path:
    """demo_<mode> shrunk to the shared tiny demo (4 classes, 64 px, 16 train / 8 test images): 2 iters/epoch."""
    name = {"none": "baseline"}.get(mode, mode)
    text = f"""
_base_ = {str(CONFIGS / f'demo_{name}.py')!r}
data_root = {str(demo_root / 'CUB_200_2011')!r}
max_epochs = {max_epochs}
model = dict(num_classes=4)
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                        dataset=dict(root=data_root, transform=dict(size=64)))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                      dataset=dict(root=data_root, transform=dict(size=64)))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
                   dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
                        convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=1))
visualizer = dict(vis_backends=[])
{extra}
"""
    path = tmp_path / f"tiny_{name}.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("mode", ["none", "cutmix"])
def test_demo_pretraining_writes_loadable_checkpoint(tmp_path, demo_root, mode):
    torch.set_num_threads(1)
    out = train_classifier(_tiny_config(tmp_path, demo_root, mode), work_dir=str(tmp_path / "wd"), seed=1)
    ckpt = Path(out["checkpoint"])
    assert ckpt.name == "epoch_1.pth" and (tmp_path / "wd" / "last_checkpoint").read_text() == str(ckpt)
    loaded = load_backbone_state(ckpt)
    method = {"none": "baseline"}.get(mode, mode)
    assert loaded.source_format == "cutmix_transfer" and loaded.arch == "resnet18" and loaded.num_classes == 4
    assert loaded.meta["method"] == method
    raw = safe_torch_load(ckpt)
    assert raw["meta"][PROJECT_META_KEY]["wsol"] is True
    assert torch.equal(loaded.state_dict["fc.weight"], raw["state_dict"]["backbone.fc.weight"])
    record = json.loads(Path(out["record"]).read_text())
    assert record["kind"] == "classification" and record["checkpoint"]["method"] == method
    assert record["train_seed"] == 1  # the run's seed (report replicates)
    assert set(record["metrics"]) == {"top1_err", "top5_err"} and 0 <= record["metrics"]["top1_err"] <= 100
    assert record["metrics"]["top5_err"] == 0.0  # 4 classes: the true class is always in the top 5
    _check_per_image(Path(out["per_image"]), record, ckpt, load_config(_tiny_config(tmp_path, demo_root, mode)))


def _check_per_image(path: Path, record: dict, ckpt: Path, cfg) -> None:
    """per_image.csv beside the record: the checkpoint's own predictions on the validation images, the record's
    ids and error, and a report interval for 'top-1 err' that agrees with a direct percentile computation."""
    record_dir = path.parent
    assert path.name == "per_image.csv" and (record_dir / "results.json").is_file()
    rows = read_csv(path)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    root = Path(cfg.val_dataloader.dataset.root).resolve()  # ids: paths relative to the CUB root, as test_cls's
    ids = [Path(p).resolve().relative_to(root).as_posix() for p in dataset.paths]
    assert [r["image_id"] for r in rows] == ids and [int(r["index"]) for r in rows] == list(range(len(ids)))
    assert data_identity("x", "y", None, ids)["images_sha256"] == record["data"]["images_sha256"]
    model, _, _ = build_from_checkpoint(str(ckpt), wsol=True)
    with torch.no_grad():
        logits = model.eval()(torch.stack([dataset[i]["inputs"] for i in range(len(dataset))]))
    assert [int(r["pred"]) for r in rows] == logits.argmax(dim=1).tolist()
    assert [int(r["label"]) for r in rows] == dataset.labels
    correct = np.array([int(r["pred"]) == int(r["label"]) for r in rows])
    assert [int(r["correct_top1"]) for r in rows] == correct.astype(int).tolist()
    assert {r["correct_top5"] for r in rows} == {"1"}  # 4 classes
    err = 100.0 * (1.0 - correct)
    assert err.mean() == pytest.approx(record["metrics"]["top1_err"], abs=1e-9)

    records = find_records([record_dir])
    got_ids, stat = per_image_statistic(record_dir / "results.json", records[0][1], "top1_err")
    assert got_ids == sorted(ids)
    (row,) = build_rows(records)
    assert add_intervals([row], records, resamples=200, seed=0) == []
    ci = row.intervals["top-1 err"]
    assert ci.value == pytest.approx(record["metrics"]["top1_err"], abs=1e-9) and ci.n == len(ids)
    assert ci.low <= ci.value <= ci.high
    w = resample_counts(len(ids), 200, seed=0)  # the report's draws over the sorted ids; the statistic by hand
    by_id = err[np.argsort(ids)]
    assert (ci.low, ci.high) == pytest.approx(tuple(np.percentile(w @ by_id / w.sum(axis=1), [2.5, 97.5])))


def test_atomic_checkpoint_hook_survives_a_crash_during_save(tmp_path):
    """A save that dies half-way leaves last_checkpoint naming the previous, complete file (which is kept)."""
    from mmengine.fileio.backends import LocalBackend
    from mmengine.logging import MessageHub

    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=1)
    hook.out_dir, hook.file_backend, hook.keep_ckpt_ids = str(tmp_path), LocalBackend(), deque()
    crash = {"now": False}

    def save_checkpoint(out_dir, filename, *args, **kwargs):
        with open(Path(out_dir) / filename, "wb") as f:
            f.write(b"partial" if crash["now"] else b"complete checkpoint")
        if crash["now"]:
            raise KeyboardInterrupt("killed during save")

    runner = SimpleNamespace(
        save_checkpoint=save_checkpoint, work_dir=str(tmp_path), message_hub=MessageHub.get_instance("test_atomic_hook")
    )
    hook._save_checkpoint_with_step(runner, 1, {})
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "epoch_1.pth")
    crash["now"] = True
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 2, {})
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "epoch_1.pth")
    assert (tmp_path / "epoch_1.pth").read_bytes() == b"complete checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1.pth", "last_checkpoint"]  # no partial file
    crash["now"] = False
    hook._save_checkpoint_with_step(runner, 3, {})
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "epoch_3.pth")
    assert not (tmp_path / "epoch_1.pth").exists()  # max_keep_ckpts=1: the old one goes only after the new one


# A hook the subprocess tests load via custom_imports: it logs every finished iteration and dumps the weights.
_PROBE = '''
import os, torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

@HOOKS.register_module(name="ProbeHook", force=True)
class ProbeHook(Hook):
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        with open(os.path.join(runner.work_dir, f"iters_rank{get_rank()}.txt"), "a") as f:
            f.write(f"{os.getpid()} {runner.iter}\\n")  # 0-based: runner.iter counts up after this hook
    def before_train(self, runner):
        self._dump(runner, "params0")
    def after_train(self, runner):
        self._dump(runner, "params")
    def _dump(self, runner, name):
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        params = {k: v.detach().clone() for k, v in model.named_parameters()}
        torch.save(params, os.path.join(runner.work_dir, f"{name}_rank{get_rank()}.pt"))
'''
_PROBE_CFG = (
    "custom_imports = dict(imports=['cutmix_transfer.classification', 'cls_probe'], "
    "allow_failed_imports=False)\ncustom_hooks = [dict(type='CheckpointMetaHook'), dict(type='ProbeHook')]"
)


def _env(tmp_path: Path) -> dict:
    (tmp_path / "cls_probe.py").write_text(_PROBE)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(tmp_path)]), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"
    )
    return env


def _iters(path: Path) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in path.read_text().split("\n") if line.strip()]


@pytest.mark.slow
def test_resume_after_kill_minus_9_loses_nothing(tmp_path, demo_root):
    cfg = _tiny_config(tmp_path, demo_root, "cutmix", max_epochs=5, extra=_PROBE_CFG)
    work = tmp_path / "wd"
    cmd = [sys.executable, str(REPO / "tools" / "train_cls.py"), str(cfg), "--work-dir", str(work), "--seed", "0"]
    env = _env(tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = work / "last_checkpoint"
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    saved = Path(marker.read_text())
    saved_iter = safe_torch_load(saved)["meta"]["iter"]
    first = _iters(work / "iters_rank0.txt")
    assert saved_iter >= 2 and first[-1][1] < 9  # killed after a checkpoint, before the end of 5 x 2 iters

    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    second = [it for pid, it in _iters(work / "iters_rank0.txt") if pid != first[0][0]]
    assert second == list(range(saved_iter, 10))  # continues right after the checkpoint, ends after 10 iters
    final = safe_torch_load(work / "epoch_5.pth")
    assert final["meta"]["epoch"] == 5 and final["meta"]["iter"] == 10
    assert final["meta"][PROJECT_META_KEY]["method"] == "cutmix"


@pytest.mark.slow
def test_ddp_two_cpu_processes_agree_on_weights(tmp_path, demo_root):
    cfg = _tiny_config(tmp_path, demo_root, "cutmix", max_epochs=2, extra=_PROBE_CFG)
    work = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(_env(tmp_path), PYTHON=sys.executable, PORT=str(port))
    res = subprocess.run(
        ["bash", str(REPO / "tools" / "dist_train.sh"), str(cfg), "2", "--work-dir", str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    p0, p1 = (torch.load(work / f"params_rank{r}.pt") for r in (0, 1))
    assert p0.keys() == p1.keys() and len(p0) > 0
    assert all(torch.equal(p0[k], p1[k]) for k in p0)
    # 8 images per rank per step over 16 train images: each rank ran 1 iteration per epoch.
    assert [it for _, it in _iters(work / "iters_rank1.txt")] == [0, 1]
    start = torch.load(work / "params0_rank0.pt")
    assert sum(not torch.equal(p0[k], start[k]) for k in p0) > len(p0) // 2  # it trained
    assert "CPUDistributedDataParallel" in (work / "tiny_cutmix.py").read_text()


def test_prepare_launcher_checks_the_environment(monkeypatch):
    from mmengine.config import Config

    cfg = Config(dict(model=dict(type="CAMClassifier")))
    prepare_launcher(cfg, "none")
    assert cfg.launcher == "none" and "model_wrapper_cfg" not in cfg
    with pytest.raises(ConfigError, match="launcher"):
        prepare_launcher(cfg, "torchrun")
    if not torch.cuda.is_available():
        for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            monkeypatch.delenv(k, raising=False)
        with pytest.raises(ConfigError, match="torchrun"):
            prepare_launcher(cfg, "pytorch")


def test_finetune_from_pretrained_keeps_backbone_and_inherits_method(tmp_path):
    torch.manual_seed(0)
    src = torchvision_resnet18 = __import__("torchvision").models.resnet18(num_classes=10)
    path = tmp_path / "resnet18_cutmix_imagenet.pth"
    torch.save(torchvision_resnet18.state_dict(), path)
    model = CAMClassifier("resnet18", 4, wsol=True, pretrained=str(path), pretrained_head="drop")
    assert torch.equal(model.backbone.layer3[1].conv2.weight, src.layer3[1].conv2.weight)
    assert model.backbone.fc.weight.shape == (4, 512)
    assert model.method == "cutmix" and model.checkpoint_meta()["pretrained_method"] == "cutmix"
    with pytest.raises(Exception, match="class-count"):
        CAMClassifier("resnet18", 4, pretrained=str(path), pretrained_head="require")
