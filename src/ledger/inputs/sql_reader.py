"""The set-based reader: big UTF-8 CSV files read and checked by DuckDB SQL, with exactly
the Python reader's results.

`SqlReader(...).run(files, ignored)` gives the `LoadResult` of all files and fills
`events`. A UTF-8 CSV file with a good one-line header is read by the SQL of
sql_plan.py: the lines it can vouch for are checked and normalised in SQL, every other
line goes through a UDF that runs the Python reader's own code on it, and a file DuckDB
cannot read exactly the way Python does (invalid UTF-8, a lone CR, mixed line ends in
multi-line records, ...) is read in Python after all. Every other file is read by
`PythonReader`. Duplicate ids are folded in SQL over all files at the end.
`readers` tells how each file was read ("sql" or "python").
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import io
import itertools
import os
import tempfile
import zoneinfo
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import duckdb

from ledger.inputs import sheet_csv
from ledger.inputs.containers import READ_ERRORS, Sheet
from ledger.inputs.dedup import WHY, fold_duplicates
from ledger.inputs.contract import (
    FileReport,
    LoadResult,
    Reject,
    Schema,
    parse_ts,
)
from ledger.inputs.encodings import printable, sniff, utf16_without_bom
from ledger.inputs.file_groups import (
    SCAN_CHUNK,
    FileScan,
    group_key,
    group_lines_sql,
    group_starts,
    scan_file,
    split_hints,
    ungroup_reject,
)
from ledger.inputs.jsonl_plan import jsonl_head, plain_keys
from ledger.inputs.line_rows import LineRows, NewKeys, quote_state
from ledger.inputs.python_reader import PythonReader, declared
from ledger.inputs.records import file_records
from ledger.inputs.rows import (
    Columns,
    check_header,
    clean_name,
    physical_records,
)
from ledger.inputs.settings import ReaderSettings
from ledger.inputs.sql_plan import (
    RECORD_RE,
    CsvPlan,
    FileSql,
    jsonl_fields,
    jsonl_keys_sql,
    jsonl_types,
    numbered_lines_sql,
    raw_lines_sql,
)
from ledger.inputs.table import create_empty, insert_written, sql_string
from ledger.inputs.transcode import to_utf8

_HEAD_BYTES = 1 << 16  # the header and the first rows, read in Python to plan the SQL
_ZONE_MARGIN = timedelta(days=120)  # time zone offsets are tabled this far around a file's first rows
_MAX_SPAN_LINES = 1_000_000  # more lines in multi-line records than this: the file is read in Python
_SPAN_LOOKAHEAD = 4096  # a multi-line record longer than this: the file is read in Python
_udf_numbers = itertools.count()
_TRANSCODE_SAMPLE = 2000  # non-ASCII lines encodings.sniff weighs (its sample_lines)
_TRANSCODED = ("gb18030",)  # encodings read set-based through a UTF-8 copy


def _sql_types():
    """(BIGINT, VARCHAR, VARCHAR[]) as DuckDB Python types, or None."""
    try:
        return duckdb.sqltype("BIGINT"), duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR[]")
    except (AttributeError, duckdb.Error):
        return None


_UDF_TYPES = _sql_types()
if _UDF_TYPES is None:  # before DuckDB 1.4: duckdb.typing (only then: it is deprecated after)
    try:
        from duckdb.typing import BIGINT, VARCHAR
        _UDF_TYPES = BIGINT, VARCHAR, duckdb.list_type(VARCHAR)
    except (ImportError, AttributeError, duckdb.Error):
        pass


@functools.lru_cache(maxsize=1)
def udf_types():
    """(BIGINT, VARCHAR, VARCHAR[]) as DuckDB Python types, or None when this DuckDB
    cannot run the reader's Python UDF (its types are missing, or numpy is)."""
    types = _UDF_TYPES
    if types is None:
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


