"""COCO captions as an mmengine dataset: images + sampled caption targets for training, images + ids for testing.

Training items: `{'inputs': (3, S, S) float32 normalised image, 'captions': (C, max_len + 2) int64 targets
(<start> w.. <end> <pad>..), 'image_id': int}` with C = `captions_per_image` captions drawn per image and
epoch (all five of a COCO image, as neuraltalk2's seq_per_img=5: the encoder runs once for five targets).
Evaluation items: `{'inputs', 'image_id'}`; the references travel in `metainfo['references']`
({image_id: [raw captions]}), which mmengine hands to the metric as `dataset_meta`.
No horizontal flip: captions say "on the left" / "on the right".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from mmengine.registry import DATASETS
from torch.utils.data import Dataset
from torchvision import transforms as T

from ..datasets.coco_captions import CaptionImage, Source, load_coco_captions
from ..datasets.common import IMAGENET_MEAN, IMAGENET_STD, load_rgb
from ..errors import ConfigError
from .vocab import Vocabulary, encode_batch

logger = logging.getLogger(__name__)


def caption_transform(size: int, train: bool, resize: int | None = None) -> T.Compose:
    """PIL image -> (3, size, size) normalised float32. Train: Resize((resize, resize)) + RandomCrop(size)
    (resize defaults to size * 8 / 7, i.e. 256 for 224); test: Resize((size, size))."""
    if not isinstance(size, int) or size < 16:
        raise ConfigError(f"caption image_size must be an integer >= 16 pixels, got {size!r}")
    tail = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if not train:
        return T.Compose([T.Resize((size, size)), *tail])
    resize = int(round(size * 8 / 7)) if resize is None else int(resize)
    if resize < size:
        raise ConfigError(f"caption resize {resize} must be at least image_size {size}")
    return T.Compose([T.Resize((resize, resize)), T.RandomCrop(size), *tail])


@DATASETS.register_module(name="CocoCaptions")
class CocoCaptionDataset(Dataset):
    """COCO captions (Karpathy split or COCO json) for NIC; see the module docstring for the items."""

    def __init__(
        self,
        root: str,
        split: str,
        vocab: Vocabulary | Sequence[str] | str | None = None,
        source: Source = "auto",
        karpathy_json: str | None = None,
        image_size: int = 224,
        resize: int | None = None,
        train: bool | None = None,
        max_len: int = 16,
        captions_per_image: int = 5,
        max_images: int | None = None,
        check_files: bool = True,
    ) -> None:
        """`train` (default: split == 'train') selects caption targets and the random-crop transform; `vocab`
        (a Vocabulary, its word list or a vocab.json path) is needed for training items only."""
        super().__init__()
        self.root, self.split = Path(root), split
        self.train = split == "train" if train is None else bool(train)
        self.items: list[CaptionImage] = load_coco_captions(
            root, split, source=source, karpathy_json=karpathy_json, check_files=check_files
        )
        if max_images is not None:
            self.items = self.items[: int(max_images)]
        if isinstance(vocab, str):
            vocab = Vocabulary.load(vocab)
        elif vocab is not None and not isinstance(vocab, Vocabulary):
            vocab = Vocabulary(list(vocab))
        if self.train and vocab is None:
            raise ConfigError("a training caption dataset needs the vocabulary (vocab=...)")
        if captions_per_image < 1 or max_len < 1:
            raise ConfigError(f"captions_per_image ({captions_per_image}) and max_len ({max_len}) must be >= 1")
        self.vocab, self.max_len, self.captions_per_image = vocab, int(max_len), int(captions_per_image)
        self.transform = caption_transform(image_size, self.train, resize)
        self._targets = [encode_batch(vocab, it.tokens, self.max_len) for it in self.items] if self.train else None
        logger.info(
            "COCO captions %s/%s: %d images, %d captions",
            root,
            split,
            len(self.items),
            sum(len(it.captions) for it in self.items),
        )

    def __len__(self) -> int:
        return len(self.items)

    @property
    def metainfo(self) -> dict[str, Any]:
        return {"references": self.references(), "split": self.split, "root": str(self.root)}

    def references(self) -> dict[int, list[str]]:
        """{image_id: raw reference captions} of the split (what the COCO scorers compare with)."""
        return {it.image_id: list(it.captions) for it in self.items}

    def sample_captions(self, index: int) -> torch.Tensor:
        """(captions_per_image, max_len + 2) targets: a random draw without replacement when the image has
        enough captions (all of them, shuffled, for COCO's 5), with replacement otherwise."""
        targets = self._targets[index]
        n, c = targets.shape[0], self.captions_per_image
        pick = torch.randperm(n)[:c] if n >= c else torch.randint(0, n, (c,))
        return targets[pick]

    def __getitem__(self, index: int) -> dict[str, Any]:
        it = self.items[index]
        item = {"inputs": self.transform(load_rgb(it.path)), "image_id": it.image_id}
        if self.train:
            item["captions"] = self.sample_captions(index)
        return item


def training_tokens(items: Sequence[CaptionImage]) -> list[list[str]]:
    """All tokenised captions of the given images (the input of `build_vocab`)."""
    return [toks for it in items for toks in it.tokens]
