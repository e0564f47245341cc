"""`ledger fmt`: the one canonical layout of a policy file.

Policy edits are reviewed as text diffs, so every file is written the same way. The
layout is computed from the AST (what the rules mean) plus the source tokens (how
literals were spelt, where comments were), never by patching the original text:

* **Declarations** in source order, separated by one blank line. Consecutive
  declarations of the same group — header settings (`policy`, `timezone`, a file-wide
  `effective`), `event`s, `words` — keep the author's choice of no blank line or one.
  No blank lines inside a declaration; no trailing spaces; one newline at the end.
* **Header settings**: `policy "…"`, `timezone "…"`, `effective 2024-05-01 until …`.
* **Events**: `event name(field, field: type, field = "default")` on one line. An event
  that would be wider than WIDTH, or that carries comments between its fields, gets
  one field per line (indent 4, trailing comma, `)` alone on the last line).
* **Word lists**: `words 名 = w1 w2 …`, words in their order. The author's line breaks
  are kept (continuation lines indented 4): adding or removing a word then changes one
  line of the diff instead of re-flowing the whole list. Only a line wider than WIDTH
  is wrapped. Words are written as they were (bare or quoted; quoted ones re-escaped).
* **Rules**: `rule ID "title":` (`rule ID:` without a title), then one clause per line,
  indent 4: effective, on, when, unless…, fine/bonus [to …]. A `when` condition wider
  than WIDTH, or one with comments inside it, breaks before each top-level `and`/`or`
  with an 8-space continuation indent; deeper levels are never broken.
* **Examples**: `example "title" on DATE:`, then `at …`, `given …` and `expect …` lines, indent 4.
* **Expressions** (written by `lang.unparse`, which `explain` shares): one space around
  operators and after commas, none inside brackets; parentheses only where precedence
  needs them (the AST does not keep redundant ones; `and`/`or` chains are flat).
  `at least 1` is written as nothing (it is the default).
* **Literals** as written: `5m`, `5分钟`, `10元`, `¥10`, `1.50`, `10:00` (whitespace
  inside an amount is removed: `3 元` → `3元`). Strings are re-escaped (`\\"`, `\\\\`,
  `\\n`, `\\t`); regexes are kept byte for byte.
* **No column alignment** anywhere: one edit never re-indents its neighbours.
* **Comments** keep their text (trailing whitespace removed). A comment on its own line
  stays above the line that holds the next token, at that line's indent; the blank
  lines around comments before a declaration are kept (at most one). A comment after
  code stays at the end of the line that holds the code before it, after two spaces.
  When lines are joined (an event's fields, a broken condition, a clause written over
  several lines), a comment that would land in the middle of a line moves above it.
* WIDTH is 80 display columns, CJK characters counting two; comments are not counted.

`format_text` refuses a file with parse errors (it raises `PolicyError`) and checks its
own output: the result must parse to the same AST, or it raises instead of returning.
`fmt_command` is `ledger fmt [PATH…] [--check]`; it keeps a file's BOM and its line
ending style (LF or CRLF), which are encoding, not layout. `lex(text)` returns a parsing
file's code tokens and its `Comment`s, exactly as the parser reads them.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
import unicodedata
from datetime import date
from pathlib import Path

import attrs
from lark import Lark, Token

from ledger.core.atomic import write_bytes
from ledger.core.errors import LedgerError, PolicyError, Position
from ledger.lang import ast
from ledger.lang.load import policy_files
from ledger.lang.syntax import (
    grammar_text,
    padded_chunks,
    parse,
    parse_duration,
    parse_money,
    unquote,
)
from ledger.lang.unparse import (
    duration_text,
    expr_text,
    literal_text,
    money_text,
    number_text,
    quote,
    strength,
)

WIDTH = 80
INDENT = 4
CONTINUATION = 8

_CLAUSE_STARTS = {"EFFECTIVE", "ON", "WHEN", "UNLESS", "CONFIRM", "AMOUNT_KIND", "POINTS"}
_OPEN, _CLOSE = {"LSQB", "LPAR"}, {"RSQB", "RPAR"}
_LITERAL_TOKENS = {"number": "NUMBER", "money": "MONEY", "duration": "DURATION", "percent": "PERCENT"}
_GROUPS = {"policy": "header", "timezone": "header", "effective": "header", "event": "event", "words": "words",
           "cap": "caps", "floor": "caps"}


# ---------------------------------------------------------------- public API

def format_text(text: str, filename: str = "<policy>") -> str:
    """The canonical layout of one policy file (LF line endings, no BOM).

    `text` is the file as `syntax.parse` takes it (decoded with utf-8-sig)."""
    policy, diagnostics = parse(text, filename)
    if any(d.severity == "error" for d in diagnostics):
        raise PolicyError("policy has errors", diagnostics=diagnostics)
    tokens, comments = lex(text)
    result = _Formatter(text, tokens, comments).format(policy)
    _check_meaning(policy, result, filename)
    return result


def fmt_command(paths: list[Path], check: bool) -> tuple[str, int]:
    """Format every `*.rules` file under `paths`. Returns (output, exit code).

    Without `check`, changed files are rewritten atomically and listed. With `check`,
    nothing is written; the files that would change are listed and the exit code is 1.
    A file that does not parse is left alone, its diagnostics are printed, exit code 1.
    """

    out: list[str] = []
    changed: list[Path] = []
    failed = False
    files = policy_files(paths)
    for path in files:
        try:
            new = _formatted_bytes(path)
        except LedgerError as exc:
            failed = True
            out.extend([d.render() for d in exc.diagnostics] or [str(exc)])
            out.append(f"未格式化，请先改正错误 (not formatted, fix the errors first): {path.as_posix()}")
            continue
        if new is None:
            continue
        changed.append(path)
        if not check:
            write_bytes(path, new)
    label = "需要格式化 (would reformat)" if check else "已格式化 (formatted)"
    out.extend(f"{label}: {path.as_posix()}" for path in changed)
    if not changed and not failed:
        out.append(f"格式已规范 (already formatted): {len(files)} 个文件")
    return "\n".join(out), 1 if failed or (check and changed) else 0


def _formatted_bytes(path: Path) -> bytes | None:
    """The file's formatted bytes, or None when it is already formatted."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"无法读取规则文件 (cannot read policy file) {path}: {exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LedgerError(f"规则文件不是 UTF-8 (policy file is not UTF-8) {path}: {exc}") from None
    formatted = format_text(text, path.as_posix())
    first_newline = text.find("\n")
    if first_newline > 0 and text[first_newline - 1] == "\r":
        formatted = formatted.replace("\n", "\r\n")
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    new = (bom + formatted).encode("utf-8")
    return None if new == data else new


