"""Rendering `ledger diff`: a terminal report, a review comment (Markdown) and JSON.

Pure functions of `review.diff`'s records. The per-employee table is the money as HR
sees it on the statement (应扣 / 减免 / 实扣 / 奖励 / 净额); the per-account table, the rule
versions and the entry lists say where it comes from. In Markdown the first entries of
each list are shown and the full list follows in a collapsed `<details>` section.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Sequence

from ledger.core.display import ljust, rjust, width
from ledger.core.entries import FINE, PENDING, TO_CONFIRM, Entry
from ledger.core.money import ZERO
from ledger.review.diff import AgentChange, Delta, EmployeeChange, EntryChange, MonthsDiff, PolicyDiff, RuleChange

LIST_LIMIT = 50  # entries listed per section before "…及另外 N 条"


# ---------------------------------------------------------------- helpers

def _yuan(d: Decimal) -> str:
    return f"{(d if d else ZERO):,.2f}"  # never "-0.00"


def _signed(d: Decimal) -> str:
    """A change: explicit + for increases, 0.00 for none."""
    return f"{d:+,.2f}" if d else "0.00"


def _kind(kind: str) -> str:
    return "罚款" if kind == FINE else "奖励"


def _base_title(d: PolicyDiff) -> str:
    return f"{d.base_label} ({d.base_commit[:7]})" if d.base_commit else d.base_label


def _entry_amount(e: Entry) -> str:
    if e.status == PENDING:
        return "待定 (pending)"
    text = f"{_kind(e.kind)} {_yuan(e.amount)}元"
    if e.owed is not None and e.owed != e.amount:
        text += f"（应扣 {_yuan(e.owed)}，上限减免 {_yuan(e.owed - e.amount)}）"
    return text + ("（待复核 to confirm）" if e.status == TO_CONFIRM else "")


def _entry_row(e: Entry) -> tuple[str, ...]:
    return (e.id, e.rule_id, e.agent, f"{e.ts:%Y-%m-%d %H:%M:%S}", _entry_amount(e), f"事件 {e.event_id}")


def _change_row(c: EntryChange) -> tuple[str, ...]:
    e = c.after
    return (c.id, e.rule_id, e.agent, f"{e.ts:%Y-%m-%d %H:%M:%S}",
            f"{_entry_amount(c.before)} → {_entry_amount(c.after)}", f"事件 {e.event_id}")


def _capped(items: Sequence, limit: int) -> tuple[Sequence, int]:
    return items[:limit], max(len(items) - limit, 0)


def _rule_name(r: RuleChange) -> str:
    mark = {"added": "（新增 added）", "removed": "（删除 removed）"}.get(r.status, "")
    if r.status == "renamed":
        mark = f"（改名自 {r.old_id} renamed）"
    if r.status == "redated":
        mark = f"（生效期间改过，原为 {r.old_effective or '不限'} period changed）"
    return r.rule_id + (f" [{r.effective}]" if r.effective else "") + mark


def _amount_text(r: RuleChange) -> str:
    if r.status != "kept" or r.amount_before == r.amount_after:
        return r.amount_after or r.amount_before or ""
    return f"{r.amount_before} → {r.amount_after}"


def _no_change(d: PolicyDiff) -> str:
    if not d.events_in_month:
        return f"{d.month} 没有事件，无从比较金额 (no events in {d.month}: nothing to compare)"
    text = "金额没有变化 (no change in money)"
    if d.rules_moved:
        text += "：每位客服的金额不变，只是记到了不同的规则下 (amounts moved between rules)"
    return text


def _totals_line(d) -> str:
    def part(name: str, x: Delta) -> str:
        return f"{name} {_yuan(x.before)} → {_yuan(x.after)}（{_signed(x.change)}）"

    parts = [part("实扣", d.fines), part("奖励", d.bonuses), part("净额", d.net)]
    if isinstance(d, PolicyDiff) and (d.relieved.before or d.relieved.after):
        parts = [part("应扣", d.owed), part("减免", d.relieved)] + parts
    return " · ".join(parts) + " 元"


EMPLOYEE_HEADER = ("员工 (employee)", "账号", "应扣 之前", "应扣 之后", "减免 之前", "减免 之后",
                   "实扣 之前", "实扣 之后", "实扣 变化", "奖励 之前", "奖励 之后", "奖励 变化", "净额 变化")


def _employee_row(e: EmployeeChange) -> tuple[str, ...]:
    who = f"{e.employee} {e.name}" if e.name else e.employee
    return (who, "、".join(e.accounts), _yuan(e.owed.before), _yuan(e.owed.after), _yuan(e.relieved.before),
            _yuan(e.relieved.after), _yuan(e.deducted.before), _yuan(e.deducted.after), _signed(e.deducted.change),
            _yuan(e.bonuses.before), _yuan(e.bonuses.after), _signed(e.bonuses.change), _signed(e.net.change))


AGENT_HEADER = ("客服 (agent)", "罚款 之前", "罚款 之后", "罚款 变化", "奖励 之前", "奖励 之后", "奖励 变化",
                "净额 之前", "净额 之后", "净额 变化")
RULE_HEADER = ("规则 (rule)", "类型", "金额", "次数 之前", "次数 之后", "合计 之前", "合计 之后", "合计 变化")


def _agent_row(a: AgentChange) -> tuple[str, ...]:
    cells = [a.agent]
    for x in (a.fines, a.bonuses, a.net):
        cells += [_yuan(x.before), _yuan(x.after), _signed(x.change)]
    return tuple(cells)


def _rule_row(r: RuleChange) -> tuple[str, ...]:
    def count(n: int, pending: int, present: bool) -> str:
        return "—" if not present else (f"{n}（待定 {pending}）" if pending else str(n))

    return (_rule_name(r), _kind(r.kind), _amount_text(r),
            count(r.count_before, r.pending_before, r.status != "added"),
            count(r.count_after, r.pending_after, r.status != "removed") if r.status != "renamed"
            else count(r.count_after, r.pending_after, True),
            _yuan(r.total.before), _yuan(r.total.after), _signed(r.total.change))


# ---------------------------------------------------------------- text

def render_text(d: PolicyDiff | MonthsDiff, *, limit: int = LIST_LIMIT) -> str:
    """The diff for a terminal: rule text, then per month the money per employee, per
    account, per rule version, per entry, and the total."""
    months = d.months if isinstance(d, MonthsDiff) else (d,)
    first = months[0]
    title = first.month if len(months) == 1 else f"{months[0].month}..{months[-1].month}"
    out = [f"ledger diff {title} · 基准 (base) {_base_title(first)} → 工作区 (working) {first.working_label}", ""]
    out += ["规则文本变化 (rule text):"]
    if first.files:
        for f in first.files:
            out += list(f.lines) or [f"（{f.working_name or f.base_name}：空文件 empty file）"]
    else:
        out.append("  规则文本没有变化 (no change in rule text)")
    out.append("")
    for m in months:
        if len(months) > 1:
            out += [f"== {m.month} ==", ""]
        out += _month_text(m, limit)
    if len(months) > 1:
        out += [f"各月合计 (all months): {_totals_line(d)}"]
    return "\n".join(out) + "\n"


def _month_text(d: PolicyDiff, limit: int) -> list[str]:
    out = [f"警告 (warning): {w}" for w in d.warnings] + ([""] if d.warnings else [])
    if not d.money_changed:
        out += [_no_change(d), ""]
    if d.employees:
        out += ["每位员工 (per employee, as on the statement), 元:"]
        out += _table(EMPLOYEE_HEADER, [_employee_row(e) for e in d.employees], left=2)
        out.append("")
    out += ["每个账号 (per account), 元:"]
    out += _table(AGENT_HEADER, [_agent_row(a) for a in d.agents], left=1)
    out += ["", "每条规则 (per rule), 元:"]
    out += _table(RULE_HEADER, [_rule_row(r) for r in d.rules], left=3)
    for title, rows in _entry_sections(d):
        out += ["", title]
        shown, more = _capped(rows, limit)
        out += _table(None, shown, left=len(shown[0]))
        if more:
            out.append(f"  …及另外 {more} 条 (and {more} more)")
    if d.renamed:
        out += ["", f"改名的规则下不变的条目 (entries of a renamed rule, same money): {len(d.renamed)}"]
    out += ["", f"合计 (total): {_totals_line(d)}"]
    if d.pending[0] != d.pending[1]:
        out.append(f"待定条目 (pending): {d.pending[0]} → {d.pending[1]}")
    if d.to_confirm[0] != d.to_confirm[1]:
        out.append(f"待复核条目 (to confirm): {d.to_confirm[0]} → {d.to_confirm[1]}")
    return out + [""]


def _entry_sections(d: PolicyDiff) -> list[tuple[str, list[tuple[str, ...]]]]:
    """(title, rows) for the non-empty entry lists: id, rule, agent, time, amount, event."""
    sections = [
        (f"新出现的条目 (entries that appear): {len(d.appeared)}", [_entry_row(e) for e in d.appeared]),
        (f"消失的条目 (entries that disappear): {len(d.disappeared)}", [_entry_row(e) for e in d.disappeared]),
        (f"金额或状态变化的条目 (entries changed): {len(d.changed)}", [_change_row(c) for c in d.changed]),
    ]
    return [(title, rows) for title, rows in sections if rows]


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[str]], *, left: int) -> list[str]:
    """Aligned columns: the first `left` columns to the left, numbers to the right."""
    everything = ([header] if header else []) + list(rows)
    widths = [max(width(row[i]) for row in everything) for i in range(len(everything[0]))]

    def line(row: Sequence[str]) -> str:
        cells = [ljust(c, w) if i < left else rjust(c, w) for i, (c, w) in enumerate(zip(row, widths))]
        return ("  " + "  ".join(cells)).rstrip()

    return [line(row) for row in everything]


# ---------------------------------------------------------------- markdown

def render_markdown(d: PolicyDiff | MonthsDiff, *, limit: int = LIST_LIMIT) -> str:
    """The diff as a review comment: a ```diff block, Markdown tables, capped entry lists
    with the full lists in collapsed sections."""
    months = d.months if isinstance(d, MonthsDiff) else (d,)
    first = months[0]
    title = first.month if len(months) == 1 else f"{months[0].month}..{months[-1].month}"
    out = [f"### 规则修改的金额影响 (policy diff) · {title}", "",
           f"基准 (base) `{_base_title(first)}` → 工作区 (working) `{first.working_label}`", ""]
    out += ["#### 规则文本 (rule text)", ""]
    if first.files:
        body = "\n".join(line for f in first.files for line in f.lines)
        fence = "`" * max(3, _longest_backtick_run(body) + 1)
        out += [f"{fence}diff", body, fence, ""]
    else:
        out += ["规则文本没有变化 (no change in rule text)", ""]
    if len(months) > 1:
        out += [f"**各月合计 (all months)**：{_totals_line(d)}", ""]
    for m in months:
        out += _month_markdown(m, limit, heading="#### " + (f"{m.month} · " if len(months) > 1 else ""))
    return "\n".join(out).rstrip("\n") + "\n"


