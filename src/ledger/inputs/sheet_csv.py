"""A workbook sheet as CSV text, set-based: the fast path for big `.xlsx` exports.

`sheet_copy(source, settings, force)` streams a sheet's worksheet XML out of its workbook
(zlib runs in C) and writes its rows to a temporary UTF-8 CSV file, one physical line per
Excel row: line n of the copy is row n of the sheet (rows the sheet lacks, and rows with no
text, are empty lines). The set-based CSV reader (sql_reader) then reads the copy, so a
sheet's rows are checked, rejected and folded exactly as a CSV file's, with the sheet's row
numbers. A row's cells are what the row-by-row reader (workbooks.sheet_rows) gives: trailing
empty cells dropped, then padded to the header's width; the reject text of a row is the copy's
line without its trailing commas (sql_reader strips them for a plan of encoding "xlsx").

Chunks in the form big exports write (every cell an inline string without a cell reference,
rows numbered one after the other) are turned into CSV by bytes operations over the whole
chunk; any other chunk cell by cell with regular expressions (cell references, gaps, shared
strings `t="s"`, `inlineStr`, `str`, numbers, booleans). No XML objects are made.

`NotVouched` is raised inside, and `sheet_copy` gives None, for anything the transform
cannot vouch for; the sheet is then read by workbooks.py as before. That is: a workbook or
part that cannot be opened or read, a sheet in more than one part or not UTF-8, rich text,
formulas, error or date cells, a number in a date (or any non-General) style, a number of
15 digits or more (workbooks.py rejects its row), a cell with a line break, a CR, a NUL or
another control character, a BOM or an `_xHHHH_` escape, `&` other than the five XML
entities and numeric references, rows out of order or far apart, a row of blank text
(the CSV reader would skip it), a header without `ts` and `type`, a line over the
reader's line limit, a row whose XML runs over 4 chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing as mp
import os
import re
import tempfile
import zipfile
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import attrs

from ledger.inputs import workbooks
from ledger.inputs.containers import READ_ERRORS, InputProblem, Sheet, read_limited
from ledger.inputs.rows import clean_name
from ledger.inputs.settings import ReaderSettings

CHUNK = 1 << 20  # bytes of XML turned into CSV at a time
PARALLEL_MIN = 32 << 20  # a worksheet part this big is turned by two processes (settings.cores > 1)
MAX_GAP = 100_000  # rows missing between two rows: a sparse sheet is read by workbooks.py
_DATA_OPEN = re.compile(rb"<sheetData\s*(/?)>")
_ODD = re.compile(rb"[\x00-\x08\x0b-\x1f]|\xef\xbb\xbf|_x[0-9A-Fa-f]{4}_")
_ESCAPE = re.compile(rb"_x[0-9A-Fa-f]{4}_")
_TEXT = bytes(b for b in range(256) if b >= 0x20 and b not in b',"&')  # deleted to see what else is left
_ENTITY = re.compile(rb"&(?:#([0-9]{1,7})|#x([0-9A-Fa-f]{1,6})|(lt|gt|amp|quot|apos));")
_NAMED = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"', b"apos": "'"}
# the export form
_CELL_OPEN = b'<c t="inlineStr"><is><t>'
_CELL_NEXT = b'</t></is></c>' + _CELL_OPEN
_ROW_END = b"</t></is></c></row>"
_BULK_ROW = re.compile(rb'\x1e<row r="([0-9]{1,7})">' + re.escape(_CELL_OPEN))
# every other form
_ROW = re.compile(rb"<row\b([^>]*?)(?:/>|>(.*?)</row>)", re.S)
_CELL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_ATTR = re.compile(rb'\s+([\w:]+)\s*=\s*"([^"]*)"')
_INNER = re.compile(rb'\s*(?:<v>([^<]*)</v>|<v/>|<is>\s*<t(\s+xml:space="preserve")?(?:>([^<]*)</t>|/>)\s*</is>)?\s*')
_REF = re.compile(rb"([A-Z]{1,3})([0-9]{1,7})")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_GENERAL_FORMATS = {0, 1, 2, 3, 4, 49}  # General, 0, 0.00, #,##0, #,##0.00, @: never a date
_XF = re.compile(rb"<xf\b[^>]*?>")
_NUMFMT = re.compile(rb'numFmtId="([0-9]+)"')
_SI = re.compile(rb"<si>(.*?)</si>|<si/>", re.S)
_SI_TEXT = re.compile(rb'\s*<t(\s+xml:space="preserve")?(?:>([^<]*)</t>|/>)\s*')
_ONE_SEPARATOR = bytes.maketrans(b"\x1e", b"\x1f")  # to look for white space next to either separator
_TO_CSV = bytes.maketrans(b"\x1e\x1f", b"\n,")


STATS = {"bulk": 0, "cells": 0, "worker": 0}  # pieces turned each way, and by the second process (tests count)


class NotVouched(Exception):
    """Something in the sheet the transform cannot vouch for: workbooks.py reads it."""


class Copy(NamedTuple):
    """A sheet's CSV copy: the caller deletes the file."""

    path: str
    sha256: str  # of the workbook
    lines: int  # lines of the copy (each ends with a line feed): the sheet's last row number


