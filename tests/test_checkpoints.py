"""checkpoints.py: safe loading, every supported layout, arch inference, error paths, export."""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from helpers import REPO, load_tool_main, tool_env

from cutmix_transfer import archs as A
from cutmix_transfer import checkpoints as C
from cutmix_transfer.backbones import build_model
from cutmix_transfer.errors import CheckpointError, ConfigError, UnsafeCheckpointError

torch.set_num_threads(1)
CONVERT_TOOL = REPO / "tools" / "convert_checkpoint.py"


@pytest.fixture(scope="module")
def r18() -> dict[str, torch.Tensor]:
    """A randomly initialised torchvision ResNet-18 (5 classes) state dict: the weights every layout must give back."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5)
    with torch.no_grad():  # non-trivial BN statistics so that every tensor differs from its default
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


def _save(obj, path: Path, legacy: bool = False) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


# ---------------------------------------------------------------------------------------------- formats
@pytest.mark.parametrize("legacy", [False, True])
def test_cutmix_pytorch_format(tmp_path, r18, legacy):
    obj = {
        "epoch": 299,
        "arch": "resnet",
        "state_dict": {"module." + k: v for k, v in r18.items()},
        "best_err1": torch.tensor(21.4),
        "best_err5": 5.92,
        "optimizer": {"state": {}, "param_groups": []},
    }
    loaded = C.load_backbone_state(_save(obj, tmp_path / "cutmix.pth.tar", legacy))
    assert_same_weights(loaded.state_dict, r18)
    assert (loaded.source_format, loaded.arch, loaded.num_classes, loaded.has_fc) == (
        "cutmix-pytorch",
        "resnet18",
        5,
        True,
    )
    assert loaded.meta["epoch"] == 299 and loaded.meta["best_err1"] == pytest.approx(21.4)
    assert loaded.sha256 == C.sha256_file(tmp_path / "cutmix.pth.tar")


def test_plain_torchvision_state_dict(tmp_path, r18):
    loaded = C.load_backbone_state(_save(collections.OrderedDict(r18), tmp_path / "tv.pth"), arch="resnet18")
    assert_same_weights(loaded.state_dict, r18)
    assert (loaded.source_format, loaded.num_classes) == ("torchvision", 5)


def test_torchvision_references_checkpoint_with_namespace_args(tmp_path, r18):
    args = argparse.Namespace(model="resnet18", lr=0.1, epochs=90)
    obj = {"model": r18, "optimizer": {}, "lr_scheduler": {}, "epoch": 89, "args": args}
    loaded = C.load_backbone_state(_save(obj, tmp_path / "ref.pth"))
    assert_same_weights(loaded.state_dict, r18)
    assert loaded.source_format == "torchvision" and loaded.meta["epoch"] == 89


def test_timm_train_checkpoint(tmp_path, r18):
    obj = {
        "epoch": 10,
        "arch": "resnet18",
        "state_dict": r18,
        "optimizer": {},
        "version": 2,
        "args": argparse.Namespace(model="resnet18"),
        "metric": 71.5,
        "state_dict_ema": r18,
    }
    loaded = C.load_backbone_state(_save(obj, tmp_path / "timm.pth.tar"))
    assert_same_weights(loaded.state_dict, r18)
    assert loaded.source_format == "timm" and loaded.meta["has_ema"] is True


@pytest.mark.parametrize("prefix", ["backbone.", "module.backbone."])
def test_mmpretrain_checkpoint(tmp_path, r18, prefix):
    sd = {prefix + k: v for k, v in r18.items() if not k.startswith("fc.")}
    sd.update({prefix.replace("backbone.", "") + "head.fc." + k[3:]: v for k, v in r18.items() if k.startswith("fc.")})
    sd["data_preprocessor.mean"] = torch.zeros(3)
    obj = {"meta": {"epoch": 100, "mmengine_version": "0.10.7"}, "state_dict": sd, "optimizer": {}}
    loaded = C.load_backbone_state(_save(obj, tmp_path / "mmpretrain.pth"))
    assert_same_weights(loaded.state_dict, r18)
    assert loaded.source_format == "mmengine" and loaded.meta["dropped_keys"] == 1


def test_mmdet_detector_checkpoint_takes_backbone_only(tmp_path, r18):
    sd = {"backbone." + k: v for k, v in r18.items() if not k.startswith("fc.")}
    sd.update({"neck.lateral_convs.0.conv.weight": torch.zeros(4, 4, 1, 1), "rpn_head.rpn_cls.weight": torch.zeros(3)})
    loaded = C.load_backbone_state(_save({"meta": {}, "state_dict": sd}, tmp_path / "det.pth"))
    want = {k: v for k, v in r18.items() if not k.startswith("fc.")}
    assert_same_weights(loaded.state_dict, want)
    assert (loaded.has_fc, loaded.num_classes) == (False, None)


def test_wsolevaluation_resnet50(tmp_path):
    torch.manual_seed(1)
    sd = torchvision.models.resnet50(num_classes=200).state_dict()
    obj = {
        "architecture": "resnet50",
        "epoch": 50,
        "state_dict": {"module." + k: v for k, v in sd.items()},
        "optimizer": {},
    }
    loaded = C.load_backbone_state(_save(obj, tmp_path / "wsol.pth.tar"))
    assert_same_weights(loaded.state_dict, sd)
    assert (loaded.source_format, loaded.arch, loaded.num_classes) == ("wsolevaluation", "resnet50", 200)


def _vgg_gap_state(large: bool = False) -> dict:
    torch.manual_seed(2)
    return {k: v.clone() for k, v in build_model("vgg16", 200, wsol=True, large_feature_map=large).state_dict().items()}


def test_wsolevaluation_vgg16_gap(tmp_path):
    sd = _vgg_gap_state()
    obj = {"architecture": "vgg16", "epoch": 3, "state_dict": sd, "optimizer": {}}
    loaded = C.load_backbone_state(_save(obj, tmp_path / "vgg.pth.tar"))
    assert_same_weights(loaded.state_dict, sd)
    assert (loaded.arch, loaded.has_fc, loaded.num_classes) == ("vgg16", True, 200)


def test_wsolevaluation_vgg16_28x28_layout_is_renumbered(tmp_path):
    """wsolevaluation's 28x28 VGG removes pool4, so its conv layers 24/26/28 are stored as 23/25/27."""
    sd = _vgg_gap_state(large=True)
    shift = {"features.24.": "features.23.", "features.26.": "features.25.", "features.28.": "features.27."}
    theirs = {}
    for k, v in sd.items():
        for a, b in shift.items():
            if k.startswith(a):
                k = b + k[len(a) :]
        theirs[k] = v
    assert "features.23.weight" in theirs and "features.28.weight" not in theirs
    loaded = C.load_backbone_state(
        _save({"architecture": "vgg16", "epoch": 1, "state_dict": theirs, "optimizer": {}}, tmp_path / "vgg28.pth.tar")
    )
    assert_same_weights(loaded.state_dict, sd)


