"""Caps and floors: what may be deducted from one employee in one month.

Per employee — all accounts of one 工号 in the roster; an account not in the roster
is its own "employee" — the limit is the smallest of:

* every `cap fines 500元`;
* every `cap fines 20% of 基本工资 + 绩效工资`: the share of the named roster fields,
  rounded DOWN to 0.01元 (so the deduction never exceeds the share);
* `floor 最低工资`: 基本工资 + 绩效工资 + 奖励 − 扣款 ≥ 最低工资, i.e. at most
  基本工资 + 绩效工资 + 奖励 − 最低工资 (never below 0), 奖励 being the employee's
  applied bonus lines of the month; with `floor 最低工资 without bonuses` 奖励 is left out
  (基本工资 + 绩效工资 − 扣款 ≥ 最低工资).

Roster-based limits need a roster line; without one they cannot be computed and the
account keeps only the fixed caps (the run warns). The employee's applied fine lines
are then taken in time order (ts, input order, across all their accounts): each is
deducted while the limit lasts; the line that crosses it is deducted in part, and the
lines after it are kept with 0 applied. Every line that was cut keeps what it owed
(`Entry.owed`) and says why (`Entry.cap_note`), so 应扣 − 减免 = 实扣 line by line.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import attrs

from ledger.core.entries import APPLIED, BONUS, FINE, Entry, sort_key
from ledger.core.money import CENT, ZERO, total
from ledger.lang.policy import Policy


@attrs.frozen
class Limit:
    employee: str  # 工号, or the account when not in the roster
    limit: Decimal | None  # None: no cap applies
    reason: str  # which declaration gives the limit, with its numbers


def employee_key(account: str, by_account: dict) -> str:
    e = by_account.get(account)
    return e.id if e is not None else account


def limits(policy: Policy, entries: list[Entry], by_account: dict, warnings: list[str]) -> dict[str, Limit]:
    if not policy.caps and not policy.floors:
        return {}
    keys = sorted({employee_key(e.agent, by_account) for e in entries})
    employees = {e.id: e for e in by_account.values()}
    bonuses: dict[str, Decimal] = {}
    for e in entries:
        if e.kind == BONUS and e.status == APPLIED and e.amount is not None:
            k = employee_key(e.agent, by_account)
            bonuses[k] = bonuses.get(k, ZERO) + e.amount
    out = {}
    missing = []
    for key in keys:
        candidates: list[tuple[Decimal, str]] = []
        emp = employees.get(key)
        for cap in policy.caps:
            if cap.fixed is not None:
                candidates.append((cap.fixed, f"cap fines {cap.text}"))
            elif emp is not None:
                base = sum((emp.pay[f.value] for f in cap.fields), ZERO)
                share = (base * cap.percent / 100).quantize(CENT, rounding=ROUND_DOWN)
                candidates.append((share, f"cap fines {cap.text} = {cap.percent}% × {base}元 = {share}元"))
            else:
                missing.append(key)
        for floor in policy.floors:
            if emp is not None:
                minimum = emp.pay[floor.field.value]
                if floor.counts_bonuses:
                    bonus = bonuses.get(key, ZERO)
                    room = max(emp.wage + bonus - minimum, ZERO)
                    candidates.append((room, f"{floor.text}：基本工资+绩效工资 {emp.wage}元 + 奖励 {bonus}元 − "
                                             f"{floor.field.value} {minimum}元 = 最多扣 {room}元"))
                else:
                    room = max(emp.wage - minimum, ZERO)
                    candidates.append((room, f"{floor.text}：基本工资+绩效工资 {emp.wage}元（奖励不计入）− "
                                             f"{floor.field.value} {minimum}元 = 最多扣 {room}元"))
            else:
                missing.append(key)
        if candidates:
            value, reason = min(candidates, key=lambda c: c[0])
            out[key] = Limit(key, value, reason)
        else:
            out[key] = Limit(key, None, "")
    if missing:
        warnings.append(f"{len(set(missing))} 个账号没有花名册记录，按工资计算的上限和最低工资保障无法计算，只用固定上限 "
                        f"(no roster line: share caps and floor skipped): {first_few(sorted(set(missing)))}")
    return out


SHOWN = 5  # accounts named in a warning; the statement lists them all


def first_few(names: list[str]) -> str:
    """'a, b, c, d, e 等 120 个（全部见账单）' — a warning stays one short line in a 120-agent shop."""
    if len(names) <= SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:SHOWN])} 等 {len(names)} 个（全部见账单 汇总/说明，see the statement）"


def apply(policy: Policy, entries: list[Entry], by_account: dict, warnings: list[str]) -> tuple[list[Entry], dict[str, Limit]]:
    """The entries with caps applied (same order), and each employee's limit."""
    found = limits(policy, entries, by_account, warnings)
    if not found:
        return entries, found
    remaining = {k: lim.limit for k, lim in found.items()}
    out = []
    for e in sorted(entries, key=sort_key):
        if e.kind != FINE or e.status != APPLIED or not e.amount:
            out.append(e)
            continue
        key = employee_key(e.agent, by_account)
        left = remaining.get(key)
        if left is None or e.amount <= left:
            if left is not None:
                remaining[key] = left - e.amount
            out.append(e)
            continue
        applied = max(left, ZERO)
        remaining[key] = ZERO
        note = (f"已达本月扣款上限 (cap reached)：{found[key].reason}；本条应扣 {e.amount}元，"
                f"实扣 {applied}元，减免 {e.amount - applied}元")
        out.append(attrs.evolve(e, amount=applied, owed=e.amount, cap_note=note,
                                evidence=f"{e.evidence}；{note}" if e.evidence else note))
    return out, found


def unprotected_pay(policy: Policy, roster) -> str | None:
    """A warning when the roster gives wages but the policy declares no cap and no floor: the
    law limits deductions to 20% of the month's wage and keeps pay above the minimum wage,
    and without `cap`/`floor` the ledger cannot keep to that."""
    if roster is None or policy.caps or policy.floors:
        return None
    if not any(e.wage > 0 for e in roster.employees):
        return None
    return ("花名册里有工资，但规则没有声明扣款上限和最低工资保障 (no cap or floor declared)：每月扣款可能超过工资的20%"
            "或让工资低于最低工资。建议在规则里写 cap fines 20% of 基本工资 + 绩效工资 和 floor 最低工资")


def owed(e: Entry) -> Decimal | None:
    """What the line charged before any cap."""
    return e.owed if e.owed is not None else e.amount


def relieved(entries) -> Decimal:
    return total(owed(e) - e.amount for e in entries if e.owed is not None)
