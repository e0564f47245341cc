"""The checked policy as data: `Policy`, `EventType`, and the language's type vocabulary.

What the checker produces and every later stage reads (compiler, metrics, explain, diff).
Types: text, money, number, bool, time, duration, percent; which may be compared with
which; the core fields every event has; sequence facts and functions. Pure data: imports
only ledger.lang.ast.
"""

from __future__ import annotations

import difflib

import attrs

from ledger.lang import ast

FIELD_TYPES = ("text", "money", "number", "bool", "time")
# Columns every event has, whatever its declaration says.
CORE_FIELDS = {"id": "text", "ts": "time", "type": "text", "agent": "text",
               "conversation": "text", "buyer": "text", "order": "text"}
# Facts about an event's place in its sequence (need `per KEY`).
SEQUENCE_FACTS = {"first": "bool", "last": "bool", "position": "number", "gap": "duration"}
NEIGHBOURS = ("previous", "next")
FUNCTIONS = {  # name: (argument type, result type)
    "length": ("text", "number"),
    "hour": ("time", "number"),
    "weekday": ("time", "number"),
    "date": ("time", "text"),
}
DEFAULT_TIMEZONE = "Asia/Shanghai"

TYPE_NAMES = {"text": "文字 text", "money": "金额 money", "number": "数字 number",
               "bool": "是/否 bool", "time": "时间 time", "duration": "时长 duration",
               "percent": "百分比 percent"}
# Which types may be compared with which.
COMPARABLE = {
    ("text", "text"), ("number", "number"), ("money", "money"), ("money", "number"),
    ("number", "money"), ("duration", "duration"), ("time", "time"), ("bool", "bool"),
    ("percent", "percent"),
}


@attrs.frozen
class EventType:
    name: str
    fields: dict  # field -> type, core fields included
    defaults: dict  # field -> ast.Literal
    decl: ast.EventDecl | None


@attrs.frozen
class Policy:
    """A checked policy: all files merged, names resolved."""

    name: str
    timezone: str
    files: tuple[ast.PolicyFile, ...]
    events: dict  # name -> EventType
    words: dict  # name -> tuple[str, ...]
    rules: tuple[ast.Rule, ...]  # every version of every rule, in source order
    examples: tuple[ast.Example, ...] = ()
    metrics: tuple[ast.Metric, ...] = ()  # in source order
    metric_types: dict = attrs.Factory(dict)  # name -> number | money | duration | percent
    monthly: tuple[ast.MonthlyRule, ...] = ()
    caps: tuple[ast.Cap, ...] = ()
    floors: tuple[ast.Floor, ...] = ()
    word_exceptions: dict = attrs.Factory(dict)  # list name -> its `except` phrases

    def schema(self) -> dict[str, dict[str, str]]:
        """Declared field types per event type, for validating input rows."""
        return {name: {f: t for f, t in et.fields.items() if f not in CORE_FIELDS}
                for name, et in self.events.items()}


def suggest(name: str, candidates) -> str | None:
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.5)
    return f"是不是想写 {match[0]}？(did you mean '{match[0]}'?)" if match else None
