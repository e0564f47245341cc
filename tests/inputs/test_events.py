"""Reading event files into the `events` table (src/ledger/inputs/)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ledger.core.errors import LedgerError
from ledger.inputs import events, line_rows, sql_plan, sql_reader
from ledger.inputs.contract import parse_bool, parse_ts
from ledger.inputs.events import load_events
from ledger.inputs.settings import READER_ENV, ReaderSettings

from conftest import n_examples

TZ = ZoneInfo("Asia/Shanghai")
CHINESE = "亲，您好！请问有什么可以帮您？「核对订单」￥12.50 多拍/拍错/不想要"
SCHEMA = {
    "order_paid": {"amount": "money"},
    "refund_requested": {"amount": "money"},
    "shift_end": {"handover": "bool"},
    "rating": {"score": "number"},
}


# -- helpers ----------------------------------------------------------------

@pytest.fixture(autouse=True, params=["python", "fast"])
def reader(request, monkeypatch):
    """Every test runs with both readers: the row-by-row Python one and the set-based
    one (forced for every UTF-8 CSV file, however small)."""
    monkeypatch.setenv(READER_ENV, request.param)
    return request.param


def csv_bytes(rows, encoding="utf-8", delimiter=",") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode(encoding)


def put(root: Path, name: str, data: bytes | str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def jsonl(*objs, ascii=False) -> str:
    return "".join(json.dumps(o, ensure_ascii=ascii) + "\n" for o in objs)


def load(root: Path, schema=None):
    con = duckdb.connect()
    result = load_events(root, con, tz=TZ, schema=schema or {})
    for f in result.files:
        assert f.accepted + f.rejected == f.read, f
    return result, con


def table(con, columns="*"):
    cur = con.execute(f"SELECT {columns} FROM events ORDER BY seq")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def reasons(result):
    return [(r.file, r.line, r.reason) for r in result.rejects]


# -- encodings --------------------------------------------------------------

@pytest.mark.parametrize("encoding, reported", [
    ("utf-8", "utf-8"),
    ("utf-8-sig", "utf-8-sig"),
    ("gbk", "gb18030"),
    ("gb18030", "gb18030"),
    ("utf-16", "utf-16-le"),  # Python writes a little-endian BOM
    ("utf-16-be", "utf-16-be"),  # no BOM: found by its NUL bytes
])
def test_csv_encodings_round_trip_chinese(tmp_path, encoding, reported):
    rows = [["ts", "type", "agent", "text"],
            ["2024-05-01 10:00:00", "message", "某某旗舰店:小王", CHINESE],
            ["2024-05-01 10:01:00", "message", "某某旗舰店:小王", "好的，马上为您核对一下"]]
    put(tmp_path, "chat.csv", csv_bytes(rows, encoding))
    result, con = load(tmp_path)
    assert result.files[0].encoding == reported
    assert result.rejects == ()
    assert [(r["agent"], r["text"]) for r in table(con)] == [(row[2], row[3]) for row in rows[1:]]


def test_utf16_tab_separated_excel_unicode_text(tmp_path):
    rows = [["ts", "type", "text"], ["2024-05-01 10:00:00", "message", "逗号,不分列"]]
    put(tmp_path, "export.csv", csv_bytes(rows, "utf-16", delimiter="\t"))
    _, con = load(tmp_path)
    assert table(con, "text") == [{"text": "逗号,不分列"}]


def test_mostly_utf8_file_rejects_only_the_bad_line(tmp_path):
    good = "2024-05-01 10:00:00,message,您好\r\n".encode()
    bad = "2024-05-01 10:01:00,message,坏行\r\n".encode("gbk")
    put(tmp_path, "a.csv", b"ts,type,text\r\n" + good + bad + good.replace(b"10:00", b"10:02"))
    result, con = load(tmp_path)
    assert result.files[0].encoding == "utf-8"
    assert reasons(result) == [("a.csv", 3, "无法解码 (undecodable bytes) as utf-8")]
    assert "\ufffd" in result.rejects[0].raw and result.rejects[0].raw.startswith("2024-05-01 10:01:00")
    assert [r["text"] for r in table(con)] == ["您好", "您好"]


def test_jsonl_with_bom_decimals_and_json_types(tmp_path):
    lines = [
        '{"ts": "2024-05-01 10:00:00", "type": "order_paid", "amount": 0.1, "order": 123}',
        '{"ts": "2024-05-01 10:00:01", "type": "order_paid", "amount": 12.50, "paid": true}',
        '{"ts": "2024-05-01 10:00:02", "type": "order_paid", "amount": "1,234.00", "note": null}',
        '{"ts": "2024-05-01 10:00:03", "type": "refund_requested", "amount": 1e2, "ratio": 0.30}',
    ]
    put(tmp_path, "orders.jsonl", "\ufeff" + "\n".join(lines) + "\n")
    result, con = load(tmp_path, SCHEMA)
    assert result.files[0].encoding == "utf-8-sig" and result.rejects == ()
    got = table(con, '"order", amount, paid, note, ratio')
    assert got == [
        {"order": "123", "amount": "0.1", "paid": None, "note": None, "ratio": None},
        {"order": None, "amount": "12.5", "paid": "true", "note": None, "ratio": None},
        {"order": None, "amount": "1234", "paid": None, "note": None, "ratio": None},
        {"order": None, "amount": "100", "paid": None, "note": None, "ratio": "0.3"},
    ]
    assert result.columns == ("amount", "note", "paid", "ratio")


def test_jsonl_rejects(tmp_path):
    put(tmp_path, "e.jsonl", "\n".join([
        '{"ts": "2024-05-01 10:00:00", "type": "message"}',
        "[1, 2]",
        "",
        '{"ts": "2024-05-01 10:00:00", "type": "message", "text": {"a": 1}}',
        "{not json",
        '{"ts": "2024-05-01 10:00:00", "type": "message", "x": 1, "x": 2}',
    ]) + "\n")
    result, _ = load(tmp_path)
    assert [(line, reason.split(" (")[0]) for _, line, reason in reasons(result)] == [
        (2, "不是 JSON 对象"),
        (4, "字段 text 是嵌套的对象或数组"),
        (5, "JSON 无法解析"),
        (6, "重复的键"),
    ]
    assert result.files[0].read == 5  # the blank line is not a row


# -- rejects and line numbers -----------------------------------------------

def test_csv_rejects_report_the_line_a_record_starts_on(tmp_path):
    put(tmp_path, "a.csv", (
        "ts,type,agent,amount,handover,text\r\n"               # 1
        '2024-05-01 10:00:00,message,小王,,,"第一行\r\n'        # 2  a record over 3 lines
        '第二行\r\n'                                            # 3
        '第三行"\r\n'                                           # 4
        "2024-05-01 10:00:00,message,小王,,,x,extra,more\r\n"   # 5
        "2024-13-01 10:00,message,小王,,,x\r\n"                 # 6
        "\r\n"                                                  # 7  blank: skipped
        "2024-05-01 10:00:00,,小王,,,x\r\n"                     # 8
        "2024-05-01 10:00:00,order_paid,小王,abc,,\r\n"         # 9
        "2024-05-01 10:00:00,shift_end,小王,,maybe,\r\n"        # 10
        ",,,,,\r\n"                                             # 11 blank: skipped
        ",message,小王,,,x\r\n"                                 # 12
        "2024-05-01 10:00:00,shift_end,小王,,是,\r\n"           # 13
    ))
    result, con = load(tmp_path, SCHEMA)
    assert reasons(result) == [
        ("a.csv", 5, "列数不对 (wrong column count): 期望 6 列，实际 8 列"),
        ("a.csv", 6, "ts 无法解析 (unparseable ts): '2024-13-01 10:00'"),
        ("a.csv", 8, "缺少 type (missing type)"),
        ("a.csv", 9, "字段 amount 不是金额 (money expected): 'abc'"),
        ("a.csv", 10, "字段 handover 不是是/否 (yes/no expected): 'maybe'"),
        ("a.csv", 12, "缺少 ts (missing ts)"),
    ]
    assert result.rejects[0].raw == "2024-05-01 10:00:00,message,小王,,,x,extra,more"
    report = result.files[0]
    assert (report.read, report.accepted, report.rejected) == (8, 2, 6)
    assert table(con, "src_line, text, handover") == [
        {"src_line": 2, "text": "第一行\r\n第二行\r\n第三行", "handover": None},
        {"src_line": 13, "text": None, "handover": "true"},
    ]


def test_unclosed_quote_is_rejected_not_swallowed_into_a_field(tmp_path):
    put(tmp_path, "a.csv", 'ts,type,text\n2024-05-01 10:00:00,message,"oops\n2024-05-01 10:01:00,message,x\n')
    put(tmp_path, "b.csv", 'ts,type,text\n2024-05-01 10:00:00,message,"a"b\n2024-05-01 10:01:00,message,ok\n')
    result, con = load(tmp_path)
    assert [(r.file, r.line) for r in result.rejects] == [("a.csv", 2), ("b.csv", 2)]
    assert result.rejects[0].reason.startswith("CSV 格式错误 (malformed CSV)")
    assert "unclosed quote?" in result.rejects[0].reason
    assert result.rejects[0].raw == '2024-05-01 10:00:00,message,"oops\n2024-05-01 10:01:00,message,x'
    assert table(con, "src_file, src_line, text") == [{"src_file": "b.csv", "src_line": 3, "text": "ok"}]


def test_duplicate_header_skips_the_file_but_counts_its_rows(tmp_path):
    put(tmp_path, "a.csv", "ts,type,text,text\n2024-05-01 10:00:00,message,a,b\n\n2024-05-01 10:00:01,message,c,d\n")
    put(tmp_path, "b.csv", "ts,type\n2024-05-01 10:00:00,message\n")
    result, _ = load(tmp_path)
    assert [(r.file, r.line) for r in result.rejects] == [("a.csv", 1), ("a.csv", 2), ("a.csv", 4)]
    assert "重复的列名 (duplicate column names): text" in result.rejects[0].reason
    assert [(f.path, f.read, f.accepted, f.rejected) for f in result.files] == [("a.csv", 2, 0, 2), ("b.csv", 1, 1, 0)]
    assert result.n_events == 1


def test_column_names_differing_only_in_case_cannot_share_a_table(tmp_path):
    put(tmp_path, "a.csv", "ts,type,note\n2024-05-01 10:00:00,message,x\n")
    put(tmp_path, "b.csv", "ts,type,Note\n2024-05-01 10:00:00,message,y\n")
    put(tmp_path, "c.csv", " TS ,Type\n2024-05-01 10:00:00,message\n")
    result, con = load(tmp_path)
    assert [(r.file, r.line) for r in result.rejects] == [("b.csv", 1), ("b.csv", 2), ("c.csv", 1), ("c.csv", 2)]
    assert "note" in result.rejects[0].reason and "a.csv" in result.rejects[0].reason
    assert result.columns == ("note",) and table(con, "note") == [{"note": "x"}]


# -- duplicates and ids -----------------------------------------------------

def test_duplicate_ids_fold_when_identical_and_the_newer_version_wins_when_different(tmp_path):
    header = ["id", "ts", "type", "order", "amount", "status"]
    put(tmp_path, "a.csv", csv_bytes([header, ["e1", "2024-05-01 10:00:00", "order_paid", "o1", "12.50", "退款成功"]]))
    put(tmp_path, "b.csv", csv_bytes([header,
                                      ["e1", "2024-05-01 10:00:00", "order_paid", "o1", "12.5", "退款成功"],  # same
                                      ["e1", "2024-05-01 10:00:00", "order_paid", "o1", "13", "退款中"]]))
    result, con = load(tmp_path, SCHEMA)
    assert reasons(result) == [("b.csv", 3, "同一记录（同一 id）有较新的版本，这一行未采用 (superseded by a newer version "
                                            "of the same id)；采用 a.csv:2，因为状态已完结 (final status)；采用的行 "
                                            "(kept row): e1,2024-05-01 10:00:00,order_paid,o1,12.50,退款成功")]
    assert [(f.read, f.accepted, f.rejected, f.duplicates) for f in result.files] == [(1, 1, 0, 0), (2, 1, 1, 1)]
    assert result.duplicates_folded == 1 and result.n_events == 1
    assert table(con, "id, amount, src_file") == [{"id": "e1", "amount": "12.5", "src_file": "a.csv"}]
    assert "较旧的 1 行" in result.warnings[0]


def test_identical_copies_in_two_files_fold_without_a_versions_warning(tmp_path):
    header = ["id", "ts", "type", "order", "amount", "status"]
    row = ["e1", "2024-05-01 10:00:00", "order_paid", "o1", "12.50", "退款成功"]
    put(tmp_path, "a.csv", csv_bytes([header, row]))
    put(tmp_path, "b.csv", csv_bytes([header, row]))  # the same download saved twice
    result, _ = load(tmp_path, SCHEMA)
    assert result.duplicates_folded == 1 and result.rejects == ()
    assert not any("版本" in w for w in result.warnings)  # nothing was superseded: nothing to check


def test_derived_id_is_the_same_for_the_same_row_in_two_files(tmp_path):
    put(tmp_path, "a.csv", csv_bytes([["ts", "type", "agent", "text", "note"],
                                      ["2024-05-01 10:00:00", "message", "小王", "您好", ""],
                                      ["2024-05-01 10:00:00", "message", "小王", "您好！", ""]]))
    put(tmp_path, "b.jsonl", jsonl({"text": "您好", "agent": "小王", "type": "message", "ts": "2024-05-01T02:00:00Z"}))
    result, con = load(tmp_path)
    got = table(con, "id, text")
    assert len(got) == 2 and result.duplicates_folded == 1 and result.files[1].duplicates == 1
    assert all(r["id"].startswith("h") and len(r["id"]) == 17 for r in got)
    assert got[0]["id"] != got[1]["id"]
    _, con2 = load(tmp_path)  # stable across runs
    assert table(con2, "id, text") == got


# -- time -------------------------------------------------------------------

def test_iso_offsets_are_converted_to_the_policy_zone(tmp_path):
    put(tmp_path, "t.jsonl", jsonl(
        {"id": "z", "ts": "2024-05-01T02:00:00Z", "type": "x"},
        {"id": "o", "ts": "2024-05-01T10:00:00+08:00", "type": "x"},
        {"id": "l", "ts": "2024-05-01 10:00:00", "type": "x"},
        {"id": "f", "ts": "2024-04-30T21:00:00.250-05:00", "type": "x"},
    ))
    _, con = load(tmp_path)
    assert [(r["id"], r["ts"], r["ts_local"]) for r in table(con, "id, ts, ts_local")] == [
        ("z", datetime(2024, 5, 1, 2), datetime(2024, 5, 1, 10)),
        ("o", datetime(2024, 5, 1, 2), datetime(2024, 5, 1, 10)),
        ("l", datetime(2024, 5, 1, 2), datetime(2024, 5, 1, 10)),
        ("f", datetime(2024, 5, 1, 2, 0, 0, 250000), datetime(2024, 5, 1, 10, 0, 0, 250000)),
    ]


@pytest.mark.parametrize("text", ["2024-05-01", "2024-13-01 10:00:00", "2024-05-01 10:00", "2024/05/01 10:00:00",
                                  "garbage", "2024-05-01 24:00:00", "2024-05-01T10:00:00+25:00", "２０２４-05-01 10:00:00"])
def test_parse_ts_rejects(text):
    with pytest.raises(ValueError):
        parse_ts(text, TZ)


def test_parse_ts_and_ambiguous_local_time():
    assert parse_ts(" 2024-05-01T10:00:00.5 ", TZ) == (datetime(2024, 5, 1, 2, 0, 0, 500000),
                                                       datetime(2024, 5, 1, 10, 0, 0, 500000))
    new_york = ZoneInfo("America/New_York")  # 01:30 happens twice on 2024-11-03: fold=0 is EDT
    assert parse_ts("2024-11-03 01:30:00", new_york)[0] == datetime(2024, 11, 3, 5, 30)
    assert parse_ts("2024-11-03T06:30:00Z", new_york)[1] == datetime(2024, 11, 3, 1, 30)


def test_declared_time_field_is_normalised_to_local_wall_time(tmp_path):
    put(tmp_path, "a.jsonl", jsonl({"ts": "2024-05-01 10:00:00", "type": "x", "due": "2024-05-01T04:00:00Z"}))
    _, con = load(tmp_path, {"x": {"due": "time"}})
    assert table(con, "due") == [{"due": "2024-05-01 12:00:00"}]


def test_parse_bool():
    assert [parse_bool(t) for t in ["true", "FALSE", " 1 ", "0", "是", "否", "Yes", "no", "", "maybe", None]] == \
        [True, False, True, False, True, False, True, False, None, None, None]


# -- folders ----------------------------------------------------------------

def test_nested_folders_hidden_and_ignored_files(tmp_path):
    for name in ["a/b/c.csv", "a-z.jsonl", "a.csv", "Z.CSV", ".hidden.csv", ".git/x.csv", "a/.cache/y.jsonl"]:
        put(tmp_path, name, jsonl({"ts": "2024-05-01 10:00:00", "type": name}) if name.endswith("jsonl")
            else f"ts,type\n2024-05-01 10:00:00,{name}\n")
    put(tmp_path, "notes.txt", "hi")  # a .txt is read as a chat transcript: this one is none, and says so
    put(tmp_path, "a/report.pdf", b"%PDF")
    put(tmp_path, "a/report.xlsx", b"PK")  # read since issue 5 (exports.py): a broken workbook is rejected
    result, con = load(tmp_path)
    assert [f.path for f in result.files] == ["Z.CSV", "a-z.jsonl", "a.csv", "a/b/c.csv", "a/report.xlsx", "notes.txt"]
    assert result.ignored == ("a/report.pdf",)
    assert [(r.file, r.line) for r in result.rejects] == [("a/report.xlsx", 0), ("notes.txt", 0)]
    assert "xlsx" in result.rejects[0].reason and "not a chat transcript" in result.rejects[1].reason
    assert [(r["seq"], r["src_file"]) for r in table(con, "seq, src_file")] == [
        (0, "Z.CSV"), (1, "a-z.jsonl"), (2, "a.csv"), (3, "a/b/c.csv")]


def test_empty_folder_gives_an_empty_table(tmp_path):
    result, con = load(tmp_path)
    assert result.n_events == 0 and result.files == () and result.columns == ()
    columns = [d[0] for d in con.execute("SELECT * FROM events").description]
    assert columns == ["seq", "id", "ts", "ts_local", "type", "agent", "conversation", "buyer", "order",
                       "src_file", "src_line"]


def test_missing_folder_is_a_command_line_error(tmp_path):
    with pytest.raises(LedgerError) as err:
        load_events(tmp_path / "nope", duckdb.connect(), tz=TZ, schema={})
    assert err.value.exit_code == 2 and "找不到事件目录" in str(err.value)


def test_temporary_file_is_removed(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    put(tmp_path / "ev", "a.csv", "ts,type\n2024-05-01 10:00:00,message\n")
    result, _ = load(tmp_path / "ev")
    assert result.n_events == 1 and list(scratch.iterdir()) == []


# -- text arrives exactly as written -------------------------------------------

HOSTILE = ["=1+1", "  =1+1 ", "@SUM(A1)", "+cmd|' /C calc'!A0", '他说"好的"，然后', "a,b", "line1\nline2",
           "cr\ronly", "crlf\r\n", "NULL", "\\N", "null", "   ", "\ufeffbom", "tab\tx", "\u2028sep", "'quoted'"]


def test_hostile_text_is_preserved_in_csv_and_jsonl(tmp_path):
    put(tmp_path, "a.csv", csv_bytes([["ts", "type", "text"]] + [["2024-05-01 10:00:00", "message", t] for t in HOSTILE]))
    put(tmp_path, "b.jsonl", jsonl(*({"ts": "2024-05-01 11:00:00", "type": "message", "text": t} for t in HOSTILE)))
    result, con = load(tmp_path)
    assert result.rejects == ()
    assert [r["text"] for r in table(con, "text")] == HOSTILE * 2


def test_nul_and_lone_surrogates_reject_the_row(tmp_path):
    put(tmp_path, "a.csv", "ts,type,text\n2024-05-01 10:00:00,message,a\x00b\n")
    put(tmp_path, "b.jsonl", jsonl({"ts": "2024-05-01 10:00:00", "type": "message", "text": "a\x00b"}))
    put(tmp_path, "c.jsonl", '{"ts": "2024-05-01 10:00:00", "type": "message", "text": "\\udc80"}\n')
    result, _ = load(tmp_path)
    assert [(r.file, r.reason) for r in result.rejects] == [
        ("a.csv", "含有 NUL 字符 (NUL character)"),
        ("b.jsonl", "含有 NUL 字符 (NUL character)"),
        ("c.jsonl", "含有无效的 Unicode 代理字符 (lone surrogate escape)")]


@settings(max_examples=n_examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text().filter(lambda t: "\x00" not in t))
def test_any_text_arrives_unchanged(text):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        put(root, "a.csv", csv_bytes([["ts", "type", "text"], ["2024-05-01 10:00:00", "message", text]]))
        put(root, "b.jsonl", jsonl({"ts": "2024-05-01 10:00:00", "type": "message", "text": text, "n": 1}))
        put(root, "c.jsonl", jsonl({"ts": "2024-05-01 10:00:00", "type": "message", "text": text, "n": 2}, ascii=True))
        result, con = load(root)
        assert result.rejects == ()
        expected = text or None  # an empty cell is a missing value
        assert [r["text"] for r in table(con, "text")] == [expected] * 3


# -- the set-based reader reads exactly what the Python reader reads -------------------
#
# load_events reads UTF-8 CSV files in DuckDB SQL and hands Python only the rows the SQL
# cannot vouch for. These tests write random, hostile event folders and check that both
# readers give the same table (every column, seq order), the same rejects and the same
# file reports.

ZONES = ["Asia/Shanghai", "America/New_York", "Australia/Lord_Howe", "UTC"]
PROPERTY_SCHEMA = {
    "order_paid": {"amount": "money"},
    "refund_requested": {"amount": "money", "due": "time"},
    "shift_end": {"handover": "bool", "agent": "text"},
    "rating": {"score": "number", "handover": "text"},
    "x": {"score": "money", "handover": "bool"},
}
TYPES = ["message", "order_paid", "refund_requested", "shift_end", "rating", "x", "", " ", "Order_paid"]
AMOUNTS = ["12.50", "3", "0.10", "-7.5", "19.90", "298.00", "1234567.125", "00.0", "12.5", "-0.0", "007", "0",
           "100", "100.000", "-3.20", "1e3", "¥59", "59元", "1,299.00", "¥1,299.00", "￥59.90", "¥-5元", "1,2,3",
           "，5", "¥¥5", "¥￥5", "5元元", "¥ 59", ",", "¥", "元", "1,299.00 ", "abc", " 12 ", ".5", "5.", "+5",
           "1_000", "١٢", "1" * 31, "0." + "0" * 29 + "1", "1" * 30 + ".5", "NaN", "-", "--1", "12.5.1",
           "Infinity", ""]
BOOLS = ["true", "false", "1", "0", "是", "否", "FALSE", "True", "Yes", "no", "NO", " yes ", "maybe", "", "ＴＲＵＥ",
         "K"]
OFFSETS = ["", "", "", "Z", "z", "+08:00", "-0500", "+08", "+2300", "+24:00", "-00:60", "+0830", "+05:45", " "]
PLAIN_TEXT = st.text(alphabet=st.sampled_from(list("ab中 =-+@'\\\t\u3000\ufeff\u2028\x85")), max_size=5)
TEXT = st.one_of(
    PLAIN_TEXT, PLAIN_TEXT, PLAIN_TEXT,
    st.sampled_from(["", "您好", "a,b", '他说"好的"', "=1+1", "NULL", "  ", "\\N", "x\ty", "\ufeffbom", "\u3000"]),
    st.text(alphabet=st.sampled_from(list('ab中 ,"\t\u3000\ufeff') + ["\n", "\r", "\x00", "\x01", "\u2028"]),
            max_size=6),
)


@st.composite
def timestamps(draw):
    kind = draw(st.sampled_from(["normal"] * 6 + ["dst", "odd", "far"]))
    if kind == "odd":
        return draw(st.sampled_from([
            "", "garbage", "2024-02-30 10:00:00", "2024-05-01 24:00:00", "2024-05-01 10:00:60",
            "2024-13-01 10:00:00", "2024/5/1 10:00", "２０２４-05-01 10:00:00", "2024-05-01 10:00:00.",
            "2024-05-01", "2024-05-01 10:00", "0001-01-01 00:00:00+08:00", "9999-12-31 23:59:59-05:00",
            "2024-05-01t10:00:00", "0000-01-01 00:00:00", " 2024-05-01 10:00:00", "2024-05-01 10:00:00\u3000",
            "2024-05-01 10:00:00 +08:00", "infinity", "2024-02-29 10:00:00", "2023-02-29 10:00:00"]))
    if kind == "far":
        moment = draw(st.datetimes(min_value=datetime(1850, 1, 1), max_value=datetime(2300, 1, 1)))
    elif kind == "dst":
        moment = draw(st.sampled_from([datetime(2024, 3, 10, 1, 59, 59), datetime(2024, 3, 10, 2, 30),
                                       datetime(2024, 11, 3, 1, 30), datetime(2024, 11, 3, 6, 30),
                                       datetime(2024, 4, 7, 1, 45), datetime(2024, 10, 6, 2, 15)]))
    else:
        moment = draw(st.datetimes(min_value=datetime(2024, 4, 25), max_value=datetime(2024, 6, 5)))
    text = moment.strftime("%Y-%m-%d") + draw(st.sampled_from([" ", " ", "T"])) + moment.strftime("%H:%M:%S")
    digits = draw(st.sampled_from([0, 0, 0, 1, 3, 6, 9]))
    if digits:
        text += "." + str(moment.microsecond).rjust(6, "0")[:digits].ljust(digits, "0")
    return text + draw(st.sampled_from(OFFSETS))


VALUES = {
    "id": st.sampled_from(["", "", "", "e1", "e2", "e3", " e1", "h1"]),
    "ts": timestamps(),
    "type": st.sampled_from(TYPES),
    "amount": st.sampled_from(AMOUNTS),
    "score": st.sampled_from(AMOUNTS),
    "handover": st.sampled_from(BOOLS),
    "due": timestamps(),
}
POOL = ["id", "agent", "conversation", "buyer", "order", "amount", "handover", "score", "due", "text", "note",
        "", "", "Note", " ts", "seq"]


@st.composite
def csv_files(draw):
    """(bytes, whether a multi-line or otherwise odd record may send it to Python)."""
    names = draw(st.lists(st.sampled_from(POOL), max_size=6, unique_by=lambda n: n or object()))
    if draw(st.integers(0, 9)):  # usually a header the SQL can take
        names = ["ts", "type"] + [n for n in names if n.strip() != "ts"]
    names = draw(st.permutations(names))
    newline = draw(st.sampled_from(["\r\n", "\n"]))
    # some exports quote all, some every field but one (QUOTE_NONNUMERIC-like: ts bare)
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_MINIMAL, csv.QUOTE_ALL, "all-but-one"]))
    bare = draw(st.integers(0, max(len(names) - 1, 0)))

    def write_row(row: list[str]) -> str:
        out = io.StringIO()
        if quoting != "all-but-one":
            csv.writer(out, lineterminator="", quoting=quoting).writerow(row)
            return out.getvalue()
        cells = []
        for i, value in enumerate(row):
            out = io.StringIO()
            csv.writer(out, lineterminator="", quoting=csv.QUOTE_MINIMAL if i == bare else csv.QUOTE_ALL).writerow([value])
            cells.append(out.getvalue())
        return ",".join(cells)
    rows: list[list[str]] = []
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["row"] * 8 + ["copy", "blank", "short", "long", "broken"]))
        if kind == "copy" and rows:
            row = list(draw(st.sampled_from(rows)))
            if draw(st.booleans()) and row:
                row[draw(st.integers(0, len(row) - 1))] = draw(TEXT)
        elif kind == "blank":
            lines.append(draw(st.sampled_from(["", ",,,", "  ", "\t", ", ,"])))
            continue
        elif kind == "broken":
            lines.append(draw(st.sampled_from(['2024-05-01 10:00:00,message,"a"b', '"2024-05-01 10:00:00",message',
                                               'x,"y" ,z', '2024-05-01 10:00:00,"message', 'a""b,message'])))
            continue
        else:
            row = [draw(VALUES.get(name.strip(), TEXT)) for name in names]
            if kind == "short" and row:
                row.pop()
            elif kind == "long":
                row.append(draw(TEXT))
        rows.append(row)
        lines.append(write_row(row))
    text = newline.join([write_row(names)] + lines) + draw(st.sampled_from([newline, ""]))
    if draw(st.integers(0, 9)) == 0:
        text = newline + text  # blank lines before the header
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8")


def reader_settings(mode: str, parts: int = 1) -> ReaderSettings:
    """The settings of reader `mode`; with `parts` > 1 the set-based reader cuts every file
    into that many parts read concurrently (normally only files over 32 MB are cut, one
    part per core)."""
    if parts > 1:
        return ReaderSettings(reader=mode, part_min_bytes=0, cores=parts, max_parts=parts)
    return ReaderSettings(reader=mode)


def _read_with(mode: str, root: Path, tz: ZoneInfo, schema, parts: int):
    con = duckdb.connect()
    result = load_events(root, con, tz=tz, schema=schema, settings=reader_settings(mode, parts))
    cursor = con.execute("SELECT * FROM events ORDER BY seq")
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    assert [r[0] for r in rows] == list(range(len(rows)))  # seq: 0, 1, 2, ... in input order
    assert not con.execute("SELECT * FROM duckdb_tables() WHERE temporary").fetchall()
    return (result, names, rows), dict(events.last_readers)


def assert_same_reading(root: Path, tz: ZoneInfo, schema, parts: int = 1) -> dict[str, str]:
    (python, python_readers) = _read_with("python", root, tz, schema, parts)
    (fast, readers) = _read_with("fast", root, tz, schema, parts)
    assert set(python_readers.values()) <= {"python"}
    result_p, names_p, rows_p = python
    result_f, names_f, rows_f = fast
    assert names_f == names_p
    assert rows_f == rows_p
    assert result_f.rejects == result_p.rejects
    assert result_f.files == result_p.files
    assert result_f == result_p
    return readers


# 12 random folders per run in CI (60 with HYPOTHESIS_PROFILE=thorough): each needs two
# full reads, about 4 s in all on the CI machine since the reader grew its fast paths (JSONL,
# GB18030, quoting); every run draws new ones.
@settings(max_examples=n_examples(12), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(files=st.lists(csv_files(), min_size=1, max_size=3), jsonl_rows=st.lists(
           st.fixed_dictionaries({"id": VALUES["id"], "ts": VALUES["ts"], "type": VALUES["type"],
                                  "amount": VALUES["amount"], "note": TEXT}), max_size=3),
       zone=st.sampled_from(ZONES), parts=st.sampled_from([1, 2, 3]))
def test_sql_reader_reads_exactly_what_the_python_reader_reads(reader, files, jsonl_rows, zone, parts):
    if reader == "python":
        pytest.skip("compares both readers itself")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for number, data in enumerate(files):
            put(root, f"f{number}.csv", data)
        if jsonl_rows:
            put(root, "f1x.jsonl", jsonl(*({k: v for k, v in row.items() if v} for row in jsonl_rows)))
        readers = assert_same_reading(root, ZoneInfo(zone), PROPERTY_SCHEMA, parts)
        note(f"readers: {readers}")
        for number, data in enumerate(files):
            lines = data.decode("utf-8-sig").replace("\r\n", "\n").split("\n")
            plain = not any(c in data for c in (b"\r", b"\x01", b'"')) and lines[0].startswith(("ts,type", "type,ts"))
            if plain and "Note" not in lines[0] and " ts" not in lines[0] and "seq" not in lines[0]:
                # no quotes, no odd header: nothing sends this file to Python
                assert readers[f"f{number}.csv"] == "sql", lines[0]


def test_sql_reader_handles_the_common_cases_itself(tmp_path, reader):
    if reader == "python":
        pytest.skip("compares both readers itself")
    """A realistic file (quoted text, bad rows, declared fields, duplicates, offsets, no id
    column) is read by the SQL, with the Python reader's results."""
    rows = [["ts", "type", "agent", "buyer", "amount", "handover", "score", "text"]]
    for i in range(300):
        minute = f"2024-05-0{1 + i % 9} {10 + i % 12}:{i % 60:02d}:{(7 * i) % 60:02d}"
        rows.append([minute + ["", ".25", "+08:00", "Z", ".5-05:00"][i % 5],
                     TYPES[i % 6], f"店:小{i % 7}", f"tb{i % 13}",
                     ["12.50", "¥59", "abc", "007.10", ""][i % 5], ["是", "false", "maybe", "", "1"][i % 5],
                     ["5", "4.0", "", "x", "3"][i % 5], [CHINESE, "a,b", '他说"好的"', "", "=1+1"][i % 5]])
    rows += rows[1:20]  # the same rows again: folded
    rows += [["2024-05-01 10:00:00", "message", "", "", "", "", "", "多余", "extra"], ["bad", "message"]]
    put(tmp_path, "a.csv", csv_bytes(rows))
    put(tmp_path, "b.csv", csv_bytes([["id", "ts", "type", "text"], ["e1", "2024-05-01 10:00:00", "message", "x"],
                                      ["e1", "2024-05-01 10:00:00", "message", "y"],
                                      ["e1", "2024-05-01T02:00:00Z", "message", "x"]]))
    for parts in (1, 2, 4):
        readers = assert_same_reading(tmp_path, TZ, PROPERTY_SCHEMA, parts)
        assert readers == {"a.csv": "sql", "b.csv": "sql"}
    result, _ = load(tmp_path, PROPERTY_SCHEMA)
    assert result.duplicates_folded > 0 and any("较新的版本" in r.reason for r in result.rejects)


