"""The Excel statement: layout, text safety, exact money, determinism, atomicity."""

from __future__ import annotations

import csv
import random
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter

from ledger.outputs.workbook import cells, sheets, writer
from ledger.core.entries import APPLIED, BONUS, FINE, PENDING, Entry
from ledger.outputs.statement import FileInfo, RunInfo, Statement, build
from ledger.outputs.workbook.cells import MAX_CELL_CHARS, TRUNCATED, decode_text, encode_text
from ledger.outputs.workbook.sheets import DETAIL_HEADER, SUMMARY_HEADER, write_statement
from ledger.outputs.workbook.writer import FIXED_ZIP_TIME

from conftest import n_examples

HOSTILE = ["=1+1", '=HYPERLINK("http://x")', "+SUM(A1)", "-2+3", "@A1", "=", "==",
           "\t=1+1", "=cmd|' /C calc'!A0"]

TRICKY = ["_x0041_", "_x005F_", "_x0041_x0042_", "_x0041\x01", "_\x01", "\x01", "\x00b",
          "a\x0bb", "a\rb", "a\r\nb", "\ufffe\uffff", " 前后空格 ", "\t", "  ", "a\nb",
          "😀 表情", "_X0041_", "_x00411_", "\x7f\x85", "\u200b"]

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


# ---------------------------------------------------------------------- factories

T0 = datetime(2024, 5, 1, 9, 0, 0)


def make_entry(n: int = 0, **kw) -> Entry:
    fields = dict(
        id=f"E{n:012x}", rule_id="R1", rule_title="首次响应超时", rule_location="policy/a.rules:3",
        kind=FINE, agent="小王", ts=T0 + timedelta(minutes=n), amount=Decimal("10.00"),
        status=APPLIED, event_id=f"m{n}", event_seq=n, conversation=f"c{n}", order=f"o{n}",
        buyer=f"buyer{n}", excerpt="你好", evidence="5分钟内未找到回复",
    )
    fields.update(kw)
    if fields["status"] == PENDING:
        fields["amount"] = None
    return Entry(**fields)


def make_info(**kw) -> RunInfo:
    fields = dict(
        month="2024-05", timezone="Asia/Shanghai", policy_name="店铺规则",
        policy_files=(FileInfo("policy/a.rules", "a" * 64),),
        event_files=(FileInfo("events/msg.csv", "b" * 64, read=10, accepted=9, rejected=1,
                              encoding="gb18030"),
                     FileInfo("events/orders.xlsx", "c" * 64, read=5, accepted=5)),
        ignored_files=("events/readme.txt",), data_end="2024-05-31 23:59:00",
        duplicates_folded=2, version="0.1.0",
    )
    fields.update(kw)
    return RunInfo(**fields)


RULES = [("R1", "首次响应超时", "policy/a.rules:3", FINE, "10元"),
         ("R2", "好评奖励", "policy/a.rules:9", BONUS, "5元")]


def make_statement(entries, agents=(), info=None, rules=RULES) -> Statement:
    return build(info or make_info(), list(entries), set(agents), list(rules))


def mixed_entries() -> list[Entry]:
    return [
        make_entry(0, agent="小王", amount=Decimal("0.10")),
        make_entry(1, agent="小王", kind=BONUS, rule_id="R2", rule_location="policy/a.rules:9", amount=Decimal("1234567.89")),
        make_entry(2, agent="小李", amount=Decimal("20.50")),
        make_entry(3, agent="小李", status=PENDING),
        make_entry(4, agent="Amy", kind=BONUS, rule_id="R2", rule_location="policy/a.rules:9", amount=Decimal("5.00")),
        make_entry(5, agent="小王", amount=Decimal("0.01")),
    ]


# ------------------------------------------------------------------------ helpers


def write(tmp_path: Path, statement: Statement, name: str = "out.xlsx", **kw) -> Path:
    path = tmp_path / name
    write_statement(statement, path, **kw)
    return path


def rows(path: Path, sheet: str) -> list[tuple]:
    wb = openpyxl.load_workbook(path)
    return list(wb[sheet].iter_rows(values_only=True))


def sheet_xml(path: Path) -> dict[str, str]:
    """Worksheet XML by sheet name."""
    wb = openpyxl.load_workbook(path, read_only=True)
    names = wb.sheetnames
    wb.close()
    with zipfile.ZipFile(path) as z:
        return {name: z.read(f"xl/worksheets/sheet{i}.xml").decode("utf-8")
                for i, name in enumerate(names, 1)}


def read_excerpt(path: Path):
    """The excerpt of the single detail row, decoded as Excel/LibreOffice decode it."""
    wb = openpyxl.load_workbook(path)
    cell = wb["明细"].cell(row=2, column=DETAIL_HEADER.index("摘录") + 1)
    return None if cell.value is None else decode_text(cell.value)


