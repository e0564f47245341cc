"""Trends over the months in the output folder, read back from their statements.

Each `reports/<YYYY-MM>/ledger-<YYYY-MM>.xlsx` is read (sheets 汇总 and 规则, by column
title, so added columns do not matter): per account 罚款, 奖励, 净额, 次数, 实扣 when the
statement has it; per rule 次数 and 合计. The statement is what HR received, so the trend
shows the months as they were billed (a closed month as sealed). A statement that cannot
be read is named in `problems`, never silently skipped. Money is Decimal, to the fen.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import attrs
from python_calamine import CalamineWorkbook

from ledger.core.money import ZERO, round_line
from ledger.outputs.workbook import sheets

MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@attrs.frozen
class AgentMonth:
    fines: Decimal
    bonuses: Decimal
    count: int
    deducted: Decimal | None  # 实扣, when the statement has the column


@attrs.frozen
class RuleMonth:
    kind: str  # 罚款 | 奖励
    count: int
    total: Decimal


@attrs.frozen
class MonthTotals:
    month: str
    agents: dict  # account -> AgentMonth
    rules: dict  # rule id -> RuleMonth (one row per rule id: versions added up)

    @property
    def fines(self) -> Decimal:
        return sum((a.fines for a in self.agents.values()), ZERO)

    @property
    def bonuses(self) -> Decimal:
        return sum((a.bonuses for a in self.agents.values()), ZERO)


@attrs.frozen
class Trends:
    months: tuple[MonthTotals, ...]  # oldest first
    problems: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(m.month for m in self.months)

    def agents(self) -> tuple[str, ...]:
        return tuple(sorted({a for m in self.months for a in m.agents}))

    def rules(self) -> tuple[str, ...]:
        seen: list[str] = []
        for m in self.months:
            seen += [r for r in m.rules if r not in seen]
        return tuple(seen)

    def agent_series(self, agent: str, field: str = "fines") -> list[Decimal | None]:
        return [getattr(m.agents[agent], field) if agent in m.agents else None for m in self.months]

    def rule_series(self, rule: str, field: str = "total") -> list:
        return [getattr(m.rules[rule], field) if rule in m.rules else None for m in self.months]


def read(out_dir: Path) -> Trends:
    out_dir = Path(out_dir)
    months, problems = [], []
    folders = sorted(p for p in out_dir.iterdir() if p.is_dir() and MONTH.fullmatch(p.name)) if out_dir.is_dir() else []
    for folder in folders:
        path = folder / f"ledger-{folder.name}.xlsx"
        if not path.is_file():
            continue
        try:
            months.append(read_statement(path, folder.name))
        except Exception as exc:  # a damaged or foreign workbook: said, not skipped silently
            problems.append(f"{path.as_posix()}: 无法读取 (cannot read): {type(exc).__name__}: {exc}")
    return Trends(tuple(months), tuple(problems))


def read_statement(path: Path, month: str) -> MonthTotals:
    wb = CalamineWorkbook.from_path(str(path))
    summary = _rows(wb, sheets.SUMMARY)
    agents = {}
    for row in summary:
        agent = str(row.get("客服") or "").strip()
        if not agent or agent == sheets.TOTAL_LABEL:
            continue
        agents[agent] = AgentMonth(_money(row.get("罚款")), _money(row.get("奖励")), _int(row.get("次数")),
                                   _money(row["实扣"]) if "实扣" in row else None)
    rules: dict[str, RuleMonth] = {}
    for row in _rows(wb, sheets.RULES):
        rid = str(row.get("规则") or "").strip()
        if not rid:
            continue
        was = rules.get(rid)
        count, amount = _int(row.get("次数")), _money(row.get("合计"))
        kind = str(row.get("类型") or "")
        rules[rid] = RuleMonth(kind, count + (was.count if was else 0), amount + (was.total if was else ZERO))
    return MonthTotals(month, agents, rules)


def _rows(wb, name: str) -> list[dict]:
    if name not in wb.sheet_names:
        raise ValueError(f"没有工作表 {name} (no sheet {name})")
    rows = wb.get_sheet_by_name(name).to_python()
    if not rows:
        return []
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, r)) for r in rows[1:]]


def _money(value) -> Decimal:
    if value in (None, ""):
        return ZERO
    return round_line(Decimal(str(value)))


def _int(value) -> int:
    if value in (None, ""):
        return 0
    return int(round(float(value)))