def _month_markdown(d: PolicyDiff, limit: int, heading: str) -> list[str]:
    out = [f"{heading}金额 (money)", ""]
    out += [f"> ⚠️ {_md_cell(w)}" for w in d.warnings] + ([""] if d.warnings else [])
    out += [f"**合计 (total)**：{_totals_line(d)}", ""]
    if not d.money_changed:
        out += [_no_change(d), ""]
    if d.employees:
        out += [f"{heading}每位员工 (per employee, as on the statement)，元", ""]
        out += _md_table(EMPLOYEE_HEADER, [_employee_row(e) for e in d.employees], left=2) + [""]
    out += [f"{heading}每个账号 (per account)，元", ""]
    out += _md_table(AGENT_HEADER, [_agent_row(a) for a in d.agents], left=1) + [""]
    out += [f"{heading}每条规则 (per rule version)，元", ""]
    out += _md_table(RULE_HEADER, [_rule_row(r) for r in d.rules], left=3) + [""]
    for title, rows in _entry_sections(d):
        out += [f"{heading}{title}", ""]
        shown, more = _capped(rows, limit)
        out += [_md_item(row) for row in shown]
        if more:
            out += [f"- …及另外 {more} 条 (and {more} more)", "", "<details><summary>全部 (all) "
                    f"{len(rows)} 条</summary>", ""] + [_md_item(row) for row in rows] + ["", "</details>"]
        out.append("")
    if d.renamed:
        out += [f"改名的规则下不变的条目 (entries of a renamed rule, same money): {len(d.renamed)}", ""]
    if d.pending[0] != d.pending[1]:
        out += [f"待定条目 (pending): {d.pending[0]} → {d.pending[1]}", ""]
    return out


