"""Wangwang / Qianniu message-manager exports: one text file per contact (`*.txt`).

The message manager (消息管理器, 导出聊天记录) writes a contact's whole history as text:
optional header lines (a row of `=`, `消息对象:买家名`), then each message as a line with
the time and the sender, followed by the message's own lines until the next such line:

    ================================================================
    消息对象:tb_buyer01
    ================================================================
    2024-05-15 10:00:00 tb_buyer01
    在吗
    2024-05-15 10:00:30 初晴旗舰店:小王
    亲，在的，请问有什么可以帮您？

Layout assumptions (docs/export-profiles.md): a message line is `YYYY-MM-DD HH:MM:SS 发送人`
or `发送人 YYYY-MM-DD HH:MM:SS` (optionally with the time in parentheses and a colon after);
the contact is the buyer, named by `消息对象:` or else by the file name; a sender written
`店铺名:子账号` (or any sender other than the contact) is the shop's agent; a sender named
系统 / 系统消息 is the system. Blank lines inside a message are kept; the lines at the end of a
message are trimmed. Each message becomes a `message` event (`kind` text; placeholders and
links are given their kind later, message_kinds.py), cut into conversations like the chat-record
export (an idle gap over 30 minutes starts a new one, exports.cut_sessions), the buyer's lines
charged to the agent holding the conversation at the time.

A `.txt` file that has no message line in its first lines is not a transcript: it is
reported once (a file note) and contributes nothing.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from ledger.inputs.containers import open_binary
from ledger.inputs.encodings import ESCAPE_ERRORS, Sniffed
from ledger.inputs.exports import SESSION_GAP, SESSION_KEY
from ledger.inputs.rows import LONG_LINE, Columns, LongLine, Record, bounded_lines

GAP_SECONDS = 30 * 60
SNIFF_LINES = 40  # a transcript has a message line among its first lines
_TIME = r"(\d{4}[-/]\d{1,2}[-/]\d{1,2}\s+\d{1,2}:\d{2}:\d{2})"  # 2024-05-15 or 2024/5/15
_TIME_FIRST = re.compile(rf"^\s*{_TIME}\s+(\S.*?)\s*:?\s*$")
_SENDER_FIRST = re.compile(rf"^\s*(\S.*?)\s*[(（]?{_TIME}[)）]?\s*[:：]?\s*$")
_CONTACT = re.compile(r"^\s*(?:消息对象|聊天对象|联系人)\s*[:：]\s*(\S.*?)\s*$")
_RULE = re.compile(r"^\s*[=\-─]{6,}\s*$")
SYSTEM_SENDERS = ("系统", "系统消息", "system")
COLUMNS = ["sender", "kind", "text", SESSION_KEY, SESSION_GAP]


def message_line(line: str) -> tuple[str, str] | None:
    """(time, sender) when `line` starts a message."""
    m = _TIME_FIRST.match(line)
    if m:
        return m.group(1), m.group(2)
    m = _SENDER_FIRST.match(line)
    if m:
        return m.group(2), m.group(1)
    return None


def is_transcript(text: str) -> bool:
    return any(message_line(line) for line in text.splitlines()[:SNIFF_LINES])


def _ts(text: str) -> str:
    day, clock = text.split()
    y, m, d = re.split(r"[-/]", day)
    h, mi, s = clock.split(":")
    return f"{int(y):04d}-{int(m):02d}-{int(d):02d} {int(h):02d}:{mi}:{s}"


def records(rel: str, source, sniffed: Sniffed, columns: Columns, limit: int) -> Iterator[Record]:
    with open_binary(source) as stream:
        stream.read(sniffed.bom)
        text = io.TextIOWrapper(stream, encoding=sniffed.codec.removesuffix("-sig"), errors=ESCAPE_ERRORS)
        lines = (LongLine(line[:-1]) if type(line) is LongLine else line.rstrip("\n")
                 for line in bounded_lines(text, limit, csv_quotes=False))
        yield from _records(rel, lines, columns, limit)


def _records(rel: str, lines: Iterator[str], columns: Columns, limit: int) -> Iterator[Record]:
    first = list(itertools.islice(lines, SNIFF_LINES))
    if not is_transcript("\n".join(first)):
        yield Record(0, "", is_row=False,
                     error="不是聊天记录导出 (not a chat transcript): 前几行没有“YYYY-MM-DD HH:MM:SS 发送人”这样的消息行")
        return
    columns.register(COLUMNS, rel)
    contact = next((m.group(1) for m in map(_CONTACT.match, first) if m), None)
    contact = contact or PurePosixPath(rel.split("#")[0]).stem
    current: tuple[int, str, str, str] | None = None  # (line, header, time, sender)
    body: list[str] = []
    size = 0  # characters in `body`: a message over `limit` keeps no more lines, and is rejected

    def finish() -> Record | None:
        if current is None:
            return None
        line, header, when, sender = current
        while body and not body[-1].strip():
            body.pop()
        message = "\n".join(body).strip("\n")
        raw = "\n".join([header] + body)
        if size > limit or any(type(b) is LongLine for b in body) or type(header) is LongLine:
            return Record(line, raw, error=LONG_LINE.format(limit))
        if not message.strip():
            return Record(line, raw, error="消息没有内容 (empty message)")
        who = ("system" if sender in SYSTEM_SENDERS else "buyer" if sender == contact else "agent")
        return Record(line, raw, {
            "ts": _ts(when), "type": "message", "buyer": contact, "agent": sender if who == "agent" else None,
            "sender": who, "kind": "text", "text": message, SESSION_KEY: contact, SESSION_GAP: str(GAP_SECONDS),
        })

    for number, line in enumerate(itertools.chain(first, lines), 1):
        found = message_line(line)
        if found is not None:
            done = finish()
            if done is not None:
                yield done
            current, body, size = (number, line, found[0], found[1]), [], 0
        elif current is None:
            if line.strip() and not _RULE.match(line) and not _CONTACT.match(line):
                yield Record(number, line, error="消息行之前的内容无法归到任何消息 (text before the first message line)")
        elif size <= limit:
            body.append(line)
            size += len(line) + 1
    done = finish()
    if done is not None:
        yield done
