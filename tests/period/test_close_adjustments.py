"""Month close (CLOSED, verify, refuse), adjustments (waive, dispute, manual lines),
corrections of a closed month as 上月更正 lines in the next open month."""

from __future__ import annotations

import csv
import hashlib
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from conftest import write_events
from ledger.period import adjustments as adj
from ledger.cli import main

REPO = Path(__file__).resolve().parents[2]
WANG, LI = "初晴旗舰店:小王", "初晴旗舰店:小李"


def _events():
    m = lambda i, ts, conv, agent, buyer, sender, text: {
        "id": f"m{i}", "ts": ts, "type": "message", "agent": agent, "conversation": conv,
        "buyer": buyer, "sender": sender, "kind": "text", "text": text}
    return [
        m(1, "2024-05-10 10:00:00", "c1", WANG, "tb_a", "buyer", "在吗，这个有货吗"),
        m(2, "2024-05-10 10:00:30", "c1", WANG, "tb_a", "agent", "嗯"),  # short answer + no honorific
        m(3, "2024-05-12 11:00:00", "c2", LI, "tb_b", "buyer", "什么时候发货"),
        m(4, "2024-05-12 11:00:20", "c2", LI, "tb_b", "agent", "亲，今天下午就发货，谢谢您的支持，再见"),
        {"id": "q1", "ts": "2024-05-13 09:00:00", "type": "qa_flag", "agent": LI, "category": "未挂离开",
         "note": "离开 30 分钟未挂离开"},
        m(5, "2024-06-02 09:00:00", "c3", LI, "tb_c", "buyer", "你好"),
        m(6, "2024-06-02 09:00:10", "c3", LI, "tb_c", "agent", "亲，您好，请问有什么可以帮您"),
    ]


@pytest.fixture
def shop(tmp_path, monkeypatch):
    write_events(_events(), tmp_path / "events" / "2024-05")
    (tmp_path / "adjustments").mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy").symlink_to(REPO / "policy")
    return tmp_path


def run(*args) -> int:
    return main(list(args))


def detail(path: Path) -> list[dict]:
    rows = list(openpyxl.load_workbook(path)["明细"].iter_rows(values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:] if r[0] is not None]


def sheet(path: Path, name: str) -> list[tuple]:
    return list(openpyxl.load_workbook(path)[name].iter_rows(values_only=True))


def statement(month="2024-05") -> Path:
    return Path("reports") / month / f"ledger-{month}.xlsx"


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ids_by_rule(month="2024-05") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in detail(statement(month)):
        out.setdefault(r["规则"], []).append(r)
    return out


def adjust(text: str, name="2024-05.txt"):
    Path("adjustments", name).write_text(text, encoding="utf-8")


# -------------------------------------------------------------- parsing

def test_parse_collects_every_error_with_position_and_hint():
    text = ("month 2024-05\n"
            "waiv E042B9E906020 \"x\"\n"
            "waive E042B9E9060 \"x\"\n"
            "dispute E042B9E906020 uphold \"x\"\n"
            "adjust 店:小王 bonis 50元 好评 \"y\"\n"
            "adjust 店:小王 bonus 50块 好评 \"y\"\n"
            "waive E042B9E906020 \"\"\n"
            "adjust 店:小王 fine 5元 迟到 五月 三日\n")
    parsed, diags = adj.parse(text, "adjustments/x.txt")
    got = [(d.position.line, d.position.column) for d in diags]
    assert got == [(2, 1), (3, 7), (4, 23), (5, 13), (6, 19), (7, 21), (8, 27)]
    assert "did you mean 'waive'" in diags[0].render()
    assert "did you mean 'upheld'" in diags[2].render()
    assert "^^^^" in diags[0].render()
    assert parsed.actions == ()


def test_parse_reads_every_statement():
    text = ("# 五月的申诉\nmonth 2024-05\n"
            "waive E042B9E906020 \"买家承认误会\"  # 主管同意\n"
            "dispute E1A2B3C4D5E6F reduced 5元 \"情节轻微\"\n"
            "adjust \"初晴旗舰店:小 王\" bonus ¥50.5 好评之星 \"五月好评最多\"\n")
    parsed, diags = adj.parse(text, "a.txt")
    assert diags == []
    assert parsed.month == "2024-05"
    waive, dispute, manual = parsed.actions
    assert (waive.kind, waive.entry_id, waive.reason) == ("waive", "E042B9E906020", "买家承认误会")
    assert (dispute.outcome, dispute.amount) == ("reduced", Decimal("5.00"))
    assert (manual.agent, manual.direction, manual.amount, manual.code) == ("初晴旗舰店:小 王", "bonus",
                                                                           Decimal("50.50"), "好评之星")


def test_month_must_come_first():
    _, diags = adj.parse("waive E042B9E906020 \"x\"\n", "a.txt")
    assert len(diags) == 1 and "month" in diags[0].message


