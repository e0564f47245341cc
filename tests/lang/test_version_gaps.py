"""`ledger check`: gaps between versions of a rule split with `effective` are warned, and
warnings are shown beside errors (issue 14)."""

from ledger.cli import main
from ledger.lang.check import check
from ledger.lang.lint import lint, version_gaps
from ledger.lang.syntax import parse

SPLIT = '''
event shift_end(agent, handover: bool, successor)

rule 交接班 "不交接班":
    effective 2024-04-01 until 2024-05-14
    on shift_end
    when not handover
    fine 20元

rule 交接班 "不交接班（提高）":
    effective {start}
    on shift_end
    when not handover
    fine 30元
'''


def checked(text):
    pf, diagnostics = parse(text, "p.rules")
    policy, more = check([pf])
    return policy, diagnostics + more


def test_versions_that_join_give_no_warning():
    policy, diagnostics = checked(SPLIT.format(start="2024-05-15"))
    assert diagnostics == [] and version_gaps(policy) == []


def test_a_day_no_version_covers_is_warned_at_the_later_version():
    text = SPLIT.format(start="2024-05-16")
    policy, diagnostics = checked(text)
    assert diagnostics == []
    (w,) = lint(policy)
    assert w.severity == "warning"
    assert w.position.line == text.splitlines().index("    effective 2024-05-16") + 1
    assert w.message == ("规则 交接班 在 2024-05-15 没有生效的版本（p.rules:4:1 的版本到 2024-05-14 止，"
                         "下一版本 2024-05-16 起）：这些天的事件不处罚 (no version covers these days)")
    assert w.hint == "提示：如果是想接上，请写 effective 2024-05-15 (to continue without a gap)"


def test_several_days_are_shown_as_a_range():
    policy, _ = checked(SPLIT.format(start="2024-06-01"))
    (w,) = version_gaps(policy)
    assert "在 2024-05-15 至 2024-05-31 没有生效的版本" in w.message


def test_overlapping_versions_stay_an_error():
    _, diagnostics = checked(SPLIT.format(start="2024-05-10"))
    (d,) = diagnostics
    assert d.severity == "error" and "overlap" in d.message


MONTHLY = '''
event message(agent, conversation, sender)

metric 消息数:
    count
    on message

rule 勤奋奖 "消息多":
    effective 2024-01-01 until 2024-03-31
    monthly
    when 消息数 >= 100
    bonus 100元

rule 勤奋奖 "消息多（提高）":
    effective {start}
    monthly
    when 消息数 >= 100
    bonus 200元
'''


def test_a_monthly_rule_is_warned_for_the_months_no_version_covers():
    policy, diagnostics = checked(MONTHLY.format(start="2024-04-15"))
    assert diagnostics == [] and version_gaps(policy) == []  # April's last day is covered
    policy, diagnostics = checked(MONTHLY.format(start="2024-06-02"))
    assert diagnostics == []
    (w,) = version_gaps(policy)
    assert "在 2024-04、2024-05 没有生效的版本" in w.message and "这些月份不计算" in w.message


def test_check_shows_warnings_beside_errors(tmp_path, capsys):
    text = SPLIT.format(start="2024-05-16") + '\nrule 坏 "x":\n    on shift_end\n    fien 10元\n'
    (tmp_path / "p.rules").write_text(text, "utf-8")
    assert main(["check", str(tmp_path / "p.rules")]) == 1
    err = capsys.readouterr().err
    assert err.count(": 错误: ") == 1 and err.count(": 警告: ") == 1
    assert "是不是想写 fine？" in err and "2024-05-15 没有生效的版本" in err
    assert "规则文件有 1 个错误 (policy has 1 error)，警告 1 个" in err
