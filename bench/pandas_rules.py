"""The ten house rules in plain pandas: what an analyst would write instead of the ledger.

    python bench/pandas_rules.py EVENTS_FOLDER [--month 2024-05] [--out lines.csv]

Reads every event file under the folder (CSV in UTF-8, UTF-8 with BOM or GB18030; JSONL;
xlsx through pandas' calamine engine), applies the rules of policy/house-rules.rules
(meanings as in /work/shared/spec/house-rules.md and tests/oracle.py, the refinements of
the shipped policy included: its word lists are read from the policy file), and writes one
line per fine: rule, account, trigger event id, status (applied / pending / to_confirm),
amount. bench/shapes.py checks those lines against the ledger's statement.

Straightforward pandas: one DataFrame of all events, text tests computed once per distinct
text (`map` over the unique values), sequences by sorting on (conversation, ts, input order)
and shifting within groups, time windows by "next qualifying event" (a backward fill over
the sorted group) or `merge_asof`. It handles what the benchmark months hold: one time zone
(Asia/Shanghai, no offsets in ts), whole seconds, no rejected rows.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
import unicodedata
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ledger.lang.load import checked_policy

POLICY = Path(__file__).resolve().parents[1] / "policy" / "house-rules.rules"
NO_AGENT = "（未指定客服）"
AMOUNT = {"敬语": "10.00", "短语回复": "10.00", "回复超时": "20.00", "未挂离开": "20.00", "缺货直答": "10.00",
          "核对订单": "10.00", "顶撞买家": "100.00", "顶撞买家_质检": "100.00", "未再次询问": "20.00",
          "退款超时": "30.00", "交接班": "30.00"}
CONFIRM = {"缺货直答", "顶撞买家"}
COLUMNS = ["id", "ts", "type", "agent", "conversation", "buyer", "order", "sender", "kind", "text", "reason",
           "handover", "successor", "category"]


# ---------------------------------------------------------------- word lists and text tests

def word_lists(path: Path = POLICY) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (words, exceptions) of the policy's `words` declarations, as the ledger's own
    loader reads them (parsing the policy is not what this script measures)."""
    policy, _sources = checked_policy([path])
    return {name: (list(words), list(policy.word_exceptions.get(name, ())))
            for name, words in policy.words.items()}


WORDS = word_lists()


def rule_regexes(rule_id: str, path: Path = POLICY) -> list[str]:
    """The `matches /…/` patterns of a rule, in the order written (read as text)."""
    block = path.read_text(encoding="utf-8").split(f"\nrule {rule_id} ", 1)[1].split("\nexample ", 1)[0]
    return re.findall(r"matches /((?:[^/\\\n]|\\.)+)/", block)


# 顶撞买家: the rebuke patterns, then the two that mark a curt line (what marks it, what does not).
*_REBUKES, _CURT, _NOT_CURT = rule_regexes("顶撞买家")


@lru_cache(maxsize=None)
def _has_pattern(name: str):
    words, exceptions = WORDS[name]
    ordered = sorted(set(exceptions), key=lambda e: (-len(e), e))
    mask = re.compile("|".join(map(re.escape, ordered))) if ordered else None
    return re.compile("|".join(map(re.escape, words))), mask


def has(name: str):
    """`text has any NAME`: a word of the list outside every exception phrase."""
    find, mask = _has_pattern(name)

    def test(text) -> bool:
        if not isinstance(text, str) or not find.search(text):
            return False
        return bool(find.search(mask.sub("\x1f", text))) if mask is not None else True
    return test


def only(name: str):
    """`text only NAME`: without whitespace, punctuation and symbols, a concatenation of list words."""
    words = sorted(set(WORDS[name][0]), key=lambda w: (-len(w), w))
    whole = re.compile("(?:" + "|".join(map(re.escape, words)) + ")+")

    def test(text) -> bool:
        if not isinstance(text, str):
            return False
        kept = "".join(c for c in text if not (c.isspace() or unicodedata.category(c)[0] in "PS"))
        return kept != "" and whole.fullmatch(kept) is not None
    return test


