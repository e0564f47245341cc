"""Policy text from the AST: the one printer of expressions, literals, durations and money.

`lang.fmt` (the canonical layout of a file) and `review.explain` (the conditions quoted in
an explanation) both write policy text through this module, so a condition reads the same
in both. It imports only `lang.ast`.

* `expr_text(node, context=0, literal=None)`: an expression (`ast.Expr`) with one
  space around operators and after commas, none inside brackets, and parentheses only
  where precedence needs them: a node is parenthesised when its `strength` (or 1 < and 2
  < not 3 < test 4 < operand 5) is below `context`. The text parses back to the same
  expression. Every literal inside it is written by `literal` (default `literal_text`).
* `literal_text(literal, normalize=True)`: a literal in its canonical spelling: `"…"`,
  `true`, `5m`, `10元`, `20%`, `1.5`. `fmt` passes its own `literal` to `expr_text` that
  keeps numbers, amounts and durations as the author spelt them (`5分钟`, `¥10`) and falls
  back to this one.
* `normalize` is the one detail in which the two callers differ, and each keeps its own
  output: `explain` drops a number's trailing zeros (`1.50` → `1.5`, the default), `fmt`
  keeps the digits it was given (`percentile 95.0` stays `95.0`: `normalize=False`).
  Either spelling reads back as the same number.
* `quote(text)`: a string literal, `\\`, `"`, newline and tab escaped (`syntax.unquote`
  reads it back).
* `duration_text(d)`: the largest whole unit (`1d`, `2h`, `90m`), else seconds (`1.5s`,
  `0s`); `syntax.parse_duration` reads it back.
* `number_text(v, normalize=True)`: a Decimal without an exponent (`10`, never `1E+1`);
  any other value as `str(v)`. `money_text` is the same followed by `元`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Callable

from ledger.lang import ast

# How tightly a node binds (`strength`).
_OR, _AND, _NOT, _TEST, _OPERAND = 1, 2, 3, 4, 5


def strength(node: ast.Expr) -> int:
    """or 1 < and 2 < not 3 < test 4 < operand 5: a node inside a place that needs more
    (`expr_text`'s `context`) is parenthesised."""
    if isinstance(node, ast.BoolOp):
        return _OR if node.op == "or" else _AND
    if isinstance(node, ast.Not):
        return _NOT
    if isinstance(node, (ast.Compare, ast.InList, ast.TextTest)):
        return _TEST
    return _OPERAND


def expr_text(node: ast.Expr, context: int = 0,
              literal: Callable[[ast.Literal], str] | None = None) -> str:
    """`node` in the policy language; parenthesised when it binds looser than `context`.
    `literal` writes the literals (default `literal_text`)."""
    literal = literal or literal_text
    text = _bare_text(node, literal)
    return f"({text})" if strength(node) < context else text


def _bare_text(node: ast.Expr, literal: Callable[[ast.Literal], str]) -> str:
    def inner(e: ast.Expr, context: int = 0) -> str:
        return expr_text(e, context, literal)

    if isinstance(node, ast.BoolOp):
        return f" {node.op} ".join(inner(o, strength(node) + 1) for o in node.operands)
    if isinstance(node, ast.Not):
        return "not " + inner(node.operand, _NOT)
    if isinstance(node, ast.Compare):
        return f"{inner(node.left, _OPERAND)} {node.op} {inner(node.right, _OPERAND)}"
    if isinstance(node, ast.InList):
        return f"{inner(node.subject, _OPERAND)} in [{', '.join(inner(v) for v in node.values)}]"
    if isinstance(node, ast.TextTest):
        return f"{inner(node.subject, _OPERAND)} {_text_test_tail(node)}"
    if isinstance(node, ast.Call):
        return f"{node.function}({inner(node.arg)})"
    if isinstance(node, ast.Ref):
        return f"{node.scope}.{node.name}" if node.scope is not None else str(node.name)
    if isinstance(node, ast.Literal):
        return literal(node)
    raise TypeError(f"not an expression: {node!r}")  # pragma: no cover - the AST has no other nodes


def _text_test_tail(node: ast.TextTest) -> str:
    """What follows the subject: `contains "…"`, `matches /…/`, `has any 名`, `only ["…"]`."""
    if node.op == "contains":
        return f"contains {quote(node.operand)}"
    if node.op == "matches":
        return f"matches /{node.operand}/"  # a regex is kept byte for byte
    source = node.operand
    words = str(source.name) if source.name is not None else "[" + ", ".join(quote(w) for w in source.words) + "]"
    return ("has any " if node.op == "has_any" else "only ") + words


def literal_text(literal: ast.Literal, normalize: bool = True) -> str:
    """A literal in its canonical spelling (see the module docstring for `normalize`)."""
    v = literal.value
    if literal.type == "text":
        return quote(v)
    if literal.type == "bool":
        return "true" if v else "false"
    if literal.type == "duration":
        return duration_text(v)
    if literal.type == "money":
        return money_text(v, normalize)
    if literal.type == "percent":
        return f"{number_text(v, normalize)}%"
    return number_text(v, normalize)


def quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def duration_text(d: timedelta) -> str:
    seconds = Decimal(str(d.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{number_text(seconds)}s"


def number_text(v: object, normalize: bool = True) -> str:
    if isinstance(v, Decimal):
        return format(v.normalize() if normalize else v, "f")
    return str(v)


def money_text(v: Decimal, normalize: bool = True) -> str:
    return f"{number_text(v, normalize)}元"
