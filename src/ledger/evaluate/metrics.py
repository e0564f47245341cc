"""Metrics: one value per agent per month, compiled to set-based SQL.

A metric selects events exactly as a rule does (compile.sequence_ctes: the `on`
filter, `per` sequences, `when`), keeps those that pass its `with` / `unless` windows,
optionally measures a `wait` to the first matching later event, and aggregates per
agent with GROUP BY. Metrics that pick the same rows are one query (`group_key`,
`metrics_sql`). "Is there one" windows (`within D`, `after`, at least 1) and `wait`
read a next-match column when the shared sequence has one (compile.next_match), and
otherwise make one pass of window functions over the picked rows and the candidates
(`_next_sql`); `same day` is a grouped count joined on the keys and the date
(`_same_day_parts`; `_same_day_sql` for the rows of a sequence); other
windows count matches with compile.window_count_sql. Ratios and `count fines` are
computed from other metrics / the entries in Python (a handful of values per agent).

Values are Decimal: counts, sums in 元, durations in seconds, ratios as fractions
(0.425 = 42.5%). A metric that has no value is None — an average of nothing, or a
ratio whose denominator is 0 (docs/decisions.md): never an error and never 0. Counts
and sums over nothing are 0.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ledger.core.entries import APPLIED, FINE
from ledger.core.money import Percent, round_line
from ledger.evaluate.compile import (
    ExprCompiler,
    condition_sql,
    interval_sql,
    q,
    sequence_ctes,
    sequence_key,
    view_name,
    window_count_sql,
)
from ledger.lang import ast
from ledger.lang.policy import Policy

MICROS = Decimal(1_000_000)
_ZERO_WHEN_EMPTY = ("count", "distinct", "sum", "fines")
DAY = "__ledger_day_counts__"  # a same-day count's alias in its join condition, until it has one


def group_key(policy: Policy, metric: ast.Metric) -> tuple:
    """Metrics with equal keys pick the same rows (same sequence, same `when`) and are
    computed in one query (metrics_sql)."""
    event = policy.events[metric.on.event.value]
    when = condition_sql(policy, event, metric.when, alias="s", sequence=bool(metric.on.per)) \
        if metric.when is not None else "TRUE"
    return sequence_key(policy, metric), when


def picked_ctes(policy: Policy, group: "list[ast.Metric]", shared: dict | None) -> list[str]:
    """The CTEs ending in `picked`: the rows the metrics of one group_key select (in the
    month, with an agent, passing `when`). `shared`: sequences already in tables
    (compile.shared_sequences)."""
    first = group[0]
    # narrow: a sequence of its own keeps only the columns these metrics read (less to sort)
    ctes, source = sequence_ctes(policy, first, shared, narrow=True, readers=group)
    when = group_key(policy, first)[1]
    return ctes + [f"picked AS (SELECT * FROM {source} s WHERE s.ts >= $start AND s.ts < $end "
                   f"AND s.agent IS NOT NULL AND ({when}))"]


def metrics_sql(policy: Policy, group: "list[ast.Metric]", picked: list[str], remember,
                relation=None) -> tuple[str, list[int]]:
    """(SELECT agent, <aggregate columns of every metric in order> … GROUP BY agent, how
    many of those columns each metric has) for the metrics of one group_key over their
    `picked` CTEs. Parameters: $start, $end.

    One scan of the picked rows serves them all: each metric's `with` / `unless`
    windows and `wait` become its own keep condition and wait column, and its
    aggregates are FILTERed by that condition. `remember(sql)`, given the query of a
    next-event pass, returns a table holding its result, so metrics waiting for the
    same events make that pass once and share one join. `relation`: the shared sequence
    (compile.SequenceRelation) the picked rows come from, whose next-match columns
    answer the windows and waits they can (平均响应时长, 三分钟回复轮次, 回复轮次: no pass)."""
    event = policy.events[group[0].on.event.value]
    sequence = bool(group[0].on.per)
    ctes = list(picked)
    joins: dict[str, str] = {}  # alias -> its LEFT JOIN clause
    aliases: dict[str, str] = {}  # table of a next-event pass -> its alias

    def joined(body: str) -> str:
        """The alias of a next-event pass's table in the query (one join per table)."""
        table = remember(f"WITH {', '.join(picked)} {body}")
        if table not in aliases:
            alias = aliases[table] = f"p{len(aliases)}"
            joins[alias] = f"LEFT JOIN {q(table)} {alias} ON {alias}.seq = t.seq"
        return aliases[table]

    columns, aggregates, widths = [], [], []
    for m_index, metric in enumerate(group):
        keep = []
        for i, (kind, window) in enumerate(metric.windows):
            column = relation.next_column(policy, metric.on, window) if relation is not None else None
            if column:
                found = (f"COALESCE(t.{q(column)} <= t.ts + {interval_sql(window.d2)}, FALSE)"
                         if window.kind == "within" else f"(t.{q(column)} IS NOT NULL)")
            elif window.count == 1 and window.kind in ("within", "after", "same_day"):
                # "is there one": the next matching event per key (a window function), no pair join
                if window.kind == "same_day" and not sequence:
                    # without `per` the picked rows are the view's rows, every column: the
                    # day's counts join them here, by their keys and date (no table, no seq join)
                    grouped, on, itself = _same_day_parts(policy, metric.on.event.value, window.event.value,
                                                          window.filter, window.same, "t")
                    clause = f"LEFT JOIN ({grouped}) {DAY} ON {on}"
                    alias = next((a for a, c in joins.items() if c == clause.replace(DAY, a)), f"d{len(joins)}")
                    joins[alias] = clause.replace(DAY, alias)
                    found = f"COALESCE(COALESCE({alias}.n, 0) - {itself} > 0, FALSE)"
                elif window.kind == "same_day":
                    n = joined(_same_day_sql(policy, metric.on.event.value, window.event.value,
                                             window.filter, window.same))
                    found = f"COALESCE({n}.day_n - {n}.self_n > 0, FALSE)"
                else:
                    n = joined(_next_sql(policy, window.event.value, window.filter, window.same))
                    found = (f"COALESCE({n}.nxt <= t.ts + {interval_sql(window.d2)}, FALSE)"
                             if window.kind == "within" else f"({n}.nxt IS NOT NULL)")
            else:  # at least N (or fewer than N): count the matches
                w = f"w{m_index}_{i}"
                ctes.append(f"{w} AS ({window_count_sql(policy, window, 'picked')})")
                joins[w] = f"LEFT JOIN {w} ON {w}.tseq = t.seq"
                found = f"(COALESCE({w}.found, 0) >= {window.count})"
            keep.append(found if kind == "with" else f"NOT {found}")
        columns.append(f"{' AND '.join(keep) or 'TRUE'} AS _keep{m_index}")
        if metric.wait is not None:
            w = metric.wait
            column = relation.next_column(policy, metric.on, w) if relation is not None else None
            nxt = f"t.{q(column)}" if column else f"{joined(_next_sql(policy, w.event.value, w.filter, w.same))}.nxt"
            wait = f"datediff('microsecond', t.ts, {nxt})"
            if w.cap is not None:
                cap = int(w.cap.total_seconds() * 1_000_000)
                wait = f"LEAST(COALESCE({wait}, {cap}), {cap})"
            columns.append(f"{wait} AS _wait{m_index}")
        mine = _aggregates(ExprCompiler(policy, event, alias="k", sequence=sequence), metric, m_index)
        aggregates += mine
        widths.append(len(mine))
    ctes.append(f"kept AS (SELECT t.*, {', '.join(columns)} FROM picked t {' '.join(joins.values())})")
    cols = ", ".join(f"{a} AS v{i}" for i, a in enumerate(aggregates))
    return f"WITH {', '.join(ctes)} SELECT k.agent, {cols} FROM kept k GROUP BY k.agent ORDER BY k.agent", widths


