"""`ledger diff` and `ledger explain` agree with the statement HR receives.

A month with a roster (one employee with two accounts, one near the minimum wage, one
account not in the roster), a fixed cap, a floor, a `confirm` rule, a monthly bonus and
adjustments (a waiver, a confirmation, a manual line). Every kind of policy edit is made;
both policies are run through the real path (`period.lifecycle.prepare`, what `ledger run`
calls) and the money `diff` reports must equal the difference of the two statements, per
employee (应扣 / 减免 / 实扣 / 奖励) and in total, to the fen. `explain` of lines the caps
cut, of the later version of a split rule, of a monthly line and of adjusted lines must
show what the statement deducts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import write_events
from ledger.cli import main
from ledger.core.entries import APPLIED, FINE, TO_CONFIRM, entry_id
from ledger.inputs import roster as roster_mod
from ledger.period import lifecycle
from ledger.review.diff import diff_month, diff_months
from ledger.review.diff_render import render_json, render_markdown, render_text
from ledger.review.explain import explain_entry
from ledger.review.explain_records import CHARGED
from ledger.review.explain_render import render_entry

MONTH = "2024-05"

POLICY = """\
policy "对账"
timezone "Asia/Shanghai"

event message(agent, conversation, buyer, sender, text)

words 辱骂 = 滚 有病
words 顶撞词 = 爱买不买

rule 辱骂 "辱骂买家":
    on message[sender = "agent"]
    when text has any 辱骂
    fine 40元

rule 慢回复 "5分钟内回复":
    on message[sender = "buyer"]
    unless message[sender = "agent"] same conversation within 5m
    fine 15元

rule 顶撞 "顶撞买家":
    on message[sender = "agent"]
    when text has any 顶撞词
    confirm
    fine 25元

metric 违规次数 = count fines

rule 零违规 "零违规奖":
    monthly
    when 违规次数 = 0
    bonus 100元

cap fines 300元
floor 最低工资
"""

SPLIT = POLICY.replace('''rule 慢回复 "5分钟内回复":
    on message[sender = "buyer"]
    unless message[sender = "agent"] same conversation within 5m
    fine 15元''', '''rule 慢回复 "5分钟内回复":
    effective 2024-05-01 until 2024-05-14
    on message[sender = "buyer"]
    unless message[sender = "agent"] same conversation within 5m
    fine 15元

rule 慢回复 "5分钟内回复（新）":
    effective 2024-05-15
    on message[sender = "buyer"]
    unless message[sender = "agent"] same conversation within 5m
    fine 20元''')

DELETED = POLICY.replace('''rule 慢回复 "5分钟内回复":
    on message[sender = "buyer"]
    unless message[sender = "agent"] same conversation within 5m
    fine 15元
''', "")

EDITS = {
    "amount": POLICY.replace("fine 40元", "fine 60元"),
    "word list": POLICY.replace("words 辱骂 = 滚 有病", "words 辱骂 = 滚 有病 笨蛋"),
    "window": POLICY.replace("within 5m", "within 3m"),
    "dated split": SPLIT,
    "deletion": DELETED,
    "rename": POLICY.replace("rule 慢回复", "rule 回复超时"),
    "cap added": POLICY.replace("cap fines 300元", "cap fines 300元\ncap fines 5% of 基本工资 + 绩效工资"),
    "cap removed": POLICY.replace("cap fines 300元\n", ""),
    "floor without bonuses": POLICY.replace("floor 最低工资", "floor 最低工资 without bonuses"),
}

ROSTER = """客服,工号,姓名,部门,基本工资,绩效工资,最低工资,入职,离职
a1,E1,张三,客服一组,3000,1000,2000,,
a2,E1,张三,客服一组,3000,1000,2000,,
b1,E2,李四,客服一组,2100,0,2000,,
d1,E3,王五,客服二组,3000,500,2000,,
"""


def _events() -> list[dict]:
    out = []
    for d in range(1, 29):
        for agent in ("a1", "a2", "b1", "c1", "d1"):
            conv = f"{agent}-{d}"
            reply = 1 if agent == "d1" else d % 7
            text = "好的亲"
            if agent != "d1" and d % 5 == 0:
                text = "滚"
            elif agent != "d1" and d % 6 == 0:
                text = "笨蛋"
            elif agent == "b1" and d % 9 == 0:
                text = "爱买不买"
            out.append({"id": f"{conv}-q", "ts": f"2024-05-{d:02d} 10:00:00", "type": "message", "agent": agent,
                        "conversation": conv, "buyer": f"buyer{d}", "sender": "buyer", "text": "在吗"})
            out.append({"id": f"{conv}-r", "ts": f"2024-05-{d:02d} 10:{reply:02d}:00", "type": "message",
                        "agent": agent, "conversation": conv, "buyer": f"buyer{d}", "sender": "agent",
                        "text": text})
    return out


WAIVED = entry_id("辱骂", "a1-5-r", "a1")
CONFIRMED = entry_id("顶撞", "b1-9-r", "b1")
ADJUSTMENTS = f"""month 2024-05
waive {WAIVED} "主管同意免除"
confirm {CONFIRMED} "聊天记录属实"
adjust b1 fine 30元 迟到 "迟到 40 分钟"
adjust b1 bonus 50元 好评之星 "好评最多"
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    write_events(_events(), root / "events" / MONTH)
    (root / "adjustments").mkdir()
    (root / "adjustments" / "2024-05.txt").write_text(ADJUSTMENTS, "utf-8")
    (root / "roster.csv").write_text(ROSTER, "utf-8")
    (root / "base").mkdir()
    (root / "base" / "house.rules").write_text(POLICY, "utf-8")
    return root