def _check_meaning(before: ast.PolicyFile, formatted: str, filename: str) -> None:
    """Refuse to return a layout that parses differently (a formatter bug, never the user's)."""
    after, diagnostics = parse(formatted, filename)
    if diagnostics or _meaning(after) != _meaning(before):
        raise LedgerError(f"格式化会改变规则的意思，已放弃 (formatting would change the policy; "
                          f"this is a bug in ledger fmt): {filename}")


_SNIPPETS = {"pos", "source", "when_source", "word_positions", "exception_positions", "text", "filename"}


def _meaning(node):
    """The AST without positions and source snippets (amount text compared without spaces)."""
    if isinstance(node, ast.Amount):
        return ("Amount", node.kind, node.value, re.sub(r"\s+", "", node.text), node.steps, node.percent,
                _meaning(node.of), node.points)
    if attrs.has(type(node)):
        return (type(node).__name__,) + tuple(
            _meaning(getattr(node, a.name)) for a in attrs.fields(type(node)) if a.name not in _SNIPPETS)
    if isinstance(node, tuple):
        return tuple(_meaning(n) for n in node)
    return node


# ---------------------------------------------------------------- tokens and comments

@attrs.frozen
class Comment:
    """A comment of the source, as `lex` finds it."""

    offset: int  # into the text
    line: int
    text: str  # from '#', trailing whitespace removed
    own_line: bool  # nothing but whitespace before it on its line


class _Recorder:
    """A Lark post-lexer that keeps every token the parser reads (after keyword retyping)."""

    always_accept = ()

    def __init__(self):
        self.tokens: list[Token] = []

    def process(self, stream):
        for token in stream:
            self.tokens.append(token)
            yield token


@functools.cache
def _lexer() -> tuple[Lark, _Recorder, list[Token]]:
    recorder, comments = _Recorder(), []
    parser = Lark(grammar_text(), parser="lalr", lexer="contextual", maybe_placeholders=False,
                  postlex=recorder, lexer_callbacks={"COMMENT": comments.append})
    return parser, recorder, comments


