"""Export profiles: plain-text mapping files that turn a platform export's columns into
canonical events (docs/export-profiles.md). Reviewed like policy.

    profile refund_console "淘宝/天猫 退款管理 导出"
    match 退款编号 退款的申请时间                 # header signature: every column present
    files "*退款*"                               # optional: files named so use it regardless

    event refund_requested
        id     = 退款编号 + ":requested"
        ts     = 退款的申请时间
        agent  = 退款操作人 | 审核操作人
        reason = 买家退款原因

    event refund_handled when 退款完结时间 | 退款完结时间.1
        ts     = 退款完结时间 | 退款完结时间.1

    conversation by 客户名 gap 30m               # cut conversations when the export has none

A value is `A | B | "literal"` (the first non-empty one), parts joined with `+`, or
`map COLUMN 客服=agent 买家=buyer *=text` (the value of COLUMN translated; `*` for any
other non-empty value); `... if COLUMN = v1 v2` keeps it only when COLUMN is one of
the values. `ts` may be written `2024/5/1 8:05`, `2024-05-01 08:05:00` or a bare date:
it is rewritten to the canonical form before the reader checks it. Columns are matched by name, never by position; a header
repeated in an export is read as `name`, `name.1`, `name.2`, ...

`conversation by KEY gap D` (optional): rows whose `conversation` is empty are cut into
conversations per KEY value, in time order, a new one after an idle gap longer than D;
the id is `KEY@first-time`. Within such a conversation, rows without `agent` get the
conversation's first agent. The cut is made over all files at once, after duplicates
are folded (exports.cut_sessions), so overlapping downloads cut as one.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from datetime import timedelta
from importlib import resources
from pathlib import Path

import attrs

from ledger.core.errors import Diagnostic, LedgerError, Position

SUFFIX = ".profile"
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_DURATION = re.compile(r"(\d+)\s*(s|m|h|秒|分钟|分|小时)")
_UNITS = {"s": 1, "秒": 1, "m": 60, "分": 60, "分钟": 60, "h": 3600, "小时": 3600}


@attrs.frozen
class Part:
    columns: tuple[str, ...] = ()  # alternatives: the first non-empty wins
    literal: str | None = None


@attrs.frozen
class Value:
    parts: tuple[Part, ...] = ()  # concatenated
    map_column: str | None = None
    mapping: tuple[tuple[str, str], ...] = ()
    if_column: str | None = None  # `... if COLUMN = v1 v2`: only when COLUMN is one of the values
    if_values: tuple[str, ...] = ()

    def get(self, row: dict[str, str]) -> str:
        if self.if_column is not None and (row.get(self.if_column) or "").strip() not in self.if_values:
            return ""
        if self.map_column is not None:
            raw = (row.get(self.map_column) or "").strip()
            if not raw:
                return ""
            table = dict(self.mapping)
            return table.get(raw, table.get("*", raw))
        out = []
        for part in self.parts:
            if part.literal is not None:
                out.append(part.literal)
                continue
            value = next((row[c].strip() for c in part.columns if (row.get(c) or "").strip()), "")
            if not value:
                return ""  # a missing part makes the whole value missing, never half an id
            out.append(value)
        return "".join(out)


@attrs.frozen
class EventMap:
    type: str
    when: Value | None
    fields: tuple[tuple[str, Value], ...]


@attrs.frozen
class Profile:
    name: str
    title: str
    path: str
    match: tuple[str, ...]
    files: tuple[str, ...]
    events: tuple[EventMap, ...]
    session_key: str | None = None
    session_gap: timedelta | None = None

    def fits(self, names: set[str]) -> bool:
        return bool(self.match) and all(c in names for c in self.match)

    def missing(self, names: set[str]) -> list[str]:
        present = set(with_aliases({n: "" for n in names}))
        return [c for c in self.match if c not in present]

    def named(self, rel: str) -> bool:
        base = rel.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(base, g) for g in self.files)

    def rows(self, row: dict[str, str]) -> list[dict[str, str]]:
        """The canonical events of one export row (field -> text, empty values left out)."""
        out = []
        for ev in self.events:
            if ev.when is not None and not ev.when.get(row):
                continue
            values = {"type": ev.type}
            for name, value in ev.fields:
                text = value.get(row)
                if text:
                    values[name] = text
            out.append(values)
        return out


def parse(text: str, filename: str) -> tuple[Profile | None, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    name = title = ""
    match: list[str] = []
    files: list[str] = []
    events: list[EventMap] = []
    current: tuple[str, Value | None, list] | None = None
    session_key, session_gap = None, None

    def close_event():
        nonlocal current
        if current:
            events.append(EventMap(current[0], current[1], tuple(current[2])))
        current = None

    for number, line in enumerate(text.splitlines(), 1):
        tokens = _tokens(line)
        if not tokens:
            continue

        def err(col, message, hint=None, width=1):
            diags.append(Diagnostic(Position(filename, number, col, col + width), message, hint, source_line=line))

        indented = line[:1] in (" ", "\t")
        word, col, _ = tokens[0]
        if indented and current is not None:
            if len(tokens) < 3 or tokens[1][0] != "=":
                err(col, "字段映射应写成 字段 = 列名 | 列名 (field = column)", width=len(word))
                continue
            value = _value(tokens[2:], err)
            if value is not None:
                current[2].append((word, value))
            continue
        close_event()
        args = tokens[1:]
        if word == "profile":
            if not args:
                err(col, "profile 后面要写名字 (name required)", width=7)
                continue
            name = args[0][0]
            title = args[1][0] if len(args) > 1 else name
        elif word == "match":
            match += [t for t, _, _ in args]
        elif word == "files":
            files += [t for t, _, _ in args]
        elif word == "event":
            if not args:
                err(col, "event 后面要写事件类型 (event type required)", width=5)
                continue
            when = None
            if len(args) > 2 and args[1][0] == "when":
                when = _value(args[2:], err)
            elif len(args) > 1:
                err(args[1][1], f"应为 when 列名 (expected when): {args[1][0]!r}", width=len(args[1][0]))
            current = (args[0][0], when, [])
        elif word == "conversation":
            if len(args) != 4 or args[0][0] != "by" or args[2][0] != "gap":
                err(col, "应写成 conversation by 列名 gap 30m", width=len(word))
                continue
            m = _DURATION.fullmatch(args[3][0])
            if not m:
                err(args[3][1], f"时长应写成 30m、2h、90s (bad duration): {args[3][0]!r}", width=len(args[3][0]))
                continue
            session_key, session_gap = args[1][0], timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        else:
            words = ("profile", "match", "files", "event", "conversation")
            close = difflib.get_close_matches(word, words, n=1)
            err(col, f"不认识的语句 {word!r} (unknown statement)；应为 {' / '.join(words)}",
                f"是不是想写 {close[0]}？(did you mean {close[0]!r}?)" if close else None, len(word))
    close_event()
    if not name and not diags:
        diags.append(Diagnostic(Position(filename, 1, 1), "文件要以 profile 名字 开头 (profile name first)"))
    if name and not match and not files:
        diags.append(Diagnostic(Position(filename, 1, 1), f"导出格式 {name} 没有 match 也没有 files：永远用不上"))
    for ev in events:
        fields = dict(ev.fields)
        if "ts" not in fields:
            diags.append(Diagnostic(Position(filename, 1, 1), f"导出格式 {name} 的事件 {ev.type} 没有 ts 映射"))
    if any(d.severity == "error" for d in diags):
        return None, diags
    return Profile(name, title, filename, tuple(match), tuple(files), tuple(events), session_key, session_gap), diags


def _tokens(line: str):
    found = []
    for m in _TOKEN.finditer(line):
        if m.group(2) is not None and m.group(2).startswith("#"):
            break
        if m.group(1) is not None:
            found.append((m.group(1), m.start() + 1, True))
        else:
            found.append((m.group(2), m.start() + 1, False))
    return found


def _value(tokens, err) -> Value | None:
    words = [t for t, _, q in tokens]
    if "if" in words and not tokens[words.index("if")][2]:
        at = words.index("if")
        cond = tokens[at + 1:]
        if len(cond) < 3 or cond[1][0] != "=":
            err(tokens[at][1], "应写成 … if 列名 = 值 值 (condition)", width=2)
            return None
        value = _value(tokens[:at], err)
        return None if value is None else attrs.evolve(value, if_column=cond[0][0],
                                                       if_values=tuple(t for t, _, _ in cond[2:]))
    if tokens and tokens[0][0] == "map" and not tokens[0][2]:
        if len(tokens) < 3:
            err(tokens[0][1], "应写成 map 列名 原值=新值 …", width=3)
            return None
        pairs = []
        for text, col, _ in tokens[2:]:
            if "=" not in text:
                err(col, f"应写成 原值=新值 (expected from=to): {text!r}", width=len(text))
                return None
            pairs.append(tuple(text.split("=", 1)))
        return Value(map_column=tokens[1][0], mapping=tuple(pairs))
    parts: list[Part] = []
    alternatives: list[str] = []
    expect_value = True
    for text, col, quoted in tokens:
        if not quoted and text in ("|", "+"):
            if expect_value:
                err(col, f"{text} 前面缺少列名 (column expected)")
                return None
            if text == "+" and alternatives:
                parts.append(Part(tuple(alternatives)))
                alternatives = []
            expect_value = True
            continue
        if not expect_value:
            err(col, f"列名之间要用 | 或 + 连接 (expected | or +): {text!r}", width=len(text))
            return None
        if quoted:
            if alternatives:
                parts.append(Part(tuple(alternatives)))
                alternatives = []
            parts.append(Part(literal=text))
        else:
            alternatives.append(text)
        expect_value = False
    if expect_value:
        err(tokens[-1][1] if tokens else 1, "缺少列名 (column expected)")
        return None
    if alternatives:
        parts.append(Part(tuple(alternatives)))
    return Value(parts=tuple(parts))


# -------------------------------------------------------------------- loading


def shipped() -> list[tuple[str, str]]:
    """(display name, text) of the profiles that ship with ledger."""
    folder = resources.files("ledger.inputs") / "builtin_profiles"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(SUFFIX):
            out.append((f"ledger/profiles/{entry.name}", entry.read_text(encoding="utf-8")))
    return out


def load(extra_folders: list[Path]) -> list[Profile]:
    """Shipped profiles, then `*.profile` files of the given folders (a later profile of the
    same name replaces an earlier one). Errors raise LedgerError with every diagnostic."""
    profiles, diags = read(extra_folders)
    if any(d.severity == "error" for d in diags):
        raise LedgerError("\n".join(d.render() for d in diags) + "\n导出格式文件有错误 (export profiles have errors)",
                          exit_code=1)
    return profiles


def read(extra_folders: list[Path]) -> tuple[list[Profile], list[Diagnostic]]:
    """What `load` reads, with every diagnostic returned instead of raised (`ledger check`)."""
    texts = shipped()
    for folder in extra_folders:
        folder = Path(folder)
        if folder.is_dir():
            for path in sorted(folder.rglob(f"*{SUFFIX}"), key=lambda p: p.as_posix()):
                if path.is_symlink():  # never followed (events.py reports it as a rejected file)
                    continue
                texts.append((path.as_posix(), path.read_text(encoding="utf-8-sig")))
    by_name: dict[str, Profile] = {}
    diags: list[Diagnostic] = []
    for name, text in texts:
        profile, more = parse(text, name)
        diags += more
        if profile is not None:
            by_name[profile.name] = profile
    return list(by_name.values()), diags


_UNIT_SUFFIX = re.compile(r"\s*[（(][^（()）]*[)）]\s*$")


def with_aliases(row: dict[str, str]) -> dict[str, str]:
    """The row, plus each column also under its name without spaces and without a trailing
    unit in brackets (`买家退款金额(元)` → `买家退款金额`), unless that name is taken."""
    out = dict(row)
    for name, value in row.items():
        alias = _UNIT_SUFFIX.sub("", name).replace(" ", "").replace("\u3000", "")
        if alias and alias not in out:
            out[alias] = value
    return out


def choose(profiles: list[Profile], rel: str, names: list[str]) -> Profile | None:
    """The profile for a file: one whose `files` names it, else the first whose `match`
    columns are all in the header (names also without a bracketed unit, see with_aliases)."""
    present = set(with_aliases({n: "" for n in names}))
    for p in profiles:
        if p.named(rel):
            return p
    for p in profiles:
        if p.fits(present):
            return p
    return None


def unknown_layout(profiles: list[Profile], names: list[str]) -> str:
    shown = "、".join(n for n in names if n) or "（空）"
    tried = "；".join(f"{p.name}（缺少 {'、'.join(p.missing(set(names)))}）" for p in profiles if p.match)
    return (f"不是事件格式（没有 ts、type 列），也不符合任何导出格式 (unknown layout)。找到的列: {shown}。"
            f"试过的导出格式: {tried or '（无）'}")


def dedupe_header(names: list[str]) -> list[str]:
    """Repeated names become name, name.1, name.2 (as pandas reads them)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}.{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out
