"""tools/test_cls.py on generated data in the real layouts: its numbers against a hand-written pipeline and an
independent count, the normalisation it picks (--mean/--std, checkpoint meta, dataset default), ImageNet's two
layouts and CUB, errors, and torchrun against one process."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from helpers import REPO, EvalTool, eval_args, read_csv, run_torchrun, write_cifar100
from PIL import Image

from cutmix_transfer.backbones import build_model
from cutmix_transfer.checkpoints import PROJECT_META_KEY
from cutmix_transfer.clseval import calibration as CAL
from cutmix_transfer.datasets.common import CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD, IMAGENET_MEAN, IMAGENET_STD
from cutmix_transfer.datasets.imagenet import load_imagenet_val
from cutmix_transfer.errors import ConfigError
from cutmix_transfer.normalization import dataset_normalization, resolve_normalization

torch.set_num_threads(1)
TOOL = EvalTool(REPO / "tools" / "test_cls.py")
N_TEST, K = 230, 5  # > 2 RMS bins of 100 images, so the RMS error is not trivially 0


def _save_aka(model: torch.nn.Module, path: Path) -> Path:
    """A checkpoint in akamaster's release layout: legacy torch file, module. prefix, 'linear' head, best_prec1."""
    sd = {"module." + k.replace("fc.", "linear."): v for k, v in model.state_dict().items()}
    torch.save({"state_dict": sd, "best_prec1": 50.0}, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def cifar(tmp_path_factory) -> dict:
    """CIFAR-100 and CIFAR-10 python layouts of the same N_TEST random 32 px images (K classes), and a trained-looking
    option-A ResNet-8 in akamaster's layout plus the same weights in this project's layout with meta mean / std."""
    root = tmp_path_factory.mktemp("cls_cifar")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N_TEST, 32, 32, 3), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, K, N_TEST)]
    write_cifar100(root / "c100", {"test": (images, labels)}, [f"class_{i}" for i in range(K)])
    c10 = root / "c10" / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    rows = images.transpose(0, 3, 1, 2).reshape(N_TEST, -1)
    (c10 / "test_batch").write_bytes(pickle.dumps({b"data": rows, b"labels": labels}, protocol=2))
    (c10 / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(K)]}, protocol=2))
    torch.manual_seed(0)
    model = build_model("cifar_resnet8_basic_zeropad", K).eval()
    with torch.no_grad():  # a confident model: logits spread over several units
        model.fc.weight.mul_(8.0)
    ckpts = {"aka": _save_aka(model, root / "resnet8-aka.th")}
    meta = {"arch": model.arch, "method": "cutmix", "num_classes": K, "mean": [0.3, 0.4, 0.5], "std": [0.2, 0.3, 0.25]}
    ckpts["ours"] = root / "ours_cutmix.pth"
    torch.save(
        {"state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()}, "meta": {PROJECT_META_KEY: meta}},
        ckpts["ours"],
    )
    return {"root": root, "images": images, "labels": np.array(labels), "model": model, "ckpts": ckpts}


def _hand_logits(model, images_hwc: np.ndarray, mean, std) -> np.ndarray:
    """pixels / 255, (x - mean) / std per channel, the model: CutMix-PyTorch's CIFAR test input written out."""
    x = torch.from_numpy(images_hwc).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(x).numpy()


def _run(args: list[str]) -> int:
    return TOOL.run_single_threaded(args)


@pytest.fixture(scope="module")
def cifar_run(cifar, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cls_single")
    args = eval_args("--backbone", cifar["ckpts"]["aka"], "cifar100", cifar["root"] / "c100", out)
    assert _run([*args, "--batch-size", "64", "--fit-temperature", "0.5", "--seed", "3"]) == 0
    return out


def test_numbers_equal_a_hand_written_pipeline_and_an_independent_count(cifar, cifar_run):
    rec = json.loads((cifar_run / "results.json").read_text())
    assert rec["kind"] == "classification" and rec["dataset"] == "cifar100" and rec["split"] == "test"
    assert rec["checkpoint"]["arch"] == "cifar_resnet8_basic_zeropad" and rec["num_images"] == N_TEST
    assert rec["normalization_source"] == "dataset default"
    assert rec["protocol"]["normalize_mean"] == pytest.approx(list(CIFAR100_CUTMIX_MEAN))
    want = _hand_logits(cifar["model"], cifar["images"], CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD)
    with np.load(cifar_run / "logits.npz") as z:
        got, labels, ids = z["logits"], z["labels"], z["image_ids"]
        fit = z["fit_positions"]
    assert np.allclose(got, want, atol=1e-4) and np.array_equal(labels, cifar["labels"])
    assert list(ids) == [str(i) for i in range(N_TEST)]
    y = cifar["labels"]
    order = np.argsort(-want, axis=1)
    m = rec["metrics"]
    assert m["top1_err"] == pytest.approx(100.0 * np.mean(order[:, 0] != y), abs=1e-9)
    assert m["top5_err"] == 0.0  # 5 classes: every class is in the top 5
    nll = torch.nn.functional.cross_entropy(torch.from_numpy(want).double(), torch.from_numpy(y)).item()
    assert m["nll"] == pytest.approx(nll, abs=1e-4)
    assert m["ece"] == pytest.approx(CAL.classification_metrics(got, y)["ece"], abs=1e-9) and m["ece"] > 1.0
    assert m["rms_calib_err"] > 0.0
    rows = read_csv(cifar_run / "per_image.csv")
    assert list(rows[0]) == ["image_id", "index", "label", "pred", "confidence", "correct_top1", "correct_top5"]
    assert [int(r["pred"]) for r in rows] == order[:, 0].tolist()
    conf = torch.softmax(torch.from_numpy(got).double(), 1).max(1).values.numpy()
    assert np.allclose([float(r["confidence"]) for r in rows], conf, atol=1e-12)
    # temperature: fitted on the seeded half, reported on the other half
    ts = rec["temperature_scaling"]
    assert ts["num_fit"] == len(fit) == N_TEST // 2 and ts["num_held_out"] == N_TEST - len(fit)
    assert np.array_equal(fit, CAL.split_for_temperature(N_TEST, 0.5, 3)[0])
    assert ts["temperature"] == pytest.approx(CAL.fit_temperature(got[fit], y[fit])["temperature"], rel=1e-9)
    held = np.setdiff1d(np.arange(N_TEST), fit)
    assert ts["held_out_after"]["nll"] == pytest.approx(CAL.nll(got[held], y[held], ts["temperature"]), rel=1e-9)
    assert ts["held_out_before"]["ece"] == pytest.approx(CAL.classification_metrics(got[held], y[held])["ece"])
    with Image.open(cifar_run / "reliability.png") as im:
        assert im.size[0] > 600 and im.size[1] > 300


def test_mean_std_from_the_command_line_and_from_the_checkpoint_meta(cifar, cifar_run, tmp_path):
    args = eval_args("--backbone", cifar["ckpts"]["aka"], "cifar10", cifar["root"] / "c10", tmp_path / "cli")
    assert _run([*args, "--mean", *map(str, IMAGENET_MEAN), "--std", *map(str, IMAGENET_STD)]) == 0
    rec = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert rec["normalization_source"] == "command line" and rec["dataset"] == "cifar10"
    assert rec["protocol"]["normalize_std"] == pytest.approx(list(IMAGENET_STD))
    with np.load(tmp_path / "cli" / "logits.npz") as z:
        assert np.allclose(
            z["logits"], _hand_logits(cifar["model"], cifar["images"], IMAGENET_MEAN, IMAGENET_STD), atol=1e-4
        )
    # this project's checkpoint: the training statistics recorded in its meta are the default
    args = eval_args("--backbone", cifar["ckpts"]["ours"], "cifar100", cifar["root"] / "c100", tmp_path / "meta")
    assert _run(args) == 0
    rec = json.loads((tmp_path / "meta" / "results.json").read_text())
    assert rec["normalization_source"] == "checkpoint meta"
    assert rec["protocol"]["normalize_mean"] == [0.3, 0.4, 0.5] and rec["checkpoint"]["method"] == "cutmix"
    with np.load(tmp_path / "meta" / "logits.npz") as z:
        assert np.allclose(
            z["logits"], _hand_logits(cifar["model"], cifar["images"], [0.3, 0.4, 0.5], [0.2, 0.3, 0.25]), atol=1e-4
        )
    # the same images, so the same data identity; another normalisation, so another protocol
    base = json.loads((cifar_run / "results.json").read_text())
    assert rec["data"] == base["data"] and rec["protocol"] != base["protocol"]


def test_resolve_normalization_precedence_and_errors():
    meta = {"mean": [0.1, 0.2, 0.3], "std": [0.3, 0.3, 0.3]}
    assert resolve_normalization(meta, "cifar100", [0, 0, 0], [1, 1, 1]).source == "command line"
    assert resolve_normalization(meta, "cifar100").mean == (0.1, 0.2, 0.3)
    d = resolve_normalization({}, "cub")
    assert (d.mean, d.std, d.source) == (IMAGENET_MEAN, IMAGENET_STD, "dataset default")
    assert resolve_normalization(None, "cifar10").mean == CIFAR100_CUTMIX_MEAN
    for mean, std, needle in [
        ([0, 0, 0], None, "go together"),
        ([0, 0], [1, 1, 1], "--mean"),
        ([0, 0, 0], [1, 0, 1], "--std"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            resolve_normalization(None, "imagenet", mean, std)


def test_checkpoint_meta_hook_records_the_training_normalisation(cifar):
    from cutmix_transfer.datasets.classification import CIFARDataset
    from cutmix_transfer.runner import CheckpointMetaHook, SeededDataset

    spec = dict(preset="pad_crop_train", size=32, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    ds = SeededDataset(CIFARDataset(str(cifar["root"] / "c100"), "test", spec, variant="cifar100"))
    assert dataset_normalization(ds) == {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}

    class Model:
        def checkpoint_meta(self):
            return {"arch": "resnet18"}

    runner = type("R", (), {"train_dataloader": type("L", (), {"dataset": ds})(), "model": Model()})()
    hook, ckpt = CheckpointMetaHook(), {}
    hook.before_train(runner)
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt["meta"][PROJECT_META_KEY] == {"arch": "resnet18", "mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}


def test_imagenet_both_layouts_and_cub(demo_root, tmp_path):
    """The demo's Kaggle ILSVRC val and the same images sorted into ImageFolder val/<wnid>/: the same logits, equal to
    resize 73 (= round(64 / 0.875)) + centre crop 64 by hand; CUB's test split at 64 x 64."""
    torch.manual_seed(1)
    model = build_model("resnet18", 4).eval()
    ckpt = tmp_path / "r18.pth"
    torch.save(model.state_dict(), ckpt)
    kaggle = demo_root / "ILSVRC"
    assert _run(eval_args("--backbone", ckpt, "imagenet", kaggle, tmp_path / "k", "--image-size", "64")) == 0
    samples = load_imagenet_val(kaggle)
    folder = tmp_path / "imagefolder"
    synsets = [ln.split()[0] for ln in (kaggle / "LOC_synset_mapping.txt").read_text().splitlines()]
    for s in samples:
        (folder / "val" / synsets[s.label]).mkdir(parents=True, exist_ok=True)
        shutil.copy(s.path, folder / "val" / synsets[s.label] / Path(s.path).name)
    assert _run(eval_args("--backbone", ckpt, "imagenet", folder, tmp_path / "f", "--image-size", "64")) == 0
    rk = json.loads((tmp_path / "k" / "results.json").read_text())
    rf = json.loads((tmp_path / "f" / "results.json").read_text())
    assert (rk["layout"], rf["layout"]) == ("ilsvrc-kaggle", "imagefolder")
    assert rk["protocol"]["resize"] == 73 and rk["protocol"]["crop"] == 64
    by_name = {}
    for out in ("k", "f"):
        with np.load(tmp_path / out / "logits.npz") as z:
            by_name[out] = {Path(str(i)).name: row for i, row in zip(z["image_ids"], z["logits"])}
    assert by_name["k"].keys() == by_name["f"].keys()
    for s in samples:
        with Image.open(s.path) as im:
            x = TF.to_tensor(TF.center_crop(TF.resize(im.convert("RGB"), 73), 64))
        x = TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)
        with torch.no_grad():
            want = model(x[None])[0].numpy()
        name = Path(s.path).name
        assert np.allclose(by_name["k"][name], want, atol=1e-4) and np.allclose(by_name["f"][name], want, atol=1e-4)
    assert rk["metrics"] == rf["metrics"]
    assert (
        _run(eval_args("--backbone", ckpt, "cub", demo_root / "CUB_200_2011", tmp_path / "c", "--image-size", "64"))
        == 0
    )
    rc = json.loads((tmp_path / "c" / "results.json").read_text())
    assert rc["split"] == "test" and rc["protocol"]["resize"] == [64, 64] and rc["num_images"] == 8


def test_errors_are_one_line(cifar, tmp_path, capsys):
    base = eval_args("--backbone", cifar["ckpts"]["aka"], "cifar100", cifar["root"] / "c100", tmp_path / "e")
    torch.save(build_model("cifar_resnet8_basic_zeropad", 7).state_dict(), tmp_path / "k7.pth")
    other = eval_args("--backbone", tmp_path / "k7.pth", "cifar100", cifar["root"] / "c100", tmp_path / "e2")
    TOOL.check_option_errors(
        base,
        [
            (["--fit-temperature", "1.5"], "--fit-temperature"),
            (["--mean", "0", "0", "0"], "--mean and --std"),
            (["--image-size", "64"], "32 px"),
            (["--std", "1", "1", "1", "--mean", "0", "0", "0", "--batch-size", "0"], "--batch-size"),
        ],
        capsys,
    )
    assert TOOL.main()(other) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "class-count mismatch" in err[0] and "7-class" in err[0] and "5 classes" in err[0]
    assert (
        TOOL.main()(eval_args("--backbone", cifar["ckpts"]["aka"], "cifar100", tmp_path / "nowhere", tmp_path / "e3"))
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]


def test_torchrun_two_processes_equal_one(cifar, cifar_run, tmp_path):
    out = tmp_path / "dist"
    args = eval_args("--backbone", cifar["ckpts"]["aka"], "cifar100", cifar["root"] / "c100", out)
    proc = run_torchrun(TOOL.path, [*args, "--batch-size", "64", "--fit-temperature", "0.5", "--seed", "3"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist_rec = json.loads((out / "results.json").read_text())
    single = json.loads((cifar_run / "results.json").read_text())
    assert dist_rec["world_size"] == 2 and single["world_size"] == 1
    assert dist_rec["metrics"] == single["metrics"] and dist_rec["temperature_scaling"] == single["temperature_scaling"]
    assert dist_rec["data"] == single["data"]
    assert (out / "per_image.csv").read_text() == (cifar_run / "per_image.csv").read_text()
    with np.load(out / "logits.npz") as a, np.load(cifar_run / "logits.npz") as b:
        assert np.array_equal(a["logits"], b["logits"])


def test_unreadable_image_stops_or_is_skipped(demo_root, tmp_path):
    root = tmp_path / "CUB_200_2011"
    shutil.copytree(demo_root / "CUB_200_2011", root)
    torch.manual_seed(2)
    ckpt = tmp_path / "r18.pth"
    torch.save(build_model("resnet18", 4).state_dict(), ckpt)
    lines = (root / "train_test_split.txt").read_text().split()
    test_ids = {lines[i] for i in range(0, len(lines), 2) if lines[i + 1] == "0"}
    paths = dict(ln.split() for ln in (root / "images.txt").read_text().splitlines() if ln.strip())
    bad = root / "images" / paths[sorted(test_ids, key=int)[0]]  # the test split's first image, broken on disk
    bad.write_bytes(b"not a jpeg")
    args = eval_args("--backbone", ckpt, "cub", root, tmp_path / "fail", "--image-size", "64")
    proc = TOOL.run(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(err) == 1 and str(bad) in err[0] and "--skip-unreadable" in err[0]
    assert not (tmp_path / "fail" / "results.json").exists()
    out = tmp_path / "skip"
    assert _run(eval_args("--backbone", ckpt, "cub", root, out, "--image-size", "64", "--skip-unreadable")) == 0
    rec = json.loads((out / "results.json").read_text())
    assert rec["num_images"] == 7 and rec["skipped_unreadable"]["count"] == 1
    assert len(read_csv(out / "per_image.csv")) == 7 and rec["data"]["num_images"] == 7


def test_report_reads_the_record_top1_and_ece_from_per_image_rows(cifar, cifar_run):
    """The report's statistics over per_image.csv reproduce the record (top-1 err, ECE by hand on the rows), the
    CIFAR data root is the batch files' folder, and provenance stays out of the protocol block."""
    from cutmix_transfer.report.per_image import per_image_statistic

    rec = json.loads((cifar_run / "results.json").read_text())
    assert rec["data"]["root"] == str((cifar["root"] / "c100" / "cifar-100-python").resolve())
    assert not {"tool", "layout", "normalization_source"} & set(rec["protocol"])
    assert (rec["tool"], rec["layout"]) == ("test_cls", "cifar-python") and rec["train_seed"] is None
    rows = read_csv(cifar_run / "per_image.csv")
    conf = np.array([float(r["confidence"]) for r in rows])
    correct = np.array([float(r["correct_top1"]) for r in rows])
    bins = np.array([15 if c == 1.0 else int(np.floor(c * 15)) for c in conf])
    ece = sum(abs(correct[bins == b].mean() - conf[bins == b].mean()) * np.sum(bins == b) for b in set(bins))
    assert 100.0 * ece / len(conf) == pytest.approx(rec["metrics"]["ece"], abs=1e-9)
    for metric in ("top1_err", "ece"):
        ids, stat = per_image_statistic(cifar_run / "results.json", rec, metric)
        assert ids == sorted(str(i) for i in range(N_TEST))
        assert stat(np.ones((1, N_TEST)))[0] == pytest.approx(rec["metrics"][metric], abs=1e-9)
