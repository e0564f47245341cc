"""The policy's abstract syntax tree: immutable nodes that remember where they came from.

Every node carries a `Position`, so the checker, the compiler and `explain` can point
back at the exact spot in the policy file.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import attrs

from ledger.core.errors import Position


@attrs.frozen
class Name:
    value: str
    pos: Position

    def __str__(self) -> str:
        return self.value


# ---------------------------------------------------------------- expressions

@attrs.frozen
class Literal:
    value: object  # str | Decimal | timedelta | bool
    type: str  # "text" | "number" | "money" | "duration" | "percent" | "bool"
    pos: Position


@attrs.frozen
class Ref:
    """A field of the event (`text`), of its neighbour (`previous.sender`), or a
    sequence fact (`first`, `last`, `position`, `gap`)."""

    name: Name
    scope: Name | None = None  # previous | next

    @property
    def pos(self) -> Position:
        return (self.scope or self.name).pos


@attrs.frozen
class Call:
    function: Name  # length | hour | weekday | date
    arg: "Expr"

    @property
    def pos(self) -> Position:
        return self.function.pos


@attrs.frozen
class Compare:
    op: str  # = != < <= > >=
    left: "Expr"
    right: "Expr"
    pos: Position


@attrs.frozen
class InList:
    subject: "Expr"
    values: tuple[Literal, ...]
    pos: Position


@attrs.frozen
class WordSource:
    """A word list by name (`敬语`) or written inline (`["您", "亲"]`)."""

    name: Name | None
    words: tuple[str, ...]  # inline words; resolved from the list by the checker
    pos: Position


@attrs.frozen
class TextTest:
    op: str  # has_any | only | contains | matches
    subject: "Expr"
    operand: WordSource | str  # word source, or the literal / regex text
    pos: Position


@attrs.frozen
class Not:
    operand: "Expr"
    pos: Position


@attrs.frozen
class BoolOp:
    op: str  # and | or
    operands: tuple["Expr", ...]
    pos: Position


Expr = Literal | Ref | Call | Compare | InList | TextTest | Not | BoolOp


# ---------------------------------------------------------------- declarations

@attrs.frozen
class FieldDecl:
    name: Name
    type: Name | None  # None means text
    default: Literal | None = None  # used where the cell is empty


@attrs.frozen
class EventDecl:
    name: Name
    fields: tuple[FieldDecl, ...]
    pos: Position


@attrs.frozen
class WordList:
    name: Name
    words: tuple[str, ...]
    pos: Position
    word_positions: tuple[Position, ...] = ()
    exceptions: tuple[str, ...] = ()  # `except …`: phrases inside which the words do not count
    exception_positions: tuple[Position, ...] = ()


@attrs.frozen
class On:
    event: Name
    filter: Expr | None
    per: tuple[Name, ...]
    source: str = ""  # as written, whitespace folded


@attrs.frozen
class Window:
    """`unless [at least N] EVENT[filter] same k1, k2 WINDOW`.

    kind is "within" (after, up to d2), "range" (after, d1..d2), "before" (any time
    earlier) or "within_before" (earlier, at most d2 before).
    """

    count: int
    event: Name
    filter: Expr | None
    same: tuple[Name, ...]
    kind: str
    d1: timedelta | None
    d2: timedelta | None
    source: str  # the clause as written, quoted in the evidence
    pos: Position


@attrs.frozen
class Amount:
    kind: str  # fine | bonus
    value: Decimal  # 元 (the first occurrence's; 0 for points only or a percentage)
    text: str  # as written: "10元", "6元 then 12元", "1% of amount", "6分"
    pos: Position
    steps: tuple[Decimal, ...] = ()  # escalation: amounts from the 2nd occurrence on
    percent: Decimal | None = None  # `1% of amount`: the share, in per cent
    of: "Name | None" = None  # the money field the share is taken of
    points: tuple[int, ...] = ()  # platform points (扣分), escalating like steps

    @property
    def money(self) -> bool:
        """Whether the rule moves money at all (a points-only rule does not)."""
        return self.percent is not None or self.value > 0

    def amount_for(self, occurrence: int) -> Decimal:
        """The amount of the n-th (1-based) occurrence; the last step repeats."""
        values = (self.value,) + self.steps
        return values[min(occurrence, len(values)) - 1]

    def points_for(self, occurrence: int) -> int | None:
        if not self.points:
            return None
        return self.points[min(occurrence, len(self.points)) - 1]


@attrs.frozen
class Effective:
    """When a rule is in force: from `start` (00:00 local) through the end of `until`."""

    start: date
    until: date | None
    pos: Position

    def __str__(self) -> str:
        return f"{self.start.isoformat()} 起" + (f"，至 {self.until.isoformat()} 止" if self.until else "")


@attrs.frozen
class Rule:
    id: Name
    title: str
    on: On
    when: Expr | None
    unless: tuple[Window, ...]
    amount: Amount
    recipients: tuple[Name, ...]  # empty means the event's agent
    pos: Position
    source: str  # the whole rule as written
    when_source: str = ""  # the when clause as written, whitespace folded
    effective: Effective | None = None  # None: always in force
    confirm: bool = False  # `confirm`: its lines wait for a person's confirmation (待复核)


@attrs.frozen
class Tier:
    """One `when COND fine/bonus …` line of a monthly rule's `first matching` list."""

    when: Expr
    amount: Amount
    pos: Position


