"""AST → SQL. Each rule becomes one set-based query over typed event views.

The query shapes are plain portable SQL (CTEs, window functions, joins, GROUP BY)
so the same plans can later run on a distributed engine. Values from the policy
enter the SQL only as quoted literals; values from events only as data.

Null semantics (docs/decisions.md): every test yields TRUE or FALSE, never NULL.
Comparisons with a missing value are false, `!=` is true, a missing yes/no is no.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import attrs

from ledger.lang import ast
from ledger.lang.policy import CORE_FIELDS, EventType, Policy
from ledger.lang.wordmatch import longest_first

# Python's str.strip() whitespace set, as characters for trim() and as an RE2 class.
_WS_CHARS = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_WS = r"[\t\n\x{0b}\f\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
_SQL_TYPES = {"text": "VARCHAR", "money": "DECIMAL(18,4)", "number": "DECIMAL(38,10)",
              "bool": "BOOLEAN", "time": "TIMESTAMP"}
# Columns the events table always has (see events.py).
_BASE_COLUMNS = ("seq", "id", "ts", "ts_local", "type", "agent", "conversation", "buyer",
                 "order", "src_file", "src_line")
EXCERPT_FIELDS = ("text", "note", "reason", "category")


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote a string literal."""
    return "'" + value.replace("'", "''") + "'"


def view_name(event: str) -> str:
    return q("ev_" + event)


def event_view_sql(event: EventType, columns: set[str]) -> str:
    """A typed view of one event type over the raw `events` table.

    Declared fields are cast to their type; a field no input file has is NULL;
    declared defaults fill empty cells.
    """
    select = [q(c) for c in _BASE_COLUMNS]
    for field, ftype in event.fields.items():
        if field in CORE_FIELDS:
            continue
        raw = f"CAST({q(field)} AS {_SQL_TYPES[ftype]})" if field in columns else f"CAST(NULL AS {_SQL_TYPES[ftype]})"
        if field in event.defaults:
            raw = f"COALESCE({raw}, {_literal(event.defaults[field])})"
        select.append(f"{raw} AS {q(field)}")
    return (f"CREATE OR REPLACE TEMP VIEW {view_name(event.name)} AS SELECT {', '.join(select)} "
            f"FROM events WHERE type = {lit(event.name)}")


@attrs.frozen
class CompiledRule:
    rule: ast.Rule
    sql: str  # parameters: $start, $end (UTC month bounds), $data_end
    excerpt_field: str | None
    recipients: tuple[str, ...]
    neighbours: tuple[tuple[str, str], ...] = ()  # (previous|next, field) the rule reads
    # `has any` tests of the `when` on the excerpt field: (list name, words, exceptions), so the
    # evidence can say which words matched (lang/wordmatch.py)
    word_tests: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    # `matches /…/` tests of the `when` on the excerpt field that are not negated: the evidence
    # quotes the part of the text each one matched
    regex_tests: tuple[str, ...] = ()


def sequence_ctes(policy: Policy, rule: ast.Rule, shared: "dict[tuple, SequenceRelation] | None" = None, *,
                  narrow: bool = False, readers: "list | None" = None, where: str = "") -> tuple[list[str], str]:
    """The CTEs that select a rule's members and, with `per`, number them in sequence.

    Returns (ctes, name of the relation to read). Shared by the evaluator and `explain`.
    `shared` maps a `sequence_key` to a query of a table that already holds that
    sequence (see `shared_sequences`): rules over the same sequence then read it instead
    of sorting the events again. `narrow`: the sequence keeps only the columns `compile_rule` reads
    (less to sort); `explain` reads them all. `readers`: the rules or metrics that will
    read the sequence, when more than `rule` (their columns are all kept). `where`: a
    condition on a shared table's columns that the rows read must pass (before the joins
    that fetch a sub-sequence's neighbours).
    """
    keys = [k.value for k in rule.on.per]
    relation = (shared or {}).get(sequence_key(policy, rule)) if keys else None
    if relation is not None:
        return [f"sequenced AS ({relation.restricted(where)})"], "sequenced"
    if narrow and keys:
        return _sequence_ctes(policy, rule.on, neighbour_refs(rule.when), *_narrow(policy, readers or [rule]))
    return _sequence_ctes(policy, rule.on, neighbour_refs(rule.when))


