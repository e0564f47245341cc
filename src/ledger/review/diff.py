"""`ledger diff`: a policy edit and what it does to the money.

The working policy (the files under `--policy`) is compared with a base: another
policy file or folder, or the same files at a git revision (default `HEAD`). Both
are evaluated on the same month of events; the result pairs the rule text diff with
the money per agent, per rule and per entry. Entry ids are stable (rule id, trigger
event id, recipient), so entries are matched by id exactly.

`diff_month` returns a `PolicyDiff` (data only); `render_text` and `render_markdown`
turn it into a terminal report and a review comment.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Sequence

import attrs

from ledger.core.display import ljust, rjust, width
from ledger.core.entries import APPLIED, BONUS, FINE, PENDING, Entry, sort_key
from ledger.core.errors import LedgerError, PolicyError
from ledger.core.money import ZERO, total
from ledger.core.month import Month
from ledger.evaluate import engine
from ledger.lang import load as policy_load
from ledger.lang.policy import Policy

LIST_LIMIT = 50  # entries listed per section before "…及另外 N 条"


# ---------------------------------------------------------------- records

@attrs.frozen
class Delta:
    """Money before and after the edit; `change` = after − before."""

    before: Decimal
    after: Decimal

    @property
    def change(self) -> Decimal:
        return self.after - self.before


@attrs.frozen
class FileDiff:
    """The text diff of one policy file. `status`: modified | added | removed."""

    status: str
    base_name: str | None  # display name on the base side, e.g. "HEAD:policy/house-rules.rules"
    working_name: str | None
    lines: tuple[str, ...]  # unified diff lines, without line ends


@attrs.frozen
class AgentChange:
    agent: str
    fines: Delta  # 罚款, positive
    bonuses: Delta  # 奖励, positive
    net: Delta  # 净额 = 奖励 − 罚款

    @property
    def changed(self) -> bool:
        return bool(self.fines.change or self.bonuses.change)


@attrs.frozen
class RuleChange:
    """One rule id in either policy. `status`: kept | added | removed."""

    rule_id: str
    status: str
    title: str
    kind: str  # FINE | BONUS (the working version's when it exists)
    amount_before: str | None  # the amount as written, None when the rule is absent
    amount_after: str | None
    count_before: int  # applied entries
    count_after: int
    pending_before: int
    pending_after: int
    total: Delta  # sum of applied amounts, positive for fines and bonuses alike

    @property
    def changed(self) -> bool:
        return (self.status != "kept" or self.amount_before != self.amount_after
                or self.count_before != self.count_after or self.pending_before != self.pending_after
                or bool(self.total.change))


@attrs.frozen
class EntryChange:
    """The same entry id in both runs with a different amount, status or kind."""

    id: str
    before: Entry
    after: Entry


@attrs.frozen
class PolicyDiff:
    month: str
    base_label: str  # the revision or path as given ("HEAD", "old.rules")
    base_commit: str | None  # full commit id when the base is a git revision
    working_label: str
    files: tuple[FileDiff, ...]  # only files that changed
    agents: tuple[AgentChange, ...]  # every agent in either run, by name
    rules: tuple[RuleChange, ...]  # working order, removed rules next to where they were
    appeared: tuple[Entry, ...]  # in the working run only
    disappeared: tuple[Entry, ...]  # in the base run only
    changed: tuple[EntryChange, ...]
    fines: Delta
    bonuses: Delta
    net: Delta
    pending: tuple[int, int]  # pending entries before, after

    @property
    def text_changed(self) -> bool:
        return bool(self.files)

    @property
    def money_changed(self) -> bool:
        """Does anyone's pay change? (A renamed rule moves money between rules, not agents.)"""
        return any(a.changed for a in self.agents)

    @property
    def rules_moved(self) -> bool:
        return any(r.total.change for r in self.rules)


# ---------------------------------------------------------------- sides

