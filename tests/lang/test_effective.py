"""Effective dates: rule versions apply by event time; old months reproduce."""

import json
from decimal import Decimal
from pathlib import Path

from ledger.evaluate import engine
from ledger.outputs import report
from ledger.lang.check import check
from ledger.lang.syntax import parse

POLICY = '''
event shift_end(agent, handover: bool, successor)

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
'''


def write_events(folder: Path, times: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": f"s{i}", "ts": ts, "type": "shift_end", "agent": "店:甲", "handover": "false"},
                        ensure_ascii=False) for i, ts in enumerate(times)]
    (folder / "shifts.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    return folder


def run(tmp_path, policy_text, times, month="2024-05"):
    (tmp_path / "p.rules").write_text(policy_text, "utf-8")
    events = write_events(tmp_path / "events", times)
    return engine.run_month([tmp_path / "p.rules"], events, month)


def test_versions_apply_by_event_time(tmp_path):
    result = run(tmp_path, POLICY, ["2024-05-14 23:59:59", "2024-05-15 00:00:00", "2024-05-31 12:00:00"])
    got = [(e.event_id, e.amount, e.rule_location) for e in result.entries]
    assert [(a, b) for a, b, _ in got] == [("s0", Decimal("20.00")), ("s1", Decimal("30.00")), ("s2", Decimal("30.00"))]
    assert got[0][2] != got[1][2]  # each line points at the version that produced it
    statement = report.statement_of(result)
    versions = [(r.rule_id, r.amount_text, r.count, r.total, r.effective) for r in statement.rules]
    assert versions == [("交接班", "20元", 1, Decimal("20.00"), "2024-04-01 起，至 2024-05-14 止"),
                        ("交接班", "30元", 2, Decimal("60.00"), "2024-05-15 起")]


def test_old_month_reproduces_under_todays_policy(tmp_path):
    result = run(tmp_path, POLICY, ["2024-04-20 10:00:00"], month="2024-04")
    assert [e.amount for e in result.entries] == [Decimal("20.00")]


def test_before_the_first_version_nothing_applies(tmp_path):
    result = run(tmp_path, POLICY, ["2024-03-31 23:59:59"], month="2024-03")
    assert result.entries == ()


def test_file_wide_effective_applies_to_rules_without_their_own(tmp_path):
    text = "effective 2024-05-10\n" + POLICY.replace("    effective 2024-04-01 until 2024-05-14\n", "") \
        .replace('rule 交接班 "不交接班（提高）":\n    effective 2024-05-15\n', 'rule 交接班2 "x":\n')
    pf, diagnostics = parse(text, "p.rules")
    policy, more = check([pf])
    assert diagnostics + more == []
    assert {str(r.effective) for r in policy.rules} == {"2024-05-10 起"}


def diagnostics_of(text):
    pf, diagnostics = parse(text, "p.rules")
    _, more = check([pf])
    return diagnostics + more


def test_overlapping_versions_are_an_error():
    text = POLICY.replace("effective 2024-05-15", "effective 2024-05-14")
    (d,) = diagnostics_of(text)
    assert "重叠" in d.message and d.position.line == text.splitlines().index("    effective 2024-05-14") + 1


def test_two_versions_need_dates():
    text = POLICY.replace("    effective 2024-05-15\n", "")
    (d,) = diagnostics_of(text)
    assert "重复" in d.message and "effective" in d.hint


def test_bad_dates():
    assert any("有效日期" in d.message for d in diagnostics_of(POLICY.replace("2024-05-15", "2024-02-30")))
    assert any("早于" in d.message for d in diagnostics_of(POLICY.replace("until 2024-05-14", "until 2024-03-01")))
