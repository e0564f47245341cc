"""Platform exports: refund console, chat records, QA sheet; .xlsx (both readers),
GB18030 CSV with repeated headers, .zip; overlapping downloads; unknown layouts.
Every export must give the same fines as the equivalent canonical events."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import openpyxl
import pytest

from ledger.evaluate import engine
from ledger.inputs import exports
from ledger.inputs import profiles
from ledger.inputs.settings import READER_ENV, XLSX_READER_ENV
from ledger.cli import main

REPO = Path(__file__).resolve().parents[2]
POLICY = [REPO / "policy"]
WANG, LI = "初晴旗舰店:小王", "初晴旗舰店:小李"


def fines(events_root: Path) -> Counter:
    result = engine.run_month(POLICY, events_root, "2024-05")
    return Counter((e.rule_id, e.agent, e.amount, e.status, e.ts) for e in result.entries)


def load(events_root: Path):
    return engine.run_month(POLICY, events_root, "2024-05").load


def write_csv(path: Path, rows: list[list], encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    path.write_bytes(out.getvalue().encode(encoding))


def write_xlsx(path: Path, sheets: dict[str, list[list]]):
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)


def write_jsonl(path: Path, events: list[dict]):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")


# ------------------------------------------------------------ refund console

# Columns in an unusual order, the completion time repeated (an older export version):
# matched by name, never by position.
REFUND_HEADER = ["退款编号", "订单编号", "买家会员名称", "退款的申请时间", "退款完结时间", "买家退款原因",
                 "退款状态", "退款操作人", "买家退款金额", "退款完结时间"]
REFUND_ROWS = [
    ["R1", "O1", "tb_a", "2024-05-10 10:00:00", "", "多拍/拍错/不想要", "退款成功", WANG, "29.90", "2024-05-10 10:10:00"],
    ["R2", "O2", "tb_b", "2024/05/10 11:00", "2024/05/10 11:45", "不想买了", "退款成功", LI, "¥10", ""],
    ["R3", "O3", "tb_c", "2024-05-10 12:00:00", "", "质量问题", "退款中", "", "50", ""],
    ["R4", "O4", "tb_d", "2024-05-31 23:50:00", "2024-06-01 00:10:00", "拍错了", "退款成功", WANG, "5", ""],
    ["R5", "O5", "tb_e", "2024-05-20 09:00:00", "", "重拍", "退款中", LI, "8", ""],
]


def refund_canonical() -> list[dict]:
    out = []
    for rid, order, buyer, asked, done, reason, status, agent, amount, done2 in REFUND_ROWS:
        norm = lambda t: exports.canonical_time(exports.parse_export_time(t))
        req = {"id": f"refund:{rid}:requested", "ts": norm(asked), "type": "refund_requested", "order": order,
               "buyer": buyer, "reason": reason, "amount": amount, "status": status}
        if agent:
            req["agent"] = agent
        out.append(req)
        if done or done2:
            h = {"id": f"refund:{rid}:handled", "ts": norm(done or done2), "type": "refund_handled",
                 "order": order, "buyer": buyer, "status": status}
            if agent:
                h["agent"] = agent
            out.append(h)
    out.append({"id": "end", "ts": "2024-06-02 00:00:00", "type": "status"})  # data goes past every deadline
    return out


END = [["end", "2024-06-02 00:00:00", "status"]]


def _with_end(folder: Path):
    write_csv(folder / "end.csv", [["id", "ts", "type"], *END])


@pytest.fixture
def canonical_refunds(tmp_path):
    write_jsonl(tmp_path / "canonical" / "refunds.jsonl", refund_canonical())
    expected = fines(tmp_path / "canonical")
    assert Counter(k[0] for k in expected.elements()) == Counter({"退款超时": 2})  # R2 late, R5 never
    return expected


def test_refund_console_gb18030_csv_with_repeated_header(tmp_path, canonical_refunds):
    folder = tmp_path / "export"
    write_csv(folder / "退款管理.csv", [REFUND_HEADER, *REFUND_ROWS], encoding="gb18030")
    _with_end(folder)
    assert fines(folder) == canonical_refunds
    report = {f.path: f for f in load(folder).files}["退款管理.csv"]
    assert report.encoding == "gb18030" and report.rejected == 0 and report.accepted == 8  # 5 asked, 3 handled


@pytest.mark.parametrize("reader", ["calamine", "openpyxl"])
def test_refund_console_xlsx(tmp_path, canonical_refunds, monkeypatch, reader):
    if reader == "calamine":
        pytest.importorskip("python_calamine")
    else:
        monkeypatch.setenv(XLSX_READER_ENV, "openpyxl")
    folder = tmp_path / "export"
    write_xlsx(folder / "退款.xlsx", {"退款列表": [REFUND_HEADER, *REFUND_ROWS], "空白": []})
    _with_end(folder)
    assert fines(folder) == canonical_refunds
    files = {f.path: f for f in load(folder).files}
    assert files["退款.xlsx#退款列表"].accepted == 8 and files["退款.xlsx#空白"].read == 0


def test_both_xlsx_readers_give_the_same_cells(tmp_path):
    from datetime import date, datetime, time
    path = tmp_path / "cells.xlsx"
    write_xlsx(path, {"s": [[None], ["a", "b", "c", "d", "e", "f"],
                            [1, 2.5, datetime(2024, 5, 1, 10, 0, 0, 500000), True, "=1+1", "文字"],
                            [12345678901, 0.1, date(2024, 5, 1), None, time(10, 5), " 空格 "]]})
    pytest.importorskip("python_calamine")
    data = path.read_bytes()
    a = list(exports.sheet_rows(data, "s", "calamine"))
    b = list(exports.sheet_rows(data, "s", "openpyxl"))
    assert a == b
    assert a[1] == (3, ["1", "2.5", "2024-05-01 10:00:00.500000", "true", "", "文字"], None)


class _GbkName(zipfile.ZipInfo):
    """A member whose name is stored as raw GBK bytes without the UTF-8 flag."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("cp437"), self.flag_bits