def test_sql_reader_reads_multi_line_records(tmp_path, reader):
    if reader == "python":
        pytest.skip("compares both readers itself")
    body = [
        '2024-05-01 10:00:00,message,"two',
        'lines"',
        '2024-05-01 10:00:01,message,"a ""quoted"" start',
        'middle, no quote',
        'end"" and ""x",extra',  # closes, then a wrong column count
        '2024-05-01 10:00:02,message,plain',
        '2024-05-01 10:00:03,message,"reopens","x""',
        '"",y,"',
        'z"',
        '2024-05-01 10:00:04,message,"broken"x',
        '2024-05-01 10:00:05,message,"never closed',
        "2024-05-01 10:00:06,message,swallowed",
    ]
    for newline, parts in (("\r\n", 1), ("\n", 1), ("\r\n", 3), ("\n", 2)):
        put(tmp_path, "a.csv", newline.join(["ts,type,text"] + body[:10]) + newline)
        put(tmp_path, "b.csv", newline.join(["ts,type,text"] + body))
        assert assert_same_reading(tmp_path, TZ, SCHEMA, parts) == {"a.csv": "sql", "b.csv": "sql"}
    result, con = load(tmp_path)
    assert table(con, "src_file, src_line, text")[:2] == [{"src_file": "a.csv", "src_line": 2, "text": "two\nlines"},
                                                           {"src_file": "a.csv", "src_line": 7, "text": "plain"}]


