"""Trends read back from the statements in reports/, and the charts' geometry."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ledger.core.entries import APPLIED, FINE, Entry
from ledger.desk import charts, trends
from ledger.outputs.statement import RunInfo, build
from ledger.outputs.workbook.sheets import write_statement

D = Decimal


def test_statements_are_read_back_to_the_fen(tmp_path):
    def statement(month, amounts):
        info = RunInfo(month, "Asia/Shanghai", "p", (), (), (), "", 0, "0")
        entries = [Entry(f"E{i:012X}", "敬语", "t", "p.rules:1", FINE, agent, datetime(2024, 5, 1), D(a), APPLIED,
                         f"m{i}", i) for i, (agent, a) in enumerate(amounts)]
        return build(info, entries, {a for a, _ in amounts}, [("敬语", "t", "p.rules:1", FINE, "10元")])

    for month, amounts in (("2024-04", [("店:<b>甲</b>", "10.10"), ("店:乙", "0.20")]),
                           ("2024-05", [("店:<b>甲</b>", "20.05"), ("店:<b>甲</b>", "0.01")])):
        write_statement(statement(month, amounts), tmp_path / month / f"ledger-{month}.xlsx")
    (tmp_path / "2024-06").mkdir()
    (tmp_path / "2024-06" / "ledger-2024-06.xlsx").write_bytes(b"not a workbook")
    (tmp_path / "notes").mkdir()
    t = trends.read(tmp_path)
    assert t.labels == ("2024-04", "2024-05")
    assert t.agent_series("店:<b>甲</b>") == [D("10.10"), D("20.06")]
    assert t.agent_series("店:乙") == [D("0.20"), None]
    assert t.rule_series("敬语") == [D("10.30"), D("20.06")] and t.rule_series("敬语", "count") == [2, 2]
    assert len(t.problems) == 1 and "ledger-2024-06.xlsx" in t.problems[0]


def test_charts_keep_zero_on_the_axis_and_break_lines_at_gaps():
    assert charts.nice_max(D("380")) == (D("400"), D("100"))
    assert charts.nice_max(D("0")) == (D("4"), D("1"))
    c = charts.line_chart(["3", "4", "5", "6"], {"甲": [D("10"), None, D("380"), D("-40")]})
    ticks = [t for _, t in c.y_ticks]
    assert ticks[0].startswith("-") and "0" in ticks and max(float(t.replace(",", "")) for t in ticks) >= 380
    assert len(c.lines[0].runs) == 1 and len(c.lines[0].points) == 3  # 3 → 5 is a gap; 5 → 6 is a run
    bars = charts.bar_chart(["3"], {"罚款": [D("-50")], "奖励": [D("100")]})
    fine, bonus = bars.bars
    assert fine.y == bars.zero and fine.height > 0  # a negative bar hangs below the axis
    assert bonus.y + bonus.height == bars.zero