def one_entry_statement(excerpt) -> Statement:
    return make_statement([make_entry(0, excerpt=excerpt)])


# --------------------------------------------------------------------- layout


def test_sheets_headers_and_layout(tmp_path):
    path = write(tmp_path, make_statement(mixed_entries(), agents={"小赵"}))
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "明细", "规则", "说明"]
    assert [c.value for c in wb["汇总"][1]] == list(SUMMARY_HEADER)
    assert [c.value for c in wb["明细"][1]] == list(DETAIL_HEADER)
    assert [c.value for c in wb["规则"][1]] == ["规则", "说明", "位置", "类型", "金额", "次数", "待定", "合计", "生效期间"]
    assert [c.value for c in wb["说明"][1]] == ["项目", "内容"]
    for ws in wb:
        assert ws.freeze_panes == "A2"
        assert all(c.font.b for c in ws[1])
        assert ws.auto_filter.ref.startswith("A1:")
    # the filter covers the agents, not the 合计 row below them
    assert wb["汇总"].auto_filter.ref == "A1:F5"
    assert wb["明细"].auto_filter.ref == "A1:O7"


def test_column_widths_count_cjk_double_and_are_capped(tmp_path):
    long_cjk = "很" * 200
    path = write(tmp_path, make_statement([make_entry(0, agent="王" * 10, excerpt=long_cjk,
                                                      evidence="abcdefghij")]))
    ws = openpyxl.load_workbook(path)["明细"]
    width = {name: ws.column_dimensions[chr(ord("A") + i)].width
             for i, name in enumerate(DETAIL_HEADER)}
    assert width["客服"] == 10 * 2 + 3
    assert width["依据"] == 10 + 3
    assert width["摘录"] == cells.MAX_WIDTH
    assert width["状态"] >= cells.MIN_WIDTH


_WIDTH_VALUES = st.one_of(
    st.none(), st.text(max_size=70), st.sampled_from(["中" * 28, "中" * 29, "x" * 57, "ｘ１", "客服:小王"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**6, max_value=10**6),
    st.sampled_from([Decimal("0"), Decimal("-0"), Decimal("-0.001"), Decimal("1E+3"), Decimal("10.0")]),
    st.integers(-5, 10**9), st.booleans(), st.datetimes())


@settings(max_examples=n_examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_WIDTH_VALUES, min_size=3, max_size=3), min_size=1, max_size=12),
       st.sampled_from([(), ("合计", Decimal("1.00"), 3)]))
def test_column_widths_are_the_widest_shown_value_of_each_column(rows, footer):
    """A column is as wide as the widest of its cells as shown (CJK counting double), plus 3
    for the filter button, between MIN_WIDTH and MAX_WIDTH; whatever mix of types it holds
    (1 == Decimal(1) == True and Decimal("-0") == 0 must not make two cells one)."""
    table = cells.Table("明细", ("编号", "金额", "客服"), rows, footer=(footer,) if footer else ())

    def shown(v):
        return "" if v is None else "0000-00-00 00:00:00" if isinstance(v, datetime) else (
            cells.money_text(v) if isinstance(v, Decimal) else str(v))

    sample = [table.header, *table.footer, *rows]
    expected = [min(max(max(cells.display_width(shown(r[c])) for r in sample) + 3, cells.MIN_WIDTH), cells.MAX_WIDTH)
                for c in range(min(map(len, sample)))]
    assert writer._column_widths(table, [tuple(r) for r in rows]) == expected


def test_summary_rows_and_total(tmp_path):
    path = write(tmp_path, make_statement(mixed_entries(), agents={"小赵"}))
    got = rows(path, "汇总")[1:]
    assert [r[0] for r in got] == ["Amy", "小李", "小王", "小赵", "合计"]
    by_agent = {r[0]: r[1:] for r in got}
    assert by_agent["小王"] == (0.11, 1234567.89, 1234567.78, 3, 0)
    assert by_agent["小李"] == (20.50, 0, -20.50, 1, 1)
    assert by_agent["小赵"] == (0, 0, 0, 0, 0)
    fines, bonuses, net, count, pending = by_agent["合计"]
    assert Decimal(str(fines)) == Decimal("20.61")
    assert Decimal(str(bonuses)) == Decimal("1234572.89")
    assert Decimal(str(net)) == Decimal("1234552.28")
    assert (count, pending) == (5, 1)


