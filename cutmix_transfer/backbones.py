"""ResNet / VGG16 / CIFAR PyramidNet classifiers whose last block is GAP + fc (CAMNet), WSOL forms, weight loading.

WSOL forms follow clovaai/wsolevaluation: ResNet with layer4 stride 1 (and layer3 stride 1 with
large_feature_map); VGG16-GAP with pool5 removed (and pool4 with large_feature_map), conv6 3x3 512->1024 + ReLU,
GAP and fc 1024->K. Stride changes and removed pools keep torchvision's state-dict keys (a removed pool becomes
nn.Identity), so a standard ImageNet checkpoint loads unchanged into the WSOL form.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from .archs import (
    CIFAR_RESNET_ARCHS,
    EXTRA_RESNETS,
    RESNET_ARCHS,
    VGG_ARCHS,
    HeCifarSpec,
    PyramidSpec,
    check_arch,
    parse_he_cifar,
    parse_pyramidnet,
    pyramidnet_out_channels,
    pyramidnet_plan,
    resnet_layers,
)
from .checkpoints import LoadedBackbone, load_backbone_state
from .errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

HeadMode = Literal["require", "drop", "if-match"]
HEAD_MODES = ("require", "drop", "if-match")


class CAMNet(nn.Module):
    """A classifier whose last block is GAP + fc: logits = fc(mean_hw(features(x))).

    `features(x)` is the (B, C, h, w) map that CAM is computed from; `fc` is nn.Linear(C, num_classes).
    """

    arch: str
    wsol: bool
    large_feature_map: bool
    fc: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images -> (B, C, h, w) last feature map."""
        raise NotImplementedError

    def cam_target_layer(self) -> nn.Module:
        """The module whose output is `features(x)` (for hook-based methods such as Grad-CAM)."""
        raise NotImplementedError

    def logits_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, num_classes): global average pooling, then fc."""
        return self.fc(feats.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images -> (B, num_classes) logits."""
        return self.logits_from_features(self.features(x))

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    @property
    def feature_dim(self) -> int:
        return self.fc.in_features


class ResNetCAM(CAMNet):
    """torchvision ResNet with the same module names (so the same state-dict keys), optionally in WSOL form."""

    def __init__(self, arch: str, num_classes: int, wsol: bool = False, large_feature_map: bool = False) -> None:
        """arch '<resnet>_cifar': the small-input stem (conv1 3x3 stride 1, no max-pool) for 32 px images."""
        super().__init__()
        cifar = arch in CIFAR_RESNET_ARCHS
        base = arch[: -len("_cifar")] if cifar else arch
        if base in EXTRA_RESNETS:  # CutMix-PyTorch's ResNet-200: torchvision's class, its blocks per stage
            tv = torchvision.models.resnet
            net = tv.ResNet(tv.Bottleneck, list(resnet_layers(base)[1]), num_classes=num_classes)
        else:
            net = getattr(torchvision.models, base)(weights=None, num_classes=num_classes)
        for name, child in net.named_children():  # conv1, bn1, relu, maxpool, layer1-4, avgpool, fc
            setattr(self, name, child)
        if cifar:
            use_small_input_stem(self)
        self.arch, self.wsol, self.large_feature_map = arch, wsol, large_feature_map
        if wsol:
            _set_stage_stride1(self.layer4)
            if large_feature_map:
                _set_stage_stride1(self.layer3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def cam_target_layer(self) -> nn.Module:
        return self.layer4[-1]


def use_small_input_stem(net: nn.Module) -> None:
    """Give a ResNet (torchvision module names) the small-input stem for 32 px images: a fresh conv1 3x3 stride 1
    (Kaiming fan-out init, as torchvision's) with the same output channels, and no max-pool (nn.Identity)."""
    net.conv1 = nn.Conv2d(3, net.conv1.out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()


def _set_stage_stride1(stage: nn.Sequential) -> None:
    """Make a ResNet stage keep its input resolution: stride 1 in its first block's strided conv and downsample.

    torchvision puts the stride on conv2 of a Bottleneck (ResNet v1.5, as CutMix-PyTorch and wsolevaluation)
    and on conv1 of a BasicBlock.
    """
    block = stage[0]
    strided = block.conv2 if isinstance(block, torchvision.models.resnet.Bottleneck) else block.conv1
    strided.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)
    block.stride = 1


class VGG16GAP(CAMNet):
    """VGG16(-BN) in GAP form (wsolevaluation's VGG16 CAM): features without pool5, conv6 512->1024 + ReLU, GAP, fc.

    features keeps torchvision's indices ('features.0' ... 'features.28' / '.41' for BN); large_feature_map also
    replaces pool4 with nn.Identity (28x28 maps at 224 input instead of 14x14).
    """

    def __init__(self, arch: str, num_classes: int, large_feature_map: bool = False) -> None:
        super().__init__()
        # torchvision's VGG16 conv layers without building its 120M-parameter classifier
        full = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"], batch_norm=arch == "vgg16_bn")
        for m in full.modules():  # torchvision VGG's own initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        pools = [i for i, m in enumerate(full) if isinstance(m, nn.MaxPool2d)]
        features = full[: pools[-1]]  # drop pool5; slicing keeps the original module names
        if large_feature_map:
            features[pools[-2]] = nn.Identity()
        # Registered under the name 'features' so the keys are torchvision's 'features.N.*'; `self.features` still
        # resolves to the CAMNet method (class attributes win over nn.Module's submodule lookup).
        self._modules["features"] = features
        self.conv6 = nn.Conv2d(512, 1024, kernel_size=3, padding=1)
        self.relu6 = nn.ReLU(inplace=False)
        self.fc = nn.Linear(1024, num_classes)
        nn.init.kaiming_normal_(self.conv6.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv6.bias)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)
        self.arch, self.wsol, self.large_feature_map = arch, True, large_feature_map

    @property
    def body(self) -> nn.Sequential:
        """The VGG conv layers (torchvision's `features` without pool5), stored as submodule 'features'."""
        return self._modules["features"]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu6(self.conv6(self.body(x)))

    def cam_target_layer(self) -> nn.Module:
        return self.relu6


