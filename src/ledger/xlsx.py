"""The Excel statement (台账) HR imports into payroll.

`write_statement` is the only entry point. The module has two halves:

* **Tables** (`summary_table`, `detail_tables`, `rules_table`, `info_table`): what
  each sheet holds, as plain Python values (str, Decimal, int, datetime, None).
* **Writer** (`_write_workbook`, `_cell`, `_repack`): how those values become
  SpreadsheetML, currently with openpyxl in write-only (streaming) mode. A faster
  writer can replace this half without touching the tables.

Guarantees (tests/test_xlsx.py holds a test for each):

* **Text is never a formula.** Every str is written as an inline string with the
  cell type forced to text, bypassing openpyxl's guessing (which turns "=..." into
  a formula). A buyer's "=HYPERLINK(...)" stays text.
* **Text round-trips.** XML 1.0 cannot hold most control characters, and an XML
  parser turns a literal CR into LF. Such characters are written the way Excel
  writes them (ST_Xstring): `_xHHHH_`. A literal `_xHHHH_` in the text gets its
  underscore escaped as `_x005F_`, so readers that decode (Excel, LibreOffice) show
  the original text. openpyxl's reader does NOT decode inline strings: it returns the
  escaped form, and `decode_text` is the inverse for such readers. Empty text is an
  empty cell. Known gap: openpyxl writes whitespace-only text ("  ", "\t") without
  xml:space="preserve"; LibreOffice keeps it, Excel has not been checked.
* **Long text is cut.** A cell holds at most 32,767 characters (counted in UTF-16
  units, as Excel does); longer text keeps its start and ends with `TRUNCATED`.
* **Money is exact.** Amounts go into `<v>` as the Decimal's own text with two
  decimals ("0.10", "1234567.89"), not through float formatting (openpyxl would
  write "%.16g" of a float). Cells are numeric with format `0.00`. Excel holds
  numbers as doubles, so amounts are exact to the 分 below 10^13 元.
* **Same statement, same bytes.** Document dates (docProps/core.xml) are fixed to
  the first day of the statement month, and the zip is re-packed with fixed entry
  times, fixed attributes, the same entry order and the same compression. (Bytes may
  differ between machines with different openpyxl/zlib versions or with lxml.)
* **Times** are real Excel date cells (`yyyy-mm-dd hh:mm:ss`): the local wall time,
  without zone, cut to whole seconds so the cell never shows a rounded-up second.
* **Atomic.** The workbook goes to a temporary file that is renamed over the target
  (ledger.atomic); on failure neither it nor openpyxl's scratch files remain.
* **Row limit.** 明细 holds at most `max_rows` rows (header included) per sheet and
  continues on 明细2, 明细3, ... each with its own header.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.packaging.core import DocumentProperties
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.xml.functions import tostring

from .atomic import atomic_path
from .entries import APPLIED, BONUS, FINE, PENDING, Entry
from .money import round_line, total
from .statement import FileInfo, RunInfo, Statement

EXCEL_MAX_ROWS = 1_048_576
MAX_CELL_CHARS = 32_767  # Excel's limit, in UTF-16 code units
TRUNCATED = "…（已截断）"

MONEY_FORMAT = "0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"

SUMMARY = "汇总"
DETAIL = "明细"
RULES = "规则"
INFO = "说明"
TOTAL_LABEL = "合计"

SUMMARY_HEADER = ("客服", "罚款", "奖励", "净额", "次数", "待定")
DETAIL_HEADER = ("编号", "客服", "时间", "规则", "说明", "类型", "状态", "金额",
                 "会话", "订单", "买家", "摘录", "依据", "触发事件", "规则位置")
RULES_HEADER = ("规则", "说明", "位置", "类型", "金额", "次数", "待定", "合计", "生效期间")
INFO_HEADER = ("项目", "内容")

KIND_LABELS = {FINE: "罚款", BONUS: "奖励"}
STATUS_LABELS = {APPLIED: "已计", PENDING: "待定"}

# Column widths: CJK characters count double; only the first rows are measured.
MIN_WIDTH = 8
MAX_WIDTH = 60
WIDTH_SAMPLE_ROWS = 1000

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


# --------------------------------------------------------------------------- API


def write_statement(statement: Statement, path: Path, *, max_rows: int = EXCEL_MAX_ROWS) -> None:
    """Write the statement workbook to `path`, atomically and reproducibly."""
    if not 2 <= max_rows <= EXCEL_MAX_ROWS:
        raise ValueError(f"max_rows must be between 2 and {EXCEL_MAX_ROWS}, not {max_rows}")
    tables = build_tables(statement, max_rows)
    with atomic_path(Path(path)) as tmp:
        _write_workbook(tables, statement.info, tmp)


# ------------------------------------------------------------------------ tables


@attrs.frozen
class Table:
    """One sheet: a header, data rows under an autofilter, and bold footer rows.

    `items` are turned into rows by `to_row` one at a time, so a million detail
    lines never exist as rows all at once.
    """

    title: str
    header: tuple[str, ...]
    items: Sequence[Any]
    to_row: Callable[[Any], tuple] = tuple
    footer: tuple[tuple, ...] = ()

    def rows(self) -> Iterable[tuple]:
        return map(self.to_row, self.items)


def build_tables(statement: Statement, max_rows: int = EXCEL_MAX_ROWS) -> list[Table]:
    """All sheets in workbook order: 汇总, 明细 (…明细N), 规则, 说明."""
    return [summary_table(statement), *detail_tables(statement.entries, max_rows),
            rules_table(statement), info_table(statement.info)]


def summary_table(statement: Statement) -> Table:
    agents = statement.agents
    rows = tuple(
        (a.agent, round_line(a.fines), round_line(a.bonuses),
         round_line(a.bonuses) - round_line(a.fines), a.count, a.pending)
        for a in agents
    )
    # The total row sums the cells exactly as written, in Python: no formulas.
    footer = ((TOTAL_LABEL,
               total(r[1] for r in rows), total(r[2] for r in rows), total(r[3] for r in rows),
               sum(r[4] for r in rows), sum(r[5] for r in rows)),)
    return Table(SUMMARY, SUMMARY_HEADER, rows, footer=footer)


def detail_tables(entries: Sequence[Entry], max_rows: int) -> list[Table]:
    """明细, 明细2, ...: at most `max_rows` rows per sheet, each with its own header."""
    per_sheet = max_rows - 1
    starts = range(0, max(len(entries), 1), per_sheet)
    return [
        Table(DETAIL if n == 1 else f"{DETAIL}{n}", DETAIL_HEADER,
              entries[start:start + per_sheet], detail_row)
        for n, start in enumerate(starts, 1)
    ]


def detail_row(e: Entry) -> tuple:
    amount = round_line(e.amount) if e.status == APPLIED and e.amount is not None else None
    return (e.id, e.agent, _excel_time(e.ts), e.rule_id, e.rule_title,
            KIND_LABELS.get(e.kind, e.kind), STATUS_LABELS.get(e.status, e.status), amount,
            e.conversation, e.order, e.buyer, e.excerpt, e.evidence, e.event_id,
            e.rule_location)


def rules_table(statement: Statement) -> Table:
    rows = tuple(
        (r.rule_id, r.title, r.location, KIND_LABELS.get(r.kind, r.kind), r.amount_text,
         r.count, r.pending, round_line(r.total), r.effective or "一直有效")
        for r in statement.rules
    )
    return Table(RULES, RULES_HEADER, rows)


def info_table(info: RunInfo) -> Table:
    rows = [
        ("月份", info.month),
        ("时区", info.timezone),
        ("规则集名称", info.policy_name),
        ("ledger 版本", info.version),
        ("数据截止", info.data_end or "（无数据）"),
        ("合并重复行", info.duplicates_folded),
    ]
    for n, f in enumerate(info.policy_files, 1):
        rows += [(f"规则文件 {n}", f.path), (f"规则文件 {n} SHA-256", f.sha256)]
    for n, f in enumerate(info.event_files, 1):
        rows += _event_file_rows(n, f)
    for n, p in enumerate(info.ignored_files, 1):
        rows.append((f"忽略的文件 {n}", p))
    for type_, count, used in info.event_types:
        rows.append((f"本月事件 {type_}", count if used else f"{count}（没有规则使用）"))
    for n, w in enumerate(info.warnings, 1):
        rows.append((f"警告 {n}", w))
    rows += [
        ("读取行数合计", sum(f.read for f in info.event_files)),
        ("接受行数合计", sum(f.accepted for f in info.event_files)),
        ("拒收行数合计", sum(f.rejected for f in info.event_files)),
    ]
    return Table(INFO, INFO_HEADER, tuple(rows))


def _event_file_rows(n: int, f: FileInfo) -> list[tuple]:
    label = f"事件文件 {n}"
    return [(label, f.path), (f"{label} 编码", f.encoding), (f"{label} SHA-256", f.sha256),
            (f"{label} 读取行数", f.read), (f"{label} 接受行数", f.accepted),
            (f"{label} 拒收行数", f.rejected)]


def _excel_time(ts: datetime) -> datetime:
    """Local wall time as Excel holds it: no zone, whole seconds (what the format shows)."""
    return ts.replace(tzinfo=None, microsecond=0)


# -------------------------------------------------------------------- text rules

# Characters XML 1.0 cannot hold, plus CR (an XML parser would turn it into LF).
_UNSAFE = "\x00-\x08\x0b\x0c\r\x0e-\x1f\ufffe\uffff"
# An unsafe character, or an underscore that a decoder would read as the start of
# `_xHHHH_` (its closing underscore may be a literal one or come from an escape).
_ENCODE = re.compile(f"[{_UNSAFE}]|_(?=x[0-9A-Fa-f]{{4}}(?:_|[{_UNSAFE}]))")
_DECODE = re.compile("_x([0-9A-Fa-f]{4})_")


def encode_text(text: str) -> str:
    """Escape text for a cell as Excel does (ST_Xstring): `\\x01` → `_x0001_`, `_` → `_x005F_`."""
    return _ENCODE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def decode_text(text: str) -> str:
    """The inverse of `encode_text`, as Excel and LibreOffice apply it when reading."""
    return _DECODE.sub(lambda m: chr(int(m.group(1), 16)), text)


def clip_text(text: str) -> str:
    """Cut text to what a cell holds, marking the cut with TRUNCATED."""
    if len(text) <= MAX_CELL_CHARS // 2 or _utf16_len(text) <= MAX_CELL_CHARS:
        return text
    budget = MAX_CELL_CHARS - _utf16_len(TRUNCATED)
    units = text.encode("utf-16-le")[: 2 * budget]
    # A cut through a surrogate pair leaves half a character: drop it.
    return units.decode("utf-16-le", errors="ignore") + TRUNCATED


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def display_width(text: str, cap: int = MAX_WIDTH) -> int:
    """Width of text in a cell: CJK (wide, fullwidth) characters count double."""
    width = 0
    for ch in text:
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if width >= cap:
            return cap
    return width


def money_text(amount: Decimal) -> str:
    """The exact text of an amount for `<v>`: always two decimals."""
    return format(round_line(amount), "f")


# ------------------------------------------------------------------------ writer

_BOLD = Font(bold=True)


def _write_workbook(tables: list[Table], info: RunInfo, target: Path) -> None:
    wb = Workbook(write_only=True)
    when = _document_time(info.month)
    wb.properties = DocumentProperties(
        creator="ledger", title=f"客服奖惩台账 {info.month}", created=when, modified=when)
    try:
        for table in tables:
            _write_sheet(wb, table)
        with tempfile.TemporaryFile() as raw:
            wb.save(raw)
            wb.properties.modified = when  # openpyxl stamps the clock at save
            core_xml = tostring(wb.properties.to_tree())
            raw.seek(0)
            _repack(raw, target, {"docProps/core.xml": core_xml})
    except BaseException:
        _discard_scratch(wb)
        raise


def _write_sheet(wb: Workbook, table: Table) -> None:
    ws = wb.create_sheet(table.title)
    ncols = len(table.header)
    last_col = get_column_letter(ncols)
    for col, width in enumerate(_column_widths(table), 1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{last_col}{len(table.items) + 1}"
    ws.append([_cell(ws, name, bold=True) for name in table.header])
    for row in table.rows():
        ws.append([_cell(ws, value) for value in row])
    for row in table.footer:
        ws.append([_cell(ws, value, bold=True) for value in row])


def _column_widths(table: Table) -> list[float]:
    sample = [table.header, *table.footer]
    sample += [table.to_row(item) for item in table.items[:WIDTH_SAMPLE_ROWS]]
    widths = []
    for col in range(len(table.header)):
        widest = max(display_width(_shown(row[col])) for row in sample)
        widths.append(min(max(widest + 3, MIN_WIDTH), MAX_WIDTH))  # + filter button
    return widths


def _shown(value: Any) -> str:
    """Roughly what a cell shows, for measuring its width."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return "0000-00-00 00:00:00"
    if isinstance(value, Decimal):
        return money_text(value)
    return str(value)


