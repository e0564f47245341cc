"""From a month's result to the files HR receives, and the summary the CLI prints."""

from __future__ import annotations

from pathlib import Path

import attrs

from ledger import __version__
from ledger.core.display import ljust, width
from ledger.core.entries import PENDING
from ledger.core.money import total
from ledger.evaluate.engine import MonthResult
from ledger.outputs import outset, payroll
from ledger.outputs.agents import FOLDER, write_agent_statements
from ledger.outputs.privacy import mask_entry
from ledger.outputs.rejects import write_rejects
from ledger.outputs.statement import FileInfo, RunInfo, Statement, build
from ledger.outputs.workbook import sheets


def statement_of(result: MonthResult) -> Statement:
    load = result.load
    info = RunInfo(
        month=result.month.text,
        timezone=result.policy.timezone,
        policy_name=result.policy.name,
        policy_files=tuple(FileInfo(s.path, s.sha256) for s in result.sources),
        event_files=tuple(FileInfo(f.path, f.sha256, f.read, f.accepted, f.rejected, f.encoding)
                          for f in load.files),
        ignored_files=tuple(load.ignored),
        data_end=result.data_end.strftime("%Y-%m-%d %H:%M:%S") if result.data_end else "",
        duplicates_folded=load.duplicates_folded,
        version=__version__,
        event_types=result.event_types,
        warnings=result.warnings,
        floors=tuple(f"{f.field.value}（奖金{'计入' if f.counts_bonuses else '不计入'}工资）"
                     for f in result.policy.floors),
    )
    rules = [(r.id.value, r.title or r.id.value, f"{r.pos.filename}:{r.pos.line}", r.amount.kind,
              r.amount.text, str(r.effective) if r.effective else "") for r in result.policy.rules]
    for r in result.policy.monthly:  # monthly rules: one row per tier amount as written
        kind = r.tiers[0].amount.kind
        text = " / ".join(t.amount.text for t in r.tiers)
        rules.append((r.id.value, r.title or r.id.value, f"{r.pos.filename}:{r.pos.line}", kind,
                      ("月度 " + text), str(r.effective) if r.effective else ""))
    # Lines from no policy rule (人工调整, 上月更正) get a 规则 row each group, in first-seen order.
    known = {(r[0], r[2]) for r in rules}
    for e in result.entries:
        if (e.rule_id, e.rule_location) not in known:
            known.add((e.rule_id, e.rule_location))
            rules.append((e.rule_id, e.rule_title, e.rule_location, e.kind, "", ""))
    # Buyers' phone numbers, ID numbers and addresses never reach a workbook (privacy.py).
    entries = [mask_entry(e) for e in result.entries]
    statement = build(info, entries, set(result.agents), rules)
    extra = payroll.build(result, [a.agent for a in statement.agents])
    return attrs.evolve(statement, payroll=extra)


def output_paths(out_dir: Path, month: str) -> dict[str, Path]:
    """Where the month's files are once written (`ledger run` writes them into a staging
    folder first and swaps the whole set in: outset.py)."""
    folder = Path(out_dir) / month
    return {"folder": folder,
            "statement": folder / statement_name(month),
            "rejects": folder / REJECTS,
            "agents": folder / FOLDER}


REJECTS = "rejected-rows.csv"


def statement_name(month: str) -> str:
    return f"ledger-{month}.xlsx"


def all_rejects(result: MonthResult) -> tuple:
    """Every rejected row of the run: the events', then the roster's."""
    roster_rejects = tuple(result.roster.rejects) if result.roster is not None else ()
    return tuple(result.load.rejects) + roster_rejects


def write_outputs(result: MonthResult, statement: Statement, out_dir: Path) -> dict[str, Path]:
    """Write the month's set into `<out_dir>/<month>/` as one set (outset.staged: all the
    files or none). The caller holds the writer lock when others may write there
    (`ledger run` does: period.lifecycle.write)."""
    month = result.month.text
    with outset.staged(out_dir, month, statement_name(month)) as folder:
        paths = write_set(result, statement, folder)
    return moved(paths, output_paths(out_dir, month)["folder"])


def write_set(result: MonthResult, statement: Statement | None, folder: Path) -> dict[str, Path]:
    """Write the month's set into `folder` (an empty staging folder): the statement, the
    rejected rows and the per-agent files; with `statement` None (a run without events)
    the rejected rows alone. Returns the paths written, inside `folder`."""
    month = result.month.text
    paths = output_paths(Path(folder).parent, month)
    paths = {key: Path(folder) / p.relative_to(paths["folder"]) for key, p in paths.items()}
    paths["folder"] = Path(folder)
    write_rejects(paths["rejects"], all_rejects(result))
    if statement is not None:
        # The per-agent files name the statement's SHA-256: they are laid out while it is written.
        paths["agent_files"] = write_agent_statements(
            statement, paths["agents"], paths["statement"],
            write_source=lambda: sheets.write_statement(statement, paths["statement"]))
    return paths


def moved(paths: dict, folder: Path) -> dict:
    """The same paths after the set's folder became `folder`."""
    old = paths["folder"]
    out = {}
    for key, value in paths.items():
        if isinstance(value, dict):
            out[key] = {k: Path(folder) / Path(v).relative_to(old) for k, v in value.items()}
        else:
            out[key] = Path(folder) / Path(value).relative_to(old)
    return out