def test_zip_of_exports(tmp_path, canonical_refunds):
    folder = tmp_path / "export"
    folder.mkdir()
    buf = io.BytesIO()
    write_xlsx(tmp_path / "r.xlsx", {"Sheet1": [REFUND_HEADER, *REFUND_ROWS[:3]]})
    rest = io.StringIO()
    csv.writer(rest).writerows([REFUND_HEADER, *REFUND_ROWS[3:]])
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("五月/退款1.xlsx", (tmp_path / "r.xlsx").read_bytes())
        info = _GbkName("退款2.csv".encode("gbk").decode("cp437"))  # named in GBK, as Windows zip tools do
        zf.writestr(info, rest.getvalue().encode("gb18030"))
        zf.writestr("说明.txt", "下载于 6 月 2 日")
    (folder / "downloads.zip").write_bytes(buf.getvalue())
    _with_end(folder)
    assert fines(folder) == canonical_refunds
    loaded = load(folder)
    assert [f.path for f in loaded.files] == ["downloads.zip/五月/退款1.xlsx#Sheet1", "downloads.zip/退款2.csv", "end.csv"]
    assert loaded.ignored == ("downloads.zip/说明.txt",)


def test_overlapping_downloads_fold_and_conflicts_are_reported(tmp_path, canonical_refunds, capsys):
    folder = tmp_path / "export"
    write_csv(folder / "退款-0601.csv", [REFUND_HEADER, *REFUND_ROWS[:4]])
    write_xlsx(folder / "退款-0602.xlsx", {"Sheet1": [REFUND_HEADER, *REFUND_ROWS[2:]]})
    _with_end(folder)
    assert fines(folder) == canonical_refunds
    loaded = load(folder)
    assert loaded.duplicates_folded == 3  # R3 requested, R4 requested and handled
    assert main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"), "--events", str(folder),
                 "--out", str(tmp_path / "out")]) == 0
    assert "合并重复 3" in capsys.readouterr().out
    # the same refund with other content in another download: one version is kept, the other
    # is reported with both places and both rows
    changed = [r[:] for r in REFUND_ROWS[2:3]]
    changed[0][5] = "拍错"
    write_csv(folder / "退款-0603.csv", [REFUND_HEADER, *changed])
    loaded = load(folder)
    (older,) = [r for r in loaded.rejects if "较新的版本" in r.reason]
    # 退款-0601.csv reaches 2024-06-01 00:10, 退款-0603.csv only 2024-05-10 12:00: 0601 is the newer download
    assert older.file == "退款-0603.csv" and older.line == 2 and "拍错" in older.raw
    assert "采用 退款-0601.csv:4" in older.reason and "较新的下载" in older.reason
    assert "采用的行 (kept row): R3,O3,tb_c,2024-05-10 12:00:00,,质量问题" in older.reason  # both rows shown


