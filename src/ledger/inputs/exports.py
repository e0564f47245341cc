"""Platform exports as event input: the rows of workbook sheets, and tables whose columns
an export profile (profiles.py) maps to canonical events.

Everything here feeds the Python reader with the same `Record`s (rows.py) a
canonical CSV gives, so checking, normalising, rejects and duplicate folding are the
reader's own. The set-based CSV reader never sees these files: it takes only real
`.csv` files whose header has `ts` and `type`.

* `.xlsx`: every sheet is its own input (`file.xlsx#工作表`, containers.py); a sheet with
  no rows reads 0 rows. The header is the first of the first 10 non-empty rows that has
  `ts` and `type` or that a profile recognises (exports put titles above it), else the
  first row; rows above it are titles, not events. Row numbers are Excel's. Cells are read
  as text by workbooks.py.
* `.zip`: every member with a known suffix (csv, jsonl, xlsx) is an input
  (`file.zip/member`, containers.py); others are listed as ignored.
* A table (CSV or sheet) with neither `ts` nor `type` in its header goes through the
  profile named for the file or matched by its header; with none, the whole table is
  rejected at its header with the headers found and the profiles tried.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import datetime

from ledger.inputs import profiles as profiles_mod
from ledger.inputs.contract import CORE
from ledger.inputs.rows import Record, check_header, clean_name, csv_row
from ledger.inputs.workbooks import sheet_rows


def _raw(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def sheet_records(rel: str, data: bytes, sheet: str, columns, profiles, reader: str | None = None):
    """The `Record`s of a sheet: first non-empty row is the header. A sheet whose XML cannot
    be read (a damaged part, a forbidden character) gives one reject, after its good rows."""
    failed: list[str] = []
    rows = _guarded(sheet_rows(data, sheet, reader), failed)
    head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
    if head:
        # Exports often put a title or a date line above the header: the header is the first
        # of the first rows that is canonical or that a profile recognises, else the first row.
        at = next((i for i, (_, cells, _) in enumerate(head) if _looks_like_header(rel, cells, profiles)), 0)
        header_line, header, _ = head[at]
        names = [clean_name(n) for n in header]
        rest = itertools.chain(head[at + 1:], rows)
        body = ((line, 1, _raw(cells), cells + [""] * (len(names) - len(cells)), problem)
                for line, cells, problem in rest)
        yield from table_records(rel, header_line, _raw(header), names, body, columns, profiles)
    if failed:
        yield Record(0, "", error=f"无法读取工作表 (cannot read sheet): {failed[0]}", is_row=False)


def _guarded(rows, failed: list[str]):
    """`rows` until the reader fails; the failure is put in `failed`."""
    try:
        yield from rows
    except Exception as e:  # noqa: BLE001 - any reader error of a damaged workbook is one reject
        failed.append(f"{type(e).__name__}: {e}"[:300])


HEADER_SEARCH_ROWS = 10


def _looks_like_header(rel: str, cells: list[str], profiles) -> bool:
    names = [clean_name(c) for c in cells]
    return ("ts" in names and "type" in names) or profiles_mod.choose(list(profiles or []), rel, names) is not None


def table_records(rel: str, header_line: int, header_raw: str, names: list[str], body, columns, profiles):
    """Records of a table given its header; the canonical path is a CSV file's own (rows.py)."""
    canonical = "ts" in names or "type" in names
    profile = profiles_mod.choose(profiles or [], rel, names)
    if canonical and (profile is None or not profile.named(rel)):
        header_error = check_header(names, columns, rel)
        if header_error:
            yield from _skip_all(rel, header_line, header_raw, header_error, body)
            return
        unnamed = [i for i, name in enumerate(names) if not name]
        for line, n_lines, raw, fields, problem in body:
            yield Record(line, raw, error=problem) if problem else csv_row(names, unnamed, fields, line, n_lines, raw)
        return
    if profile is None:
        yield from _skip_all(rel, header_line, header_raw, profiles_mod.unknown_layout(profiles or [], names), body)
        return
    yield from _mapped(rel, header_line, header_raw, names, body, columns, profile)


def _skip_all(rel, header_line, header_raw, reason, body):
    yield Record(header_line, header_raw, error=f"表头有误，整个文件跳过 (bad header, file skipped): {reason}",
                 is_row=False)
    skipped = f"文件已跳过，表头有误，见第 {header_line} 行 (file skipped: bad header, see line {header_line})"
    for line, _, raw, _, _ in body:
        yield Record(line, raw, error=skipped)


