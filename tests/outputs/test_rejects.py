"""rejected-rows.csv: masked, one line per row, and never a formula whatever separator or
text qualifier a spreadsheet's import dialog uses (issue 13 item 15)."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from conftest import n_examples
from ledger.inputs.contract import Reject
from ledger.outputs.rejects import FORMULA_START, rejects_text, safe_cell, write_rejects

# The separators and text qualifiers import dialogs offer (Excel, LibreOffice, WPS).
DELIMITERS = [",", ";", "\t", " ", "|"]
QUOTES = ['"', "'", None]


def cells(text: str, delimiter: str, quote: str | None) -> list[str]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                        quotechar=quote or '"', quoting=csv.QUOTE_NONE if quote is None else csv.QUOTE_MINIMAL)
    return [c for row in reader for c in row]


def dangerous(cell: str) -> bool:
    """A cell a spreadsheet would evaluate: it starts with a formula character after the
    white space (spaces, TAB, CR, LF) a dialog or the spreadsheet may trim. (A cell can
    hold a line end of the file itself when a qualifier runs over it.)"""
    return cell.lstrip(" \u3000\t\r\n")[:1] in tuple(FORMULA_START)


def test_write_rejects_is_excel_friendly_csv(tmp_path):
    rejects = [Reject("a.csv", 3, "缺少 ts (missing ts)", ',message,"引号"'),
               Reject("b.jsonl", 7, "不是 JSON 对象 (not a JSON object)", "=HYPERLINK(1)")]
    target = tmp_path / "out" / "rejects.csv"
    write_rejects(target, rejects)
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows == [["file", "line", "reason", "raw"],
                    ["a.csv", "3", "缺少 ts (missing ts)", ',message,"引号"'],
                    ["b.jsonl", "7", "不是 JSON 对象 (not a JSON object)", "\\=HYPERLINK(1)"]]
    assert [p.name for p in target.parent.iterdir()] == ["rejects.csv"]


def test_phone_and_id_numbers_are_masked_in_reason_and_raw():
    text = rejects_text([Reject("m.csv", 2, "ts 无法解析 (unparseable ts): '13812345678'",
                                "m1,xx,message,店:小王,c1,tb1,buyer,text,我的电话 138-1234-5678 身份证 11010519491231002X")])
    assert "13812345678" not in text and "1234-5678" not in text and "11010519491231002X" not in text
    assert "138****5678" in text and "**************002X" in text


def test_embedded_separators_newlines_and_tabs_never_start_a_formula():
    raw = 'a;=cmd|\'/C calc\'!A0\tb\n+1,"@SUM(1)" -2\r=3'
    text = rejects_text([Reject("f.csv", 1, "r", raw)])
    assert text.count("\r\n") == 2  # header and one row: nothing inside a cell breaks the line
    for delimiter in DELIMITERS:
        for quote in QUOTES:
            assert not [c for c in cells(text.removeprefix("\ufeff"), delimiter, quote) if dangerous(c)], (delimiter, quote)
    row = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))[1]
    assert row[3] == 'a;\\=cmd|\'/C calc\'!A0\\tb\\n+1,"\\@SUM(1)" \\-2\\r=3'


def test_ordinary_text_is_kept_as_written():
    for text in ["2024-05-01 10:00:00", "tb_a@example.com", "满100减20", "亲，在的", "mx001,########,message"]:
        assert safe_cell(text) == text


@hsettings(max_examples=n_examples(200))
@given(st.lists(st.tuples(st.text(alphabet=st.sampled_from(list("=+-@\t\r\n,;\"'| \u3000a中\\\x00\x85\u2028")),
                                  max_size=12),
                          st.text(alphabet=st.sampled_from(list("=+-@\t\r\n,;\"' a/")), max_size=6)),
                min_size=1, max_size=3))
def test_no_cell_starts_a_formula_under_any_import_setting(rows):
    text = rejects_text([Reject(name or "f.csv", n, raw[::-1], raw) for n, (raw, name) in enumerate(rows, 1)])
    body = text.removeprefix("\ufeff")
    assert body.count("\r\n") == len(rows) + 1 and "\n" not in body.replace("\r\n", "")
    for delimiter in DELIMITERS:
        for quote in QUOTES:
            bad = [c for c in cells(body, delimiter, quote) if dangerous(c)]
            assert not bad, (delimiter, quote, bad)
    # read back with the comma, every field is the original with its escapes
    parsed = list(csv.reader(io.StringIO(body, newline="")))
    assert len(parsed) == len(rows) + 1
    for (raw, _), row in zip(rows, parsed[1:]):
        assert row[3].replace("\\", "") == "".join(
            {"\t": "t", "\r": "r", "\n": "n", "\x00": "x00", "\x85": "x85", "\u2028": "u2028"}.get(c, c)
            for c in raw).replace("\\", "")