# --------------------------------------------------------------- chat records

CHAT_HEADER = ["客户名", "消息序号", "发送时间", "发送内容", "发送账号", "账号类型"]
CHAT_ROWS = [
    ["tb_a", 1, "2024-05-10 10:00:00", "在吗", "tb_a", "买家"],
    ["tb_a", 2, "2024-05-10 10:00:05", "亲，您好，有什么可以帮您", "", "机器人"],
    ["tb_a", 3, "2024-05-10 10:01:00", "嗯", WANG, "客服"],
    ["tb_a", 4, "2024-05-10 10:02:00", "谢谢亲的支持，再见", WANG, "客服"],
    # two hours later: a new conversation, cut by the idle gap
    ["tb_a", 5, "2024-05-10 12:00:00", "发货了吗", "tb_a", "买家"],
    ["tb_a", 6, "2024-05-10 12:09:00", "发了", LI, "客服"],
    ["tb_b", 1, "2024-05-10 12:00:30", "有货吗", "tb_b", "买家"],
    ["tb_b", 2, "2024-05-10 12:01:00", "亲，有的，请放心拍，谢谢", WANG, "客服"],
]


def chat_canonical() -> list[dict]:
    conv = {("tb_a", 1): "tb_a@20240510100000", ("tb_a", 5): "tb_a@20240510120000", ("tb_b", 1): "tb_b@20240510120030"}
    agents = {"tb_a@20240510100000": WANG, "tb_a@20240510120000": LI, "tb_b@20240510120030": WANG}
    out, current = [], {}
    for buyer, n, ts, text, account, kind in CHAT_ROWS:
        current[buyer] = conv.get((buyer, n), current.get(buyer))
        c = current[buyer]
        sender = {"买家": "buyer", "客服": "agent", "机器人": "agent"}[kind]
        out.append({"ts": ts, "type": "message", "conversation": c, "buyer": buyer, "agent": agents[c],
                    "sender": sender, "kind": "auto_reply" if kind == "机器人" else "text", "text": text})
    return out


def test_chat_records_cut_by_idle_gap(tmp_path):
    write_jsonl(tmp_path / "canonical" / "chat.jsonl", chat_canonical())
    (tmp_path / "canonical" / "end.csv").write_text("id,ts,type\nend,2024-06-02 00:00:00,status\n", encoding="utf-8")
    expected = fines(tmp_path / "canonical")
    assert {k[0] for k in expected} >= {"短语回复", "回复超时", "敬语"}
    folder = tmp_path / "export"
    write_xlsx(folder / "聊天记录.xlsx", {"聊天记录": [CHAT_HEADER, *CHAT_ROWS]})
    _with_end(folder)
    assert fines(folder) == expected
    result = engine.run_month(POLICY, folder, "2024-05")
    assert {e.conversation for e in result.entries if e.conversation} <= {
        "tb_a@20240510100000", "tb_a@20240510120000", "tb_b@20240510120030"}


def test_chat_gap_is_configurable_in_a_custom_profile(tmp_path):
    folder = tmp_path / "export"
    shipped = dict(profiles.shipped())["ledger/profiles/chat_records.profile"]
    custom = shipped.replace("profile chat_records", "profile chat_records").replace("gap 30m", "gap 3h")
    folder.mkdir()
    (folder / "chat.profile").write_text(custom, encoding="utf-8")
    write_csv(folder / "chat.csv", [CHAT_HEADER, *CHAT_ROWS])
    result = engine.run_month(POLICY, folder, "2024-05")
    con_ids = {e.conversation for e in result.entries if e.conversation}
    assert "tb_a@20240510120000" not in con_ids and "tb_a@20240510100000" in con_ids


# ------------------------------------------------------------------ QA sheet

def test_qa_sheet(tmp_path):
    folder = tmp_path / "export"
    write_xlsx(folder / "质检.xlsx", {"五月": [["日期", "客服", "类别", "说明", "会话"],
                                              ["2024-05-03", WANG, "未挂离开", "离开 20 分钟", "c1"],
                                              ["2024-05-04", LI, "顶撞买家", "说买家有病", ""],
                                              ["2024-05-05", LI, "优秀接待", "主动推荐", ""]]})
    got = sorted((k[0], k[1], k[2]) for k in fines(folder).elements())
    assert got == [("未挂离开", WANG, 20), ("顶撞买家_质检", LI, 100)]