def _cell(ws, value: Any, *, bold: bool = False) -> WriteOnlyCell | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        cell = _raw_cell(ws, encode_text(clip_text(value)), "s")
    elif isinstance(value, Decimal):
        cell = _raw_cell(ws, money_text(value), "n")
        cell.number_format = MONEY_FORMAT
    elif isinstance(value, datetime):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = DATETIME_FORMAT
    elif isinstance(value, int) and not isinstance(value, bool):
        cell = WriteOnlyCell(ws, value=value)
    else:
        raise TypeError(f"no cell for {type(value).__name__}: {value!r}")
    if bold:
        cell.font = _BOLD
    return cell


def _raw_cell(ws, xml_value: str, data_type: str) -> WriteOnlyCell:
    """A cell whose `<v>`/`<t>` text and type are exactly what we say.

    openpyxl's `value` setter guesses: "=..." becomes a formula, control characters
    raise, long text is cut mid-escape, Decimals pass through float. So the value is
    set below the setter, already escaped, clipped or formatted.
    """
    cell = WriteOnlyCell(ws)
    cell._value = xml_value
    cell.data_type = data_type
    return cell


def _document_time(month: str) -> datetime:
    """Created/modified date of the document: the first day of the statement month."""
    try:
        return datetime.strptime(month, "%Y-%m")
    except ValueError:
        return datetime(*FIXED_ZIP_TIME)


def _repack(raw, target: Path, replace: dict[str, bytes]) -> None:
    """Copy the zip entry by entry with fixed times and attributes, replacing some parts."""
    with zipfile.ZipFile(raw) as src, \
            zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        for info in src.infolist():
            entry = _fixed_entry(info)
            if info.filename in replace:
                out.writestr(entry, replace[info.filename])
                continue
            with src.open(info) as fin, \
                    out.open(entry, "w", force_zip64=info.file_size >= zipfile.ZIP64_LIMIT) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)


def _fixed_entry(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.create_system = 0  # the same on every platform
    entry.external_attr = 0
    entry.file_size = info.file_size
    return entry


def _discard_scratch(wb: Workbook) -> None:
    """Remove the scratch files openpyxl streams each write-only sheet into.

    openpyxl deletes them only when the workbook is saved, or at interpreter exit.
    """
    for ws in wb.worksheets:
        writer = getattr(ws, "_writer", None)
        if writer is None:
            continue
        with contextlib.suppress(Exception):
            if not ws.closed:
                ws.close()  # finish the stream so the file can go
        with contextlib.suppress(Exception):
            writer.cleanup()
