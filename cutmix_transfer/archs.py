"""Architecture names, their key -> shape references, and detecting the arch of a state dict from its keys.

Names: torchvision's ResNets and VGG16(-BN); '<resnet>_cifar', a ResNet with the small-input stem (conv1 3x3
stride 1, no max-pool, as `configs/cls/cifar100_resnet_cutmix.py` trains); and 'pyramidnet{depth}_a{alpha}_{block}'
(block 'basic' or 'bottleneck'), the CIFAR PyramidNet of clovaai/CutMix-PyTorch's `pyramidnet.py`
(dyhan0920/PyramidNet-PyTorch), e.g. 'pyramidnet200_a240_bottleneck', the paper's CIFAR-100 model; and
'cifar_resnet{depth}_{block}_{shortcut}', He et al.'s three-stage CIFAR ResNet (16/32/64 planes, 3x3 stem): block
'basic' (depth 6n+2) or 'bottleneck' (9n+2), shortcut 'proj' (1x1 conv + BN where the shape changes, CutMix-PyTorch's
`resnet.py` CIFAR branch; akamaster's option B) or 'zeropad' (basic only: the parameter-free option A of
akamaster/pytorch_resnet_cifar10, stride-2 subsampling and zero channels on both sides), e.g.
'cifar_resnet56_basic_zeropad'. 'resnet200' is CutMix-PyTorch's ImageNet ResNet-200 (Bottleneck, [3, 24, 36, 3]).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import torch

from .errors import CheckpointError, ConfigError

RESNET_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet200")
# ResNets torchvision has no builder of: its ResNet class with their blocks per stage (`resnet_layers`)
EXTRA_RESNETS = ("resnet200",)
VGG_ARCHS = ("vgg16", "vgg16_bn")
CIFAR_RESNET_ARCHS = tuple(f"{a}_cifar" for a in RESNET_ARCHS)
PYRAMIDNET_PRESETS = ("pyramidnet200_a240_bottleneck", "pyramidnet110_a64_basic")
# akamaster's releases (option A) and CutMix-PyTorch's CIFAR ResNet defaults (bottleneck, projection)
HE_CIFAR_PRESETS = tuple(f"cifar_resnet{d}_basic_zeropad" for d in (20, 32, 44, 56, 110, 1202)) + (
    "cifar_resnet56_basic_proj",
    "cifar_resnet110_basic_proj",
    "cifar_resnet164_bottleneck_proj",
)
# The names a command line offers; any 'pyramidnet{depth}_a{alpha}_{block}' and
# 'cifar_resnet{depth}_{block}_{shortcut}' is accepted as well (`is_arch`).
ARCHS = RESNET_ARCHS + VGG_ARCHS + CIFAR_RESNET_ARCHS + PYRAMIDNET_PRESETS + HE_CIFAR_PRESETS

# (block type, blocks per stage) -> torchvision arch
_RESNET_LAYOUTS = {
    ("BasicBlock", (2, 2, 2, 2)): "resnet18",
    ("BasicBlock", (3, 4, 6, 3)): "resnet34",
    ("Bottleneck", (3, 4, 6, 3)): "resnet50",
    ("Bottleneck", (3, 4, 23, 3)): "resnet101",
    ("Bottleneck", (3, 8, 36, 3)): "resnet152",
    ("Bottleneck", (3, 24, 36, 3)): "resnet200",
}
KEYS_SHOWN = 5  # how many key names an error message lists
_PYRAMID_RE = re.compile(r"^pyramidnet(\d+)_a(\d+(?:\.\d+)?)_(basic|bottleneck)$")
_HE_CIFAR_RE = re.compile(r"^cifar_resnet(\d+)_(basic|bottleneck)_(proj|zeropad)$")


@dataclass(frozen=True)
class PyramidSpec:
    """A CIFAR PyramidNet: depth (6n+2 basic, 9n+2 bottleneck), alpha (total widening), block type."""

    depth: int
    alpha: float
    bottleneck: bool

    @property
    def name(self) -> str:
        return f"pyramidnet{self.depth}_a{self.alpha:g}_{'bottleneck' if self.bottleneck else 'basic'}"

    @property
    def blocks_per_stage(self) -> int:
        """n = (depth - 2) / 9 (bottleneck) or / 6 (basic), truncated as the reference does."""
        return int((self.depth - 2) / (9 if self.bottleneck else 6))

    @property
    def expansion(self) -> int:
        return 4 if self.bottleneck else 1


def parse_pyramidnet(arch: str) -> PyramidSpec | None:
    """'pyramidnet200_a240_bottleneck' -> PyramidSpec(200, 240.0, True); None for any other name."""
    m = _PYRAMID_RE.match(arch)
    if m is None:
        return None
    return PyramidSpec(int(m.group(1)), float(m.group(2)), m.group(3) == "bottleneck")


@dataclass(frozen=True)
class HeCifarSpec:
    """He et al.'s three-stage CIFAR ResNet: n blocks per stage of 16, 32, 64 planes (x4 out for bottlenecks),
    a 3x3 16-channel stem, GAP and fc. shortcut 'proj': 1x1 conv + BN where the shape changes; 'zeropad': none."""

    blocks_per_stage: int
    bottleneck: bool
    shortcut: str  # 'proj' | 'zeropad'

    @property
    def depth(self) -> int:
        return self.blocks_per_stage * (9 if self.bottleneck else 6) + 2

    @property
    def expansion(self) -> int:
        return 4 if self.bottleneck else 1

    @property
    def name(self) -> str:
        return f"cifar_resnet{self.depth}_{'bottleneck' if self.bottleneck else 'basic'}_{self.shortcut}"


def parse_he_cifar(arch: str) -> HeCifarSpec | None:
    """'cifar_resnet56_basic_zeropad' -> HeCifarSpec(9, False, 'zeropad'); None for any other name or for a depth
    that is not 6n+2 (basic) / 9n+2 (bottleneck), n >= 1, or a zero-padded bottleneck."""
    m = _HE_CIFAR_RE.match(arch) if isinstance(arch, str) else None
    if m is None:
        return None
    depth, bottleneck, shortcut = int(m.group(1)), m.group(2) == "bottleneck", m.group(3)
    per = 9 if bottleneck else 6
    if depth < per + 2 or (depth - 2) % per or (bottleneck and shortcut == "zeropad"):
        return None
    return HeCifarSpec((depth - 2) // per, bottleneck, shortcut)


def is_arch(arch: str) -> bool:
    """True for a name `build_model` and the loader know: ARCHS, a PyramidNet with at least one block per stage, or
    a He et al. CIFAR ResNet (`parse_he_cifar`)."""
    spec = parse_pyramidnet(arch) if isinstance(arch, str) else None
    return arch in ARCHS or (spec is not None and spec.blocks_per_stage >= 1) or parse_he_cifar(arch) is not None


def check_arch(arch: str) -> None:
    """ConfigError naming the choices unless `is_arch(arch)`."""
    if not is_arch(arch):
        raise ConfigError(
            f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}, or "
            "'pyramidnet{depth}_a{alpha}_{basic|bottleneck}' (depth 6n+2 basic, 9n+2 bottleneck), or "
            "'cifar_resnet{depth}_{basic|bottleneck}_{proj|zeropad}' (6n+2 basic, 9n+2 bottleneck; zeropad: basic only)"
        )


def pyramidnet_plan(spec: PyramidSpec) -> list[list[tuple[int, int, int]]]:
    """Per stage, per block: (in_channels, planes, stride); a block outputs planes * expansion channels.

    The widening rule of the reference, float for float (its rounding of x.5 included): the width grows by
    alpha / (3n) per block from 16; block i of a stage takes round(width before it) * expansion channels.
    """
    n, ratio = spec.blocks_per_stage, spec.expansion
    addrate = spec.alpha / (3 * n * 1.0)
    in_dim, dim = 16, 16.0
    stages = []
    for stride in (1, 2, 2):
        dim = dim + addrate
        blocks = [(in_dim, int(round(dim)), stride)]
        for _ in range(1, n):
            nxt = dim + addrate
            blocks.append((int(round(dim)) * ratio, int(round(nxt)), 1))
            dim = nxt
        in_dim = int(round(dim)) * ratio
        stages.append(blocks)
    return stages


def pyramidnet_out_channels(spec: PyramidSpec) -> int:
    """Channels of the last feature map (bn_final, fc input)."""
    _, planes, _ = pyramidnet_plan(spec)[-1][-1]
    return planes * spec.expansion


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{s}": (c,) for s in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def pyramidnet_shapes(spec: PyramidSpec, num_classes: int = 100) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the reference's state dict (without 'module.'), computed from the plan, not from a model."""
    out: dict[str, tuple[int, ...]] = {"conv1.weight": (16, 3, 3, 3)} | _bn("bn1", 16)
    for s, blocks in enumerate(pyramidnet_plan(spec), start=1):
        for i, (cin, planes, _) in enumerate(blocks):
            p = f"layer{s}.{i}"
            out |= _bn(f"{p}.bn1", cin)
            if spec.bottleneck:
                out[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
                out |= _bn(f"{p}.bn2", planes)
                out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                out |= _bn(f"{p}.bn3", planes)
                out[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
                out |= _bn(f"{p}.bn4", planes * 4)
            else:
                out[f"{p}.conv1.weight"] = (planes, cin, 3, 3)
                out |= _bn(f"{p}.bn2", planes)
                out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                out |= _bn(f"{p}.bn3", planes)
    c = pyramidnet_out_channels(spec)
    return out | _bn("bn_final", c) | {"fc.weight": (num_classes, c), "fc.bias": (num_classes,)}


def he_cifar_shapes(spec: HeCifarSpec, num_classes: int = 10) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the three-stage CIFAR ResNet's state dict in torchvision names (akamaster's 'linear' and
    'shortcut' renamed by the loader), computed from the plan, not from a model."""
    out: dict[str, tuple[int, ...]] = {"conv1.weight": (16, 3, 3, 3)} | _bn("bn1", 16)
    cin, e = 16, spec.expansion
    for s, planes in enumerate((16, 32, 64), start=1):
        for i in range(spec.blocks_per_stage):
            p = f"layer{s}.{i}"
            if spec.bottleneck:
                out[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
                out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                out[f"{p}.conv3.weight"] = (planes * e, planes, 1, 1)
                out |= _bn(f"{p}.bn1", planes) | _bn(f"{p}.bn2", planes) | _bn(f"{p}.bn3", planes * e)
            else:
                out[f"{p}.conv1.weight"] = (planes, cin, 3, 3)
                out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                out |= _bn(f"{p}.bn1", planes) | _bn(f"{p}.bn2", planes)
            if spec.shortcut == "proj" and i == 0 and (s > 1 or cin != planes * e):
                out[f"{p}.downsample.0.weight"] = (planes * e, cin, 1, 1)
                out |= _bn(f"{p}.downsample.1", planes * e)
            cin = planes * e
    return out | {"fc.weight": (num_classes, 64 * e), "fc.bias": (num_classes,)}


def resnet_layers(arch: str) -> tuple[str, tuple[int, ...]]:
    """(block type, blocks per stage) of a ResNet: 'resnet50' / 'resnet50_cifar' -> ('Bottleneck', (3, 4, 6, 3))."""
    base = arch[: -len("_cifar")] if arch in CIFAR_RESNET_ARCHS else arch
    return next(k for k, v in _RESNET_LAYOUTS.items() if v == base)


def _reference_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of `arch` (fc with torchvision's 1000 classes / PyramidNet's 100 / 10 for He et al.'s CIFAR
    ResNets; the loader ignores K)."""
    spec = parse_pyramidnet(arch)
    if spec is not None:
        return pyramidnet_shapes(spec)
    he = parse_he_cifar(arch)
    if he is not None:
        return he_cifar_shapes(he)
    base = arch[: -len("_cifar")] if arch in CIFAR_RESNET_ARCHS else arch
    # torchvision imported here, not at the top: every tool imports this module (through compat / checkpoints), and
    # torchvision adds about 1 s to `import cutmix_transfer` (measured with -X importtime) for the tools that never
    # build a reference model (report, make_demo_data)
    import torchvision

    with torch.device("meta"):  # no memory, no init cost
        if base in EXTRA_RESNETS:
            model = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, list(resnet_layers(base)[1]))
        else:
            model = getattr(torchvision.models, base)(weights=None)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if arch in CIFAR_RESNET_ARCHS:
        shapes["conv1.weight"] = shapes["conv1.weight"][:2] + (3, 3)
    return shapes