def test_detail_row_contents(tmp_path):
    path = write(tmp_path, make_statement(mixed_entries()))
    wb = openpyxl.load_workbook(path)
    ws = wb["明细"]
    first = dict(zip(DETAIL_HEADER, (c for c in ws[2])))
    assert first["编号"].value == "E000000000000"
    assert first["时间"].value == T0 and first["时间"].is_date
    assert first["时间"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert first["类型"].value == "罚款" and first["状态"].value == "已计"
    assert first["规则位置"].value == "policy/a.rules:3"
    assert first["触发事件"].value == "m0"
    pending = dict(zip(DETAIL_HEADER, (c.value for c in ws[5])))
    assert pending["状态"] == "待定" and pending["金额"] is None
    bonus = dict(zip(DETAIL_HEADER, (c.value for c in ws[3])))
    assert bonus["类型"] == "奖励"


def test_time_cells_drop_zone_and_fraction(tmp_path):
    ts = datetime(2024, 5, 3, 23, 59, 59, 999_000, tzinfo=timezone(timedelta(hours=8)))
    path = write(tmp_path, make_statement([make_entry(0, ts=ts)]))
    assert rows(path, "明细")[1][2] == datetime(2024, 5, 3, 23, 59, 59)


def test_rules_sheet(tmp_path):
    path = write(tmp_path, make_statement(mixed_entries()))
    got = rows(path, "规则")[1:]
    assert got == [("R1", "首次响应超时", "policy/a.rules:3", "罚款", "10元", 3, 1, 20.61, "一直有效"),
                   ("R2", "好评奖励", "policy/a.rules:9", "奖励", "5元", 2, 0, 1234572.89, "一直有效")]


def test_info_sheet(tmp_path):
    path = write(tmp_path, make_statement(mixed_entries()))
    info = dict(rows(path, "说明")[1:])
    assert info["月份"] == "2024-05"
    assert info["时区"] == "Asia/Shanghai"
    assert info["规则集名称"] == "店铺规则"
    assert info["ledger 版本"] == "0.1.0"
    assert info["数据截止"] == "2024-05-31 23:59:00"
    assert info["合并重复行"] == 2
    assert info["规则文件 1"] == "policy/a.rules"
    assert info["规则文件 1 SHA-256"] == "a" * 64
    assert info["事件文件 1"] == "events/msg.csv"
    assert info["事件文件 1 编码"] == "gb18030"
    assert info["事件文件 1 SHA-256"] == "b" * 64
    assert (info["事件文件 1 读取行数"], info["事件文件 1 接受行数"], info["事件文件 1 拒收行数"]) == (10, 9, 1)
    assert info["事件文件 2"] == "events/orders.xlsx"
    assert info["忽略的文件 1"] == "events/readme.txt"
    assert (info["读取行数合计"], info["接受行数合计"], info["拒收行数合计"]) == (15, 14, 1)


def test_empty_statement(tmp_path):
    path = write(tmp_path, make_statement([], info=make_info(data_end="", event_files=())))
    assert rows(path, "汇总") == [SUMMARY_HEADER, ("合计", 0, 0, 0, 0, 0)]
    assert rows(path, "明细") == [DETAIL_HEADER]
    assert dict(rows(path, "说明")[1:])["数据截止"] == "（无数据）"


def test_every_sheet_has_frozen_header_filter_and_widths(tmp_path):
    entries = [make_entry(i) for i in range(7)]
    path = write(tmp_path, make_statement(entries, agents={"小赵"}), max_rows=3)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "明细", "明细2", "明细3", "明细4", "规则", "说明"]
    assert wb.active.title == "汇总"
    filters = []
    for ws in wb:
        last = get_column_letter(ws.max_column)
        footer = 1 if ws.title == "汇总" else 0  # the 合计 row is outside the filter
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:{last}{ws.max_row - footer}"
        filters.append(ws.auto_filter.ref)
        for col in range(1, ws.max_column + 1):
            dim = ws.column_dimensions[get_column_letter(col)]
            assert dim.customWidth and cells.MIN_WIDTH <= dim.width <= cells.MAX_WIDTH
    # Excel keeps each filter's range as a hidden name local to its sheet.
    with zipfile.ZipFile(path) as z:
        book = ET.fromstring(z.read("xl/workbook.xml"))
    names = {int(d.get("localSheetId")): d.text for d in book.iter(f"{{{MAIN_NS}}}definedName")
             if d.get("name") == "_xlnm._FilterDatabase" and d.get("hidden") == "1"}
    assert names == {i: f"'{ws.title}'!" + re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", ref)
                     for i, (ws, ref) in enumerate(zip(wb, filters))}


def test_package_is_minimal_and_well_formed(tmp_path):
    path = write(tmp_path, make_statement(mixed_entries()), max_rows=4)
    sheets = openpyxl.load_workbook(path).sheetnames
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names == ["[Content_Types].xml", "_rels/.rels", "docProps/app.xml", "docProps/core.xml",
                         "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml",
                         *[f"xl/worksheets/sheet{i}.xml" for i in range(1, len(sheets) + 1)]]
        parts = {name: ET.fromstring(z.read(name)) for name in names}  # every part is well-formed
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    overrides = {o.get("PartName") for o in parts["[Content_Types].xml"] if o.tag.endswith("Override")}
    assert overrides == {f"/{n}" for n in names if not n.endswith(".rels") and n != "[Content_Types].xml"}
    assert all(not list(parts[n].iter(f"{{{MAIN_NS}}}f")) for n in names)  # never a formula



