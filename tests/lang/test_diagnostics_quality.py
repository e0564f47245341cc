"""Diagnostics that help: one mistake gives one error, warnings beside errors, suggestions
for misspelt keywords, names starting with a digit, and the unit of a comparison (issue 14)."""

from pathlib import Path

from ledger.lang.check import check
from ledger.lang.lint import lint
from ledger.lang.load import policy_from_bytes
from ledger.lang.syntax import parse

REPO = Path(__file__).resolve().parents[2]
POLICY = {name: (REPO / "policy" / name).read_text("utf-8")
          for name in ("house-rules.rules", "metrics.rules", "incentives.rules")}


def diagnostics_of(**replaced):
    """The shipped policy with some files' text replaced (house=, metrics=, incentives=)."""
    files = dict(POLICY)
    for key, text in replaced.items():
        files[{"house": "house-rules.rules"}.get(key, f"{key}.rules")] = text
    _, diagnostics, _ = policy_from_bytes([(f"policy/{n}", t.encode()) for n, t in files.items()])
    return diagnostics


def only(diagnostics):
    assert len(diagnostics) == 1, [d.render() for d in diagnostics]
    return diagnostics[0]


def test_a_syntax_error_in_a_rule_does_not_make_its_examples_unknown():
    house = POLICY["house-rules.rules"]
    assert house.count("expect 敬语") >= 1
    broken = house.replace(" fine 10元", " fien 10元", 1)
    d = only(diagnostics_of(house=broken))
    assert d.severity == "error" and "'fien'" in d.message
    assert d.hint == "是不是想写 fine？(did you mean 'fine'?)"


def test_a_syntax_error_in_a_metric_does_not_make_its_users_unknown():
    metrics = POLICY["metrics.rules"].replace("metric 三分钟回复率 = 三分钟回复轮次 / 提问轮次",
                                              "metric 三分钟回复率 = 三分钟回复轮次 // 提问轮次")
    d = only(diagnostics_of(metrics=metrics))
    assert d.severity == "error"
    assert "unknown" not in d.message


def digit_named(name: str) -> str:
    """A file of the shipped policy with the metric named as the docs once named it."""
    return POLICY[name].replace("三分钟回复率", "3分钟回复率")


def test_one_error_per_broken_declaration():
    # fien and whne are in one rule (敬语): the parser stops at the first; 3分钟回复率 breaks its
    # metric, the rule 响应奖 and the example that gives it a value: 5 errors
    house = (POLICY["house-rules.rules"].replace(" fine 10元", " fien 10元", 1)
             .replace("unless ", "unles ", 1).replace("    when ", "    whne ", 1))
    diagnostics = diagnostics_of(house=house, metrics=digit_named("metrics.rules"),
                                 incentives=digit_named("incentives.rules"))
    assert len(diagnostics) == 5, [d.render() for d in diagnostics]
    assert all(d.severity == "error" and d.hint for d in diagnostics)


def test_misspelt_keywords_get_a_suggestion():
    house = POLICY["house-rules.rules"]
    for wrong, right, old in (("unles", "unless", "unless "), ("whne", "when", "    when ")):
        d = only(diagnostics_of(house=house.replace(old, old.replace(right, wrong), 1)))
        assert d.hint == f"是不是想写 {right}？(did you mean '{right}'?)"


def test_a_name_starting_with_a_digit_gets_a_hint():
    diagnostics = diagnostics_of(metrics=digit_named("metrics.rules"), incentives=digit_named("incentives.rules"))
    assert [(d.position.filename, d.hint) for d in diagnostics] == [
        ("policy/metrics.rules", "提示：名称不能以数字开头，如 三分钟回复率 (names cannot start with a digit)"),
        ("policy/incentives.rules", "提示：名称不能以数字开头，如 三分钟回复率 (names cannot start with a digit)"),
        ("policy/incentives.rules", "提示：名称不能以数字开头，如 三分钟回复率 (names cannot start with a digit)"),
    ]


def test_a_fraction_against_a_percent_metric_suggests_a_percentage():
    incentives = POLICY["incentives.rules"].replace("三分钟回复率 >= 99%", "三分钟回复率 >= 0.99")
    d = only(diagnostics_of(incentives=incentives))
    assert "type mismatch" in d.message
    assert d.hint == "提示：百分比指标要和百分比比较，请写 99% (compare a percentage with a percentage: 99%)"
    incentives = POLICY["incentives.rules"].replace("三分钟回复率 >= 99%", "0.9 <= 三分钟回复率")
    assert only(diagnostics_of(incentives=incentives)).hint.endswith("90%)")


def test_parse_records_the_names_of_declarations_that_failed():
    pf, diagnostics = parse('event e(a: text)\nrule 坏 "x": on e when a = fine 1元\nrule 好: on e fine 1元\n', "p.rules")
    assert len(diagnostics) == 1
    assert pf.unparsed == ("坏",)
    _, more = check([pf])
    assert more == []


def test_a_rule_that_failed_to_parse_does_not_make_its_word_list_unused():
    # as `ledger check` shows them: the checker's diagnostics, then lint's warnings
    house = POLICY["house-rules.rules"].replace("    when reason has any 常规退款", "    wen reason has any 常规退款")
    files = {**POLICY, "house-rules.rules": house}
    policy, diagnostics, _ = policy_from_bytes([(f"policy/{n}", t.encode()) for n, t in files.items()])
    d = only(diagnostics + lint(policy))
    assert d.severity == "error" and d.hint == "是不是想写 when？(did you mean 'when'?)"


def test_a_word_list_read_only_by_a_metric_is_used():
    text = '''event message(conversation, buyer, agent, sender, kind = "text", text)
words 敬语 = 您 亲
metric 敬语条数:
    count
    on message[sender = "agent" and text has any 敬语]
'''
    pf, d1 = parse(text, "m.rules")
    policy, d2 = check([pf])

    assert d1 + d2 + lint(policy) == []
    unused = text.replace("words 敬语 = 您 亲", "words 敬语 = 您 亲\nwords 没用 = 啊")
    pf, _ = parse(unused, "m.rules")
    policy, _ = check([pf])
    assert [w.message for w in lint(policy)] == ["词表 没用 没有被任何规则使用 (unused word list)"]