# cached: the shapes of a name never change (wrapped by a call, not decorated: the mutation tool skips decorated
# functions)
reference_shapes = functools.cache(_reference_shapes)


def block_counts(sd: dict) -> tuple[int, ...]:
    """Blocks per stage 'layer1' ... 'layer4' of a ResNet-like state dict (0 for an absent stage)."""
    counts = []
    for stage in range(1, 5):
        idx = [int(m.group(1)) for k in sd if (m := re.match(rf"layer{stage}\.(\d+)\.", k))]
        counts.append(max(idx) + 1 if idx else 0)
    return tuple(counts)


def vgg_indices(sd: dict) -> tuple[list[int], list[int]]:
    """Indices N of 'features.N' holding conv weights (4-D) and BatchNorm running means, sorted."""
    convs, bns = set(), set()
    for k, v in sd.items():
        m = re.match(r"features\.(\d+)\.(weight|running_mean)$", k)
        if m and m.group(2) == "weight" and v.dim() == 4:
            convs.add(int(m.group(1)))
        elif m and m.group(2) == "running_mean":
            bns.add(int(m.group(1)))
    return sorted(convs), sorted(bns)


def _infer_pyramidnet(sd: dict, path: str | os.PathLike) -> str:
    """depth, alpha and block of a CutMix-PyTorch CIFAR PyramidNet from its keys ('bn_final', three stages)."""
    bottleneck = "layer1.0.conv3.weight" in sd
    counts = block_counts(sd)
    n = counts[0]
    if counts[3] or not n or counts[1] != n or counts[2] != n or "bn_final.weight" not in sd:
        raise CheckpointError(
            f"{path}: a PyramidNet-like state dict (bn_final) with blocks per stage "
            f"{list(counts)}; only the CIFAR PyramidNet (three equal stages) is supported"
        )
    ratio = 4 if bottleneck else 1
    # the width after the last block is round(16 + alpha): exact for the integer alphas of the reference's runs
    alpha = sd["bn_final.weight"].shape[0] // ratio - 16
    spec = PyramidSpec(n * (9 if bottleneck else 6) + 2, float(alpha), bottleneck)
    want = pyramidnet_shapes(spec)
    wrong = [k for k, s in want.items() if k in sd and k[:3] != "fc." and tuple(sd[k].shape) != s]
    if wrong:
        raise CheckpointError(
            f"{path}: the widths of this PyramidNet do not follow the widening rule for depth "
            f"{spec.depth}, alpha {alpha} ({len(wrong)} keys differ, first {wrong[:3]}); a "
            "non-integer alpha or another variant is not supported"
        )
    return spec.name


