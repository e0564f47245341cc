"""Property: whatever the fines, caps and floor, no employee is deducted more than any
declared limit, lines apply in time order, and owed − relieved = deducted line by line."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.evaluate import caps
from ledger.lang.check import check
from ledger.core.entries import APPLIED, BONUS, FINE, PENDING, TO_CONFIRM, Entry, sort_key
from ledger.inputs.roster import parse as parse_roster
from ledger.lang.syntax import parse

import oracle
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


# ---------------------------------------------------------------- against the naive oracle

FLOORS = ["floor 最低工资", "floor 最低工资 with bonuses", "floor 最低工资 without bonuses"]
SHARES = ["cap fines 20% of 基本工资 + 绩效工资", "cap fines 7.5% of 基本工资", "cap fines 300元", "cap fines 0.5元"]
STATUSES = [APPLIED, APPLIED, APPLIED, PENDING, TO_CONFIRM]


@st.composite
def roster_and_lines(draw):
    money = st.integers(0, 600000).map(lambda c: Decimal(c) / 100)
    people = {"E1": ("a1", "a2"), "E2": ("b1",)}
    rows = {}
    text = "客服,工号,姓名,基本工资,绩效工资,最低工资\n"
    for emp, accounts in people.items():
        base, perf, minimum = draw(money), draw(money), draw(money)
        for account in accounts:
            rows[account] = {"工号": emp, "基本工资": base, "绩效工资": perf, "最低工资": minimum}
            text += f"{account},{emp},某,{base},{perf},{minimum}\n"
    lines = []
    for n in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from([FINE, FINE, BONUS]))
        status = draw(st.sampled_from(STATUSES))
        amount = None if status == PENDING else Decimal(draw(st.integers(1, 150000))) / 100
        lines.append({"id": f"E{n}", "kind": kind, "status": status, "account": draw(st.sampled_from(ACCOUNTS)),
                      "ts": T0 + timedelta(minutes=draw(st.integers(0, 30))), "seq": n, "amount": amount})
    return parse_roster(text), rows, lines


@settings(max_examples=n_examples(300), deadline=None)
@given(data=roster_and_lines(), floor=st.sampled_from(FLOORS + [None]),
       shares=st.lists(st.sampled_from(SHARES), max_size=2, unique=True))
def test_caps_and_floors_agree_with_the_naive_oracle(data, floor, shares):
    roster, rows, lines = data
    declarations = shares + ([floor] if floor else [])
    if not declarations:
        return
    p = policy(declarations)
    es = [Entry(id=x["id"], rule_id="r", rule_title="r", rule_location="p:1", kind=x["kind"], agent=x["account"],
                ts=x["ts"], amount=x["amount"], status=x["status"], event_id=f"e{x['seq']}", event_seq=x["seq"])
          for x in lines]
    out, _ = caps.apply(p, es, roster.by_account(), [])
    got = {e.id: e.amount for e in out if e.kind == FINE and e.status == APPLIED}
    assert got == oracle.caps_oracle(declarations, rows, lines)
    # every other line passes untouched
    assert {e.id: e.amount for e in out if not (e.kind == FINE and e.status == APPLIED)} == \
        {x["id"]: x["amount"] for x in lines if not (x["kind"] == FINE and x["status"] == APPLIED)}
    if floor:  # the floor holds (or nothing could be deducted at all)
        for emp in ("E1", "E2"):
            mine = [e for e in out if e.status == APPLIED and caps.employee_key(e.agent, roster.by_account()) == emp]
            fines = sum((e.amount for e in mine if e.kind == FINE), Decimal(0))
            bonus = sum((e.amount for e in mine if e.kind == BONUS), Decimal(0))
            row = next(r for r in rows.values() if r["工号"] == emp)
            pay = row["基本工资"] + row["绩效工资"] + (0 if floor.endswith("without bonuses") else bonus)
            assert pay - fines >= row["最低工资"] or fines == 0


def test_the_floor_with_and_without_bonuses_by_hand():
    # wage 2500, minimum 2200, bonus 30, fines 200 + 200: with bonuses 330 may go, without 300
    roster = parse_roster("客服,工号,姓名,基本工资,绩效工资,最低工资\nk1,K1,丙,2000,500,2200\n")
    rows = {"k1": {"工号": "K1", "基本工资": Decimal(2000), "绩效工资": Decimal(500), "最低工资": Decimal(2200)}}
    lines = [{"id": "B", "kind": BONUS, "status": APPLIED, "account": "k1", "ts": T0, "seq": 0, "amount": Decimal(30)},
             {"id": "F1", "kind": FINE, "status": APPLIED, "account": "k1", "ts": T0, "seq": 1, "amount": Decimal(200)},
             {"id": "F2", "kind": FINE, "status": APPLIED, "account": "k1", "ts": T0, "seq": 2, "amount": Decimal(200)}]
    for floor, second in (("floor 最低工资", Decimal(130)), ("floor 最低工资 with bonuses", Decimal(130)),
                          ("floor 最低工资 without bonuses", Decimal(100))):
        assert oracle.caps_oracle([floor], rows, lines) == {"F1": Decimal(200), "F2": second}
        es = [Entry(id=x["id"], rule_id="r", rule_title="r", rule_location="p:1", kind=x["kind"], agent="k1",
                    ts=T0, amount=x["amount"], status=APPLIED, event_id=f"e{x['seq']}", event_seq=x["seq"])
              for x in lines]
        out, _ = caps.apply(policy([floor]), es, roster.by_account(), [])
        assert {e.id: e.amount for e in out if e.kind == FINE} == {"F1": Decimal(200), "F2": second}
