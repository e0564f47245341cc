"""Metrics: one value per agent per month, compiled to set-based SQL.

A metric selects events exactly as a rule does (compile.sequence_ctes: the `on`
filter, `per` sequences, `when`), keeps those that pass its `with` / `unless` windows,
optionally measures a `wait` to the first matching later event, and aggregates per
agent with GROUP BY. "Is there one" windows (`within D`, `after`, `same day`, at least 1)
and `wait` use one pass of window functions over the picked rows and the candidates
(`_next_sql`); other windows count matches with compile.window_count_sql. Ratios and `count fines` are computed
from other metrics / the entries in Python (a handful of values per agent).

Values are Decimal: counts, sums in 元, durations in seconds, ratios as fractions
(0.425 = 42.5%). A metric that has no value is None — an average of nothing, or a
ratio whose denominator is 0 (docs/decisions.md): never an error and never 0. Counts
and sums over nothing are 0.
"""

from __future__ import annotations

import types
from decimal import Decimal

from . import ast
from .check import Policy
from .compile import _Context, _interval, condition_sql, q, sequence_ctes, view_name, window_count_sql
from .entries import APPLIED, FINE

MICROS = Decimal(1_000_000)
_ZERO_WHEN_EMPTY = ("count", "distinct", "sum", "fines")


def metric_sql(policy: Policy, metric: ast.Metric, shared: dict | None = None, remember=None) -> str:
    """SELECT agent, <aggregate columns> FROM … GROUP BY agent. Parameters: $start, $end.
    `shared`: sequences already in tables (compile.shared_sequences). `remember(sql)`,
    given a query of the next-event pass, returns a table holding its result: metrics
    that pick the same rows and wait for the same events (平均响应时长, 三分钟回复轮次,
    回复轮次) then make that pass once."""
    event = policy.events[metric.on.event.value]
    shim = types.SimpleNamespace(on=metric.on, when=metric.when)
    ctes, source = sequence_ctes(policy, shim, shared)
    when = condition_sql(policy, event, metric.when, alias="s", sequence=bool(metric.on.per)) \
        if metric.when is not None else "TRUE"
    ctes.append(f"picked AS (SELECT * FROM {source} s WHERE s.ts >= $start AND s.ts < $end "
                f"AND s.agent IS NOT NULL AND ({when}))")
    joins, keep, extra = [], [], []
    for i, (kind, window) in enumerate(metric.windows):
        if window.count == 1 and window.kind in ("within", "after", "same_day"):
            # "is there one": the next matching event per key (a window function), no pair join
            ctes.append(f"n{i} AS ({_pass(ctes, _next_sql(policy, window.event.value, window.filter, window.same, window.kind == 'same_day'), remember)})")
            joins.append(f"LEFT JOIN n{i} ON n{i}.seq = t.seq")
            if window.kind == "within":
                found = f"COALESCE(n{i}.nxt <= t.ts + {_interval(window.d2)}, FALSE)"
            elif window.kind == "after":
                found = f"(n{i}.nxt IS NOT NULL)"
            else:
                found = f"COALESCE(n{i}.day_n - n{i}.self_n > 0, FALSE)"
            keep.append(found if kind == "with" else f"NOT {found}")
            continue
        ctes.append(f"w{i} AS ({window_count_sql(policy, window, 'picked')})")
        joins.append(f"LEFT JOIN w{i} ON w{i}.tseq = t.seq")
        found = f"COALESCE(w{i}.found, 0)"
        keep.append(f"{found} >= {window.count}" if kind == "with" else f"{found} < {window.count}")
    if metric.wait is not None:
        w = metric.wait
        ctes.append(f"waited AS ({_pass(ctes, _next_sql(policy, w.event.value, w.filter, w.same, False), remember)})")
        joins.append("LEFT JOIN waited ON waited.seq = t.seq")
        wait = "datediff('microsecond', t.ts, waited.nxt)"
        if metric.wait.cap is not None:
            cap = int(metric.wait.cap.total_seconds() * 1_000_000)
            wait = f"LEAST(COALESCE({wait}, {cap}), {cap})"
        extra.append(f"{wait} AS _wait")
    where = f"WHERE {' AND '.join(keep)}" if keep else ""
    ctes.append(f"kept AS (SELECT t.*{''.join(', ' + e for e in extra)} FROM picked t {' '.join(joins)} {where})")
    ctx = _Context(policy, event, alias="k", sequence=bool(metric.on.per))
    values = [_value(ctx, v) for v in metric.values]
    if metric.kind == "count":
        agg = ["count(*)"]
    elif metric.kind == "distinct":
        tuple_ = values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"
        present = " AND ".join(f"{v} IS NOT NULL" for v in values)
        agg = [f"count(DISTINCT {tuple_}) FILTER (WHERE {present})"]
    elif metric.kind == "avg":
        agg = [f"sum({values[0]})", f"count({values[0]})"]
    elif metric.kind == "percentile":
        agg = [f"quantile_disc({values[0]}, {float(metric.percentile / 100)!r})"]
    else:
        agg = [f"{metric.kind}({values[0]})"]
    cols = ", ".join(f"{a} AS v{i}" for i, a in enumerate(agg))
    return f"WITH {', '.join(ctes)} SELECT k.agent, {cols} FROM kept k GROUP BY k.agent ORDER BY k.agent"


