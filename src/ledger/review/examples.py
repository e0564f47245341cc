"""Examples that run as tests: the `example` blocks of the policy files.

Each example's events are written to a temporary folder as JSONL and evaluated by the
engine, exactly as `ledger run` would evaluate them; the entries are then compared
with the example's `expect` lines:

- Only the rules named by an `expect` line are compared (`expect nothing`: every
  rule). Their entries are compared with the expected ones as a multiset of
  (rule, status, amount, agent); `expect R 20元` without `to` matches any agent.
- Every entry of a compared rule must be expected, and every expectation met.
- `expect no R`: R produces nothing. `expect nothing`: no rule produces anything
  (beyond the entries other `expect` lines of the example name).

Events may span months (a refund asked on 05-31 and handled on 06-01): every month an
event falls in is evaluated, and the entries of those runs together are what a
sequence of monthly `ledger run`s would produce.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import attrs

from ledger.core.entries import APPLIED, PENDING, TO_CONFIRM, Entry
from ledger.core.errors import LedgerError
from ledger.core.month import Month
from ledger.evaluate import engine
from ledger.lang import ast
from ledger.lang import load as policy_load
from ledger.lang.policy import Policy

ANY_AGENT = "（任何客服）"
# Written by the example runner, never by the example: `at` gives the time and the
# event call the type.
_RUNNER_FIELDS = ("ts", "type")


@attrs.frozen
class Line:
    """One expected or produced line of a failed example. `ok` is False for an unmet
    expectation or an unexpected entry."""

    text: str
    ok: bool


@attrs.frozen
class ExampleResult:
    example: ast.Example
    passed: bool
    expected: tuple[Line, ...] = ()  # filled for failures
    got: tuple[Line, ...] = ()  # filled for failures
    problem: str | None = None  # why the example could not be run as written

    @property
    def location(self) -> str:
        """`policy/house-rules.rules:123`: where the example starts."""
        return f"{self.example.pos.filename}:{self.example.pos.line}"

    @property
    def title(self) -> str:
        return self.example.title


# ---------------------------------------------------------------- running

def run_examples(policy: Policy, sources: tuple[policy_load.PolicySource, ...]) -> list[ExampleResult]:
    """Run every example of a checked policy, in source order."""
    return [run_example(policy, sources, example) for example in policy.examples]


def run_example(policy: Policy, sources: tuple[policy_load.PolicySource, ...],
                example: ast.Example) -> ExampleResult:
    problem = _field_problem(example)
    if problem:
        return ExampleResult(example, False, problem=problem)
    try:
        entries = _evaluate(policy, sources, example)
    except _CannotRun as exc:
        return ExampleResult(example, False, problem=str(exc))
    except LedgerError as exc:
        return ExampleResult(example, False, problem=f"无法运行 (cannot run): {exc}")
    return _compare(policy, example, entries)


class _CannotRun(Exception):
    """The example's events did not reach the engine as written."""


def _field_problem(example: ast.Example) -> str | None:
    """Fields the runner could not write as given (the checker lets them through)."""
    for event in example.events:
        seen: set[str] = set()
        for name, _ in event.fields:
            if name.value in _RUNNER_FIELDS:
                return (f"第 {name.pos.line} 行：事件里不能写 {name.value} 字段——时间写在 at 后面，"
                        f"类型就是事件名 (ts and type come from `at` and the event name)")
            if name.value in seen:
                return f"第 {name.pos.line} 行：字段 {name.value} 写了两次 (field given twice)"
            seen.add(name.value)
    return None


def event_rows(example: ast.Example) -> list[dict[str, str]]:
    """The example's events as input rows, in the order written."""
    return [_row(event, number) for number, event in enumerate(example.events, start=1)]


def _row(event: ast.ExampleEvent, number: int) -> dict[str, str]:
    fields = {name.value: _cell(literal) for name, literal in event.fields}
    row = {"id": fields.pop("id", f"ex{number}"), "ts": format_time(event.at), "type": event.type.value}
    row.update(fields)
    return row


def _cell(literal: ast.Literal) -> str:
    if literal.type == "bool":
        return "true" if literal.value else "false"
    if isinstance(literal.value, Decimal):
        return format(literal.value, "f")
    return str(literal.value)


