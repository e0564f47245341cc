"""Examples as tests: `example` blocks run through the engine and are compared with
their `expect` lines (ledger.examples, `ledger test`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.evaluate import engine
from ledger.core.errors import PolicyError
from ledger.review.examples import (event_rows, exit_code, render_results, run_examples, test_command,
                             uncovered_rules)

REPO = Path(__file__).resolve().parents[2]
HOUSE = REPO / "policy" / "house-rules.rules"

HEADER = """\
policy "测试规则"
timezone "Asia/Shanghai"
event message(conversation, buyer, agent, sender, kind = "text", text)
event shift_end(agent, handover: bool, successor)

rule 回复超时 "及时回答买家问题":
    on message per conversation
    when sender = "buyer" and previous.sender != "buyer"
    unless message[sender = "agent"] same conversation within 5m
    fine 20元

rule 交接班 "做好交接班":
    on shift_end
    when not handover
    fine 30元 to agent, successor
"""

ASK = 'message(conversation: "c1", agent: "店:小王", sender: "buyer", text: "在吗")'
REPLY = 'message(conversation: "c1", agent: "店:小王", sender: "agent", text: "亲，在的")'


def write_policy(tmp_path: Path, examples: str) -> Path:
    path = tmp_path / "test.rules"
    path.write_text(HEADER + "\n" + examples, "utf-8")
    return path


def results_of(path: Path):
    policy, sources = policy_load.checked_policy([path])
    return policy, run_examples(policy, sources)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text("utf-8").splitlines(), 1) if needle in line)


def only(results):
    (result,) = results
    return result


# ---------------------------------------------------------------- the shipped policy

def test_shipped_examples_all_pass_and_cover_every_rule():
    text, code = test_command([HOUSE])
    policy, results = results_of(HOUSE)
    failed = [r for r in results if not r.passed]
    assert failed == [], text
    assert code == 0
    assert uncovered_rules(policy) == []
    assert "没有例子的规则 (rules without examples): 无" in text
    assert f"{len(results)} 个例子：通过 {len(results)}，失败 0" in text


def test_shipped_examples_have_chinese_titles_and_at_least_two_per_rule():
    policy, _ = results_of(HOUSE)
    for rule in {r.id.value for r in policy.rules}:
        naming = [ex for ex in policy.examples
                  if any(e.rule is not None and e.rule.value == rule for e in ex.expectations)]
        assert len(naming) >= 2, rule
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in ex.title) for ex in policy.examples)


def test_default_path_is_the_policy_folder(monkeypatch):
    monkeypatch.chdir(REPO)
    text, code = test_command([])
    assert code == 0 and "policy/house-rules.rules:" in text


# ---------------------------------------------------------------- a wrong expectation

def test_wrong_amount_fails_at_the_examples_line_with_expected_and_got(tmp_path):
    path = write_policy(tmp_path, f"""\
example "超过5分钟才回复要罚" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:05:01 {REPLY}
    expect 回复超时 25元 to "店:小王"
""")
    text, code = test_command([path])
    assert code == 1
    line = line_of(path, 'example "超过5分钟才回复要罚"')
    result = only(results_of(path)[1])
    assert not result.passed
    assert result.location == f"{path.as_posix()}:{line}"
    assert f"✗ {path.as_posix()}:{line} 超过5分钟才回复要罚" in text.splitlines()
    expected = "\n".join(line.text for line in result.expected)
    got = "\n".join(line.text for line in result.got)
    assert "回复超时" in expected and "店:小王" in expected and "25元" in expected
    assert f"第 {line + 3} 行" in expected  # the expect line itself
    assert "回复超时" in got and "店:小王" in got and "20元" in got
    assert "ex1" in got and "2024-05-02 10:00:00" in got  # trigger event id and time
    # The report shows both, marked: - expected but not produced, + produced but not expected.
    assert "- 回复超时 → 店:小王 罚 25元" in text
    assert "+ 回复超时 → 店:小王 罚 20元 · 触发事件 ex1 2024-05-02 10:00:00" in text
    assert "1 个例子：通过 0，失败 1" in text


def test_right_amount_passes(tmp_path):
    path = write_policy(tmp_path, f"""\
example "超过5分钟才回复要罚" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:05:01 {REPLY}
    expect 回复超时 20元 to "店:小王"