# ----------------------------------------------------------- adjustments

def test_waive_keeps_the_line_with_zero_applied_and_reason(shop):
    assert run("run", "--month", "2024-05") == 0
    short = ids_by_rule()["短语回复"][0]
    assert short["金额"] == 10
    adjust(f"month 2024-05\nwaive {short['编号']} \"买家要求简短回复，主管同意\"\n")
    assert run("run", "--month", "2024-05") == 0
    rows = {r["编号"]: r for r in detail(statement())}
    waived = rows[short["编号"]]
    assert waived["金额"] == 0 and waived["状态"] == "已计"
    assert "已免除" in waived["依据"] and "买家要求简短回复" in waived["依据"] and "10.00元" in waived["依据"]
    summary = {r[0]: r for r in sheet(statement(), "汇总")}
    applied = sum(Decimal(str(r["金额"])) for r in rows.values() if r["客服"] == WANG and r["金额"] is not None)
    assert Decimal(str(summary[WANG][1])) == applied
    # in the agent's own file too
    mine = {r["编号"]: r for r in detail(Path("reports/2024-05/agents/初晴旗舰店_小王.xlsx"))}
    assert mine[short["编号"]]["金额"] == 0


def test_dispute_outcomes_and_manual_lines(shop):
    assert run("run", "--month", "2024-05") == 0
    by_rule = ids_by_rule()
    honorific = by_rule["敬语"][0]["编号"]
    short = by_rule["短语回复"][0]["编号"]
    away = by_rule["未挂离开"][0]["编号"]
    adjust("month 2024-05\n"
           f"dispute {honorific} upheld \"聊天记录确认\"\n"
           f"dispute {short} reduced 5元 \"情节轻微\"\n"
           f"dispute {away} overturned \"当时系统故障\"\n"
           f"adjust {LI} bonus 50元 好评之星 \"五月好评最多\"\n"
           f"adjust {WANG} fine 20元 迟到 \"5月3日迟到\"\n")
    assert run("run", "--month", "2024-05") == 0
    rows = {r["编号"]: r for r in detail(statement())}
    assert rows[honorific]["金额"] == 10 and "维持" in rows[honorific]["依据"]
    assert rows[short]["金额"] == 5 and "减为 5.00元" in rows[short]["依据"]
    assert rows[away]["金额"] == 0 and "撤销" in rows[away]["依据"]
    manual = [r for r in rows.values() if r["规则"].startswith("人工调整")]
    assert sorted((r["客服"], r["规则"], r["类型"], r["金额"]) for r in manual) == sorted([
        (WANG, "人工调整·迟到", "罚款", 20), (LI, "人工调整·好评之星", "奖励", 50)])
    rules = {r[0]: r for r in sheet(statement(), "规则")}
    assert rules["人工调整·好评之星"][7] == 50 and rules["人工调整·迟到"][2] == "adjustments/2024-05.txt"
    summary = {r[0]: r for r in sheet(statement(), "汇总")}
    assert summary[LI][2] == 50  # 奖励


def test_run_refuses_unknown_ids_and_double_decisions(shop, capsys):
    assert run("run", "--month", "2024-05") == 0
    short = ids_by_rule()["短语回复"][0]["编号"]
    typo = short[:-1] + ("0" if short[-1] != "0" else "1")
    adjust(f"month 2024-05\nwaive {typo} \"x\"\nwaive {short} \"a\"\ndispute {short} reduced 20元 \"b\"\n")
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 1
    err = capsys.readouterr().err
    assert f"unknown entry id): {typo}" in err and f"did you mean {short}" in err
    assert "adjustments/2024-05.txt:2:7" in err
    assert "应小于原金额" in err  # reduced to more than the fine


def test_check_validates_adjustments(shop, capsys):
    assert run("run", "--month", "2024-05") == 0
    adjust("month 2024-05\nwaive E000000000000 \"x\"\n")
    capsys.readouterr()
    assert run("check") == 1
    assert "unknown entry id" in capsys.readouterr().err
    adjust("month 2024-05\nwaive E000000000000\n")
    assert run("check") == 1
    assert "缺少内容" in capsys.readouterr().err


# ------------------------------------------------------------------ close

def test_close_records_hashes_and_a_closed_month_verifies(shop, capsys):
    assert run("close", "2024-05") == 0
    folder = Path("reports/2024-05")
    record = (folder / "CLOSED").read_text(encoding="utf-8")
    assert f"statement: ledger-2024-05.xlsx sha256={sha(statement())}" in record
    assert f"policy: policy/house-rules.rules sha256={sha(REPO / 'policy/house-rules.rules')}" in record
    assert f"input: 2024-05/events.jsonl sha256={sha('events/2024-05/events.jsonl')}" in record
    assert f"entries: closed-entries.tsv sha256={sha(folder / 'closed-entries.tsv')}" in record
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in before}
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 0
    assert "核对一致" in capsys.readouterr().out
    assert run("close", "2024-05") == 0
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert {p: p.stat().st_mtime_ns for p in before} == mtimes


