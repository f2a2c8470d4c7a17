"""backbones.py: CAMNet builders, WSOL strides, VGG16-GAP, weight loading and its report."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torchvision

from cutmix_transfer import archs as A
from cutmix_transfer import backbones as B
from cutmix_transfer import checkpoints as C
from cutmix_transfer.errors import CheckpointError, ConfigError

torch.set_num_threads(1)


def _conv_strides(model: nn.Module) -> dict[str, tuple]:
    return {n: m.stride for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


@pytest.mark.parametrize("arch", A.RESNET_ARCHS)
@pytest.mark.parametrize("wsol", [False, True])
def test_resnet_keys_are_torchvision_keys(arch, wsol):
    with torch.device("meta"):  # no memory, no init: shapes and names only
        ours = B.build_model(arch, 11, wsol=wsol).state_dict()
        ref = getattr(torchvision.models, arch)(num_classes=11).state_dict()
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)


def test_plain_resnet_equals_torchvision_forward():
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=6).eval()
    ours = B.build_model("resnet18", 6).eval()
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-5)


@pytest.mark.parametrize("arch,block_conv", [("resnet18", "conv1"), ("resnet50", "conv2")])
def test_wsol_strides_match_wsolevaluation(arch, block_conv):
    """wsolevaluation: layer4 stride 1; large_feature_map: layer3 stride 1 too. Only those convs change."""
    plain = _conv_strides(B.build_model(arch, 3))
    for large, stages in [(False, ["layer4"]), (True, ["layer3", "layer4"])]:
        wsol = _conv_strides(B.build_model(arch, 3, wsol=True, large_feature_map=large))
        changed = sorted(n for n in plain if plain[n] != wsol[n])
        want = sorted(f"{s}.0.{c}" for s in stages for c in (block_conv, "downsample.0"))
        assert changed == want
        assert all(wsol[n] == (1, 1) for n in changed)


@pytest.mark.parametrize("arch", ["resnet18", "vgg16"])
def test_feature_map_sizes(arch):
    x = torch.randn(1, 3, 64, 64)
    sizes = {}
    for name, kw in [("plain", {}), ("wsol", {"wsol": True}), ("large", {"wsol": True, "large_feature_map": True})]:
        if arch == "vgg16" and name == "plain":
            continue
        m = B.build_model(arch, 3, **kw).eval()
        with torch.no_grad():
            sizes[name] = tuple(m.features(x).shape[1:])
    if arch == "resnet18":
        assert sizes == {"plain": (512, 2, 2), "wsol": (512, 4, 4), "large": (512, 8, 8)}
    else:  # 64 / 16 without pool5; / 8 without pool4 too
        assert sizes == {"wsol": (1024, 4, 4), "large": (1024, 8, 8)}


@pytest.mark.parametrize("arch", ["vgg16", "vgg16_bn"])
def test_vgg16_gap_matches_torchvision_features(arch):
    """VGG16-GAP = torchvision's features without pool5, then conv6 3x3 512->1024 + ReLU; keys unchanged."""
    torch.manual_seed(0)
    m = B.build_model(arch, 4, wsol=True).eval()
    with torch.device("meta"):
        tv_features = getattr(torchvision.models, arch)().features
    tv_features = tv_features.to_empty(device="cpu")
    ours = m.state_dict()
    tv_features.load_state_dict({k[len("features.") :]: v for k, v in ours.items() if k.startswith("features.")})
    tv_features.eval()
    assert isinstance(tv_features[-1], nn.MaxPool2d)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = torch.relu(
            nn.functional.conv2d(tv_features[:-1](x), ours["conv6.weight"], ours["conv6.bias"], padding=1)
        )
        got = m.features(x)
        assert torch.allclose(got, want, atol=1e-5)
        assert torch.allclose(m(x), want.mean((2, 3)) @ ours["fc.weight"].T + ours["fc.bias"], atol=1e-5)
    assert m.conv6.weight.shape == (1024, 512, 3, 3) and m.fc.weight.shape == (4, 1024)
    with torch.device("meta"):
        tv_keys = set(getattr(torchvision.models, arch)().state_dict())
    assert {k for k in ours if k.startswith("features.")} == {k for k in tv_keys if k.startswith("features.")}


def test_build_model_rejects_bad_values():
    with pytest.raises(ConfigError, match="resnet9"):
        B.build_model("resnet9", 10)
    with pytest.raises(ConfigError, match="num_classes"):
        B.build_model("resnet18", 0)
    with pytest.raises(ConfigError, match="wsol=True"):
        B.build_model("resnet18", 3, large_feature_map=True)