class Sheets:
    """The CSV copies of one run's sheets (`sheets`: every Sheet input, in file order).

    A big sheet followed by a big sheet of the same workbook (an export over several sheets)
    is turned in this process while a forked worker turns the next one whole, the workbook
    read there again: nothing goes between the processes but the copy's name. (Sharing the
    pieces of one sheet costs about as much in sending them as in turning them; that is kept
    for a big sheet alone.) `close` stops the worker and deletes copies not taken."""

    def __init__(self, sheets: list, settings: ReaderSettings, force: bool):
        self.sheets = sheets
        self.at = {id(s): i for i, s in enumerate(sheets)}
        self.settings = settings
        self.force = force
        self.books: dict = {}  # the last workbook read and its hash (see `sheet_copy`)
        self.pool: ProcessPoolExecutor | None = None
        self.ahead: dict[int, Future] = {}  # id of a Sheet -> its copy being made by the worker

    def copy(self, source: Sheet) -> Copy | None:
        """`sheet_copy` of the sheet (see there)."""
        future = self.ahead.pop(id(source), None)
        if future is not None:
            try:
                return future.result()
            except Exception:  # noqa: BLE001 - the worker lost (killed, ...): the sheet is turned here
                pass
        settings = self.settings
        following = self._following(source)
        if following is not None:
            if self.pool is None:
                self.pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"))
            settings = attrs.evolve(settings, cores=1)  # each process turns its own sheet
            self.ahead[id(following)] = self.pool.submit(sheet_copy, following, settings, self.force)
        return sheet_copy(source, settings, self.force, self.books)

    def close(self) -> None:
        futures, self.ahead = list(self.ahead.values()), {}
        for future in futures:
            future.cancel()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
        for future in futures:
            if not future.cancelled() and future.exception() is None and future.result() is not None:
                with contextlib.suppress(OSError):
                    os.unlink(future.result().path)
        self.books.clear()

    def _following(self, source: Sheet) -> Sheet | None:
        """The next sheet, when it and `source` are big sheets of one workbook."""
        at = self.at.get(id(source))
        if (at is None or at + 1 >= len(self.sheets) or self.settings.cores < 2
                or "fork" not in mp.get_all_start_methods() or not workbooks.use_calamine(self.settings.xlsx_reader)):
            return None
        following = self.sheets[at + 1]
        if _book_key(following) != _book_key(source):
            return None
        try:
            zf = zipfile.ZipFile(io.BytesIO(_book(source, self.settings, self.books)[0]))
            for sheet in (source, following):
                parts = workbooks.sheet_parts(zf, sheet.sheet)
                if len(parts) != 1 or zf.getinfo(parts[0]).file_size < PARALLEL_MIN:
                    return None
        except (InputProblem, KeyError, ValueError, *READ_ERRORS):
            return None
        return following


def _book_key(source: Sheet):
    # (a zip member is equal to a member of the same name and size in another archive)
    return source.book if isinstance(source.book, Path) else (id(source.book.archive), source.book.member)


