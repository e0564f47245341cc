"""`ledger diff`: a policy edit and what it does to the money.

The working policy (the files under `--policy`) is compared with a base: another
policy file or folder, or the same files at a git revision (default `HEAD`). Both
are evaluated on the same month of events; the result pairs the rule text diff with
the money per employee (应扣 / 减免 / 实扣 / 奖励 as HR sees them), per account, per rule
version and per entry. Entry ids are stable (rule id, trigger event id, recipient), so
entries are matched by id exactly; a renamed rule is paired with its old name.

Both sides go through exactly the statement's path (`period.lifecycle.prepare_policy`:
versions, escalation, monthly rules, roster, adjustments, caps, floors, corrections of
closed months), so the money equals the difference of the two statements to the fen.

`diff_month` returns a `PolicyDiff`, `diff_months` a `MonthsDiff` (data only);
`review.diff_render` turns them into a terminal report, a review comment or JSON.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Sequence

import attrs

from ledger.core.entries import APPLIED, BONUS, FINE, PENDING, TO_CONFIRM, Entry, sort_key
from ledger.core.errors import LedgerError, PolicyError
from ledger.core.money import ZERO, total
from ledger.core.month import Month
from ledger.evaluate.caps import employee_key, owed
from ledger.lang import load as policy_load
from ledger.lang.policy import Policy
from ledger.outputs import report
from ledger.period import close
from ledger.period import lifecycle


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
class EmployeeChange:
    """One employee as HR sees the month (all accounts of one 工号 together; an account
    not in the roster is its own employee): 应扣 before caps, 减免 by caps and floors,
    实扣 = 应扣 − 减免, 奖励, 净额 = 奖励 − 实扣."""

    employee: str  # 工号, or the account
    name: str  # 姓名 from the roster, "" without one
    accounts: tuple[str, ...]
    owed: Delta
    relieved: Delta
    deducted: Delta
    bonuses: Delta

    @property
    def net(self) -> Delta:
        return Delta(self.bonuses.before - self.deducted.before, self.bonuses.after - self.deducted.after)

    @property
    def changed(self) -> bool:
        return bool(self.owed.change or self.deducted.change or self.bonuses.change)


@attrs.frozen
class RuleChange:
    """One version of a rule (rule id + effective) in either policy.
    `status`: kept | added | removed | renamed (`old_id` then names it in the base) | redated
    (the same rule text under a new `effective` period, e.g. the old version of a rule split in
    two: `old_effective` then gives the base's period, "" for always in force)."""

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
    effective: str = ""  # the version's `effective` as written, "" when always in force
    old_id: str | None = None  # a renamed rule's id in the base
    old_effective: str | None = None  # a redated version's period in the base

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
    employees: tuple[EmployeeChange, ...] = ()  # as HR sees them, by 工号 / account
    owed: Delta = Delta(ZERO, ZERO)  # 应扣 before caps and floors
    relieved: Delta = Delta(ZERO, ZERO)  # 减免 by caps and floors
    to_confirm: tuple[int, int] = (0, 0)  # lines awaiting confirmation (待复核) before, after
    renamed: tuple[tuple[Entry, Entry], ...] = ()  # (base, working) entries of a renamed rule, same money
    events_in_month: int = 0
    closed: bool = False  # the month is closed: the change lands as 上月更正 in `lands_in`
    lands_in: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def text_changed(self) -> bool:
        return bool(self.files)

    @property
    def money_changed(self) -> bool:
        """Does anyone's pay change? (A renamed rule moves money between rules, not agents.)"""
        return any(a.changed for a in self.agents) or any(e.changed for e in self.employees)

    @property
    def moved(self) -> Decimal:
        """Money that changes hands: Σ over employees of |净额 change| (what `--fail-over` compares)."""
        return total(abs(e.net.change) for e in self.employees)

    @property
    def rules_moved(self) -> bool:
        return any(r.total.change for r in self.rules)


@attrs.frozen
class MonthsDiff:
    """`ledger diff --months A..B`: one PolicyDiff per month, the text diff once."""

    months: tuple[PolicyDiff, ...]

    @property
    def fines(self) -> Delta:
        return Delta(total(d.fines.before for d in self.months), total(d.fines.after for d in self.months))

    @property
    def bonuses(self) -> Delta:
        return Delta(total(d.bonuses.before for d in self.months), total(d.bonuses.after for d in self.months))

    @property
    def net(self) -> Delta:
        return Delta(self.bonuses.before - self.fines.before, self.bonuses.after - self.fines.after)

    @property
    def moved(self) -> Decimal:
        return total(d.moved for d in self.months)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for d in self.months for w in d.warnings)


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