def test_quoted_and_json_lines_files_are_read_in_sql_without_the_udf(tmp_path, monkeypatch):
    """Exports that quote every field, or every field but ts, and JSON Lines of strings,
    nulls and booleans are read by the SQL itself: no line goes to the Python UDF (the
    speed of these shapes depends on it), and the rows are the Python reader's."""
    calls = []
    real = line_rows.LineRows.__call__

    def counted(self, line, text):  # DuckDB reads the UDF's parameters: no *args
        calls.append(line)
        return real(self, line, text)

    monkeypatch.setattr(line_rows.LineRows, "__call__", counted)
    rows = [[f"2024-05-01 10:{i:02d}:00", "message", f"e{i}", f'say "hi", {i}' if i % 3 else f"plain {i}"]
            for i in range(40)]
    for name, quote_ts in (("all.csv", True), ("but-ts.csv", False)):
        out = io.StringIO()
        for row in [["ts", "type", "id", "text"]] + rows:
            row = [name + v if k == 2 and row[0] != "ts" else v for k, v in enumerate(row)]
            cells = [json.dumps(v, ensure_ascii=False).replace('\\"', '""') for v in row]
            if not quote_ts and row[0] != "ts":
                cells[0] = row[0]
            out.write(",".join(cells) + "\r\n")
        put(tmp_path, name, out.getvalue())
    put(tmp_path, "c.jsonl", "".join(json.dumps({"ts": r[0], "type": r[1], "id": "j" + r[2], "text": r[3],
                                                  "handover": i % 2 == 0, "note": None}, ensure_ascii=False) + "\n"
                                       for i, r in enumerate(rows)))
    readers = assert_same_reading(tmp_path, TZ, SCHEMA)
    assert readers == {"all.csv": "sql", "but-ts.csv": "sql", "c.jsonl": "sql"}
    assert calls == []
    monkeypatch.undo()
    put(tmp_path, "all.csv", (tmp_path / "all.csv").read_text() + '"2024-05-01 11:00:00","message","x","a"b"\r\n')
    calls.clear()
    monkeypatch.setattr(line_rows.LineRows, "__call__", counted)
    assert assert_same_reading(tmp_path, TZ, SCHEMA)["all.csv"] == "sql"
    assert calls == [42]  # the malformed line alone, in the fast reading (the Python reading calls none)


