"""What is on the statement: the sheets HR receives, as plain Python values.

`write_statement` is the entry point: `build_tables` lays out 汇总 (with the pay
columns, payroll_sheets.py), HR导入 and 指标, 图表 (charts.py), 明细 (split at the row
limit), 规则 and 说明; writer.py turns them into SpreadsheetML. Values are str,
Decimal, int, datetime or None — never markup, never a formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ledger.core.entries import APPLIED, BONUS, FINE, PENDING, TO_CONFIRM, Entry
from ledger.core.money import round_line, total
from ledger.outputs.statement import FileInfo, RunInfo, Statement
from ledger.outputs.workbook.cells import EXCEL_MAX_ROWS, Table
from ledger.outputs.workbook.payroll_sheets import (
    payroll_tables,
    with_detail_columns,
    with_payroll_columns,
)
from ledger.outputs.workbook.writer import write_tables

SUMMARY = "汇总"
DETAIL = "明细"
RULES = "规则"
INFO = "说明"
TOTAL_LABEL = "合计"
SUMMARY_HEADER = ("客服", "罚款", "奖励", "净额", "次数", "待定")
DETAIL_HEADER = ("编号", "客服", "时间", "规则", "说明", "类型", "状态", "金额",
                 "会话", "订单", "买家", "摘录", "依据", "触发事件", "规则位置")
RULES_HEADER = ("规则", "说明", "位置", "类型", "金额", "次数", "待定", "合计", "生效期间")
INFO_HEADER = ("项目", "内容")
KIND_LABELS = {FINE: "罚款", BONUS: "奖励"}
STATUS_LABELS = {APPLIED: "已计", PENDING: "待定", TO_CONFIRM: "待复核"}
# 汇总 and 规则 gain these columns only when some line awaits confirmation (the statements of
# policies without `confirm` rules stay as they were).
CONFIRM_HEADER = ("待复核", "待复核金额")


def write_statement(statement: Statement, path: Path, *, max_rows: int = EXCEL_MAX_ROWS) -> None:
    """Write the statement workbook to `path`, atomically and reproducibly."""
    if not 2 <= max_rows <= EXCEL_MAX_ROWS:
        raise ValueError(f"max_rows must be between 2 and {EXCEL_MAX_ROWS}, not {max_rows}")
    write_tables(build_tables(statement, max_rows), statement.info, Path(path))


def build_tables(statement: Statement, max_rows: int = EXCEL_MAX_ROWS) -> list[Table]:
    """All sheets in workbook order: 汇总, 明细 (…明细N), 规则, 说明."""
    tables = [summary_table(statement), *detail_tables(statement.entries, max_rows),
              rules_table(statement), info_table(statement.info)]
    tables[0] = with_payroll_columns(tables[0], statement)
    tables = [with_detail_columns(t, statement) if t.header == DETAIL_HEADER else t for t in tables]
    return tables[:1] + payroll_tables(statement) + tables[1:]


def summary_table(statement: Statement) -> Table:
    agents = statement.agents
    confirm = statement.to_confirm > 0  # a sum over the agents: once, not once per row
    rows = tuple(
        (a.agent, round_line(a.fines), round_line(a.bonuses),
         round_line(a.bonuses) - round_line(a.fines), a.count, a.pending)
        + ((a.to_confirm, round_line(a.to_confirm_amount)) if confirm else ())
        for a in agents
    )
    # The total row sums the cells exactly as written, in Python: no formulas.
    footer = ((TOTAL_LABEL,
               total(r[1] for r in rows), total(r[2] for r in rows), total(r[3] for r in rows),
               sum(r[4] for r in rows), sum(r[5] for r in rows))
              + ((sum(r[6] for r in rows), total(r[7] for r in rows)) if confirm else ()),)
    header = SUMMARY_HEADER + (CONFIRM_HEADER if confirm else ())
    return Table(SUMMARY, header, rows, footer=footer)


def detail_tables(entries: Sequence[Entry], max_rows: int) -> list[Table]:
    """明细, 明细2, ...: at most `max_rows` rows per sheet, each with its own header."""
    per_sheet = max_rows - 1
    starts = range(0, max(len(entries), 1), per_sheet)
    return [
        Table(DETAIL if n == 1 else f"{DETAIL}{n}", DETAIL_HEADER,
              entries[start:start + per_sheet], detail_row)
        for n, start in enumerate(starts, 1)
    ]


def detail_row(e: Entry) -> tuple:
    amount = round_line(e.amount) if e.status == APPLIED and e.amount is not None else None
    return (e.id, e.agent, _excel_time(e.ts), e.rule_id, e.rule_title,
            KIND_LABELS.get(e.kind, e.kind), status_label(e), amount,
            e.conversation, e.order, e.buyer, e.excerpt, e.evidence, e.event_id,
            e.rule_location)


def status_label(e: Entry) -> str:
    """已计 / 待定 / 待复核（确认后 10.00元）: a line awaiting confirmation shows what it would
    charge, while its 金额 cell stays empty (it is in no total)."""
    if e.status == TO_CONFIRM and e.amount is not None:
        return f"待复核（确认后 {round_line(e.amount)}元）"
    return STATUS_LABELS.get(e.status, e.status)


def rules_table(statement: Statement) -> Table:
    confirm = statement.to_confirm > 0
    rows = tuple(
        (r.rule_id, r.title, r.location, KIND_LABELS.get(r.kind, r.kind), r.amount_text,
         r.count, r.pending, round_line(r.total), r.effective or "一直有效")
        + ((r.to_confirm,) if confirm else ())
        for r in statement.rules
    )
    return Table(RULES, RULES_HEADER + (CONFIRM_HEADER[:1] if confirm else ()), rows)


def info_table(info: RunInfo) -> Table:
    rows = [("月份", info.month), *seal_rows(info), ("时区", info.timezone),
        ("规则集名称", info.policy_name),
        ("ledger 版本", info.version),
        ("数据截止", info.data_end or "（无数据）"),
        ("合并重复行", info.duplicates_folded),
    ]
    rows += [("最低工资保障", floor) for floor in info.floors]
    for n, f in enumerate(info.policy_files, 1):
        rows += [(f"规则文件 {n}", f.path), (f"规则文件 {n} SHA-256", f.sha256)]
    for n, f in enumerate(info.event_files, 1):
        rows += _event_file_rows(n, f)
    for n, p in enumerate(info.ignored_files, 1):
        rows.append((f"忽略的文件 {n}", p))
    for type_, count, used in info.event_types:
        rows.append((f"本月事件 {type_}", count if used else f"{count}（没有规则使用）"))
    for n, w in enumerate(info.warnings, 1):
        rows.append((f"警告 {n}", w))
    rows += [
        ("读取行数合计", sum(f.read for f in info.event_files)),
        ("接受行数合计", sum(f.accepted for f in info.event_files)),
        ("拒收行数合计", sum(f.rejected for f in info.event_files)),
    ]
    return Table(INFO, INFO_HEADER, tuple(rows))


SEAL_LABEL = "结账校验码 (seal digest)"


def seal_rows(info: RunInfo) -> list[tuple]:
    """The seal's digest on a closed month's 说明 sheet (none on an open month)."""
    if not info.seal:
        return []
    return [(SEAL_LABEL, info.seal),
            ("结账说明", "本月已结账。结账校验码是 closed-entries.tsv 的 SHA-256；"
                        "请保存本账单，日后用它核对结账记录没有被改过")]


def _event_file_rows(n: int, f: FileInfo) -> list[tuple]:
    label = f"事件文件 {n}"
    return [(label, f.path), (f"{label} 编码", f.encoding), (f"{label} SHA-256", f.sha256),
            (f"{label} 读取行数", f.read), (f"{label} 接受行数", f.accepted),
            (f"{label} 拒收行数", f.rejected)]


def _excel_time(ts: datetime) -> datetime:
    """Local wall time as Excel holds it: no zone, whole seconds (what the format shows)."""
    # (Built anew, not ts.replace(tzinfo=None, microsecond=0): a third of the time per line.)
    return datetime(ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second)


