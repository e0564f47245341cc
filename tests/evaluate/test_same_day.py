"""`same day` windows of metrics (metrics._same_day_sql): the row itself is never one of
the events it looks for, also when it passes the window's own filter."""

from __future__ import annotations

import json

from ledger.core.month import Month
from ledger.evaluate import engine
from ledger.lang.check import check
from ledger.lang.syntax import parse

POLICY = """
event message(conversation, buyer, agent, sender, kind = "text", text)
metric 有伴 "同一天同会话还有别的买家消息的文字消息":
    count
    on message[kind = "text"]
    with message[sender = "buyer"] same conversation same day
"""


def test_same_day_counts_other_events_not_the_row_itself(tmp_path):
    parsed, diagnostics = parse(POLICY, "t.rules")
    policy, more = check([parsed])
    assert not [d for d in diagnostics + more if d.severity == "error"], diagnostics + more
    rows = []
    for c in range(5):
        for k in range(5):
            rows.append({"id": f"e{c}{k}", "ts": f"2024-05-0{1 + k % 2} 1{k}:00:00", "type": "message",
                         "conversation": f"c{c}" if c != 4 else "", "buyer": "b", "agent": f"a{c % 2}",
                         "sender": "buyer" if (c + k) % 3 == 0 else "agent",
                         "kind": "emoji" if (c * k) % 4 == 3 else "text", "text": "好"})
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    result = engine.run_policy(policy, (), tmp_path, Month.parse("2024-05"))
    want: dict[str, int] = {}
    for r in rows:
        if r["kind"] != "text":
            continue
        others = [o for o in rows if o is not r and o["sender"] == "buyer" and r["conversation"]
                  and o["conversation"] == r["conversation"] and o["ts"][:10] == r["ts"][:10]]
        want[r["agent"]] = want.get(r["agent"], 0) + bool(others)
    got = {a: int(v) for a, v in result.metrics["有伴"].items()}
    assert got == want
    # a buyer text message alone with no other buyer message that day does not count itself
    assert sum(want.values()) < sum(r["kind"] == "text" for r in rows if r["conversation"])