def _mapped(rel, header_line, header_raw, names, body, columns, profile):
    names = profiles_mod.dedupe_header(names)
    produced = {f for e in profile.events for f, _ in e.fields} - set(CORE)
    if profile.session_key:
        produced |= {SESSION_KEY, SESSION_GAP}
    produced = sorted(produced)
    for name in produced:
        problem = columns.problem(name)
        if problem:
            yield from _skip_all(rel, header_line, header_raw, f"导出格式 {profile.name}: {problem}", body)
            return
    columns.register(produced, rel)
    pending = []  # (line, raw, source row, canonical values | None, error | None)
    for line, n_lines, raw, fields, problem in body:
        if problem:
            pending.append((line, raw, None, None, problem))
            continue
        if len(fields) > len(names) and any(fields[len(names):]):
            pending.append((line, raw, None, None,
                            f"列数不对 (wrong column count): 期望 {len(names)} 列，实际 {len(fields)} 列"))
            continue
        row = profiles_mod.with_aliases(dict(zip(names, map(_export_cell, fields))))
        events = profile.rows(row)
        if not events:
            pending.append((line, raw, row, None, f"导出格式 {profile.name}: 这一行没有产生事件 (row gives no event)"))
        for values in events:
            for name in ("ts", "updated"):  # times as exports write them, made canonical
                when = parse_export_time(values.get(name))
                if when is not None:
                    values[name] = canonical_time(when)
            key = (row.get(profile.session_key) or "").strip() if profile.session_key else ""
            if key and not values.get("conversation"):
                values[SESSION_KEY] = key
                values[SESSION_GAP] = str(int(profile.session_gap.total_seconds()))
            pending.append((line, raw, row, values, None))
    for line, raw, _, values, error in pending:
        yield Record(line, raw, error=error) if error else Record(line, raw, values)


_EXCEL_TEXT = re.compile(r'^="(.*)"$', re.S)


def _export_cell(text: str) -> str:
    """A cell as the platform meant it: Taobao writes long numbers as ="3700000000037417969"
    or with a trailing TAB so that Excel keeps every digit; both are taken off."""
    text = text.strip(" \t")
    m = _EXCEL_TEXT.match(text)
    return m.group(1).replace('""', '"') if m else text


_LOOSE_TS = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?")


def parse_export_time(text: str | None) -> datetime | None:
    """A local time without offset in the forms exports use; None for anything else
    (which the reader then checks, and rejects if it must)."""
    m = _LOOSE_TS.fullmatch((text or "").strip())
    if not m:
        return None
    y, mo, d, h, mi, sec, frac = m.groups()
    try:
        return datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0),
                        int((frac or "0").ljust(6, "0")))
    except ValueError:
        return None


def canonical_time(when: datetime) -> str:
    """The text an event file holds for a wall time: 'YYYY-MM-DD HH:MM:SS[.ffffff]'."""
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{when.microsecond:06d}" if when.microsecond else "")


SESSION_KEY = "session_key"  # rows to cut into conversations: the key (e.g. 客户名) ...
SESSION_GAP = "session_gap"  # ... and the idle gap in seconds


def cut_sessions(con) -> None:
    """Give rows the export left without a conversation one: per session key, in time
    order (ties: input order), a new conversation after an idle gap longer than the
    row's gap; id `key@first local time`. Rows without agent (the buyer's) then get the
    agent holding the conversation at the time: the last agent before them, else the first
    after (a transfer hands the buyer's next turns to the new agent). Runs on the whole `events` table after loading and folding
    duplicates, so overlapping downloads cut the same way as one download."""
    columns = {r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE events)").fetchall()}
    if SESSION_KEY not in columns:
        return
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ledger_sessions AS
        WITH s AS (
            SELECT seq, {SESSION_KEY} AS k, ts_local, CAST({SESSION_GAP} AS BIGINT) AS gap,
                   lag(ts_local) OVER (PARTITION BY {SESSION_KEY} ORDER BY ts_local, seq) AS prev
            FROM events WHERE conversation IS NULL AND {SESSION_KEY} IS NOT NULL),
        c AS (
            SELECT *, sum(CASE WHEN prev IS NULL OR epoch(ts_local) - epoch(prev) > gap THEN 1 ELSE 0 END)
                      OVER (PARTITION BY k ORDER BY ts_local, seq ROWS UNBOUNDED PRECEDING) AS n
            FROM s),
        d AS (
            SELECT seq, k, first_value(ts_local) OVER (PARTITION BY k, n ORDER BY ts_local, seq) AS start FROM c)
        SELECT seq, k || '@' || strftime(start, '%Y%m%d%H%M%S') AS conv FROM d""")
    try:
        con.execute("UPDATE events SET conversation = s.conv FROM ledger_sessions s WHERE events.seq = s.seq")
        con.execute("""
            UPDATE events SET agent = f.holder FROM (
                SELECT seq, coalesce(
                    last_value(agent IGNORE NULLS) OVER (
                        PARTITION BY conversation ORDER BY ts_local, seq
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
                    first_value(agent IGNORE NULLS) OVER (
                        PARTITION BY conversation ORDER BY ts_local, seq
                        ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)) AS holder
                FROM events WHERE conversation IN (SELECT DISTINCT conv FROM ledger_sessions)) f
            WHERE events.seq = f.seq AND events.agent IS NULL AND f.holder IS NOT NULL""")
    finally:
        con.execute("DROP TABLE IF EXISTS ledger_sessions")