# ------------------------------------------------------- layouts and profiles

def test_unknown_layout_lists_headers_and_profiles_tried(tmp_path):
    folder = tmp_path / "export"
    write_csv(folder / "报表.csv", [["店铺", "日期", "成交额"], ["初晴", "2024-05-01", "100"]], encoding="gb18030")
    write_jsonl(folder / "ok.jsonl", [{"ts": "2024-05-01 10:00:00", "type": "status"}])
    loaded = load(folder)
    header, row = [r for r in loaded.rejects if r.file == "报表.csv"]
    assert "unknown layout" in header.reason and "店铺、日期、成交额" in header.reason
    assert "refund_console（缺少 退款编号、退款的申请时间）" in header.reason
    assert "chat_records" in header.reason and "qa_sheet（缺少 客服、类别）" in header.reason
    assert row.line == 2 and "file skipped" in row.reason


def test_a_profile_named_by_file_pattern(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "mine.profile").write_text(
        'profile 自定义 "自定义"\nfiles "*评价*"\n\nevent rating\n    ts = 时间\n    agent = 客服\n    score = 分数\n',
        encoding="utf-8")
    write_csv(folder / "五月评价.csv", [["时间", "客服", "分数"], ["2024-05-01 10:00", WANG, "5"]])
    loaded = load(folder)
    assert loaded.rejects == () and loaded.n_events == 1


def test_profile_errors_are_positioned():
    text = "profile x\nmatch a\nevnt y\nevent y\n    ts 时间\n    agent = a |\n"
    profile, diags = profiles.parse(text, "p.profile")
    assert profile is None
    got = [(d.position.line, d.position.column) for d in diags]
    assert got[:3] == [(3, 1), (5, 5), (6, 15)]
    assert "did you mean 'event'" in diags[0].render()


def test_shipped_profiles_parse():
    names = set()
    for name, text in profiles.shipped():
        profile, diags = profiles.parse(text, name)
        assert diags == [] and profile is not None
        names.add(profile.name)
    assert names == {"refund_console", "chat_records", "qa_sheet"}


def test_header_repeats_become_numbered():
    assert profiles.dedupe_header(["a", "b", "a", "a"]) == ["a", "b", "a.1", "a.2"]


def test_columns_match_without_spaces_or_a_bracketed_unit(tmp_path, canonical_refunds):
    header = [h.replace("买家退款金额", "买家退款金额（元）").replace("退款编号", "退款编号 ") for h in REFUND_HEADER]
    folder = tmp_path / "export"
    write_csv(folder / "退款.csv", [header, *REFUND_ROWS])
    _with_end(folder)
    assert fines(folder) == canonical_refunds
    result = engine.run_month(POLICY, folder, "2024-05")
    con_amounts = {e.order for e in result.entries}
    assert con_amounts == {"O2", "O5"}


def test_xlsx_title_rows_above_the_header(tmp_path, canonical_refunds):
    folder = tmp_path / "export"
    write_xlsx(folder / "退款.xlsx", {"Sheet1": [["退款管理导出"], ["导出时间：2024-06-02 08:00"], [],
                                                 REFUND_HEADER, *REFUND_ROWS]})
    _with_end(folder)
    assert fines(folder) == canonical_refunds
    loaded = load(folder)
    assert loaded.rejects == ()
    assert {f.path: f.accepted for f in loaded.files}["退款.xlsx#Sheet1"] == 8


def test_bad_profile_stops_the_run(tmp_path, capsys):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "bad.profile").write_text("profile x\nmatch a\nevent y\n    ts 时间\n", encoding="utf-8")
    write_jsonl(folder / "ok.jsonl", [{"ts": "2024-05-01 10:00:00", "type": "status"}])
    assert main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"), "--events", str(folder),
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "bad.profile:4:5" in err and "导出格式文件有错误" in err
    assert not (tmp_path / "out").exists()
    assert main(["check", str(REPO / "policy"), "--events", str(folder)]) == 1
    assert "bad.profile:4:5" in capsys.readouterr().err


def test_excel_protected_numbers_in_exports(tmp_path):
    folder = tmp_path / "export"
    rows = [REFUND_HEADER,
            ["=\"2024051012345\"", "=\"3700000000037417969\"", "tb_a", "2024-05-10 10:00:00", "",
             "拍错", "退款中", WANG + "\t", "29.90", ""]]
    write_csv(folder / "退款.csv", rows, encoding="gb18030")
    _with_end(folder)
    result = engine.run_month(POLICY, folder, "2024-05")
    (entry,) = result.entries
    assert (entry.order, entry.agent, entry.event_id) == ("3700000000037417969", WANG, "refund:2024051012345:requested")