# ------------------------------------------------------- 1. no text is a formula


def test_hostile_text_is_never_a_formula(tmp_path):
    entries = [make_entry(i, agent=text, buyer=text, excerpt=text, evidence=text,
                          conversation=text, order=text, rule_title=text)
               for i, text in enumerate(HOSTILE)]
    info = make_info(policy_name="=1+1", policy_files=(FileInfo("=1+1.rules", "@A1"),),
                     ignored_files=("+SUM(A1)",))
    rules = [("=R1", "-2+3", "@A1", FINE, "=10元")]
    path = write(tmp_path, make_statement(entries, info=info, rules=rules))

    for name, xml in sheet_xml(path).items():
        assert not re.search(r"<f[\s>/]", xml), f"formula in {name}"

    wb = openpyxl.load_workbook(path)
    detail = wb["明细"]
    for row, text in enumerate(HOSTILE, 2):
        for col in ("客服", "买家", "摘录", "依据", "会话", "订单", "说明"):
            cell = detail.cell(row=row, column=DETAIL_HEADER.index(col) + 1)
            assert cell.data_type == "s"
            assert cell.value == text
    assert wb["规则"]["A2"].value == "=R1" and wb["规则"]["A2"].data_type == "s"
    assert wb["说明"]["B4"].value == "=1+1" and wb["说明"]["B4"].data_type == "s"


# ------------------------------------------------------ 2. text survives intact


def test_openpyxl_reader_does_not_decode_escapes(tmp_path):
    """Why the round trip decodes: openpyxl hands back `_xHHHH_` as written.

    Excel and LibreOffice decode it (see the LibreOffice test). If openpyxl ever
    starts decoding, this test fails and `read_excerpt` must stop decoding.
    """
    path = write(tmp_path, one_entry_statement("a\x01b"))
    raw = openpyxl.load_workbook(path)["明细"].cell(row=2, column=12).value
    assert raw == "a_x0001_b"


@pytest.mark.parametrize("text", TRICKY + HOSTILE)
def test_tricky_text_round_trips(tmp_path, text):
    path = write(tmp_path, one_entry_statement(text))
    assert read_excerpt(path) == text


@settings(max_examples=n_examples(150), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
def test_any_text_round_trips(tmp_path, text):
    path = write(tmp_path, one_entry_statement(text))
    # An empty text is an empty cell.
    assert read_excerpt(path) == (text or None)


TEXT_COLUMNS = {"agent": "客服", "buyer": "买家", "excerpt": "摘录", "evidence": "依据",
                "conversation": "会话", "order": "订单", "rule_title": "说明"}


@settings(max_examples=n_examples(60), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.tuples(*[st.text()] * len(TEXT_COLUMNS)), min_size=1, max_size=4))
def test_any_text_in_any_column_round_trips(tmp_path, texts):
    entries = [make_entry(i, **dict(zip(TEXT_COLUMNS, row))) for i, row in enumerate(texts)]
    path = write(tmp_path, make_statement(entries))
    for xml in sheet_xml(path).values():
        ET.fromstring(xml)  # well-formed whatever the text
    ws = openpyxl.load_workbook(path)["明细"]
    for r, row in enumerate(texts, 2):
        for header, text in zip(TEXT_COLUMNS.values(), row):
            cell = ws.cell(row=r, column=DETAIL_HEADER.index(header) + 1)
            assert (None if cell.value is None else decode_text(cell.value)) == (text or None)


@pytest.mark.parametrize("text", [" ", "  ", "\t", "\n", " \t\n ", " a", "a ", "\u3000", "a\n", "\u3000前"])
def test_whitespace_at_either_end_is_marked_preserve(tmp_path, text):
    path = write(tmp_path, one_entry_statement(text))
    assert f'<t xml:space="preserve">{text}</t>' in sheet_xml(path)["明细"]
    assert read_excerpt(path) == text


def test_text_without_whitespace_at_the_ends_is_plain(tmp_path):
    path = write(tmp_path, one_entry_statement("a b\tc"))
    assert "<t>a b\tc</t>" in sheet_xml(path)["明细"]


def test_markup_characters_are_escaped(tmp_path):
    text = '<t>&amp;</t> "\'>'
    path = write(tmp_path, one_entry_statement(text))
    assert "<t>&lt;t&gt;&amp;amp;&lt;/t&gt; \"'&gt;</t>" in sheet_xml(path)["明细"]
    assert read_excerpt(path) == text



@settings(max_examples=n_examples(2000))
@given(text=st.text(alphabet=st.sampled_from("_x05F0Aa1g\x01\r\n \ufffe")) | st.text())
def test_encode_decode_inverse(text):
    encoded = encode_text(text)
    assert decode_text(encoded) == text
    assert not re.search("[\x00-\x08\x0b\x0c\r\x0e-\x1f\ufffe\uffff]", encoded)


