"""What the tools share (cli.py): the common options, the library call with the options matched by name (every
tool's options reach its library call or the tool itself), and a quiet start-up that hides only the known upstream
notes (setuptools' pkg_resources warning, mmengine's FileClient / HardDiskBackend notes)."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import re
import warnings

import pytest
from helpers import REPO, load_tool
from mmengine.fileio import FileClient
from mmengine.fileio.file_client import HardDiskBackend
from mmengine.logging import MMLogger, print_log

from cutmix_transfer.cam import CAM_METHODS
from cutmix_transfer.cli import (
    CLI_OWN_OPTIONS,
    MMEngineNoteFilter,
    add_cam_arg,
    add_classifier_eval_args,
    add_train_args,
    call_with_options,
    options_for,
    parse_tool_args,
    setup_logging,
)


def test_setup_logging_drops_only_the_pkg_resources_warning():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        setup_logging()
        warnings.warn("pkg_resources is deprecated as an API. See setuptools.pypa.io", UserWarning, stacklevel=1)
        warnings.warn("pkg_resources is deprecated as an API", DeprecationWarning, stacklevel=1)
        warnings.warn("something else is deprecated", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["something else is deprecated"]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_mmengine_notes_are_filtered_and_nothing_else():
    """The real notes, raised by mmengine itself through its current MMLogger."""
    mm = MMLogger.get_instance("test_cli_notes", log_level="DEBUG")  # becomes mmengine's 'current' logger
    records = _Records()
    mm.addHandler(records)
    MMEngineNoteFilter.install(mm)
    MMEngineNoteFilter.install(mm)  # once only
    assert sum(isinstance(f, MMEngineNoteFilter) for f in mm.filters) == 1
    HardDiskBackend()
    FileClient(backend="disk")
    print_log("a real warning", logger="current", level=logging.WARNING)
    assert records.messages == ["a real warning"]
    mm.removeFilter(mm.filters[0])
    HardDiskBackend()
    assert records.messages[-1].startswith('"HardDiskBackend" is the alias of "LocalBackend"')


def _trainer(config, work_dir=None, cfg_options=None, resume=False, seed=None, launcher="none", trust=False):
    """A stand-in with a trainer's parameters (train_detector's `trust` for --trust-checkpoint)."""
    return dict(locals())


def test_train_args_reach_a_trainer_by_name():
    p = argparse.ArgumentParser()
    add_train_args(p, "a config")
    args = p.parse_args(["c.py", "--resume", "--cfg-options", "a.b=1", "--seed", "3", "--trust-checkpoint"])
    assert call_with_options(_trainer, args, trust=args.trust_checkpoint) == {
        "config": "c.py",
        "work_dir": None,
        "cfg_options": {"a.b": 1},
        "resume": True,
        "seed": 3,
        "launcher": "none",
        "trust": True,
    }
    p = argparse.ArgumentParser()
    add_train_args(p, "a config", resume_from_file=True, seed_default=0)
    assert call_with_options(_trainer, p.parse_args(["c.py", "--resume"]))["resume"] == "auto"
    got = call_with_options(_trainer, p.parse_args(["c.py", "--resume", "x.pth", "--work-dir", "w"]))
    assert (got["work_dir"], got["resume"], got["seed"], got["trust"]) == ("w", "x.pth", 0, False)
    with pytest.raises(SystemExit):
        p.parse_args(["c.py", "--launcher", "torchrun"])


@dataclasses.dataclass
class _Config:
    backbone: str
    input_size: int = 224
    progress: bool = True
    derived: int = dataclasses.field(default=0, init=False)


def test_call_with_options_matches_names_and_reports_the_rest(caplog):
    caplog.set_level(logging.DEBUG, logger="cutmix_transfer.cli")
    args = argparse.Namespace(backbone="b.pth", image_size=96, progress=False, derived=5, verbose=True, local_rank=0)
    cfg = call_with_options(_Config, args, input_size=args.image_size)
    assert cfg == _Config("b.pth", 96, False) and cfg.derived == 0  # init=False fields take no option
    assert [r.getMessage() for r in caplog.records] == [
        "_Config: options passed to no parameter by name (read by the tool): derived, image_size"
    ]
    with pytest.raises(TypeError, match=r"_Config has no parameter\(s\) \['image_sise'\]"):
        call_with_options(_Config, args, image_sise=96)

    def only_positional(backbone, /, progress=True):
        return backbone, progress

    with pytest.raises(TypeError, match="missing 1 required positional argument: 'backbone'"):
        call_with_options(only_positional, args)  # a positional-only parameter is not filled by name
    with pytest.raises(TypeError, match=r"only_positional has no parameter\(s\) \['backbone'\]"):
        call_with_options(only_positional, args, backbone="b.pth")

    def forwards(backbone, **options):
        return options

    with pytest.raises(TypeError, match=r"forwards takes \*\*options: match the options against the function"):
        options_for(forwards, args)
    assert options_for(_Config, args, input_size=1) == {"backbone": "b.pth", "input_size": 1, "progress": False}


TOOLS = REPO / "tools"
# The fewest arguments each tool parses; the run stops at its call_with_options / options_for (nothing is read or
# written).
TOOL_ARGV = {
    "make_demo_data": [],
    "ood_eval": ["--backbone", "b.pth", "--ood", "uniform"],
    "report": ["d"],
    "robustness_eval": ["--backbone", "b.pth", "--dataset", "cub", "--standard-form"],
    "test_caption": ["c.py", "k.pth", "--no-meteor"],
    "test_cls": ["--backbone", "b.pth", "--dataset", "cifar10"],
    "test_det": ["c.py", "k.pth"],
    "train_caption": ["c.py"],
    "train_cls": ["c.py"],
    "train_det": ["c.py"],
    "vis_cam": ["--backbone", "b.pth", "x.jpg"],
    "wsol_eval": ["--dataset", "cub", "--no-progress"],
}


class _Called(Exception):
    pass


@pytest.mark.parametrize("tool", sorted(TOOL_ARGV))
def test_every_tool_option_reaches_the_library(tool, monkeypatch):
    """Each option of a tool is a parameter of the library call it makes (matched by name) or is read by the tool
    itself (`args.<name>` in its source): an option a renamed parameter left behind fails here."""
    mod = load_tool(TOOLS / f"{tool}.py", f"cli_test_{tool}")
    seen = {}

    def record(fn, args, /, **overrides):
        seen.update(fn=fn, args=args, overrides=overrides)
        raise _Called

    for helper in ("call_with_options", "options_for"):  # a tool uses one of them
        if hasattr(mod, helper):
            monkeypatch.setattr(mod, helper, record)
    with pytest.raises(_Called):
        mod.main(TOOL_ARGV[tool])
    params = inspect.signature(seen["fn"]).parameters
    source = (TOOLS / f"{tool}.py").read_text()
    left = [
        name
        for name in vars(seen["args"])
        if name not in params and name not in CLI_OWN_OPTIONS and not re.search(rf"\bargs\.{name}\b", source)
    ]
    assert left == [], f"{tool}: options that reach nothing"
    assert set(seen["overrides"]) <= set(params)


def test_inverted_flags_store_the_parameter():
    """--no-progress / --standard-form store progress / wsol_form, as the configs name them."""
    mod = load_tool(TOOLS / "robustness_eval.py", "cli_test_robustness_flags")
    p = mod.build_parser()
    base = ["--backbone", "b.pth", "--dataset", "cub"]
    forms = [p.parse_args(base + extra).wsol_form for extra in ([], ["--wsol"], ["--standard-form"])]
    assert forms == [None, True, False]
    assert (p.parse_args(base).progress, p.parse_args([*base, "--no-progress"]).progress) == (True, False)
    with pytest.raises(SystemExit):
        p.parse_args([*base, "--wsol", "--standard-form"])


def test_classifier_eval_args():
    p = argparse.ArgumentParser()
    add_classifier_eval_args(p, image_size_help="side")
    add_cam_arg(p)
    args = parse_tool_args(p, ["--backbone", "b.pth", "--cam", CAM_METHODS[-1], "-v"])
    assert (
        args.backbone,
        args.arch,
        args.image_size,
        args.device,
        args.seed,
        args.trust_checkpoint,
        args.verbose,
        args.cam,
    ) == ("b.pth", None, 224, "auto", 0, False, True, CAM_METHODS[-1])
    for bad in (["--backbone", "b.pth", "--cam", "nope"], ["--backbone", "b.pth", "--arch", "resnet9"], []):
        with pytest.raises(SystemExit):
            p.parse_args(bad)