def _value(ctx: _Context, expr) -> str:
    if isinstance(expr, ast.Ref) and expr.scope is None and expr.name.value == "wait" \
            and "wait" not in ctx.event.fields:
        return "k._wait"
    value = ctx.value(expr)
    if isinstance(expr, ast.Ref) and expr.name.value == "gap":  # a duration: microseconds
        return f"epoch_us({value})"
    return value


def _pass(ctes: list[str], body: str, remember) -> str:
    """The next-event pass `body` over the CTEs so far, or a table that holds it."""
    if remember is None:
        return body
    picked = [c for c in ctes if c.startswith(("members AS", "sequenced AS", "picked AS"))]  # what it reads
    return f"SELECT * FROM {q(remember(f'WITH {chr(44).join(picked)} {body}'))}"


def _next_sql(policy: Policy, event: str, flt, same, day: bool) -> str:
    """For every picked row: the time of the next matching event with the same keys
    (`nxt`: later ts, or the same ts and later input order) and, with `day`, how many
    matching events share its keys and local date (`day_n`, itself included as
    `self_n`). One pass of window functions over picked ∪ matching events, instead of
    pairing every row with every candidate. A row with a missing key matches nothing."""
    other = policy.events[event]
    keys = [q(k.value) for k in same]
    kcols = "".join(f", {k}" for k in keys)
    present = " AND ".join(f"{k} IS NOT NULL" for k in keys) or "TRUE"
    cond = condition_sql(policy, other, flt, alias=None) if flt is not None else "TRUE"
    union = (f"SELECT seq, ts, ts_local{kcols}, TRUE AS is_t, FALSE AS is_e FROM picked WHERE {present} "
             f"UNION ALL SELECT seq, ts, ts_local{kcols}, FALSE, TRUE FROM {view_name(other.name)} "
             f"WHERE ({cond}) AND {present}")
    part = f"PARTITION BY {', '.join(keys)} " if keys else ""
    # A picked row that is itself a candidate sorts after its own copy (is_t last), so
    # the following frame never sees it.
    cols = [f"min(ts) FILTER (WHERE is_e) OVER ({part}ORDER BY ts, seq, is_t "
            f"ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS nxt"]
    if day:
        cols.append(f"count(*) FILTER (WHERE is_e) OVER (PARTITION BY {''.join(k + ', ' for k in keys)}"
                    f"CAST(ts_local AS DATE)) AS day_n")
        cols.append("count(*) FILTER (WHERE is_e) OVER (PARTITION BY seq) AS self_n")
    return f"SELECT * FROM (SELECT seq, is_t, {', '.join(cols)} FROM ({union}) u) x WHERE is_t"


def evaluate(con, policy: Policy, params: dict, agents, entries,
             shared: dict | None = None) -> dict[str, dict[str, Decimal | None]]:
    """Every metric's value for every agent: {metric: {agent: value or None}}."""
    values: dict[str, dict[str, Decimal | None]] = {}
    agents = sorted(agents)
    passes: dict[str, str] = {}  # next-event pass query -> temp table with its result

    def remember(sql: str) -> str:
        if sql not in passes:
            passes[sql] = f"_metric_pass_{len(passes)}"
            con.execute(f"CREATE OR REPLACE TEMP TABLE {q(passes[sql])} AS {sql}",
                        {k: v for k, v in params.items() if f"${k}" in sql})
        return passes[sql]

    try:
        for m in policy.metrics:
            name = m.name.value
            if name not in policy.metric_types or name in values:
                continue
            if m.kind in ("ratio", "fines"):
                continue
            sql = metric_sql(policy, m, shared, remember)
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            rows = {r[0]: r[1:] for r in con.execute(sql, used).fetchall()}
            duration = policy.metric_types[name] == "duration"
            values[name] = {a: _convert(m, rows.get(a), duration) for a in agents}
    finally:
        for table in passes.values():
            con.execute(f"DROP TABLE IF EXISTS {q(table)}")
    fines: dict[str, int] = {}
    for e in entries:
        if e.kind == FINE and e.status == APPLIED:
            fines[e.agent] = fines.get(e.agent, 0) + 1
    for m in policy.metrics:
        if m.kind == "fines":
            values[m.name.value] = {a: Decimal(fines.get(a, 0)) for a in agents}
    # ratios may depend on ratios: resolve in rounds (the checker refused cycles)
    ratios = [m for m in policy.metrics if m.kind == "ratio" and m.name.value in policy.metric_types]
    while ratios:
        ready = [m for m in ratios if all(n.value in values for n in m.ratio)]
        if not ready:
            break
        for m in ready:
            num, den = values[m.ratio[0].value], values[m.ratio[1].value]
            values[m.name.value] = {a: _divide(num.get(a), den.get(a)) for a in agents}
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
    from decimal import ROUND_HALF_UP

    from .money import round_line
    from .xlsx import Percent

    if value is None:
        return None
    if type_ == "percent":
        return Percent(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
    if type_ == "number" and value == value.to_integral_value():
        return int(value)
    return round_line(value)


UNITS = {"percent": "%", "duration": "秒", "money": "元", "number": ""}
