"""Lint: warnings about policies that are valid but probably not what was meant.

Warnings never stop a run; `ledger check` prints them with file:line like errors.
"""

from __future__ import annotations

from datetime import date, timedelta

import attrs

from ledger.core.errors import Diagnostic, Position
from ledger.lang import ast
from ledger.lang.policy import Policy

# How far past the month end a month's exports usually reach. A window longer than
# this leaves the last part of every month pending until next month's data arrives.
LOOKAHEAD = timedelta(days=1)


def lint(policy: Policy) -> list[Diagnostic]:
    """All warnings for a checked policy, in source order."""
    found = (_unused_word_lists(policy) + _long_windows(policy) + _certain_double_fines(policy)
             + version_gaps(policy))
    return sorted(found, key=lambda d: (d.position.filename, d.position.line, d.position.column))


def _warning(policy: Policy, pos: Position, message: str, hint: str | None = None) -> Diagnostic:
    lines = next((f.text.splitlines() for f in policy.files if f.filename == pos.filename), [])
    source = lines[pos.line - 1] if 0 < pos.line <= len(lines) else None
    return Diagnostic(pos, message, hint, "warning", source)


def _used_word_lists(policy: Policy) -> set[str]:
    used: set[str] = set()

    def walk(node):
        if isinstance(node, ast.WordSource) and node.name is not None:
            used.add(node.name.value)
        if attrs.has(type(node)):
            for child in attrs.astuple(node, recurse=False):
                for c in (child if isinstance(child, tuple) else (child,)):
                    walk(c)

    for node in list(policy.rules) + list(policy.metrics):
        walk(node)
    return used


def _unused_word_lists(policy: Policy) -> list[Diagnostic]:
    """Word lists no rule or metric reads. Not said while a declaration failed to parse: the
    rule that reads a list may be that one, and the warning would only mislead."""
    if any(f.unparsed for f in policy.files):
        return []
    used = _used_word_lists(policy)
    return [_warning(policy, wl.name.pos, f"词表 {wl.name.value} 没有被任何规则使用 (unused word list)")
            for f in policy.files for wl in f.words if wl.name.value not in used]


def _long_windows(policy: Policy) -> list[Diagnostic]:
    out = []
    for rule in policy.rules:
        for w in rule.unless:
            if w.kind in ("within", "range") and w.d2 > LOOKAHEAD:
                out.append(_warning(
                    policy, w.pos,
                    f"时间窗口 {_days(w.d2)} 超过月末之后通常能拿到的数据 ({_days(LOOKAHEAD)})：月底这段时间的结果会一直待定，"
                    f"直到下个月的数据导入 (window longer than the month's look-ahead)"))
    return out


def _days(d: timedelta) -> str:
    hours = d.total_seconds() / 3600
    return f"{hours / 24:g} 天" if hours >= 24 else f"{hours:g} 小时"


def _certain_double_fines(policy: Policy) -> list[Diagnostic]:
    """Two rules that fire on exactly the same events: same type, same filter, no
    `when` and no `unless`. (Overlaps that depend on the data are shown by
    `ledger check --month`, which counts the events fined twice.)"""
    out = []
    unconditional: dict[tuple, ast.Rule] = {}
    for rule in policy.rules:
        if rule.when is not None or rule.unless:
            continue
        key = (rule.on.event.value, _shape(rule.on.filter), str(rule.effective))
        if key in unconditional:
            first = unconditional[key]
            out.append(_warning(policy, rule.id.pos,
                                f"规则 {rule.id.value} 和 {first.id.value}（{first.pos}）对同样的事件都会{_kind(rule)}：同一事件被罚两次 "
                                f"(two rules fire on the same events)"))
        else:
            unconditional[key] = rule
    return out


def _kind(rule: ast.Rule) -> str:
    return "罚款" if rule.amount.kind == "fine" else "奖励"


