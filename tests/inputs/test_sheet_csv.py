"""Big workbook sheets read set-based through a CSV copy (src/ledger/inputs/sheet_csv.py):
exactly what the row-by-row sheet reader (workbooks.py) gives, and the fast path taken."""

from __future__ import annotations

import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ledger.inputs import sheet_csv
from ledger.inputs.containers import Sheet
from ledger.inputs.settings import ReaderSettings

from conftest import n_examples
from inputs.test_events import assert_same_reading

TZ = ZoneInfo("Asia/Shanghai")
SCHEMA = {"order_paid": {"amount": "money"}}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of a few rows, so that small sheets take the bytes path after their header."""
    monkeypatch.setattr(sheet_csv, "CHUNK", 300)
    for key in sheet_csv.STATS:
        sheet_csv.STATS[key] = 0


def _column(index: int) -> str:
    return get_column_letter(index + 1)  # openpyxl's, not the reader's own: written independently


def write_book(path: Path, sheets: dict[str, list[tuple[int, list]]], form: str) -> None:
    """A workbook of `sheets` (name -> [(row number, cells)]; None is a missing cell):
    "export" writes every cell as an inline string without a reference (as bench/shapes.py;
    None is an empty string there), "shared" as Excel does (references, shared strings,
    numbers and booleans as such), "openpyxl" through openpyxl."""
    if form == "openpyxl":
        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        for name, rows in sheets.items():
            ws = wb.create_sheet(name)
            for number, cells in rows:
                for k, value in enumerate(cells):
                    if value is not None:
                        ws.cell(number, k + 1, value)
        wb.save(path)
        return
    strings: list[str] = []
    parts = {}
    for s, (name, rows) in enumerate(sheets.items()):
        xml = []
        for number, cells in rows:
            if form == "export":
                xml.append(f'<row r="{number}">' + "".join(
                    f'<c t="inlineStr"><is><t>{escape("" if v is None else str(v))}</t></is></c>' for v in cells)
                    + "</row>")
                continue
            out = []
            for k, v in enumerate(cells):
                ref = f"{_column(k)}{number}"
                if v is None:
                    continue
                if isinstance(v, bool):
                    out.append(f'<c r="{ref}" t="b"><v>{int(v)}</v></c>')
                elif isinstance(v, (int, float)):
                    out.append(f'<c r="{ref}"><v>{v!r}</v></c>')
                else:
                    strings.append(v)
                    out.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
            xml.append(f'<row r="{number}">' + "".join(out) + "</row>")
        parts[f"xl/worksheets/sheet{s + 1}.xml"] = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.'
            'openxmlformats.org/spreadsheetml/2006/main"><sheetData>' + "".join(xml) + "</sheetData></worksheet>")
    names = list(sheets)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
                   'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
                   'relationships"><sheets>' + "".join(
                       f'<sheet name="{escape(n)}" sheetId="{k + 1}" r:id="rId{k + 1}"/>' for k, n in enumerate(names))
                   + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/relationships">' + "".join(
                       f'<Relationship Id="rId{k + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                       f'relationships/worksheet" Target="worksheets/sheet{k + 1}.xml"/>' for k in range(len(names)))
                   + "</Relationships>")
        if strings:
            z.writestr("xl/sharedStrings.xml", '<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/'
                       'spreadsheetml/2006/main">' + "".join(
                           f'<si><t xml:space="preserve">{escape(t)}</t></si>' for t in strings) + "</sst>")
        for name, text in parts.items():
            z.writestr(name, text)


TEXT = st.text(st.sampled_from(list('ab ,"\'&<>=;\t\n亲您好，。:-_x0') + ["\u4e2d", "😀", "\ufeff"]), max_size=8)
TS = st.sampled_from(["2024-05-01 10:00:00", "2024-05-31 23:59:59.5", "2024-05-02T01:02:03+08:00", "2024-13-01",
                      "", " 2024-05-03 08:00:00"])
CELL = st.one_of(TEXT, TS, st.sampled_from(["message", "order_paid", "12.50", "¥59", "-3", "=SUM(A1)"]),
                 st.none(), st.integers(-10**6, 10**6), st.sampled_from([1.5, 0.1, 1e-05, 2.0]), st.booleans())


@st.composite
def sheets(draw):
    header = draw(st.permutations(["ts", "type", "id", "note", "amount"]).map(
        lambda names: names[:draw(st.integers(2, 5))]))
    if "ts" not in header or "type" not in header:
        header = ["ts", "type"] + [n for n in header if n not in ("ts", "type")]
    book = {}
    for s in range(draw(st.integers(1, 2))):
        number = draw(st.integers(1, 3))
        rows = [(number, list(header))]
        for _ in range(draw(st.integers(0, 12))):
            number += draw(st.sampled_from([1, 1, 1, 1, 2, 5]))
            width = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1]))
            cells = [draw(TS), draw(st.sampled_from(["message", "order_paid", "rating", ""]))]
            cells += [draw(CELL) for _ in range(max(0, width - 2))]
            rows.append((number, cells))
        book[f"表{s + 1}" if s else "data"] = rows
    return book


@settings(max_examples=n_examples(15), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(book=sheets(), form=st.sampled_from(["export", "shared", "openpyxl"]))
def test_sheets_read_through_the_csv_copy_exactly_as_row_by_row(book, form):
    if form == "export":  # the export form writes every cell as text, even numbers
        book = {name: [(n, [c if c is None or isinstance(c, str) else str(c) for c in cells])
                       for n, cells in rows] for name, rows in book.items()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_book(root / "book.xlsx", book, form)
        readers = assert_same_reading(root, TZ, SCHEMA)
        note(f"readers: {readers}, {sheet_csv.STATS}")
        everywhere = [c for rows in book.values() for _, cells in rows for c in cells if c is not None]
        odd = any(set(str(v)) & {"\n", "\ufeff"} for v in everywhere)  # in a sheet, or shared strings
        for name, rows in book.items():
            values = [str(c) for _, cells in rows for c in cells if c is not None]
            plain = not any(isinstance(c, float) for _, cells in rows for c in cells)
            formula = form == "openpyxl" and any(v.startswith("=") for v in values)  # no cached value
            if plain and not formula and not odd:
                assert readers[f"book.xlsx#{name}"] == "sql", name


def _export_rows(n: int, start: int = 0) -> list[tuple[int, list]]:
    texts = ['您好，"亲" & <b>', "a,b", "=HYPERLINK(\"x\")", "  前后空格 ", "中文；", ""]
    return [(k + 2, [f"e{start + k}", f"2024-05-01 10:{(start + k) % 60:02d}:00", "message",
                     texts[k % len(texts)], "" if k % 3 else "x"]) for k in range(n)]


def test_an_export_workbook_takes_the_bytes_path_on_every_sheet(tmp_path):
    header = (1, ["id", "ts", "type", "text", "note"])
    rows = _export_rows(60)
    rows[7] = (9, ["e7", "not a time", "message", "坏的", ""])  # rejected with its row number, raw text trimmed
    rows[8] = (10, ["e1", "2024-05-01 10:59:00", "message", "新版本", ""])  # a newer version of e1: row 3 superseded
    book = {"messages": [header] + rows, "messages2": [header] + [(n, c) for n, c in _export_rows(40, 60)]}
    write_book(tmp_path / "messages.xlsx", book, "export")
    readers = assert_same_reading(tmp_path, TZ, SCHEMA)
    assert readers == {"messages.xlsx#messages": "sql", "messages.xlsx#messages2": "sql"}
    assert sheet_csv.STATS["bulk"] >= 4  # chunks turned into CSV by bytes operations


@pytest.mark.parametrize("odd", ["第一行\n第二行", datetime(2024, 5, 1, 10, 0), "=A1"])
def test_what_the_copy_cannot_vouch_for_is_read_row_by_row(tmp_path, odd):
    """A line break in a cell (a CSV record of two lines would shift the row numbers), a
    date cell, a formula: the sheet is read by workbooks.py, with the same result."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "s"
    ws.append(["ts", "type", "note"])
    for k in range(20):
        ws.append([f"2024-05-01 10:00:{k:02d}", "message", odd if k == 10 else f"n{k}"])
    wb.save(tmp_path / "book.xlsx")
    readers = assert_same_reading(tmp_path, TZ, SCHEMA)
    formula = odd == "=A1"  # openpyxl writes a formula without a cached value
    assert readers == {"book.xlsx#s": "python" if not isinstance(odd, str) or "\n" in odd or formula else "sql"}


