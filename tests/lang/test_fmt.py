"""`ledger fmt`: canonical layout, idempotent, meaning-preserving, comments kept in place.

* Every shipped policy file formats to a fixed point whose AST equals the original's.
* Hand-written messy policies format to exact, hand-written expected text (golden).
* A hypothesis property over generated policies with random layout and comments:
  format → parse gives the same AST, formatting twice changes nothing, no comment lost.
* `fmt_command`: exit codes, `--check` writes nothing, broken files are left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.lang import ast
from ledger.core.errors import PolicyError
from ledger.lang.fmt import fmt_command, format_text
from ledger.lang.syntax import parse

from conftest import n_examples

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "tests" / "lang" / "fixtures" / "policy").glob("*.rules")) + [REPO / "policy" / "house-rules.rules"]


# ---------------------------------------------------------------- AST equality

SNIPPETS = {"pos", "source", "when_source", "word_positions", "filename"}


def strip_positions(node):
    """The AST as plain data without positions, file names and source-text snippets."""
    if isinstance(node, ast.PolicyFile):
        node = attrs.evolve(node, text="")
    if isinstance(node, ast.Amount):  # `text` is the amount as written, spaces removed
        node = attrs.evolve(node, text=re.sub(r"\s+", "", node.text))
    if attrs.has(type(node)):
        return {"@": type(node).__name__} | {
            f.name: strip_positions(getattr(node, f.name))
            for f in attrs.fields(type(node)) if f.name not in SNIPPETS}
    if isinstance(node, (tuple, list)):
        return [strip_positions(n) for n in node]
    return node


def parsed(text: str) -> ast.PolicyFile:
    policy, diagnostics = parse(text, "t.rules")
    assert not diagnostics, "\n".join(d.render() for d in diagnostics)
    return policy


def assert_same_meaning(before: str, after: str) -> None:
    assert strip_positions(parsed(after)) == strip_positions(parsed(before))


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig")


def test_strip_positions_sees_real_differences():
    one = parsed('rule r: on m when a = "x" fine 10元')
    assert strip_positions(one) == strip_positions(parsed('rule r:\n  on m\n  when (a = "x")\n  fine 10 元'))
    for other in ('rule r: on m when a = "y" fine 10元', 'rule r: on m when a != "x" fine 10元',
                  'rule r: on m when a = "x" fine ¥10', 'rule r: on m when a = "x" fine 11元'):
        assert strip_positions(parsed(other)) != strip_positions(one)


# ---------------------------------------------------------------- shipped files

@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_shipped_files_are_idempotent_and_keep_their_meaning(path):
    text = read(path)
    once = format_text(text, path.name)
    assert format_text(once, path.name) == once
    assert_same_meaning(text, once)
    assert comments_of(once) == comments_of(text)


def comments_of(text: str) -> list[str]:
    from ledger.lang.fmt import lex

    return [c.text for c in lex(text)[1]]


def test_already_canonical_fixtures_are_unchanged():
    for name in ("defaults", "durations", "names", "recipients", "sequence", "text-tests", "windows"):
        path = REPO / "tests" / "lang" / "fixtures" / "policy" / f"{name}.rules"
        assert format_text(read(path)) == read(path), name


def test_comments_and_layout_fixture():
    path = REPO / "tests" / "lang" / "fixtures" / "policy" / "comments-and-layout.rules"
    assert format_text(read(path)) == COMMENTS_AND_LAYOUT


COMMENTS_AND_LAYOUT = """\
# 注释和排版 (comments and layout)：# 到行尾是注释；换行和缩进随意；
# 每个子句以关键字开头（on、when、unless、fine/bonus、to），所以怎么断行都不会读错。

policy "排版示例"  # 规则集名称
timezone "Asia/Shanghai"  # 时区

event message(
    conversation,  # 会话
    buyer,
    agent,
    sender,
    kind = "text",  # 为空时当作 text
    text,  # 末尾多一个逗号也可以
)

# 标准写法：一个子句一行，缩进四个空格。
rule 标准 "标准写法":
    on message per conversation  # 哪些事件
    when sender = "agent"  # 哪些违规
        # 条件可以分几行写，中间也可以插注释
        and previous.sender = "buyer"
        and length(text) < 5
    fine 10元  # 多少钱

# 标题和冒号都可以省略。
rule 无标题:
    on message
    when text contains "差评"
    fine 1元

