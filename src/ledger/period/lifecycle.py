"""A payroll period end to end: the engine's entries, then adjustments (adjustments.py),
then corrections of closed months (close.py); writing, closing, and verifying a
closed month. The CLI's `run` and `close` call these; they hold no logic of their own.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Sequence

import attrs

from ledger import __version__
from ledger.core.entries import sort_key
from ledger.core.errors import Diagnostic, LedgerError, Position
from ledger.core.month import Month
from ledger.evaluate import engine
from ledger.lang.load import checked_policy
from ledger.outputs import outset, report
from ledger.outputs.statement import Statement
from ledger.outputs.workbook import payroll_sheets, sheets
from ledger.period import adjustments as adj
from ledger.period import close, register


class AdjustmentError(LedgerError):
    """The adjustments files have errors; `diagnostics` holds all of them."""

    exit_code = 1

    def __str__(self) -> str:
        n = sum(1 for d in self.diagnostics if d.severity == "error")
        return "\n".join([d.render() for d in self.diagnostics] + [f"调整文件有 {n} 个错误 (adjustments have {n} errors)"])


@attrs.frozen
class Period:
    result: engine.MonthResult
    statement: Statement
    adjustment_files: tuple[tuple[str, str], ...]  # (path, sha256) of every adjustments file read
    n_adjusted: int  # entries waived or decided on dispute, plus manual lines
    n_corrections: int


def load_adjustments(root: Path) -> list[adj.AdjustmentFile]:
    files, diags = adj.load(root)
    if any(d.severity == "error" for d in diags):
        raise AdjustmentError("adjustments have errors", diagnostics=diags)
    return files


def adjuster(files: list[adj.AdjustmentFile]):
    """The engine's `adjust` stage for these files: a month's confirmations, waivers, dispute
    outcomes and manual lines, applied after the monthly rules and before caps (so a confirmed
    line is capped like any other, and a waived one takes no room under the cap).
    Unknown or doubly adjusted entry ids raise AdjustmentError with every diagnostic."""

    def adjust(month: Month, entries: list, accounts: set[str] | None = None) -> list:
        actions = adj.actions_for(files, month.text)
        if not actions:
            return entries
        diags = adj.check_ids(actions, list(entries), _source_lines(actions), accounts)
        if diags:
            raise AdjustmentError("unknown entry ids", diagnostics=diags)
        return adj.apply(list(entries), actions, month.start_local)

    return adjust


def _source_lines(actions) -> dict[tuple[str, int], str]:
    lines = {}
    for path in {a.file for a in actions}:
        try:
            text = Path(path).read_text(encoding="utf-8-sig").splitlines()
        except OSError:
            continue
        for a in actions:
            if a.file == path and a.pos.line <= len(text):
                lines[(path, a.pos.line)] = text[a.pos.line - 1]
    return lines


def prepare(policy_paths: Sequence[Path], events_root: Path, month: str, *, out_dir: Path,
            adjustments_root: Path, progress=None, roster=None) -> Period:
    """Run the month and apply adjustments and corrections of closed months."""
    Month.parse(month)  # a bad month is reported before the policy is read
    policy, sources = checked_policy(policy_paths)
    return prepare_policy(policy, sources, events_root, month, out_dir=out_dir, adjustments_root=adjustments_root,
                          progress=progress, roster=roster)


def prepare_policy(policy, sources, events_root: Path, month: str, *, out_dir: Path | None,
                   adjustments_root: Path | None, progress=None, roster=None) -> Period:
    """`prepare` for a policy already checked (the review tools run a git revision's policy
    through exactly the statement's path with this). `out_dir` None: no closed months;
    `adjustments_root` None: no adjustments."""
    files = load_adjustments(adjustments_root) if adjustments_root is not None else []
    adjust = adjuster(files)
    result = engine.run_policy(policy, sources, events_root, Month.parse(month), progress=progress, roster=roster,
                               adjust=adjust)
    if progress:
        progress("整理账单 (building statement)")
    started = time.perf_counter()  # the "statement" phase: corrections, masking
    entries, n_adjusted = list(result.entries), len(adj.actions_for(files, result.month.text))
    policy = result.policy

    def current_of(p: str):
        earlier = engine.run_policy(policy, result.sources, events_root, Month.parse(p), roster=roster,
                                    adjust=adjust)
        return list(earlier.entries)

    months = register.closed_months(out_dir, result.month.text) if out_dir else []
    fixes = close.corrections(result.month.text, result.month.start_local, out_dir, current_of, months) if months else []
    entries = sorted(entries + fixes, key=sort_key)
    warnings = tuple(register.unregistered_warning(out_dir, months)) if months else ()
    result = attrs.evolve(result, entries=tuple(entries), warnings=result.warnings + warnings,
                          agents=result.agents | {e.agent for e in entries})
    statement = report.statement_of(result)
    result = attrs.evolve(result, timings=result.timings + (("statement", time.perf_counter() - started),))
    return Period(result, statement, tuple((f.path, f.sha256) for f in files), n_adjusted, len(fixes))


def write(period: Period, out_dir: Path, *, seal: bool = False, rejects_only: bool = False) -> dict:
    """Write the month's set (outset.staged: all files or none, the previous set kept on
    any failure): statement, rejected rows, per-agent files, and with `seal` the seal
    (CLOSED, closed-entries.tsv), then the register line. `rejects_only`: a run without
    events writes its rejected rows alone. Returns the final paths (report.output_paths
    plus "agent_files", and "closed" when sealed)."""
    result, statement = period.result, period.statement
    month = result.month.text
    snapshot = close.snapshot_text(statement.entries) if seal else ""
    digest = hashlib.sha256(snapshot.encode()).hexdigest() if seal else ""
    if seal:
        statement = attrs.evolve(statement, info=attrs.evolve(statement.info, seal=digest))
    final = report.output_paths(out_dir, month)["folder"]
    with outset.staged(out_dir, month, report.statement_name(month)) as folder:
        paths = report.write_set(result, None if rejects_only else statement, folder)
        if seal:
            record = record_of(period, paths, snapshot)
            close.seal(folder, record, snapshot)
            paths["closed"] = folder / close.CLOSED
    paths = report.moved(paths, final)
    if seal:
        try:
            register.append(out_dir, month, digest, hashlib.sha256(record.encode()).hexdigest())
        except OSError as exc:
            raise LedgerError(f"{month} 已结账，但结账登记簿 {register.path(out_dir)} 没有写上 (register not written): "
                              f"{exc.strerror or exc}；腾出空间后再运行 ledger close {month}，它会核对并补登",
                              exit_code=outset.EXIT_WRITE) from None
    return paths


def record_of(period: Period, paths: dict, snapshot: str) -> str:
    """The text of CLOSED for a set just written at `paths`."""
    result, statement = period.result, period.statement
    roster = None
    if result.roster is not None:
        roster = (result.roster.path, close.file_sha(Path(result.roster.path)))
    return close.record_text(
        result.month.text, paths, [(s.path, s.sha256) for s in result.sources],
        [(f.path, f.sha256) for f in result.load.files], period.adjustment_files, roster,
        hr_digest(statement), snapshot, (statement.total_fines, statement.total_bonuses), len(statement.entries),
        __version__)


def hr_digest(statement: Statement) -> str:
    """sha256 of the HR导入 rows as HR imports them ("" without a roster)."""
    p = statement.payroll
    if p is None or not p.has_roster:
        return ""
    rows = payroll_sheets.hr_rows(statement)
    text = "\n".join("\t".join("" if v is None else str(v) for v in row) for row in rows)
    return hashlib.sha256(text.encode()).hexdigest()


def verify(period: Period, out_dir: Path, record: close.Record) -> tuple[bool, list[str]]:
    """Compare a closed month with what running it now gives, and every file its seal
    lists with the file on disk. (unchanged, report lines)."""
    month = period.result.month.text
    where = report.output_paths(out_dir, month)
    folder, statement_path = where["folder"], where["statement"]
    lines: list[str] = []
    problems = []
    sealed = record.hashes("statement").get(statement_path.name, "")
    if not statement_path.is_file() or close.file_sha(statement_path) != sealed:
        problems.append(f"  已结账的账单文件不见了或被改动过 (statement file missing or modified since close): {statement_path}")
    problems += sealed_file_changes(record, folder, where["agents"])
    snapshot_sha = record.hashes("entries").get(close.SNAPSHOT, "")
    snapshot_path = folder / close.SNAPSHOT
    if not snapshot_path.is_file() or close.file_sha(snapshot_path) != snapshot_sha:
        raise LedgerError(f"{month} 的结账明细 {snapshot_path} 不见了或被改动过 (snapshot missing or modified)",
                          exit_code=close.EXIT_CLOSED_CHANGED)
    old = close.read_snapshot(folder)
    new = [close.snap(e) for e in period.statement.entries]
    changes = close.entry_changes(old, new)
    result = period.result
    roster_now = {result.roster.path: close.file_sha(Path(result.roster.path))} if result.roster is not None else {}
    files = (close.file_changes("规则文件", record.hashes("policy"), {s.path: s.sha256 for s in result.sources})
             + close.file_changes("事件文件", record.hashes("input"), {f.path: f.sha256 for f in result.load.files})
             + close.file_changes("调整文件", record.hashes("adjustment"), dict(period.adjustment_files)))
    if any(k == "rejects" for k, _, _ in record.fields):  # sealed by a version that records all of it
        files += close.file_changes("花名册", record.hashes("roster"), roster_now)
        if record.hashes("hr_import").get("HR导入", "") != hr_digest(period.statement):
            problems.append("  HR导入 会变 (HR import rows would change): 花名册或金额与结账时不同")
    if changes:
        problems.append(f"  明细会有 {len(changes)} 处变化 (entries that would change):")
        problems += changes[:50]
        if len(changes) > 50:
            problems.append(f"  …… 另有 {len(changes) - 50} 处")
    lines.append(f"  结账校验码 (seal digest): {snapshot_sha}（应与 HR 手中账单 说明 表的结账校验码相同）")
    lines += problems
    if files:
        lines.append("  输入有变化 (inputs changed):")
        lines += files
    if not problems:
        statement = attrs.evolve(period.statement, info=attrs.evolve(period.statement.info, seal=snapshot_sha))
        with tempfile.TemporaryDirectory(prefix="ledger-verify-") as tmp:
            probe = Path(tmp) / statement_path.name
            sheets.write_statement(statement, probe)
            same_bytes = close.file_sha(probe) == sealed
        lines.insert(0, "  账单与结账时逐字节相同 (statement byte-identical), sha256 " + sealed if same_bytes else
                     "  明细与结账时相同；输入文件有变化，已结账的账单保持原样 (entries unchanged; sealed statement kept)")
        lines.insert(1, f"  结账校验码 (seal digest): {snapshot_sha}（应与 HR 手中账单 说明 表的结账校验码相同）")
        n_files = 2 + len(record.hashes("agent_statement")) + len(record.hashes("rejects"))
        lines.insert(2, f"  已封存的 {n_files} 个文件都与结账时相同 (every sealed file checked)")
    return not problems, lines


def sealed_file_changes(record: close.Record, folder: Path, agents_dir: Path) -> list[str]:
    """Every per-agent statement and the rejected rows, on disk against the seal: a file
    edited, deleted, or added to agents/ is a change."""
    out = []
    sealed_agents = record.hashes("agent_statement")
    on_disk = {}
    if agents_dir.is_dir():
        for p in sorted(agents_dir.iterdir()):
            if p.name.lower().endswith(".xlsx"):
                on_disk[p.relative_to(folder).as_posix()] = close.file_sha(p) if p.is_file() else "(not a file)"
    for line in close.file_changes("个人账单", sealed_agents, on_disk):
        out.append(line + "（已结账的文件不应变化 / sealed file）")
    for name, sha in record.hashes("rejects").items():
        path = folder / name
        if not path.is_file() or close.file_sha(path) != sha:
            out.append(f"  拒收行文件不见了或被改动过 (rejected rows missing or modified since close): {path}")
    return out


def next_open_month(out_dir: Path, month: str) -> str:
    """The first month after `month` that is neither sealed nor in the register."""
    registered = register.read(out_dir)
    m = Month.parse(month)
    while True:
        y, mo = m.end_local.year, m.end_local.month
        m = Month.parse(f"{y:04d}-{mo:02d}")
        if m.text not in registered and close.read_record(report.output_paths(out_dir, m.text)["folder"]) is None:
            return m.text


def check_adjustments(policy, sources, events_root: Path, out_dir: Path, adjustments_root: Path
                      ) -> list[Diagnostic]:
    """What `ledger check` says about the adjustments files: syntax errors; then, when
    the events folder exists, unknown entry ids (each month named is run) and
    adjustments to a closed month that will land as 上月更正 in the next open month."""
    files, diags = adj.load(adjustments_root)
    if any(d.severity == "error" for d in diags) or not Path(events_root).is_dir():
        return diags
    for month in sorted({f.month for f in files if f.month}):
        actions = adj.actions_for(files, month)
        if not actions:
            continue
        result = engine.run_policy(policy, sources, events_root, Month.parse(month))
        diags += adj.check_ids(actions, list(result.entries), _source_lines(actions))
        folder = report.output_paths(out_dir, month)["folder"]
        record = close.read_record(folder)
        if record is None:
            continue
        sealed = record.hashes("adjustment")
        for f in files:
            if f.month == month and sealed.get(f.path) != f.sha256:
                first = f.actions[0].pos if f.actions else None
                diags.append(Diagnostic(
                    first or engine_position(f.path),
                    f"{month} 已结账 (closed month)：这个文件在结账后新增或改动过，不会改动已结账的账单，"
                    f"变化会作为“上月更正”记入 {next_open_month(out_dir, month)}",
                    severity="warning"))
    return diags


def engine_position(path: str):
    return Position(path, 1, 1)
