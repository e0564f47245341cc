"""Decisions made in the desk, written where a person would write them.

`decide(workspace, month, decision)` appends one line to `adjustments/<month>.txt` in the
syntax of `period.adjustments` — exactly what a supervisor would type:

    confirm E836813EFB0C9 "看过聊天记录，确属顶撞"
    waive E836813EFB0C9 "买家先出言不逊"
    dispute E042B9E906020 upheld "聊天记录证明确有其事"
    dispute E042B9E906020 overturned "系统误判"
    dispute E042B9E906020 reduced 5元 "情节轻微"

(the file starts with `month <month>` when the desk creates it), then recomputes the month
through `period.lifecycle.prepare` and rewrites its statement with `lifecycle.write`, the
path `ledger run` takes. Under the month's lock (a thread lock, and a file lock beside the
outputs so two desks on one workspace queue too) it first reads the adjustments files as
they are now: a line already decided the same way, or in a way the new decision cannot
follow, refuses with `Refused(409)` and writes nothing — two browser tabs never write twice.
A closed month is read-only (409). Anything the adjustments checker rejects (a reduced
amount not lower, a confirm of a line not awaiting confirmation) restores the file as it
was and refuses with the checker's message (400).
"""

from __future__ import annotations

import contextlib
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import attrs

from ledger.core.atomic import write_bytes, write_text
from ledger.core.entries import FINE, PENDING, TO_CONFIRM
from ledger.core.errors import LedgerError
from ledger.core.money import round_line
from ledger.period import adjustments as adj
from ledger.period import lifecycle

try:  # a file lock across processes where the system has one (POSIX)
    import fcntl
except ImportError:  # pragma: no cover - Windows: the thread lock still holds within one desk
    fcntl = None

KINDS = ("confirm", "waive", "upheld", "overturned", "reduced")
LABELS = {"confirm": "确认", "waive": "免除", "upheld": "申诉维持", "overturned": "申诉撤销", "reduced": "申诉减为"}
ENTRY = re.compile(r"E[0-9A-F]{12}")
MAX_REASON = 500  # characters: a reason is a sentence, not a file


class Refused(LedgerError):
    """A decision the desk does not write; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message, exit_code=1)
        self.status = status


@attrs.frozen
class Decision:
    kind: str  # one of KINDS
    entry_id: str
    reason: str = ""
    amount: Decimal | None = None  # reduced only

    @property
    def command(self) -> str:
        return "confirm" if self.kind == "confirm" else "waive" if self.kind == "waive" else "dispute"


@attrs.frozen
class Outcome:
    line: str  # the line appended, as written
    where: str  # "adjustments/2024-05.txt:7"
    period: lifecycle.Period  # the month recomputed


def parse(kind: str, entry_id: str, reason: str = "", amount: str = "") -> Decision:
    """A decision from a form's fields, or Refused(400) saying what is wrong, in Chinese."""
    kind, entry_id = (kind or "").strip(), (entry_id or "").strip().upper()
    if kind not in KINDS:
        raise Refused(f"不认识的处理方式 (unknown decision): {kind!r}", 400)
    if not ENTRY.fullmatch(entry_id):
        raise Refused(f"明细编号应为 E 加 12 位十六进制 (bad entry id): {entry_id!r}", 400)
    reason = clean_reason(reason)
    if kind != "confirm" and not reason:
        raise Refused(f"{LABELS[kind]}需要写理由 (a reason is required)", 400)
    value = None
    if kind == "reduced":
        text = (amount or "").strip().rstrip("元").lstrip("¥￥").strip()
        try:
            value = round_line(Decimal(text))
        except (InvalidOperation, ValueError):
            raise Refused(f"减为的金额应写成 5 或 5.50 (bad amount): {amount!r}", 400) from None
        if not value.is_finite() or value < 0:
            raise Refused(f"减为的金额应写成 5 或 5.50 (bad amount): {amount!r}", 400)
    return Decision(kind, entry_id, reason, value)


def clean_reason(text: str) -> str:
    """One line of plain text: line breaks and control characters become spaces."""
    flat = "".join(c if c >= " " and c != "\x7f" else " " for c in (text or ""))
    flat = " ".join(flat.split())
    if len(flat) > MAX_REASON:
        raise Refused(f"理由太长了，最多 {MAX_REASON} 个字 (reason too long)", 400)
    return flat