def _aggregates(ctx: ExprCompiler, metric: ast.Metric, index: int) -> list[str]:
    """The aggregate columns of one metric of a group: over its kept rows only."""
    keep = f"k._keep{index}"
    values = [_value(ctx, v, index) for v in metric.values]
    if metric.kind == "count":
        return [f"count(*) FILTER (WHERE {keep})"]
    if metric.kind == "distinct":
        tuple_ = values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"
        present = " AND ".join(f"{v} IS NOT NULL" for v in values)
        return [f"count(DISTINCT {tuple_}) FILTER (WHERE {keep} AND {present})"]
    if metric.kind == "avg":
        return [f"sum({values[0]}) FILTER (WHERE {keep})", f"count({values[0]}) FILTER (WHERE {keep})"]
    if metric.kind == "percentile":
        return [f"quantile_disc({values[0]}, {float(metric.percentile / 100)!r}) FILTER (WHERE {keep})"]
    return [f"{metric.kind}({values[0]}) FILTER (WHERE {keep})"]


def _value(ctx: ExprCompiler, expr, index: int) -> str:
    if isinstance(expr, ast.Ref) and expr.scope is None and expr.name.value == "wait" \
            and "wait" not in ctx.event.fields:
        return f"k._wait{index}"
    value = ctx.value(expr)
    if isinstance(expr, ast.Ref) and expr.name.value == "gap":  # a duration: microseconds
        return f"epoch_us({value})"
    return value


