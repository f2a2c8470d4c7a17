"""tools/seed_runs.py: one training command repeated over seeds into <work_dir>/seed_<s>/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutmix_transfer.errors import ConfigError
from cutmix_transfer.seed_runs import plan_seed_runs, run_seeds, seed_work_dir
from tests.helpers import REPO, one_line_error, tool_env

TOOL = REPO / "tools" / "seed_runs.py"
# A stand-in trainer: records its arguments in <work-dir>/argv.json, fails for seed 13.
FAKE_TRAINER = """
import json, pathlib, sys
a = sys.argv[1:]
wd = pathlib.Path(a[a.index('--work-dir') + 1]); wd.mkdir(parents=True, exist_ok=True)
(wd / 'argv.json').write_text(json.dumps(a))
sys.exit(3 if a[a.index('--seed') + 1] == '13' else 0)
"""


def run_seed_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=120
    )


def test_plan_appends_work_dir_and_seed_to_the_command(tmp_path):
    runs = plan_seed_runs(["python", "tools/train_det.py", "cfg.py", "--resume"], [2, 0, 5], tmp_path)
    assert [r.seed for r in runs] == [2, 0, 5]
    for r in runs:
        assert r.work_dir == tmp_path / f"seed_{r.seed}" == seed_work_dir(tmp_path, r.seed)
        assert r.command == ["python", "tools/train_det.py", "cfg.py", "--resume", "--work-dir", str(r.work_dir),
                             "--seed", str(r.seed)]  # fmt: skip


@pytest.mark.parametrize(
    "command, seeds, words",
    [
        ([], [0], "no training command"),
        (["python", "t.py", "--seed", "3"], [0], "sets --seed"),
        (["python", "t.py", "--work-dir=x"], [0], "sets --work-dir"),
        (["python", "t.py"], [0, 0], "distinct"),
        (["python", "t.py"], [-1], "non-negative"),
    ],
)
def test_plan_refuses_what_cannot_work(tmp_path, command, seeds, words):
    with pytest.raises(ConfigError, match=words):
        plan_seed_runs(command, seeds, tmp_path)


def test_runs_go_in_order_and_the_first_failure_stops_naming_the_seed(tmp_path):
    ran = []
    runs = plan_seed_runs(["train"], [0, 1, 2], tmp_path)
    with pytest.raises(ConfigError, match=r"seed 1 failed \(exit 4.*--resume"):
        run_seeds(runs, run=lambda cmd: ran.append(cmd) or (4 if cmd[-1] == "1" else 0), echo=lambda s: None)
    assert [c[-1] for c in ran] == ["0", "1"]  # seed 2 never started


def test_tool_runs_each_seed_into_its_own_work_dir(tmp_path):
    proc = run_seed_tool("--seeds", "0", "1", "--work-dir", str(tmp_path), "--", sys.executable, "-c", FAKE_TRAINER,
                    "cfg.py", "--resume")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for s in (0, 1):
        argv = json.loads((tmp_path / f"seed_{s}" / "argv.json").read_text())
        assert argv == ["cfg.py", "--resume", "--work-dir", str(tmp_path / f"seed_{s}"), "--seed", str(s)]


def test_tool_failure_is_one_line(tmp_path):
    proc = run_seed_tool("--seeds", "13", "--work-dir", str(tmp_path), "--", sys.executable, "-c", FAKE_TRAINER)
    assert proc.returncode == 2
    assert "seed 13 failed (exit 3" in one_line_error(proc)
    assert Path(tmp_path / "seed_13" / "argv.json").exists()
