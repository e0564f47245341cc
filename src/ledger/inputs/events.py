"""Event files → the DuckDB table `events` (the input contract: docs/events.md).

Every `*.csv` and `*.jsonl` file (suffix in any case) under the events folder, at any
depth, hidden ones excepted, is read in code-point order of its path. Each row is
checked and normalised, and the good rows are bulk-loaded into DuckDB. A row that
cannot be read is rejected with its file, line and a reason, never lost.

Choices the contract leaves open (for docs/decisions.md):
- CSV encodings: a BOM decides (UTF-8, UTF-16 LE/BE); without one, NUL bytes on
  alternate positions mean UTF-16; otherwise UTF-8 if the file decodes, or if most
  of its non-ASCII lines do (the bad ones are rejected as undecodable); else GB18030.
  JSONL is UTF-8 (a BOM is tolerated). Undecodable bytes reject their row only.
- A CSV whose header has a TAB but no comma is read as TAB-separated (Excel's
  "Unicode text" export). Quotes are strict: text after a closing quote rejects the
  record, and a quote left open to the end of the file rejects that record (with the
  lines it took in) instead of accepting them as one long field.
  A CSV field is at most 131072 characters (the csv module's limit).
- A record of only whitespace and delimiters (an empty line, Excel's trailing ",,,,")
  is blank: skipped, not counted. An empty cell or JSON null is a missing value.
- A NUL character anywhere in a row rejects the row (no tool downstream keeps it).
- A header with duplicate or unusable names skips the file: one reject at the header
  line, then every row is rejected (and counted) with a pointer to it.
- Column names that differ only in ASCII case ("note"/"Note", "Type"/"type") cannot
  both be DuckDB columns: the later header (CSV: the whole file) or row (JSONL) is
  rejected. Names `seq`, `ts_local`, `src_file`, `src_line` are reserved.
- Declared money/number values are stored as plain decimals without trailing zeros
  ("12.50" → "12.5", "1e3" → "1000") so that derived ids do not depend on formatting.
- Fractional seconds beyond microseconds are truncated.

Two readers, one meaning. The reference is the row-by-row Python reader (`PythonReader`): every
row decoded, checked and normalised in Python, then bulk-loaded. UTF-8 CSV files of
256 KB or more (the bulk of a big month) are read set-based instead (`_FastLoad`): DuckDB
reads the file as numbered physical lines and the SQL splits, checks and normalises every
line it can vouch for (no quote, the header's column count, `ts` in a common form inside
a tabled time zone window, declared values in plain forms); every other line goes through
a UDF that runs the Python reader's own code on it, and a file DuckDB cannot read exactly
the way Python does (invalid UTF-8, a lone CR, mixed line ends in multi-line records, ...)
is read in Python after all. Duplicate ids are folded in SQL over all files at the end.
Both give the same table, rejects and file reports; tests/test_events.py checks it on
random folders. LEDGER_EVENTS_READER=python forces the Python reader for every file,
=fast the set-based one for every UTF-8 CSV file whatever its size.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import hashlib
import io
import itertools
import os
import re
import tempfile
import zoneinfo
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import attrs
import duckdb

from ledger.core.atomic import write_bytes
from ledger.core.errors import LedgerError
from ledger.inputs import exports
from ledger.inputs import profiles as profiles_mod
from ledger.inputs.contract import (EVENT_SUFFIXES, FileReport, LoadResult, Reject, Schema, check_row,
                                    check_schema, parse_ts, steady_offset)
from ledger.inputs.encodings import printable, utf16_without_bom
from ledger.inputs.python_reader import PythonReader
from ledger.inputs.records import file_records
from ledger.inputs.rows import Columns, Record, check_header, clean_name, csv_row, is_blank, physical_records
from ledger.inputs.table import create_empty, create_table, insert_written, quote_name, sql_string


# ---------------------------------------------------------------------------
# Discovery


def _discover(root: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    found, ignored = [], []
    seen_dirs = {os.path.realpath(root)}
    # Follow linked folders (a linked month of exports is still input) but never twice.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and _first_visit(Path(dirpath, d), seen_dirs)]
        for name in filenames:
            path = Path(dirpath, name)
            if name.startswith(".") or not path.is_file():
                continue
            rel = _display(path.relative_to(root).as_posix())
            if path.suffix.lower() in EVENT_SUFFIXES:
                found.append((rel, path))
            elif path.suffix.lower() != profiles_mod.SUFFIX:  # export profiles are read, not ignored
                ignored.append(rel)
    found.sort(key=lambda item: item[0])
    return _expand_containers(found, ignored)


def _expand_containers(found: list, ignored: list) -> tuple[list, list]:
    """Workbooks become one input per sheet, zip archives one per member (exports.py); a
    container that cannot be opened stays one input, rejected when it is read."""
    if not any(path.suffix.lower() in exports.CONTAINER_SUFFIXES for _, path in found):
        return found, sorted(ignored)
    out = []
    for rel, path in found:
        if path.suffix.lower() not in exports.CONTAINER_SUFFIXES:
            out.append((rel, path))
            continue
        inputs, more_ignored, problems = exports.expand(rel, path)
        out += [(rel, path)] if problems else inputs
        ignored = ignored + more_ignored
    return out, sorted(ignored)


def _first_visit(folder: Path, seen: set[str]) -> bool:
    real = os.path.realpath(folder)
    if real in seen:
        return False
    seen.add(real)
    return True


def _display(name: str) -> str:
    # File names that are not valid UTF-8 (e.g. GBK names from a zip) still print.
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Loading


def load_events(root: Path, con: duckdb.DuckDBPyConnection, *, tz: zoneinfo.ZoneInfo,
                schema: Schema, progress=None) -> LoadResult:
    """Read every event file under `root` into table `events` of `con`.

    UTF-8 CSV files are read set-based in DuckDB where that gives exactly what the
    row-by-row Python reader gives (see `_FastLoad`); everything else, and every row the
    SQL cannot vouch for, goes through Python. LEDGER_EVENTS_READER=python forces the
    Python reader for every file, =fast uses the set-based one for every UTF-8 CSV file
    whatever its size (tests). `progress(message)` hears of each file as it is read.
    """
    root = Path(root)
    if not root.is_dir():
        raise LedgerError(f"找不到事件目录 (events folder not found): {root}", exit_code=2)
    check_schema(schema)
    files, ignored = _discover(root)
    profiles = tuple(profiles_mod.load([root, Path("profiles")]))
    mode = reader_mode()
    last_readers.clear()
    say = _file_progress(progress, files)
    if mode != "python":
        fast = _FastLoad(con, tz, schema, force=mode == "fast", progress=say)
        fast.loader.profiles = profiles
        result = fast.run(files, ignored)
        exports.cut_sessions(con)
        return _with_first_rows(result, files, profiles)
    last_readers.update((rel, "python") for rel, _ in files)
    fd, tmp = tempfile.mkstemp(prefix="ledger-events-", suffix=".csv")
    try:
        with open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20) as out:
            loader = PythonReader(tz, schema, out)
            loader.profiles = profiles
            reports = []
            for rel, path in files:
                say(rel, path)
                reports.append(loader.load_file(rel, path))
        create_table(con, loader.columns, tmp if loader.n_events else None)
    finally:
        os.unlink(tmp)
    exports.cut_sessions(con)
    return _with_first_rows(LoadResult(
        files=tuple(reports),
        ignored=tuple(ignored),
        rejects=tuple(loader.rejects),
        columns=tuple(loader.columns.extras),
        n_events=loader.n_events,
        duplicates_folded=sum(r.duplicates for r in reports),
    ), files, profiles)


_CONFLICT = re.compile(r"\(duplicate id with different content\), first seen at (.+):(\d+)$")


def _with_first_rows(result: LoadResult, files, profiles) -> LoadResult:
    """A duplicate id with other content is reported with both rows: the first row's text
    is added to the later row's reason (the same whichever reader read the files)."""
    wanted: dict[str, set[int]] = {}
    for r in result.rejects:
        m = _CONFLICT.search(r.reason)
        if m:
            wanted.setdefault(m.group(1), set()).add(int(m.group(2)))
    if not wanted:
        return result
    paths = dict(files)
    raws: dict[tuple[str, int], str] = {}
    for rel, lines in wanted.items():
        if rel not in paths:
            continue
        try:
            data = paths[rel].read_bytes()
        except OSError:
            continue
        _, records = file_records(rel, paths[rel], data, Columns(), profiles)
        for record in records:
            if record.is_row and record.line in lines:
                raws.setdefault((rel, record.line), printable(record.raw))
    rejects = []
    for r in result.rejects:
        m = _CONFLICT.search(r.reason)
        first = raws.get((m.group(1), int(m.group(2)))) if m else None
        rejects.append(r if first is None else attrs.evolve(r, reason=f"{r.reason}；第一行 (first row): {first}"))
    return attrs.evolve(result, rejects=tuple(rejects))