def diff_month(month: str, *, policy_paths: list[Path], events_root: Path, base: str = "HEAD",
               roster=None, adjustments_root: Path | None = None, out_dir: Path | None = None) -> PolicyDiff:
    """Evaluate the base and the working policy on the same month of events and compare.

    `base` is an existing policy file or folder, else a git revision of the files under
    `policy_paths`. `roster` (inputs.roster.Roster), `adjustments_root` and `out_dir` (where
    closed months are found) are those of `ledger run`: both sides go the statement's path.
    Raises LedgerError (exit 2) for a bad base, PolicyError when either policy has errors,
    LedgerError (exit 3) when there are no events, AdjustmentError when an adjustments line
    names an entry one side does not make (that statement would fail the same way).
    """
    return diff_months([month], policy_paths=policy_paths, events_root=events_root, base=base, roster=roster,
                       adjustments_root=adjustments_root, out_dir=out_dir).months[0]


def diff_months(months: Sequence[str], *, policy_paths: list[Path], events_root: Path, base: str = "HEAD",
                roster=None, adjustments_root: Path | None = None, out_dir: Path | None = None) -> MonthsDiff:
    """`diff_month` for several months: both policies are read once."""
    months_ = [Month.parse(m) for m in months]
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
    label = ", ".join(p.as_posix() for p in policy_paths)
    return _diff_sides(months_, base_side, working, label, events_root=events_root, roster=roster,
                       adjustments_root=adjustments_root, out_dir=out_dir)


def diff_proposal(months: Sequence[str], *, current: Sequence[PolicyFile], proposed: Sequence[PolicyFile],
                  events_root: Path, roster=None, adjustments_root: Path | None = None, out_dir: Path | None = None,
                  current_label: str = "当前规则", proposed_label: str = "修改提案") -> MonthsDiff:
    """`diff_months` for policies given as files in memory: the current policy is the base, a
    proposed edit the working side (the review desk's form: another folder, or a file's text as
    typed). Files pair by `key`; the money goes exactly the statement's path, as above."""
    return _diff_sides([Month.parse(m) for m in months], _Base(current_label, None, tuple(current)),
                       list(proposed), proposed_label, events_root=events_root, roster=roster,
                       adjustments_root=adjustments_root, out_dir=out_dir)


def policy_files_of(paths: Sequence[Path]) -> list[PolicyFile]:
    """The policy files under `paths` (files or folders), each keyed by its name in its folder."""
    return _working_files([Path(p) for p in paths], top=None)


def _diff_sides(months_: Sequence[Month], base_side: _Base, working: list[PolicyFile], label: str, *,
                events_root: Path, roster, adjustments_root, out_dir) -> MonthsDiff:
    old_policy = _checked([(f.name, f.data) for f in base_side.files])
    new_policy = _checked([(f.name, f.data) for f in working])
    side = dict(roster=roster, adjustments_root=Path(adjustments_root) if adjustments_root else None,
                out_dir=Path(out_dir) if out_dir else None)
    files = tuple(_text_diff(base_side.files, working))
    out = []
    for month_ in months_:
        before = lifecycle.prepare_policy(*old_policy, Path(events_root), month_.text, **side)
        after = lifecycle.prepare_policy(*new_policy, Path(events_root), month_.text, **side)
        if after.result.load.n_events == 0:
            raise LedgerError(f"没有可用的事件 (no events): {events_root} 中没有可读取的事件行", exit_code=3)
        d = _compare(before, after, base_side, files, month_.text, label, roster)
        out.append(_closed_month(d, side["out_dir"]) if side["out_dir"] else d)
    return MonthsDiff(tuple(out))


