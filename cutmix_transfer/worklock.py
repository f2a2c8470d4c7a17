"""One run per work dir: an exclusive OS lock on `<work_dir>/run.lock`, and temporary files named after their writer.

Two runs in one work dir (a second run started by mistake, or `--resume` while ranks of a killed launcher still
train) write the same checkpoints, and one renames or deletes the other's temporary file. Every trainer therefore
takes `fcntl.flock(LOCK_EX | LOCK_NB)` on the lock file before it writes anything there (under torchrun, rank 0
does; runner.apply_run_options) and holds it until the process ends. The kernel drops the lock when the holder dies,
so a `kill -9` leaves no stale lock; a second run fails at once with `WorkDirBusyError`, which names the holder's pid
and host (the lock file's content). The lock file itself is never deleted: a run that unlinked it could take a new
lock beside a live holder. Where the file system cannot lock, one warning says so and the run goes on unlocked.

Temporary files (`temp_name`, io.atomic_write_bytes) carry `<host>@<pid>` of their writer, so that the clean-up at
start (`remove_orphaned_temps`) removes only those whose writer is gone, and an error path removes only its own.

Imports nothing heavy (no torch, numpy or mmengine), so that `python -I cutmix_transfer/worklock.py check DIR`, the
check tools/dist_train.sh runs before it starts torchrun, takes milliseconds (`-m cutmix_transfer.worklock` works
too, but imports the package and with it torch).
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

try:
    from .errors import ConfigError
except ImportError:  # run as a file (tools/dist_train.sh's check: no package import, so no torch): any base will do
    ConfigError = RuntimeError  # type: ignore[assignment,misc]

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)
LOCK_FILE = "run.lock"
# errnos that mean "this file system (or OS) cannot lock", as opposed to "someone holds the lock"
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
# .<name>.<host>@<pid>[.<mkstemp's random part>].tmp ('@' is in no host name part, so the split is unambiguous)
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)@(?P<pid>\d+)(?:\.[A-Za-z0-9_]+)?\.tmp$")


class WorkDirBusyError(ConfigError):
    """Another live process holds the work dir's lock."""


def host_name() -> str:
    """This machine's name with every character outside [A-Za-z0-9-] replaced by '-' (a dot-free file name part)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "localhost"


def writer_tag() -> str:
    """`<host>@<pid>` of this process: the part of a temporary file's name that says who writes it."""
    return f"{host_name()}@{os.getpid()}"


def temp_name(name: str) -> str:
    """The hidden temporary name this process writes `name` under before renaming it: `.<name>.<host>@<pid>.tmp`."""
    return f".{name}.{writer_tag()}.tmp"


