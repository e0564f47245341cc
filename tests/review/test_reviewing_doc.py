"""docs/reviewing-policy.md is a real walkthrough, regenerated here so it cannot drift (issue 14).

The walkthrough is replayed in a temporary git repository holding the shipped policy and
roster, with the bundled events: the doc's `<!-- ledger:edit FILE -->` ```diff block is applied
to the committed policy (context and `+` lines; it must match the file exactly once), then the
commands the doc shows are run, and every `<!-- ledger:begin NAME -->…<!-- ledger:end NAME -->`
section must equal what they print. `<!-- ledger:append FILE -->` adds the doc's examples
before the second `ledger test`. `LEDGER_UPDATE_DOCS=1` rewrites the sections instead of
comparing (after a change to the policy or the sample month).

Only the abbreviated commit id of the temporary repository (in the diff's header) is not
compared. `ledger test` runs the examples that name the edited rule and the doc's own; the
others give the results they give on the shipped policy, because the edit only adds a version
of that rule and an example compares only the rules it names (no shipped example says
`expect nothing`; tests/review/test_monthly_examples.py runs them all with --strict).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.cli import main
from ledger.inputs import roster as roster_mod
from ledger.lang.load import checked_policy
from ledger.review.diff import diff_months
from ledger.review.diff_render import render_markdown
from ledger.review.examples import ExampleResult, render_results, run_example, uncovered_versions

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reviewing-policy.md"
MONTH = "2024-05"
RULE = "回复超时"  # the rule the walkthrough edits

_CHANGE = re.compile(r"<!-- ledger:(edit|append) (\S+) -->\n```[a-z]*\n(.*?)^```", re.S | re.M)
_SECTION = re.compile(r"(<!-- ledger:begin (\S+) -->\n)(.*?)(<!-- ledger:end \2 -->)", re.S)
_COMMIT = re.compile(r"HEAD \([0-9a-f]{7,}\)")
_GIT_ENV = {"GIT_AUTHOR_NAME": "ledger", "GIT_AUTHOR_EMAIL": "ledger@example.invalid",
            "GIT_COMMITTER_NAME": "ledger", "GIT_COMMITTER_EMAIL": "ledger@example.invalid",
            "GIT_AUTHOR_DATE": "2024-05-31T18:00:00+08:00", "GIT_COMMITTER_DATE": "2024-05-31T18:00:00+08:00"}


def apply_hunk(text: str, hunk: str) -> str:
    """The file with the hunk applied: its context and `-` lines, in order, must occur exactly
    once; they are replaced by its context and `+` lines."""
    lines = hunk.splitlines()
    assert all(line[:1] in ("", " ", "+", "-") for line in lines), "a diff line starts with ' ', '+' or '-'"
    old = "\n".join(line[1:] for line in lines if line[:1] in ("", " ", "-")) + "\n"
    new = "\n".join(line[1:] for line in lines if line[:1] in ("", " ", "+")) + "\n"
    assert text.count(old) == 1, "the doc's edit does not match the shipped policy (exactly once)"
    return text.replace(old, new)


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def fenced(command: str, output: str) -> str:
    return f"```\n$ {command}\n{output.rstrip()}\n```\n"


def excerpt(marked: list[tuple[bool, str]]) -> str:
    """The lines marked True, with one `…` for every run of lines left out."""
    out: list[str] = []
    for keep, line in marked:
        if keep:
            out.append(line)
        elif not out or out[-1] != "…":
            out.append("…")
    return "\n".join(out)


def explain_event_excerpt(text: str) -> str:
    """The event, and the sections of the edited rule's versions."""
    marked, section = [], "head"
    for line in text.rstrip("\n").splitlines():
        if line.startswith("── "):
            section = "rule" if line.startswith(f"── {RULE}「") else "other"
        marked.append((section != "other", line))
    return excerpt(marked)


def ledger_test_output(policy_dir: Path, *, strict: bool, added: set[str]) -> str:
    """`ledger test [--strict]`: its last lines, and the lines of the examples it ran (those
    naming the edited rule, and the doc's own, titled `added`)."""
    policy, sources = checked_policy([policy_dir])
    assert not any(e.kind == "nothing" for ex in policy.examples for e in ex.expectations)
    results, ran = [], set()
    for ex in policy.examples:
        if ex.title in added or RULE in {e.rule.value for e in ex.expectations if e.rule is not None}:
            results.append(run_example(policy, sources, ex))
            ran.add(results[-1].location)
        else:
            results.append(ExampleResult(ex, True))
    uncovered = uncovered_versions(policy)
    text = render_results(results, uncovered)
    if strict and uncovered and all(r.passed for r in results):
        text += f"\n--strict: {len(uncovered)} 个规则版本没有例子 (rule versions without examples)"
    lines = text.splitlines()
    shown = [(not line.startswith(("✓", "✗")) or line.split()[1] in ran, line) for line in lines]
    return fenced("ledger test" + (" --strict" if strict else ""), excerpt(shown))