def _book(source: Sheet, settings: ReaderSettings, books: dict | None) -> tuple[bytes, str]:
    """The workbook's bytes and sha256, from `books` when it is the last one read."""
    key = _book_key(source)
    if books is not None and key in books:
        return books[key]
    data = read_limited(source.book, settings.max_workbook_bytes)
    found = data, hashlib.sha256(data).hexdigest()
    if books is not None:
        books.clear()  # sheets of a workbook come one after the other: keep the last one only
        books[key] = found
    return found


def sheet_copy(source: Sheet, settings: ReaderSettings, force: bool = False,
               books: dict | None = None) -> Copy | None:
    """The CSV copy of a sheet, or None when the sheet is better read row by row (small:
    under `settings.sql_min_bytes` of XML unless `force`) or cannot be vouched for.
    `books` (the caller's, one run): the last workbook read and its hash, so a workbook of
    several sheets is read and hashed once."""
    if not workbooks.use_calamine(settings.xlsx_reader):
        return None  # the text is calamine's (openpyxl keeps white space calamine drops)
    try:
        data, digest = _book(source, settings, books)
        zf = zipfile.ZipFile(io.BytesIO(data))
        parts = workbooks.sheet_parts(zf, source.sheet)
        if len(parts) != 1:
            return None
        info = zf.getinfo(parts[0])
        if info.file_size > settings.member_limit(info.compress_size):
            return None
        if not force and info.file_size < settings.sql_min_bytes:
            return None
        parallel = settings.cores > 1 and info.file_size >= PARALLEL_MIN and "fork" in mp.get_all_start_methods()
        fd, tmp = tempfile.mkstemp(prefix="ledger-sheet-", suffix=".csv")
        try:
            transform = _Transform(zf, settings.max_line_chars)
            with open(fd, "wb", buffering=1 << 20) as out:
                if parallel:  # fork, as outputs/agents.py: nothing is pickled but the pieces
                    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork")) as pool:
                        transform.run(parts[0], out, pool)
                else:
                    transform.run(parts[0], out)
        except BaseException:
            os.unlink(tmp)
            raise
    except (NotVouched, InputProblem, KeyError, ValueError, *READ_ERRORS):
        return None
    return Copy(tmp, digest, transform.next_row - 1)  # line n is row n


