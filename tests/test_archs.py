"""archs.py on its own: names, key -> shape references written out by hand, arch inference and its refusals."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision

from cutmix_transfer import archs as A
from cutmix_transfer.backbones import build_model
from cutmix_transfer.errors import CheckpointError


def _reference_sd(arch: str) -> dict[str, torch.Tensor]:
    """A state dict of meta tensors in the shapes of `arch`'s reference (no memory)."""
    return {k: torch.empty(s, device="meta") for k, s in A.reference_shapes(arch).items()}


def _model_shapes(arch: str, k: int) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {n: tuple(v.shape) for n, v in build_model(arch, k).state_dict().items()}


# ------------------------------------------------------------------------------------ He et al.'s CIFAR ResNets
@pytest.mark.parametrize(
    "arch, params",
    # parameter counts of the 10-class models, the numbers akamaster/pytorch_resnet_cifar10's README rounds to
    # 0.27M (resnet20) and 0.85M (resnet56); option B / bottleneck counts from the formula written out below
    [("cifar_resnet20_basic_zeropad", 269_722), ("cifar_resnet56_basic_zeropad", 853_018)],
)
def test_he_cifar_zeropad_parameter_counts(arch, params):
    shapes = A.he_cifar_shapes(A.parse_he_cifar(arch))
    n = sum(int(torch.Size(s).numel()) for k, s in shapes.items() if not k.endswith(("running_mean", "running_var")))
    # num_batches_tracked is () -> numel 1 per BN: subtract those, they are buffers, not parameters
    n -= sum(1 for k in shapes if k.endswith("num_batches_tracked"))
    assert n == params


def test_he_cifar_shapes_written_out():
    """Shapes of a 1-block-per-stage net of each kind, by hand (16/32/64 planes, x4 for bottlenecks)."""
    basic = A.he_cifar_shapes(A.parse_he_cifar("cifar_resnet8_basic_proj"))  # default 10 classes
    assert basic["conv1.weight"] == (16, 3, 3, 3) and basic["bn1.weight"] == (16,)
    assert basic["layer1.0.conv1.weight"] == (16, 16, 3, 3) and basic["layer1.0.conv2.weight"] == (16, 16, 3, 3)
    assert "layer1.0.downsample.0.weight" not in basic  # 16 -> 16, stride 1: no projection
    assert basic["layer2.0.conv1.weight"] == (32, 16, 3, 3) and basic["layer2.0.conv2.weight"] == (32, 32, 3, 3)
    assert basic["layer2.0.downsample.0.weight"] == (32, 16, 1, 1) and basic["layer2.0.downsample.1.weight"] == (32,)
    assert basic["layer3.0.downsample.0.weight"] == (64, 32, 1, 1)
    assert basic["fc.weight"] == (10, 64) and basic["fc.bias"] == (10,)
    assert "layer1.0.conv3.weight" not in basic
    zero = A.he_cifar_shapes(A.parse_he_cifar("cifar_resnet8_basic_zeropad"), num_classes=3)
    assert not any("downsample" in k for k in zero) and zero["fc.weight"] == (3, 64)
    bott = A.he_cifar_shapes(A.parse_he_cifar("cifar_resnet11_bottleneck_proj"), num_classes=100)
    assert bott["layer1.0.conv1.weight"] == (16, 16, 1, 1) and bott["layer1.0.conv2.weight"] == (16, 16, 3, 3)
    assert bott["layer1.0.conv3.weight"] == (64, 16, 1, 1) and bott["layer1.0.bn3.weight"] == (64,)
    assert bott["layer1.0.downsample.0.weight"] == (64, 16, 1, 1)  # 16 -> 64 channels at stride 1
    assert bott["layer2.0.conv1.weight"] == (32, 64, 1, 1) and bott["layer2.0.downsample.0.weight"] == (128, 64, 1, 1)
    assert bott["layer3.0.conv3.weight"] == (256, 64, 1, 1) and bott["fc.weight"] == (100, 256)


@pytest.mark.parametrize(
    "arch", ["cifar_resnet8_basic_proj", "cifar_resnet14_basic_zeropad", "cifar_resnet20_bottleneck_proj"]
)
def test_he_cifar_shapes_equal_the_built_model(arch):
    assert A.he_cifar_shapes(A.parse_he_cifar(arch), num_classes=7) == _model_shapes(arch, 7)


