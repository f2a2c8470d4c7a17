"""Captioning end to end on the generated COCO data: train_caption (a few iterations on mmengine's Runner) with a
backbone checkpoint, the encoder's own learning rate, --freeze-encoder, --resume, and test_caption's record."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from helpers import NIC_TINY_OPTIONS

from cutmix_transfer.captioning import CocoCaptionDataset, build_vocab, load_captioner, score_captions, to_percent
from cutmix_transfer.captioning.train import CONFIGS_HINT, REQUIRED_KEYS
from cutmix_transfer.checkpoints import PROJECT_META_KEY, safe_torch_load
from cutmix_transfer.report.table import add_intervals, build_rows, find_records
from cutmix_transfer.runner import load_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import test_caption as test_tool  # noqa: E402
import train_caption as train_tool  # noqa: E402

CONFIG = str(ROOT / "configs" / "caption" / "nic_demo.py")
TINY = [
    *NIC_TINY_OPTIONS,
    "train_dataloader.num_workers=0",
    "train_dataloader.persistent_workers=False",
    "test_dataloader.num_workers=0",
    "test_dataloader.dataset.image_size=32",
    "train_cfg.max_epochs=1",
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    """A torchvision-format ResNet-18 checkpoint (random weights, non-trivial BN statistics)."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=10)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("ckpt") / "resnet18_cutmix.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def trained(demo_root, backbone, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("nic")
    rc = train_tool.main(
        [
            CONFIG,
            "--backbone",
            str(backbone),
            "--work-dir",
            str(work),
            "--seed",
            "0",
            "--data-root",
            str(demo_root / "coco"),
            "--cfg-options",
            *TINY,
        ]
    )
    assert rc == 0
    ckpt = Path((work / "last_checkpoint").read_text().strip())
    return {"work": work, "ckpt": ckpt, "root": demo_root / "coco"}


def test_train_writes_vocab_meta_and_encoder_lr(trained, backbone):
    root = trained["root"]
    kp = json.loads((root / "dataset_coco.json").read_text())
    train_imgs = [im for im in kp["images"] if im["split"] in ("train", "restval")][:8]
    expected = build_vocab([s["tokens"] for im in train_imgs for s in im["sentences"]], min_count=5)
    vocab = json.loads((trained["work"] / "vocab.json").read_text())["words"]
    assert vocab == expected.words and len(vocab) > 8
    ck = safe_torch_load(trained["ckpt"])
    meta = ck["meta"][PROJECT_META_KEY]
    assert meta["task"] == "captioning" and meta["vocab"] == vocab and meta["arch"] == "resnet18"
    assert meta["encoder"]["sha256"] == _sha256(backbone) and meta["method"] == "cutmix"
    # the encoder's learning rate is the decoder's x lr_mult (0.05 in nic_demo.py)
    lrs = sorted({round(g["lr"], 12) for g in ck["optimizer"]["param_groups"]})
    assert len(lrs) == 2 and lrs[0] / lrs[1] == pytest.approx(0.05)
    # a few iterations moved the encoder (fine-tuned) and the decoder away from their starting weights
    start = torch.load(backbone, weights_only=True)
    sd = ck["state_dict"]
    assert not torch.equal(sd["encoder.layer4.1.conv2.weight"], start["layer4.1.conv2.weight"])
    assert torch.equal(sd["encoder.bn1.running_mean"], start["bn1.running_mean"])  # norm_eval: BN statistics kept


def test_test_caption_record_matches_independent_scoring(trained, backbone, tmp_path):
    out = tmp_path / "test"
    rc = test_tool.main(
        [
            CONFIG,
            str(trained["ckpt"]),
            "--out",
            str(out),
            "--split",
            "test",
            "--beam",
            "2",
            "--seed",
            "5",
            "--no-meteor",
            "--data-root",
            str(trained["root"]),
            "--device",
            "cpu",
            "--cfg-options",
            "test_dataloader.dataset.image_size=32",
        ]
    )
    assert rc == 0
    rec = json.loads((out / "results.json").read_text())
    assert rec["kind"] == "captioning" and rec["split"] == "test" and rec["beam_size"] == 2
    assert rec["checkpoint"]["sha256"] == _sha256(backbone) and rec["checkpoint"]["method"] == "cutmix"
    assert rec["captioner_checkpoint"]["sha256"] == _sha256(trained["ckpt"])
    assert rec["train_seed"] == 0 and rec["seed"] == 5  # fine-tuning seed and the sample figure's seed, apart
    assert "SPICE" in rec["unavailable"] and "METEOR" in rec["unavailable"]
    kp = json.loads((trained["root"] / "dataset_coco.json").read_text())
    refs = {im["cocoid"]: [s["raw"] for s in im["sentences"]] for im in kp["images"] if im["split"] == "test"}
    rows = json.loads((out / "captions.json").read_text())
    assert sorted(r["image_id"] for r in rows) == sorted(refs)
    # the captions are what the checkpoint generates, and the record's numbers are their COCO scores
    model, _ = load_captioner(trained["ckpt"])
    ds = CocoCaptionDataset(str(trained["root"]), "test", image_size=32)
    with torch.inference_mode():
        res = model.generate(torch.stack([ds[i]["inputs"] for i in range(len(ds))]), beam_size=2)
    mine = {it.image_id: model.vocab.decode(res.tokens[i, : res.lengths[i]].tolist()) for i, it in enumerate(ds.items)}
    assert {r["image_id"]: r["caption"] for r in rows} == mine
    again = to_percent(score_captions(refs, mine, scorers=("bleu", "rouge", "cider")))
    assert rec["metrics"] == pytest.approx(again)
    assert set(rec["metrics"]) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"}
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the report resamples BLEU from captions.json's per-image statistics: intervals around the record's numbers
    records = find_records([out])
    (row,) = build_rows(records)
    notes: list[str] = []
    add_intervals([row], records, resamples=100, notes=notes)
    assert not notes and "METEOR" not in row.intervals  # --no-meteor
    for col in ("BLEU-1", "BLEU-4", "CIDEr"):
        ci = row.intervals[col]
        assert ci.value == pytest.approx(rec["metrics"][col], abs=1e-6) and ci.n == len(refs) and ci.low <= ci.high


def test_freeze_encoder_and_resume(demo_root, backbone, tmp_path):
    work = tmp_path / "frozen"
    args = [
        CONFIG,
        "--backbone",
        str(backbone),
        "--work-dir",
        str(work),
        "--freeze-encoder",
        "--data-root",
        str(demo_root / "coco"),
        "--cfg-options",
        *TINY,
        "train_cfg.val_interval=5",
    ]
    assert train_tool.main(args) == 0
    sd = safe_torch_load(work / "epoch_1.pth")["state_dict"]
    start = torch.load(backbone, weights_only=True)
    for k, v in start.items():
        if not k.startswith("fc."):
            assert torch.equal(sd[f"encoder.{k}"], v), k  # weights and BN statistics untouched
    assert not any(k.startswith("encoder.fc.") for k in sd)
    # --resume continues from epoch 1 to epoch 2 with the same vocabulary
    assert train_tool.main(args[:-2] + ["train_cfg.max_epochs=2", "train_cfg.val_interval=5", "--resume"]) == 0
    ck2 = safe_torch_load(work / "epoch_2.pth")
    assert ck2["meta"]["epoch"] == 2
    assert ck2["meta"][PROJECT_META_KEY]["vocab"] == json.loads((work / "vocab.json").read_text())["words"]


def test_tools_fail_with_one_line(tmp_path, backbone, capsys, demo_root):
    assert train_tool.main([str(tmp_path / "nope.py")]) == 2
    assert "nope.py" in capsys.readouterr().err
    rc = test_tool.main([CONFIG, str(backbone), "--out", str(tmp_path / "o"), "--data-root", str(demo_root / "coco")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a NIC captioner checkpoint" in err and err.count("\n") == 1
    assert train_tool.main([CONFIG, "--data-root", str(tmp_path / "missing"), "--work-dir", str(tmp_path / "w")]) == 2
    assert "missing" in capsys.readouterr().err


def test_configs_load_with_the_paper_setup():
    cfg = load_config(ROOT / "configs" / "caption" / "nic_coco_karpathy.py", where=CONFIGS_HINT, required=REQUIRED_KEYS)
    m = cfg.model
    assert (m.type, m.arch, m.embed_dim, m.hidden_dim, m.dropout, m.beam_size, m.max_len) == (
        "NICCaptioner",
        "resnet50",
        512,
        512,
        0.5,
        3,
        16,
    )
    assert cfg.vocab_min_count == 5 and cfg.train_dataloader.dataset.source == "karpathy"
    assert cfg.test_dataloader.dataset.split == "test"
    enc_lr = cfg.optim_wrapper.optimizer.lr * cfg.optim_wrapper.paramwise_cfg.custom_keys["encoder"].lr_mult
    assert enc_lr == pytest.approx(1e-5)
    demo = load_config(ROOT / "configs" / "caption" / "nic_demo.py")
    assert demo.train_dataloader.dataset.root == "data/demo/coco" and demo.model.arch == "resnet18"
