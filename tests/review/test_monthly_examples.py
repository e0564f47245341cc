"""Examples of monthly rules: `given "店:小王" 指标 = 值, …` gives an agent's metric values for
the month (issue 14: every shipped rule and version has an example, `ledger test --strict`)."""

from __future__ import annotations

from pathlib import Path

from ledger.lang import load as policy_load
from ledger.lang.fmt import format_text
from ledger.review.examples import run_examples, test_command, uncovered_versions

REPO = Path(__file__).resolve().parents[2]

POLICY = '''event message(conversation, buyer, agent, sender, kind = "text", text)
event order_paid(order, buyer, agent, amount: money)

metric 询单人数:
    distinct buyer
    on message[sender = "buyer"]

metric 付款人数:
    distinct buyer
    on order_paid

metric 询单转化率 = 付款人数 / 询单人数

metric 平均响应时长:
    avg wait
    on message[sender = "buyer"]
    wait for message[sender = "agent"] same conversation capped 600s

rule 转化奖 "询单转化率奖励":
    monthly
    when 询单人数 >= 20
    first matching
        when 询单转化率 >= 40% bonus 300元
        when 询单转化率 >= 30% bonus 150元

rule 快回奖 "平均响应不超过30秒":
    monthly
    when 平均响应时长 <= 30s
    bonus 50元
'''


def run(tmp_path: Path, examples: str):
    path = tmp_path / "p.rules"
    path.write_text(POLICY + "\n" + examples, "utf-8")
    policy, sources = policy_load.checked_policy([path])
    return run_examples(policy, sources)


def passed(results) -> list[bool]:
    return [r.passed for r in results]


def test_every_shipped_rule_and_version_has_an_example_and_the_bundled_examples_pass_strict():
    # the shipped policy's examples run with --strict in tests/end_to_end/test_cli.py
    policy, _ = policy_load.checked_policy([REPO / "policy"])
    assert uncovered_versions(policy) == [] and policy.monthly
    text, code = test_command([REPO / "examples" / "incentives.rules"], strict=True)
    assert code == 0, text
    assert "没有例子的规则 (rules without examples): 无" in text and "失败 0" in text


def test_given_values_decide_the_tier(tmp_path):
    results = run(tmp_path, '''
example "40%" on 2024-05-31:
    given "店:甲" 询单人数 = 20, 询单转化率 = 40%
    expect 转化奖 300元 to "店:甲"

example "39.9%" on 2024-05-31:
    given "店:甲" 询单人数 = 20, 询单转化率 = 39.9%
    expect 转化奖 150元 to "店:甲"

example "the wrong tier fails" on 2024-05-31:
    given "店:甲" 询单人数 = 20, 询单转化率 = 39.9%
    expect 转化奖 300元 to "店:甲"

example "19 asked: not considered" on 2024-05-31:
    given "店:甲" 询单人数 = 19, 询单转化率 = 100%
    expect no 转化奖
''')
    assert passed(results) == [True, True, False, True]


def test_a_ratio_not_given_is_computed_from_the_given_parts(tmp_path):
    results = run(tmp_path, '''
example "8 of 20 is 40%" on 2024-05-31:
    given "店:甲" 询单人数 = 20, 付款人数 = 8
    expect 转化奖 300元 to "店:甲"

example "7 of 20 is 35%" on 2024-05-31:
    given "店:甲" 询单人数 = 20, 付款人数 = 7
    expect 转化奖 150元 to "店:甲"
''')
    assert passed(results) == [True, True]


def test_metrics_not_given_are_computed_from_the_examples_events(tmp_path):
    # 付款人数 comes from the two order_paid events: 2 of 20 is 10%, no tier; given 8 it is 40%.
    orders = '''    at 10:00:00 order_paid(order: "O1", buyer: "b1", agent: "店:甲", amount: 10元)
    at 10:01:00 order_paid(order: "O2", buyer: "b2", agent: "店:甲", amount: 10元)
'''
    results = run(tmp_path, f'''
example "events count" on 2024-05-20:
{orders}    given "店:甲" 询单人数 = 20
    expect no 转化奖

example "given wins over events" on 2024-05-20:
{orders}    given "店:甲" 询单人数 = 20, 付款人数 = 8
    expect 转化奖 300元 to "店:甲"
''')
    assert passed(results) == [True, True]


def test_durations_and_several_agents(tmp_path):
    results = run(tmp_path, '''
example "30s pays, 31s does not; an agent given nothing has a blank average" on 2024-05-31:
    given "店:甲" 平均响应时长 = 30s
    given "店:乙" 平均响应时长 = 31s
    given "店:丙" 询单人数 = 5
    expect 快回奖 50元 to "店:甲"
''')
    assert passed(results) == [True]


def test_given_is_for_the_month_of_the_examples_date(tmp_path):
    results = run(tmp_path, '''
example "given for June" on 2024-06-30:
    at 2024-05-31 10:00:00 message(conversation: "c1", buyer: "b1", agent: "店:甲", sender: "buyer", text: "在吗")
    given "店:甲" 询单人数 = 20, 询单转化率 = 50%
    expect 转化奖 300元 to "店:甲"
''')
    # May is evaluated too (the event), with one buyer asking: no bonus there; June pays once.
    assert passed(results) == [True]


def test_fmt_keeps_given_lines_in_place():
    text = '''event order_paid(order, buyer, agent, amount: money)
metric 付款人数:
    distinct buyer
    on order_paid
rule 奖:
    monthly
    when 付款人数 >= 2
    bonus 10元
example "x" on 2024-05-31:
    at 10:00:00 order_paid(order: "O1", buyer: "b1", agent: "店:甲", amount: 10元)
    given   "店:乙"  付款人数=2 ,
    expect 奖 10元 to "店:乙"
'''
    out = format_text(text, "p.rules")
    assert '    given "店:乙" 付款人数 = 2\n    expect 奖 10元 to "店:乙"\n' in out
    assert out.index("at 10:00:00") < out.index("given")
    assert format_text(out, "p.rules") == out