class _Transform:
    """One worksheet part into CSV lines (see the module docstring)."""

    def __init__(self, zf: zipfile.ZipFile, max_line_chars: int):
        self.zf = zf
        self.limit = max_line_chars
        self.next_row = 1  # the Excel row number of the next line written
        self.width: int | None = None  # the header's cells (trailing empty ones dropped)
        self.extent = [0, 0, 0]  # farthest row and column referenced, cells: as workbooks.dense counts
        self._strings: list | None = None
        self._formats: list[int] | None = None

    def run(self, part: str, out, pool: Executor | None = None) -> None:
        """Write the part's CSV lines to `out`. With a `pool` (one process), two of three
        pieces in the export form are turned there while this process turns the third."""
        pending: deque = deque()  # (piece, what _bulk made of it, or its Future), in order
        for k, piece in enumerate(self._pieces(part)):
            if pool is None or self.width is None or _CELL_OPEN not in piece:
                while pending:
                    out.write(self._next(pending))
                out.write(self.chunk(piece))
                continue
            # this process also inflates every piece: the worker takes two pieces of three
            pending.append((piece, pool.submit(_bulk, piece, self.width) if k % 3 else _bulk(piece, self.width)))
            while len(pending) > 4:
                out.write(self._next(pending))
        while pending:
            out.write(self._next(pending))
        if self.width is None:
            raise NotVouched("no header")
        max_row, max_col, cells = self.extent
        area = max_row * max(max_col, 1 if cells else 0)
        if area > min(4 * cells + workbooks.DENSE_SLACK, workbooks.DENSE_MAX_AREA):
            raise NotVouched("sparse: workbooks.py reads it with openpyxl")

    def _next(self, pending: deque) -> bytes:
        piece, done = pending.popleft()
        if isinstance(done, Future):
            done = done.result()
            STATS["worker"] += done is not None
        return self.place(piece, done)

    def _pieces(self, part: str):
        """The XML of the sheet's rows in pieces of whole rows: one row at a time up to the
        header (the cell by cell path reads it), then about CHUNK bytes."""
        carry, started = b"", False
        with self.zf.open(part) as fh:
            while True:
                chunk = fh.read(CHUNK)
                buf = carry + chunk
                if not started:
                    m = _DATA_OPEN.search(buf)
                    if m is None:
                        if not chunk:
                            raise NotVouched("no sheetData")
                        carry = buf[-64:]
                        continue
                    _check_declaration(buf[:m.start()])
                    if m.group(1):  # <sheetData/>: no rows
                        raise NotVouched("empty sheet")
                    started, buf = True, buf[m.end():]
                end = buf.find(b"</sheetData>")
                if end >= 0:
                    yield buf[:end]
                    return
                if not chunk:
                    raise NotVouched("sheetData not closed")
                while self.width is None:  # (the header is read before the next piece is cut)
                    cut = buf.find(b"<row", buf.find(b"<row") + 4)
                    if cut <= 0:
                        break
                    yield buf[:cut]
                    buf = buf[cut:]
                cut = buf.rfind(b"<row")
                if cut <= 0:
                    if len(buf) > 4 * CHUNK:
                        raise NotVouched("row over 4 chunks")
                    carry = buf
                    continue
                yield buf[:cut]
                carry = buf[cut:]

    def chunk(self, xml: bytes) -> bytes:
        """The CSV lines of a piece of rows, cell by cell unless in the export form."""
        done = _bulk(xml, self.width) if self.width is not None and _CELL_OPEN in xml else None
        return self.place(xml, done)

    def place(self, xml: bytes, done: tuple | None) -> bytes:
        """The lines of `xml` given what `_bulk` made of it (None: it could not)."""
        if done is not None:
            first, n_rows, n_cells, text = done
            if self.next_row <= first <= self.next_row + MAX_GAP:
                STATS["bulk"] += 1
                self.extent[0] = max(self.extent[0], first + n_rows - 1)
                self.extent[2] += n_cells
                lead = b"\n" * (first - self.next_row)
                self.next_row = first + n_rows
                return self._bounded(lead + text)
        STATS["cells"] += 1
        if _ODD.search(xml):
            raise NotVouched("control character, BOM or _xHHHH_ escape")
        return self._bounded(self._cells(xml))

    def _bounded(self, text: bytes) -> bytes:
        if len(text) > self.limit and max(map(len, text.split(b"\n"))) > self.limit:
            raise NotVouched("line over the limit")
        return text

    # -- every other form: cell by cell ----------------------------------------

    def _cells(self, xml: bytes) -> bytes:
        lines: list[str] = []
        for m in _elements(_ROW, xml, "rows"):
            attrs = _attrs(m.group(1))
            number = int(attrs[b"r"]) if b"r" in attrs else self.next_row
            if b"r" in attrs:
                self.extent[0] = max(self.extent[0], number)
            if number < self.next_row or number - self.next_row > MAX_GAP:
                raise NotVouched("rows out of order or far apart")
            lines.extend([""] * (number - self.next_row))
            self.next_row = number + 1
            lines.append(self._line(self._row_cells(m.group(2) or b"", number)))
        return "".join(line + "\n" for line in lines).encode("utf-8")

    def _row_cells(self, xml: bytes, number: int) -> list[str]:
        cells: list[str] = []
        for m in _elements(_CELL, xml, "cells"):
            attrs = _attrs(m.group(1))
            column = len(cells)
            self.extent[2] += 1
            if b"r" in attrs:
                ref = _REF.fullmatch(attrs[b"r"])
                if ref is None or int(ref.group(2)) != number:
                    raise NotVouched("cell reference")
                column = workbooks.column_number(ref.group(1)) - 1
                self.extent[0] = max(self.extent[0], number)
                self.extent[1] = max(self.extent[1], column + 1)
                if column < len(cells):
                    raise NotVouched("cells out of order")
            cells.extend([""] * (column - len(cells)))
            cells.append(self._value(attrs, m.group(2) or b""))
        return cells

    def _value(self, attrs: dict, inner: bytes) -> str:
        m = _INNER.fullmatch(inner)
        if m is None:
            raise NotVouched("cell content")  # a formula, rich text, ...
        v, preserve, t = m.groups()
        kind = attrs.get(b"t", b"n")
        if kind == b"inlineStr":
            if v is not None:
                raise NotVouched("inline string with a value")
            return _text(t or b"", bool(preserve))
        if t is not None:
            raise NotVouched("inline text in a cell that is not an inline string")
        if v is None or v == b"":
            return ""
        if kind == b"s":
            strings = self.strings()
            index = int(v) if v.strip().isdigit() else -1
            if not 0 <= index < len(strings) or strings[index] is None:
                raise NotVouched("shared string")
            return strings[index]
        if kind == b"str":
            return _text(v, False)
        if kind == b"b" and v in (b"0", b"1"):
            return "true" if v == b"1" else "false"
        if kind == b"n":
            return self._number(v.decode("ascii", "replace").strip(), attrs.get(b"s"))
        raise NotVouched("cell type")

    def _number(self, text: str, style: bytes | None) -> str:
        if style is not None:
            formats = self.formats()
            index = int(style) if style.isdigit() else -1
            if not 0 <= index < len(formats) or formats[index] not in _GENERAL_FORMATS:
                raise NotVouched("number in a date or other style")
        if not _NUMBER.fullmatch(text):
            raise NotVouched("number")
        value = int(text) if text.lstrip("-").isdigit() else float(text)
        if abs(value) >= workbooks.EXCEL_DIGITS_LIMIT:
            raise NotVouched("number of 15 digits or more")
        return workbooks.cell_text(float(value))

    def _line(self, cells: list[str]) -> str:
        """A row's CSV line: trailing empty cells dropped, the header's width padded."""
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            return ""
        if "\n" in "".join(cells) or "\r" in "".join(cells):
            raise NotVouched("line break in a cell")
        if not "".join(cells).strip(" \t"):
            raise NotVouched("a row of blank text")
        if self.width is None:
            names = [clean_name(c) for c in cells]
            if "ts" not in names or "type" not in names:
                raise NotVouched("header without ts and type")
            self.width = len(cells)
        elif len(cells) < self.width:
            cells = cells + [""] * (self.width - len(cells))
        return ",".join('"' + c.replace('"', '""') + '"' if ("," in c or '"' in c) else c for c in cells)

    # -- the workbook's tables ------------------------------------------------

    def strings(self) -> list:
        """The shared strings (None for one this transform does not read: rich text)."""
        if self._strings is None:
            try:
                xml = self.zf.read("xl/sharedStrings.xml")
            except KeyError:
                xml = b""
            if _ODD.search(xml):
                raise NotVouched("shared strings")
            found = []
            for m in _SI.finditer(xml):
                body = _SI_TEXT.fullmatch(m.group(1) or b"<t/>")
                found.append(None if body is None else _text(body.group(2) or b"", bool(body.group(1))))
            self._strings = found
        return self._strings

    def formats(self) -> list[int]:
        """The number format of each cell style (cellXfs)."""
        if self._formats is None:
            try:
                xml = self.zf.read("xl/styles.xml")
            except KeyError:
                xml = b""
            start, end = xml.find(b"<cellXfs"), xml.find(b"</cellXfs>")
            found = []
            if start >= 0 and end > start:
                for m in _XF.finditer(xml, start, end):
                    n = _NUMFMT.search(m.group(0))
                    found.append(int(n.group(1)) if n else 0)
            self._formats = found
        return self._formats


