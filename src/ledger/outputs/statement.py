"""The monthly statement as data. Knows nothing of Excel (see xlsx.py)."""

from __future__ import annotations

from decimal import Decimal

import attrs

from ledger.core.entries import APPLIED, BONUS, FINE, PENDING, TO_CONFIRM, Entry, sort_key
from ledger.core.money import ZERO, total


@attrs.frozen
class AgentTotals:
    agent: str
    fines: Decimal  # 罚款, positive
    bonuses: Decimal  # 奖励, positive
    count: int  # applied entries
    pending: int  # pending entries
    to_confirm: int = 0  # judgement calls awaiting a person's confirmation (待复核)
    to_confirm_amount: Decimal = Decimal("0.00")  # what they would charge (fines) once confirmed

    @property
    def net(self) -> Decimal:  # 净额 = 奖励 − 罚款
        return self.bonuses - self.fines


@attrs.frozen
class RuleTotals:
    rule_id: str
    title: str
    location: str  # file:line
    kind: str
    amount_text: str  # the amount as written in the policy, e.g. "10元"
    count: int
    pending: int
    total: Decimal
    effective: str = ""
    to_confirm: int = 0  # "2024-05-15 起" for one version of a rule; "" when always in force


@attrs.frozen
class FileInfo:
    path: str
    sha256: str
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    encoding: str = ""


@attrs.frozen
class RunInfo:
    month: str  # "2024-05"
    timezone: str
    policy_name: str
    policy_files: tuple[FileInfo, ...]
    event_files: tuple[FileInfo, ...]
    ignored_files: tuple[str, ...]
    data_end: str  # local time of the last event seen, "" when none
    duplicates_folded: int
    version: str
    # Events in the month per type, and whether any rule reads that type.
    event_types: tuple[tuple[str, int, bool], ...] = ()
    warnings: tuple[str, ...] = ()
    # The policy's `floor`s as the 说明 sheet shows them: "最低工资（奖金计入工资）".
    floors: tuple[str, ...] = ()
    # A closed month's seal digest (the sha256 of closed-entries.tsv, period/close.py), shown
    # on the 说明 sheet of the statement HR receives; "" for a month not being closed.
    seal: str = ""


@attrs.frozen
class Statement:
    info: RunInfo
    agents: tuple[AgentTotals, ...]  # sorted by agent
    rules: tuple[RuleTotals, ...]  # in policy order
    entries: tuple[Entry, ...]  # stable order (sort_key)
    payroll: object = None  # payroll.Payroll: roster, caps, points and metrics (None: none of them)

    @property
    def total_fines(self) -> Decimal:
        return total(a.fines for a in self.agents)

    @property
    def total_bonuses(self) -> Decimal:
        return total(a.bonuses for a in self.agents)

    @property
    def to_confirm(self) -> int:
        """Lines awaiting confirmation (待复核): shown, counted in no total."""
        return sum(a.to_confirm for a in self.agents)


def build(info: RunInfo, entries: list[Entry], agents_seen: set[str], rules: list[tuple]) -> Statement:
    """Assemble the statement: every agent with any event in the month gets a row.

    `rules` is (rule_id, title, location, kind, amount_text[, effective]) in policy
    order, one per rule version; entries are counted against the version (its location)
    that produced them.
    Totals are sums of the entry lines, so the workbook adds up line by line.
    """
    entries = sorted(entries, key=sort_key)
    by_agent: dict[str, list[Entry]] = {a: [] for a in agents_seen}
    for e in entries:
        by_agent.setdefault(e.agent, []).append(e)
    agents = tuple(
        AgentTotals(
            agent=name,
            fines=total(e.amount for e in es if e.kind == FINE and e.status == APPLIED),
            bonuses=total(e.amount for e in es if e.kind == BONUS and e.status == APPLIED),
            count=sum(1 for e in es if e.status == APPLIED),
            pending=sum(1 for e in es if e.status == PENDING),
            to_confirm=sum(1 for e in es if e.status == TO_CONFIRM),
            to_confirm_amount=total(e.amount for e in es if e.status == TO_CONFIRM and e.kind == FINE
                                    and e.amount is not None),
        )
        for name, es in sorted(by_agent.items())
    )
    by_rule: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        by_rule.setdefault((e.rule_id, e.rule_location), []).append(e)

    def totals(rid, title, loc, kind, amount_text, effective=""):
        mine = by_rule.get((rid, loc), [])
        return RuleTotals(
            rule_id=rid, title=title, location=loc, kind=kind, amount_text=amount_text,
            count=sum(1 for e in mine if e.status == APPLIED),
            pending=sum(1 for e in mine if e.status == PENDING),
            total=total(e.amount for e in mine if e.status == APPLIED) or ZERO,
            effective=effective,
            to_confirm=sum(1 for e in mine if e.status == TO_CONFIRM),
        )

    rule_rows = tuple(totals(*r) for r in rules)
    return Statement(info=info, agents=agents, rules=rule_rows, entries=tuple(entries))
