"""Every policy code block of the tutorial checks (issue 14).

A ```-fenced block of docs/policy-language.md whose first line (comments aside) starts with
`policy`, `event`, `rule`, `words` or `metric` must check without errors, read together with
the declarations of the shipped policy (its events, word lists and metrics, minus any the block
declares itself: blocks show rules from the house policy, not beside them). Two fence labels
opt out, on purpose: ```text for a sketch (placeholders, `…`, arrows), ```rules-error for a
deliberate mistake, which must then give at least one error.

A block that starts with `example` is an example of the shipped policy: read together with the
whole shipped policy it must check, and run (`ledger test`) and pass. (The example of
docs/reviewing-policy.md is for the policy as that walkthrough edits it:
tests/review/test_reviewing_doc.py runs it there.)
"""

import contextlib
import io
import os
import re
import shutil
from pathlib import Path

import attrs
import pytest

from ledger.cli import main

from ledger.lang.load import policy_from_bytes
from ledger.review.examples import run_examples

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "policy-language.md").read_text("utf-8")
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)
_STARTS = re.compile(r"(policy|event|rule|words|metric)\b")
_DECLARATION = re.compile(r"^(policy|timezone|effective|event|words|rule|example|metric|cap|floor)\b", re.M)


def policy_blocks():
    for m in _FENCE.finditer(DOC):
        body = m.group(2)
        first = next((line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
        if _STARTS.match(first):
            yield pytest.param(m.group(1).strip(), body, id=f"line{DOC.count(chr(10), 0, m.start()) + 1}")


def declarations_of_the_shipped_policy(skip: set[tuple[str, str]]) -> str:
    """The shipped policy's event, words and metric declarations, minus the (kind, name)s in `skip`."""
    kept = []
    for path in sorted((REPO / "policy").glob("*.rules")):
        text = path.read_text("utf-8")
        starts = [m.start() for m in _DECLARATION.finditer(text)] + [len(text)]
        for a, b in zip(starts, starts[1:]):
            chunk = text[a:b]
            kind, name = re.match(r"(\w+)\s*([^\s(:=\"]*)", chunk).groups()
            if kind in ("event", "words", "metric") and (kind, name) not in skip:
                kept.append(chunk)
    return "".join(kept)


def declared_names(body: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^(event|words|metric)\s+([^\s(:=\"]+)", body, re.M))


def errors_of(body: str):
    context = declarations_of_the_shipped_policy(declared_names(body))
    _, diagnostics, _ = policy_from_bytes([("context.rules", context.encode()), ("doc.rules", body.encode())])
    return [d for d in diagnostics if d.severity == "error"]


def example_blocks():
    for doc in ("policy-language.md",):
        text = (REPO / "docs" / doc).read_text("utf-8")
        for m in _FENCE.finditer(text):
            body = m.group(2)
            if body.lstrip().startswith("example"):
                yield pytest.param(body, id=f"{doc}:{text.count(chr(10), 0, m.start()) + 1}")


def test_the_docs_have_example_blocks():
    assert len(list(example_blocks())) >= 2


@pytest.mark.parametrize("body", list(example_blocks()))
def test_every_example_block_of_the_docs_passes_on_the_shipped_policy(body):
    shipped = [(path.as_posix(), path.read_bytes()) for path in sorted((REPO / "policy").glob("*.rules"))]
    policy, diagnostics, sources = policy_from_bytes(shipped + [("doc.rules", body.encode())])
    errors = [d for d in diagnostics if d.severity == "error"]
    assert errors == [], "\n".join(d.render() for d in errors)
    results = [r for r in run_examples(attrs.evolve(policy, examples=tuple(
        e for e in policy.examples if e.pos.filename == "doc.rules")), sources)]
    assert results and all(r.passed for r in results), [(r.title, r.problem, r.expected, r.got) for r in results]


def test_the_tutorial_has_policy_blocks():
    assert len(list(policy_blocks())) >= 25


@pytest.mark.parametrize("label, body", list(policy_blocks()))
def test_every_policy_block_of_the_tutorial_checks(label, body):
    if label == "text":
        return  # a sketch, marked as such
    errors = errors_of(body)
    if label == "rules-error":
        assert errors, "marked as a deliberate mistake but checks"
    else:
        assert errors == [], "\n".join(d.render() for d in errors)


# ---------------------------------------------------------------- §14: what check prints

_CHECK = re.compile(r"<!-- ledger:check (\S+):(.*?) -->\n```\n(.*?)^```\n", re.S | re.M)
_REPLACE = re.compile(r"`([^`]+)` → `([^`]+)`")


def check_output(tmp_path: Path, file: str, replacements: list[tuple[str, str]]) -> str:
    """`ledger check` on a copy of the shipped policy with the replacements made (each once)."""
    shutil.copytree(REPO / "policy", tmp_path / "policy", ignore=shutil.ignore_patterns("quality"))
    path = tmp_path / file
    text = path.read_text("utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} is not in {file} exactly once"
        text = text.replace(old, new)
    path.write_text(text, "utf-8")
    out, err, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(["check"])
    finally:
        os.chdir(cwd)
    return "$ ledger check\n" + err.getvalue() + out.getvalue()


def replayed_checks():
    for doc in ("policy-language.md", "cli.md"):
        text = (REPO / "docs" / doc).read_text("utf-8")
        for n, m in enumerate(_CHECK.finditer(text)):
            yield pytest.param(doc, n, id=f"{doc}-{n + 1}")


def test_the_docs_have_mistakes_to_replay():
    assert len([p for p in replayed_checks() if p.values[0] == "policy-language.md"]) >= 4


@pytest.mark.parametrize("doc, n", list(replayed_checks()))
def test_the_check_outputs_in_the_docs_are_what_check_prints(tmp_path, doc, n):
    path = REPO / "docs" / doc
    m = list(_CHECK.finditer(path.read_text("utf-8")))[n]
    real = check_output(tmp_path, m.group(1), _REPLACE.findall(m.group(2)))
    if os.environ.get("LEDGER_UPDATE_DOCS"):
        text = path.read_text("utf-8")
        start = text.index(m.group(0))
        head = m.group(0)[:m.group(0).index("```\n") + 4]
        path.write_text(text[:start] + head + real + "```\n" + text[start + len(m.group(0)):], "utf-8")
        return
    assert m.group(3) == real, (f"docs/{doc} is out of date: run "
                                "LEDGER_UPDATE_DOCS=1 python -m pytest -n 0 tests/lang/test_docs_blocks.py")
