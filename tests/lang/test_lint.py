"""Lint warnings: valid policies that are probably not what was meant."""

import json
from pathlib import Path

from ledger.lang.check import check
from ledger.cli import main
from ledger.lang.lint import lint
from ledger.lang.syntax import parse

REPO = Path(__file__).resolve().parents[2]
HOUSE = (REPO / "policy" / "house-rules.rules").read_text("utf-8")


def warnings_of(text: str):
    pf, diagnostics = parse(text, "p.rules")
    policy, more = check([pf])
    assert [d for d in diagnostics + more if d.severity == "error"] == []
    return lint(policy)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_policy_has_no_warnings():
    assert warnings_of(HOUSE) == []


def test_unused_word_list():
    text = HOUSE.replace("words 敬语 =", "words 没用的 = 甲 乙\n\nwords 敬语 =")
    (w,) = warnings_of(text)
    assert w.severity == "warning" and "没用的" in w.message
    assert w.position.line == line_of(text, "words 没用的")


def test_window_longer_than_lookahead():
    text = HOUSE.replace("unless refund_handled same order within 30m", "unless refund_handled same order within 2d")
    (w,) = warnings_of(text)
    assert "2 天" in w.message and w.position.line == line_of(text, "within 2d")


def test_two_unconditional_rules_on_the_same_events():
    text = HOUSE + '\nrule 未挂离开2 "again":\n    on qa_flag[category = "未挂离开"]\n    fine 5元\n'
    (w,) = warnings_of(text)
    assert "未挂离开" in w.message and w.position.line == line_of(text, "rule 未挂离开2")


def test_check_with_month_counts_events_fined_twice(capsys, tmp_path):
    m = lambda i, ts, sender, text: {"id": f"m{i}", "ts": ts, "type": "message", "conversation": "c1",
                                     "buyer": "b1", "agent": "店:小王", "sender": sender, "text": text}
    events = [m(1, "2024-05-10 10:00:00", "agent", "亲，您好"), m(2, "2024-05-10 10:00:10", "buyer", "有货吗"),
              m(3, "2024-05-10 10:00:30", "agent", "嗯"),  # a short answer never followed up
              {"id": "end", "ts": "2024-05-20 00:00:00", "type": "status"}]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), "utf-8")
    code = main(["check", str(REPO / "policy"), "--month", "2024-05", "--events", str(tmp_path)])
    assert code == 0
    captured = capsys.readouterr()
    # A short answer that is never followed up: both rules fine it.
    lines = [l for l in captured.err.splitlines() if "同时被" in l]
    assert any("短语回复" in l and "未再次询问" in l for l in lines)
    assert "警告" in captured.out
