"""backbones.py: CAMNet builders, WSOL strides, VGG16-GAP, weight loading and its report."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torchvision

from cutmix_transfer import archs as A
from cutmix_transfer import backbones as B
from cutmix_transfer import checkpoints as C
from cutmix_transfer.datasets.common import CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD
from cutmix_transfer.datasets.wsol_data import EvalData
from cutmix_transfer.errors import CheckpointError, ConfigError, UnsafeCheckpointError
from cutmix_transfer.evalmodel import box_data_classes, load_eval_classifier

torch.set_num_threads(1)


def _conv_strides(model: nn.Module) -> dict[str, tuple]:
    return {n: m.stride for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


@pytest.mark.parametrize("arch", A.RESNET_ARCHS)
@pytest.mark.parametrize("wsol", [False, True])
def test_resnet_keys_are_torchvision_keys(arch, wsol):
    with torch.device("meta"):  # no memory, no init: shapes and names only
        ours = B.build_model(arch, 11, wsol=wsol).state_dict()
        if hasattr(torchvision.models, arch):
            ref = getattr(torchvision.models, arch)(num_classes=11).state_dict()
        else:  # resnet200: torchvision's ResNet class with CutMix-PyTorch's blocks per stage
            tv = torchvision.models.resnet
            ref = tv.ResNet(tv.Bottleneck, [3, 24, 36, 3], num_classes=11).state_dict()
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


# ---------------------------------------------------------------------------------------------- reference models
# Written again from the reference code (read, not copied): clovaai/CutMix-PyTorch resnet.py (its CIFAR branch and
# its ImageNet ResNet-200) and akamaster/pytorch_resnet_cifar10 resnet.py (option A shortcuts, a 'linear' head).
class _RefBasic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _RefBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride on the 3x3, as the reference
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _RefCutMixResNet(nn.Module):
    """CutMix-PyTorch's ResNet(dataset, depth, num_classes, bottleneck): the 'cifar' and 'imagenet' branches."""

    def __init__(self, dataset: str, depth: int, num_classes: int, bottleneck: bool = True) -> None:
        super().__init__()
        self.dataset = dataset
        if dataset.startswith("cifar"):
            block, n = (_RefBottleneck, (depth - 2) // 9) if bottleneck else (_RefBasic, (depth - 2) // 6)
            self.inplanes = 16
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(block, 16, n)
            self.layer2 = self._make_layer(block, 32, n, 2)
            self.layer3 = self._make_layer(block, 64, n, 2)
            self.avgpool = nn.AvgPool2d(8)
            self.fc = nn.Linear(64 * block.expansion, num_classes)
        else:
            layers = {200: [3, 24, 36, 3]}[depth]
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(_RefBottleneck, 64, layers[0])
            self.layer2 = self._make_layer(_RefBottleneck, 128, layers[1], 2)
            self.layer3 = self._make_layer(_RefBottleneck, 256, layers[2], 2)
            self.layer4 = self._make_layer(_RefBottleneck, 512, layers[3], 2)
            self.avgpool = nn.AvgPool2d(7)
            self.fc = nn.Linear(2048, num_classes)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.dataset.startswith("cifar"):
            x = self.layer3(self.layer2(self.layer1(x)))
        else:
            x = self.layer4(self.layer3(self.layer2(self.layer1(self.maxpool(x)))))
        return self.fc(self.avgpool(x).flatten(1))


class _RefOptionA(nn.Module):
    """akamaster's LambdaLayer: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.planes = planes

    def forward(self, x):
        return nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.planes // 4, self.planes // 4), "constant", 0)


class _RefAkaBlock(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _RefOptionA(planes) if stride != 1 or cin != planes else nn.Sequential()

    def forward(self, x):
        out = self.bn2(self.conv2(nn.functional.relu(self.bn1(self.conv1(x)))))
        return nn.functional.relu(out + self.shortcut(x))


class _RefAkaResNet(nn.Module):
    def __init__(self, n: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin, stages = 16, []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(_RefAkaBlock(cin, planes, s))
                cin = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        out = nn.functional.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(nn.functional.avg_pool2d(out, out.size()[3]).flatten(1))


def _randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BN statistics and affine weights, so that every tensor matters to the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def _check_loads_key_for_key(path, ref: nn.Module, ref_sd: dict, arch: str, x: torch.Tensor, rename=lambda k: k):
    """The file loads as `arch`; every reference key (renamed to torchvision's) has its tensor in the model, the
    model has no other key, and the logits on `x` are the reference's."""
    found = load_eval_classifier(path, "imagenet", "the test data", "hint")
    model, loaded = found.model, found.loaded
    assert loaded.arch == arch and model.arch == arch
    ours = model.state_dict()
    want = {rename(k): v for k, v in ref_sd.items()}
    assert set(ours) == set(want), set(ours) ^ set(want)
    for k, v in want.items():
        assert ours[k].shape == v.shape and torch.equal(ours[k], v), k
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "depth,bottleneck,arch",
    [
        (20, False, "cifar_resnet20_basic_proj"),
        (8, False, "cifar_resnet8_basic_proj"),
        (29, True, "cifar_resnet29_bottleneck_proj"),
        (56, True, "cifar_resnet56_bottleneck_proj"),
    ],
)
def test_cutmix_pytorch_cifar_resnet_loads(tmp_path, depth, bottleneck, arch):
    torch.manual_seed(depth)
    ref = _randomize_bn(_RefCutMixResNet("cifar100", depth, 100, bottleneck), depth)
    sd = ref.state_dict()
    path = tmp_path / "cutmix_cifar.pth.tar"
    torch.save(
        {
            "epoch": 300,
            "arch": "resnet",
            "state_dict": {f"module.{k}": v for k, v in sd.items()},
            "best_err1": 20.0,
            "best_err5": 5.0,
            "optimizer": {},
        },
        path,
    )
    _check_loads_key_for_key(path, ref, sd, arch, torch.randn(3, 3, 32, 32))


@pytest.mark.parametrize("n", [1, 3, 9])
def test_akamaster_option_a_release_layout_loads(tmp_path, n):
    """Legacy (non-zip) torch file {'state_dict': module.*, 'best_prec1'}, 'linear' head: as the release files."""
    torch.manual_seed(n)
    ref = _randomize_bn(_RefAkaResNet(n), n)
    sd = ref.state_dict()
    path = tmp_path / f"resnet{6 * n + 2}-0000.th"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "best_prec1": 92.5},
        path,
        _use_new_zipfile_serialization=False,
    )
    assert path.read_bytes()[:2] == b"\x80\x02"  # a legacy pickle, not a zip
    loaded = C.load_backbone_state(path)
    assert loaded.source_format == "pytorch_resnet_cifar10" and loaded.meta["best_prec1"] == pytest.approx(92.5)
    _check_loads_key_for_key(
        path,
        ref,
        sd,
        f"cifar_resnet{6 * n + 2}_basic_zeropad",
        torch.randn(3, 3, 32, 32),
        rename=lambda k: k.replace("linear.", "fc."),
    )


