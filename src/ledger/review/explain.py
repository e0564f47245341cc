"""`ledger explain`: why an entry was charged, and why an event was (or was not).

* `explain_entry(entry_id, month=, policy_paths=, events_root=) -> EntryExplanation`:
  the rule (file:line and its text), the trigger event, every condition with its value
  on that event, every window with the exact span searched and what was (not) found
  there, and the conversation around the trigger.
* `explain_event(event_id, month=, policy_paths=, events_root=) -> EventExplanation`:
  for every rule that reads events of the type, whether and why it charged this one;
  for every rule whose `unless` windows search the type, which triggers it excused.
* An unknown id raises `LedgerError` (exit code 2) saying where the id belongs (a
  monthly rule's line, another month, a charge the policy no longer makes) or which id
  was probably meant.

Both only read (the policy, the month's events) and return the records of
`review.explain_records`; `review.explain_render` turns them into the printed text.

Everything is computed in DuckDB with the compiler's own pieces (`sequence_ctes`,
`condition_sql`, `window_count_sql`), restricted to the event in question, so the
explanation and the statement cannot disagree on the meaning of a condition. The
entries are computed exactly as the engine computes them (`compile_rule`,
`evidence.entries_of`, `monthly.escalate`) on the same connection, so the events
are read only once. Conditions are quoted as `lang.unparse` writes them.
"""

from __future__ import annotations

import contextlib
import difflib
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence
from zoneinfo import ZoneInfo

import attrs
import duckdb

from ledger.core.entries import NO_AGENT, PENDING, Entry, entry_id
from ledger.core.errors import LedgerError
from ledger.core.money import ZERO
from ledger.core.month import Month, format_ts
from ledger.evaluate import engine
from ledger.evaluate.caps import employee_key, owed
from ledger.evaluate.compile import (
    EXCERPT_FIELDS,
    ExprCompiler,
    compile_rule,
    condition_sql,
    effective_sql,
    interval_sql,
    lit,
    q,
    sequence_ctes,
    view_name,
    window_conditions,
    window_count_sql,
)
from ledger.evaluate.engine import load_month
from ledger.evaluate.evidence import entries_of
from ledger.evaluate.monthly import escalate
from ledger.lang import ast
from ledger.lang.load import checked_policy
from ledger.lang.policy import Policy
from ledger.lang.unparse import expr_text, number_text
from ledger.lang.wordmatch import WordMatch, find
from ledger.period import lifecycle
from ledger.review.explain_records import (
    CHARGED,
    EXCUSED,
    INCONSISTENT,
    NOT_APPLICABLE,
    NOT_IN_FORCE,
    NOT_IN_MONTH,
    PENDING_VERDICT,
    ConditionCheck,
    ConditionNode,
    EntryExplanation,
    EventBrief,
    EventExplanation,
    EventInfo,
    EvidenceUse,
    Money,
    Operand,
    RuleCheck,
    RuleInfo,
    Transcript,
    TranscriptLine,
    TriggerUse,
    WindowCheck,
    clip,
    value_text,
    verdict_label,
    yes_no,
)

_ADJUSTED = ("已确认 (confirmed)", "已免除 (waived)", "申诉结果")  # notes period.adjustments puts first
TRANSCRIPT_CONTEXT = 10  # events shown before and after the trigger
LISTED_EVENTS = 5  # events listed per window (found), the rest are counted
LISTED_OTHERS = 3  # events listed per window (in the span but failing the filter)

_RAW_HIDDEN = ("seq", "ts", "ts_local", "src_file", "src_line", "id", "type")
_CORE_ORDER = ("agent", "conversation", "buyer", "order")


# ================================================================ public API