def test_sql_reader_numbers_rows_densely_around_lines_that_give_none(tmp_path):
    """The set-based INSERT numbers rows by line; rejected, blank and continuation lines
    between them (at the start, in runs, at the end) must be closed up to the Python
    reader's seq 0, 1, 2, ... and each row keep its own line."""
    body = []
    for i in range(60):
        kind = i % 7
        if kind == 0:
            body.append("not a time,message,bad")
        elif kind == 3:
            body.append("")
        elif kind == 5:
            body.append(f'2024-05-01 10:{i:02d}:00,message,"two\nlines {i}"')
        else:
            body.append(f"2024-05-01 10:{i:02d}:00,message,row {i}")
    body += ["x,y,z", ""]
    put(tmp_path, "a.csv", "\n".join(["ts,type,text"] + body) + "\n")
    put(tmp_path, "b.csv", "\n".join(["ts,type,text"] + body[:20]))
    for parts in (1, 2):
        assert assert_same_reading(tmp_path, TZ, SCHEMA, parts) == {"a.csv": "sql", "b.csv": "sql"}


def test_sql_reader_leaves_bad_bytes_and_odd_line_ends_to_python(tmp_path, reader):
    if reader == "python":
        pytest.skip("compares both readers itself")
    put(tmp_path, "b.csv", b"ts,type,text\r\n2024-05-01 10:00:00,message,\xff\r\n")
    put(tmp_path, "c.csv", "ts,type,text\r\n2024-05-01 10:00:00,message,cr\ronly\r\n")
    put(tmp_path, "d.csv", "ts,type,text\n2024-05-01 10:00:00,message,a\x01b\n")
    put(tmp_path, "e.csv", 'ts,type,text\n2024-05-01 10:00:00,message,"mixed\r\nline ends"\n')
    readers = assert_same_reading(tmp_path, TZ, SCHEMA)
    assert readers == {"b.csv": "python", "c.csv": "python", "d.csv": "python", "e.csv": "python"}


