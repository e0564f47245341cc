"""Parser: positions, recovery, friendly errors, and no foreign exceptions."""

from hypothesis import given, settings, strategies as st

from ledger.lang import ast
from datetime import datetime

import duckdb
import pytest

from ledger.lang.check import check
from ledger.evaluate.compile import compile_rule, event_view_sql
from ledger.lang.syntax import KEYWORDS, parse

from conftest import n_examples

POLICY = """\
policy "测试"
event message(conversation, sender, kind = "text", text)
words 敬语 = 您 亲
    请 "不好 意思"

rule 敬语 "开头结尾用敬语":
    on message[sender = "agent"] per conversation
    when (first or last) and not text has any 敬语
    fine 10元
"""


def test_parses_declarations_with_positions():
    pf, diagnostics = parse(POLICY, "p.rules")
    assert diagnostics == []
    (event,) = pf.events
    assert [f.name.value for f in event.fields] == ["conversation", "sender", "kind", "text"]
    assert event.fields[2].default.value == "text"
    (words,) = pf.words
    assert words.words == ("您", "亲", "请", "不好 意思")  # continuation line, quoted word
    (rule,) = pf.rules
    assert rule.id.value == "敬语" and rule.title == "开头结尾用敬语"
    assert (rule.pos.line, rule.pos.column) == (6, 1)
    assert rule.on.per[0].pos.line == 7
    assert rule.amount.value == 10 and rule.amount.text == "10元"
    assert isinstance(rule.when, ast.BoolOp) and rule.when.op == "and"
    assert rule.source.startswith("rule 敬语") and rule.source.rstrip().endswith("fine 10元")


def test_windows_and_amount_forms():
    text = POLICY.replace("fine 10元", """unless at least 2 message[kind = "product_card"] same conversation before
    unless message same conversation within 10m..20分钟
    unless message within 2h before
    bonus ¥12.50 to agent""")
    pf, diagnostics = parse(text, "p.rules")
    assert diagnostics == []
    w = pf.rules[0].unless
    assert [x.kind for x in w] == ["before", "range", "within_before"]
    assert w[0].count == 2 and w[1].d1.total_seconds() == 600 and w[1].d2.total_seconds() == 1200
    assert w[2].d2.total_seconds() == 7200
    assert pf.rules[0].amount.kind == "bonus" and str(pf.rules[0].amount.value) == "12.50"


def test_every_broken_declaration_is_reported_and_the_rest_still_parses():
    text = POLICY + """
rule 坏1 "x":
    on message
    wen sender = "agent"
    fine 10元

rule 坏2 "y":
    on message
    when sender = “agent”
    fine 10元

rule 好 "z":
    on message
    fine 5元
"""
    pf, diagnostics = parse(text, "p.rules")
    assert [d.position.line for d in diagnostics] == [13, 18]
    assert "when" in diagnostics[0].hint  # did you mean 'when'?
    assert "英文引号" in diagnostics[1].hint
    assert [r.id.value for r in pf.rules] == ["敬语", "好"]


def test_error_renders_file_line_col_source_and_caret():
    pf, diagnostics = parse('rule r "t":\n    on message\n    fine 10\n', "house.rules")
    (d,) = diagnostics
    text = d.render()
    first, source, caret = text.splitlines()[:3]
    assert first.startswith("house.rules:")
    assert source.strip() == "fine 10" or source.strip() == ""
    assert "^" in caret


def test_minutes_must_not_be_written_as_fen():
    pf, diagnostics = parse(POLICY.replace("fine 10元", "unless message same conversation within 5分\n    fine 10元"), "p.rules")
    (d,) = diagnostics
    assert "分钟" in d.hint


_ALPHABET = st.sampled_from(list(KEYWORDS) + ['"', "[", "]", "(", ")", ":", ",", "=", "!=", "<", ".", "..",
                                              "5m", "10元", "¥3", "20%", "/x/", "#", "\n", " ", "    ",
                                              "message", "text", "敬语", "“", "分", "1", "_"])


@settings(max_examples=n_examples(300), deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map(" ".join) | st.text(max_size=200))
def test_parser_only_reports_our_diagnostics(text):
    # Random text never raises: problems come back as positioned diagnostics,
    # from the parser and from the checker behind it.
    pf, diagnostics = parse(text, "fuzz.rules")
    _, more = check([pf])
    for d in diagnostics + more:
        assert d.position.line >= 1 and d.position.column >= 1
        d.render()


_RULE_PARTS = st.tuples(
    st.sampled_from(["message", "mesage", "refund_requested", "shift_end"]),
    st.sampled_from(["", "[sender = \"agent\"]", "[first]", "[kind in [\"text\", 3]]"]),
    st.sampled_from(["", " per conversation", " per nope"]),
    st.sampled_from(["", "when text has any 敬语", "when previous.text = 1", "when length(5) > text",
                     "when not gap", "when hour(ts) >= 22 or weekday(ts) = 7", "when handover = \"x\"",
                     "when text matches /(/", "when amount > 10元", "when position"]),
    st.sampled_from(["", "unless message same conversation within 5m",
                     "unless at least 0 message same buyer before", "unless nope within 1h before",
                     "unless message same order, text within 20m..10m"]),
    st.sampled_from(["fine 10元", "bonus ¥0", "fine 0.001元 to successor, text"]),
)


@settings(max_examples=n_examples(200), deadline=None)
@given(_RULE_PARTS)
def test_checker_reports_and_never_raises(parts):
    event, flt, per, when, unless, amount = parts
    text = POLICY + f"\nevent refund_requested(order, reason, amount: money)\nevent shift_end(handover: bool, successor)\n" \
        f'rule r "t":\n    on {event}{flt}{per}\n    {when}\n    {unless}\n    {amount}\n'
    pf, diagnostics = parse(text, "fuzz.rules")
    policy, more = check([pf])
    for d in diagnostics + more:
        assert d.render()
    if not diagnostics + more:
        # A policy the checker accepts always compiles to SQL DuckDB runs.
        con = duckdb.connect()
        con.execute("CREATE TABLE events (seq BIGINT, id VARCHAR, ts TIMESTAMP, ts_local TIMESTAMP, type VARCHAR, "
                    "agent VARCHAR, conversation VARCHAR, buyer VARCHAR, \"order\" VARCHAR, src_file VARCHAR, "
                    "src_line INTEGER, text VARCHAR)")
        for event in policy.events.values():
            con.execute(event_view_sql(event, {"text"}))
        sql = compile_rule(policy, policy.rules[0]).sql
        params = {k: datetime(2024, 5, 1) for k in ("start", "end", "data_end") if f"${k}" in sql}
        assert con.execute(sql, params).fetchall() == []


@pytest.mark.parametrize("text, where, what", [
    ('policy "a"\npolicy "b"\n', "t.rules:2:8:", "policy 重复声明"),
    ('timezone "Asia/Shanghai"\ntimezone "UTC"\n', "t.rules:2:10:", "timezone 重复声明"),
    ('effective 2024-05-01\neffective 2024-06-01\n', "t.rules:2:1:", "文件级 effective 重复声明"),
])
def test_a_file_setting_declared_twice_points_at_the_second(text, where, what):
    parsed, diagnostics = parse(text, "t.rules")
    [d] = diagnostics
    assert d.render().startswith(f"{where} 错误: {what} (declared twice; first at line 1)")
    # the first declaration is the one kept
    assert (parsed.name or parsed.timezone or parsed.effective).pos.line == 1