def parse_months(text: str) -> list[str]:
    """"2024-03..2024-05" → the three months; "2024-05" → one; "2024-03,2024-05" → two."""
    out: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if ".." in part:
            first, last = (Month.parse(x.strip()) for x in part.split("..", 1))
            if last.text < first.text:
                raise LedgerError(f"--months {part}: 结束月份早于开始月份 (the range ends before it starts)",
                                  exit_code=2)
            m = first
            while m.text <= last.text:
                out.append(m.text)
                m = Month.parse(f"{m.end_local.year:04d}-{m.end_local.month:02d}")
        elif part:
            out.append(Month.parse(part).text)
    if not out:
        raise LedgerError("--months 需要月份，例如 2024-03..2024-05 (give months)", exit_code=2)
    return sorted(set(out))


def _closed_month(d: PolicyDiff, out_dir: Path) -> PolicyDiff:
    if close.read_record(report.output_paths(out_dir, d.month)["folder"]) is None:
        return d
    lands = lifecycle.next_open_month(out_dir, d.month)
    warnings = list(d.warnings)
    if d.money_changed or d.appeared or d.disappeared or d.changed:
        warnings.append(f"{d.month} 已结账 (closed month)：这个修改会改写已结账月份的明细（净额 {d.net.change:+,.2f}元），"
                        f"已结账的账单不变，差额会作为“上月更正”记入 {lands} (the change rewrites a closed month; "
                        f"it lands in {lands} as corrections)")
    return attrs.evolve(d, closed=True, lands_in=lands, warnings=tuple(warnings))


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

def _compare(before: lifecycle.Period, after: lifecycle.Period, base: _Base, files: tuple[FileDiff, ...],
             month: str, working_label: str, roster) -> PolicyDiff:
    b, a = before.result, after.result
    old = {e.id: e for e in b.entries}
    new = {e.id: e for e in a.entries}
    fines, bonuses = _money(b.entries, FINE), _money(b.entries, BONUS)
    fines_after, bonuses_after = _money(a.entries, FINE), _money(a.entries, BONUS)
    rules, renames = _rules(b, a)
    appeared = [e for i, e in new.items() if i not in old]
    disappeared = [e for i, e in old.items() if i not in new]
    renamed = []
    for old_id, new_id in renames.items():  # the same line under the new name is no news
        gone = {(e.event_id, e.agent, _money_key(e)): e for e in disappeared if e.rule_id == old_id}
        for e in list(appeared):
            match = gone.pop((e.event_id, e.agent, _money_key(e)), None) if e.rule_id == new_id else None
            if match is not None:
                renamed.append((match, e))
                appeared.remove(e)
                disappeared.remove(match)
    owed_b, owed_a = _owed(b.entries), _owed(a.entries)
    warnings = []
    if a.events_in_month == 0:
        warnings.append(f"{month} 没有事件 (no events in {month})：这个月的金额无从比较，请换一个有数据的月份 "
                        f"(nothing to compare on)")
    return PolicyDiff(
        month=month, base_label=base.label, base_commit=base.commit, working_label=working_label,
        files=files,
        agents=_agents(b, a),
        rules=rules,
        appeared=tuple(sorted(appeared, key=sort_key)),
        disappeared=tuple(sorted(disappeared, key=sort_key)),
        changed=tuple(EntryChange(i, old[i], e) for i, e in sorted(new.items(), key=lambda kv: sort_key(kv[1]))
                      if i in old and _money_key(old[i]) != _money_key(e)),
        fines=Delta(fines, fines_after), bonuses=Delta(bonuses, bonuses_after),
        net=Delta(bonuses - fines, bonuses_after - fines_after),
        pending=(_pending(b.entries), _pending(a.entries)),
        employees=_employees(b, a, roster),
        owed=Delta(owed_b, owed_a), relieved=Delta(owed_b - fines, owed_a - fines_after),
        to_confirm=(_count(b.entries, TO_CONFIRM), _count(a.entries, TO_CONFIRM)),
        renamed=tuple(renamed), events_in_month=a.events_in_month, warnings=tuple(warnings),
    )


def _money(entries: Iterable[Entry], kind: str) -> Decimal:
    return total(e.amount for e in entries if e.kind == kind and e.status == APPLIED)


def _owed(entries: Iterable[Entry]) -> Decimal:
    return total(owed(e) for e in entries if e.kind == FINE and e.status == APPLIED)