def explain_entry(entry_id: str, *, month: str, policy_paths: Sequence[Path], events_root: Path,
                  roster=None, adjustments_root: Path | None = None, out_dir: Path | None = None,
                  period: lifecycle.Period | None = None) -> EntryExplanation:
    """Why the statement line `entry_id` of `month` exists, and what the statement deducts
    for it. The line is found exactly where the statement finds it
    (`period.lifecycle.prepare_policy` with the same roster, adjustments and closed months),
    so its money is the statement's; the rule version is the one that made it. A caller
    that already holds the month's `period` (the review desk) passes it to skip that run."""
    wanted = entry_id.strip().upper()
    if period is None:
        policy, sources = checked_policy(policy_paths)
        period = lifecycle.prepare_policy(policy, sources, Path(events_root), month, roster=roster,
                                          adjustments_root=adjustments_root, out_dir=out_dir)
    entry = next((e for e in period.result.entries if e.id == wanted), None)
    with _session(month, policy_paths, events_root) as s:
        if entry is None:
            entries = [e.id for e in period.result.entries]
            raise _no_such_entry(s, entry_id.strip(), wanted, entries)
        money = _money(period.result, entry, roster)
        rule = next((r for r in s.policy.rules if f"{r.pos.filename}:{r.pos.line}" == entry.rule_location), None)
        if rule is None or entry.origin:  # a monthly rule's line, 人工调整, 上月更正
            monthly_ = next((r for r in s.policy.monthly if f"{r.pos.filename}:{r.pos.line}" == entry.rule_location),
                            None)
            info = _rule_info(monthly_) if monthly_ is not None else None
            return EntryExplanation(entry, s.month.text, None, None, s.data_end_local, None, money, info)
        event = _event_info(s, entry.event_seq)
        check = _rule_check(s, rule, event)
        tags = _window_tags(check)
        return EntryExplanation(entry, s.month.text, event, check, s.data_end_local,
                                _transcript(s, event, tags, [rule]), money, _rule_info(rule))


def _money(result, entry: Entry, roster) -> Money:
    by_account = roster.by_account() if roster is not None else {}
    key = employee_key(entry.agent, by_account)
    emp = by_account.get(entry.agent)
    limit = result.limits.get(key)
    owed_ = owed(entry)
    relieved = owed_ - entry.amount if entry.owed is not None and entry.amount is not None else ZERO
    first = entry.evidence.split("；")[0]
    adjusted = first if first.startswith(_ADJUSTED) else ""
    return Money(owed_, relieved if owed_ is not None else None, entry.amount, entry.cap_note,
                 limit.reason if limit is not None and limit.limit is not None else "",
                 f"{emp.id}（{emp.name}）" if emp is not None else entry.agent, adjusted)


def explain_event(event_id: str, *, month: str, policy_paths: Sequence[Path],
                  events_root: Path) -> EventExplanation:
    """Every rule that reads the event's type, and why each did or did not charge it."""
    with _session(month, policy_paths, events_root) as s:
        event = _event_info(s, _find_event(s, event_id.strip()))
        rules = [r for r in s.policy.rules if r.on.event.value == event.type]
        checks = tuple(_rule_check(s, r, event) for r in rules)
        evidence = tuple(_evidence_uses(s, event))
        return EventExplanation(s.month.text, event, event.type in s.policy.events, checks, evidence,
                                s.data_end_local, _transcript(s, event, {}, rules))


# ================================================================ session

@attrs.define
class _Session:
    """One DuckDB connection with the month's events loaded, and what every query needs."""

    con: duckdb.DuckDBPyConnection
    policy: Policy
    month: Month
    start: datetime  # UTC month bounds
    end: datetime
    data_end_utc: datetime | None
    data_end_local: datetime | None
    columns: frozenset[str]  # columns of the raw `events` table
    _entries: dict = attrs.field(factory=dict)

    def rule(self, rule_id: str) -> ast.Rule:
        return next(r for r in self.policy.rules if r.id.value == rule_id)

    def params(self, sql: str, **extra) -> dict:
        values = {"start": self.start, "end": self.end, "data_end": self.data_end_utc or self.start, **extra}
        return {k: v for k, v in values.items() if f"${k}" in sql}

    def rows(self, sql: str, **extra) -> list[dict]:
        result = self.con.execute(sql, self.params(sql, **extra))
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]

    def rule_entries(self, rule: ast.Rule) -> tuple[Entry, ...]:
        """The rule's entries for the month, exactly as `engine.run_policy` makes them."""
        key = (rule.id.value, rule.pos.filename, rule.pos.line)  # one key per rule version
        if key not in self._entries:
            compiled = compile_rule(self.policy, rule)
            result = self.con.execute(compiled.sql, self.params(compiled.sql))
            names = [d[0] for d in result.description]
            # `then` amounts by occurrence, as the run applies them
            self._entries[key] = tuple(escalate(self.policy, entries_of(
                compiled, names, result.fetchall(), self.data_end_local, [])))
        return self._entries[key]