CLOSING_RE = re.compile(r"(谢谢|感谢|多谢).{0,6}(支持|关注|光临|理解|耐心|惠顾)|欢迎.{0,6}(再来|光临|回来)")

# Message kinds a chat export writes into the text (docs/events.md, 消息类型).
_PLACEHOLDERS = {"图片": "image", "照片": "image", "视频": "video", "语音": "voice", "文件": "file",
                 "商品": "product_card", "商品卡片": "product_card", "商品链接": "product_card", "宝贝": "product_card",
                 "链接": "product_card", "订单": "order_card", "订单卡片": "order_card"}
_HOSTS = (r"(?:item\.taobao\.com|detail\.tmall\.com|detail\.tmall\.hk|item\.jd\.com|m\.tb\.cn"
          r"|[a-z0-9.]*\.?taobao\.com|[a-z0-9.]*\.?tmall\.com)")
_LINK = re.compile(r"\s*(?:【[^】]{0,60}】\s*)?(?:[^\s]{0,30}\s*)?https?://" + _HOSTS
                   + r"[^\s]*\s*(?:[¥￥]\s*[0-9.]+\s*元?)?\s*(?:点击链接直接打开|或者淘宝搜索直接打开|复制这条信息[^\n]{0,30})?\s*")
_BRACKETS = re.compile(r"\s*(?:[\[【]([^\]】]*)[\]】]\s*)+")
_PIECE = re.compile(r"[\[【]([^\]】]*)[\]】]")


def _sticker(c: str) -> bool:
    return unicodedata.category(c) == "So" or c in "\u200d\ufe0f" or 0x1F3FB <= ord(c) <= 0x1F3FF


_STICKERS = re.compile(r"\s*(?:(?:[\[【][\u4e00-\u9fff]{1,4}[\]】]|/:[^\s/]{1,6}|\uFFFF)\s*)+")


def derived_kind(text: str) -> str | None:
    if _BRACKETS.fullmatch(text):
        kinds = {_PLACEHOLDERS.get(p.removesuffix("消息")) for p in _PIECE.findall(text)}
        if len(kinds) == 1 and None not in kinds:
            return kinds.pop()
    if _LINK.fullmatch(text):
        return "product_card"
    marked = "".join("\uFFFF" if _sticker(c) else c for c in text)
    if _STICKERS.fullmatch(marked):
        return "emoji"
    return None