def _elements(pattern, xml: bytes, what: str):
    """The matches of `pattern` (rows, or a row's cells) in `xml`, with nothing but white space
    between or after them."""
    at = 0
    for m in pattern.finditer(xml):
        if xml[at:m.start()].strip():
            raise NotVouched(f"unexpected text between {what}")
        at = m.end()
        yield m
    if xml[at:].strip():
        raise NotVouched(f"unexpected text after the {what}")


def _bulk(xml: bytes, width: int) -> tuple[int, int, int, bytes] | None:
    """(first row, rows, cells, CSV lines) of a piece of rows in the export form, every row
    `width` cells (the header's); None for anything else (the cell by cell path decides).
    Bytes operations over the whole piece: no object per row or cell, but for the few rows
    with a comma or a quote, which are quoted row by row."""
    if b"\x1e" in xml or b"\x1f" in xml:
        return None  # (xml:space="preserve" is a tag of another form: left as `<` below)
    x = b"\x1e" + xml.replace(_CELL_NEXT, b"\x1f").replace(_ROW_END, b"\x1e")
    numbers = _BULK_ROW.findall(x)  # each row start right after the end of the row before
    if not numbers or not x.endswith(b"\x1e"):
        return None
    first = int(numbers[0])
    if numbers != [b"%d" % n for n in range(first, first + len(numbers))]:
        return None
    x = _BULK_ROW.sub(b"\x1e", x)
    if b"<" in x:
        return None  # a tag of another form, or a row start after something else than a row's end
    # What is left of the piece besides text: separators, control characters, `,"&`. In the
    # export form exactly `width` cells a row, and no control character (no line break).
    marks = x.translate(None, _TEXT)
    expected = b"\x1e" + (b"\x1f" * (width - 1) + b"\x1e") * len(numbers)
    if marks != expected and marks.translate(None, b',"&') != expected:
        return None
    if (b"\xbb\xbf" in x and b"\xef\xbb\xbf" in x) or (b"_x" in x and _ESCAPE.search(x)):
        return None
    one = x.translate(_ONE_SEPARATOR)
    if b" \x1f" in one or b"\x1f " in one:
        return None  # a BOM, an escape, white space at either end of a text (calamine drops it)
    if b"&" in marks:
        if sum(x.count(b"&" + name + b";") for name in _NAMED) != x.count(b"&"):
            return None  # a numeric reference
        for name, char in _NAMED.items():
            if name != b"amp":
                x = x.replace(b"&" + name + b";", char.encode())
        x = x.replace(b"&amp;", b"&")
    if b"," in x or b'"' in x:
        x = _quote_rows(x)
    return first, len(numbers), len(numbers) * width, x[1:].translate(_TO_CSV)


