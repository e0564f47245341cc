"""Labelled conversations (`*.chat`): chats a supervisor judged by hand, line by line.

The format (docs/quality.md) is made to be typed and reviewed as text:

    对话 T0001 2024-05-15 初晴旗舰店:小王
    # 现象: 结束语“还有其他可以帮您的吗”不用再次询问
    10:00:00 买家 这款有货吗
    10:00:30 客服 有的亲
        罚 短语回复
    10:01:00 客服(商品卡片) 相似款A
    10:02:00 转接 初晴旗舰店:小李

A `罚` line labels the message above it with the rules that should fine it; every other
(message, rule) pair is labelled "no fine". `parse` returns the conversations and every
problem as a Diagnostic (file:line:col), all at once; `events_of` turns a conversation
into `message` events (ids `<conversation>#<line>`), the buyer's lines charged to the
agent holding the conversation at the time (a `转接` line hands it over).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import attrs

from ledger.core.errors import Diagnostic, LedgerError, Position

SUFFIX = ".chat"
SENDERS = {"买家": "buyer", "客服": "agent"}
KINDS = {"商品卡片": "product_card", "订单卡片": "order_card", "自动回复": "auto_reply"}
TRANSFER = "转接"
LABEL = "罚"

_HEAD = re.compile(r"对话\s+(\S+)\s+(\d{4}-\d{2}-\d{2})\s+(\S+)\s*$")
_MESSAGE = re.compile(r"(\d{1,2}:\d{2}:\d{2})\s+(买家|客服|转接)(?:\((\S+?)\))?(?:\s+(.*))?$")


@attrs.frozen
class Message:
    line: int  # where it is written (file line), also its id within the conversation
    ts: datetime
    sender: str  # buyer | agent | transfer
    kind: str  # text, product_card, order_card, auto_reply ("" for a transfer)
    text: str  # the text, or the new agent's account for a transfer
    labels: tuple[str, ...] = ()  # rules that should fine this message


@attrs.frozen
class Conversation:
    id: str
    day: date
    agent: str  # who holds the conversation at its start
    file: str
    line: int
    messages: tuple[Message, ...]
    note: str = ""  # the `# 现象:` comment, if any

    def event_id(self, message: Message) -> str:
        return f"{self.id}#{message.line}"


def files(paths) -> list[Path]:
    """The `*.chat` files of the given files and folders (folders: any depth, sorted)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.rglob(f"*{SUFFIX}"), key=lambda f: f.as_posix()))
        elif p.is_file():
            found.append(p)
        else:
            raise LedgerError(f"找不到标注文件或目录 (labelled chats not found): {p}", exit_code=2)
    return found


def load(paths) -> tuple[list[Conversation], list[Diagnostic]]:
    conversations: list[Conversation] = []
    diagnostics: list[Diagnostic] = []
    for path in files(paths):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            diagnostics.append(Diagnostic(Position(path.as_posix(), 1, 1), f"无法读取标注文件 (cannot read): {exc}"))
            continue
        found, problems = parse(text, path.as_posix())
        conversations += found
        diagnostics += problems
    seen: dict[str, str] = {}
    for c in conversations:
        where = f"{c.file}:{c.line}"
        if c.id in seen:
            diagnostics.append(Diagnostic(Position(c.file, c.line, 1), f"对话编号 {c.id} 重复，第一次在 {seen[c.id]} "
                                                                       f"(duplicate conversation id)"))
        seen.setdefault(c.id, where)
    return conversations, diagnostics


def parse(text: str, filename: str) -> tuple[list[Conversation], list[Diagnostic]]:
    out: list[Conversation] = []
    diags: list[Diagnostic] = []
    head: tuple | None = None
    messages: list[Message] = []
    note = ""

    def finish():
        if head is not None:
            out.append(Conversation(head[0], head[1], head[2], filename, head[3], tuple(messages), note))

    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue

        def err(message: str, hint: str | None = None, col: int = 1):
            diags.append(Diagnostic(Position(filename, number, col, col + max(len(stripped), 1)), message, hint,
                                    source_line=line))

        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if head is not None and not messages and body.startswith("现象"):
                note = body.split(":", 1)[-1].split("：", 1)[-1].strip()
            continue
        m = _HEAD.match(stripped)
        if m:
            finish()
            messages, note = [], ""
            try:
                day = date.fromisoformat(m.group(2))
            except ValueError:
                err(f"日期无效 (bad date): {m.group(2)}")
                head = None
                continue
            head = (m.group(1), day, m.group(3), number)
            continue
        if stripped.startswith("对话"):
            err("对话行应为：对话 编号 YYYY-MM-DD 客服账号 (conversation header)")
            head = None
            continue
        if head is None:
            err("这一行不属于任何对话：先写“对话 编号 日期 客服账号” (line outside a conversation)")
            continue
        if stripped.startswith(LABEL) and (len(stripped) == 1 or stripped[1].isspace()):
            if not messages or messages[-1].sender == "transfer":
                err("“罚”行要紧跟在它标注的消息下面 (a label must follow a message)")
                continue
            rules = tuple(stripped[1:].split())
            if not rules:
                err("“罚”后面要写规则名 (rule names expected)")
                continue
            messages[-1] = attrs.evolve(messages[-1], labels=messages[-1].labels + rules)
            continue
        m = _MESSAGE.match(stripped)
        if not m:
            err("不认识的行：应为“HH:MM:SS 买家|客服|转接 文字”或“罚 规则” (unreadable line)")
            continue
        clock, who, kind_label, body = m.group(1), m.group(2), m.group(3), (m.group(4) or "")
        try:
            ts = datetime.combine(head[1], datetime.strptime(clock, "%H:%M:%S").time())
        except ValueError:
            err(f"时间无效 (bad time): {clock}")
            continue
        if messages and ts < messages[-1].ts:
            err(f"时间比上一行早 (time goes backwards): {clock}")
            continue
        if who == TRANSFER:
            if kind_label or not body.strip():
                err("转接行应为：HH:MM:SS 转接 新客服账号 (transfer)")
                continue
            messages.append(Message(number, ts, "transfer", "", body.strip()))
            continue
        kind = "text"
        if kind_label is not None:
            if who != "客服" or kind_label not in KINDS:
                err(f"消息类型应为 {' / '.join(KINDS)}，且只用于客服 (message kind): {kind_label}",
                    col=stripped.find("(") + 1)
                continue
            kind = KINDS[kind_label]
        if not body.strip():
            err("消息没有文字 (empty message)")
            continue
        messages.append(Message(number, ts, SENDERS[who], kind, body.strip()))
    finish()
    return out, diags


def events_of(conversation: Conversation) -> list[dict]:
    """The conversation as `message` events, in order (times as local wall time)."""
    holder = conversation.agent
    events = []
    for m in conversation.messages:
        if m.sender == "transfer":
            holder = m.text
            continue
        events.append({
            "id": conversation.event_id(m), "ts": m.ts.strftime("%Y-%m-%d %H:%M:%S"), "type": "message",
            "conversation": conversation.id, "buyer": f"buyer-{conversation.id}", "agent": holder,
            "sender": m.sender, "kind": m.kind, "text": m.text,
        })
    return events
