"""Rows as read from a table, before they are checked: shared by every kind of input.

A `Record` is one row (its values, or the reason it cannot be read) with its line and
raw text. `physical_records` splits CSV text into records the way the csv module does
(strictly), telling the lines each record took; `check_header` vets a header and
registers its names in the `Columns` registry (the table's column set: reserved names,
names differing only in case); `csv_row` makes a record of a CSV or sheet row.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

from ledger.inputs.contract import ALWAYS_STORED, CORE, MORE_COLUMNS, RESERVED
from ledger.inputs.encodings import SURROGATE


class Record(NamedTuple):
    """One row as read from a file: values, or an error; `is_row=False` for file notes.

    In `values`, "" and None both mean missing (an empty cell, a JSON null).
    """

    line: int
    raw: str
    values: dict[str, str | None] | None = None
    error: str | None = None
    is_row: bool = True


def clean_name(name: str) -> str:
    return name.strip().strip("\ufeff").strip()


def is_blank(raw: str, delimiter: str) -> bool:
    # Whitespace and delimiters only: empty lines and Excel's trailing ",,,," rows.
    return not raw.strip(" \t\r\n" + delimiter)


def strip_newline(text: str) -> str:
    return text.rstrip("\r\n")


class LongLine(str):
    """A physical line over the reader's limit, cut short (see `bounded_lines`)."""


LONG_LINE = "行过长，整条记录跳过 (line over {:,} characters: record skipped)"


def bounded_lines(text, limit: int, csv_quotes: bool = True) -> Iterator[str]:
    """The physical lines of a text stream, none held longer than `limit` characters.

    A longer line is read on in pieces and dropped; in its place comes a `LongLine`: its
    first characters (`csv_quotes`: without quotes, then `,"` if the whole line had an odd
    number of quotes, so that the csv module ends or continues the record just as the whole
    line would have).
    """
    while True:
        line = text.readline(limit)
        if not line:
            return
        if len(line) < limit or line.endswith(("\n", "\r")):
            yield line
            continue
        quotes = line.count('"')
        while True:  # the rest of the line, in pieces, counting its quotes
            piece = text.readline(limit)
            quotes += piece.count('"')
            if not piece or len(piece) < limit or piece.endswith(("\n", "\r")):
                break
        if csv_quotes:
            yield LongLine(line[:2000].replace('"', "") + (',"' if quotes % 2 else "") + "\n")
        else:
            yield LongLine(line[:2000] + "\n")


