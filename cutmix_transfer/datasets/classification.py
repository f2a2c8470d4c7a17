"""Classification readers for the real on-disk layouts: torchvision ImageFolder, CIFAR-10/100 python pickles, CUB.

Each is a plain torch Dataset registered in mmengine's DATASETS: item i is
`{'inputs': (3, S, S) float32 normalised image, 'data_samples': int label, 'sample_idx': i}` (mmengine's default
collate stacks them; `TopKError` keys its per-image rows by 'sample_idx'), and `metainfo['classes']` lists the
class names in label order.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
from mmengine.registry import DATASETS
from PIL import Image
from torch.utils.data import Dataset

from ..errors import ConfigError, DatasetError
from .common import load_rgb
from .cub import load_cub, load_cub_classes, resolve_cub_root
from .transforms import build_transform

logger = logging.getLogger(__name__)
Split = Literal["train", "test", "val"]
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".JPEG")


class _ClassificationDataset(Dataset):
    """Shared item logic: (image source, label) pairs plus one transform built from a spec dict; a subclass
    passes its labels (one per item, in item order) and reads its images in `_image`."""

    def __init__(self, transform: dict, classes: list[str], labels: list[int]) -> None:
        super().__init__()
        self.transform = build_transform(**transform)
        self.classes = classes
        self._labels = labels

    @property
    def metainfo(self) -> dict[str, Any]:
        return {"classes": tuple(self.classes)}

    @property
    def labels(self) -> list[int]:
        return self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def _image(self, index: int) -> Image.Image:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.transform(self._image(index))
        return {"inputs": image, "data_samples": int(self.labels[index]), "sample_idx": int(index)}


@DATASETS.register_module(name="ImageFolderCls")
class ImageFolderDataset(_ClassificationDataset):
    """torchvision's ImageFolder layout `root/<split>/<class>/<image>` (ImageNet train/val prepared that way).

    Classes are the sorted folder names of the split; the val split must use the same class folders.
    """

    def __init__(self, root: str, split: str, transform: dict) -> None:
        from torchvision.datasets.folder import find_classes, make_dataset

        folder = Path(root) / split
        if not folder.is_dir():
            raise DatasetError(
                f"{folder} is not a folder: the ImageFolder layout needs {Path(root)}/{split}/"
                f"<class>/<image>. Point root at the folder that holds '{split}/'."
            )
        classes, class_to_idx = find_classes(str(folder))
        try:
            items = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)
        except FileNotFoundError as e:
            raise DatasetError(f"{folder}: {e}") from e
        self.items = [(Path(p), int(y)) for p, y in items]
        super().__init__(transform, classes, [y for _, y in self.items])
        logger.info("ImageFolder %s: %d images, %d classes", folder, len(self.items), len(classes))

    def _image(self, index: int) -> Image.Image:
        return load_rgb(self.items[index][0])


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's dicts of bytes, lists and numpy arrays; refuses every other global (no code execution)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch file")
        return super().find_class(module, name)


def _load_cifar_pickle(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(
            f"missing {path}: the CIFAR python layout needs it (extract cifar-10-python.tar.gz / "
            f"cifar-100-python.tar.gz so that {path.parent.name}/ holds it)."
        )
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DatasetError(f"{path} is not a CIFAR python batch file ({e}); re-download the python version.") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path} holds a {type(obj).__name__}, not the dict of a CIFAR batch file")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _names(values: list) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


@DATASETS.register_module(name="CIFARCls")
class CIFARDataset(_ClassificationDataset):
    """CIFAR-10/100 in the python-pickle layout (`cifar-10-batches-py/` or `cifar-100-python/`, or their parent).

    CIFAR-100: train, test, meta (fine labels, 100 classes). CIFAR-10: data_batch_1..5, test_batch, batches.meta.
    Each batch file holds b'data' (N, 3072) uint8 in R-then-G-then-B planes of 32x32 and the labels.
    """

    def __init__(
        self, root: str, split: Split, transform: dict, variant: Literal["cifar10", "cifar100"] | None = None
    ) -> None:
        if split not in ("train", "test"):
            raise ConfigError(f"CIFAR split must be 'train' or 'test', got {split!r}")
        folder, variant = self._resolve(Path(root), variant)
        self.variant, self.folder = variant, folder  # which CIFAR, read from where: the record's data identity
        if variant == "cifar100":
            files = [folder / ("train" if split == "train" else "test")]
            classes = _names(_load_cifar_pickle(folder / "meta")["fine_label_names"])
            label_key = "fine_labels"
        else:
            files = [folder / f"data_batch_{i}" for i in range(1, 6)] if split == "train" else [folder / "test_batch"]
            classes = _names(_load_cifar_pickle(folder / "batches.meta")["label_names"])
            label_key = "labels"
        data, labels = [], []
        for path in files:
            batch = _load_cifar_pickle(path)
            if "data" not in batch or label_key not in batch:
                raise DatasetError(f"{path} lacks 'data' or '{label_key}' (keys: {sorted(batch)}); is it {variant}?")
            arr = np.asarray(batch["data"], dtype=np.uint8)
            if arr.ndim != 2 or arr.shape[1] != 3072 or len(batch[label_key]) != arr.shape[0]:
                raise DatasetError(
                    f"{path}: data of shape {arr.shape} with {len(batch[label_key])} labels; "
                    f"expected (N, 3072) uint8 and N labels"
                )
            data.append(arr.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.extend(int(y) for y in batch[label_key])
        super().__init__(transform, classes, labels)
        self.data = np.ascontiguousarray(np.concatenate(data))  # (N, 32, 32, 3) uint8 RGB
        if labels and not 0 <= min(labels) <= max(labels) < len(classes):
            raise DatasetError(
                f"{folder}: labels span {min(labels)}..{max(labels)} but meta lists {len(classes)} classes"
            )
        logger.info("%s %s: %d images, %d classes", variant, split, len(labels), len(classes))

    @staticmethod
    def _resolve(root: Path, variant: str | None) -> tuple[Path, str]:
        candidates = {"cifar100": ["cifar-100-python", "."], "cifar10": ["cifar-10-batches-py", "."]}
        marker = {"cifar100": "meta", "cifar10": "batches.meta"}
        for v in [variant] if variant else ["cifar100", "cifar10"]:
            if v not in candidates:
                raise ConfigError(f"CIFAR variant must be 'cifar10' or 'cifar100', got {v!r}")
            for sub in candidates[v]:
                if (root / sub / marker[v]).is_file():
                    return (root / sub).resolve(), v
        raise DatasetError(
            f"no CIFAR python layout under {root}: expected cifar-100-python/{{train,test,meta}} or "
            f"cifar-10-batches-py/{{data_batch_1..5,test_batch,batches.meta}} there or in its parent."
        )

    def _image(self, index: int) -> Image.Image:
        return Image.fromarray(self.data[index])


@DATASETS.register_module(name="CUBCls")
class CUBDataset(_ClassificationDataset):
    """CUB-200-2011 (raw layout, read by `datasets.cub.load_cub`) as a classification dataset; labels 0-based."""

    def __init__(self, root: str, split: Literal["train", "test"], transform: dict) -> None:
        samples = load_cub(root, split, with_masks=False, check_images=False)
        super().__init__(transform, load_cub_classes(resolve_cub_root(root)), [s.label for s in samples])
        self.paths = [s.path for s in samples]
        logger.info("CUB %s (%s): %d images, %d classes", split, root, len(self._labels), len(self.classes))

    def _image(self, index: int) -> Image.Image:
        return load_rgb(self.paths[index])
