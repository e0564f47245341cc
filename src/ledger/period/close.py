"""Month close: once HR has paid a month, it never changes silently.

`ledger close 2024-05` runs the month as `ledger run` does and writes its outputs with
two more plain-text files in reports/2024-05/, in the same set (outputs/outset.py: the
seal is written into the staging folder with the files it describes, so it can only
ever describe this run's files):

* `CLOSED`: the sha256 of every file of the set (statement, per-agent statements,
  rejected rows, snapshot), of every policy, event, adjustments and roster file used,
  of the HR导入 rows, the totals;
* `closed-entries.tsv`: every entry of the month (id, agent, rule, kind, status,
  amount, and for a 上月更正 line the entry it corrects), the snapshot later runs
  compare against. Its sha256 is the seal digest (结账校验码) printed on the
  statement's 说明 sheet and kept in the register of closed months (register.py).

A closed month is never written again. Running it again verifies it: when the entries
are those of the snapshot and every sealed file is on disk as sealed, it says so and
writes nothing; otherwise it refuses (exit code 6) and lists what would change.

Corrections: when month M is run, every closed month P before it whose corrections land
in M (M is the first month after P that is open, M itself counting as open) is run
again; for each entry whose amount now differs from the snapshot (taking away
corrections that closed months between P and M already carried), M gets a line
`上月更正` with the difference, linked to the original entry by `origin`
("2024-05/E042B9E906020") and described in its evidence.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import attrs

from ledger.core.atomic import write_text
from ledger.core.entries import APPLIED, FINE, Entry
from ledger.core.errors import LedgerError

CLOSED = "CLOSED"
SNAPSHOT = "closed-entries.tsv"
EXIT_CLOSED_CHANGED = 6
EXIT_UNCONFIRMED = 7  # closing refused: lines of `confirm` rules still await a person
CORRECTION = "上月更正"
SNAPSHOT_HEADER = ("id", "agent", "rule_id", "rule_title", "rule_location", "kind", "status", "amount",
                   "event_id", "origin")
_ZERO = Decimal("0")


@attrs.frozen
class SnapLine:
    id: str
    agent: str
    rule_id: str
    rule_title: str
    rule_location: str
    kind: str
    status: str
    amount: str  # "" when pending
    event_id: str
    origin: str

    @property
    def signed(self) -> Decimal:
        """How the line moves the agent's pay: fines negative; pending 0."""
        if self.status != APPLIED or not self.amount:
            return _ZERO
        value = Decimal(self.amount)
        return -value if self.kind == FINE else value


@attrs.frozen
class Record:
    month: str
    fields: tuple[tuple[str, str, str], ...]  # (key, path or value, sha256 or "")

    def hashes(self, key: str) -> dict[str, str]:
        return {p: h for k, p, h in self.fields if k == key}

    def value(self, key: str) -> str:
        return next((p for k, p, _ in self.fields if k == key), "")


def snap(e: Entry) -> SnapLine:
    clean = lambda s: " ".join(str(s or "").split())
    amount = "" if e.amount is None or e.status != APPLIED else format(e.amount, "f")
    return SnapLine(e.id, clean(e.agent), clean(e.rule_id), clean(e.rule_title), clean(e.rule_location),
                    e.kind, e.status, amount, clean(e.event_id), clean(e.origin))


def snapshot_text(entries) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(SNAPSHOT_HEADER)
    for e in entries:
        w.writerow(attrs.astuple(snap(e)))
    return out.getvalue()


def read_snapshot(folder: Path) -> list[SnapLine]:
    text = (Path(folder) / SNAPSHOT).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows or tuple(rows[0]) != SNAPSHOT_HEADER:
        raise LedgerError(f"结账明细文件格式不对 (bad snapshot): {Path(folder) / SNAPSHOT}", exit_code=EXIT_CLOSED_CHANGED)
    return [SnapLine(*r) for r in rows[1:]]


