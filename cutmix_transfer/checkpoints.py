"""One safe checkpoint loader: read any supported backbone checkpoint into torchvision names, and export it.

`safe_torch_load` is the only place in the project that calls `torch.load`. It always uses
`weights_only=True` with an explicit allow-list (`allowed_globals()`); a file that needs anything else is refused
with `UnsafeCheckpointError`, and no code in it runs unless the user passes `--trust-checkpoint`.

`load_backbone_state` detects the file's layout (CutMix-PyTorch, torchvision, timm, mmengine / mmpretrain /
mmdet, wsolevaluation, this project's own Runner checkpoints), maps the keys to torchvision names, infers the
architecture from the key shapes and checks every key against that architecture.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .archs import ARCHS, KEYS_SHOWN, VGG_ARCHS, check_arch, describe_arch, infer_arch, reference_shapes, vgg_indices
from .errors import CheckpointError, ConfigError, UnsafeCheckpointError
from .io import atomic_torch_save, sha256_file

logger = logging.getLogger(__name__)

SOURCE_FORMATS = (
    "cutmix-pytorch",
    "torchvision",
    "timm",
    "mmengine",
    "wsolevaluation",
    "cutmix_transfer",
    "pytorch_resnet_cifar10",  # akamaster's trainer.py: {'state_dict': module.*, 'best_prec1'}, 'linear' head
)
TRUST_FLAG = "--trust-checkpoint"

# The two records this project writes into a checkpoint's `meta` (different records, under different keys):
# meta[PROJECT_META_KEY]: the project's own model meta (arch, method, num_classes, wsol; a captioner's vocab, ...)
PROJECT_META_KEY = "cutmix_transfer"
# meta[BACKBONE_META_KEY]: which backbone checkpoint a detector started from (path, sha256, arch, method, format)
BACKBONE_META_KEY = "backbone_checkpoint"


# ----------------------------------------------------------------------------------------------------------
# Safe loading
# ----------------------------------------------------------------------------------------------------------
def _numpy_multiarray():
    """numpy's C multiarray module under numpy 2 (`numpy._core`) or numpy 1 (`numpy.core`)."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """`getattr` restricted to HistoryBuffer's statistics methods (mmengine pickles them as getattr(cls, name)).

    A blanket `builtins.getattr` would let a pickle reach arbitrary attributes (e.g. `ndarray.tofile`) and call
    them; this version only returns the four plain statistics functions of mmengine's HistoryBuffer class.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = {"min", "max", "current", "mean"}
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f"refused getattr({obj!r}, {name!r}): only HistoryBuffer.{sorted(allowed)} may be looked up"
    )


def allowed_globals() -> list:
    """The explicit allow-list for `torch.load(weights_only=True)`: data containers only, nothing that runs code.

    - numpy arrays, dtypes and scalars (`_reconstruct`, `ndarray`, `dtype` and its per-type classes, `scalar`),
      under numpy 2 and numpy 1 module names: they rebuild arrays from bytes or from already-restricted objects.
    - `collections.OrderedDict` / `defaultdict`, with `list`, `dict`, `int`, `float`, `set` as default factories
      (torch's weights_only unpickler itself only fills dict/OrderedDict/Counter, so a NON-EMPTY defaultdict is
      still refused: re-save it as a dict).
    - `argparse.Namespace`: timm and torchvision-references checkpoints store the training args; it is a plain
      attribute bag (its constructor only sets attributes, whose values pass through this same unpickler).
    - mmengine's `HistoryBuffer` (the Runner's message hub) and a getattr restricted to its statistics methods.
    """
    ma = _numpy_multiarray()
    safe: list = [
        (ma._reconstruct, "numpy._core.multiarray._reconstruct"),
        (ma._reconstruct, "numpy.core.multiarray._reconstruct"),
        (ma.scalar, "numpy._core.multiarray.scalar"),
        (ma.scalar, "numpy.core.multiarray.scalar"),
        np.ndarray,
        np.dtype,
        collections.OrderedDict,
        collections.defaultdict,
        (list, "builtins.list"),
        (dict, "builtins.dict"),
        (int, "builtins.int"),
        (float, "builtins.float"),
        (set, "builtins.set"),
        argparse.Namespace,
    ]
    dtypes_mod = getattr(np, "dtypes", None)
    if dtypes_mod is not None:
        safe += [
            getattr(dtypes_mod, n)
            for n in sorted(dir(dtypes_mod))
            if n.endswith("DType") and isinstance(getattr(dtypes_mod, n), type)
        ]
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:  # mmengine missing: its Runner checkpoints cannot exist here anyway
        pass
    else:
        safe += [HistoryBuffer, (_history_buffer_getattr, "builtins.getattr")]
    return safe


