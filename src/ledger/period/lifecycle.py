"""A payroll period end to end: the engine's entries, then adjustments (adjustments.py),
then corrections of closed months (close.py); writing, closing, and verifying a
closed month. The CLI's `run` and `close` call these; they hold no logic of their own.
"""

from __future__ import annotations

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
from ledger.outputs import report
from ledger.outputs.statement import Statement
from ledger.outputs.workbook import sheets
from ledger.period import adjustments as adj
from ledger.period import close


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

    fixes = close.corrections(result.month.text, result.month.start_local, out_dir, current_of) if out_dir else []
    entries = sorted(entries + fixes, key=sort_key)
    result = attrs.evolve(result, entries=tuple(entries),
                          agents=result.agents | {e.agent for e in entries})
    statement = report.statement_of(result)
    result = attrs.evolve(result, timings=result.timings + (("statement", time.perf_counter() - started),))
    return Period(result, statement, tuple((f.path, f.sha256) for f in files), n_adjusted, len(fixes))


def write(period: Period, out_dir: Path) -> dict:
    try:
        return report.write_outputs(period.result, period.statement, out_dir)
    except OSError as exc:
        raise LedgerError(f"无法写入输出 (cannot write output): {exc}", exit_code=5) from None


def seal(period: Period, paths: dict) -> Path:
    """Write CLOSED and the snapshot for a period just written."""
    result = period.result
    snapshot = close.snapshot_text(period.statement.entries)
    text = close.record_text(
        result.month.text, paths["statement"], paths.get("agent_files", {}),
        [(s.path, s.sha256) for s in result.sources],
        [(f.path, f.sha256) for f in result.load.files], period.adjustment_files, snapshot,
        (period.statement.total_fines, period.statement.total_bonuses), len(period.statement.entries),
        __version__)
    close.seal(paths["folder"], text, snapshot)
    return paths["folder"] / close.CLOSED


def verify(period: Period, out_dir: Path, record: close.Record) -> tuple[bool, list[str]]:
    """Compare a closed month with what running it now gives. (unchanged, report lines)."""
    month = period.result.month.text
    folder = report.output_paths(out_dir, month)["folder"]
    statement_path = report.output_paths(out_dir, month)["statement"]
    lines: list[str] = []
    problems = False
    sealed = record.hashes("statement").get(statement_path.name, "")
    on_disk = close._sha(statement_path) if statement_path.is_file() else ""
    if on_disk != sealed:
        problems = True
        lines.append(f"  已结账的账单文件不见了或被改动过 (statement file missing or modified since close): {statement_path}")
    snapshot_sha = record.hashes("entries").get(close.SNAPSHOT, "")
    snapshot_path = folder / close.SNAPSHOT
    if not snapshot_path.is_file() or close._sha(snapshot_path) != snapshot_sha:
        raise LedgerError(f"{month} 的结账明细 {snapshot_path} 不见了或被改动过 (snapshot missing or modified)",
                          exit_code=close.EXIT_CLOSED_CHANGED)
    old = close.read_snapshot(folder)
    new = [close.snap(e) for e in period.statement.entries]
    changes = close.entry_changes(old, new)
    result = period.result
    files = (close.file_changes("规则文件", record.hashes("policy"), {s.path: s.sha256 for s in result.sources})
             + close.file_changes("事件文件", record.hashes("input"), {f.path: f.sha256 for f in result.load.files})
             + close.file_changes("调整文件", record.hashes("adjustment"), dict(period.adjustment_files)))
    if changes:
        problems = True
        lines.append(f"  明细会有 {len(changes)} 处变化 (entries that would change):")
        lines += changes[:50]
        if len(changes) > 50:
            lines.append(f"  …… 另有 {len(changes) - 50} 处")
    if files:
        lines.append("  输入有变化 (inputs changed):")
        lines += files
    if not problems:
        with tempfile.TemporaryDirectory(prefix="ledger-verify-") as tmp:
            probe = Path(tmp) / statement_path.name
            sheets.write_statement(period.statement, probe)
            same_bytes = close._sha(probe) == sealed
        lines.insert(0, "  账单与结账时逐字节相同 (statement byte-identical), sha256 " + sealed if same_bytes else
                     "  明细与结账时相同；输入文件有变化，已结账的账单保持原样 (entries unchanged; sealed statement kept)")
    return not problems, lines


def next_open_month(out_dir: Path, month: str) -> str:
    m = Month.parse(month)
    while True:
        y, mo = m.end_local.year, m.end_local.month
        m = Month.parse(f"{y:04d}-{mo:02d}")
        if close.read_record(report.output_paths(out_dir, m.text)["folder"]) is None:
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