def test_pyramidnet_plan_by_hand():
    """pyramidnet14_a12_basic: n = 2, addrate 12 / 6 = 2: widths 18, 20 | 22, 24 | 26, 28 (stride 1, 2, 2)."""
    plan = A.pyramidnet_plan(A.parse_pyramidnet("pyramidnet14_a12_basic"))
    assert plan == [[(16, 18, 1), (18, 20, 1)], [(20, 22, 2), (22, 24, 1)], [(24, 26, 2), (26, 28, 1)]]
    # bottleneck: in-channels are the previous planes x 4; n = (20 - 2) / 9 = 2, addrate 9 / 6 = 1.5 -> 17.5
    # rounds to 18 (round half to even), 19, 20.5 -> 20, 22, 23.5 -> 24, 25
    plan = A.pyramidnet_plan(A.parse_pyramidnet("pyramidnet20_a9_bottleneck"))
    assert plan == [[(16, 18, 1), (72, 19, 1)], [(76, 20, 2), (80, 22, 1)], [(88, 24, 2), (96, 25, 1)]]
    assert A.pyramidnet_out_channels(A.parse_pyramidnet("pyramidnet20_a9_bottleneck")) == 100


# ------------------------------------------------------------------------------------------------ names
def test_resnet_layers_of_the_cifar_forms():
    assert A.resnet_layers("resnet50_cifar") == ("Bottleneck", (3, 4, 6, 3))
    assert A.resnet_layers("resnet18_cifar") == ("BasicBlock", (2, 2, 2, 2))
    assert A.resnet_layers("resnet200") == ("Bottleneck", (3, 24, 36, 3))


def test_describe_arch_words():
    with torch.device("meta"):
        r50 = torchvision.models.resnet50().state_dict()
        vgg = torchvision.models.vgg16().state_dict()
        vgg_bn = torchvision.models.vgg16_bn().state_dict()
    r18 = _reference_sd("resnet18")
    assert A.describe_arch(r50, "resnet50") == "Bottleneck blocks per stage [3, 4, 6, 3]"
    assert A.describe_arch(r18, "resnet18") == "BasicBlock blocks per stage [2, 2, 2, 2]"
    pyr = _reference_sd("pyramidnet14_a12_basic")
    assert A.describe_arch(pyr, "pyramidnet14_a12_basic") == "BasicBlock blocks per stage [2, 2, 2, 0]"
    he = _reference_sd("cifar_resnet20_bottleneck_proj")
    assert A.describe_arch(he, "cifar_resnet20_bottleneck_proj") == "Bottleneck blocks per stage [2, 2, 2, 0]"
    assert A.describe_arch(vgg, "vgg16") == "13 conv layers, without BatchNorm"
    assert A.describe_arch(vgg_bn, "vgg16_bn") == "13 conv layers, with BatchNorm"