def _safe_global_names() -> set[str]:
    names = set()
    for g in allowed_globals():
        names.add(g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}")
    return names


def _sniff(path: Path) -> str:
    """Say in words what the bytes of a file that failed to load look like (for error messages)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(64)
    if size == 0:
        return "an empty file (0 bytes)"
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            return (
                f"a truncated or corrupt zip-format torch checkpoint ({size} bytes, no zip central directory: "
                "the file was cut short, e.g. by an interrupted download or copy)"
            )
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile:
            return f"a corrupt zip archive ({size} bytes)"
        if not any(n.endswith("data.pkl") for n in names):
            return f"a zip archive that is not a torch checkpoint (no data.pkl; first entries {names[:3]})"
        return f"a corrupt zip-format torch checkpoint ({size} bytes)"
    if head[:1] == b"\x80":
        return f"a pickle / legacy torch checkpoint that is truncated or corrupt ({size} bytes)"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (Keras/TF weights?), not a PyTorch checkpoint"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return "a safetensors file, which this loader does not read (save it with torch.save)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"an unrecognised binary file ({size} bytes, starts with {head[:8]!r})"
    return f"a text file, not a checkpoint (starts with {text[:40]!r})"


_UNSAFE_MARKERS = (
    "GLOBAL",
    "Unsupported operand",
    "Trying to call reduce",
    "Can only build",
    "Can only create new object",
    "refused getattr",
    "Unsupported class",
)


def _unsafe_error(path: Path, err: Exception) -> UnsafeCheckpointError:
    """UnsafeCheckpointError naming the globals (or pickle opcode) that the weights_only loader refused."""
    msg = str(err)
    offending: list[str] = []
    if zipfile.is_zipfile(path):
        try:
            allowed = _safe_global_names()
            offending = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if g not in allowed]
        except Exception:  # noqa: BLE001 - best effort only, the regex below still names something
            offending = []
    if not offending:
        offending = sorted(set(re.findall(r"GLOBAL ([\w.]+)", msg)))
    if offending:
        what = f"it needs the non-allow-listed global(s) {', '.join(offending[:KEYS_SHOWN])}"
    else:
        m = re.search(r"Unsupported operand (\d+)", msg)
        if m:
            what = (
                f"it uses pickle opcode {m.group(1)} ({chr(int(m.group(1)))!r}), which the safe loader does not "
                "accept (a plain pickle rather than a torch.save file?)"
            )
        else:
            m = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|$)", msg, re.S)
            detail = " ".join((m.group(1) if m else msg).split())[:200]
            what = f"the safe (weights_only) loader refused it: {detail}"
    return UnsafeCheckpointError(
        f"refusing to load {path}: {what}; loading it needs full unpickling, which can run arbitrary code from the "
        f"file. If and only if you "
        f"trust where this file came from, pass {TRUST_FLAG} (the only way to load it); otherwise re-save the "
        "weights as a plain state dict (torch.save(model.state_dict(), ...))."
    )


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu", trust: bool = False) -> Any:
    """`torch.load` with weights_only=True and the `allowed_globals()` allow-list; the project's only torch.load.

    trust=True (the user's --trust-checkpoint) loads with weights_only=False and logs a warning.
    Raises CheckpointError for a missing, empty, truncated or non-checkpoint file, and UnsafeCheckpointError
    (naming the path, the offending global and --trust-checkpoint) for a file that needs arbitrary unpickling.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist: check the path")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file (a directory?): pass the .pth file itself")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is an empty file (0 bytes): re-download or re-save it")
    if trust:
        logger.warning(
            "loading %s with weights_only=False because %s was given: any code in the file runs now", path, TRUST_FLAG
        )
        try:
            return torch.load(path, map_location=map_location, weights_only=False)
        except Exception as e:  # noqa: BLE001 - any failure here means the file is not a loadable checkpoint
            raise CheckpointError(
                f"cannot read checkpoint {path}: found {_sniff(path)} "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
            ) from e
    try:
        with torch.serialization.safe_globals(allowed_globals()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Detected pickle protocol.*")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if _is_torch_zip(path) or (any(marker in msg for marker in _UNSAFE_MARKERS) and _starts_like_pickle(path)):
            raise _unsafe_error(path, e) from None
        raise CheckpointError(f"cannot read checkpoint {path}: found {_sniff(path)}; re-download or re-save it") from e
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError/EOFError/KeyError/... on bad bytes
        raise CheckpointError(
            f"cannot read checkpoint {path}: found {_sniff(path)} ({type(e).__name__}); re-download or re-save it"
        ) from e


def _is_torch_zip(path: Path) -> bool:
    """True for an intact zip-format torch.save file (its pickle was readable, so a refusal is a safety refusal)."""
    try:
        return zipfile.is_zipfile(path) and any(n.endswith("data.pkl") for n in zipfile.ZipFile(path).namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _starts_like_pickle(path: Path) -> bool:
    """True for files that start with a pickle PROTO opcode (legacy torch.save or a plain pickle)."""
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


# ----------------------------------------------------------------------------------------------------------
# Layout detection and key mapping
# ----------------------------------------------------------------------------------------------------------
@dataclass
class LoadedBackbone:
    """A backbone checkpoint in torchvision naming plus what was found in the file.

    state_dict keys: ResNet 'conv1.weight', 'layer1.0.conv1.weight', ..., 'fc.weight'; VGG 'features.N.*' at
    torchvision's indices, plus 'classifier.*' (torchvision VGG head) or 'conv6.*' and 'fc.*' (VGG16-GAP).
    """

    state_dict: dict[str, torch.Tensor]
    arch: str
    source_format: str
    num_classes: int | None
    has_fc: bool
    sha256: str
    path: str
    meta: dict = field(default_factory=dict)


def _plain_meta(d: dict, keys: tuple[str, ...]) -> dict:
    """JSON-friendly copies of the scalar entries `keys` of `d`."""
    out = {}
    for k in keys:
        v = d.get(k)
        if (isinstance(v, torch.Tensor) and v.numel() == 1) or isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, (int, float, str, bool)):
            out[k] = v
    return out


def _is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and sum(isinstance(v, torch.Tensor) for v in obj.values()) >= 0.9 * len(obj)
    )


