"""Message kinds from what a chat export writes in the text (docs/events.md, 消息类型).

Chat exports write a picture, a sticker or a product link into the message text: `[图片]`,
`[表情]`, `/:^_^`, 😊, `https://item.taobao.com/item.htm?id=…`. A rule that reads `kind`
must not take a picture for a two-character text answer, nor miss a recommendation sent as
a link. So, after loading, every `message` whose `kind` is empty or `text` and whose whole
text is one of these gets its kind:

| text (the whole message, spaces aside) | kind |
| --- | --- |
| `[图片]` `[照片]` `【图片】` | image |
| `[视频]` | video |
| `[语音]` | voice |
| `[文件]` | file |
| stickers and emoji only: `[表情]`, `[微笑]` (a bracketed word of 1–4 CJK characters), `/:^_^` and other `/:` codes, emoji | emoji |
| a product link (taobao, tmall, jd, tb.cn), optionally with a `【…】` title or a price | product_card |
| `[商品]` `[商品卡片]` `[宝贝]` | product_card |
| `[订单]` `[订单卡片]` | order_card |

A text with words besides a placeholder or link stays `text` (it is an answer in words).
Kinds given by the export (auto_reply, product_card, …) are never changed. Runs in SQL on
the whole `events` table; the patterns are RE2 (DuckDB) and mean the same in Java regex.
"""

from __future__ import annotations

# Bracketed placeholders, by kind (brackets ASCII or full-width).
PLACEHOLDERS = {
    "image": ("图片", "照片"),
    "video": ("视频",),
    "voice": ("语音",),
    "file": ("文件",),
    "product_card": ("商品", "商品卡片", "商品链接", "宝贝", "链接"),
    "order_card": ("订单", "订单卡片"),
}
# One sticker: a bracketed word of CJK characters ([微笑], [表情]), a /: code, or an emoji
# (symbols Other, and the joiners and variation selectors emoji sequences use).
_STICKER = r"(?:[\[【][\x{4e00}-\x{9fff}]{1,4}[\]】]|/:[^\s/]{1,6}|[\p{So}\x{200d}\x{fe0f}\x{1f3fb}-\x{1f3ff}])"
EMOJI_ONLY = rf"^\s*(?:{_STICKER}\s*)+$"
_HOSTS = r"(?:item\.taobao\.com|detail\.tmall\.com|detail\.tmall\.hk|item\.jd\.com|m\.tb\.cn|[a-z0-9.]*\.?taobao\.com|[a-z0-9.]*\.?tmall\.com)"
# Taobao's share text ends with an instruction to open the link: still only a link.
_SHARE_TAIL = r"(?:点击链接直接打开|或者淘宝搜索直接打开|复制这条信息[^\n]{0,30})?"
LINK_ONLY = (r"^\s*(?:【[^】]{0,60}】\s*)?(?:[^\s]{0,30}\s*)?https?://" + _HOSTS
             + r"[^\s]*\s*(?:[¥￥]\s*[0-9.]+\s*元?)?\s*" + _SHARE_TAIL + r"\s*$")


def _placeholder_pattern(words) -> str:
    """The placeholder alone, possibly repeated, `消息` after the word or not ([图片消息])."""
    return r"^\s*(?:[\[【](?:" + "|".join(words) + r")(?:消息)?[\]】]\s*)+$"


def kind_sql(text: str) -> str:
    """The derived kind of a text as a SQL CASE (NULL: not derived, keep `text`)."""
    cases = [f"WHEN regexp_matches({text}, '{_placeholder_pattern(words)}') THEN '{kind}'"
             for kind, words in PLACEHOLDERS.items()]
    cases.append(f"WHEN regexp_matches({text}, '{LINK_ONLY}') THEN 'product_card'")
    cases.append(f"WHEN regexp_matches({text}, '{EMOJI_ONLY}') THEN 'emoji'")
    return "CASE " + " ".join(cases) + " END"


# What every derived kind needs (a necessary condition, far cheaper than the patterns): a
# link, or a first character (spaces aside) that opens a placeholder or is a sticker.
MAYBE_DERIVED = (r"^\s*(?:[\[【/]|[\p{So}\x{200d}\x{fe0f}\x{1f3fb}-\x{1f3ff}])")


def maybe_derived_sql(text: str) -> str:
    return f"(contains({text}, 'http') OR regexp_matches({text}, '{MAYBE_DERIVED}'))"


def derive(con) -> int:
    """Set the kind of `message` rows whose text is a placeholder, stickers or a link.
    Returns how many rows changed."""
    columns = {r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE events)").fetchall()}
    if "text" not in columns:
        return 0
    if "kind" not in columns:
        con.execute("ALTER TABLE events ADD COLUMN kind VARCHAR")
    derived = kind_sql("text")
    return con.execute(f"""
        UPDATE events SET kind = {derived}
        WHERE type = 'message' AND text IS NOT NULL AND (kind IS NULL OR kind = '' OR kind = 'text')
          AND {maybe_derived_sql("text")} AND {derived} IS NOT NULL""").fetchone()[0]
