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
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import json
import os
import re
import tempfile
import zoneinfo
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

import attrs
import duckdb

from .atomic import write_bytes
from .errors import LedgerError
from .money import parse_yuan

Schema = dict[str, dict[str, str]]  # event type -> field name -> kind

KINDS = ("text", "money", "number", "bool", "time")
CORE = ("id", "ts", "type", "agent", "conversation", "buyer", "order")
RESERVED = ("seq", "ts_local", "src_file", "src_line")
EVENT_SUFFIXES = (".csv", ".jsonl")


@attrs.frozen
class Reject:
    file: str
    line: int
    reason: str
    raw: str


@attrs.frozen
class FileReport:
    path: str
    encoding: str
    sha256: str
    read: int
    accepted: int
    rejected: int
    duplicates: int


@attrs.frozen
class LoadResult:
    files: tuple[FileReport, ...]
    ignored: tuple[str, ...]
    rejects: tuple[Reject, ...]
    columns: tuple[str, ...]
    n_events: int
    duplicates_folded: int


# ---------------------------------------------------------------------------
# Value helpers (public: also used by the compiler and the oracle)

_TRUE = frozenset({"true", "1", "是", "yes"})
_FALSE = frozenset({"false", "0", "否", "no"})


def parse_bool(text) -> bool | None:
    """true/false, 1/0, 是/否, yes/no (any case, surrounding spaces ignored); else None."""
    if isinstance(text, bool):
        return text
    if text is None:
        return None
    s = str(text).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    return None


_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_UTC = timezone.utc


def parse_ts(text, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """Parse an event time; return (UTC, wall time in `tz`), both naive.

    Without an offset the text is wall time in `tz` (ambiguous times take fold=0);
    with an offset or Z it is converted. Raises ValueError for anything else.
    """
    m = _TS.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"unparseable time: {text!r}")
    y, mo, d, h, mi, s, frac, off = m.groups()
    micro = int(frac[:6].ljust(6, "0")) if frac else 0
    try:
        wall = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro)
        if off:
            utc = wall - _offset(off)
        else:
            steady = _steady_offset(tz, wall.year, wall.month, wall.day, wall.hour)
            if steady is not None:
                return wall - steady, wall
            utc = wall.replace(tzinfo=tz).astimezone(_UTC).replace(tzinfo=None)  # fold=0
        # From UTC back to wall time: a time in a DST gap comes out normalised.
        local = tz.fromutc(utc.replace(tzinfo=tz)).replace(tzinfo=None)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"unparseable time: {text!r}") from e
    return utc, local


@functools.lru_cache(maxsize=4096)
def _steady_offset(tz: zoneinfo.ZoneInfo, year: int, month: int, day: int, hour: int) -> timedelta | None:
    """The zone's UTC offset for this whole local hour, or None if it changes in it.

    A cache per hour: asking the zone for every row costs more than parsing the row.
    """
    start = datetime(year, month, day, hour)
    end = start + timedelta(minutes=59, seconds=59, microseconds=999999)
    offsets = {t.replace(tzinfo=tz, fold=fold).utcoffset() for t in (start, end) for fold in (0, 1)}
    return offsets.pop() if len(offsets) == 1 else None


@functools.lru_cache(maxsize=256)
def _offset(text: str) -> timedelta:
    """'Z', '+08:00', '-0500', '+08' as a UTC offset."""
    if text in ("Z", "z"):
        return timedelta(0)
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad offset {text!r}")
    delta = timedelta(hours=hours, minutes=minutes)
    return -delta if text[0] == "-" else delta


def format_local(dt: datetime) -> str:
    """Canonical text of a naive time: 'YYYY-MM-DD HH:MM:SS[.ffffff]'."""
    return dt.isoformat(sep=" ")