def _unwrap(obj: Any, path: Path) -> tuple[str, dict, dict, str | None]:
    """Detect the layout of a loaded checkpoint object -> (source_format, raw state dict, meta, declared arch)."""
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{path} is not a checkpoint: it holds a {type(obj).__name__}, not a dict of weights "
            "(a whole pickled model? save model.state_dict() instead)"
        )
    keys = set(obj)
    sd = obj.get("state_dict")
    if isinstance(sd, dict) and "best_err1" in keys and "arch" in keys:
        meta = _plain_meta(obj, ("epoch", "arch", "best_err1", "best_err5"))
        return "cutmix-pytorch", sd, meta, str(obj["arch"])
    if isinstance(sd, dict) and "architecture" in keys:
        meta = _plain_meta(obj, ("epoch", "architecture"))
        return "wsolevaluation", sd, meta, str(obj["architecture"])
    if isinstance(sd, dict) and "best_prec1" in keys:  # akamaster/pytorch_resnet_cifar10 (its release files too)
        return "pytorch_resnet_cifar10", sd, _plain_meta(obj, ("best_prec1",)), None
    if isinstance(sd, dict) and "version" in keys and "arch" in keys:  # timm's CheckpointSaver
        meta = _plain_meta(obj, ("epoch", "arch", "metric", "version"))
        if "state_dict_ema" in keys:
            meta["has_ema"] = True
        return "timm", sd, meta, str(obj["arch"])
    if isinstance(sd, dict) and isinstance(obj.get("meta"), dict | None) and ("meta" in keys or _is_tensor_dict(sd)):
        raw_meta = obj.get("meta") or {}
        meta = _plain_meta(raw_meta, ("epoch", "iter", "mmengine_version", "experiment_name", "seed"))
        ours = raw_meta.get(PROJECT_META_KEY)
        declared = None
        if isinstance(ours, dict):
            plain = tuple(k for k in ours if isinstance(k, str) and k not in ("mean", "std"))
            meta.update(_plain_meta(ours, plain))  # arch, method, ...
            for k in ("mean", "std"):  # the training normalisation, 3 floats each (normalization.py reads them)
                v = ours.get(k)
                if isinstance(v, list | tuple) and len(v) == 3 and all(isinstance(x, int | float) for x in v):
                    meta[k] = [float(x) for x in v]
            for k in ("source_format", "source_sha256", "source_path"):
                if isinstance(raw_meta.get(k), str):
                    meta[k] = raw_meta[k]
            declared = ours.get("arch")
            return "cutmix_transfer", sd, meta, declared
        return "mmengine", sd, meta, declared
    if isinstance(obj.get("model"), dict) and _is_tensor_dict(obj["model"]):  # torchvision references train.py
        return "torchvision", obj["model"], _plain_meta(obj, ("epoch",)), None
    if _is_tensor_dict(obj):
        return "torchvision", obj, {}, None
    raise CheckpointError(
        f"{path} has an unknown checkpoint layout: top-level keys {sorted(map(str, keys))[:10]}; expected a state "
        "dict, or a dict with 'state_dict' (CutMix-PyTorch, mmengine/mmdet/mmpretrain, wsolevaluation, timm) "
        "or 'model' (torchvision references)"
    )