def test_torchvision_vgg16_bn_classifier_is_not_a_gap_head(tmp_path):
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg16_bn(num_classes=10).state_dict().items()}
    sd = {
        k: torch.randn(s) if s else torch.tensor(3)
        for k, s in shapes.items()
        if not k.startswith("classifier.0") and not k.startswith("classifier.3")
    }
    sd.update({"classifier.6.weight": torch.randn(10, 4096), "classifier.6.bias": torch.randn(10)})
    loaded = C.load_backbone_state(_save(sd, tmp_path / "vgg_bn.pth"))
    assert (loaded.arch, loaded.has_fc, loaded.num_classes) == ("vgg16_bn", False, 10)


def test_cutmix_transfer_own_checkpoint(tmp_path, r18):
    sd = {"backbone." + k: v for k, v in r18.items()}
    sd["data_preprocessor.mean"] = torch.zeros(3)
    meta = {"epoch": 7, C.PROJECT_META_KEY: {"arch": "resnet18", "method": "cutmix", "num_classes": 5}}
    meta[C.PROJECT_META_KEY]["wsol"] = True
    loaded = C.load_backbone_state(_save({"meta": meta, "state_dict": sd, "optimizer": {}}, tmp_path / "ours.pth"))
    assert_same_weights(loaded.state_dict, r18)
    assert loaded.source_format == "cutmix_transfer" and loaded.meta["method"] == "cutmix"
    assert loaded.meta["wsol"] is True and loaded.meta["epoch"] == 7


