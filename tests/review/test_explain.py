"""`ledger explain`: the rule line, the conditions, the windows and the transcript behind an
entry, and every rule's verdict on an event — on tiny event folders and the shipped policy."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from ledger.review import explain as ex
from ledger.review import explain_records as rec
from ledger.review.explain_render import render_entry, render_event
from ledger.core.entries import entry_id
from ledger.evaluate.engine import run_month
from ledger.core.errors import LedgerError

REPO = Path(__file__).resolve().parents[2]
POLICY = [Path("policy")]  # relative, as the CLI passes it: locations read "policy/…"
WANG = "店:小王"


@pytest.fixture(autouse=True)
def _at_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def rule_line(rule_id: str) -> int:
    lines = (REPO / "policy" / "house-rules.rules").read_text("utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(f"rule {rule_id} "))


def T(when: str) -> str:
    """"10:00:30" → 2024-05-15 10:00:30; "06-02 10:00:00" → 2024-06-02 10:00:00."""
    return f"2024-05-15 {when}" if len(when) == 8 else f"2024-{when}"


def msg(id: str, when: str, sender: str, text: str, kind: str | None = None, conv: str = "c1") -> dict:
    event = {"id": id, "ts": T(when), "type": "message", "conversation": conv, "agent": WANG,
             "buyer": "b1", "sender": sender, "text": text}
    if kind:
        event["kind"] = kind
    return event


END = {"id": "end", "ts": "2024-06-05 00:00:00", "type": "status"}  # data end beyond every deadline


def folder(tmp_path: Path, events: list[dict]) -> Path:
    root = tmp_path / "events"
    root.mkdir()
    with (root / "events.jsonl").open("w", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps(event, ensure_ascii=False) + "\n")
    return root


def entry(rule_id: str, event_id: str, root: Path, month: str = "2024-05") -> rec.EntryExplanation:
    return ex.explain_entry(entry_id(rule_id, event_id, WANG), month=month, policy_paths=POLICY,
                            events_root=root)


def event(event_id: str, root: Path, month: str = "2024-05") -> rec.EventExplanation:
    return ex.explain_event(event_id, month=month, policy_paths=POLICY, events_root=root)


def check_of(x: rec.EventExplanation, rule_id: str) -> rec.RuleCheck:
    return next(c for c in x.checks if c.rule.id == rule_id)


def node(check: rec.ConditionCheck, text: str) -> rec.ConditionNode:
    return next(n for n in check.nodes if n.text == text)


# ---------------------------------------------------------------- entries

def test_late_reply_names_the_rule_line_the_window_span_and_nothing_found(tmp_path):
    root = folder(tmp_path, [
        msg("m1", "10:00:00", "buyer", "这款有货吗"),
        msg("a0", "10:01:00", "agent", "亲，欢迎光临，客服马上来", kind="auto_reply"),
        msg("a1", "10:06:00", "agent", "亲，有货的，您放心拍"),
        END,
    ])
    x = entry("回复超时", "m1", root)
    assert x.entry.rule_id == "回复超时" and x.entry.event_id == "m1"
    assert x.check.rule.location == f"policy/house-rules.rules:{rule_line('回复超时')}"
    assert x.check.rule.source.startswith("rule 回复超时")
    assert x.check.verdict == rec.CHARGED
    [w] = x.check.windows
    assert (w.span_from, w.span_to) == (datetime(2024, 5, 15, 10, 0, 0), datetime(2024, 5, 15, 10, 5, 0))
    assert (w.found, w.required, w.events) == (0, 1, ())
    assert w.keys == (("conversation", "c1"),)
    assert [b.id for b in w.other_events] == ["a0"]  # the auto reply fails the window's filter
    assert w.next_after is not None and w.next_after.id == "a1"

    text = render_entry(x)
    assert f"policy/house-rules.rules:{rule_line('回复超时')}" in text
    assert "2024-05-15 10:00:00 – 2024-05-15 10:05:00" in text
    assert "找到 0 条，需要 1 条" in text
    assert "conversation = c1" in text
    for section in ("规则", "触发事件", "条件", "时间窗口", "会话记录"):
        assert section in text


def test_short_reply_shows_the_length_and_the_leaf_that_fired(tmp_path):
    root = folder(tmp_path, [
        msg("m1", "10:00:00", "buyer", "这款有货吗"),
        msg("a1", "10:00:30", "agent", " 有货 "),
        END,
    ])
    x = entry("短语回复", "a1", root)
    when = x.check.when
    assert when.value is True
    short = node(when, "length(text) < 5")
    assert short.value is True and short.decisive
    assert rec.Operand("length(text)", 2) in short.operands  # surrounding spaces do not count
    only = node(when, "text only 语气词")
    assert only.value is False and not only.decisive
    assert node(when, 'previous.sender = "buyer"').value is True

    text = render_entry(x)
    assert "length(text) = 2" in text
    [line] = [l for l in text.splitlines() if "length(text) < 5" in l and "length(text) = 2" in l]
    assert line.rstrip().endswith("◀")


def test_pending_entry_says_the_deadline_is_after_the_data_end(tmp_path):
    root = folder(tmp_path, [msg("m1", "05-31 23:58:00", "buyer", "在吗")])
    x = entry("回复超时", "m1", root)
    assert x.entry.status == "pending"
    assert x.check.verdict == rec.PENDING_VERDICT
    [w] = x.check.windows
    assert w.beyond_data_end and w.deadline == datetime(2024, 6, 1, 0, 3, 0)
    assert "待定" in render_entry(x)


def test_transcript_marks_the_trigger_and_keeps_ten_each_side(tmp_path):
    chat = [msg(f"x{i:02d}", f"10:{i:02d}:00", "buyer" if i % 2 else "agent",
                "嗯" if i == 16 else f"亲，第{i}条消息您好") for i in range(30)]
    chat.append(msg("other", "10:16:30", "buyer", "别的会话", conv="c2"))
    root = folder(tmp_path, chat + [END])
    x = entry("短语回复", "x16", root)
    t = x.transcript
    assert t.key == "conversation" and t.value == "c1"
    assert [l.id for l in t.lines] == [f"x{i:02d}" for i in range(6, 27)]
    assert (t.omitted_before, t.omitted_after) == (6, 3)
    assert [l.id for l in t.lines if l.trigger] == ["x16"]
    text = render_entry(x)
    marked = [l for l in text.splitlines() if "▶" in l]
    assert len(marked) == 1 and "x16" in marked[0] and "触发事件" in marked[0]
    assert "别的会话" not in text


def test_unknown_entry_id_is_exit_2_with_did_you_mean(tmp_path):
    root = folder(tmp_path, [msg("m1", "10:00:00", "buyer", "在吗"), END])
    real = entry_id("回复超时", "m1", WANG)
    with pytest.raises(LedgerError) as info:
        ex.explain_entry("E000000000000", month="2024-05", policy_paths=POLICY, events_root=root)
    assert info.value.exit_code == 2 and "找不到明细编号" in str(info.value)
    assert "是不是" not in str(info.value)
    typo = real[:-1] + ("0" if real[-1] != "0" else "1")
    with pytest.raises(LedgerError) as info:
        ex.explain_entry(typo, month="2024-05", policy_paths=POLICY, events_root=root)
    assert info.value.exit_code == 2 and real in str(info.value)
    # ids are accepted in any case
    assert ex.explain_entry(real.lower(), month="2024-05", policy_paths=POLICY, events_root=root).entry.id == real


def test_entry_of_another_month_names_that_month(tmp_path):
    root = folder(tmp_path, [msg("j1", "06-02 10:00:00", "buyer", "在吗"), END])
    with pytest.raises(LedgerError) as info:
        entry("回复超时", "j1", root, month="2024-05")
    assert info.value.exit_code == 2 and "2024-06" in str(info.value)


# ---------------------------------------------------------------- events

def test_reply_at_exactly_five_minutes_excuses_and_is_found(tmp_path):
    root = folder(tmp_path, [
        msg("m1", "10:00:00", "buyer", "这款有货吗"),
        msg("a1", "10:05:00", "agent", "亲，有货的，您放心拍"),
        END,
    ])
    x = event("m1", root)
    late = check_of(x, "回复超时")
    assert late.verdict == rec.EXCUSED and late.entries == ()
    [w] = late.windows
    assert (w.found, w.required) == (1, 1) and [b.id for b in w.events] == ["a1"]
    assert late.when.value is True
    text = render_event(x)
    assert "免罚" in text and "a1" in text
    # the rules that do not read buyer messages say why
    assert check_of(x, "短语回复").verdict == rec.NOT_APPLICABLE

    # and the reply, explained, was the evidence that excused the buyer's turn
    reply = event("a1", root)
    [use] = [u for u in reply.evidence if u.rule.id == "回复超时"]
    assert [(t.id, t.outcome) for t in use.counted] == [("m1", "免罚 (excused)")]
    assert "looked at as possible evidence" in render_event(reply)


def test_refund_for_quality_problem_does_not_apply(tmp_path):
    root = folder(tmp_path, [
        {"id": "r1", "ts": T("10:00:00"), "type": "refund_requested", "order": "o1", "buyer": "b1",
         "agent": WANG, "reason": "质量问题", "amount": "59"},
        END,
    ])
    x = event("r1", root)
    refund = check_of(x, "退款超时")
    assert refund.verdict == rec.NOT_APPLICABLE
    assert [(n.text, n.value) for n in refund.when.decisive] == [("reason has any 常规退款", False)]
    assert "reason has any 常规退款" in refund.reason
    text = render_event(x)
    assert "不适用" in text and "reason has any 常规退款" in text


def test_event_in_june_explained_for_may_is_not_in_this_month(tmp_path):
    root = folder(tmp_path, [msg("j1", "06-02 10:00:00", "buyer", "在吗"), END])
    x = event("j1", root, month="2024-05")
    assert x.checks and all(c.verdict == rec.NOT_IN_MONTH for c in x.checks)
    assert "不在本月" in render_event(x)
    assert check_of(event("j1", root, month="2024-06"), "回复超时").verdict == rec.CHARGED


def test_unknown_event_id_is_exit_2(tmp_path):
    root = folder(tmp_path, [msg("m1001", "10:00:00", "buyer", "在吗"), END])
    with pytest.raises(LedgerError) as info:
        event("m1002", root)
    assert info.value.exit_code == 2 and "m1001" in str(info.value)


def test_filter_false_names_the_failing_test(tmp_path):
    root = folder(tmp_path, [
        {"id": "q1", "ts": T("10:00:00"), "type": "qa_flag", "agent": WANG, "category": "其他"},
        END,
    ])
    x = event("q1", root)
    leave = check_of(x, "未挂离开")
    assert leave.verdict == rec.NOT_APPLICABLE and leave.filter.value is False
    assert [n.text for n in leave.filter.decisive] == ['category = "未挂离开"']
    assert 'category = "其他"' in leave.reason


# ---------------------------------------------------------------- agreement with the engine

MIXED = [
    msg("m1", "10:00:00", "buyer", "这款有货吗"),
    msg("a1", "10:00:30", "agent", "嗯"),
    msg("m2", "10:01:00", "buyer", "那XL呢"),
    msg("a2", "10:07:00", "agent", "亲，XL码没货了"),
    msg("a3", "10:30:00", "agent", "亲，还有什么可以帮您？"),
    {"id": "o1", "ts": T("11:00:00"), "type": "order_placed", "order": "o1", "buyer": "b1",
     "agent": WANG, "amount": "99"},
    {"id": "r1", "ts": T("11:10:00"), "type": "refund_requested", "order": "o1", "buyer": "b1",
     "agent": WANG, "reason": "拍错/多拍", "amount": "99"},
    {"id": "s1", "ts": T("22:00:00"), "type": "shift_end", "agent": WANG, "handover": "false",
     "successor": "店:小李"},
    msg("late", "05-31 23:59:00", "buyer", "在吗", conv="c9"),
]


def test_every_verdict_agrees_with_the_statement(tmp_path):
    root = folder(tmp_path, MIXED)
    entries = run_month(policy_paths=POLICY, events_root=root, month="2024-05").entries
    charged = {(e.rule_id, e.event_id) for e in entries}
    assert {r for r, _ in charged} >= {"短语回复", "回复超时", "缺货直答", "核对订单", "退款超时", "交接班"}
    for e in MIXED:
        x = event(e["id"], root)
        for c in x.checks:
            assert c.verdict != rec.INCONSISTENT, (e["id"], c.rule.id, c.reason)
            assert (c.verdict in (rec.CHARGED, rec.PENDING_VERDICT)) == ((c.rule.id, e["id"]) in charged)
        render_event(x)
    for e in entries:
        x = ex.explain_entry(e.id, month="2024-05", policy_paths=POLICY, events_root=root)
        assert x.entry == e
        assert x.check.verdict in (rec.CHARGED, rec.PENDING_VERDICT)
        render_entry(x)


def test_expression_text_round_trips_through_the_parser():
    from ledger.lang.syntax import parse
    from ledger.lang.unparse import expr_text

    policy, _ = parse((REPO / "policy" / "house-rules.rules").read_text("utf-8"), "house-rules.rules")
    for rule in policy.rules:
        for expr in (rule.on.filter, rule.when):
            if expr is None:
                continue
            again, diags = parse(f"rule x:\n on message\n when {expr_text(expr)}\n fine 1元\n", "again")
            assert not diags
            assert expr_text(again.rules[0].when) == expr_text(expr)


def test_effective_versions_explain_which_is_in_force(tmp_path):
    from ledger.review.explain import explain_event
    from ledger.review.explain_records import CHARGED, NOT_IN_FORCE

    policy = tmp_path / "p.rules"
    policy.write_text('''event shift_end(agent, handover: bool, successor)
rule 交接班 "旧":
    effective 2024-05-01 until 2024-05-14
    on shift_end
    when not handover
    fine 20元
rule 交接班 "新":
    effective 2024-05-15
    on shift_end
    when not handover
    fine 30元
''', "utf-8")
    events = tmp_path / "events"
    events.mkdir()
    (events / "s.jsonl").write_text('{"id": "s1", "ts": "2024-05-20 10:00:00", "type": "shift_end", "agent": "a", "handover": "false"}\n', "utf-8")
    x = explain_event("s1", month="2024-05", policy_paths=[policy], events_root=events)
    assert [c.verdict for c in x.checks] == [NOT_IN_FORCE, CHARGED]
