"""The confirmation queue: lines of `confirm` rules that wait for a person (待复核).

`waiting` runs the month exactly as `ledger run` does (adjustments included, so lines
already confirmed or waived have left the queue) and returns every line still 待复核,
each with the conversation around its trigger event: the messages before and after it,
the trigger marked, and the words of the rule it contains, so the supervisor judges the
words in their context. `waiting_in` does the same for a month already prepared. `render` is
the text of `ledger review`: per line, the evidence and the two lines to paste into
`adjustments/<month>.txt` (confirm or waive).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import attrs

from ledger.core.entries import TO_CONFIRM, Entry
from ledger.core.month import format_ts
from ledger.evaluate import engine
from ledger.period import lifecycle
from ledger.review.explain import matched_in_text

CONTEXT = 6  # messages shown before and after the trigger
SENDER_LABELS = {"buyer": "买家", "agent": "客服", "system": "系统"}


@attrs.frozen
class Line:
    ts: datetime
    sender: str
    kind: str
    text: str
    trigger: bool


@attrs.frozen
class Waiting:
    entry: Entry
    conversation: tuple[Line, ...]  # empty when the trigger has no conversation
    matched: tuple[str, ...] = ()  # the rule's words found in the trigger's text (explain.matched_in_text)


def waiting(policy_paths: Sequence[Path], events_root: Path, month: str, *, out_dir: Path,
            adjustments_root: Path, roster=None) -> tuple[str, list[Waiting]]:
    """(the month, its 待复核 lines with their conversations)."""
    period = lifecycle.prepare(policy_paths, events_root, month, out_dir=out_dir,
                               adjustments_root=adjustments_root, roster=roster)
    return period.result.month.text, waiting_in(period, events_root)


def waiting_in(period: lifecycle.Period, events_root: Path) -> list[Waiting]:
    """The 待复核 lines of a month already prepared, with their conversations."""
    queue = [e for e in period.statement.entries if e.status == TO_CONFIRM]
    if not queue:
        return []
    out = []
    with engine.database() as con:
        engine.load_month(con, period.result.policy, events_root)
        columns = {r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE events)").fetchall()}
        has = {c: c in columns for c in ("sender", "kind", "text")}
        for e in queue:
            conversation = _conversation(con, e, has)
            trigger = next((m.text for m in conversation if m.trigger), e.excerpt)
            out.append(Waiting(e, conversation, matched_in_text(period.result.policy, e.rule_location, trigger)))
    return out


def _conversation(con, e: Entry, has: dict) -> tuple[Line, ...]:
    if not e.conversation:
        return ()
    pick = ", ".join(f"{c}" if present else f"NULL AS {c}" for c, present in has.items())
    rows = con.execute(f"""
        SELECT id, ts_local, {pick} FROM events
        WHERE type = 'message' AND conversation = ? ORDER BY ts, seq""", [e.conversation]).fetchall()
    at = next((i for i, r in enumerate(rows) if r[0] == e.event_id), None)
    if at is None:
        return ()
    lo, hi = max(0, at - CONTEXT), min(len(rows), at + CONTEXT + 1)
    return tuple(Line(r[1], r[2] or "", r[3] or "text", r[4] or "", r[0] == e.event_id) for r in rows[lo:hi])


def render(month: str, items: list[Waiting]) -> str:
    if not items:
        return f"{month} 没有待复核的明细 (nothing awaits confirmation)。"
    lines = [f"{month} 待复核 (awaiting confirmation): {len(items)} 条。确认后才扣款；把下面的一行写进 "
             f"adjustments/{month}.txt（confirm 确认 / waive 免除，理由必填）。", ""]
    for n, item in enumerate(items, 1):
        e = item.entry
        amount = "" if e.amount is None else f" · 确认后{'罚' if e.kind == 'fine' else '奖'} {e.amount}元"
        lines.append(f"[{n}] {e.id} {e.rule_id} · {e.agent} · {format_ts(e.ts)}{amount}")
        lines.append(f"    规则：{e.rule_title}（{e.rule_location}）")
        lines.append(f"    依据：{e.evidence}")
        if item.conversation:
            lines.append(f"    会话 {e.conversation}：")
            for m in item.conversation:
                mark = "▶" if m.trigger else " "
                who = SENDER_LABELS.get(m.sender, m.sender)
                kind = "" if m.kind == "text" else f"({m.kind})"
                lines.append(f"    {mark} {m.ts:%H:%M:%S} {who}{kind}  {_one_line(m.text)}")
        lines.append(f'    confirm {e.id} "确认理由"')
        lines.append(f'    waive {e.id} "免除理由"')
        lines.append("")
    return "\n".join(lines).rstrip()


def _one_line(text: str) -> str:
    """Message text on one terminal line: line breaks shown as ⏎, control characters dropped."""
    flat = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎")
    return "".join(c for c in flat if c >= " " or c == "\t")