def format_time(at: datetime) -> str:
    """Local wall time as the event contract writes it: YYYY-MM-DD HH:MM:SS[.ffffff]."""
    return at.strftime("%Y-%m-%d %H:%M:%S" + (".%f" if at.microsecond else ""))


def _months(example: ast.Example) -> list[Month]:
    months = {f"{e.at:%Y-%m}" for e in example.events}
    given = _given_month(example)
    if given is not None:
        months.add(given.text)
    return [Month.parse(text) for text in sorted(months)]


def _given_month(example: ast.Example) -> Month | None:
    """The month the `given` metric values are for: the month of the example's date (the
    checker asks for one when there are no events), else of its first event."""
    if not example.given:
        return None
    day = example.day or min(e.at for e in example.events).date()
    return Month.parse(f"{day:%Y-%m}")


def given_values(example: ast.Example) -> dict[str, dict[str, Decimal]]:
    """The `given` lines as {metric: {agent: value}}, in the units metrics compute
    (metrics.py): a ratio as a fraction (99.2% → 0.992), a duration in seconds."""
    out: dict[str, dict[str, Decimal]] = {}
    for given in example.given:
        for name, literal in given.values:
            out.setdefault(name.value, {})[given.agent] = _metric_value(literal)
    return out


def _metric_value(literal: ast.Literal) -> Decimal:
    if literal.type == "percent":
        return Decimal(literal.value) / 100
    if literal.type == "duration":
        return Decimal(str(literal.value.total_seconds()))
    return Decimal(literal.value)


def _evaluate(policy: Policy, sources, example: ast.Example) -> list[Entry]:
    """The entries of every month the example's events fall in (and of the month its
    `given` metric values are for)."""
    if not example.events and not example.given:
        return []
    given_month = _given_month(example)
    with tempfile.TemporaryDirectory(prefix="ledger-example-") as tmp:
        folder = Path(tmp)
        _write_jsonl(event_rows(example), folder / "example.jsonl")
        entries: list[Entry] = []
        for month in _months(example):
            given = given_values(example) if month == given_month else None
            result = engine.run_policy(policy, sources, folder, month, given=given)
            _check_load(result.load)
            entries.extend(result.entries)
        return entries


