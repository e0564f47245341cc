"""`ledger diff`: the money impact of a policy edit equals re-running both versions."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ledger.evaluate import engine
from ledger.review.diff import diff_month
from ledger.review.diff_render import render_json, render_markdown, render_text
from ledger.core.entries import APPLIED, FINE
from ledger.core.errors import LedgerError, PolicyError
from ledger.core.display import width as _width
from ledger.core.entries import entry_id

from conftest import n_examples

MONTH = "2024-05"

POLICY = """\
policy "测试店规"
timezone "Asia/Shanghai"

event refund_requested(order, buyer, agent, reason)
event refund_handled(order, agent)
event rating(agent, buyer, score: number)

# 退款30分钟内没有处理。
rule 退款超时 "30分钟内处理退款":
    on refund_requested
    unless refund_handled same order within 30m
    fine 10元

rule 好评 "五星好评":
    on rating[score = 5]
    bonus 5元
"""

EVENTS = [
    # 张三: handled after 1h → fined (exempt once a 2h exemption exists)
    {"id": "r1", "ts": "2024-05-02 10:00:00", "type": "refund_requested", "order": "o1", "buyer": "b1",
     "agent": "张三", "reason": "拍错"},
    {"id": "h1", "ts": "2024-05-02 11:00:00", "type": "refund_handled", "order": "o1", "agent": "张三"},
    # 张三: handled in time → never fined
    {"id": "r2", "ts": "2024-05-03 10:00:00", "type": "refund_requested", "order": "o2", "buyer": "b2",
     "agent": "张三", "reason": "不想要"},
    {"id": "h2", "ts": "2024-05-03 10:10:00", "type": "refund_handled", "order": "o2", "agent": "张三"},
    # 李四: never handled, and handled after 3h → fined twice
    {"id": "r3", "ts": "2024-05-04 10:00:00", "type": "refund_requested", "order": "o3", "buyer": "b3",
     "agent": "李四", "reason": "拍错"},
    {"id": "r4", "ts": "2024-05-05 10:00:00", "type": "refund_requested", "order": "o4", "buyer": "b4",
     "agent": "李四", "reason": "质量问题"},
    {"id": "h4", "ts": "2024-05-05 13:00:00", "type": "refund_handled", "order": "o4", "agent": "李四"},
    {"id": "s1", "ts": "2024-05-06 12:00:00", "type": "rating", "agent": "王五", "buyer": "b5", "score": "5"},
    {"id": "s2", "ts": "2024-05-07 12:00:00", "type": "rating", "agent": "张三", "buyer": "b6", "score": "5"},
    {"id": "s3", "ts": "2024-05-08 12:00:00", "type": "rating", "agent": "李四", "buyer": "b7", "score": "3"},
    # 赵六 has events but no entries
    {"id": "h9", "ts": "2024-05-09 12:00:00", "type": "refund_handled", "order": "o9", "agent": "赵六"},
    # the last event: its deadline is after the data end → pending
    {"id": "r5", "ts": "2024-05-31 23:50:00", "type": "refund_requested", "order": "o5", "buyer": "b8",
     "agent": "李四", "reason": "拍错"},
]


def write_events(folder: Path, events=EVENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "events.jsonl").open("w", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps(event, ensure_ascii=False) + "\n")
    return folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def no_repo(tmp_path, monkeypatch):
    """tmp_path, guaranteed not to be inside a git repository."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    return tmp_path


@pytest.fixture
def events(tmp_path):
    return write_events(tmp_path / "events")


def per_agent_by_rerun(policy: Path, events_root: Path) -> dict[str, Decimal]:
    """The expectation, independent of diff.py: run the month and sum net pay per agent."""
    net: dict[str, Decimal] = defaultdict(Decimal)
    for e in engine.run_month([policy], events_root, MONTH).entries:
        if e.status == APPLIED:
            net[e.agent] += -e.amount if e.kind == FINE else e.amount
    return net


def diff_files(tmp_path: Path, events: Path, old: str, new: str, **kw):
    base = write(tmp_path / "base" / "house.rules", old)
    working = write(tmp_path / "working" / "house.rules", new)
    return diff_month(MONTH, policy_paths=[working], events_root=events, base=str(base), **kw), base, working


# ---------------------------------------------------------------- money