def plain_decimal(value: Decimal) -> str:
    """'12.50' → '12.5', '1E+3' → '1000', '-0' → '0': no exponent, no trailing zeros."""
    if not value.is_finite():
        raise ValueError("not finite")
    if value.is_zero():
        return "0"
    if value.adjusted() > 100 or value.as_tuple().exponent < -100:
        raise ValueError("out of range")  # keeps '1e999999999' from becoming a huge string
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _parse_number(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(text) from None
    return value


_FIELD_ERRORS = {
    "money": "不是金额 (money expected)",
    "number": "不是数字 (number expected)",
    "bool": "不是是/否 (yes/no expected)",
    "time": "不是时间 (time expected)",
}


def _normalise_field(kind: str, text: str, tz: zoneinfo.ZoneInfo) -> str:
    """Canonical text of a declared field; ValueError if it is not of that kind."""
    if kind == "money":
        return plain_decimal(parse_yuan(text))
    if kind == "number":
        return plain_decimal(_parse_number(text))
    if kind == "bool":
        flag = parse_bool(text)
        if flag is None:
            raise ValueError(text)
        return "true" if flag else "false"
    if kind == "time":
        return format_local(parse_ts(text, tz)[1])
    return text


# ---------------------------------------------------------------------------
# Files: discovery, encodings, records

class _Record(NamedTuple):
    """One row as read from a file: values, or an error; `is_row=False` for file notes.

    In `values`, "" and None both mean missing (an empty cell, a JSON null).
    """

    line: int
    raw: str
    values: dict[str, str | None] | None = None
    error: str | None = None
    is_row: bool = True


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
            else:
                ignored.append(rel)
    found.sort(key=lambda item: item[0])
    return found, sorted(ignored)


def _first_visit(folder: Path, seen: set[str]) -> bool:
    real = os.path.realpath(folder)
    if real in seen:
        return False
    seen.add(real)
    return True


def _display(name: str) -> str:
    # File names that are not valid UTF-8 (e.g. GBK names from a zip) still print.
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_ESCAPE = "ledger.escape"


def _escape_undecodable(exc: UnicodeError):
    """Decode error handler: keep bad bytes as lone surrogates U+DC00+byte.

    A strict decoder never yields lone surrogates, so a row containing one is known
    to hold undecodable bytes. One byte at a time, so a bad lead byte never swallows
    the comma or newline after it; UTF-16 must skip whole code units to stay aligned.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    end = exc.end if "16" in exc.encoding else exc.start + 1
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start:end]), end


codecs.register_error(_ESCAPE, _escape_undecodable)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def detect_encoding(data: bytes) -> tuple[str, int]:
    """(codec, BOM length) of a CSV file's bytes."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"),
                       (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return codec, len(bom)
    utf16 = _utf16_without_bom(data[:4096])
    if utf16:
        return utf16, 0
    return ("utf-8" if _mostly_utf8(data) else "gb18030"), 0


def _utf16_without_bom(sample: bytes) -> str | None:
    # ASCII (the header at least) in UTF-16 puts a NUL in every other byte.
    pairs = len(sample) // 2
    even, odd = sample[0:pairs * 2:2].count(0), sample[1:pairs * 2:2].count(0)
    if odd >= max(2, pairs // 10) and even * 4 < odd:
        return "utf-16-le"
    if even >= max(2, pairs // 10) and odd * 4 < even:
        return "utf-16-be"
    return None


def _mostly_utf8(data: bytes, sample_lines: int = 2000) -> bool:
    if _is_utf8(data):
        return True
    # GBK text is practically never valid UTF-8, so the majority of non-ASCII lines
    # tells a GBK export from a UTF-8 file with a few damaged lines.
    good = bad = 0
    start = 0
    while start < len(data) and good + bad < sample_lines:
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end]
        start = end + 1
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            bad += 1
    return good > bad


def _is_utf8(data: bytes) -> bool:
    return _decodes(data, 0, "utf-8")


def _decodes(data: bytes, start: int, codec: str, chunk: int = 1 << 20) -> bool:
    """Whether data[start:] decodes strictly, without building the whole text."""
    decoder = codecs.getincrementaldecoder(codec)()
    view = memoryview(data)
    try:
        for i in range(start, len(view), chunk):
            decoder.decode(view[i:i + chunk])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _clean_name(name: str) -> str:
    return name.strip().strip("\ufeff").strip()


def _blank(raw: str, delimiter: str) -> bool:
    # Whitespace and delimiters only: empty lines and Excel's trailing ",,,," rows.
    return not raw.strip(" \t\r\n" + delimiter)


def _strip_newline(text: str) -> str:
    return text.rstrip("\r\n")


def _csv_records(data: bytes, codec: str, bom: int, columns: "_Columns", rel: str) -> Iterator[_Record]:
    stream = io.BytesIO(data)
    stream.seek(bom)
    text = io.TextIOWrapper(stream, encoding=codec.removesuffix("-sig"), errors=_ESCAPE, newline="")
    start = text.tell()
    first = text.readline()
    text.seek(start)
    delimiter = "\t" if "\t" in first and "," not in first else ","
    # Only a file that does not decode cleanly needs every row checked for bad bytes.
    clean = _decodes(data, bom, codec)
    undecodable = None if clean else f"无法解码 (undecodable bytes) as {codec.removesuffix('-sig')}"
    records = _physical_records(text, delimiter, undecodable)
    header = next(records, None)
    if header is None:
        return
    line, _, raw, fields, problem = header
    names = [] if problem else [_clean_name(n) for n in fields]
    header_error = problem or _check_header(names, columns, rel)
    if header_error:
        yield _Record(line, raw, error=f"表头有误，整个文件跳过 (bad header, file skipped): {header_error}",
                      is_row=False)
        skipped = f"文件已跳过，表头有误，见第 {line} 行 (file skipped: bad header, see line {line})"
        for line, _, raw, _, _ in records:
            yield _Record(line, raw, error=skipped)
        return
    unnamed = [i for i, name in enumerate(names) if not name]
    for line, n_lines, raw, fields, problem in records:
        yield _Record(line, raw, error=problem) if problem else _csv_row(names, unnamed, fields, line, n_lines, raw)


def _physical_records(lines: Iterator[str], delimiter: str, undecodable: str | None):
    """(first line number, number of lines, raw text, fields, problem) of each non-blank record.

    csv.reader pulls physical lines one at a time and never reads ahead, so the
    lines taken since the last record are exactly this record's lines.
    """
    taken: list[str] = []

    def feed():
        for text in lines:
            taken.append(text)
            yield text

    # strict: a quote left open at the end of the file is an error, not a field that
    # silently swallowed every row after it.
    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    consumed = 0
    while True:
        problem = None
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            fields, problem = [], f"CSV 格式错误 (malformed CSV): {e}" + _spans_hint(len(taken))
        first, n_lines = consumed + 1, len(taken)
        consumed += n_lines
        raw = _strip_newline(taken[0] if n_lines == 1 else "".join(taken))
        taken.clear()
        if _blank(raw, delimiter):
            continue
        if "\x00" in raw:
            problem = "含有 NUL 字符 (NUL character)"
        if undecodable and _SURROGATE.search(raw):
            problem = undecodable
        yield first, n_lines, raw, fields, problem


def _check_header(names: list[str], columns: "_Columns", rel: str) -> str | None:
    """Reason the header is unusable, or None after registering its columns."""
    named = [n for n in names if n]
    dups = sorted({n for n in named if named.count(n) > 1})
    if dups:
        return "重复的列名 (duplicate column names): " + ", ".join(dups)
    folded: dict[str, str] = {}
    for name in named:
        other = folded.setdefault(_fold(name), name)
        if other != name:
            return f"列名 {name} 与 {other} 只差大小写 (column names differ only in case)"
    for name in named:
        problem = columns.problem(name)
        if problem:
            return problem
    columns.register(named, rel)
    return None


def _spans_hint(n_lines: int) -> str:
    if n_lines < 2:
        return ""
    return f"；记录跨 {n_lines} 行，引号未闭合？(record spans {n_lines} lines: unclosed quote?)"


def _csv_row(names: list[str], unnamed: list[int], fields: list[str], line: int, n_lines: int,
             raw: str) -> _Record:
    if len(fields) != len(names):
        reason = f"列数不对 (wrong column count): 期望 {len(names)} 列，实际 {len(fields)} 列"
        return _Record(line, raw, error=reason + _spans_hint(n_lines))
    for i in unnamed:
        if fields[i]:
            reason = f"第 {i + 1} 列没有列名却有值 (value in a column without a header): {fields[i]!r}"
            return _Record(line, raw, error=reason)
    values = dict(zip(names, fields))  # empty cells stay "": missing, like None
    if unnamed:
        del values[""]
    return _Record(line, raw, values)


class _Pairs(list):
    """A JSON object as its key/value pairs (so duplicate keys are seen, not lost)."""


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _jsonl_records(data: bytes, columns: "_Columns", rel: str) -> Iterator[_Record]:
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    start, line = bom, 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        chunk, start, line = data[start:end], end + 1, line + 1
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            yield _Record(line, _strip_newline(chunk.decode("utf-8", "replace")),
                          error="无法解码 (undecodable bytes) as utf-8")
            continue
        if not text.strip():
            continue
        yield _jsonl_row(_strip_newline(text), line, columns, rel)


_NESTED = "字段 {} 是嵌套的对象或数组 (nested object/array not allowed)"
_JSON = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_Pairs)


def _jsonl_row(raw: str, line: int, columns: "_Columns", rel: str) -> _Record:
    try:
        obj = _JSON.decode(raw)
    except (ValueError, RecursionError) as e:
        return _Record(line, raw, error=f"JSON 无法解析 (invalid JSON): {e}")
    if not isinstance(obj, _Pairs):
        return _Record(line, raw, error="不是 JSON 对象 (not a JSON object)")
    values = dict(obj)
    if len(values) != len(obj) or not values.keys() <= columns.known:
        return _jsonl_row_slow(obj, raw, line, columns, rel)  # new, unclean or repeated keys
    for name, value in values.items():
        if type(value) is not str:
            if isinstance(value, list):  # arrays and (as _Pairs) objects
                return _Record(line, raw, error=_NESTED.format(name))
            values[name] = _json_cell(value)
    # Only a \u escape can put a NUL or a lone surrogate into decoded JSON.
    problem = _escaped_char_problem(values) if "\\u" in raw else None
    return _Record(line, raw, error=problem) if problem else _Record(line, raw, values)


def _jsonl_row_slow(obj: "_Pairs", raw: str, line: int, columns: "_Columns", rel: str) -> _Record:
    values: dict[str, str | None] = {}
    for key, value in obj:
        name = _clean_name(key)
        problem = _json_key_problem(name, value, values, columns)
        if problem:
            return _Record(line, raw, error=problem)
        if name:
            values[name] = _json_cell(value)
    problem = _escaped_char_problem(values)
    if problem:
        return _Record(line, raw, error=problem)
    columns.register(list(values), rel)
    return _Record(line, raw, values)


def _escaped_char_problem(values: dict[str, str | None]) -> str | None:
    for name, value in values.items():
        for text in (name, value or ""):
            if "\x00" in text:
                return "含有 NUL 字符 (NUL character)"
            if _SURROGATE.search(text):
                return "含有无效的 Unicode 代理字符 (lone surrogate escape)"
    return None


def _json_key_problem(name: str, value, values: dict, columns: "_Columns") -> str | None:
    if isinstance(value, list):  # arrays and (as _Pairs) objects
        return _NESTED.format(name)
    if name in values:
        return f"重复的键 (duplicate key): {name}"
    if not name:
        return None if value in (None, "") else f"空键名却有值 (value under an empty key): {value!r}"
    return columns.problem(name)


def _json_cell(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, Decimal):
        try:
            return plain_decimal(value)
        except ValueError:
            return str(value)  # absurd exponents stay as written, e.g. '1E+999999'
    return str(value)


# ---------------------------------------------------------------------------
# Columns of the table

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(name: str) -> str:
    # DuckDB compares identifiers ignoring ASCII case only.
    return name.translate(_ASCII_LOWER)


class _Columns:
    """Column registry: position of every column in the temporary file."""

    FIXED = ("seq", "id", "ts", "ts_local", "src_file", "src_line")
    STORED_CORE = ("type", "agent", "conversation", "buyer", "order")

    def __init__(self):
        self.order: list[str] = []  # stored columns in temporary-file order
        self.index: dict[str, int] = {}  # name -> position in the temporary file
        self.known: set[str] = set(CORE)  # names accepted as they are: core and registered
        self._by_fold: dict[str, tuple[str, str]] = {}
        for name in self.FIXED + self.STORED_CORE:
            self._by_fold[_fold(name)] = (name, "")
        self._add(self.STORED_CORE)

    def problem(self, name: str) -> str | None:
        if name in RESERVED:
            return f"列名 {name} 是保留名 (reserved column name)"
        if name in CORE:
            return None
        known = self._by_fold.get(_fold(name))
        if known and known[0] != name:
            where = f"（见 {known[1]}）" if known[1] else ""
            return f"列名 {name} 与 {known[0]}{where} 只差大小写 (column names are case-sensitive)"
        return None

    def register(self, names: list[str], where: str) -> None:
        new = [n for n in dict.fromkeys(names) if n not in self.index and n not in CORE]
        for name in new:
            self._by_fold[_fold(name)] = (name, where)
        self._add(new)

    def _add(self, names) -> None:
        for name in names:
            self.index[name] = len(self.FIXED) + len(self.order)
            self.order.append(name)
            self.known.add(name)

    @property
    def extras(self) -> list[str]:
        return sorted(n for n in self.index if n not in CORE)


# ---------------------------------------------------------------------------
# Loading

class _Loader:
    def __init__(self, tz: zoneinfo.ZoneInfo, schema: Schema, out):
        self.tz = tz
        self.schema = schema
        self.columns = _Columns()
        self.rejects: list[Reject] = []
        self.seen = _FirstSeen()
        self.files: list[str] = []
        self.writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        self.n_events = 0

    def load_file(self, rel: str, path: Path) -> FileReport:
        try:
            data = path.read_bytes()
        except OSError as e:
            self.rejects.append(Reject(rel, 0, f"无法读取文件 (cannot read file): {e.strerror}", ""))
            return FileReport(rel, "", "", 0, 0, 0, 0)
        if path.suffix.lower() == ".jsonl":
            encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
            records = _jsonl_records(data, self.columns, rel)
        else:
            encoding, bom = detect_encoding(data)
            records = _csv_records(data, encoding, bom, self.columns, rel)
        counts = {"read": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
        self.files.append(rel)
        for record in records:
            self._take(rel, record, counts)
        return FileReport(rel, encoding, hashlib.sha256(data).hexdigest(), **counts)

    def _take(self, rel: str, record: _Record, counts: dict[str, int]) -> None:
        if not record.is_row:
            self.rejects.append(Reject(rel, record.line, record.error, _printable(record.raw)))
            return
        counts["read"] += 1
        outcome = record.error or self._accept(rel, record)
        if outcome == "folded":
            counts["accepted"] += 1
            counts["duplicates"] += 1
        elif outcome:
            counts["rejected"] += 1
            self.rejects.append(Reject(rel, record.line, outcome, _printable(record.raw)))
        else:
            counts["accepted"] += 1

    def _accept(self, rel: str, record: _Record) -> str | None:
        """Check, normalise and store one row. Returns a reject reason, "folded" or None."""
        values = record.values
        problems: list[str] = []
        times = self._times(values.get("ts"), problems)
        type_ = values.get("type")
        if not type_:
            problems.append("缺少 type (missing type)")
        else:
            self._normalise(values, self.schema.get(type_, {}), problems)
        if problems:
            return "；".join(problems)
        utc, local = times
        digest = hashlib.sha256(_canonical(type_, utc, values)).digest()
        event_id = values.get("id") or "h" + digest[:8].hex()
        mark = int.from_bytes(digest[8:16], "big")
        first = self.seen.get(event_id)
        if first is not None:
            first_mark, file_no, line = first
            if first_mark == mark:
                return "folded"
            return (f"重复 id 但内容不同 (duplicate id with different content), "
                    f"first seen at {self.files[file_no]}:{line}")
        self.seen.add(event_id, mark, len(self.files) - 1, record.line)
        self._write(event_id, utc, local, rel, record.line, values)
        return None

    def _times(self, text: str | None, problems: list[str]):
        if not text:
            problems.append("缺少 ts (missing ts)")
            return None
        try:
            return parse_ts(text, self.tz)
        except ValueError:
            problems.append(f"ts 无法解析 (unparseable ts): {text!r}")
            return None

    def _normalise(self, values: dict, declared: dict[str, str], problems: list[str]) -> None:
        for name, kind in declared.items():
            text = values.get(name)
            if not text or kind == "text" or name in ("id", "ts", "type"):
                continue
            try:
                values[name] = _normalise_field(kind, text, self.tz)
            except ValueError:
                problems.append(f"字段 {name} {_FIELD_ERRORS[kind]}: {text!r}")

    def _write(self, event_id: str, utc: datetime, local: datetime, rel: str, line: int, values: dict) -> None:
        cells = [self.n_events, event_id, utc.isoformat(" "), local.isoformat(" "), rel, line]
        cells += map(values.get, self.columns.order)  # "" and None are both read back as NULL
        self.writer.writerow(cells)
        self.n_events += 1


class _FirstSeen:
    """Event id -> (content mark, file number, line) of its first row.

    Packed into one int per id: a million ids stay around 150 MB instead of 250.
    """

    def __init__(self):
        self._packed: dict[str, int] = {}

    def get(self, event_id: str) -> tuple[int, int, int] | None:
        packed = self._packed.get(event_id)
        if packed is None:
            return None
        return packed >> 64, (packed >> 32) & 0xFFFFFFFF, packed & 0xFFFFFFFF

    def add(self, event_id: str, mark: int, file_no: int, line: int) -> None:
        self._packed[event_id] = mark << 64 | file_no << 32 | line


def _canonical(type_: str, utc: datetime, values: dict[str, str | None]) -> bytes:
    """The row's identity: type, UTC time ISO, then every other non-empty column as
    name, value in name order. NUL separates the parts: no accepted name or value
    contains one, so the encoding is unambiguous.
    """
    parts = [type_, utc.isoformat()]
    for name in sorted(values):
        value = values[name]
        if value and name not in ("id", "ts", "type"):
            parts += (name, value)
    return "\0".join(parts).encode()


def load_events(root: Path, con: duckdb.DuckDBPyConnection, *, tz: zoneinfo.ZoneInfo,
                schema: Schema) -> LoadResult:
    """Read every event file under `root` into table `events` of `con`."""
    root = Path(root)
    if not root.is_dir():
        raise LedgerError(f"找不到事件目录 (events folder not found): {root}", exit_code=2)
    _check_schema(schema)
    files, ignored = _discover(root)
    fd, tmp = tempfile.mkstemp(prefix="ledger-events-", suffix=".csv")
    try:
        with open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20) as out:
            loader = _Loader(tz, schema, out)
            reports = [loader.load_file(rel, path) for rel, path in files]
        _create_table(con, loader.columns, tmp if loader.n_events else None)
    finally:
        os.unlink(tmp)
    return LoadResult(
        files=tuple(reports),
        ignored=tuple(ignored),
        rejects=tuple(loader.rejects),
        columns=tuple(loader.columns.extras),
        n_events=loader.n_events,
        duplicates_folded=sum(r.duplicates for r in reports),
    )


def _check_schema(schema: Schema) -> None:
    for type_, fields in schema.items():
        for name, kind in fields.items():
            if kind not in KINDS:
                raise ValueError(f"schema: {type_}.{name} has unknown kind {kind!r}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _create_table(con: duckdb.DuckDBPyConnection, columns: _Columns, tmp: str | None) -> None:
    extras = columns.extras
    decl = ["seq BIGINT", "id VARCHAR", "ts TIMESTAMP", "ts_local TIMESTAMP", "type VARCHAR",
            "agent VARCHAR", "conversation VARCHAR", "buyer VARCHAR", '"order" VARCHAR',
            "src_file VARCHAR", "src_line INTEGER"] + [f"{_quote(n)} VARCHAR" for n in extras]
    con.execute(f"CREATE OR REPLACE TABLE events ({', '.join(decl)})")
    if tmp is None:
        return
    width = len(_Columns.FIXED) + len(columns.index)
    types = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width))
    col = {name: f"c{i}" for name, i in columns.index.items()}
    select = (["CAST(c0 AS BIGINT)", "c1", "CAST(c2 AS TIMESTAMP)", "CAST(c3 AS TIMESTAMP)"]
              + [col[n] for n in _Columns.STORED_CORE] + ["c4", "CAST(c5 AS INTEGER)"]
              + [col[n] for n in extras])
    # Rows written before a new column appeared are shorter: null_padding fills them,
    # and the parallel reader cannot combine that with quoted newlines.
    con.execute(
        f"INSERT INTO events SELECT {', '.join(select)} FROM read_csv({_sql_string(tmp)}, "
        f"header=false, auto_detect=false, delim=',', quote='\"', escape='\"', new_line='\\n', "
        f"allow_quoted_nulls=true, null_padding=true, parallel=false, strict_mode=true, max_line_size=268435456, "
        f"columns={{{types}}})"
    )


def write_rejects(path: Path, rejects: Sequence[Reject]) -> None:
    """Rejected rows as CSV (file,line,reason,raw), UTF-8 with BOM for Excel, atomically.

    A cell that Excel would run as a formula (starts with = + - @) gets a leading
    apostrophe, as OWASP recommends for CSV that people open in spreadsheets.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["file", "line", "reason", "raw"])
    for r in rejects:
        writer.writerow([_excel_safe(r.file), r.line, _excel_safe(r.reason), _excel_safe(_printable(r.raw))])
    write_bytes(Path(path), ("\ufeff" + out.getvalue()).encode("utf-8"))


def _excel_safe(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