def summary(d) -> str:
    m = d.months[0]
    affected = [e for e in m.employees if e.changed]
    who = "、".join(f"{e.employee} {e.name}".strip() for e in affected) or "无"
    moved = f"{d.moved:,.2f}"
    return (f"- （自动生成）这次修改：实扣 {m.fines.before:,.2f} → {m.fines.after:,.2f} 元（{m.fines.change:+,.2f}），"
            f"消失的条目 {len(m.disappeared)} 笔，新出现 {len(m.appeared)} 笔，金额或状态变化 {len(m.changed)} 笔；"
            f"金额有变化的员工 {len(affected)} 人：{who}。\n"
            f"- （自动生成）各员工净额变化的绝对值之和是 {moved} 元：`--fail-over {moved}` 通过，"
            f"比它小的数（比如 `--fail-over {max(Decimal(0), d.moved - 1):,.2f}`）以退出码 8 失败。\n")


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory) -> dict[str, str]:
    doc = DOC.read_text("utf-8")
    changes = {(kind, path): body for kind, path, body in _CHANGE.findall(doc)}
    root = tmp_path_factory.mktemp("walkthrough")
    shutil.copytree(REPO / "policy", root / "policy", ignore=shutil.ignore_patterns("quality"))
    shutil.copy(REPO / "roster.csv", root / "roster.csv")
    (root / "events").symlink_to(REPO / "events")
    env = {**os.environ, **_GIT_ENV}
    for args in (["init", "-q"], ["add", "policy"], ["-c", "commit.gpgsign=false", "commit", "-q", "-m", "店规"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    (edit_path, hunk), = [(p, b) for (k, p), b in changes.items() if k == "edit"]
    (append_path, added), = [(p, b) for (k, p), b in changes.items() if k == "append"]
    target = root / edit_path
    target.write_text(apply_hunk(target.read_text("utf-8"), hunk), "utf-8")
    sections: dict[str, str] = {}
    old_cwd = os.getcwd()
    os.chdir(root)
    try:
        code, out, err = run(["check"])
        assert code == 0, err
        sections["check"] = fenced("ledger check", out)
        assert run(["fmt", "--check"])[0] == 0
        d = diff_months([MONTH], policy_paths=[Path("policy")], events_root=Path("events"), base="HEAD",
                        roster=roster_mod.read(Path("roster.csv")), adjustments_root=Path("adjustments"),
                        out_dir=Path("reports"))
        sections["diff"] = render_markdown(d)
        sections["summary"] = summary(d)
        gone = d.months[0].disappeared[0]
        code, out, err = run(["explain", gone.id, "--month", MONTH])
        assert code != 0 and gone.event_id in err
        sections["explain-entry"] = fenced(f"ledger explain {gone.id} --month {MONTH}", err + f"（退出码 {code}）")
        code, out, err = run(["explain", "--event", gone.event_id, "--month", MONTH])
        assert code == 0, err
        sections["explain-event"] = fenced(f"ledger explain --event {gone.event_id} --month {MONTH}",
                                           explain_event_excerpt(out))
        titles = set(re.findall(r'^example "([^"]+)"', added, re.M))
        sections["test-before"] = ledger_test_output(Path("policy"), strict=False, added=titles)
        target = root / append_path
        target.write_text(target.read_text("utf-8") + "\n" + added, "utf-8")
        sections["test-after"] = ledger_test_output(Path("policy"), strict=True, added=titles)
        assert run(["fmt", "--check"])[0] == 0
    finally:
        os.chdir(old_cwd)
    return sections


def test_the_walkthrough_changes_money_and_leaves_a_version_uncovered_until_its_example(walkthrough):
    assert "（生效期间改过，原为 不限 period changed）" in walkthrough["diff"]
    assert "消失的条目 (entries that disappear)" in walkthrough["diff"]
    assert "没有例子的规则 (rules without examples): 回复超时" in walkthrough["test-before"]
    assert "没有例子的规则 (rules without examples): 无" in walkthrough["test-after"]
    assert "失败 0" in walkthrough["test-after"]


def test_the_doc_shows_what_the_commands_print(walkthrough):
    doc = DOC.read_text("utf-8")
    found = {m.group(2) for m in _SECTION.finditer(doc)}
    assert found == set(walkthrough), "the doc's generated sections and the walkthrough's differ"
    if os.environ.get("LEDGER_UPDATE_DOCS"):
        DOC.write_text(_SECTION.sub(lambda m: m.group(1) + walkthrough[m.group(2)] + m.group(4), doc), "utf-8")
        return
    for m in _SECTION.finditer(doc):
        shown, real = _COMMIT.sub("HEAD (…)", m.group(3)), _COMMIT.sub("HEAD (…)", walkthrough[m.group(2)])
        assert shown == real, (f"docs/reviewing-policy.md section {m.group(2)!r} is out of date: "
                               f"run LEDGER_UPDATE_DOCS=1 python -m pytest {Path(__file__).relative_to(REPO)}")


def test_the_docs_example_passes_on_the_edited_policy(walkthrough):
    assert "✓" in walkthrough["test-after"] and "✗" not in walkthrough["test-after"]
