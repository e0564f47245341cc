"""The register of closed months, kept apart from the month folders.

`<out>/.ledger/closed-months.txt` gets one line per month closed, appended by `ledger
close` after the month's set (with `CLOSED` and `closed-entries.tsv`) is in place:

    2024-05 seal=<sha256 of closed-entries.tsv> closed=<sha256 of CLOSED> at=2024-06-03 10:02:11 UTC

The `seal` digest is also printed on the closed month's statement (说明 sheet:
结账校验码), so HR holds it on paper or in the mailbox. Every run checks the months it
relies on against this register (`sealed`):

* a month in the register whose `CLOSED` is gone (deleted, renamed) is still closed:
  running it is refused, and so is running a later month (its corrections need the
  seal), with one line saying what is missing;
* `closed-entries.tsv` or `CLOSED` whose sha256 differs from the register (edited,
  even with the digests inside `CLOSED` recomputed) is refused the same way, so an
  edited snapshot can never produce a silent 上月更正;
* a month with `CLOSED` but no register line (closed by an older version, or a close
  killed after the swap and before the append) is used as before, with a warning;
  `ledger close` on it verifies and then registers it.

What it does not do: the register is a plain file in the output folder. Someone who
edits a snapshot, recomputes the digests in `CLOSED` and rewrites the register line can
pass every local check; only the 结账校验码 on the statement HR already received then
differs from `ledger close`'s (docs/closing-and-adjustments.md says how to compare).

A torn last line (no newline at the end: a write cut off by a crash or a full disk) is
ignored; any other line that is not understood is an error: the register is written
only by ledger.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import attrs

from ledger.core.errors import LedgerError
from ledger.outputs.outset import state_dir
from ledger.period import close

REGISTER = "closed-months.txt"
_LINE = re.compile(r"(\d{4}-\d{2}) seal=([0-9a-f]{64}) closed=([0-9a-f]{64}) at=(.+)")
_HEADER = "# ledger 已结账月份登记簿 (register of closed months)。只由 ledger close 追加；请勿修改。\n"


@attrs.frozen
class Registered:
    month: str
    seal: str  # sha256 of closed-entries.tsv (the 结账校验码 on the statement)
    closed: str  # sha256 of CLOSED
    at: str


def path(out_dir: Path) -> Path:
    return state_dir(out_dir) / REGISTER


def read(out_dir: Path) -> dict[str, Registered]:
    """Month -> its register line (the last one when a month was closed again after
    someone reopened it by hand)."""
    p = path(out_dir)
    if p.is_symlink() or (p.exists() and not p.is_file()):
        raise LedgerError(f"结账登记簿不是普通文件 (register of closed months is not a file): {p}",
                          exit_code=close.EXIT_CLOSED_CHANGED)
    if not p.exists():
        return {}
    try:
        text = p.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"无法读取结账登记簿 (cannot read the register of closed months): {p}: {exc}",
                          exit_code=close.EXIT_CLOSED_CHANGED) from None
    lines = text.split("\n")[:-1]  # the last piece is "" or a torn append: ignored
    out: dict[str, Registered] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line.rstrip("\r"))
        if m is None:
            raise LedgerError(f"{p}:{n}: 结账登记簿这一行看不懂 (bad line in the register of closed months): "
                              f"{line[:80]!r}", exit_code=close.EXIT_CLOSED_CHANGED)
        out[m.group(1)] = Registered(*m.groups())
    return out


def append(out_dir: Path, month: str, seal: str, closed_sha: str) -> None:
    """Add a month's line (fsynced; a torn last line is closed first)."""
    p = path(out_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    line = f"{month} seal={seal} closed={closed_sha} at={at}\n"
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        size = os.fstat(fd).st_size
        prefix = ""
        if size == 0:
            prefix = _HEADER
        elif os.pread(fd, 1, size - 1) != b"\n":
            prefix = "\n"
        os.write(fd, (prefix + line).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sealed(out_dir: Path, month: str, registered: dict[str, Registered] | None = None
           ) -> tuple[close.Record | None, bool]:
    """(the month's CLOSED record or None, whether the register knows it), after checking
    the seal against the register. Raises LedgerError (exit 6), one line, when the
    register says closed and `CLOSED` is missing, or when `CLOSED` or the snapshot
    differs from what the register holds."""
    registered = read(out_dir) if registered is None else registered
    folder = Path(out_dir) / month
    record = close.read_record(folder)
    entry = registered.get(month)
    if record is None:
        if entry is not None:
            raise LedgerError(
                f"{month} 已结账（登记在 {path(out_dir)}，结账校验码 {entry.seal}），但 {folder / close.CLOSED} 不见了："
                f"已结账的月份不会重新出账。请从备份恢复 {month} 的 CLOSED 和 {close.SNAPSHOT} "
                f"(month is closed but its seal is missing)", exit_code=close.EXIT_CLOSED_CHANGED)
        return None, False
    snapshot = folder / close.SNAPSHOT
    if not snapshot.is_file() or close.file_sha(snapshot) != record.hashes("entries").get(close.SNAPSHOT, ""):
        raise LedgerError(f"{month} 的结账明细 {snapshot} 不见了或被改动过 (snapshot missing or modified)",
                          exit_code=close.EXIT_CLOSED_CHANGED)
    if entry is None:
        return record, False
    problems = []
    if close.file_sha(folder / close.CLOSED) != entry.closed:
        problems.append(f"{folder / close.CLOSED} 与结账时不同 (CLOSED changed since close)")
    if not snapshot.is_file() or close.file_sha(snapshot) != entry.seal:
        problems.append(f"{snapshot} 与结账时不同或不见了 (snapshot changed or missing)")
    if problems:
        raise LedgerError(f"{month} 的结账记录与登记簿不符，可能被改动过：{'；'.join(problems)}；"
                          f"结账校验码应为 {entry.seal}（见 HR 手中账单的说明表）。请从备份恢复这两个文件",
                          exit_code=close.EXIT_CLOSED_CHANGED)
    return record, True


def closed_months(out_dir: Path, before: str) -> list[str]:
    """Months before `before` that are closed (a CLOSED record or a register line), oldest
    first; each checked against the register (`sealed`)."""
    registered = read(out_dir)
    months = set(close.closed_months(out_dir, before)) | {m for m in registered if m < before}
    for month in sorted(months):
        sealed(out_dir, month, registered)
    return sorted(months)


def unregistered_warning(out_dir: Path, months: list[str], registered: dict[str, Registered] | None = None
                         ) -> list[str]:
    registered = read(out_dir) if registered is None else registered
    return [f"{m} 有结账记录 CLOSED，但不在结账登记簿 {path(out_dir)} 里（旧版本结账，或结账中途被中断）："
            f"请核对后运行 ledger close {m} 登记 (closed month not in the register)"
            for m in months if m not in registered]