def file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def record_text(month: str, paths: dict, policy, inputs, adjustments, roster: tuple[str, str] | None,
                hr_import: str, snapshot: str, totals: tuple[Decimal, Decimal], n_entries: int, version: str) -> str:
    """The text of CLOSED for the set written at `paths` (report.write_outputs): the sha256
    of every file of the set (statement, per-agent statements, rejected rows, snapshot),
    of every input (policy, events, adjustments, roster) and of the HR导入 rows."""
    folder = Path(paths["statement"]).parent
    lines = ["# ledger 月结记录 (month close record)。请勿手工修改：再次运行这个月时，ledger 用它核对。",
             f"month: {month}",
             f"closed_at: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S')} UTC",
             f"ledger_version: {version}",
             f"statement: {Path(paths['statement']).name} sha256={file_sha(paths['statement'])}"]
    for agent, path in sorted(paths.get("agent_files", {}).items()):
        lines.append(f"agent_statement: {Path(path).relative_to(folder).as_posix()} sha256={file_sha(path)}")
    lines.append(f"rejects: {Path(paths['rejects']).name} sha256={file_sha(paths['rejects'])}")
    lines.append(f"entries: {SNAPSHOT} sha256={hashlib.sha256(snapshot.encode()).hexdigest()} lines={n_entries}")
    lines.append(f"totals: fines={totals[0]:.2f} bonuses={totals[1]:.2f}")
    if hr_import:
        lines.append(f"hr_import: HR导入 sha256={hr_import}")
    lines += [f"policy: {p} sha256={h}" for p, h in policy]
    lines += [f"input: {p} sha256={h}" for p, h in inputs]
    lines += [f"adjustment: {p} sha256={h}" for p, h in adjustments]
    if roster is not None:
        lines.append(f"roster: {roster[0]} sha256={roster[1]}")
    return "\n".join(lines) + "\n"


def read_record(folder: Path) -> Record | None:
    """The month's CLOSED record, None when there is none. A CLOSED that is not a plain
    UTF-8 file (a folder, a link, binary bytes) is an error, never an open month."""
    path = Path(folder) / CLOSED
    if not path.exists() and not path.is_symlink():
        return None
    try:
        if path.is_symlink() or not path.is_file():  # a link is never followed
            raise IsADirectoryError(21, "不是普通文件 (not a regular file)")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # a damaged seal never reopens the month
        detail = exc.strerror if isinstance(exc, OSError) else f"不是 UTF-8 文本 (not UTF-8): {exc.reason}"
        raise LedgerError(f"结账记录 {path} 无法读取（{detail}）：这个月按已结账处理，没有写入任何文件。"
                          f"请从备份恢复 CLOSED (the seal cannot be read; nothing written)",
                          exit_code=EXIT_CLOSED_CHANGED) from None
    fields, month = [], ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or ": " not in line:
            continue
        key, rest = line.split(": ", 1)
        value, sha = rest, ""
        if " sha256=" in rest:
            value, sha = rest.rsplit(" sha256=", 1)
            sha = sha.split()[0] if sha.split() else ""
        if key == "month":
            month = value
        fields.append((key, value, sha))
    return Record(month, tuple(fields))


def seal(folder: Path, record: str, snapshot: str) -> None:
    write_text(Path(folder) / SNAPSHOT, snapshot)
    write_text(Path(folder) / CLOSED, record)  # last: a month is closed once CLOSED exists


