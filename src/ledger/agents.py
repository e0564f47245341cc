"""Per-agent statements: `reports/<month>/agents/<account>.xlsx`, one per agent, to hand
to the agent for sign-off.

A per-agent file holds only that agent's lines, the rules with that agent's counts and
totals, and a 说明 sheet naming the month, the policy files and the shop statement it
was cut from (by SHA-256), with a line to sign. It never holds another agent's data:

* only entries charged to the agent are in it (summary, detail and rule totals are
  computed from them alone);
* the 说明 sheet lists no event files, counts or warnings of the whole shop;
* the quoted text of the agent's own lines (excerpt, evidence) may still name a
  colleague (「转给小李」) or a buyer who only dealt with colleagues: those names
  are replaced by （其他客服） / （其他买家）. The agent's own names and own buyers stay.

Text was masked for privacy (phones, ID numbers, addresses) before it got here, in
the statement itself (report.statement_of).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import attrs

from . import xlsx
from .engine import NO_AGENT
from .statement import RunInfo, Statement, build

FOLDER = "agents"
OTHER_AGENT = "（其他客服）"
OTHER_BUYER = "（其他买家）"
_UNSAFE_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_MIN_NAME = 2  # sub-account names shorter than this are too common a word to replace


def file_name(agent: str) -> str:
    """A file name for the agent's statement that every OS accepts: `初晴旗舰店_小王.xlsx`."""
    name = _UNSAFE_NAME.sub("_", agent).strip(" .")
    return (name or "agent-" + hashlib.sha256(agent.encode()).hexdigest()[:8]) + ".xlsx"


def file_names(agents: list[str]) -> dict[str, str]:
    """File name per agent; two accounts that would share a name get their hash appended."""
    names = {a: file_name(a) for a in agents}
    taken: dict[str, int] = {}
    for n in names.values():
        taken[n.lower()] = taken.get(n.lower(), 0) + 1
    for a, n in names.items():
        if taken[n.lower()] > 1:
            names[a] = n.removesuffix(".xlsx") + "-" + hashlib.sha256(a.encode()).hexdigest()[:8] + ".xlsx"
    return names


def trie_pattern(names) -> str:
    """A regex matching any of `names`, the longest at the leftmost place (like the
    alternation of the names longest first) but built as a trie, so that a text is
    scanned in time independent of how many names there are (a shop's thousands of
    buyers made the plain alternation the slowest part of writing the agents' files)."""
    trie: dict = {}
    for name in names:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict) -> str:
        branches = [re.escape(ch) + render(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body  # greedy: a longer name first

    return render(trie)


class _Redactor:
    """Finds every agent account, sub-account name and buyer nick in quoted text, once
    per text; each agent's file then replaces the ones that are not its own."""

    def __init__(self, statement: Statement):
        self.owner_of: dict[str, tuple[str, str]] = {}  # name -> ("agent"|"buyer", whose)
        agents = {a.agent for a in statement.agents} | {e.agent for e in statement.entries}
        for a in agents:
            self.owner_of[a] = ("agent", a)
            sub = a.rsplit(":", 1)[-1]
            if sub != a and len(sub) >= _MIN_NAME:
                self.owner_of.setdefault(sub, ("agent", a))
        self.buyers_of: dict[str, set[str]] = {}
        for e in statement.entries:
            if e.buyer:
                self.buyers_of.setdefault(e.buyer, set()).add(e.agent)
                self.owner_of.setdefault(e.buyer, ("buyer", e.buyer))
        self.pattern = re.compile(trie_pattern(self.owner_of)) if self.owner_of else None
        self._found: dict[str, list[re.Match]] = {}

    def text_for(self, text: str | None, agent: str) -> str | None:
        if not text or self.pattern is None:
            return text
        found = self._found.get(text)
        if found is None:
            found = self._found[text] = list(self.pattern.finditer(text))
        if not found:
            return text
        out, last = [], 0
        for m in found:
            kind, whose = self.owner_of[m.group()]
            if kind == "agent":
                keep = whose == agent
            else:
                keep = agent in self.buyers_of.get(whose, ())
            if not keep:
                out += (text[last:m.start()], OTHER_AGENT if kind == "agent" else OTHER_BUYER)
                last = m.end()
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


def agent_statement(statement: Statement, agent: str, redactor: _Redactor | None = None,
                    entries_of: dict | None = None) -> Statement:
    """The part of the statement that concerns `agent` alone (`entries_of`: the
    statement's entries grouped by agent, when writing many)."""
    redactor = redactor or _Redactor(statement)
    mine = (statement.entries if entries_of is None else entries_of.get(agent, ()))
    entries = [attrs.evolve(e, excerpt=redactor.text_for(e.excerpt, agent),
                            evidence=redactor.text_for(e.evidence, agent) or "")
               for e in mine if e.agent == agent]
    rules = [(r.rule_id, r.title, r.location, r.kind, r.amount_text, r.effective) for r in statement.rules]
    info = attrs.evolve(statement.info, event_files=(), ignored_files=(), event_types=(), warnings=(),
                        duplicates_folded=0)
    return build(info, entries, {agent}, rules)


def info_table(info: RunInfo, agent: str, source_name: str, source_sha256: str) -> xlsx.Table:
    rows = [("月份", info.month), ("客服", agent), ("时区", info.timezone),
            ("规则集名称", info.policy_name), ("ledger 版本", info.version),
            ("数据截止", info.data_end or "（无数据）"),
            ("来源账单", source_name), ("来源账单 SHA-256", source_sha256)]
    for n, f in enumerate(info.policy_files, 1):
        rows += [(f"规则文件 {n}", f.path), (f"规则文件 {n} SHA-256", f.sha256)]
    rows += [("说明", "本表只含本人的明细；引用的文字中其他客服、其他买家的名字已隐去，手机号、身份证号、地址已遮盖。"),
             ("客服签字确认", "＿＿＿＿＿＿＿＿"), ("签字日期", "＿＿＿＿＿＿＿＿")]
    return xlsx.Table(xlsx.INFO, xlsx.INFO_HEADER, tuple(rows))


def write_agent_statements(statement: Statement, folder: Path, source: Path) -> dict[str, Path]:
    """Write one workbook per agent into `folder` (agents/ of the month); remove workbooks
    there that belong to no agent of this run. Returns agent -> path."""
    folder = Path(folder)
    source_sha = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    agents = [a.agent for a in statement.agents if a.agent != NO_AGENT]
    names = file_names(agents)
    redactor = _Redactor(statement)
    entries_of: dict[str, list] = {}
    for e in statement.entries:
        entries_of.setdefault(e.agent, []).append(e)
    written: dict[str, Path] = {}
    for agent in agents:
        mine = agent_statement(statement, agent, redactor, entries_of)
        tables = [xlsx.summary_table(mine), *xlsx.detail_tables(mine.entries, xlsx.EXCEL_MAX_ROWS),
                  xlsx.rules_table(mine), info_table(mine.info, agent, Path(source).name, source_sha)]
        path = folder / names[agent]
        xlsx.write_tables(tables, mine.info, path)
        written[agent] = path
    keep = {p.name for p in written.values()}
    if folder.is_dir():
        for old in folder.glob("*.xlsx"):
            if old.name not in keep:
                old.unlink()
    return written