def test_escape_matches_excel():
    assert encode_text("\x01") == "_x0001_"
    assert encode_text("a\rb") == "a_x000D_b"
    assert encode_text("_x0041_") == "_x005F_x0041_"
    assert encode_text("_x0041_x0042_") == "_x005F_x0041_x005F_x0042_"
    assert encode_text("a\nb\tc") == "a\nb\tc"
    assert encode_text("_x004g_") == "_x004g_"


def test_long_text_is_truncated_with_marker(tmp_path):
    text = "长" * 40_000
    path = write(tmp_path, one_entry_statement(text))
    got = read_excerpt(path)
    assert len(got) == MAX_CELL_CHARS
    assert got.endswith(TRUNCATED)
    assert got == text[: MAX_CELL_CHARS - len(TRUNCATED)] + TRUNCATED


def test_text_at_the_limit_is_kept(tmp_path):
    text = "x" * (MAX_CELL_CHARS - 1) + "\x01"
    path = write(tmp_path, one_entry_statement(text))
    assert read_excerpt(path) == text


def test_truncation_counts_utf16_units():
    text = "😀" * 20_000  # 40,000 UTF-16 units
    got = cells.clip_text(text)
    assert got.endswith(TRUNCATED)
    assert len(got.encode("utf-16-le")) // 2 <= MAX_CELL_CHARS
    assert got[:-len(TRUNCATED)] == "😀" * len(got[:-len(TRUNCATED)])


# --------------------------------------------------------- 3. byte-identical


def test_same_statement_same_bytes(tmp_path):
    statement = make_statement(mixed_entries(), agents={"小赵"})
    first = write(tmp_path, statement, "a.xlsx").read_bytes()
    time.sleep(1.1)
    second = write(tmp_path, statement, "b.xlsx").read_bytes()
    assert first == second

    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        assert all(info.date_time == FIXED_ZIP_TIME for info in z.infolist())
        core = z.read("docProps/core.xml").decode()
    assert core.count("2024-05-01T00:00:00Z") == 2  # created and modified


def test_bytes_do_not_depend_on_chunks_or_the_text_cache(tmp_path, monkeypatch):
    entries = [make_entry(i, excerpt=TRICKY[i % len(TRICKY)]) for i in range(60)]
    statement = make_statement(entries, agents={"小赵"})
    first = write(tmp_path, statement, "a.xlsx", max_rows=25).read_bytes()
    monkeypatch.setattr(writer, "CHUNK_ROWS", 1)
    monkeypatch.setattr(writer, "_CACHE_MAX_ENTRIES", 1)
    second = write(tmp_path, statement, "b.xlsx", max_rows=25).read_bytes()
    assert first == second


def test_zip64_when_a_part_outgrows_a_plain_zip_entry(tmp_path, monkeypatch):
    """A part of 4 GiB or more needs ZIP64, known only once written: the package is
    written again with ZIP64 for that part. A small limit stands in for 4 GiB."""
    statement = make_statement([make_entry(i) for i in range(40)], agents={"小赵"})
    plain = write(tmp_path, statement, "plain.xlsx")
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 4000)
    big = [write(tmp_path, statement, name).read_bytes() for name in ("a.xlsx", "b.xlsx")]
    monkeypatch.undo()
    assert big[0] == big[1]
    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        zip64 = {i.filename for i in z.infolist() if b"\x01\x00" == _local_extra(big[0], i)[:2]}
        assert z.getinfo("xl/worksheets/sheet2.xml").file_size > 4000
    assert zip64 == {"xl/worksheets/sheet2.xml"}  # 明细, the only part over the limit
    for sheet in ("汇总", "明细", "说明"):
        assert rows(tmp_path / "a.xlsx", sheet) == rows(plain, sheet)


def _local_extra(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """The extra field of an entry's local header."""
    off = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[off + 26:off + 30])
    return data[off + 30 + name_len:off + 30 + name_len + extra_len]



def test_other_month_other_document_date(tmp_path):
    statement = make_statement([make_entry(0)], info=make_info(month="2024-06"))
    path = write(tmp_path, statement)
    assert openpyxl.load_workbook(path).properties.modified == datetime(2024, 6, 1)


# ---------------------------------------------------------------- 4. atomic


