"""The pinned stack works here: imports, mmcv's compiled ops, mmdet detectors on CPU, and the two compat fixes."""

from __future__ import annotations

import pickle

import pytest
import torch

from cutmix_transfer.compat import register_mmdet_fixes  # importing the package applies the mmengine fix
from cutmix_transfer.errors import UnsafeCheckpointError


def test_stack_imports():
    import cv2  # noqa: F401
    import mmcv
    import mmdet
    import mmengine
    import pycocotools  # noqa: F401
    import torchvision

    assert torch.__version__.startswith("2.14.1")
    assert torchvision.__version__.startswith("0.29.1")
    assert mmengine.__version__ == "0.10.7"
    assert mmcv.__version__ == "2.1.0"
    assert mmdet.__version__ == "3.3.0"


def _random_boxes(n: int, size: float, gen: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * size * 0.8
    wh = torch.rand(n, 2, generator=gen) * size * 0.3 + 1.0
    return torch.cat([xy, xy + wh], dim=1)


def test_mmcv_nms_matches_torchvision():
    from mmcv.ops import nms
    from torchvision.ops import nms as tv_nms

    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        boxes = _random_boxes(300, 100.0, gen)
        scores = torch.rand(300, generator=gen)
        _, keep = nms(boxes, scores, iou_threshold=0.5)
        keep_tv = tv_nms(boxes, scores, 0.5)
        assert torch.equal(keep.sort().values, keep_tv.sort().values)


def test_mmcv_roialign_matches_torchvision():
    from mmcv.ops import RoIAlign
    from torchvision.ops import roi_align

    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 8, 32, 32, generator=gen)
    boxes = _random_boxes(20, 28.0, gen)
    rois = torch.cat([torch.randint(0, 2, (20, 1), generator=gen).float(), boxes], dim=1)
    ours = RoIAlign((7, 7), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feats, rois)
    ref = roi_align(feats, rois, (7, 7), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def _det_batch(n: int, h: int, w: int, num_classes: int = 20):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    gen = torch.Generator().manual_seed(2)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen))
        s = DetDataSample(
            metainfo=dict(
                img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0), pad_shape=(h, w), batch_input_shape=(h, w)
            )
        )
        gt = InstanceData()
        gt.bboxes = _random_boxes(3, min(h, w), gen)
        gt.labels = torch.randint(0, num_classes, (3,), generator=gen)
        s.gt_instances = gt
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _build_detector(base: str, **overrides):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    cfg = Config.fromfile(base) if base.endswith(".py") and not base.startswith("mmdet::") else None
    if cfg is None:
        from mmengine.config import Config as C

        cfg = C.fromstring(f"_base_ = '{base}'\n", file_format=".py")
    cfg.merge_from_dict(overrides)
    cfg.model.backbone.init_cfg = None  # no download: random init
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.slow
def test_faster_rcnn_train_step_and_predict():
    from mmengine.optim import OptimWrapper

    torch.manual_seed(0)
    model = _build_detector("mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py")
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9))
    model.train()
    losses = model.train_step(_det_batch(2, 160, 224), optim)
    assert {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox"} <= set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())
    model.eval()
    with torch.inference_mode():
        out = model.test_step(_det_batch(1, 160, 224))
    pred = out[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) == len(pred.scores) == len(pred.labels)


def test_ssd300_predict_needs_and_gets_the_fix():
    register_mmdet_fixes()
    torch.manual_seed(0)
    stock = _build_detector("mmdet::pascal_voc/ssd300_voc0712.py")
    stock.eval()
    batch = _det_batch(1, 300, 300)
    with pytest.raises(AttributeError, match="loss_cls"):  # the break this fix exists for
        with torch.inference_mode():
            stock.test_step(batch)
    fixed = _build_detector("mmdet::pascal_voc/ssd300_voc0712.py", model=dict(bbox_head=dict(type="SSDHeadFixed")))
    fixed.eval()
    with torch.inference_mode():
        out = fixed.test_step(batch)
    pred = out[0].pred_instances
    assert len(pred.bboxes) == len(pred.scores) > 0
    assert pred.labels.max() < 20


class _Evil:
    def __reduce__(self):
        return (open, ("/tmp/cutmix_transfer_pwned", "w"))


@pytest.mark.slow
def test_runner_checkpoint_resumes_and_untrusted_pickle_is_refused(tmp_path):
    """A checkpoint saved by mmengine's Runner loads again (resume), while arbitrary pickles stay refused."""
    import torch.nn as nn
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import CheckpointLoader

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode="tensor"):
            out = self.lin(torch.stack(inputs) if isinstance(inputs, list) else inputs)
            if mode == "loss":
                return {"loss": ((out.squeeze(1) - labels) ** 2).mean()}
            return out

    data = [(torch.tensor([float(i), 1.0]), torch.tensor(float(i % 3))) for i in range(8)]

    def collate(batch):
        return dict(inputs=torch.stack([b[0] for b in batch]), labels=torch.stack([b[1] for b in batch]))

    def runner(work_dir, resume):
        return Runner(
            model=Tiny(),
            work_dir=str(work_dir),
            train_cfg=dict(by_epoch=True, max_epochs=2),
            train_dataloader=dict(
                dataset=data, batch_size=4, sampler=dict(type="DefaultSampler", shuffle=False), collate_fn=collate
            ),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
            default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
            resume=resume,
            randomness=dict(seed=0),
            default_scope="mmengine",
        )

    r = runner(tmp_path, resume=False)
    r.train()
    ckpt = tmp_path / "epoch_2.pth"
    assert ckpt.exists()
    # Without the fix this is what mmengine does, and it fails:
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, map_location="cpu")
    loaded = CheckpointLoader.load_checkpoint(str(ckpt), map_location="cpu")
    assert loaded["meta"]["epoch"] == 2 and "message_hub" in loaded
    r2 = runner(tmp_path, resume=True)
    r2.load_or_resume()
    assert r2.epoch == 2 and r2.iter == 4
    for k, v in r.model.state_dict().items():
        torch.testing.assert_close(r2.model.state_dict()[k], v)

    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "x": _Evil()}, evil)
    with pytest.raises(UnsafeCheckpointError, match="--trust-checkpoint"):
        CheckpointLoader.load_checkpoint(str(evil), map_location="cpu")
    assert not (tmp_path / "pwned").exists()
    import os

    assert not os.path.exists("/tmp/cutmix_transfer_pwned")