class SqlReader:
    """Load events set-based where possible, with exactly the Python reader's results.

    Phase 1 goes through the files in order: a UTF-8 CSV file with a good one-line
    header is planned for SQL (its header is checked and registered here, as the
    Python reader would); every other file is read in Python, rows written to a
    temporary CSV without folding duplicates (consecutive such files share one, appended
    by one INSERT). The column set is then final, so phase 2
    creates `events` and appends each file's rows in order, seq counting on. Phase 3
    folds duplicate ids over all files in SQL (first occurrence wins, as in Python).

    A file's raw lines are numbered by DuckDB once (`WITH ORDINALITY`, one thread) into a
    temporary table (a JSON Lines file's in phase 1, with each line's keys: jsonl_keys_sql); one INSERT (on every core) splits lines at the delimiter as the csv
    module does and checks and normalises the common forms in SQL, seq counting lines;
    the lines that gave no row are closed up after (`_close_gaps`). A row the SQL cannot
    vouch for (unusual quoting, a NUL, unusual time or amount forms, anything to reject,
    blank lines) is handed to a Python UDF (line_rows.py) that runs the Python reader's
    own code on it. If a line opens
    a quoted field that continues on the next line, or DuckDB's lines do not add up to
    the file's, the file's rows are taken out again and the file is read in Python.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, tz: zoneinfo.ZoneInfo, schema: Schema, *,
                 settings: ReaderSettings, profiles: tuple = (), progress=lambda rel, path: None,
                 python_files: frozenset[str] = frozenset()):
        self.python_files = python_files  # read in Python whatever they are (see `run`)
        self.progress = progress
        self.con = con
        self.tz = tz
        self.schema = schema
        self.settings = settings
        self.force = settings.reader == "fast"
        self.columns = Columns(settings.max_columns, declared(schema))
        self.loader = PythonReader(tz, schema, None, columns=self.columns, profiles=profiles,
                                   settings=settings)
        self.temps: list[str] = []
        self.tables: list[str] = []  # tables made in planning (CsvPlan.lines), dropped once read
        self.batch = None  # (temporary CSV, its open file): consecutive Python-read files share one
        self.n_rows = 0  # rows appended to `events` so far (the next seq)
        self.readers: dict[str, str] = {}  # rel path -> "sql" or "python", once `run` is done
        self.warnings: list[str] = []
        self.sheets: sheet_csv.Sheets | None = None  # the CSV copies of big sheets (`_run`)

    def run(self, files: list[tuple[str, Path]], ignored: list[str]) -> LoadResult:
        try:
            return self._run(files, ignored)
        except NewKeys as e:
            # A JSON Lines file has a key its first lines did not: its columns were not in
            # `events` when it was read. Start again, with that file read in Python in phase 1.
            again = SqlReader(self.con, self.tz, self.schema, settings=self.settings, profiles=self.loader.profiles,
                              progress=self.progress, python_files=self.python_files | {e.rel})
            result = again.run(files, ignored)
            self.readers, self.n_rows = again.readers, again.n_rows
            return result

    def _run(self, files: list[tuple[str, Path]], ignored: list[str]) -> LoadResult:
        pool = ThreadPoolExecutor(max_workers=1)  # hashes and counts files while DuckDB reads them
        self.sheets = sheet_csv.Sheets([p for _, p in files if isinstance(p, Sheet)], self.settings, self.force)
        try:
            plans = [self._plan(rel, path, pool) for rel, path in files]
            self._end_batch()
            create_empty(self.con, self.columns)
            done = self._append_all(plans)
            self._fold_duplicates(done)
        finally:
            self._end_batch()
            if self.sheets is not None:
                self.sheets.close()
            pool.shutdown(wait=True, cancel_futures=True)
            for tmp in self.temps:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            for table in self.tables:
                with contextlib.suppress(duckdb.Error):
                    self.con.execute(f"DROP TABLE IF EXISTS {table}")
        order = {d.rel: i for i, d in enumerate(done)}
        rejects = sorted((r for d in done for r in d.rejects), key=lambda r: (order[r.file], r.line))
        for d in done:
            self.readers[d.rel] = d.reader
        reports = tuple(d.report for d in done)
        return LoadResult(
            files=reports,
            ignored=tuple(ignored),
            rejects=tuple(rejects),
            columns=tuple(self.columns.extras),
            n_events=self.n_rows,
            duplicates_folded=sum(r.duplicates for r in reports),
            warnings=tuple(self.warnings),
        )

    # -- phase 1 ------------------------------------------------------------

    def _plan(self, rel: str, path: Path, pool: ThreadPoolExecutor):
        plan = None
        # The "python" setting reads every file in Python (the reference the set-based
        # paths are tested against), so none of the plans below may claim a file then.
        if rel not in self.python_files and self.settings.reader != "python":
            plan = (self._csv_plan(rel, path) or self._jsonl_plan(rel, path) or self._transcoded_plan(rel, path)
                    or self._sheet_plan(rel, path))
        if plan is None:
            return self._python(rel, path)
        self._end_batch()  # the rows of files read after this one go to a new temporary CSV
        if plan.scan is None:  # a sheet's copy comes with its line count (sheet_csv)
            # A transcoded copy's digest is not reported (plan.sha256 is the file's own): not computed.
            plan.scan = pool.submit(scan_file, plan.path, plan.encoding != "gb18030")
        return plan

    def _jsonl_plan(self, rel: str, path: Path) -> CsvPlan | None:
        """A JSON Lines file whose first lines give its keys (jsonl_plan.py)."""
        if not isinstance(path, Path) or path.suffix.lower() != ".jsonl":
            return None
        try:
            size = path.stat().st_size
        except OSError:
            return None
        if size < (1 if self.force else self.settings.sql_min_bytes):
            return None
        head = jsonl_head(path, self.columns)
        if head is None:
            return None
        names, rows, line_bytes = head
        plan = CsvPlan(rel, path, "utf-8", ",", names, 0, (datetime.min, datetime.min), size, line_bytes, jsonl=True)
        # The file's numbered lines, with each line's keys (jsonl_keys_sql), are stored now: its
        # later keys come from them, and its INSERT (phase 2) reads them.
        table = f"ledger_lines_{os.getpid()}_{next(_udf_numbers)}"
        temp = "TEMP " if len(self._parts(plan)) == 1 else ""  # other parts' connections must see it
        try:
            self.con.execute(f"CREATE TEMP TABLE {table}_raw AS {numbered_lines_sql(path, 1)}")
            try:
                self.con.execute(f"CREATE {temp}TABLE {table} AS {jsonl_keys_sql(f'{table}_raw', names)}")
            finally:
                self.con.execute(f"DROP TABLE IF EXISTS {table}_raw")
        except duckdb.Error:
            return None  # invalid UTF-8, an over-long line, ...: the file is read in Python
        self.tables.append(table)
        names = self._later_keys(table, names)
        if names is None:
            self.con.execute(f"DROP TABLE {table}")
            return None
        self.columns.register(names, rel)  # as the Python reader does on the first line that has each
        ts = names.index("ts")
        window = self._window(((0, 0, "", row, None) for row in rows), ts, len(names))
        return attrs.evolve(plan, names=names, window=window, lines=table)

    def _later_keys(self, table: str, names: list[str]) -> list[str] | None:
        """`names` and the keys of later lines (of every line DuckDB reads as an object: `x` of
        table `table`, see jsonl_keys_sql); None when a key new to the month is on no line the
        SQL reads itself (whether the Python reader registers it then depends on how it reads
        those lines: it reads the file)."""
        found = [k for (k,) in self.con.execute(f"SELECT DISTINCT unnest(x) FROM {table} WHERE x IS NOT NULL").fetchall()]
        extra = sorted(k for k in found if k not in names)
        if not extra:
            return names
        if not plain_keys(names + extra, self.columns):
            return None
        everything = names + extra
        for key in extra:
            if key in self.columns.known:
                continue
            taken = self.con.execute(
                f"WITH src AS (SELECT 0 AS line, l, nk FROM {table}) "
                f"SELECT count(*) FROM {jsonl_types(everything)} WHERE CASE WHEN jt IS NOT NULL "
                f"THEN list_contains(json_keys(l), ?) AND ({jsonl_fields(everything)}) IS NOT NULL END",
                [key]).fetchone()[0]
            if not taken:
                return None
        return everything

    def _transcoded_plan(self, rel: str, path: Path) -> CsvPlan | None:
        """A GB18030 CSV file, decoded as a stream into a UTF-8 copy that is planned like
        any UTF-8 file (the same lines, the same text the Python reader decodes: line ends
        and delimiters are single bytes in GB18030, never inside a character). None when
        the file is not such a file, or has a byte that does not decode (the Python reader
        then rejects just those rows)."""
        if not isinstance(path, Path) or path.suffix.lower() != ".csv":
            return None
        try:
            size = path.stat().st_size
            if size < (1 if self.force else self.settings.sql_min_bytes):
                return None
            with open(path, "rb") as fh:
                head = fh.read(SCAN_CHUNK)
        except OSError:
            return None
        if len(head) == SCAN_CHUNK:
            head = head[:head.rfind(b"\n") + 1]
        non_ascii = sum(1 for line in head.split(b"\n") if not line.isascii())
        if len(head) < size and non_ascii < _TRANSCODE_SAMPLE:
            return None  # encodings.sniff would weigh lines past this head
        if sniff(io.BytesIO(head)).codec not in _TRANSCODED:  # as the Python reader decides
            return None
        fd, tmp = tempfile.mkstemp(prefix="ledger-utf8-", suffix=".csv")
        os.close(fd)
        self.temps.append(tmp)
        digest = to_utf8(path, tmp, "gb18030", self.settings.cores)
        plan = self._csv_plan(rel, Path(tmp)) if digest is not None else None
        if plan is None:
            return None
        return attrs.evolve(plan, encoding="gb18030", source=path, sha256=digest)

    def _sheet_plan(self, rel: str, source) -> CsvPlan | None:
        """A workbook sheet turned into a UTF-8 CSV copy (sheet_csv.py: line n is row n) and
        planned like any UTF-8 file; None when the transform cannot vouch for the sheet."""
        if not isinstance(source, Sheet):
            return None
        made = self.sheets.copy(source)
        if made is None:
            return None
        self.temps.append(made.path)
        plan = self._csv_plan(rel, Path(made.path))
        if plan is None:
            return None
        plan = attrs.evolve(plan, encoding="xlsx", source=source, sha256=made.sha256)
        # What a scan of the copy would find (the transform writes no CR, no control character):
        # not hashed and counted again.
        plan.scan = Future()
        plan.scan.set_result(FileScan(made.sha256, made.lines, False, False, "\n", made.lines > 0))
        return plan

    def _csv_plan(self, rel: str, path: Path) -> CsvPlan | None:
        if not isinstance(path, Path) or path.suffix.lower() != ".csv":
            return None  # zip members and workbook sheets (containers.py) are read in Python
        try:
            size = path.stat().st_size
            if size < (1 if self.force else self.settings.sql_min_bytes):
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
        if self.columns.would_overflow(names) or self.columns.overflow & set(names):
            return None  # columns past the limit are stored as JSON by the Python reader
        if check_header(names, self.columns, rel):
            return None  # the Python reader rejects the header and every row
        window = self._window(records, names.index("ts"), len(names))
        line_bytes = max(1.0, len(body) / max(1, body.count(b"\n")))
        data = text.split("\n", line + 1)[line:line + 1]  # the first data line, when in the head
        quoted, pattern = split_hints(data[0].rstrip("\r"), delimiter, len(names)) if data else (False, ())
        return CsvPlan(rel, path, "utf-8-sig" if bom else "utf-8", delimiter, names, line, window, size, line_bytes,
                       quoted=quoted, pattern=pattern)

    def _window(self, records, ts_index: int, width: int) -> tuple[datetime, datetime]:
        """Wall times around the file's first rows, whole months: the zone is tabled there."""
        seen = []
        for _, _, _, fields, problem in itertools.islice(records, 64):
            if not problem and len(fields) == width:
                with contextlib.suppress(ValueError):
                    seen.append(parse_ts(fields[ts_index], self.tz)[1])
        if not seen:
            seen = [datetime.now(self.tz).replace(tzinfo=None)]
        if max(seen) - min(seen) > _ZONE_MARGIN:  # rows years apart: table around the first only
            seen = seen[:1]  # (rows outside the table are read by the Python UDF, as exactly)
        low = max(min(seen) - _ZONE_MARGIN, datetime(1900, 1, 1))
        high = min(max(seen) + _ZONE_MARGIN, datetime(2200, 1, 1))
        # Half years, so that the files of a month share one table (sql_plan caches the tables).
        return datetime(low.year, 1 if low.month < 7 else 7, 1), datetime(high.year + (high.month >= 7),
                                                                           7 if high.month < 7 else 1, 1)

    def _python(self, rel: str, path) -> _Done:
        """Read one file in Python into the temporary CSV of the current batch (appended to
        `events` in phase 2, one INSERT per batch: a zip of 4,000 members is one INSERT)."""
        self.progress(rel, path)
        if self.batch is None:
            fd, tmp = tempfile.mkstemp(prefix="ledger-events-", suffix=".csv")
            self.temps.append(tmp)
            self.batch = (tmp, open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20))
            self.loader.set_output(self.batch[1])
        first_reject = len(self.loader.rejects)
        before = self.loader.n_events
        report = self.loader.load_file(rel, path)
        return _Done(rel, path, "python", report, self.loader.rejects[first_reject:], self.batch[0],
                     self.loader.n_events - before)

    def _end_batch(self) -> None:
        if self.batch is not None:
            self.batch[1].close()
            self.loader.set_output(None)
            self.batch = None

    # -- phase 2 ------------------------------------------------------------

    def _append_all(self, plans: list) -> list[_Done]:
        """Every file's rows into `events`, in file order: a planned CSV file by its SQL (or in
        Python when the SQL cannot vouch for it), a batch of Python-read files by one INSERT."""
        done: list[_Done] = []
        batch: list[_Done] = []
        grouped: list[_Done] = []  # files read with the ones before them (_append_group)
        alone = 0  # plans before this one that a failed group leaves to be read one by one
        for at, plan in enumerate(plans):
            if batch and (isinstance(plan, CsvPlan) or plan.tmp != batch[0].tmp):
                self._insert_batch(batch)
                batch = []
            if not isinstance(plan, CsvPlan):
                batch.append(plan)
                done.append(plan)
                continue
            if not grouped and at >= alone:
                run = self._group_at(plans, at)
                grouped = self._append_group(run)
                if not grouped:  # (trying the rest of the run again would read it again)
                    alone = at + len(run)
            if grouped:
                done.append(grouped.pop(0))
                continue
            read = self._append_sql(plan)
            if read is None:
                read = self._python(plan.rel, plan.source or plan.path)
                self._end_batch()
                self._insert_batch([read])
            done.append(read)
        if batch:
            self._insert_batch(batch)
        return done

    def _group_at(self, plans: list, at: int) -> list[CsvPlan]:
        """The planned files from `at` on that one INSERT may read (file_groups.group_key): small
        files read on their own whose raw lines DuckDB reads as Python does."""
        key = group_key(plans[at])
        run = list(itertools.takewhile(lambda p: isinstance(p, CsvPlan) and key is not None and group_key(p) == key,
                                       plans[at:]))
        if len(run) < 2:  # (before waiting for any file's scan)
            return []
        scans = [self._scan(p) for p in run]
        ok = [s is not None and s.newline is not None and len(self._parts(p)) == 1 for p, s in zip(run, scans)]
        return run[:ok.index(False)] if False in ok else run

    def _append_group(self, run: list[CsvPlan]) -> list[_Done]:
        """Files with one header read by one INSERT as one file (file_groups.py), each with its
        own report and rejects. [] when fewer than two, or when anything needs more than the
        plain reading (a multi-line record, a line count DuckDB disagrees on): read one by one."""
        if len(run) < 2:
            return []
        data = [self._scan(p).lines - p.header_line for p in run]
        table = f"ledger_lines_{os.getpid()}_{next(_udf_numbers)}"
        for plan in run:
            self.progress(plan.rel, plan.path)
        try:
            starts = group_starts(data)
            for statement in group_lines_sql(table, run, starts):
                self.con.execute(statement)
            counted = dict(self.con.execute(f"SELECT fk, count(*) FROM {table} GROUP BY fk").fetchall())
            if [counted.get(k, 0) for k in range(len(run))] != data:
                return []
            scan: Future = Future()  # newline None: a multi-line record is never looked for here
            scan.set_result(FileScan("", 1 + sum(data), False, False, None, True))
            whole = attrs.evolve(run[0], header_line=1, lines=table, scan=scan, files=tuple(p.rel for p in run))
            base = self.n_rows
            read = self._append_lines(whole, table)
        except duckdb.Error:
            return []
        finally:
            with contextlib.suppress(duckdb.Error):
                self.con.execute(f"DROP TABLE IF EXISTS {table}")
        if read is None:
            return []
        rejects: list[list] = [[] for _ in run]
        for reject in read.rejects:
            k, own = ungroup_reject(reject, run, starts)
            rejects[k].append(own)
        inserted = dict(self.con.execute(
            f"SELECT src_file, count(*) FROM events WHERE seq >= {base} GROUP BY src_file").fetchall())
        n = [inserted.get(p.rel, 0) for p in run]
        return [_Done(p.rel, p.path, "sql", FileReport(p.rel, p.encoding, p.sha256 or self._scan(p).sha256,
                                                       k + len(mine), k, len(mine), 0), mine)
                for p, k, mine in zip(run, n, rejects)]

    def _insert_batch(self, batch: list[_Done]) -> None:
        written = sum(d.n_written for d in batch)
        if written:
            insert_written(self.con, self.columns, batch[0].tmp, self.n_rows)
            self.n_rows += written
        os.unlink(batch[0].tmp)
        self.temps.remove(batch[0].tmp)

    def _append_sql(self, plan: CsvPlan) -> _Done | None:
        self.progress(plan.rel, plan.source or plan.path)
        lines = plan.lines or f"ledger_lines_{os.getpid()}_{next(_udf_numbers)}"
        try:
            return self._append_lines(plan, lines)
        finally:
            with contextlib.suppress(duckdb.Error):
                self.con.execute(f"DROP TABLE IF EXISTS {lines}")

    def _append_lines(self, plan: CsvPlan, lines: str) -> _Done | None:
        """The file's rows appended from its numbered lines (stored once in table `lines`)."""
        spans = None
        parts = self._parts(plan)
        try:
            # TEMP (held in memory, spilled past memory_limit) unless other parts' connections must see it.
            temp = "TEMP " if len(parts) == 1 else ""
            if plan.lines is None:  # (a JSON Lines file's were stored in planning)
                self.con.execute(f"CREATE {temp}TABLE {lines} AS {numbered_lines_sql(plan.path, plan.header_line + 1)}")
            stored = True
        except duckdb.Error:
            stored = False  # invalid UTF-8, an over-long line, ...: the file is read in Python
        while stored:
            rows = [LineRows(plan, self.tz, self.schema, spans) for _ in parts]
            counts = self._insert_sql(plan, parts, rows, lines)
            if any(r.new_keys for r in rows):
                raise NewKeys(plan.rel)
            opened = any(r.opened for r in rows)
            if opened and spans is None and self._scan(plan) is not None:
                # A quoted field runs on to the next line: find such records, then read again
                # (other parts may have finished: their rows go too).
                self.con.execute(f"DELETE FROM events WHERE seq >= {self.n_rows}")
                spans = self._multi_line_records(plan, self._scan(plan))
                if spans is not None:
                    continue
            break
        scan = self._scan(plan)
        if not stored or scan is None:
            self.con.execute(f"DELETE FROM events WHERE seq >= {self.n_rows}")
            return None
        rejects = sorted((r for part in rows for r in part.rejects), key=lambda r: r.line)
        inserted = sum(counts) if counts is not None else None
        gaps = sorted({r.line for r in rejects}.union(*(part.not_rows for part in rows)))
        ok = (inserted is not None and not opened
              and scan.lines - plan.header_line == inserted + len(rejects) + sum(r.skipped for r in rows)
              and len(gaps) == len(rejects) + sum(r.skipped for r in rows))
        if not ok:
            self.con.execute(f"DELETE FROM events WHERE seq >= {self.n_rows}")
            return None
        self._close_gaps(plan, gaps)
        self.n_rows += inserted
        read = inserted + len(rejects)
        report = FileReport(plan.rel, plan.encoding, plan.sha256 or scan.sha256, read, inserted, len(rejects), 0)
        return _Done(plan.rel, plan.path, "sql", report, rejects, spans=spans)

    @staticmethod
    def _scan(plan: CsvPlan) -> FileScan | None:
        """The file's scan, when DuckDB's raw lines are Python's (no lone CR, no raw delimiter)."""
        try:
            scan = plan.scan.result()
        except OSError:
            return None
        return None if scan.bare_cr or scan.raw_delim else scan

    def _close_gaps(self, plan: CsvPlan, gaps: list[int]) -> None:
        """The file's rows were numbered by line (seq = n_rows + line - first line): take off each
        row's seq the lines before it that gave no row (rejected, blank, inside a multi-line record)."""
        if not gaps:
            return
        first = plan.header_line + 1
        table = f"ledger_gaps_{os.getpid()}_{next(_udf_numbers)}"
        self.con.execute(f"CREATE TEMP TABLE {table} AS SELECT unnest(?::BIGINT[]) AS g", [gaps])
        try:
            # Rows between the k-th gap and the next move down by k (plain SQL: a range join).
            self.con.execute(
                f"UPDATE events SET seq = events.seq - s.k FROM ("
                f"SELECT g, coalesce(lead(g) OVER (ORDER BY g), {2 ** 62}) AS next, row_number() OVER (ORDER BY g) AS k "
                f"FROM {table}) s WHERE events.seq > {self.n_rows} + s.g - {first} "
                f"AND events.seq < {self.n_rows} + s.next - {first} AND events.seq >= {self.n_rows}")
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def _parts(self, plan: CsvPlan) -> list[tuple[int, int | None]]:
        """Line ranges (first, last; None: to the end) read by concurrent INSERTs.

        One INSERT runs on every core already; tests cut small files into parts to have the
        UDF called from several connections at once (`ReaderSettings.part_min_bytes`)."""
        s = self.settings
        n = min(s.cores, s.max_parts) if plan.size >= s.part_min_bytes else 1
        estimate = plan.size / plan.line_bytes
        step = max(1, int((estimate - plan.header_line) / n))
        firsts = [plan.header_line + 1 + k * step for k in range(n)]
        return [(first, firsts[k + 1] - 1 if k + 1 < n else None) for k, first in enumerate(firsts)]

    def _insert_sql(self, plan: CsvPlan, parts: list, rows: list["LineRows"], lines: str) -> list[int] | None:
        """Run the file's INSERTs, one per part, concurrently; the rows each appended, or
        None if DuckDB gave up on one (a line the UDF refused: the caller decides)."""
        spans_table = None
        counts: list[int | None] = [None] * len(parts)
        cursors = [self.con] if len(parts) == 1 else [self.con.cursor() for _ in parts]
        base = self.n_rows

        def run(k: int) -> None:
            udf = f"ledger_event_row_{os.getpid()}_{next(_udf_numbers)}"
            cursor = cursors[k]
            try:
                bigint, varchar, varchars = udf_types()
                cursor.create_function(udf, rows[k], [bigint, varchar], varchars,
                                       null_handling="special", side_effects=True)
                try:
                    first, last = parts[k]
                    seq = base + first - plan.header_line - 1
                    sql = FileSql(plan, self.columns, self.schema, self.tz, udf, seq, lines, spans_table, first,
                                  last).sql()
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

    def _multi_line_records(self, plan: CsvPlan, scan: FileScan) -> dict | None:
        """Records whose quoted fields run over line ends, read by the csv module:
        first line -> (n_lines, raw, fields, problem). None if the file is better read in Python.

        Such a record starts on a line with a quote that is not a one-line record (the
        SQL finds those), and ends on the first later line with a quote that closes the
        field (the csv module decides, on the lines that follow, up to _SPAN_LOOKAHEAD
        of them). Each record is then read whole and must take exactly those lines.
        """
        if scan.newline is None:
            return None  # mixed line ends: the raw-line scan cannot give a field's line breaks back
        source, d = raw_lines_sql(plan.path), plan.delimiter
        record = RECORD_RE.replace("{d}", d)
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
            if first <= after or quote_state(text[first], d, False) != "open":
                continue  # inside an earlier record, or a one-line record the csv module rejects
            stop = first + 1
            while stop <= scan.lines:
                if stop not in text:
                    if stop > first + _SPAN_LOOKAHEAD:
                        return None  # a very long record (or a quote never closed): Python reads it
                    fetch([(stop, first + _SPAN_LOOKAHEAD)])  # one more scan, for a long record
                if '"' in text[stop] and quote_state(text[stop], d, True) == "closed":
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
        """Duplicate ids over all files (dedup.py): a row of the kept version's content is
        folded, a row of an older version rejected as superseded, naming the kept row."""
        dropped = fold_duplicates(self.con, self.columns)
        if not dropped:
            return
        by_file = {d.rel: d for d in done}
        counts: dict[str, list[int]] = {}
        for row in dropped:
            tally = counts.setdefault(row.file, [0, 0])
            tally[0 if row.folded else 1] += 1
        for rel, (folded, superseded) in counts.items():
            r = by_file[rel].report
            by_file[rel].report = attrs.evolve(r, accepted=r.accepted - superseded, rejected=r.rejected + superseded,
                                               duplicates=r.duplicates + folded)
        older = [row for row in dropped if not row.folded]
        wanted: dict[str, set[int]] = {}
        for row in older:
            wanted.setdefault(row.file, set()).add(row.line)
            wanted.setdefault(row.kept_file, set()).add(row.kept_line)
        raws = {rel: self._raw_lines(by_file[rel], lines) for rel, lines in wanted.items()}
        for row in older:
            kept = printable(raws[row.kept_file].get(row.kept_line, ""))
            reason = (f"同一记录（同一 id）有较新的版本，这一行未采用 (superseded by a newer version of the same id)；"
                      f"采用 {row.kept_file}:{row.kept_line}，因为{WHY[row.why]}；采用的行 (kept row): {kept}")
            by_file[row.file].rejects.append(Reject(row.file, row.line, reason,
                                                    printable(raws[row.file].get(row.line, ""))))
        self.n_rows -= len(dropped)
        if not older:  # identical copies only: folded, nothing superseded, nothing to check
            return
        versions = len({(r.kept_file, r.kept_line) for r in older})
        guessed = len({(r.kept_file, r.kept_line) for r in older if r.why == "digest"})
        self.warnings.append(
            f"{versions} 条记录在不同文件里有不同的版本：采用较新的版本（按状态、时间、下载先后），较旧的 {len(older)} 行"
            f"记在 rejected-rows.csv (superseded)" + (f"；其中 {guessed} 条无法判断哪个更新，按内容摘要选定，请核对"
                                                      if guessed else ""))

    def _raw_lines(self, done: _Done, lines: set[int]) -> dict[int, str]:
        """The raw text of some records of a file (for rejects found after loading)."""
        if done.reader == "sql":
            spans = done.spans or {}
            listed = ", ".join(str(int(n)) for n in sorted(lines))
            found = dict(self.con.execute(
                f"SELECT ordinality, coalesce(l, '') FROM {raw_lines_sql(done.path)} WITH ORDINALITY "
                f"WHERE ordinality IN ({listed})").fetchall())
            trim = done.report.encoding == "xlsx"  # a sheet's row: its cells without trailing empty ones
            return {n: spans[n][1] if n in spans else text.rstrip(",") if trim else text for n, text in found.items()}
        scratch = Columns()  # only the raw text is wanted: the header was checked before
        try:
            _, _, records = file_records(done.rel, done.path, scratch, self.loader.profiles, self.settings)
            return {r.line: r.raw for r in records if r.is_row and r.line in lines}
        except READ_ERRORS:
            return {}
