"""The WSOL evaluator: one checkpoint, one dataset split -> MaxBoxAcc / MaxBoxAccV2 / PxAP / the paper's
top-1 and GT-known localization, per-image rows, optional CAM dump and figures.

Pipeline (clovaai/wsolevaluation's, docs/wsol_protocol.md lists every choice):
- image: PIL, RGB, resized to 224x224 (bilinear, no crop), ImageNet mean/std; ``input_size`` feeds the network
  another size (a backbone pretrained at that resolution) while boxes, masks and CAMs stay in the 224 frame;
- GT boxes (x0y0x1y1, original pixels) rescaled to the 224 frame with ``boxes.resize_boxes`` (x * 224 / W,
  truncated); masks read as grayscale, foreground > 127, resized to 224 with nearest neighbour;
- CAM of the GT class (the backbone's fc weights on its last feature map, or a Grad-CAM-family method), resized
  with bicubic interpolation to 224x224 and min-max normalised per image (``cam.normalize_cams``); those are
  exactly the maps that are scored (and saved with ``save_cams``);
- boxes and counts come from the metric core (``boxes.curves_for_batch``, ``metrics.BoxEvaluator`` /
  ``MaskEvaluator``); one CAM threshold serves the whole dataset.
Top-1 localization needs the CAM of the predicted class only when the prediction is right, and then it is the
GT-class CAM: so one CAM per image serves GT-known, MaxBoxAcc, V2, PxAP and top-1 localization.

Under ``torchrun`` (WORLD_SIZE > 1) each rank scores images ``rank::world``; the integer counts are all-reduced,
the per-image rows gathered, and rank 0 writes everything: the result equals the single-process run.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import time
import zipfile
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import cv2
import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..cam import check_method
from ..datasets.common import IMAGENET_MEAN, IMAGENET_STD
from ..distributed import all_gather_objects, all_reduce_counts, setup_torchrun
from ..errors import CheckpointError, ConfigError, DatasetError
from ..io import atomic_write_bytes, atomic_write_text
from ..results import checkpoint_info, make_record, write_record
from ..runtime import check_input_size, resolve_device, seed_everything
from .boxes import RESIZE_LENGTH, curves_for_batch, resize_boxes
from .metrics import DEFAULT_IOU_THRESHOLDS, PAPER_CAM_THRESHOLD, PAPER_IOU_THRESHOLD, BoxEvaluator, MaskEvaluator, \
    resize_mask

logger = logging.getLogger(__name__)

DATASETS = ("cub", "imagenet")
DEFAULT_DATA_ROOTS = {"cub": Path("data/CUB_200_2011"), "imagenet": Path("data/ILSVRC")}
NOMINAL_CLASSES = {"cub": 200, "imagenet": 1000}
TRAIN_HINT = ("fine-tune it on the dataset first (tools/train_cls.py with a configs/cls/cub_*.py config for CUB), "
              "then evaluate that checkpoint")
CSV_COLUMNS = ("index", "image_id", "label", "class_name", "predicted", "predicted_name", "correct", "confidence",
               "iou", "hit", "iou_fixed", "iou_v2")


@dataclass
class WSOLEvalConfig:
    """Everything one evaluation depends on; the tool fills it from its arguments.

    data_root None -> data/CUB_200_2011 or data/ILSVRC; split None -> 'test' (CUB) / 'val' (ImageNet);
    out None -> work_dirs/wsol/<checkpoint stem>_<dataset>; cam: 'cam' (fc weights on the last feature map) or a
    Grad-CAM-family name from cam.GRAD_CAM_METHODS; box_workers: processes for box extraction (-1: automatic,
    0: in the main process); device 'auto' -> cuda when visible, else cpu.
    """

    backbone: str | os.PathLike
    dataset: Literal["cub", "imagenet"] = "cub"
    data_root: str | os.PathLike | None = None
    metadata: str | os.PathLike | None = None
    arch: str | None = None
    cam: str = "cam"
    split: str | None = None
    iou_thresholds: Sequence[int] = DEFAULT_IOU_THRESHOLDS
    cam_curve_interval: float = 0.01
    fixed_threshold: float = PAPER_CAM_THRESHOLD
    out: str | os.PathLike | None = None
    save_cams: bool = False
    vis: int = 0
    batch_size: int = 32
    workers: int = 4
    box_workers: int = -1
    device: str = "auto"
    seed: int = 0
    trust_checkpoint: bool = False
    skip_unreadable: bool = False
    wsol_form: bool = True
    large_feature_map: bool = False
    progress: bool = True
    input_size: int = RESIZE_LENGTH


@dataclass
class WSOLResult:
    """What an evaluation produced: the results.json record, the per-image rows (dataset order), file paths."""

    record: dict[str, Any]
    rows: list[dict[str, Any]]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return self.record["metrics"]


# ----------------------------------------------------------------------------------------------------------
# Dataset plumbing
# ----------------------------------------------------------------------------------------------------------
@dataclass
class EvalData:
    """The samples of one split, the class count the dataset declares (None if it declares none), class names."""

    samples: list
    num_classes: int | None
    class_names: list[str] | None
    split: str
    data_root: Path
    source: str  # 'raw' or 'metadata'


def read_class_names(path: str | os.PathLike) -> list[str] | None:
    """Class names in index order from CUB classes.txt ('1 001.Black_footed_Albatross'), ImageNet
    LOC_synset_mapping.txt ('n01440764 tench, Tinca tinca' -> 'tench') or a plain one-name-per-line file;
    None when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        is_wnid = len(head) == 9 and head[0] == "n" and head[1:].isdigit()
        if rest and (head.isdigit() or is_wnid):
            line = rest.split(",")[0].strip() if is_wnid else rest.strip()
        names.append(line)
    return names or None