@contextlib.contextmanager
def _session(month: str, policy_paths: Sequence[Path], events_root: Path) -> Iterator[_Session]:
    month_ = Month.parse(month)
    policy, _sources = checked_policy(policy_paths)
    tz = ZoneInfo(policy.timezone)
    with engine.database() as con:
        load_month(con, policy, Path(events_root))
        start, end = month_.bounds_utc(tz)
        data_end_utc, data_end_local = engine.data_end(con, end)
        columns = frozenset(r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE events)").fetchall())
        yield _Session(con, policy, month_, start, end, data_end_utc, data_end_local, columns)


# ================================================================ finding things

def _no_such_entry(s: _Session, given: str, wanted: str, ids: list[str]) -> LedgerError:
    message = f"找不到明细编号 {given} (no such entry) — {s.month.text}"
    if s.policy.monthly:  # a monthly rule's line: its evidence is on the statement
        agents = [a for (a,) in s.con.execute("SELECT DISTINCT agent FROM events WHERE agent IS NOT NULL").fetchall()]
        for r in s.policy.monthly:
            if any(entry_id(r.id.value, f"month:{s.month.text}", a) == wanted for a in agents):
                return LedgerError(message + f"；它是月度规则 {r.id.value} 的明细：月度规则按本月指标计算，"
                                   "用到的指标值和命中的档位写在账单「明细」的「依据」列 "
                                   "(a monthly rule's line: explain does not recompute metrics; see its evidence)",
                                   exit_code=2)
    located = _locate_entry_id(s, wanted)
    if located is not None:
        rule, event_id_, event_month = located
        if event_month != s.month.text:
            message += (f"；它是规则 {rule} 对事件 {event_id_} 的明细，属于 {event_month}，"
                        f"请用 --month {event_month} (the entry belongs to {event_month})")
        else:
            message += (f"；它是规则 {rule} 对事件 {event_id_} 的编号，但按现在的规则和数据本月不产生这条明细，"
                        f"可用 ledger explain --event {event_id_} --month {s.month.text} 查看原因 "
                        f"(the current policy and events no longer charge it)")
        return LedgerError(message, exit_code=2)
    close = difflib.get_close_matches(wanted, sorted(set(ids)), n=1, cutoff=0.75)
    if close:
        message += f"；是不是 {close[0]}？(did you mean {close[0]}?)"
    return LedgerError(message, exit_code=2)


def _locate_entry_id(s: _Session, wanted: str) -> tuple[str, str, str] | None:
    """(rule, event id, month) whose entry id would be `wanted`, in any month."""
    for rule in s.policy.rules:
        fields = [r.value for r in rule.recipients] or ["agent"]
        cols = ", ".join(q(f) for f in fields)
        sql = f"SELECT id, strftime(ts_local, '%Y-%m') AS month, {cols} FROM {view_name(rule.on.event.value)}"
        for row in s.con.execute(sql).fetchall():
            for who in {*(v for v in row[2:] if v), NO_AGENT}:
                if entry_id(rule.id.value, row[0], who) == wanted:
                    return rule.id.value, row[0], row[1]
    return None


