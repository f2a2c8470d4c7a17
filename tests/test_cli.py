"""What the tools share (cli.py): the common options, and a quiet start-up that hides only the known upstream
notes (setuptools' pkg_resources warning, mmengine's FileClient / HardDiskBackend notes)."""

from __future__ import annotations

import argparse
import logging
import warnings

import pytest
from mmengine.fileio import FileClient
from mmengine.fileio.file_client import HardDiskBackend
from mmengine.logging import MMLogger, print_log

from cutmix_transfer.cam import CAM_METHODS
from cutmix_transfer.cli import (
    add_cam_arg,
    add_classifier_eval_args,
    add_train_args,
    parse_tool_args,
    setup_logging,
    train_options,
)
from cutmix_transfer.runner import MMEngineNoteFilter


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


def test_train_args_and_options():
    p = argparse.ArgumentParser()
    add_train_args(p, "a config")
    args = p.parse_args(["c.py", "--resume", "--cfg-options", "a.b=1", "--seed", "3"])
    assert train_options(args) == {
        "work_dir": None,
        "cfg_options": {"a.b": 1},
        "resume": True,
        "seed": 3,
        "launcher": "none",
    }
    p = argparse.ArgumentParser()
    add_train_args(p, "a config", resume_from_file=True, seed_default=0)
    assert train_options(p.parse_args(["c.py", "--resume"]))["resume"] == "auto"
    assert train_options(p.parse_args(["c.py", "--resume", "x.pth", "--work-dir", "w"])) == {
        "work_dir": "w",
        "cfg_options": None,
        "resume": "x.pth",
        "seed": 0,
        "launcher": "none",
    }
    with pytest.raises(SystemExit):
        p.parse_args(["c.py", "--launcher", "torchrun"])


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
