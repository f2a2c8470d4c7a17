"""What every tool shares: its common options, logging set-up (quiet about known upstream noise), and turning user
errors into one line and exit code 2."""

from __future__ import annotations

import argparse
import functools
import inspect
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mmengine.config import DictAction
from mmengine.logging import MMLogger

from .archs import ARCHS
from .cam import CAM_METHODS
from .distributed import LAUNCHERS
from .errors import CutmixTransferError

# Known mmengine notes, matched by message (nothing else is hidden): mmengine's own hooks create a FileClient
# ('disk': a HardDiskBackend) on every run and log both deprecation notes through its MMLogger, not `warnings`.
MMENGINE_NOTES = ('"FileClient" will be deprecated in future', '"HardDiskBackend" is the alias of "LocalBackend"')


class MMEngineNoteFilter(logging.Filter):
    """Drops the records of an mmengine logger whose message starts with one of MMENGINE_NOTES."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(MMENGINE_NOTES)

    @classmethod
    def install(cls, mm_logger: logging.Logger) -> None:
        """Add the filter to `mm_logger` (an MMLogger: each is its own logger, not a child of one) once."""
        if not any(isinstance(f, cls) for f in mm_logger.filters):
            mm_logger.addFilter(cls())


# Known upstream warnings, matched by message (nothing else is hidden): setuptools >= 80 warns on every
# `import pkg_resources`, which mmengine does when a config inherits `mmdet::` bases.
UPSTREAM_WARNINGS = (r"pkg_resources is deprecated as an API",)
# The options the cli itself consumes: --verbose (parse_tool_args) and torchrun's --local-rank (accepted, unused).
CLI_OWN_OPTIONS = ("verbose", "local_rank")

log = logging.getLogger(__name__)
T = TypeVar("T")


def setup_logging(verbose: bool = False) -> None:
    """INFO (DEBUG with --verbose) to stderr with time and logger name; the known upstream notes are dropped:
    UPSTREAM_WARNINGS from `warnings`, MMENGINE_NOTES from mmengine's logger (runner.build_runner filters
    the Runner's own logger the same way)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for message in UPSTREAM_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    MMEngineNoteFilter.install(MMLogger.get_current_instance())


def options_for(fn: Callable[..., Any], args: argparse.Namespace, /, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of `fn` (a library function or a config dataclass) from a tool's parsed options: every
    option whose name is one of its parameters, then `overrides` for the parameters whose option is named or shaped
    differently (e.g. trust=args.trust_checkpoint). An override that names no parameter, or a `fn` taking **kwargs
    (nothing to match against: use the function it passes them to), is a TypeError; the options that reach no
    parameter by name (the tool reads them itself) are logged at DEBUG."""
    params = inspect.signature(fn).parameters
    name = getattr(fn, "__qualname__", repr(fn))
    var_kw = [p.name for p in params.values() if p.kind is p.VAR_KEYWORD]
    if var_kw:
        raise TypeError(f"{name} takes **{var_kw[0]}: match the options against the function it passes them to")
    by_name = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(overrides) - by_name)
    if unknown:
        raise TypeError(f"{name} has no parameter(s) {unknown}")
    options = vars(args)
    values = {k: v for k, v in options.items() if k in by_name}
    values.update(overrides)
    unmatched = sorted(set(options) - by_name - set(CLI_OWN_OPTIONS))
    if unmatched:
        log.debug("%s: options passed to no parameter by name (read by the tool): %s", name, ", ".join(unmatched))
    return values


def call_with_options(fn: Callable[..., T], args: argparse.Namespace, /, **overrides: Any) -> T:
    """`fn(**options_for(fn, args, **overrides))`: a library function or config dataclass called with a tool's
    options."""
    return fn(**options_for(fn, args, **overrides))


def parse_tool_args(p: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a tool's command line and set up logging (verbose when the tool has --verbose and it was given)."""
    args = p.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    return args


def add_verbose_arg(p: argparse.ArgumentParser) -> None:
    """-v / --verbose: DEBUG logging."""
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")


def add_trust_arg(p: argparse.ArgumentParser, what: str = "the checkpoint") -> None:
    """--trust-checkpoint: let `what` need arbitrary unpickling (checkpoints.safe_torch_load refuses it otherwise)."""
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help=f"allow {what} to need arbitrary unpickling (runs code from the file: only for files you trust)",
    )


def add_arch_arg(p: argparse.ArgumentParser) -> None:
    """--arch: the architecture the checkpoint must hold (default: inferred from its weights)."""
    p.add_argument("--arch", choices=ARCHS, default=None, help="expected arch (default: inferred from the weights)")


def add_run_args(
    p: argparse.ArgumentParser,
    seed_default: int | None = 0,
    seed_help: str = "random seed",
    launcher: bool = True,
    trust_help: str = "the checkpoint files",
) -> None:
    """The options every mmengine-based tool shares: --cfg-options, --seed, --trust-checkpoint, (--launcher and
    torchrun's --local-rank), --verbose."""
    p.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        default=None,
        metavar="KEY=VALUE",
        help="override config keys, e.g. train_cfg.max_epochs=2 train_dataloader.batch_size=16",
    )
    p.add_argument("--seed", type=int, default=seed_default, help=seed_help)
    add_trust_arg(p, trust_help)
    if launcher:
        p.add_argument(
            "--launcher",
            choices=LAUNCHERS,
            default="none",
            help="'pytorch' under torchrun (tools/dist_train.sh); without a GPU it uses gloo",
        )
        p.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    add_verbose_arg(p)