def _find_event(s: _Session, event_id: str) -> int:
    found = s.con.execute("SELECT seq FROM events WHERE id = ? ORDER BY seq LIMIT 1", [event_id]).fetchone()
    if found:
        return found[0]
    message = f"找不到事件编号 {event_id} (no such event)"
    close = s.con.execute(
        "SELECT id, levenshtein(id, $x) AS d FROM events WHERE id IS NOT NULL ORDER BY d, seq LIMIT 1",
        {"x": event_id}).fetchone()
    if close and close[1] <= max(1, len(event_id) // 4):
        message += f"；是不是 {close[0]}？(did you mean {close[0]}?)"
    raise LedgerError(message, exit_code=2)


# ================================================================ the event

def _event_info(s: _Session, seq: int) -> EventInfo:
    row = s.rows("SELECT * FROM events WHERE seq = $seq", seq=seq)[0]
    values = _with_defaults(s.policy, row)
    fields = []
    order = [c for c in _CORE_ORDER if c in values] + [c for c in values if c not in _CORE_ORDER]
    for name in order:
        if name in _RAW_HIDDEN or values[name] is None:
            continue
        shown = values[name]
        if row.get(name) is None:  # filled by the declared default
            shown += "（默认 default）"
        fields.append((name, shown))
    return EventInfo(row["id"], row["type"], row["ts_local"], row["ts_local"].strftime("%Y-%m"),
                     f"{row['src_file']}:{row['src_line']}", tuple(fields), seq)


def _with_defaults(policy: Policy, row: dict) -> dict:
    """A raw event row with the declared defaults filled in (`kind` = "text")."""
    event = policy.events.get(row.get("type"))
    values = dict(row)
    for field, default in (event.defaults.items() if event else ()):
        if values.get(field) is None:
            values[field] = str(default.value)
    return values


def _rule_info(rule) -> RuleInfo:
    if isinstance(rule, ast.MonthlyRule):
        return RuleInfo(rule.id.value, rule.title, f"{rule.pos.filename}:{rule.pos.line}", rule.source,
                        rule.tiers[0].amount.kind, "月度 " + " / ".join(t.amount.text for t in rule.tiers))
    return RuleInfo(rule.id.value, rule.title, f"{rule.pos.filename}:{rule.pos.line}", rule.source,
                    rule.amount.kind, rule.amount.text)


# ================================================================ one rule, one event

def _rule_check(s: _Session, rule: ast.Rule, event: EventInfo) -> RuleCheck:
    in_month = _in_month(s, event.seq)
    flt = _filter_check(s, rule, event.seq)
    when, sequence = _when_check(s, rule, event.seq) if flt.value else (ConditionCheck("when", rule.when_source, None), None)
    windows = tuple(_window_check(s, rule, i, w, event.seq) for i, w in enumerate(rule.unless))
    entries = tuple(e for e in s.rule_entries(rule) if e.event_seq == event.seq) if in_month else ()
    verdict, reason = _verdict(s, rule, event, in_month, flt, when, windows, entries)
    return RuleCheck(_rule_info(rule), in_month, flt, when, sequence, windows, entries, verdict, reason)


def _in_month(s: _Session, seq: int) -> bool:
    return bool(s.con.execute("SELECT ts >= $start AND ts < $end FROM events WHERE seq = $seq",
                              {"start": s.start, "end": s.end, "seq": seq}).fetchone()[0])


def _in_force(s: _Session, rule: ast.Rule, seq: int) -> bool:
    return bool(s.con.execute(f"SELECT {effective_sql(rule.effective, 'e')} FROM events e WHERE e.seq = $seq",
                              {"seq": seq}).fetchone()[0])


def _verdict(s: _Session, rule: ast.Rule, event: EventInfo, in_month: bool, flt: ConditionCheck,
             when: ConditionCheck, windows: tuple[WindowCheck, ...], entries: tuple[Entry, ...]) -> tuple[str, str]:
    if not in_month:
        return NOT_IN_MONTH, (f"事件时间 {format_ts(event.ts)} 属于 {event.month}，不在 {s.month.text} "
                              f"(use --month {event.month})")
    if not _in_force(s, rule, event.seq):
        return NOT_IN_FORCE, (f"这一版本的生效期间是 {rule.effective}，事件时间 {format_ts(event.ts)} 不在其中 "
                              f"(this version is not in force then)")
    excusing = [w for w in windows if w.excused]
    if not flt.value:
        verdict, reason = NOT_APPLICABLE, f"不是成员：[filter] 为否 — {_blame(flt)}"
    elif not when.value:
        verdict, reason = NOT_APPLICABLE, f"when 条件为否 — {_blame(when)}"
    elif excusing:
        verdict = EXCUSED
        reason = "；".join(f"窗口 {w.number} 找到 {w.found} 条，需要 {w.required} 条 (window {w.number} found {w.found})"
                          for w in excusing)
    elif not entries:
        return INCONSISTENT, "条件成立、窗口未免除，但引擎没有产生明细 (conditions hold but the engine made no entry)"
    elif any(e.status == PENDING for e in entries):
        late = [w for w in windows if w.beyond_data_end]
        deadline = max(w.deadline for w in late) if late else None
        verdict = PENDING_VERDICT
        reason = (f"期限 {format_ts(deadline) if deadline else '?'} 晚于数据截止 "
                  f"{format_ts(s.data_end_local) if s.data_end_local else '?'}，结果还不知道 (deadline after the data end)")
    else:
        return CHARGED, "明细 (entry) " + "，".join(f"{e.id}（{e.agent} {e.amount}元）" for e in entries)
    if verdict == PENDING_VERDICT:
        return verdict, reason + "；明细 (entry) " + "，".join(f"{e.id}（{e.agent}）" for e in entries)
    if entries:  # the engine charged what the conditions say it should not
        return INCONSISTENT, f"{reason}；但引擎产生了明细 {', '.join(e.id for e in entries)} (engine disagrees)"
    return verdict, reason


def _blame(check: ConditionCheck) -> str:
    parts = []
    for node in check.decisive:
        extra = ", ".join(f"{o.text} = {value_text(o.value)}" for o in node.operands)
        parts.append(f"`{node.text}` = {yes_no(node.value)}" + (f"（{extra}）" if extra else ""))
    return "；".join(parts) or "?"


# ================================================================ conditions

def _filter_check(s: _Session, rule: ast.Rule, seq: int) -> ConditionCheck:
    if rule.on.filter is None:
        return ConditionCheck("filter", "", True)
    event = s.policy.events[rule.on.event.value]
    ctx = ExprCompiler(s.policy, event, alias=None, sequence=False)
    source = f"[{expr_text(rule.on.filter)}]"
    value, nodes, _ = _evaluate(s, ctx, rule.on.filter, [], view_name(event.name), seq, [])
    return ConditionCheck("filter", source, value, nodes)


def _when_check(s: _Session, rule: ast.Rule, seq: int) -> tuple[ConditionCheck, str | None]:
    keys = [k.value for k in rule.on.per]
    ctes, relation = sequence_ctes(s.policy, rule)
    extra = ["_position", "_count"] if keys else []
    if rule.when is None:
        if not keys:
            return ConditionCheck("when", "", True), None
        value, nodes, facts = _evaluate(s, None, None, ctes, relation, seq, extra)
        return ConditionCheck("when", "", True), _sequence_text(keys, facts)
    event = s.policy.events[rule.on.event.value]
    ctx = ExprCompiler(s.policy, event, alias=None, sequence=bool(keys))
    value, nodes, facts = _evaluate(s, ctx, rule.when, ctes, relation, seq, extra)
    return ConditionCheck("when", rule.when_source, value, nodes), _sequence_text(keys, facts)


def _sequence_text(keys: list[str], facts: dict | None) -> str | None:
    if not keys or not facts:
        return None
    return (f"同一 {', '.join(keys)} 的成员中第 {facts['_position']}/{facts['_count']} 条 "
            f"(position {facts['_position']} of {facts['_count']})")


@attrs.frozen
class _Node:
    expr: object
    depth: int
    children: tuple[int, ...]


def _flatten(expr) -> list[_Node]:
    """The condition's nodes in reading order; `and`/`or`/`not` have children."""
    nodes: list[_Node] = []

    def visit(e, depth: int) -> int:
        index = len(nodes)
        nodes.append(None)  # placeholder, filled once the children are known
        inner = e.operands if isinstance(e, ast.BoolOp) else (e.operand,) if isinstance(e, ast.Not) else ()
        children = tuple(visit(c, depth + 1) for c in inner)
        nodes[index] = _Node(e, depth, children)
        return index

    visit(expr, 0)
    return nodes


def _evaluate(s: _Session, ctx: ExprCompiler | None, expr, ctes: list[str], relation: str, seq: int,
              extra: list[str]) -> tuple[bool | None, tuple[ConditionNode, ...], dict | None]:
    """Evaluate every node of `expr` (and the operands of its tests) on the row `seq` of
    `relation`. Returns (value, nodes, extra columns); value None when the row is absent."""
    nodes = _flatten(expr) if expr is not None else []
    cols = [f"{q(c)} AS {q(c)}" for c in extra]
    plans = []
    for i, node in enumerate(nodes):
        cols.append(f"{ctx.expr(node.expr)} AS b{i}")
        operands = _operands(node.expr) if not node.children else []
        for j, operand in enumerate(operands):
            cols.append(f"{ctx.value(operand)} AS v{i}_{j}")
        matched = _matched_sql(s.policy, ctx, node.expr)
        if matched:
            cols.append(f"{matched} AS m{i}")
        plans.append((operands, bool(matched)))
    cols = cols or ["TRUE AS _present"]
    with_ = f"WITH {', '.join(ctes)} " if ctes else ""
    rows = s.rows(f"{with_}SELECT {', '.join(cols)} FROM {relation} WHERE seq = $seq", seq=seq)
    if not rows:
        return None, (), None
    row = rows[0]
    values = [bool(row[f"b{i}"]) for i in range(len(nodes))]
    decisive = _decisive(nodes, values, 0) if nodes else set()
    out = []
    for i, (node, (operands, has_matched)) in enumerate(zip(nodes, plans)):
        found = _word_match(s.policy, node.expr, row[f"v{i}_0"] if operands else None) if has_matched else None
        out.append(ConditionNode(
            text=expr_text(node.expr), value=values[i], depth=node.depth, kind=_node_kind(node.expr),
            operands=tuple(Operand(expr_text(o), row[f"v{i}_{j}"]) for j, o in enumerate(operands)
                           if not _obvious(node.expr, values[i])),
            matched=found.matched if found else (),
            cancelled=found.cancelled if found else (),
            decisive=i in decisive))
    return (values[0] if nodes else True), tuple(out), row


def _obvious(e, value: bool) -> bool:
    """`sender = "agent"` that holds: the operand's value is the literal, no need to repeat it."""
    return (value and isinstance(e, ast.Compare) and e.op == "="
            and (isinstance(e.left, ast.Literal) or isinstance(e.right, ast.Literal)))


def _node_kind(e) -> str:
    if isinstance(e, ast.BoolOp):
        return e.op
    return "not" if isinstance(e, ast.Not) else "test"


def _operands(e) -> list:
    """The non-literal values a test reads (and the argument of a function call)."""
    if isinstance(e, ast.Compare):
        candidates = [e.left, e.right]
    elif isinstance(e, (ast.InList, ast.TextTest)):
        candidates = [e.subject]
    else:
        return []
    out, seen = [], set()
    for c in candidates:
        for x in ([c, c.arg] if isinstance(c, ast.Call) else [c]):
            if not isinstance(x, ast.Literal) and expr_text(x) not in seen:
                seen.add(expr_text(x))
                out.append(x)
    return out


def _matched_sql(policy: Policy, ctx: ExprCompiler | None, e) -> str | None:
    """For `has any`: the list words the text contains, joined by \\x1f."""
    if not isinstance(e, ast.TextTest) or e.op != "has_any":
        return None
    words = _words(policy, e.operand)
    if not words:
        return None
    subject = ctx.value(e.subject)
    cases = ", ".join(f"CASE WHEN contains({subject}, {lit(w)}) THEN {lit(w)} END" for w in words)
    return f"concat_ws(chr(31), {cases})"


def _word_match(policy: Policy, e, text) -> WordMatch:
    """Which words of the list the text holds, and which were cancelled by an exception
    (the meaning the compiled SQL has: lang/wordmatch.py)."""
    exceptions = policy.word_exceptions.get(e.operand.name.value, ()) if e.operand.name is not None else ()
    return find(text if isinstance(text, str) else None, _words(policy, e.operand), exceptions)


def matched_in_text(policy: Policy, rule_location: str, text: str | None) -> tuple[str, ...]:
    """The words that the `has any` tests on `text` of the rule at `rule_location` find in
    `text` (exceptions applied, as the statement reads them): what a reader highlights in a
    trigger message. Empty for a rule with no such test, or no rule at that location."""
    rule = next((r for r in policy.rules if f"{r.pos.filename}:{r.pos.line}" == rule_location), None)
    if rule is None or not text:
        return ()
    found: list[str] = []
    for expr in (rule.on.filter, rule.when):
        for node in _flatten(expr) if expr is not None else ():
            e = node.expr
            if isinstance(e, ast.TextTest) and e.op == "has_any" and expr_text(e.subject) == "text":
                found += [w for w in _word_match(policy, e, text).matched if w not in found]
    return tuple(found)


def _words(policy: Policy, source: ast.WordSource) -> tuple[str, ...]:
    if source.name is not None:
        return tuple(policy.words.get(source.name.value, ()))
    return source.words


def _decisive(nodes: list[_Node], values: list[bool], i: int) -> set[int]:
    """The tests that decide node i's value: a false `and` is decided by its false
    parts, a true `or` by its true parts; otherwise every part counts. A `not` is
    one unit (its text says what it negates)."""
    node = nodes[i]
    if not node.children or isinstance(node.expr, ast.Not):
        return {i}
    op = node.expr.op
    if (op == "and" and not values[i]) or (op == "or" and values[i]):
        chosen = [c for c in node.children if values[c] == values[i]]
    else:
        chosen = list(node.children)
    return set().union(*(_decisive(nodes, values, c) for c in chosen))


# ================================================================ windows

def _window_check(s: _Session, rule: ast.Rule, index: int, window: ast.Window, seq: int) -> WindowCheck:
    trigger_view = view_name(rule.on.event.value)
    other = s.policy.events[window.event.value]
    trigger = s.rows(f"SELECT * FROM {trigger_view} WHERE seq = $seq", seq=seq)[0]
    t_cte = f"t0 AS (SELECT * FROM {trigger_view} WHERE seq = $seq)"
    counted = s.rows(f"WITH {t_cte} {window_count_sql(s.policy, window, 't0')}", seq=seq)
    found = counted[0]["found"] if counted else 0

    flt = condition_sql(s.policy, other, window.filter, alias="e") if window.filter is not None else "TRUE"
    conds = " AND ".join(window_conditions(window))
    base = f"WITH {t_cte} SELECT e.*, count(*) OVER () AS _n FROM t0 t JOIN {view_name(other.name)} e ON {conds}"
    # Looking back, the events nearest the trigger matter most: list the latest ones.
    order = "e.ts DESC, e.seq DESC" if window.kind in ("before", "within_before") else "e.ts, e.seq"
    matching = _by_time(s.rows(f"{base} AND {flt} ORDER BY {order} LIMIT {LISTED_EVENTS}", seq=seq))
    others = (_by_time(s.rows(f"{base} AND NOT ({flt}) ORDER BY {order} LIMIT {LISTED_OTHERS}", seq=seq))
              if window.filter is not None else [])

    ts = trigger["ts_local"]
    span_from, span_to, span_text = _span(window, ts)
    deadline = span_to if window.kind in ("within", "range") else None
    beyond = (deadline is not None and s.data_end_utc is not None
              and trigger["ts"] + window.d2 > s.data_end_utc)
    return WindowCheck(
        number=index + 1, source=window.source, kind=window.kind, span_from=span_from, span_to=span_to,
        span_text=span_text, keys=tuple((k.value, trigger.get(k.value)) for k in window.same),
        required=window.count, found=found, events=tuple(_brief(s.policy, r) for r in matching),
        others=others[0]["_n"] if others else 0, other_events=tuple(_brief(s.policy, r) for r in others),
        filter_text=f"[{expr_text(window.filter)}]" if window.filter is not None else "",
        next_after=_next_after(s, window, t_cte, flt, seq), deadline=deadline, beyond_data_end=beyond)


def _by_time(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["ts"], r["seq"]))


