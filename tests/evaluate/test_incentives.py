"""Metrics, tiers, escalation, points, roster, caps and floors, on hand-computed months.

Every expected number below is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from ledger.evaluate import engine
from ledger.outputs import report
from ledger.inputs import roster as roster_mod
from ledger.core.entries import APPLIED

REPO = Path(__file__).resolve().parents[2]
D = Decimal

HEAD = '''
event message(conversation, buyer, agent, sender, kind = "text", text)
event order_paid(order, buyer, agent, amount: money)
event rating(agent, buyer, score: number)
event qa_flag(agent, category, conversation, note)
'''
COLUMNS = ["ts", "type", "agent", "conversation", "buyer", "sender", "kind", "text", "order", "reason",
           "amount", "score", "category"]


def write_events(tmp_path: Path, rows: list[dict]) -> Path:
    """The rows as tmp_path/events/e.csv; returns the events folder."""
    (tmp_path / "events").mkdir(exist_ok=True)
    with open(tmp_path / "events" / "e.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return tmp_path / "events"


def run(tmp_path: Path, policy: str, rows: list[dict], roster: str | None = None, month="2024-05",
        extra_policy: list[Path] = ()):
    write_events(tmp_path, rows)
    (tmp_path / "p.rules").write_text(HEAD + policy, "utf-8")
    r = roster_mod.parse(roster, "roster.csv") if roster is not None else None
    return engine.run_month([tmp_path / "p.rules", *extra_policy], tmp_path / "events", month, roster=r)


def msg(ts, agent, conv, buyer, sender, text="亲，您好", kind=""):
    return {"ts": f"2024-05-{ts}", "type": "message", "agent": agent, "conversation": conv,
            "buyer": buyer, "sender": sender, "kind": kind, "text": text}


def flag(ts, agent, category):
    return {"ts": f"2024-05-{ts}", "type": "qa_flag", "agent": agent, "category": category}


def paid(ts, agent, buyer, amount, order="O"):
    return {"ts": f"2024-05-{ts}", "type": "order_paid", "agent": agent, "buyer": buyer,
            "order": order, "amount": amount}


SHIPPED = [REPO / "policy" / "metrics.rules"]
A, B = "店:小王", "店:小李"


# ---------------------------------------------------------------- the shipped metrics

def shipped(tmp_path, rows, roster=None):
    # the shipped metrics read the house rules' event declarations
    return engine.run_month([REPO / "policy"], write_events(tmp_path, rows), "2024-05",
                            roster=roster_mod.parse(roster, "roster.csv") if roster else None)


def test_response_times_cap_turns_at_600s_and_ignore_auto_replies(tmp_path):
    rows = [
        # c1, turn 1 at 10:00:00; the auto reply at 10:00:05 does not count; human reply at 10:02:00 → 120 s
        msg("02 10:00:00", A, "c1", "b1", "buyer", "在吗"),
        msg("02 10:00:05", A, "c1", "b1", "agent", "您好，稍等", kind="auto_reply"),
        msg("02 10:00:10", A, "c1", "b1", "buyer", "有人吗"),  # same turn (previous was the auto reply? no: it is agent) → new turn
        msg("02 10:02:00", A, "c1", "b1", "agent", "亲，在的呢，请问"),
        # c1, turn 3 at 10:05:00, answered 10:25:00 (1200 s) → capped at 600 s
        msg("02 10:05:00", A, "c1", "b1", "buyer", "发什么快递"),
        msg("02 10:25:00", A, "c1", "b1", "agent", "亲，默认中通哦"),
        # c2, turn at 11:00:00 never answered → 600 s
        msg("02 11:00:00", A, "c2", "b2", "buyer", "在吗"),
    ]
    r = shipped(tmp_path, rows)
    m = r.metrics
    # turns: 10:00:00 (prev none), 10:00:10 (prev auto reply by agent), 10:05:00, 11:00:00 → 4
    assert m["提问轮次"][A] == 4
    # waits: 10:00:00 → 10:02:00 = 120; 10:00:10 → 10:02:00 = 110; 10:05 → 600 (capped); 11:00 → 600 (none)
    assert m["平均响应时长"][A] == (D(120) + D(110) + D(600) + D(600)) / 4
    # first turn of each conversation: c1 120 s, c2 600 s
    assert m["首次响应时长"][A] == D(360)
    # answered within 3 min: the two first turns → 2 of 4; answered at all: 3 of 4
    assert m["三分钟回复率"][A] == D("0.5")
    assert m["回复率"][A] == D("0.75")


def test_exactly_three_minutes_is_in_time(tmp_path):
    rows = [msg("02 10:00:00", A, "c1", "b1", "buyer", "在吗"),
            msg("02 10:03:00", A, "c1", "b1", "agent", "亲，在的呢")]
    assert shipped(tmp_path, rows).metrics["三分钟回复率"][A] == 1


def test_reception_counts_buyers_per_day_where_both_wrote(tmp_path):
    rows = [
        # day 2: b1 and agent wrote → 1; b2 wrote but only an auto reply came → 0
        msg("02 10:00:00", A, "c1", "b1", "buyer", "在吗"),
        msg("02 10:01:00", A, "c1", "b1", "agent", "亲，在的"),
        msg("02 10:02:00", A, "c1", "b1", "buyer", "好的"),
        msg("02 12:00:00", A, "c2", "b2", "buyer", "在吗"),
        msg("02 12:00:01", A, "c2", "b2", "agent", "您好", kind="auto_reply"),
        # day 3: b1 again, both wrote → 1 more (summed over days)
        msg("03 09:00:00", A, "c3", "b1", "buyer", "发货了吗"),
        msg("03 09:01:00", A, "c3", "b1", "agent", "亲，已经发了"),
        # b3 wrote at 23:59 on day 4, the agent answered after midnight → neither day counts
        msg("04 23:59:00", A, "c4", "b3", "buyer", "在吗"),
        msg("05 00:01:00", A, "c4", "b3", "agent", "亲，在的"),
    ]
    m = shipped(tmp_path, rows).metrics
    assert m["接待人数"][A] == 2
    assert m["询单人数"][A] == 3  # b1, b2, b3


def test_zero_denominators_are_blank_not_zero(tmp_path):
    # 小李 only pays (no inquiries, no ratings, no turns); 小王 only chats
    rows = [paid("02 10:00:00", B, "b9", "100.00"),
            msg("02 10:00:00", A, "c1", "b1", "buyer", "在吗")]
    m = shipped(tmp_path, rows).metrics
    assert m["询单转化率"][B] is None  # 1 ÷ 0
    assert m["好评率"][B] is None and m["好评率"][A] is None  # 0 ratings
    assert m["回复率"][B] is None
    assert m["首次响应时长"][B] is None  # an average of nothing
    assert m["询单转化率"][A] == 0  # 0 ÷ 1 is a real 0
    assert m["客单价"][B] == D("100.00") and m["客单价"][A] is None
    assert m["销售额"][A] == 0


def test_metrics_appear_on_the_statement_with_blank_cells(tmp_path):
    rows = [paid("02 10:00:00", B, "b9", "100.00"), msg("02 10:00:00", A, "c1", "b1", "buyer", "在吗")]
    result = shipped(tmp_path, rows)
    st = report.statement_of(result)
    paths = report.write_outputs(result, st, tmp_path / "out")
    wb = openpyxl.load_workbook(paths["statement"])
    sheet = list(wb["指标"].iter_rows(values_only=True))
    header = sheet[0]
    row_b = dict(zip(header, next(r for r in sheet if r[0] == B)))
    assert row_b["询单转化率"] is None
    assert row_b["客单价"] == 100
    summary = list(wb["汇总"].iter_rows(values_only=True))
    assert "询单转化率" in summary[0]
    # a ratio is a percentage cell holding the fraction; a count is a whole number
    ws = wb["指标"]
    col = {c.value: c.column for c in ws[1]}
    row_a = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == A)
    rate = ws.cell(row_a, col["询单转化率"])
    assert rate.value == 0 and rate.data_type == "n" and rate.number_format == "0.00%"
    asked = ws.cell(row_a, col["询单人数"])
    assert asked.value == 1 and isinstance(asked.value, int)


# ---------------------------------------------------------------- tiers and per-event bonuses

TIERS = '''
metric 询单人数:
    distinct buyer
    on message[sender = "buyer"]
metric 付款人数:
    distinct buyer
    on order_paid
metric 询单转化率 = 付款人数 / 询单人数
rule 转化奖 "转化率":
    monthly
    first matching
        when 询单转化率 >= 40% bonus 300元
        when 询单转化率 >= 30% bonus 150元
'''


def conversion(asked: int, paid_: int):
    rows = [msg(f"02 10:{i:02d}:00", A, f"c{i}", f"b{i}", "buyer", "在吗") for i in range(asked)]
    rows += [paid(f"03 10:{i:02d}:00", A, f"b{i}", "10.00", order=f"O{i}") for i in range(paid_)]
    return rows


@pytest.mark.parametrize("asked, paid_, expected", [
    (10, 4, D("300.00")),  # exactly 40% → top tier
    (20, 7, D("150.00")),  # 35% → second tier
    (10, 3, D("150.00")),  # exactly 30%
    (40, 11, None),        # 27.5% → no tier
    (0, 1, None),          # no inquiries: blank rate, no bonus, no error
])
def test_first_matching_tier_wins_at_the_boundaries(tmp_path, asked, paid_, expected):
    r = run(tmp_path, TIERS, conversion(asked, paid_))
    got = [e for e in r.entries if e.rule_id == "转化奖"]
    if expected is None:
        assert got == []
    else:
        (e,) = got
        assert (e.amount, e.kind, e.agent, e.status) == (expected, "bonus", A, APPLIED)


def test_zero_violation_bonus_needs_no_fines_and_a_minimum_workload(tmp_path):
    policy = '''
metric 询单人数:
    distinct buyer
    on message[sender = "buyer"]
metric 违规次数 = count fines
rule 未挂离开:
    on qa_flag[category = "未挂离开"]
    fine 20元
rule 零违规奖:
    monthly
    when 违规次数 = 0 and 询单人数 >= 3
    bonus 200元
'''
    rows = [msg(f"02 10:0{i}:00", a, f"c{a}{i}", f"b{i}", "buyer", "在吗") for a in (A, B) for i in range(3)]
    rows.append(msg("02 11:00:00", "店:小张", "cz", "bz", "buyer", "在吗"))  # too little work
    rows.append(flag("05 10:00:00", B, "未挂离开"))
    r = run(tmp_path, policy, rows)
    paid_to = {e.agent for e in r.entries if e.rule_id == "零违规奖"}
    assert paid_to == {A}


def test_percentage_bonus_rounds_each_line_half_up(tmp_path):
    policy = '''
rule 提成:
    on order_paid
    bonus 1% of amount
rule 好评:
    on rating[score = 5]
    bonus 2元
'''
    rows = [paid("02 10:00:00", A, "b1", "100.50", "O1"),   # 1.005 → 1.01
            paid("02 11:00:00", A, "b2", "100.49", "O2"),   # 1.0049 → 1.00
            {"ts": "2024-05-03 10:00:00", "type": "rating", "agent": A, "buyer": "b1", "score": "5"},
            {"ts": "2024-05-03 11:00:00", "type": "rating", "agent": A, "buyer": "b2", "score": "4"}]
    r = run(tmp_path, policy, rows)
    assert sorted((e.rule_id, e.amount) for e in r.entries) == [
        ("好评", D("2.00")), ("提成", D("1.00")), ("提成", D("1.01"))]


# ---------------------------------------------------------------- escalation and points

def test_escalation_counts_occurrences_per_agent_per_rule_in_time_order(tmp_path):
    policy = '''
rule 未挂离开:
    on qa_flag[category = "未挂离开"]
    fine 6元 then 12元
rule 线下交易:
    on qa_flag[category = "线下交易"]
    fine 50元 points 6分 then 12分
rule 发票:
    on qa_flag[category = "发票"]
    points 6分
'''
    rows = [flag("03 10:00:00", A, "未挂离开"), flag("01 10:00:00", A, "未挂离开"),
            flag("02 10:00:00", B, "未挂离开"), flag("04 10:00:00", A, "未挂离开"),
            flag("05 10:00:00", A, "线下交易"), flag("06 10:00:00", A, "线下交易"),
            flag("07 10:00:00", B, "发票")]
    r = run(tmp_path, policy, rows)
    leave = [(e.agent, e.ts.day, e.amount) for e in r.entries if e.rule_id == "未挂离开"]
    # 小王: 1st (day 1) 6元, 2nd (day 3) 12元, 3rd (day 4) 12元; 小李 counts separately
    assert leave == [(A, 1, D("6.00")), (B, 2, D("6.00")), (A, 3, D("12.00")), (A, 4, D("12.00"))]
    offline = [(e.amount, e.points) for e in r.entries if e.rule_id == "线下交易"]
    assert offline == [(D("50.00"), 6), (D("50.00"), 12)]
    (invoice,) = [e for e in r.entries if e.rule_id == "发票"]
    assert (invoice.amount, invoice.points) == (D("0.00"), 6)
    st = report.statement_of(r)
    points = {a.agent: a.points for a in st.payroll.accounts}
    assert points == {A: 18, B: 6}
    # points are never money: 小李's fines are 6元 only
    assert {a.agent: a.fines for a in st.agents}[B] == D("6.00")


# ---------------------------------------------------------------- roster, caps, floors

ROSTER = """客服,工号,姓名,部门,基本工资,绩效工资,最低工资,入职,离职
店:小王,E1,王一,售前,2000,500,2200,2023-01-01,
店:小王2,E1,王一,售前,2000,500,2200,2023-01-01,
店:小李,E2,李二,售后,3000,1000,2000,2023-01-01,
"""


def fines_policy(caps: str) -> str:
    return '''
rule 未挂离开:
    on qa_flag[category = "未挂离开"]
    fine 100元
rule 好评:
    on rating[score = 5]
    bonus 30元
''' + caps


def test_share_cap_sums_an_employees_accounts_and_cuts_in_time_order(tmp_path):
    # E1 owns 小王 and 小王2. Wage 2500 → 20% = 500元. Fines of 100元 on days 1..7 alternating accounts.
    rows = [flag(f"0{d} 10:00:00", A if d % 2 else "店:小王2", "未挂离开") for d in range(1, 8)]
    r = run(tmp_path, fines_policy("cap fines 20% of 基本工资 + 绩效工资\n"), rows, ROSTER)
    lines = [(e.ts.day, e.agent, e.amount, e.owed) for e in r.entries]
    assert [x[2] for x in lines] == [D("100.00")] * 5 + [D("0.00")] * 2
    assert [x[3] for x in lines] == [None] * 5 + [D("100.00")] * 2
    assert all("cap reached" in e.cap_note for e in r.entries[5:])
    st = report.statement_of(r)
    (e1,) = [e for e in st.payroll.employees if e.employee_id == "E1"]
    assert e1.deducted == D("500.00")
    # 明细 shows each line's 金额 (deducted), 应扣 and 减免
    paths = report.write_outputs(r, st, tmp_path / "out")
    detail = list(openpyxl.load_workbook(paths["statement"])["明细"].iter_rows(values_only=True))
    col = {h: i for i, h in enumerate(detail[0])}
    shown = [(x[col["金额"]], x[col["应扣"]], x[col["减免"]]) for x in detail[1:]]
    assert shown == [(100, 100, 0)] * 5 + [(0, 100, 100)] * 2
    assert all("cap reached" in x[col["依据"]] for x in detail[6:])
    by = {a.agent: a for a in st.payroll.accounts}
    assert by[A].owed + by["店:小王2"].owed == D("700.00")
    assert by[A].relieved + by["店:小王2"].relieved == D("200.00")
    # the statement adds up line by line
    assert sum((a.fines for a in st.agents), D(0)) == sum((e.amount for e in st.entries), D(0))


def test_fixed_cap_the_crossing_line_applies_the_part_that_fits(tmp_path):
    rows = [flag(f"0{d} 10:00:00", B, "未挂离开") for d in range(1, 4)]  # 300元 owed
    r = run(tmp_path, fines_policy("cap fines 250元\n"), rows, ROSTER)
    assert [e.amount for e in r.entries] == [D("100.00"), D("100.00"), D("50.00")]
    assert r.entries[2].owed == D("100.00")


def test_floor_keeps_pay_at_the_minimum_wage_counting_bonuses(tmp_path):
    # E1: wage 2500, bonus 30 → may deduct at most 2500 + 30 − 2200 = 330元
    rows = [flag(f"0{d} 10:00:00", A, "未挂离开") for d in range(1, 6)]
    rows.append({"ts": "2024-05-09 10:00:00", "type": "rating", "agent": A, "buyer": "b", "score": "5"})
    r = run(tmp_path, fines_policy("floor 最低工资\ncap fines 1000元\n"), rows, ROSTER)
    fines = [e.amount for e in r.entries if e.kind == "fine"]
    assert fines == [D("100.00")] * 3 + [D("30.00"), D("0.00")]
    st = report.statement_of(r)
    (e1,) = [e for e in st.payroll.employees if e.employee_id == "E1"]
    assert (e1.deducted, e1.bonuses, e1.net) == (D("330.00"), D("30.00"), D("-300.00"))


def test_share_cap_rounds_down_so_it_is_never_exceeded(tmp_path):
    roster = "客服,工号,姓名,基本工资\n店:小王,E1,王一,1000.07\n"  # 20% = 200.014 → 200.01
    rows = [flag("01 10:00:00", A, "未挂离开"), flag("02 10:00:00", A, "未挂离开"), flag("03 10:00:00", A, "未挂离开")]
    r = run(tmp_path, fines_policy("cap fines 20% of 基本工资\n"), rows, roster)
    assert sum((e.amount for e in r.entries), D(0)) == D("200.01")


def test_accounts_not_in_the_roster_are_reported_and_marked(tmp_path):
    rows = [flag("01 10:00:00", "店:陌生", "未挂离开"), flag("01 11:00:00", A, "未挂离开")]
    r = run(tmp_path, fines_policy("cap fines 20% of 基本工资 + 绩效工资\n"), rows, ROSTER)
    assert any("店:陌生" in w and "not in roster" in w for w in r.warnings)
    st = report.statement_of(r)
    paths = report.write_outputs(r, st, tmp_path / "out")
    wb = openpyxl.load_workbook(paths["statement"])
    summary = list(wb["汇总"].iter_rows(values_only=True))
    row = dict(zip(summary[0], next(x for x in summary if x[0] == "店:陌生")))
    assert row["工号"] == "（不在花名册）"
    # the stranger's fine is not capped by a share it has no wage for, and not on HR导入
    assert [e.amount for e in r.entries if e.agent == "店:陌生"] == [D("100.00")]
    hr = list(wb["HR导入"].iter_rows(values_only=True))
    assert [x[0] for x in hr[1:]] == ["E1", "E2"]


def test_malformed_roster_lines_are_rejected_with_line_and_reason():
    text = ("客服,工号,姓名,部门,基本工资,绩效工资,最低工资,入职,离职\n"
            "店:小王,E1,王一,售前,3000,0,2000,2023-01-01,\n"
            "店:小李,,李二,售后,3000,0,2000,,\n"           # no 工号
            "店:小张,E3,张三,售后,三千,0,2000,,\n"          # not an amount
            "店:小赵,E4,赵四,售后,3000,0,2000,2023-13-01,\n"  # bad date
            "店:小王,E5,王五,售后,3000,0,2000,,\n"          # account twice
            "店:小王2,E1,王一,售后,3000,0,2000,2023-01-01,\n"  # conflicts with E1's first line
            "too,few\n")
    r = roster_mod.parse(text, "roster.csv")
    assert [e.id for e in r.employees] == ["E1"]
    assert [x.line for x in r.rejects] == [3, 4, 5, 6, 7, 8]
    assert all(x.file == "roster.csv" and x.reason for x in r.rejects)


# ---------------------------------------------------------------- HR导入

def test_hr_sheet_has_fixed_columns_numbers_and_totals_equal_the_summary(tmp_path):
    rows = [flag(f"0{d} 10:00:00", A if d % 2 else "店:小王2", "未挂离开") for d in range(1, 8)]
    rows += [flag("02 12:00:00", B, "未挂离开"),
             {"ts": "2024-05-09 10:00:00", "type": "rating", "agent": B, "buyer": "b", "score": "5"}]
    r = run(tmp_path, fines_policy("cap fines 20% of 基本工资 + 绩效工资\n"), rows, ROSTER)
    st = report.statement_of(r)
    paths = report.write_outputs(r, st, tmp_path / "out")
    wb = openpyxl.load_workbook(paths["statement"])
    ws = wb["HR导入"]
    hr = list(ws.iter_rows(values_only=True))
    assert hr[0] == ("工号", "姓名", "月份", "扣款", "奖金", "净额")
    assert hr[1:] == [("E1", "王一", "2024-05", 500, 0, -500), ("E2", "李二", "2024-05", 100, 30, -70)]
    for row in ws.iter_rows(min_row=2):
        assert all(c.data_type == "n" for c in row[3:])
    summary = list(wb["汇总"].iter_rows(values_only=True))
    header, total_row = summary[0], summary[-1]
    assert total_row[0] == "合计"
    assert sum(x[3] for x in hr[1:]) == total_row[header.index("实扣")] == total_row[header.index("罚款")]
    assert sum(x[4] for x in hr[1:]) == total_row[header.index("奖励")]


# ---------------------------------------------------------------- 图表 and determinism

def test_charts_sheet_has_native_bar_charts_and_the_workbook_is_reproducible(tmp_path):
    rows = [flag("01 10:00:00", A, "未挂离开"), flag("02 10:00:00", B, "未挂离开"),
            {"ts": "2024-05-09 10:00:00", "type": "rating", "agent": B, "buyer": "b", "score": "5"}]
    r = run(tmp_path, fines_policy(""), rows, ROSTER)
    st = report.statement_of(r)
    first = report.write_outputs(r, st, tmp_path / "one")["statement"].read_bytes()
    second = report.write_outputs(r, st, tmp_path / "two")["statement"].read_bytes()
    assert first == second
    wb = openpyxl.load_workbook(tmp_path / "one" / "2024-05" / "ledger-2024-05.xlsx")
    ws = wb["图表"]
    assert [type(c).__name__ for c in ws._charts] == ["BarChart", "BarChart"]
    per_agent, per_rule = ws._charts
    assert [s.val.numRef.f for s in per_agent.series] == ["'图表'!$B$2:$B$3", "'图表'!$C$2:$C$3"]
    assert [s.val.numRef.f for s in per_rule.series] == ["'图表'!$F$2:$F$2"]
    data = list(ws.iter_rows(values_only=True))
    assert data[1][:3] == (B, 100, 30) and data[2][:3] == (A, 100, 0)
    assert data[1][4:] == ("未挂离开", 200)
    # no cell anywhere is a formula
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            assert all(c.data_type != "f" for c in row)


def test_the_worked_incentive_policy_checks_formats_and_passes_its_examples():
    from ledger.review.examples import test_command
    from ledger.lang.fmt import format_text

    path = REPO / "examples" / "incentives.rules"
    text = path.read_text("utf-8")
    assert format_text(text, str(path)) == text
    output, code = test_command([path])
    assert code == 0, output


def test_metric_windows_counting_several_events_and_ranges(tmp_path):
    policy = '''
metric 推荐后缺货 "说没货前至少推荐了2个商品":
    count
    on message[sender = "agent" and text contains "没货"]
    with at least 2 message[kind = "product_card"] same conversation before
metric 十到二十分钟追问:
    count
    on message[sender = "agent" and kind = "text"]
    with message[sender = "agent"] same conversation within 10m..20m
'''
    rows = [msg("02 10:00:00", A, "c1", "b1", "agent", "款A", kind="product_card"),
            msg("02 10:00:10", A, "c1", "b1", "agent", "款B", kind="product_card"),
            msg("02 10:00:20", A, "c1", "b1", "agent", "抱歉没货了"),       # 2 cards before → counts
            msg("02 11:00:00", A, "c2", "b2", "agent", "款A", kind="product_card"),
            msg("02 11:00:20", A, "c2", "b2", "agent", "没货哦"),            # 1 card → no
            msg("02 11:10:20", A, "c2", "b2", "agent", "亲还在吗"),          # 11:00:20 + 10m → in range
            ]
    m = run(tmp_path, policy, rows).metrics
    assert m["推荐后缺货"][A] == 1
    # 10:00:20 → nothing 10..20 min later; 11:00:20 → 11:10:20 is exactly 10 min later (counts);
    # 11:10:20 → nothing after it
    assert m["十到二十分钟追问"][A] == 1


def test_zero_violation_bonus_is_pending_while_a_fine_is_pending(tmp_path):
    policy = '''
event refund_requested(order, buyer, agent, reason, amount: money)
event refund_handled(order, agent)
metric 违规次数 = count fines
rule 退款超时:
    on refund_requested
    unless refund_handled same order within 30m
    fine 30元
rule 零违规奖:
    monthly
    when 违规次数 = 0
    bonus 200元
'''
    # 小王's refund at 05-31 23:50 has no handling yet and the data ends at 23:55: pending.
    rows = [{"ts": "2024-05-31 23:50:00", "type": "refund_requested", "agent": A, "order": "O1"},
            {"ts": "2024-05-31 23:55:00", "type": "qa_flag", "agent": B, "category": "其他"}]
    r = run(tmp_path, policy, rows)
    bonus = {e.agent: (e.status, e.amount) for e in r.entries if e.rule_id == "零违规奖"}
    assert bonus == {A: ("pending", None), B: ("applied", D("200.00"))}


def test_monthly_rule_versions_apply_by_the_months_last_day(tmp_path):
    policy = '''
metric 违规次数 = count fines
rule 零违规奖 "旧办法":
    effective 2024-01-01 until 2024-05-20
    monthly
    when 违规次数 = 0
    bonus 100元
rule 零违规奖 "新办法（5月21日起，5月按新办法发）":
    effective 2024-05-21
    monthly
    when 违规次数 = 0
    bonus 150元
'''
    rows = [flag("02 10:00:00", A, "其他"), {**flag("02 10:00:00", A, "其他"), "ts": "2024-04-02 10:00:00"}]
    may = run(tmp_path, policy, rows)
    assert [(e.rule_title, e.amount) for e in may.entries if e.rule_id == "零违规奖"] == [("新办法（5月21日起，5月按新办法发）", D("150.00"))]
    april = run(tmp_path, policy, rows, month="2024-04")
    assert [e.amount for e in april.entries if e.rule_id == "零违规奖"] == [D("100.00")]


def test_events_outside_the_employment_dates_are_warned_about(tmp_path):
    roster = "客服,工号,姓名,入职,离职\n店:小王,E1,王一,2024-06-01,\n店:小李,E2,李二,2023-01-01,2024-05-10\n"
    rows = [flag("02 10:00:00", A, "其他"), flag("20 10:00:00", B, "其他")]
    r = run(tmp_path, fines_policy(""), rows, roster)
    (w,) = [w for w in r.warnings if "employment dates" in w]
    assert A in w and B not in w  # 小李 left on 05-10 but was employed in May


def test_a_long_list_of_accounts_in_a_warning_shows_a_count_and_the_first_few():
    from ledger.evaluate.caps import first_few

    names = [f"店:客服{i:03d}" for i in range(120)]
    text = first_few(names)
    assert text.startswith("店:客服000, 店:客服001") and "等 120 个" in text and "店:客服005" not in text
    assert first_few(names[:3]) == "店:客服000, 店:客服001, 店:客服002"


# ---------------------------------------------------------------- issue 13: identifiers, roster lines

def test_accounts_differing_only_by_invisible_characters_are_one_account(tmp_path):
    """A trailing space, a U+200B or a full-width colon in the events never drop money from
    HR导入: 汇总 and HR导入 carry the same money."""
    rows = [flag("01 10:00:00", "店:小王 ", "未挂离开"), flag("02 10:00:00", "店\uff1a小王", "未挂离开"),
            flag("03 10:00:00", "店:小王\u200b", "未挂离开"), flag("04 10:00:00", A, "未挂离开")]
    r = run(tmp_path, fines_policy(""), rows, "客服,工号,姓名,基本工资\n店：小王\u200b ,E1,王一,3000\n")
    assert {e.agent for e in r.entries} == {A}
    assert not [w for w in r.warnings if "not in roster" in w]
    st = report.statement_of(r)
    assert st.payroll.missing_from_hr == ()
    assert sum(x.deducted for x in st.payroll.employees) == st.total_fines == D("400.00")


def test_a_stray_quote_in_the_roster_rejects_its_line_only():
    text = ("客服,工号,姓名,基本工资\n店:小王,E1,\"王一,3000\n店:小李,E2,李二,3000\n店:小张,E3,张三,3000\n"
            "店:小赵,E4,赵\x00四,3000\n店:小钱,E5," + "长" * 140_000 + ",3000\n")
    r = roster_mod.parse(text, "roster.csv")
    assert [e.id for e in r.employees] == ["E2", "E3"]
    assert [x.line for x in r.rejects] == [2, 5, 6]
    assert "NUL" in r.rejects[1].reason and "field larger" in r.rejects[2].reason


def test_money_missing_from_hr_is_said_loudly_and_strict_fails(tmp_path):
    rows = [flag("01 10:00:00", "店:陌生", "未挂离开"), flag("01 11:00:00", A, "未挂离开")]
    r = run(tmp_path, fines_policy(""), rows, ROSTER)
    st = report.statement_of(r)
    assert st.payroll.missing_from_hr == (("店:陌生", D("100.00"), D("0.00"), "不在花名册 (not in roster)"),)
    lines = report.summary_lines(r, st, None)
    assert any("HR导入 缺少" in line and "店:陌生" in line and "100.00" in line for line in lines)


def test_floor_without_bonuses_leaves_the_bonus_out_to_the_fen(tmp_path):
    # E1: wage 2500, bonus 30 → without bonuses may deduct at most 2500 − 2200 = 300元
    # (with bonuses: 330元, the test above). Fines 100元 × 5 on 小王.
    rows = [flag(f"0{d} 10:00:00", A, "未挂离开") for d in range(1, 6)]
    rows.append({"ts": "2024-05-09 10:00:00", "type": "rating", "agent": A, "buyer": "b", "score": "5"})
    r = run(tmp_path, fines_policy("floor 最低工资 without bonuses\ncap fines 1000元\n"), rows, ROSTER)
    fines = [e.amount for e in r.entries if e.kind == "fine"]
    assert fines == [D("100.00")] * 3 + [D("0.00")] * 2
    assert sum(fines, D(0)) == D("300.00")
    assert "floor 最低工资 without bonuses：" in r.entries[3].cap_note and "最多扣 300" in r.entries[3].cap_note
    st = report.statement_of(r)
    assert st.info.floors == ("最低工资（奖金不计入工资）",)
    paths = report.write_outputs(r, st, tmp_path / "out")
    info = dict(openpyxl.load_workbook(paths["statement"])["说明"].iter_rows(values_only=True))
    assert info["最低工资保障"] == "最低工资（奖金不计入工资）"


def test_floor_with_bonuses_said_explicitly_is_todays_reading(tmp_path):
    rows = [flag(f"0{d} 10:00:00", A, "未挂离开") for d in range(1, 6)]
    rows.append({"ts": "2024-05-09 10:00:00", "type": "rating", "agent": A, "buyer": "b", "score": "5"})
    r = run(tmp_path, fines_policy("floor 最低工资 with bonuses\ncap fines 1000元\n"), rows, ROSTER)
    fines = [e.amount for e in r.entries if e.kind == "fine"]
    assert fines == [D("100.00")] * 3 + [D("30.00"), D("0.00")]
    st = report.statement_of(r)
    assert st.info.floors == ("最低工资（奖金计入工资）",)