@attrs.frozen
class PolicyFile:
    key: str  # pairs base and working files: path relative to the repo or policy folder
    name: str  # display name used in diagnostics and rule locations
    data: bytes = attrs.field(repr=False)


@attrs.frozen
class _Base:
    label: str
    commit: str | None
    files: tuple[PolicyFile, ...]


def diff_month(month: str, *, policy_paths: list[Path], events_root: Path, base: str = "HEAD") -> PolicyDiff:
    """Evaluate the base and the working policy on the same month of events and compare.

    `base` is an existing policy file or folder, else a git revision of the files under
    `policy_paths`. Raises LedgerError (exit 2) for a bad base, PolicyError when either
    policy has errors, LedgerError (exit 3) when there are no events.
    """
    month_ = Month.parse(month)
    policy_paths = [Path(p) for p in policy_paths]
    policy_load.policy_files(policy_paths)  # a missing working path fails first, with its own message
    if Path(base).exists():
        base_side = _Base(base, None, tuple(_files_in(Path(base))))
        working = _working_files(policy_paths, top=None)
    else:
        top = _git_top(policy_paths[0])
        commit = _git_commit(top, base)
        base_side = _Base(base, commit, tuple(_git_files(top, commit, base, policy_paths)))
        working = _working_files(policy_paths, top=top)
    before = _run(base_side.files, events_root, month_)
    after = _run(working, events_root, month_)
    if after.load.n_events == 0:
        raise LedgerError(f"没有可用的事件 (no events): {events_root} 中没有可读取的事件行", exit_code=3)
    return _compare(before, after, base_side, working, month_.text,
                    ", ".join(p.as_posix() for p in policy_paths))


def _run(files: Sequence[PolicyFile], events_root: Path, month: Month) -> engine.MonthResult:
    policy, sources = _checked([(f.name, f.data) for f in files])
    return engine.run_policy(policy, sources, Path(events_root), month)


def _checked(named: list[tuple[str, bytes]]) -> tuple[Policy, tuple[policy_load.PolicySource, ...]]:
    policy, diagnostics, sources = policy_load.policy_from_bytes(named)
    if any(d.severity == "error" for d in diagnostics):
        raise PolicyError("policy has errors", diagnostics=diagnostics)
    return policy, sources


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"无法读取规则文件 (cannot read policy file) {path}: {exc}", exit_code=2) from None


def _files_in(path: Path) -> list[PolicyFile]:
    """A policy file (keyed by its name) or folder (keyed relative to the folder)."""
    if path.is_dir():
        return [PolicyFile(f.relative_to(path).as_posix(), f.as_posix(), _read(f))
                for f in policy_load.policy_files([path])]
    return [PolicyFile(path.name, path.as_posix(), _read(path))]


def _working_files(paths: Sequence[Path], *, top: Path | None) -> list[PolicyFile]:
    if top is None:
        return [f for p in paths for f in _files_in(p)]
    return [PolicyFile(_relative_to_top(f, top), f.as_posix(), _read(f)) for f in policy_load.policy_files(paths)]


# ---------------------------------------------------------------- git

def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError:  # git not installed: same advice as outside a repository
        return subprocess.CompletedProcess(args, 127, b"", b"")


def _git_top(policy_path: Path) -> Path:
    folder = policy_path if policy_path.is_dir() else policy_path.parent
    done = _git(["rev-parse", "--show-toplevel"], folder.resolve())
    if done.returncode != 0:
        raise LedgerError(f"{policy_path} 不是 git 仓库，请用 --base 指定规则文件 "
                          f"(not a git repository: pass --base FILE)", exit_code=2)
    return Path(done.stdout.decode("utf-8", "replace").strip()).resolve()


def _git_commit(top: Path, rev: str) -> str:
    done = None if rev.startswith("-") else _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], top)
    if done is None or done.returncode != 0:
        raise LedgerError(f"找不到 git 修订版本，也没有这个文件 (unknown revision or path): {rev}", exit_code=2)
    return done.stdout.decode().strip()