def _span(window: ast.Window, ts: datetime) -> tuple[datetime | None, datetime | None, str]:
    if window.kind == "within":
        return ts, ts + window.d2, f"{format_ts(ts)} – {format_ts(ts + window.d2)}（触发事件之后，含结束时刻 (after the trigger, end included)）"
    if window.kind == "range":
        a, b = ts + window.d1, ts + window.d2
        return a, b, f"{format_ts(a)} – {format_ts(b)}（含两端 (both ends included)）"
    if window.kind == "before":
        return None, ts, f"{format_ts(ts)} 之前的任何时间 (any time before the trigger)"
    a = ts - window.d2
    return a, ts, f"{format_ts(a)} – {format_ts(ts)}（触发事件之前 (before the trigger)）"


def _next_after(s: _Session, window: ast.Window, t_cte: str, flt: str, seq: int) -> EventBrief | None:
    """The first event the window would have counted, had it come after the deadline."""
    if window.kind not in ("within", "range"):
        return None
    conds = [f"e.{q(k.value)} = t.{q(k.value)}" for k in window.same]
    conds += [f"e.ts > t.ts + {interval_sql(window.d2)}", flt]
    rows = s.rows(f"WITH {t_cte} SELECT e.* FROM t0 t JOIN {view_name(window.event.value)} e ON "
                  f"{' AND '.join(conds)} ORDER BY e.ts, e.seq LIMIT 1", seq=seq)
    return _brief(s.policy, rows[0]) if rows else None


