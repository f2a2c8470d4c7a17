"""Atomic writes: the file appears whole or not at all, with the permissions open() would give it."""

from __future__ import annotations

import os
import stat

import pytest

from cutmix_transfer.io import atomic_write_json, atomic_write_text


def test_atomic_write_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.txt", "y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert target.read_text() == '{\n  "ok": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
