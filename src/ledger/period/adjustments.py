"""Disputes and adjustments: plain-text files under `adjustments/`, reviewed like policy.

One statement per line; `#` starts a comment; a value with spaces is written in
double quotes. Every file starts with the month its lines belong to:

    month 2024-05
    confirm E5D0C1B2A3F49 "看过聊天记录，确属顶撞"
    waive E042B9E906020 "买家承认是误会，主管同意免除"
    dispute E1A2B3C4D5E6F upheld "聊天记录证明确有顶撞"
    dispute E0FEDCBA98765 overturned "系统误判：买家是本店同事"
    dispute E00AA11BB22CC reduced 5元 "情节轻微，减为 5 元"
    adjust 初晴旗舰店:小王 bonus 50元 好评之星 "5 月好评最多"
    adjust 初晴旗舰店:小李 fine 20元 迟到 "5 月 3 日迟到 40 分钟"

* `confirm ID [REASON]`: a line awaiting confirmation (待复核, from a rule marked
  `confirm`) is confirmed: it counts from now on, at its amount (caps still apply).
* `waive ID REASON`: the entry stays on the statement with 0 applied and the reason
  (for a 待复核 line: the judgement call is rejected).
* `dispute ID upheld|overturned|reduced AMOUNT REASON`: the outcome of an agent's
  dispute (申诉). upheld keeps the amount and records the answer; overturned sets it
  to 0 like a waiver; reduced sets a lower amount.
* `adjust AGENT fine|bonus AMOUNT CODE REASON`: a manual line for an agent, under the
  reason code CODE (e.g. 好评之星, 迟到), shown as rule `人工调整·CODE`.

An entry has one outcome: one `confirm`, `waive` or `dispute`. The one pair allowed is a
`confirm` and a later `dispute` of the same 待复核 line (the agent disputes a judgement once
it is confirmed and deducted): the confirm applies first, then the dispute's outcome.

Problems are collected as Diagnostics (file:line:col, the line, a caret, a hint), all
of them in one pass; `ledger check` prints them and `ledger run` refuses to use files
with errors. Ids are checked against the month's entries when the month is run.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import attrs

from ledger.core.entries import APPLIED, BONUS, FINE, TO_CONFIRM, Entry, normalise_account
from ledger.core.errors import Diagnostic, Position
from ledger.core.money import round_line

SUFFIX = ".txt"
COMMANDS = ("month", "confirm", "waive", "dispute", "adjust")
OUTCOMES = ("upheld", "overturned", "reduced")
KINDS = {"fine": FINE, "bonus": BONUS}
MANUAL = "人工调整"
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_ENTRY_ID = re.compile(r"E[0-9A-F]{12}")
_AMOUNT = re.compile(r"[¥￥]?(\d+(?:\.\d{1,2})?)元?")
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


@attrs.frozen
class Action:
    kind: str  # waive | dispute | adjust
    pos: Position
    file: str
    month: str
    entry_id: str = ""  # waive, dispute
    outcome: str = ""  # dispute
    amount: Decimal | None = None  # dispute reduced, adjust
    agent: str = ""  # adjust
    direction: str = ""  # adjust: FINE | BONUS
    code: str = ""  # adjust
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.pos.line}"


@attrs.frozen
class AdjustmentFile:
    path: str
    sha256: str
    month: str | None
    actions: tuple[Action, ...]


def files(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted((p for p in root.rglob(f"*{SUFFIX}") if not p.name.startswith(".")),
                  key=lambda p: p.as_posix())


def load(root: Path) -> tuple[list[AdjustmentFile], list[Diagnostic]]:
    """Parse every adjustments file under `root` (none when it does not exist)."""
    out, diags = [], []
    for path in files(root):
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            diags.append(Diagnostic(Position(path.as_posix(), 1, 1), "调整文件不是 UTF-8 (not UTF-8)"))
            continue
        parsed, more = parse(text, path.as_posix())
        out.append(attrs.evolve(parsed, sha256=hashlib.sha256(data).hexdigest()))
        diags += more
    return out, diags


def _tokens(line: str) -> list[tuple[str, int, bool]]:
    """(text, 1-based column, quoted) of each token before a comment."""
    found = []
    for m in _TOKEN.finditer(line):
        if m.group(2) is not None and m.group(2).startswith("#"):
            break
        if m.group(1) is not None:
            found.append((m.group(1).replace('\\"', '"').replace("\\\\", "\\"), m.start() + 1, True))
        else:
            found.append((m.group(2), m.start() + 1, False))
    return found


def parse(text: str, filename: str) -> tuple[AdjustmentFile, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    actions: list[Action] = []
    month: str | None = None

    for number, line in enumerate(text.splitlines(), 1):
        tokens = _tokens(line)
        if not tokens:
            continue

        def err(col: int, message: str, hint: str | None = None, width: int = 1):
            diags.append(Diagnostic(Position(filename, number, col, col + width), message, hint,
                                    source_line=line))

        word, col, _ = tokens[0]
        if word not in COMMANDS:
            close = difflib.get_close_matches(word, COMMANDS, n=1)
            err(col, f"不认识的语句 {word!r} (unknown statement)；应为 {' / '.join(COMMANDS)}",
                f"是不是想写 {close[0]}？(did you mean {close[0]!r}?)" if close else None, len(word))
            continue
        args = tokens[1:]
        end_col = len(line) + 1

        def need(n: int, shape: str) -> bool:
            if len(args) < n:
                err(end_col, f"{word} 缺少内容 (missing values)，应为: {shape}")
                return False
            if len(args) > n:
                extra = args[n]
                err(extra[1], f"多余的内容 {extra[0]!r} (unexpected)，应为: {shape}；含空格的文字请加双引号",
                    width=len(extra[0]))
                return False
            return True

        def reason_ok(token) -> str | None:
            if not token[0].strip():
                err(token[1], "理由不能为空 (reason required)")
                return None
            return token[0].strip()

        if word == "month":
            if need(1, "month YYYY-MM"):
                value, vcol, _ = args[0]
                if not _MONTH.fullmatch(value):
                    err(vcol, f"月份应为 YYYY-MM，例如 2024-05 (bad month): {value!r}", width=len(value))
                elif month is not None:
                    err(col, "一个文件只能写一个 month (one month per file)", width=5)
                else:
                    month = value
            continue
        if month is None:
            err(col, "文件要先写 month YYYY-MM，说明这些调整属于哪个月 (month first)", width=len(word))
            month = ""  # report once per file
        pos = Position(filename, number, col)
        if word == "confirm":
            if not args or len(args) > 2:
                need(2 if args else 1, 'confirm 明细编号 ["理由"]')
                continue
            entry_id = _entry_id(args[0], err)
            reason = args[1][0].strip() if len(args) == 2 else ""
            if entry_id:
                actions.append(Action("confirm", pos, filename, month, entry_id=entry_id, reason=reason))
        elif word == "waive":
            if need(2, 'waive 明细编号 "理由"'):
                entry_id = _entry_id(args[0], err)
                reason = reason_ok(args[1])
                if entry_id and reason:
                    actions.append(Action("waive", pos, filename, month, entry_id=entry_id, reason=reason))
        elif word == "dispute":
            if len(args) >= 2 and args[1][0] == "reduced":
                shape, n = 'dispute 明细编号 reduced 金额 "理由"', 4
            else:
                shape, n = 'dispute 明细编号 upheld|overturned "理由"', 3
            if not need(n, shape):
                continue
            entry_id = _entry_id(args[0], err)
            outcome, ocol, _ = args[1]
            if outcome not in OUTCOMES:
                close = difflib.get_close_matches(outcome, OUTCOMES, n=1)
                err(ocol, f"申诉结果应为 upheld（维持）、overturned（撤销）或 reduced（减为）: {outcome!r}",
                    f"是不是想写 {close[0]}？(did you mean {close[0]!r}?)" if close else None, len(outcome))
                continue
            amount = _amount(args[2], err) if outcome == "reduced" else None
            reason = reason_ok(args[-1])
            if entry_id and reason and (outcome != "reduced" or amount is not None):
                actions.append(Action("dispute", pos, filename, month, entry_id=entry_id, outcome=outcome,
                                      amount=amount, reason=reason))
        else:  # adjust
            if not need(5, 'adjust 客服账号 fine|bonus 金额 原因代码 "理由"'):
                continue
            agent = args[0][0].strip()
            direction, dcol, _ = args[1]
            if direction not in KINDS:
                close = difflib.get_close_matches(direction, KINDS, n=1)
                err(dcol, f"应为 fine（罚款）或 bonus（奖励）: {direction!r}",
                    f"是不是想写 {close[0]}？(did you mean {close[0]!r}?)" if close else None, len(direction))
                continue
            amount = _amount(args[2], err)
            code = args[3][0].strip()
            if not code:
                err(args[3][1], "原因代码不能为空 (reason code required)")
            reason = reason_ok(args[4])
            if not agent:
                err(args[0][1], "客服账号不能为空 (agent required)")
            elif amount is not None and code and reason:
                actions.append(Action("adjust", pos, filename, month, agent=agent, direction=KINDS[direction],
                                      amount=amount, code=code, reason=reason))
    if month is None and actions == [] and not diags and text.strip():
        diags.append(Diagnostic(Position(filename, 1, 1), "文件要先写 month YYYY-MM (month first)"))
    return AdjustmentFile(filename, "", month or None, tuple(actions)), diags


def _entry_id(token, err) -> str | None:
    value, col, _ = token
    if not _ENTRY_ID.fullmatch(value):
        err(col, f"明细编号应为 E 加 12 位十六进制，如 E042B9E906020 (bad entry id): {value!r}", width=len(value))
        return None
    return value


def _amount(token, err) -> Decimal | None:
    value, col, _ = token
    m = _AMOUNT.fullmatch(value)
    if not m:
        err(col, f"金额应写成 10元、10.50元 或 ¥10 (bad amount): {value!r}", width=len(value))
        return None
    try:
        return round_line(Decimal(m.group(1)))
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
        err(col, f"金额无法读取 (bad amount): {value!r}", width=len(value))
        return None


# --------------------------------------------------------------------- applying


def actions_for(files_: list[AdjustmentFile], month: str) -> list[Action]:
    return [a for f in files_ if f.month == month for a in f.actions]


def check_ids(actions: list[Action], entries: list[Entry], lines: dict[tuple[str, int], str] | None = None,
              accounts: set[str] | None = None) -> list[Diagnostic]:
    """Unknown entry ids, entries named by two statements and (given the month's `accounts`:
    those with events, and the roster's) manual lines for an unknown account, as diagnostics."""
    known = {e.id: e for e in entries}
    diags, seen = [], {}
    for a in actions:
        if a.kind == "adjust":
            if accounts is not None and normalise_account(a.agent) not in accounts:
                source = (lines or {}).get((a.file, a.pos.line))
                col = source.find(a.agent) + 1 if source and a.agent in source else a.pos.column
                close = difflib.get_close_matches(a.agent, sorted(accounts), n=1, cutoff=0.6)
                diags.append(Diagnostic(
                    Position(a.file, a.pos.line, col, col + len(a.agent)),
                    f"{a.month} 没有这个客服账号：本月没有它的事件，花名册里也没有 (unknown account): {a.agent}",
                    f"是不是 {close[0]}？(did you mean {close[0]}?)" if close else "账号写法见账单 汇总 的 客服 列",
                    source_line=source))
            continue
        source = (lines or {}).get((a.file, a.pos.line))
        col = source.find(a.entry_id) + 1 if source else a.pos.column
        pos = Position(a.file, a.pos.line, col, col + len(a.entry_id))
        if a.entry_id not in known:
            close = difflib.get_close_matches(a.entry_id, sorted(known), n=1, cutoff=0.75)
            diags.append(Diagnostic(pos, f"{a.month} 没有这笔明细 (unknown entry id): {a.entry_id}",
                                    f"是不是 {close[0]}？(did you mean {close[0]}?)" if close else
                                    "明细编号见账单的 编号 列；它属于别的月份时，请写在那个月的调整文件里",
                                    source_line=source))
        elif a.kind == "confirm" and known[a.entry_id].status != TO_CONFIRM:
            diags.append(Diagnostic(pos, f"明细 {a.entry_id} 不在待复核之列，不需要确认 (not awaiting confirmation)",
                                    "只有标了 confirm 的规则产生的 待复核 明细需要确认；要免除请用 waive",
                                    source_line=source))
        elif (a.outcome == "reduced" and known[a.entry_id].amount is not None
              and a.amount >= known[a.entry_id].amount):
            diags.append(Diagnostic(pos, f"减为的金额 {a.amount}元 应小于原金额 {known[a.entry_id].amount}元 "
                                         f"(reduced amount must be lower)", source_line=source))
        elif (earlier := _conflict(seen.get(a.entry_id, ()), a)) is not None:
            diags.append(Diagnostic(pos, f"明细 {a.entry_id} 已在 {earlier.where} 处理过（{earlier.kind}），"
                                         f"一笔明细只能有一个处理结果 (entry adjusted twice)",
                                    "确认过的待复核明细之后只能再有一条 dispute（申诉结果）" if a.kind != "confirm"
                                    and earlier.kind == "confirm" else None, source_line=source))
        else:
            seen[a.entry_id] = seen.get(a.entry_id, ()) + (a,)
    return diags


def _conflict(earlier: tuple[Action, ...], a: Action) -> Action | None:
    """The earlier action on the same entry that `a` conflicts with, None when `a` may follow.
    The one pair allowed: a `confirm` and a `dispute` (in either order in the files)."""
    for b in earlier:
        if {a.kind, b.kind} != {"confirm", "dispute"}:
            return b
    return None


def decisions(actions: list[Action]) -> dict[str, tuple[Action, ...]]:
    """The actions naming each entry id (confirm, waive, dispute), in file order."""
    out: dict[str, tuple[Action, ...]] = {}
    for a in actions:
        if a.kind != "adjust":
            out[a.entry_id] = out.get(a.entry_id, ()) + (a,)
    return out


def apply(entries: list[Entry], actions: list[Action], month_start: datetime) -> list[Entry]:
    """Entries with waivers and dispute outcomes applied, plus the manual lines.

    Call check_ids first: actions on unknown ids are skipped here.
    """
    by_id = decisions(actions)
    out = []
    for e in entries:
        for a in sorted(by_id.get(e.id, ()), key=lambda a: a.kind != "confirm"):  # a confirm first
            e = _outcome(e, a)
        out.append(e)
    occurrences: dict[tuple, int] = {}
    for a in actions:
        if a.kind != "adjust":
            continue
        key = (a.month, a.agent, a.direction, str(a.amount), a.code, a.reason)
        occurrences[key] = occurrences.get(key, 0) + 1
        digest = hashlib.sha256("\x1f".join(key + (str(occurrences[key]),)).encode()).hexdigest()
        out.append(Entry(
            id="A" + digest[:12].upper(), rule_id=f"{MANUAL}·{a.code}", rule_title=f"{MANUAL}：{a.code}",
            rule_location=a.file, kind=a.direction, agent=a.agent, ts=month_start, amount=a.amount,
            status=APPLIED, event_id="", event_seq=-1, excerpt=a.reason,
            evidence=f"{MANUAL}（{a.where}）：{a.reason}"))
    return out


def _outcome(e: Entry, a: Action) -> Entry:
    was = "待定" if e.amount is None else f"{e.amount}元"
    if a.kind == "confirm":
        said = f"；{a.reason}" if a.reason else ""
        note = f"已确认 (confirmed)（{a.where}）{said}"
        evidence = e.evidence.replace("；待复核：经人确认后才计入 (awaits confirmation)", "")
        return attrs.evolve(e, status=APPLIED, evidence=f"{note}；{evidence}" if evidence else note)
    if a.kind == "waive":
        note, amount = f"已免除 (waived)：原金额 {was}；理由：{a.reason}（{a.where}）", Decimal("0.00")
    elif a.outcome == "upheld":
        note, amount = f"申诉结果：维持 (upheld)；理由：{a.reason}（{a.where}）", e.amount
    elif a.outcome == "overturned":
        note, amount = f"申诉结果：撤销 (overturned)，原金额 {was}；理由：{a.reason}（{a.where}）", Decimal("0.00")
    else:
        note, amount = f"申诉结果：减为 {a.amount}元 (reduced)，原金额 {was}；理由：{a.reason}（{a.where}）", a.amount
    status = e.status if amount is None else APPLIED
    return attrs.evolve(e, amount=amount, status=status, evidence=f"{note}；{e.evidence}" if e.evidence else note)
