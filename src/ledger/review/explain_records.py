"""The results of `ledger explain`: records, the verdict vocabulary, and how values read.

`review.explain` computes these records — `explain_entry` returns an `EntryExplanation`,
`explain_event` an `EventExplanation` — and `review.explain_render` turns them into text.
They are frozen attrs records holding data and finished pieces of text (a rule's source,
a window's span, a verdict's reason); never a connection or an AST node, so a caller may
keep, compare or render them later.

* Verdicts of one rule on one event: `CHARGED`, `PENDING_VERDICT`, `EXCUSED`,
  `NOT_APPLICABLE`, `NOT_IN_MONTH`, `NOT_IN_FORCE`, `INCONSISTENT` (a bug: the conditions
  and the engine disagree). `verdict_label(verdict, kind)` is the bilingual label; a bonus
  rule's `CHARGED` reads 奖励 (bonus), its `EXCUSED` 不发奖励.
* Values as an explanation writes them, shared by the reasons `explain` computes and by
  the rendering: `yes_no` (是 / 否 / （未计算） for None), `value_text` (an operand's value:
  strings JSON-quoted, times as `core.month.format_ts`, durations h:mm:ss, numbers without
  exponent, None as （无）), `clip` (whitespace folded, at most `width` characters).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import attrs

from ledger.core.entries import BONUS, Entry
from ledger.core.month import format_ts
from ledger.lang.unparse import number_text

# Verdicts of one rule on one event.
CHARGED = "charged"  # fined or paid a bonus (the entries say which)
PENDING_VERDICT = "pending"  # a deadline lies beyond the data end
EXCUSED = "excused"  # an `unless` window found enough events
NOT_APPLICABLE = "not_applicable"  # the filter or the `when` is false
NOT_IN_MONTH = "not_in_month"  # the event belongs to another month
NOT_IN_FORCE = "not_in_force"  # this version of the rule is not in force at the event's time
INCONSISTENT = "inconsistent"  # the conditions and the engine disagree (a bug)


def verdict_label(verdict: str, kind: str) -> str:
    bonus = kind == BONUS
    return {
        CHARGED: "奖励 (bonus)" if bonus else "罚款 (fine)",
        PENDING_VERDICT: "待定 (pending)",
        EXCUSED: "不发奖励 (excused)" if bonus else "免罚 (excused)",
        NOT_APPLICABLE: "不适用 (does not apply)",
        NOT_IN_MONTH: "不在本月 (not in this month)",
        NOT_IN_FORCE: "不在生效期间 (not in force)",
        INCONSISTENT: "不一致 (inconsistent)",
    }[verdict]


# ================================================================ records

@attrs.frozen
class RuleInfo:
    id: str
    title: str
    location: str  # "policy/house-rules.rules:55", as on the statement
    source: str  # the whole rule as written
    kind: str  # fine | bonus
    amount: str  # as written: "20元"


@attrs.frozen
class EventInfo:
    id: str
    type: str
    ts: datetime  # local wall time
    month: str  # "2024-05", the month the event belongs to
    source: str  # "events.jsonl:3"
    fields: tuple[tuple[str, str], ...]  # non-empty fields; defaults marked
    seq: int


@attrs.frozen
class Operand:
    """A value a test reads, e.g. `length(text)` = 2."""

    text: str
    value: object


@attrs.frozen
class ConditionNode:
    """One node of a condition: `and`/`or`/`not`, or a leaf test."""

    text: str  # the sub-expression, written as in the policy language
    value: bool
    depth: int
    kind: str  # and | or | not | test
    operands: tuple[Operand, ...] = ()
    matched: tuple[str, ...] = ()  # `has any`: the words of the list found in the text
    cancelled: tuple[tuple[str, str], ...] = ()  # `has any`: (word, exception) found only inside an exception
    decisive: bool = False  # this test decides the result of the whole condition

    @property
    def leaf(self) -> bool:
        return self.kind == "test"


@attrs.frozen
class ConditionCheck:
    clause: str  # "filter" | "when"
    source: str  # the clause as written; "" when the rule has none
    value: bool | None  # None: not evaluated (the event is not a member)
    nodes: tuple[ConditionNode, ...] = ()

    @property
    def decisive(self) -> tuple[ConditionNode, ...]:
        return tuple(n for n in self.nodes if n.decisive)


@attrs.frozen
class EventBrief:
    id: str
    ts: datetime  # local
    summary: str  # "agent · text · 「亲，在的」"
    seq: int


@attrs.frozen
class WindowCheck:
    number: int  # 1-based, in the rule's order
    source: str  # the `unless` clause as written
    kind: str  # within | range | before | within_before
    span_from: datetime | None  # local; None: no lower bound
    span_to: datetime | None  # local; None: no upper bound
    span_text: str
    keys: tuple[tuple[str, str | None], ...]  # `same` keys and the trigger's values
    required: int
    found: int
    events: tuple[EventBrief, ...]  # the first found events
    others: int  # events in the span with the same keys that fail the window's filter
    other_events: tuple[EventBrief, ...]
    filter_text: str
    next_after: EventBrief | None  # the first matching event after the span
    deadline: datetime | None  # local; within/range windows only
    beyond_data_end: bool  # the deadline is after the last event read

    @property
    def excused(self) -> bool:
        return self.found >= self.required


@attrs.frozen
class RuleCheck:
    """One rule's view of one event: membership, conditions, windows, verdict."""

    rule: RuleInfo
    in_month: bool
    filter: ConditionCheck
    when: ConditionCheck
    sequence: str | None  # "同一 conversation 中第 2/5 条" for `per` rules
    windows: tuple[WindowCheck, ...]
    entries: tuple[Entry, ...]  # the entries the engine made for this rule and event
    verdict: str  # CHARGED | PENDING_VERDICT | EXCUSED | NOT_APPLICABLE | NOT_IN_MONTH | INCONSISTENT
    reason: str

    @property
    def verdict_label(self) -> str:
        return verdict_label(self.verdict, self.rule.kind)