def _relative_to_top(path: Path, top: Path) -> str:
    try:
        return path.resolve().relative_to(top).as_posix()
    except ValueError:
        raise LedgerError(f"规则路径不在 git 仓库 {top} 中 (policy path outside the repository): {path}",
                          exit_code=2) from None


def _git_files(top: Path, commit: str, rev: str, paths: Sequence[Path]) -> list[PolicyFile]:
    """The policy files under `paths` as they were at `commit`, shown as `REV:path`."""
    files: list[PolicyFile] = []
    for path in paths:
        rel = _relative_to_top(path, top) or "."
        done = _git(["ls-tree", "-r", "--name-only", "-z", commit, "--", rel], top)
        names = [n for n in done.stdout.decode("utf-8", "replace").split("\0") if n]
        if path.is_dir():
            names = sorted((n for n in names if n.endswith(".rules")), key=str)
        for name in names:
            if any(f.key == name for f in files):
                continue
            shown = _git(["show", f"{commit}:{name}"], top)
            if shown.returncode != 0:
                raise LedgerError(f"无法从 git 读取 (cannot read from git) {rev}:{name}", exit_code=2)
            files.append(PolicyFile(name, f"{rev}:{name}", shown.stdout))
    if not files:
        raise LedgerError(f"修订版本 {rev} 中没有这些规则文件 (no policy files at {rev}): "
                          f"{', '.join(p.as_posix() for p in paths)}", exit_code=2)
    return files


# ---------------------------------------------------------------- comparing

def _compare(before: engine.MonthResult, after: engine.MonthResult, base: _Base,
             working: Sequence[PolicyFile], month: str, working_label: str) -> PolicyDiff:
    old = {e.id: e for e in before.entries}
    new = {e.id: e for e in after.entries}
    fines, bonuses = _money(before.entries, FINE), _money(before.entries, BONUS)
    fines_after, bonuses_after = _money(after.entries, FINE), _money(after.entries, BONUS)
    return PolicyDiff(
        month=month, base_label=base.label, base_commit=base.commit, working_label=working_label,
        files=tuple(_text_diff(base.files, working)),
        agents=_agents(before, after),
        rules=_rules(before, after),
        appeared=tuple(sorted((e for i, e in new.items() if i not in old), key=sort_key)),
        disappeared=tuple(sorted((e for i, e in old.items() if i not in new), key=sort_key)),
        changed=tuple(EntryChange(i, old[i], e) for i, e in sorted(new.items(), key=lambda kv: sort_key(kv[1]))
                      if i in old and _money_key(old[i]) != _money_key(e)),
        fines=Delta(fines, fines_after), bonuses=Delta(bonuses, bonuses_after),
        net=Delta(bonuses - fines, bonuses_after - fines_after),
        pending=(_pending(before.entries), _pending(after.entries)),
    )


def _money(entries: Iterable[Entry], kind: str) -> Decimal:
    return total(e.amount for e in entries if e.kind == kind and e.status == APPLIED)


def _pending(entries: Iterable[Entry]) -> int:
    return sum(1 for e in entries if e.status == PENDING)


def _money_key(e: Entry) -> tuple:
    return (e.kind, e.status, e.amount)


def _agents(before: engine.MonthResult, after: engine.MonthResult) -> tuple[AgentChange, ...]:
    old, new = _by(before.entries, "agent"), _by(after.entries, "agent")
    out = []
    for agent in sorted(before.agents | after.agents | old.keys() | new.keys()):
        f = Delta(_money(old.get(agent, ()), FINE), _money(new.get(agent, ()), FINE))
        b = Delta(_money(old.get(agent, ()), BONUS), _money(new.get(agent, ()), BONUS))
        out.append(AgentChange(agent, f, b, Delta(b.before - f.before, b.after - f.after)))
    return tuple(out)


