"""The workspace the desk serves: its folders, the months found in them, and each month's
prepared period, cached until one of the files it was computed from changes.

A `Workspace` is made once per `ledger serve` from the options `ledger run` takes (paths as
given, relative to the workspace root, the current directory). `period(month)` returns
`period.lifecycle.prepare(...)` for the month — the same call `ledger run` makes, with the
same roster — computed once per *fingerprint* (size and modification time of every policy,
event, adjustments and roster file, and of the `CLOSED` records under the output folder)
and kept for the last few months. `store` replaces it after a decision recomputed the month.

`inside(text)` turns a path typed in a form into a path inside the workspace root, or
raises `Outside`: `..`, absolute paths and symlinks leading out are refused alike (the path
is resolved first, then compared with the resolved root).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import attrs

from ledger.core.errors import LedgerError
from ledger.evaluate import engine
from ledger.inputs import roster as roster_mod
from ledger.lang.load import checked_policy
from ledger.outputs import report
from ledger.period import close, lifecycle
from ledger.review import explain, queue

MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
KEEP_PERIODS = 3  # months kept prepared (memory stays bounded)
KEEP_EXPLANATIONS = 64


class Outside(LedgerError):
    """A path typed in a form that leads outside the workspace (or does not exist)."""

    exit_code = 2


@attrs.frozen
class Config:
    root: Path  # the workspace root, resolved (the current directory of `ledger serve`)
    policy: tuple[Path, ...]
    events: Path
    out: Path
    adjustments: Path
    roster: Path | None  # --roster as given; None: roster.csv found as `ledger run` finds it


@attrs.frozen
class MonthInfo:
    month: str
    events: int  # events in the month (0: only a statement in reports/)
    closed: bool
    has_statement: bool


class _Cache:
    """A small LRU of values keyed by (key, fingerprint); computing happens outside its lock."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key, fp):
        with self.lock:
            hit = self.items.get(key)
            if hit is not None and hit[0] == fp:
                self.items.move_to_end(key)
                return hit[1]
        return None

    def put(self, key, fp, value) -> None:
        with self.lock:
            self.items[key] = (fp, value)
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class Workspace:
    def __init__(self, config: Config):
        self.config = config
        self._periods = _Cache(KEEP_PERIODS)
        self._queues = _Cache(KEEP_PERIODS)
        self._explanations = _Cache(KEEP_EXPLANATIONS)
        self._months = _Cache(1)
        self._locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()

    # ------------------------------------------------------------ locks, files

    def month_lock(self, month: str) -> threading.RLock:
        """One writer (and one computation) per month inside this process; re-entrant, so a
        decision holding it can read the month. `actions` adds a file lock across processes."""
        with self._locks_lock:
            return self._locks.setdefault(month, threading.RLock())

    def roster_path(self) -> Path | None:
        c = self.config
        return roster_mod.find(Path("."), c.roster, c.events)

    def roster(self):
        found = self.roster_path()
        return roster_mod.read(found) if found is not None else None

    def adjustments_file(self, month: str) -> Path:
        return self.config.adjustments / f"{month}.txt"

    def folder(self, month: str) -> Path:
        return report.output_paths(self.config.out, month)["folder"]

    def statement_path(self, month: str) -> Path:
        return report.output_paths(self.config.out, month)["statement"]

    def record(self, month: str) -> close.Record | None:
        return close.read_record(self.folder(month))

    def is_closed(self, month: str) -> bool:
        return self.record(month) is not None

    def fingerprint(self) -> tuple:
        """What every month's money is computed from: stat of every input file."""
        c = self.config
        parts = [_stat_tree(p) for p in c.policy]
        parts += [_stat_tree(c.events), _stat_tree(c.adjustments)]
        roster = self.roster_path()
        parts.append(_stat_tree(roster) if roster is not None else ())
        out = Path(c.out)
        parts.append(tuple(_stat(p) for p in sorted(out.glob(f"*/{close.CLOSED}"))) if out.is_dir() else ())
        return tuple(parts)

    # ------------------------------------------------------------ computing

    def period(self, month: str) -> lifecycle.Period:
        """The month as `ledger run` computes it (adjustments and corrections included)."""
        fp = self.fingerprint()
        with self.month_lock(month):
            return self._period_locked(month, fp)

    def _period_locked(self, month: str, fp: tuple) -> lifecycle.Period:
        hit = self._periods.get(month, fp)
        if hit is None:
            hit = self.prepare(month)
            self._periods.put(month, fp, hit)
        return hit

    def prepare(self, month: str) -> lifecycle.Period:
        c = self.config
        return lifecycle.prepare(list(c.policy), c.events, month, out_dir=c.out, adjustments_root=c.adjustments,
                                 roster=self.roster())

    def store(self, month: str, period: lifecycle.Period) -> None:
        """Keep the period a decision just computed (under the month's lock)."""
        self._periods.put(month, self.fingerprint(), period)

    def queue(self, month: str) -> list[queue.Waiting]:
        return self._cached(self._queues, month, lambda p: queue.waiting_in(p, self.config.events))

    def explanation(self, month: str, entry_id: str):
        c = self.config
        return self._cached(self._explanations, (month, entry_id), lambda p: explain.explain_entry(
            entry_id, month=month, policy_paths=list(c.policy), events_root=c.events, roster=self.roster(),
            adjustments_root=c.adjustments, out_dir=c.out, period=p), month=month)

    def _cached(self, cache: _Cache, key, compute: Callable, month: str | None = None):
        month = month or key
        fp = self.fingerprint()
        hit = cache.get(key, fp)
        if hit is None:
            hit = compute(self.period(month))
            cache.put(key, fp, hit)
        return hit

    def months(self) -> list[MonthInfo]:
        """Months with events, or with a statement in the output folder, newest first."""
        c = self.config
        fp = (tuple(_stat_tree(p) for p in c.policy), _stat_tree(c.events))
        counts = self._months.get("months", fp)
        if counts is None:
            counts = _event_months(list(c.policy), c.events)
            self._months.put("months", fp, counts)
        found = set(counts)
        out = Path(c.out)
        if out.is_dir():
            found |= {p.name for p in out.iterdir() if MONTH.fullmatch(p.name) and p.is_dir()}
        return [MonthInfo(m, counts.get(m, 0), self.is_closed(m), self.statement_path(m).is_file())
                for m in sorted(found, reverse=True)]

    # ------------------------------------------------------------ paths from forms

    def inside(self, text: str) -> Path:
        """A path typed in a form, relative to the workspace root, as a path inside it."""
        text = (text or "").strip()
        if not text or "\x00" in text:
            raise Outside("请填写工作区里的路径，例如 policy-next/ (give a path inside the workspace)")
        root = self.config.root
        candidate = Path(text)
        if candidate.is_absolute() or candidate.drive:
            raise Outside(f"只能使用工作区里的相对路径 (relative paths only): {text}")
        try:
            resolved = (root / candidate).resolve(strict=True)
        except (OSError, RuntimeError):
            raise Outside(f"找不到 (not found): {text}") from None
        if resolved != root and root not in resolved.parents:
            raise Outside(f"路径在工作区之外，不能使用 (outside the workspace): {text}")
        return resolved.relative_to(root)


def _stat(p: Path) -> tuple:
    try:
        st = p.stat()
    except OSError:
        return (p.as_posix(), None)
    return (p.as_posix(), st.st_mtime_ns, st.st_size)


def _stat_tree(path: Path | None) -> tuple:
    if path is None:
        return ()
    path = Path(path)
    if path.is_dir():
        return tuple(_stat(p) for p in sorted(path.rglob("*")) if p.is_file())
    return (_stat(path),)


def _event_months(policy_paths: list[Path], events_root: Path) -> dict[str, int]:
    """Events per local month (the policy's time zone), as the engine loads them."""
    if not Path(events_root).is_dir():
        return {}
    policy, _sources = checked_policy(policy_paths)
    with engine.database() as con:
        engine.load_month(con, policy, Path(events_root))
        rows = con.execute("SELECT strftime(ts_local, '%Y-%m') AS m, count(*) FROM events "
                           "WHERE ts_local IS NOT NULL GROUP BY m").fetchall()
    return {m: n for m, n in rows if m}