def test_meta_keys_are_the_ones_written_on_disk():
    """Checkpoints already written carry these keys: changing a constant would orphan them."""
    assert C.PROJECT_META_KEY == "cutmix_transfer" and C.BACKBONE_META_KEY == "backbone_checkpoint"


def test_check_state_fits_counts_missing_and_misshaped_weights():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 4))  # 0.weight (2, 3), ..., 1.bias (4,)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    C.check_state_fits(model, {**state, "extra": torch.zeros(1)}, "a.pth", "the model")  # extra keys are fine
    del state["0.bias"]
    state["1.weight"] = torch.zeros(5, 2)
    with pytest.raises(CheckpointError) as err:
        C.check_state_fits(model, state, "a.pth", "the model", hint="Use the right config")
    msg = str(err.value)
    assert msg.startswith("a.pth does not fit the model: 1 weights missing (e.g. ['0.bias']), 1 of another shape")
    assert "1.weight (5, 2) vs (4, 2)" in msg and msg.endswith(". Use the right config")


def test_real_mmengine_runner_checkpoint_loads_safely(tmp_path):
    """A checkpoint saved by mmengine's Runner (HistoryBuffer, numpy scalars) loads with weights_only=True."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Cls(BaseModel):
        def __init__(self):
            super().__init__()
            self.backbone = torchvision.models.resnet18(num_classes=3)

        def forward(self, inputs, labels, mode="tensor"):
            out = self.backbone(inputs)
            return {"loss": torch.nn.functional.cross_entropy(out, labels)} if mode == "loss" else out

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"inputs": torch.randn(3, 32, 32), "labels": i % 3}

    runner = Runner(
        model=Cls(),
        work_dir=str(tmp_path / "work"),
        train_dataloader=dict(
            dataset=Data(),
            batch_size=2,
            collate_fn=dict(type="default_collate"),
            sampler=dict(type="DefaultSampler", shuffle=False),
        ),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1), logger=dict(type="LoggerHook")),
        default_scope=None,
        log_level="WARNING",
        experiment_name="t",
    )
    runner.train()
    ckpt = tmp_path / "work" / "epoch_1.pth"
    raw = C.safe_torch_load(ckpt)
    buf = raw["message_hub"]["log_scalars"]["train/loss"]
    assert type(buf).__name__ == "HistoryBuffer" and np.isfinite(buf.mean())
    loaded = C.load_backbone_state(ckpt)
    want = {k: v.cpu() for k, v in runner.model.backbone.state_dict().items()}
    assert_same_weights(loaded.state_dict, want)
    assert (loaded.source_format, loaded.arch, loaded.num_classes) == ("mmengine", "resnet18", 3)


# ---------------------------------------------------------------------------------------------- arch inference
@pytest.mark.parametrize("arch", A.ARCHS)
def test_infer_arch_from_shapes(arch):
    with torch.device("meta"):
        if arch in A.RESNET_ARCHS + A.VGG_ARCHS and hasattr(torchvision.models, arch):
            sd = getattr(torchvision.models, arch)(num_classes=7).state_dict()
        elif arch in A.RESNET_ARCHS:  # resnet200: torchvision's ResNet class with CutMix-PyTorch's [3, 24, 36, 3]
            tv = torchvision.models.resnet
            sd = tv.ResNet(tv.Bottleneck, [3, 24, 36, 3], num_classes=7).state_dict()
        else:  # CIFAR ResNets and PyramidNets: the project's own builders
            sd = build_model(arch, 7).state_dict()
    assert A.infer_arch(sd) == arch


def test_arch_mismatch_names_both(tmp_path, r18):
    path = _save(r18, tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="resnet50") as e:
        C.load_backbone_state(path, arch="resnet50")
    assert "resnet18" in str(e.value) and str(path) in str(e.value)


def test_unknown_arch_name_is_config_error(tmp_path, r18):
    with pytest.raises(ConfigError, match="resnet42"):
        C.load_backbone_state(_save(r18, tmp_path / "r18.pth"), arch="resnet42")


def test_small_input_stem_is_cifar_resnet(tmp_path, r18):
    sd = dict(r18, **{"conv1.weight": torch.zeros(64, 3, 3, 3)})
    assert C.load_backbone_state(_save(sd, tmp_path / "stem.pth")).arch == "resnet18_cifar"
    sd = dict(r18, **{"conv1.weight": torch.zeros(64, 3, 5, 5)})
    with pytest.raises(CheckpointError, match="5x5 stem conv"):
        C.load_backbone_state(_save(sd, tmp_path / "stem5.pth"))


def test_cifar_resnet_is_unknown_layout(tmp_path):
    sd = {
        "conv1.weight": torch.zeros(16, 3, 7, 7),
        "layer1.0.conv1.weight": torch.zeros(16, 16, 3, 3),
        "layer2.0.conv1.weight": torch.zeros(32, 16, 3, 3),
        "layer3.0.conv1.weight": torch.zeros(64, 32, 3, 3),
    }
    with pytest.raises(CheckpointError, match="unknown ResNet layout.*CIFAR"):
        C.load_backbone_state(_save(sd, tmp_path / "cifar.pth"))


def test_wide_resnet_shapes_refused(tmp_path):
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.wide_resnet50_2().state_dict().items()}
    sd = {k: torch.zeros(s) for k, s in shapes.items()}
    with pytest.raises(CheckpointError, match="wrong shape for resnet50"):
        C.load_backbone_state(_save(sd, tmp_path / "wide.pth"))


# ---------------------------------------------------------------------------------------------- error paths
def test_missing_and_unexpected_keys_listed_with_counts(tmp_path, r18):
    gone = ("layer3.1.conv2.", "layer3.1.bn2.")
    sd = {k: v for k, v in r18.items() if not k.startswith(gone)}
    with pytest.raises(CheckpointError, match="5 missing keys") as e:  # conv2.weight + bn2 weight/bias/mean/var
        C.load_backbone_state(_save(sd, tmp_path / "m.pth"))
    assert "layer3.1.conv2.weight" in str(e.value)
    sd = dict(r18, **{"extra.weight": torch.zeros(1), "extra.bias": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="2 unexpected keys"):
        C.load_backbone_state(_save(sd, tmp_path / "u.pth"))


def test_num_batches_tracked_may_be_absent(tmp_path, r18):
    """Old torch (<0.4.1, e.g. early CutMix-PyTorch runs) saved no num_batches_tracked."""
    sd = {k: v for k, v in r18.items() if not k.endswith("num_batches_tracked")}
    assert len(C.load_backbone_state(_save(sd, tmp_path / "old.pth")).state_dict) == len(sd)


def test_truncated_checkpoint(tmp_path, r18):
    good = _save(r18, tmp_path / "good.pth")
    data = good.read_bytes()
    bad = tmp_path / "cut.pth"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated") as e:
        C.load_backbone_state(bad)
    assert str(bad) in str(e.value) and not isinstance(e.value, UnsafeCheckpointError)


def test_text_empty_missing_and_non_checkpoint_files(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="text file"):
        C.safe_torch_load(text)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        C.safe_torch_load(empty)
    with pytest.raises(CheckpointError, match="does not exist"):
        C.safe_torch_load(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="not a checkpoint: it holds a Tensor"):
        C.load_backbone_state(_save(torch.zeros(3), tmp_path / "tensor.pth"))
    with pytest.raises(CheckpointError, match="unknown checkpoint layout"):
        C.load_backbone_state(_save({"weights": [1, 2]}, tmp_path / "odd.pth"))


class _Evil:
    """Unpickling this would create a file (stands in for any code a malicious checkpoint could run)."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("how", ["pickle-protocol-2", "pickle-protocol-4", "torch.save", "torch.save-legacy"])
