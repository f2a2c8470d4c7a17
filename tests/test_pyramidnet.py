"""PyramidNet (CIFAR form of clovaai/CutMix-PyTorch's pyramidnet.py): structure, checkpoint loading, CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import REPO, write_cifar100
from mmengine.registry import DATASETS, MODELS

from cutmix_transfer import archs as A
from cutmix_transfer import backbones as B
from cutmix_transfer import cam as CM
from cutmix_transfer import checkpoints as C
from cutmix_transfer.classification import CAMClassifier, CIFARDataset
from cutmix_transfer.datasets.common import CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD
from cutmix_transfer.errors import CheckpointError, ConfigError
from cutmix_transfer.runner import load_config

torch.set_num_threads(1)
P200 = "pyramidnet200_a240_bottleneck"
CONFIGS = REPO / "configs" / "cls"


def _meta_model(arch: str, k: int = 100) -> B.CAMNet:
    with torch.device("meta"):  # structure only: no memory, no init cost
        return B.build_model(arch, k)


def test_pyramidnet200_parameter_count_and_shapes():
    """The paper / CutMix-PyTorch give ~26.8M parameters for PyramidNet-200 (alpha 240, bottleneck) on CIFAR-100."""
    m = _meta_model(P200)
    n = sum(p.numel() for p in m.parameters())
    assert n == 26_844_952 and round(n / 1e6, 1) == 26.8  # exact count of the reference built with torch
    assert [len(m.layer1), len(m.layer2), len(m.layer3)] == [22, 22, 22]  # n = (200 - 2) / 9
    sd = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    # hand-computed widths: addrate = 240 / 66; block 1 planes round(16 + 3.636) = 20, last round(16 + 240) = 256
    assert sd["conv1.weight"] == (16, 3, 3, 3) and sd["bn1.weight"] == (16,)
    assert sd["layer1.0.bn1.weight"] == (16,) and sd["layer1.0.conv1.weight"] == (20, 16, 1, 1)
    assert sd["layer1.0.conv3.weight"] == (80, 20, 1, 1) and sd["layer1.0.bn4.weight"] == (80,)
    assert sd["layer1.1.conv1.weight"] == (round(16 + 2 * 240 / 66), 80, 1, 1)
    assert sd["layer2.0.conv2.weight"][2:] == (3, 3) and m.layer2[0].conv2.stride == (2, 2)
    assert sd["layer3.21.conv3.weight"] == (1024, 256, 1, 1)
    assert sd["bn_final.weight"] == (1024,) and sd["fc.weight"] == (100, 1024)
    assert not any(k.startswith("layer4") or "downsample" in k for k in sd)  # the shortcut has no parameters
    assert sd == A.pyramidnet_shapes(A.parse_pyramidnet(P200))


def test_pyramidnet110_basic_shapes():
    m = _meta_model("pyramidnet110_a64_basic")
    assert [len(m.layer1), len(m.layer2), len(m.layer3)] == [18, 18, 18]  # (110 - 2) / 6
    sd = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert sd["layer1.0.conv1.weight"] == (round(16 + 64 / 54), 16, 3, 3) and "layer1.0.conv3.weight" not in sd
    assert sd["bn_final.weight"] == (80,) and sd["fc.weight"] == (100, 80)
    assert sd == A.pyramidnet_shapes(A.parse_pyramidnet("pyramidnet110_a64_basic"))


def test_zero_padded_shortcut_and_feature_map():
    """features() is the 8x8 map at 32 px; a block adds its input, zero-padded in channels (avg-pooled if strided)."""
    torch.manual_seed(0)
    m = B.build_model("pyramidnet20_a24_basic", 10).eval()
    x = torch.randn(2, 3, 32, 32)
    assert m.features(x).shape == (2, 40, 8, 8) and m(x).shape == (2, 10)
    blk = m.layer2[0]
    h = torch.randn(2, blk.bn1.num_features, 16, 16)
    with torch.no_grad():
        res = blk.residual(h)
        pooled = nn.functional.avg_pool2d(h, 2)
        want = res.clone()
        want[:, : h.shape[1]] += pooled
        assert torch.allclose(blk(h), want, atol=1e-6)
        feats = m.features(x)
        assert torch.allclose(m(x), feats.mean(dim=(2, 3)) @ m.fc.weight.T + m.fc.bias, atol=1e-5)


def test_cam_on_pyramidnet():
    torch.manual_seed(0)
    m = B.build_model("pyramidnet20_a24_basic", 10).eval()
    x = torch.randn(3, 3, 32, 32)
    cams, logits = CM.class_activation_maps(m, x, classes=[1, 4, 9])
    feats = m.features(x).detach()
    want = torch.stack(
        [(m.fc.weight[c][:, None, None] * feats[i]).sum(0) / feats.shape[1] for i, c in enumerate([1, 4, 9])]
    )
    assert cams.shape == (3, 8, 8) and torch.allclose(cams, want, atol=1e-5)
    assert m.cam_target_layer() is m.relu_final
    assert CM.grad_cams(m, x, method="gradcam").shape == (3, 32, 32)


def _reference_checkpoint(arch: str, k: int) -> tuple[dict, dict]:
    """A CutMix-PyTorch training checkpoint (DataParallel 'module.' keys) of a random model with non-trivial BN."""
    torch.manual_seed(1)
    m = B.build_model(arch, k)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    obj = {
        "epoch": 299,
        "arch": "pyramidnet",
        "state_dict": {"module." + k: v for k, v in sd.items()},
        "best_err1": 14.23,
        "best_err5": 2.9,
        "optimizer": {"state": {}, "param_groups": []},
    }
    return obj, sd


@pytest.mark.parametrize("arch", ["pyramidnet20_a24_basic", "pyramidnet29_a36_bottleneck", "pyramidnet56_a270_basic"])
def test_cutmix_pytorch_pyramidnet_checkpoint_loads(tmp_path, arch):
    obj, sd = _reference_checkpoint(arch, 100)
    torch.save(obj, tmp_path / "model_best.pth.tar")
    loaded = C.load_backbone_state(tmp_path / "model_best.pth.tar")
    assert (loaded.source_format, loaded.arch, loaded.num_classes) == ("cutmix-pytorch", arch, 100)
    assert loaded.meta["best_err1"] == pytest.approx(14.23) and loaded.meta["declared_arch"] == "pyramidnet"
    model, _, report = B.build_from_checkpoint(tmp_path / "model_best.pth.tar")
    assert sorted(report.loaded) == sorted(sd) and not report.missing and not report.unexpected
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_pyramidnet200_keys_detected_without_weights(tmp_path):
    """The full-size arch is detected from key shapes alone (meta tensors: the loader reads names and shapes)."""
    shapes = A.pyramidnet_shapes(A.parse_pyramidnet(P200))
    sd = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    assert A.infer_arch(sd) == P200


def test_pyramidnet_errors(tmp_path):
    obj, sd = _reference_checkpoint("pyramidnet20_a24_basic", 10)
    sd["layer2.1.conv1.weight"] = torch.zeros(99, 28, 3, 3)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="widening rule"):
        C.load_backbone_state(tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match="pyramidnet7"):
        B.build_model("pyramidnet7_a24_basic", 10)  # (7 - 2) / 6 < 1 block per stage
    with pytest.raises(ConfigError, match="large_feature_map"):
        B.build_model("pyramidnet20_a24_basic", 10, wsol=True, large_feature_map=True)
    torch.save(obj["state_dict"], tmp_path / "p20.pth")
    with pytest.raises(CheckpointError, match="arch mismatch"):
        C.load_backbone_state(tmp_path / "p20.pth", arch="pyramidnet110_a64_basic")


def test_cifar_stem_resnet_loads(tmp_path):
    """A ResNet with the CIFAR stem (3x3 conv1, no max-pool; CAMClassifier(small_input_stem=True)) loads."""
    torch.manual_seed(0)
    m = B.build_model("resnet18_cifar", 100)
    assert m.conv1.kernel_size == (3, 3) and isinstance(m.maxpool, nn.Identity)
    assert m.features(torch.randn(1, 3, 32, 32)).shape == (1, 512, 4, 4)
    sd = m.state_dict()
    torch.save(
        {
            "state_dict": {"backbone." + k: v for k, v in sd.items()},
            "meta": {"cutmix_transfer": {"arch": "resnet18", "small_input_stem": True, "num_classes": 100}},
        },
        tmp_path / "r18c.pth",
    )
    model, loaded, report = B.build_from_checkpoint(tmp_path / "r18c.pth", wsol=False)
    assert loaded.arch == "resnet18_cifar" and not report.missing and not report.unexpected
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), m.eval()(x), atol=1e-5)


# ----------------------------------------------------------------------------------------------- configs
PAPER_AUGMENTS = {
    "baseline": dict(mode="none", beta=1.0, prob=0.5),
    "cutmix": dict(mode="cutmix", beta=1.0, prob=0.5),
    "mixup": dict(mode="mixup", beta=1.0, prob=1.0),
    "cutout": dict(mode="cutout", beta=1.0, prob=1.0, cutout_size=16),
}


def test_pyramidnet200_configs_are_the_paper_recipe_and_differ_only_in_the_augment():
    ref = load_config(CONFIGS / "cifar100_pyramidnet200_baseline.py")
    assert ref.model.arch == P200 and ref.model.num_classes == 100
    opt = ref.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.nesterov, opt.weight_decay) == ("SGD", 0.25, 0.9, True, 1e-4)
    (sched,) = ref.param_scheduler
    assert (sched.type, sched.milestones, sched.gamma) == ("MultiStepLR", [150, 225], 0.1)
    assert ref.train_cfg.max_epochs == 300 and ref.train_dataloader.batch_size == 64
    ref = ref.to_dict()
    ref["model"]["data_preprocessor"].pop("augment")
    for method, augment in PAPER_AUGMENTS.items():
        cfg = load_config(CONFIGS / f"cifar100_pyramidnet200_{method}.py").to_dict()
        assert cfg["model"]["data_preprocessor"].pop("augment") == augment
        assert cfg == ref


@pytest.mark.parametrize(
    "name,num_classes",
    [(f"cifar100_pyramidnet200_{m}", 100) for m in PAPER_AUGMENTS]
    + [("cifar100_resnet_cutmix", 100), ("demo_cifar_pyramidnet_baseline", 10), ("demo_cifar_pyramidnet_cutmix", 10)],
)
def test_cifar_configs_build_model_and_dataset(tmp_path, name, num_classes):
    """Each CIFAR config builds its classifier and both readers on generated CIFAR-100-layout batches; the inputs
    are CutMix-PyTorch's: pixels / 255 normalised with its mean / std, the test image at 32 px without crop."""
    data = np.random.default_rng(0).integers(0, 256, size=(8, 3072), dtype=np.uint8)
    fine = [i % num_classes for i in range(8)]
    write_cifar100(tmp_path, {"train": (data, fine), "test": (data, fine)}, [f"c{i}" for i in range(num_classes)])
    cfg = load_config(CONFIGS / f"{name}.py")
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.root = str(tmp_path)
        assert tuple(loader.dataset.transform.mean) == pytest.approx(CIFAR100_CUTMIX_MEAN)
        assert tuple(loader.dataset.transform.std) == pytest.approx(CIFAR100_CUTMIX_STD)
    train, test = DATASETS.build(cfg.train_dataloader.dataset), DATASETS.build(cfg.val_dataloader.dataset)
    assert isinstance(train, CIFARDataset) and len(train) == len(test) == 8 and len(test.classes) == num_classes
    item = test[3]
    x, y = item["inputs"], item["data_samples"]
    pixels = data[3].reshape(3, 32, 32).astype(np.float64) / 255.0
    want = (pixels - np.array(CIFAR100_CUTMIX_MEAN)[:, None, None]) / np.array(CIFAR100_CUTMIX_STD)[:, None, None]
    assert int(y) == 3 % num_classes and np.allclose(np.asarray(x), want, atol=1e-5)
    assert tuple(train[0]["inputs"].shape) == (3, 32, 32)
    model = MODELS.build(cfg.model)
    assert isinstance(model, CAMClassifier) and model.num_classes == num_classes
    if name.startswith("demo_"):
        with torch.no_grad():
            assert model(torch.stack([train[i]["inputs"] for i in range(2)])).shape == (2, num_classes)
