"""One run per work dir (issue 22): the OS lock on <work_dir>/run.lock, the one-line refusal, the temporary files that
name their writer, and ranks that stop when their launcher dies.

The holders are real processes (subprocesses of this test); a refusal is checked against their pid, this host's name
and the work dir's files before and after, read independently of the library.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import pytest

from cutmix_transfer import io as cio
from cutmix_transfer import worklock
from cutmix_transfer.worklock import (
    WorkDirBusyError,
    acquire_work_dir,
    release_work_dir,
    remove_orphaned_temps,
    temp_name,
    temp_writer,
)

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())  # the host part of a temporary file's name

# A process that takes the lock on argv[1], says "held <pid>" and waits; with argv[2] == "fork-then-exit" it forks a
# child that sleeps (as a DataLoader worker would) and exits at once itself, printing the child's pid.
_HOLDER = """
import os, sys, time
from cutmix_transfer.worklock import acquire_work_dir
acquire_work_dir(sys.argv[1])
if len(sys.argv) > 2:
    child = os.fork()
    if child == 0:
        time.sleep(600)
        os._exit(0)
    print("child", child, flush=True)
    os._exit(0)
print("held", os.getpid(), flush=True)
time.sleep(600)
"""


def _holder(work: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(work), *extra], env=ENV, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    assert line, "the holder process ended before it took the lock"
    return proc, line.split()[1]


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(folder)): (st.st_ino, st.st_size, st.st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        for st in [p.lstat()]
    }


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_second_run_is_refused_in_one_line_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    work = tmp_path / "wd"
    proc, pid = _holder(work)
    try:
        before = _snapshot(work)
        t0 = time.monotonic()
        with pytest.raises(WorkDirBusyError) as err:
            acquire_work_dir(work)
        assert time.monotonic() - t0 < 5  # it fails, it does not wait
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"work dir {work} is in use by another run")
        assert f"pid {pid} on host {socket.gethostname()}" in msg and f"ps -p {pid}" in msg
        assert _snapshot(work) == before  # the refused attempt changed nothing, the holder's record included
        record = json.loads((work / "run.lock").read_text())
        assert record["pid"] == int(pid) and record["host"] == socket.gethostname()
    finally:
        proc.kill()
        proc.wait()
    lock = acquire_work_dir(work)  # the kernel dropped the dead holder's lock: nothing stale
    try:
        assert lock.locked and json.loads((work / "run.lock").read_text())["pid"] == os.getpid()
        assert acquire_work_dir(work) is lock  # a second call in the holding process is the same lock
    finally:
        release_work_dir(work)
    acquire_work_dir(work)  # released: free again
    release_work_dir(work)


def test_a_forked_child_does_not_keep_the_lock_after_its_parent_died(tmp_path):
    work = tmp_path / "wd"
    proc, child = _holder(work, "fork-then-exit")
    proc.wait()
    try:
        assert not _gone(int(child))  # the child (a loader worker, say) lives on ...
        acquire_work_dir(work)  # ... but holds no lock
        release_work_dir(work)
    finally:
        os.kill(int(child), signal.SIGKILL)


def test_the_check_command_writes_nothing_and_says_who_holds_the_work_dir(tmp_path):
    free = tmp_path / "free"
    check = [sys.executable, "-I", str(REPO / "cutmix_transfer" / "worklock.py"), "check"]  # as dist_train.sh runs it
    res = subprocess.run([*check, str(free)], env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and not free.exists()  # no folder, no lock file created
    work = tmp_path / "held"
    acquire_work_dir(work)
    try:
        before = _snapshot(work)
        res = subprocess.run([*check, str(work)], env=ENV, capture_output=True, text=True, timeout=300)
        assert res.returncode == 2 and _snapshot(work) == before
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith(f"error: work dir {work} is in use") and f"pid {os.getpid()} " in line
    finally:
        release_work_dir(work)


def test_where_the_file_system_cannot_lock_one_warning_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(worklock.fcntl, "flock", no_locks)
    with caplog.at_level(logging.WARNING, logger="cutmix_transfer.worklock"):
        lock = acquire_work_dir(tmp_path / "nfs")
    assert not lock.locked
    (record,) = caplog.records
    assert "cannot lock" in record.getMessage() and "No locks available" in record.getMessage()
    assert "\n" not in record.getMessage()


def test_temporary_files_name_their_writer_and_only_those_of_dead_writers_are_removed(tmp_path, monkeypatch):
    assert temp_name("epoch_3.pth") == f".epoch_3.pth.{HOST}@{os.getpid()}.tmp"
    assert temp_writer(temp_name("epoch_3.pth")) == (HOST, os.getpid())
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(cio.os, "replace", lambda a, b: (renamed.append(Path(a).name), real_replace(a, b)))
    cio.atomic_write_json(tmp_path / "results.json", {"a": 1})
    assert re.fullmatch(rf"\.results\.json\.{re.escape(HOST)}@{os.getpid()}\.[a-z0-9_]+\.tmp", renamed[0])
    assert temp_writer(renamed[0]) == (HOST, os.getpid())
    monkeypatch.undo()

    done = subprocess.Popen(["true"])
    done.wait()  # a pid that no process has now
    files = {
        "dead": f".epoch_2.pth.{HOST}@{done.pid}.tmp",
        "dead_mkstemp": f".results.json.{HOST}@{done.pid}.k3x_9q1z.tmp",
        "alive": f".epoch_2.pth.{HOST}@{os.getpid()}.tmp",
        "other_host": f".epoch_2.pth.{HOST}x@{done.pid}.tmp",
        "no_writer": ".epoch_2.pth.tmp",
        "not_hidden": f"epoch_2.pth.{HOST}@{done.pid}.tmp",
    }
    for name in files.values():
        (tmp_path / name).write_bytes(b"partial")
    removed = remove_orphaned_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted([files["dead"], files["dead_mkstemp"]])
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"results.json", *(files[k] for k in ("alive", "other_host", "no_writer", "not_hidden"))}


def test_a_failed_checkpoint_write_removes_its_own_file_and_no_other(tmp_path):
    from mmengine.fileio.backends import LocalBackend
    from mmengine.logging import MessageHub

    from cutmix_transfer.runner import AtomicCheckpointHook

    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=1)
    hook.out_dir, hook.file_backend, hook.keep_ckpt_ids = str(tmp_path), LocalBackend(), deque()
    other = tmp_path / f".epoch_2.pth.{HOST}@1.tmp"  # another process's write of the same checkpoint (pid 1: alive)
    other.write_bytes(b"someone else's bytes")

    def save_checkpoint(out_dir, filename, *args, **kwargs):
        assert filename == f".epoch_2.pth.{HOST}@{os.getpid()}.tmp"
        (Path(out_dir) / filename).write_bytes(b"partial")
        raise KeyboardInterrupt("killed during save")

    runner = SimpleNamespace(
        save_checkpoint=save_checkpoint, work_dir=str(tmp_path), message_hub=MessageHub.get_instance("test_worklock")
    )
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 2, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]  # ours removed, theirs untouched
    assert other.read_bytes() == b"someone else's bytes"


# A rank under a launcher: the launcher (argv[1] == "launcher") starts the rank (TORCHELASTIC_RUN_ID set, as torchrun
# does) and prints its pid; the rank watches its parent, without the kernel's parent-death signal when argv[2] says
# so (the fallback: the watchdog thread), creates the file argv[4] and waits.
_LAUNCHED = """
import os, subprocess, sys, time
if sys.argv[1] == "launcher":
    env = dict(os.environ, TORCHELASTIC_RUN_ID="test")
    cmd = [sys.executable, "-c", sys.argv[3], "rank", sys.argv[2], "", sys.argv[4]]
    rank = subprocess.Popen(cmd, env=env, start_new_session=True)
    print(rank.pid, flush=True)
    time.sleep(600)