def _brief(policy: Policy, row: dict) -> EventBrief:
    values = _with_defaults(policy, row)
    parts = []
    for name in ("sender", "kind"):
        if values.get(name) is not None:
            parts.append(str(values[name]))
    if values.get("sender") is None and values.get("agent") is not None:
        parts.append(str(values["agent"]))
    if values.get("type") not in (None, "message"):
        parts.insert(0, values["type"])
    shown = [name for name in ("order", "category", "reason", "amount", "handover")
             if values.get(name) is not None and values.get("type") != "message"]
    parts += [f"{name}={number_text(values[name])}" for name in shown]
    excerpt = next((values[f] for f in EXCERPT_FIELDS if values.get(f) is not None and f not in shown), None)
    if excerpt is not None:
        parts.append(f"「{clip(str(excerpt))}」")
    return EventBrief(values["id"], values["ts_local"], " · ".join(parts), values["seq"])


def _window_tags(check: RuleCheck) -> dict[int, tuple[str, ...]]:
    tags: dict[int, tuple[str, ...]] = {}
    for w in check.windows:
        for e in w.events:
            tags[e.seq] = tags.get(e.seq, ()) + (f"窗口{w.number}找到",)
    return tags


# ================================================================ evidence for other rules

def _evidence_uses(s: _Session, event: EventInfo) -> Iterator[EvidenceUse]:
    for rule in s.policy.rules:
        for index, window in enumerate(rule.unless):
            if window.event.value == event.type:
                use = _evidence_use(s, rule, index, window, event)
                if use.counted_total or use.not_counted:
                    yield use


