"""A deliberately naive oracle of the ten house rules.

Read it next to /work/shared/spec/house-rules.md and docs/decisions.md: every rule is a
plain loop over the events, and every window re-scans the whole list. No indexes, no
cleverness, no shared state between rules, so that it is obviously right by reading.

    oracle(events, month="2024-05") -> {(rule_id, agent, trigger_event_id, status, amount)}

`events` are dicts of strings as in the event contract (ts is local wall time
"YYYY-MM-DD HH:MM:SS"); a missing value is an absent key or "". The position in the
list is the input order, the tie-breaker of equal timestamps.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")  # the shipped policy's time zone
APPLIED = "applied"
PENDING = "pending"
TO_CONFIRM = "to_confirm"
NO_AGENT = "（未指定客服）"

POLICY_FILE = Path(__file__).resolve().parents[1] / "policy" / "house-rules.rules"


def word_lists(path: Path = POLICY_FILE) -> dict[str, tuple[list[str], list[str]]]:
    """The shipped policy's `words` declarations: name -> (words, exceptions). Read line by
    line here, not with ledger's parser: the oracle shares no code with what it checks."""
    lists: dict[str, tuple[list[str], list[str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            current = None if not raw.startswith(" ") else current
            continue
        if line.startswith("words "):
            name, rest = line[len("words "):].split("=", 1)
            current = lists.setdefault(name.strip(), ([], []))
            target = current[0]
            tokens = rest.split()
        elif line.startswith(" ") and current is not None:
            tokens = line.split()
        else:
            current = None
            continue
        for token in tokens:
            if token == "except":
                target = current[1]
            else:
                target.append(token.strip('"'))
    return lists


WORDS = word_lists()


def rule_regexes(rule_id: str, path: Path = POLICY_FILE) -> list[str]:
    """The `matches /…/` patterns of a shipped rule, in the order written (read as text)."""
    block = path.read_text(encoding="utf-8").split(f"\nrule {rule_id} ", 1)[1].split("\nexample ", 1)[0]
    return re.findall(r"matches /((?:[^/\\\n]|\\.)+)/", block)


RUDE = rule_regexes("顶撞买家")


def rude(e: dict) -> bool:
    """顶撞买家's `when`, written out: an insult or a rebuff from the word lists, one of the
    rebuke patterns, or a curt line — a text message with no courtesy word at all that calls
    the buyer 你 or talks back (the last two patterns: what marks it, what does not)."""
    text = get(e, "text")
    if text is None:
        return False
    *plain, curt, not_curt = RUDE
    if has(text, "辱骂用语") or has(text, "顶撞说法") or any(re.search(p, text) for p in plain):
        return True
    return (kind(e) == "text" and not has(text, "敬语") and re.search(curt, text) is not None
            and re.search(not_curt, text) is None)


def has(text: str | None, name: str) -> bool:
    """`text has any NAME`: the shipped list's words, its exceptions taken out first."""
    words, exceptions = WORDS[name]
    return has_any(text, words, exceptions)


def only(text: str | None, name: str) -> bool:
    """`text only NAME`: the list's words alone (exceptions do not apply to `only`)."""
    return is_only(text, WORDS[name][0])

# Kinds a chat export writes into the text (docs/events.md): the whole text, spaces aside.
PLACEHOLDER_KINDS = {"图片": "image", "照片": "image", "视频": "video", "语音": "voice", "文件": "file",
                     "商品": "product_card", "商品卡片": "product_card", "宝贝": "product_card",
                     "链接": "product_card", "商品链接": "product_card", "订单": "order_card", "订单卡片": "order_card"}
LINK_HOSTS = ("item.taobao.com", "detail.tmall.com", "detail.tmall.hk", "item.jd.com", "m.tb.cn")

FIVE_MINUTES = timedelta(minutes=5)
TEN_MINUTES = timedelta(minutes=10)
TWENTY_MINUTES = timedelta(minutes=20)
THIRTY_MINUTES = timedelta(minutes=30)


# ---------------------------------------------------------------- reading fields

def get(event: dict, field: str) -> str | None:
    """The field's value, or None when it is missing (absent key or empty cell)."""
    value = event.get(field)
    if value is None or value == "":
        return None
    return value


def kind(event: dict) -> str:
    """A message's kind; the contract says an empty kind means "text", and a `text` message
    whose whole text is a placeholder, stickers only or a product link gets that kind."""
    given = get(event, "kind") or "text"
    if given != "text" or event.get("type") != "message" or get(event, "text") is None:
        return given
    return derived_kind(event["text"]) or "text"


def derived_kind(text: str) -> str | None:
    s = text.strip()
    kinds = set()
    for piece in re.findall(r"[\[【]([^\]】]*)[\]】]", s):
        kinds.add(PLACEHOLDER_KINDS.get(piece.removesuffix("消息")))
    if re.fullmatch(r"(\s*[\[【][^\]】]*[\]】])+", s) and len(kinds) == 1 and None not in kinds:
        return kinds.pop()  # one placeholder, alone or repeated ([图片消息], 【图片】【图片】)
    if any(host in s for host in LINK_HOSTS) and _link_only(s):
        return "product_card"
    if s and _stickers_only(s):
        return "emoji"
    return None


def _link_only(s: str) -> bool:
    """[【title】] [one word] URL [¥price]: nothing else (the words of an answer are text)."""
    m = re.fullmatch(r"(【[^】]{0,60}】\s*)?(\S{0,30}\s*)?(https?://\S*)\s*([¥￥]\s*[0-9.]+\s*元?)?", s)
    if not m:
        return False
    host = m.group(3).split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    return host in LINK_HOSTS or host.endswith(("taobao.com", "tmall.com"))


def _is_sticker_char(ch: str) -> bool:
    return (unicodedata.category(ch) == "So" or ch in "\u200d\ufe0f"
            or 0x1F3FB <= ord(ch) <= 0x1F3FF)


def _stickers_only(s: str) -> bool:
    """Every piece is [微笑]-like (1–4 CJK characters in brackets), a /: code, or an emoji;
    tried every way, so it needs no cleverness to be right."""
    s = s.lstrip()
    if s == "":
        return True
    if _is_sticker_char(s[0]) and _stickers_only(s[1:]):
        return True
    if s[0] in "[【":
        for n in range(1, 5):
            body, close = s[1:1 + n], s[1 + n:2 + n]
            if (len(body) == n and all("\u4e00" <= c <= "\u9fff" for c in body) and close in ("]", "】")
                    and _stickers_only(s[2 + n:])):
                return True
    if s.startswith("/:"):
        for n in range(1, 7):
            body = s[2:2 + n]
            if len(body) == n and not any(c.isspace() or c == "/" for c in body) and _stickers_only(s[2 + n:]):
                return True
    return False


def ts(event: dict) -> datetime:
    """Local wall time. A ts with an offset (ISO 8601) is converted to the policy zone."""
    t = datetime.fromisoformat(event["ts"])
    if t.tzinfo is not None:
        t = t.astimezone(ZONE).replace(tzinfo=None)
    return t


def charged_agent(event: dict) -> str:
    """Who a fine goes to: the event's agent, or the placeholder when it has none."""
    return get(event, "agent") or NO_AGENT


def has_any(text: str | None, words: list[str], exceptions: list[str] = ()) -> bool:
    """`has any`: some word of the list is a substring of the text once every exception
    phrase is taken out (longest first, leftmost). A missing text has no words."""
    if text is None:
        return False
    rest = without_exceptions(text, exceptions)
    for word in words:
        if word in rest:
            return True
    return False


def without_exceptions(text: str, exceptions) -> str:
    """Scan left to right; where an exception starts (the longest that fits), put a mark in
    its place and jump past it."""
    ordered = sorted(set(exceptions), key=lambda e: (-len(e), e))
    out, i = [], 0
    while i < len(text):
        for e in ordered:
            if e and text.startswith(e, i):
                out.append("\x1f")
                i += len(e)
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def is_only(text: str | None, words: list[str]) -> bool:
    """`only`: after removing whitespace, punctuation and symbols (～, emoji), the text is a non-empty
    concatenation of words of the list. Plain recursion over every split."""
    if text is None:
        return False
    kept = ""
    for ch in text:
        if ch.isspace() or unicodedata.category(ch)[0] in "PS":
            continue
        kept += ch
    if kept == "":
        return False
    return _concatenation_of(kept, words)


def _concatenation_of(rest: str, words: list[str]) -> bool:
    if rest == "":
        return True
    for word in words:
        if rest.startswith(word) and _concatenation_of(rest[len(word):], words):
            return True
    return False


def length(text: str | None) -> int:
    """Characters after stripping surrounding whitespace; a missing text has length 0."""
    if text is None:
        return 0
    return len(text.strip())


def is_bool_no(value: str | None) -> bool:
    """A yes/no field that is missing counts as no."""
    if value is None:
        return True
    return value.strip().lower() in ("false", "0", "否")


# ---------------------------------------------------------------- event kinds

def is_message(event: dict) -> bool:
    return event.get("type") == "message"


def is_agent_message(event: dict) -> bool:
    """sender = agent, any kind (decisions.md)."""
    return is_message(event) and get(event, "sender") == "agent"


def is_buyer_message(event: dict) -> bool:
    return is_message(event) and get(event, "sender") == "buyer"


def is_agent_text(event: dict) -> bool:
    return is_agent_message(event) and kind(event) == "text"


# ---------------------------------------------------------------- the oracle

def oracle(events: list[dict], month: str = "2024-05") -> set[tuple]:
    # Attach the input order once, so that (ts, order) decides "before" and "after".
    evs = []
    for i, event in enumerate(events):
        evs.append((i, event))

    def key(item) -> tuple:
        i, event = item
        return (ts(event), i)

    def is_after(later, earlier) -> bool:
        """`later` comes after `earlier` in (ts, input order)."""
        return key(later) > key(earlier)

    def same(a: dict, b: dict, field: str) -> bool:
        """`same field`: a missing value never matches."""
        return get(a, field) is not None and get(a, field) == get(b, field)

    def conversation_sequence(item, member) -> list:
        """The members of `item`'s conversation in (ts, input order); an event without
        a conversation is a sequence of its own."""
        i, event = item
        if get(event, "conversation") is None:
            return [item]
        result = []
        for other in evs:
            if member(other[1]) and same(other[1], event, "conversation"):
                result.append(other)
        result.sort(key=key)
        return result

    def previous_message(item):
        """The message just before `item` in its conversation (any sender, any kind)."""
        sequence = conversation_sequence(item, is_message)
        position = sequence.index(item)
        if position == 0:
            return None
        return sequence[position - 1][1]

    data_end = None
    for _, event in evs:
        if data_end is None or ts(event) > data_end:
            data_end = ts(event)

    def window(trigger, matches, start: timedelta, end: timedelta):
        """Scan everything for an event that `matches`, comes after the trigger and
        lies in [trigger.ts + start, trigger.ts + end]. Returns "found", or the
        trigger's status when nothing was found: pending when the deadline lies after
        the end of the data, else applied."""
        t = ts(trigger[1])
        for other in evs:
            if not matches(other[1]):
                continue
            if not is_after(other, trigger):
                continue
            if t + start <= ts(other[1]) <= t + end:
                return "found"
        if t + end > data_end:
            return PENDING
        return APPLIED

    year, mon = month.split("-")
    month_start = datetime(int(year), int(mon), 1)
    if int(mon) == 12:
        month_end = datetime(int(year) + 1, 1, 1)
    else:
        month_end = datetime(int(year), int(mon) + 1, 1)

    def in_month(event: dict) -> bool:
        return month_start <= ts(event) < month_end

    AMOUNT = {
        "敬语": Decimal("10.00"),
        "短语回复": Decimal("10.00"),
        "回复超时": Decimal("20.00"),
        "未挂离开": Decimal("20.00"),
        "缺货直答": Decimal("10.00"),
        "核对订单": Decimal("10.00"),
        "顶撞买家": Decimal("100.00"),
        "顶撞买家_质检": Decimal("100.00"),
        "未再次询问": Decimal("20.00"),
        "退款超时": Decimal("30.00"),
        "交接班": Decimal("30.00"),
    }

    out: set[tuple] = set()

    def charge(rule_id: str, agent: str, event: dict, status: str = APPLIED) -> None:
        amount = AMOUNT[rule_id] if status in (APPLIED, TO_CONFIRM) else None
        out.add((rule_id, agent, event["id"], status, amount))

    def human(o: dict) -> bool:
        return is_message(o) and kind(o) != "auto_reply"

    def previous_human(item):
        """The message before `item` in its conversation, auto replies left out."""
        sequence = conversation_sequence(item, human)
        position = sequence.index(item)
        return sequence[position - 1][1] if position > 0 else None

    def is_answer(item) -> bool:
        """An agent `text` message whose previous (human) message in the conversation is the buyer's."""
        event = item[1]
        if not is_agent_text(event):
            return False
        previous = previous_human(item)
        return previous is not None and get(previous, "sender") == "buyer"

    def previous_kind_ok(previous: dict | None) -> bool:
        """`previous.kind != "emoji"` (a missing previous: != holds)."""
        return previous is None or kind(previous) != "emoji"

    def closing_phrase(text: str | None) -> bool:
        """The 未再次询问 rule's `matches`: thanks for support, or welcome back."""
        if text is None:
            return False
        return bool(re.search(r"(谢谢|感谢|多谢).{0,6}(支持|关注|光临|理解|耐心|惠顾)|欢迎.{0,6}(再来|光临|回来)", text))

    def buyer_needed_no_answer(previous: dict | None) -> bool:
        return previous is not None and only(get(previous, "text"), "买家收尾")

    for item in evs:
        i, e = item
        if not in_month(e):
            continue

        # 1 敬语: first and last agent text message of the conversation need an honorific.
        if is_agent_text(e):
            sequence = conversation_sequence(item, is_agent_text)
            first_or_last = sequence[0] == item or sequence[-1] == item
            if first_or_last and not has(get(e, "text"), "敬语"):
                charge("敬语", charged_agent(e), e)

        # 2 短语回复: an answer (text or stickers) shorter than 5 characters, only fillers, or
        #   only stickers; not a courtesy reply or a hold, not after the buyer's closing or stance.
        if is_agent_message(e) and kind(e) in ("text", "emoji") and human(e):
            previous = previous_human(item)
            if previous is not None and get(previous, "sender") == "buyer":
                text = get(e, "text")
                short = kind(e) == "emoji" or length(text) < 5 or only(text, "语气词")
                if (short and not has(text, "礼貌回应") and not buyer_needed_no_answer(previous)
                        and previous_kind_ok(previous) and not has(get(previous, "text"), "买家表态")):
                    charge("短语回复", charged_agent(e), e)

        # 3 回复超时: a buyer turn with no non-auto_reply agent message within 5 minutes, unless
        #   the buyer only closed (没有了，谢谢) or sent stickers.
        if is_buyer_message(e) and kind(e) != "emoji" and not only(get(e, "text"), "买家收尾"):
            previous = previous_message(item)
            if previous is None or get(previous, "sender") != "buyer":
                found = window(
                    item,
                    lambda o: is_agent_message(o) and kind(o) != "auto_reply"
                    and same(o, e, "conversation"),
                    timedelta(0), FIVE_MINUTES,
                )
                if found != "found":
                    charge("回复超时", charged_agent(e), e, found)

        # 4 未挂离开: a QA finding of category 未挂离开.
        if e.get("type") == "qa_flag" and get(e, "category") == "未挂离开":
            charge("未挂离开", charged_agent(e), e)

        # 5 缺货直答: an agent text saying "out of stock" before the sale (not post-sale talk,
        #   no alternative offered, not a hypothetical) with fewer than 2 earlier agent product
        #   cards or links; a judgement call: it waits for confirmation.
        text = get(e, "text")
        if (is_agent_text(e) and has(text, "缺货说法") and not has(text, "售后说法")
                and not has(text, "替代说法") and not has(text, "假设说法")):
            cards = 0
            for other in evs:
                o = other[1]
                if (is_agent_message(o) and (kind(o) == "product_card" or has(get(o, "text"), "商品链接"))
                        and same(o, e, "conversation") and is_after(item, other)):
                    cards += 1
            if cards < 2:
                charge("缺货直答", charged_agent(e), e, TO_CONFIRM)

        # 6 核对订单: an order with no agent order_card to the same buyer within 10 minutes.
        if e.get("type") == "order_placed":
            found = window(
                item,
                lambda o: is_agent_message(o) and kind(o) == "order_card" and same(o, e, "buyer"),
                timedelta(0), TEN_MINUTES,
            )
            if found != "found":
                charge("核对订单", charged_agent(e), e, found)

        # 7 顶撞买家: a rude agent message (see rude()), to be confirmed by a person;
        #   顶撞买家_质检: a QA finding of 顶撞买家.
        if is_agent_message(e) and rude(e):
            charge("顶撞买家", charged_agent(e), e, TO_CONFIRM)
        if e.get("type") == "qa_flag" and get(e, "category") == "顶撞买家":
            charge("顶撞买家_质检", charged_agent(e), e)

        # 8 未再次询问: a non-closing answer (not to the buyer's own closing) followed by no buyer
        #   message within 20 minutes and no agent message between 10 and 20 minutes after it.
        if (is_answer(item) and not has(get(e, "text"), "结束语") and not closing_phrase(get(e, "text"))
                and previous_kind_ok(previous_human(item))
                and not buyer_needed_no_answer(previous_human(item))
                and not has(get(previous_human(item), "text"), "买家致谢")):
            buyer_came_back = window(
                item,
                lambda o: is_buyer_message(o) and same(o, e, "conversation"),
                timedelta(0), TWENTY_MINUTES,
            )
            agent_asked_again = window(
                item,
                lambda o: is_agent_message(o) and same(o, e, "conversation"),
                TEN_MINUTES, TWENTY_MINUTES,
            )
            if buyer_came_back != "found" and agent_asked_again != "found":
                # Both windows end at 20 minutes, so they agree on pending/applied.
                charge("未再次询问", charged_agent(e), e, buyer_came_back)

        # 9 退款超时: a refund for a fined reason not handled for the same order within 30 minutes.
        if e.get("type") == "refund_requested" and has(get(e, "reason"), "常规退款"):
            found = window(
                item,
                lambda o: o.get("type") == "refund_handled" and same(o, e, "order"),
                timedelta(0), THIRTY_MINUTES,
            )
            if found != "found":
                charge("退款超时", charged_agent(e), e, found)

        # 10 交接班: a shift end without handover fines the agent and the successor.
        if e.get("type") == "shift_end" and is_bool_no(get(e, "handover")):
            recipients = [charged_agent(e)]
            successor = get(e, "successor")
            if successor is not None and successor not in recipients:
                recipients.append(successor)
            for recipient in recipients:
                charge("交接班", recipient, e)

    return out


# ---------------------------------------------------------------- metrics (policy/metrics.rules)
#
# The shipped service metrics, per agent, as plain loops. Values as the engine gives
# them: Decimal counts, seconds, fractions; None for a blank (0 denominator, average
# of nothing). Agents are those with any event in the month.

CAP_MICROS = 600 * 1_000_000


def _in_month(event: dict, month: str) -> bool:
    return ts(event).strftime("%Y-%m") == month


def _conversation_of(events: list[dict], i: int) -> list[int]:
    """Indices of the messages in event i's conversation, in (ts, input) order."""
    c = get(events[i], "conversation")
    if c is None:
        return [i]
    members = [j for j, e in enumerate(events) if is_message(e) and get(e, "conversation") == c]
    return sorted(members, key=lambda j: (ts(events[j]), j))


def _is_turn(events: list[dict], i: int) -> bool:
    if not is_buyer_message(events[i]):
        return False
    seq = _conversation_of(events, i)
    k = seq.index(i)
    return k == 0 or get(events[seq[k - 1]], "sender") != "buyer"


def _human_reply(e: dict) -> bool:
    return is_agent_message(e) and kind(e) != "auto_reply"


def _wait_micros(events: list[dict], i: int) -> int:
    """Turn start to the first later human agent message in the conversation, capped."""
    c = get(events[i], "conversation")
    t = ts(events[i])
    later = [ts(e) for j, e in enumerate(events)
             if c is not None and _human_reply(e) and get(e, "conversation") == c
             and (ts(e) > t or (ts(e) == t and j > i))]
    if not later:
        return CAP_MICROS
    return min((min(later) - t) // timedelta(microseconds=1), CAP_MICROS)


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else Decimal(a) / Decimal(b)


def metrics_oracle(events: list[dict], month: str = "2024-05") -> dict[str, dict[str, Decimal | None]]:
    agents = sorted({get(e, "agent") for e in events if get(e, "agent") and _in_month(e, month)})
    out: dict[str, dict] = {}
    for name in ("询单人数", "接待人数", "提问轮次", "三分钟回复轮次", "回复轮次", "平均响应时长",
                 "首次响应时长", "付款人数", "销售额"):
        out[name] = {}
    for a in agents:
        mine = [i for i, e in enumerate(events) if get(e, "agent") == a and _in_month(e, month)]
        buyers = {get(events[i], "buyer") for i in mine if is_buyer_message(events[i]) and get(events[i], "buyer")}
        out["询单人数"][a] = Decimal(len(buyers))
        reception = set()
        for i in mine:
            e = events[i]
            if is_buyer_message(e) and get(e, "buyer") and get(e, "conversation") is not None:
                if any(j != i and _human_reply(x) and get(x, "conversation") == get(e, "conversation")
                       and ts(x).date() == ts(e).date() for j, x in enumerate(events)):
                    reception.add((get(e, "buyer"), ts(e).date()))
        out["接待人数"][a] = Decimal(len(reception))
        turns = [i for i in mine if _turn_member(events[i]) and _is_turn(events, i)]
        waits = [_wait_micros(events, i) for i in turns]
        out["提问轮次"][a] = Decimal(len(turns))
        out["三分钟回复轮次"][a] = Decimal(sum(1 for i in turns if _replied_within(events, i, timedelta(minutes=3))))
        out["回复轮次"][a] = Decimal(sum(1 for i in turns if _replied_within(events, i, None)))
        out["平均响应时长"][a] = Decimal(sum(waits)) / len(waits) / Decimal(1_000_000) if waits else None
        firsts = [i for i in mine if is_buyer_message(events[i]) and _first_buyer_message(events, i)]
        fw = [_wait_micros(events, i) for i in firsts]
        out["首次响应时长"][a] = Decimal(sum(fw)) / len(fw) / Decimal(1_000_000) if fw else None
        paid = [events[i] for i in mine if events[i].get("type") == "order_paid"]
        out["付款人数"][a] = Decimal(len({get(e, "buyer") for e in paid if get(e, "buyer")}))
        out["销售额"][a] = sum((Decimal(get(e, "amount")) for e in paid if get(e, "amount")), Decimal(0))
    out["询单转化率"] = {a: _ratio(out["付款人数"][a], out["询单人数"][a]) for a in agents}
    out["三分钟回复率"] = {a: _ratio(out["三分钟回复轮次"][a], out["提问轮次"][a]) for a in agents}
    out["回复率"] = {a: _ratio(out["回复轮次"][a], out["提问轮次"][a]) for a in agents}
    return out


def _turn_member(event: dict) -> bool:
    return is_message(event)


def _replied_within(events: list[dict], i: int, limit: timedelta | None) -> bool:
    c = get(events[i], "conversation")
    t = ts(events[i])
    return any(c is not None and _human_reply(e) and get(e, "conversation") == c
               and (ts(e) > t or (ts(e) == t and j > i)) and (limit is None or ts(e) - t <= limit)
               for j, e in enumerate(events))


def _first_buyer_message(events: list[dict], i: int) -> bool:
    """The first buyer message of its conversation (a buyer message without conversation
    is a conversation of its own)."""
    c = get(events[i], "conversation")
    if c is None:
        return True
    buyers = sorted((j for j, e in enumerate(events) if is_buyer_message(e) and get(e, "conversation") == c),
                    key=lambda j: (ts(events[j]), j))
    return buyers[0] == i


def tier_oracle(rate: Decimal | None) -> Decimal | None:
    """The conversion tiers of tests/evaluate/test_oracle_property.py: ≥40% 300元, ≥30% 150元."""
    if rate is None:
        return None
    if rate >= Decimal("0.4"):
        return Decimal("300.00")
    if rate >= Decimal("0.3"):
        return Decimal("150.00")
    return None


# ---------------------------------------------------------------- caps and floors

def caps_oracle(declarations: list[str], roster_rows: dict[str, dict], lines: list[dict]) -> dict[str, Decimal]:
    """What each fine line deducts, computed from scratch (docs/policy-language.md, 扣款上限和最低工资).

    `declarations`: the policy's `cap …` / `floor …` lines as written. `roster_rows`: account →
    {"工号", "基本工资", "绩效工资", "最低工资"} (Decimal money). `lines`: dicts with id, kind
    ("fine" | "bonus"), status, account, ts, seq, amount (None when pending). Returns
    {line id: deducted} for the applied fine lines: an employee (a 工号, or an account not on
    the roster) may lose at most the smallest limit any declaration gives; fines are taken in
    time order and each deducts what is left of that limit, never less than 0."""
    def employee(account: str) -> str:
        return roster_rows[account]["工号"] if account in roster_rows else account

    def row_of(emp: str) -> dict | None:
        return next((r for a, r in sorted(roster_rows.items()) if r["工号"] == emp), None)

    def bonuses_of(emp: str) -> Decimal:
        return sum((x["amount"] for x in lines if x["kind"] == "bonus" and x["status"] == APPLIED
                    and employee(x["account"]) == emp), Decimal(0))

    def limit_of(emp: str) -> Decimal | None:
        row = row_of(emp)
        found = []
        for text in declarations:
            words = text.split()
            if words[:2] == ["cap", "fines"] and words[2].endswith("元"):
                found.append(Decimal(words[2][:-1]))
            elif words[:2] == ["cap", "fines"] and row is not None:
                percent = Decimal(words[2][:-1])
                fields = [w for w in words[4:] if w != "+"]
                share = sum(row[f] for f in fields) * percent / 100
                found.append(Decimal(int(share * 100)) / 100)  # cut to the fen, never above the share
            elif words[0] == "floor" and row is not None:
                pay = row["基本工资"] + row["绩效工资"]
                if words[-2:] != ["without", "bonuses"]:
                    pay += bonuses_of(emp)
                found.append(max(pay - row[words[1]], Decimal(0)))
        return min(found) if found else None

    fines = [x for x in lines if x["kind"] == "fine" and x["status"] == APPLIED]
    out = {}
    for x in fines:
        emp = employee(x["account"])
        limit = limit_of(emp)
        if limit is None:
            out[x["id"]] = x["amount"]
            continue
        earlier = sum((y["amount"] for y in fines if employee(y["account"]) == emp
                       and (y["ts"], y["seq"]) < (x["ts"], x["seq"])), Decimal(0))
        out[x["id"]] = min(x["amount"], max(limit - earlier, Decimal(0)))
    return out
