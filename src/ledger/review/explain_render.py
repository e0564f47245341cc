"""The text of an explanation: what `ledger explain` prints.

`render_entry(EntryExplanation) -> str` and `render_event(EventExplanation) -> str` are
pure functions of the records in `review.explain_records`: no database, no policy, no
clock. The text is bilingual (Chinese first, English in parentheses), in sections — rule,
trigger event, conditions (◀ marks the tests that decide), windows, evidence for other
rules, transcript — with no runs of blank lines, ending in exactly one newline. Tests
compare this text; a change to it is a change of `ledger explain`'s output.
"""

from __future__ import annotations

from datetime import datetime

from ledger.core.entries import FINE, PENDING, TO_CONFIRM
from ledger.core.month import format_ts
from ledger.review.explain_records import (
    CHARGED,
    NOT_APPLICABLE,
    ConditionNode,
    EntryExplanation,
    EventExplanation,
    EventInfo,
    EvidenceUse,
    RuleCheck,
    RuleInfo,
    Transcript,
    clip,
    value_text,
    verdict_label,
    yes_no,
)


def _finish(lines: list[str]) -> str:
    """Join, without runs of blank lines."""
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1].strip()):
            out.append(line if line.strip() else "")
    return "\n".join(out).rstrip() + "\n"


def render_entry(x: EntryExplanation) -> str:
    e, check = x.entry, x.check
    amount = f"{e.amount}元" if e.amount is not None else "（待定，无金额）"
    status = {PENDING: "待定 (pending)", TO_CONFIRM: "待复核 (to confirm: counted in no total)"}.get(
        e.status, "已确认 (applied)")
    out = [f"明细 {e.id} · {x.month} · {verdict_label(CHARGED, e.kind)} {amount} · {e.agent} · {status}"]
    if check is not None:
        out.append(f"结论 (verdict): {check.verdict_label}：{check.reason}")
    out.append("")
    out += _money_section(x)
    if check is None:  # a line of no event: a monthly rule's, 人工调整, 上月更正
        if x.rule is not None:
            out += _rule_section(x.rule)
        out += ["依据 (evidence)", f"  {e.evidence}" if e.evidence else "  （无）", ""]
        return _finish(out)
    out += _rule_section(check.rule)
    out += _event_section(x.event)
    out += _conditions_section(check)
    out += _windows_section(check, x.data_end)
    out += _transcript_section(x.transcript)
    return _finish(out)


def _money_section(x: EntryExplanation) -> list[str]:
    m, e = x.money, x.entry
    if m is None:
        return []
    out = ["账单金额 (on the statement)"]
    if e.status == PENDING:
        out.append("  待定：截止时间晚于数据截止，本月不计金额 (pending: no amount yet)")
    elif e.status == TO_CONFIRM:
        out.append(f"  待复核：确认前不计入任何合计，确认后应扣 {e.amount}元 (counted once confirmed)")
    elif e.kind == FINE:
        out.append(f"  应扣 {m.owed}元 · 减免 {m.relieved}元 · 实扣 {m.deducted}元 (owed · relieved · deducted)")
    else:
        out.append(f"  奖励 {m.deducted}元 (bonus)")
    out.append(f"  员工 (employee): {m.employee}")
    if m.adjusted:
        out.append(f"  调整 (adjustment): {m.adjusted}")
    if m.cap_note:
        out.append(f"  {m.cap_note}")
    elif m.limit and e.kind == FINE and e.status != PENDING:
        out.append(f"  本月扣款上限 (the employee's limit): {m.limit}；这一条没有被减免 (not cut)")
    return out + [""]