@attrs.frozen
class TranscriptLine:
    id: str
    ts: datetime
    type: str
    sender: str | None
    kind: str | None
    text: str | None
    trigger: bool
    tags: tuple[str, ...] = ()  # "窗口1找到": found by that window
    detail: str = ""  # other event types: their key fields ("order=… amount=…")


@attrs.frozen
class Transcript:
    key: str  # conversation | buyer | order | agent
    value: str
    lines: tuple[TranscriptLine, ...]
    omitted_before: int
    omitted_after: int


@attrs.frozen
class TriggerUse:
    id: str
    ts: datetime
    outcome: str  # e.g. "免罚 (excused)", "罚款 (fine) E…"


@attrs.frozen
class EvidenceUse:
    """A rule window that searched the event's type and looked at this event."""

    rule: RuleInfo
    window: int
    source: str
    counted: tuple[TriggerUse, ...]  # triggers (in the month) whose window counted it
    counted_total: int
    not_counted: int  # triggers whose span held it but whose filter rejected it
    filter_text: str


@attrs.frozen
class Money:
    """What the statement does with the line: 应扣 (owed) − 减免 (relieved by a cap or floor)
    = 实扣 (deducted); the employee's limit of the month when a cap or floor applies."""

    owed: object  # Decimal | None (pending)
    relieved: object
    deducted: object
    cap_note: str
    limit: str  # "cap fines 500元" etc., "" when no cap or floor applies to the employee
    employee: str  # 工号 (姓名), or the account
    adjusted: str  # what an adjustments line did to it, "" when none


@attrs.frozen
class EntryExplanation:
    entry: Entry  # the line as the statement has it (versions, adjustments, caps, floors)
    month: str
    event: EventInfo | None  # None for a line of no event: a monthly rule's, 人工调整, 上月更正
    check: RuleCheck | None
    data_end: datetime | None
    transcript: Transcript | None
    money: Money | None = None
    rule: RuleInfo | None = None  # the rule version that made the line (monthly rules too)


@attrs.frozen
class EventExplanation:
    month: str
    event: EventInfo
    declared: bool  # the policy declares the event's type
    checks: tuple[RuleCheck, ...]
    evidence: tuple[EvidenceUse, ...]
    data_end: datetime | None
    transcript: Transcript | None


# ================================================================ values as text

def yes_no(value: bool | None) -> str:
    return "（未计算）" if value is None else ("是" if value else "否")


def value_text(v) -> str:
    if v is None:
        return "（无）"
    if isinstance(v, bool):
        return yes_no(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, datetime):
        return format_ts(v)
    if isinstance(v, timedelta):
        return _duration_words(v)
    return number_text(v)


def _duration_words(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    h, rest = divmod(abs(seconds), 3600)
    m, sec = divmod(rest, 60)
    return f"{'-' if seconds < 0 else ''}{h}:{m:02d}:{sec:02d}"


def clip(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