# 也可以写在一行里（不推荐，只是说明断行不影响意思）。
rule 一行 "一行":
    on message
    when sender = "system"
    fine 1元

# 用 Tab 缩进也可以。
rule 制表符 "Tab":
    on message
    when kind = "image"
    fine 1元
"""


def test_house_rules_long_conditions_break_one_operand_per_line():
    out = format_text(read(REPO / "policy" / "house-rules.rules"))
    assert ('    when sender = "agent"\n'
            '        and kind in ["text", "emoji"]\n'
            '        and previous.sender = "buyer"\n'
            '        and (kind = "emoji" or length(text) < 5 or text only 语气词)\n') in out


# ---------------------------------------------------------------- messy policies (golden)

def check_golden(messy: str, expected: str) -> None:
    assert format_text(messy) == expected
    assert format_text(expected) == expected
    assert_same_meaning(messy, expected)


def test_messy_layout_crlf_tabs_and_clauses_on_one_line():
    messy = (
        "#  店规（乱写版）\r\n"
        "policy \"乱\"\r\n"
        "\r\n\r\n\r\n"
        "event message(conversation,buyer,agent,sender,kind=\"text\",text)\r\n"
        "event rating( agent , score : number = 5 , )\r\n"
        "rule  回复超时\"及时回复\" :on message per conversation when sender=\"buyer\"and previous.sender!=\"buyer\"\r\n"
        "\tunless message[ sender=\"agent\"and kind!=\"auto_reply\" ]same conversation within 5m fine 20 元\r\n"
        "rule 差评 on rating[score<=2]   # 一星二星\r\n"
        "        fine ¥5   to agent\r\n"
    )
    check_golden(messy, """\
#  店规（乱写版）
policy "乱"

event message(conversation, buyer, agent, sender, kind = "text", text)
event rating(agent, score: number = 5)

rule 回复超时 "及时回复":
    on message per conversation
    when sender = "buyer" and previous.sender != "buyer"
    unless message[sender = "agent" and kind != "auto_reply"] same conversation within 5m
    fine 20元

rule 差评:
    on rating[score <= 2]  # 一星二星
    fine ¥5 to agent
""")


def test_messy_comments_stay_where_they_were():
    messy = """
# 文件头注释

# 第二段文件头
policy "注释"   # 名称
timezone "Asia/Shanghai"
event message(conversation, buyer, agent, sender,
              kind = "text",   # 默认 text
              text)
# 评价事件
event rating(agent, score: number)

words 敬语 = 您 亲 请   # 常用
    谢谢 感谢
      # 更多
    欢迎

# 规则一
rule 敬语 "开头要有敬语":   # 标题后的注释
    # on 之前
    on message[sender = "agent"] per conversation
    when first          # 第一条
        and not text has any 敬语
    fine 10元   # 金额
rule 低分 "低分":
    on rating
    when score <= 2 and
         # 中间注释
         score != 0
    fine 5元
rule 挤在一起: on message[sender = "agent" # 客服
  and kind = "text"   # 文字
  ] fine 1元
# 结尾注释一

# 结尾注释二
"""
    check_golden(messy, """\
# 文件头注释

# 第二段文件头
policy "注释"  # 名称
timezone "Asia/Shanghai"

event message(
    conversation,
    buyer,
    agent,
    sender,
    kind = "text",  # 默认 text
    text,
)
# 评价事件
event rating(agent, score: number)

words 敬语 = 您 亲 请  # 常用
    谢谢 感谢
    # 更多
    欢迎

# 规则一
rule 敬语 "开头要有敬语":  # 标题后的注释
    # on 之前
    on message[sender = "agent"] per conversation
    when first  # 第一条
        and not text has any 敬语
    fine 10元  # 金额

rule 低分 "低分":
    on rating
    when score <= 2
        # 中间注释
        and score != 0
    fine 5元

rule 挤在一起:
    # 客服
    on message[sender = "agent" and kind = "text"]  # 文字
    fine 1元
# 结尾注释一

# 结尾注释二
""")


def test_messy_conditions_minimal_parentheses_and_breaking():
    messy = """\
event message(conversation, buyer, agent, sender, kind, text)
event rating(agent, score: number, due: time)
rule 条件 "条件":
  on message  per  conversation
  when ((sender = "agent")) and
     (kind = "text" or kind = "image")
     and not (text has any ["您", "亲"] or text only 语气)
  fine 1元