else:
    import cutmix_transfer.distributed as d
    if sys.argv[2] == "watchdog":
        d._set_parent_death_signal = lambda: False
    assert d.watch_launcher("pytorch", poll_s=0.2) == os.getppid()
    open(sys.argv[4], "w").close()
    time.sleep(600)
"""


@pytest.mark.parametrize("how", ["pdeathsig", "watchdog"])
def test_a_rank_ends_within_seconds_of_its_launchers_death(tmp_path, how):
    log, ready = tmp_path / "rank.log", tmp_path / "ready"
    with open(log, "w") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHED, "launcher", how, _LAUNCHED, str(ready)],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )
    rank = int(launcher.stdout.readline())
    deadline = time.monotonic() + 300
    while not ready.exists():
        assert time.monotonic() < deadline and not _gone(rank), f"the rank did not start: {log.read_text()[-2000:]}"
        time.sleep(0.05)
    launcher.kill()
    launcher.wait()
    t0 = time.monotonic()
    while not _gone(rank):
        assert time.monotonic() - t0 < 10, f"the rank (pid {rank}) outlived its launcher by 10 s ({how})"
        time.sleep(0.02)
    if how == "watchdog":
        assert f"the launcher (pid {launcher.pid}) is gone" in log.read_text()


def test_a_rank_whose_launcher_died_before_it_started_stops_at_once():
    code = "import cutmix_transfer.distributed as d; d.watch_launcher('pytorch'); print('went on')"
    env = dict(ENV, CUTMIX_LAUNCHER_PID=str(os.getpid() + 1))  # the child's parent is this process, not that pid
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == -signal.SIGKILL and "went on" not in res.stdout
    assert "is gone before this rank started" in res.stderr


TRAINERS = [
    ("train_cls.py", "configs/cls/demo_cutmix.py"),
    ("train_det.py", "configs/voc_faster_rcnn_demo.py", "--backbone", "missing.pth"),
    ("train_caption.py", "configs/caption/nic_demo.py"),
]


@pytest.mark.parametrize("tool", TRAINERS, ids=[t[0] for t in TRAINERS])
def test_every_trainer_refuses_a_busy_work_dir_in_one_line_and_writes_nothing(tmp_path, tool):
    work = tmp_path / "wd"
    acquire_work_dir(work)
    try:
        (work / "epoch_1.pth").write_bytes(b"the holder's checkpoint")
        before = _snapshot(work)
        cmd = [sys.executable, str(REPO / "tools" / tool[0]), str(REPO / tool[1]), *tool[2:], "--work-dir", str(work)]
        res = subprocess.run([*cmd, "--resume"], env=ENV, capture_output=True, text=True, timeout=600)
        assert res.returncode == 2, res.stderr[-3000:]
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith(f"error: work dir {work} is in use") and f"pid {os.getpid()} " in line
        assert _snapshot(work) == before
    finally:
        release_work_dir(work)


@pytest.mark.slow
def test_under_torchrun_every_rank_refuses_a_busy_work_dir_before_writing(tmp_path):
    """torchrun without tools/dist_train.sh (no check before the launch): rank 0 finds the lock taken, every rank
    learns it through the process group and stops; nothing in the work dir changes."""
    work = tmp_path / "wd"
    acquire_work_dir(work)
    try:
        before = _snapshot(work)
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(REPO / "tools" / "train_cls.py"),
            str(REPO / "configs" / "cls" / "demo_cutmix.py"),
            "--launcher",
            "pytorch",
            "--work-dir",
            str(work),
        ]
        res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
        assert res.returncode != 0
        refusals = [ln for ln in res.stderr.splitlines() if ln.startswith(f"error: work dir {work} is in use")]
        # rank 0's line, and rank 1's unless torchrun ended it first (it stops a run when one rank fails)
        assert 1 <= len(refusals) <= 2, res.stderr[-3000:]
        assert _snapshot(work) == before
    finally:
        release_work_dir(work)
