"""Run a month: load the policy and the events, evaluate every rule, return entries.

All per-event work happens in DuckDB; Python only loops over the entries the
rules produce (a few per cent of the events).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from typing import Iterator, Sequence
from zoneinfo import ZoneInfo

from decimal import Decimal

import attrs
import duckdb

from ledger.inputs import events as events_mod
from ledger.lang.check import Policy, check
from ledger.evaluate.compile import CompiledRule, compile_rule, event_view_sql, q, shared_sequences
from ledger.core.entries import PENDING, Entry, sort_key
from ledger.core.errors import Diagnostic, LedgerError, PolicyError
from ledger.core.money import round_line
from ledger.lang.syntax import parse

NO_AGENT = "（未指定客服）"
DEFAULT_MEMORY_LIMIT = "3GB"  # DuckDB's own buffers; see BENCHMARKS.md for the peak of a whole run
_MONTH = re.compile(r"(\d{4})-(\d{2})")


@attrs.frozen
class Month:
    text: str  # "2024-05"
    start_local: datetime
    end_local: datetime

    @classmethod
    def parse(cls, text: str) -> "Month":
        m = _MONTH.fullmatch(text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1970:
            raise LedgerError(f"月份格式应为 YYYY-MM，例如 2024-05 (bad month): {text!r}", exit_code=2)
        y, mo = int(m.group(1)), int(m.group(2))
        start = datetime(y, mo, 1)
        end = datetime(y + (mo == 12), mo % 12 + 1, 1)
        return cls(f"{y:04d}-{mo:02d}", start, end)

    def bounds_utc(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return _to_utc(self.start_local, tz), _to_utc(self.end_local, tz)


def _to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(dt_timezone.utc).replace(tzinfo=None)


@attrs.frozen
class PolicySource:
    path: str
    sha256: str


@attrs.frozen
class MonthResult:
    policy: Policy
    month: Month
    sources: tuple[PolicySource, ...]
    load: events_mod.LoadResult
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


# ---------------------------------------------------------------- policy

def policy_files(paths: Sequence[Path]) -> list[Path]:
    """Expand folders into their `*.rules` files (sorted, any depth)."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(p.rglob("*.rules"), key=lambda f: f.as_posix()))
        elif p.is_file():
            files.append(p)
        else:
            raise LedgerError(f"找不到规则文件或目录 (policy path not found): {p}", exit_code=2)
    if not files:
        raise LedgerError(f"没有找到规则文件 *.rules (no policy files in): {', '.join(map(str, paths))}", exit_code=2)
    return files


def load_policy(paths: Sequence[Path]) -> tuple[Policy, list[Diagnostic], tuple[PolicySource, ...]]:
    """Parse and check every policy file. Returns all diagnostics (errors and warnings)."""
    named = []
    for f in policy_files(paths):
        try:
            named.append((f.as_posix(), f.read_bytes()))
        except OSError as exc:
            raise LedgerError(f"无法读取规则文件 (cannot read policy file) {f}: {exc}", exit_code=2) from None
    return policy_from_bytes(named)


def policy_from_bytes(named: Sequence[tuple[str, bytes]]) -> tuple[Policy, list[Diagnostic], tuple[PolicySource, ...]]:
    """Parse and check policy files given as (display name, content) — e.g. from `git show`."""
    parsed, diagnostics, sources = [], [], []
    for name, data in named:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LedgerError(f"规则文件不是 UTF-8 (policy file is not UTF-8) {name}: {exc}", exit_code=2) from None
        sources.append(PolicySource(name, hashlib.sha256(data).hexdigest()))
        pf, diags = parse(text, name)
        parsed.append(pf)
        diagnostics.extend(diags)
    policy, more = check(parsed)
    diagnostics.extend(more)
    return policy, diagnostics, tuple(sources)


def checked_policy(paths: Sequence[Path]) -> tuple[Policy, tuple[PolicySource, ...]]:
    policy, diagnostics, sources = load_policy(paths)
    if any(d.severity == "error" for d in diagnostics):
        raise PolicyError("policy has errors", diagnostics=diagnostics)
    return policy, sources


# ---------------------------------------------------------------- month

def run_month(policy_paths: Sequence[Path], events_root: Path, month: str, *,
              progress=None, roster=None) -> MonthResult:
    """Evaluate the policy files over the events for one month (`roster`: a roster.Roster)."""
    month_ = Month.parse(month)
    policy, sources = checked_policy(policy_paths)
    return run_policy(policy, sources, events_root, month_, progress=progress, roster=roster)