def _metadata_image_root(root: Path, ids_file: Path) -> Path:
    """The folder wsolevaluation image ids are relative to: `root`, or root/images (CUB_200_2011),
    root/Data/CLS-LOC (ILSVRC) when the first id exists only there."""
    first = next((ln.strip() for ln in ids_file.read_text(encoding="utf-8", errors="replace").splitlines()
                  if ln.strip()), None)
    if first is None or (root / first).is_file():
        return root
    for sub in (Path("images"), Path("Data") / "CLS-LOC"):
        if (root / sub / first).is_file():
            return root / sub
    return root


def load_eval_data(dataset: str, data_root: str | os.PathLike | None, split: str | None,
                   metadata: str | os.PathLike | None = None, skip_unreadable: bool = False) -> EvalData:
    """Samples of the split to score, from the raw layout or wsolevaluation metadata, with the declared class count.

    CUB raw: CUB_200_2011 (split 'test'; 'train' also allowed); ImageNet raw: the val set (split 'val') from XML
    boxes or LOC_val_solution.csv; metadata: ``<metadata>/<split>/`` or ``<metadata>/`` holding image_ids.txt,
    class_labels.txt, image_sizes.txt, localization.txt, image paths relative to ``data_root``.
    Image files are opened only later, by the evaluation (so an unreadable one can be skipped): a sample whose
    reader gave no size (0, 0) takes the decoded image's size.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    root = Path(data_root) if data_root is not None else DEFAULT_DATA_ROOTS[dataset]
    split = split or ("test" if dataset == "cub" else "val")
    if metadata is not None:
        from ..datasets.wsol_metadata import load_wsol_metadata

        meta = Path(metadata)
        meta_dir = meta / split if (meta / split / "image_ids.txt").is_file() else meta
        if not (meta_dir / "image_ids.txt").is_file():
            raise DatasetError(f"wsolevaluation metadata not found: neither {meta / split / 'image_ids.txt'} nor "
                               f"{meta / 'image_ids.txt'} exists. Pass --metadata the folder holding image_ids.txt, "
                               f"class_labels.txt, image_sizes.txt and localization.txt (or its parent with "
                               f"{split}/ inside), e.g. wsolevaluation's metadata/{dataset.upper()}.")
        if not root.is_dir():
            raise DatasetError(f"dataset folder not found: {root}. With --metadata, --data-root must be the folder "
                               f"the image ids in {meta_dir / 'image_ids.txt'} are relative to (CUB: "
                               f"CUB_200_2011/images, ImageNet: ILSVRC/Data/CLS-LOC), or the dataset folder above it.")
        image_root = _metadata_image_root(root, meta_dir / "image_ids.txt")
        samples = load_wsol_metadata(meta_dir, image_root, check_images=not skip_unreadable)
        names = None
        for base in (image_root, image_root.parent, image_root.parent.parent):
            for fname in ("classes.txt", "LOC_synset_mapping.txt"):
                names = names or read_class_names(base / fname)
        num_classes, source, root = (len(names) if names else None), "metadata", image_root
    elif dataset == "cub":
        from ..datasets.cub import load_cub, load_cub_classes, resolve_cub_root

        if split not in ("train", "test"):
            raise ConfigError(f"--split {split!r}: CUB in its raw layout has the 'test' (and 'train') split; "
                              f"wsolevaluation's CUB 'val' split (CUBV2) needs --metadata")
        cub_root = resolve_cub_root(root)
        samples = load_cub(cub_root, split, check_images=False)
        names = load_cub_classes(cub_root)
        num_classes, source, root = len(names), "raw", cub_root
    else:
        from ..datasets.imagenet import load_imagenet_val, load_synsets, resolve_imagenet_root

        if split != "val":
            raise ConfigError(f"--split {split!r}: ImageNet in its raw layout has the 'val' split (the WSOL test "
                              f"set); wsolevaluation's 'val' (ImageNetV2) / 'test' splits need --metadata")
        root = resolve_imagenet_root(root)
        samples = load_imagenet_val(root, check_images=False)
        names = [desc.split(",")[0].strip() or wnid for wnid, desc in load_synsets(root / "LOC_synset_mapping.txt")]
        num_classes, source = len(names), "raw"
    if not samples:
        raise DatasetError(f"the {dataset} {split!r} split under {root} holds no images; check --data-root, --split "
                           f"and --metadata")
    for s in samples:
        if np.asarray(s.boxes_xyxy).reshape(-1, 4).shape[0] == 0:
            raise DatasetError(f"{s.path}: image {s.image_id!r} has no GT box; every scored image needs at least one "
                               f"(fix the annotation or remove the image from the split)")
    return EvalData(samples=samples, num_classes=num_classes, class_names=names, split=split, data_root=root,
                    source=source)


def load_image_224(path: str | os.PathLike, size: int = RESIZE_LENGTH, input_size: int | None = None
                   ) -> tuple[torch.Tensor, np.ndarray, tuple[int, int]]:
    """Read an image as wsolevaluation's loader: PIL, RGB, Resize((size, size)) bilinear, ImageNet mean/std.

    Returns (normalised (3, input_size, input_size) float32 tensor (input_size None: size), the resized
    (size, size, 3) uint8 RGB image of the scoring frame, original (width, height)). Raises OSError / PIL's
    UnidentifiedImageError on unreadable files.
    """
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    with Image.open(path) as im:
        im.load()
        size_wh = im.size
        rgb = im.convert("RGB")
    resized = TF.resize(rgb, [size, size], interpolation=InterpolationMode.BILINEAR)
    net_in = resized
    if input_size is not None and input_size != size:
        net_in = TF.resize(rgb, [input_size, input_size], interpolation=InterpolationMode.BILINEAR)
    tensor = TF.normalize(TF.to_tensor(net_in), IMAGENET_MEAN, IMAGENET_STD)
    return tensor, np.asarray(resized, dtype=np.uint8), (int(size_wh[0]), int(size_wh[1]))


def load_mask_224(path: str | os.PathLike, size: int = RESIZE_LENGTH) -> np.ndarray:
    """(size, size) bool foreground of a mask image: grayscale > 127, then nearest-neighbour resize to size."""
    raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if raw is None:
        raise OSError(f"cv2 cannot read {path}")
    return resize_mask((raw > 127).astype(np.uint8), (size, size))


class _EvalImages(torch.utils.data.Dataset):
    """Images (and masks) of the samples at `indices`. Never raises: a read failure comes back as an error text,
    so the main process can name the file (DataLoader workers would wrap the exception in a traceback)."""

    def __init__(self, samples: Sequence, indices: Sequence[int], input_size: int = RESIZE_LENGTH) -> None:
        self.samples = samples
        self.indices = list(indices)
        self.input_size = int(input_size)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = self.indices[i]
        s = self.samples[index]
        item = {"index": index, "error": "", "image": torch.zeros(3, self.input_size, self.input_size),
                "mask": torch.zeros(RESIZE_LENGTH, RESIZE_LENGTH, dtype=torch.bool), "has_mask": False,
                "size_wh": torch.zeros(2, dtype=torch.int64)}
        try:
            tensor, _, size_wh = load_image_224(s.path, input_size=self.input_size)
            item["image"], item["size_wh"] = tensor, torch.tensor(size_wh, dtype=torch.int64)
        except Exception as e:  # noqa: BLE001 -- any decoder failure means "unreadable"
            item["error"] = f"unreadable image: {s.path} ({type(e).__name__}: {e})"
            return item
        if s.mask_path is not None:
            try:
                item["mask"] = torch.from_numpy(load_mask_224(s.mask_path))
                item["has_mask"] = True
            except Exception as e:  # noqa: BLE001
                item["error"] = f"unreadable mask: {s.mask_path} for image {s.path} ({type(e).__name__}: {e})"
        return item


# ----------------------------------------------------------------------------------------------------------
# Model and CAMs
# ----------------------------------------------------------------------------------------------------------
def load_model(backbone: str | os.PathLike, dataset: str, data: EvalData, arch: str | None = None,
               trust: bool = False, wsol_form: bool = True, large_feature_map: bool = False):
    """Load the checkpoint as a CAMNet with its own fc head, after checking its class count fits the dataset.

    Returns (model in eval mode, LoadedBackbone). A checkpoint without an fc head, or with another class count
    than the dataset declares (CUB 200, ImageNet 1000, the demo's own count), raises CheckpointError.
    """
    from ..backbones import build_model, load_weights
    from ..checkpoints import load_backbone_state

    path = Path(backbone)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; pass --backbone the .pth file of a classifier "
                              f"fine-tuned on {dataset}")
    loaded = load_backbone_state(path, arch=arch, trust=trust)
    if not loaded.has_fc or not loaded.num_classes:
        raise CheckpointError(f"{path} has no classifier head (fc) to take CAMs from; {TRAIN_HINT}")
    k = int(loaded.num_classes)
    max_label = max(int(s.label) for s in data.samples)
    if data.num_classes is not None and k != data.num_classes:
        raise CheckpointError(f"class-count mismatch: {path} has a {k}-class head but the {dataset} data at "
                              f"{data.data_root} has {data.num_classes} classes; the checkpoint must be "
                              f"fine-tuned on this dataset first: {TRAIN_HINT}")
    if max_label >= k:
        raise CheckpointError(f"class-count mismatch: {path} has a {k}-class head but the {dataset} labels reach "
                              f"{max_label}; {TRAIN_HINT}")
    if data.num_classes is None and k != NOMINAL_CLASSES[dataset]:
        logger.warning("%s has %d classes; %s normally has %d (the dataset declares no class list to check)",
                       path, k, dataset, NOMINAL_CLASSES[dataset])
    model = build_model(loaded.arch, k, wsol=wsol_form, large_feature_map=large_feature_map)
    load_weights(model, loaded, head="require")
    return model.eval(), loaded


def compute_scoremaps(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      method: str = "cam", size: int = RESIZE_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """(B, 3, H, W) normalised images and (B,) GT labels -> (scoremaps (B, size, size) float32 in [0, 1],
    logits (B, K) float32 numpy). The scoremaps are the GT-class CAMs exactly as scored: bicubic resize to the
    224 scoring frame, then per-image min-max (``cam.normalize_cams``)."""
    from ..cam import class_activation_maps, grad_cams, normalize_cams

    size = (int(size), int(size))
    if method == "cam":
        cams, logits = class_activation_maps(model, images, labels)
        return normalize_cams(cams, size), logits.cpu().numpy()
    with torch.inference_mode():
        logits = model(images.to(next(model.parameters()).device)).float()
    maps = grad_cams(model, images, labels, method=method)
    return normalize_cams(maps, size), logits.cpu().numpy()


# ----------------------------------------------------------------------------------------------------------
# Box extraction, possibly in worker processes overlapping the forward pass
# ----------------------------------------------------------------------------------------------------------
class _BoxScorer:
    """Runs ``boxes.curves_for_batch`` per batch inline, or submits it to a process pool and collects results in
    submission order (at most 2 x workers batches in flight), so box extraction overlaps the next forward."""

    def __init__(self, thresholds: np.ndarray, workers: int) -> None:
        self.thresholds = thresholds
        self.pool = None
        if workers > 0:
            import multiprocessing as mp

            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        self.max_pending = max(1, 2 * workers)
        self.pending: deque[tuple[Future, Any]] = deque()

    def submit(self, scoremaps: np.ndarray, gts: list[np.ndarray], payload: Any) -> list[tuple[Any, Any]]:
        """Queue one batch; returns the (curves, payload) pairs that are finished, oldest first."""
        if self.pool is None:
            return [(curves_for_batch(scoremaps, gts, self.thresholds, workers=1), payload)]
        self.pending.append((self.pool.submit(curves_for_batch, scoremaps, gts, self.thresholds, 1), payload))
        done = []
        while len(self.pending) > self.max_pending or (self.pending and self.pending[0][0].done()):
            fut, pay = self.pending.popleft()
            done.append((fut.result(), pay))
        return done

    def drain(self) -> list[tuple[Any, Any]]:
        done = [(fut.result(), pay) for fut, pay in self.pending]
        self.pending.clear()
        return done

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


# ----------------------------------------------------------------------------------------------------------
# cams.npz, streamed (a CUB test set is 1.2 GB of float32 maps; never held twice in memory)
# ----------------------------------------------------------------------------------------------------------
def _write_npy_entry(zf: zipfile.ZipFile, name: str, shape: tuple[int, ...], dtype: np.dtype, chunks) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def write_cams_npz(path: str | os.PathLike, image_ids: Sequence[str], cam_chunks, num: int,
                   size: tuple[int, int] = (RESIZE_LENGTH, RESIZE_LENGTH)) -> None:
    """Write ``image_ids`` (N,) str and ``cams`` (N, H, W) float32 to an .npz (np.load reads it) atomically,
    streaming ``cam_chunks`` (an iterable of (n_i, H, W) arrays in order) into the archive."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            ids = np.asarray(list(image_ids), dtype=str)
            buf = io.BytesIO()
            np.save(buf, ids, allow_pickle=False)
            zf.writestr("image_ids.npy", buf.getvalue())
            _write_npy_entry(zf, "cams", (int(num), int(size[0]), int(size[1])), np.float32, cam_chunks)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


# ----------------------------------------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------------------------------------
def _validate_config(cfg: WSOLEvalConfig) -> None:
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"--dataset {cfg.dataset!r}: choose one of {', '.join(DATASETS)}")
    check_method(cfg.cam)
    ious = [int(i) for i in cfg.iou_thresholds]
    if not ious or any(not 0 < i <= 100 for i in ious) or len(set(ious)) != len(ious) or 50 not in ious:
        raise ConfigError(f"--iou {' '.join(map(str, cfg.iou_thresholds))}: give distinct percentages in (0, 100] "
                          f"that include 50 (MaxBoxAcc is defined at IoU 0.5), e.g. --iou 30 50 70")
    if not 0.0 < float(cfg.cam_curve_interval) < 1.0:
        raise ConfigError(f"--cam-curve-interval {cfg.cam_curve_interval}: use a value in (0, 1), e.g. 0.01 or 0.001")
    if not 0.0 <= float(cfg.fixed_threshold) <= 1.0:
        raise ConfigError(f"--fixed-threshold {cfg.fixed_threshold}: use a value in [0, 1] (the CAM paper uses 0.2)")
    check_input_size(cfg.input_size)
    if cfg.batch_size < 1 or cfg.workers < 0 or cfg.vis < 0:
        raise ConfigError(f"--batch-size {cfg.batch_size} / --workers {cfg.workers} / --vis {cfg.vis}: need a "
                          f"batch size >= 1 and non-negative workers and vis count")