def test_malicious_pickle_never_runs(tmp_path, how):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    payload = {"state_dict": {"conv1.weight": [0.0]}, "x": _Evil(str(marker))}
    if how.startswith("pickle"):
        path.write_bytes(pickle.dumps(payload, protocol=int(how[-1])))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=how == "torch.save")
    with pytest.raises(UnsafeCheckpointError) as e:
        C.load_backbone_state(path)
    msg = str(e.value)
    assert str(path) in msg and "--trust-checkpoint" in msg
    if how != "pickle-protocol-4":  # protocol 4 is refused at its first FRAME opcode, before any GLOBAL
        assert "posix.system" in msg or "os.system" in msg
    assert not marker.exists()


def test_trust_loads_a_non_allow_listed_object(tmp_path, r18):
    obj = {"state_dict": r18, "meta": {"saved": datetime.datetime(2024, 1, 2)}}
    path = _save(obj, tmp_path / "dt.pth")
    with pytest.raises(UnsafeCheckpointError, match="datetime"):
        C.safe_torch_load(path)
    assert C.safe_torch_load(path, trust=True)["meta"]["saved"].year == 2024
    assert_same_weights(C.load_backbone_state(path, trust=True).state_dict, r18)


def test_safe_globals_cover_numpy_and_containers(tmp_path):
    obj = {
        "a": np.arange(4, dtype=np.int16),
        "s": np.float64(2.5),
        "dt": np.dtype("float32"),
        "dd": collections.defaultdict(list),
        "od": collections.OrderedDict(y=2),
        "ns": argparse.Namespace(lr=0.1),
    }
    got = C.safe_torch_load(_save(obj, tmp_path / "np.pth"))
    assert got["a"].dtype == np.int16 and got["a"].tolist() == [0, 1, 2, 3]
    assert got["s"] == 2.5 and got["dt"] == np.float32 and got["dd"]["new"] == [] and got["ns"].lr == 0.1
    # torch's weights_only unpickler cannot fill a defaultdict: refused as unsafe (not as corrupt), with the reason
    path = _save({"dd": collections.defaultdict(list, {"x": [1]})}, tmp_path / "dd.pth")
    with pytest.raises(UnsafeCheckpointError, match="defaultdict"):
        C.safe_torch_load(path)


