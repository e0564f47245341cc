"""Chat input as it really is: placeholders and links become message kinds, message-manager
transcripts (*.txt) are read, a legacy .xls is reported, and a buyer's line after a transfer
is charged to the agent who holds the conversation."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from ledger.inputs.events import load_events
from ledger.inputs.message_kinds import kind_sql
from ledger.inputs.transcripts import is_transcript, message_line

TZ = ZoneInfo("Asia/Shanghai")
SCHEMA = {"message": {"sender": "text", "kind": "text", "text": "text"}}


@pytest.mark.parametrize("text, kind", [
    ("[图片]", "image"), ("【图片】", "image"), (" [视频] ", "video"), ("[语音]", "voice"), ("[文件]", "file"),
    ("[表情]", "emoji"), ("[微笑][微笑]", "emoji"), ("😊😊", "emoji"), ("👍🏻", "emoji"), ("/:^_^", "emoji"),
    ("/:066 /:^_^", "emoji"), ("[商品卡片]", "product_card"), ("[订单]", "order_card"),
    ("https://item.taobao.com/item.htm?id=123", "product_card"),
    ("【新款T恤】https://detail.tmall.com/item.htm?id=5 ¥59", "product_card"),
    ("https://item.jd.com/100012.html", "product_card"),
    # as real exports write them: the word 消息, repeats, Taobao's share text
    ("[图片消息]", "image"), ("【图片】【图片】", "image"), ("[语音消息]", "voice"), ("[商品链接]", "product_card"),
    ("【淘宝】https://m.tb.cn/h.5aBcD?tk=xyz 点击链接直接打开", "product_card"),
])
def test_whole_text_placeholders_stickers_and_links_get_their_kind(text, kind):
    assert duckdb.connect().execute(f"SELECT {kind_sql('t')} FROM (SELECT ? AS t)", [text]).fetchone()[0] == kind


@pytest.mark.parametrize("text", ["亲，推荐这款 https://item.taobao.com/item.htm?id=1 很好看", "好的亲😊", "哈哈",
                                  "有货的亲亲", "https://example.com/x", "[图片] 这个地方坏了"])
def test_words_besides_a_placeholder_or_link_stay_text(text):
    assert duckdb.connect().execute(f"SELECT {kind_sql('t')} FROM (SELECT ? AS t)", [text]).fetchone()[0] is None


def _load(folder: Path):
    con = duckdb.connect()
    result = load_events(folder, con, tz=TZ, schema=SCHEMA)
    return result, con


def test_derived_kinds_in_the_events_table_and_given_kinds_kept(tmp_path):
    rows = [
        {"id": "m1", "ts": "2024-05-15 10:00:00", "type": "message", "sender": "agent", "text": "[图片]"},
        {"id": "m2", "ts": "2024-05-15 10:00:01", "type": "message", "sender": "agent", "kind": "text", "text": "😊"},
        {"id": "m3", "ts": "2024-05-15 10:00:02", "type": "message", "sender": "agent", "kind": "auto_reply",
         "text": "[表情]"},
        {"id": "m4", "ts": "2024-05-15 10:00:03", "type": "message", "sender": "agent", "text": "有货的亲"},
        {"id": "o1", "ts": "2024-05-15 10:00:04", "type": "order_paid", "text": "[图片]"},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    _, con = _load(tmp_path)
    kinds = dict(con.execute("SELECT id, kind FROM events ORDER BY seq").fetchall())
    assert kinds == {"m1": "image", "m2": "emoji", "m3": "auto_reply", "m4": None, "o1": None}


TRANSCRIPT = """================================================================
消息对象:tb_buyer01
================================================================
2024-05-15 10:00:00 tb_buyer01
在吗
2024-05-15 10:00:30 初晴旗舰店:小王
亲，在的，请问有什么可以帮您？
2024-05-15 10:01:00 tb_buyer01
这款有货吗

还有黑色吗
初晴旗舰店:小李 (2024-05-15 10:09:00):
亲，黑色有的
2024-05-15 10:10:00 tb_buyer01
好的
2024-05-15 11:30:00 tb_buyer01
[图片]
"""


def test_a_message_manager_transcript_becomes_messages_cut_into_conversations(tmp_path):
    (tmp_path / "tb_buyer01.txt").write_text(TRANSCRIPT, encoding="gb18030")
    result, con = _load(tmp_path)
    assert result.rejects == ()
    rows = con.execute("SELECT ts_local, sender, agent, buyer, conversation, kind, text FROM events ORDER BY seq").fetchall()
    assert [r[1] for r in rows] == ["buyer", "agent", "buyer", "agent", "buyer", "buyer"]
    assert rows[2][6] == "这款有货吗\n\n还有黑色吗"  # a message's own lines, blank one kept
    # The buyer's lines go to the agent holding the conversation: 小王 until 小李 answers.
    assert [r[2] for r in rows] == ["初晴旗舰店:小王", "初晴旗舰店:小王", "初晴旗舰店:小王", "初晴旗舰店:小李",
                                    "初晴旗舰店:小李", None]
    assert {r[3] for r in rows} == {"tb_buyer01"}
    # An idle gap over 30 minutes starts a new conversation; the picture becomes kind image.
    assert len({r[4] for r in rows[:5]}) == 1 and rows[5][4] != rows[0][4]
    assert rows[5][5] == "image"


def test_a_text_file_that_is_no_transcript_and_a_legacy_xls_are_reported(tmp_path):
    (tmp_path / "说明.txt").write_text("这个文件夹放导出的聊天记录\n", encoding="utf-8")
    (tmp_path / "退款.xls").write_bytes(b"\xd0\xcf\x11\xe0 legacy workbook")
    result, _ = _load(tmp_path)
    reasons = {r.file: r.reason for r in result.rejects}
    assert "not a chat transcript" in reasons["说明.txt"]
    assert "另存为 .xlsx" in reasons["退款.xls"]


def test_text_before_the_first_message_line_is_rejected_not_lost(tmp_path):
    (tmp_path / "x.txt").write_text("随便写的一行\n2024-05-15 10:00:00 买家甲\n在吗\n", encoding="utf-8")
    result, con = _load(tmp_path)
    assert [(r.line, "before the first message" in r.reason) for r in result.rejects] == [(1, True)]
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_message_lines_in_both_layouts():
    assert message_line("2024-05-15 10:00:00 tb_buyer01") == ("2024-05-15 10:00:00", "tb_buyer01")
    assert message_line("初晴旗舰店:小李 (2024-05-15 10:09:00):") == ("2024-05-15 10:09:00", "初晴旗舰店:小李")
    assert message_line("初晴旗舰店:小王 2024/5/15 10:00:30") == ("2024/5/15 10:00:30", "初晴旗舰店:小王")
    assert message_line("亲，在的") is None
    assert is_transcript(TRANSCRIPT) and not is_transcript("只是一段文字\n")