def test_cutmix_pytorch_resnet200_loads(tmp_path):
    torch.manual_seed(200)
    ref = _randomize_bn(_RefCutMixResNet("imagenet", 200, 7), 200)
    sd = ref.state_dict()
    path = tmp_path / "resnet200.pth.tar"
    torch.save(
        {
            "epoch": 1,
            "arch": "resnet",
            "state_dict": {f"module.{k}": v for k, v in sd.items()},
            "best_err1": 20.0,
            "best_err5": 5.0,
        },
        path,
    )
    # 224 px: the reference's AvgPool2d(7) is then the global average the CAMNet takes
    _check_loads_key_for_key(path, ref, sd, "resnet200", torch.randn(1, 3, 224, 224))


def test_three_stage_layouts_still_unknown_are_refused(tmp_path):
    ref = _RefAkaResNet(2)
    sd = {f"module.{k}": v for k, v in ref.state_dict().items() if not k.startswith("layer3.1.")}  # unequal stages
    torch.save({"state_dict": sd, "best_prec1": 1.0}, tmp_path / "odd.th")
    with pytest.raises(CheckpointError, match="unknown ResNet layout.*three-stage CIFAR ResNet"):
        C.load_backbone_state(tmp_path / "odd.th")
    with pytest.raises(ConfigError, match="cifar_resnet"):
        B.build_model("cifar_resnet57_basic_proj", 10)
    with pytest.raises(ConfigError, match="cifar_resnet"):
        B.build_model("cifar_resnet29_bottleneck_zeropad", 10)


