"""The event contract (docs/events.md): what an event row is and what it becomes.

The core columns, the field kinds and the reserved names; the records every reader
gives back (`Reject`, `FileReport`, `LoadResult`); the value rules (`parse_ts`,
`parse_bool`, `plain_decimal`, `format_local`); and `check_row`, which checks and
normalises one row's values and gives its identity. Both readers and the SQL that
mirrors them (sql_plan.py) follow this module; it imports nothing from the readers.

Choices the contract leaves open (for docs/decisions.md):
- Every `*.csv` and `*.jsonl` file (suffix in any case) under the events folder, at any
  depth, hidden ones excepted, is read in code-point order of its path (events.py).
  A row that cannot be read is rejected with its file, line and a reason, never lost.
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
  rejected. Names `seq`, `ts_local`, `src_file`, `src_line`, `_more_columns` are reserved.
- Declared money/number values are stored as plain decimals without trailing zeros
  ("12.50" → "12.5", "1e3" → "1000") so that derived ids do not depend on formatting.
- Fractional seconds beyond microseconds are truncated.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zoneinfo
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import attrs

from ledger.core.entries import normalise_account
from ledger.core.money import parse_yuan

Schema = dict[str, dict[str, str]]  # event type -> field name -> kind

KINDS = ("text", "money", "number", "bool", "time")
CORE = ("id", "ts", "type", "agent", "conversation", "buyer", "order")
MORE_COLUMNS = "_more_columns"  # the extra columns past the limit, as one JSON object (rows.Columns)
RESERVED = ("seq", "ts_local", "src_file", "src_line", MORE_COLUMNS)
# Extra columns always stored as columns of their own, whatever the limit: the reader's
# own (message kinds, conversations cut from exports) and those superseding reads (status, updated).
ALWAYS_STORED = ("sender", "kind", "text", "session_key", "session_gap", "status", "updated")
EVENT_SUFFIXES = (".csv", ".jsonl", ".xlsx", ".zip", ".txt", ".xls")  # xlsx, zip: exports.py; txt: transcripts.py
XLS_REASON = ("旧版 Excel 文件 (.xls) 无法读取：请在 Excel 或 WPS 里另存为 .xlsx 后放回 events/ "
              "(legacy .xls workbooks cannot be read: save as .xlsx)")


RAW_KEPT = 2000  # characters of a rejected row's text kept (rejected-rows.csv, memory)


def cap_raw(raw: str) -> str:
    """A rejected row's text, cut to RAW_KEPT characters with a note of how much was left off."""
    if len(raw) <= RAW_KEPT:
        return raw
    return raw[:RAW_KEPT] + f"…（另有 {len(raw) - RAW_KEPT} 个字符未保留 / {len(raw) - RAW_KEPT} more characters not kept）"


@attrs.frozen
class Reject:
    file: str
    line: int
    reason: str
    raw: str = attrs.field(converter=cap_raw)


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
    warnings: tuple[str, ...] = ()  # for the run's summary (e.g. versions superseded: dedup.py)


# ---------------------------------------------------------------------------
# Value helpers

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
            steady = steady_offset(tz, wall.year, wall.month, wall.day, wall.hour)
            if steady is not None:
                return wall - steady, wall
            utc = wall.replace(tzinfo=tz).astimezone(_UTC).replace(tzinfo=None)  # fold=0
        # From UTC back to wall time: a time in a DST gap comes out normalised.
        local = tz.fromutc(utc.replace(tzinfo=tz)).replace(tzinfo=None)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"unparseable time: {text!r}") from e
    return utc, local


@functools.lru_cache(maxsize=4096)
def steady_offset(tz: zoneinfo.ZoneInfo, year: int, month: int, day: int, hour: int) -> timedelta | None:
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


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?", re.ASCII)
# The SQL types the rules compute in (evaluate/compile.py): money DECIMAL(18,4), number
# DECIMAL(38,10). A value that would overflow its cast is rejected by row.
MONEY_LIMIT = Decimal(10) ** 14
NUMBER_LIMIT = Decimal(10) ** 28


def _parse_number(text: str) -> Decimal:
    """ASCII digits only ('٣' and '1_000' are not numbers); an exponent is allowed."""
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError(text)
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(text) from None


class _Unusable(ValueError):
    """A value of the right kind that cannot be used: its message is the reason."""


def _in_range(value: Decimal, limit: Decimal, what: str, scale: Decimal) -> Decimal:
    """`value` if it fits its SQL type once rounded to the type's scale; else _Unusable."""
    if abs(value) >= limit or abs(value.quantize(scale, ROUND_HALF_UP)) >= limit:
        raise _Unusable(f"{what}超出范围 (out of range, must be below {limit:.0E})")
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
        value = _in_range(parse_yuan(text), MONEY_LIMIT, "金额", Decimal("1E-4"))
        if value < 0:
            raise _Unusable("金额不能为负 (negative amount)")
        return plain_decimal(value)
    if kind == "number":
        return plain_decimal(_in_range(_parse_number(text), NUMBER_LIMIT, "数字", Decimal("1E-10")))
    if kind == "bool":
        flag = parse_bool(text)
        if flag is None:
            raise ValueError(text)
        return "true" if flag else "false"
    if kind == "time":
        return format_local(parse_ts(text, tz)[1])
    return text


# ---------------------------------------------------------------------------
# Rows: checked, normalised, identified

def check_row(values: dict, tz: zoneinfo.ZoneInfo, schema: Schema):
    """Check and normalise one row's values in place.

    Returns (reject reason, None) or (None, (sha256 digest of the canonical content, UTC, local)).
    """
    problems: list[str] = []
    times = _times(values.get("ts"), tz, problems)
    type_ = values.get("type")
    if not type_:
        problems.append("缺少 type (missing type)")
    else:
        _normalise(values, schema.get(type_, {}), tz, problems)
    if values.get("agent"):
        values["agent"] = normalise_account(values["agent"]) or None
    if problems:
        return "；".join(problems), None
    utc, local = times
    return None, (hashlib.sha256(canonical_content(type_, utc, values)).digest(), utc, local)


def _times(text: str | None, tz: zoneinfo.ZoneInfo, problems: list[str]):
    if not text:
        problems.append("缺少 ts (missing ts)")
        return None
    try:
        return parse_ts(text, tz)
    except ValueError:
        problems.append(f"ts 无法解析 (unparseable ts): {text!r}")
        return None


def _normalise(values: dict, declared: dict[str, str], tz: zoneinfo.ZoneInfo, problems: list[str]) -> None:
    for name, kind in declared.items():
        text = values.get(name)
        if not text or kind == "text" or name in ("id", "ts", "type"):
            continue
        try:
            values[name] = _normalise_field(kind, text, tz)
        except ValueError as e:
            detail = str(e) if isinstance(e, _Unusable) else _FIELD_ERRORS[kind]
            problems.append(f"字段 {name} {detail}: {text!r}")


def canonical_content(type_: str, utc: datetime, values: dict[str, str | None]) -> bytes:
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


def check_schema(schema: Schema) -> None:
    for type_, fields in schema.items():
        for name, kind in fields.items():
            if kind not in KINDS:
                raise ValueError(f"schema: {type_}.{name} has unknown kind {kind!r}")