def _quote_rows(x: bytes) -> bytes:
    """The rows of `x` (each after a \\x1e) that hold a comma or a quote, quoted as CSV."""
    spans = set()
    for mark in (b",", b'"'):
        at = x.find(mark)
        while at >= 0:
            start, end = x.rfind(b"\x1e", 0, at), x.find(b"\x1e", at)
            spans.add((start, end))
            at = x.find(mark, end)
    pieces, at = [], 0
    for start, end in sorted(spans):
        cells = x[start + 1:end].split(b"\x1f")
        pieces += [x[at:start + 1], b"\x1f".join(
            b'"' + c.replace(b'"', b'""') + b'"' if b"," in c or b'"' in c else c for c in cells)]
        at = end
    pieces.append(x[at:])
    return b"".join(pieces)


def _attrs(xml: bytes) -> dict[bytes, bytes]:
    found = dict(_ATTR.findall(xml))
    if _ATTR.sub(b"", xml).strip():
        raise NotVouched("attributes")
    return found


def _text(xml: bytes, preserve: bool) -> str:
    """XML text as calamine gives it: entities unescaped, a BOM at either end dropped (as
    workbooks.cell_text does), and white space at either end too unless the element says
    xml:space="preserve"."""
    if b"&" in xml:
        if xml.count(b"&") != len(_ENTITY.findall(xml)):
            raise NotVouched("entity")
        text = _ENTITY.sub(_entity, xml).decode("utf-8")
    else:
        text = xml.decode("utf-8")
    return (text if preserve else text.strip(" \t\r\n")).strip("\ufeff")


def _entity(m: re.Match) -> bytes:
    if m.group(3):
        return _NAMED[m.group(3)].encode()
    code = int(m.group(1)) if m.group(1) else int(m.group(2), 16)
    if code < 0x20 and code not in (0x09,) or 0xD800 <= code < 0xE000 or code > 0x10FFFF or code == 0xFEFF:
        raise NotVouched("character reference")
    return chr(code).encode("utf-8")


def _check_declaration(head: bytes) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NotVouched("UTF-16")
    m = re.search(rb'encoding\s*=\s*["\']([^"\']+)', head[:200])
    if m and m.group(1).lower() not in (b"utf-8", b"utf8"):
        raise NotVouched("not UTF-8")