def render_event(x: EventExplanation) -> str:
    out = [f"事件 {x.event.id} · {x.event.type} · {format_ts(x.event.ts)} · 查看月份 {x.month}", ""]
    out += _event_section(x.event, title="触发事件 (event)")
    out.append("规则 (rules)")
    if not x.declared:
        out.append(f"  规则文件没有声明 {x.event.type} 事件，没有规则读取它 (the policy does not declare this type)")
    elif not x.checks:
        out.append(f"  没有规则以 {x.event.type} 事件触发 (no rule is triggered by this type)")
    for check in x.checks:
        r = check.rule
        out.append(f"── {r.id}「{r.title}」 {r.location} · {verdict_label(CHARGED, r.kind)} {r.amount}")
        out.append(f"   结论 (verdict): {check.verdict_label}：{check.reason}")
        out += _indent(_conditions_section(check), "   ")
        if check.windows and check.verdict == NOT_APPLICABLE:
            out += _indent(_windows_brief(check), "   ")
        elif check.windows:
            out += _indent(_windows_section(check, None), "   ")
    if x.evidence:
        out += _evidence_section(x.evidence)
    if x.data_end is not None:
        out += [f"数据截止 (data end): {format_ts(x.data_end)}", ""]
    out += _transcript_section(x.transcript)
    return _finish(out)


def _indent(lines: list[str], pad: str) -> list[str]:
    return [pad + line if line else line for line in lines]


def _rule_section(rule: RuleInfo) -> list[str]:
    out = ["规则 (rule)",
           f"  {rule.id}「{rule.title}」 · {verdict_label(CHARGED, rule.kind)} {rule.amount}",
           f"  位置 (location): {rule.location}"]
    out += [f"  │ {line}" for line in rule.source.rstrip().splitlines()]
    return out + [""]


def _event_section(event: EventInfo, title: str = "触发事件 (trigger event)") -> list[str]:
    out = [title,
           f"  编号 (id): {event.id}",
           f"  时间 (time): {format_ts(event.ts)}（{event.month}）",
           f"  类型 (type): {event.type}",
           f"  来源 (source): {event.source}"]
    out += [f"  {name} = {value}" for name, value in event.fields]
    return out + [""]


def _conditions_section(check: RuleCheck) -> list[str]:
    out = ["条件 (conditions)"]
    if check.filter.source:
        out.append(f"  成员筛选 (filter) {check.filter.source} → {yes_no(check.filter.value)}")
        out += _nodes(check.filter.nodes)
    else:
        out.append("  成员筛选 (filter)：无，这类事件都是成员 (every event of the type is a member)")
    if check.sequence:
        out.append(f"  序列 (sequence): {check.sequence}")
    if check.when.source:
        out.append(f"  {check.when.source} → {yes_no(check.when.value)}")
        if check.when.value is None:
            out.append("    不是成员，不计算 when (not a member: when is not evaluated)")
        out += _nodes(check.when.nodes)
    else:
        out.append("  when：无，每个成员都触发 (every member triggers)")
    if any(n.decisive for n in check.filter.nodes + check.when.nodes):
        out.append("  ◀ = 决定结果的条件 (decides the result)")
    if not check.in_month:
        out.append("  （该事件不在本月，以上只供参考 (the event is outside the month)）")
    return out + [""]


def _nodes(nodes: tuple[ConditionNode, ...]) -> list[str]:
    """The condition tree under its clause line; an `and`/`or` root is that line itself."""
    if nodes and nodes[0].kind in ("and", "or"):
        nodes, base = nodes[1:], 1
    else:
        base = 0
    out = []
    for node in nodes:
        pad = "    " + "  " * (node.depth - base)
        line = f"{pad}{yes_no(node.value)}  {node.text}"
        details = [f"{o.text} = {value_text(clip(o.value) if isinstance(o.value, str) else o.value)}"
                   for o in node.operands]
        if node.matched:
            details.append("命中 (matched): " + " ".join(node.matched))
        if node.cancelled:
            details.append("例外取消 (cancelled by an exception): "
                           + " ".join(f"{w}（在“{x}”里）" for w, x in node.cancelled))
        if details:
            line += f"    [{'; '.join(details)}]"
        if node.decisive:
            line += "  ◀"
        out.append(line)
    return out