def test_derived_ids_are_the_same_in_sql_and_python(tmp_path, reader):
    if reader == "python":
        pytest.skip("compares both readers itself")
    rows = [["ts", "type", "agent", "amount", "note"]] + [
        [f"2024-05-01 10:{i:02d}:00" + ["", ".123456", "+08:00"][i % 3], "order_paid", "小王",
         ["12.50", "1.000", "-0", "0.10"][i % 4], ["", "备注", "a\u2028b"][i % 3]] for i in range(60)]
    put(tmp_path, "a.csv", csv_bytes(rows))
    assert assert_same_reading(tmp_path, TZ, SCHEMA) == {"a.csv": "sql"}


def test_sql_reader_rejects_a_multi_line_duplicate_with_its_whole_text(tmp_path, reader):
    if reader == "python":
        pytest.skip("compares both readers itself")
    put(tmp_path, "a.csv", 'id,ts,type,text\r\ne1,2024-05-01 10:00:00,message,"one\r\nline"\r\n'
                           'e1,2024-05-01 10:00:00,message,"other\r\nlines"\r\n')
    assert assert_same_reading(tmp_path, TZ, SCHEMA) == {"a.csv": "sql"}
    result, _ = load(tmp_path)
    one, other = 'e1,2024-05-01 10:00:00,message,"one\r\nline"', 'e1,2024-05-01 10:00:00,message,"other\r\nlines"'
    (reject,) = result.rejects  # nothing tells the versions apart: the content digest chooses
    assert (reject.line, reject.raw) in ((2, one), (4, other))
    assert reject.reason.endswith(other if reject.line == 2 else one)  # the kept row's whole text too