def run_policy(policy: Policy, sources: tuple[PolicySource, ...], events_root: Path, month: Month, *,
               progress=None, roster=None) -> MonthResult:
    """Evaluate a checked policy over the events for one month."""
    say = progress or (lambda _msg: None)
    tz = ZoneInfo(policy.timezone)
    with database() as con:
        say("读取事件 (reading events)")
        started = time.perf_counter()
        load = load_month(con, policy, events_root, progress=progress)
        read_s = time.perf_counter() - started
        say("应用规则 (evaluating rules)")
        started = time.perf_counter()
        result = _evaluate(con, policy, sources, load, month, tz, say, roster)
        return attrs.evolve(result, timings=(("read", read_s), ("evaluate", time.perf_counter() - started)))


@contextlib.contextmanager
def database() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB database for one run, in a temporary folder that is removed after.

    On disk rather than in memory because DuckDB compresses stored tables (the events
    of a big month take a tenth of their in-memory size) and can evict them; past
    `memory_limit` sorts, windows and joins spill to the same folder instead of
    growing. LEDGER_MEMORY_LIMIT overrides the default (e.g. "8GB").
    """
    limit = os.environ.get("LEDGER_MEMORY_LIMIT", "").strip() or DEFAULT_MEMORY_LIMIT
    folder = tempfile.mkdtemp(prefix="ledger-")
    try:
        try:
            con = duckdb.connect(os.path.join(folder, "month.duckdb"),
                                 config={"memory_limit": limit, "temp_directory": folder})
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


def load_month(con: duckdb.DuckDBPyConnection, policy: Policy, events_root: Path, *,
               progress=None) -> events_mod.LoadResult:
    """Load the events into `con` and create one typed view per declared event type
    (`ev_<type>`, see compile.event_view_sql)."""
    tz = ZoneInfo(policy.timezone)
    load = events_mod.load_events(Path(events_root), con, tz=tz, schema=policy.schema(), progress=progress)
    columns = {r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE events)").fetchall()}
    for event in policy.events.values():
        con.execute(event_view_sql(event, columns))
    return load


def _evaluate(con, policy, sources, load, month, tz, say, roster=None) -> MonthResult:
    from ledger.evaluate import caps
    from ledger.evaluate import metrics
    from ledger.evaluate import monthly

    start, end = month.bounds_utc(tz)
    data_end_utc, data_end_local = con.execute("SELECT max(ts), max(ts_local) FROM events").fetchone()
    agents = {a for (a,) in con.execute(
        "SELECT DISTINCT agent FROM events WHERE ts >= ? AND ts < ? AND agent IS NOT NULL",
        [start, end]).fetchall()}
    type_counts = tuple(con.execute(
        "SELECT type, count(*) FROM events WHERE ts >= ? AND ts < ? GROUP BY type ORDER BY type",
        [start, end]).fetchall())
    in_month = sum(n for _, n in type_counts)

    entries: list[Entry] = []
    warnings: list[str] = []
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
            entries.extend(entries_from_rows(compiled, names, rows, data_end_local, warnings))
            for sequence in sequences:  # free each table after the last reader
                if sequence.rules[-1] == index:
                    con.execute(f"DROP TABLE {q(sequence.table)}")
                    del tables[sequence.key]
                    for key, _ in sequence.relations:
                        del shared[key]
        entries = monthly.escalate(policy, entries)
        agents.update(e.agent for e in entries)
        if policy.metrics:
            say("计算指标 (metrics)")
            for index in range(len(policy.rules), len(readers)):
                open_sequences(index)
            values = metrics.evaluate(con, policy, params, agents, entries, shared)
    finally:
        for table in tables.values():
            con.execute(f"DROP TABLE IF EXISTS {q(table)}")
    pending_fines: dict[str, int] = {}
    for e in entries:
        if e.kind == "fine" and e.status == PENDING:
            pending_fines[e.agent] = pending_fines.get(e.agent, 0) + 1
    entries.extend(monthly.evaluate(policy, month, values, agents - {NO_AGENT}, pending_fines))
    by_account = roster.by_account() if roster is not None else {}
    if roster is not None:
        unknown = sorted(a for a in agents if a not in by_account and a != NO_AGENT)
        if unknown:
            warnings.append(f"{len(unknown)} 个客服账号不在花名册 (accounts not in roster): {', '.join(unknown)}")
        first_day, last_day = month.start_local.date(), (month.end_local - timedelta(days=1)).date()
        outside = sorted(a for a in agents if a in by_account and not by_account[a].active(first_day, last_day))
        if outside:
            warnings.append(f"{len(outside)} 个账号本月有事件，但花名册上的员工本月不在职（入职/离职日期）"
                            f"(events outside employment dates): {', '.join(outside)}")
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


def entry_id(rule_id: str, event_id: str, recipient: str) -> str:
    digest = hashlib.sha256(f"{rule_id}\x1f{event_id}\x1f{recipient}".encode()).hexdigest()
    return "E" + digest[:12].upper()


def entries_from_rows(compiled: CompiledRule, names, rows, data_end_local, warnings) -> list[Entry]:
    rule = compiled.rule
    loc = f"{rule.pos.filename}:{rule.pos.line}"
    idx = {n: i for i, n in enumerate(names)}
    # column positions, looked up once (a big month has hundreds of thousands of rows)
    i_id, i_seq, i_ts, i_status = idx["id"], idx["seq"], idx["ts_local"], idx["_status"]
    i_conv, i_order, i_buyer, i_excerpt = idx["conversation"], idx["order"], idx["buyer"], idx["_excerpt"]
    to = [(idx[f"_to_{i}"], field == "agent") for i, field in enumerate(compiled.recipients)]
    evidence_of = _evidence_writer(compiled, idx, data_end_local)
    rule_id, title, kind = rule.id.value, rule.title or rule.id.value, rule.amount.kind
    fixed = round_line(rule.amount.value) if rule.amount.value is not None else None
    points_applied = rule.amount.points_for(1)
    out = []
    unassigned = 0
    for row in rows:
        seen: set[str] = set()
        # A missing `agent` is charged to a visible placeholder, never dropped; other
        # recipient fields (`successor`) are charged only when named.
        recipients = [row[i] or (NO_AGENT if is_agent else None) for i, is_agent in to]
        if not any(recipients):
            recipients = [NO_AGENT]
        unassigned += NO_AGENT in recipients
        status = row[i_status]
        amount = None if status == PENDING else fixed
        if rule.amount.percent is not None and status != PENDING:
            base = row[idx["_base"]]
            if base is None:
                warnings.append(f"规则 {rule_id}: 事件 {row[i_id]} 没有 {rule.amount.of.value}，不计 (missing base amount)")
                continue
            amount = round_line(Decimal(base) * rule.amount.percent / 100)
        points = points_applied if status != PENDING else None
        evidence = evidence_of(row, status)
        for who in recipients:
            if not who or who in seen:
                continue
            seen.add(who)
            out.append(Entry(
                id=entry_id(rule_id, row[i_id], who),
                rule_id=rule_id, rule_title=title, rule_location=loc,
                kind=kind, agent=who, ts=row[i_ts], amount=amount,
                status=status, event_id=row[i_id], event_seq=row[i_seq],
                conversation=row[i_conv], order=row[i_order],
                buyer=row[i_buyer], excerpt=row[i_excerpt], evidence=evidence,
                points=points,
            ))
    if unassigned:
        warnings.append(f"规则 {rule_id}: {unassigned} 个事件没有客服 (no agent)，记在 {NO_AGENT} 名下")
    return out


def format_ts(ts: datetime) -> str:
    """2024-05-03 12:34:56: a wall time (isoformat is several times faster than strftime)."""
    if ts.tzinfo is not None:
        return ts.strftime("%Y-%m-%d %H:%M:%S")
    return ts.isoformat(" ", "seconds")


def _evidence_writer(compiled: CompiledRule, idx, data_end_local):
    """evidence(row, status): the condition that held, the sequence facts it read, and
    what each window searched and found, in words a supervisor can check against the
    events. What does not depend on the row is worked out once per rule."""
    rule = compiled.rule
    i_ts = idx["ts_local"]
    head = f"[{rule.on.source}{' ' + rule.when_source if rule.when_source else ''}] 成立"
    keys = ", ".join(k.value for k in rule.on.per)
    position = (idx["_position"], idx["_count"]) if "_position" in idx else None
    neighbours = [(f"{scope}.{field}", idx[f"_{scope}_{field}"]) for scope, field in compiled.neighbours]
    windows = [(w, idx[f"_found_{i}"]) for i, w in enumerate(rule.unless)]
    ending = (f"数据截止 {format_ts(data_end_local)}，期限未到，结果待定 (pending)"
              if data_end_local is not None else None)

    def evidence(row, status) -> str:
        ts = row[i_ts]
        parts = [head]
        if position is not None:
            facts = [f"同一 {keys} 序列中的第 {row[position[0]]}/{row[position[1]]} 条"]
            for name, i in neighbours:
                value = row[i]
                facts.append(f"{name} = {'（无）' if value is None else repr(str(value))}")
            parts.append("，".join(facts))
        for w, i in windows:
            found = row[i]
            if w.kind == "within":
                span = f"{format_ts(ts)} 至 {format_ts(ts + w.d2)}"
            elif w.kind == "range":
                span = f"{format_ts(ts + w.d1)} 至 {format_ts(ts + w.d2)}"
            elif w.kind == "before":
                span = f"{format_ts(ts)} 之前"
            else:
                span = f"{format_ts(ts - w.d2)} 至 {format_ts(ts)}"
            result = f"找到 {found} 条，需要 {w.count} 条" if w.count > 1 or found else "未找到"
            parts.append(f"[{w.source}] 查找范围 {span}：{result}")
        if status == PENDING and ending is not None:
            parts.append(ending)
        return "；".join(parts)

    return evidence