def test_amount_change_equals_rerunning_both_versions(no_repo, events):
    d, base, working = diff_files(no_repo, events, POLICY, POLICY.replace("fine 10元", "fine 15元"))
    before, after = per_agent_by_rerun(base, events), per_agent_by_rerun(working, events)
    agents = {a.agent: a for a in d.agents}
    assert set(agents) == {"张三", "李四", "王五", "赵六"}
    for name, a in agents.items():
        assert a.net.before == before.get(name, 0)
        assert a.net.after == after.get(name, 0)
        assert a.net.change == after.get(name, 0) - before.get(name, 0)
    assert agents["张三"].fines.change == Decimal("5.00")
    assert agents["李四"].fines.change == Decimal("10.00")  # two applied, one pending
    assert agents["王五"].net.change == 0 and agents["赵六"].net.change == 0
    assert d.fines.before == Decimal("30.00") and d.fines.after == Decimal("45.00")
    assert d.net.change == Decimal("-15.00")
    assert isinstance(d.net.change, Decimal)
    rule = {r.rule_id: r for r in d.rules}["退款超时"]
    assert (rule.amount_before, rule.amount_after) == ("10元", "15元")
    assert (rule.count_before, rule.count_after, rule.pending_after) == (3, 3, 1)
    assert rule.total.change == Decimal("15.00")
    assert not d.appeared and not d.disappeared
    assert len(d.changed) == 3 and all(c.after.amount == Decimal("15.00") for c in d.changed)
    assert d.money_changed and d.text_changed
    assert [line for line in d.files[0].lines if line[:1] in "+-" and line[:3] not in ("+++", "---")] == \
        ["-    fine 10元", "+    fine 15元"]


def test_new_exemption_makes_entries_disappear(no_repo, events):
    exempt = POLICY.replace("    fine 10元", "    unless refund_handled same order within 2h\n    fine 10元")
    d, base, _ = diff_files(no_repo, events, POLICY, exempt)
    r1 = entry_id("退款超时", "r1", "张三")
    assert [e.id for e in d.disappeared] == [r1]
    assert d.disappeared[0].rule_location == f"{base.as_posix()}:9"
    assert not d.appeared and not d.changed
    agents = {a.agent: a for a in d.agents}
    assert agents["张三"].fines.change == Decimal("-10.00")
    assert agents["李四"].fines.change == 0
    text = render_text(d)
    assert r1 in text and "消失的条目" in text and "-10.00" in text


def test_renamed_rule_is_shown_as_a_rename(no_repo, events):
    d, _, _ = diff_files(no_repo, events, POLICY, POLICY.replace("rule 退款超时", "rule 退款处理超时"))
    rules = [(r.rule_id, r.status, r.old_id) for r in d.rules]
    assert rules == [("退款处理超时", "renamed", "退款超时"), ("好评", "kept", None)]
    pairs = {(a.id, b.id) for a, b in d.renamed}
    assert pairs == {(entry_id("退款超时", e, who), entry_id("退款处理超时", e, who))
                     for e, who in [("r1", "张三"), ("r3", "李四"), ("r4", "李四"), ("r5", "李四")]}
    assert not d.appeared and not d.disappeared
    # Nobody's pay moves: the fines only change name.
    assert not d.money_changed
    text = render_text(d)
    assert "金额没有变化 (no change in money)" in text and "改名自 退款超时" in text
    renamed = d.rules[0]
    assert renamed.total.before == renamed.total.after == Decimal("30.00")


def test_a_rule_given_a_period_is_the_same_row_redated_and_a_changed_one_is_not(no_repo, events):
    dated = POLICY.replace("    on refund_requested", "    effective 2024-05-01 until 2024-05-03\n    on refund_requested")
    split = dated.replace('rule 好评', 'rule 退款超时 "30分钟内处理退款":\n    effective 2024-05-04\n'
                          '    on refund_requested\n    fine 12元\n\nrule 好评')
    d, _, _ = diff_files(no_repo, events, POLICY, split)
    rows = [(r.rule_id, r.effective, r.status, r.old_effective) for r in d.rules]
    assert rows == [("退款超时", "2024-05-01 起，至 2024-05-03 止", "redated", ""),
                    ("退款超时", "2024-05-04 起", "added", None), ("好评", "", "kept", None)]
    redated = d.rules[0]
    assert (redated.count_before, redated.count_after) == (3, 1)  # r1 (05-02) stays in its period
    assert "（生效期间改过，原为 不限 period changed）" in render_markdown(d)
    assert json.loads(render_json(d))["months"][0]["rules"][0]["old_effective"] == ""
    # the amount changed as well: not the same rule text, so a version removed and one added
    d, _, _ = diff_files(no_repo, events, POLICY, dated.replace("fine 10元", "fine 11元"))
    assert [(r.status, r.effective) for r in d.rules][:2] == [("removed", ""), ("added", "2024-05-01 起，至 2024-05-03 止")]