def test_sql_reader_reads_files_that_quote_every_field(tmp_path, reader):
    """Exports that quote every field ("a","b,c") take the split at '","'; fields with a
    quote inside or empty ones ("") take the general path: same table either way."""
    if reader == "python":
        pytest.skip("compares both readers itself")
    rows = [["ts", "type", "agent", "conversation", "amount", "text"]]
    for i in range(200):
        rows.append([f"2024-05-0{1 + i % 9} 10:{i % 60:02d}:00", ["message", "order_paid"][i % 2], f"店:小{i % 5}",
                     f"c{i % 7}", ["12.50", "¥59", ""][i % 3],
                     [CHINESE, "a,b", '他说"好的"', "", '","', "x,", ",y", " "][i % 8]])
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    put(tmp_path, "a.csv", out.getvalue().encode("utf-8"))
    assert assert_same_reading(tmp_path, TZ, PROPERTY_SCHEMA) == {"a.csv": "sql"}
    result, con = load(tmp_path, PROPERTY_SCHEMA)
    texts = [r["text"] for r in table(con, "text")]
    assert '他说"好的"' in texts and '","' in texts and "a,b" in texts and result.n_events == 200


def test_sql_reader_reads_files_that_quote_every_field_but_ts(tmp_path, reader):
    """Writers like csv.QUOTE_NONNUMERIC leave some fields bare and quote the rest: a line
    whose quoted fields hold no quote and no delimiter is split without a regex pass;
    the others take the general path. Same table either way."""
    if reader == "python":
        pytest.skip("compares both readers itself")
    lines = ['"id",ts,"type","agent","text"']
    for i in range(200):
        text = [CHINESE, "a,b", '他说"好的"', "", '","', "x,", ",y", " "][i % 8].replace('"', '""')
        lines.append(f'"e{i}",2024-05-0{1 + i % 9} 10:{i % 60:02d}:00,"message","店:小{i % 5}","{text}"')
    put(tmp_path, "a.csv", ("\n".join(lines) + "\n").encode("utf-8"))
    assert assert_same_reading(tmp_path, TZ, PROPERTY_SCHEMA) == {"a.csv": "sql"}
    result, con = load(tmp_path, PROPERTY_SCHEMA)
    texts = [r["text"] for r in table(con, "text")]
    assert '他说"好的"' in texts and '","' in texts and None in texts and result.n_events == 200