def _infer_he_cifar(sd: dict, path: str | os.PathLike, counts: tuple[int, ...]) -> str | None:
    """The name of a He et al. CIFAR ResNet (three equal stages, 16-channel 3x3 stem, no layer4), None otherwise;
    projection shortcut when its first strided block has a downsample conv, zero padding when it has none."""
    stem = tuple(sd["conv1.weight"].shape)
    if counts[3] or not counts[0] or len(set(counts[:3])) != 1 or stem != (16, 3, 3, 3):
        return None
    bottleneck = "layer1.0.conv3.weight" in sd
    proj = "layer2.0.downsample.0.weight" in sd
    if bottleneck and not proj:
        raise CheckpointError(
            f"{path}: a three-stage CIFAR ResNet with bottlenecks but no projection shortcut; supported are "
            "bottlenecks with 1x1 conv + BN projections (CutMix-PyTorch) and basic blocks with either shortcut"
        )
    return HeCifarSpec(counts[0], bottleneck, "proj" if proj else "zeropad").name


def infer_arch(sd: dict[str, torch.Tensor], path: str | os.PathLike = "<state dict>") -> str:
    """Infer the arch of a torchvision-named state dict from its keys and shapes.

    PyramidNet (a 'bn_final'): blocks per stage, block type, alpha from the final width; ResNet: BasicBlock vs
    Bottleneck and blocks per stage, '_cifar' for a 3x3 stem; VGG: 13 conv layers, with or without BatchNorm.
    """
    if "conv1.weight" in sd and "layer1.0.conv1.weight" in sd and "bn_final.weight" in sd:
        return _infer_pyramidnet(sd, path)
    if "conv1.weight" in sd and "layer1.0.conv1.weight" in sd:
        stem = tuple(sd["conv1.weight"].shape)
        if stem[2:] not in ((7, 7), (3, 3)):
            raise CheckpointError(
                f"{path}: a ResNet with a {stem[2]}x{stem[3]} stem conv (conv1.weight {stem}); supported are the "
                "ImageNet stem (7x7, stride 2, max-pool) and the CIFAR stem (3x3, stride 1, no max-pool)"
            )
        block = "Bottleneck" if "layer1.0.conv3.weight" in sd else "BasicBlock"
        counts = block_counts(sd)
        he = _infer_he_cifar(sd, path, counts)
        if he is not None:
            return he
        arch = _RESNET_LAYOUTS.get((block, counts))
        if arch is None:
            hint = (
                " (a three-stage CIFAR ResNet needs equal stages and a 16-channel 3x3 stem)" if counts[3] == 0 else ""
            )
            raise CheckpointError(
                f"{path}: unknown ResNet layout: {block} blocks per stage {list(counts)}{hint}; supported: "
                + ", ".join(f"{a} = {b} {list(c)}" for (b, c), a in _RESNET_LAYOUTS.items())
            )
        return arch + ("_cifar" if stem[2:] == (3, 3) else "")
    if "features.0.weight" in sd:
        convs, bns = vgg_indices(sd)
        if len(convs) != 13:
            raise CheckpointError(
                f"{path}: a VGG with {len(convs)} conv layers; only VGG16 (13 conv layers) is supported"
            )
        return "vgg16_bn" if bns else "vgg16"
    raise CheckpointError(
        f"{path}: unknown layout: no ResNet / PyramidNet ('conv1.weight', 'layer1.0.conv1.weight') or VGG "
        f"('features.0.weight') keys after prefix removal; first keys {list(sd)[:KEYS_SHOWN]}"
    )


def describe_arch(sd: dict, arch: str) -> str:
    """Words for the structure found in `sd` (for arch-mismatch messages)."""
    if arch.startswith(("resnet", "pyramidnet", "cifar_resnet")):
        block = "Bottleneck" if "layer1.0.conv3.weight" in sd else "BasicBlock"
        return f"{block} blocks per stage {list(block_counts(sd))}"
    convs, bns = vgg_indices(sd)
    return f"{len(convs)} conv layers, {'with' if bns else 'without'} BatchNorm"