def _next_sql(policy: Policy, event: str, flt, same) -> str:
    """For every picked row: the time of the next matching event with the same keys
    (`nxt`: later ts, or the same ts and later input order). One pass of window
    functions over picked ∪ matching events, instead of pairing every row with every
    candidate. A row with a missing key matches nothing."""
    other = policy.events[event]
    keys = [q(k.value) for k in same]
    kcols = "".join(f", {k}" for k in keys)
    present = " AND ".join(f"{k} IS NOT NULL" for k in keys) or "TRUE"
    cond = condition_sql(policy, other, flt, alias=None) if flt is not None else "TRUE"
    union = (f"SELECT seq, ts{kcols}, TRUE AS is_t, FALSE AS is_e FROM picked WHERE {present} "
             f"UNION ALL SELECT seq, ts{kcols}, FALSE, TRUE FROM {view_name(other.name)} "
             f"WHERE ({cond}) AND {present}")
    part = f"PARTITION BY {', '.join(keys)} " if keys else ""
    # A picked row that is itself a candidate sorts after its own copy (is_t last), so
    # the following frame never sees it.
    nxt = (f"min(ts) FILTER (WHERE is_e) OVER ({part}ORDER BY ts, seq, is_t "
           f"ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS nxt")
    return f"SELECT * FROM (SELECT seq, is_t, {nxt} FROM ({union}) u) x WHERE is_t"


def _same_day_parts(policy: Policy, on: str, event: str, flt, same, alias: str) -> tuple[str, str, str]:
    """(grouped, join condition, itself) of a `same day` window over rows (`alias`) that carry
    every column of their event's view: the matching events counted per keys and local date
    (`grouped`, columns keys…, _day, n; joined to a row by its keys and date with the
    condition, DAY standing for the grouped relation's alias), and whether the row is
    itself one of them (`itself`, 0 or 1: the filter asked of the row itself). A row with a
    missing key joins no count (n is NULL: it matches nothing)."""
    other = policy.events[event]
    keys = [q(k.value) for k in same]
    present = " AND ".join(f"{k} IS NOT NULL" for k in keys) or "TRUE"
    cond = condition_sql(policy, other, flt, alias=None) if flt is not None else "TRUE"
    grouped = (f"SELECT {''.join(k + ', ' for k in keys)}CAST(ts_local AS DATE) AS _day, count(*) AS n "
               f"FROM {view_name(other.name)} WHERE ({cond}) AND {present} "
               f"GROUP BY {''.join(k + ', ' for k in keys)}CAST(ts_local AS DATE)")
    on_keys = "".join(f"{DAY}.{k} = {alias}.{k} AND " for k in keys)
    itself = "0"  # a row can only be a candidate when it is the same event type
    if on == event:
        own = condition_sql(policy, other, flt, alias=alias) if flt is not None else "TRUE"
        itself = f"(CASE WHEN {own} THEN 1 ELSE 0 END)"
    return grouped, f"{on_keys}{DAY}._day = CAST({alias}.ts_local AS DATE)", itself


def _same_day_sql(policy: Policy, on: str, event: str, flt, same) -> str:
    """For every picked row of a sequence (the columns its readers read): how many matching
    events share its keys and local date (`day_n`), and whether the row itself is one of
    them (`self_n`, 0 or 1, so that `day_n - self_n` counts the others). A grouped count
    joined back on the keys and the date (no sort); a row with a missing key matches
    nothing. Rows with every column of their view join the counts directly instead
    (_same_day_parts)."""
    other = policy.events[event]
    keys = [q(k.value) for k in same]
    present = " AND ".join(f"{k} IS NOT NULL" for k in keys) or "TRUE"
    p_present = " AND ".join(f"p.{k} IS NOT NULL" for k in keys) or "TRUE"
    cond = condition_sql(policy, other, flt, alias=None) if flt is not None else "TRUE"
    candidates = f"SELECT seq{''.join(', ' + k for k in keys)}, CAST(ts_local AS DATE) AS _day " \
                 f"FROM {view_name(other.name)} WHERE ({cond}) AND {present}"
    grouped = (f"SELECT {''.join(k + ', ' for k in keys)}_day, count(*) AS n FROM ({candidates}) c "
               f"GROUP BY {''.join(k + ', ' for k in keys)}_day")
    on_keys = "".join(f"g.{k} = p.{k} AND " for k in keys)
    itself = "CASE WHEN s.seq IS NULL THEN 0 ELSE 1 END" if on == event else "0"
    sql = (f"SELECT p.seq, COALESCE(g.n, 0) AS day_n, {itself} AS self_n "
           f"FROM picked p LEFT JOIN ({grouped}) g ON {on_keys}g._day = CAST(p.ts_local AS DATE) ")
    if on == event:
        sql += f"LEFT JOIN ({candidates}) s ON s.seq = p.seq "
    return sql + f"WHERE {p_present}"


