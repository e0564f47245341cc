"""The statement adds up: totals are sums of the lines shown, in the model and in the workbook."""

from datetime import datetime, timedelta
from decimal import Decimal

import openpyxl
from hypothesis import given, settings, strategies as st

from ledger.outputs.workbook import sheets
from ledger.core.entries import APPLIED, BONUS, FINE, PENDING, Entry
from ledger.core.money import round_line
from ledger.outputs.statement import RunInfo, build

from conftest import n_examples

INFO = RunInfo(month="2024-05", timezone="Asia/Shanghai", policy_name="p", policy_files=(),
               event_files=(), ignored_files=(), data_end="", duplicates_folded=0, version="t")
RULES = [("r1", "罚一", "p.rules:1", FINE, "10元"), ("r2", "奖一", "p.rules:5", BONUS, "5元")]


def test_round_line_is_half_up_to_the_fen():
    assert round_line(Decimal("0.005")) == Decimal("0.01")
    assert round_line(Decimal("0.004999")) == Decimal("0.00")
    assert round_line(Decimal("2.675")) == Decimal("2.68")  # float would give 2.67
    assert round_line(Decimal("-1.005")) == Decimal("-1.01")
    assert str(round_line(Decimal("10"))) == "10.00"


entries_strategy = st.lists(
    st.tuples(
        st.sampled_from(["店:甲", "店:乙", "店:丙"]),
        st.sampled_from(RULES),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2),
        st.booleans(),  # pending?
        st.integers(min_value=0, max_value=40 * 24 * 3600),
    ),
    max_size=40,
)


def make_entries(rows):
    out = []
    for i, (agent, rule, amount, pending, offset) in enumerate(rows):
        out.append(Entry(
            id=f"E{i:04d}", rule_id=rule[0], rule_title=rule[1], rule_location=rule[2], kind=rule[3],
            agent=agent, ts=datetime(2024, 5, 1) + timedelta(seconds=offset),
            amount=None if pending else amount, status=PENDING if pending else APPLIED,
            event_id=f"ev{i}", event_seq=i))
    return out


@settings(max_examples=n_examples(60), deadline=None)
@given(entries_strategy, st.sets(st.sampled_from(["店:甲", "店:丁"])))
def test_totals_equal_the_sum_of_lines(rows, idle_agents):
    entries = make_entries(rows)
    statement = build(INFO, entries, set(idle_agents), RULES)
    applied = [e for e in entries if e.status == APPLIED]
    for a in statement.agents:
        mine = [e for e in applied if e.agent == a.agent]
        assert a.fines == sum((e.amount for e in mine if e.kind == FINE), Decimal(0))
        assert a.bonuses == sum((e.amount for e in mine if e.kind == BONUS), Decimal(0))
        assert a.net == a.bonuses - a.fines
        assert a.count == len(mine)
        assert a.pending == sum(1 for e in entries if e.agent == a.agent and e.status == PENDING)
    # Every agent with an event in the month has a row, owing or not.
    assert {a.agent for a in statement.agents} == set(idle_agents) | {e.agent for e in entries}
    assert statement.total_fines == sum((e.amount for e in applied if e.kind == FINE), Decimal(0))
    assert sum(r.total for r in statement.rules) == statement.total_fines + statement.total_bonuses


@settings(max_examples=n_examples(15), deadline=None)
@given(entries_strategy)
def test_workbook_summary_equals_sum_of_detail_lines(tmp_path_factory, rows):
    statement = build(INFO, make_entries(rows), set(), RULES)
    path = tmp_path_factory.mktemp("wb") / "s.xlsx"
    sheets.write_statement(statement, path)
    wb = openpyxl.load_workbook(path)
    detail = list(wb["明细"].iter_rows(values_only=True))
    col = {h: i for i, h in enumerate(detail[0])}
    sums: dict[tuple[str, str], Decimal] = {}
    for r in detail[1:]:
        if r[col["金额"]] is not None:
            key = (r[col["客服"]], r[col["类型"]])
            sums[key] = sums.get(key, Decimal(0)) + Decimal(str(r[col["金额"]]))
    summary = list(wb["汇总"].iter_rows(values_only=True))
    for agent, fines, bonuses, net, count, pending in summary[1:]:
        if agent == "合计":
            continue
        assert Decimal(str(fines)) == sums.get((agent, "罚款"), Decimal(0))
        assert Decimal(str(bonuses)) == sums.get((agent, "奖励"), Decimal(0))
