"""Per-employee totals for the statement: owed / relieved / deducted, bonuses, points,
metrics (汇总 extra columns, 指标 and HR导入 sheets). Pure data, no Excel."""

from __future__ import annotations

from decimal import Decimal

import attrs

from ledger.core.entries import APPLIED, BONUS, FINE
from ledger.core.money import total
from ledger.evaluate.caps import employee_key, owed
from ledger.evaluate.metrics import display


@attrs.frozen
class AccountExtra:
    """What 汇总 shows beyond fines and bonuses for one account."""

    agent: str
    employee_id: str  # "" when not in the roster
    name: str
    department: str
    owed: Decimal  # 应扣: fines before caps
    relieved: Decimal  # 减免 by caps
    deducted: Decimal  # 实扣 = 应扣 − 减免
    points: int  # 平台扣分
    in_roster: bool


@attrs.frozen
class EmployeeRow:
    """One line of HR导入."""

    employee_id: str
    name: str
    month: str
    deducted: Decimal  # 扣款
    bonuses: Decimal  # 奖金

    @property
    def net(self) -> Decimal:  # 净额 = 奖金 − 扣款
        return self.bonuses - self.deducted


@attrs.frozen
class MetricColumn:
    name: str
    title: str
    type: str

    @property
    def header(self) -> str:
        """The metric's own name (units: docs/statement.md — seconds, 元, percentage cells)."""
        return self.name


@attrs.frozen
class Payroll:
    accounts: tuple[AccountExtra, ...]  # sorted by account
    employees: tuple[EmployeeRow, ...]  # roster order; empty without a roster
    metric_columns: tuple[MetricColumn, ...]
    metric_rows: tuple[tuple, ...]  # (agent, value shown, …) sorted by agent
    has_roster: bool
    # Money on 汇总 that HR导入 does not carry: (account, 实扣, 奖金, reason). Empty without a roster.
    missing_from_hr: tuple[tuple[str, Decimal, Decimal, str], ...] = ()


def build(result, agents: list[str]) -> Payroll:
    roster = result.roster
    by_account = roster.by_account() if roster is not None else {}
    entries = [e for e in result.entries if e.status == APPLIED]
    of_agent: dict[str, list] = {}
    for e in entries:
        of_agent.setdefault(e.agent, []).append(e)
    accounts = []
    for a in agents:
        mine = of_agent.get(a, [])
        fines = [e for e in mine if e.kind == FINE]
        emp = by_account.get(a)
        deducted = total(e.amount for e in fines)
        owed_ = total(owed(e) for e in fines)
        accounts.append(AccountExtra(
            a, emp.id if emp else "", emp.name if emp else "", emp.department if emp else "",
            owed_, owed_ - deducted, deducted, sum(e.points or 0 for e in mine), emp is not None))
    employees = []
    if roster is not None:
        first, last = result.month.start_local.date(), (result.month.end_local).date()
        of_employee: dict[str, list] = {}
        for e in entries:
            if e.agent in by_account:
                of_employee.setdefault(employee_key(e.agent, by_account), []).append(e)
        for emp in roster.employees:
            mine = of_employee.get(emp.id, [])
            if not mine and not emp.active(first, last):
                continue
            employees.append(EmployeeRow(
                emp.id, emp.name, result.month.text,
                total(e.amount for e in mine if e.kind == FINE),
                total(e.amount for e in mine if e.kind == BONUS)))
    types = result.policy.metric_types
    columns = tuple(MetricColumn(m.name.value, m.title, types[m.name.value])
                    for m in result.policy.metrics if m.name.value in types)
    rows = tuple((a,) + tuple(display(result.metrics.get(c.name, {}).get(a), c.type) for c in columns)
                 for a in agents)
    missing = []
    if roster is not None:
        for a in agents:
            mine = of_agent.get(a, [])
            fines, bonuses = (total(e.amount for e in mine if e.kind == FINE),
                              total(e.amount for e in mine if e.kind == BONUS))
            if a not in by_account and (fines or bonuses):
                missing.append((a, fines, bonuses, "不在花名册 (not in roster)"))
    return Payroll(tuple(accounts), tuple(employees), columns, rows, roster is not None, tuple(missing))
