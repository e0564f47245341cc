"""`ledger test`: rule versions and monthly rules without examples, `--strict`, and the
JSON of `ledger test` and `ledger check` (issue 14)."""

import json
from pathlib import Path

from ledger.cli import main
from ledger.review.examples import Uncovered, test_command, uncovered_rules, uncovered_versions
from ledger.lang.load import load_policy

REPO = Path(__file__).resolve().parents[2]

SPLIT = '''event shift_end(agent, handover: bool, successor)

rule 交接班 "不交接班":
    effective 2024-04-01 until 2024-05-14
    on shift_end
    when not handover
    fine 20元

rule 交接班 "不交接班（提高）":
    effective 2024-05-15
    on shift_end
    when not handover
    fine 30元

example "五月上旬不交接罚20元" on 2024-05-02:
    at 18:00:00 shift_end(agent: "店:甲", handover: false, successor: "店:乙")
    expect 交接班 20元 to "店:甲"
'''


def write(tmp_path, text):
    path = tmp_path / "p.rules"
    path.write_text(text, "utf-8")
    return path


def test_a_version_without_an_example_is_listed_by_file_and_line(tmp_path):
    path = write(tmp_path, SPLIT)
    policy, _, _ = load_policy([path])
    assert uncovered_versions(policy) == [Uncovered("交接班", f"{path.as_posix()}:9", "2024-05-15 起", False)]
    assert uncovered_rules(policy) == ["交接班"]
    text, code = test_command([path])
    assert code == 0
    assert text.splitlines()[-2:] == [
        "没有例子的规则 (rules without examples): 交接班",
        f"  交接班（{path.as_posix()}:9，2024-05-15 起的版本）",
    ]


def test_an_example_in_the_later_period_covers_the_later_version(tmp_path):
    path = write(tmp_path, SPLIT + '''
example "五月下旬不交接罚30元" on 2024-05-20:
    at 18:00:00 shift_end(agent: "店:甲", handover: false, successor: "店:乙")
    expect 交接班 30元 to "店:甲"
''')
    policy, _, _ = load_policy([path])
    assert uncovered_versions(policy) == []
    text, code = test_command([path], strict=True)
    assert code == 0 and text.splitlines()[-1] == "没有例子的规则 (rules without examples): 无"


def test_strict_makes_uncovered_versions_fail(tmp_path, capsys):
    path = write(tmp_path, SPLIT)
    text, code = test_command([path], strict=True)
    assert code == 1
    assert text.splitlines()[-1] == "--strict: 1 个规则版本没有例子 (rule versions without examples)"
    assert main(["test", str(path), "--strict"]) == 1
    assert main(["test", str(path)]) == 0


MONTHLY = '''event order_paid(order, buyer, agent, amount: money)

metric 付款人数:
    distinct buyer
    on order_paid

rule 付款奖 "付款人数奖励":
    effective 2024-04-01 until 2024-05-20
    monthly
    when 付款人数 >= 10
    bonus 100元

rule 付款奖 "付款人数奖励（新办法）":
    effective 2024-05-21
    monthly
    when 付款人数 >= 20
    bonus 150元

example "四月：10人奖100元" on 2024-04-15:
    given "店:甲" 付款人数 = 10
    expect 付款奖 100元 to "店:甲"
'''


def test_monthly_versions_are_covered_by_an_example_in_a_month_whose_last_day_they_cover(tmp_path):
    path = write(tmp_path, MONTHLY)
    policy, _, _ = load_policy([path])
    # the example's month (April) ends in the first version; May ends in the second (from 05-21)
    assert uncovered_versions(policy) == [Uncovered("付款奖", f"{path.as_posix()}:13", "2024-05-21 起", True)]
    text, code = test_command([path], strict=True)
    assert code == 1 and "付款奖（" in text and "月度规则" in text
    path = write(tmp_path, MONTHLY + '''
example "五月按新办法：20人奖150元" on 2024-05-10:
    given "店:甲" 付款人数 = 20
    expect 付款奖 150元 to "店:甲"
''')
    policy, _, _ = load_policy([path])
    assert uncovered_versions(policy) == []
    text, code = test_command([path], strict=True)
    assert code == 0, text


def test_test_json_shape(tmp_path, capsys):
    path = write(tmp_path, SPLIT)
    assert main(["test", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"examples", "passed", "failed", "uncovered"}
    assert data["passed"] == 1 and data["failed"] == 0
    (ex,) = data["examples"]
    assert ex == {"location": f"{path.as_posix()}:15", "title": "五月上旬不交接罚20元", "passed": True,
                  "problem": None, "expected": [], "got": []}
    assert data["uncovered"] == [{"rule": "交接班", "location": f"{path.as_posix()}:9",
                                  "effective": "2024-05-15 起", "monthly": False}]


def test_check_json_shape_with_an_error_and_a_warning(tmp_path, capsys):
    text = SPLIT.replace("effective 2024-05-15", "effective 2024-05-16") + '\nrule 坏:\n    on shift_end\n    fien 10元\n'
    path = write(tmp_path, text)
    assert main(["check", str(path), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["ok"], data["errors"], data["warnings"]) == (False, 1, 1)
    error, warning = data["diagnostics"]
    assert error["severity"] == "error" and error["hint"] == "是不是想写 fine？(did you mean 'fine'?)"
    assert error["file"] == path.as_posix() and error["line"] == 21
    assert warning["severity"] == "warning" and warning["line"] == 10 and "2024-05-15" in warning["message"]
    assert set(error) == {"file", "line", "column", "end_column", "severity", "message", "hint"}


def test_check_json_of_the_shipped_policy(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["check", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "errors": 0, "warnings": 0, "diagnostics": []}


def test_check_json_carries_export_profile_errors(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, SPLIT.replace("effective 2024-05-15", "effective 2024-05-16"))
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "shop.profile").write_text("profile 店铺导出\nmatch 订单号\nnonsense here\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(path), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["errors"] == 1 and data["warnings"] == 1  # the policy's warning too
    (profile_error,) = [d for d in data["diagnostics"] if d["severity"] == "error"]
    assert (profile_error["file"], profile_error["line"], profile_error["column"]) == ("events/shop.profile", 3, 1)
    assert "nonsense" in profile_error["message"]
    # text: the same error, file:line:col, and the count on the last line (stderr), exit 1
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "events/shop.profile:3:1:" in err and "导出格式文件有 1 个错误" in err