def test_closed_month_refuses_changed_inputs_and_shows_what_would_change(shop, capsys):
    assert run("close", "2024-05") == 0
    sealed = statement().read_bytes()
    events = _events()
    events[1]["text"] = "亲，有货的，您放心拍，谢谢您的支持，再见"  # no fine any more
    write_events(events, Path("events/2024-05"))
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 6
    err = capsys.readouterr().err
    assert "已结账" in err and "不会覆盖" in err
    assert "事件文件 改动 (changed): 2024-05/events.jsonl" in err
    assert " - E" in err and "短语回复" in err
    assert "ledger run --month 2024-06" in err
    assert statement().read_bytes() == sealed


def test_tampered_statement_is_reported(shop, capsys):
    assert run("close", "2024-05") == 0
    data = bytearray(statement().read_bytes())
    statement().write_bytes(bytes(data) + b"\0")
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 6
    assert "被改动过" in capsys.readouterr().err


def test_inputs_added_but_entries_unchanged_still_verifies(shop, capsys):
    assert run("close", "2024-05") == 0
    write_events([{"id": "x1", "ts": "2024-07-01 10:00:00", "type": "rating", "agent": LI, "score": "5"}],
                 Path("events/2024-07"))
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 0
    out = capsys.readouterr().out
    assert "明细与结账时相同" in out and "事件文件 新增 (added): 2024-07/events.jsonl" in out


# ------------------------------------------------------------ corrections

def _corrections(month: str) -> list[dict]:
    return [r for r in detail(statement(month)) if r["规则"].startswith("上月更正")]


def test_waiver_after_close_lands_in_next_month_once(shop, capsys):
    assert run("close", "2024-05") == 0
    short = ids_by_rule()["短语回复"][0]
    adjust(f"month 2024-05\nwaive {short['编号']} \"申诉成立\"\n")
    assert run("run", "--month", "2024-05") == 6  # May itself never changes
    assert run("run", "--month", "2024-06") == 0
    (fix,) = _corrections("2024-06")
    assert (fix["客服"], fix["类型"], fix["金额"]) == (WANG, "罚款", -10)
    assert short["编号"] in fix["摘录"] and "2024-05" in fix["依据"]
    assert f"ledger explain {short['编号']} --month 2024-05" in fix["依据"]
    snap = list(csv.DictReader(open("reports/2024-05/closed-entries.tsv", encoding="utf-8"), delimiter="\t"))
    assert short["编号"] in {r["id"] for r in snap}
    summary = {r[0]: r for r in sheet(statement("2024-06"), "汇总")}
    assert summary[WANG][1] == -10 and summary[WANG][3] == 10  # 罚款 −10, 净额 +10
    # June closed with the correction: July does not repeat it
    assert run("close", "2024-06") == 0
    assert run("run", "--month", "2024-07") == 0
    assert _corrections("2024-07") == []
    # a further change to May lands in July, net of what June carried
    adjust(f"month 2024-05\nwaive {short['编号']} \"申诉成立\"\n"
           f"adjust {LI} bonus 30元 补发 \"五月漏发的好评奖\"\n")
    assert run("run", "--month", "2024-07") == 0
    (fix,) = _corrections("2024-07")
    assert (fix["客服"], fix["类型"], fix["金额"], fix["规则"]) == (LI, "奖励", 30, "上月更正（奖励）")


def test_check_warns_about_adjustments_to_a_closed_month(shop, capsys):
    assert run("close", "2024-05") == 0
    short = ids_by_rule()["短语回复"][0]["编号"]
    adjust(f"month 2024-05\nwaive {short} \"申诉成立\"\n")
    capsys.readouterr()
    assert run("check") == 0
    err = capsys.readouterr().err
    assert "已结账" in err and "2024-06" in err and "警告" in err


def test_corrections_land_in_the_first_open_month_only(shop):
    assert run("close", "2024-05") == 0
    short = ids_by_rule()["短语回复"][0]
    adjust(f"month 2024-05\nwaive {short['编号']} \"申诉成立\"\n")
    assert run("run", "--month", "2024-07") == 0  # June is open: June takes May's corrections
    assert _corrections("2024-07") == []
    assert run("close", "2024-06") == 0
    assert len(_corrections("2024-06")) == 1
    assert run("run", "--month", "2024-06") == 0  # closed June verifies with its correction


def test_close_takes_the_month_as_argument_or_option(shop, capsys):
    assert run("close") == 2
    assert run("close", "--month", "2024-05") == 0
    assert Path("reports/2024-05/CLOSED").is_file()
    assert run("close", "2024-05") == 0  # verifies