""")
    text, code = test_command([path])
    assert code == 0
    assert text.splitlines()[0] == f"✓ {path.as_posix()}:{line_of(path, 'example')} 超过5分钟才回复要罚"


def test_wrong_agent_fails_and_no_agent_matches_any(tmp_path):
    path = write_policy(tmp_path, f"""\
example "罚错了人" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:05:01 {REPLY}
    expect 回复超时 20元 to "店:小李"

example "不写 to 就不比较客服" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:05:01 {REPLY}
    expect 回复超时 20元
""")
    wrong, any_agent = results_of(path)[1]
    assert not wrong.passed and any_agent.passed


# ---------------------------------------------------------------- expect nothing / expect no

def test_expect_nothing_means_no_rule_at_all(tmp_path):
    path = write_policy(tmp_path, f"""\
example "及时回复，什么都不罚" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:01:00 {REPLY}
    expect nothing

example "别的规则罚了也算失败" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:01:00 {REPLY}
    at 18:00:00 shift_end(agent: "店:小王", handover: false)
    expect nothing
""")
    quiet, noisy = results_of(path)[1]
    assert quiet.passed
    assert not noisy.passed
    assert [line.text for line in noisy.got if not line.ok] == [
        "交接班 → 店:小王 罚 30元 · 触发事件 ex3 2024-05-02 18:00:00"]


def test_expect_no_compares_only_that_rule(tmp_path):
    path = write_policy(tmp_path, f"""\
example "没交接要罚，但回复不超时" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:01:00 {REPLY}
    at 18:00:00 shift_end(agent: "店:小王", handover: false)
    expect no 回复超时

example "回复超时了就不是 no" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:06:00 {REPLY}
    expect no 回复超时
""")
    other_rule_fired, fired = results_of(path)[1]
    assert other_rule_fired.passed
    assert not fired.passed
    assert [line.ok for line in fired.expected] == [False]
    assert "回复超时 不产生记录" in fired.expected[0].text


def test_rules_not_named_are_not_compared(tmp_path):
    path = write_policy(tmp_path, f"""\
example "只看交接班" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:06:00 {REPLY}
    at 18:00:00 shift_end(agent: "店:小王", handover: false, successor: "店:小李")
    expect 交接班 30元 to "店:小王"
    expect 交接班 30元 to "店:小李"
""")
    assert only(results_of(path)[1]).passed


# ---------------------------------------------------------------- multiset comparison

def test_an_unexpected_extra_entry_fails(tmp_path):
    path = write_policy(tmp_path, """\
example "两人都被罚，只期望了一个" on 2024-05-02:
    at 18:00:00 shift_end(agent: "店:小王", handover: false, successor: "店:小李")
    expect 交接班 30元 to "店:小王"
""")
    result = only(results_of(path)[1])
    assert not result.passed
    assert all(line.ok for line in result.expected)
    assert [line.text for line in result.got if not line.ok] == [
        "交接班 → 店:小李 罚 30元 · 触发事件 ex1 2024-05-02 18:00:00"]


def test_an_expectation_counts_once(tmp_path):
    path = write_policy(tmp_path, f"""\
example "只罚一次，却期望两次" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:06:00 {REPLY}
    expect 回复超时 20元
    expect 回复超时 20元

example "两轮各罚一次" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:06:00 {REPLY}
    at 10:07:00 {ASK}
    at 10:13:00 {REPLY}
    expect 回复超时 20元 to "店:小王"
    expect 回复超时 20元
""")
    twice, two_turns = results_of(path)[1]
    assert not twice.passed
    assert [line.ok for line in twice.expected] == [True, False]
    assert two_turns.passed


def test_named_agents_are_matched_before_any_agent(tmp_path):
    # The `to`-less expectation is written first; greedy matching in written order
    # could give it 店:小王's entry and leave `to "店:小王"` unmet.
    path = write_policy(tmp_path, """\
example "不写 to 的期望不抢具体客服的记录" on 2024-05-02:
    at 18:00:00 shift_end(agent: "店:小王", handover: false, successor: "店:小李")
    expect 交接班 30元
    expect 交接班 30元 to "店:小王"
""")
    assert only(results_of(path)[1]).passed


# ---------------------------------------------------------------- pending

def test_pending_expectation(tmp_path):
    path = write_policy(tmp_path, f"""\
example "数据截止时还没到5分钟：待定" on 2024-05-02:
    at 10:00:00 {ASK}
    expect 回复超时 pending to "店:小王"