def test_identical_policies_say_no_change(no_repo, events):
    d, _, _ = diff_files(no_repo, events, POLICY, POLICY)
    assert not d.files and not d.appeared and not d.disappeared and not d.changed
    assert not d.money_changed
    for out in (render_text(d), render_markdown(d)):
        assert "金额没有变化 (no change in money)" in out
        assert "规则文本没有变化" in out


def test_added_and_removed_files_in_a_folder(no_repo, events):
    rules, extra = POLICY.split("rule 好评")
    write(no_repo / "old" / "main.rules", POLICY)
    write(no_repo / "new" / "main.rules", rules)
    write(no_repo / "new" / "sub" / "bonus.rules", "rule 好评" + extra)
    d = diff_month(MONTH, policy_paths=[no_repo / "new"], events_root=events, base=str(no_repo / "old"))
    assert [(f.status, f.base_name is None, f.working_name is None) for f in d.files] == \
        [("modified", False, False), ("added", True, False)]
    assert d.files[1].lines[1] == "+++ working/sub/bonus.rules"
    assert not d.money_changed  # the bonus rule moved to its own file


# ---------------------------------------------------------------- base as a git revision

@pytest.fixture
def repo(tmp_path):
    """A repo with two commits of policy/house.rules (10元, then 12元) and 15元 in the working tree."""
    top = tmp_path / "repo"
    top.mkdir()
    git(top, "init", "-q")
    policy = write(top / "policy" / "house.rules", POLICY)
    git(top, "add", ".")
    git(top, "commit", "-q", "-m", "10元")
    first = git(top, "rev-parse", "HEAD")
    write(policy, POLICY.replace("fine 10元", "fine 12元"))
    git(top, "commit", "-q", "-am", "12元")
    write(policy, POLICY.replace("fine 10元", "fine 15元"))
    return top, first


def test_base_head_in_a_repo(repo, events):
    top, _ = repo
    d = diff_month(MONTH, policy_paths=[top / "policy"], events_root=events)
    assert d.base_label == "HEAD" and d.base_commit == git(top, "rev-parse", "HEAD")
    assert d.files[0].base_name == "HEAD:policy/house.rules"
    assert d.files[0].lines[:2] == ("--- base/policy/house.rules", "+++ working/policy/house.rules")
    assert {a.agent: a.fines.change for a in d.agents}["张三"] == Decimal("3.00")
    assert d.changed[0].before.rule_location == "HEAD:policy/house.rules:9"


def test_base_older_commit_and_relative_revision(repo, events):
    top, first = repo
    for base in (first, "HEAD~1"):
        d = diff_month(MONTH, policy_paths=[top / "policy" / "house.rules"], events_root=events, base=base)
        assert {a.agent: a.fines.change for a in d.agents}["李四"] == Decimal("10.00")
        assert d.files[0].base_name == f"{base}:policy/house.rules"


def test_policy_path_relative_to_cwd(repo, events, monkeypatch):
    top, _ = repo
    monkeypatch.chdir(top / "policy")
    d = diff_month(MONTH, policy_paths=[Path(".")], events_root=events, base="HEAD")
    assert d.files[0].base_name == "HEAD:policy/house.rules"
    assert d.fines.change == Decimal("9.00")


def test_unknown_revision_is_exit_2(repo, events):
    top, _ = repo
    with pytest.raises(LedgerError) as info:
        diff_month(MONTH, policy_paths=[top / "policy"], events_root=events, base="no-such-rev")
    assert info.value.exit_code == 2
    assert "no-such-rev" in str(info.value) and "\n" not in str(info.value)


def test_not_a_repository_is_exit_2(no_repo, events):
    policy = write(no_repo / "policy" / "house.rules", POLICY)
    with pytest.raises(LedgerError) as info:
        diff_month(MONTH, policy_paths=[policy], events_root=events)
    assert info.value.exit_code == 2
    assert "不是 git 仓库" in str(info.value) and "--base" in str(info.value)