def _write(root: Path, name: str, text: str) -> Path:
    path = root / "edits" / name.replace(" ", "_") / "house.rules"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def _statement(shop: Path, policy: Path, month: str = MONTH):
    """The statement exactly as `ledger run` makes it."""
    return lifecycle.prepare([policy], shop / "events", month, out_dir=shop / "reports",
                             adjustments_root=shop / "adjustments",
                             roster=roster_mod.read(shop / "roster.csv")).statement


def _hr_view(statement) -> dict[str, tuple[Decimal, Decimal, Decimal, Decimal]]:
    """Per employee (工号, else the account): 应扣, 减免, 实扣, 奖励, from the statement's own sheets."""
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    bonuses = {a.agent: a.bonuses for a in statement.agents}
    for a in statement.payroll.accounts:
        row = sums[a.employee_id or a.agent]
        row[0] += a.owed
        row[1] += a.relieved
        row[2] += a.deducted
        row[3] += bonuses.get(a.agent, Decimal(0))
    return {k: tuple(v) for k, v in sums.items()}


def _diff(shop: Path, working: Path, month: str = MONTH):
    return diff_month(month, policy_paths=[working], events_root=shop / "events",
                      base=str(shop / "base" / "house.rules"), roster=roster_mod.read(shop / "roster.csv"),
                      adjustments_root=shop / "adjustments", out_dir=shop / "reports")


@pytest.fixture(scope="module")
def base_statement(shop):
    return _statement(shop, shop / "base" / "house.rules")


def test_the_month_exercises_caps_floor_adjustments_and_monthly_lines(base_statement):
    entries = base_statement.entries
    assert any(e.owed is not None and e.agent in ("a1", "a2") for e in entries)  # the cap bit E1, across accounts
    assert any(e.owed is not None and e.agent == "b1" for e in entries)  # the floor bit E2
    assert any(e.rule_id == "零违规" and e.agent == "d1" and e.status == APPLIED for e in entries)
    assert any(e.id == WAIVED and e.amount == 0 for e in entries)
    assert any(e.id == CONFIRMED and e.status == APPLIED for e in entries)
    assert any(e.status == TO_CONFIRM for e in entries)  # 2024-05-27 still awaits confirmation
    assert any(e.rule_id.startswith("人工调整") for e in entries)


@pytest.mark.parametrize("edit", list(EDITS))
def test_diff_equals_the_difference_of_the_two_statements(shop, base_statement, edit):
    working = _write(shop, edit, EDITS[edit])
    after = _statement(shop, working)
    d = _diff(shop, working)
    before_hr, after_hr = _hr_view(base_statement), _hr_view(after)
    got = {e.employee: e for e in d.employees}
    assert set(got) == set(before_hr) | set(after_hr)
    for key, e in got.items():
        old = before_hr.get(key, (Decimal(0),) * 4)
        new = after_hr.get(key, (Decimal(0),) * 4)
        assert (e.owed.before, e.relieved.before, e.deducted.before, e.bonuses.before) == old, (edit, key)
        assert (e.owed.after, e.relieved.after, e.deducted.after, e.bonuses.after) == new, (edit, key)
        assert e.net.change == (new[3] - new[2]) - (old[3] - old[2])
    assert got["E1"].name == "张三" and got["E1"].accounts == ("a1", "a2")
    assert (d.fines.before, d.fines.after) == (base_statement.total_fines, after.total_fines)
    assert (d.bonuses.before, d.bonuses.after) == (base_statement.total_bonuses, after.total_bonuses)
    assert d.net.change == (after.total_bonuses - after.total_fines) - (
        base_statement.total_bonuses - base_statement.total_fines)
    # per account as on 汇总
    accounts = {a.agent: a for a in d.agents}
    for a in after.agents:
        assert accounts[a.agent].fines.after == a.fines and accounts[a.agent].bonuses.after == a.bonuses
    # the reports render, and JSON carries the same numbers
    assert render_text(d) and render_markdown(d)
    doc = json.loads(render_json(d))
    assert doc["months"][0]["deducted"]["after"] == f"{after.total_fines:.2f}"
    if edit == "rename":
        assert [r.status for r in d.rules if r.rule_id == "回复超时"] == ["renamed"]
        assert not d.appeared and not d.disappeared and d.renamed
    if edit == "floor without bonuses":  # b1 (E2) has a 50元 bonus: without it as pay the floor relieves more
        assert d.money_changed and d.relieved.change > 0
    if edit == "dated split":
        versions = [(r.status, r.effective) for r in d.rules if r.rule_id == "慢回复"]
        # the old text under a new period is the same rule, redated; the new text is a new version
        assert versions == [("redated", "2024-05-01 起，至 2024-05-14 止"), ("added", "2024-05-15 起")]
        assert [r.old_effective for r in d.rules if r.rule_id == "慢回复"] == ["", None]