def test_sql_reader_reads_gb18030_through_a_utf8_copy(tmp_path, reader):
    """A GB18030 export is decoded as a stream and read set-based, with the Python
    reader's table, rejects and file report (encoding gb18030, the sha256 of its own
    bytes); a file with a byte that does not decode is read in Python (only its row is rejected)."""
    if reader == "python":
        pytest.skip("compares both readers itself")
    rows = [["ts", "type", "agent", "amount", "text"]]
    for i in range(300):
        rows.append([f"2024-05-0{1 + i % 9} 10:{i % 60:02d}:00", TYPES[i % 6], f"店:小{i % 7}",
                     ["12.50", "¥59", "abc", ""][i % 4], [CHINESE, "换行\r\n的文字", '他说"好的"', "€𝄞", ""][i % 5]])
    good = csv_bytes(rows, encoding="gb18030")
    put(tmp_path, "a.csv", good)
    put(tmp_path, "b.csv", good.replace("€".encode("gb18030"), b"\x81\x20", 1))
    for parts in (1, 2):
        assert assert_same_reading(tmp_path, TZ, PROPERTY_SCHEMA, parts) == {"a.csv": "sql", "b.csv": "python"}
    result, _ = load(tmp_path, PROPERTY_SCHEMA)
    assert [f.encoding for f in result.files] == ["gb18030", "gb18030"]
    assert result.files[0].sha256 == hashlib.sha256(good).hexdigest()
    assert [r.file for r in result.rejects if "解码" in r.reason] == ["b.csv"]


def test_sql_reader_reads_jsonl_with_the_python_readers_results(tmp_path, reader, monkeypatch):
    """JSON Lines are read set-based: flat objects of strings, nulls and booleans in SQL,
    every other line (numbers, nested values, repeated keys, a trailing comma or NaN that
    DuckDB's parser lets through, \\u escapes, raw control characters, blank lines) by the
    Python reader's own code. A key the first lines did not have sends the file to Python."""
    if reader == "python":
        pytest.skip("compares both readers itself")
    lines = []
    for i in range(300):
        obj = {"id": f"j{i}", "ts": f"2024-05-0{1 + i % 9} 10:{i % 60:02d}:00", "type": TYPES[i % 6],
               "agent": f"店:小{i % 7}", "amount": ["12.50", "¥59", "", None][i % 4], "handover": [True, "否", None][i % 3],
               "text": [CHINESE, "a,b", '他说"好的"', "tab\tinside", "€𝄞"][i % 5]}
        lines.append(json.dumps(obj, ensure_ascii=i % 11 == 0))
    lines[5:5] = ['{"id": "n1", "ts": "2024-05-01 10:00:00", "type": "message", "amount": 12.5}',
                  '{"id": "n2", "ts": "2024-05-01 10:00:00", "type": "message", "text": {"a": 1}}',
                  '{"id": "n3", "ts": "2024-05-01 10:00:00", "type": "message", "text": "x", "text": "y"}',
                  '{"id": "n4", "ts": "2024-05-01 10:00:00", "type": "message", "text": "x",}',
                  '{"id": "n5", "ts": "2024-05-01 10:00:00", "type": "message", "amount": NaN}',
                  '{"id": "n6", "ts": "2024-05-01 10:00:00", "type": "message", "text": "nul\\u0000"}',
                  '{"id": "n7", "ts": "2024-05-01 10:00:00", "type": "message", "text": "raw\ttab"}',
                  "", "   ", '["not", "an object"]', '{"id": "n8", "ts": "bad", "type": "message"}',
                  '{"id": "j1", "ts": "2024-05-01 10:00:00", "type": "message"}', '{"id": 7, "ts": "2024-05-02 10:00:00", '
                  '"type": "message", "handover": false}', "{broken"]
    put(tmp_path, "a.jsonl", "\n".join(lines) + "\n")
    put(tmp_path, "b.jsonl", "\r\n".join(lines[:40]))
    put(tmp_path, "c.jsonl", "\n".join(lines[:80] + ['{"ts": "2024-05-01 10:00:00", "type": "message", "note": "new"}']))
    # keys first seen after the first 64 lines: planned when a line the SQL reads has them
    put(tmp_path, "e.jsonl", "\n".join(lines[:70] + ['{"ts": "2024-05-01 10:00:00", "type": "shift_end", '
                                                     '"handover": "否", "successor": "店:小1"}']))
    put(tmp_path, "f.jsonl", "\n".join(lines[:70] + ['{"ts": "2024-05-01 10:00:00", "type": "message", '
                                                     '"category": {"nested": 1}}']))
    put(tmp_path, "d.jsonl", "\ufeff" + "\n".join(lines[:20]))
    for parts in (1, 2):
        readers = assert_same_reading(tmp_path, TZ, PROPERTY_SCHEMA, parts)
        assert readers == {"a.jsonl": "sql", "b.jsonl": "sql", "c.jsonl": "sql", "d.jsonl": "python",
                           "e.jsonl": "sql", "f.jsonl": "python"}
    result, con = load(tmp_path, PROPERTY_SCHEMA)
    assert "note" in result.columns and "successor" in result.columns and len(result.rejects) > 8
    # A key no planning saw (here: planning looks only at the first lines) meets the UDF,
    # and the load starts again with that file read in Python: the same table all the same.
    monkeypatch.setattr(sql_reader.SqlReader, "_later_keys", lambda self, table, names: names)
    readers = assert_same_reading(tmp_path, TZ, PROPERTY_SCHEMA)
    assert readers["c.jsonl"] == readers["e.jsonl"] == "python" and readers["a.jsonl"] == "sql"



def test_duckdb_reads_no_json_line_with_a_raw_control_character_but_spaces():
    """sql_plan.jsonl_types looks for JSON_SPACE_CONTROLS only in lines DuckDB reads as JSON:
    its parser must refuse every other control character, and any raw one inside a string."""
    con = duckdb.connect()
    valid = lambda text: con.execute("SELECT json_valid(?)", [text]).fetchone()[0]  # noqa: E731
    assert valid('{"a": "xy"}')
    for i in range(32):
        c = chr(i)
        assert not valid('{"a": "x' + c + 'y"}') and not valid('{"a' + c + '": "xy"}'), i
        assert valid('{"a":' + c + '"xy"}' + c) == (i in sql_plan.JSON_SPACE_CONTROLS), i


