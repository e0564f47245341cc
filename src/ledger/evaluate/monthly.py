"""Incentives after the event rules: escalation by occurrence, and monthly rules over metrics.

Escalation (`fine 6元 then 12元`, `points 6分 then 12分`): the applied lines of one
rule id for one agent in the month, in time order (ts, then input order), are its
1st, 2nd, … occurrences; the n-th pays the n-th amount, the last amount repeating.
Pending lines are not occurrences (they have no amount yet); when they resolve, a
re-run numbers them in time order.

Monthly rules: for every agent with events in the month, the rule's `when` (if any)
over the agent's metrics, then its tiers top to bottom: the first that holds pays,
and only it. A blank metric (None) makes every comparison with it false (`!=` true),
as missing values do in event rules. Entries are dated at 00:00 of the month's first
day, so they sort before the month's event lines.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from ledger.core.entries import APPLIED, PENDING, TO_CONFIRM, Entry, entry_id, sort_key
from ledger.core.money import round_line
from ledger.evaluate.metrics import UNITS, display
from ledger.lang import ast
from ledger.lang.policy import Policy


def escalate(policy: Policy, entries: list[Entry]) -> list[Entry]:
    """Apply `then` amounts and points to the applied lines, by occurrence."""
    rules = {(r.id.value, f"{r.pos.filename}:{r.pos.line}"): r for r in policy.rules}
    counts: dict[tuple[str, str], int] = {}
    out = []
    for e in sorted(entries, key=sort_key):
        rule = rules.get((e.rule_id, e.rule_location))
        if rule is None or e.status not in (APPLIED, TO_CONFIRM) or not (rule.amount.steps or len(rule.amount.points) > 1):
            out.append(e)
            continue
        key = (e.rule_id, e.agent)
        n = counts[key] = counts.get(key, 0) + 1
        amount = e.amount if rule.amount.percent is not None else round_line(rule.amount.amount_for(n))
        note = f"本月第 {n} 次 (occurrence {n} this month)"
        out.append(attrs.evolve(e, amount=amount, points=rule.amount.points_for(n),
                                evidence=f"{e.evidence}；{note}" if e.evidence else note))
    return out


def evaluate(policy: Policy, month, metrics: dict, agents, pending_fines: dict | None = None) -> list[Entry]:
    """Monthly rules for every agent. `pending_fines` (agent -> pending fine lines): a
    `count fines` metric could still grow by that many; when the outcome (which tier)
    differs between "none of them become fines" and "all of them do", the line is
    pending instead of a guess."""

    pending_fines = pending_fines or {}
    fines_metrics = [m.name.value for m in policy.metrics if m.kind == "fines"]
    out = []
    from datetime import timedelta

    last_day = (month.end_local - timedelta(days=1)).date()
    for rule in policy.monthly:
        eff = rule.effective
        if eff is not None and not (eff.start <= last_day and (eff.until is None or last_day <= eff.until)):
            continue  # this version is not in force at the month's end
        loc = f"{rule.pos.filename}:{rule.pos.line}"
        for agent in sorted(agents):
            values = {name: per_agent.get(agent) for name, per_agent in metrics.items()}
            n = _outcome(rule, values)
            status = APPLIED
            extra = pending_fines.get(agent, 0)
            if extra and fines_metrics:
                worst = dict(values)
                for name in fines_metrics:
                    if worst.get(name) is not None:
                        worst[name] += extra
                other = _outcome(rule, worst)
                if other != n:
                    status, n = PENDING, n or other
            if n is None:
                continue
            tier = rule.tiers[n - 1]
            shown = "；".join(f"{name} = {describe(values.get(name), policy.metric_types.get(name))}"
                             for name in _metric_names(rule))
            which = (f"第 {n} 档 [{_tier_source(rule, tier)}]（按顺序第一个成立的档位）" if rule.tiered
                     else "条件成立 (the condition holds)")
            note = (f"；有 {extra} 条罚款待定，结果要等它们确定 (pending)" if status == PENDING else "")
            out.append(Entry(
                id=entry_id(rule.id.value, f"month:{month.text}", agent),
                rule_id=rule.id.value, rule_title=rule.title or rule.id.value, rule_location=loc,
                kind=tier.amount.kind, agent=agent, ts=month.start_local,
                amount=round_line(tier.amount.value) if status == APPLIED else None, status=status,
                event_id=f"month:{month.text}", event_seq=-1,
                evidence=f"{month.text} 月度：{shown}；{which}{note}"))
    return out


def _outcome(rule: ast.MonthlyRule, values: dict) -> int | None:
    """The 1-based tier that pays, or None."""
    if rule.when is not None and not holds(rule.when, values):
        return None
    for n, tier in enumerate(rule.tiers, 1):
        if holds(tier.when, values):
            return n
    return None


def holds(expr, values: dict) -> bool:
    """A monthly condition over metric values; never raises, None compares false."""
    if isinstance(expr, ast.BoolOp):
        parts = (holds(o, values) for o in expr.operands)
        return all(parts) if expr.op == "and" else any(parts)
    if isinstance(expr, ast.Not):
        return not holds(expr.operand, values)
    if isinstance(expr, ast.Literal) and expr.type == "bool":
        return bool(expr.value)
    if isinstance(expr, ast.Compare):
        a, b = _value(expr.left, values), _value(expr.right, values)
        if a is None or b is None:
            return expr.op == "!="
        return {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[expr.op]
    return False


def _value(expr, values: dict):
    if isinstance(expr, ast.Literal):
        if expr.type == "percent":
            return expr.value / 100  # ratios are fractions
        if expr.type == "duration":
            return Decimal(str(expr.value.total_seconds()))
        return expr.value
    if isinstance(expr, ast.Ref):
        return values.get(expr.name.value)
    return None


def describe(value: Decimal | None, type_: str | None) -> str:
    if value is None:
        return "（空：分母为 0 或没有数据）"
    shown = display(value, type_ or "number")
    if type_ == "percent":
        return f"{shown * 100:.2f}%"
    return f"{shown}{UNITS.get(type_ or 'number', '')}"


def _metric_names(rule: ast.MonthlyRule) -> list[str]:
    found: list[str] = []

    def walk(e):
        if isinstance(e, ast.Ref) and e.name.value not in found:
            found.append(e.name.value)
        for child in (getattr(e, "operands", ()) or ()):
            walk(child)
        for attr in ("left", "right", "operand"):
            if hasattr(e, attr):
                walk(getattr(e, attr))

    if rule.when is not None:
        walk(rule.when)
    for t in rule.tiers:
        walk(t.when)
    return found


def _tier_source(rule: ast.MonthlyRule, tier: ast.Tier) -> str:
    lines = rule.source.splitlines()
    offset = tier.pos.line - rule.pos.line
    return lines[offset].strip() if 0 <= offset < len(lines) else ""
