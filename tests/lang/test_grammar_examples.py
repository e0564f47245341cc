"""The example policies under tests/lang/fixtures/ are part of the language's specification.

* `fixtures/policy/*.rules`: small valid policies, one construct each. Every one must
  parse and check with no diagnostic at all.
* `fixtures/policy-errors/*.rules`: one kind of mistake each. The first line says
  which diagnostic `ledger check` must report first:

      # expect: <line>:<col> <text>

  where <text> must occur in the diagnostic's message or its hint (the 是不是想写 …
  line). A second line `# xfail: <why>` marks a known shortcoming of the checker: the
  test is expected to fail until the checker is fixed (strict, so a fix is noticed and
  the marker removed).

Files are read as `ledger check` reads them (UTF-8, optional BOM).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.lang.check import check
from ledger.lang.syntax import parse

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VALID = sorted((FIXTURES / "policy").glob("*.rules"))
BROKEN = sorted((FIXTURES / "policy-errors").glob("*.rules"))

_EXPECT = re.compile(r"#\s*expect:\s*(\d+):(\d+)\s+(.+?)\s*$")
_XFAIL = re.compile(r"#\s*xfail:\s*(.+?)\s*$")


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig")


def diagnostics_of(path: Path):
    text = read(path)
    pf, diagnostics = parse(text, path.name)
    _, more = check([pf])
    return diagnostics + more


def expectation(path: Path) -> tuple[int, int, str]:
    first = read(path).splitlines()[0]
    m = _EXPECT.fullmatch(first)
    assert m, f"{path.name}: first line must be '# expect: <line>:<col> <text>', not {first!r}"
    return int(m.group(1)), int(m.group(2)), m.group(3)


def broken_params():
    for path in BROKEN:
        lines = read(path).splitlines()
        m = _XFAIL.fullmatch(lines[1]) if len(lines) > 1 else None
        marks = [pytest.mark.xfail(reason=m.group(1), strict=True)] if m else []
        yield pytest.param(path, id=path.stem, marks=marks)


def test_there_are_examples():
    assert len(VALID) >= 7 and len(BROKEN) >= 8


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_example_has_no_diagnostics(path: Path):
    diagnostics = diagnostics_of(path)
    assert diagnostics == [], "\n" + "\n".join(d.render() for d in diagnostics)


@pytest.mark.parametrize("path", list(broken_params()))
def test_broken_example_reports_the_expected_diagnostic_first(path: Path):
    line, column, text = expectation(path)
    diagnostics = diagnostics_of(path)
    shown = "\n".join(d.render() for d in diagnostics) or "(no diagnostics)"
    assert diagnostics, f"{path.name}: expected an error at {line}:{column}, got none"
    first = diagnostics[0]
    assert first.severity == "error", shown
    assert (first.position.line, first.position.column) == (line, column), shown
    said = f"{first.message}\n{first.hint or ''}"
    assert text in said, f"{text!r} not in the message or hint:\n{shown}"
    # The rendered form is what a supervisor sees: file:line:col, the line, a caret.
    rendered = first.render().splitlines()
    assert rendered[0].startswith(f"{path.name}:{line}:{column}: 错误: ")
    assert rendered[1].strip() == read(path).splitlines()[line - 1].strip()
    assert rendered[2].strip().startswith("^")
