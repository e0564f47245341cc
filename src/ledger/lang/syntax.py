"""Policy text → AST. Lark does the parsing; this module adds positions and errors.

Parsing recovers at every top-level declaration (a line starting with `policy`,
`timezone`, `event`, `words` or `rule`), so one typo does not hide the errors after
it: `parse` returns the AST of everything that parsed and a list of diagnostics.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import os
import re
import stat
import tempfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from importlib import resources

import attrs
import lark
from lark import Lark, Token, Transformer, v_args

from ledger.core.errors import Diagnostic, Position
from ledger.lang import ast

TOP_LEVEL = ("policy", "timezone", "effective", "event", "words", "rule", "example", "metric", "cap", "floor")
KEYWORDS = TOP_LEVEL + ("on", "per", "when", "unless", "at", "least", "same", "within",
                        "before", "fine", "bonus", "to", "and", "or", "not", "in", "has",
                        "any", "only", "contains", "matches", "true", "false", "until", "expect",
                        "no", "nothing", "pending", "then", "of", "points", "monthly", "first",
                        "matching", "count", "distinct", "percentile", "with", "wait", "for",
                        "capped", "after", "fines", "day", "except", "confirm", "without", "bonuses", "given")
# Error recovery resumes at these; `effective` is left out because a rule's own
# `effective` clause may also stand at the start of a line.
_DECLARATION_START = re.compile(r"^(?:%s)\b" % "|".join(k for k in TOP_LEVEL if k != "effective"), re.M)

# What each token kind is called in an error message.
_TOKEN_NAMES = {
    "NAME": "名称 (a name)",
    "STRING": '带英文引号的文字 (a "quoted string")',
    "MONEY": "金额，如 10元 (an amount)",
    "DURATION": "时长，如 5m、30分钟、2h (a duration)",
    "PERCENT": "百分比，如 20% (a percentage)",
    "NUMBER": "数字 (a number)",
    "INT": "整数 (a whole number)",
    "REGEX": "正则表达式，如 /\\d{11}/ (a /regex/)",
    "WORD": "词语 (a word)",
    "COMPARE": "比较符号 = != < <= > >= (a comparison)",
    "AMOUNT_KIND": "fine 或 bonus",
    "FEN": "平台扣分，如 6分 (platform points)",
    "AGGREGATE": "sum、avg、min 或 max",
    "$END": "文件结尾 (end of file)",
}

_DURATION_UNITS = {
    "s": 1, "秒": 1, "m": 60, "min": 60, "分钟": 60, "h": 3600, "小时": 3600,
    "d": 86400, "天": 86400,
}


@functools.cache
def _parser() -> Lark:
    grammar = grammar_text()
    cached = _parser_cache(grammar)
    if cached is not None:
        try:
            with open(cached, "rb") as f:
                return Lark.load(f)
        except Exception:  # noqa: BLE001 - a cache only: any damage means "build it again"
            pass
    parser = Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                  maybe_placeholders=False)
    if cached is not None:
        with contextlib.suppress(OSError):
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cached), suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    parser.save(f)
                os.replace(tmp, cached)  # whole or not at all: other runs may be reading
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    return parser


def _parser_cache(grammar: str) -> str | None:
    """Where the built parser is kept between runs (building it is ~0.15 s of every
    command), or None. Lark reads the file back with pickle, so only from a folder of
    the user's own that no one else may write to (never a shared /tmp);
    LEDGER_PARSER_CACHE=0 turns it off."""
    if os.environ.get("LEDGER_PARSER_CACHE", "").strip() == "0" or not hasattr(os, "getuid"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "ledger")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        return None
    key = hashlib.sha256(f"{lark.__version__}\n{grammar}".encode()).hexdigest()[:20]
    return os.path.join(folder, f"policy-parser-{key}.pickle")


def grammar_text() -> str:
    """The grammar (the language's specification) ships beside this module."""
    return resources.files("ledger.lang").joinpath("policy.lark").read_text("utf-8")


def parse(text: str, filename: str = "<policy>") -> tuple[ast.PolicyFile, list[Diagnostic]]:
    """Parse one policy file. Never raises for bad input: problems come back as data."""
    lines = text.splitlines()
    diagnostics: list[Diagnostic] = []
    builder = _Builder(filename, text)
    for start, padded in padded_chunks(text):
        try:
            tree = _parser().parse(padded)
        except lark.exceptions.UnexpectedInput as exc:
            diagnostics.append(_syntax_diagnostic(exc, filename, lines))
            builder.unparsed.extend(_DECLARED_NAME.findall(padded))
            continue
        except lark.exceptions.LarkError as exc:  # pragma: no cover - defensive
            diagnostics.append(Diagnostic(Position(filename, start + 1, 1), f"无法解析 (cannot parse): {exc}",
                                          source_line=_line(lines, start + 1)))
            continue
        builder.add(tree, diagnostics)
    return builder.result(), diagnostics


def padded_chunks(text: str):
    """What the parser reads: the file one declaration at a time. Yields (line index of the
    chunk's first line, text); everything before the chunk is blanked out (newlines kept) so
    that Lark's lines, columns and offsets are those of the whole file. `fmt` lexes exactly
    these texts, so its tokens are the parser's."""
    for start, offset, chunk in _chunks(text):
        yield start, _BLANK.sub(" ", text[:offset]) + chunk


def _chunks(text: str):
    """Split the text at lines that start a declaration; yield (line index, offset, text)."""
    starts = [m.start() for m in _DECLARATION_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    starts.append(len(text))
    for a, b in zip(starts, starts[1:]):
        if a < b:
            yield text.count("\n", 0, a), a, text[a:b]


_BLANK = re.compile(r"[^\n]")
# The name a declaration gives, read without the parser (for declarations that failed to parse).
_DECLARED_NAME = re.compile(r'^(?:rule|metric|words|event)[ \t]+([^\s(:="\[]+)', re.M)


def _line(lines: list[str], lineno: int) -> str | None:
    return lines[lineno - 1] if 0 < lineno <= len(lines) else None


def _describe(terminal: str) -> str:
    if terminal in _TOKEN_NAMES:
        return _TOKEN_NAMES[terminal]
    try:
        pattern = _parser().get_terminal(terminal).pattern
    except KeyError:
        return terminal
    if isinstance(pattern, lark.lexer.PatternStr):
        return f"'{pattern.value}'"
    return terminal


def _syntax_diagnostic(exc: lark.exceptions.UnexpectedInput, filename: str,
                       lines: list[str]) -> Diagnostic:
    line, column = exc.line, exc.column
    if line is None or line < 1:  # unexpected end of input
        line = max(len(lines), 1)
        column = len(_line(lines, line) or "") + 1
    source = _line(lines, line)
    hint = None
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        char = exc.char
        message = f"这里不能出现字符 {char!r} (unexpected character)"
        hint = _punctuation_hint(char)
        expected = sorted(exc.allowed or ())
        end = column + 1
    else:
        token = getattr(exc, "token", None)
        expected = sorted(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ())
        if token is None or token.type == "$END":
            message = "这条声明没有写完 (declaration ends too early)"
            end = None
        else:
            value = str(token.value)
            message = f"这里不能出现 {value!r} (unexpected token)"
            end = column + len(value)
            hint = (_digit_name_hint(value, expected, source, column) or _keyword_hint(value, expected)
                    or _punctuation_hint(value))
            if (token.type in ("NUMBER", "INT", "FEN") and "FEN" not in expected and source
                    and re.match(r"\d+(\.\d+)?\s*分(?!钟)", source[column - 1:])):
                hint = "提示：“分”是平台扣分单位；时长请写 分钟 或 m，如 5分钟、5m"
    if expected:
        shown = ", ".join(sorted({_describe(t) for t in expected}))
        message += f"；期望 (expected): {shown}"
    return Diagnostic(Position(filename, line, column, end), message, hint=hint, source_line=source)


def _punctuation_hint(value: str) -> str | None:
    if any(c in value for c in "“”‘’"):
        return '提示：请用英文引号 " 而不是中文引号 (use ASCII quotes)'
    if "\u3000" in value:
        return "提示：这里有一个全角空格，请改成普通空格 (full-width space)"
    if any(c in value for c in "：，（）【】；"):
        return "提示：请用英文标点 : , ( ) [ ] (use ASCII punctuation)"
    return None


def _keyword_hint(value: str, expected: list[str]) -> str | None:
    """A misspelt keyword: the closest keyword the parser expected here (`fien` → fine),
    else the closest keyword of the language (`unles` → unless)."""
    words = []
    for t in expected:
        d = _describe(t)
        if d.startswith("'") and d[1:-1].isalpha():
            words.append(d[1:-1])
        elif t == "AMOUNT_KIND":
            words.extend(("fine", "bonus"))
    if value.isascii() and value.isalpha():
        match = (difflib.get_close_matches(value, words, n=1, cutoff=0.6)
                 or difflib.get_close_matches(value, KEYWORDS, n=1, cutoff=0.7))
        if match and match[0] != value:
            return f"是不是想写 {match[0]}？(did you mean '{match[0]}'?)"
    return None


_CHINESE_DIGITS = "零一二三四五六七八九"


def _digit_name_hint(value: str, expected: list[str], source: str | None, column: int) -> str | None:
    """`3分钟回复率` where a name goes: names cannot start with a digit. The parser stops
    either at `3` (where a name was expected) or at `回复率` (after the duration `3分钟`)."""
    if source is None:
        return None
    start = min(column - 1, len(source))
    while start > 0 and (source[start - 1].isalnum() or source[start - 1] == "_"):
        start -= 1
    m = re.match(r"\d+[^\W\d]\w*", source[start:])
    if m is None or start + len(m.group(0)) < column or not (value[:1].isdigit() and "NAME" in expected or start < column - 1):
        return None
    word = m.group(0)
    digits = re.match(r"\d+", word).group(0)
    example = ("".join(_CHINESE_DIGITS[int(c)] for c in digits) + word[len(digits):]
               if len(digits) == 1 else "三分钟回复率")
    return f"提示：名称不能以数字开头，如 {example} (names cannot start with a digit)"


def parse_duration(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(.+)", text)
    assert m, text  # the grammar guarantees the shape
    return timedelta(seconds=float(Decimal(m.group(1)) * _DURATION_UNITS[m.group(2)]))


def parse_money(text: str) -> Decimal:
    return Decimal(re.sub(r"[¥￥元\s]", "", text))


_SOURCE_PIECE = re.compile(r'"(?:[^"\\\n]|\\.)*"|/(?:[^/\\\n]|\\.)+/|#[^\n]*|[^"/#]+|.', re.S)


def _fold(source: str) -> str:
    """Source text on one line, comments removed (strings and regexes kept whole)."""
    kept = [piece for piece in _SOURCE_PIECE.findall(source) if not piece.startswith("#")]
    return " ".join("".join(kept).split())


def unquote(token: str) -> str:
    """The value of a STRING token (`"a\\"b"` -> `a"b`)."""
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# Declarations a file may hold any number of: node type -> _Builder list it goes to.
_COLLECTIONS = {ast.Example: "examples", ast.EventDecl: "events", ast.WordList: "words", ast.Rule: "rules",
                ast.Metric: "metrics", ast.MonthlyRule: "monthly", ast.Cap: "caps", ast.Floor: "floors"}


class _Builder:
    """Turns Lark trees into AST nodes, file by file, chunk by chunk."""

    def __init__(self, filename: str, text: str):
        self.filename = filename
        self.text = text
        self.name: ast.Setting | None = None
        self.timezone: ast.Setting | None = None
        self.events: list[ast.EventDecl] = []
        self.words: list[ast.WordList] = []
        self.rules: list[ast.Rule] = []
        self.effective: ast.Effective | None = None
        self.examples: list[ast.Example] = []
        self.metrics: list[ast.Metric] = []
        self.monthly: list[ast.MonthlyRule] = []
        self.caps: list[ast.Cap] = []
        self.floors: list[ast.Floor] = []
        self.unparsed: list[str] = []

    def add(self, tree: lark.Tree, diagnostics: list[Diagnostic]) -> None:
        nodes = _ToAst(self.filename, self.text, diagnostics).transform(tree)
        for node in nodes.children:
            collection = _COLLECTIONS.get(type(node))
            if collection is not None:
                getattr(self, collection).append(node)
            elif isinstance(node, ast.Effective):
                self._set_once("effective", node, node.pos, "文件级 effective", diagnostics)
            elif isinstance(node, tuple) and node[0] in ("policy", "timezone"):
                kind, setting = node
                self._set_once("name" if kind == "policy" else kind, setting, setting.pos, kind, diagnostics)

    def _set_once(self, attr: str, value, pos: Position, label: str, diagnostics: list[Diagnostic]) -> None:
        """A file-level setting, declared at most once per file."""
        current = getattr(self, attr)
        if current is not None:
            diagnostics.append(Diagnostic(pos, f"{label} 重复声明 (declared twice; first at line {current.pos.line})",
                                          source_line=_line(self.text.splitlines(), pos.line)))
        else:
            setattr(self, attr, value)

    def result(self) -> ast.PolicyFile:
        return ast.PolicyFile(self.filename, self.text, self.name, self.timezone,
                              tuple(self.events), tuple(self.words), tuple(self.rules),
                              self.effective, tuple(self.examples), tuple(self.metrics),
                              tuple(self.monthly), tuple(self.caps), tuple(self.floors),
                              tuple(self.unparsed))


@v_args(meta=True)
class _ToAst(Transformer):
    def __init__(self, filename: str, text: str, diagnostics: list[Diagnostic]):
        super().__init__()
        self.filename = filename
        self.text = text
        self.diagnostics = diagnostics

    def _problem(self, pos: Position, message: str) -> None:
        lines = self.text.splitlines()
        self.diagnostics.append(Diagnostic(pos, message, source_line=_line(lines, pos.line)))

    def _date(self, token: Token):
        try:
            return date.fromisoformat(str(token))
        except ValueError:
            self._problem(self._tpos(token), f"不是有效日期 (not a valid date): {token}")
            return date(1970, 1, 1)

    # -- helpers
    def _pos(self, meta) -> Position:
        return Position(self.filename, meta.line, meta.column, meta.end_column if meta.end_line == meta.line else None)

    def _tpos(self, token: Token) -> Position:
        return Position(self.filename, token.line, token.column, token.end_column)

    def _name(self, token: Token) -> ast.Name:
        return ast.Name(str(token), self._tpos(token))

    def _source(self, meta) -> str:
        # Lark positions are offsets into the padded chunk, which match the file's.
        return self.text[meta.start_pos:meta.end_pos]

    # -- declarations
    def policy_decl(self, meta, children):
        return ("policy", ast.Setting(unquote(children[0]), self._tpos(children[0])))

    def timezone_decl(self, meta, children):
        return ("timezone", ast.Setting(unquote(children[0]), self._tpos(children[0])))

    def field_decl(self, meta, children):
        name, rest = self._name(children[0]), children[1:]
        type_ = self._name(rest.pop(0)) if rest and isinstance(rest[0], Token) else None
        default = rest[0] if rest else None
        return ast.FieldDecl(name, type_, default)

    def event_decl(self, meta, children):
        return ast.EventDecl(self._name(children[0]), tuple(children[1:]), self._pos(meta))

    def words_decl(self, meta, children):
        tokens = [c for c in children[1:] if isinstance(c, Token)]
        exceptions = next((c for c in children[1:] if isinstance(c, tuple)), ((), ()))
        words = tuple(unquote(t) if t.type == "STRING" else str(t) for t in tokens)
        return ast.WordList(self._name(children[0]), words, self._pos(meta),
                            tuple(self._tpos(t) for t in tokens), exceptions[0], exceptions[1])

    def word_exceptions(self, meta, children):
        return (tuple(unquote(t) if t.type == "STRING" else str(t) for t in children),
                tuple(self._tpos(t) for t in children))

    def confirm_clause(self, meta, children):
        return ("confirm",)

    def effective_decl(self, meta, children):
        return children[0]

    def effective(self, meta, children):
        start = self._date(children[0])
        until = self._date(children[1]) if len(children) > 1 else None
        if until is not None and until < start:
            self._problem(self._tpos(children[1]), "until 的日期早于开始日期 (until is before the start)")
        return ast.Effective(start, until, self._pos(meta))

    def _rule_head(self, children) -> tuple:
        """(id, title, effective, the clauses after them) of an event or monthly rule."""
        rest = list(children[1:])
        title = ""
        if rest and isinstance(rest[0], Token) and rest[0].type == "STRING":
            title = unquote(rest.pop(0))
        effective = rest.pop(0) if rest and isinstance(rest[0], ast.Effective) else None
        return self._name(children[0]), title, effective, rest

    def rule_decl(self, meta, children):
        rule_id, title, effective, rest = self._rule_head(children)
        on = rest.pop(0)
        when, when_source = None, ""
        if rest and isinstance(rest[0], tuple) and rest[0][0] == "when":
            _, when, when_source = rest.pop(0)
        unless = []
        while rest and isinstance(rest[0], ast.Window):
            unless.append(rest.pop(0))
        confirm = bool(rest) and rest[0] == ("confirm",)
        if confirm:
            rest.pop(0)
        amount, recipients = rest.pop(0)
        return ast.Rule(rule_id, title, on, when, tuple(unless), amount, recipients,
                        self._pos(meta), self._source(meta), when_source, effective, confirm)

    # -- examples
    def example_decl(self, meta, children):
        title = unquote(children[0])
        rest = list(children[1:])
        day = self._date(rest.pop(0)) if rest and isinstance(rest[0], Token) and rest[0].type == "DATE" else None
        events, expectations, given = [], [], []
        for item in rest:
            if isinstance(item, ast.Expectation):
                expectations.append(item)
            elif isinstance(item, ast.ExampleGiven):
                given.append(item)
            else:
                at_token, type_name, fields = item
                events.append(ast.ExampleEvent(self._when(at_token, day), type_name, fields, self._tpos(at_token)))
        if given and day is None and not events:
            self._problem(given[0].pos, "given 需要日期：example \"…\" on 2024-05-31 (given needs the example's date)")
        return ast.Example(title, day, tuple(events), tuple(expectations), self._pos(meta), tuple(given))

    def _when(self, token: Token, day):
        text = str(token)
        try:
            if token.type == "DATETIME":
                day_text, text = re.split(r"[ T]", text, maxsplit=1)
                day = date.fromisoformat(day_text)
            elif day is None:
                self._problem(self._tpos(token), "只写了时刻，请在 example 标题后写日期：example \"…\" on 2024-05-02 (time without a date)")
                return datetime(1970, 1, 1)
            h, m, *sec = text.split(":")
            seconds = Decimal(sec[0]) if sec else Decimal(0)
            if not (int(h) < 24 and int(m) < 60 and seconds < 60):
                raise ValueError(text)
            return datetime.combine(day, datetime.min.time()) + timedelta(
                hours=int(h), minutes=int(m), seconds=float(seconds))
        except ValueError:
            self._problem(self._tpos(token), f"不是有效时间 (not a valid time): {text}")
            return datetime(1970, 1, 1)

    def example_event(self, meta, children):
        return children[0], self._name(children[1]), tuple(children[2:])

    def example_field(self, meta, children):
        return self._name(children[0]), children[1]

    def example_given(self, meta, children):
        return ast.ExampleGiven(unquote(children[0]), tuple(children[1:]), self._pos(meta))

    def given_value(self, meta, children):
        return self._name(children[0]), children[1]

    def expect_entry(self, meta, children):
        agent = unquote(children[2]) if len(children) > 2 else None
        return ast.Expectation("entry", self._name(children[0]), parse_money(children[1]), agent, self._pos(meta))

    def expect_pending(self, meta, children):
        agent = unquote(children[1]) if len(children) > 1 else None
        return ast.Expectation("pending", self._name(children[0]), None, agent, self._pos(meta))

    def expect_none(self, meta, children):
        return ast.Expectation("none", self._name(children[0]), pos=self._pos(meta))

    def expect_nothing(self, meta, children):
        return ast.Expectation("nothing", None, pos=self._pos(meta))

    def on_clause(self, meta, children):
        event = self._name(children[0])
        flt, per = None, ()
        for child in children[1:]:
            if isinstance(child, tuple) and child and child[0] == "per":
                per = child[1]
            else:
                flt = child
        return ast.On(event, flt, per, _fold(self._source(meta)))

    def filter(self, meta, children):
        return children[0]

    def per_clause(self, meta, children):
        return ("per", tuple(self._name(t) for t in children))

    def when_clause(self, meta, children):
        return ("when", children[0], _fold(self._source(meta)))

    def unless_clause(self, meta, children):
        items = list(children)
        count = 1
        if isinstance(items[0], tuple) and items[0][0] == "at_least":
            count = items.pop(0)[1]
        event = self._name(items.pop(0))
        flt, same = None, ()
        window = items.pop()
        for item in items:
            if isinstance(item, tuple) and item[0] == "same":
                same = item[1]
            else:
                flt = item
        kind, d1, d2 = window
        return ast.Window(count, event, flt, same, kind, d1, d2,
                          _fold(self._source(meta)), self._pos(meta))

    def at_least(self, meta, children):
        return ("at_least", int(children[0]))

    def same_clause(self, meta, children):
        return ("same", tuple(self._name(t) for t in children))

    def within(self, meta, children):
        return ("within", None, parse_duration(children[0]))

    def within_range(self, meta, children):
        return ("range", parse_duration(children[0]), parse_duration(children[1]))

    def within_before(self, meta, children):
        return ("within_before", None, parse_duration(children[0]))

    def before(self, meta, children):
        return ("before", None, None)

    def amount_clause(self, meta, children):
        items = list(children)
        kind, spec, points, recipients = "fine", None, (), ()
        if isinstance(items[0], Token) and items[0].type == "AMOUNT_KIND":
            kind, spec = str(items.pop(0)), items.pop(0)
        for item in items:
            if isinstance(item, tuple) and item and item[0] == "points":
                points = item
            else:
                recipients = item
        texts = []
        if spec is None:
            value, pos, extra = Decimal(0), points[2], {}
        else:
            value, pos, extra, text = spec
            texts.append(text)
        if points:
            texts.append("points " + " then ".join(f"{p}分" for p in points[1]))
            extra["points"] = points[1]
        return ast.Amount(kind, value, " ".join(texts), pos, **extra), recipients

    def money_steps(self, meta, children):
        values = [parse_money(t) for t in children]
        text = " then ".join(re.sub(r"\s+", "", str(t)) for t in children)
        return values[0], self._tpos(children[0]), {"steps": tuple(values[1:])}, text

    def money_percent(self, meta, children):
        share, field = children
        text = f"{share} of {field}"
        return (Decimal(0), self._tpos(share),
                {"percent": Decimal(str(share)[:-1]), "of": self._name(field)}, text)

    def points_clause(self, meta, children):
        return ("points", tuple(int(re.sub(r"\D", "", str(t))) for t in children), self._tpos(children[0]))

    # -- monthly rules
    def monthly_rule(self, meta, children):
        rule_id, title, effective, rest = self._rule_head(children)
        when = None
        if rest and isinstance(rest[0], tuple) and rest[0][0] == "when":
            when = rest.pop(0)[1]
        outcome = rest.pop(0)
        if isinstance(outcome, tuple) and outcome and outcome[0] == "tiers":
            tiers, tiered = outcome[1], True
        else:
            amount, recipients = outcome
            if recipients:
                self._problem(recipients[0].pos, "月度规则只发给客服本人，不能写 to (monthly rules pay the agent)")
            tiers, tiered = (ast.Tier(ast.Literal(True, "bool", amount.pos), amount, amount.pos),), False
        return ast.MonthlyRule(rule_id, title, when, tiers, tiered, self._pos(meta), self._source(meta), effective)

    def tiers(self, meta, children):
        return ("tiers", tuple(children))

    def tier(self, meta, children):
        amount, recipients = children[1]
        if recipients:
            self._problem(recipients[0].pos, "月度规则只发给客服本人，不能写 to (monthly rules pay the agent)")
        return ast.Tier(children[0], amount, self._pos(meta))

    # -- metrics
    def metric_decl(self, meta, children):
        name = self._name(children[0])
        rest = list(children[1:])
        title = unquote(rest.pop(0)) if rest and isinstance(rest[0], Token) and rest[0].type == "STRING" else ""
        body = rest.pop(0)
        return attrs.evolve(body, name=name, title=title, pos=self._pos(meta), source=self._source(meta))

    def metric_ratio(self, meta, children):
        return ast.Metric(ast.Name("", Position(self.filename, 1, 1)), "", "ratio",
                          ratio=(self._name(children[0]), self._name(children[1])))

    def metric_fines(self, meta, children):
        return ast.Metric(ast.Name("", Position(self.filename, 1, 1)), "", "fines")

    def metric_agg(self, meta, children):
        (kind, values, pct), on, *rest = children
        when, windows, wait = None, [], None
        for item in rest:
            if isinstance(item, tuple) and item[0] == "when":
                when = item[1]
            elif isinstance(item, tuple) and item[0] in ("unless", "with"):
                windows.append(item)
            elif isinstance(item, ast.Wait):
                wait = item
            elif isinstance(item, ast.Window):
                windows.append(("unless", item))
        return ast.Metric(ast.Name("", on.event.pos), "", kind, tuple(values), on, when,
                          tuple(windows), wait, pct)

    def agg_count(self, meta, children):
        return "count", (), None

    def agg_distinct(self, meta, children):
        return "distinct", tuple(children), None

    def agg_value(self, meta, children):
        return str(children[0]), (children[1],), None

    def agg_percentile(self, meta, children):
        return "percentile", (children[1],), Decimal(str(children[0]))

    def with_clause(self, meta, children):
        return ("with", self.unless_clause(meta, children))

    def wait_clause(self, meta, children):
        items = list(children)
        event = self._name(items.pop(0))
        flt, same, cap = None, (), None
        for item in items:
            if isinstance(item, tuple) and item[0] == "same":
                same = item[1]
            elif isinstance(item, Token) and item.type == "DURATION":
                cap = parse_duration(item)
            else:
                flt = item
        return ast.Wait(event, flt, same, cap, self._pos(meta))

    def after(self, meta, children):
        return ("after", None, None)

    def same_day(self, meta, children):
        return ("same_day", None, None)

    # -- caps and floors
    def cap_decl(self, meta, children):
        first = children[0]
        if first.type == "MONEY":
            return ast.Cap(parse_money(first), None, (), re.sub(r"\s+", "", str(first)), self._pos(meta))
        fields = tuple(self._name(t) for t in children[1:])
        text = f"{first} of " + " + ".join(f.value for f in fields)
        return ast.Cap(None, Decimal(str(first)[:-1]), fields, text, self._pos(meta))

    def floor_decl(self, meta, children):
        bonuses = children[1] if len(children) > 1 else None
        return ast.Floor(self._name(children[0]), self._pos(meta), bonuses)

    def floor_with_bonuses(self, meta, children):
        return True

    def floor_without_bonuses(self, meta, children):
        return False

    def recipients(self, meta, children):
        return tuple(self._name(t) for t in children)

    # -- expressions
    def or_(self, meta, children):
        return self._boolop("or", children, meta)

    def and_(self, meta, children):
        return self._boolop("and", children, meta)

    def _boolop(self, op, children, meta):
        operands = []
        for c in children:
            # Flatten a or b or c into one node.
            operands.extend(c.operands if isinstance(c, ast.BoolOp) and c.op == op else [c])
        return ast.BoolOp(op, tuple(operands), self._pos(meta))

    def not_(self, meta, children):
        return ast.Not(children[0], self._pos(meta))

    def compare(self, meta, children):
        left, op, right = children
        return ast.Compare(str(op), left, right, self._tpos(op))

    def in_list(self, meta, children):
        return ast.InList(children[0], tuple(children[1:]), self._pos(meta))

    def has_any(self, meta, children):
        return ast.TextTest("has_any", children[0], children[1], self._pos(meta))

    def only(self, meta, children):
        return ast.TextTest("only", children[0], children[1], self._pos(meta))

    def contains(self, meta, children):
        return ast.TextTest("contains", children[0], unquote(children[1]), self._pos(meta))

    def matches(self, meta, children):
        return ast.TextTest("matches", children[0], str(children[1])[1:-1], self._pos(meta))

    def ref(self, meta, children):
        if len(children) == 2:
            return ast.Ref(self._name(children[1]), self._name(children[0]))
        return ast.Ref(self._name(children[0]))

    def call(self, meta, children):
        return ast.Call(self._name(children[0]), children[1])

    def word_list_ref(self, meta, children):
        return ast.WordSource(self._name(children[0]), (), self._pos(meta))

    def word_list_inline(self, meta, children):
        return ast.WordSource(None, tuple(unquote(t) for t in children), self._pos(meta))

    # -- literals
    def string(self, meta, children):
        return ast.Literal(unquote(children[0]), "text", self._pos(meta))

    def number(self, meta, children):
        return ast.Literal(Decimal(children[0]), "number", self._pos(meta))

    def money(self, meta, children):
        return ast.Literal(parse_money(children[0]), "money", self._pos(meta))

    def duration(self, meta, children):
        return ast.Literal(parse_duration(children[0]), "duration", self._pos(meta))

    def percent(self, meta, children):
        return ast.Literal(Decimal(str(children[0])[:-1]), "percent", self._pos(meta))

    def true(self, meta, children):
        return ast.Literal(True, "bool", self._pos(meta))

    def false(self, meta, children):
        return ast.Literal(False, "bool", self._pos(meta))
