"""Reading event files into the `events` table (src/ledger/events.py)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.events import Reject, load_events, parse_bool, parse_ts, write_rejects

TZ = ZoneInfo("Asia/Shanghai")
CHINESE = "亲，您好！请问有什么可以帮您？「核对订单」￥12.50 多拍/拍错/不想要"
SCHEMA = {
    "order_paid": {"amount": "money"},
    "refund_requested": {"amount": "money"},
    "shift_end": {"handover": "bool"},
    "rating": {"score": "number"},
}


# -- helpers ----------------------------------------------------------------

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

def test_duplicate_ids_fold_when_identical_and_reject_when_different(tmp_path):
    header = ["id", "ts", "type", "order", "amount"]
    put(tmp_path, "a.csv", csv_bytes([header, ["e1", "2024-05-01 10:00:00", "order_paid", "o1", "12.50"]]))
    put(tmp_path, "b.csv", csv_bytes([header,
                                      ["e1", "2024-05-01 10:00:00", "order_paid", "o1", "12.5"],  # same after normalising
                                      ["e1", "2024-05-01 10:00:00", "order_paid", "o1", "13"]]))
    result, con = load(tmp_path, SCHEMA)
    assert reasons(result) == [("b.csv", 3, "重复 id 但内容不同 (duplicate id with different content), first seen at a.csv:2")]
    assert [(f.read, f.accepted, f.rejected, f.duplicates) for f in result.files] == [(1, 1, 0, 0), (2, 1, 1, 1)]
    assert result.duplicates_folded == 1 and result.n_events == 1
    assert table(con, "id, amount, src_file") == [{"id": "e1", "amount": "12.5", "src_file": "a.csv"}]


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
    put(tmp_path, "notes.txt", "hi")
    put(tmp_path, "a/report.xlsx", b"PK")
    result, con = load(tmp_path)
    assert [f.path for f in result.files] == ["Z.CSV", "a-z.jsonl", "a.csv", "a/b/c.csv"]  # code-point order
    assert result.ignored == ("a/report.xlsx", "notes.txt")
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


@settings(max_examples=150, deadline=None)
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


# -- rejects file -----------------------------------------------------------

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
                    ["b.jsonl", "7", "不是 JSON 对象 (not a JSON object)", "'=HYPERLINK(1)"]]
    assert [p.name for p in target.parent.iterdir()] == ["rejects.csv"]
