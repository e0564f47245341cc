"""Run a month: load the policy and the events, evaluate every rule, return entries.

All per-event work happens in DuckDB; Python only loops over the entries the
rules produce (a few per cent of the events).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Sequence
from zoneinfo import ZoneInfo

import attrs
import duckdb

from ledger.core.entries import NO_AGENT, PENDING, TO_CONFIRM, Entry, sort_key
from ledger.core.errors import LedgerError
from ledger.core.month import Month, format_ts
from ledger.evaluate import caps, metrics, monthly
from ledger.evaluate.compile import compile_rule, event_view_sql, q, shared_sequences
from ledger.evaluate.evidence import entries_of
from ledger.inputs import events as events_mod
from ledger.inputs.contract import LoadResult
from ledger.lang.load import PolicySource, checked_policy
from ledger.lang.policy import Policy

# DuckDB's own buffers: a share of the memory this process may use, within bounds (see
# `memory_limit_for`; BENCHMARKS.md for the peak of a whole run). LEDGER_MEMORY_LIMIT overrides.
MEMORY_SHARE = 0.4
MEMORY_LIMIT_BOUNDS = (1 << 30, 16 << 30)  # 1 GB .. 16 GB
FALLBACK_MEMORY_LIMIT = "3GB"  # when the machine's memory cannot be read
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


@attrs.frozen
class MonthResult:
    policy: Policy
    month: Month
    sources: tuple[PolicySource, ...]
    load: LoadResult
    entries: tuple[Entry, ...]
    agents: frozenset[str]  # accounts with any event in the month
    data_end: datetime | None  # local wall time of the last event read
    events_in_month: int
    warnings: tuple[str, ...]
    timings: tuple[tuple[str, float], ...] = ()  # phase name, seconds
    event_types: tuple[tuple[str, int, bool], ...] = ()  # type, events in month, read by a rule
    metrics: dict = attrs.Factory(dict)  # metric -> {agent: Decimal | None} (metrics.py)
    roster: object = None  # roster.Roster, or None when there is none
    limits: dict = attrs.Factory(dict)  # employee -> caps.Limit


# ---------------------------------------------------------------- month

def run_month(policy_paths: Sequence[Path], events_root: Path, month: str, *,
              progress=None, roster=None, adjust=None) -> MonthResult:
    """Evaluate the policy files over the events for one month (`roster`: a roster.Roster)."""
    month_ = Month.parse(month)
    policy, sources = checked_policy(policy_paths)
    return run_policy(policy, sources, events_root, month_, progress=progress, roster=roster, adjust=adjust)


def run_policy(policy: Policy, sources: tuple[PolicySource, ...], events_root: Path, month: Month, *,
               progress=None, roster=None, adjust=None, given=None) -> MonthResult:
    """Evaluate a checked policy over the events for one month.

    `adjust(month, entries, accounts) -> entries` (period.lifecycle: confirmations, waivers, disputes,
    manual lines) runs after the monthly rules and before caps and floors, so a confirmed
    judgement call is capped like any other line and a waived line uses no room under the cap.
    `given` ({metric: {agent: value}}, examples of monthly rules only): metric values that replace
    the computed ones (metrics.evaluate); the agents named take part as if they had events."""
    say = progress or (lambda _msg: None)
    tz = ZoneInfo(policy.timezone)
    with database() as con:
        say("读取事件 (reading events)")
        started = time.perf_counter()
        load = load_month(con, policy, events_root, progress=progress)
        read_s = time.perf_counter() - started
        say("应用规则 (evaluating rules)")
        started = time.perf_counter()
        result = _evaluate(con, policy, sources, load, month, tz, say, roster, adjust, given)
        return attrs.evolve(result, timings=(("read", read_s), ("evaluate", time.perf_counter() - started)))


@contextlib.contextmanager
def database() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB database for one run: in memory, spilling to a temporary folder that is
    removed after.

    In memory rather than in a database file: writing the events to a file compressed
    them again at every checkpoint (2M events: read 5.0 s on disk, 4.0 s in memory; see
    BENCHMARKS.md). Past `memory_limit` DuckDB evicts the tables' blocks and spills sorts,
    windows and joins to the folder instead of growing. LEDGER_MEMORY_LIMIT overrides
    the default (e.g. "8GB").
    """
    limit = os.environ.get("LEDGER_MEMORY_LIMIT", "").strip() or memory_limit_for(usable_memory())
    folder = tempfile.mkdtemp(prefix="ledger-")
    try:
        try:
            # No automatic checkpoint: in memory it only reorganises the tables again after
            # every 16 MB appended (a small file read after a big one paid 0.45 s for it).
            con = duckdb.connect(":memory:", config={"memory_limit": limit, "temp_directory": folder,
                                                     "checkpoint_threshold": "1000GB"})
        except duckdb.Error as exc:
            raise LedgerError(f"无法打开临时数据库 (cannot open the run's database; LEDGER_MEMORY_LIMIT={limit!r}): "
                              f"{exc}", exit_code=2) from None
        try:
            con.execute("SET enable_progress_bar = false")  # ledger reports its own progress
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def usable_memory() -> int | None:
    """Bytes of memory this process may use: the machine's, or its container's (cgroup) limit
    when lower; None when neither can be read (not a POSIX system)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    for path in _CGROUP_LIMITS:
        with contextlib.suppress(OSError, ValueError):
            text = path.read_text().strip()
            if text.isdigit():
                total = min(total, int(text))
    return total if total > 0 else None


def memory_limit_for(total: int | None) -> str:
    """The run's DuckDB memory limit for `total` bytes of usable memory: MEMORY_SHARE of it
    within MEMORY_LIMIT_BOUNDS, in whole MiB. A share rather than a fixed 3GB: a 10M-event
    month spilled its sorts at 3GB (47.7 s) and did not at 10GB (39.0 s, 6.1 GB peak), while a
    small machine keeps room for the rest of the process."""
    if not total:
        return FALLBACK_MEMORY_LIMIT
    low, high = MEMORY_LIMIT_BOUNDS
    return f"{min(max(int(total * MEMORY_SHARE), low), high) >> 20}MiB"


def load_month(con: duckdb.DuckDBPyConnection, policy: Policy, events_root: Path, *,
               progress=None) -> LoadResult:
    """Load the events into `con` and create one typed view per declared event type
    (`ev_<type>`, see compile.event_view_sql)."""
    tz = ZoneInfo(policy.timezone)
    load = events_mod.load_events(Path(events_root), con, tz=tz, schema=policy.schema(), progress=progress)
    columns = {r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE events)").fetchall()}
    for event in policy.events.values():
        con.execute(event_view_sql(event, columns))
    return load


# An event dated later than this after the month's end (or later than a day from now) is
# implausible (a typo year: 2204): it never moves the data end, which decides what is pending.
DATA_END_HORIZON = timedelta(days=92)


def data_end(con, end_utc: datetime, warnings: list[str] | None = None) -> tuple[datetime | None, datetime | None]:
    """(UTC, local) time of the last plausible event: not later than the month's end plus
    DATA_END_HORIZON, nor than a day from now. Later events are named in `warnings`."""
    limit = min(end_utc + DATA_END_HORIZON, datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=1))
    utc, local = con.execute("SELECT max(ts), max(ts_local) FROM events WHERE ts <= ?", [limit]).fetchone()
    late = con.execute("SELECT count(*), max(ts_local), arg_max(src_file || ':' || src_line, ts) FROM events "
                       "WHERE ts > ?", [limit]).fetchone()
    if late[0] and warnings is not None:
        warnings.append(f"{late[0]} 个事件的时间晚于 {format_ts(limit)} (UTC)，不用于判断待定 "
                        f"(events dated implausibly late do not decide what is pending): "
                        f"最晚 {format_ts(late[1])}，{late[2]}")
    return utc, local


def _evaluate(con, policy, sources, load, month, tz, say, roster=None, adjust=None, given=None) -> MonthResult:
    start, end = month.bounds_utc(tz)
    warnings: list[str] = list(load.warnings)  # the reader's first (e.g. versions superseded)
    data_end_utc, data_end_local = data_end(con, end, warnings)
    agents = {a for (a,) in con.execute(
        "SELECT DISTINCT agent FROM events WHERE ts >= ? AND ts < ? AND agent IS NOT NULL",
        [start, end]).fetchall()}
    type_counts = tuple(con.execute(
        "SELECT type, count(*) FROM events WHERE ts >= ? AND ts < ? GROUP BY type ORDER BY type",
        [start, end]).fetchall())
    in_month = sum(n for _, n in type_counts)

    entries: list[Entry] = []
    params = {"start": start, "end": end, "data_end": data_end_utc or start}
    # Rules, then metrics that select events: readers of sequences shared between them.
    readers = list(policy.rules) + [m for m in policy.metrics if m.on is not None]
    sequences = shared_sequences(policy, readers)
    shared = {}  # sequence_key -> compile.SequenceRelation its readers read
    tables = {}  # shared tables now open

    def open_sequences(index: int) -> None:
        for sequence in sequences:
            if sequence.rules[0] == index:
                con.execute(sequence.sql)  # sorted once for all the readers
                tables[sequence.key] = sequence.table
                shared.update(sequence.relations)

    values = {}
    try:
        for index, rule in enumerate(policy.rules):
            say(f"规则 {index + 1}/{len(policy.rules)} {rule.id.value}")
            open_sequences(index)
            compiled = compile_rule(policy, rule, shared)
            used = {k: v for k, v in params.items() if f"${k}" in compiled.sql}
            result = con.execute(compiled.sql, used)
            names = [d[0] for d in result.description]
            rows = result.fetchall()
            entries.extend(entries_of(compiled, names, rows, data_end_local, warnings))
            for sequence in sequences:  # free each table after the last reader
                if sequence.rules[-1] == index:
                    con.execute(f"DROP TABLE {q(sequence.table)}")
                    del tables[sequence.key]
                    for key, _ in sequence.relations:
                        del shared[key]
        entries = monthly.escalate(policy, entries)
        agents.update(e.agent for e in entries)
        agents.update(agent for per_agent in (given or {}).values() for agent in per_agent)
        if policy.metrics:
            say("计算指标 (metrics)")
            for index in range(len(policy.rules), len(readers)):
                open_sequences(index)
            values = metrics.evaluate(con, policy, params, agents, entries, shared, given)
    finally:
        for table in tables.values():
            con.execute(f"DROP TABLE IF EXISTS {q(table)}")
    pending_fines: dict[str, int] = {}
    for e in entries:
        if e.kind == "fine" and e.status in (PENDING, TO_CONFIRM):  # may still become fines
            pending_fines[e.agent] = pending_fines.get(e.agent, 0) + 1
    entries.extend(monthly.evaluate(policy, month, values, agents - {NO_AGENT}, pending_fines))
    by_account = roster.by_account() if roster is not None else {}
    if roster is not None:
        unknown = sorted(a for a in agents if a not in by_account and a != NO_AGENT)
        if unknown:
            warnings.append(f"{len(unknown)} 个客服账号不在花名册 (accounts not in roster): {caps.first_few(unknown)}")
        first_day, last_day = month.start_local.date(), (month.end_local - timedelta(days=1)).date()
        outside = sorted(a for a in agents if a in by_account and not by_account[a].active(first_day, last_day))
        if outside:
            warnings.append(f"{len(outside)} 个账号本月有事件，但花名册上的员工本月不在职（入职/离职日期）"
                            f"(events outside employment dates): {caps.first_few(outside)}")
    if adjust is not None:  # manual lines may name an account with events or on the roster
        entries = adjust(month, entries, set(agents) | set(by_account))
        agents.update(e.agent for e in entries)
    unprotected = caps.unprotected_pay(policy, roster)
    if unprotected:
        warnings.append(unprotected)
    entries, limits = caps.apply(policy, entries, by_account, warnings)
    entries = [attrs.evolve(e, evidence=f"{e.evidence}；记平台扣分 {e.points}分 (platform points, not money)")
               if e.points else e for e in entries]
    entries.sort(key=sort_key)
    used = {r.on.event.value for r in policy.rules} | {w.event.value for r in policy.rules for w in r.unless}
    used |= {m.on.event.value for m in policy.metrics if m.on is not None}
    used |= {w.event.value for m in policy.metrics for _, w in m.windows}
    used |= {m.wait.event.value for m in policy.metrics if m.wait is not None}
    return MonthResult(policy, month, sources, load, tuple(entries), frozenset(agents),
                       data_end_local, in_month, tuple(warnings),
                       event_types=tuple((t, n, t in used) for t, n in type_counts),
                       metrics=values, roster=roster, limits=limits)