def _by(entries: Iterable[Entry], field: str) -> dict[str, list[Entry]]:
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(getattr(e, field), []).append(e)
    return groups


def _rules(before: engine.MonthResult, after: engine.MonthResult) -> tuple[RuleChange, ...]:
    old_rules = {r.id.value: r for r in before.policy.rules}
    new_rules = {r.id.value: r for r in after.policy.rules}
    old, new = _by(before.entries, "rule_id"), _by(after.entries, "rule_id")
    out = []
    for rid in _rule_order(list(old_rules), list(new_rules)):
        rule = new_rules.get(rid) or old_rules[rid]
        status = "kept" if rid in old_rules and rid in new_rules else ("added" if rid in new_rules else "removed")
        es_old, es_new = old.get(rid, []), new.get(rid, [])
        out.append(RuleChange(
            rule_id=rid, status=status, title=rule.title or rid, kind=rule.amount.kind,
            amount_before=old_rules[rid].amount.text if rid in old_rules else None,
            amount_after=new_rules[rid].amount.text if rid in new_rules else None,
            count_before=sum(1 for e in es_old if e.status == APPLIED),
            count_after=sum(1 for e in es_new if e.status == APPLIED),
            pending_before=_pending(es_old), pending_after=_pending(es_new),
            total=Delta(total(e.amount for e in es_old if e.status == APPLIED),
                        total(e.amount for e in es_new if e.status == APPLIED)),
        ))
    return tuple(out)


def _rule_order(before: list[str], after: list[str]) -> list[str]:
    """Working order; a removed rule goes right after the base rule it followed,
    so a renamed rule reads as "removed, added" in one place."""
    kept = set(after)
    following: dict[str | None, list[str]] = {}
    anchor = None
    for rid in before:
        if rid in kept:
            anchor = rid
        else:
            following.setdefault(anchor, []).append(rid)
    order = list(following.get(None, []))
    for rid in after:
        order.append(rid)
        order.extend(following.get(rid, []))
    return order


def _text_diff(base: Sequence[PolicyFile], working: Sequence[PolicyFile]) -> list[FileDiff]:
    """Unified diffs of the files that changed. One file on each side is always a pair;
    otherwise files pair by key, and unpaired files are added or removed."""
    if len(base) == 1 and len(working) == 1:
        pairs = [(base[0], working[0])]
    else:
        old = {f.key: f for f in base}
        new = {f.key: f for f in working}
        pairs = [(old.get(k), new.get(k)) for k in [*new, *(k for k in old if k not in new)]]
    out = []
    for a, b in pairs:
        a_lines, b_lines = _lines(a), _lines(b)
        if a_lines == b_lines and a and b:
            continue
        lines = difflib.unified_diff(a_lines, b_lines, fromfile=f"base/{(a or b).key}",
                                     tofile=f"working/{(b or a).key}", lineterm="")
        status = "modified" if a and b else ("added" if b else "removed")
        out.append(FileDiff(status, a.name if a else None, b.name if b else None, tuple(lines)))
    return out


def _lines(f: PolicyFile | None) -> list[str]:
    return [] if f is None else f.data.decode("utf-8-sig").splitlines()


# ---------------------------------------------------------------- rendering helpers






def _yuan(d: Decimal) -> str:
    return f"{(d if d else ZERO):,.2f}"  # never "-0.00"


def _signed(d: Decimal) -> str:
    """A change: explicit + for increases, 0.00 for none."""
    return f"{d:+,.2f}" if d else "0.00"


def _kind(kind: str) -> str:
    return "罚款" if kind == FINE else "奖励"


def _base_title(d: PolicyDiff) -> str:
    return f"{d.base_label} ({d.base_commit[:7]})" if d.base_commit else d.base_label