@pytest.mark.parametrize("reader", ["python", "auto"])
def test_overlapping_chat_downloads_cut_and_fold_as_one(tmp_path, monkeypatch, reader):
    monkeypatch.setenv(READER_ENV, reader)
    one = tmp_path / "one"
    write_csv(one / "chat.csv", [CHAT_HEADER, *CHAT_ROWS])
    _with_end(one)
    expected = fines(one)
    assert expected
    # the second download starts in the middle of tb_a's first conversation
    two = tmp_path / "two"
    write_csv(two / "chat-0510a.csv", [CHAT_HEADER, *CHAT_ROWS[:5]])
    write_xlsx(two / "chat-0510b.xlsx", {"聊天记录": [CHAT_HEADER, *CHAT_ROWS[2:]]})
    _with_end(two)
    assert fines(two) == expected
    assert load(two).duplicates_folded == 3


# ------------------------------------------------------ issue 13: hostile workbooks

def test_order_numbers_in_numeric_cells_never_become_floats(tmp_path, canonical_refunds):
    """A 19-digit order number stored as a number (a CSV saved as xlsx in Excel) is not
    read as 3.7e18 (two refunds would merge and a fine disappear): the row is rejected."""
    pytest.importorskip("python_calamine")
    rows = [r[:] for r in REFUND_ROWS]
    rows[1][1] = 3700000000037418001  # R2, late: its fine must not be merged away silently
    rows[4][1] = 3700000000037418002
    rows[0][1] = 123456789012345  # 15 digits: exact in Excel, kept
    path = tmp_path / "e" / "退款.xlsx"
    write_xlsx(path, {"Sheet1": [REFUND_HEADER, *rows]})
    data = path.read_bytes()
    for reader in ("calamine", "openpyxl"):
        got = list(exports.sheet_rows(data, "Sheet1", reader))
        assert got[1][1][1] == "123456789012345" and got[1][2] is None
        assert got[2][2] is not None and "15-digit" in got[2][2] and "B 列" in got[2][2]
    loaded = load(tmp_path / "e")
    why = {r.line: r.reason for r in loaded.rejects}
    assert set(why) == {3, 6} and all("15-digit" in w for w in why.values())
    assert not any("e+" in str(v) for v in why.values())


def _patched_xlsx(path: Path, old: bytes, new: bytes) -> None:
    """Replace bytes inside the workbook's XML parts (openpyxl refuses to write some values)."""
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info).replace(old, new))
    path.write_bytes(buf.getvalue())


def test_nul_in_a_workbook_cell_rejects_the_row(tmp_path):
    """Excel's `_x0000_` escape gives a NUL in python-calamine: the row is rejected, as in CSV."""
    pytest.importorskip("python_calamine")
    path = tmp_path / "e" / "x.xlsx"
    write_xlsx(path, {"s": [["id", "ts", "type", "note"], ["a", "2024-05-01 10:00:00", "note", "ok"],
                            ["b", "2024-05-01 10:00:00", "note", "x"]]})
    _patched_xlsx(path, b">x<", b">x_x0000_y<")
    rows = list(exports.sheet_rows(path.read_bytes(), "s", "calamine"))
    assert rows[2][2] == "含有 NUL 字符 (NUL character)"
    loaded = load(tmp_path / "e")
    assert [(r.line, r.reason) for r in loaded.rejects] == [(3, "含有 NUL 字符 (NUL character)")]
    assert loaded.n_events == 1


def test_a_sheet_whose_xml_cannot_be_read_is_one_reject_not_a_traceback(tmp_path):
    path = tmp_path / "e" / "x.xlsx"
    write_xlsx(path, {"s": [["id", "ts", "type", "note"], ["b", "2024-05-01 10:00:00", "note", "x"]]})
    _patched_xlsx(path, b">x<", b">x&#0;y<")  # a character XML forbids
    write_csv(tmp_path / "e" / "ok.csv", [["id", "ts", "type"], ["a", "2024-05-01 10:00:00", "note"]])
    loaded = load(tmp_path / "e")
    (reject,) = loaded.rejects
    assert reject.file == "x.xlsx#s" and "无法读取工作表 (cannot read sheet)" in reject.reason
    assert loaded.n_events == 1