def test_success_leaves_only_the_target(tmp_path):
    write(tmp_path, make_statement(mixed_entries()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xlsx"]


def test_failure_leaves_nothing(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where scratch files would go
    out = tmp_path / "out"
    calls = []

    def exploding_row(entry):
        calls.append(entry)
        if len(calls) > 1003:  # past the width sample: fail mid-stream
            raise RuntimeError("boom")
        return real_row(entry)

    real_row = sheets.detail_row
    monkeypatch.setattr(sheets, "detail_row", exploding_row)
    monkeypatch.setattr(writer, "THREAD_CHARS", 0)  # the sheet is deflated on the thread
    entries = [make_entry(i) for i in range(1500)]
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="boom"):
        write_statement(make_statement(entries), out / "statement.xlsx")
    assert sorted(p.name for p in out.iterdir()) == []
    assert sorted(p.name for p in scratch.iterdir()) == []  # the writer uses no scratch files
    assert threading.active_count() == threads  # the compressing thread has ended


def test_failure_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "statement.xlsx"
    target.write_bytes(b"old")
    real_part = writer._write_part

    def disk_full_at_the_sheets(zf, name, chunks, force_zip64, threaded=True):
        if name.startswith("xl/worksheets/"):  # after the first parts are in the zip
            raise OSError("disk full")
        real_part(zf, name, chunks, force_zip64, threaded)

    monkeypatch.setattr(writer, "_write_part", disk_full_at_the_sheets)
    with pytest.raises(OSError):
        write_statement(make_statement([make_entry(0)]), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["statement.xlsx"]


def test_failure_while_compressing_reaches_the_caller(tmp_path, monkeypatch):
    """Deflating runs on a second thread: its errors must surface, and it must end."""
    target = tmp_path / "statement.xlsx"
    target.write_bytes(b"old")
    real_write = zipfile._ZipWriteFile.write
    written = []

    def disk_full(self, data):
        if self._zinfo.filename == "xl/worksheets/sheet2.xml":  # 明细
            written.append(threading.current_thread())
            if len(written) > 3:
                raise OSError("disk full")
        return real_write(self, data)

    monkeypatch.setattr(writer, "CHUNK_ROWS", 10)  # many chunks, so the error comes mid-sheet
    monkeypatch.setattr(writer, "THREAD_CHARS", 0)  # and deflated on the thread, small as the sheet is
    monkeypatch.setattr(zipfile._ZipWriteFile, "write", disk_full)
    threads = threading.active_count()
    with pytest.raises(OSError, match="disk full"):
        write_statement(make_statement([make_entry(i) for i in range(500)]), target)
    assert len(written) == 4 and threading.main_thread() not in written
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["statement.xlsx"]
    assert threading.active_count() == threads


# ------------------------------------------------------------- 5. row limit


def detail_sheets(path: Path) -> dict[str, list[tuple]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: list(ws.iter_rows(values_only=True))
            for ws in wb if ws.title.startswith("明细")}


def test_detail_splits_at_max_rows(tmp_path):
    entries = [make_entry(i) for i in range(7)]
    path = write(tmp_path, make_statement(entries), max_rows=3)
    sheets = detail_sheets(path)
    assert list(sheets) == ["明细", "明细2", "明细3", "明细4"]
    assert [len(r) for r in sheets.values()] == [3, 3, 3, 2]
    assert all(r[0] == DETAIL_HEADER for r in sheets.values())
    ids = [row[0] for r in sheets.values() for row in r[1:]]
    assert ids == [e.id for e in entries]
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["汇总", "明细", "明细2", "明细3", "明细4", "规则", "说明"]
    assert wb["明细4"].auto_filter.ref == "A1:O2"
    assert wb["明细2"].freeze_panes == "A2"


def test_exact_fill_makes_no_empty_sheet(tmp_path):
    path = write(tmp_path, make_statement([make_entry(i) for i in range(4)]), max_rows=3)
    assert list(detail_sheets(path)) == ["明细", "明细2"]


def test_max_rows_must_leave_room_for_data(tmp_path):
    with pytest.raises(ValueError):
        write_statement(make_statement([]), tmp_path / "x.xlsx", max_rows=1)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------ 6. numbers are numbers


def test_money_is_exact_in_the_xml(tmp_path):
    path = write(tmp_path, make_statement(mixed_entries()))
    xml = sheet_xml(path)
    assert "<v>0.10</v>" in xml["明细"]
    assert "<v>1234567.89</v>" in xml["明细"]
    assert "<v>1234567.89</v>" in xml["汇总"]
    wb = openpyxl.load_workbook(path)
    cell = wb["明细"].cell(row=2, column=DETAIL_HEADER.index("金额") + 1)
    assert cell.data_type == "n" and cell.number_format == "0.00"
    assert Decimal(str(cell.value)) == Decimal("0.10")


def test_numbers_read_back_as_numbers_and_add_up(tmp_path):
    path = write(tmp_path, make_statement(mixed_entries(), agents={"小赵"}), max_rows=3)
    wb = openpyxl.load_workbook(path)
    fines: dict[str, Decimal] = {}
    bonuses: dict[str, Decimal] = {}
    col = {name: i for i, name in enumerate(DETAIL_HEADER)}
    for ws in wb:
        if not ws.title.startswith("明细"):
            continue
        for row in ws.iter_rows(min_row=2):
            amount = row[col["金额"]]
            if row[col["状态"]].value == "待定":
                assert amount.value is None
                continue
            assert amount.data_type == "n" and isinstance(amount.value, (int, float))
            bucket = fines if row[col["类型"]].value == "罚款" else bonuses
            agent = row[col["客服"]].value
            bucket[agent] = bucket.get(agent, Decimal(0)) + Decimal(str(amount.value))

    summary = wb["汇总"]
    money_rows = list(summary.iter_rows(min_row=2))
    for r in money_rows:
        for c in r[1:4]:
            assert c.data_type == "n" and c.number_format == "0.00"
        for c in r[4:6]:
            assert c.data_type == "n" and isinstance(c.value, int)
    for r in money_rows[:-1]:
        agent, fine, bonus, net = (c.value for c in r[:4])
        assert Decimal(str(fine)) == fines.get(agent, 0)
        assert Decimal(str(bonus)) == bonuses.get(agent, 0)
        assert Decimal(str(net)) == bonuses.get(agent, 0) - fines.get(agent, 0)
    total = money_rows[-1]
    assert total[0].value == "合计" and total[0].font.b
    assert Decimal(str(total[1].value)) == sum(fines.values())
    assert Decimal(str(total[2].value)) == sum(bonuses.values())


@settings(max_examples=n_examples(40), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.decimals(min_value=0, max_value=Decimal("9999999999999.99"), places=2),
                        min_size=1, max_size=5))
def test_any_amount_reads_back_as_the_same_number(tmp_path, amounts):
    path = write(tmp_path, make_statement([make_entry(i, amount=a) for i, a in enumerate(amounts)]))
    xml = sheet_xml(path)["明细"]
    ws = openpyxl.load_workbook(path)["明细"]
    col = DETAIL_HEADER.index("金额") + 1
    for r, amount in enumerate(amounts, 2):
        cell = ws.cell(row=r, column=col)
        assert cell.data_type == "n" and isinstance(cell.value, (int, float))
        assert Decimal(repr(cell.value)) == amount
        assert f'"><v>{amount:f}</v>' in xml


@settings(max_examples=n_examples(40), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ts=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_any_time_reads_back_as_the_same_time(tmp_path, ts):
    path = write(tmp_path, make_statement([make_entry(0, ts=ts)]))
    cell = openpyxl.load_workbook(path)["明细"]["C2"]
    assert cell.is_date and cell.number_format == "yyyy-mm-dd hh:mm:ss"
    assert cell.value == ts.replace(microsecond=0)


class Token(str):
    """A str subclass, like the tokens a parser hands out."""


class Count(int):
    pass


class Stamp(datetime):
    pass


def test_subclasses_of_plain_values_are_plain_cells(tmp_path):
    rules = [(Token("=R1"), Token("首次响应超时"), Token("policy/a.rules:3"), FINE, Token("10元"))]
    entries = [make_entry(0, rule_id=Token("=R1"), ts=Stamp(2024, 5, 1, 9, 0, 0, 500))]
    info = make_info(duplicates_folded=Count(2))
    path = write(tmp_path, make_statement(entries, info=info, rules=rules))
    assert rows(path, "规则")[1][:5] == ("=R1", "首次响应超时", "policy/a.rules:3", "罚款", "10元")
    assert rows(path, "明细")[1][2] == T0
    assert dict(rows(path, "说明")[1:])["合并重复行"] == 2
    for name, xml in sheet_xml(path).items():
        assert not re.search(r"<f[\s>/]", xml), f"formula in {name}"


@pytest.mark.parametrize("bad", [1.5, True, date(2024, 5, 1), Decimal("NaN")])
def test_values_without_a_cell_type_fail_and_leave_nothing(tmp_path, monkeypatch, bad):
    real_row = sheets.detail_row
    monkeypatch.setattr(sheets, "detail_row", lambda e: (*real_row(e)[:7], bad, *real_row(e)[8:]))
    with pytest.raises((TypeError, ValueError)):
        write_statement(make_statement([make_entry(0)]), tmp_path / "out" / "s.xlsx")
    assert list((tmp_path / "out").iterdir()) == []



# ---------------------------------------------------- 7. LibreOffice reads it

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed")
def test_libreoffice_reads_totals_and_text(tmp_path):
    entries = mixed_entries() + [make_entry(10 + i, agent="小李", amount=Decimal("1.00"), excerpt=t)
                                 for i, t in enumerate(["=1+1", "_x0041_", "a\x01b", "_x0041\x01",
                                                        " 前后 ", "a\nb", "😀"])]
    statement = make_statement(entries, agents={"小赵"})
    path = write(tmp_path, statement, "s.xlsx")
    csv_dir = tmp_path / "csv"
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
         "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
         "--outdir", str(csv_dir), str(path)],
        check=True, capture_output=True, timeout=180,
    )

    def read_csv(sheet):
        with open(csv_dir / f"s-{sheet}.csv", newline="", encoding="utf-8") as f:
            return list(csv.reader(f))

    summary = read_csv("汇总")
    assert summary[0] == list(SUMMARY_HEADER)
    by_agent = {r[0]: [Decimal(v) for v in r[1:]] for r in summary[1:]}
    for a in statement.agents:
        assert by_agent[a.agent] == [a.fines, a.bonuses, a.net, a.count, a.pending]
    assert by_agent["合计"][:3] == [statement.total_fines, statement.total_bonuses,
                                   statement.total_bonuses - statement.total_fines]

    detail = read_csv("明细")
    excerpt = DETAIL_HEADER.index("摘录")
    assert [r[excerpt] for r in detail[1:]] == [e.excerpt for e in statement.entries]


# LibreOffice keeps a line break in a cell as LF: it reads CR, CRLF and LFCR as one LF.
# (The workbook holds the CR, as `_x000D_`: see the round-trip tests.)
def _line_breaks(text: str) -> str:
    return re.sub("\r\n|\n\r|\r", "\n", text)


def libreoffice_csv(path: Path, tmp_path: Path) -> dict[str, list[list[str]]]:
    """Every sheet as LibreOffice shows it (formatted, as on screen), via CSV export."""
    out = tmp_path / "lo-csv"
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}", "--headless",
         "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1",
         "--outdir", str(out), str(path)],
        check=True, capture_output=True, timeout=180,
    )
    sheets = {}
    for f in out.glob(f"{path.stem}-*.csv"):
        with open(f, newline="", encoding="utf-8") as fh:
            sheets[f.stem.removeprefix(f"{path.stem}-")] = list(csv.reader(fh))
    return sheets