def on_unique(series: pd.Series, test) -> np.ndarray:
    """A text test, computed once per distinct value."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    values = np.array([bool(test(u)) for u in uniques] + [bool(test(None))])
    return values[codes]


# ---------------------------------------------------------------- reading

def read_events(folder: Path) -> pd.DataFrame:
    frames = []
    paths = sorted((p for p in folder.rglob("*") if p.suffix.lower() in (".csv", ".jsonl", ".xlsx")),
                   key=lambda p: p.relative_to(folder).as_posix())
    for path in paths:
        if path.suffix.lower() == ".csv":
            head = path.read_bytes()[:1 << 16]
            try:
                head[:head.rfind(b"\n")].decode("utf-8")
                encoding = "utf-8-sig"
            except UnicodeDecodeError:
                encoding = "gb18030"
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding)
        elif path.suffix.lower() == ".jsonl":
            df = pd.read_json(path, lines=True, dtype=str)
        else:
            sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="calamine",
                                   keep_default_na=False, na_values=[""])
            df = pd.concat(sheets.values(), ignore_index=True)
        frames.append(df)
    ev = pd.concat(frames, ignore_index=True)
    for c in COLUMNS:
        if c not in ev:
            ev[c] = None
    ev = ev[COLUMNS].copy()
    ev = ev.replace({"": None})
    ev["ts"] = pd.to_datetime(ev["ts"], format="%Y-%m-%d %H:%M:%S")
    ev["seq"] = np.arange(len(ev))
    ev["agent_or"] = ev["agent"].fillna(NO_AGENT)
    return ev


# ---------------------------------------------------------------- the rules

def next_in_group(df: pd.DataFrame, group: str, qualifies: np.ndarray) -> pd.Series:
    """For each row of df (sorted by group, ts, seq): ts of the first later row of the same
    group that qualifies (NaT if none)."""
    marked = df["ts"].where(qualifies)
    return marked.groupby(df[group], sort=False).shift(-1).groupby(df[group], sort=False).bfill()


def evaluate(ev: pd.DataFrame, month: str) -> pd.DataFrame:
    start = datetime.strptime(month + "-01", "%Y-%m-%d")
    end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1)
    data_end = ev["ts"].max()
    in_month = (ev["ts"] >= start) & (ev["ts"] < end)
    out = []

    def charge(rule: str, rows: pd.DataFrame, status="applied", agents=None):
        status = pd.Series(status, index=rows.index) if isinstance(status, str) else status
        out.append(pd.DataFrame({"rule": rule, "agent": rows["agent_or"] if agents is None else agents,
                                 "event": rows["id"], "status": status}))

    def window_status(t: pd.Series, found_at: pd.Series, limit: pd.Timedelta, low=pd.Timedelta(0)):
        """(fined, status): nothing found in [t + low, t + limit] → applied, or pending past the data."""
        found = (found_at >= t + low) & (found_at <= t + limit)
        return ~found, np.where(t + limit > data_end, "pending", "applied")

    # messages, with their kind (given, or read from the text), in conversation order
    m = ev[ev["type"] == "message"].copy()
    m["kind"] = m["kind"].fillna("text")
    plain = (m["kind"] == "text") & m["text"].notna()
    derived = pd.Series(m.loc[plain, "text"].map(_cached_kind), index=m.index[plain])
    m.loc[plain, "kind"] = derived.fillna("text")
    no_conv = m["conversation"].isna()
    m["conv"] = m["conversation"].where(~no_conv, "\x00" + m["seq"].astype(str))
    m = m.sort_values(["conv", "ts", "seq"], kind="stable")
    m["month"] = in_month.loc[m.index]
    agent, buyer = m["sender"] == "agent", m["sender"] == "buyer"

    # 1 敬语: the first and the last agent text message of a conversation need an honorific
    at = m[agent & (m["kind"] == "text")]
    g = at.groupby("conv", sort=False)
    first_last = (g.cumcount() == 0) | (g.cumcount(ascending=False) == 0)
    charge("敬语", at[first_last & at["month"] & ~on_unique(at["text"], has("敬语"))])

    # sequence without auto replies: 短语回复, 未再次询问 read the message before
    h = m[m["kind"] != "auto_reply"].copy()
    gh = h.groupby("conv", sort=False)
    h["p_sender"], h["p_kind"], h["p_text"] = gh["sender"].shift(1), gh["kind"].shift(1), gh["text"].shift(1)
    answer = (h["sender"] == "agent") & (h["p_sender"] == "buyer") & h["month"]
    prev_ok = (h["p_kind"] != "emoji") & ~on_unique(h["p_text"], only("买家收尾"))

    # 2 短语回复
    c = h[answer & h["kind"].isin(["text", "emoji"]) & prev_ok]
    length = c["text"].fillna("").str.strip().str.len()
    short = (c["kind"] == "emoji") | (length < 5) | on_unique(c["text"], only("语气词"))
    keep = short & ~on_unique(c["text"], has("礼貌回应")) & ~on_unique(c["p_text"], has("买家表态"))
    charge("短语回复", c[keep])

    # 3 回复超时: a buyer turn with no non-auto agent message within 5 minutes
    p_sender = m.groupby("conv", sort=False)["sender"].shift(1)
    nxt = next_in_group(m, "conv", (agent & (m["kind"] != "auto_reply")).to_numpy())
    c = m[buyer & (p_sender != "buyer") & (m["kind"] != "emoji") & m["month"]]
    c = c[~on_unique(c["text"], only("买家收尾"))]
    fined, status = window_status(c["ts"], nxt.loc[c.index], pd.Timedelta(minutes=5))
    charge("回复超时", c[fined], pd.Series(status, index=c.index)[fined])

    # 4 未挂离开, 7b 顶撞买家_质检: QA findings
    qa = ev[(ev["type"] == "qa_flag") & in_month]
    charge("未挂离开", qa[qa["category"] == "未挂离开"])
    charge("顶撞买家_质检", qa[qa["category"] == "顶撞买家"])

    # 5 缺货直答: "out of stock" with fewer than 2 earlier agent product cards or links
    card = agent & ((m["kind"] == "product_card") | on_unique(m["text"], has("商品链接")))
    earlier_cards = card.astype(int).groupby(m["conv"], sort=False).cumsum() - card.astype(int)
    c = m[agent & (m["kind"] == "text") & m["month"]]
    says = (on_unique(c["text"], has("缺货说法")) & ~on_unique(c["text"], has("售后说法"))
            & ~on_unique(c["text"], has("替代说法")) & ~on_unique(c["text"], has("假设说法")))
    c = c[says]
    cards = earlier_cards.loc[c.index].where(~no_conv.loc[c.index], 0)
    charge("缺货直答", c[cards < 2], "to_confirm")

    # 6 核对订单: an order with no agent order_card to the same buyer within 10 minutes
    orders = ev[(ev["type"] == "order_placed") & in_month]
    cards_ = m[agent & (m["kind"] == "order_card") & m["buyer"].notna()]
    found = _next_by(orders, cards_, "buyer")
    fined, status = window_status(orders["ts"], found, pd.Timedelta(minutes=10))
    charge("核对订单", orders[fined], pd.Series(status, index=orders.index)[fined])

    # 7 顶撞买家: a rude agent message, to be confirmed: an insult or a rebuff, a rebuke
    #   pattern, or a curt text line (no courtesy word, calls the buyer 你 or talks back)
    c = m[agent & m["month"]]
    insult, rebuff, courtesy = has("辱骂用语"), has("顶撞说法"), has("敬语")

    def rude_words(text) -> bool:
        return isinstance(text, str) and (insult(text) or rebuff(text) or any(re.search(p, text) for p in _REBUKES))

    def curt(text) -> bool:
        return (isinstance(text, str) and not courtesy(text) and re.search(_CURT, text) is not None
                and re.search(_NOT_CURT, text) is None)
    rude = on_unique(c["text"], rude_words) | ((c["kind"] == "text").to_numpy() & on_unique(c["text"], curt))
    charge("顶撞买家", c[rude], "to_confirm")

    # 8 未再次询问: a non-closing answer; no buyer message within 20 minutes and no agent
    #   message 10 to 20 minutes after it
    next_buyer = next_in_group(m, "conv", buyer.to_numpy())
    c = h[answer & (h["kind"] == "text") & prev_ok]
    c = c[~on_unique(c["text"], has("结束语")) & ~on_unique(c["text"], lambda t: isinstance(t, str)
                                                         and CLOSING_RE.search(t) is not None)
          & ~on_unique(c["p_text"], has("买家致谢"))]
    fined_b, status = window_status(c["ts"], next_buyer.loc[c.index], pd.Timedelta(minutes=20))
    agents_m = m[agent & ~no_conv]
    later = c.assign(at=c["ts"] + pd.Timedelta(minutes=10))
    later = later[~no_conv.loc[c.index]]
    asked = pd.Series(pd.NaT, index=c.index, dtype="datetime64[ns]")
    if len(later) and len(agents_m):
        hit = pd.merge_asof(later.reset_index().sort_values("at"),
                            agents_m[["conv", "ts"]].rename(columns={"ts": "found"}).sort_values("found"),
                            left_on="at", right_on="found", by="conv", direction="forward")
        asked.loc[hit["index"].to_numpy()] = hit["found"].to_numpy()
    fined_a, _ = window_status(c["ts"], asked, pd.Timedelta(minutes=20), pd.Timedelta(minutes=10))
    fined = fined_b & fined_a
    charge("未再次询问", c[fined], pd.Series(status, index=c.index)[fined])

    # 9 退款超时: a refund for a routine reason not handled for the same order within 30 minutes
    refunds = ev[(ev["type"] == "refund_requested") & in_month]
    refunds = refunds[on_unique(refunds["reason"], has("常规退款"))]
    handled = ev[(ev["type"] == "refund_handled") & ev["order"].notna()]
    found = _next_by(refunds, handled, "order")
    fined, status = window_status(refunds["ts"], found, pd.Timedelta(minutes=30))
    charge("退款超时", refunds[fined], pd.Series(status, index=refunds.index)[fined])

    # 10 交接班: a shift end without handover fines the agent and the successor
    ends = ev[(ev["type"] == "shift_end") & in_month]
    ends = ends[ends["handover"].isna() | ends["handover"].str.strip().str.lower().isin(["false", "0", "否", "no"])]
    charge("交接班", ends)
    succ = ends[ends["successor"].notna() & (ends["successor"] != ends["agent_or"])]
    charge("交接班", succ, agents=succ["successor"])

    lines = pd.concat(out, ignore_index=True)
    lines["amount"] = np.where(lines["status"] == "pending", "", lines["rule"].map(AMOUNT))
    return lines


@lru_cache(maxsize=None)
def _cached_kind(text: str) -> str | None:
    return derived_kind(text)


def _next_by(left: pd.DataFrame, right: pd.DataFrame, key: str) -> pd.Series:
    """For each row of `left`: ts of the first row of `right` with the same `key` after it in
    (ts, input order); NaT if none."""
    if not len(left) or not len(right):
        return pd.Series(pd.NaT, index=left.index, dtype="datetime64[ns]")
    def order(df):  # (ts, seq) as one sortable integer: whole seconds, seq < 2**26
        seconds = (df["ts"] - pd.Timestamp(0)) // pd.Timedelta(seconds=1)
        return seconds.astype("int64") * (1 << 26) + df["seq"]
    a = pd.DataFrame({"k": left[key].to_numpy(), "o": order(left).to_numpy() + 1, "i": left.index})
    b = pd.DataFrame({"k": right[key].to_numpy(), "o": order(right).to_numpy(), "found": right["ts"].to_numpy()})
    hit = pd.merge_asof(a.sort_values("o"), b.sort_values("o"), on="o", by="k", direction="forward")
    return pd.Series(hit["found"].to_numpy(), index=hit["i"].to_numpy()).reindex(left.index)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--month", default="2024-05")
    ap.add_argument("--out", type=Path, default=Path("pandas-lines.csv"))
    args = ap.parse_args()
    started = time.perf_counter()
    ev = read_events(args.folder)
    if (ev["ts"].dt.microsecond != 0).any() or len(ev) >= 1 << 26:
        sys.exit("pandas_rules: whole seconds and fewer than 2**26 events only")
    read_s = time.perf_counter() - started
    lines = evaluate(ev, args.month)
    rules_s = time.perf_counter() - started - read_s
    lines.to_csv(args.out, header=False, index=False, quoting=csv.QUOTE_MINIMAL)
    counts = lines.groupby("rule").size()
    print(" · ".join(f"{r} {n}" for r, n in counts.items()))
    print(f"pandas: read {read_s:.2f}s · rules {rules_s:.2f}s · write {time.perf_counter() - started - read_s - rules_s:.2f}s")


if __name__ == "__main__":
    main()
