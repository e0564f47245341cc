"""Sheets for pay: 汇总's extra columns, HR导入 and 指标 (tables only; xlsx.py writes them).

* 汇总 gains 工号, 姓名, 部门, 应扣, 减免, 实扣, 平台扣分 and the metrics when the run
  has a roster, caps, points or metrics (otherwise it stays as it was).
* HR导入 (with a roster): exactly 工号, 姓名, 月份, 扣款, 奖金, 净额, one row per
  employee, numbers numeric, no footer, nothing else: a payroll import template.
* 指标: every metric per account; a blank cell is a metric with no value (division by
  zero, or an average of nothing).
"""

from __future__ import annotations

import attrs

from ledger.core.entries import APPLIED, FINE
from ledger.core.money import total
from ledger.evaluate.caps import owed
from ledger.outputs.workbook.cells import Table
from ledger.outputs.workbook.charts import charts_table

HR = "HR导入"
METRICS = "指标"
HR_HEADER = ("工号", "姓名", "月份", "扣款", "奖金", "净额")
PAY_HEADER = ("工号", "姓名", "部门", "应扣", "减免", "实扣", "平台扣分")


def _extended(statement) -> bool:
    p = statement.payroll
    if p is None:
        return False
    return p.has_roster or bool(p.metric_columns) or any(a.points or a.relieved for a in p.accounts)


DETAIL_EXTRA = ("应扣", "减免", "平台扣分")


def with_detail_columns(detail, statement):
    """明细 gains 应扣 (before a cap), 减免 (what the cap relieved) and 平台扣分 per line."""
    if not _extended(statement):
        return detail

    base = detail.to_row

    def row(e):
        if e.status != APPLIED or e.amount is None:
            return base(e) + (None, None, e.points)
        if e.kind != FINE:
            return base(e) + (None, None, e.points)
        return base(e) + (owed(e), owed(e) - e.amount, e.points)

    return attrs.evolve(detail, header=detail.header + DETAIL_EXTRA, to_row=row)


def with_payroll_columns(summary, statement):
    if not _extended(statement):
        return summary
    p = statement.payroll
    extra = {a.agent: a for a in p.accounts}
    metric_rows = {r[0]: r[1:] for r in p.metric_rows}
    header = summary.header + PAY_HEADER + tuple(c.header for c in p.metric_columns)
    blank = (None,) * len(p.metric_columns)

    def row(item):
        base = summary.to_row(item)
        a = extra.get(base[0])
        if a is None:
            return base + (None,) * len(PAY_HEADER) + blank
        who = a.employee_id if a.in_roster or not p.has_roster else "（不在花名册）"
        return base + (who, a.name, a.department, a.owed, a.relieved, a.deducted, a.points) \
            + metric_rows.get(base[0], blank)

    rows = tuple(row(item) for item in summary.items)
    n = len(summary.header)
    footer = tuple(
        f + ("", "", "", total(r[n + 3] for r in rows), total(r[n + 4] for r in rows),
             total(r[n + 5] for r in rows), sum(r[n + 6] or 0 for r in rows)) + blank
        for f in summary.footer)
    return attrs.evolve(summary, header=header, items=rows, to_row=tuple, footer=footer)


def hr_rows(statement) -> tuple[tuple, ...]:
    """The HR导入 rows: 工号, 姓名, 月份, 扣款, 奖金, 净额 per employee."""
    return tuple((e.employee_id, e.name, e.month, e.deducted, e.bonuses, e.net) for e in statement.payroll.employees)


def payroll_tables(statement) -> list:

    p = statement.payroll
    if p is None:
        return []
    tables = []
    if p.has_roster:
        tables.append(Table(HR, HR_HEADER, hr_rows(statement)))
    if p.metric_columns:
        tables.append(Table(METRICS, ("客服",) + tuple(c.header for c in p.metric_columns), p.metric_rows))
    if _extended(statement):

        chart = charts_table(statement)
        if chart is not None:
            tables.append(chart)
    return tables
