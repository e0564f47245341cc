"""Reading `.xlsx` workbooks: sheet names, and each sheet's rows as cell texts.

The reader is python-calamine (≈12× faster than openpyxl read-only, BENCHMARKS.md) when
installed and chosen (settings.py: LEDGER_XLSX_READER); otherwise openpyxl read-only, with
the same text. Cells become text: numbers without a fraction as integers, dates and times
as `YYYY-MM-DD HH:MM:SS`, booleans true/false.

Only the cells a sheet holds are read (issue 13): calamine allocates the rectangle from A1
to the farthest cell, so one stray cell at XFD1048576 would ask for 17 billion cells. Before
calamine reads a sheet, its XML is scanned (streamed) for the farthest cell and the number
of cells; a sparse sheet (the rectangle far larger than the cells) or a huge one is read by
openpyxl instead, streaming rows, ignoring the declared dimension (`reset_dimensions`) and
padding no row past its own last cell. A worksheet part that expands past the zip limits
(a bomb inside the workbook) makes the workbook unreadable (`WorkbookTooBig`).

A big sheet is usually not read here at all: sheet_csv.py turns it into a CSV copy for the
set-based reader, with exactly the text calamine gives, and sends here what it cannot vouch for.
"""

from __future__ import annotations

import io
import math
import posixpath
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from xml.etree import ElementTree

try:
    from python_calamine import CalamineWorkbook
except ImportError:  # pragma: no cover - depends on the environment
    CalamineWorkbook = None

# calamine reads a sheet when its rectangle holds at most this many cells beyond 4 per cell
# present, and at most DENSE_MAX_AREA in all (about 30 bytes a cell); else openpyxl streams it.
DENSE_SLACK = 1 << 16
DENSE_MAX_AREA = 32 << 20
_SCAN_CHUNK = 1 << 20
_CELL_REF = re.compile(rb"<(?:\w+:)?c\b[^>]*?\sr=\"([A-Z]{1,3})([0-9]{1,7})\"")
_ROW_REF = re.compile(rb"<(?:\w+:)?row\b[^>]*?\sr=\"([0-9]{1,7})\"")
_CELL = re.compile(rb"<(?:\w+:)?c[\s/>]")


class WorkbookTooBig(RuntimeError):
    """A part of the workbook expands past the limits."""


