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

import contextlib
import ctypes
import hashlib
import multiprocessing
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import ahocorasick
import attrs

from ledger.core.entries import NO_AGENT
from ledger.core.errors import LedgerError
from ledger.outputs.outset import pause_point
from ledger.outputs.statement import RunInfo, Statement, build
from ledger.outputs.workbook import cells, sheets, writer

FOLDER = "agents"
OTHER_AGENT = "（其他客服）"
OTHER_BUYER = "（其他买家）"
_UNSAFE_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_MIN_NAME = 2  # sub-account names shorter than this are too common a word to replace


_MAX_NAME_BYTES = 160  # of the name before ".xlsx": file systems allow 255 bytes, temp suffixes need room


def file_name(agent: str) -> str:
    """A file name for the agent's statement that every OS accepts: `初晴旗舰店_小王.xlsx`.
    A name over 160 bytes (UTF-8) is cut at a character boundary and gets the hash of the
    whole account, so it stays the same from run to run and unique."""
    name = _UNSAFE_NAME.sub("_", agent).strip(" .")
    digest = hashlib.sha256(agent.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        cut = name.encode("utf-8", "surrogatepass")[:_MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(" .")
        return f"{cut}-{digest}.xlsx"
    return (name or "agent-" + digest) + ".xlsx"


def file_names(agents: list[str]) -> dict[str, str]:
    """File name per agent; two accounts that would share a name get their hash appended."""
    names = {a: file_name(a) for a in agents}
    taken: dict[str, int] = {}
    for n in names.values():
        taken[n.lower()] = taken.get(n.lower(), 0) + 1
    for a, n in names.items():
        if taken[n.lower()] > 1:
            names[a] = n.removesuffix(".xlsx") + "-" + hashlib.sha256(a.encode("utf-8", "surrogatepass")).hexdigest()[:8] + ".xlsx"
    return names


class NameFinder:
    """Every name of a set in a text, leftmost first and the longest there, without
    overlaps: what the alternation of the names longest-first finds, but with an
    Aho-Corasick automaton (a shop's hundred thousand buyer nicks compile in a fraction
    of a second, where one regex of them took seconds to compile)."""

    def __init__(self, names):
        self.automaton = ahocorasick.Automaton()
        for name in names:
            self.automaton.add_word(name, name)
        self.empty = not len(self.automaton)
        if not self.empty:
            self.automaton.make_automaton()

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, name) of each match."""
        if self.empty or not text:
            return []
        # iter() gives every match (also overlapping ones): keep the leftmost-longest.
        found = sorted((end + 1 - len(name), -len(name), name) for end, name in self.automaton.iter(text))
        out, last = [], 0
        for start, _, name in found:
            if start >= last:
                out.append((start, start + len(name), name))
                last = start + len(name)
        return out


class Redactor:
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
        self.finder = NameFinder(self.owner_of)
        self._found: dict[str, list[tuple[int, int, str]]] = {}

    def text_for(self, text: str | None, agent: str) -> str | None:
        if not text or self.finder.empty:
            return text
        found = self._found.get(text)
        if found is None:
            found = self._found[text] = self.finder.find(text)
        if not found:
            return text
        out, last = [], 0
        for start, end, name in found:
            kind, whose = self.owner_of[name]
            if kind == "agent":
                keep = whose == agent
            else:
                keep = agent in self.buyers_of.get(whose, ())
            if not keep:
                out += (text[last:start], OTHER_AGENT if kind == "agent" else OTHER_BUYER)
                last = end
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


def agent_statement(statement: Statement, agent: str, redactor: Redactor | None = None,
                    entries_of: dict | None = None) -> Statement:
    """The part of the statement that concerns `agent` alone (`entries_of`: the
    statement's entries grouped by agent, when writing many)."""
    redactor = redactor or Redactor(statement)
    mine = (statement.entries if entries_of is None else entries_of.get(agent, ()))
    entries = [_redacted(e, redactor, agent) for e in mine if e.agent == agent]
    rules = [(r.rule_id, r.title, r.location, r.kind, r.amount_text, r.effective) for r in statement.rules]
    info = attrs.evolve(statement.info, event_files=(), ignored_files=(), event_types=(), warnings=(),
                        duplicates_folded=0)
    return build(info, entries, {agent}, rules)


def _redacted(e, redactor: Redactor, agent: str):
    """The entry with other agents' and buyers' names replaced in its quoted text; the
    same object when no name was replaced (most lines: a copy per line cost more than
    the rest of the file)."""
    excerpt = redactor.text_for(e.excerpt, agent)
    evidence = redactor.text_for(e.evidence, agent) or ""
    if excerpt is e.excerpt and evidence is e.evidence:
        return e
    return attrs.evolve(e, excerpt=excerpt, evidence=evidence)


def info_table(info: RunInfo, agent: str, source_name: str, source_sha256: str) -> cells.Table:
    rows = [("月份", info.month), *sheets.seal_rows(info), ("客服", agent), ("时区", info.timezone),
            ("规则集名称", info.policy_name), ("ledger 版本", info.version),
            ("数据截止", info.data_end or "（无数据）"),
            ("来源账单", source_name), ("来源账单 SHA-256", source_sha256)]
    for n, f in enumerate(info.policy_files, 1):
        rows += [(f"规则文件 {n}", f.path), (f"规则文件 {n} SHA-256", f.sha256)]
    rows += [("说明", "本表只含本人的明细；引用的文字中其他客服、其他买家的名字已隐去；"
                     "手机号只留前 3 位和后 4 位，座机号留区号和后 4 位，身份证号只留后 4 位"
                     "（全角数字、带空格或横线分组的写法同样遮盖）；路、街、小区等地址连同门牌、楼栋、单元、室号换成 ****。"),
             ("客服签字确认", "＿＿＿＿＿＿＿＿"), ("签字日期", "＿＿＿＿＿＿＿＿")]
    return cells.Table(sheets.INFO, sheets.INFO_HEADER, tuple(rows))


def write_agent_statements(statement: Statement, folder: Path, source: Path,
                           write_source: Callable[[], object] | None = None) -> dict[str, Path]:
    """Write one workbook per agent into `folder` (agents/ of the month in its staging
    folder, which is swapped in whole: each file is written in place); remove workbooks
    there that belong to no agent of this run. Returns agent -> path.

    `write_source` writes the shop statement `source` (None: it is written already);
    each file's 说明 sheet names its SHA-256. A big team's files are written by one
    forked process per core (each file depends on the statement alone, so which process
    writes it changes no byte); they lay out and deflate every sheet but 说明 while
    the shop statement is being written, then receive its digest and finish."""
    folder = Path(folder)

    def source_sha() -> str:
        if write_source is not None:
            write_source()
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()

    agents = [a.agent for a in statement.agents if a.agent != NO_AGENT]
    if agents:
        folder.mkdir(parents=True, exist_ok=True)
    names = file_names(agents)
    entries_of: dict[str, list] = {}
    for e in statement.entries:
        entries_of.setdefault(e.agent, []).append(e)
    job = AgentFilesJob(statement, Redactor(statement), entries_of, names, folder, Path(source).name, "")
    workers, explicit = worker_count()
    big = len(agents) >= PARALLEL_AGENTS or (len(agents) > 1 and len(statement.entries) >= PARALLEL_LINES)
    if workers > 1 and (explicit or big) and "fork" in multiprocessing.get_all_start_methods():
        _write_forked(job, shares(agents, entries_of, workers), source_sha)
    else:
        write_agent_files(attrs.evolve(job, source_sha=source_sha()), agents)
    written = {agent: folder / names[agent] for agent in agents}
    keep = {p.name for p in written.values()}
    if folder.is_dir():
        for old in folder.glob("*.xlsx"):
            if old.name not in keep:
                old.unlink()
    return written


# Fewer files than PARALLEL_AGENTS are written faster than processes start, unless they
# hold PARALLEL_LINES lines or more between them.
PARALLEL_AGENTS = 64
PARALLEL_LINES = 20_000


def shares(agents: list[str], entries_of: dict, workers: int) -> list[list[str]]:
    """The agents split into `workers` lists of about as many lines each (each agent, the
    busiest first, to the list with the fewest lines so far; ties to the first list), each
    in the team's order."""
    lines = [0] * workers
    share: list[list[int]] = [[] for _ in range(workers)]
    order = sorted(range(len(agents)), key=lambda i: -len(entries_of.get(agents[i], ())))
    for i in order:
        k = lines.index(min(lines))
        share[k].append(i)
        lines[k] += len(entries_of.get(agents[i], ())) + 1  # + 1: a file costs something even empty
    return [[agents[i] for i in sorted(s)] for s in share]


WORKERS_ENV = "LEDGER_WORKERS"  # processes for per-agent files (docs/cli.md); default: cores, at most 8


def worker_count() -> tuple[int, bool]:
    """(processes, whether the user chose the number): LEDGER_WORKERS, else the cores (≤ 8).
    A chosen number forks even for a small team (same bytes; tests use it)."""
    chosen = os.environ.get(WORKERS_ENV, "").strip()
    if chosen.isdigit() and int(chosen) >= 1:
        return int(chosen), True
    return min(os.cpu_count() or 1, 8), False


@attrs.frozen
class AgentFilesJob:
    """What writing the per-agent files needs; a forked worker inherits it as its argument."""

    statement: Statement
    redactor: "Redactor"
    entries_of: dict
    names: dict
    folder: Path
    source_name: str
    source_sha: str  # "" in a forked worker: it receives the digest (_write_forked)


def _write_forked(job: AgentFilesJob, chunks: list[list[str]], source_sha: Callable[[], str]) -> None:
    """One forked process per chunk (fork: the job is inherited, never pickled). The
    workers lay out their files while `source_sha` writes the shop statement here, then
    receive its digest through a pipe each. A worker that fails reports why; the parent
    then fails with that reason (exit code 5). When the parent stops early (an error,
    Ctrl-C, a failed shop statement) it stops the workers; when it is killed, the
    workers die with it (die_with_parent)."""
    context = multiprocessing.get_context("fork")
    failures = context.SimpleQueue()
    parent = os.getpid()
    pipes = [context.Pipe(duplex=False) for _ in chunks]
    workers = [context.Process(target=_worker, args=(job, chunk, failures, parent, receive), daemon=True)
               for chunk, (receive, _) in zip(chunks, pipes)]
    started = []
    try:
        for w in workers:
            w.start()
            started.append(w)
        digest = source_sha()
        for receive, send in pipes:
            receive.close()
            with contextlib.suppress(BrokenPipeError):  # a worker that failed: reported below
                send.send(digest)
            send.close()
        for w in started:
            w.join()
    finally:
        for w in started:
            if w.is_alive():
                w.terminate()
        for w in started:
            w.join()
    reasons = []
    while not failures.empty():
        reasons.append(failures.get())
    reasons += [(None, f"worker exit code {w.exitcode}") for w in workers if w.exitcode and not reasons]
    if reasons:
        code, text = reasons[0]
        if code is not None:  # a full disk in a worker is a full disk (outset says so in one line)
            raise OSError(code, os.strerror(code))
        raise LedgerError(f"个人账单写入失败 (per-agent statements not written): {text}", exit_code=5)


def _worker(job: AgentFilesJob, agents: list[str], failures, parent: int, receive) -> None:
    die_with_parent(parent)
    try:
        write_agent_files(job, agents, threaded=False, parent=parent, source_sha=receive.recv)
    except BaseException as exc:  # reported to the parent, which fails the run
        failures.put((exc.errno if isinstance(exc, OSError) else None, f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1)


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a forked worker: have the kernel kill this process when the parent dies
    (Linux prctl PR_SET_PDEATHSIG), and exit now if it already has. Elsewhere the
    worker checks its parent between files (write_agent_files)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def write_agent_files(job: AgentFilesJob, agents: list[str], threaded: bool = True, parent: int | None = None,
                      source_sha: Callable[[], str] | None = None) -> None:
    """Write these agents' files; `threaded=False` in a forked worker (one per core:
    a deflating thread would only compete with the other workers), which passes its
    `parent` and stops as soon as the parent is gone. With `source_sha` (a worker's:
    it blocks until the shop statement is written) every file is laid out and deflated
    into memory but for its 说明 sheet first, and finished once the digest is known."""
    pending = []
    for agent in agents:
        if parent is not None and os.getppid() != parent:
            raise SystemExit(1)
        mine = agent_statement(job.statement, agent, job.redactor, job.entries_of)
        tables = [sheets.summary_table(mine), *sheets.detail_tables(mine.entries, cells.EXCEL_MAX_ROWS),
                  sheets.rules_table(mine), info_table(mine.info, agent, job.source_name, job.source_sha)]
        if source_sha is None:
            _write_agent_file(job, agent, tables, mine.info, threaded, first=agent == agents[0])
        else:
            pending.append((agent, tables, mine.info, writer.start_tables(tables, mine.info)))
    if source_sha is None:
        return
    digest = source_sha()
    for n, (agent, tables, info, started) in enumerate(pending):
        if parent is not None and os.getppid() != parent:
            raise SystemExit(1)
        tables[-1] = info_table(info, agent, job.source_name, digest)
        if started is None or not writer.finish_tables(started, tables[-1], job.folder / job.names[agent]):
            _write_agent_file(job, agent, tables, info, threaded, first=False)  # a part needs ZIP64
        if n == 0:
            pause_point("agents")


def _write_agent_file(job: AgentFilesJob, agent: str, tables: list, info: RunInfo, threaded: bool,
                      first: bool) -> None:
    # The folder is the month's staging folder, swapped in whole (outset.staged): a
    # file needs no temporary file and rename of its own.
    writer.write_tables(tables, info, job.folder / job.names[agent], threaded=threaded, atomic=False)
    if first:
        pause_point("agents")