def test_base_with_errors_raises_policy_error_naming_the_revision(repo, events):
    top, _ = repo
    write(top / "policy" / "house.rules", POLICY.replace("fine 10元", "fine 10"))
    git(top, "commit", "-q", "-am", "broken")
    write(top / "policy" / "house.rules", POLICY)
    with pytest.raises(PolicyError) as info:
        diff_month(MONTH, policy_paths=[top / "policy"], events_root=events)
    assert info.value.exit_code == 1
    assert "HEAD:policy/house.rules:" in str(info.value)


def test_working_with_errors_raises_policy_error(no_repo, events):
    with pytest.raises(PolicyError):
        diff_files(no_repo, events, POLICY, POLICY.replace("on rating", "on ratings"))


def test_no_events_is_exit_3(no_repo):
    empty = no_repo / "empty"
    empty.mkdir()
    with pytest.raises(LedgerError) as info:
        diff_files(no_repo, empty, POLICY, POLICY)
    assert info.value.exit_code == 3


# ---------------------------------------------------------------- rendering

def test_text_tables_align_with_chinese_names(no_repo, events):
    d, _, _ = diff_files(no_repo, events, POLICY, POLICY.replace("fine 10元", "fine 15元"))
    text = render_text(d)
    lines = text.splitlines()
    start = lines.index("每个账号 (per account), 元:") + 1
    table = lines[start:start + 1 + len(d.agents)]
    assert len({_width(line) for line in table}) == 1
    assert any(line.startswith("  张三") and "+5.00" in line for line in table)
    assert "10元 → 15元" in text
    assert "+    fine 15元" in text
    assert "合计 (total): 实扣 30.00 → 45.00（+15.00）" in text


def test_markdown_has_diff_block_and_tables(no_repo, events):
    d, _, _ = diff_files(no_repo, events, POLICY, POLICY.replace("fine 10元", "fine 15元"))
    md = render_markdown(d)
    assert "```diff\n--- base/house.rules\n+++ working/house.rules\n" in md
    assert "-    fine 10元\n+    fine 15元" in md
    assert "| 客服 (agent) | 罚款 之前 |" in md
    assert "| 张三 | 10.00 | 15.00 | +5.00 |" in md
    assert "| 退款超时 | 罚款 | 10元 → 15元 |" in md


def test_markdown_caps_entry_lists_and_keeps_the_full_list_collapsed(no_repo, events):
    d, _, _ = diff_files(no_repo, events, POLICY, POLICY.replace("fine 10元", "fine 15元"))
    md = render_markdown(d, limit=1)
    assert "…及另外 2 条" in md
    assert "<details><summary>全部 (all) 3 条</summary>" in md and "</details>" in md
    assert md.count(f"- `{d.changed[0].id}`") == 2  # shown, and in the full list
    assert all(f"- `{c.id}`" in md for c in d.changed)



# ---------------------------------------------------------------- property

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2)


@settings(max_examples=n_examples(8), deadline=None)
@given(a=amounts, b=amounts)
def test_total_change_is_amount_change_times_applied_entries(a, b):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events_root = write_events(root / "events")
        d, _, _ = diff_files(root, events_root, POLICY.replace("fine 10元", f"fine {a}元"),
                             POLICY.replace("fine 10元", f"fine {b}元"))
        applied = {r.rule_id: r for r in d.rules}["退款超时"].count_after
        assert applied == 3
        assert d.fines.change == (b - a) * applied
        assert sum((x.fines.change for x in d.agents), Decimal(0)) == (b - a) * applied


def test_a_proposal_held_in_memory_is_compared_with_the_current_policy(tmp_path):
    from ledger.review.diff import PolicyFile, diff_proposal

    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "m.csv").write_text("id,ts,type,agent,sender,text\n"
                                               "m1,2024-05-10 10:00:00,message,店:小王,agent,好\n", encoding="utf-8")
    rules = ('policy "p"\nevent message(agent, sender, text)\n'
             'rule 短 "短语":\n    on message[sender = "agent"]\n    when length(text) < 5\n    fine {}元\n')
    current = [PolicyFile("p.rules", "policy/p.rules", rules.format(10).encode())]
    proposed = [PolicyFile("p.rules", "policy/p.rules", rules.format(25).encode())]
    d = diff_proposal(["2024-05"], current=current, proposed=proposed, events_root=tmp_path / "events").months[0]
    assert (d.fines.before, d.fines.after) == (Decimal("10.00"), Decimal("25.00"))
    assert any(line.startswith("+    fine 25元") for f in d.files for line in f.lines)
