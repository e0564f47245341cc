"""One input file → (encoding, its `Record`s): CSV, JSONL, and sheets and tables of
platform exports (exports.py).

CSV: the codec from encodings.py, TAB-separated when the header has a TAB but no
comma; a header without `ts` and `type` (or a file an export profile names) goes
through exports.py. JSONL: UTF-8 (BOM tolerated), one object per line, no nested
values, duplicate keys rejected. New column names are registered in `Columns`.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator
from decimal import Decimal

from ledger.inputs import exports, transcripts
from ledger.inputs.contract import XLS_REASON, plain_decimal
from ledger.inputs.encodings import ESCAPE_ERRORS, SURROGATE, decodes, detect_encoding
from ledger.inputs.rows import (
    Columns,
    Record,
    check_header,
    clean_name,
    csv_row,
    physical_records,
    strip_newline,
)


def _csv_records(data: bytes, codec: str, bom: int, columns: "Columns", rel: str,
                 profiles=()) -> Iterator[Record]:
    stream = io.BytesIO(data)
    stream.seek(bom)
    text = io.TextIOWrapper(stream, encoding=codec.removesuffix("-sig"), errors=ESCAPE_ERRORS, newline="")
    start = text.tell()
    first = text.readline()
    text.seek(start)
    delimiter = "\t" if "\t" in first and "," not in first else ","
    # Only a file that does not decode cleanly needs every row checked for bad bytes.
    clean = decodes(data, bom, codec)
    undecodable = None if clean else f"无法解码 (undecodable bytes) as {codec.removesuffix('-sig')}"
    records = physical_records(text, delimiter, undecodable)
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


def _jsonl_records(data: bytes, columns: "Columns", rel: str) -> Iterator[Record]:
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    start, line = bom, 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        chunk, start, line = data[start:end], end + 1, line + 1
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


def file_records(rel: str, path, data: bytes, columns: "Columns", profiles,
                 xlsx_reader: str | None = None) -> tuple[str, Iterator[Record]]:
    """(encoding, records) of one input: JSONL, CSV, a workbook sheet (exports.py, read
    with `xlsx_reader`), a message-manager transcript (transcripts.py); a legacy .xls is
    one file note telling the user to save it as .xlsx."""
    suffix = path.suffix.lower()
    if isinstance(path, exports.Sheet):
        return "xlsx", exports.sheet_records(rel, data, path.sheet, columns, profiles, xlsx_reader)
    if suffix in exports.CONTAINER_SUFFIXES:  # a workbook or archive that could not be opened
        _, _, problems = exports.expand(rel, path, xlsx_reader)
        reason = problems[0][1] if problems else "无法读取文件 (cannot read file)"
        return suffix[1:], iter([Record(0, "", error=reason, is_row=False)])
    if suffix == ".xls":  # never read silently wrong or skipped: the user is told what to do
        return "xls", iter([Record(0, "", error=XLS_REASON, is_row=False)])
    if suffix == ".txt":  # a Wangwang / Qianniu message-manager export (transcripts.py)
        encoding, bom = detect_encoding(data)
        return encoding, transcripts.records(rel, data, encoding, bom, columns)
    if suffix == ".jsonl":
        return ("utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"), _jsonl_records(data, columns, rel)
    encoding, bom = detect_encoding(data)
    return encoding, _csv_records(data, encoding, bom, columns, rel, profiles)