def physical_records(lines: Iterator[str], delimiter: str, undecodable: str | None, limit: int = 0):
    """(first line number, number of lines, raw text, fields, problem) of each non-blank record.

    csv.reader pulls physical lines one at a time and never reads ahead, so the
    lines taken since the last record are exactly this record's lines. A record with a
    line over `limit` characters (a `LongLine` of `bounded_lines`) is rejected.
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
            too_long = "field larger than field limit" in str(e)
            if too_long:
                _finish_quoted_field(lines, taken)
            hint = f"；字段过长，整条记录（{len(taken)} 行）跳过 (record of {len(taken)} lines)" if too_long else _spans_hint(len(taken))
            fields, problem = [], f"CSV 格式错误 (malformed CSV): {e}" + hint
        first, n_lines = consumed + 1, len(taken)
        consumed += n_lines
        raw = strip_newline(taken[0] if n_lines == 1 else "".join(taken))
        long = limit and any(type(t) is LongLine for t in taken)
        taken.clear()
        if long:
            problem = LONG_LINE.format(limit)
        elif is_blank(raw, delimiter):
            continue
        elif "\x00" in raw:
            problem = "含有 NUL 字符 (NUL character)"
        if undecodable and SURROGATE.search(raw):
            problem = undecodable
        yield first, n_lines, raw, fields, problem


def _finish_quoted_field(lines: Iterator[str], taken: list[str]) -> None:
    """After the csv module gave up on an over-long field: if the record is inside a quoted
    field (an odd number of quotes so far; doubled quotes count two), take the lines up to
    the one that closes it, so that the lines inside the field are never read as rows."""
    quotes = sum(text.count('"') for text in taken)
    if quotes % 2 == 0:
        return
    kept = sum(map(len, taken))
    for text in lines:
        kept += len(text)
        taken.append(text if kept <= _KEPT_IN_FIELD else "")  # past that, only the line count is kept
        quotes += text.count('"')
        if quotes % 2 == 0:
            return


_KEPT_IN_FIELD = 1 << 20  # characters of an over-long field kept while its record is skipped


def check_header(names: list[str], columns: "Columns", rel: str) -> str | None:
    """Reason the header is unusable, or None after registering its columns."""
    named = [n for n in names if n]
    dups = sorted(n for n, count in Counter(named).items() if count > 1)
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


def csv_row(names: list[str], unnamed: list[int], fields: list[str], line: int, n_lines: int,
            raw: str) -> Record:
    if len(fields) != len(names):
        reason = f"列数不对 (wrong column count): 期望 {len(names)} 列，实际 {len(fields)} 列"
        return Record(line, raw, error=reason + _spans_hint(n_lines))
    for i in unnamed:
        if fields[i]:
            reason = f"第 {i + 1} 列没有列名却有值 (value in a column without a header): {fields[i]!r}"
            return Record(line, raw, error=reason)
    values = dict(zip(names, fields))  # empty cells stay "": missing, like None
    if unnamed:
        del values[""]
    return Record(line, raw, values)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(name: str) -> str:
    # DuckDB compares identifiers ignoring ASCII case only.
    return name.translate(_ASCII_LOWER)


class Columns:
    """Column registry: position of every column in the temporary file.

    With a `limit`, at most that many extra columns (besides the core ones, the names in
    `stored` — the fields the policy declares — and contract.ALWAYS_STORED) become columns
    of their own; the names registered after that are `overflow`: their values are kept
    together as one JSON object in the column `_more_columns`. A folder with thousands of
    column names (one new key on every JSONL row, a CSV of 10,000 columns) then costs
    linear time and memory instead of rows × columns.
    """

    FIXED = ("seq", "id", "ts", "ts_local", "src_file", "src_line")
    STORED_CORE = ("type", "agent", "conversation", "buyer", "order")

    def __init__(self, limit: int | None = None, stored=()):
        self.order: list[str] = []  # stored columns in temporary-file order
        self.index: dict[str, int] = {}  # name -> position in the temporary file
        self.known: set[str] = set(CORE)  # names accepted as they are: core and registered
        self.limit = limit
        self.always = set(ALWAYS_STORED) | set(stored)
        self.overflow: set[str] = set()  # names whose values go to MORE_COLUMNS
        self._counted = 0  # extra columns that count against the limit
        self._by_fold: dict[str, tuple[str, str]] = {}
        for name in self.FIXED + self.STORED_CORE:
            self._by_fold[_fold(name)] = (name, "")
        self._add(self.STORED_CORE)

    def would_overflow(self, names) -> bool:
        """Whether registering `names` would put some of them past the limit."""
        if self.limit is None:
            return False
        new = {n for n in names if n and n not in self.known and n not in self.always}
        return self._counted + len(new) > self.limit

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
        new = [n for n in dict.fromkeys(names) if n not in self.known]
        own = []
        for name in new:
            self._by_fold[_fold(name)] = (name, where)
            if name in self.always:
                own.append(name)
            elif self.limit is None or self._counted < self.limit:
                own.append(name)
                self._counted += 1
            else:
                self.overflow.add(name)
                self.known.add(name)
        if self.overflow and MORE_COLUMNS not in self.index:
            own.append(MORE_COLUMNS)
        self._add(own)

    def more(self, values: dict) -> str | None:
        """The JSON object of a row's values under overflow names (None when it has none)."""
        found = {k: v for k, v in values.items() if v and k in self.overflow}
        return json.dumps(found, ensure_ascii=False, sort_keys=True) if found else None

    def _add(self, names) -> None:
        for name in names:
            self.index[name] = len(self.FIXED) + len(self.order)
            self.order.append(name)
            self.known.add(name)

    @property
    def extras(self) -> list[str]:
        return sorted(n for n in self.index if n not in CORE)