def test_the_python_setting_reads_every_shape_in_python(tmp_path):
    """LEDGER_EVENTS_READER=python is the reference the set-based paths are compared with: a
    JSON Lines file and a GB18030 file big enough for their set-based paths stay in Python."""
    rows = [[f"g{i}", "2024-05-01 10:00:00", "message", "店:小王", "c1", "b1", "", "agent", "text", CHINESE]
            for i in range(40)]
    put(tmp_path, "a.csv", "id,ts,type,agent,conversation,buyer,order,sender,kind,text\n".encode("gb18030")
        + "".join(",".join(r) + "\n" for r in rows).encode("gb18030"))
    put(tmp_path, "b.jsonl", "".join(json.dumps({"id": f"j{i}", "ts": "2024-05-01 10:00:00", "type": "message",
                                                 "text": CHINESE}, ensure_ascii=False) + "\n" for i in range(40)))
    for mode, expected in (("python", "python"), ("auto", "sql")):
        load_events(tmp_path, duckdb.connect(), tz=TZ, schema=PROPERTY_SCHEMA,
                    settings=ReaderSettings(reader=mode, sql_min_bytes=1))
        assert dict(events.last_readers) == {"a.csv": expected, "b.jsonl": expected}, mode

# -- issue 13: money never changes because of input shape -------------------------------

def test_out_of_range_and_ambiguous_amounts_are_rejected_by_row(tmp_path):
    """An order number in `amount`, a score past DECIMAL(38,10), loose amount forms and a
    negative amount: each rejects its row (no DECIMAL overflow later); good rows stay."""
    bad = ["3700000000019496799", "100000000000000", "99999999999999.99999", "12,5", "1.299,00", "1,2,3",
           "\u0663", "1e3", "-5", "¥-5元"]
    good = ["99999999999999.99", "1,299.00", "¥59", "59元", "12.50"]
    rows = [["ts", "type", "id", "amount", "score"]]
    rows += [["2024-05-01 10:00:00", "order_paid", f"b{i}", a, ""] for i, a in enumerate(bad)]
    rows += [["2024-05-01 10:00:00", "order_paid", f"g{i}", a, ""] for i, a in enumerate(good)]
    rows += [["2024-05-01 10:00:00", "rating", "r1", "", "1e28"], ["2024-05-01 10:00:00", "rating", "r2", "", "1_000"],
             ["2024-05-01 10:00:00", "rating", "r3", "", "-" + "9" * 29],
             ["2024-05-01 10:00:00", "rating", "r4", "", "4.5"]]
    put(tmp_path, "a.csv", csv_bytes(rows))
    result, con = load(tmp_path, SCHEMA)
    got = {row["id"]: row["amount"] for row in table(con, "id, amount")}
    assert got == {"g0": "99999999999999.99", "g1": "1299", "g2": "59", "g3": "59", "g4": "12.5", "r4": None}
    why = [r.reason for r in result.rejects]
    assert len(why) == len(bad) + 3
    assert sum("超出范围 (out of range" in w for w in why) == 5
    assert sum("金额不能为负 (negative amount)" in w for w in why) == 2


def test_an_order_number_in_amount_does_not_stop_the_month(tmp_path):
    """A sum of amounts (the 销售额 metric's DECIMAL cast) never sees an out-of-range value."""
    put(tmp_path, "a.jsonl", jsonl(
        {"ts": "2024-05-01 10:00:00", "type": "order_paid", "id": "o1", "amount": 3700000000019496799},
        {"ts": "2024-05-01 10:00:00", "type": "order_paid", "id": "o2", "amount": "12.5"}))
    result, con = load(tmp_path, SCHEMA)
    assert con.execute("SELECT sum(CAST(amount AS DECIMAL(18,4))) FROM events").fetchone()[0] == 12.5
    assert [r.line for r in result.rejects] == [1]


def test_a_quoted_field_over_the_size_limit_never_turns_its_lines_into_rows(tmp_path):
    """A quoted note longer than 131,072 characters that spans lines: the lines inside it
    look like event rows (they would invent fines); the record is one reject, and the rows
    after it are read."""
    inner = "\r\n".join(f"2024-05-01 10:00:0{i},order_paid,x{i},12," for i in range(3))
    long = "x" * 140_000 + "\r\n" + inner + "\r\n" + 'y "" ' * 10
    data = ('ts,type,id,amount,note\r\n2024-05-01 09:00:00,order_paid,a,1,"short"\r\n'
            f'2024-05-01 09:30:00,order_paid,b,2,"{long}"\r\n2024-05-01 11:00:00,order_paid,c,3,\r\n')
    put(tmp_path, "a.csv", data)
    result, con = load(tmp_path, SCHEMA)
    assert [row["id"] for row in table(con, "id")] == ["a", "c"]
    (reject,) = result.rejects
    assert reject.line == 3 and "field larger than field limit" in reject.reason
    assert result.files[0].read == 3 and result.files[0].rejected == 1
    assert len(reject.raw) < 2100 and "more characters not kept" in reject.raw  # the raw text kept is capped


def test_files_with_one_header_are_read_by_one_insert_with_their_own_lines(tmp_path, reader, monkeypatch):
    """A month split into many files (one per day, per agent) is read by one INSERT per run
    of files with the same header; each file keeps its own lines, rejects and report, and a
    file with a multi-line record sends the run back to one file at a time. Same table as
    the Python reader either way."""
    if reader == "python":
        pytest.skip("compares both readers itself")
    header = "id,ts,type,agent,text"
    for day in range(1, 7):
        body = [f"d{day}-{i},2024-05-0{day} 10:{i:02d}:00,message,店:小{i % 3},第{i}句" for i in range(12)]
        body.insert(3, "")  # a blank line
        body.insert(5, f"d{day}-bad,not a time,message,店:小1,坏")  # a rejected line
        if day == 4:
            body.insert(7, "d4-x,2024-05-04 11:00:00,message,店:小1,\"两行\n的文字\"")
        put(tmp_path, f"chat/{day:02d}.csv", "\n".join([header] + body) + "\n")
    put(tmp_path, "chat/07.csv", "ts,type,id\n2024-05-07 10:00:00,message,other-header\n")  # ends a run
    put(tmp_path, "chat/08.csv", "\n".join([header, "d8-0,2024-05-08 10:00:00,message,店:小1,好",
                                           "d8-1,2024-05-08 10:01:00,message,店:小1,好"]) + "\n")
    put(tmp_path, "chat/09.csv", "\n".join([header, "d9-0,2024-05-09 10:00:00,message,店:小1,好"]) + "\n")
    inserts = []
    real = sql_plan.FileSql.sql

    def counted(self):
        inserts.append(self.plan.files or (self.plan.rel,))
        return real(self)

    monkeypatch.setattr(sql_plan.FileSql, "sql", counted)
    readers = assert_same_reading(tmp_path, TZ, SCHEMA)
    assert set(readers.values()) == {"sql"}
    # 01-06 tried as one (04's two-line record sends them back one by one), 07 alone, 08-09 as one
    assert ("chat/01.csv", "chat/02.csv", "chat/03.csv", "chat/04.csv", "chat/05.csv", "chat/06.csv") in inserts
    assert ("chat/08.csv", "chat/09.csv") in inserts
    assert ("chat/01.csv",) in inserts and ("chat/08.csv",) not in inserts  # 08-09 never read one by one
    # the failed run is tried once per reading, not again from each of its files
    assert not any(files[:1] == ("chat/02.csv",) and len(files) > 1 for files in inserts)
    result, con = load(tmp_path)
    rows = table(con, "src_file, src_line, id")
    assert {"src_file": "chat/09.csv", "src_line": 2, "id": "d9-0"} in rows
    assert {"src_file": "chat/04.csv", "src_line": 9, "id": "d4-x"} in rows
    assert [(r.file, r.line) for r in result.rejects][:2] == [("chat/01.csv", 7), ("chat/02.csv", 7)]
