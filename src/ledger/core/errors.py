"""Errors as data: every problem a user can cause carries a position and a message.

Problems in policy files are collected into lists of `Diagnostic` (never raised one
at a time), so `ledger check` reports all of them in one pass. `LedgerError` is the
one exception type the CLI turns into a clean message and exit code.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Position:
    """A place in a source file: 1-based line and column."""

    filename: str
    line: int
    column: int
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}"


@attrs.frozen
class Diagnostic:
    """One problem found in a policy file."""

    position: Position
    message: str
    hint: str | None = None  # e.g. "是不是想写 reason？(did you mean 'reason'?)"
    severity: str = "error"  # "error" | "warning"
    source_line: str | None = None

    def render(self) -> str:
        """`file:line:col: message`, then the source line with a caret under the spot."""
        label = "错误" if self.severity == "error" else "警告"
        out = [f"{self.position}: {label}: {self.message}"]
        if self.source_line is not None:
            line = self.source_line.rstrip("\n")
            out.append(f"    {line}")
            out.append("    " + _caret_padding(line, self.position.column) + _carets(line, self.position))
        if self.hint:
            out.append(f"    {self.hint}")
        return "\n".join(out)


def _caret_padding(line: str, column: int) -> str:
    # Keep tabs so the caret lines up, and give wide (CJK) characters two cells.
    pad = []
    for ch in line[: max(column - 1, 0)]:
        pad.append("\t" if ch == "\t" else " " * _width(ch))
    return "".join(pad)


def _carets(line: str, pos: Position) -> str:
    if pos.end_column is None or pos.end_column <= pos.column:
        return "^"
    segment = line[pos.column - 1 : pos.end_column - 1]
    return "^" * max(1, sum(_width(ch) for ch in segment))


def _width(ch: str) -> int:
    import unicodedata

    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


class LedgerError(Exception):
    """A user-facing failure: bad input, bad policy, bad command line.

    `exit_code` is documented in docs/cli.md; the CLI prints `str(self)` and exits.
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None,
                 diagnostics: list[Diagnostic] | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        self.diagnostics = list(diagnostics or [])


class PolicyError(LedgerError):
    """The policy has errors; `diagnostics` holds all of them."""

    exit_code = 1

    def __str__(self) -> str:
        parts = [d.render() for d in self.diagnostics]
        n = sum(1 for d in self.diagnostics if d.severity == "error")
        parts.append(f"规则文件有 {n} 个错误 (policy has {n} error{'s' if n != 1 else ''})")
        return "\n".join(parts)
