"""Class activation maps: CAM for GAP+fc heads (batched, any device) and the Grad-CAM family via `grad-cam`.

CAM convention (clovaai/wsolevaluation, wsol/resnet.py and wsol/vgg.py): for the chosen class c,
    cam[b] = mean_k( fc.weight[c, k] * features[b, k] )        (mean over the C channels, no bias, no ReLU)
The mean is the channel sum divided by C; the scale and the missing fc bias do not change boxes or masks after
per-image min-max normalisation, only the raw values.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn

from .errors import ConfigError

logger = logging.getLogger(__name__)

# Grad-CAM-family method name -> its class in the `grad-cam` package (pytorch_grad_cam)
_GRAD_CAM_CLASSES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "hirescam": "HiResCAM",
    "gradcamelementwise": "GradCAMElementWise",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
    "fullgrad": "FullGrad",
}
GRAD_CAM_METHODS = tuple(_GRAD_CAM_CLASSES)
# every score-map method a tool accepts (--cam): plain CAM from the fc weights, then the Grad-CAM family
CAM_METHODS = ("cam", *GRAD_CAM_METHODS)


def check_method(method: str) -> str:
    """Return `method` when it is one of CAM_METHODS; otherwise a ConfigError listing them (the --cam check)."""
    if method not in CAM_METHODS:
        raise ConfigError(f"--cam {method!r}: choose 'cam' or one of {', '.join(GRAD_CAM_METHODS)}")
    return method


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def class_activation_maps(
    model: nn.Module, images: torch.Tensor, classes: torch.Tensor | Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CAM of the chosen class per image: (cams (B, h, w) float32 at feature resolution, logits (B, K) float32).

    model: a CAMNet (`features(x)` -> (B, C, h, w), `fc` nn.Linear(C, K), logits = fc(GAP(features))).
    images: (B, 3, H, W) float, moved to the model's device; classes: (B,) ints (the ground truth) or None for the
    top-1 prediction. Runs under torch.inference_mode in the model's current mode (call model.eval() first).
    """
    if images.dim() != 4:
        raise ConfigError(f"images must be a (B, 3, H, W) batch, got shape {tuple(images.shape)}")
    device = _model_device(model)
    with torch.inference_mode():
        feats = model.features(images.to(device))
        logits = (
            model.logits_from_features(feats)
            if hasattr(model, "logits_from_features")
            else model.fc(feats.mean(dim=(2, 3)))
        )
        if classes is None:
            idx = logits.argmax(dim=1)
        else:
            idx = torch.as_tensor(classes, device=device).long().reshape(-1)
            if idx.numel() != feats.shape[0]:
                raise ConfigError(f"{idx.numel()} classes given for a batch of {feats.shape[0]} images")
            num_classes = model.fc.out_features
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
                raise ConfigError(f"class index out of range 0..{num_classes - 1}: got {idx.tolist()}")
        weights = model.fc.weight[idx].to(feats.dtype)  # (B, C)
        cams = torch.einsum("bc,bchw->bhw", weights, feats) / feats.shape[1]
    return cams.float(), logits.float()


def _normalize_scoremap(cam: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a map with NaN or with min == max becomes all zeros (as wsolevaluation)."""
    if np.isnan(cam).any():
        return np.zeros_like(cam)
    lo, hi = float(cam.min()), float(cam.max())
    if lo == hi:
        return np.zeros_like(cam)
    return (cam - lo) / (hi - lo)


def normalize_cams(cams: torch.Tensor | np.ndarray, size: tuple[int, int] = (224, 224)) -> np.ndarray:
    """Feature-resolution CAMs (B, h, w) -> (B, H, W) float32 score maps in [0, 1], size = (H, W).

    Order (wsolevaluation's, it changes MaxBoxAcc): FIRST resize each map with cv2.INTER_CUBIC to (H, W) (cv2 is
    given (W, H)), THEN min-max normalise it per image. Bicubic overshoots, so resizing after normalising would
    give values outside [0, 1]. NaN or constant maps -> all zeros; the check is made on the map before resizing
    too (wsolevaluation checks only after it, where cv2's float rounding makes a constant map ~1e-7 non-constant
    and min-max blows that noise up to [0, 1]). (wsolevaluation passes images.shape[2:],
    i.e. (H, W), where cv2 expects (W, H): the same only for square inputs; here the size is read correctly.)
    """
    if isinstance(cams, torch.Tensor):
        cams = cams.detach().float().cpu().numpy()
    cams = np.asarray(cams, dtype=np.float32)
    if cams.ndim != 3:
        raise ConfigError(f"cams must be (B, h, w), got shape {cams.shape}")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ConfigError(f"size must be (H, W) with positive values, got {size}")
    out = np.zeros((cams.shape[0], height, width), dtype=np.float32)
    for i, cam in enumerate(cams):
        if np.isnan(cam).any() or cam.min() == cam.max():
            continue  # degenerate before resizing: bicubic rounding would turn a constant map into amplified noise
        resized = cv2.resize(cam, (width, height), interpolation=cv2.INTER_CUBIC)
        out[i] = _normalize_scoremap(resized.astype(np.float32))
    return out


def _grad_cam_class(method: str):
    try:
        import pytorch_grad_cam as pgc
    except ImportError as e:
        raise ConfigError(
            "the Grad-CAM family needs the optional `grad-cam` package (import name pytorch_grad_cam): "
            "pip install grad-cam; plain CAM (class_activation_maps) needs nothing extra"
        ) from e
    if method not in _GRAD_CAM_CLASSES:
        raise ConfigError(f"unknown Grad-CAM method {method!r}: choose one of {', '.join(GRAD_CAM_METHODS)}")
    name = _GRAD_CAM_CLASSES[method]
    cls = getattr(pgc, name, None)
    if cls is None:
        raise ConfigError(f"the installed grad-cam package has no {name} (method {method!r}); upgrade it")
    return cls


def grad_cams(
    model: nn.Module,
    images: torch.Tensor,
    classes: torch.Tensor | Sequence[int] | None = None,
    method: str = "gradcam",
    target_layer: nn.Module | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Grad-CAM-family maps through the `grad-cam` package: (B, H, W) float32 in [0, 1] at INPUT resolution.

    For heads that are not GAP+fc. The package applies ReLU, min-max normalises each map, then resizes it
    (bilinear) to the input size: normalise-then-resize, unlike normalize_cams. target_layer defaults to a
    CAMNet's `cam_target_layer()`. classes None -> the top-1 class. Needs gradients: not under inference_mode;
    the package puts the model in eval mode.
    """
    cam_cls = _grad_cam_class(method)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if target_layer is None:
        if not hasattr(model, "cam_target_layer"):
            raise ConfigError("grad_cams needs target_layer for a model that is not a CAMNet")
        target_layer = model.cam_target_layer()
    device = _model_device(model)
    images = images.to(device)
    if classes is not None:
        classes = [int(c) for c in torch.as_tensor(classes).reshape(-1).tolist()]
        if len(classes) != images.shape[0]:
            raise ConfigError(f"{len(classes)} classes given for a batch of {images.shape[0]} images")
    with cam_cls(model=model, target_layers=[target_layer]) as cam:
        if hasattr(cam, "batch_size"):  # ScoreCAM / AblationCAM forward masked copies in batches
            cam.batch_size = batch_size
        targets = None if classes is None else [ClassifierOutputTarget(c) for c in classes]
        maps = cam(input_tensor=images, targets=targets)
    return np.asarray(maps, dtype=np.float32)