def test_cap_added_is_not_unchanged(shop, base_statement):
    working = _write(shop, "cap added", EDITS["cap added"])
    d = _diff(shop, working)
    assert d.money_changed and d.fines.change < 0 and d.relieved.change > 0


def test_explain_shows_what_the_statement_deducts(shop):
    working = _write(shop, "dated split", SPLIT)
    statement = _statement(shop, working)
    roster = roster_mod.read(shop / "roster.csv")
    by_id = {e.id: e for e in statement.entries}
    capped = next(e for e in statement.entries if e.owed is not None and e.agent == "a2")
    later = next(e for e in statement.entries if e.rule_id == "慢回复" and e.ts.day >= 15)
    monthly = next(e for e in statement.entries if e.rule_id == "零违规")
    for wanted in (capped, later, monthly, by_id[WAIVED], by_id[CONFIRMED]):
        x = explain_entry(wanted.id, month=MONTH, policy_paths=[working], events_root=shop / "events",
                          roster=roster, adjustments_root=shop / "adjustments", out_dir=shop / "reports")
        assert x.entry.amount == wanted.amount and x.money.deducted == wanted.amount
        assert x.entry.rule_location == wanted.rule_location == x.rule.location
        text = render_entry(x)
        if wanted.kind == FINE:
            assert f"实扣 {wanted.amount}元" in text
        if wanted is capped:
            assert x.money.owed == wanted.owed and x.money.relieved == wanted.owed - wanted.amount
            assert "cap reached" in text or "上限" in text
        if wanted is later:
            assert x.check.verdict == CHARGED and "（新）" in x.rule.title and "2024-05-15" in x.rule.source
        if wanted is monthly:
            assert x.check is None and "monthly" in x.rule.source and "依据" in text
            assert "条件成立" in wanted.evidence and "档位" not in wanted.evidence  # no tiers: no "first tier"
        if wanted.id == WAIVED:
            assert "已免除" in x.money.adjusted
        if wanted.id == CONFIRMED:
            assert "已确认" in x.money.adjusted


def test_several_months_a_closed_month_and_a_month_without_events(shop, tmp_path, monkeypatch):
    working = _write(shop, "amount", EDITS["amount"])
    md = diff_months(["2024-05", "2024-06"], policy_paths=[working], events_root=shop / "events",
                     base=str(shop / "base" / "house.rules"), roster=roster_mod.read(shop / "roster.csv"),
                     adjustments_root=shop / "adjustments", out_dir=tmp_path / "reports")
    may, june = md.months
    assert may.money_changed and not june.money_changed
    assert "没有事件" in " ".join(june.warnings)
    assert "2024-06 没有事件，无从比较金额" in render_text(md)
    assert "金额没有变化" not in render_text(june)
    # close May, then the same diff warns that a closed month is rewritten
    monkeypatch.chdir(shop)
    assert main(["close", MONTH, "--policy", str(shop / "base" / "house.rules"), "--events", "events",
                 "--out", str(tmp_path / "reports"), "--roster", "roster.csv", "--leave-unconfirmed"]) == 0
    d = diff_month(MONTH, policy_paths=[working], events_root=shop / "events",
                   base=str(shop / "base" / "house.rules"), roster=roster_mod.read(shop / "roster.csv"),
                   adjustments_root=shop / "adjustments", out_dir=tmp_path / "reports")
    assert d.closed and d.lands_in == "2024-06" and "已结账" in " ".join(d.warnings)


def test_cli_json_and_fail_over(shop, monkeypatch, capsys):
    working = _write(shop, "amount", EDITS["amount"])
    monkeypatch.chdir(shop)
    args = ["diff", "--months", "2024-05..2024-05", "--base", str(shop / "base" / "house.rules"),
            "--policy", str(working), "--events", "events", "--format", "json", "--out", "nowhere"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    moved = Decimal(doc["total"]["moved"])
    assert moved > 0 and doc["months"][0]["employees"][0]["employee"] == "E1"
    assert main(args + ["--fail-over", str(moved)]) == 0
    capsys.readouterr()
    assert main(args + ["--fail-over", str(moved - Decimal("0.01"))]) == 8
