"""SpreadsheetML, written directly: the Excel statement (台账) HR imports into payroll.

The writer: prepared sheets (cells.Table, from sheets.py) → one .xlsx package.
The statement as a whole is laid out in sheets.py:

* **Tables** (`summary_table`, `detail_tables`, `rules_table`, `info_table`): what
  each sheet holds, as plain Python values (str, Decimal, int, datetime, None).
* **Writer** (`_write_workbook`, `_render_rows`, `_parts`): how those values become
  SpreadsheetML. It renders every part's XML itself (no openpyxl) and streams it into
  one zip: a worksheet is rendered in chunks of rows that are encoded and deflated as
  they come, so memory does not grow with the number of rows. The package is minimal:
  content types, package and workbook relationships, core and app properties,
  workbook (sheets in order, one hidden `_xlnm._FilterDatabase` name per sheet, as
  Excel writes them), styles (bold, `0.00`, `yyyy-mm-dd hh:mm:ss`) and worksheets
  (frozen header row, column widths, autofilter). The tests read it back with
  openpyxl and LibreOffice; the markup follows what Excel itself writes, but no
  Excel was at hand to open it.

Guarantees (tests/outputs/test_xlsx.py holds a test for each):

* **Text is never a formula.** Every str is written as an inline string
  (`t="inlineStr"`); the writer never writes `<f>`. A buyer's "=HYPERLINK(...)"
  stays text.
* **Text round-trips.** XML 1.0 cannot hold most control characters, and an XML
  parser turns a literal CR into LF. Such characters are written the way Excel
  writes them (ST_Xstring): `_xHHHH_`. A literal `_xHHHH_` in the text gets its
  underscore escaped as `_x005F_`, so readers that decode (Excel, LibreOffice) show
  the original text. openpyxl's reader does NOT decode inline strings: it returns the
  escaped form, and `decode_text` is the inverse for such readers. Empty text is an
  empty cell. Text that starts or ends with whitespace, whitespace-only text
  included, is written with xml:space="preserve" (as Excel and XlsxWriter do), so
  no reader may trim it.
* **Long text is cut.** A cell holds at most 32,767 characters (counted in UTF-16
  units, as Excel does); longer text keeps its start and ends with `TRUNCATED`.
* **Money is exact.** Amounts go into `<v>` as the Decimal's own text with two
  decimals ("0.10", "1234567.89"), never through float formatting. Cells are numeric
  with format `0.00`. Excel holds numbers as doubles, so amounts are exact to the 分
  below 10^13 元.
* **Same statement, same bytes.** Document dates (docProps/core.xml) are the first
  day of the statement month; zip entries have a fixed time (1980-01-01), fixed
  attributes, a fixed order and a fixed compression level. (Bytes may differ between
  zlib versions, which may compress differently.)
* **Times** are real Excel date cells (`yyyy-mm-dd hh:mm:ss`): the local wall time,
  without zone, cut to whole seconds so the cell never shows a rounded-up second.
* **Atomic.** The workbook goes to a temporary file beside the target that is
  renamed over it (ledger.atomic); on failure nothing of it remains. The writer uses
  no other scratch files. (Per-agent files are written in place, `atomic=False`: they
  go into the month's staging folder, which is swapped in whole or removed, outset.py.)
* **Row limit.** 明细 holds at most `max_rows` rows (header included) per sheet and
  continues on 明细2, 明细3, ... each with its own header.
"""
from __future__ import annotations

import io
import itertools
import queue
import re
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ledger.core.atomic import atomic_path
from ledger.core.money import Percent
from ledger.outputs.statement import RunInfo
from ledger.outputs.workbook.cells import (
    DATETIME_FORMAT,
    MAX_CELL_CHARS,
    MAX_WIDTH,
    MIN_WIDTH,
    MONEY_FORMAT,
    WIDTH_SAMPLE_ROWS,
    Table,
    clip_text,
    display_width,
    encode_text,
    money_text,
)
from ledger.outputs.workbook.charts import ChartPackage

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