def evaluate(con, policy: Policy, params: dict, agents, entries,
             shared: dict | None = None, given: dict | None = None) -> dict[str, dict[str, Decimal | None]]:
    """Every metric's value for every agent: {metric: {agent: value or None}}.

    `given` ({metric: {agent: value}}, from the `given` lines of an example): those values
    replace what was computed, before the ratios are divided, so a ratio not given is
    computed from the given values of its parts and a ratio given is taken as it is."""
    given = given or {}

    def store(name: str, per_agent: dict) -> None:
        values[name] = {**per_agent, **given.get(name, {})}

    values: dict[str, dict[str, Decimal | None]] = {}
    agents = sorted(agents)
    passes: dict[str, str] = {}  # next-event pass query -> temp table with its result
    tables: list[str] = []  # every temp table made here, dropped at the end

    def table_of(name: str, sql: str) -> str:
        tables.append(name)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {q(name)} AS {sql}",
                    {k: v for k, v in params.items() if f"${k}" in sql})
        return name

    def remember(sql: str) -> str:
        if sql not in passes:
            passes[sql] = table_of(f"_metric_pass_{len(passes)}", sql)
        return passes[sql]

    groups: dict[tuple, list[ast.Metric]] = {}
    for m in policy.metrics:
        if m.name.value in policy.metric_types and m.kind not in ("ratio", "fines"):
            groups.setdefault(group_key(policy, m), []).append(m)
    try:
        for number, group in enumerate(groups.values()):
            picked = picked_ctes(policy, group, shared)
            relation = (shared or {}).get(sequence_key(policy, group[0])) if group[0].on.per else None
            own_sequence = bool(group[0].on.per) and relation is None
            if own_sequence and any(m.windows or m.wait for m in group):
                # the picked rows are read again by each pass: sort their sequence once
                table = table_of(f"_metric_picked_{number}", f"WITH {', '.join(picked)} SELECT * FROM picked")
                picked = [f"picked AS (SELECT * FROM {q(table)})"]
            sql, widths = metrics_sql(policy, group, picked, remember, relation)
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            rows = {r[0]: r[1:] for r in con.execute(sql, used).fetchall()}
            column = 0
            for m, width in zip(group, widths):
                duration = policy.metric_types[m.name.value] == "duration"
                store(m.name.value, {a: _convert(m, rows[a][column:column + width] if a in rows else None,
                                                 duration) for a in agents})
                column += width
    finally:
        for table in tables:
            con.execute(f"DROP TABLE IF EXISTS {q(table)}")
    fines: dict[str, int] = {}
    for e in entries:
        if e.kind == FINE and e.status == APPLIED:
            fines[e.agent] = fines.get(e.agent, 0) + 1
    for m in policy.metrics:
        if m.kind == "fines":
            store(m.name.value, {a: Decimal(fines.get(a, 0)) for a in agents})
    # ratios may depend on ratios: resolve in rounds (the checker refused cycles)
    ratios = [m for m in policy.metrics if m.kind == "ratio" and m.name.value in policy.metric_types]
    while ratios:
        ready = [m for m in ratios if all(n.value in values for n in m.ratio)]
        if not ready:
            break
        for m in ready:
            num, den = values[m.ratio[0].value], values[m.ratio[1].value]
            store(m.name.value, {a: _divide(num.get(a), den.get(a)) for a in agents})
            ratios.remove(m)
    return values


def _divide(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _convert(m: ast.Metric, row, duration: bool) -> Decimal | None:
    if row is None:
        return Decimal(0) if m.kind in _ZERO_WHEN_EMPTY else None
    if m.kind == "avg":
        total, n = row
        value = None if not n else Decimal(total) / n
    else:
        value = row[0]
        if value is None:
            value = Decimal(0) if m.kind in _ZERO_WHEN_EMPTY else None
    if value is None:
        return None
    value = Decimal(value) if not isinstance(value, Decimal) else value
    return value / MICROS if duration else value


def display(value: Decimal | None, type_: str):
    """How a metric is shown: a ratio as a percentage cell (0.4250 → 42.50%), a whole
    count as an integer, anything else (seconds, 元) with 2 decimals, half-up."""
    if value is None:
        return None
    if type_ == "percent":
        return Percent(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
    if type_ == "number" and value == value.to_integral_value():
        return int(value)
    return round_line(value)


UNITS = {"percent": "%", "duration": "秒", "money": "元", "number": ""}
