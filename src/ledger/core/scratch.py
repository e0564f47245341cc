"""One scratch folder per run for every temporary file, and no litter from killed runs.

`run_scratch()` makes `TMPDIR/ledger-run-<pid>-XXXX/` and points Python's `tempfile`
at it for the life of the command, so the run's DuckDB database, its spill files, the
readers' temporary CSVs and the verification's probe workbook all live there. On the
way out (normally, by an error or by Ctrl-C) the folder is removed.

A run killed with SIGKILL cannot clean up, so each scratch folder holds a lock file
(`.lock`) that its run keeps locked (`fcntl.flock`) while it lives; the kernel drops
the lock when the process (and the per-agent workers it forked, which share the lock)
die. Every run first removes the `ledger-run-*` folders whose lock it can take: their
owners are gone. A live run's folder is never touched, also from another container or
pid namespace that shares TMPDIR (the lock is on the file, not on a pid).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ledger.core.errors import LedgerError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, no reaping of stale folders
    fcntl = None

PREFIX = "ledger-run-"
LOCK_NAME = ".lock"


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on `fd` without waiting; False when another holds it."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True


def reap(parent: Path) -> list[Path]:
    """Remove the scratch folders in `parent` whose run is gone; returns them."""
    removed = []
    if fcntl is None:  # pragma: no cover
        return removed
    try:
        candidates = sorted(p for p in Path(parent).iterdir() if p.name.startswith(PREFIX))
    except OSError:
        return removed
    for folder in candidates:
        lock = folder / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            continue  # not ours, or half made: leave it (a live run creates the lock first)
        try:
            if try_lock(fd):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def run_scratch():
    """A locked scratch folder that `tempfile` uses until the block ends; removed after.
    Stale folders of killed runs are removed first."""
    base = Path(tempfile.gettempdir())
    reap(base)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
    except OSError as exc:
        raise LedgerError(f"无法在临时目录 {base} 建立工作文件夹 (cannot create a scratch folder; TMPDIR): "
                          f"{exc.strerror or exc}", exit_code=5) from None
    fd = -1
    previous = tempfile.tempdir
    try:
        # Locked under another name, then renamed: a reaper never sees an unlocked `.lock`.
        fd = os.open(folder / (LOCK_NAME + ".new"), os.O_RDWR | os.O_CREAT, 0o600)
        try_lock(fd)
        os.replace(folder / (LOCK_NAME + ".new"), folder / LOCK_NAME)
        tempfile.tempdir = str(folder)
        yield folder
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)
        if fd >= 0:
            os.close(fd)