example "待定不是罚款" on 2024-05-02:
    at 10:00:00 {ASK}
    expect 回复超时 20元 to "店:小王"

example "罚款不是待定" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:06:00 {REPLY}
    expect 回复超时 pending
""")
    pending, not_a_fine, not_pending = results_of(path)[1]
    assert pending.passed
    assert not not_a_fine.passed
    assert [line.text for line in not_a_fine.got] == [
        "回复超时 → 店:小王 待定 (pending) · 触发事件 ex1 2024-05-02 10:00:00"]
    assert not not_pending.passed
    assert "待定" in not_pending.expected[0].text and "20元" in not_pending.got[0].text


# ---------------------------------------------------------------- months

def test_example_spanning_two_months_evaluates_both(tmp_path):
    # Deliberate: a month-end example (asked 05-31 23:58, answered 06-01) must work,
    # so every month the events fall in is run, like consecutive `ledger run`s.
    path = write_policy(tmp_path, """\
example "跨月：5月的提问在6月及时回复，6月的提问超时" :
    at 2024-05-31 23:58:00 message(conversation: "c1", agent: "店:小王", sender: "buyer", text: "在吗")
    at 2024-06-01 00:01:00 message(conversation: "c1", agent: "店:小王", sender: "agent", text: "亲，在的")
    at 2024-06-01 00:02:00 message(conversation: "c1", agent: "店:小王", sender: "buyer", text: "发货了吗")
    at 2024-06-01 00:08:00 message(conversation: "c1", agent: "店:小王", sender: "agent", text: "亲，发了")
    expect 回复超时 20元 to "店:小王"
""")
    result = only(results_of(path)[1])
    assert result.passed


def test_example_spanning_two_months_reports_triggers_of_both(tmp_path):
    path = write_policy(tmp_path, """\
example "两个月各罚一次" :
    at 2024-05-31 18:00:00 shift_end(agent: "店:小王", handover: false)
    at 2024-06-01 18:00:00 shift_end(agent: "店:小王", handover: false)
    expect nothing
""")
    result = only(results_of(path)[1])
    assert not result.passed
    assert [line.text for line in result.got] == [
        "交接班 → 店:小王 罚 30元 · 触发事件 ex1 2024-05-31 18:00:00",
        "交接班 → 店:小王 罚 30元 · 触发事件 ex2 2024-06-01 18:00:00"]


# ---------------------------------------------------------------- events as written

def test_event_rows_ids_times_and_cells(tmp_path):
    (tmp_path / "t.rules").write_text("""\
event order_placed(order, buyer, agent, amount: money, count: number, gift: bool)
rule 下单 "x":
    on order_placed
    fine 1元
example "字段" on 2024-05-02:
    at 10:00:00 order_placed(order: "O1", agent: "店:小王", amount: 12.50, count: 3, gift: true)
    at 10:00:00.25 order_placed(id: "o2", order: "O2", amount: ¥9, gift: false)
    at 2024-05-03 08:00 order_placed(order: "O3")
    expect 下单 1元
    expect 下单 1元
    expect 下单 1元
""", "utf-8")
    policy, results = results_of(tmp_path / "t.rules")
    assert event_rows(policy.examples[0]) == [
        {"id": "ex1", "ts": "2024-05-02 10:00:00", "type": "order_placed", "order": "O1",
         "agent": "店:小王", "amount": "12.50", "count": "3", "gift": "true"},
        {"id": "o2", "ts": "2024-05-02 10:00:00.250000", "type": "order_placed", "order": "O2",
         "amount": "9", "gift": "false"},
        {"id": "ex3", "ts": "2024-05-03 08:00:00", "type": "order_placed", "order": "O3"},
    ]
    assert only(results).passed
    json.dumps(event_rows(policy.examples[0]))  # plain strings only


def test_ts_or_type_written_as_a_field_is_a_clear_failure(tmp_path):
    # Caught by the checker now, at the field's line, before anything runs.
    path = write_policy(tmp_path, """\
example "ts 写在字段里" on 2024-05-02:
    at 18:00:00 shift_end(agent: "店:小王", handover: false, ts: "2024-05-02 19:00:00")
    expect 交接班 30元