def _pending(entries: Iterable[Entry]) -> int:
    return _count(entries, PENDING)


def _count(entries: Iterable[Entry], status: str) -> int:
    return sum(1 for e in entries if e.status == status)


def _money_key(e: Entry) -> tuple:
    return (e.kind, e.status, e.amount, e.owed)


def _agents(before, after) -> tuple[AgentChange, ...]:
    old, new = _by(before.entries, "agent"), _by(after.entries, "agent")
    out = []
    for agent in sorted(before.agents | after.agents | old.keys() | new.keys()):
        f = Delta(_money(old.get(agent, ()), FINE), _money(new.get(agent, ()), FINE))
        b = Delta(_money(old.get(agent, ()), BONUS), _money(new.get(agent, ()), BONUS))
        out.append(AgentChange(agent, f, b, Delta(b.before - f.before, b.after - f.after)))
    return tuple(out)


def _employees(before, after, roster) -> tuple[EmployeeChange, ...]:
    by_account = roster.by_account() if roster is not None else {}
    groups: dict[str, tuple[list[Entry], list[Entry], set[str]]] = {}
    for side, result in ((0, before), (1, after)):
        for agent in result.agents:
            groups.setdefault(employee_key(agent, by_account), ([], [], set()))[2].add(agent)
        for e in result.entries:
            g = groups.setdefault(employee_key(e.agent, by_account), ([], [], set()))
            g[side].append(e)
            g[2].add(e.agent)
    out = []
    for key in sorted(groups):
        old, new, accounts = groups[key]
        emp = by_account.get(next(iter(accounts))) if accounts else None
        owed_ = Delta(_owed(old), _owed(new))
        deducted = Delta(_money(old, FINE), _money(new, FINE))
        out.append(EmployeeChange(
            key, emp.name if emp is not None else "", tuple(sorted(accounts)), owed_,
            Delta(owed_.before - deducted.before, owed_.after - deducted.after), deducted,
            Delta(_money(old, BONUS), _money(new, BONUS))))
    return tuple(out)


def _by(entries: Iterable[Entry], field: str) -> dict[str, list[Entry]]:
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(getattr(e, field), []).append(e)
    return groups


def _versions(policy: Policy) -> dict[tuple[str, str], object]:
    """(rule id, effective as written) → the rule or monthly rule; in policy order."""
    out: dict[tuple[str, str], object] = {}
    for r in list(policy.rules) + list(policy.monthly):
        out.setdefault((r.id.value, str(r.effective) if r.effective else ""), r)
    return out


def _version_of(policy: Policy) -> dict[str, tuple[str, str]]:
    """rule location (file:line) → its version key."""
    return {f"{r.pos.filename}:{r.pos.line}": (r.id.value, str(r.effective) if r.effective else "")
            for r in list(policy.rules) + list(policy.monthly)}


def _amount_of(r) -> tuple[str, str]:
    if hasattr(r, "tiers"):
        return r.tiers[0].amount.kind, "月度 " + " / ".join(t.amount.text for t in r.tiers)
    return r.amount.kind, r.amount.text