def _md_item(row: Sequence[str]) -> str:
    return f"- `{row[0]}` " + " · ".join(_md_cell(c) for c in row[1:])


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int) -> list[str]:
    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(_md_cell(c) for c in row) + " |"

    align = "| " + " | ".join("---" if i < left else "---:" for i in range(len(header))) + " |"
    return [line(header), align] + [line(row) for row in rows]


_MD_SPECIAL = re.compile(r"([\\|*_`<>\[\]])")


def _md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell or list item."""
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


# ---------------------------------------------------------------- JSON

def render_json(d: PolicyDiff | MonthsDiff) -> str:
    """The diff for CI: every number as a string of 元 with two decimals (exact)."""
    months = d.months if isinstance(d, MonthsDiff) else (d,)
    first = months[0]
    whole = d if isinstance(d, MonthsDiff) else MonthsDiff((d,))
    doc = {
        "base": first.base_label, "base_commit": first.base_commit, "working": first.working_label,
        "text_changed": first.text_changed, "files": [{"status": f.status, "base": f.base_name,
                                                       "working": f.working_name} for f in first.files],
        "total": {"deducted": _delta(whole.fines), "bonuses": _delta(whole.bonuses), "net": _delta(whole.net),
                  "moved": _money(whole.moved)},
        "warnings": list(whole.warnings),
        "months": [_month_json(m) for m in months],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _money(x: Decimal | None) -> str | None:
    return None if x is None else f"{(x if x else ZERO):.2f}"


def _delta(x: Delta) -> dict:
    return {"before": _money(x.before), "after": _money(x.after), "change": _money(x.change)}


def _entry_json(e: Entry) -> dict:
    return {"id": e.id, "rule": e.rule_id, "agent": e.agent, "ts": f"{e.ts:%Y-%m-%d %H:%M:%S}", "kind": e.kind,
            "status": e.status, "amount": _money(e.amount), "owed": _money(e.owed), "event": e.event_id}


def _month_json(d: PolicyDiff) -> dict:
    return {
        "month": d.month, "events_in_month": d.events_in_month, "closed": d.closed, "lands_in": d.lands_in or None,
        "money_changed": d.money_changed, "warnings": list(d.warnings),
        "owed": _delta(d.owed), "relieved": _delta(d.relieved), "deducted": _delta(d.fines),
        "bonuses": _delta(d.bonuses), "net": _delta(d.net), "moved": _money(d.moved),
        "pending": list(d.pending), "to_confirm": list(d.to_confirm),
        "employees": [{"employee": e.employee, "name": e.name, "accounts": list(e.accounts), "owed": _delta(e.owed),
                       "relieved": _delta(e.relieved), "deducted": _delta(e.deducted),
                       "bonuses": _delta(e.bonuses), "net": _delta(e.net)} for e in d.employees],
        "accounts": [{"agent": a.agent, "deducted": _delta(a.fines), "bonuses": _delta(a.bonuses),
                      "net": _delta(a.net)} for a in d.agents],
        "rules": [{"rule": r.rule_id, "effective": r.effective or None, "status": r.status, "old_id": r.old_id,
                   "old_effective": r.old_effective,
                   "kind": r.kind, "amount_before": r.amount_before, "amount_after": r.amount_after,
                   "count_before": r.count_before, "count_after": r.count_after, "total": _delta(r.total)}
                  for r in d.rules],
        "appeared": [_entry_json(e) for e in d.appeared],
        "disappeared": [_entry_json(e) for e in d.disappeared],
        "changed": [{"id": c.id, "before": _entry_json(c.before), "after": _entry_json(c.after)} for c in d.changed],
        "renamed": [{"before": a.id, "after": b.id} for a, b in d.renamed],
    }