_LEX_LOCK = threading.Lock()


def lex(text: str) -> tuple[list[Token], list[Comment]]:
    """The code tokens and the comments of a file that parses, as `syntax.parse` reads it
    (chunk by chunk, so the contextual lexer sees exactly what the parser saw)."""
    parser, recorder, found = _lexer()
    with _LEX_LOCK:
        recorder.tokens.clear()
        found.clear()
        for _, padded in padded_chunks(text):
            parser.parse(padded)
        tokens, raw = list(recorder.tokens), list(found)
    comments = []
    for token in raw:
        line_start = text.rfind("\n", 0, token.start_pos) + 1
        own_line = not text[line_start:token.start_pos].strip()
        comments.append(Comment(token.start_pos, token.line, str(token).rstrip(), own_line))
    return tokens, comments


# ---------------------------------------------------------------- layout model

@attrs.define
class _Line:
    """One output line and the index of the first source token it prints."""

    indent: int
    text: str
    start: int
    comment_indent: int | None = None  # for comments above it, when not `indent`
    leading: list[Comment] = attrs.Factory(list)
    trailing: list[Comment] = attrs.Factory(list)

    def render(self) -> str:
        tail = f"  {self.trailing[0].text}" if self.trailing else ""
        return " " * self.indent + self.text + tail


@attrs.define
class _Breakable:
    """A construct written either on one line (`joined`) or over several (`lines`)."""

    lines: list[_Line]
    joined: _Line

    def resolve(self) -> list[_Line]:
        first, last = self.lines[0], self.lines[-1]
        inner = any(line.leading for line in self.lines[1:]) or any(line.trailing for line in self.lines[:-1])
        if inner or _width(self.joined) > WIDTH:
            return self.lines
        self.joined.leading, self.joined.trailing = first.leading, last.trailing
        return [self.joined]


@attrs.define
class _Block:
    """One top-level declaration: its group (for blank lines) and its token range."""

    group: str
    first: int
    last: int
    units: list  # _Line | _Breakable
    lines: list[_Line] = attrs.Factory(list)


def _display_width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in s)


def _width(line: _Line) -> int:
    return line.indent + _display_width(line.text)


def _fine_lines(unit) -> list[_Line]:
    return unit.lines if isinstance(unit, _Breakable) else [unit]


# ---------------------------------------------------------------- the formatter