class PyramidBasicBlock(nn.Module):
    """PyramidNet basic block: BN, conv3x3, BN, ReLU, conv3x3, BN, plus the zero-padded (average-pooled) shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _pyramid_downsample(stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn3(self.conv2(self.relu(self.bn2(self.conv1(self.bn1(x))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _add_padded_shortcut(self.residual(x), x if self.downsample is None else self.downsample(x))


class PyramidBottleneck(nn.Module):
    """PyramidNet bottleneck: BN, conv1x1, BN, ReLU, conv3x3, BN, ReLU, conv1x1 (x4), BN, zero-padded shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _pyramid_downsample(stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn2(self.conv1(self.bn1(x))))
        out = self.relu(self.bn3(self.conv2(out)))
        return self.bn4(self.conv3(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _add_padded_shortcut(self.residual(x), x if self.downsample is None else self.downsample(x))


def _pyramid_downsample(stride: int) -> nn.Module | None:
    """The shortcut of a strided block: 2x2 average pooling (ceil mode), no parameters; identity otherwise."""
    return nn.AvgPool2d(2, stride=2, ceil_mode=True) if stride != 1 else None


def _add_padded_shortcut(out: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
    """out + shortcut, the shortcut zero-padded with the channels it lacks (PyramidNet's parameter-free shortcut)."""
    extra = out.shape[1] - shortcut.shape[1]
    return out + (F.pad(shortcut, (0, 0, 0, 0, 0, extra)) if extra else shortcut)


def init_like_cutmix_pytorch(net: nn.Module) -> None:
    """CutMix-PyTorch's initialisation of its CIFAR models (PyramidNet, the three-stage ResNets): convolutions
    N(0, sqrt(2 / (k * k * out_channels))), BatchNorm weight 1 and bias 0; the fc keeps PyTorch's default."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0, (2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class PyramidNetCAM(CAMNet):
    """The CIFAR PyramidNet of clovaai/CutMix-PyTorch (`pyramidnet.py`) with its module names, as a CAMNet.

    conv1 3x3 16 -> bn1 (no ReLU) -> layer1-3 (stride 1, 2, 2) -> bn_final -> relu_final = `features` (8x8 at
    32 px) -> GAP -> fc. The reference pools with AvgPool2d(8), the same as GAP at 32 px; GAP also takes other sizes.
    """

    def __init__(self, spec: PyramidSpec, num_classes: int) -> None:
        super().__init__()
        block = PyramidBottleneck if spec.bottleneck else PyramidBasicBlock
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1, self.layer2, self.layer3 = (
            nn.Sequential(*(block(i, p, s) for i, p, s in stage)) for stage in pyramidnet_plan(spec)
        )
        out_c = pyramidnet_out_channels(spec)
        self.bn_final = nn.BatchNorm2d(out_c)
        self.relu_final = nn.ReLU(inplace=False)  # not in place: CAM / Grad-CAM hooks read its output
        self.fc = nn.Linear(out_c, num_classes)
        init_like_cutmix_pytorch(self)
        self.arch, self.wsol, self.large_feature_map = spec.name, False, False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.bn1(self.conv1(x)))))
        return self.relu_final(self.bn_final(x))

    def cam_target_layer(self) -> nn.Module:
        return self.relu_final


class ZeroPadShortcut(nn.Module):
    """He et al.'s parameter-free option A shortcut (akamaster/pytorch_resnet_cifar10): every second pixel, and
    planes // 4 zero channels before and after (16 -> 32 -> 64 channels)."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class HeCifarResNetCAM(CAMNet):
    """He et al.'s three-stage CIFAR ResNet as a CAMNet, with torchvision's blocks and names: conv1 3x3 16 -> bn1 ->
    ReLU -> layer1-3 (16, 32, 64 planes; stride 1, 2, 2) = `features` (8x8 at 32 px) -> GAP -> fc.

    shortcut 'proj' is CutMix-PyTorch's `resnet.py` CIFAR branch (downsample = 1x1 conv + BN where the shape
    changes); 'zeropad' is option A (`ZeroPadShortcut`, no weights). Both references pool with a global average.
    """

    def __init__(self, spec: HeCifarSpec, num_classes: int) -> None:
        super().__init__()
        tv = torchvision.models.resnet
        block = tv.Bottleneck if spec.bottleneck else tv.BasicBlock
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        cin, e = 16, spec.expansion
        for s, planes in enumerate((16, 32, 64), start=1):
            stride = 1 if s == 1 else 2
            down: nn.Module | None = None
            if stride != 1 or cin != planes * e:
                down = (
                    nn.Sequential(nn.Conv2d(cin, planes * e, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * e))
                    if spec.shortcut == "proj"
                    else ZeroPadShortcut(planes)
                )
            blocks = [block(cin, planes, stride, down)]
            blocks += [block(planes * e, planes) for _ in range(1, spec.blocks_per_stage)]
            setattr(self, f"layer{s}", nn.Sequential(*blocks))
            cin = planes * e
        self.fc = nn.Linear(64 * e, num_classes)
        init_like_cutmix_pytorch(self)
        self.arch, self.wsol, self.large_feature_map = spec.name, False, False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def cam_target_layer(self) -> nn.Module:
        return self.layer3[-1]


def build_model(arch: str, num_classes: int, wsol: bool = False, large_feature_map: bool = False) -> CAMNet:
    """A freshly initialised CAMNet (weights=None: nothing is downloaded).

    ResNet: torchvision's net; wsol=True sets layer4 stride 1 (and layer3 with large_feature_map), giving 14x14
    (28x28) maps at 224 input instead of 7x7. VGG16(-BN) is always built in its GAP form (VGG16-GAP), the only
    VGG with a CAM; `wsol` does not change it, large_feature_map also removes pool4. A CIFAR PyramidNet
    ('pyramidnet200_a240_bottleneck', ...) or three-stage CIFAR ResNet ('cifar_resnet56_basic_zeropad', ...) has no
    WSOL form: `wsol` does not change it (its CAM is 8x8 at 32 px).
    """
    check_arch(arch)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if large_feature_map and not wsol and arch in RESNET_ARCHS + CIFAR_RESNET_ARCHS:
        raise ConfigError("large_feature_map=True needs wsol=True (it sets layer3 stride 1 on top of layer4)")
    spec = parse_pyramidnet(arch)
    he = parse_he_cifar(arch)
    if (spec is not None or he is not None) and large_feature_map:
        raise ConfigError(f"large_feature_map applies to ResNet / VGG16 WSOL forms, not to {arch}")
    if spec is not None:
        return PyramidNetCAM(spec, num_classes)
    if he is not None:
        return HeCifarResNetCAM(he, num_classes)
    if arch in RESNET_ARCHS + CIFAR_RESNET_ARCHS:
        return ResNetCAM(arch, num_classes, wsol=wsol, large_feature_map=large_feature_map)
    return VGG16GAP(arch, num_classes, large_feature_map=large_feature_map)


@dataclass
class LoadReport:
    """What `load_weights` did. loaded: model keys set from the checkpoint; missing: model keys left freshly
    initialised; unexpected: checkpoint keys not used (no such model key, or an fc head dropped on purpose);
    skipped_shape: fc keys not loaded because the class count differs (head='if-match')."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped_shape: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs: counts and the first few names of each list."""

        def few(keys: list[str]) -> str:
            return f"{len(keys)}" + (f" ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})" if keys else "")

        return (
            f"loaded {len(self.loaded)}, left fresh {few(self.missing)}, unused {few(self.unexpected)}, "
            f"skipped for shape {few(self.skipped_shape)}"
        )


def load_weights(model: CAMNet, loaded: LoadedBackbone, head: HeadMode = "require") -> LoadReport:
    """Copy `loaded` into `model` and report what was loaded and what stayed freshly initialised.

    head='require': the checkpoint must have an fc head with the model's class count (else CheckpointError naming
    both counts); 'drop': keep the model's fresh fc (a new class count); 'if-match': load fc only if shapes match.
    Backbone weights must match exactly; `num_batches_tracked` and VGG16-GAP's conv6 may be absent (left fresh).
    """
    if head not in HEAD_MODES:
        raise ConfigError(f"unknown head mode {head!r}: choose one of {', '.join(HEAD_MODES)}")
    if model.arch != loaded.arch:
        raise CheckpointError(f"arch mismatch: the model is a {model.arch} but {loaded.path} holds a {loaded.arch}")
    if head == "require":
        if not loaded.has_fc:
            extra = (
                " (a torchvision VGG's classifier is fc6-fc8 on 7x7 maps, not a GAP fc)"
                if loaded.arch in VGG_ARCHS and loaded.num_classes
                else ""
            )
            raise CheckpointError(
                f"{loaded.path} has no GAP fc head{extra}; the model needs a classifier trained "
                f"for its {model.num_classes} classes: use head='drop' and train the head"
            )
        if loaded.num_classes != model.num_classes:
            raise CheckpointError(
                f"class-count mismatch: the fc head of {loaded.path} has {loaded.num_classes} "
                f"classes but the model needs {model.num_classes}"
            )
    target = model.state_dict()
    report = LoadReport()
    to_load: dict[str, torch.Tensor] = {}
    shape_errors = []
    for k, v in loaded.state_dict.items():
        if k not in target:
            report.unexpected.append(k)
        elif k.startswith("fc.") and head == "drop":
            report.unexpected.append(k)
        elif tuple(v.shape) != tuple(target[k].shape):
            if k.startswith("fc.") and head == "if-match":
                report.skipped_shape.append(k)
            else:
                shape_errors.append(f"{k} {tuple(v.shape)} vs model {tuple(target[k].shape)}")
        else:
            to_load[k] = v
    if shape_errors:
        raise CheckpointError(
            f"{loaded.path}: {len(shape_errors)} weights do not fit the {model.arch} model (first: {shape_errors[:3]})"
        )
    result = model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    report.missing = list(result.missing_keys)
    logger.info("weights from %s into %s: %s", loaded.path, model.arch, report.summary())
    return report


def build_from_checkpoint(
    path: str | os.PathLike,
    arch: str | None = None,
    num_classes: int | None = None,
    wsol: bool = True,
    trust: bool = False,
    head: HeadMode = "require",
    large_feature_map: bool = False,
) -> tuple[CAMNet, LoadedBackbone, LoadReport]:
    """Load a checkpoint, build the matching CAMNet and copy the weights in; the model is returned in eval mode.

    num_classes=None takes the checkpoint's fc class count (an error when the file has no fc head).
    """
    loaded = load_backbone_state(path, arch=arch, trust=trust)
    if num_classes is None:
        if not loaded.has_fc or head == "drop":
            raise ConfigError(
                f"{path} has {'no fc head' if not loaded.has_fc else 'its fc dropped'}, so the class "
                "count is unknown: pass num_classes (and head='drop')"
            )
        num_classes = loaded.num_classes
    model = build_model(loaded.arch, num_classes, wsol=wsol, large_feature_map=large_feature_map)
    report = load_weights(model, loaded, head=head)
    return model.eval(), loaded, report