def test_getattr_is_restricted(tmp_path):
    """mmengine needs builtins.getattr for HistoryBuffer methods; any other getattr is refused."""
    from mmengine.logging.history_buffer import HistoryBuffer

    class Sneaky:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, "__init__"))

    path = tmp_path / "g.pth"
    torch.save({"x": Sneaky()}, path)
    with pytest.raises(UnsafeCheckpointError, match="--trust-checkpoint"):
        C.safe_torch_load(path)


# ---------------------------------------------------------------------------------------------- export
def test_export_torchvision_and_mmdet_roundtrip(tmp_path, r18):
    src = _save(
        {"epoch": 1, "arch": "resnet", "state_dict": r18, "best_err1": 30.0, "best_err5": 10.0, "optimizer": {}},
        tmp_path / "src.pth",
    )
    loaded = C.load_backbone_state(src)
    C.export_checkpoint(loaded, tmp_path / "tv.pth", to="torchvision")
    tv = C.safe_torch_load(tmp_path / "tv.pth")
    assert_same_weights(tv, r18)
    model = torchvision.models.resnet18(num_classes=5)
    model.load_state_dict(tv)  # strict: a plain torchvision state dict

    C.export_checkpoint(loaded, tmp_path / "det.pth", to="mmdet")
    det = C.safe_torch_load(tmp_path / "det.pth")
    assert set(det) == {"state_dict", "meta"}
    want = {k: v for k, v in r18.items() if not k.startswith("fc.")}
    assert_same_weights(det["state_dict"], want)
    assert det["meta"]["source_sha256"] == loaded.sha256 and det["meta"]["source_format"] == "cutmix-pytorch"
    again = C.load_backbone_state(tmp_path / "det.pth")
    assert again.arch == "resnet18" and not again.has_fc
    with pytest.raises(ConfigError, match="onnx"):
        C.export_checkpoint(loaded, tmp_path / "x.onnx", to="onnx")  # type: ignore[arg-type]


