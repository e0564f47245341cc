"""Property: an `or` of text tests compiled as one alternation (compile.ExprCompiler._any_of:
exact tests of one text merged into one regex, and a prefilter of the patterns every
disjunct implies) is true for exactly the texts the disjuncts written one by one are.

Random conditions over the shipped word lists (with and without exceptions), inline
lists, `matches` patterns, `contains`, `only`, a compare and `not`, nested up to three
levels; random texts built from pieces of those words and patterns (and NULL).
"""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.errors import Position
from ledger.evaluate.compile import ExprCompiler
from ledger.lang import ast
from ledger.lang.load import checked_policy

from conftest import POLICY, n_examples

POS = Position("t.rules", 1, 1)
_POLICY, _ = checked_policy(sorted(POLICY.glob("*.rules")))
EVENT = _POLICY.events["message"]
TEXT = ast.Ref(ast.Name("text", POS))
LISTS = ["敬语", "礼貌回应", "买家致谢", "语气词"]  # 敬语 has exceptions
PATTERNS = ["^(哟|呵)[，,]", "你.{0,3}吗", "好(的|吧)$", "[?？]$", "滚"]
PIECES = ["您", "亲", "亲自", "申请", "谢谢", "哟，", "呵,", "你好吗", "你懂吗", "好的", "好吧", "？", "?",
          "滚", "滚动", "稍等", "嗯", "a", " ", "不客气", "3q", "x"]


class Plain(ExprCompiler):
    """The same compiler writing every `or` as its disjuncts one by one."""

    def _any_of(self, operands) -> str:
        return "(" + " OR ".join(self.expr(x) for x in operands) + ")"


def _name(value: str) -> ast.Name:
    return ast.Name(value, POS)


implying = st.one_of(  # tests that need a pattern to match: what the alternation works on
    st.sampled_from(LISTS).map(lambda n: ast.TextTest("has_any", TEXT, ast.WordSource(_name(n), (), POS), POS)),
    st.lists(st.sampled_from(["好", "你", "吗", "？"]), min_size=1, max_size=3).map(
        lambda ws: ast.TextTest("has_any", TEXT, ast.WordSource(None, tuple(ws), POS), POS)),
    st.sampled_from(PATTERNS).map(lambda p: ast.TextTest("matches", TEXT, p, POS)),
)
leaves = st.one_of(
    implying, implying, implying,
    st.sampled_from(["你", "好的"]).map(lambda w: ast.TextTest("contains", TEXT, w, POS)),
    st.just(ast.TextTest("only", TEXT, ast.WordSource(_name("语气词"), (), POS), POS)),
    st.sampled_from(["text", "emoji"]).map(lambda k: ast.Compare(
        "=", ast.Ref(_name("kind")), ast.Literal(k, "text", POS), POS)),
)


def _tree(children):
    return st.one_of(
        st.lists(children, min_size=2, max_size=5).map(lambda xs: ast.BoolOp("or", tuple(xs), POS)),
        st.lists(children, min_size=2, max_size=5).map(lambda xs: ast.BoolOp("or", tuple(xs), POS)),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: ast.BoolOp("and", tuple(xs), POS)),
        children.map(lambda x: ast.Not(x, POS)),
    )


conditions = st.recursive(leaves, _tree, max_leaves=10).filter(lambda e: isinstance(e, ast.BoolOp))
# Every text of one or two pieces (and NULL), each with each kind: every condition is
# checked on all of them, plus a few random longer texts.
CORPUS = [None] + PIECES + [a + b for a in PIECES for b in PIECES]
longer = st.lists(st.lists(st.sampled_from(PIECES), min_size=3, max_size=6).map("".join), max_size=20)


_CON = duckdb.connect()
_CON.execute("CREATE TABLE corpus (i INTEGER, text VARCHAR, kind VARCHAR)")
_CON.executemany("INSERT INTO corpus VALUES (?, ?, ?)",
                 [(i, t, k) for i, (t, k) in enumerate((t, k) for t in CORPUS for k in ("text", "emoji", None))])


@settings(max_examples=n_examples(60), deadline=None)
@given(condition=conditions, extra=longer)
def test_an_or_of_text_tests_as_one_alternation_is_the_same_condition(condition, extra):
    merged = ExprCompiler(_POLICY, EVENT, alias=None, sequence=False).expr(condition)
    plain = Plain(_POLICY, EVENT, alias=None, sequence=False).expr(condition)
    con = _CON.cursor()
    con.execute("CREATE OR REPLACE TEMP TABLE m AS SELECT * FROM corpus")
    if extra:
        con.executemany("INSERT INTO m VALUES (?, ?, 'text')", [(-1 - i, t) for i, t in enumerate(extra)])
    got = con.execute(f"SELECT i, {merged}, {plain} FROM m ORDER BY i").fetchall()
    assert all(a is not None for _, a, _ in got)  # never NULL
    assert [(i, a) for i, a, _ in got] == [(i, b) for i, _, b in got]


def test_exact_tests_of_one_text_become_one_scan():
    """顶撞买家 (two word lists with exceptions, nine patterns, then a condition that needs
    `你…`): the nine patterns become one alternation, and a prefilter of all of them comes first."""
    rule = next(r for r in _POLICY.rules if r.id.value == "顶撞买家")
    sql = ExprCompiler(_POLICY, EVENT, alias="s", sequence=False).expr(rule.when)
    assert sql.startswith('(COALESCE(regexp_matches(s."text", ')
    plain = Plain(_POLICY, EVENT, alias="s", sequence=False).expr(rule.when)
    assert sql.count("regexp_matches(") == plain.count("regexp_matches(") - 9 + 1
