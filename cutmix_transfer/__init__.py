"""cutmix_transfer: measure how a backbone's pretraining (CutMix, Mixup, Cutout, plain) shows up downstream."""

from . import compat  # noqa: F401  (patches two known breaks of the pinned stack; see compat.py)

__version__ = "0.1.0"