def write_tables(tables: list["Table"], info: RunInfo, path: Path, *, threaded: bool = True,
                 atomic: bool = True) -> None:
    """Write prepared sheets (e.g. a per-agent statement, agents.py) with the same
    guarantees as `write_statement`: no formulas, exact money, same bytes, atomic.
    `threaded=False`: deflate on the calling thread (for callers that already keep
    every core busy, such as the forked per-agent writers; the bytes are the same).
    `atomic=False`: write `path` itself, no temporary file (for a file in a folder that
    is itself swapped in whole, such as the month's staging folder: outset.py)."""
    if not atomic:
        _write_workbook(tables, info, Path(path), threaded)
        return
    with atomic_path(Path(path)) as tmp:
        _write_workbook(tables, info, tmp, threaded)


class Pending:
    """A workbook written into memory up to its last sheet (`start_tables`), finished
    once that sheet's content is known (`finish_tables`). The per-agent files lay out
    everything while the shop statement whose SHA-256 their 说明 sheet names is still
    being written (agents.py)."""

    def __init__(self, tables: list[Table], info: RunInfo):
        self.tables = list(tables)  # the last one is replaced before it is written
        self.buffer = io.BytesIO()
        self.zip = zipfile.ZipFile(self.buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        self.parts = _parts(self.tables, info)


def start_tables(tables: list[Table], info: RunInfo) -> Pending | None:
    """Deflate every part before the last sheet into memory (on the calling thread).
    The last table may be a stand-in: its title, header and number of rows and footer
    rows must be those of the table `finish_tables` gets (the workbook part names them).
    None when a part needs ZIP64 (never in practice): write the workbook whole then."""
    pending = Pending(tables, info)
    stop = f"xl/worksheets/sheet{len(tables) - 1}.xml" if len(tables) > 1 else "xl/styles.xml"
    try:
        for name, chunks in pending.parts:
            _write_part(pending.zip, name, chunks, False, threaded=False)
            if name == stop:
                return pending
    except _NeedsZip64:
        return None
    raise ValueError("no sheet to finish")


def finish_tables(pending: Pending, last: Table, path: Path) -> bool:
    """Write the last sheet and what follows it, then the package to `path` (in place,
    no temporary file: for the month's staging folder). The bytes are those
    `write_tables` writes for the same tables. False when a part needs ZIP64 (nothing
    written: write the workbook whole then)."""
    stand_in = pending.tables[-1]
    if (stand_in.title, stand_in.header, len(stand_in.items), len(stand_in.footer)) != (
            last.title, last.header, len(last.items), len(last.footer)):
        raise ValueError("the last sheet differs from its stand-in in shape")
    pending.tables[-1] = last  # _parts reads tables[i] only when it reaches sheet i
    try:
        for name, chunks in pending.parts:
            _write_part(pending.zip, name, chunks, False, threaded=False)
    except _NeedsZip64:
        return False
    pending.zip.close()
    with open(path, "wb") as out:
        out.write(pending.buffer.getbuffer())
    return True


# ------------------------------------------------------------------------ writer
#
# The package is written part by part into one zip, in this order, each entry with
# the same fixed time and attributes. Worksheets are rendered row by row into text
# chunks of about CHUNK_ROWS rows, encoded and deflated as they come, so memory stays
# flat whatever the number of rows.

COMPRESS_LEVEL = 1  # zlib level; chosen by measurement (bench/xlsx_writer.py, BENCHMARKS.md)
CHUNK_ROWS = 1000  # rows rendered per chunk handed to the compressor

# Cell formats (index into cellXfs in styles.xml).
_PLAIN, _BOLD, _MONEY, _BOLD_MONEY, _TIME, _BOLD_TIME, _PERCENT = range(7)


_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_SHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"

_EXCEL_EPOCH_ORDINAL = 693594  # date(1899, 12, 30).toordinal(): serial 0 of Excel's 1900 system
_SECONDS_PER_DAY = 86400

_CONTENT_TYPES = (
    _XML_DECL
    + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    "{sheets}</Types>"
)

_ROOT_RELS = (
    _XML_DECL
    + f'<Relationships xmlns="{_NS_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_NS_R}/officeDocument" Target="xl/workbook.xml"/>'
    f'<Relationship Id="rId2" Type="{_NS_PKG_REL}/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_NS_R}/extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)

_APP = (
    _XML_DECL
    + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>ledger</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop>"
    "<LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc>"
    "<HyperlinksChanged>false</HyperlinksChanged></Properties>"
)

_CORE = (
    _XML_DECL
    + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<dc:title>{title}</dc:title><dc:creator>ledger</dc:creator>"
    '<dcterms:created xsi:type="dcterms:W3CDTF">{when}</dcterms:created>'
    '<dcterms:modified xsi:type="dcterms:W3CDTF">{when}</dcterms:modified>'
    "</cp:coreProperties>"
)

# Fonts: regular and bold Calibri 11. Fills: the two Excel requires first.
# cellXfs in the order of _PLAIN.._BOLD_TIME.
_MONEY_FORMAT_ID = {"0.00": 2}[MONEY_FORMAT]  # a built-in format: every reader knows it
_FONT = '<sz val="11"/><name val="Calibri"/><family val="2"/>'
_STYLES = (
    _XML_DECL
    + f'<styleSheet xmlns="{_NS_MAIN}">'
    f'<numFmts count="1"><numFmt numFmtId="164" formatCode="{DATETIME_FORMAT}"/></numFmts>'
    f'<fonts count="2"><font>{_FONT}</font><font><b/>{_FONT}</font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="7">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    f'<xf numFmtId="{_MONEY_FORMAT_ID}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    f'<xf numFmtId="{_MONEY_FORMAT_ID}" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" '
    'applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="164" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1"/>'
    '<xf numFmtId="10" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0"/>'
    "</styleSheet>"
)

_SHEET_HEAD = (
    _XML_DECL
    + f'<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_R}">'
    '<dimension ref="A1:{last_cell}"/>'
    '<sheetViews><sheetView{selected} workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
    "</sheetView></sheetViews>"
    '<sheetFormatPr defaultRowHeight="15"/>'
    "<cols>{cols}</cols>"
    "<sheetData>"
)
_SHEET_TAIL = (
    '</sheetData><autoFilter ref="{filter_ref}"/>'
    '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
    "</worksheet>"
)


class _NeedsZip64(Exception):
    """A part outgrew the 4 GiB a plain zip entry holds; write again with ZIP64 for it."""

    def __init__(self, part: str):
        super().__init__(part)
        self.part = part


def _write_workbook(tables: list[Table], info: RunInfo, target: Path, threaded: bool = True) -> None:
    # Whether an entry needs ZIP64 is known only once it is written (sizes of 4 GiB
    # and more, i.e. never in practice); then the whole package is written again with
    # ZIP64 for that entry, so the choice depends on the content alone.
    zip64: set[str] = set()
    while True:
        try:
            _write_package(_parts(tables, info), target, zip64, threaded)
            return
        except _NeedsZip64 as e:
            zip64.add(e.part)


def _write_package(parts: Iterable[tuple[str, Iterable[str]]], target: Path,
                   zip64: set[str], threaded: bool = True) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, chunks in parts:
            _write_part(zf, name, chunks, name in zip64, threaded)


def _write_part(zf: zipfile.ZipFile, name: str, chunks: Iterable[str], force_zip64: bool,
                threaded: bool = True) -> None:
    """One zip entry: text chunks, UTF-8 encoded here and deflated on a second thread.

    zlib lets go of the GIL while it compresses, so deflating one chunk overlaps
    with rendering the next. The bytes are the same as when written in one thread.
    A part under THREAD_CHARS characters (most parts: styles, small sheets, a
    per-agent file's sheets) is deflated in place: a thread would cost more than it saves.
    """
    try:
        with zf.open(_entry(name), "w", force_zip64=force_zip64) as out:
            chunks = iter(chunks)
            first = next(chunks, None)
            if threaded and first is not None:
                # A small part in pieces (a short sheet: head, rows, tail) is one chunk.
                while len(first) < THREAD_CHARS and (more := next(chunks, None)) is not None:
                    first += more
            second = next(chunks, None) if threaded and first is not None else None
            if second is None:  # in place: one chunk, or not threaded
                if first is not None:
                    out.write(first.encode("utf-8"))
                for chunk in chunks:
                    out.write(chunk.encode("utf-8"))
                return
            with _BackgroundWriter(out.write) as write:
                write(first.encode("utf-8"))
                write(second.encode("utf-8"))
                for chunk in chunks:
                    write(chunk.encode("utf-8"))
    except RuntimeError as e:  # zipfile: "File size too large, try using force_zip64"
        if "force_zip64" in str(e) and not force_zip64:
            raise _NeedsZip64(name) from e
        raise


THREAD_CHARS = 1 << 20  # characters: a part smaller than this is deflated in place


class _BackgroundWriter:
    """Calls `write` with each chunk, in order, on a thread of its own.

    At most QUEUED chunks wait, so memory stays bounded. An error on the thread is
    raised in the caller at its next call or on leaving the `with` block; leaving
    the block, by success or by error, always waits for the thread to end.
    """

    QUEUED = 4

    def __init__(self, write: Callable[[bytes], Any]):
        self._write = write
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="xlsx-deflate", daemon=True)

    def __enter__(self) -> Callable[[bytes], None]:
        self._thread.start()
        return self._put

    def __exit__(self, *exc) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error

    def _put(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:  # after an error, keep taking chunks so the caller never blocks
                try:
                    self._write(data)
                except BaseException as e:  # handed to the caller
                    self._error = e


def _entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    if hasattr(entry, "compress_level"):  # Python 3.13+
        entry.compress_level = COMPRESS_LEVEL
    else:
        entry._compresslevel = COMPRESS_LEVEL
    entry.create_system = 0  # the same on every platform
    entry.external_attr = 0o600 << 16  # what zipfile would set; stated so it never varies
    return entry


def _parts(tables: list[Table], info: RunInfo) -> Iterator[tuple[str, Iterable[str]]]:
    """Every part of the package, in entry order, as (name, text chunks)."""
    charts = ChartPackage(tables)  # the 图表 sheet's drawing and charts, if it has one
    sheets = [f"xl/worksheets/sheet{i}.xml" for i in range(1, len(tables) + 1)]
    yield "[Content_Types].xml", [_CONTENT_TYPES.format(sheets="".join(
        f'<Override PartName="/{name}" ContentType="{_CT_SHEET}"/>' for name in sheets) + charts.content_types())]
    yield "_rels/.rels", [_ROOT_RELS]
    yield "docProps/app.xml", [_APP]
    when = _document_time(info.month).strftime("%Y-%m-%dT%H:%M:%SZ")
    yield "docProps/core.xml", [_CORE.format(title=_xml_text(f"客服奖惩台账 {info.month}"), when=when)]
    yield "xl/workbook.xml", [_workbook_xml(tables)]
    yield "xl/_rels/workbook.xml.rels", [_workbook_rels(sheets)]
    yield "xl/styles.xml", [_STYLES]
    for i, name in enumerate(sheets):  # tables[i] looked up only now (finish_tables)
        yield name, charts.wrap(i, _sheet_xml(tables[i], selected=i == 0))
    yield from charts.parts()


def _workbook_xml(tables: list[Table]) -> str:
    sheets = "".join(f'<sheet name="{_xml_attr(t.title)}" sheetId="{i}" r:id="rId{i}"/>'
                     for i, t in enumerate(tables, 1))
    # Excel keeps each sheet's autofilter range as this hidden name; it writes one
    # for every filtered sheet, and so do we.
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{_xml_text(_quote_sheet(t.title))}!{_absolute(_filter_ref(t))}</definedName>"
        for i, t in enumerate(tables))
    return (_XML_DECL + f'<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_R}">'
            '<workbookPr/><bookViews><workbookView activeTab="0"/></bookViews>'
            f"<sheets>{sheets}</sheets><definedNames>{names}</definedNames>"
            '<calcPr calcId="191029"/></workbook>')


def _workbook_rels(sheets: list[str]) -> str:
    rels = [f'<Relationship Id="rId{i}" Type="{_NS_R}/worksheet" Target="{name.removeprefix("xl/")}"/>'
            for i, name in enumerate(sheets, 1)]
    rels.append(f'<Relationship Id="rId{len(sheets) + 1}" Type="{_NS_R}/styles" Target="styles.xml"/>')
    return _XML_DECL + f'<Relationships xmlns="{_NS_PKG_REL}">{"".join(rels)}</Relationships>'


def _filter_ref(table: Table) -> str:
    """The autofilter covers the header and the data rows, not the footer."""
    return f"A1:{_column_letter(len(table.header))}{len(table.items) + 1}"


def _absolute(ref: str) -> str:
    return ":".join(re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", part) for part in ref.split(":"))


def _quote_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _column_letter(col: int) -> str:
    """1 → A, 26 → Z, 27 → AA."""
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def _sheet_xml(table: Table, *, selected: bool = False) -> Iterator[str]:
    """The worksheet XML of one table, in chunks of about CHUNK_ROWS rows."""
    ncols = len(table.header)
    refs = _cell_refs(ncols)
    last_row = 1 + len(table.items) + len(table.footer)
    # The rows measured for the column widths are the first rows written: each made once.
    sample = [table.to_row(item) for item in itertools.islice(table.items, WIDTH_SAMPLE_ROWS)]
    cols = "".join(f'<col min="{c}" max="{c}" width="{_number(w)}" customWidth="1"/>'
                   for c, w in enumerate(_column_widths(table, sample), 1))
    head = _SHEET_HEAD.format(last_cell=f"{_column_letter(ncols)}{last_row}", cols=cols,
                              selected=' tabSelected="1"' if selected else "")
    yield head + _render_rows([table.header], 1, refs, bold=True)
    row_number = 2
    rows = itertools.chain(sample, map(table.to_row, itertools.islice(table.items, len(sample), None)))
    texts: dict[str, str] = {}
    while True:
        batch = list(itertools.islice(rows, CHUNK_ROWS))
        if not batch:
            break
        yield _render_rows(batch, row_number, refs, texts=texts)
        row_number += len(batch)
    yield (_render_rows(table.footer, row_number, refs, bold=True)
           + _SHEET_TAIL.format(filter_ref=_filter_ref(table)))


def _number(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def _xml_text(text: str) -> str:
    return text.translate(_TEXT_ESCAPES)


def _xml_attr(text: str) -> str:
    return text.translate(_ATTR_ESCAPES)


def _render_rows(rows: Iterable[tuple], first: int, refs: Sequence[str], *, bold: bool = False,
                 texts: dict[str, str] | None = None) -> str:
    """SpreadsheetML for consecutive rows starting at row number `first`.

    `refs[i]` opens a cell of column i up to its row number (`<c r="B`). `texts`
    caches the rendered text cells of a sheet (see `_text_cell`): statements repeat
    agents, rules, labels and excerpts on every row.

    Kept in one function with everything in locals: it runs once per cell, so this
    loop is where the writer spends its time.
    """
    text_style = f' s="{_BOLD}"' if bold else ""
    money_style = f' s="{_BOLD_MONEY if bold else _MONEY}"'
    time_style = f' s="{_BOLD_TIME if bold else _TIME}"'
    int_style = text_style
    if texts is None or bold:
        texts = {}
    cached = texts.get
    str_, int_, decimal_, datetime_ = str, int, Decimal, datetime
    out: list[str] = []
    append = out.append
    n = first
    for row in rows:
        r = str(n)
        append(f'<row r="{r}">')
        for ref, v in zip(refs, row):
            t = type(v)
            if t is str_:
                cell = cached(v)
                if cell is None:
                    if v.isalnum() and len(v) <= _CACHE_MAX_CHARS:
                        # Letters and digits alone (ids, order and buyer numbers: unique, so
                        # not cached) need no clipping, escaping or preserved space.
                        append(f'{ref}{r}"{text_style} t="inlineStr"><is><t>{v}</t></is></c>')
                        continue
                    cell = _text_cell(v, text_style)
                    if len(v) <= _CACHE_MAX_CHARS:
                        if len(texts) >= _CACHE_MAX_ENTRIES:
                            texts.clear()  # unique texts (ids, evidence) must not pile up
                        texts[v] = cell
                if cell:  # empty text is an empty cell
                    append(f'{ref}{r}"{cell}')
            elif v is None:
                continue
            elif t is decimal_:
                # An amount with two decimals is its own text; anything else is rounded.
                money = str(v)
                if money[-3:-2] != "." or "E" in money:
                    money = _money_value(v)
                append(f"{ref}{r}\"{money_style}><v>{money}</v></c>")
            elif t is datetime_:
                days = v.toordinal() - _EXCEL_EPOCH_ORDINAL
                if days > 60:  # _serial, inlined
                    serial = days + (v.hour * 3600 + v.minute * 60 + v.second
                                     + v.microsecond / 10**6) / _SECONDS_PER_DAY
                else:
                    serial = _serial(v)
                append(f"{ref}{r}\"{time_style}><v>{serial!r}</v></c>")
            elif t is int_:
                append(f"{ref}{r}\"{int_style}><v>{v}</v></c>")
            else:
                append(_odd_cell(ref, r, v, bold))
        append("</row>")
        n += 1
    return "".join(out)


def _text_cell(text: str, style: str) -> str:
    """A text cell after its reference: clipped, ST_Xstring- and XML-escaped, inline.

    "" for empty text (no cell). Whitespace at either end (whitespace-only text
    included) gets xml:space="preserve", without which a reader may trim it.
    """
    if not text:
        return ""
    if len(text) > _CLIP_FROM:
        text = clip_text(text)
    if "_x" in text or not text.isprintable():
        text = encode_text(text)  # control characters, CR, literal _xHHHH_
    if "&" in text:  # str.replace, not translate: far faster on long CJK text (依据)
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    space = ' xml:space="preserve"' if text.strip() != text else ""
    return f'{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'


# Text shorter than this many characters cannot exceed MAX_CELL_CHARS UTF-16 units.
_CLIP_FROM = MAX_CELL_CHARS // 2
# The text-cell cache of a sheet: which texts it keeps, and how many at most.
_CACHE_MAX_CHARS = 256
_CACHE_MAX_ENTRIES = 10_000


def _cell_refs(ncols: int) -> list[str]:
    return [f'<c r="{_column_letter(c)}' for c in range(1, ncols + 1)]


def _odd_cell(ref: str, row_number: str, v: Any, bold: bool) -> str:
    """A cell of a subclass of a plain type (a parser's str token, an IntEnum, ...)."""
    if isinstance(v, bool) or not isinstance(v, (str, Decimal, datetime, int)):
        raise TypeError(f"no cell for {type(v).__name__}: {v!r}")
    if isinstance(v, Percent) and v.is_finite():
        return f'{ref}{row_number}" s="{_PERCENT}"><v>{format(Decimal(v), "f")}</v></c>'
    if isinstance(v, str):
        v = str.__str__(v)
    elif isinstance(v, Decimal):
        v = Decimal(v)
    elif isinstance(v, datetime):
        v = datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)
    else:
        v = int(v)
    row = _render_rows([(v,)], int(row_number), [ref], bold=bold)
    return row.removeprefix(f'<row r="{row_number}">').removesuffix("</row>")


def _money_value(amount: Decimal) -> str:
    if not amount.is_finite():
        raise ValueError(f"not an amount: {amount!r}")
    return money_text(amount)


def _serial(ts: datetime) -> float:
    """Excel's serial number of a wall time (1900 date system, as openpyxl computes it)."""
    days = ts.toordinal() - _EXCEL_EPOCH_ORDINAL
    if 0 < days <= 60:  # Excel counts a 29 February 1900 that never was
        days -= 1
    seconds = ts.hour * 3600 + ts.minute * 60 + ts.second + ts.microsecond / 10**6
    return days + seconds / _SECONDS_PER_DAY


def _column_widths(table: Table, rows: list[tuple]) -> list[float]:
    """Widths from the header, the footer and `rows` (the first WIDTH_SAMPLE_ROWS rows)."""
    sample = [table.header, *table.footer, *rows]
    # The header apart: its text would send every column of times or amounts the slow way.
    return [min(max(max(_widest(column[:1]), _widest(column[1:])) + 3, MIN_WIDTH), MAX_WIDTH)  # + filter button
            for column in zip(*(row[:len(table.header)] for row in sample))]


_TIME_SHOWN = "0000-00-00 00:00:00"  # what _shown gives for every datetime
_TEXT_TYPES = frozenset((str, type(None)))
_MONEY_TYPES = frozenset((Decimal, type(None)))


def _widest(column: tuple) -> int:
    """The widest `_width_of(_shown(value))` of a column (a per-agent file measures every
    row: the usual columns are measured without a Python step per value). Each text is
    measured once; values are never merged by `==` across types (1 == Decimal(1), and
    Decimal(0) == Decimal("-0") shows as "-0.00"): Decimals go by their exact text."""
    types = set(map(type, column))
    if types <= _TEXT_TYPES:  # text, maybe empty cells
        texts = set(column)
        texts.discard(None)
    elif types == {datetime}:
        return _width_of(_TIME_SHOWN)
    elif types <= _MONEY_TYPES:  # amounts, maybe empty cells: str(Decimal) is exact
        reps = set(map(str, column))  # an empty cell's "None" is no Decimal's text
        texts = {"" if r == "None" else _shown(Decimal(r)) for r in reps}
    else:
        texts = {value if type(value) is str else _shown(value) for value in column}
    ascii_texts = list(filter(str.isascii, texts))
    widest = min(max(map(len, ascii_texts), default=0), MAX_WIDTH)  # display_width of ASCII text
    if len(ascii_texts) < len(texts):
        for text in texts:
            if widest + 3 >= MAX_WIDTH:
                break  # as wide as a column gets
            if not text.isascii():
                widest = max(widest, _width_of(text))
    return widest


_WIDTHS: dict[str, int] = {}  # agents, rules and labels recur in every file: measure each once


def _width_of(text: str) -> int:
    if text.isascii():  # cheap without the cache (ids would crowd the labels out of it)
        return display_width(text)
    width = _WIDTHS.get(text)
    if width is None:
        width = display_width(text)
        if len(text) <= _CACHE_MAX_CHARS:
            if len(_WIDTHS) >= _CACHE_MAX_ENTRIES:
                _WIDTHS.clear()
            _WIDTHS[text] = width
    return width


def _shown(value: Any) -> str:
    """Roughly what a cell shows, for measuring its width."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return "0000-00-00 00:00:00"
    if isinstance(value, Decimal):
        return money_text(value)
    return str(value)


def _document_time(month: str) -> datetime:
    """Created/modified date of the document: the first day of the statement month."""
    try:
        return datetime.strptime(month, "%Y-%m")
    except ValueError:
        return datetime(*FIXED_ZIP_TIME)