""")
    with pytest.raises(PolicyError) as info:
        test_command([path])
    (d,) = info.value.diagnostics
    assert "at" in d.message and d.source_line.strip().startswith("at 18:00:00")


def test_a_field_given_twice_is_a_clear_failure(tmp_path):
    path = write_policy(tmp_path, """\
example "agent 写了两次" on 2024-05-02:
    at 18:00:00 shift_end(agent: "店:小王", handover: false, agent: "店:小李")
    expect 交接班 30元
""")
    with pytest.raises(PolicyError) as info:
        test_command([path])
    (d,) = info.value.diagnostics
    assert "agent" in d.message and "两次" in d.message


def test_duplicate_ids_are_a_clear_failure(tmp_path):
    path = write_policy(tmp_path, """\
example "同一个 id 用了两次" on 2024-05-02:
    at 18:00:00 shift_end(id: "s1", agent: "店:小王", handover: false)
    at 18:01:00 shift_end(id: "s1", agent: "店:小李", handover: false)
    expect 交接班 30元 to "店:小王"
""")
    result = only(results_of(path)[1])
    assert not result.passed and "没有被读入" in result.problem


def test_example_without_events_produces_nothing(tmp_path):
    path = write_policy(tmp_path, """\
example "没有事件" on 2024-05-02:
    expect nothing
""")
    assert only(results_of(path)[1]).passed


# ---------------------------------------------------------------- checker and coverage

def test_unknown_rule_is_a_checker_error_with_did_you_mean(tmp_path):
    path = write_policy(tmp_path, f"""\
example "规则名写错" on 2024-05-02:
    at 10:00:00 {ASK}
    expect 回复超失 20元
""")
    with pytest.raises(PolicyError) as info:
        test_command([path])
    (d,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert d.position.line == line_of(path, "expect 回复超失")
    assert "未知规则" in d.message and "回复超失" in d.message
    assert "回复超时" in d.hint
    assert info.value.exit_code == 1


def test_uncovered_rules(tmp_path):
    path = write_policy(tmp_path, f"""\
example "只有回复超时有例子" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:01:00 {REPLY}
    expect no 回复超时

example "nothing 不算覆盖任何规则" on 2024-05-02:
    at 10:00:00 {ASK}
    at 10:01:00 {REPLY}
    expect nothing
""")
    policy, results = results_of(path)
    assert uncovered_rules(policy) == ["交接班"]
    text = render_results(results, uncovered_rules(policy))
    assert text.splitlines()[-1] == "没有例子的规则 (rules without examples): 交接班"
    assert text.splitlines()[-2] == "2 个例子：通过 2，失败 0"
    assert exit_code(results) == 0


def test_no_examples(tmp_path):
    path = write_policy(tmp_path, "")
    text, code = test_command([path])
    assert code == 0
    assert "0 个例子：通过 0，失败 0" in text
    assert "回复超时, 交接班" in text


def test_amounts_compare_as_money(tmp_path):
    path = write_policy(tmp_path, """\
example "30元、30.00元、¥30 是同一个金额" on 2024-05-02:
    at 18:00:00 shift_end(agent: "店:小王", handover: false, successor: "店:小李")
    expect 交接班 30.00元 to "店:小王"
    expect 交接班 ¥30 to "店:小李"
""")
    assert only(results_of(path)[1]).passed


import pytest as _pytest
from ledger.lang import load as policy_load


@_pytest.mark.parametrize("body, needle", [
    ('    at 10:61:00 shift_end(agent: "a")\n    expect nothing\n', "有效时间"),
    ('    at 10:00:00 shift_end(agent: "a", agent: "b")\n    expect nothing\n', "两次"),
    ('    at 10:00:00 shift_end(agent: "a", ts: "x")\n    expect nothing\n', "at"),
    ('    at 10:00:00 shift_end(agent: "a")\n    expect 交接班 30元\n    expect no 交接班\n', "矛盾"),
])
def test_example_mistakes_are_checker_errors(body, needle):
    from ledger.lang.check import check
    from ledger.lang.syntax import parse

    text = ('event shift_end(agent, handover: bool, successor)\nrule 交接班 "t":\n    on shift_end\n'
            '    when not handover\n    fine 30元\n\nexample "x" on 2024-05-02:\n' + body)
    pf, diagnostics = parse(text, "x.rules")
    _, more = check([pf])
    assert any(needle in d.message for d in diagnostics + more), [d.message for d in diagnostics + more]