def test_mmdet_export_loads_into_mmdet_resnet(tmp_path, r18):
    mmdet_backbones = pytest.importorskip("mmdet.models.backbones")
    loaded = C.load_backbone_state(_save(r18, tmp_path / "r18.pth"))
    C.export_checkpoint(loaded, tmp_path / "det.pth", to="mmdet")
    net = mmdet_backbones.ResNet(depth=18, out_indices=(0, 1, 2, 3))
    net.load_state_dict(C.safe_torch_load(tmp_path / "det.pth")["state_dict"], strict=True)
    assert torch.equal(net.layer4[1].conv2.weight, r18["layer4.1.conv2.weight"])


# ---------------------------------------------------------------------------------------------- the tool
def _tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CONVERT_TOOL), *args],
        capture_output=True,
        text=True,
        env=tool_env(),
        cwd=REPO,
        timeout=120,
    )


def _tool_main():
    """The tool's main() in this process (same code path as the command line, without a new interpreter)."""
    return load_tool_main(CONVERT_TOOL, "convert_checkpoint_tool")


@pytest.fixture()
def cutmix_src(tmp_path, r18) -> Path:
    return _save(
        {
            "epoch": 1,
            "arch": "resnet",
            "state_dict": {"module." + k: v for k, v in r18.items()},
            "best_err1": 30.0,
            "best_err5": 10.0,
            "optimizer": {},
        },
        tmp_path / "src.pth",
    )


@pytest.mark.slow
def test_convert_tool_end_to_end(tmp_path, r18, cutmix_src):
    """Two real command lines: a conversion, and a bad file -> one 'error:' line and exit code 2."""
    out = _tool(str(cutmix_src), str(tmp_path / "det.pth"), "--to", "mmdet")
    assert out.returncode == 0, out.stderr
    assert "cutmix-pytorch resnet18" in out.stdout
    det = C.safe_torch_load(tmp_path / "det.pth")
    assert_same_weights(det["state_dict"], {k: v for k, v in r18.items() if not k.startswith("fc.")})

    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    out = _tool(str(bad), str(tmp_path / "o.pth"), "--to", "mmdet")
    assert out.returncode == 2
    err_lines = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(err_lines) == 1 and str(bad) in err_lines[0] and "Traceback" not in out.stderr
    assert not (tmp_path / "o.pth").exists()


