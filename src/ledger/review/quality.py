"""The policy's quality on labelled conversations: precision and recall per rule.

`score` runs the policy over labelled chats (labelled.py) exactly as `ledger run` would
run it over exported messages, and compares, per rule, the messages it fined with the
messages a person labelled: agreed fines, wrong fines (given, not labelled) and missed
fines (labelled, not given). Precision = agreed ÷ given, recall = agreed ÷ labelled.
Every disagreement is listed with its file:line, the message and the rule's evidence,
so a supervisor can decide whether the policy or the label is wrong.

The rules scored are the rules triggered by `message` events and any rule a label
names. Windows never end "pending" here: the chats are complete, so the data is taken
to go on for two days after the last message.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import attrs

from ledger.core.display import ljust, rjust
from ledger.core.entries import PENDING
from ledger.core.errors import Diagnostic, LedgerError, Position
from ledger.core.month import Month
from ledger.evaluate import engine
from ledger.lang.load import PolicySource, checked_policy
from ledger.lang.policy import Policy
from ledger.review import labelled

END_OF_DATA = "ledger_data_end"  # an event type no policy declares: it only moves the data end


@attrs.frozen
class RuleScore:
    rule: str
    labelled: int
    given: int
    agreed: int

    @property
    def wrong(self) -> int:
        return self.given - self.agreed

    @property
    def missed(self) -> int:
        return self.labelled - self.agreed

    @property
    def precision(self) -> Decimal | None:
        return _share(self.agreed, self.given)

    @property
    def recall(self) -> Decimal | None:
        return _share(self.agreed, self.labelled)


@attrs.frozen
class Disagreement:
    where: str  # file:line of the message
    conversation: str
    clock: str  # HH:MM:SS
    sender: str
    text: str
    rule: str
    missed: bool  # True: labelled, not given; False: given, not labelled
    evidence: str = ""


@attrs.frozen
class Score:
    rules: tuple[RuleScore, ...]
    disagreements: tuple[Disagreement, ...]
    conversations: int
    messages: int


def _share(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(100) * part / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def scored_rules(policy: Policy) -> list[str]:
    ids = []
    for rule in policy.rules:
        if rule.on is not None and rule.on.event.value == "message" and rule.id.value not in ids:
            ids.append(rule.id.value)
    return ids


def unknown_labels(policy: Policy, conversations: Sequence[labelled.Conversation]) -> list[Diagnostic]:
    known = {r.id.value for r in policy.rules}
    out = []
    for c in conversations:
        for m in c.messages:
            for rule in m.labels:
                if rule not in known:
                    out.append(Diagnostic(Position(c.file, m.line, 1), f"标注了规则里没有的规则 (unknown rule): {rule}"))
    return out


def score(policy: Policy, sources: tuple[PolicySource, ...], conversations: Sequence[labelled.Conversation]) -> Score:
    rules = scored_rules(policy)
    by_month: dict[str, list[labelled.Conversation]] = {}
    for c in conversations:
        by_month.setdefault(f"{c.day:%Y-%m}", []).append(c)
    given: dict[tuple[str, str], str] = {}  # (event id, rule) -> evidence
    for month, group in sorted(by_month.items()):
        with tempfile.TemporaryDirectory(prefix="ledger-score-") as folder:
            path = Path(folder) / "chats.jsonl"
            last = max(m.ts for c in group for m in c.messages)
            with path.open("w", encoding="utf-8") as f:
                for c in group:
                    for event in labelled.events_of(c):
                        f.write(json.dumps(event, ensure_ascii=False) + "\n")
                end = last + timedelta(days=2)
                f.write(json.dumps({"id": "data-end", "ts": f"{end:%Y-%m-%d %H:%M:%S}", "type": END_OF_DATA}) + "\n")
            result = engine.run_policy(policy, sources, Path(folder), Month.parse(month))
        for e in result.entries:
            if e.rule_id in rules and e.status != PENDING and e.event_id:
                given.setdefault((e.event_id, e.rule_id), e.evidence)
    rows, disagreements, n_messages = [], [], 0
    counts = {r: [0, 0, 0] for r in rules}  # labelled, given, agreed
    for c in conversations:
        for m in c.messages:
            if m.sender == "transfer":
                continue
            n_messages += 1
            event_id = c.event_id(m)
            for rule in rules:
                want = rule in m.labels
                got = (event_id, rule) in given
                counts[rule][0] += want
                counts[rule][1] += got
                counts[rule][2] += want and got
                if want != got:
                    disagreements.append(Disagreement(
                        f"{c.file}:{m.line}", c.id, f"{m.ts:%H:%M:%S}", "买家" if m.sender == "buyer" else "客服",
                        m.text, rule, missed=want, evidence=given.get((event_id, rule), "")))
    rows = tuple(RuleScore(r, *counts[r]) for r in rules)
    return Score(rows, tuple(disagreements), len(conversations), n_messages)


def below(result: Score, minimum: Decimal) -> list[str]:
    """Rules whose precision or recall is under `minimum` per cent (undefined: not under)."""
    out = []
    for r in result.rules:
        for name, value in (("precision", r.precision), ("recall", r.recall)):
            if value is not None and value < minimum:
                out.append(f"{r.rule} {name} {value}%")
    return out


def render(result: Score, *, disagreements: bool = True, limit: int | None = None) -> str:
    lines = [f"标注对话 (labelled conversations): {result.conversations} 个会话, {result.messages} 条消息", ""]
    header = ("规则 rule", "标注罚", "规则罚", "一致", "错罚", "漏罚", "精确率 precision", "召回率 recall")
    widths = [14, 6, 6, 6, 6, 6, 16, 14]
    lines.append("  ".join(ljust(h, w) if i == 0 else rjust(h, w) for i, (h, w) in enumerate(zip(header, widths))))
    for r in result.rules:
        cells = (r.rule, str(r.labelled), str(r.given), str(r.agreed), str(r.wrong), str(r.missed),
                 _pct(r.precision), _pct(r.recall))
        lines.append("  ".join(ljust(c, w) if i == 0 else rjust(c, w) for i, (c, w) in enumerate(zip(cells, widths))))
    if disagreements and result.disagreements:
        shown = result.disagreements if limit is None else result.disagreements[:limit]
        lines += ["", f"不一致 (disagreements): {len(result.disagreements)}"]
        for d in shown:
            what = "漏罚 (missed: labelled, not fined)" if d.missed else "错罚 (wrong: fined, not labelled)"
            lines.append(f"{d.where}: {d.rule} {what}")
            lines.append(f"    {d.conversation} {d.clock} {d.sender}：{d.text}")
            if d.evidence:
                lines.append(f"    依据：{d.evidence}")
        if limit is not None and len(result.disagreements) > limit:
            lines.append(f"…… 另有 {len(result.disagreements) - limit} 条 (more)")
    return "\n".join(lines)


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value}%"


def score_command(label_paths: Sequence[Path], policy_paths: Sequence[Path], minimum: Decimal | None,
                  show: bool = True) -> tuple[str, int]:
    """`ledger score`: the report, and 1 when a rule is under `minimum` (else 0)."""
    policy, sources = checked_policy(list(policy_paths))
    conversations, diagnostics = labelled.load(label_paths)
    diagnostics += unknown_labels(policy, conversations)
    if diagnostics:
        raise LedgerError("\n".join([d.render() for d in diagnostics]
                                    + [f"标注文件有 {len(diagnostics)} 个错误 (labelled chats have errors)"]), exit_code=1)
    if not conversations:
        raise LedgerError(f"没有标注对话 (no labelled conversations) in {', '.join(map(str, label_paths))}", exit_code=2)
    result = score(policy, sources, conversations)
    text = render(result, disagreements=show)
    failing = below(result, minimum) if minimum is not None else []
    if failing:
        text += "\n\n低于 " + f"{minimum}% (under the minimum): " + "；".join(failing)
    return text, 1 if failing else 0