def _strip(key: str, prefixes: tuple[str, ...]) -> str:
    changed = True
    while changed:
        changed = False
        for p in prefixes:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    return key


def _normalize_keys(raw: dict, fmt: str, meta: dict) -> dict[str, torch.Tensor]:
    """Map a raw state dict to torchvision names: strip DataParallel/compile prefixes, take an mm* backbone."""
    sd = {_strip(k, ("module.", "_orig_mod.")): v for k, v in raw.items()}
    if fmt == "pytorch_resnet_cifar10":  # its head is 'linear', option B shortcuts 'shortcut.0/1'
        sd = {re.sub(r"^linear\.", "fc.", k).replace(".shortcut.", ".downsample."): v for k, v in sd.items()}
    if fmt in ("mmengine", "cutmix_transfer") and any(k.startswith("backbone.") for k in sd):
        out: dict[str, torch.Tensor] = {}
        dropped = []
        for k, v in sd.items():
            if k.startswith("backbone."):
                out[k[len("backbone.") :]] = v
            elif k.startswith("head.fc."):  # mmpretrain LinearClsHead
                out["fc." + k[len("head.fc.") :]] = v
            else:
                dropped.append(k)
        if dropped:
            logger.info("dropped %d non-backbone keys (e.g. %s)", len(dropped), dropped[:3])
            meta["dropped_keys"] = len(dropped)
        sd = out
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"the state dict holds non-tensor entries {bad[:KEYS_SHOWN]} ({len(bad)} in all): not a weights file"
        )
    return sd


def _renumber_vgg(sd: dict, arch: str, path: Path) -> dict:
    """Put VGG 'features.N' keys at torchvision's indices (wsolevaluation's 28x28 VGG drops pool4: 24 -> 23 ...)."""
    ref = reference_shapes(arch)
    ref_convs, ref_bns = vgg_indices({k: torch.empty(s, device="meta") for k, s in ref.items()})
    convs, bns = vgg_indices(sd)
    if bns and len(bns) != len(ref_bns):
        raise CheckpointError(f"{path}: VGG16-BN with {len(bns)} BatchNorm layers, expected {len(ref_bns)}")
    mapping = dict(zip(convs, ref_convs)) | dict(zip(bns, ref_bns))
    if all(a == b for a, b in mapping.items()):
        return sd
    logger.info(
        "renumbering VGG feature layers to torchvision indices: %s", {a: b for a, b in mapping.items() if a != b}
    )
    out = {}
    for k, v in sd.items():
        m = re.match(r"features\.(\d+)\.(.+)$", k)
        if m:
            idx = int(m.group(1))
            if idx not in mapping:
                raise CheckpointError(f"{path}: VGG key {k} is neither a conv nor a BatchNorm layer")
            k = f"features.{mapping[idx]}.{m.group(2)}"
        out[k] = v
    return out


