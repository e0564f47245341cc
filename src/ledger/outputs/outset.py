"""A month's output set: one writer at a time, and every file of the set or none.

**One writer.** `writer_lock(out_dir, what)` holds an exclusive `fcntl.flock` on
`<out>/.ledger/lock` for the whole command (`ledger run`, `ledger close`): a second
writer waits up to `LEDGER_LOCK_WAIT` seconds (default 10) and is then refused with
exit code 9 and who holds the lock. The kernel releases the lock when its process
dies, so there is never a stale lock to remove by hand. One lock for the output
folder, not one per month: a run reads every closed month (corrections) and appends
to the register of closed months, so serialising whole runs is the simple safe rule.

**All or nothing.** `staged(out_dir, month)` yields an empty folder
`<out>/.ledger/staging/<month>.new-<pid>` (same file system as the month folder). The
run writes the whole set there (statement, rejected rows, per-agent files, the seal);
on success the files are synced to disk and the folder is swapped in for
`<out>/<month>`:

* on Linux with one `renameat2(RENAME_EXCHANGE)`: the two names trade places
  atomically, so `<out>/<month>` is at every instant either the old complete set or
  the new one; the staging name then holds the old set, which is removed;
* elsewhere (or a file system without it) with two renames: `<month>` →
  `<month>.old-<pid>`, then the new folder → `<month>`, then the old one is removed.

A failure before the swap (an error, ENOSPC, Ctrl-C) removes the staging folder and
leaves `<out>/<month>` as it was. A run killed with SIGKILL leaves its staging folder
behind; the next writer, holding the lock, calls `recover`: if `<out>/<month>` is
missing (killed between the two renames) its `.old-<pid>` folder is renamed back,
and then everything in `.ledger/staging/` is removed. No other process can be using
those folders, since only the lock holder writes there.

Files the user put into the month folder (not the statement, the rejected rows,
`agents/*.xlsx`, `CLOSED` or `closed-entries.tsv`) are carried into the new set (hard
links, or copies), so a rerun never deletes a note kept beside the statement.
Leftover `.*.tmp` files of older versions are not carried over.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from ledger.core.errors import LedgerError
from ledger.core.scratch import try_lock

STATE = ".ledger"
LOCK = "lock"
STAGING = "staging"
EXIT_BUSY = 9
EXIT_WRITE = 5
WAIT_ENV = "LEDGER_LOCK_WAIT"
DEFAULT_WAIT = 10.0
PAUSE_ENV = "LEDGER_TEST_PAUSE"  # tests only: see pause_point
OWNED = ("rejected-rows.csv", "CLOSED", "closed-entries.tsv")  # + the statement, agents/*.xlsx


def state_dir(out_dir: Path) -> Path:
    return Path(out_dir) / STATE


# --------------------------------------------------------------------- the lock


def lock_wait() -> float:
    text = os.environ.get(WAIT_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else DEFAULT_WAIT
    except ValueError:
        return DEFAULT_WAIT


@contextlib.contextmanager
def writer_lock(out_dir: Path, what: str, wait: float | None = None):
    """Hold the output folder's writer lock for the block (see the module docstring);
    stale staging folders of killed runs are cleaned up once it is held. Yields True,
    or False when the folder is read-only (nothing can be written there, so there is
    nothing to protect; verifying a closed month still works).

    A command that fails before writing anything (a policy error) into an output folder
    it created leaves no folder behind: the lock file and folders are removed, while
    the lock is held. A waiter that then gets the lock on the removed file sees that
    its file is no longer the one at the path, and locks the new one."""
    wait = lock_wait() if wait is None else wait
    folder = state_dir(out_dir)
    created = not Path(out_dir).exists()
    deadline = time.monotonic() + wait
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                yield False
                return
            raise LedgerError(write_failure(exc, ""), exit_code=EXIT_WRITE) from None
        try:
            while not try_lock(fd):
                if time.monotonic() >= deadline:
                    raise LedgerError(
                        f"另一个 ledger 正在写 {out_dir}（{_holder(fd)}），等了 {wait:g} 秒仍未结束；请等它结束后再运行 "
                        f"(another ledger command is writing this output folder)", exit_code=EXIT_BUSY)
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, folder / LOCK):
            break
        os.close(fd)  # its holder removed the file: lock the one at the path now
    try:
        note = f"pid {os.getpid()} · {what} · 开始于 {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}"
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, note.encode("utf-8"), 0)
        recover(out_dir)
        yield True
    finally:
        if created:
            _remove_if_unused(Path(out_dir))
        os.close(fd)  # releases the lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def _remove_if_unused(out_dir: Path) -> None:
    """Remove an output folder that holds nothing but the lock and an empty staging
    folder (call with the lock held)."""
    state = state_dir(out_dir)
    with contextlib.suppress(OSError):
        if sorted(p.name for p in out_dir.iterdir()) != [STATE]:
            return
        if sorted(p.name for p in state.iterdir()) not in ([LOCK], sorted([LOCK, STAGING])):
            return
        if (state / STAGING).is_dir():
            (state / STAGING).rmdir()
        (state / LOCK).unlink()
        state.rmdir()
        out_dir.rmdir()


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = os.pread(fd, 400, 0).decode("utf-8").strip()
        if text:
            return text
    return "进程未知 (unknown process)"


def recover(out_dir: Path) -> list[str]:
    """Clean up after killed writers (call with the lock held): a month folder moved
    aside and never replaced is moved back; every staging folder is removed. Returns
    what was done, one line each (for tests and logs)."""
    staging = state_dir(out_dir) / STAGING
    if not staging.is_dir():
        return []
    done = []
    entries = sorted(staging.iterdir(), key=lambda p: p.name)
    aside: dict[str, list[Path]] = {}
    for p in entries:
        if ".old-" in p.name:
            aside.setdefault(p.name.rsplit(".old-", 1)[0], []).append(p)
    for month, folders in sorted(aside.items()):
        target = Path(out_dir) / month
        if not target.exists() and not target.is_symlink():
            latest = max(folders, key=lambda p: (p.stat().st_mtime_ns, p.name))
            os.rename(latest, target)
            done.append(f"restored {month} from {latest.name}")
    for p in sorted(staging.iterdir(), key=lambda p: p.name):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        done.append(f"removed {p.name}")
    return done


# ------------------------------------------------------------ staging and swap


@contextlib.contextmanager
def staged(out_dir: Path, month: str, statement_name: str):
    """Yield an empty folder to write the month's whole set into; swap it in for
    `<out>/<month>` when the block succeeds, remove it when it fails. An OSError
    (disk full, file too large, permissions) becomes one line with exit code 5."""
    target = Path(out_dir) / month
    root = state_dir(out_dir) / STAGING
    new = root / f"{month}.new-{os.getpid()}"
    old = root / f"{month}.old-{os.getpid()}"
    try:
        try:
            root.mkdir(parents=True, exist_ok=True)
            for leftover in (new, old):  # same pid as a killed run: recover() ran, but be sure
                if leftover.exists():
                    shutil.rmtree(leftover)
            new.mkdir()
            yield new
            carry_over(target, new, statement_name)
            sync_tree(new)
            swap(new, target, old)
            sync_dir(Path(out_dir))
        finally:
            for leftover in (new, old):
                shutil.rmtree(leftover, ignore_errors=True)
    except OSError as exc:
        raise LedgerError(write_failure(exc, month), exit_code=EXIT_WRITE) from None


def write_failure(exc: OSError, month: str) -> str:
    """One line for a failed write: why, where, and that the previous set is intact (for
    the month being written; `month` "" for a failure outside the set, e.g. a temporary
    file, where no output was touched)."""
    where = f"：{exc.filename}" if exc.filename else ""
    kept = (f"；输出没有写完，{month} 上一次的输出保持原样 (previous output kept)" if month
            else "；没有改动任何输出 (no output changed)")
    if exc.errno == errno.ENOSPC:
        return f"磁盘空间不足 (no space left on device){where}{kept}"
    if exc.errno == errno.EDQUOT:
        return f"磁盘配额已用完 (disk quota exceeded){where}{kept}"
    if exc.errno == errno.EFBIG:
        return f"文件超过允许的大小，可能是 ulimit -f (file too large){where}{kept}"
    return f"无法写入输出 (cannot write output): {exc.strerror or exc}{where}{kept}"


def swap(new: Path, target: Path, old: Path) -> None:
    """Put the folder `new` in the place of `target` (see the module docstring); after
    it, the previous set (if any) is at `new` or at `old`."""
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return
    if exchange(new, target):
        return
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # an old C library without renameat2
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_EXCHANGE = _renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux renameat2 RENAME_EXCHANGE). False when
    the system or the file system cannot (the caller then uses two renames)."""
    if _EXCHANGE is None:
        return False
    if _EXCHANGE(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def carry_over(target: Path, new: Path, statement_name: str) -> None:
    """Bring the user's own files from the old month folder into the new set."""
    if not target.is_dir():
        return
    owned = set(OWNED) | {statement_name}
    for entry in sorted(target.iterdir(), key=lambda p: p.name):
        if entry.name in owned or _litter(entry.name):
            continue
        if entry.name == "agents" and entry.is_dir() and not entry.is_symlink():
            for sub in sorted(entry.iterdir(), key=lambda p: p.name):
                if not sub.name.lower().endswith(".xlsx") and not _litter(sub.name):
                    (new / "agents").mkdir(exist_ok=True)
                    _carry(sub, new / "agents" / sub.name)
            continue
        _carry(entry, new / entry.name)


def _litter(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _carry(src: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        return  # the run wrote a file of that name itself
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(src, dst)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def sync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder` (a power cut after the swap must not
    leave empty files behind a renamed folder). The files are synced by SYNC_THREADS
    threads at once (fsync lets go of the GIL, and the file system commits concurrent
    syncs together: a team's thousand per-agent files took seconds one by one), then the
    folders, deepest first. The first failure is raised once all have ended."""
    files, folders = [], []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.is_symlink():
            files.append(path)
        elif path.is_dir() and not path.is_symlink():
            folders.append(path)
    if len(files) > 1:
        with ThreadPoolExecutor(min(SYNC_THREADS, len(files))) as pool:
            for _ in pool.map(sync_file, files):  # raises the first error, in order
                pass
    elif files:
        sync_file(files[0])
    for path in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        sync_dir(path)
    sync_dir(Path(folder))


SYNC_THREADS = 16


def sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(folder: Path) -> None:
    if os.name == "posix":  # folders cannot be opened for fsync elsewhere
        sync_file(folder)


# ------------------------------------------------------------------ test hook


def pause_point(where: str) -> None:
    """Tests only: with LEDGER_TEST_PAUSE=<file>, append "<where> <pid>" to the file and
    wait until `<file>.go` exists (at most two minutes), so a test can kill the run or
    start a second one at this exact point. Without the variable: nothing."""
    path = os.environ.get(PAUSE_ENV, "")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{where} {os.getpid()}\n")
    deadline = time.monotonic() + 120
    while not os.path.exists(path + ".go") and time.monotonic() < deadline:
        time.sleep(0.05)
