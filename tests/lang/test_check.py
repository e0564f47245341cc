"""Checker: names, types and windows, all problems in one pass, with suggestions."""

from pathlib import Path

from ledger.lang.check import check
from ledger.lang.syntax import parse

REPO = Path(__file__).resolve().parents[2]
HOUSE = (REPO / "policy" / "house-rules.rules").read_text("utf-8")


def diagnostics_of(text: str):
    pf, diagnostics = parse(text, "policy/house-rules.rules")
    policy, more = check([pf])
    return policy, diagnostics + more


def test_shipped_policy_is_clean():
    policy, diagnostics = diagnostics_of(HOUSE)
    assert diagnostics == []
    assert [r.id.value for r in policy.rules] == [
        "敬语", "短语回复", "回复超时", "未挂离开", "缺货直答", "核对订单",
        "顶撞买家", "顶撞买家_质检", "未再次询问", "退款超时", "交接班"]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_misspelt_field_is_reported_at_its_line_with_a_suggestion():
    broken = HOUSE.replace("when reason has any 常规退款", "when reasn has any 常规退款")
    _, diagnostics = diagnostics_of(broken)
    (d,) = diagnostics
    assert d.position.line == line_of(broken, "reasn has any")
    assert d.position.column == broken.splitlines()[d.position.line - 1].index("reasn") + 1
    assert "reason" in d.hint
    rendered = d.render()
    assert rendered.startswith(f"policy/house-rules.rules:{d.position.line}:{d.position.column}:")
    assert "reasn has any" in rendered and "^^^^^" in rendered


def test_all_errors_in_one_pass():
    broken = (HOUSE.replace("on order_placed", "on order_placd")
              .replace("text has any 辱骂用语", "text has any 辱骂用")
              .replace('category = "未挂离开"', "category = 3")
              .replace("previous.sender != \"buyer\"", "previus.sender != \"buyer\""))
    _, diagnostics = diagnostics_of(broken)
    messages = " | ".join(d.message for d in diagnostics)
    assert len(diagnostics) == 4, messages
    hints = [d.hint or "" for d in diagnostics]
    assert any("order_placed" in h for h in hints)
    assert any("辱骂用语" in h for h in hints)
    assert any("previous" in h for h in hints)
    assert any("类型不匹配" in d.message for d in diagnostics)


def test_sequence_facts_need_per():
    broken = HOUSE.replace("on message[sender = \"agent\" and kind = \"text\"] per conversation",
                           "on message[sender = \"agent\" and kind = \"text\"]")
    _, diagnostics = diagnostics_of(broken)
    assert {d.message.split()[0] for d in diagnostics} == {"first", "last"}


def test_same_key_must_exist_on_both_events():
    broken = HOUSE.replace("unless refund_handled same order within 30m",
                           "unless refund_handled same buyer, reason within 30m")
    _, diagnostics = diagnostics_of(broken)
    assert ["reason" in d.message for d in diagnostics] == [True]


def test_filter_cannot_use_the_sequence_it_defines():
    broken = HOUSE.replace('on message[sender = "agent" and kind = "text"] per conversation',
                           'on message[first] per conversation')
    _, diagnostics = diagnostics_of(broken)
    assert any(d.message.startswith("first") for d in diagnostics)


def test_duplicate_rule_and_bad_timezone():
    broken = HOUSE.replace('timezone "Asia/Shanghai"', 'timezone "Asia/Shanghi"') + \
        '\nrule 交接班 "again":\n    on shift_end\n    fine 1元\n'
    _, diagnostics = diagnostics_of(broken)
    assert len(diagnostics) == 2
    assert any("时区" in d.message for d in diagnostics)
    assert any("重复" in d.message for d in diagnostics)


def test_bad_regex_is_a_diagnostic():
    broken = HOUSE.replace("when text has any 辱骂用语", "when text matches /(unclosed/")
    _, diagnostics = diagnostics_of(broken)
    assert len(diagnostics) == 1 and "正则" in diagnostics[0].message