def _entry_amount(e: Entry) -> str:
    return "待定 (pending)" if e.status == PENDING else f"{_kind(e.kind)} {_yuan(e.amount)}元"


def _entry_row(e: Entry) -> tuple[str, ...]:
    return (e.id, e.rule_id, e.agent, f"{e.ts:%Y-%m-%d %H:%M:%S}", _entry_amount(e), f"事件 {e.event_id}")


def _change_row(c: EntryChange) -> tuple[str, ...]:
    e = c.after
    return (c.id, e.rule_id, e.agent, f"{e.ts:%Y-%m-%d %H:%M:%S}",
            f"{_entry_amount(c.before)} → {_entry_amount(c.after)}", f"事件 {e.event_id}")


def _capped(items: Sequence, limit: int) -> tuple[Sequence, int]:
    return items[:limit], max(len(items) - limit, 0)


def _rule_name(r: RuleChange) -> str:
    mark = {"added": "（新增 added）", "removed": "（删除 removed）"}.get(r.status, "")
    return r.rule_id + mark


def _amount_text(r: RuleChange) -> str:
    if r.status != "kept" or r.amount_before == r.amount_after:
        return r.amount_after or r.amount_before or ""
    return f"{r.amount_before} → {r.amount_after}"


def _no_change(d: PolicyDiff) -> str:
    text = "金额没有变化 (no change in money)"
    if d.rules_moved:
        text += "：每位客服的金额不变，只是记到了不同的规则下 (amounts moved between rules)"
    return text


def _totals_line(d: PolicyDiff) -> str:
    def part(name: str, x: Delta) -> str:
        return f"{name} {_yuan(x.before)} → {_yuan(x.after)}（{_signed(x.change)}）"

    return " · ".join([part("罚款", d.fines), part("奖励", d.bonuses), part("净额", d.net)]) + " 元"


AGENT_HEADER = ("客服 (agent)", "罚款 之前", "罚款 之后", "罚款 变化", "奖励 之前", "奖励 之后", "奖励 变化",
                "净额 之前", "净额 之后", "净额 变化")
RULE_HEADER = ("规则 (rule)", "类型", "金额", "次数 之前", "次数 之后", "合计 之前", "合计 之后", "合计 变化")


def _agent_row(a: AgentChange) -> tuple[str, ...]:
    cells = [a.agent]
    for x in (a.fines, a.bonuses, a.net):
        cells += [_yuan(x.before), _yuan(x.after), _signed(x.change)]
    return tuple(cells)


def _rule_row(r: RuleChange) -> tuple[str, ...]:
    def count(n: int, pending: int, present: bool) -> str:
        return "—" if not present else (f"{n}（待定 {pending}）" if pending else str(n))

    return (_rule_name(r), _kind(r.kind), _amount_text(r),
            count(r.count_before, r.pending_before, r.status != "added"),
            count(r.count_after, r.pending_after, r.status != "removed"),
            _yuan(r.total.before), _yuan(r.total.after), _signed(r.total.change))


# ---------------------------------------------------------------- text

def render_text(d: PolicyDiff, *, limit: int = LIST_LIMIT) -> str:
    """The diff for a terminal: rule text, then money per agent, per rule, per entry, total."""
    out = [f"ledger diff {d.month} · 基准 (base) {_base_title(d)} → 工作区 (working) {d.working_label}", ""]
    out += ["规则文本变化 (rule text):"]
    if d.files:
        for f in d.files:
            out += list(f.lines) or [f"（{f.working_name or f.base_name}：空文件 empty file）"]
    else:
        out.append("  规则文本没有变化 (no change in rule text)")
    out.append("")
    if not d.money_changed:
        out += [_no_change(d), ""]
    out += ["每位客服 (per agent), 元:"]
    out += _table(AGENT_HEADER, [_agent_row(a) for a in d.agents], left=1)
    out += ["", "每条规则 (per rule), 元:"]
    out += _table(RULE_HEADER, [_rule_row(r) for r in d.rules], left=3)
    for title, rows in _entry_sections(d):
        out += ["", title]
        shown, more = _capped(rows, limit)
        out += _table(None, shown, left=len(shown[0]))
        if more:
            out.append(f"  …及另外 {more} 条 (and {more} more)")
    out += ["", f"合计 (total): {_totals_line(d)}"]
    if d.pending[0] != d.pending[1]:
        out.append(f"待定条目 (pending): {d.pending[0]} → {d.pending[1]}")
    return "\n".join(out) + "\n"


