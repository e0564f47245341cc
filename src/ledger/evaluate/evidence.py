"""A rule's result rows → ledger entries, each with the evidence a supervisor can check.

`entries_of` turns the rows a compiled rule returned into `Entry` lines: one per
recipient (a missing agent is charged to NO_AGENT, never dropped), the amount fixed,
a percentage of the event's amount, or none while pending. The evidence says which
condition held, the sequence facts it read, and what each `unless` window searched
(its span) and found; pending lines say where the data ends.
"""

from __future__ import annotations

import re
from decimal import Decimal

from ledger.core.entries import APPLIED, NO_AGENT, PENDING, TO_CONFIRM, Entry, entry_id
from ledger.core.money import round_line
from ledger.core.month import format_ts
from ledger.evaluate.compile import CompiledRule
from ledger.lang.wordmatch import find

LONG_WHEN = 160  # characters of a `when` quoted in the evidence before it is cut


def entries_of(compiled: CompiledRule, names, rows, data_end_local, warnings) -> list[Entry]:
    rule = compiled.rule
    loc = f"{rule.pos.filename}:{rule.pos.line}"
    idx = {n: i for i, n in enumerate(names)}
    # column positions, looked up once (a big month has hundreds of thousands of rows)
    i_id, i_seq, i_ts, i_status = idx["id"], idx["seq"], idx["ts_local"], idx["_status"]
    i_conv, i_order, i_buyer, i_excerpt = idx["conversation"], idx["order"], idx["buyer"], idx["_excerpt"]
    to = [(idx[f"_to_{i}"], field == "agent") for i, field in enumerate(compiled.recipients)]
    evidence_of = evidence_writer(compiled, idx, data_end_local)
    rule_id, title, kind = rule.id.value, rule.title or rule.id.value, rule.amount.kind
    fixed = round_line(rule.amount.value) if rule.amount.value is not None else None
    points_applied = rule.amount.points_for(1)
    out = []
    unassigned = 0
    for row in rows:
        seen: set[str] = set()
        # A missing `agent` is charged to a visible placeholder, never dropped; other
        # recipient fields (`successor`) are charged only when named.
        recipients = [row[i] or (NO_AGENT if is_agent else None) for i, is_agent in to]
        if not any(recipients):
            recipients = [NO_AGENT]
        unassigned += NO_AGENT in recipients
        status = row[i_status]
        amount = None if status == PENDING else fixed
        if rule.amount.percent is not None and status != PENDING:
            base = row[idx["_base"]]
            if base is None:
                warnings.append(f"规则 {rule_id}: 事件 {row[i_id]} 没有 {rule.amount.of.value}，不计 (missing base amount)")
                continue
            amount = round_line(Decimal(base) * rule.amount.percent / 100)
        points = points_applied if status != PENDING else None
        evidence = evidence_of(row, status)
        if rule.confirm and status == APPLIED:  # a judgement call: counted once a person confirms it
            status = TO_CONFIRM
            evidence = f"{evidence}；待复核：经人确认后才计入 (awaits confirmation)"
        for who in recipients:
            if not who or who in seen:
                continue
            seen.add(who)
            out.append(Entry(
                id=entry_id(rule_id, row[i_id], who),
                rule_id=rule_id, rule_title=title, rule_location=loc,
                kind=kind, agent=who, ts=row[i_ts], amount=amount,
                status=status, event_id=row[i_id], event_seq=row[i_seq],
                conversation=row[i_conv], order=row[i_order],
                buyer=row[i_buyer], excerpt=row[i_excerpt], evidence=evidence,
                points=points,
            ))
    if unassigned:
        warnings.append(f"规则 {rule_id}: {unassigned} 个事件没有客服 (no agent)，记在 {NO_AGENT} 名下")
    return out


def evidence_writer(compiled: CompiledRule, idx, data_end_local):
    """evidence(row, status): the condition that held, the sequence facts it read, and
    what each window searched and found, in words a supervisor can check against the
    events. What does not depend on the row is worked out once per rule."""
    rule = compiled.rule
    i_ts = idx["ts_local"]
    when = rule.when_source
    if len(when) > LONG_WHEN:  # the matched words and patterns below say more than the whole condition
        when = f"{when[:LONG_WHEN]}…（条件原文见 {rule.pos.filename}:{rule.pos.line}）"
    head = f"[{rule.on.source}{' ' + when if when else ''}] 成立"
    patterns = [(p, re.compile(p)) for p in compiled.regex_tests]
    keys = ", ".join(k.value for k in rule.on.per)
    position = (idx["_position"], idx["_count"]) if "_position" in idx else None
    neighbours = [(f"{scope}.{field}", idx[f"_{scope}_{field}"]) for scope, field in compiled.neighbours]
    windows = [(w, idx[f"_found_{i}"]) for i, w in enumerate(rule.unless)]
    tests = compiled.word_tests
    i_text = idx["_excerpt"]
    ending = (f"数据截止 {format_ts(data_end_local)}，期限未到，结果待定 (pending)"
              if data_end_local is not None else None)

    said_of: dict = {}  # text -> what its words and patterns say (chat texts repeat: 好的, 在的, templates)

    def said(text) -> list[str]:
        """The parts of the evidence that depend only on the excerpt's text."""
        parts = said_of.get(text)
        if parts is None:
            parts = []
            if tests:  # the words that matched; a list that found nothing is named only when none matched
                found, absent = [], []
                for label, words, exceptions in tests:
                    match = find(text, words, exceptions)
                    cancelled = "（" + "，".join(f"{w} 在例外“{x}”里，不算" for w, x in match.cancelled) + "）" \
                        if match.cancelled else ""
                    if match.matched:
                        found.append(f"命中 {label}：{' '.join(match.matched)}{cancelled}")
                    else:
                        absent.append(f"不含 {label} 的词{cancelled}")
                parts += found or absent
            for _, pattern in patterns:  # the part of the text each `matches` found
                hit = pattern.search(text or "")
                if hit and hit.group(0):
                    parts.append(f"命中句式：「{hit.group(0)}」")
            said_of[text] = parts
        return parts

    def evidence(row, status) -> str:
        ts = row[i_ts]
        parts = [head]
        if tests or patterns:
            parts += said(row[i_text])
        if position is not None:
            facts = [f"同一 {keys} 序列中的第 {row[position[0]]}/{row[position[1]]} 条"]
            for name, i in neighbours:
                value = row[i]
                facts.append(f"{name} = {'（无）' if value is None else repr(str(value))}")
            parts.append("，".join(facts))
        for w, i in windows:
            found = row[i]
            if w.kind == "within":
                span = f"{format_ts(ts)} 至 {format_ts(ts + w.d2)}"
            elif w.kind == "range":
                span = f"{format_ts(ts + w.d1)} 至 {format_ts(ts + w.d2)}"
            elif w.kind == "before":
                span = f"{format_ts(ts)} 之前"
            else:
                span = f"{format_ts(ts - w.d2)} 至 {format_ts(ts)}"
            result = f"找到 {found} 条，需要 {w.count} 条" if w.count > 1 or found else "未找到"
            parts.append(f"[{w.source}] 查找范围 {span}：{result}")
        if status == PENDING and ending is not None:
            parts.append(ending)
        return "；".join(parts)

    return evidence