def _windows_section(check: RuleCheck, data_end: datetime | None) -> list[str]:
    out = ["时间窗口 (windows)"]
    if not check.windows:
        out.append("  无 (none)：规则没有 unless 窗口")
    for w in check.windows:
        out.append(f"  窗口 {w.number} (window): {w.source}")
        out.append(f"    查找范围 (span): {w.span_text}")
        for key, value in w.keys:
            shown = value if value is not None else "（缺失，找不到任何事件 (missing key never matches)）"
            out.append(f"    同一 (same): {key} = {shown}")
        outcome = "免除 (excused)" if w.excused else "未免除 (not excused)"
        out.append(f"    找到 {w.found} 条，需要 {w.required} 条 (found {w.found}, required {w.required}) → {outcome}")
        out += [f"      ✓ {b.id} {format_ts(b.ts)} {b.summary}" for b in w.events]
        if w.found > len(w.events):
            out.append(f"      … 共 {w.found} 条，只列出 {len(w.events)} 条 (more not shown)")
        if w.others:
            listed = f"，列出 {len(w.other_events)} 条" if w.others > len(w.other_events) else ""
            out.append(f"    范围内不符合 {w.filter_text} 的事件 {w.others} 条{listed} (in the span but not matching):")
            out += [f"      ✗ {b.id} {format_ts(b.ts)} {b.summary}" for b in w.other_events]
        if w.next_after is not None and not w.excused:
            b = w.next_after
            out.append(f"    范围之后第一条符合的事件 (first match after the span): {b.id} {format_ts(b.ts)} {b.summary}")
        if w.beyond_data_end and not w.excused:
            out.append(f"    期限 {format_ts(w.deadline)} 晚于数据截止，结果待定 (deadline after the data end: pending)")
    if data_end is not None:
        out.append(f"  数据截止 (data end): {format_ts(data_end)}")
    return out + [""]


def _windows_brief(check: RuleCheck) -> list[str]:
    out = ["时间窗口 (windows)：规则不适用，仅列数目 (rule does not apply; counts only)"]
    for w in check.windows:
        out.append(f"  窗口 {w.number}: 找到 {w.found} 条，需要 {w.required} 条 — {w.source}")
    return out + [""]


def _evidence_section(uses: tuple[EvidenceUse, ...]) -> list[str]:
    out = ["作为其他规则的证据 (looked at as possible evidence)"]
    for use in uses:
        out.append(f"  规则 {use.rule.id} 窗口 {use.window}: {use.source}  ({use.rule.location})")
        if use.counted_total:
            out.append(f"    计入 {use.counted_total} 个触发事件的窗口 (counted for):")
            out += [f"      {t.id} {format_ts(t.ts)} → {t.outcome}" for t in use.counted]
            if use.counted_total > len(use.counted):
                out.append(f"      … 另有 {use.counted_total - len(use.counted)} 个")
        if use.not_counted:
            out.append(f"    {use.not_counted} 个触发事件的查找范围包含它，但它不符合 {use.filter_text}，不计入 "
                       f"(in the span, but the window's filter is false)")
    return out + [""]


def _transcript_section(t: Transcript | None) -> list[str]:
    if t is None:
        return ["会话记录 (transcript)", "  无：事件没有会话、买家、订单或客服可以关联 (nothing to relate it to)", ""]
    title = "会话记录 (transcript)" if t.key == "conversation" else "相关事件 (related events)"
    out = [f"{title} · {t.key} = {t.value}"]
    if t.omitted_before:
        out.append(f"     … 之前还有 {t.omitted_before} 条 (earlier events omitted)")
    for line in t.lines:
        mark = "▶" if line.trigger else " "
        who = line.sender or (line.type if line.type != "message" else "")
        kind = line.kind or ""
        what = f"「{clip(line.text, 60)}」" if line.text is not None else ""
        notes = (["◀ 触发事件 (trigger)"] if line.trigger else []) + list(line.tags)
        parts = [f"  {mark} {format_ts(line.ts)}", line.id, line.detail or who,
                 kind if line.type == "message" else "", what]
        text = " ".join(p for p in parts if p)
        out.append(text + (f"   {' '.join(notes)}" if notes else ""))
    if t.omitted_after:
        out.append(f"     … 之后还有 {t.omitted_after} 条 (later events omitted)")
    return out + [""]