def _write_jsonl(rows: list[dict[str, str]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _check_load(load) -> None:
    if load.rejects:
        reasons = "；".join(f"第 {r.line} 个事件：{r.reason}" for r in load.rejects)
        raise _CannotRun(f"有事件没有被读入 (events rejected): {reasons}")
    if load.duplicates_folded:
        raise _CannotRun("有完全相同的事件被合并成一个 (duplicate events folded)：请给它们不同的 id")


# ---------------------------------------------------------------- comparing

def _compared_rules(policy: Policy, example: ast.Example) -> set[str]:
    if any(e.kind == "nothing" for e in example.expectations):
        return {rule.id.value for rule in policy.rules}
    return {e.rule.value for e in example.expectations if e.rule is not None}


def _key(entry: Entry) -> tuple:
    """A line of a `confirm` rule (待复核) meets `expect R 100元`: the example shows what the rule
    flags; confirming it is a person's step."""
    amount = None if entry.status == PENDING else entry.amount
    return entry.rule_id, APPLIED if entry.status == TO_CONFIRM else entry.status, amount


def _expected_key(exp: ast.Expectation) -> tuple:
    if exp.kind == "pending":
        return exp.rule.value, PENDING, None
    return exp.rule.value, APPLIED, exp.amount


def _match(expected: list[ast.Expectation], got: list[Entry]) -> tuple[set[int], set[int]]:
    """Pair expectations with entries; return (matched expectation indexes, matched
    entry indexes). Expectations naming an agent are paired first: an expectation for
    any agent can take whatever entry they leave, so this pairs as many as possible."""
    order = sorted(range(len(expected)), key=lambda i: expected[i].agent is None)
    free = set(range(len(got)))
    met, used = set(), set()
    for i in order:
        exp = expected[i]
        for j in sorted(free):
            if _key(got[j]) == _expected_key(exp) and exp.agent in (None, got[j].agent):
                met.add(i)
                used.add(j)
                free.discard(j)
                break
    return met, used


def _compare(policy: Policy, example: ast.Example, entries: list[Entry]) -> ExampleResult:
    compared = _compared_rules(policy, example)
    got = [e for e in entries if e.rule_id in compared]
    wanted = [e for e in example.expectations if e.kind in ("entry", "pending")]
    met, used = _match(wanted, got)
    unexpected = len(got) - len(used)
    fired = {e.rule_id for e in got}
    # By identity, not equality: two identical `expect` lines are two entries.
    met_ids = {id(wanted[i]) for i in met}
    lines = []
    for exp in example.expectations:
        if exp.kind in ("entry", "pending"):
            ok = id(exp) in met_ids
        elif exp.kind == "none":
            ok = exp.rule.value not in fired
        else:
            ok = unexpected == 0
        lines.append(Line(describe_expectation(policy, exp), ok))
    got_lines = [Line(describe_entry(e), j in used) for j, e in enumerate(got)]
    passed = all(line.ok for line in lines) and all(line.ok for line in got_lines)
    if passed:
        return ExampleResult(example, True)
    return ExampleResult(example, False, tuple(lines), tuple(got_lines))


# ---------------------------------------------------------------- describing

def _yuan(amount: Decimal) -> str:
    text = format(amount.quantize(Decimal("0.01")), "f")
    return (text[:-3] if text.endswith(".00") else text) + "元"


def _kind_word(policy: Policy, rule_id: str) -> str:
    kinds = {r.amount.kind for r in policy.rules if r.id.value == rule_id}
    kinds |= {t.amount.kind for r in policy.monthly if r.id.value == rule_id for t in r.tiers}
    return {frozenset({"fine"}): "罚", frozenset({"bonus"}): "奖"}.get(frozenset(kinds), "")


def describe_expectation(policy: Policy, exp: ast.Expectation) -> str:
    where = f"（第 {exp.pos.line} 行）" if exp.pos else ""
    if exp.kind == "nothing":
        return f"所有规则都不产生记录 (no rule fires){where}"
    rule = exp.rule.value
    if exp.kind == "none":
        return f"{rule} 不产生记录 (no entries){where}"
    agent = exp.agent if exp.agent is not None else ANY_AGENT
    amount = "待定 (pending)" if exp.kind == "pending" else f"{_kind_word(policy, rule)} {_yuan(exp.amount)}".strip()
    return f"{rule} → {agent} {amount}{where}"


def describe_entry(entry: Entry) -> str:
    kind = "罚" if entry.kind == "fine" else "奖"
    amount = "待定 (pending)" if entry.status == PENDING else f"{kind} {_yuan(entry.amount)}"
    if entry.status == TO_CONFIRM:
        amount += "（待复核）"
    return f"{entry.rule_id} → {entry.agent} {amount} · 触发事件 {entry.event_id} {format_time(entry.ts)}"


# ---------------------------------------------------------------- coverage and output

@attrs.frozen
class Uncovered:
    """A rule version (or monthly rule) that no example covers: no example names the rule
    in an `expect` line on a date the version is in force (for a monthly rule: a month
    whose last day the version covers)."""

    rule: str
    location: str  # `policy/house-rules.rules:12`, where the version is declared
    effective: str | None  # the version's period as the statement shows it, None if undated
    monthly: bool

    def describe(self) -> str:
        what = [self.location]
        if self.effective:
            what.append(f"{self.effective}的版本")
        if self.monthly:
            what.append("月度规则")
        return f"{self.rule}（{'，'.join(what)}）"

    def as_json(self) -> dict:
        return {"rule": self.rule, "location": self.location, "effective": self.effective,
                "monthly": self.monthly}


def uncovered_versions(policy: Policy) -> list[Uncovered]:
    """Every rule version, event and monthly, that no example covers (in source order)."""
    days: dict[str, list[date]] = {}
    for ex in policy.examples:
        dates = sorted({e.at.date() for e in ex.events} | ({ex.day} if ex.day else set()))
        for exp in ex.expectations:
            if exp.rule is not None:
                days.setdefault(exp.rule.value, []).extend(dates or [None])
    out = []
    for rules, monthly in ((policy.rules, False), (policy.monthly, True)):
        for rule in rules:
            named = days.get(rule.id.value)
            if named and (rule.effective is None or any(_covers(rule.effective, d, monthly) for d in named)):
                continue
            out.append(Uncovered(rule.id.value, f"{rule.pos.filename}:{rule.pos.line}",
                                 str(rule.effective) if rule.effective else None, monthly))
    return sorted(out, key=lambda u: (u.location.rsplit(":", 1)[0], int(u.location.rsplit(":", 1)[1])))


def _covers(effective: ast.Effective, day: date | None, monthly: bool) -> bool:
    if day is None:
        return True  # an example without a date: not tied to a version
    if monthly:  # a monthly version applies to the months whose last day it covers
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1) - timedelta(days=1)
    return effective.start <= day and (effective.until is None or day <= effective.until)


def uncovered_rules(policy: Policy) -> list[str]:
    """Rule ids (in source order, monthly rules too) with a version no example covers."""
    return list(dict.fromkeys(u.rule for u in uncovered_versions(policy)))


def render_results(results: Sequence[ExampleResult], uncovered: Sequence[str | Uncovered]) -> str:
    out: list[str] = []
    for result in results:
        out.extend(_render_one(result))
    failed = sum(not r.passed for r in results)
    out.append("")
    out.append(f"{len(results)} 个例子：通过 {len(results) - failed}，失败 {failed}")
    ids = list(dict.fromkeys(u if isinstance(u, str) else u.rule for u in uncovered))
    out.append(f"没有例子的规则 (rules without examples): {', '.join(ids) if ids else '无'}")
    out.extend(f"  {u.describe()}" for u in uncovered if isinstance(u, Uncovered))
    return "\n".join(out)


def results_json(results: Sequence[ExampleResult], uncovered: Sequence[Uncovered]) -> dict:
    """`ledger test --format json` (shape documented in docs/cli.md)."""
    return {
        "examples": [{"location": r.location, "title": r.title, "passed": r.passed, "problem": r.problem,
                      "expected": [{"text": x.text, "ok": x.ok} for x in r.expected],
                      "got": [{"text": x.text, "ok": x.ok} for x in r.got]} for r in results],
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "uncovered": [u.as_json() for u in uncovered],
    }


def _render_one(result: ExampleResult) -> list[str]:
    mark = "✓" if result.passed else "✗"
    lines = [f"{mark} {result.location} {result.title}"]
    if result.passed:
        return lines
    if result.problem:
        return lines + [f"    {result.problem}"]
    lines.append("    期望 (expected):")
    lines += [f"      {' ' if line.ok else '-'} {line.text}" for line in result.expected]
    lines.append("    实际 (got):")
    lines += [f"      {' ' if line.ok else '+'} {line.text}" for line in result.got] or ["        （无记录 none）"]
    return lines


def exit_code(results: Sequence[ExampleResult]) -> int:
    """0 when every example passes, 1 otherwise."""
    return 0 if all(r.passed for r in results) else 1


def test_command(paths: Sequence[Path], *, strict: bool = False, format: str = "text") -> tuple[str, int]:
    """`ledger test [PATH…] [--strict] [--format text|json]`: the report and the exit code
    (1 when an example fails; with `strict`, also when a rule version has no example).
    A policy with errors raises PolicyError (exit code 1), as for `ledger run`."""
    if format not in ("text", "json"):
        raise LedgerError(f"--format 只能是 text 或 json (unknown format): {format}", exit_code=2)
    policy, sources = policy_load.checked_policy(list(paths or []) or [Path("policy")])
    results = run_examples(policy, sources)
    uncovered = uncovered_versions(policy)
    code = exit_code(results) or (1 if strict and uncovered else 0)
    if format == "json":
        return json.dumps(results_json(results, uncovered), ensure_ascii=False, indent=2), code
    text = render_results(results, uncovered)
    if strict and uncovered and not exit_code(results):
        text += f"\n--strict: {len(uncovered)} 个规则版本没有例子 (rule versions without examples)"
    return text, code


test_command.__test__ = False  # not a pytest test, despite the name