def _entry_sections(d: PolicyDiff) -> list[tuple[str, list[tuple[str, ...]]]]:
    """(title, rows) for the non-empty entry lists: id, rule, agent, time, amount, event."""
    sections = [
        (f"新出现的条目 (entries that appear): {len(d.appeared)}", [_entry_row(e) for e in d.appeared]),
        (f"消失的条目 (entries that disappear): {len(d.disappeared)}", [_entry_row(e) for e in d.disappeared]),
        (f"金额或状态变化的条目 (entries changed): {len(d.changed)}", [_change_row(c) for c in d.changed]),
    ]
    return [(title, rows) for title, rows in sections if rows]


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[str]], *, left: int) -> list[str]:
    """Aligned columns: the first `left` columns to the left, numbers to the right."""
    everything = ([header] if header else []) + list(rows)
    widths = [max(width(row[i]) for row in everything) for i in range(len(everything[0]))]

    def line(row: Sequence[str]) -> str:
        cells = [ljust(c, w) if i < left else rjust(c, w) for i, (c, w) in enumerate(zip(row, widths))]
        return ("  " + "  ".join(cells)).rstrip()

    return [line(row) for row in everything]


# ---------------------------------------------------------------- markdown

def render_markdown(d: PolicyDiff, *, limit: int = LIST_LIMIT) -> str:
    """The diff as a review comment: a ```diff block, Markdown tables, capped entry lists."""
    out = [f"### 规则修改的金额影响 (policy diff) · {d.month}", "",
           f"基准 (base) `{_base_title(d)}` → 工作区 (working) `{d.working_label}`", ""]
    out += ["#### 规则文本 (rule text)", ""]
    if d.files:
        body = "\n".join(line for f in d.files for line in f.lines)
        fence = "`" * max(3, _longest_backtick_run(body) + 1)
        out += [f"{fence}diff", body, fence, ""]
    else:
        out += ["规则文本没有变化 (no change in rule text)", ""]
    out += ["#### 金额 (money)", ""]
    out += [f"**合计 (total)**：{_totals_line(d)}", ""]
    if not d.money_changed:
        out += [_no_change(d), ""]
    out += ["#### 每位客服 (per agent)，元", ""]
    out += _md_table(AGENT_HEADER, [_agent_row(a) for a in d.agents], left=1) + [""]
    out += ["#### 每条规则 (per rule)，元", ""]
    out += _md_table(RULE_HEADER, [_rule_row(r) for r in d.rules], left=3) + [""]
    for title, rows in _entry_sections(d):
        out += [f"#### {title}", ""]
        shown, more = _capped(rows, limit)
        out += [f"- `{row[0]}` " + " · ".join(_md_cell(c) for c in row[1:]) for row in shown]
        if more:
            out.append(f"- …及另外 {more} 条 (and {more} more)")
        out.append("")
    if d.pending[0] != d.pending[1]:
        out += [f"待定条目 (pending): {d.pending[0]} → {d.pending[1]}", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int) -> list[str]:
    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(_md_cell(c) for c in row) + " |"

    align = "| " + " | ".join("---" if i < left else "---:" for i in range(len(header))) + " |"
    return [line(header), align] + [line(row) for row in rows]


_MD_SPECIAL = re.compile(r"([\\|*_`<>\[\]])")


def _md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell or list item."""
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)