def _evidence_use(s: _Session, rule: ast.Rule, index: int, window: ast.Window, event: EventInfo) -> EvidenceUse:
    """Which of the rule's triggers in the month had this event inside their window."""
    trigger_type = s.policy.events[rule.on.event.value]
    other = s.policy.events[window.event.value]
    ctes, relation = sequence_ctes(s.policy, rule)
    when = (condition_sql(s.policy, trigger_type, rule.when, alias="s", sequence=bool(rule.on.per))
            if rule.when is not None else "TRUE")
    ctes.append(f"triggers AS (SELECT * FROM {relation} s WHERE s.ts >= $start AND s.ts < $end "
                f"AND {effective_sql(rule.effective, 's')} AND ({when}))")
    flt = condition_sql(s.policy, other, window.filter, alias="e") if window.filter is not None else "TRUE"
    rows = s.rows(f"WITH {', '.join(ctes)} SELECT t.id, t.seq, t.ts_local, {flt} AS counted "
                  f"FROM triggers t JOIN {view_name(other.name)} e ON {' AND '.join(window_conditions(window))} "
                  f"WHERE e.seq = $seq ORDER BY t.ts, t.seq", seq=event.seq)
    counted = [r for r in rows if r["counted"]]
    entries = s.rule_entries(rule)
    uses = tuple(TriggerUse(r["id"], r["ts_local"], _trigger_outcome(rule, entries, r["seq"]))
                 for r in counted[:LISTED_EVENTS])
    return EvidenceUse(_rule_info(rule), index + 1, window.source, uses, len(counted),
                       len(rows) - len(counted),
                       f"[{expr_text(window.filter)}]" if window.filter is not None else "")