@attrs.frozen
class MonthlyRule:
    """`rule ID: monthly [when C] (amount | first matching tiers)`, over metrics."""

    id: Name
    title: str
    when: Expr | None
    tiers: tuple[Tier, ...]  # one tier with when=None-like TRUE when not tiered
    tiered: bool
    pos: Position
    source: str
    effective: Effective | None = None  # in force for a month when it covers the month's last day


@attrs.frozen
class Wait:
    """`wait for EVENT[filter] same KEYS capped D` of a metric."""

    event: Name
    filter: Expr | None
    same: tuple[Name, ...]
    cap: timedelta | None
    pos: Position


@attrs.frozen
class Metric:
    """`metric NAME "title": AGG on … when … with/unless … wait for …`, or a ratio,
    or `count fines`.

    kind: count | distinct | sum | avg | min | max | percentile | ratio | fines
    """

    name: Name
    title: str
    kind: str
    values: tuple[Expr, ...] = ()  # distinct: the fields; sum/avg/...: one value
    on: On | None = None
    when: Expr | None = None
    windows: tuple[tuple[str, Window], ...] = ()  # ("unless" | "with", window)
    wait: Wait | None = None
    percentile: Decimal | None = None
    ratio: tuple[Name, Name] | None = None  # numerator, denominator
    pos: Position | None = None
    source: str = ""


@attrs.frozen
class Cap:
    """`cap fines 500元` (fixed) or `cap fines 20% of 基本工资 + 绩效工资` (share)."""

    fixed: Decimal | None
    percent: Decimal | None
    fields: tuple[Name, ...]
    text: str
    pos: Position


@attrs.frozen
class Floor:
    """`floor 最低工资 [with bonuses | without bonuses]`: pay after deductions never below
    this roster field; bonuses count as pay unless `without bonuses`."""

    field: Name
    pos: Position
    bonuses: bool | None = None  # None: not said (counts bonuses); True/False: with/without

    @property
    def counts_bonuses(self) -> bool:
        return self.bonuses is not False

    @property
    def text(self) -> str:
        said = {None: "", True: " with bonuses", False: " without bonuses"}[self.bonuses]
        return f"floor {self.field.value}{said}"


@attrs.frozen
class Setting:
    value: str
    pos: Position


@attrs.frozen
class ExampleEvent:
    at: datetime  # local wall time in the policy's zone
    type: Name
    fields: tuple[tuple[Name, Literal], ...]
    pos: Position


@attrs.frozen
class ExampleGiven:
    """`given "店:小王" 提问轮次 = 250, 三分钟回复率 = 99.2%`: metric values of one agent for
    the month of the example's date (for examples of monthly rules)."""

    agent: str
    values: tuple[tuple[Name, Literal], ...]
    pos: Position


@attrs.frozen
class Expectation:
    kind: str  # entry | pending | none | nothing
    rule: Name | None
    amount: Decimal | None = None
    agent: str | None = None  # None: any agent
    pos: Position | None = None


@attrs.frozen
class Example:
    title: str
    day: date | None
    events: tuple[ExampleEvent, ...]
    expectations: tuple[Expectation, ...]
    pos: Position
    given: tuple[ExampleGiven, ...] = ()


@attrs.frozen
class PolicyFile:
    """One parsed file: declarations in source order."""

    filename: str
    text: str
    name: Setting | None
    timezone: Setting | None
    events: tuple[EventDecl, ...]
    words: tuple[WordList, ...]
    rules: tuple[Rule, ...]
    effective: Effective | None = None  # file-wide default for its rules
    examples: tuple[Example, ...] = ()
    metrics: tuple[Metric, ...] = ()
    monthly: tuple[MonthlyRule, ...] = ()
    caps: tuple[Cap, ...] = ()
    floors: tuple[Floor, ...] = ()
    # names of declarations that failed to parse (`rule X …` with a syntax error): the
    # checker does not report them as unknown, so one mistake gives one error
    unparsed: tuple[str, ...] = ()