def add_train_args(
    p: argparse.ArgumentParser,
    config_help: str,
    resume_from_file: bool = False,
    seed_default: int | None = None,
    seed_help: str = "random seed (default: the config's randomness.seed)",
    trust_help: str = "the backbone checkpoint",
) -> None:
    """What the trainers (train_cls, train_det, train_caption) share: the config, --work-dir, --resume (with
    `resume_from_file`, an optional checkpoint path after it) and the mmengine run options."""
    p.add_argument("config", help=config_help)
    p.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    if resume_from_file:
        p.add_argument(
            "--resume",
            nargs="?",
            const="auto",
            default=None,
            metavar="CKPT",
            help="resume: alone, from the work dir's last checkpoint; with a path, from that file",
        )
    else:
        p.add_argument(
            "--resume",
            action="store_true",
            help="continue from the work dir's last checkpoint (starts fresh when there is none)",
        )
    add_run_args(p, seed_default=seed_default, seed_help=seed_help, trust_help=trust_help)


def add_classifier_eval_args(
    p: argparse.ArgumentParser,
    image_size_help: str | None,
    backbone_required: bool = True,
    image_size_default: int | None = 224,
    seed_help: str = "random seed (default 0)",
) -> None:
    """What a tool that evaluates one classifier checkpoint takes: --backbone, --arch, --image-size (none when
    `image_size_help` is None), --device, --seed, --trust-checkpoint, --verbose (runtime.resolve_device /
    seed_everything / check_input_size read them)."""
    p.add_argument(
        "--backbone", required=backbone_required, help="classifier checkpoint (any format checkpoints.py reads)"
    )
    add_arch_arg(p)
    if image_size_help is not None:
        p.add_argument("--image-size", type=int, default=image_size_default, help=image_size_help)
    p.add_argument("--device", default="auto", help="auto (cuda when visible, else cpu) | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    add_trust_arg(p)
    add_verbose_arg(p)


def add_normalization_args(
    p: argparse.ArgumentParser, source: str = "default: the checkpoint meta's, else the dataset's"
) -> None:
    """--mean M M M / --std S S S (normalization.resolve_normalization); `source` says the default in words."""
    p.add_argument(
        "--mean",
        type=float,
        nargs=3,
        default=None,
        metavar="M",
        help=f"RGB mean of [0, 1] pixels the inputs are normalised with, with --std ({source})",
    )
    p.add_argument(
        "--std",
        type=float,
        nargs=3,
        default=None,
        metavar="S",
        help=f"RGB std of [0, 1] pixels, with --mean ({source})",
    )


def add_evaluator_args(
    p: argparse.ArgumentParser,
    *,
    batch_size: int,
    workers: int,
    workers_default_text: str | None = None,
    image_size_help: str | None = None,
    image_size_default: int | None = 224,
    backbone_required: bool = True,
    seed_help: str = "random seed (default 0)",
    skip_unreadable_help: str = "count unreadable images as skipped (listed in results.json) instead of failing",
) -> None:
    """The flags every evaluator (test_cls, corruption_eval, ood_eval, robustness_eval, wsol_eval) shares, declared
    once: add_classifier_eval_args' (--backbone, --arch, --image-size when `image_size_help` is given, --device,
    --seed, --trust-checkpoint, --verbose), --mean / --std (normalization.resolve_normalization: default the
    checkpoint meta's, else the dataset's), --batch-size, --workers (`workers_default_text` says the default in
    words when it is computed), --skip-unreadable, --no-progress (stores progress=False) and torchrun's --local-rank
    (accepted, unused: the evaluators read WORLD_SIZE / RANK from the environment)."""
    add_classifier_eval_args(p, image_size_help, backbone_required, image_size_default, seed_help)
    add_normalization_args(p)
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"images per batch (default {batch_size})")
    text = workers_default_text or str(workers)
    p.add_argument(
        "--workers",
        type=int,
        default=workers,
        help="data loader processes (default 0: in this process)"
        if text == "0"
        else f"data loader processes (default {text}; 0: in this process)",
    )
    p.add_argument("--skip-unreadable", action="store_true", help=skip_unreadable_help)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)


def add_cam_arg(p: argparse.ArgumentParser) -> None:
    """--cam: one of cam.CAM_METHODS."""
    p.add_argument(
        "--cam",
        default="cam",
        choices=CAM_METHODS,
        help="'cam' (fc weights on the last feature map) or a Grad-CAM method (needs grad-cam)",
    )


def main_guard(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Run a tool's main(); a CutmixTransferError becomes `error: <message>` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> int:
        try:
            return int(fn(*args, **kwargs) or 0)
        except CutmixTransferError as e:
            msg = " ".join(str(e).split())  # one line, always
            print(f"error: {msg}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