def _trigger_outcome(rule: ast.Rule, entries: tuple[Entry, ...], seq: int) -> str:
    mine = [e for e in entries if e.event_seq == seq]
    if not mine:
        return verdict_label(EXCUSED, rule.amount.kind)
    verdict = PENDING_VERDICT if any(e.status == PENDING for e in mine) else CHARGED
    return f"{verdict_label(verdict, rule.amount.kind)} {', '.join(e.id for e in mine)}（仍不够 (still not enough)）"


# ================================================================ transcript

def _transcript(s: _Session, event: EventInfo, tags: dict[int, tuple[str, ...]],
                rules: Sequence[ast.Rule] = ()) -> Transcript | None:
    """The events around the trigger that share its conversation; else the key the rules'
    windows search by (`same order`), else its buyer, order or agent."""
    fields = dict(event.fields)
    window_keys = [k.value for r in rules for w in r.unless for k in w.same]
    key = next((k for k in ("conversation", *window_keys, "buyer", "order", "agent")
                if k in fields and k in s.columns and not fields[k].endswith("（默认 default）")), None)
    if key is None:
        return None
    value = fields[key]
    n = TRANSCRIPT_CONTEXT
    rows = s.rows(
        f"WITH c AS (SELECT *, row_number() OVER (ORDER BY ts, seq) AS _rn, count(*) OVER () AS _n "
        f"FROM events WHERE {q(key)} = $v), me AS (SELECT _rn FROM c WHERE seq = $seq) "
        f"SELECT c.* FROM c, me WHERE c._rn BETWEEN me._rn - {n} AND me._rn + {n} ORDER BY c._rn",
        v=value, seq=event.seq)
    if not rows:
        return None
    lines = []
    for row in rows:
        values = _with_defaults(s.policy, row)
        text = next((values[f] for f in EXCERPT_FIELDS if values.get(f) is not None), None)
        detail = "" if row["type"] == "message" else _brief(s.policy, row).summary
        lines.append(TranscriptLine(row["id"], row["ts_local"], row["type"], values.get("sender"),
                                    values.get("kind"), None if detail else text, row["seq"] == event.seq,
                                    tags.get(row["seq"], ()), detail))
    total = rows[0]["_n"]
    return Transcript(key, value, tuple(lines), rows[0]["_rn"] - 1, total - rows[-1]["_rn"])