def _file_progress(progress, files):
    """say(rel, path): 'messages.csv (2/6, 1.3 GB)' to `progress`, if any."""
    number = {rel: i for i, (rel, _) in enumerate(files, 1)}

    def say(rel: str, path: Path) -> None:
        if progress is None:
            return
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        unit, scale = next(((u, b) for u, b in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)) if size >= b),
                           ("B", 1))
        progress(f"读取 {rel} ({number.get(rel, '?')}/{len(files)}, {size / scale:.1f} {unit})")

    return say


# ---------------------------------------------------------------------------
# The set-based reader: UTF-8 CSV files read and checked by DuckDB SQL

READER_ENV = "LEDGER_EVENTS_READER"
_FAST_MIN_BYTES = 1 << 18  # smaller files are read faster in Python than the SQL is set up
_HEAD_BYTES = 1 << 16  # the header and the first rows, read in Python to plan the SQL
_SCAN_CHUNK = 1 << 22
_RAW_DELIM = "\x01"  # the raw-line scan's column delimiter: a file containing it goes to Python
_FIELD_LIMIT = 131072  # csv.field_size_limit(): longer lines are left to the csv module
_ZONE_MARGIN = timedelta(days=120)  # time zone offsets are tabled this far around a file's first rows
_MAX_SPAN_LINES = 1_000_000  # more lines in multi-line records than this: the file is read in Python
_SPAN_LOOKAHEAD = 4096  # a multi-line record longer than this: the file is read in Python
_PART_MIN_BYTES = 32 << 20  # files this big are read by one INSERT per core (at most _MAX_PARTS)
_MAX_PARTS = 4
_CORES = os.cpu_count() or 1
_udf_numbers = itertools.count()

#: How the last `load_events` read each file: rel path -> "sql" or "python" (tests, benchmarks).
last_readers: dict[str, str] = {}


def reader_mode() -> str:
    """'python', 'fast' or 'auto', from LEDGER_EVENTS_READER ('python' too when this DuckDB
    cannot declare the UDF's types)."""
    mode = os.environ.get(READER_ENV, "").strip().lower()
    if mode == "python" or _udf_types() is None:
        return "python"
    return mode if mode == "fast" else "auto"


@functools.lru_cache(maxsize=1)
def _udf_types():
    """(BIGINT, VARCHAR, VARCHAR[]) as DuckDB Python types, or None when this DuckDB
    cannot run the reader's Python UDF (its types are missing, or numpy is)."""
    try:
        types = duckdb.sqltype("BIGINT"), duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR[]")
    except (AttributeError, duckdb.Error):  # before DuckDB 1.4: duckdb.typing
        try:
            from duckdb.typing import BIGINT, VARCHAR
            types = BIGINT, VARCHAR, duckdb.list_type(VARCHAR)
        except (ImportError, AttributeError, duckdb.Error):
            return None
    con = duckdb.connect()
    try:  # one call, so a missing piece shows here and not as a fallback for every file
        con.create_function("ledger_probe", lambda n, s: [s], list(types[:2]), types[2],
                            null_handling="special", side_effects=True)
        con.execute("SELECT ledger_probe(1, 'x')").fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return types


class _Scan(NamedTuple):
    """What one pass over a file's bytes tells: checked against what DuckDB read."""

    sha256: str
    lines: int  # physical lines, as Python's universal newlines count them
    bare_cr: bool  # a CR not followed by LF: a line break to Python, not to the raw-line scan
    raw_delim: bool
    newline: str | None  # "\n" or "\r\n" when every line ends so, None when they are mixed
    final_newline: bool  # the last line has a line end


def _scan_file(path: Path) -> _Scan:
    digest = hashlib.sha256()
    lf = cr = crlf = 0
    delim = False
    last = b""
    with open(path, "rb") as fh:
        while block := fh.read(_SCAN_CHUNK):
            digest.update(block)
            lf += block.count(b"\n")
            n_cr = block.count(b"\r")
            if n_cr or last == b"\r":
                cr += n_cr
                crlf += block.count(b"\r\n") + (last == b"\r" and block[:1] == b"\n")
            delim = delim or _RAW_DELIM.encode() in block
            last = block[-1:]
    newline = "\n" if not crlf else "\r\n" if crlf == lf else None
    return _Scan(digest.hexdigest(), lf + (last not in (b"", b"\n")), cr != crlf, delim, newline, last == b"\n")