def unusable_files(load) -> list[str]:
    """Files with rejects and not one accepted row (unreadable, unknown layout, all bad)."""
    reported = {f.path: f for f in load.files}
    return sorted({r.file for r in load.rejects if r.file not in reported or reported[r.file].accepted == 0})


def load_lines(result: MonthResult) -> list[str]:
    """The event files part of the summary: one line per file and the totals."""
    load = result.load
    lines = ["事件文件 (event files):"]
    unusable = set(unusable_files(load))
    path_width = max([len(f.path) for f in load.files] + [10])
    for f in load.files:
        lines.append(f"  {f.path:<{path_width}}  读取 {f.read:>8,}  接受 {f.accepted:>8,}  拒收 {f.rejected:>6,}  [{f.encoding}]"
                     + ("  没有一行可用 (no usable row)" if f.path in unusable else ""))
    if load.ignored:
        lines.append(f"  已忽略 (ignored): {', '.join(load.ignored)}")
    read = sum(f.read for f in load.files)
    rejected = sum(f.rejected for f in load.files)
    lines.append(f"合计读取 {read:,} 行，接受 {read - rejected:,}，拒收 {rejected:,}"
                 + (f"，{len(unusable)} 个文件没有一行可用 (files without a usable row)" if unusable else "")
                 + f"；合并重复 {load.duplicates_folded:,}")
    return lines


def summary_lines(result: MonthResult, statement: Statement, paths: dict[str, Path] | None) -> list[str]:
    """The short report `ledger run` prints: events, entries per rule, totals, outputs."""
    lines = [f"ledger {result.month.text} · {result.policy.name} · 时区 {result.policy.timezone}", *load_lines(result)]
    lines[-1] += f"；本月事件 {result.events_in_month:,} 条；数据截止 {statement.info.data_end or '—'}"
    lines.append("本月事件类型 (event types): " + " · ".join(
        f"{t} {n:,}" + ("" if used else "（无规则使用）") for t, n, used in result.event_types))
    name_width = max([width(r.rule_id) for r in statement.rules] + [12]) + 2
    lines.append(f"  {ljust('规则 (rule)', name_width)}  类型      次数    待定      金额(元)")
    for r in statement.rules:
        kind = "罚款" if r.kind == "fine" else "奖励"
        lines.append(f"  {ljust(r.rule_id, name_width)}  {kind}{r.count:>10,}{r.pending:>8,}{r.total:>14,.2f}")
    fines, bonuses = statement.total_fines, statement.total_bonuses
    pending = sum(1 for e in statement.entries if e.status == PENDING)
    lines.append(f"合计：罚款 {fines:,.2f}元 · 奖励 {bonuses:,.2f}元 · 净额 {bonuses - fines:,.2f}元 · "
                 f"{len(statement.agents)} 名客服 · 待定 {pending} 条")
    if statement.payroll is not None:
        p = statement.payroll
        points = sum(a.points for a in p.accounts)
        relieved = total(a.relieved for a in p.accounts)
        if points or relieved or p.has_roster:
            lines.append(f"应扣 {total(a.owed for a in p.accounts):,.2f}元 · 上限减免 {relieved:,.2f}元 · "
                         f"实扣 {total(a.deducted for a in p.accounts):,.2f}元 · 平台扣分 {points} 分"
                         + (f" · HR导入 {len(p.employees)} 名员工" if p.has_roster else ""))
    for account, fines_, bonuses_, why in (statement.payroll.missing_from_hr if statement.payroll else ()):
        lines.append(f"！！HR导入 缺少 (missing from HR导入) {account}：扣款 {fines_:,.2f}元 · 奖金 {bonuses_:,.2f}元，"
                     f"{why}；汇总 有这笔钱，HR导入 没有。请在花名册补上这个账号后重新运行")
    if pending:
        lines.append(f"注意：{pending} 条结果待定 (pending)：期限在数据截止之后，补充后续数据后重新运行即可确定。")
    if statement.to_confirm:
        waiting = total(a.to_confirm_amount for a in statement.agents)
        lines.append(f"待复核 (awaiting confirmation): {statement.to_confirm} 条，确认后共扣 {waiting:,.2f}元；"
                     f"未确认前不扣款。查看：ledger review --month {result.month.text}")
    if result.roster is not None:
        r = result.roster
        lines.append(f"花名册 (roster): {r.path} · {r.lines} 行，{len(r.employees)} 名员工，拒收 {len(r.rejects)} 行")
        for rej in r.rejects:
            lines.append(f"  拒收 (rejected) {rej.file}:{rej.line}: {rej.reason}")
    for w in result.warnings:
        lines.append(f"警告 (warning): {w}")
    if paths:
        lines.append(f"账单 (statement): {paths['statement']}")
        lines.append(f"拒收行 (rejected rows): {paths['rejects']} ({len(all_rejects(result))} 行)")
        if "agent_files" in paths:
            lines.append(f"个人账单 (per-agent statements): {paths['agents']}/ ({len(paths['agent_files'])} 个)")
    return lines
