"""Property: whatever the fines, caps and floor, no employee is deducted more than any
declared limit, lines apply in time order, and owed − relieved = deducted line by line."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.evaluate import caps
from ledger.lang.check import check
from ledger.core.entries import APPLIED, BONUS, FINE, Entry, sort_key
from ledger.inputs.roster import parse as parse_roster
from ledger.lang.syntax import parse

from conftest import n_examples

ROSTER = parse_roster("客服,工号,姓名,基本工资,绩效工资,最低工资\n"
                      "a1,E1,甲,2000,500,2200\na2,E1,甲,2000,500,2200\nb1,E2,乙,3000.33,0,1000\n")
ACCOUNTS = ["a1", "a2", "b1", "x9"]  # x9 is not in the roster
CAPS = ["cap fines 300元", "cap fines 20% of 基本工资 + 绩效工资", "floor 最低工资", "cap fines 0.5元"]
T0 = datetime(2024, 5, 1)


def policy(lines):
    pf, d = parse("\n".join(lines) + "\n", "p.rules")
    p, d2 = check([pf])
    assert not d and not d2
    return p


@st.composite
def entries(draw):
    out = []
    for n in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from([FINE, FINE, FINE, BONUS]))
        cents = draw(st.integers(1, 60000))
        out.append(Entry(id=f"E{n}", rule_id="r", rule_title="r", rule_location="p:1", kind=kind,
                         agent=draw(st.sampled_from(ACCOUNTS)),
                         ts=T0 + timedelta(minutes=draw(st.integers(0, 50))),
                         amount=Decimal(cents) / 100, status=APPLIED, event_id=f"e{n}", event_seq=n))
    return out


@settings(max_examples=n_examples(300), deadline=None)
@given(es=entries(), chosen=st.lists(st.sampled_from(CAPS), min_size=1, max_size=4, unique=True))
def test_caps_are_never_exceeded_and_lines_add_up(es, chosen):
    p = policy(chosen)
    by_account = ROSTER.by_account()
    out, limits = caps.apply(p, es, by_account, [])
    assert sorted(e.id for e in out) == sorted(e.id for e in es)  # no line lost
    out = sorted(out, key=sort_key)
    for key, limit in limits.items():
        mine = [e for e in out if e.kind == FINE and caps.employee_key(e.agent, by_account) == key]
        deducted = sum((e.amount for e in mine), Decimal(0))
        owed = sum((caps.owed(e) for e in mine), Decimal(0))
        if limit.limit is not None:
            assert deducted == min(owed, limit.limit)
        for cap in p.caps:
            if cap.fixed is not None:
                assert deducted <= cap.fixed
            elif key in {e.id for e in ROSTER.employees}:
                emp = next(e for e in ROSTER.employees if e.id == key)
                assert deducted <= emp.wage * cap.percent / 100
        # time order: once a line is cut, every later line of that employee is 0
        cut = [i for i, e in enumerate(mine) if e.owed is not None]
        if cut:
            assert all(e.amount == 0 for e in mine[cut[0] + 1:])
            assert all(e.cap_note for e in mine[cut[0]:])
        for e in mine:
            assert Decimal(0) <= e.amount <= caps.owed(e)
    if any(c.startswith("floor") for c in chosen):
        for emp in ROSTER.employees:
            mine = [e for e in out if caps.employee_key(e.agent, by_account) == emp.id]
            fines = sum((e.amount for e in mine if e.kind == FINE), Decimal(0))
            bonus = sum((e.amount for e in mine if e.kind == BONUS), Decimal(0))
            assert emp.wage + bonus - fines >= emp.pay["最低工资"] or fines == 0