def test_he_cifar_names_cannot_be_confused_with_resnet_cifar():
    assert A.parse_he_cifar("resnet18_cifar") is None and "resnet18_cifar" in A.ARCHS
    assert A.parse_he_cifar("cifar_resnet56_basic_zeropad") == A.HeCifarSpec(9, False, "zeropad")
    with torch.device("meta"):
        four_stage = B.build_model("resnet18_cifar", 10).state_dict()
    assert A.infer_arch(four_stage) == "resnet18_cifar"


def test_eval_classifier_checks_the_label_range_and_the_expected_arch(tmp_path, tv18):
    """evalmodel.load_eval_classifier: a 5-class head covers labels 0-4, so a largest label of 5 is refused and 4 is
    not; an --arch the weights are not is refused (the expected arch reaches the loader)."""
    path = _save_cutmix(tmp_path, tv18)
    found = load_eval_classifier(path, "imagenet", "the data", "hint", max_label=4)
    assert found.loaded.num_classes == 5 and found.loaded.arch == "resnet18"
    with pytest.raises(CheckpointError, match="5-class head but the labels of the data reach 5"):
        load_eval_classifier(path, "imagenet", "the data", "hint", max_label=5)
    with pytest.raises(CheckpointError):
        load_eval_classifier(path, "imagenet", "the data", "hint", arch="resnet50")


def _save_project(path, model: nn.Module, **meta):
    """`model` in this project's layout (backbone.* keys, meta['cutmix_transfer'])."""
    torch.save(
        {
            "state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()},
            "meta": {C.PROJECT_META_KEY: {"arch": "resnet18", "num_classes": 5, **meta}},
        },
        path,
    )
    return path


def _feature_side(model: nn.Module, side: int = 64) -> int:
    """The side of the last feature map the CAM is taken from (64 px in: 2 standard, 4 WSOL, 8 large map)."""
    with torch.no_grad():
        return int(model.features(torch.zeros(1, 3, side, side)).shape[-1])


def test_eval_classifier_takes_the_form_the_meta_records(tmp_path, tv18):
    """The WSOL form and the large feature map come from the checkpoint's meta unless the caller overrides them; a
    large feature map without the WSOL form is never built from meta (its flag alone does nothing)."""
    cases = [
        ({"wsol": True, "large_feature_map": True}, {}, (True, True, "checkpoint meta"), 8),
        ({"wsol": True}, {}, (True, False, "checkpoint meta"), 4),
        ({"wsol": False, "large_feature_map": True}, {}, (False, False, "checkpoint meta"), 2),
        ({"wsol": True, "large_feature_map": True}, {"large_feature_map": False}, (True, False, "checkpoint meta"), 4),
        ({"wsol": True, "large_feature_map": True}, {"wsol_form": False}, (False, False, "command line"), 2),
        ({}, {}, (False, False, "checkpoint meta"), 2),
        ({}, {"wsol_form": True}, (True, False, "command line"), 4),
    ]
    x = torch.randn(2, 3, 64, 64)
    for i, (meta, kwargs, (wsol, large, source), side) in enumerate(cases):
        path = _save_project(tmp_path / f"m{i}.pth", tv18, **meta)
        found = load_eval_classifier(path, "imagenet", "the data", "hint", **kwargs)
        assert found.form == {"wsol_form": wsol, "large_feature_map": large, "form_source": source}, (meta, kwargs)
        assert _feature_side(found.model) == side, (meta, kwargs)
        if not wsol:
            with torch.no_grad():
                assert torch.allclose(found.model(x), tv18(x), atol=1e-5)