rule 优先级:
  on rating when score = 1 or (score = 2 and not (score != 3)) or ((score = 4))
  fine 1元
rule 很长 "一行写不下":
  on message when sender = "agent" and kind = "text" and previous.sender = "buyer" and length(text) < 5
  fine 1元
rule 文字:
  on message
  when text   matches /微\\s*信|#/ or text contains "说\\"好\\"的\\\\" or hour( ts )in[22,23]
  fine 1元
"""
    check_golden(messy, """\
event message(conversation, buyer, agent, sender, kind, text)
event rating(agent, score: number, due: time)

rule 条件 "条件":
    on message per conversation
    when sender = "agent"
        and (kind = "text" or kind = "image")
        and not (text has any ["您", "亲"] or text only 语气)
    fine 1元

rule 优先级:
    on rating
    when score = 1 or score = 2 and not score != 3 or score = 4
    fine 1元

rule 很长 "一行写不下":
    on message
    when sender = "agent"
        and kind = "text"
        and previous.sender = "buyer"
        and length(text) < 5
    fine 1元

rule 文字:
    on message
    when text matches /微\\s*信|#/
        or text contains "说\\"好\\"的\\\\"
        or hour(ts) in [22, 23]
    fine 1元
""")


def test_messy_words_keep_the_authors_lines_and_wrap_only_long_ones():
    messy = """\
words   敬语=您 亲
           请 "谢 谢"   "C#"
words 长 = 一二三四五六七八九十 一二三四五六七八九十 一二三四五六七八九十 一二三四五六七八九十 一二三四五六七八九十
words 空行 =

    再见
"""
    check_golden(messy, """\
words 敬语 = 您 亲
    请 "谢 谢" "C#"
words 长 = 一二三四五六七八九十 一二三四五六七八九十 一二三四五六七八九十
    一二三四五六七八九十 一二三四五六七八九十
words 空行 =
    再见
""")


def test_messy_effective_windows_and_examples():
    messy = """\
effective 2024-05-01
event message(conversation, buyer, agent, sender, text)
rule 回复超时 "旧" effective 2024-05-01 until 2024-05-14 on message
  unless at least 1 message[sender="agent"] same conversation within 5分钟
  unless at least 2 message same conversation , agent within 1h ..2h
  unless message before unless message within 1天 before fine 20元 to agent , buyer
example "超时" on 2024-05-02 at 10:00 message(conversation:"c1",agent:"小王",sender:"buyer",) at 2024-05-03T10:05:01 message(conversation: "c1")
expect 回复超时 ¥ 20 to "小王" expect no 其他   expect 回复超时 pending
  expect nothing
"""
    check_golden(messy, """\
effective 2024-05-01

event message(conversation, buyer, agent, sender, text)

rule 回复超时 "旧":
    effective 2024-05-01 until 2024-05-14
    on message
    unless message[sender = "agent"] same conversation within 5分钟
    unless at least 2 message same conversation, agent within 1h..2h
    unless message before
    unless message within 1天 before
    fine 20元 to agent, buyer

example "超时" on 2024-05-02:
    at 10:00 message(conversation: "c1", agent: "小王", sender: "buyer")
    at 2024-05-03T10:05:01 message(conversation: "c1")
    expect 回复超时 ¥20 to "小王"
    expect no 其他
    expect 回复超时 pending
    expect nothing
""")


def test_comments_inside_a_joined_line_move_above_it():
    messy = """\
rule r:
    on message[a = "1" # one
        and b = "2"  # two
        # three
        and c = "3"]  # four
    fine 1元
"""
    check_golden(messy, """\
rule r:
    # one
    # two
    # three
    on message[a = "1" and b = "2" and c = "3"]  # four
    fine 1元
