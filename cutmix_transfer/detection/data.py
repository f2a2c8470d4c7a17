"""Check that the VOC files a detection config reads exist, before mmengine starts building anything."""

from __future__ import annotations

import os
import os.path as osp
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DatasetError

if TYPE_CHECKING:
    from mmengine.config import Config

VOC_LAYOUT = (
    "VOCdevkit/VOC2007/{Annotations/*.xml, JPEGImages/*.jpg, ImageSets/Main/trainval.txt, "
    "ImageSets/Main/test.txt} and VOCdevkit/VOC2012/{Annotations, JPEGImages, "
    "ImageSets/Main/trainval.txt}"
)
XML_TYPES = ("VOCDataset", "XMLDataset")


def iter_xml_datasets(dataset: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    """Yield the VOC/XML dataset dicts in a dataset config, through RepeatDataset / ConcatDataset wrappers."""
    if not isinstance(dataset, Mapping):
        return
    if dataset.get("type") in XML_TYPES:
        yield dataset
    yield from iter_xml_datasets(dataset.get("dataset"))
    subs = dataset.get("datasets")
    for sub in subs if isinstance(subs, (list, tuple)) else ():
        yield from iter_xml_datasets(sub)


def set_data_root(cfg: Config, data_root: str | os.PathLike) -> int:
    """Point every VOC/XML dataset of the train/val/test dataloaders at `data_root` (a VOCdevkit folder).

    Returns how many dataset configs were changed; saves spelling out each nested dataset in --cfg-options.
    """
    root = str(data_root).rstrip("/") + "/"
    n = 0
    for split in ("train", "val", "test"):
        loader = cfg.get(f"{split}_dataloader")
        for ds in iter_xml_datasets(loader.get("dataset") if loader else None):
            ds["data_root"] = root
            n += 1
    return n


def voc_paths(dataset: Mapping[str, Any]) -> list[str]:
    """The files and folders one VOCDataset config reads: its image list, Annotations/ and JPEGImages/."""
    root = dataset.get("data_root") or ""
    sub = (dataset.get("data_prefix") or {}).get("sub_data_root", "")
    return [osp.join(root, dataset["ann_file"]), osp.join(root, sub, "Annotations"), osp.join(root, sub, "JPEGImages")]


def check_voc_data(cfg: Config, splits: tuple[str, ...] = ("train", "val", "test")) -> list[str]:
    """Raise DatasetError naming every missing VOC path of `<split>_dataloader`s; return the paths checked."""
    checked: list[str] = []
    missing: list[str] = []
    for split in splits:
        loader = cfg.get(f"{split}_dataloader")
        if not loader:
            continue
        for ds in iter_xml_datasets(loader.get("dataset")):
            for path in voc_paths(ds):
                if path in checked:
                    continue
                checked.append(path)
                if not osp.exists(path):
                    missing.append(path)
    if missing:
        raise DatasetError(
            f"Pascal VOC data missing: {', '.join(missing)} not found. Expected under the config's data_root "
            f"(data/VOCdevkit/ by default): {VOC_LAYOUT}. Link the dataset there (VOC07+12 trainval for "
            f"training, VOC07 test for testing), or set data_root with --cfg-options / a config "
            f"(configs/voc_*_demo.py read data/demo/VOCdevkit made by tools/make_demo_data.py)."
        )
    return checked