def sheet_names(data: bytes, reader: str | None = None, member_limit=None) -> list[str]:
    """The workbook's sheet names; `member_limit(compressed size)` bounds its parts' sizes."""
    if member_limit is not None:
        check_parts(data, member_limit)
    if use_calamine(reader):
        return list(CalamineWorkbook.from_filelike(io.BytesIO(data)).sheet_names)
    wb = _openpyxl_workbook(data)
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def check_parts(data: bytes, member_limit) -> None:
    """WorkbookTooBig when a part of the workbook (a zip) expands past `member_limit(compressed)`."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.file_size > member_limit(info.compress_size):
                raise WorkbookTooBig(f"工作簿里的 {info.filename} 解压后 {info.file_size:,} 字节，超过上限，"
                                     f"疑似压缩炸弹，未读取 (a part of the workbook expands past the limit)")


def use_calamine(reader: str | None) -> bool:
    return (reader or "calamine") == "calamine" and CalamineWorkbook is not None


def _openpyxl_workbook(data: bytes):
    # Imported here, not with the module: openpyxl is only the fallback reader, and importing
    # it costs every run about 0.17 s.
    import openpyxl

    return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)


def sheet_rows(data: bytes, sheet: str, reader: str | None = None) -> Iterator[tuple[int, list[str], str | None]]:
    """(Excel row number, cell texts, problem or None) of every non-empty row of a sheet:
    python-calamine unless `reader` is "openpyxl" (or calamine is not installed, or the
    sheet is sparse or huge: `dense`)."""
    if use_calamine(reader) and dense(data, sheet):
        rows_iter, close = _calamine_rows(data, sheet), None
    else:
        wb = _openpyxl_workbook(data)
        ws = wb[sheet]
        ws.reset_dimensions()  # the declared dimension can lie (A1:XFD1048576): never pad to it
        rows_iter, close = ws.iter_rows(values_only=True), wb.close
    try:
        for number, row in enumerate(rows_iter, 1):
            if not row:  # openpyxl gives () for each row missing between two rows
                continue
            cells = [cell_text(v) for v in row]
            while cells and not cells[-1]:
                cells.pop()
            if any(cells):
                yield number, cells, _cells_problem(row, cells)
    finally:
        if close:
            close()


def _calamine_rows(data: bytes, sheet: str):
    """Rows from row 1, cells from column A (calamine's rows start at the first used column)."""
    found = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name(sheet)
    end = found.end
    width = end[1] + 1 if end else 0
    for row in found.iter_rows():
        yield [None] * (width - len(row)) + list(row) if len(row) < width else row


def dense(data: bytes, sheet: str) -> bool:
    """Whether calamine may read `sheet`: the rectangle from A1 to its farthest cell is not far
    larger than its cells (the sheet's XML scanned, streamed; the declared dimension ignored)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            parts = sheet_parts(zf, sheet)
            max_row = max_col = cells = 0
            for part in parts:
                r, c, n = _extent(zf, part)
                max_row, max_col, cells = max(max_row, r), max(max_col, c), cells + n
    except (zipfile.BadZipFile, KeyError, OSError, ElementTree.ParseError, ValueError):
        return True  # calamine reports what is wrong with the workbook
    area = max_row * max_col
    return area <= min(4 * cells + DENSE_SLACK, DENSE_MAX_AREA)


def _extent(zf: zipfile.ZipFile, part: str) -> tuple[int, int, int]:
    """(farthest row, farthest column, number of cells) of a worksheet part."""
    max_row = max_col = cells = 0
    carry = b""
    with zf.open(part) as fh:
        while True:
            chunk = fh.read(_SCAN_CHUNK)
            buffer = carry + chunk
            cut = buffer.rfind(b"<") if chunk else len(buffer)
            if cut <= 0 and chunk:
                carry = buffer
                continue
            text, carry = buffer[:cut], buffer[cut:]
            cells += len(_CELL.findall(text))
            for m in _ROW_REF.finditer(text):
                max_row = max(max_row, int(m.group(1)))
            for m in _CELL_REF.finditer(text):
                max_row = max(max_row, int(m.group(2)))
                max_col = max(max_col, column_number(m.group(1)))
            if not chunk:
                break
    return max_row, max(max_col, 1 if cells else 0), cells


def column_number(letters: bytes) -> int:
    n = 0
    for b in letters:
        n = n * 26 + b - 64
    return n


_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def sheet_parts(zf: zipfile.ZipFile, sheet: str) -> list[str]:
    """The worksheet part of `sheet` (workbook.xml and its relationships); every worksheet
    part when they do not say."""
    every = [n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
    try:
        book = ElementTree.fromstring(zf.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except KeyError:
        return every
    target = {r.get("Id"): r.get("Target") for r in rels}
    for node in book.iter():
        if node.tag.endswith("}sheet") and node.get("name") == sheet:
            where = target.get(node.get(_NS_REL))
            if where:
                part = where.lstrip("/") if where.startswith("/") else posixpath.normpath(posixpath.join("xl", where))
                if part in zf.namelist():
                    return [part]
    return every


# Excel keeps 15 significant digits of a number: a numeric cell at or above 1e15 (an order
# or ID number stored as a number) has already lost digits, or loses them in a reader that
# reads numbers as floats. Such a cell rejects its row; an identifier never becomes a float.
EXCEL_DIGITS_LIMIT = 10**15


def _cells_problem(row, cells: list[str]) -> str | None:
    for i, value in enumerate(row):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= EXCEL_DIGITS_LIMIT:
            return (f"第 {_column_letter(i)} 列是超过 15 位的数字单元格，号码可能已被 Excel 改动；请把该列设为文本再导出 "
                    f"(numeric cell beyond Excel's 15-digit precision): {cells[i]}")
    if any("\x00" in c for c in cells):
        return "含有 NUL 字符 (NUL character)"
    return None


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_text(value) -> str:
    """A cell's value as the text an event file would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        if not math.isfinite(value):
            return repr(value)
        text = format(Decimal(repr(value)), "f")  # never an exponent: 1e-05 → 0.00001
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text + (f".{value.microsecond:06d}" if value.microsecond else "")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d 00:00:00")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, timedelta):
        return str(value)
    return str(value).strip("\ufeff") if isinstance(value, str) else str(value)