def default_out_dir(backbone: str | os.PathLike, dataset: str) -> Path:
    """work_dirs/wsol/<checkpoint file stem>_<dataset>."""
    return Path("work_dirs") / "wsol" / f"{Path(backbone).stem}_{dataset}"


def _auto_box_workers(requested: int, device: torch.device, world: int) -> int:
    if requested >= 0:
        return requested
    if device.type == "cpu":
        return 0  # the forward pass already uses every core; extra processes would only compete with it
    return max(0, min(4, (os.cpu_count() or 1) // max(1, world) - 1))


def evaluate_wsol(cfg: WSOLEvalConfig) -> WSOLResult:
    """Score one checkpoint on one WSOL split and write results.json, per_image.csv (and cams.npz, figures).

    See the module docstring for the protocol. Under torchrun each rank evaluates its shard and rank 0 writes;
    every rank returns the same record (rows: all images on every rank).
    """
    t_start = time.perf_counter()
    _validate_config(cfg)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    rank, world, created_group, device = setup_torchrun(device)
    try:
        return _evaluate(cfg, device, rank, world, t_start)
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()


def _evaluate(cfg: WSOLEvalConfig, device: torch.device, rank: int, world: int, t_start: float) -> WSOLResult:
    data = load_eval_data(cfg.dataset, cfg.data_root, cfg.split, cfg.metadata, cfg.skip_unreadable)
    model, loaded = load_model(cfg.backbone, cfg.dataset, data, arch=cfg.arch, trust=cfg.trust_checkpoint,
                               wsol_form=cfg.wsol_form, large_feature_map=cfg.large_feature_map)
    model = model.to(device)
    out_dir = Path(cfg.out) if cfg.out is not None else default_out_dir(cfg.backbone, cfg.dataset)
    samples = data.samples
    n_total = len(samples)
    local = list(range(rank, n_total, world))
    logger.info("WSOL %s %s: %d images (%d on rank %d of %d), %s, CAM %s, device %s", cfg.dataset, data.split,
                n_total, len(local), rank, world, loaded.arch, cfg.cam, device)

    box_eval = BoxEvaluator(cfg.iou_thresholds, cfg.cam_curve_interval, fixed_threshold=cfg.fixed_threshold,
                            fixed_iou=PAPER_IOU_THRESHOLD)
    mask_eval = MaskEvaluator(cfg.cam_curve_interval)
    n_thr = box_eval.thresholds.size
    v1_curves = np.zeros((len(local), n_thr), dtype=np.float64)
    v2_curves = np.zeros((len(local), n_thr), dtype=np.float64)
    fixed_iou = np.zeros(len(local), dtype=np.float64)
    preds = np.zeros(len(local), dtype=np.int64)
    confidence = np.zeros(len(local), dtype=np.float64)
    scored = np.zeros(len(local), dtype=bool)
    pos_of = {g: p for p, g in enumerate(local)}
    skipped: list[dict[str, Any]] = []

    cam_shard = None
    cam_order: list[int] = []  # local positions in the order their maps were written to the shard
    if cfg.save_cams:
        out_dir.mkdir(parents=True, exist_ok=True)
        cam_shard_path = out_dir / f".cams.rank{rank}.npy"
        cam_shard = np.lib.format.open_memmap(cam_shard_path, mode="w+", dtype=np.float32,
                                              shape=(max(1, len(local)), RESIZE_LENGTH, RESIZE_LENGTH))

    loader = torch.utils.data.DataLoader(_EvalImages(samples, local, cfg.input_size), batch_size=cfg.batch_size,
                                         shuffle=False, num_workers=cfg.workers, pin_memory=device.type == "cuda",
                                         persistent_workers=False)
    scorer = _BoxScorer(box_eval.score_thresholds, _auto_box_workers(cfg.box_workers, device, world))
    timing = {"forward_s": 0.0, "boxes_s": 0.0, "masks_s": 0.0, "data_wait_s": 0.0}

    def consume(finished: list) -> None:
        t0 = time.perf_counter()
        for (v1, v2), (positions, correct) in finished:
            box_eval.accumulate_curves(v1[:, :-1], v2[:, :-1], v1[:, -1], correct)
            v1_curves[positions] = v1[:, :-1]
            v2_curves[positions] = v2[:, :-1]
            fixed_iou[positions] = v1[:, -1]
        timing["boxes_s"] += time.perf_counter() - t0

    model.eval()
    try:
        t_wait = time.perf_counter()
        for batch in tqdm(loader, desc=f"WSOL {cfg.dataset} {data.split}", unit="batch",
                          disable=not cfg.progress or rank != 0):
            timing["data_wait_s"] += time.perf_counter() - t_wait
            indices = [int(i) for i in batch["index"]]
            ok = np.array([not e for e in batch["error"]], dtype=bool)
            for i, err in zip(indices, batch["error"]):
                if err:
                    if not cfg.skip_unreadable:
                        raise DatasetError(f"{err}; replace the file, or pass --skip-unreadable to count it as "
                                           f"skipped (reported in results.json)")
                    logger.warning("skipping %s", err)
                    skipped.append({"index": i, "image_id": samples[i].image_id, "error": err})
            if not ok.any():
                t_wait = time.perf_counter()
                continue
            sel = torch.from_numpy(np.flatnonzero(ok))
            idx_ok = [indices[j] for j in np.flatnonzero(ok)]
            labels = torch.tensor([int(samples[i].label) for i in idx_ok], dtype=torch.int64)
            images = batch["image"][sel]
            t0 = time.perf_counter()
            scoremaps, logits = compute_scoremaps(model, images.to(device, non_blocking=True), labels, cfg.cam)
            timing["forward_s"] += time.perf_counter() - t0
            positions = np.array([pos_of[i] for i in idx_ok], dtype=np.int64)
            probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
            pred = logits.argmax(axis=1)
            preds[positions] = pred
            confidence[positions] = probs[np.arange(len(pred)), pred]
            scored[positions] = True
            correct = pred == labels.numpy()
            gts = [resize_boxes(samples[i].boxes_xyxy, tuple(samples[i].size_wh)
                                if all(samples[i].size_wh) else tuple(batch["size_wh"][j].tolist()))
                   for i, j in zip(idx_ok, np.flatnonzero(ok))]
            t0 = time.perf_counter()
            finished = scorer.submit(scoremaps, gts, (positions, correct))
            timing["boxes_s"] += time.perf_counter() - t0
            consume(finished)
            has_mask = batch["has_mask"].numpy()[ok]
            if has_mask.any():
                t0 = time.perf_counter()
                masks = batch["mask"][sel].numpy()
                mask_eval.accumulate(scoremaps[has_mask], masks[has_mask])
                timing["masks_s"] += time.perf_counter() - t0
            if cam_shard is not None:
                start = len(cam_order)
                cam_shard[start:start + len(positions)] = scoremaps
                cam_order.extend(positions.tolist())
            t_wait = time.perf_counter()
        consume(scorer.drain())
    finally:
        scorer.close()

    # merge counts (exact integer sums) and the lists of skipped images across ranks
    if world > 1:
        box_eval.load_state_dict(all_reduce_counts(box_eval.state_dict(), device))
        mask_eval.load_state_dict(all_reduce_counts(mask_eval.state_dict(), device))
        skipped = [s for part in all_gather_objects(skipped) for s in part]
        skipped.sort(key=lambda s: s["index"])
    if box_eval.num_images == 0:
        raise DatasetError(f"no image of the {cfg.dataset} {data.split!r} split under {data.data_root} could be "
                           f"read ({len(skipped)} skipped as unreadable); nothing to evaluate")
    box_metrics = box_eval.compute()
    mask_metrics = mask_eval.compute() if mask_eval.num_images else None

    # per-image rows at the dataset-wide best thresholds
    k50 = box_eval.iou_thresholds.index(50)
    best_v1 = int(np.argmax(box_eval.num_correct_v1[k50]))
    best_v2 = int(np.argmax(box_eval.num_correct_v2[k50]))
    names = data.class_names
    rows = []
    for p in np.flatnonzero(scored):
        s = samples[local[p]]
        label, pred = int(s.label), int(preds[p])
        iou = float(v1_curves[p, best_v1])
        rows.append({"index": local[p], "image_id": s.image_id, "label": label,
                     "class_name": names[label] if names and label < len(names) else "",
                     "predicted": pred, "predicted_name": names[pred] if names and pred < len(names) else "",
                     "correct": int(pred == label), "confidence": float(confidence[p]), "iou": iou,
                     "hit": int(iou >= 50 / 100), "iou_fixed": float(fixed_iou[p]),
                     "iou_v2": float(v2_curves[p, best_v2])})
    if world > 1:
        rows = [r for part in all_gather_objects(rows) for r in part]
        rows.sort(key=lambda r: r["index"])

    files: dict[str, Path] = {}
    if cam_shard is not None:
        cam_shard.flush()
        order_parts = all_gather_objects(cam_order) if world > 1 else [cam_order]
        if rank == 0:
            files["cams"] = _assemble_cams(out_dir, order_parts, world, rows)
        if world > 1:
            dist.barrier()
        del cam_shard
        (out_dir / f".cams.rank{rank}.npy").unlink(missing_ok=True)

    timing["total_s"] = time.perf_counter() - t_start
    record = _make_record(cfg, data, loaded, box_metrics, mask_metrics, skipped, timing, world, n_total)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        files["results"] = write_record(out_dir, record)
        files["per_image"] = out_dir / "per_image.csv"
        atomic_write_text(files["per_image"], _rows_csv(rows))
        if cfg.vis > 0:
            from .visualize import write_eval_figures

            files.update(write_eval_figures(out_dir / "vis", cfg, data, model, rows, record,
                                            thresholds=box_eval.thresholds, best_threshold=float(
                                                box_eval.thresholds[best_v1])))
        logger.info("WSOL %s %s: top-1 cls %.2f, top-1 loc %.2f, GT-known %.2f, MaxBoxAcc %.2f, MaxBoxAccV2 %.2f%s "
                    "-> %s", cfg.dataset, data.split, record["metrics"]["top1_cls"], record["metrics"]["top1_loc"],
                    record["metrics"]["gt_known_loc"], record["metrics"]["maxboxacc"],
                    record["metrics"]["maxboxacc_v2"],
                    f", PxAP {record['metrics']['pxap']:.2f}" if "pxap" in record["metrics"] else "", out_dir)
    if world > 1:
        dist.barrier()
    return WSOLResult(record=record, rows=rows, out_dir=out_dir, files=files)


def _assemble_cams(out_dir: Path, order_parts: list[list[int]], world: int, rows: list[dict]) -> Path:
    """Stream every rank's shard of score maps into <out>/cams.npz in dataset order (rows are sorted)."""
    shards = []
    where: dict[int, tuple[int, int]] = {}  # global index -> (rank, row in that rank's shard); rank r holds r::world
    for r, order in enumerate(order_parts):
        shards.append(np.load(out_dir / f".cams.rank{r}.npy", mmap_mode="r"))
        for j, local_pos in enumerate(order):
            where[local_pos * world + r] = (r, j)

    def chunks():
        for row in rows:
            r, j = where[row["index"]]
            yield shards[r][j:j + 1]

    path = out_dir / "cams.npz"
    write_cams_npz(path, [row["image_id"] for row in rows], chunks(), len(rows))
    return path


def _rows_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


def _make_record(cfg: WSOLEvalConfig, data: EvalData, loaded, box: dict, mask: dict | None,
                 skipped: list[dict], timing: dict, world: int, n_total: int) -> dict[str, Any]:
    ious = box["iou_thresholds"]
    metrics: dict[str, float] = {
        "top1_cls": box["top1_cls"], "top1_loc": box["top1_loc"], "gt_known_loc": box["gt_known_loc"],
        "maxboxacc": box["maxboxacc"], "maxboxacc_v2": box["maxboxacc_v2"],
        "top1_loc_at_best_threshold": box["top1_loc_at_best_threshold"],
    }
    for iou in ious:
        metrics[f"maxboxacc_v1_iou{iou}"] = box[f"maxboxacc_v1_iou{iou}"]
        metrics[f"maxboxacc_v2_iou{iou}"] = box[f"maxboxacc_v2_iou{iou}"]
    if mask is not None:
        metrics["pxap"] = mask["pxap"]
    best = {"maxboxacc": box["maxboxacc_best_threshold"]}
    for iou in ious:
        best[f"maxboxacc_v1_iou{iou}"] = box[f"best_threshold_v1_iou{iou}"]
        best[f"maxboxacc_v2_iou{iou}"] = box[f"best_threshold_v2_iou{iou}"]
    curves: dict[str, Any] = {"thresholds": box["thresholds"]}
    for iou in ious:
        curves[f"boxacc_v1_iou{iou}"] = box[f"boxacc_v1_iou{iou}"]
        curves[f"boxacc_v2_iou{iou}"] = box[f"boxacc_v2_iou{iou}"]
        curves[f"top1_loc_v1_iou{iou}"] = box[f"top1_loc_v1_iou{iou}"]
    if mask is not None:
        curves["pxap"] = {"thresholds": mask["pr_thresholds"], "precision": mask["precision"],
                          "recall": mask["recall"]}
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    config["iou_thresholds"] = list(ious)
    return make_record(
        "wsol", checkpoint_info(loaded.path, loaded.sha256, loaded.arch, loaded.meta.get("method")),
        cfg.dataset, data.split, metrics,
        arch=loaded.arch, cam_method=cfg.cam, checkpoint_format=loaded.source_format,
        data_root=str(data.data_root), data_source=data.source,
        num_images=box["num_images"], num_images_in_split=n_total, num_mask_images=mask["num_images"] if mask else 0,
        skipped_unreadable={"count": len(skipped), "images": skipped},
        best_thresholds=best, protocol={
            "image_size": RESIZE_LENGTH, "input_size": cfg.input_size,
            "resize": f"bilinear (PIL) to {cfg.input_size}x{cfg.input_size} for the network, no crop; scored at 224",
            "cam": "GT class; bicubic resize to 224, per-image min-max, 8-bit quantised for boxes",
            "cam_curve_interval": box["cam_curve_interval"], "iou_thresholds": list(ious),
            "fixed_threshold": box["fixed_threshold"], "fixed_iou": box["fixed_iou"],
            "maxboxacc": "V1: largest contour, IoU 0.5", "maxboxacc_v2": "all contours, mean over IoUs",
            "wsol_form": cfg.wsol_form, "large_feature_map": cfg.large_feature_map},
        curves=curves, config=config, world_size=world, timing=timing)