def _shape(node):
    """A node without positions, for comparing conditions as written."""
    if attrs.has(type(node)):
        return (type(node).__name__,) + tuple(
            _shape(getattr(node, f.name)) for f in attrs.fields(type(node))
            if f.name not in ("pos", "source", "when_source"))
    if isinstance(node, tuple):
        return tuple(_shape(c) for c in node)
    return node


def double_fines(entries) -> list[str]:
    """From a month's entries: events fined by two or more rules, grouped by rule set."""
    by_event: dict[tuple[str, str], set[str]] = {}
    for e in entries:
        if e.kind == "fine":
            by_event.setdefault((e.event_id, e.agent), set()).add(e.rule_id)
    groups: dict[tuple[str, ...], list[str]] = {}
    for (event_id, _), rules in by_event.items():
        if len(rules) > 1:
            groups.setdefault(tuple(sorted(rules)), []).append(event_id)
    return [f"{len(ids)} 个事件同时被 {'、'.join(rules)} 罚款（例如 {', '.join(sorted(set(ids))[:3])}）"
            f" (one event fined by several rules)" for rules, ids in sorted(groups.items())]


def version_gaps(policy: Policy) -> list[Diagnostic]:
    """Days (event rules) or month ends (monthly rules) that no version of a rule split
    with `effective` covers: `until 05-14` then `effective 05-16` loses 05-15's fines.
    Overlapping versions are errors (the checker); a gap is allowed (a rule may pause) but
    rarely meant, so it is a warning."""
    out = []
    for rules, monthly in ((policy.rules, False), (policy.monthly, True)):
        versions: dict[str, list] = {}
        for rule in rules:
            if rule.effective is not None:
                versions.setdefault(rule.id.value, []).append(rule)
        unparsed = {n for f in policy.files for n in f.unparsed}
        for name, vs in versions.items():
            if name in unparsed:
                continue  # a version failed to parse: the gap may be its period
            vs = sorted(vs, key=lambda r: r.effective.start)
            for old, new in zip(vs, vs[1:]):
                until, start = old.effective.until, new.effective.start
                if until is None or start <= until + timedelta(days=1):
                    continue
                first, last = until + timedelta(days=1), start - timedelta(days=1)
                if monthly:
                    ends = _month_ends(first, last)
                    if not ends:
                        continue
                    missing = "、".join(d.strftime("%Y-%m") for d in ends)
                    message = (f"规则 {name} 在 {missing} 没有生效的版本（{old.pos} 的版本到 {until} 止，"
                               f"下一版本 {start} 起）：这些月份不计算 (no version covers these months)")
                else:
                    days = first.isoformat() if first == last else f"{first} 至 {last}"
                    message = (f"规则 {name} 在 {days} 没有生效的版本（{old.pos} 的版本到 {until} 止，"
                               f"下一版本 {start} 起）：这些天的事件不处罚 (no version covers these days)")
                out.append(_warning(policy, new.effective.pos, message,
                                    f"提示：如果是想接上，请写 effective {first} (to continue without a gap)"))
    return out


def _month_ends(first: date, last: date) -> list[date]:
    """The last days of months within first..last."""
    ends = []
    d = first
    while d <= last:
        nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        end = nxt - timedelta(days=1)
        if end <= last:
            ends.append(end)
        d = nxt
    return ends


def diagnostics_json(diagnostics, notes=()) -> dict:
    """`ledger check --format json`: every diagnostic with its place; `notes` are
    (where, text) warnings about the data (the roster, a month) without a policy line."""
    items = [{"file": d.position.filename, "line": d.position.line, "column": d.position.column,
              "end_column": d.position.end_column, "severity": d.severity, "message": d.message,
              "hint": d.hint} for d in diagnostics]
    items += [{"file": where, "line": None, "column": None, "end_column": None, "severity": "warning",
               "message": text, "hint": None} for where, text in notes]
    errors = sum(1 for i in items if i["severity"] == "error")
    return {"ok": errors == 0, "errors": errors, "warnings": len(items) - errors, "diagnostics": items}