class _Formatter:
    def __init__(self, text: str, tokens: list[Token], comments: list[Comment]):
        self.source_lines = text.split("\n")
        self.tokens = tokens
        self.comments = comments
        self.index = {(t.line, t.column): i for i, t in enumerate(tokens)}

    # -- driver
    def format(self, policy: ast.PolicyFile) -> str:
        blocks = self._blocks(policy)
        eof = self._attach_comments(blocks)
        for block in blocks:
            block.lines = [line for unit in block.units
                           for line in (unit.resolve() if isinstance(unit, _Breakable) else [unit])]
        out = self._render(blocks, eof)
        return "\n".join(out) + "\n" if out else ""

    def _blocks(self, policy: ast.PolicyFile) -> list[_Block]:
        found: list[tuple[int, str, object]] = []
        for kind, setting in (("policy", policy.name), ("timezone", policy.timezone)):
            if setting is not None:
                found.append((self.at(setting.pos) - 1, kind, setting))
        if policy.effective is not None:
            found.append((self.at(policy.effective.pos), "effective", policy.effective))
        for kind, nodes in (("event", policy.events), ("words", policy.words),
                            ("rule", policy.rules), ("example", policy.examples),
                            ("metric", policy.metrics), ("monthly", policy.monthly),
                            ("cap", policy.caps), ("floor", policy.floors)):
            found.extend((self.at(node.pos), kind, node) for node in nodes)
        found.sort(key=lambda item: item[0])
        ends = [start - 1 for start, _, _ in found[1:]] + [len(self.tokens) - 1]
        blocks = []
        for (start, kind, node), end in zip(found, ends):
            units = getattr(self, f"_{kind}")(node, start, end)
            blocks.append(_Block(_GROUPS.get(kind, kind), start, end, units))
        return blocks

    # -- comments
    def _attach_comments(self, blocks: list[_Block]) -> list[Comment]:
        """Give each comment to the line holding the token after it (own-line comments)
        or before it (trailing comments). Returns the comments after the last token."""
        lines = [line for block in blocks for unit in block.units for line in _fine_lines(unit)]
        starts = [line.start for line in lines]
        offsets = [t.start_pos for t in self.tokens]
        eof = []
        for comment in self.comments:
            after = bisect.bisect_right(offsets, comment.offset)  # index of the next token
            if comment.own_line or after == 0:
                if after == len(self.tokens):
                    eof.append(comment)
                else:
                    lines[bisect.bisect_right(starts, after) - 1].leading.append(comment)
            else:
                lines[bisect.bisect_right(starts, after - 1) - 1].trailing.append(comment)
        for line in lines:
            # One comment fits at the end of a line; earlier ones move above it.
            line.leading.extend(line.trailing[:-1])
            line.trailing = line.trailing[-1:]
            line.leading.sort(key=lambda c: c.offset)
        return eof

    # -- output
    def _render(self, blocks: list[_Block], eof: list[Comment]) -> list[str]:
        out: list[str] = []
        previous: _Block | None = None
        for block in blocks:
            head, *rest = block.lines
            items = [(c.line, c.text) for c in head.leading] + [(self.tokens[head.start].line, None)]
            if previous is not None:
                grouped = previous.group == block.group and block.group in ("header", "event", "words")
                if not grouped or self._blank_between(self._last_line(previous), items[0][0]):
                    out.append("")
            for (line_no, text), (next_line, _) in zip(items, items[1:]):
                out.append(text)
                if self._blank_between(line_no, next_line):
                    out.append("")
            out.append(head.render())
            for line in rest:
                indent = line.indent if line.comment_indent is None else line.comment_indent
                out.extend(" " * indent + c.text for c in line.leading)
                out.append(line.render())
            previous = block
        last_line = self._last_line(previous) if previous else None
        for comment in eof:
            if last_line is not None and self._blank_between(last_line, comment.line):
                out.append("")
            out.append(comment.text)
            last_line = comment.line
        return out

    def _last_line(self, block: _Block) -> int:
        return self.tokens[block.last].end_line

    def _blank_between(self, a: int, b: int) -> bool:
        """Whether the source has a blank line strictly between lines a and b (1-based)."""
        return any(not self.source_lines[n - 1].strip() for n in range(a + 1, b))

    # -- token helpers
    def at(self, pos: Position) -> int:
        return self.index[(pos.line, pos.column)]

    def token(self, i: int) -> Token | None:
        return self.tokens[i] if 0 <= i < len(self.tokens) else None

    def _clause_starts(self, first: int, last: int) -> list[int]:
        """Indices of the clause keywords of a rule (outside brackets and parentheses)."""
        return self._keyword_starts(first, last, _CLAUSE_STARTS)

    # -- declarations
    def _policy(self, setting: ast.Setting, first: int, last: int) -> list:
        return [_Line(0, f"policy {quote(setting.value)}", first)]

    def _timezone(self, setting: ast.Setting, first: int, last: int) -> list:
        return [_Line(0, f"timezone {quote(setting.value)}", first)]

    def _effective(self, effective: ast.Effective, first: int, last: int) -> list:
        return [_Line(0, _effective_text(effective), first)]

    def _event(self, event: ast.EventDecl, first: int, last: int) -> list:
        fields = [self._field(f) for f in event.fields]
        joined = _Line(0, f"event {event.name}({', '.join(fields)})", first)
        if not fields or self.tokens[last].type != "RPAR":
            return [joined]
        lines = [_Line(0, f"event {event.name}(", first)]
        lines += [_Line(INDENT, f"{text},", self.at(f.name.pos)) for f, text in zip(event.fields, fields)]
        lines.append(_Line(0, ")", last, comment_indent=INDENT))
        return [_Breakable(lines, joined)]

    def _field(self, field: ast.FieldDecl) -> str:
        text = str(field.name) + (f": {field.type}" if field.type is not None else "")
        return text + (f" = {self._literal(field.default)}" if field.default is not None else "")

    def _words(self, words: ast.WordList, first: int, last: int) -> list:
        """The author's lines of words, each wrapped only if it is too wide."""
        indices = [self.at(p) for p in words.word_positions]
        equals_line = self.tokens[self.at(words.name.pos) + 1].line
        groups: list[list[int]] = []
        for i in indices:
            if groups and self.tokens[groups[-1][-1]].line == self.tokens[i].line:
                groups[-1].append(i)
            else:
                groups.append([i])
        head = f"words {words.name} ="
        if groups and self.tokens[groups[0][0]].line == equals_line:
            lines = self._wrap(0, head, first, groups.pop(0))
        else:
            lines = [_Line(0, head, first)]
        for group in groups:
            lines += self._wrap(INDENT, "", group[0], group)
        if words.exceptions:  # `except` always starts its own line, indented like a continuation
            positions = [self.at(p) for p in words.exception_positions]
            lines += self._wrap(INDENT, "except", positions[0] - 1, positions)
        return lines

    def _wrap(self, indent: int, head: str, start: int, group: list[int]) -> list[_Line]:
        """Fill a line's words greedily into lines no wider than WIDTH (at least one word each)."""
        lines = [_Line(indent, head, start)]
        placed = 0  # words on the current line
        for i in group:
            word, line = self._word(i), lines[-1]
            candidate = f"{line.text} {word}" if line.text else word
            if placed and line.indent + _display_width(candidate) > WIDTH:
                lines.append(_Line(INDENT, word, i))
                placed = 1
            else:
                line.text, placed = candidate, placed + 1
        return lines

    def _word(self, i: int) -> str:
        token = self.tokens[i]
        if token.type == "STRING":
            return quote(unquote(str(token)))
        return str(token)

    def _rule(self, rule: ast.Rule, first: int, last: int) -> list:
        header = f"rule {rule.id}" + (f" {quote(rule.title)}" if rule.title else "") + ":"
        starts = iter(self._clause_starts(first, last))
        units: list = [_Line(0, header, first)]
        if rule.effective is not None:
            units.append(_Line(INDENT, _effective_text(rule.effective), next(starts)))
        units.append(_Line(INDENT, "on " + self._on(rule.on), next(starts)))
        if rule.when is not None:
            units.append(self._when(rule.when, next(starts)))
        clause_starts = [next(starts) for _ in rule.unless]
        confirm_start = next(starts) if rule.confirm else None
        amount_start = next(starts)
        ends = clause_starts[1:] + [confirm_start if confirm_start is not None else amount_start]
        for window, start, end in zip(rule.unless, clause_starts, ends):
            units.append(_Line(INDENT, "unless " + self._window(window, start, end), start))
        if confirm_start is not None:
            units.append(_Line(INDENT, "confirm", confirm_start))
        units.append(_Line(INDENT, _amount_text(rule), amount_start))
        return units

    # -- metrics, monthly rules, caps (issue 3)
    def _keyword_starts(self, first: int, last: int, kinds) -> list[int]:
        """Indices of tokens of `kinds` between first and last, outside brackets and parentheses."""
        starts, depth = [], 0
        for i in range(first, last + 1):
            kind = self.tokens[i].type
            if kind in _OPEN:
                depth += 1
            elif kind in _CLOSE:
                depth -= 1
            elif depth == 0 and kind in kinds:
                starts.append(i)
        return starts

    def _metric(self, m: ast.Metric, first: int, last: int) -> list:
        head = f"metric {m.name}" + (f" {quote(m.title)}" if m.title else "")
        if m.kind == "ratio":
            return [_Line(0, f"{head} = {m.ratio[0]} / {m.ratio[1]}", first)]
        if m.kind == "fines":
            return [_Line(0, f"{head} = count fines", first)]
        on = self._keyword_starts(first, last, {"ON"})[0]
        agg_start = first + 2  # after `metric NAME`
        for kind in ("STRING", "COLON"):
            if self.tokens[agg_start].type == kind:
                agg_start += 1
        values = ", ".join(self.expr(v) for v in m.values)
        if m.kind == "count":
            agg = "count"
        elif m.kind == "percentile":
            agg = f"percentile {number_text(m.percentile, normalize=False)} {values}"
        else:
            agg = f"{m.kind} {values}"
        units: list = [_Line(0, head + ":", first), _Line(INDENT, agg, agg_start),
                       _Line(INDENT, "on " + self._on(m.on), on)]
        clauses = self._keyword_starts(on + 1, last, {"WHEN", "UNLESS", "WITH", "WAIT"})
        ends = clauses[1:] + [last + 1]
        windows = iter(m.windows)
        for start, end in zip(clauses, ends):
            kind = self.tokens[start].type
            if kind == "WHEN":
                units.append(self._when(m.when, start))
            elif kind in ("UNLESS", "WITH"):
                word, window = next(windows)
                units.append(_Line(INDENT, f"{word} " + self._window(window, start, end), start))
            else:
                w = m.wait
                text = f"wait for {w.event}{self._filter(w.filter)}"
                text += " same " + ", ".join(map(str, w.same)) if w.same else ""
                if w.cap is not None:
                    written = [str(self.tokens[i]) for i in range(start, end) if self.tokens[i].type == "DURATION"]
                    cap = written[-1] if written and parse_duration(written[-1]) == w.cap else duration_text(w.cap)
                    text += f" capped {cap}"
                units.append(_Line(INDENT, text, start))
        return units

    def _monthly(self, rule: ast.MonthlyRule, first: int, last: int) -> list:
        header = f"rule {rule.id}" + (f" {quote(rule.title)}" if rule.title else "") + ":"
        monthly = self._keyword_starts(first, last, {"MONTHLY"})[0]
        units: list = [_Line(0, header, first)]
        if rule.effective is not None:
            units.append(_Line(INDENT, _effective_text(rule.effective),
                               self._keyword_starts(first, monthly, {"EFFECTIVE"})[0]))
        units.append(_Line(INDENT, "monthly", monthly))
        whens = self._keyword_starts(monthly, last, {"WHEN"})
        if rule.when is not None:
            units.append(self._when(rule.when, whens.pop(0)))
        if rule.tiered:
            matching = self._keyword_starts(monthly, last, {"FIRST"})[0]
            units.append(_Line(INDENT, "first matching", matching))
            for tier, start in zip(rule.tiers, whens):
                units.append(_Line(INDENT * 2, f"when {self.expr(tier.when)} {_amount_words(tier.amount)}", start))
        else:
            start = self._keyword_starts(monthly, last, {"AMOUNT_KIND"})[0]
            units.append(_Line(INDENT, _amount_words(rule.tiers[0].amount), start))
        return units

    def _cap(self, cap: ast.Cap, first: int, last: int) -> list:
        return [_Line(0, f"cap fines {cap.text}", first)]

    def _floor(self, floor: ast.Floor, first: int, last: int) -> list:
        return [_Line(0, floor.text, first)]

    def _on(self, on: ast.On) -> str:
        text = str(on.event) + self._filter(on.filter)
        return text + (" per " + ", ".join(map(str, on.per)) if on.per else "")

    def _filter(self, expr: ast.Expr | None) -> str:
        return "" if expr is None else f"[{self.expr(expr)}]"

    def _when(self, expr: ast.Expr, start: int):
        joined = _Line(INDENT, "when " + self.expr(expr), start)
        if not isinstance(expr, ast.BoolOp):
            return joined
        level = strength(expr) + 1  # as `expr_text` places the operands of an and/or
        lines = [_Line(INDENT, "when " + self.expr(expr.operands[0], level), start)]
        for operand in expr.operands[1:]:
            at = self._operator_before(operand)
            if at is None or at <= lines[-1].start:
                return joined
            lines.append(_Line(CONTINUATION, f"{expr.op} {self.expr(operand, level)}", at))
        return _Breakable(lines, joined)

    def _operator_before(self, operand: ast.Expr) -> int | None:
        """Index of the `and`/`or` keyword in front of an operand (skipping its parentheses)."""
        i = self.at(_first_pos(operand))
        while i > 0 and self.tokens[i - 1].type == "LPAR":
            i -= 1
        return i - 1 if i > 0 and self.tokens[i - 1].type in ("AND", "OR") else None

    def _window(self, window: ast.Window, first: int, end: int) -> str:
        text = f"at least {window.count} " if window.count != 1 else ""
        text += str(window.event) + self._filter(window.filter)
        if window.same:
            text += " same " + ", ".join(map(str, window.same))
        d1, d2 = self._window_durations(window, first, end)
        return text + {"within": f" within {d2}", "range": f" within {d1}..{d2}",
                       "within_before": f" within {d2} before", "before": " before",
                       "after": " after", "same_day": " same day"}[window.kind]

    def _window_durations(self, window: ast.Window, first: int, end: int) -> tuple[str | None, str | None]:
        """The window's durations as written: the DURATION tokens outside its filter."""
        written, depth = [], 0
        for i in range(first, end):
            kind = self.tokens[i].type
            depth += (kind in _OPEN) - (kind in _CLOSE)
            if depth == 0 and kind == "DURATION":
                written.append(str(self.tokens[i]))
        wanted = [d for d in (window.d1, window.d2) if d is not None]
        if len(written) != len(wanted) or any(parse_duration(w) != d for w, d in zip(written, wanted)):
            written = [duration_text(d) for d in wanted]
        if window.kind == "range":
            return written[0], written[1]
        return None, (written[0] if written else None)

    def _example(self, example: ast.Example, first: int, last: int) -> list:
        header = f"example {quote(example.title)}" + (f" on {example.day.isoformat()}" if example.day else "") + ":"
        body = []
        for event in example.events:
            fields = ", ".join(f"{name}: {self._literal(value)}" for name, value in event.fields)
            at = self._time_text(event, example.day)
            body.append(_Line(INDENT, f"at {at} {event.type}({fields})", self.at(event.pos) - 1))
        for given in example.given:
            values = ", ".join(f"{name} = {self._literal(value)}" for name, value in given.values)
            body.append(_Line(INDENT, f"given {quote(given.agent)} {values}", self.at(given.pos)))
        lines = [_Line(0, header, first)] + sorted(body, key=lambda line: line.start)
        for expectation in example.expectations:
            lines.append(_Line(INDENT, self._expectation(expectation), self.at(expectation.pos)))
        return lines

    def _time_text(self, event: ast.ExampleEvent, day: date | None) -> str:
        token = self.token(self.at(event.pos))
        if token is not None and token.type in ("DATETIME", "TIME"):
            return str(token)
        if day is not None and event.at.date() == day:  # pragma: no cover - defensive
            return event.at.time().isoformat()
        return event.at.isoformat(sep=" ")  # pragma: no cover - defensive

    def _expectation(self, expectation: ast.Expectation) -> str:
        to = f" to {quote(expectation.agent)}" if expectation.agent is not None else ""
        if expectation.kind == "entry":
            token = self.token(self.at(expectation.pos) + 2)
            money = _squeeze(str(token)) if token is not None and token.type == "MONEY" else ""
            if not money or parse_money(money) != expectation.amount:
                money = money_text(expectation.amount, normalize=False)
            return f"expect {expectation.rule} {money}{to}"
        if expectation.kind == "pending":
            return f"expect {expectation.rule} pending{to}"
        if expectation.kind == "none":
            return f"expect no {expectation.rule}"
        return "expect nothing"

    # -- expressions
    def expr(self, node: ast.Expr, context: int = 0) -> str:
        """`node` as text (`unparse.expr_text`), its literals spelt as in the source."""
        return expr_text(node, context, self._literal)

    def _literal(self, literal: ast.Literal) -> str:
        """A number, amount, duration or percentage as written (whitespace removed: `3 元` →
        `3元`); strings re-escaped; the canonical spelling if the token is not found."""
        token = self.token(self.index.get((literal.pos.line, literal.pos.column), -1))
        if token is not None and token.type == _LITERAL_TOKENS.get(literal.type):
            return _squeeze(str(token))
        return literal_text(literal, normalize=False)


# ---------------------------------------------------------------- text of values

def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _effective_text(effective: ast.Effective) -> str:
    until = f" until {effective.until.isoformat()}" if effective.until else ""
    return f"effective {effective.start.isoformat()}{until}"


def _amount_text(rule: ast.Rule) -> str:
    to = " to " + ", ".join(map(str, rule.recipients)) if rule.recipients else ""
    return f"{_amount_words(rule.amount)}{to}"


def _amount_words(amount: ast.Amount) -> str:
    """`fine 6元 then 12元 points 6分`, `bonus 1% of amount`, `points 6分` (points only)."""
    text = re.sub(r"\s+", " ", amount.text).strip()
    if amount.points and not amount.money and not amount.steps:
        return text
    return f"{amount.kind} {text}"


def _first_pos(node: ast.Expr) -> Position:
    """Where an expression's first token is (inside any parentheses around it)."""
    return _first_pos(node.left) if isinstance(node, ast.Compare) else node.pos