def test_eval_classifier_needs_a_head_and_passes_trust_on(tmp_path, tv18):
    """A file without an fc head is refused even when its meta declares a class count; a file that needs arbitrary
    unpickling loads only with trust (the flag reaches the loader)."""
    headless = {k: v for k, v in tv18.state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "headless.pth"
    torch.save(
        {
            "state_dict": {f"backbone.{k}": v for k, v in headless.items()},
            "meta": {C.PROJECT_META_KEY: {"arch": "resnet18", "num_classes": 5}},
        },
        path,
    )
    with pytest.raises(CheckpointError, match="has no classifier head.*hint"):
        load_eval_classifier(path, "imagenet", "the data", "hint")
    zero = {**tv18.state_dict(), "fc.weight": torch.zeros(0, 512), "fc.bias": torch.zeros(0)}  # an fc of 0 classes
    torch.save(zero, tmp_path / "zero.pth")
    with pytest.raises(CheckpointError, match="has no classifier head.*hint"):
        load_eval_classifier(tmp_path / "zero.pth", "imagenet", "the data", "hint")
    plain = _save_project(tmp_path / "plain.pth", tv18)
    assert load_eval_classifier(plain, "imagenet", "the data", "hint", num_classes=5).loaded.num_classes == 5
    with pytest.raises(CheckpointError, match="5-class head but the data has 7 classes; hint"):
        load_eval_classifier(plain, "imagenet", "the data", "hint", num_classes=7)
    odd = tmp_path / "odd.pth"
    torch.save({"state_dict": tv18.state_dict(), "meta": {"saved": datetime.datetime(2024, 1, 2)}}, odd)
    with pytest.raises(UnsafeCheckpointError, match="--trust-checkpoint"):
        load_eval_classifier(odd, "imagenet", "the data", "hint")
    found = load_eval_classifier(odd, "imagenet", "the data", "hint", trust=True)
    assert found.loaded.num_classes == 5 and found.form["wsol_form"] is False


def test_eval_classifier_resolves_the_normalisation(tmp_path, tv18):
    """--mean / --std win over the checkpoint's meta, the meta over the dataset's statistics; box_data_classes
    names the data and its largest label."""
    plain = _save_project(tmp_path / "plain.pth", tv18)
    norm = load_eval_classifier(plain, "cifar100", "the data", "hint").norm
    assert (norm.mean, norm.std, norm.source) == (CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD, "dataset default")
    meta = _save_project(tmp_path / "meta.pth", tv18, mean=[0.5, 0.4, 0.3], std=[0.2, 0.3, 0.4])
    norm = load_eval_classifier(meta, "cifar100", "the data", "hint").norm
    assert (norm.mean, norm.std, norm.source) == ((0.5, 0.4, 0.3), (0.2, 0.3, 0.4), "checkpoint meta")
    norm = load_eval_classifier(meta, "cifar100", "the data", "hint", mean=(0.1, 0.2, 0.3), std=(0.9, 0.8, 0.7)).norm
    assert (norm.mean, norm.std, norm.source) == ((0.1, 0.2, 0.3), (0.9, 0.8, 0.7), "command line")
    with pytest.raises(ConfigError, match="--mean and --std go together"):
        load_eval_classifier(meta, "cifar100", "the data", "hint", std=(0.9, 0.8, 0.7))
    samples = [SimpleNamespace(label=lab) for lab in (3, 0, 7, 2)]
    data = EvalData(samples, 9, None, "test", tmp_path / "CUB_200_2011", "raw")
    assert box_data_classes("cub", data) == {
        "what": f"the cub data at {tmp_path / 'CUB_200_2011'}",
        "num_classes": 9,
        "max_label": 7,
    }
