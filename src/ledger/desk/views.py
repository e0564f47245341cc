"""What each page shows, as plain records: no Flask, no markup.

The numbers come from the month's prepared period (`period.lifecycle.Period`: the statement
and its payroll columns), the line's explanation (`review.explain`), the queue
(`review.queue`) and the adjustments files; this module only selects and arranges them.
Text that a page highlights (the trigger's matched words) is cut into `Segment`s here, so
the templates escape every piece and never build markup from data.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from ledger.core.entries import APPLIED, BONUS, FINE, TO_CONFIRM, Entry
from ledger.core.money import ZERO, total
from ledger.outputs.workbook.sheets import status_label
from ledger.period import lifecycle

SENDERS = {"buyer": "买家", "agent": "客服", "system": "系统"}
EVENT_LABELS = {"rating": "评价", "qa_flag": "质检", "order_placed": "下单", "order_paid": "付款",
                "refund_requested": "退款申请", "refund_handled": "退款处理", "shift_start": "上班",
                "shift_end": "下班"}
KIND_LABELS = {FINE: "罚款", BONUS: "奖励"}
REJECTS_SHOWN = 200


@attrs.frozen
class Segment:
    text: str
    hit: bool  # a matched word: highlighted


def highlight(text: str | None, words) -> tuple[Segment, ...]:
    """`text` cut into pieces, the occurrences of `words` (longest first, leftmost, not
    overlapping) marked."""
    if not text:
        return ()
    words = sorted({w for w in words if w}, key=lambda w: (-len(w), w))
    out: list[Segment] = []
    i, start = 0, 0
    while i < len(text):
        word = next((w for w in words if text.startswith(w, i)), None)
        if word is None:
            i += 1
            continue
        if start < i:
            out.append(Segment(text[start:i], False))
        out.append(Segment(word, True))
        i += len(word)
        start = i
    if start < len(text):
        out.append(Segment(text[start:], False))
    return tuple(out)


def yuan(value) -> str:
    """1,234.50 (元 implied by the column); — for none."""
    if value is None:
        return "—"
    return f"{Decimal(value):,.2f}"


def status_text(e: Entry) -> str:
    return status_label(e)


@attrs.frozen
class LineMoney:
    """应扣 / 减免 / 实扣 of one line as the statement counts it (fines); bonuses in 奖励."""

    owed: Decimal | None
    relieved: Decimal | None
    deducted: Decimal | None
    bonus: Decimal | None
    would: Decimal | None  # 待复核: what it charges once confirmed


def line_money(e: Entry) -> LineMoney:
    if e.status == TO_CONFIRM:
        return LineMoney(None, None, None, None, e.amount)
    if e.status != APPLIED or e.amount is None:
        return LineMoney(None, None, None, None, None)
    if e.kind == BONUS:
        return LineMoney(None, None, None, e.amount, None)
    owed = e.owed if e.owed is not None else e.amount
    return LineMoney(owed, owed - e.amount, e.amount, None, None)


@attrs.frozen
class AgentRow:
    agent: str
    employee: str  # 工号
    name: str
    fines: Decimal
    bonuses: Decimal
    net: Decimal
    count: int
    pending: int
    to_confirm: int
    to_confirm_amount: Decimal
    owed: Decimal | None
    relieved: Decimal | None
    deducted: Decimal | None


@attrs.frozen
class MonthView:
    month: str
    closed: bool
    events: int
    data_end: str
    agents: tuple[AgentRow, ...]
    rules: tuple  # outputs.statement.RuleTotals
    fines: Decimal
    bonuses: Decimal
    owed: Decimal | None
    relieved: Decimal | None
    deducted: Decimal | None
    to_confirm: int
    to_confirm_amount: Decimal
    pending: int
    rejects: tuple  # inputs.contract.Reject, the first REJECTS_SHOWN
    rejected: int
    decided: int  # adjustments lines of the month
    warnings: tuple[str, ...]
    has_statement: bool


def month_view(period: lifecycle.Period, *, closed: bool, decided: int, has_statement: bool) -> MonthView:
    st, result = period.statement, period.result
    extra = {a.agent: a for a in st.payroll.accounts} if st.payroll is not None else {}
    rows = []
    for a in st.agents:
        x = extra.get(a.agent)
        rows.append(AgentRow(a.agent, x.employee_id if x else "", x.name if x else "", a.fines, a.bonuses, a.net,
                             a.count, a.pending, a.to_confirm, a.to_confirm_amount,
                             x.owed if x else None, x.relieved if x else None, x.deducted if x else None))
    payroll = st.payroll is not None
    rejects = tuple(result.load.rejects) + (tuple(result.roster.rejects) if result.roster is not None else ())
    return MonthView(
        month=result.month.text, closed=closed, events=result.events_in_month, data_end=st.info.data_end,
        agents=tuple(rows), rules=st.rules, fines=st.total_fines, bonuses=st.total_bonuses,
        owed=total(r.owed for r in rows if r.owed is not None) if payroll else None,
        relieved=total(r.relieved for r in rows if r.relieved is not None) if payroll else None,
        deducted=total(r.deducted for r in rows if r.deducted is not None) if payroll else None,
        to_confirm=st.to_confirm, to_confirm_amount=total(a.to_confirm_amount for a in st.agents),
        pending=sum(a.pending for a in st.agents), rejects=rejects[:REJECTS_SHOWN], rejected=len(rejects),
        decided=decided, warnings=tuple(result.warnings), has_statement=has_statement)


@attrs.frozen
class LineRow:
    entry: Entry
    status: str
    money: LineMoney
    decisions: tuple[str, ...]  # "adjustments/2024-05.txt:7 waive" …


@attrs.frozen
class AgentView:
    month: str
    agent: str
    employee: str
    name: str
    lines: tuple[LineRow, ...]
    owed: Decimal
    relieved: Decimal
    deducted: Decimal
    bonuses: Decimal
    to_confirm: int
    known: bool  # the account is on the statement


def decision_notes(actions) -> tuple[str, ...]:
    return tuple(f"{a.kind}{' ' + a.outcome if a.outcome else ''}（{a.where}）" for a in actions)


def agent_view(period: lifecycle.Period, agent: str, decisions: dict) -> AgentView:
    st = period.statement
    lines = tuple(LineRow(e, status_text(e), line_money(e), decision_notes(decisions.get(e.id, ())))
                  for e in st.entries if e.agent == agent)
    x = next((a for a in st.payroll.accounts if a.agent == agent), None) if st.payroll is not None else None
    money = [r.money for r in lines]
    return AgentView(
        month=period.result.month.text, agent=agent, employee=x.employee_id if x else "", name=x.name if x else "",
        lines=lines, owed=total(m.owed for m in money if m.owed is not None),
        relieved=total(m.relieved for m in money if m.relieved is not None),
        deducted=total(m.deducted for m in money if m.deducted is not None),
        bonuses=total(m.bonus for m in money if m.bonus is not None),
        to_confirm=sum(1 for r in lines if r.entry.status == TO_CONFIRM),
        known=any(a.agent == agent for a in st.agents))


@attrs.frozen
class ChatLine:
    id: str
    time: str
    who: str
    kind: str  # "" for plain text
    segments: tuple[Segment, ...]
    detail: str  # other event types: their key fields
    trigger: bool
    tags: tuple[str, ...]


@attrs.frozen
class LineView:
    month: str
    entry: Entry
    status: str
    money: LineMoney
    explanation: object  # review.explain_records.EntryExplanation
    matched: tuple[str, ...]
    cancelled: tuple[tuple[str, str], ...]
    chat: tuple[ChatLine, ...]
    omitted_before: int
    omitted_after: int
    decisions: tuple[str, ...]
    can_confirm: bool
    can_waive: bool
    can_dispute: bool


def line_view(x, decisions: tuple, closed: bool) -> LineView:
    """A line's page from its explanation (review.explain.explain_entry)."""
    e = x.entry
    matched: list[str] = []
    cancelled: list[tuple[str, str]] = []
    if x.check is not None:
        for node in x.check.filter.nodes + x.check.when.nodes:
            matched += [w for w in node.matched if node.value and w not in matched]
            cancelled += [c for c in node.cancelled if c not in cancelled]
    chat = []
    t = x.transcript
    for line in (t.lines if t is not None else ()):
        chat.append(ChatLine(
            line.id, line.ts.strftime("%m-%d %H:%M:%S"),
            SENDERS.get(line.sender or "", line.sender or EVENT_LABELS.get(line.type, line.type)),
            "" if (line.kind or "text") == "text" or line.type != "message" else line.kind,
            highlight(line.text, matched if line.trigger else ()), line.detail, line.trigger, line.tags))
    kinds = {a.kind for a in decisions}
    own = e.id.startswith("E")  # 人工调整 (A…) and 上月更正 (C…) lines are edited where they are written
    open_ = not closed and own
    return LineView(
        month=x.month, entry=e, status=status_text(e), money=line_money(e), explanation=x,
        matched=tuple(matched), cancelled=tuple(cancelled), chat=tuple(chat),
        omitted_before=t.omitted_before if t else 0, omitted_after=t.omitted_after if t else 0,
        decisions=decision_notes(decisions),
        can_confirm=open_ and e.status == TO_CONFIRM and not kinds,
        can_waive=open_ and not kinds,
        can_dispute=open_ and e.kind == FINE and e.amount is not None and e.status == APPLIED
        and kinds <= {"confirm"})