def _rules(before, after) -> tuple[tuple[RuleChange, ...], dict[str, str]]:
    """One row per rule version (and per group of lines from no rule: 人工调整, 上月更正);
    and the renames found: base id → working id."""
    old_rules, new_rules = _versions(before.policy), _versions(after.policy)
    loc_old, loc_new = _version_of(before.policy), _version_of(after.policy)

    def grouped(entries, locations) -> dict[tuple[str, str], list[Entry]]:
        out: dict[tuple[str, str], list[Entry]] = {}
        for e in entries:
            out.setdefault(locations.get(e.rule_location, (e.rule_id, "")), []).append(e)
        return out

    old, new = grouped(before.entries, loc_old), grouped(after.entries, loc_new)
    for key, es in old.items():  # lines from no rule keep a row
        if key not in old_rules:
            old_rules[key] = es[0]
    for key, es in new.items():
        if key not in new_rules:
            new_rules[key] = es[0]
    renames = _renames(before.policy, after.policy, old, new)
    into = {v: k for k, v in renames.items()}
    redated = _redated(old_rules, new_rules)
    out = []
    for key in _rule_order(list(old_rules), list(new_rules), renames):
        rid, eff = key
        in_old, in_new = key in old_rules, key in new_rules
        old_key = key
        if key in redated.values() and not in_new:
            continue  # shown on the row of its new period
        if key in redated:
            old_key = redated[key]
        elif rid in into and not in_old:
            old_key = (into[rid], eff)
        elif rid in renames and (renames[rid], eff) in new_rules:
            continue  # shown on the row of its new name
        rule = new_rules.get(key) or old_rules[old_key]
        present_old = old_key in old_rules
        status = "kept" if present_old and in_new else ("added" if in_new else "removed")
        if old_key != key and present_old:
            status = "redated" if key in redated else "renamed"
        es_old, es_new = old.get(old_key, []), new.get(key, [])
        kind, _ = _amount_of(rule) if not isinstance(rule, Entry) else (rule.kind, "")
        out.append(RuleChange(
            rule_id=rid, status=status, title=(rule.rule_title if isinstance(rule, Entry) else rule.title) or rid,
            kind=kind,
            amount_before=_text_of(old_rules.get(old_key)), amount_after=_text_of(new_rules.get(key)),
            count_before=_count(es_old, APPLIED), count_after=_count(es_new, APPLIED),
            pending_before=_pending(es_old), pending_after=_pending(es_new),
            total=Delta(total(e.amount for e in es_old if e.status == APPLIED),
                        total(e.amount for e in es_new if e.status == APPLIED)),
            effective=eff, old_id=old_key[0] if status == "renamed" else None,
            old_effective=old_key[1] if status == "redated" else None,
        ))
    return tuple(out), renames


_EFFECTIVE_LINE = re.compile(r"^[ \t]*effective[^\n]*\n", re.M)


def _redated(old_rules: dict, new_rules: dict) -> dict[tuple[str, str], tuple[str, str]]:
    """Working version key → base version key, for a base version whose period is gone and a
    working version of the same id, with no base version of its own period, that reads the same
    apart from its `effective` line: the rule kept, with a new period (the usual first half of
    splitting a rule in two with `effective`)."""
    out: dict = {}
    gone = [k for k, r in old_rules.items() if k not in new_rules and not isinstance(r, Entry)]
    for key, rule in new_rules.items():
        if key in old_rules or isinstance(rule, Entry):
            continue
        for old in gone:
            if old[0] == key[0] and old not in out.values() and \
                    _EFFECTIVE_LINE.sub("", old_rules[old].source) == _EFFECTIVE_LINE.sub("", rule.source):
                out[key] = old
                break
    return out


def _text_of(rule) -> str | None:
    if rule is None:
        return None
    return "" if isinstance(rule, Entry) else _amount_of(rule)[1]


def _renames(old_policy: Policy, new_policy: Policy, old: dict, new: dict) -> dict[str, str]:
    """A rule id only in the base and one only in the working policy are a rename when the
    rules read the same apart from the name, or charge the same lines (event, agent, money)."""
    old_ids = {r.id.value: r for r in old_policy.rules}
    new_ids = {r.id.value: r for r in new_policy.rules}
    gone = [i for i in old_ids if i not in new_ids]
    came = [i for i in new_ids if i not in old_ids]

    def lines(groups, rid) -> set:
        return {(e.event_id, e.agent, _money_key(e)) for (r, _), es in groups.items() if r == rid for e in es}

    out: dict[str, str] = {}
    for a in gone:
        for b in came:
            if b in out.values():
                continue
            same_text = _body(old_ids[a].source, a) == _body(new_ids[b].source, b)
            same_lines = lines(old, a) and lines(old, a) == lines(new, b)
            if same_text or same_lines:
                out[a] = b
                break
    return out


def _body(source: str, rid: str) -> str:
    return source.replace(rid, "\x00", 1)


def _rule_order(before: list, after: list, renames: dict | None = None) -> list:
    """Working order; a removed rule goes right after the base rule it followed."""
    renames = renames or {}
    kept = set(after) | {(renames[r], e) for r, e in before if r in renames}
    following: dict[str | None, list[str]] = {}
    anchor = None
    for rid in before:
        if rid in kept or (rid[0] in renames and (renames[rid[0]], rid[1]) in kept):
            anchor = rid if rid in kept else (renames[rid[0]], rid[1])
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