@attrs.define
class _CsvPlan:
    """A UTF-8 CSV file whose header (a single line) is good: read set-based."""

    rel: str
    path: Path
    encoding: str
    delimiter: str
    names: list[str]  # cleaned header names, "" for a column without one
    header_line: int
    window: tuple[datetime, datetime]  # wall times whose zone offsets are tabled
    size: int
    line_bytes: float  # average line length at the start of the file
    scan: object = None  # Future[_Scan]


@attrs.define
class _Done:
    """A file read (either way): its rows are in `events` from seq `base` on."""

    rel: str
    path: Path
    reader: str  # "sql" or "python"
    report: FileReport
    rejects: list[Reject]
    tmp: str | None = None  # Python reader: the rows written, not yet in `events`
    n_written: int = 0
    spans: dict | None = None  # SQL reader: the multi-line records (see `_multi_line_records`)


class _FastLoad:
    """Load events set-based where possible, with exactly the Python reader's results.

    Phase 1 goes through the files in order: a UTF-8 CSV file with a good one-line
    header is planned for SQL (its header is checked and registered here, as the
    Python reader would); every other file is read in Python, rows written to a
    temporary CSV without folding duplicates. The column set is then final, so phase 2
    creates `events` and appends each file's rows in order, seq counting on. Phase 3
    folds duplicate ids over all files in SQL (first occurrence wins, as in Python).

    The SQL for a file reads it as raw lines numbered by DuckDB (`WITH ORDINALITY`),
    splits lines without quotes at the delimiter (what the csv module does with them)
    and checks and normalises the common forms in SQL. A row the SQL cannot vouch for
    (quotes, a NUL, unusual time or amount forms, anything to reject, blank lines) is
    handed to a Python UDF that runs the Python reader's own code on it. If a line opens
    a quoted field that continues on the next line, or DuckDB's lines do not add up to
    the file's, the file's rows are taken out again and the file is read in Python.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, tz: zoneinfo.ZoneInfo, schema: Schema, *, force: bool,
                 progress=lambda rel, path: None):
        self.progress = progress
        self.con = con
        self.tz = tz
        self.schema = schema
        self.force = force
        self.columns = Columns()
        self.loader = PythonReader(tz, schema, None, columns=self.columns, dedup=False)
        self.temps: list[str] = []
        self.n_rows = 0  # rows appended to `events` so far (the next seq)

    def run(self, files: list[tuple[str, Path]], ignored: list[str]) -> LoadResult:
        pool = ThreadPoolExecutor(max_workers=1)  # hashes and counts files while DuckDB reads them
        try:
            plans = [self._plan(rel, path, pool) for rel, path in files]
            create_empty(self.con, self.columns)
            done = [self._append(plan) for plan in plans]
            self._fold_duplicates(done)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for tmp in self.temps:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        order = {d.rel: i for i, d in enumerate(done)}
        rejects = sorted((r for d in done for r in d.rejects), key=lambda r: (order[r.file], r.line))
        for d in done:
            last_readers[d.rel] = d.reader
        reports = tuple(d.report for d in done)
        return LoadResult(
            files=reports,
            ignored=tuple(ignored),
            rejects=tuple(rejects),
            columns=tuple(self.columns.extras),
            n_events=self.n_rows,
            duplicates_folded=sum(r.duplicates for r in reports),
        )

    # -- phase 1 ------------------------------------------------------------

    def _plan(self, rel: str, path: Path, pool: ThreadPoolExecutor):
        plan = self._csv_plan(rel, path)
        if plan is None:
            return self._python(rel, path)
        plan.scan = pool.submit(_scan_file, path)
        return plan

    def _csv_plan(self, rel: str, path: Path) -> _CsvPlan | None:
        if not isinstance(path, Path) or path.suffix.lower() != ".csv":
            return None  # zip members and workbook sheets (exports.py) are read in Python
        try:
            size = path.stat().st_size
            if size < (1 if self.force else _FAST_MIN_BYTES):
                return None
            with open(path, "rb") as fh:
                head = fh.read(_HEAD_BYTES)
        except OSError:
            return None  # the Python reader reports it
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return None
        bom = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        if not bom and utf16_without_bom(head[:4096]):
            return None
        body = head[bom:]
        if len(head) == _HEAD_BYTES:  # keep whole lines only
            body = body[:body.rfind(b"\n") + 1]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        stream = io.StringIO(text, newline="")
        first = stream.readline()
        stream.seek(0)
        delimiter = "\t" if "\t" in first and "," not in first else ","
        records = physical_records(stream, delimiter, None)
        header = next(records, None)
        if header is None:
            return None
        line, n_lines, _, fields, problem = header
        if problem or n_lines != 1:
            return None
        names = [clean_name(n) for n in fields]
        if "ts" not in names or "type" not in names:
            return None  # every row is rejected, or an export profile maps it: the Python reader does it
        if any(p.named(rel) for p in self.loader.profiles):
            return None  # named for an export profile
        if check_header(names, self.columns, rel):
            return None  # the Python reader rejects the header and every row
        window = self._window(records, names.index("ts"), len(names))
        line_bytes = max(1.0, len(body) / max(1, body.count(b"\n")))
        return _CsvPlan(rel, path, "utf-8-sig" if bom else "utf-8", delimiter, names, line, window, size, line_bytes)

    def _window(self, records, ts_index: int, width: int) -> tuple[datetime, datetime]:
        """Wall times around the file's first rows, whole months: the zone is tabled there."""
        seen = []
        for _, _, _, fields, problem in itertools.islice(records, 64):
            if not problem and len(fields) == width:
                with contextlib.suppress(ValueError):
                    seen.append(parse_ts(fields[ts_index], self.tz)[1])
        if not seen:
            seen = [datetime.now(self.tz).replace(tzinfo=None)]
        low = max(min(seen) - _ZONE_MARGIN, datetime(1900, 1, 1))
        high = min(max(seen) + _ZONE_MARGIN, datetime(2200, 1, 1))
        # Half years, so that the files of a month share one table (`_zone_spans` is cached).
        return datetime(low.year, 1 if low.month < 7 else 7, 1), datetime(high.year + (high.month >= 7),
                                                                           7 if high.month < 7 else 1, 1)

    def _python(self, rel: str, path: Path) -> _Done:
        """Read one file in Python into a temporary CSV (appended to `events` in phase 2)."""
        self.progress(rel, path)
        fd, tmp = tempfile.mkstemp(prefix="ledger-events-", suffix=".csv")
        self.temps.append(tmp)
        first_reject = len(self.loader.rejects)
        with open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20) as out:
            self.loader.set_output(out)
            report = self.loader.load_file(rel, path)
            written = self.loader.n_events
            self.loader.set_output(None)
        return _Done(rel, path, "python", report, self.loader.rejects[first_reject:], tmp, written)

    # -- phase 2 ------------------------------------------------------------

    def _append(self, plan) -> _Done:
        if isinstance(plan, _CsvPlan):
            done = self._append_sql(plan)
            if done is not None:
                return done
            plan = self._python(plan.rel, plan.path)
        if plan.n_written:
            insert_written(self.con, self.columns, plan.tmp, self.n_rows)
            self.n_rows += plan.n_written
        os.unlink(plan.tmp)
        self.temps.remove(plan.tmp)
        return plan

    def _append_sql(self, plan: _CsvPlan) -> _Done | None:
        self.progress(plan.rel, plan.path)
        spans = None
        parts = self._parts(plan)
        while True:
            rows = [_PythonRows(plan, self.tz, self.schema, spans) for _ in parts]
            counts = self._insert_sql(plan, parts, rows)
            try:
                scan = plan.scan.result()
            except OSError:
                scan = None
            good = scan is not None and not scan.bare_cr and not scan.raw_delim
            opened = any(r.opened for r in rows)
            if good and opened and spans is None:
                # A quoted field runs on to the next line: find such records, then read again
                # (other parts may have finished: their rows go too).
                self.con.execute(f"DELETE FROM events WHERE seq >= {self.n_rows}")
                spans = self._multi_line_records(plan, scan)
                if spans is not None:
                    continue
            break
        rejects = sorted((r for part in rows for r in part.rejects), key=lambda r: r.line)
        inserted = sum(counts) if counts is not None else None
        ok = (good and inserted is not None and not opened
              and scan.lines - plan.header_line == inserted + len(rejects) + sum(r.skipped for r in rows))
        if not ok:
            self.con.execute(f"DELETE FROM events WHERE seq >= {self.n_rows}")
            return None
        # Each part numbered its rows from its first line's position: close up the gaps.
        done = 0
        for (first, _), count in zip(parts, counts):
            provisional = self.n_rows + first - plan.header_line - 1
            if count and provisional != self.n_rows + done:
                self.con.execute(f"UPDATE events SET seq = seq - {provisional - self.n_rows - done} "
                                 f"WHERE seq >= {provisional} AND seq < {provisional + count}")
            done += count
        self.n_rows += inserted
        read = inserted + len(rejects)
        report = FileReport(plan.rel, plan.encoding, scan.sha256, read, inserted, len(rejects), 0)
        return _Done(plan.rel, plan.path, "sql", report, rejects, spans=spans)

    def _parts(self, plan: _CsvPlan) -> list[tuple[int, int | None]]:
        """Line ranges (first, last; None: to the end) read by concurrent INSERTs.

        Numbering lines keeps each INSERT on one thread, so a big file is cut in parts,
        one per core, at estimated line numbers (every part reads the file from its start
        up to its last line; the rows are exact whatever the cut)."""
        n = min(_CORES, _MAX_PARTS) if plan.size >= _PART_MIN_BYTES else 1
        estimate = plan.size / plan.line_bytes
        step = max(1, int((estimate - plan.header_line) / n))
        firsts = [plan.header_line + 1 + k * step for k in range(n)]
        return [(first, firsts[k + 1] - 1 if k + 1 < n else None) for k, first in enumerate(firsts)]

    def _insert_sql(self, plan: _CsvPlan, parts: list, rows: list["_PythonRows"]) -> list[int] | None:
        """Run the file's INSERTs, one per part, concurrently; the rows each appended, or
        None if DuckDB gave up on one (invalid UTF-8, an over-long line, a line the UDF
        refused: the caller decides)."""
        spans_table = None
        counts: list[int | None] = [None] * len(parts)
        cursors = [self.con] if len(parts) == 1 else [self.con.cursor() for _ in parts]

        def run(k: int) -> None:
            udf = f"ledger_event_row_{os.getpid()}_{next(_udf_numbers)}"
            cursor = cursors[k]
            try:
                bigint, varchar, varchars = _udf_types()
                cursor.create_function(udf, rows[k], [bigint, varchar], varchars,
                                       null_handling="special", side_effects=True)
                try:
                    first, last = parts[k]
                    seq = self.n_rows + first - plan.header_line - 1
                    sql = _FileSql(plan, self.columns, self.schema, self.tz, udf, seq, spans_table, first, last).sql()
                    counts[k] = cursor.execute(sql).fetchone()[0]
                finally:
                    cursor.remove_function(udf)
            except duckdb.Error:
                if rows[k].opened:  # the whole file is read again: stop the other parts
                    for other in cursors:
                        if other is not cursor:
                            with contextlib.suppress(duckdb.Error):
                                other.interrupt()

        try:
            if rows[0].spans:
                # Not TEMP: the other parts' connections must see it.
                spans_table = f"ledger_span_lines_{os.getpid()}_{next(_udf_numbers)}"
                self.con.execute(f"CREATE TABLE {spans_table} AS SELECT unnest(?::BIGINT[]) AS line",
                                 [sorted(rows[0].spans.keys() | rows[0].members)])
            if len(parts) == 1:
                run(0)
            else:
                with ThreadPoolExecutor(max_workers=len(parts)) as pool:
                    list(pool.map(run, range(len(parts))))
        finally:
            if spans_table:
                self.con.execute(f"DROP TABLE IF EXISTS {spans_table}")
            for cursor in cursors:
                if cursor is not self.con:
                    cursor.close()
        return None if None in counts else counts

    def _multi_line_records(self, plan: _CsvPlan, scan: _Scan) -> dict | None:
        """Records whose quoted fields run over line ends, read by the csv module:
        first line -> (n_lines, raw, fields, problem). None if the file is better read in Python.

        Such a record starts on a line with a quote that is not a one-line record (the
        SQL finds those), and ends on the first later line with a quote that closes the
        field (the csv module decides, on the lines that follow, up to _SPAN_LOOKAHEAD
        of them). Each record is then read whole and must take exactly those lines.
        """
        if scan.newline is None:
            return None  # mixed line ends: the raw-line scan cannot give a field's line breaks back
        source, d = _raw_lines_sql(plan.path), plan.delimiter
        record = _RECORD_RE.replace("{d}", d)
        odd = [n for (n,) in self.con.execute(
            f"SELECT ordinality FROM {source} WITH ORDINALITY WHERE ordinality > {int(plan.header_line)} "
            f"AND CASE WHEN contains(l, '\"') THEN NOT regexp_full_match(l, {sql_string(record)}) ELSE false END "
            f"ORDER BY ordinality").fetchall()]
        text: dict[int, str] = {}

        def fetch(ranges) -> None:
            wanted = sorted({n for a, b in ranges for n in range(a, min(b, scan.lines) + 1)} - text.keys())
            if wanted:
                text.update(self.con.execute(
                    f"SELECT ordinality, coalesce(l, '') FROM {source} WITH ORDINALITY "
                    f"WHERE ordinality IN (SELECT unnest(?::BIGINT[]))", [wanted]).fetchall())

        fetch((n, n + 64) for n in odd)  # most records take a few lines: one scan fetches them
        spans, after = [], 0
        for first in odd:
            if first <= after or _quote_state(text[first], d, False) != "open":
                continue  # inside an earlier record, or a one-line record the csv module rejects
            stop = first + 1
            while stop <= scan.lines:
                if stop not in text:
                    if stop > first + _SPAN_LOOKAHEAD:
                        return None  # a very long record (or a quote never closed): Python reads it
                    fetch([(stop, first + _SPAN_LOOKAHEAD)])  # one more scan, for a long record
                if '"' in text[stop] and _quote_state(text[stop], d, True) == "closed":
                    break
                stop += 1
            stop = min(stop, scan.lines)
            spans.append((first, stop))
            after = stop
        if sum(stop - first + 1 for first, stop in spans) > _MAX_SPAN_LINES:
            return None
        fetch(spans)
        records = {}
        for first, stop in spans:
            lines = [text[n] + (scan.newline if n < scan.lines or scan.final_newline else "")
                     for n in range(first, stop + 1)]
            found = list(physical_records(iter(lines), d, None))
            if len(found) != 1 or found[0][:2] != (1, stop - first + 1):
                return None  # e.g. a field over the csv module's size limit ended the record early
            _, n_lines, raw, fields, problem = found[0]
            if problem and "unexpected end of data" in problem and stop < scan.lines:
                return None  # the record would run on: never so if the lines above are right
            records[first] = (n_lines, raw, fields, problem)
        return records

    # -- phase 3 ------------------------------------------------------------

    def _fold_duplicates(self, done: list[_Done]) -> None:
        """Duplicate ids over all files: the first row (by seq) stays; a later row with the
        same content is folded, one with other content rejected; seq is closed up again."""
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE ledger_dup_ids AS "
                    "SELECT id FROM events GROUP BY id HAVING count(*) > 1")
        try:
            if not con.execute("SELECT count(*) FROM ledger_dup_ids").fetchone()[0]:
                return
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE ledger_dups AS
                WITH d AS (
                    SELECT seq, id, src_file, src_line,
                           substr(sha256({_stored_canonical(self.columns)}), 17, 16) AS mark
                    FROM events WHERE id IN (SELECT id FROM ledger_dup_ids)),
                w AS (
                    SELECT *, row_number() OVER w AS k, first_value(mark) OVER w AS first_mark,
                           first_value(src_file) OVER w AS first_file, first_value(src_line) OVER w AS first_line
                    FROM d WINDOW w AS (PARTITION BY id ORDER BY seq))
                SELECT seq, src_file, src_line, mark = first_mark AS folded, first_file, first_line
                FROM w WHERE k > 1""")
            by_file = {d.rel: d for d in done}
            counts = con.execute("SELECT src_file, count(*) FILTER (WHERE folded), count(*) FILTER (WHERE NOT folded) "
                                 "FROM ledger_dups GROUP BY src_file").fetchall()
            for rel, folded, conflicts in counts:
                r = by_file[rel].report
                by_file[rel].report = attrs.evolve(r, accepted=r.accepted - conflicts, rejected=r.rejected + conflicts,
                                                   duplicates=r.duplicates + folded)
            conflicts = con.execute("SELECT src_file, src_line, first_file, first_line FROM ledger_dups "
                                    "WHERE NOT folded ORDER BY seq").fetchall()
            wanted: dict[str, set[int]] = {}
            for rel, line, _, _ in conflicts:
                wanted.setdefault(rel, set()).add(line)
            raws = {rel: self._raw_lines(by_file[rel], lines) for rel, lines in wanted.items()}
            for rel, line, first_file, first_line in conflicts:
                reason = (f"重复 id 但内容不同 (duplicate id with different content), "
                          f"first seen at {first_file}:{first_line}")
                by_file[rel].rejects.append(Reject(rel, line, reason, printable(raws[rel].get(line, ""))))
            dropped = con.execute("SELECT count(*) FROM ledger_dups").fetchone()[0]
            con.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM ledger_dups)")
            # Close up seq: every row moves down by the number of dropped rows before it.
            con.execute("""
                UPDATE events SET seq = events.seq - s.shift FROM (
                    SELECT e.seq AS old, d.n AS shift FROM events e
                    ASOF JOIN (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM ledger_dups) d
                    ON e.seq > d.seq) s
                WHERE events.seq = s.old""")
            self.n_rows -= dropped
        finally:
            con.execute("DROP TABLE IF EXISTS ledger_dup_ids")
            con.execute("DROP TABLE IF EXISTS ledger_dups")

    def _raw_lines(self, done: _Done, lines: set[int]) -> dict[int, str]:
        """The raw text of some records of a file (for rejects found after loading)."""
        if done.reader == "sql":
            spans = done.spans or {}
            listed = ", ".join(str(int(n)) for n in sorted(lines))
            found = dict(self.con.execute(
                f"SELECT ordinality, coalesce(l, '') FROM {_raw_lines_sql(done.path)} WITH ORDINALITY "
                f"WHERE ordinality IN ({listed})").fetchall())
            return {n: spans[n][1] if n in spans else text for n, text in found.items()}
        data = done.path.read_bytes()
        scratch = Columns()  # only the raw text is wanted: the header was checked before
        _, records = file_records(done.rel, done.path, data, scratch, self.loader.profiles)
        return {r.line: r.raw for r in records if r.is_row and r.line in lines}


class _OpenQuote(Exception):
    """A line ends inside a quoted field: the INSERT is abandoned (see `_multi_line_records`)."""


class _PythonRows:
    """The UDF for rows the SQL leaves to Python: one physical line of a planned file,
    read exactly as the Python reader reads it. Returns [id, UTC, local, value per named
    column] for a good row; None for a blank or rejected row (kept in `rejects`) and for
    the later lines of a multi-line record (counted in `skipped`, as blank lines are)."""

    def __init__(self, plan: _CsvPlan, tz: zoneinfo.ZoneInfo, schema: Schema, spans: dict | None = None):
        self.rel = plan.rel
        self.delimiter = plan.delimiter
        self.names = plan.names
        self.named = [n for n in plan.names if n]
        self.unnamed = [i for i, n in enumerate(plan.names) if not n]
        self.tz = tz
        self.schema = schema
        self.spans = spans or {}  # first line of a multi-line record -> (n_lines, raw, fields, problem)
        self.members = {first + k for first, (n, *_) in self.spans.items() for k in range(1, n)}
        self.rejects: list[Reject] = []
        self.not_rows: list[int] = []  # list.append is atomic: DuckDB may call from two threads
        self.opened = False

    @property
    def skipped(self) -> int:
        return len(self.not_rows)

    def __call__(self, line: int, text: str | None) -> list[str | None] | None:
        if line in self.members:
            self.not_rows.append(line)
            return None
        span = self.spans.get(line)
        if span is not None:
            n_lines, raw, fields, problem = span
        else:
            n_lines, raw = 1, text or ""
            if is_blank(raw, self.delimiter):
                self.not_rows.append(line)
                return None
            problem = None
            try:
                fields = next(csv.reader((raw + "\n",), delimiter=self.delimiter, strict=True))
            except csv.Error as e:
                if str(e) == "unexpected end of data":
                    self.opened = True
                    raise _OpenQuote(line) from None
                fields, problem = [], f"CSV 格式错误 (malformed CSV): {e}"
            if "\x00" in raw:
                problem = "含有 NUL 字符 (NUL character)"
        record = (Record(line, raw, error=problem) if problem
                  else csv_row(self.names, self.unnamed, fields, line, n_lines, raw))
        if record.error:
            return self._reject(line, record.error, raw)
        values = record.values
        problem, checked = check_row(values, self.tz, self.schema)
        if problem:
            return self._reject(line, problem, raw)
        digest, utc, local = checked
        event_id = values.get("id") or "h" + digest[:8].hex()
        return [event_id, utc.isoformat(" "), local.isoformat(" ")] + [values.get(n) or None for n in self.named]

    def _reject(self, line: int, reason: str, raw: str) -> None:
        self.rejects.append(Reject(self.rel, line, reason, printable(raw)))
        return None


def _quote_state(text: str, delimiter: str, inside: bool) -> str:
    """'open' if the csv module, starting this line inside a quoted field (or not), ends
    it still inside one; else 'closed' (the record ends on this line, well-formed or not)."""
    feed = ('"\n', text + "\n") if inside else (text + "\n",)
    try:
        next(csv.reader(feed, delimiter=delimiter, strict=True))
    except csv.Error as e:
        return "open" if str(e) == "unexpected end of data" else "closed"
    return "closed"


def _raw_lines_sql(path: Path) -> str:
    """A file as its physical lines (without line ends), one VARCHAR column `l`; empty
    lines are NULL. Quotes, escapes and comments mean nothing here."""
    return (f"read_csv({sql_string(str(path))}, header=false, auto_detect=false, delim='\\x01', quote='', "
            f"escape='', comment='', new_line='\\r\\n', strict_mode=false, max_line_size=16777216, "
            f"columns={{'l': 'VARCHAR'}})")


_DECIMAL_RE = r"-?[0-9]{1,30}(\.[0-9]{1,30})?"  # within plain_decimal's range; no sign '+', no exponent
_MONEY_RE = r"[¥￥]?" + _DECIMAL_RE + "元?"  # after parse_yuan's removal of thousands separators
# A single-line CSV record as the csv module reads it (strict, doubled quotes), and its fields:
_RECORD_RE = r'(?:"(?:[^"]|"")*"|[^"{d}][^{d}]*|)(?:{d}(?:"(?:[^"]|"")*"|[^"{d}][^{d}]*|))*'
_FIELD_RE = r'{d}("(?:[^"]|"")*"|[^"{d}][^{d}]*|)'
_REST_RE = r"(\.[0-9]{1,9})?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?"  # after 'YYYY-MM-DD HH:MM:SS'
_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class _FileSql:
    """The INSERT that reads one planned CSV file into `events`.

    A line is taken by the SQL only when the csv module would split it at the
    delimiter (no quote character), it has the header's column count, and every value
    is in a form whose reading is certain: `ts` as 'YYYY-MM-DD HH:MM:SS' (or with T,
    fractional seconds, an offset) inside the tabled time zone window, and declared
    money/number/yes-no values in plain forms. Everything else goes to the UDF.
    """

    def __init__(self, plan: _CsvPlan, columns: Columns, schema: Schema, tz: zoneinfo.ZoneInfo, udf: str,
                 base: int, spans_table: str | None = None, first: int | None = None, last: int | None = None):
        self.spans_table = spans_table
        self.first = plan.header_line + 1 if first is None else first
        self.last = last
        self.plan = plan
        self.columns = columns
        self.schema = schema
        self.tz = tz
        self.udf = udf
        self.base = base
        self.pos = {name: i + 1 for i, name in enumerate(plan.names) if name}  # 1-based field index

    def v(self, name: str) -> str:
        return f"v{self.pos[name]}"

    def sql(self) -> str:
        plan = self.plan
        names = plan.names
        unnamed_ok = " AND ".join(f"f[{i + 1}] = ''" for i, n in enumerate(names) if not n) or "true"
        values = ", ".join(f"nullif(f[{i}], '') AS v{i}" for i in self.pos.values())
        ts, type_ = self.v("ts"), self.v("type")
        wall_spans, utc_spans = _zone_spans(self.tz, *plan.window)
        declared = {name: self._declared(name) for name in self.pos if name not in ("id", "ts", "type")}
        norm = ", ".join(f"{expr} AS n{self.pos[name]}" for name, (expr, _) in declared.items())
        checks = " AND ".join(f"({ok})" for _, ok in declared.values()) or "true"
        in_span = f"line IN (SELECT line FROM {self.spans_table})" if self.spans_table else "false"
        fast = (f"NOT in_span AND NOT contains(l, chr(0)) AND strlen(l) <= {_FIELD_LIMIT} "
                f"AND nf = {len(names)} AND unnamed_ok AND {type_} IS NOT NULL AND CAST(w0 AS VARCHAR) = t19 "
                f"AND okrest AND okoff AND utc IS NOT NULL AND loc IS NOT NULL AND {checks}")
        named = [n for n in names if n]
        out = {"seq": f"{int(self.base)} + row_number() OVER () - 1",
               "id": f"CASE WHEN fast THEN {self._id()} ELSE py[1] END",
               "ts": "CASE WHEN fast THEN utc ELSE CAST(py[2] AS TIMESTAMP) END",
               "ts_local": "CASE WHEN fast THEN loc ELSE CAST(py[3] AS TIMESTAMP) END",
               "src_file": sql_string(plan.rel),
               # The UDF and a multi-line record's lookup must not have changed the order of the
               # lines: a line after a later one stops the INSERT (the file is read in Python).
               "src_line": "CASE WHEN max(line) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) = line "
                           "THEN CAST(line AS INTEGER) ELSE error('ledger: lines out of order') END"}
        for k, name in enumerate(named):
            if name not in ("id", "ts"):
                value = self.v(name) if name == "type" else f"n{self.pos[name]}"
                out[name] = f"CASE WHEN fast THEN {value} ELSE py[{k + 4}] END"
        targets = ["seq", "id", "ts", "ts_local", *Columns.STORED_CORE, "src_file", "src_line", *self.columns.extras]
        select = ", ".join(out.get(name, "NULL") for name in targets)
        return f"""
            INSERT INTO events ({', '.join(quote_name(n) for n in targets)})
            WITH src AS (SELECT ordinality AS line, l FROM {_raw_lines_sql(plan.path)} WITH ORDINALITY
                         {f"LIMIT {int(self.last)}" if self.last is not None else ""}),
            a AS (SELECT line, l, {self._fields()} AS f FROM src WHERE line >= {int(self.first)}),
            b AS (SELECT line, l, len(f) AS nf, {unnamed_ok} AS unnamed_ok, {in_span} AS in_span, {values} FROM a),
            c AS (SELECT *, replace(left({ts}, 19), 'T', ' ') AS t19, substr({ts}, 20) AS rest FROM b),
            d AS (SELECT *, try_cast(t19 AS TIMESTAMP) AS w0,
                         CASE WHEN rest = '' THEN true ELSE regexp_full_match(rest, '{_REST_RE}') END AS okrest,
                         CASE WHEN rest = '' THEN NULL
                              ELSE regexp_extract(rest, '^{_REST_RE}$', ['fr', 'off', 'mm']) END AS rx
                  FROM c),
            e AS (SELECT *, coalesce(rx.fr, '') AS fr, coalesce(rx.off, '') AS off FROM d),
            g AS (SELECT *,
                         w0 + to_microseconds(CASE WHEN fr = '' THEN 0
                                                   ELSE CAST(rpad(substr(fr, 2, 6), 6, '0') AS BIGINT) END) AS wall,
                         CASE WHEN off IN ('', 'Z', 'z') THEN 0
                              ELSE (CASE WHEN off[1] = '-' THEN -1 ELSE 1 END)
                                   * (TRY_CAST(substr(off, 2, 2) AS BIGINT) * 3600
                                      + (CASE WHEN strlen(off) > 3 THEN TRY_CAST(right(off, 2) AS BIGINT) ELSE 0 END)
                                        * 60) END AS osec,
                         CASE WHEN off IN ('', 'Z', 'z') THEN true
                              ELSE TRY_CAST(substr(off, 2, 2) AS BIGINT) <= 23
                                   AND (strlen(off) <= 3 OR TRY_CAST(right(off, 2) AS BIGINT) <= 59) END AS okoff
                  FROM e),
            h AS (SELECT *, CASE WHEN off = '' THEN {_span_case('wall', wall_spans, '-')}
                                 ELSE wall - to_seconds(osec) END AS utc FROM g),
            i AS (SELECT *, CASE WHEN off = '' THEN wall ELSE {_span_case('utc', utc_spans, '+')} END AS loc FROM h),
            j AS (SELECT *{', ' + norm if norm else ''} FROM i),
            k AS (SELECT *, coalesce({fast}, false) AS fast FROM j),
            m AS (SELECT *, CASE WHEN fast THEN NULL ELSE {self.udf}(line, l) END AS py FROM k),
            r AS (SELECT * FROM m WHERE fast OR py IS NOT NULL)
            SELECT {select} FROM r"""

    def _fields(self) -> str:
        """The fields of line `l` as the csv module splits a one-line record; NULL for a line
        that is not one (a quoted field left open, text after a closing quote, ...)."""
        d = self.plan.delimiter
        record = _RECORD_RE.replace("{d}", d)
        field = _FIELD_RE.replace("{d}", d)
        unquote = "CASE WHEN starts_with(x, '\"') THEN replace(substr(x, 2, length(x) - 2), '\"\"', '\"') ELSE x END"
        # Every field quoted and no quote inside one ("a","b,c"; exports that quote
        # everything): exactly 2 quotes per field, so the '","' between them are the
        # field ends and splitting at them is what the csv module reads. Saves the regex.
        between = sql_string(f'"{d}"')
        quotes = "strlen(l) - strlen(replace(l, '\"', ''))"  # bytes: the quote and delimiter are ASCII
        seps = f"(strlen(l) - strlen(replace(l, {between}, ''))) // 3"
        all_quoted = (f"starts_with(l, '\"') AND ends_with(l, '\"') AND strlen(l) >= 2 "
                      f"AND NOT contains(l, '\"\"') AND {quotes} = 2 * ({seps} + 1)")
        return (f"CASE WHEN NOT contains(l, '\"') THEN string_split(l, {sql_string(d)}) "
                f"WHEN {all_quoted} THEN string_split(substr(l, 2, length(l) - 2), {between}) "
                f"WHEN regexp_full_match(l, {sql_string(record)}) "
                f"THEN list_transform(regexp_extract_all({sql_string(d)} || l, {sql_string(field)}, 1), "
                f"lambda x: {unquote}) END")

    def _declared(self, name: str) -> tuple[str, str]:
        """(normalised value, check) of one column, by the kind each event type declares for it."""
        v, type_ = self.v(name), self.v("type")
        kinds: dict[str, list[str]] = {}
        for event_type, fields in self.schema.items():
            kind = fields.get(name)
            if kind and kind != "text":
                kinds.setdefault(kind, []).append(event_type)
        if not kinds:
            return v, "true"

        def of(*wanted):
            types = [t for k in wanted for t in kinds.get(k, ())]
            return f"{type_} IN ({', '.join(sql_string(t) for t in types)})" if types else "false"

        def decimal(text: str) -> str:  # plain_decimal of a text matching _DECIMAL_RE
            body = f"ltrim({text}, '-')"
            whole, frac = f"ltrim(split_part({body}, '.', 1), '0')", f"rtrim(split_part({body}, '.', 2), '0')"
            return (f"CASE WHEN {whole} = '' AND {frac} = '' THEN '0' ELSE concat("
                    f"CASE WHEN starts_with({text}, '-') THEN '-' ELSE '' END, "
                    f"CASE WHEN {whole} = '' THEN '0' ELSE {whole} END, "
                    f"CASE WHEN {frac} = '' THEN '' ELSE '.' || {frac} END) END")

        bare = f"replace(replace({v}, ',', ''), '，', '')"  # parse_yuan drops thousands separators
        amount = f"regexp_replace({bare}, '^[¥￥]|元$', '', 'g')"
        true_words = ", ".join(sql_string(w) for w, flag in _BOOL_WORDS.items() if flag)
        words = ", ".join(sql_string(w) for w in _BOOL_WORDS)
        flag = f"CASE WHEN {v} = '是' OR lower({v}) IN ({true_words}) THEN 'true' ELSE 'false' END"
        value = (f"CASE WHEN {v} IS NULL THEN NULL WHEN {of('money')} THEN {decimal(amount)} "
                 f"WHEN {of('number')} THEN {decimal(v)} WHEN {of('bool')} THEN {flag} ELSE {v} END")
        check = (f"{v} IS NULL OR CASE WHEN {of('money')} THEN regexp_full_match({bare}, '{_MONEY_RE}') "
                 f"WHEN {of('number')} THEN regexp_full_match({v}, '{_DECIMAL_RE}') "
                 f"WHEN {of('bool')} THEN {v} IN ('是', '否') "
                 f"OR (strlen({v}) = length({v}) AND lower({v}) IN ({words})) "
                 f"WHEN {of('time')} THEN false ELSE true END")
        return value, check

    def _id(self) -> str:
        """The event id: the `id` column, else 'h' + sha256 of the canonical content (`canonical_content`)."""
        iso = ("strftime(utc, '%Y-%m-%dT%H:%M:%S') || CASE WHEN microsecond(utc) % 1000000 = 0 THEN '' "
               "ELSE '.' || strftime(utc, '%f') END")
        parts = [self.v("type"), "chr(0)", iso]
        for name in sorted(self.pos):
            if name not in ("id", "ts", "type"):
                n = f"n{self.pos[name]}"
                parts.append(f"CASE WHEN {n} IS NULL THEN '' ELSE chr(0) || {sql_string(name)} || chr(0) || {n} END")
        derived = f"'h' || left(sha256(concat({', '.join(parts)})), 16)"
        if "id" in self.pos:
            return f"CASE WHEN {self.v('id')} IS NOT NULL THEN {self.v('id')} ELSE {derived} END"
        return derived


def _stored_canonical(columns: Columns) -> str:
    """`canonical_content` of an `events` row, from its stored columns (missing values are NULL)."""
    iso = ("strftime(ts, '%Y-%m-%dT%H:%M:%S') || CASE WHEN microsecond(ts) % 1000000 = 0 THEN '' "
           "ELSE '.' || strftime(ts, '%f') END")
    parts = ["type", "chr(0)", iso]
    for name in sorted(set(Columns.STORED_CORE) - {"type"} | set(columns.extras)):
        q = quote_name(name)
        parts.append(f"CASE WHEN {q} IS NULL THEN '' ELSE chr(0) || {sql_string(name)} || chr(0) || {q} END")
    return f"concat({', '.join(parts)})"


def _span_case(expr: str, spans, sign: str) -> str:
    """`expr` moved by the zone offset of the span it falls in; NULL outside all spans."""
    if not spans:
        return "NULL::TIMESTAMP"
    whens = " ".join(
        f"WHEN {expr} >= TIMESTAMP '{start.isoformat(' ')}' AND {expr} < TIMESTAMP '{end.isoformat(' ')}' "
        f"THEN {expr} {sign} to_microseconds({offset // timedelta(microseconds=1)})"
        for start, end, offset in spans)
    return f"CASE {whens} ELSE NULL END"


@functools.lru_cache(maxsize=32)
def _zone_spans(tz: zoneinfo.ZoneInfo, start: datetime, end: datetime):
    """Hour-aligned spans of [start, end) with a steady zone offset, as (from, to, offset):
    for wall times exactly where `parse_ts` uses `steady_offset`, and for UTC times
    where `tz.fromutc` adds the same offset all hour. Other hours are left to Python."""
    wall: list[tuple[datetime, datetime, timedelta]] = []
    utc: list[tuple[datetime, datetime, timedelta]] = []
    hour, last = timedelta(hours=1), timedelta(minutes=59, seconds=59, microseconds=999999)
    t = start
    while t < end:
        _extend(wall, t, t + hour, steady_offset.__wrapped__(tz, t.year, t.month, t.day, t.hour))
        at_start = tz.fromutc(t.replace(tzinfo=tz)).replace(tzinfo=None) - t
        at_end = tz.fromutc((t + last).replace(tzinfo=tz)).replace(tzinfo=None) - (t + last)
        _extend(utc, t, t + hour, at_start if at_start == at_end else None)
        t += hour
    return tuple(wall), tuple(utc)


def _extend(spans: list, start: datetime, end: datetime, offset: timedelta | None) -> None:
    if offset is None:
        return
    if spans and spans[-1][1] == start and spans[-1][2] == offset:
        spans[-1] = (spans[-1][0], end, offset)
    else:
        spans.append((start, end, offset))


def write_rejects(path: Path, rejects: Sequence[Reject]) -> None:
    """Rejected rows as CSV (file,line,reason,raw), UTF-8 with BOM for Excel, atomically.

    A cell that Excel would run as a formula (starts with = + - @) gets a leading
    apostrophe, as OWASP recommends for CSV that people open in spreadsheets.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["file", "line", "reason", "raw"])
    for r in rejects:
        writer.writerow([_excel_safe(r.file), r.line, _excel_safe(r.reason), _excel_safe(printable(r.raw))])
    write_bytes(Path(path), ("\ufeff" + out.getvalue()).encode("utf-8"))


def _excel_safe(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