def test_a_big_sheet_is_turned_by_two_processes_into_the_same_csv(tmp_path, monkeypatch):
    book = {"m": [(1, ["id", "ts", "type", "text", "note"])] + _export_rows(80)}
    write_book(tmp_path / "m.xlsx", book, "export")
    source = Sheet(tmp_path / "m.xlsx", "m")
    made = {}
    for parallel in (False, True):
        monkeypatch.setattr(sheet_csv, "PARALLEL_MIN", 0 if parallel else 1 << 40)
        tmp, digest, _ = sheet_csv.sheet_copy(source, ReaderSettings(reader="fast", cores=2), force=True)
        made[parallel] = Path(tmp).read_bytes()
        Path(tmp).unlink()
    assert sheet_csv.STATS["worker"] >= 2  # pieces turned in the second process
    assert made[True] == made[False]
    assert made[True].decode().splitlines()[1:3] == [
        'e0,2024-05-01 10:00:00,message,"您好，""亲"" & <b>",x', "e1,2024-05-01 10:01:00,message,\"a,b\","]


def test_the_next_big_sheet_of_a_workbook_is_turned_by_a_worker_into_the_same_csv(tmp_path, monkeypatch):
    header = (1, ["id", "ts", "type", "text", "note"])
    book = {f"m{k}": [header] + _export_rows(30, 30 * k) for k in range(3)}
    write_book(tmp_path / "m.xlsx", book, "export")
    sources = [Sheet(tmp_path / "m.xlsx", f"m{k}") for k in range(3)]
    settings = ReaderSettings(reader="fast", cores=2)
    alone = []
    for source in sources:
        made = sheet_csv.sheet_copy(source, settings, force=True)
        alone.append((Path(made.path).read_bytes(), made.sha256, made.lines))
        Path(made.path).unlink()
    monkeypatch.setattr(sheet_csv, "PARALLEL_MIN", 0)
    sheets = sheet_csv.Sheets(sources, settings, force=True)
    together = []
    try:
        for k, source in enumerate(sources):
            made = sheets.copy(source)
            if k == 0:
                assert id(sources[1]) in sheets.ahead  # m1 is being turned by the worker
            together.append((Path(made.path).read_bytes(), made.sha256, made.lines))
            Path(made.path).unlink()
        assert together == alone
        assert together[2][2] == 31  # the header and 30 rows: line n is row n
        # A copy made ahead and never taken is deleted when the run ends.
        sheets.copy(sources[0])
        ahead = sheets.ahead[id(sources[1])].result().path
        assert Path(ahead).exists()
    finally:
        sheets.close()
    assert not Path(ahead).exists()
