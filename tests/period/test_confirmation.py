"""The confirmation queue: lines of a `confirm` rule are 待复核 — on the statement with their
evidence, counted nowhere — until an adjustments line confirms (deducted exactly once, under
the cap) or waives them; closing a month with lines still waiting is a deliberate choice."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from conftest import write_events
from ledger.cli import main
from ledger.core.entries import entry_id

WANG = "店:小王"
POLICY = """policy "复核测试"
event message(conversation, buyer, agent, sender, kind = "text", text)
words 辱骂用语 = 滚 爱买不买
    except 财源滚滚
rule 顶撞买家 "禁止顶撞买家":
    on message[sender = "agent"]
    when text has any 辱骂用语
    confirm
    fine 100元
rule 敬语 "开头结尾要有敬语":
    on message[sender = "agent" and kind = "text"] per conversation
    when (first or last) and not text has any ["您", "亲"]
    fine 10元
cap fines 60元
"""
ROSTER = "客服,工号,姓名,部门,基本工资,绩效工资,最低工资\n店:小王,W1,王一,售前,3000,1000,2000\n"


def message(i, ts, sender, text):
    return {"id": f"m{i}", "ts": ts, "type": "message", "conversation": "c1", "buyer": "b1",
            "agent": WANG, "sender": sender, "text": text}


@pytest.fixture
def shop(tmp_path, monkeypatch):
    write_events([
        message(1, "2024-05-10 10:00:00", "buyer", "能便宜点吗"),
        message(2, "2024-05-10 10:00:30", "agent", "亲，爱买不买"),      # rude: 待复核, 100元
        message(3, "2024-05-10 10:01:00", "buyer", "祝你们财源滚滚"),
        message(4, "2024-05-10 10:01:30", "agent", "亲，祝您财源滚滚"),  # an exception, not rude
        message(5, "2024-05-10 10:02:00", "agent", "好的再见"),          # no honorific: 10元
    ], tmp_path / "events" / "2024-05")
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "p.rules").write_text(POLICY, encoding="utf-8")
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


RUDE = entry_id("顶撞买家", "m2", WANG)


def statement(root: Path) -> dict:
    wb = openpyxl.load_workbook(root / "reports" / "2024-05" / "ledger-2024-05.xlsx", read_only=True)
    sheets = {name: [list(r) for r in wb[name].iter_rows(values_only=True)] for name in wb.sheetnames}
    detail = {r[0]: dict(zip(sheets["明细"][0], r)) for r in sheets["明细"][1:]}
    summary = dict(zip(sheets["汇总"][0], sheets["汇总"][1]))
    hr = dict(zip(sheets["HR导入"][0], sheets["HR导入"][1]))
    return {"detail": detail, "summary": summary, "hr": hr}


def adjust(root: Path, *lines: str) -> None:
    (root / "adjustments").mkdir(exist_ok=True)
    (root / "adjustments" / "2024-05.txt").write_text("month 2024-05\n" + "\n".join(lines) + "\n", encoding="utf-8")


def test_a_judgement_call_is_shown_but_not_deducted(shop, capsys):
    assert main(["run", "--month", "2024-05"]) == 0
    s = statement(shop)
    rude = s["detail"][RUDE]
    assert rude["状态"] == "待复核（确认后 100.00元）" and rude["金额"] is None
    assert "命中 辱骂用语：爱买不买" in rude["依据"] and "待复核" in rude["依据"]
    assert entry_id("顶撞买家", "m4", WANG) not in s["detail"]  # 财源滚滚: cancelled by the exception
    assert s["summary"]["罚款"] == 10 and s["summary"]["待复核"] == 1 and s["summary"]["待复核金额"] == 100
    assert s["hr"]["扣款"] == 10
    assert "待复核 (awaiting confirmation): 1 条" in capsys.readouterr().out


def test_confirmed_lines_are_deducted_once_and_under_the_cap(shop):
    adjust(shop, f'confirm {RUDE} "看过聊天记录，确属顶撞"')
    assert main(["run", "--month", "2024-05"]) == 0
    s = statement(shop)
    rude = s["detail"][RUDE]
    assert rude["状态"] == "已计" and "已确认 (confirmed)" in rude["依据"] and "待复核：" not in rude["依据"]
    # 10 + 100 owed; the cap of 60元 lets 60 be deducted: the confirmed line is capped like any other.
    assert s["summary"]["实扣"] == 60 and s["summary"]["应扣"] == 110 and "待复核" not in s["summary"]
    assert s["hr"]["扣款"] == 60
    assert sum(1 for e in s["detail"].values() if e["规则"] == "顶撞买家") == 1


def test_a_waived_judgement_takes_no_room_under_the_cap(shop):
    adjust(shop, f'waive {RUDE} "买家先骂人，主管同意免除"')
    assert main(["run", "--month", "2024-05"]) == 0
    s = statement(shop)
    assert s["detail"][RUDE]["金额"] == 0 and s["hr"]["扣款"] == 10


def test_confirming_twice_or_what_needs_no_confirmation_is_an_error(shop, capsys):
    adjust(shop, f'confirm {RUDE}', f'confirm {RUDE} "再确认一次"')
    assert main(["run", "--month", "2024-05"]) == 1
    assert "entry adjusted twice" in capsys.readouterr().err
    adjust(shop, f'confirm {entry_id("敬语", "m5", WANG)}')
    assert main(["run", "--month", "2024-05"]) == 1
    assert "not awaiting confirmation" in capsys.readouterr().err


def test_closing_with_lines_awaiting_confirmation_is_a_deliberate_choice(shop, capsys):
    assert main(["close", "2024-05"]) == 7
    assert "--leave-unconfirmed" in capsys.readouterr().err
    assert not (shop / "reports" / "2024-05" / "CLOSED").exists()
    assert main(["close", "2024-05", "--leave-unconfirmed"]) == 0
    assert (shop / "reports" / "2024-05" / "CLOSED").exists()
    assert statement(shop)["hr"]["扣款"] == 10


def test_review_lists_what_waits_with_the_conversation(shop, capsys):
    assert main(["review", "--month", "2024-05"]) == 0
    out = capsys.readouterr().out
    assert RUDE in out and "▶ 10:00:30 客服  亲，爱买不买" in out and "10:00:00 买家  能便宜点吗" in out
    assert f'confirm {RUDE} "确认理由"' in out
    adjust(shop, f'confirm {RUDE}')
    assert main(["review", "--month", "2024-05"]) == 0
    assert "没有待复核的明细" in capsys.readouterr().out


def test_explain_names_the_word_that_matched(shop, capsys):
    assert main(["explain", RUDE, "--month", "2024-05"]) == 0
    assert "爱买不买" in capsys.readouterr().out
    assert main(["explain", "--event", "m4", "--month", "2024-05"]) == 0
    out = capsys.readouterr().out
    assert "例外取消 (cancelled by an exception): 滚（在“财源滚滚”里）" in out


def test_a_manual_line_for_an_unknown_account_is_an_error_with_a_suggestion(shop, capsys):
    adjust(shop, 'adjust 店:小玉 bonus 50元 好评之星 "五月好评最多"')
    assert main(["run", "--month", "2024-05"]) == 1
    err = capsys.readouterr().err
    assert "unknown account" in err and "店:小王" in err and "2024-05.txt:2" in err
    adjust(shop, 'adjust 店:小王 bonus 50元 好评之星 "五月好评最多"')
    assert main(["run", "--month", "2024-05"]) == 0


def test_a_confirmed_line_can_still_be_disputed_once(shop, capsys):
    # The agent disputes a judgement once it is confirmed: confirm then dispute is the one pair allowed.
    adjust(shop, f'confirm {RUDE} "确属顶撞"', f'dispute {RUDE} reduced 30元 "买家先出言不逊，减为 30 元"')
    assert main(["run", "--month", "2024-05"]) == 0
    s = statement(shop)
    rude = s["detail"][RUDE]
    assert rude["金额"] == 30 and rude["状态"] == "已计"
    assert rude["依据"].startswith("申诉结果：减为 30.00元") and "已确认 (confirmed)" in rude["依据"]
    assert s["summary"]["应扣"] == 40  # 10 + 30, under the cap of 60
    # In either order in the file; a second dispute, or a waiver beside the confirm, is still an error.
    adjust(shop, f'dispute {RUDE} overturned "误判"', f'confirm {RUDE}')
    assert main(["run", "--month", "2024-05"]) == 0
    assert statement(shop)["detail"][RUDE]["金额"] == 0
    adjust(shop, f'confirm {RUDE}', f'dispute {RUDE} upheld "维持"', f'dispute {RUDE} overturned "撤销"')
    assert main(["run", "--month", "2024-05"]) == 1
    assert "entry adjusted twice" in capsys.readouterr().err
    adjust(shop, f'confirm {RUDE}', f'waive {RUDE} "免除"')
    assert main(["run", "--month", "2024-05"]) == 1
    err = capsys.readouterr().err
    assert "entry adjusted twice" in err and "2024-05.txt:3" in err


def test_the_queue_names_the_words_to_highlight(shop):
    from ledger.review import queue

    month, items = queue.waiting([Path("policy")], Path("events"), "2024-05", out_dir=Path("reports"),
                                 adjustments_root=Path("adjustments"))
    assert [(i.entry.id, i.matched) for i in items] == [(RUDE, ("爱买不买",))]