""")


def test_blank_lines_between_grouped_declarations_are_the_authors_choice():
    messy = "event a(x)\n\n\n\nevent b(y)\nevent c(z)\n# 词\n\nwords w = 一\nwords v = 二\nrule r: on a fine 1元\nrule s: on b fine 1元\n"
    check_golden(messy, "event a(x)\n\nevent b(y)\nevent c(z)\n\n# 词\n\nwords w = 一\nwords v = 二\n\n"
                        "rule r:\n    on a\n    fine 1元\n\nrule s:\n    on b\n    fine 1元\n")


def test_empty_and_comment_only_files():
    assert format_text("") == ""
    assert format_text("\n\n  \n") == ""
    assert format_text("  # 只有注释   \n\n\n# 第二条\n") == "# 只有注释\n\n# 第二条\n"


def test_broken_file_is_refused():
    with pytest.raises(PolicyError) as caught:
        format_text('rule r "t":\n    on message\n    fine 30\n', "bad.rules")
    assert caught.value.diagnostics
    assert "bad.rules:3" in caught.value.diagnostics[0].render()


# ---------------------------------------------------------------- generated policies

NAMES = ["a", "sender", "kind", "text", "金额", "买家", "x_1", "Ab"]
EVENTS = ["message", "rating", "事件"]
FUNCTIONS = ["length", "hour", "date", "weekday"]
NUMBERS = ["0", "7", "12", "1.50", "007", "3.14159"]
MONEY = ["10元", "0.5元", "¥5", "￥12.50", "3 元", "¥ 8"]
DURATIONS = ["5m", "30s", "1.5h", "2天", "10分钟", "5min", "45秒", "3小时", "1d"]
REGEXES = ["/1[3-9]\\d{9}/", "/a#b/", "/x\\/y/", "/微\\s*信/"]
BARE_WORDS = ["您", "亲", "OK!", "a/b", "10元", "x.y", "on", "-x", "嗯嗯", "C++", "when"]
DATES = ["2024-05-01", "2024-05-15", "2024-06-30"]
TIMES = ["10:00", "9:05:30", "23:59:59.5"]
DATETIMES = ["2024-05-02 10:00:00", "2024-05-02T10:00", "2024-05-03 08:30"]


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


strings = st.text(st.sampled_from(list('ab 中文"\\#/:,\n\t')), max_size=6).map(quote)


def one(values):
    return st.sampled_from(values).map(lambda v: [v])


def maybe(strategy):
    return st.one_of(st.just([]), strategy)


def joined(strategy, separator: str, min_size: int = 1, max_size: int = 3):
    def join(parts):
        out = []
        for n, part in enumerate(parts):
            out += ([separator] if n else []) + part
        return out
    return st.lists(strategy, min_size=min_size, max_size=max_size).map(join)


def seq(*strategies):
    return st.tuples(*strategies).map(lambda parts: [t for part in parts for t in part])


literals = st.one_of(strings.map(lambda s: [s]), one(NUMBERS), one(MONEY), one(DURATIONS),
                     one(["20%", "1.5%"]), one(["true", "false"]))
refs = st.one_of(one(NAMES + ["first", "last", "position", "gap"]),
                 st.tuples(st.sampled_from(["previous", "next"]), st.sampled_from(NAMES)).map(
                     lambda p: [p[0], ".", p[1]]))
word_sources = st.one_of(one(["敬语", "语气"]), seq(st.just(["["]), joined(strings.map(lambda s: [s]), ","),
                                                   st.just(["]"])))


def expressions(depth: int = 0):
    """Condition tokens built top-down from the grammar, so every one parses."""
    inner = depth < 2
    operand = st.one_of(refs, literals) if not inner else st.one_of(
        refs, literals,
        seq(one(FUNCTIONS), st.just(["("]), st.deferred(lambda: expressions(depth + 1)), st.just([")"])),
        seq(st.just(["("]), st.deferred(lambda: expressions(depth + 1)), st.just([")"])))
    test = st.one_of(
        operand,
        seq(operand, one(["=", "!=", "<", "<=", ">", ">="]), operand),
        seq(operand, st.just(["in", "["]), joined(literals, ","), st.just(["]"])),
        seq(operand, one(["has"]), one(["any"]), word_sources),
        seq(operand, one(["only"]), word_sources),
        seq(operand, one(["contains"]), strings.map(lambda s: [s])),
        seq(operand, one(["matches"]), one(REGEXES)))
    negated = st.one_of(test, seq(one(["not"]), test), seq(one(["not"]), one(["not"]), test))
    return joined(joined(negated, "and", max_size=3 if inner else 2), "or", max_size=3 if inner else 2)


def filters():
    return maybe(seq(st.just(["["]), expressions(1), st.just(["]"])))


names = joined(one(NAMES), ",", max_size=2)
effective = st.lists(st.sampled_from(DATES), min_size=1, max_size=2).map(
    lambda ds: ["effective", min(ds)] + (["until", max(ds)] if len(ds) == 2 else []))
windows = st.one_of(seq(one(["within"]), one(DURATIONS)),
                    seq(one(["within"]), one(DURATIONS), one([".."]), one(DURATIONS)),
                    seq(one(["within"]), one(DURATIONS), one(["before"])),
                    one(["before"]))
unless = seq(one(["unless"]), maybe(seq(st.just(["at", "least"]), one(["0", "1", "2", "3"]))), one(EVENTS),
             filters(), maybe(seq(one(["same"]), names)), windows)
POINTS = ["6分", "12分", "1 分"]


def then(strategy):
    return st.lists(seq(one(["then"]), strategy), min_size=1, max_size=2).map(lambda ps: sum(ps, []))


# fine 10元 · fine 6元 then 12元 · bonus 1% of 金额 · fine 50元 points 6分 then 12分 · points 6分
amounts = st.one_of(
    seq(one(["fine", "bonus"]), one(MONEY)),
    seq(one(["fine", "bonus"]), one(MONEY), then(one(MONEY))),
    seq(one(["fine", "bonus"]), one(["1%", "2.5%"]), one(["of"]), one(NAMES)),
    seq(one(["fine"]), one(MONEY), maybe(then(one(MONEY))), one(["points"]), one(POINTS), maybe(then(one(POINTS)))),
    seq(one(["points"]), one(POINTS), maybe(then(one(POINTS)))))
rules = seq(one(["rule"]), one(NAMES), maybe(strings.map(lambda s: [s])), maybe(one([":"])), maybe(effective),
            one(["on"]), one(EVENTS), filters(), maybe(seq(one(["per"]), names)),
            maybe(seq(one(["when"]), expressions())), st.lists(unless, max_size=2).map(lambda us: sum(us, [])),
            amounts, maybe(seq(one(["to"]), names)))
metric_windows = st.one_of(windows, one(["after"]), st.just(["same", "day"]))
metric_clauses = st.one_of(
    seq(one(["with", "unless"]), maybe(seq(st.just(["at", "least"]), one(["1", "2"]))), one(EVENTS), filters(),
        maybe(seq(one(["same"]), names)), metric_windows),
    seq(st.just(["wait", "for"]), one(EVENTS), filters(), maybe(seq(one(["same"]), names)),
        maybe(seq(one(["capped"]), one(DURATIONS)))))
aggregates = st.one_of(one(["count"]), seq(one(["distinct"]), joined(refs, ",", max_size=2)),
                       seq(one(["sum", "avg", "min", "max"]), refs), seq(one(["percentile"]), one(["90", "50.5"]), refs))
metric_head = seq(one(["metric"]), one(NAMES), maybe(strings.map(lambda s: [s])), maybe(one([":"])))
metrics = st.one_of(
    seq(metric_head, aggregates, one(["on"]), one(EVENTS), filters(), maybe(seq(one(["per"]), names)),
        maybe(seq(one(["when"]), expressions())), st.lists(metric_clauses, max_size=2).map(lambda cs: sum(cs, []))),
    seq(metric_head, one(["="]), one(NAMES), one(["/"]), one(NAMES)),
    seq(metric_head, st.just(["=", "count", "fines"])))
monthly_rules = seq(one(["rule"]), one(NAMES), maybe(strings.map(lambda s: [s])), maybe(one([":"])), maybe(effective),
                    one(["monthly"]),
                    maybe(seq(one(["when"]), expressions())),
                    st.one_of(seq(one(["fine", "bonus"]), one(MONEY)),
                              seq(st.just(["first", "matching"]), st.lists(
                                  seq(one(["when"]), expressions(), one(["fine", "bonus"]), one(MONEY)),
                                  min_size=1, max_size=3).map(lambda ts: sum(ts, [])))))
caps = st.one_of(seq(st.just(["cap", "fines"]), one(MONEY)),
                 seq(st.just(["cap", "fines"]), one(["20%", "5%"]), one(["of"]), joined(one(NAMES), "+", max_size=2)),
                 seq(one(["floor"]), one(NAMES)))
fields = seq(one(NAMES), maybe(seq(one([":"]), one(["money", "number", "bool", "time", "text"]))),
             maybe(seq(one(["="]), literals)))
events = seq(one(["event"]), one(EVENTS), one(["("]), maybe(joined(fields, ",", max_size=4)), maybe(one([","])),
             one([")"]))
words = seq(one(["words"]), one(NAMES), one(["="]),
            st.lists(st.one_of(one(BARE_WORDS), strings.map(lambda s: [s]), one(['"rule"'])),
                     min_size=1, max_size=6).map(lambda ws: sum(ws, [])))
expectations = st.one_of(seq(one(["expect"]), one(NAMES), one(MONEY), maybe(seq(one(["to"]), strings.map(lambda s: [s])))),
                         seq(one(["expect"]), one(NAMES), one(["pending"]), maybe(seq(one(["to"]), strings.map(lambda s: [s])))),
                         seq(one(["expect"]), one(["no"]), one(NAMES)),
                         st.just(["expect", "nothing"]))


@st.composite
def examples(draw):
    day = draw(st.sampled_from([None] + DATES))
    tokens = ["example", draw(strings)] + (["on", day] if day else []) + draw(maybe(one([":"])))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.sampled_from(DATETIMES + (TIMES if day else [])))
        field = seq(one(NAMES), one([":"]), literals)
        tokens += ["at", at, draw(st.sampled_from(EVENTS)), "("] + draw(maybe(joined(field, ",")))
        tokens += draw(maybe(one([","]))) + [")"]
    return tokens + draw(st.lists(expectations, min_size=1, max_size=3).map(lambda es: sum(es, [])))


SAME_LINE = [" ", "  ", "\t", " \t "]
NEW_LINE = ["\n    ", "\n\t", "\n  \n  ", "\r\n  "]
BETWEEN_DECLARATIONS = ["\n", "\n\n", "\n\n\n", " ", "\r\n"]


@st.composite
def policies(draw):
    """(policy text with random layout and comments, the comments it holds)."""
    headers = draw(st.lists(st.sampled_from(["policy", "timezone", "effective"]), unique=True))
    declarations = [["policy", draw(strings)] if h == "policy" else ["timezone", '"Asia/Shanghai"']
                    if h == "timezone" else draw(effective) for h in headers]
    declarations += draw(st.lists(st.one_of(events, words, rules, examples(), metrics, monthly_rules, caps),
                                  max_size=5))
    declarations = draw(st.permutations(declarations))
    comments: list[str] = []

    def comment() -> str:
        comments.append(f"#‹{len(comments)}› 注释 \"{draw(st.sampled_from(['', '#', 'rule', '/x/']))}\"")
        return comments[-1]

    comment_rate = draw(st.sampled_from([0, 1, 4]))  # in tenths: none, a few, many

    def separator(kind: str) -> str:
        roll = draw(st.integers(0, 9))
        if roll < comment_rate and draw(st.booleans()):  # a trailing comment
            return f" {comment()}" + ("\n    " if kind == "inside" else "\n")
        if roll < comment_rate:  # a comment on its own line
            return ("\n  " if kind == "inside" else "\n") + comment() + ("\n   " if kind == "inside" else "\n\n")
        if roll < 6:
            return draw(st.sampled_from(SAME_LINE if kind == "inside" else BETWEEN_DECLARATIONS))
        return draw(st.sampled_from(NEW_LINE)) if kind == "inside" else "\n"

    text = draw(st.sampled_from(["", "\n"])) + (comment() + "\n" if draw(st.booleans()) else "")
    for number, tokens in enumerate(declarations):
        if number:
            text += separator("between")
        text += tokens[0] + "".join(separator("inside") + t for t in tokens[1:])
    if draw(st.booleans()):
        text += "\n" + comment()
    return text, comments


@settings(max_examples=n_examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies())
def test_generated_policies_format_to_the_same_ast_and_a_fixed_point(generated):
    text, comments = generated
    before = parsed(text)
    once = format_text(text)
    assert strip_positions(parsed(once)) == strip_positions(before)
    assert format_text(once) == once
    for comment in comments:
        assert once.count(comment) == 1, comment
    assert all(line == line.rstrip() for line in once.split("\n"))
    assert "\r" not in once and "\n\n\n" not in once


# ---------------------------------------------------------------- fmt_command

MESSY = 'rule r "t": on message fine 1元\n'
TIDY = 'rule r "t":\n    on message\n    fine 1元\n'


def write(folder: Path, files: dict[str, bytes | str]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_check_lists_files_that_would_change_and_writes_nothing(tmp_path):
    write(tmp_path, {"a.rules": TIDY, "sub/b.rules": MESSY, "notes.txt": MESSY})
    before = snapshot(tmp_path)
    out, code = fmt_command([tmp_path], check=True)
    assert code == 1
    assert f"需要格式化 (would reformat): {(tmp_path / 'sub' / 'b.rules').as_posix()}" in out
    assert "a.rules" not in out
    assert snapshot(tmp_path) == before


def test_check_passes_on_formatted_files(tmp_path):
    write(tmp_path, {"a.rules": TIDY, "b.rules": format_text(read(REPO / "policy" / "house-rules.rules"))})
    out, code = fmt_command([tmp_path], check=True)
    assert code == 0
    assert "格式已规范 (already formatted)" in out


def test_fmt_rewrites_changed_files_only(tmp_path):
    write(tmp_path, {"a.rules": TIDY, "b.rules": MESSY})
    untouched = (tmp_path / "a.rules").stat().st_mtime_ns
    out, code = fmt_command([tmp_path], check=False)
    assert code == 0
    assert out == f"已格式化 (formatted): {(tmp_path / 'b.rules').as_posix()}"
    assert (tmp_path / "b.rules").read_text("utf-8") == TIDY
    assert (tmp_path / "a.rules").stat().st_mtime_ns == untouched
    assert fmt_command([tmp_path], check=True)[1] == 0
    assert not list(tmp_path.glob(".*.tmp"))


def test_fmt_keeps_bom_and_crlf(tmp_path):
    write(tmp_path, {"w.rules": "\ufeff" + MESSY.replace("\n", "\r\n")})
    assert fmt_command([tmp_path / "w.rules"], check=False)[1] == 0
    assert (tmp_path / "w.rules").read_bytes() == ("\ufeff" + TIDY.replace("\n", "\r\n")).encode("utf-8")
    assert fmt_command([tmp_path], check=True) == ("格式已规范 (already formatted): 1 个文件", 0)


def test_broken_file_prints_diagnostics_and_is_left_alone(tmp_path):
    broken = 'rule r "t":\n    on message\n    fine 30\n'
    write(tmp_path, {"bad.rules": broken, "ok.rules": MESSY})
    for check in (True, False):
        out, code = fmt_command([tmp_path], check=check)
        assert code == 1
        assert f"{(tmp_path / 'bad.rules').as_posix()}:3:" in out
        assert "错误" in out
        assert (tmp_path / "bad.rules").read_text("utf-8") == broken
    assert (tmp_path / "ok.rules").read_text("utf-8") == TIDY  # the good file was still formatted


def test_file_that_is_not_utf8_fails_cleanly(tmp_path):
    write(tmp_path, {"gbk.rules": "rule 规则: on m fine 1元\n".encode("gbk")})
    out, code = fmt_command([tmp_path], check=True)
    assert code == 1 and "UTF-8" in out


# ---------------------------------------------------------------- safety nets

def test_a_layout_that_changes_the_meaning_is_refused(monkeypatch):
    from ledger.lang import unparse
    from ledger.core.errors import LedgerError

    monkeypatch.setattr(unparse, "quote", lambda value: '"changed"')
    with pytest.raises(LedgerError, match="bug in ledger fmt"):
        format_text('rule r: on m when a = "x" fine 1元\n')


@pytest.mark.parametrize("seconds, text", [(300, "5m"), (5400, "90m"), (7200, "2h"), (86400, "1d"),
                                           (1.5, "1.5s"), (45, "45s"), (0, "0s")])
def test_canonical_durations_read_back_the_same(seconds, text):
    from datetime import timedelta

    from ledger.lang.unparse import duration_text
    from ledger.lang.syntax import parse_duration

    assert duration_text(timedelta(seconds=seconds)) == text
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_floor_keeps_how_it_treats_bonuses():
    from ledger.lang.fmt import format_text

    for line in ("floor 最低工资", "floor 最低工资 with bonuses", "floor 最低工资 without bonuses"):
        text = f"{line}\n"
        assert format_text(text, "p.rules") == text
    assert format_text("floor   最低工资   without   bonuses\n", "p.rules") == "floor 最低工资 without bonuses\n"