def temp_writer(name: str) -> tuple[str, int] | None:
    """(host, pid) of the writer a temporary file's name records; None for a name that records none."""
    m = _TEMP_RE.match(name)
    return (m["host"], int(m["pid"])) if m else None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine and is not a zombie (a zombie writes nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_orphaned_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the hidden `*.tmp` files in `folder` whose writer (host and pid in the name) is a process of this host
    that is gone; -> the removed paths. A temporary file of a live process, of another host, or without a writer in
    its name is left alone (logged): it may be another run's file."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    here = host_name()
    for path in sorted(folder.iterdir()):
        if not (path.name.startswith(".") and path.name.endswith(".tmp")) or not path.is_file():
            continue
        writer = temp_writer(path.name)
        if writer is None or writer[0] != here:
            logger.warning("left %s alone: its name does not say which process of this host writes it", path)
        elif pid_alive(writer[1]):
            logger.warning("left %s alone: its writer, pid %d, is still running", path, writer[1])
        else:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
            logger.info("removed %s, left by pid %d (gone) while writing it", path, writer[1])
    return removed


# ------------------------------------------------------------------------------------------------- the lock
def _read_holder(fd: int) -> dict[str, Any]:
    """The holder's record from the lock file (pid, host, started, command); {} while it is being written."""
    for _ in range(10):  # the holder writes its record just after it got the lock
        try:
            data = os.pread(fd, 65536, 0)
            if data.strip():
                return json.loads(data)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def busy_message(work_dir: str | os.PathLike, holder: dict[str, Any]) -> str:
    """The one line a second run prints: the work dir, who holds it and how to check."""
    lock = Path(work_dir) / LOCK_FILE
    pid, host = holder.get("pid", "?"), holder.get("host", "?")
    since = f", since {holder['started']}" if holder.get("started") else ""
    return (
        f"work dir {work_dir} is in use by another run: pid {pid} on host {host} holds {lock}{since}. "
        f"Check it with `ps -p {pid}` on {host} (and its workers with `ps -s {pid}`); wait for it to end or stop "
        f"it, then run again, or pass another --work-dir. Do not delete {lock}."
    )


class WorkDirLock:
    """An exclusive flock on `<work_dir>/run.lock` held by this process (`locked` False: the OS cannot lock there)."""

    def __init__(self, work_dir: Path, fd: int | None) -> None:
        self.work_dir, self.fd = work_dir, fd

    @property
    def locked(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        """Drop the lock (closing the file releases it); the lock file stays."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


_HELD: dict[str, WorkDirLock] = {}  # realpath of the work dir -> this process's lock on it


def _close_in_child() -> None:
    """After fork: the child (a DataLoader worker) closes its copies of the lock fds. With flock that does not release
    the parent's lock, and a child that outlives its parent then holds no lock nobody can name."""
    for lock in _HELD.values():
        if lock.fd is not None:
            try:
                os.close(lock.fd)
            except OSError:
                pass
            lock.fd = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def acquire_work_dir(work_dir: str | os.PathLike) -> WorkDirLock:
    """Create `work_dir` if needed and take its lock for this process (a second call from this process returns the
    same lock). WorkDirBusyError (one line: holder pid, host, how to check) when another process holds it; a
    warning and an unlocked WorkDirLock where the file system cannot lock."""
    work = Path(work_dir)
    key = os.path.realpath(work)
    if key in _HELD and _HELD[key].locked:
        return _HELD[key]
    work.mkdir(parents=True, exist_ok=True)
    lock_path = work / LOCK_FILE
    if fcntl is None:
        logger.warning("cannot lock %s (no fcntl on this OS): going on unlocked; start no second run there", work)
        return WorkDirLock(work, None)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise WorkDirBusyError(busy_message(work, holder)) from None
    except OSError as e:
        os.close(fd)
        if e.errno in _NO_LOCKING:
            logger.warning("cannot lock %s (%s): going on unlocked; start no second run there", lock_path, e.strerror)
            return WorkDirLock(work, None)
        raise
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
    lock = _HELD[key] = WorkDirLock(work, fd)
    logger.info("holding %s for this run (pid %d)", lock_path, os.getpid())
    return lock


def release_work_dir(work_dir: str | os.PathLike) -> None:
    """Drop this process's lock on `work_dir` (for callers that run several trainings in one process)."""
    lock = _HELD.pop(os.path.realpath(Path(work_dir)), None)
    if lock is not None:
        lock.release()


def check_work_dir(work_dir: str | os.PathLike) -> None:
    """WorkDirBusyError when a live process holds `work_dir`'s lock; writes nothing (no folder or file is created)."""
    lock_path = Path(work_dir) / LOCK_FILE
    if fcntl is None or not lock_path.is_file():
        return
    fd = os.open(lock_path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkDirBusyError(busy_message(work_dir, _read_holder(fd))) from None
        except OSError:
            return  # cannot lock: the run itself will say so
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    """`python cutmix_transfer/worklock.py check DIR`: exit 0 when DIR is free, else the one line and exit 2."""
    if len(argv) != 2 or argv[0] != "check":
        print("usage: python cutmix_transfer/worklock.py check WORK_DIR", file=sys.stderr)
        return 2
    try:
        check_work_dir(argv[1])
    except WorkDirBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