def quote(text: str) -> str:
    """A value in double quotes as the adjustments reader reads it back (\\" and \\\\ escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def amount_text(amount: Decimal) -> str:
    """5元, 5.50元: as a person writes an amount."""
    value = round_line(amount)
    return f"{value:f}".removesuffix(".00") + "元"


def line_of(d: Decision) -> str:
    """The adjustments line for a decision."""
    if d.kind == "confirm":
        return f"confirm {d.entry_id}" + (f" {quote(d.reason)}" if d.reason else "")
    if d.kind == "waive":
        return f"waive {d.entry_id} {quote(d.reason)}"
    if d.kind == "reduced":
        return f"dispute {d.entry_id} reduced {amount_text(d.amount)} {quote(d.reason)}"
    return f"dispute {d.entry_id} {d.kind} {quote(d.reason)}"


def current_decisions(workspace, month: str) -> dict[str, tuple[adj.Action, ...]]:
    """What the adjustments files decide for each entry of the month now (Refused when they
    cannot be read: a person must fix them first)."""
    files, diags = adj.load(workspace.config.adjustments)
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        raise Refused("调整文件有错误，请先改正 (the adjustments files have errors):\n"
                      + "\n".join(d.render() for d in errors), 409)
    return adj.decisions(adj.actions_for(files, month))


def decide(workspace, month: str, d: Decision) -> Outcome:
    if workspace.is_closed(month):
        raise Refused(f"{month} 已结账，复核台只读；结账后的更正请写进调整文件，会作为“上月更正”记入下一个月 "
                      f"(closed month: read-only)", 409)
    with workspace.month_lock(month), _file_lock(Path(workspace.config.out) / f".desk-{month}.lock"):
        if workspace.is_closed(month):  # closed while we waited
            raise Refused(f"{month} 已结账，复核台只读 (closed month: read-only)", 409)
        period = workspace.period(month)
        entry = next((e for e in period.statement.entries if e.id == d.entry_id), None)
        if entry is None:
            raise Refused(f"{month} 没有这笔明细 (no such entry): {d.entry_id}；请刷新页面", 404)
        earlier = current_decisions(workspace, month).get(d.entry_id, ())
        _check(d, entry, earlier)
        target = workspace.adjustments_file(month)
        line = line_of(d)
        old = target.read_bytes() if target.is_file() else None
        text, number = _appended(old, month, line, target)
        _write(target, text)
        try:
            new = workspace.prepare(month)
        except LedgerError as exc:
            _restore(target, old)
            raise Refused(f"没有写入：调整文件检查不通过 (not written: the adjustments check failed)\n{exc}", 400) from None
        lifecycle.write(new, workspace.config.out)
        workspace.store(month, new)
    return Outcome(line, f"{target.as_posix()}:{number}", new)


def _check(d: Decision, entry, earlier: tuple[adj.Action, ...]) -> None:
    """Refuse what is already decided, or what the line's state does not allow."""
    for a in earlier:
        same = (a.kind == d.command and (a.kind != "dispute" or a.outcome == d.kind))
        if same or {a.kind, d.command} != {"confirm", "dispute"}:
            said = "相同的处理" if same else f"处理结果（{a.kind}{' ' + a.outcome if a.outcome else ''}）"
            raise Refused(f"明细 {d.entry_id} 已经在 {a.where} 有{said}，没有重复写入；请刷新页面 "
                          f"(already decided)", 409)
    if d.kind == "confirm" and entry.status != TO_CONFIRM:
        raise Refused(f"明细 {d.entry_id} 不在待复核之列，不需要确认 (not awaiting confirmation)", 409)
    if d.command == "dispute" and (entry.status == PENDING or entry.amount is None):
        raise Refused(f"明细 {d.entry_id} 结果待定，还没有金额，不能记录申诉结果 (pending: no amount yet)", 409)
    owed = entry.owed if entry.owed is not None else entry.amount  # before a cap, as the checker compares
    if d.kind == "reduced" and d.amount >= owed:
        raise Refused(f"减为的金额 {d.amount}元 应小于原金额 {owed}元 (reduced amount must be lower)", 400)
    if d.command == "dispute" and entry.kind != FINE:
        raise Refused(f"明细 {d.entry_id} 是奖励，申诉只针对罚款 (disputes are about fines)", 409)


def _appended(old: bytes | None, month: str, line: str, target: Path) -> tuple[str, int]:
    """The file's new text and the number of the line added."""
    if old is None:
        text = f"# {month} 的申诉与调整（复核台写入的每一行都和手写的一样，可以用 git 评审）\nmonth {month}\n"
    else:
        try:
            text = old.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Refused(f"{target} 不是 UTF-8，复核台不改动它 (not UTF-8)", 409) from None
        parsed, _ = adj.parse(text, target.as_posix())
        if parsed.month not in (None, month):
            raise Refused(f"{target} 写的是 month {parsed.month}，不是 {month}；请改正后再试 (wrong month)", 409)
        if parsed.month is None:
            text = f"month {month}\n" + text
        if text and not text.endswith("\n"):
            text += "\n"
    text += line + "\n"
    return text, len(text.splitlines())


def _write(target: Path, text: str) -> None:
    write_text(target, text)


def _restore(target: Path, old: bytes | None) -> None:
    if old is None:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
    else:
        write_bytes(target, old)


@contextlib.contextmanager
def _file_lock(path: Path):
    if fcntl is None:  # pragma: no cover
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