def _head_info(sd: dict, arch: str) -> tuple[bool, int | None]:
    """(has_fc, num_classes): the GAP fc head ('fc.weight'); for a torchvision VGG the classifier's class count."""
    if "fc.weight" in sd:
        return True, int(sd["fc.weight"].shape[0])
    if arch in VGG_ARCHS and "classifier.6.weight" in sd:
        return False, int(sd["classifier.6.weight"].shape[0])
    return False, None


def _check_keys(sd: dict, arch: str, path: Path) -> None:
    """Every key must belong to `arch` with the right shape; every backbone key must be present."""
    ref = reference_shapes(arch)
    optional_prefixes = ("fc.",)
    extra_ref: dict[str, tuple[int, ...] | None] = {}
    if arch in VGG_ARCHS:  # torchvision classifier or the VGG16-GAP head (wsolevaluation)
        optional_prefixes = ("fc.", "classifier.", "conv6.")
        extra_ref = {"conv6.weight": (1024, 512, 3, 3), "conv6.bias": (1024,), "fc.weight": None, "fc.bias": None}
    required = [k for k in ref if not k.startswith(optional_prefixes) and not k.endswith("num_batches_tracked")]
    missing = [k for k in required if k not in sd]
    unexpected = [k for k in sd if k not in ref and k not in extra_ref]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {missing[:KEYS_SHOWN]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[:KEYS_SHOWN]})")
        raise CheckpointError(
            f"{path} does not match {arch}: "
            + "; ".join(parts)
            + ". Is it a different architecture or a model with extra modules?"
        )
    bad = []
    for k, v in sd.items():
        want = ref.get(k, extra_ref.get(k))
        if k in ("fc.weight",):
            feat_dim = {"vgg16": 1024, "vgg16_bn": 1024}.get(arch, ref.get("fc.weight", (0, 0))[1])
            if v.dim() != 2 or v.shape[1] != feat_dim:
                bad.append(f"{k} {tuple(v.shape)} (expected (K, {feat_dim}))")
            continue
        if k == "fc.bias":
            if v.dim() != 1 or ("fc.weight" in sd and v.shape[0] != sd["fc.weight"].shape[0]):
                bad.append(f"{k} {tuple(v.shape)}")
            continue
        if k.startswith("classifier.6."):
            continue  # the torchvision VGG classifier's class count may differ
        if want is not None and tuple(v.shape) != tuple(want):
            bad.append(f"{k} {tuple(v.shape)} (expected {tuple(want)})")
    if bad:
        raise CheckpointError(
            f"{path}: {len(bad)} weights have the wrong shape for {arch} (first: {bad[:3]}); "
            "a wide ResNet / ResNeXt or another variant? Supported: "
            f"{', '.join(ARCHS)}, any CIFAR PyramidNet and any three-stage CIFAR ResNet"
        )