def _sequence_ctes(policy: Policy, on: ast.On, neighbours, columns: "list[str] | None" = None,
                   gap: bool = True, nexts: "dict[str, str] | None" = None,
                   subsets: "dict[str, str] | None" = None,
                   uncounted: frozenset[str] = frozenset()) -> tuple[list[str], str]:
    """`columns`: the members' columns to keep (all when None); `gap`: whether to
    compute the time since the previous member; `nexts`: next-match columns to add
    (column -> condition, see next_match); `subsets`: sub-sequences to number too
    (suffix -> member condition, see _subset_relation); `uncounted`: the sequences
    ("" the whole, or a subset's suffix) whose member count no reader needs for every
    row (SequenceRelation.counted)."""
    event = policy.events[on.event.value]
    keys = [k.value for k in on.per]
    members = f"SELECT * FROM {view_name(event.name)}"
    if on.filter is not None:
        members += " WHERE " + condition_sql(policy, event, on.filter, alias=None)
    ctes = [f"members AS ({members})"]
    if not keys:
        return ctes, "members"
    partition = ", ".join(q(k) for k in keys)
    # An event whose key is missing is a sequence of its own (seq is unique, and an
    # integer sorts faster than the id).
    missing = " OR ".join(f"{q(k)} IS NULL" for k in keys)
    partition += f", CASE WHEN {missing} THEN seq END"
    w = f"(PARTITION BY {partition} ORDER BY ts, seq)"
    extra = [f"row_number() OVER {w} AS _position",
             *([] if "" in uncounted else [f"count(*) OVER (PARTITION BY {partition}) AS _count"])]
    if gap:
        extra.append(f"ts - lag(ts) OVER {w} AS _gap")
    for scope, field in neighbours:
        fn = "lag" if scope == "previous" else "lead"
        column = _neighbour_column(field)
        extra.append(f"{fn}({q(column)}) OVER {w} AS {q('_' + scope + '_' + field)}")
    for suffix, cond in sorted((subsets or {}).items()):
        extra.append(f"({cond}) AS {q('_in' + suffix)}")
        extra.append(f"count(*) FILTER (WHERE {cond}) OVER (PARTITION BY {partition} ORDER BY ts, seq "
                     f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {q('_position' + suffix)}")
        if suffix not in uncounted:
            extra.append(f"count(*) FILTER (WHERE {cond}) OVER (PARTITION BY {partition}) AS {q('_count' + suffix)}")
    for column, cond in sorted((nexts or {}).items()):
        extra.append(f"min(ts) FILTER (WHERE {cond}) OVER (PARTITION BY {partition} ORDER BY ts, seq "
                     f"ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS {q(column)}")
    kept = "*" if columns is None else ", ".join(q(c) for c in columns)
    ctes.append(f"sequenced AS (SELECT {kept}, {', '.join(extra)} FROM members)")
    return ctes, "sequenced"


def sequence_key(policy: Policy, rule: ast.Rule) -> tuple:
    """Rules with equal keys read the same sequence: same event type, same members
    (compared as compiled SQL, so layout and positions do not matter), same `per`."""
    event = policy.events[rule.on.event.value]
    members = condition_sql(policy, event, rule.on.filter, alias=None) if rule.on.filter is not None else ""
    return (event.name, members, tuple(k.value for k in rule.on.per))


def _narrow(policy: Policy, rules: "list[ast.Rule]") -> tuple[list[str], bool]:
    """(columns, gap) of a sequence that only these rules read: the member columns they
    read, and whether any reads the time since the previous member."""
    event = policy.events[rules[0].on.event.value]
    wanted = {c for r in rules for c in _columns_read(event, r)}
    columns = [c for c in _BASE_COLUMNS if c in wanted] + sorted(wanted - set(_BASE_COLUMNS))
    gap = any("gap" in _fields_read(r.when) and "gap" not in event.fields for r in rules)
    return columns, gap


def _nodes(expr):
    """Every node of an expression tree (attrs nodes and their children, tuples walked), `expr`
    first; nothing for None."""
    if expr is None:
        return
    yield expr
    for child in attrs.astuple(expr, recurse=False) if attrs.has(type(expr)) else ():
        for c in (child if isinstance(child, tuple) else (child,)):
            yield from _nodes(c)


def _fields_read(expr) -> set[str]:
    """Names an expression reads without a previous./next. scope (fields and sequence facts)."""
    return {e.name.value for e in _nodes(expr) if isinstance(e, ast.Ref) and e.scope is None}


def _columns_read(event: EventType, reader) -> set[str]:
    """The member columns `compile_rule` (a rule) or `metrics.metric_sql` (a metric)
    reads from the reader's sequence."""
    columns = {"seq", "id", "ts", "ts_local", "conversation", "order", "buyer", "agent"}
    read = _fields_read(reader.when)
    if isinstance(reader, ast.Rule):
        windows = list(reader.unless)
        columns |= {r.value for r in reader.recipients}
        excerpt = next((f for f in EXCERPT_FIELDS if event.fields.get(f) == "text"), None)
        if excerpt:
            columns.add(excerpt)
    else:  # a metric: its windows, its wait and the values it aggregates
        windows = [w for _, w in reader.windows] + ([reader.wait] if reader.wait is not None else [])
        for value in reader.values:
            read |= _fields_read(value)
    columns |= {k.value for w in windows for k in w.same}
    columns |= {f for f in read if f in event.fields or f in _BASE_COLUMNS}
    return columns


# Where a SequenceRelation's query reads its rows: the shared table, or only the rows a reader
# can pick (`restricted`); a name no query has otherwise, so substituting it is unambiguous.
ROWS = "__ledger_sequence_rows__"


@attrs.frozen
class SequenceRelation:
    """What a reader of a shared sequence reads: a query of its table, and the
    next-match columns it has (next_match)."""

    query: str  # the query, its rows read as `ROWS s` (the table, or part of it: `restricted`)
    nexts: frozenset[str] = frozenset()
    table: str = ""  # the shared table
    # whether `sql` has the members' count (`_count`); when not, `count_sql` counts it for a few rows
    counted: bool = True
    keys: tuple[str, ...] = ()  # the sequence's `per` keys
    member: str = ""  # the condition on the table's rows (as `s`) of a sub-sequence's members

    def count_sql(self, rows: str) -> str:
        """The members' count of the sequence of each row of the relation `rows` that has
        all its keys, as (keys…, _n): one grouped count of those sequences' members. A row
        with a missing key is a sequence of its own (count 1: the reader's COALESCE)."""
        keys = ", ".join(f"s.{q(k)}" for k in self.keys)
        on = " AND ".join(f"s.{q(k)} = k.{q(k)}" for k in self.keys)
        where = f" WHERE {self.member}" if self.member else ""
        return (f"SELECT {keys}, count(*) AS _n FROM {q(self.table)} s JOIN "
                f"(SELECT DISTINCT {', '.join(q(k) for k in self.keys)} FROM {rows}) k ON {on}{where} GROUP BY {keys}")

    @property
    def sql(self) -> str:
        """The query over the whole table."""
        return self.query.replace(ROWS, q(self.table))

    def restricted(self, where: str) -> str:
        """The query reading only the rows of the table that pass `where` (a condition on the
        table's own columns) as `s`; neighbours still come from the whole table."""
        if not where:
            return self.sql
        return self.query.replace(ROWS, f"(SELECT * FROM {q(self.table)} WHERE {where})")

    def next_column(self, policy: Policy, on: ast.On, window) -> "str | None":
        """The column answering `window` (a Window or a Wait) for a reader on `on`, if any."""
        whole = attrs.evolve(on, filter=None)
        found = next_match(policy, whole, window)
        return found[0] if found and found[0] in self.nexts else None


@attrs.frozen
class SharedSequence:
    key: tuple
    table: str
    sql: str  # CREATE TEMP TABLE ... AS the sequence, with every neighbour its rules read
    rules: tuple[int, ...]  # positions (in the list given) of the rules that read it
    # sequence_key -> what its readers read: the sequence itself, and the
    # sub-sequences (a member filter) numbered inside it
    relations: tuple[tuple[tuple, SequenceRelation], ...] = ()


def shared_sequences(policy: Policy, rules: list) -> list[SharedSequence]:
    """One table per sequence that two or more readers (rules, and metrics with `on`)
    read: numbering, counting and the previous/next values sorted once instead of once
    per reader.

    A reader over a sub-sequence — the same events and keys with a member filter, such
    as 敬语's agent messages of a conversation, or 短语回复's messages without the robot's
    — reads the table of the whole sequence when it reads positions (first, last,
    position, count) and neighbours (previous./next.), not gaps: the table numbers the
    filtered members too, and a member's neighbour is the member numbered one before or
    after it (_subset_relation, an equi-join), so the sub-sequence costs no sort of its own
    (a second sort of the month's messages cost about twice the join)."""
    groups: dict[tuple, list[int]] = {}
    for index, rule in enumerate(rules):
        if rule.on.per:
            groups.setdefault(sequence_key(policy, rule), []).append(index)
    subsets: dict[tuple, dict[tuple, list[int]]] = {}  # whole key -> sub key -> readers
    for key, members in list(groups.items()):
        whole = (key[0], "", key[2])
        if key[1] and whole in groups and all(_no_gap(rules[i]) for i in members):
            subsets.setdefault(whole, {})[key] = members
            del groups[key]
    out = []
    for number, (key, members) in enumerate(groups.items()):
        subs = subsets.get(key, {})
        if len(members) + sum(len(m) for m in subs.values()) < 2:
            continue
        group = [rules[i] for i in members] + [rules[i] for m in subs.values() for i in m]
        on = group[0].on  # the whole sequence when there are sub-sequences (their key has no filter)
        # the whole sequence's neighbours (lag/lead); a sub-sequence's come from joins
        neighbours = tuple(sorted({n for i in members for n in neighbour_refs(rules[i].when)}))
        sub_neighbours = {sub: tuple(sorted({n for i in readers for n in neighbour_refs(rules[i].when)}))
                          for sub, readers in subs.items()}
        nexts = dict(m for r in group for w in _windows_of(r) if (m := next_match(policy, on, w)))
        conds = {_suffix(sub[1]): sub[1] for sub in subs}
        # Only the columns the rules read: the table is held in memory, sorted.
        columns, gap = _narrow(policy, group)
        columns += sorted({_neighbour_column(f) for ns in sub_neighbours.values() for _, f in ns} - set(columns))
        # A member count that no reader's condition reads (`last`) is a window function of
        # the sort for nothing: the rules' evidence counts its few rows' sequences (SequenceRelation.counted).
        uncounted = frozenset(([""] if not any(_reads_last(policy, rules[i]) for i in members) else [])
                              + [_suffix(sub[1]) for sub, readers in subs.items()
                                 if not any(_reads_last(policy, rules[i]) for i in readers)])
        ctes, relation = _sequence_ctes(policy, on, neighbours, columns, gap, nexts, conds, uncounted)
        table = f"_seq_{number}"
        sql = f"CREATE OR REPLACE TEMP TABLE {q(table)} AS WITH {', '.join(ctes)} SELECT * FROM {relation}"
        keys = tuple(key[2])
        relations = [(key, SequenceRelation(f"SELECT * FROM {ROWS} s", frozenset(nexts), table,
                                            "" not in uncounted, keys))]
        relations += [(sub, SequenceRelation(_subset_relation(table, columns, nexts, _suffix(sub[1]), list(key[2]),
                                                              sub_neighbours[sub], _suffix(sub[1]) not in uncounted),
                                             frozenset(nexts), table, _suffix(sub[1]) not in uncounted, keys,
                                             f"s.{q('_in' + _suffix(sub[1]))}"))
                      for sub in subs]
        out.append(SharedSequence(key, table, sql, tuple(sorted(i for r in [members, *subs.values()] for i in r)),
                                  tuple(relations)))
    return out


def _suffix(cond: str) -> str:
    """A column-name suffix for a condition: the same condition, the same name."""
    return "_" + hashlib.sha1(cond.encode()).hexdigest()[:12]


def _subset_relation(table: str, columns: list[str], nexts: dict, suffix: str, keys: list[str],
                     neighbours: tuple[tuple[str, str], ...] = (), counted: bool = True) -> str:
    """The sub-sequence with member condition `suffix` read from the whole sequence's
    table: its members, numbered among themselves (count of members up to this one,
    and in all), the next-match columns (later events of the whole sequence), and the
    `neighbours` it reads: those of the member numbered one before (previous.) or after
    (next.) with the same keys. A member with a missing key is a sequence of its own:
    its key equals nothing, so it has no neighbour, as in a sort of its own."""
    position, inside = q("_position" + suffix), q("_in" + suffix)
    cols = [f"s.{q(c)}" for c in columns] + [f"s.{q(c)}" for c in sorted(nexts)]
    cols += [f"s.{position} AS _position"] + ([f"s.{q('_count' + suffix)} AS _count"] if counted else [])
    joins = []
    for scope, alias, step in (("previous", "p", "- 1"), ("next", "n", "+ 1")):
        if any(s == scope for s, _ in neighbours):
            same = "".join(f"{alias}.{q(k)} = s.{q(k)} AND " for k in keys)
            joins.append(f"LEFT JOIN {q(table)} {alias} ON {same}{alias}.{inside} "
                         f"AND {alias}.{position} = s.{position} {step}")
    cols += [f"{'p' if scope == 'previous' else 'n'}.{q(_neighbour_column(field))} AS {q('_' + scope + '_' + field)}"
             for scope, field in neighbours]
    return f"SELECT {', '.join(cols)} FROM {ROWS} s {' '.join(joins)}{' ' if joins else ''}WHERE s.{inside}"


def _neighbour_column(field: str) -> str:
    """The column a neighbour's `field` is read from (user-facing time is wall time)."""
    return "ts_local" if field == "ts" else field


def _reads_last(policy: Policy, reader) -> bool:
    """Whether a reader of a sequence reads `last` (its members' count) for every row it picks."""
    event = policy.events[reader.on.event.value]
    exprs = [reader.when] + list(getattr(reader, "values", ()))
    return "last" not in event.fields and any("last" in _fields_read(e) for e in exprs)


def _no_gap(reader) -> bool:
    """Whether a reader of a sequence does not read the time since the previous member."""
    exprs = [reader.when] + list(getattr(reader, "values", ()))
    return not any("gap" in _fields_read(e) for e in exprs)


def next_match(policy: Policy, on: ast.On, window: "ast.Window | ast.Wait") -> "tuple[str, str] | None":
    """(column, condition) when a window "is there a later X, same keys" can be read
    from a shared sequence instead of joined: the sequence holds every event of X's
    type (no member filter) cut by exactly the window's keys, so the next matching
    event is the next matching member, and one window column of the sequence's single
    sort (min ts over the following members that match) answers it for every reader.
    None for other windows. The column's name is derived from the condition, so the
    sequence and its readers agree on it. A `wait for` is "the first later X"."""
    is_wait = isinstance(window, ast.Wait)
    if (not is_wait and (window.count != 1 or window.kind not in ("within", "after"))) \
            or window.event.value != on.event.value or on.filter is not None or not on.per \
            or sorted(k.value for k in window.same) != sorted(k.value for k in on.per):
        return None
    event = policy.events[window.event.value]
    cond = condition_sql(policy, event, window.filter, alias=None) if window.filter is not None else "TRUE"
    return "_next" + _suffix(cond), cond


def _windows_of(reader) -> list:
    """A rule's `unless` windows; a metric's `with`/`unless` windows and its `wait`."""
    if isinstance(reader, ast.Rule):
        return list(reader.unless)
    return [w for _, w in reader.windows] + ([reader.wait] if reader.wait is not None else [])


def condition_sql(policy: Policy, event: EventType, expr, *, alias: str | None, sequence: bool = False) -> str:
    """A condition about one event type as a SQL boolean that is never NULL."""
    return ExprCompiler(policy, event, alias=alias, sequence=sequence).expr(expr)


def compile_rule(policy: Policy, rule: ast.Rule, shared: "dict[tuple, SequenceRelation] | None" = None) -> CompiledRule:
    """The rule as one query; `shared`: sequences already in tables (`shared_sequences`)."""
    event = policy.events[rule.on.event.value]
    keys = [k.value for k in rule.on.per]
    neighbours = neighbour_refs(rule.when)
    relation = (shared or {}).get(sequence_key(policy, rule)) if keys else None
    # A window the shared sequence answers with a column exempts a row before anything
    # else is asked of it: one comparison, where `when` may scan texts and join the
    # neighbours, and the other windows join (回复超时, 未再次询问: most rows are answered
    # in time). Asked of the table's rows (before the neighbour joins) and again here.
    answered = [(q(column), interval_sql(window.d2)) for window in rule.unless
                if relation is not None and (column := relation.next_column(policy, rule.on, window))]
    answered_sql = "".join(f" AND NOT COALESCE(s.{c} <= s.ts + {d}, FALSE)" for c, d in answered)
    ctes, source = sequence_ctes(policy, rule, shared, narrow=True,
                                 where=" AND ".join(f"NOT COALESCE({c} <= ts + {d}, FALSE)" for c, d in answered))
    when = condition_sql(policy, event, rule.when, alias="s", sequence=bool(keys)) if rule.when is not None else "TRUE"
    # MATERIALIZED: the windows and the result read the (few) triggers; left to itself
    # DuckDB may instead materialise the whole sequence they are picked from.
    ctes.append(f"triggers AS MATERIALIZED (SELECT * FROM {source} s WHERE s.ts >= $start AND s.ts < $end "
                f"AND {effective_sql(rule.effective, 's')}{answered_sql} AND ({when}))")

    found_cols, joins, exempt, pending = [], [], [], []
    for i, window in enumerate(rule.unless):
        column = relation.next_column(policy, rule.on, window) if relation is not None else None
        if column:  # the shared sequence holds the next match: 1 or 0, no join
            found = f"(CASE WHEN t.{q(column)} <= t.ts + {interval_sql(window.d2)} THEN 1 ELSE 0 END)"
        else:
            ctes.append(f"w{i} AS ({window_count_sql(policy, window, 'triggers')})")
            joins.append(f"LEFT JOIN w{i} ON w{i}.tseq = t.seq")
            found = f"COALESCE(w{i}.found, 0)"
        found_cols.append(f"{found} AS _found_{i}")
        exempt.append(f"{found} >= {window.count}")
        if window.kind in ("within", "range"):
            pending.append(f"t.ts + {interval_sql(window.d2)} > $data_end")
    where = f"WHERE NOT ({' OR '.join(exempt)})" if exempt else ""
    status = f"CASE WHEN {' OR '.join(pending)} THEN 'pending' ELSE 'applied' END" if pending else "'applied'"

    excerpt = next((f for f in EXCERPT_FIELDS if event.fields.get(f) == "text"), None)
    recipients = tuple(r.value for r in rule.recipients) or ("agent",)
    cols = ["t.seq", "t.id", "t.ts", "t.ts_local", "t.conversation", "t." + q("order"), "t.buyer",
            (f"t.{q(excerpt)}" if excerpt else "NULL") + " AS _excerpt",
            f"{status} AS _status"]
    cols += found_cols
    if keys:  # the sequence facts, so the evidence can show them
        cols += ["t._position"]
        if relation is None or relation.counted:
            cols += ["t._count"]
        else:  # counted for the triggers' sequences only
            ctes.append(f"counts AS ({relation.count_sql('triggers')})")
            joins.append("LEFT JOIN counts c ON " + " AND ".join(f"c.{q(k)} = t.{q(k)}" for k in keys))
            cols += ["COALESCE(c._n, 1) AS _count"]
        cols += [f"t.{q('_' + scope + '_' + field)}" for scope, field in neighbours]
    cols += [f"t.{q(r)} AS _to_{i}" for i, r in enumerate(recipients)]
    if rule.amount.of is not None:  # `bonus 1% of amount`: the field the share is taken of
        cols.append(f"t.{q(rule.amount.of.value)} AS _base")
    sql = (f"WITH {', '.join(ctes)} SELECT {', '.join(cols)} FROM triggers t "
           f"{' '.join(joins)} {where} ORDER BY t.ts, t.seq")
    return CompiledRule(rule, sql, excerpt, recipients, neighbours, word_tests(policy, rule.when, excerpt),
                        regex_tests(rule.when, excerpt))


def word_tests(policy: Policy, expr, field: str | None) -> tuple:
    """The `FIELD has any LIST` tests in an expression (field: the event's own, not a neighbour's)."""
    found: list = []

    def walk(e) -> None:
        if isinstance(e, ast.BoolOp):
            for x in e.operands:
                walk(x)
        elif isinstance(e, ast.Not):
            walk(e.operand)
        elif (isinstance(e, ast.TextTest) and e.op == "has_any" and isinstance(e.subject, ast.Ref)
              and e.subject.scope is None and e.subject.name.value == field):
            name = e.operand.name.value if e.operand.name is not None else None
            words = policy.words.get(name, ()) if name is not None else e.operand.words
            label = name if name is not None else " ".join(words)
            entry = (label, tuple(words), tuple(policy.word_exceptions.get(name, ())) if name else ())
            if entry not in found:
                found.append(entry)

    if expr is not None and field is not None:
        walk(expr)
    return tuple(found)


def regex_tests(expr, field: str | None) -> tuple[str, ...]:
    """The patterns of the `FIELD matches /…/` tests in an expression that are not under a `not`."""
    found: list[str] = []

    def walk(e) -> None:
        if isinstance(e, ast.BoolOp):
            for x in e.operands:
                walk(x)
        elif (isinstance(e, ast.TextTest) and e.op == "matches" and isinstance(e.subject, ast.Ref)
              and e.subject.scope is None and e.subject.name.value == field and e.operand not in found):
            found.append(e.operand)

    if expr is not None and field is not None:
        walk(expr)
    return tuple(found)


def effective_sql(effective: ast.Effective | None, alias: str) -> str:
    """The rule version is in force at the event's wall time: [start 00:00, until + 1 day)."""
    if effective is None:
        return "TRUE"
    cond = f"{alias}.ts_local >= TIMESTAMP {lit(effective.start.isoformat())}"
    if effective.until is not None:
        end = effective.until + timedelta(days=1)
        cond += f" AND {alias}.ts_local < TIMESTAMP {lit(end.isoformat())}"
    return f"({cond})"


def neighbour_refs(expr) -> tuple[tuple[str, str], ...]:
    """The (previous|next, field) pairs an expression reads, sorted."""
    return tuple(sorted({(e.scope.value, e.name.value) for e in _nodes(expr)
                         if isinstance(e, ast.Ref) and e.scope is not None}))


def window_conditions(window: ast.Window) -> list[str]:
    """The key and time conditions relating a candidate event `e` to the trigger `t`
    (without the window's filter). Shared with `explain`, which lists the events found."""
    conds = [f"e.{q(k.value)} = t.{q(k.value)}" for k in window.same]
    after = "(e.ts > t.ts OR (e.ts = t.ts AND e.seq > t.seq))"
    before = "(e.ts < t.ts OR (e.ts = t.ts AND e.seq < t.seq))"
    if window.kind == "within":
        conds += [after, f"e.ts <= t.ts + {interval_sql(window.d2)}"]
    elif window.kind == "range":
        conds += [after, f"e.ts >= t.ts + {interval_sql(window.d1)}", f"e.ts <= t.ts + {interval_sql(window.d2)}"]
    elif window.kind == "before":
        conds += [before]
    elif window.kind == "within_before":
        conds += [before, f"e.ts >= t.ts - {interval_sql(window.d2)}"]
    elif window.kind == "after":  # any time later (metrics)
        conds += [after]
    elif window.kind == "same_day":  # the same calendar day in the policy's zone (metrics)
        conds += ["e.seq <> t.seq", "CAST(e.ts_local AS DATE) = CAST(t.ts_local AS DATE)"]
    return conds


def window_count_sql(policy: Policy, window: ast.Window, triggers: str) -> str:
    """Count, for every row of the relation `triggers`, the events that would excuse it.

    The filter's conjuncts that test texts (has any, matches, only, contains) count the
    joined pairs (`count(*) FILTER`) instead of selecting the events joined: a regex is
    then run only on the events near a trigger, not on every event of the type (缺货直答's
    商品链接: every agent message of the month, for a few thousand triggers). Same counts:
    a trigger whose pairs all fail counts 0, as one with no pair (readers COALESCE to 0)."""
    other = policy.events[window.event.value]
    conds = window_conditions(window)
    counted = []
    if window.filter is not None:
        parts = list(window.filter.operands) if isinstance(window.filter, ast.BoolOp) \
            and window.filter.op == "and" else [window.filter]
        for part in parts:
            (counted if _tests_text(part) else conds).append(condition_sql(policy, other, part, alias="e"))
    count = f"count(*) FILTER (WHERE {' AND '.join(counted)})" if counted else "count(*)"
    return (f"SELECT t.seq AS tseq, {count} AS found FROM {triggers} t "
            f"JOIN {view_name(other.name)} e ON {' AND '.join(conds)} GROUP BY t.seq")


def _tests_text(expr) -> bool:
    """Whether an expression holds a text test (a scan of a text: dearer than a comparison)."""
    return any(isinstance(e, ast.TextTest) for e in _nodes(expr))


def interval_sql(d: timedelta) -> str:
    micros = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    return f"to_microseconds({micros})"


def _literal(node: ast.Literal) -> str:
    v = node.value
    if node.type == "text":
        return lit(v)
    if node.type == "bool":
        return "TRUE" if v else "FALSE"
    if node.type in ("number", "money", "percent"):
        return f"CAST({lit(str(v))} AS DECIMAL(38,10))"
    if node.type == "duration":
        return interval_sql(v)
    raise AssertionError(node.type)  # pragma: no cover


_MAX_ALTERNATION = 2000  # longer word lists: one contains() per word (RE2 limits a pattern's size)
_MAX_UNION = 20000  # characters of an alternation of several tests' patterns (ExprCompiler._any_of)


def _union(patterns: list[str]) -> str:
    """One pattern that matches where any of `patterns` matches."""
    return "|".join(f"(?:{p})" for p in patterns)


def _re_escape(word: str) -> str:
    # RE2 accepts a backslash before any punctuation; letters and CJK stay literal.
    return "".join("\\" + c if (not c.isalnum() and c != "_" and ord(c) < 128) else c for c in word)


class ExprCompiler:
    """Compiles expressions about one event type, reading columns through `alias`."""

    def __init__(self, policy: Policy, event: EventType, *, alias: str | None, sequence: bool):
        self.policy, self.event, self.alias, self.sequence = policy, event, alias, sequence

    def col(self, name: str) -> str:
        return f"{self.alias}.{q(name)}" if self.alias else q(name)

    # -- values (may be NULL)
    def value(self, e) -> str:
        if isinstance(e, ast.Literal):
            return _literal(e)
        if isinstance(e, ast.Ref):
            name = e.name.value
            if e.scope is not None:
                column = self.col(f"_{e.scope.value}_{name}")
                if self.event.fields.get(name) == "bool":
                    return f"COALESCE({column}, FALSE)"
                return column
            if name in ("first", "last", "position", "gap") and name not in self.event.fields:
                return {"first": f"({self.col('_position')} = 1)",
                        "last": f"({self.col('_position')} = {self.col('_count')})",
                        "position": self.col("_position"),
                        "gap": self.col("_gap")}[name]
            if name == "ts":  # user-facing time is wall time in the policy's zone
                return self.col("ts_local")
            if self.event.fields.get(name) == "bool":  # a missing yes/no counts as no
                return f"COALESCE({self.col(name)}, FALSE)"
            return self.col(name)
        if isinstance(e, ast.Call):
            fn, arg = e.function.value, self.value(e.arg)
            if fn == "length":
                # trim() with this set costs ~1 µs a text (2M minimal, 短语回复: 0.6 CPU s);
                # one RE2 scan for surrounding white space first, and trim only those
                return (f"COALESCE(CASE WHEN regexp_matches({arg}, '^{_WS}|{_WS}$') "
                        f"THEN length(trim({arg}, {lit(_WS_CHARS)})) ELSE length({arg}) END, 0)")
            if fn == "hour":
                return f"hour({arg})"
            if fn == "weekday":
                return f"isodow({arg})"
            if fn == "date":
                return f"strftime({arg}, '%Y-%m-%d')"
        return f"({self.expr(e)})"  # a condition used as a value

    # -- conditions (never NULL)
    def expr(self, e) -> str:
        if isinstance(e, ast.BoolOp):
            if e.op == "or":
                return self._any_of(e.operands)
            return "(" + " AND ".join(self.expr(x) for x in e.operands) + ")"
        if isinstance(e, ast.Not):
            return f"(NOT {self.expr(e.operand)})"
        if isinstance(e, ast.Compare):
            a, b = self.value(e.left), self.value(e.right)
            if e.op == "!=":
                return f"COALESCE({a} <> {b}, TRUE)"
            return f"COALESCE({a} {e.op} {b}, FALSE)"
        if isinstance(e, ast.InList):
            values = ", ".join(_literal(v) for v in e.values)
            return f"COALESCE({self.value(e.subject)} IN ({values}), FALSE)"
        if isinstance(e, ast.TextTest):
            return self._text_test(e)
        return f"COALESCE({self.value(e)}, FALSE)"  # a yes/no field or sequence fact

    def _any_of(self, operands) -> str:
        """`A or B or …`. Each regex scan of a text costs about the same whatever the pattern,
        so the disjuncts that are exactly one regex test of the same text (`matches`, `has any`
        without exceptions) become one scan of the alternation of their patterns; and when
        every disjunct needs some pattern of one text to match (`_implied`), one scan of the
        alternation of those patterns comes first, and only the texts it finds are tested
        disjunct by disjunct (most texts match none: 顶撞买家 tests 13 patterns). Both are
        exact: a text matches an alternation iff it matches one of its branches."""
        parts: list[str] = []
        merged: dict[str, tuple[int, list[str]]] = {}  # subject -> (its place in parts, patterns)
        for x in operands:
            exact = self._regex(x, exact=True)
            if exact is not None and exact[0] in merged:
                merged[exact[0]][1].append(exact[1])
                continue
            if exact is not None:
                merged[exact[0]] = (len(parts), [exact[1]])
            parts.append(self.expr(x))
        for subject, (place, patterns) in merged.items():
            if len(patterns) > 1 and len(union := _union(patterns)) <= _MAX_UNION:
                parts[place] = f"COALESCE(regexp_matches({subject}, {lit(union)}), FALSE)"
            elif len(patterns) > 1:  # too long for one pattern: as written
                return "(" + " OR ".join(self.expr(x) for x in operands) + ")"
        joined = "(" + " OR ".join(parts) + ")"
        implied = [self._regex(x, exact=False) for x in operands]
        if len(parts) > 1 and all(implied) and len({s for s, _ in implied}) == 1:
            union = _union([p for _, p in implied])
            if len(union) <= _MAX_UNION:
                return f"(COALESCE(regexp_matches({implied[0][0]}, {lit(union)}), FALSE) AND {joined})"
        return joined

    def _regex(self, e, *, exact: bool) -> "tuple[str, str] | None":
        """(subject SQL, pattern): with `exact`, when `e` is true exactly when the pattern
        matches the subject; otherwise when `e` can only be true if it matches (a pattern
        `e` implies). None when there is no such pattern."""
        if isinstance(e, ast.TextTest) and e.op in ("matches", "has_any"):
            if e.op == "matches":
                return self.value(e.subject), e.operand
            words = tuple(w for w in self._words(e.operand) if w)
            if not words or len(words) > _MAX_ALTERNATION or (exact and self._exceptions(e.operand)):
                return None
            return self.value(e.subject), "|".join(_re_escape(w) for w in words)
        if exact or not isinstance(e, ast.BoolOp):
            return None
        found = [self._regex(x, exact=False) for x in e.operands]
        if e.op == "and":  # any conjunct's pattern
            return next((f for f in found if f is not None), None)
        if all(found) and len({s for s, _ in found}) == 1:
            return found[0][0], _union([p for _, p in found])
        return None

    def _text_test(self, e: ast.TextTest) -> str:
        s = self.value(e.subject)
        if e.op == "contains":
            return f"COALESCE(contains({s}, {lit(e.operand)}), FALSE)"
        if e.op == "matches":
            return f"COALESCE(regexp_matches({s}, {lit(e.operand)}), FALSE)"
        words = self._words(e.operand)
        if not words:
            return "FALSE"
        if e.op == "has_any":
            exceptions = self._exceptions(e.operand)
            words = tuple(w for w in words if w)
            if not words:
                return "FALSE"
            if len(words) > _MAX_ALTERNATION:  # one contains() per word, as it always meant
                if exceptions:  # the text an exception covers is not searched (lang/wordmatch.py)
                    pattern = "|".join(_re_escape(x) for x in longest_first(exceptions))
                    s = f"regexp_replace({s}, {lit(pattern)}, chr(31), 'g')"
                return "COALESCE(" + " OR ".join(f"contains({s}, {lit(w)})" for w in words) + ", FALSE)"
            # One pass of one alternation of the words (the same as a contains() per word,
            # which DuckDB ran over a fresh regexp_replace each: ~100x slower for a long list).
            # Taking the exceptions out never makes a word appear (the mark is in no word),
            # so only a text that has a word at all has its exceptions taken out and is searched again;
            # and only when it has an exception at all (a scan, where the rewrite copies the text:
            # most agent texts have a polite word, few an exception of 敬语).
            any_word = lit("|".join(_re_escape(w) for w in words))
            found = f"regexp_matches({s}, {any_word})"
            if exceptions:
                pattern = lit("|".join(_re_escape(x) for x in longest_first(exceptions)))
                masked = f"regexp_matches(regexp_replace({s}, {pattern}, chr(31), 'g'), {any_word})"
                found = (f"CASE WHEN NOT {found} THEN FALSE WHEN NOT regexp_matches({s}, {pattern}) THEN TRUE "
                         f"ELSE {masked} END")
            return f"COALESCE({found}, FALSE)"
        # only: the text, without whitespace, punctuation and symbols (～, emoji), is
        # made of list words.
        alternation = "|".join(_re_escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))
        stripped = f"regexp_replace({s}, '(?:{_WS}|\\pP|\\pS)+', '', 'g')"
        full = f"COALESCE(regexp_full_match({stripped}, {lit('(?:' + alternation + ')+')}), FALSE)"
        # A text with a character that is neither a separator nor in a list word cannot
        # pass: that test stops at the first such character (most texts, early) and spares
        # them the rewrite; CASE evaluates `full` only for the rest.
        chars = "".join(f"\\x{{{ord(c):x}}}" for c in sorted({c for w in words for c in w}))
        alphabet = f"COALESCE(regexp_full_match({s}, '(?:{_WS}|\\pP|\\pS|[{chars}])+'), FALSE)"
        return f"(CASE WHEN {alphabet} THEN {full} ELSE FALSE END)"

    def _exceptions(self, source: ast.WordSource) -> tuple[str, ...]:
        if source.name is None:
            return ()
        return tuple(x for x in self.policy.word_exceptions.get(source.name.value, ()) if x)

    def _words(self, source: ast.WordSource) -> tuple[str, ...]:
        if source.name is not None:
            return self.policy.words.get(source.name.value, ())
        return source.words