MONTH_NAME = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def closed_months(out_dir: Path, before: str) -> list[str]:
    """Months before `before` with a CLOSED record in `out_dir`, oldest first (folders
    named like a month only: never a staging folder or a copy)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(p.name for p in out_dir.iterdir()
                  if MONTH_NAME.fullmatch(p.name) and p.name < before
                  and ((p / CLOSED).exists() or (p / CLOSED).is_symlink()))


# ----------------------------------------------------------------- comparing


def entry_changes(old: list[SnapLine], new: list[SnapLine]) -> list[str]:
    """What would change, one line each, in Chinese."""
    before = {s.id: s for s in old}
    after = {s.id: s for s in new}
    lines = []
    show = lambda s: f"{s.amount or '待定'}{'元' if s.amount else ''}"
    for s in new:
        o = before.get(s.id)
        if o is None:
            lines.append(f"  + {s.id} {s.agent} {s.rule_id} {show(s)}")
        elif (o.status, o.amount, o.agent, o.kind) != (s.status, s.amount, s.agent, s.kind):
            lines.append(f"  ~ {s.id} {s.agent} {s.rule_id} {show(o)} → {show(s)}")
    for s in old:
        if s.id not in after:
            lines.append(f"  - {s.id} {s.agent} {s.rule_id} {show(s)}")
    return lines


def file_changes(label: str, old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = []
    for p in sorted(set(old) | set(new)):
        if p not in new:
            out.append(f"  {label} 删除 (removed): {p}")
        elif p not in old:
            out.append(f"  {label} 新增 (added): {p}")
        elif old[p] != new[p]:
            out.append(f"  {label} 改动 (changed): {p}")
    return out


# ---------------------------------------------------------------- corrections


def _next_month(m: str) -> str:
    y, mo = int(m[:4]), int(m[5:7])
    return f"{y + (mo == 12):04d}-{mo % 12 + 1:02d}"


def _landing_month(p: str, month: str, closed: set[str]) -> str:
    """Where corrections of closed month P go when `month` is run: the first month after
    P that is open, `month` itself counting as open (so a closed month verifies with the
    corrections it was closed with)."""
    q = _next_month(p)
    while q != month and q in closed:
        q = _next_month(q)
    return q


def corrections(month: str, month_start: datetime, out_dir: Path, current_of, months: list[str]) -> list[Entry]:
    """上月更正 lines for `month` from the closed months before it (`months`, oldest first,
    their seals already checked: register.closed_months).

    `current_of(P)` returns the closed month P's own entries as they come out now
    (policy, events and adjustments of today, no corrections).
    """
    snaps = {p: read_snapshot(Path(out_dir) / p) for p in months}
    seals = {p: file_sha(Path(out_dir) / p / SNAPSHOT) for p in months}
    out: list[Entry] = []
    for p in months:
        if _landing_month(p, month, set(months)) != month:
            continue  # an open month between P and this one takes P's corrections
        closed = {s.id: s for s in snaps[p] if not s.origin}
        now = {s.id: s for s in map(snap, current_of(p))}
        carried: dict[str, Decimal] = {}
        for q in months:
            if q > p:
                for s in snaps[q]:
                    if s.origin.startswith(p + "/"):
                        key = s.origin.split("/", 1)[1]
                        carried[key] = carried.get(key, _ZERO) + s.signed
        order = list(now) + [i for i in closed if i not in now]
        for entry_id in order:
            old, new = closed.get(entry_id), now.get(entry_id)
            base = old or new
            delta = (new.signed if new else _ZERO) - (old.signed if old else _ZERO) - carried.get(entry_id, _ZERO)
            if delta == 0:
                continue
            amount = -delta if base.kind == FINE else delta
            was = old.amount + "元" if old and old.amount else ("待定" if old else "无")
            now_text = new.amount + "元" if new and new.amount else ("待定" if new else "已不存在")
            done = carried.get(entry_id)
            digest = hashlib.sha256(f"{month}\x1f{p}\x1f{entry_id}".encode()).hexdigest()
            out.append(Entry(
                id="C" + digest[:12].upper(),
                rule_id=CORRECTION if base.kind == FINE else f"{CORRECTION}（奖励）",
                rule_title=f"{CORRECTION}：{p}",
                rule_location=f"{p}/{CLOSED}", kind=base.kind, agent=base.agent, ts=month_start,
                amount=amount, status=APPLIED, event_id=base.event_id, event_seq=-1,
                excerpt=f"更正 {p} 明细 {entry_id}（{base.rule_id}：{base.rule_title}）",
                evidence=(f"{p} 已结账（结账校验码 {seals[p][:16]}）；明细 {entry_id}（{base.agent}，{base.rule_id}）结账时 {was}，现在 {now_text}"
                          + (f"，之前已更正 {-done if base.kind == FINE else done}元" if done else "")
                          + f"；差额计入本月。原明细：ledger explain {entry_id} --month {p}"),
                origin=f"{p}/{entry_id}"))
    return out