# ---------------------------------------------------------------------------------------------- loading
def _save_cutmix(tmp_path, model: nn.Module, name: str = "cm.pth"):
    path = tmp_path / name
    torch.save(
        {
            "epoch": 1,
            "arch": "resnet",
            "state_dict": {"module." + k: v for k, v in model.state_dict().items()},
            "best_err1": 1.0,
            "best_err5": 0.5,
            "optimizer": {},
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def tv18() -> nn.Module:
    torch.manual_seed(3)
    m = torchvision.models.resnet18(num_classes=5)
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2)
                bn.weight.normal_()
    return m.eval()


def test_build_from_checkpoint_reproduces_the_source_model(tmp_path, tv18):
    model, loaded, report = B.build_from_checkpoint(_save_cutmix(tmp_path, tv18), wsol=False)
    assert not model.training and model.num_classes == 5 and loaded.source_format == "cutmix-pytorch"
    assert report.missing == [] and report.unexpected == [] and report.skipped_shape == []
    assert set(report.loaded) == set(tv18.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), tv18(x), atol=1e-5)


def test_imagenet_checkpoint_loads_into_wsol_form(tmp_path, tv18):
    model, _, report = B.build_from_checkpoint(_save_cutmix(tmp_path, tv18), wsol=True, large_feature_map=True)
    assert report.missing == [] and report.unexpected == []
    for k, v in tv18.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert model.layer3[0].downsample[0].stride == (1, 1)


def test_head_modes(tmp_path, tv18):
    loaded = C.load_backbone_state(_save_cutmix(tmp_path, tv18))
    fc_keys = ["fc.bias", "fc.weight"]

    same = B.build_model("resnet18", 5, wsol=True)
    rep = B.load_weights(same, loaded, head="if-match")
    assert rep.skipped_shape == [] and torch.equal(same.fc.weight, tv18.fc.weight)

    other = B.build_model("resnet18", 200, wsol=True)
    fresh_fc = other.fc.weight.clone()
    with pytest.raises(CheckpointError, match=r"5 classes.*200") as e:
        B.load_weights(other, loaded, head="require")
    assert "class-count mismatch" in str(e.value)
    rep = B.load_weights(other, loaded, head="if-match")
    assert sorted(rep.skipped_shape) == fc_keys and torch.equal(other.fc.weight, fresh_fc)
    assert torch.equal(other.layer4[1].conv2.weight, tv18.layer4[1].conv2.weight)

    drop = B.build_model("resnet18", 5, wsol=True)
    fresh_fc = drop.fc.weight.clone()
    rep = B.load_weights(drop, loaded, head="drop")
    assert sorted(rep.missing) == fc_keys and sorted(rep.unexpected) == fc_keys
    assert torch.equal(drop.fc.weight, fresh_fc)
    with pytest.raises(ConfigError, match="keep"):
        B.load_weights(drop, loaded, head="keep")  # type: ignore[arg-type]


def test_arch_mismatch_in_load_weights(tmp_path, tv18):
    loaded = C.load_backbone_state(_save_cutmix(tmp_path, tv18))
    with pytest.raises(CheckpointError, match="resnet34.*resnet18"):
        B.load_weights(B.build_model("resnet34", 5), loaded)


def test_checkpoint_without_batch_counters_loads(tmp_path, tv18):
    sd = {k: v for k, v in tv18.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pth")
    model, _, report = B.build_from_checkpoint(tmp_path / "old.pth")
    # BatchNorm fills an absent counter itself (torch's own compatibility path), so nothing is reported missing
    assert report.missing == [] and report.summary().startswith(f"loaded {len(sd)}, left fresh 0")
    assert torch.equal(model.layer2[0].bn1.running_var, tv18.layer2[0].bn1.running_var)


def test_torchvision_vgg_checkpoint_into_vgg16_gap(tmp_path):
    """A torchvision VGG16 file: conv layers load, conv6/fc stay fresh, classifier.* is reported unused."""
    torch.manual_seed(4)
    src = B.build_model("vgg16", 3, wsol=True)
    sd = {k: v for k, v in src.state_dict().items() if k.startswith("features.")}
    # torchvision's fc8 only (fc6 alone would be 400 MB); its 10 classes are not a GAP head
    sd.update({"classifier.6.weight": torch.randn(10, 4096), "classifier.6.bias": torch.randn(10)})
    torch.save(sd, tmp_path / "vgg16.pth")
    with pytest.raises(CheckpointError, match="no GAP fc head.*fc6-fc8"):
        B.build_from_checkpoint(tmp_path / "vgg16.pth", num_classes=200, head="require")
    with pytest.raises(ConfigError, match="num_classes"):
        B.build_from_checkpoint(tmp_path / "vgg16.pth")
    model, loaded, report = B.build_from_checkpoint(tmp_path / "vgg16.pth", num_classes=200, head="drop")
    assert loaded.arch == "vgg16" and loaded.num_classes == 10 and not loaded.has_fc
    assert sorted(report.missing) == ["conv6.bias", "conv6.weight", "fc.bias", "fc.weight"]
    assert sorted(report.unexpected) == sorted(k for k in sd if k.startswith("classifier."))
    assert torch.equal(model.state_dict()["features.28.weight"], sd["features.28.weight"])
