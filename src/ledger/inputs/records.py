"""One input → (encoding, sha256, its `Record`s), streamed: CSV, JSONL, and sheets and
tables of platform exports (exports.py). No file is held whole (a workbook excepted, up to
its limit: containers.py); a physical line over the limit (settings.py) is rejected, not
held (rows.bounded_lines).

CSV: the codec from encodings.py, TAB-separated when the header has a TAB but no
comma; a header without `ts` and `type` (or a file an export profile names) goes
through exports.py. JSONL: UTF-8 (BOM tolerated), one object per line, no nested
values, duplicate keys rejected. New column names are registered in `Columns`.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Iterator
from decimal import Decimal

from ledger.inputs import exports, transcripts
from ledger.inputs.containers import Sheet, Unreadable, open_binary, read_limited
from ledger.inputs.contract import XLS_REASON, plain_decimal
from ledger.inputs.encodings import ESCAPE_ERRORS, SURROGATE, Sniffed, sniff
from ledger.inputs.rows import (
    LONG_LINE,
    Columns,
    Record,
    bounded_lines,
    check_header,
    clean_name,
    csv_row,
    physical_records,
    strip_newline,
)
from ledger.inputs.settings import ReaderSettings


def _csv_records(source, sniffed: Sniffed, columns: "Columns", rel: str, profiles, limit: int) -> Iterator[Record]:
    codec = sniffed.codec.removesuffix("-sig")
    with open_binary(source) as stream:
        stream.read(sniffed.bom)
        text = io.TextIOWrapper(stream, encoding=codec, errors=ESCAPE_ERRORS, newline="")
        lines = bounded_lines(text, limit)
        first = next(lines, "")
        delimiter = "\t" if "\t" in first and "," not in first else ","
        # Only a file that does not decode cleanly needs every row checked for bad bytes.
        undecodable = None if sniffed.clean else f"无法解码 (undecodable bytes) as {codec}"
        records = physical_records(itertools.chain([first], lines), delimiter, undecodable, limit)
        yield from _table(records, columns, rel, profiles)


def _table(records, columns: "Columns", rel: str, profiles) -> Iterator[Record]:
    header = next(records, None)
    if header is None:
        return
    line, _, raw, fields, problem = header
    names = [] if problem else [clean_name(n) for n in fields]
    if not problem and (("ts" not in names and "type" not in names) or any(p.named(rel) for p in profiles)):
        # a platform export: an export profile maps it, or the layout is unknown (exports.py)
        yield from exports.table_records(rel, line, raw, names, records, columns, profiles)
        return
    header_error = problem or check_header(names, columns, rel)
    if header_error:
        yield Record(line, raw, error=f"表头有误，整个文件跳过 (bad header, file skipped): {header_error}",
                     is_row=False)
        skipped = f"文件已跳过，表头有误，见第 {line} 行 (file skipped: bad header, see line {line})"
        for line, _, raw, _, _ in records:
            yield Record(line, raw, error=skipped)
        return
    unnamed = [i for i, name in enumerate(names) if not name]
    for line, n_lines, raw, fields, problem in records:
        yield Record(line, raw, error=problem) if problem else csv_row(names, unnamed, fields, line, n_lines, raw)


class _Pairs(list):
    """A JSON object as its key/value pairs (so duplicate keys are seen, not lost)."""


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _jsonl_records(source, bom: int, columns: "Columns", rel: str, limit: int) -> Iterator[Record]:
    with open_binary(source) as stream:
        stream.read(bom)
        line = 0
        while chunk := stream.readline(limit):
            line += 1
            if len(chunk) >= limit and not chunk.endswith(b"\n"):  # over the limit: the rest is skipped
                while (piece := stream.readline(limit)) and not piece.endswith(b"\n"):
                    pass
                yield Record(line, chunk[:2000].decode("utf-8", "replace"), error=LONG_LINE.format(limit))
                continue
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError:
                yield Record(line, strip_newline(chunk.decode("utf-8", "replace")),
                             error="无法解码 (undecodable bytes) as utf-8")
                continue
            if not text.strip():
                continue
            yield jsonl_row(strip_newline(text), line, columns, rel)


_NESTED = "字段 {} 是嵌套的对象或数组 (nested object/array not allowed)"
_JSON = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_Pairs)


def jsonl_row(raw: str, line: int, columns: "Columns", rel: str) -> Record:
    try:
        obj = _JSON.decode(raw)
    except (ValueError, RecursionError) as e:
        return Record(line, raw, error=f"JSON 无法解析 (invalid JSON): {e}")
    if not isinstance(obj, _Pairs):
        return Record(line, raw, error="不是 JSON 对象 (not a JSON object)")
    values = dict(obj)
    if len(values) != len(obj) or not values.keys() <= columns.known:
        return _jsonl_row_slow(obj, raw, line, columns, rel)  # new, unclean or repeated keys
    for name, value in values.items():
        if type(value) is not str:
            if isinstance(value, list):  # arrays and (as _Pairs) objects
                return Record(line, raw, error=_NESTED.format(name))
            values[name] = _json_cell(value)
    # Only a \u escape can put a NUL or a lone surrogate into decoded JSON.
    problem = _escaped_char_problem(values) if "\\u" in raw else None
    return Record(line, raw, error=problem) if problem else Record(line, raw, values)


def _jsonl_row_slow(obj: "_Pairs", raw: str, line: int, columns: "Columns", rel: str) -> Record:
    values: dict[str, str | None] = {}
    for key, value in obj:
        name = clean_name(key)
        problem = _json_key_problem(name, value, values, columns)
        if problem:
            return Record(line, raw, error=problem)
        if name:
            values[name] = _json_cell(value)
    problem = _escaped_char_problem(values)
    if problem:
        return Record(line, raw, error=problem)
    columns.register(list(values), rel)
    return Record(line, raw, values)


def _escaped_char_problem(values: dict[str, str | None]) -> str | None:
    for name, value in values.items():
        for text in (name, value or ""):
            if "\x00" in text:
                return "含有 NUL 字符 (NUL character)"
            if SURROGATE.search(text):
                return "含有无效的 Unicode 代理字符 (lone surrogate escape)"
    return None


def _json_key_problem(name: str, value, values: dict, columns: "Columns") -> str | None:
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


def file_records(rel: str, source, columns: "Columns", profiles,
                 settings: ReaderSettings) -> tuple[str, str, Iterator[Record]]:
    """(encoding, sha256, records) of one input, streamed: JSONL, CSV, a workbook sheet
    (exports.py, workbooks.py), a message-manager transcript (transcripts.py); a legacy .xls
    or an input that is not read (containers.Unreadable) is one file note with the reason.

    The file is first read once to hash it and find its encoding (a damaged zip member
    fails then, before any row is taken: containers.READ_ERRORS), then again row by row."""
    if isinstance(source, Unreadable):
        return "", "", iter([Record(0, "", error=source.reason, is_row=False)])
    if isinstance(source, Sheet):
        data = read_limited(source.book, settings.max_workbook_bytes)
        return ("xlsx", hashlib.sha256(data).hexdigest(),
                exports.sheet_records(rel, data, source.sheet, columns, profiles, settings.xlsx_reader))
    suffix = source.suffix.lower()
    if suffix == ".xls":  # never read silently wrong or skipped: the user is told what to do
        return "xls", "", iter([Record(0, "", error=XLS_REASON, is_row=False)])
    with open_binary(source) as stream:
        sniffed = sniff(stream)
    limit = settings.max_line_chars
    if suffix == ".txt":  # a Wangwang / Qianniu message-manager export (transcripts.py)
        return sniffed.codec, sniffed.sha256, transcripts.records(rel, source, sniffed, columns, limit)
    if suffix == ".jsonl":
        bom = sniffed.bom if sniffed.codec == "utf-8-sig" else 0
        return ("utf-8-sig" if bom else "utf-8"), sniffed.sha256, _jsonl_records(source, bom, columns, rel, limit)
    return sniffed.codec, sniffed.sha256, _csv_records(source, sniffed, columns, rel, profiles, limit)