@attrs.frozen
class QueueItem:
    entry: Entry
    chat: tuple[ChatLine, ...]
    matched: tuple[str, ...]


def queue_items(items) -> tuple[QueueItem, ...]:
    """The 待复核 queue (review.queue.Waiting) with the trigger's matched words marked."""
    out = []
    for w in items:
        chat = tuple(ChatLine("", m.ts.strftime("%H:%M:%S"), SENDERS.get(m.sender, m.sender),
                              "" if m.kind == "text" else m.kind,
                              highlight(m.text, w.matched if m.trigger else ()), "", m.trigger, ())
                     for m in w.conversation)
        out.append(QueueItem(w.entry, chat, w.matched))
    return tuple(out)


@attrs.frozen
class DisputeRow:
    entry: Entry
    money: LineMoney
    decisions: tuple[str, ...]
    open: bool  # a dispute may still be recorded


def dispute_rows(period: lifecycle.Period, decisions: dict, agent: str = "", rule: str = "") -> tuple[DisputeRow, ...]:
    """Fines a dispute can be about: applied, with an amount, from a rule (not 人工调整 / 上月更正)."""
    out = []
    for e in period.statement.entries:
        if e.kind != FINE or e.status != APPLIED or not e.id.startswith("E"):
            continue
        if (agent and e.agent != agent) or (rule and e.rule_id != rule):
            continue
        kinds = {a.kind for a in decisions.get(e.id, ())}
        out.append(DisputeRow(e, line_money(e), decision_notes(decisions.get(e.id, ())), kinds <= {"confirm"}))
    return tuple(out)


def money_total(values) -> Decimal:
    return total(v for v in values if v is not None) if values else ZERO