def random_texts(n: int, seed: int = 7) -> list[str]:
    """Short texts built from the characters that are hard for a writer."""
    pieces = [chr(c) for c in range(0x20)] + [
        "\x7f", "\x85", "\ufffe", "\uffff", "\ufdd0", "\u2028", "\u3000", "\u200b", "\u0301", " ",
        "\t", "\n", "\r", "\r\n", "_x0041_", "_x", "_x005F_", "_X0041_", "&", "<", ">", '"', "'",
        "=", "+", "-", "@", "中", "文", "😀", "a", "Z", "0", "]]>", "&amp;"]
    rnd = random.Random(seed)
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randrange(1, 10))) for _ in range(n)]


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed")
def test_libreoffice_and_openpyxl_read_the_same_values(tmp_path):
    texts = TRICKY + HOSTILE + [" ", "\t", "\n", " \t\n ", "\u3000"] + random_texts(150)
    entries = mixed_entries() + [
        make_entry(10 + i, agent=f"客服{i % 3}", excerpt=t, buyer=t[::-1] or None,
                   amount=Decimal(i) / 4, ts=T0 + timedelta(days=i % 28, seconds=i * 37))
        for i, t in enumerate(texts)]
    statement = make_statement(entries, agents={"小赵"})
    path = write(tmp_path, statement, "s.xlsx", max_rows=60)
    wb = openpyxl.load_workbook(path)
    assert len(wb.sheetnames) > 5  # 明细 is split

    def shown(value):
        """What a cell shows, from openpyxl's value."""
        if value is None:
            return ""
        if isinstance(value, str):
            return _line_breaks(decode_text(value))
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value

    lo = libreoffice_csv(path, tmp_path)
    assert sorted(lo) == sorted(wb.sheetnames)
    for ws in wb:
        got = lo[ws.title]
        cells = [[c for c in row] for row in ws.iter_rows()]
        assert len(got) == len(cells), ws.title
        for lo_row, row in zip(got, cells):
            assert len(lo_row) == len(row), ws.title
            for text, cell in zip(lo_row, row):
                want = shown(cell.value)
                if isinstance(want, float) or cell.number_format == "0.00":
                    assert text == f"{Decimal(repr(want)):.2f}", (ws.title, cell.coordinate)
                elif isinstance(want, int):
                    assert text == str(want), (ws.title, cell.coordinate)
                else:
                    assert _line_breaks(text) == want, (ws.title, cell.coordinate)


def test_deflating_in_place_or_on_a_thread_gives_the_same_bytes(tmp_path):
    """Parts of several chunks are deflated on a thread, unless threaded=False (the
    forked per-agent writers): the bytes must not depend on it."""
    statement = make_statement([make_entry(i) for i in range(3 * writer.CHUNK_ROWS + 7)])
    tables = [sheets.summary_table(statement), *sheets.detail_tables(statement.entries, cells.EXCEL_MAX_ROWS)]
    writer.write_tables(tables, statement.info, tmp_path / "a.xlsx", threaded=True)
    writer.write_tables(tables, statement.info, tmp_path / "b.xlsx", threaded=False)
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