def load_backbone_state(path: str | os.PathLike, arch: str | None = None, trust: bool = False) -> LoadedBackbone:
    """Load any supported backbone checkpoint into torchvision names, with its format, arch and head info.

    arch=None infers the arch from key shapes; a given arch that differs from the file's raises CheckpointError.
    trust=True (--trust-checkpoint) allows arbitrary unpickling; without it no code in the file runs.
    """
    if arch is not None:
        check_arch(arch)
    path = Path(path)
    obj = safe_torch_load(path, trust=trust)
    fmt, raw, meta, declared = _unwrap(obj, path)
    sd = _normalize_keys(raw, fmt, meta)
    if not sd:
        raise CheckpointError(f"{path}: the {fmt} checkpoint holds no backbone weights (empty state dict)")
    found = infer_arch(sd, path)
    if arch is not None and arch != found:
        raise CheckpointError(
            f"arch mismatch: you asked for {arch} but {path} holds a {found} "
            f"({describe_arch(sd, found)}); pass --arch {found} or use the right file"
        )
    if (
        declared
        and declared in ARCHS
        and declared != found
        and not (found == f"{declared}_cifar" and meta.get("small_input_stem"))
    ):  # CAMClassifier(small_input_stem=True)
        logger.warning("%s declares arch %r but its weights are %s; using %s", path, declared, found, found)
    if found in VGG_ARCHS:
        sd = _renumber_vgg(sd, found, path)
    _check_keys(sd, found, path)
    has_fc, num_classes = _head_info(sd, found)
    if declared:
        meta.setdefault("declared_arch", declared)
    loaded = LoadedBackbone(
        state_dict=sd,
        arch=found,
        source_format=fmt,
        num_classes=num_classes,
        has_fc=has_fc,
        sha256=sha256_file(path),
        path=str(path),
        meta=meta,
    )
    logger.info(
        "loaded %s: %s, %s, %d tensors, head: %s",
        path,
        fmt,
        found,
        len(sd),
        f"fc with {num_classes} classes" if has_fc else "none",
    )
    return loaded


# ----------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------
_HEAD_PREFIXES = ("fc.", "classifier.", "conv6.")


def export_checkpoint(loaded: LoadedBackbone, dst: str | os.PathLike, to: Literal["mmdet", "torchvision"]) -> None:
    """Write `loaded` as a plain torchvision state dict, or as an mmdet backbone checkpoint (atomically).

    mmdet: {'state_dict': backbone weights in torchvision names without any head (mmdet's ResNet and mmcv's VGG
    use the same names), 'meta': source info}, for `init_cfg=dict(type='Pretrained', checkpoint=dst)`.
    """
    if to not in ("mmdet", "torchvision"):
        raise ConfigError(f"unknown export target {to!r}: choose 'mmdet' or 'torchvision'")
    sd = collections.OrderedDict((k, v.detach().cpu().contiguous()) for k, v in loaded.state_dict.items())
    if to == "torchvision":
        atomic_torch_save(sd, dst)
    else:
        backbone = collections.OrderedDict((k, v) for k, v in sd.items() if not k.startswith(_HEAD_PREFIXES))
        meta = {
            PROJECT_META_KEY: {"arch": loaded.arch, "method": loaded.meta.get("method"), "num_classes": None},
            "source_format": loaded.source_format,
            "source_sha256": loaded.sha256,
            "source_path": loaded.path,
            "exported_for": "mmdet",
        }
        atomic_torch_save({"state_dict": backbone, "meta": meta}, dst)
    logger.info("wrote %s checkpoint %s (%s from %s)", to, dst, loaded.arch, loaded.path)


def convert_checkpoint(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    to: Literal["mmdet", "torchvision"],
    arch: str | None = None,
    trust: bool = False,
) -> LoadedBackbone:
    """Load `src` (any supported layout) and export it to `dst` in the `to` format; returns what was loaded."""
    if Path(src).resolve() == Path(dst).resolve():
        raise ConfigError(f"destination {dst} is the source file: choose another path")
    loaded = load_backbone_state(src, arch=arch, trust=trust)
    export_checkpoint(loaded, dst, to)
    return loaded


# ----------------------------------------------------------------------------------------------------------
# Does a checkpoint fit a model
# ----------------------------------------------------------------------------------------------------------
def check_state_fits(
    model: torch.nn.Module, state: dict[str, Any], checkpoint: str | os.PathLike, what: str, hint: str = ""
) -> None:
    """CheckpointError unless `state` has every weight of `model` with the same shape (extra keys are allowed).

    The message names `checkpoint`, `what` it should fit ("the config's detector"), counts and examples of the
    missing and mis-shaped weights, then `hint` (how to fix it).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or wrong:
        raise CheckpointError(
            f"{checkpoint} does not fit {what}: {len(missing)} weights missing (e.g. {missing[:3]}), "
            f"{len(wrong)} of another shape (e.g. {wrong[:3]})" + (f". {hint}" if hint else "")
        )