def test_convert_tool_main(tmp_path, r18, cutmix_src, capsys):
    main = _tool_main()
    assert main([str(cutmix_src), str(tmp_path / "tv.pth"), "--to", "torchvision", "--arch", "resnet18"]) == 0
    assert_same_weights(C.safe_torch_load(tmp_path / "tv.pth"), r18)

    evil = tmp_path / "evil.pth"
    torch.save({"x": _Evil(str(tmp_path / "PWNED"))}, evil)
    assert main([str(evil), str(tmp_path / "o.pth"), "--to", "torchvision"]) == 2
    err = capsys.readouterr().err
    assert "--trust-checkpoint" in err and "posix.system" in err and not (tmp_path / "PWNED").exists()

    assert main([str(cutmix_src), str(tmp_path / "o.pth"), "--to", "mmdet", "--arch", "resnet50"]) == 2
    assert "arch mismatch" in capsys.readouterr().err
    assert main([str(cutmix_src), str(cutmix_src), "--to", "mmdet"]) == 2
    assert "is the source file" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a conversion draws no random numbers: no --seed
        main([str(cutmix_src), str(tmp_path / "o.pth"), "--to", "mmdet", "--seed", "0"])
    assert not (tmp_path / "o.pth").exists()


def test_vgg16_mmdet_export_fits_mmdet_ssdvgg(tmp_path):
    mmdet_backbones = pytest.importorskip("mmdet.models.backbones")
    torch.manual_seed(5)
    sd = build_model("vgg16", 3, wsol=True).state_dict()
    torch.save({"architecture": "vgg16", "epoch": 1, "state_dict": sd, "optimizer": {}}, tmp_path / "vgg.pth")
    C.convert_checkpoint(tmp_path / "vgg.pth", tmp_path / "det.pth", to="mmdet")
    exported = C.safe_torch_load(tmp_path / "det.pth")["state_dict"]
    assert not any(k.startswith(("conv6.", "fc.")) for k in exported)
    ssd = mmdet_backbones.SSDVGG(
        depth=16, with_last_pool=False, ceil_mode=True, out_indices=(3, 4), out_feature_indices=(22, 34)
    )
    result = ssd.load_state_dict(exported, strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == [
        "features.31.bias",
        "features.31.weight",
        "features.33.bias",
        "features.33.weight",
    ]  # SSD's own fc6/fc7 convs
    assert torch.equal(ssd.features[28].weight, sd["features.28.weight"])


def test_project_meta_keeps_the_training_normalisation(tmp_path, r18):
    """meta['cutmix_transfer'] mean / std (lists of 3 numbers) reach LoadedBackbone.meta; other shapes do not."""
    ours = {"arch": "resnet18", "method": "cutmix", "mean": [0.5, 0.4, 0.3], "std": (0.2, 0.2, 0.25)}
    path = _save({"state_dict": r18, "meta": {C.PROJECT_META_KEY: ours}}, tmp_path / "ours.pth")
    meta = C.load_backbone_state(path).meta
    assert meta["mean"] == [0.5, 0.4, 0.3] and meta["std"] == [0.2, 0.2, 0.25]
    ours.update(mean=[0.5, 0.4], std="0.2")
    meta = C.load_backbone_state(
        _save({"state_dict": r18, "meta": {C.PROJECT_META_KEY: ours}}, tmp_path / "b.pth")
    ).meta
    assert "mean" not in meta and "std" not in meta


def test_akamaster_format_is_detected_and_renamed(tmp_path):
    """{'state_dict': module.*, 'best_prec1'} in the legacy serialization: 'linear' -> 'fc', option B's
    'shortcut.0/1' -> 'downsample.0/1' (then the projection form)."""
    torch.manual_seed(1)
    ref = build_model("cifar_resnet14_basic_proj", 10).state_dict()
    raw = {"module." + k.replace("fc.", "linear.").replace(".downsample.", ".shortcut."): v for k, v in ref.items()}
    path = _save({"state_dict": raw, "best_prec1": torch.tensor(91.5)}, tmp_path / "resnet14.th", legacy=True)
    loaded = C.load_backbone_state(path)
    assert (loaded.source_format, loaded.arch, loaded.num_classes) == (
        "pytorch_resnet_cifar10",
        "cifar_resnet14_basic_proj",
        10,
    )
    assert_same_weights(loaded.state_dict, ref)
    assert loaded.meta["best_prec1"] == pytest.approx(91.5)