def test_vgg_indices_by_hand():
    with torch.device("meta"):
        vgg_bn = torchvision.models.vgg16_bn().state_dict()
    convs, bns = A.vgg_indices(vgg_bn)
    # torchvision's cfg 'D' with BN: conv, bn, relu per layer; a max-pool after layers 2, 4, 7, 10, 13
    assert convs == [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
    assert bns == [c + 1 for c in convs]
    assert A.infer_arch(vgg_bn) == "vgg16_bn"
    # a BatchNorm without affine weights still counts (its running mean marks it)
    no_affine = {k: v for k, v in vgg_bn.items() if not (k.endswith(("weight", "bias")) and v.dim() == 1)}
    assert A.vgg_indices(no_affine)[1] == bns


# ------------------------------------------------------------------------------------ inference refusals
def _with_block(sd: dict, stage: int) -> dict[str, torch.Tensor]:
    """`sd` with one more block in `stage` (copied from that stage's last block)."""
    last = max(int(k.split(".")[1]) for k in sd if k.startswith(f"layer{stage}."))
    extra = {
        k.replace(f"layer{stage}.{last}.", f"layer{stage}.{last + 1}.", 1): v
        for k, v in sd.items()
        if k.startswith(f"layer{stage}.{last}.")
    }
    return {**sd, **extra}


@pytest.mark.parametrize("stage, counts", [(1, [3, 2, 2, 0]), (2, [2, 3, 2, 0]), (3, [2, 2, 3, 0])])
def test_pyramidnet_with_unequal_stages_is_refused(stage, counts):
    sd = _with_block(_reference_sd("pyramidnet14_a12_basic"), stage)
    with pytest.raises(CheckpointError, match=re.escape(f"blocks per stage {counts};")):
        A.infer_arch(sd, "p.pth")


def test_pyramidnet_with_a_fourth_stage_is_refused():
    sd = _reference_sd("pyramidnet14_a12_basic")
    sd = {**sd, **{k.replace("layer3.", "layer4.", 1): v for k, v in sd.items() if k.startswith("layer3.")}}
    with pytest.raises(CheckpointError, match=r"blocks per stage \[2, 2, 2, 2\]"):
        A.infer_arch(sd, "p.pth")


def test_pyramidnet_without_bn_final_is_refused_by_its_reader():
    sd = {k: v for k, v in _reference_sd("pyramidnet14_a12_basic").items() if not k.startswith("bn_final.")}
    with pytest.raises(CheckpointError, match="bn_final"):
        A._infer_pyramidnet(sd, "p.pth")


def test_pyramidnet_final_width_off_the_rule_names_the_integer_alpha():
    """A bottleneck bn_final of 4 x 28 + 2 channels: alpha is read as 114 // 4 - 16 = 12, and the widths are refused."""
    sd = _reference_sd("pyramidnet20_a12_bottleneck")
    sd["bn_final.weight"] = torch.empty(114, device="meta")
    with pytest.raises(CheckpointError, match=r"depth 20, alpha 12 \("):
        A.infer_arch(sd, "p.pth")


def test_four_stage_resnet_with_a_16_channel_3x3_stem_is_not_a_three_stage_cifar_resnet():
    sd = _reference_sd("resnet18_cifar")
    sd["conv1.weight"] = torch.empty(16, 3, 3, 3, device="meta")
    assert A.infer_arch(sd) == "resnet18_cifar"


def test_inference_errors_name_the_file_and_the_layout():
    r50 = _reference_sd("resnet50")
    three = {k: v for k, v in r50.items() if not k.startswith("layer4.")}
    with pytest.raises(CheckpointError, match=re.escape("[3, 4, 6, 0] (a three-stage CIFAR ResNet needs")):
        A.infer_arch(three, "three.pth")
    four = _with_block(r50, 4)  # Bottleneck [3, 4, 6, 4]: unknown, and not a three-stage net: no hint
    with pytest.raises(
        CheckpointError,
        match=re.escape("four.pth: unknown ResNet layout: Bottleneck blocks per stage [3, 4, 6, 4]; supported"),
    ):
        A.infer_arch(four, "four.pth")
    with pytest.raises(CheckpointError, match=re.escape("<state dict>: unknown layout: no ResNet")):
        A.infer_arch({"conv1.weight": torch.empty(64, 3, 7, 7, device="meta")})
    pyr = _with_block(_reference_sd("pyramidnet14_a12_basic"), 2)
    with pytest.raises(CheckpointError, match="^p14.pth: a PyramidNet-like"):
        A.infer_arch(pyr, "p14.pth")
    bott = {k: v for k, v in _reference_sd("cifar_resnet20_bottleneck_proj").items() if "downsample" not in k}
    with pytest.raises(CheckpointError, match="^b.pth: a three-stage CIFAR ResNet with bottlenecks but no projection"):
        A.infer_arch(bott, "b.pth")


def test_names_that_are_not_strings_are_not_archs():
    assert not A.is_arch(None) and not A.is_arch(3) and A.parse_he_cifar(None) is None
    assert A.is_arch("cifar_resnet14_basic_proj") and not A.is_arch("cifar_resnet15_basic_proj")
    assert A.parse_he_cifar("cifar_resnet2_basic_proj") is None  # n = 0 blocks per stage
    assert A.is_arch("pyramidnet8_a4_basic") and not A.is_arch("pyramidnet7_a4_basic")  # n = 1 / n = 0


def test_reference_shapes_of_each_family_against_their_own_builders():
    """Each family's key -> shape reference (computed afresh: the cache is emptied first), against torchvision's
    models and the project's builders; the CIFAR form differs from the ImageNet one in its stem only."""
    A.reference_shapes.cache_clear()
    with torch.device("meta"):
        tv = {
            a: {k: tuple(v.shape) for k, v in getattr(torchvision.models, a)().state_dict().items()}
            for a in ("resnet18", "vgg16_bn")
        }
        r200 = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, [3, 24, 36, 3]).state_dict()
    assert A.reference_shapes("resnet18") == tv["resnet18"] and A.reference_shapes("vgg16_bn") == tv["vgg16_bn"]
    assert A.reference_shapes("resnet200") == {k: tuple(v.shape) for k, v in r200.items()}
    cifar = A.reference_shapes("resnet18_cifar")
    assert cifar["conv1.weight"] == (64, 3, 3, 3) and {k: s for k, s in cifar.items() if k != "conv1.weight"} == {
        k: s for k, s in tv["resnet18"].items() if k != "conv1.weight"
    }
    assert A.reference_shapes("pyramidnet14_a12_basic") == _model_shapes("pyramidnet14_a12_basic", 100)
    assert A.reference_shapes("cifar_resnet8_basic_proj") == _model_shapes("cifar_resnet8_basic_proj", 10)
    assert A.reference_shapes("resnet18") is A.reference_shapes("resnet18")  # cached
