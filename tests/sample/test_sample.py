"""The sample-month generator: determinism, the event contract, malformed rows on demand,
and the realism the house rules need (time order, order cards, refunds past midnight)."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ledger.sample import generator as sample
from ledger.sample.generator import generate
from ledger.sample.sink import FILES

REPO = Path(__file__).resolve().parents[2]
MONTH_START = datetime(2024, 5, 1)
MONTH_END = datetime(2024, 6, 1)
SPILL_END = MONTH_END + timedelta(hours=1)  # documented: data may run a little past the month
SMALL = dict(agents=3, conversations_per_day=6, seed=7)

HONORIFICS = ("您", "亲", "请", "谢谢", "感谢", "欢迎", "抱歉", "不好意思")
UNAVAILABLE = ("没有货", "没货", "缺货", "没有这款", "卖完了")
INSULTS = ("有病", "滚", "爱买不买", "神经病", "笨蛋", "傻", "蠢", "白痴", "垃圾")
CLOSING = ("感谢您的支持", "再见", "祝您", "欢迎下次光临", "感谢光临")


def parse_ts(text) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return None


def read_rows(folder: Path, name: str) -> list[tuple[int, dict | None, str]]:
    """(line number, row as dict or None when malformed, reason) for every data row."""
    columns = FILES[name][0]
    out = []
    path = folder / name
    if name.endswith(".jsonl"):
        for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            obj = json.loads(line)
            assert set(obj) <= set(columns), (name, n, obj)
            out.append((n, obj, ""))
    else:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            assert tuple(next(reader)) == columns
            for n, cells in enumerate(reader, start=2):
                if len(cells) != len(columns):
                    out.append((n, None, "column count"))
                else:
                    out.append((n, {k: v for k, v in zip(columns, cells) if v != ""}, ""))
    return [(n, row, reason or problem(row)) for n, row, reason in out]


def problem(row: dict | None) -> str:
    if row is None:
        return "column count"
    if not row.get("type"):
        return "no type"
    if parse_ts(row.get("ts")) is None:
        return "bad ts"
    return ""


def good_rows(folder: Path, name: str) -> list[dict]:
    return [row for _, row, reason in read_rows(folder, name) if not reason]


def digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small")
    counts = generate(out, **SMALL)
    assert set(counts) == set(FILES)
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate(out, bad_rows=0, **SMALL)
    return out


# ---- determinism --------------------------------------------------------------------

def test_same_arguments_give_byte_identical_files(small, tmp_path):
    generate(tmp_path, **SMALL)
    assert digest(tmp_path) == digest(small)


def test_another_seed_gives_another_month(small, tmp_path):
    generate(tmp_path, **{**SMALL, "seed": 8})
    assert digest(tmp_path)["messages.csv"] != digest(small)["messages.csv"]


def test_committed_sample_is_the_default_generation(tmp_path):
    """events/2024-05 is exactly what generate() writes with its defaults."""
    counts = generate(tmp_path)
    committed = REPO / "events" / "2024-05"
    assert digest(tmp_path) == digest(committed)
    total = sum(counts.values())
    assert 40_000 <= total <= 80_000
    assert sum((committed / name).stat().st_size for name in FILES) < 10_000_000


# ---- the contract -------------------------------------------------------------------

def test_returned_counts_are_rows_written(small):
    counts = generate(small.parent / "again", **SMALL)
    for name in FILES:
        assert counts[name] == len(read_rows(small, name)) > 0, name


def test_every_row_has_a_unique_id_and_the_contract_columns(small):
    seen: set[str] = set()
    for name in FILES:
        rows = read_rows(small, name)
        for n, row, _ in rows:
            if row is None:
                continue
            assert row.get("id"), (name, n)
            assert row["id"] not in seen, (name, n)
            seen.add(row["id"])


def test_types_and_fields_follow_the_contract(clean):
    expected = {
        "messages.csv": {"message"}, "orders.csv": {"order_placed", "order_paid"},
        "refunds.jsonl": {"refund_requested", "refund_handled"}, "shifts.csv": {"shift_start", "shift_end"},
        "qa.csv": {"qa_flag"}, "ratings.csv": {"rating"},
    }
    for name, types in expected.items():
        rows = good_rows(clean, name)
        assert {r["type"] for r in rows} == types, name
        assert all(r.get("agent", "").startswith("初晴旗舰店:") for r in rows), name
    for r in good_rows(clean, "messages.csv"):
        assert r["sender"] in ("buyer", "agent", "system")
        assert r["kind"] in ("text", "image", "product_card", "order_card", "auto_reply")
        assert r["conversation"] and r["buyer"].startswith("tb") and r["text"]
        if r["kind"] == "auto_reply":
            assert r["sender"] == "agent"
    for r in good_rows(clean, "orders.csv") + good_rows(clean, "refunds.jsonl"):
        if "amount" in r:
            whole, cents = r["amount"].split(".")
            assert whole.isdigit() and len(cents) == 2 and cents.isdigit()
    for r in good_rows(clean, "shifts.csv"):
        if r["type"] == "shift_end":
            assert r["handover"] in ("true", "false")
        else:
            assert "handover" not in r and "successor" not in r
    assert {r["score"] for r in good_rows(clean, "ratings.csv")} <= {"1", "2", "3", "4", "5"}


def test_refund_amounts_are_json_strings(clean):
    for line in (clean / "refunds.jsonl").read_text("utf-8").splitlines():
        obj = json.loads(line)
        if obj["type"] == "refund_requested":
            assert isinstance(obj["amount"], str) and obj["reason"]
        else:
            assert set(obj) == {"id", "ts", "type", "agent", "order"}


def test_timestamps_stay_in_the_month_except_the_documented_spill(clean):
    late = []
    for name in FILES:
        for row in good_rows(clean, name):
            ts = parse_ts(row["ts"])
            assert MONTH_START <= ts < SPILL_END, (name, row)
            if ts >= MONTH_END:
                late.append((name, row["type"]))
                assert name in ("messages.csv", "orders.csv", "refunds.jsonl", "ratings.csv"), row
    # qa findings and shifts belong to the month; the supervisor reviews within it
    assert all(name not in ("qa.csv", "shifts.csv") for name, _ in late)


def test_files_are_written_in_time_order(clean):
    for name in FILES:
        stamps = [parse_ts(r["ts"]) for r in good_rows(clean, name)]
        assert stamps == sorted(stamps), name


def test_other_months_and_tiny_teams_work(tmp_path):
    counts = generate(tmp_path / "feb", "2024-02", agents=1, conversations_per_day=2, seed=1)
    rows = good_rows(tmp_path / "feb", "messages.csv")
    assert rows and all(r["ts"].startswith(("2024-02", "2024-03-01 00")) for r in rows)
    assert counts["shifts.csv"] >= 29 * 4
    with pytest.raises(ValueError):
        generate(tmp_path / "x", "2024-13")
    with pytest.raises(ValueError):
        generate(tmp_path / "x", agents=0)


# ---- malformed rows on demand -------------------------------------------------------

def test_bad_rows_zero_gives_only_valid_rows(clean):
    for name in FILES:
        assert [(n, reason) for n, _, reason in read_rows(clean, name) if reason] == [], name


def test_bad_rows_three_gives_exactly_three_of_three_kinds(small):
    bad = [(name, reason) for name in FILES for _, _, reason in read_rows(small, name) if reason]
    assert sorted(bad) == sorted([("messages.csv", "bad ts"), ("messages.csv", "column count"),
                                  ("orders.csv", "no type")])


def test_bad_rows_change_nothing_else(small, clean):
    for name in FILES:
        assert [r for r in good_rows(small, name)] == good_rows(clean, name), name


@pytest.mark.parametrize("n", [1, 7, 10])
def test_bad_rows_count_is_exact_even_in_an_empty_month(tmp_path, n):
    generate(tmp_path, agents=2, conversations_per_day=0, bad_rows=n)
    bad = [reason for name in FILES for _, _, reason in read_rows(tmp_path, name) if reason]
    assert len(bad) == n


# ---- conversations, orders, refunds -------------------------------------------------

def by_conversation(folder: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in good_rows(folder, "messages.csv"):
        out.setdefault(row["conversation"], []).append(row)
    return out


def test_each_conversation_is_in_time_order_with_one_agent_and_buyer(clean):
    conversations = by_conversation(clean)
    assert len(conversations) > 100
    for conv, rows in conversations.items():
        stamps = [parse_ts(r["ts"]) for r in rows]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), conv
        assert len({r["agent"] for r in rows}) == 1 and len({r["buyer"] for r in rows}) == 1, conv
        assert rows[0]["sender"] == "buyer", conv


def test_order_cards_go_to_buyers_who_placed_an_order(clean):
    placed: dict[str, list[datetime]] = {}
    for r in good_rows(clean, "orders.csv"):
        if r["type"] == "order_placed":
            placed.setdefault(r["buyer"], []).append(parse_ts(r["ts"]))
    cards = [r for r in good_rows(clean, "messages.csv") if r["kind"] == "order_card"]
    assert cards
    for card in cards:
        assert card["sender"] == "agent"
        assert any(t <= parse_ts(card["ts"]) for t in placed.get(card["buyer"], [])), card


def test_orders_are_paid_after_they_are_placed(clean):
    placed = {r["order"]: parse_ts(r["ts"]) for r in good_rows(clean, "orders.csv") if r["type"] == "order_placed"}
    for r in good_rows(clean, "orders.csv"):
        if r["type"] == "order_paid":
            assert placed[r["order"]] <= parse_ts(r["ts"])


def test_refunds_refer_to_paid_orders_and_one_crosses_midnight(clean):
    paid = {r["order"]: r for r in good_rows(clean, "orders.csv") if r["type"] == "order_paid"}
    requested = {}
    for r in good_rows(clean, "refunds.jsonl"):
        if r["type"] == "refund_requested":
            assert r["order"] in paid and paid[r["order"]]["buyer"] == r["buyer"]
            requested[r["order"]] = parse_ts(r["ts"])
        else:
            assert requested[r["order"]] <= parse_ts(r["ts"])
    handled = {r["order"]: r["ts"] for r in good_rows(clean, "refunds.jsonl") if r["type"] == "refund_handled"}
    crossing = [o for o, t in requested.items() if t == datetime(2024, 5, 31, 23, 50)]
    assert len(crossing) == 1 and handled[crossing[0]] == "2024-06-01 00:10:00"


def test_shifts_hand_over_to_the_next_shift(clean):
    ends = [r for r in good_rows(clean, "shifts.csv") if r["type"] == "shift_end"]
    early = [r for r in ends if r["ts"][11:13] in ("15", "16")]
    late = [r for r in ends if r["ts"][11:13] == "23"]
    assert early and late and len(early) + len(late) == len(ends)
    assert all(r.get("successor", "").startswith("初晴旗舰店:") for r in early)
    assert all("successor" not in r for r in late)


# ---- the committed sample exercises every house rule ---------------------------------

def test_sample_month_has_faults_for_the_house_rules():
    """Cheap proxies on the committed sample (faults at the realistic default rate): each rule
    has something to find, and not much."""
    folder = REPO / "events" / "2024-05"
    msgs = good_rows(folder, "messages.csv")
    agent_text = [r["text"] for r in msgs if r["sender"] == "agent" and r["kind"] == "text"]
    assert 5 <= sum(t.strip() in sample.SHORT_REPLIES for t in agent_text) <= 40  # rule 2
    assert 1 <= sum(any(w in t for w in ("有病", "爱买不买", "神经病")) for t in agent_text) <= 4  # rule 7
    assert any(w in t for t in agent_text for w in UNAVAILABLE)  # rule 5
    qa = [r["category"] for r in good_rows(folder, "qa.csv")]
    assert 3 <= qa.count("未挂离开") <= 8 and 1 <= qa.count("顶撞买家") <= 2  # rules 4 and 7
    ends = [r for r in good_rows(folder, "shifts.csv") if r["type"] == "shift_end"]
    assert 0 < sum(r["handover"] == "false" for r in ends) / len(ends) <= 0.02  # rule 10
    conversations = {r["conversation"] for r in msgs}
    assert 4000 <= len(conversations) <= 7000
    assert len({r["agent"] for r in msgs}) == 10


# ---- the phrase tables say what the rules expect -------------------------------------

GOOD_AGENT_PHRASES = (
    sample.GREETINGS + sample.CLOSINGS + sample.REASKS + sample.STOCK_IN + sample.STOCK_INTRO
    + sample.RECOMMEND + sample.ORDER_CONFIRM + sample.ORDER_ACK_LATE + sample.ORDER_ACK_NONE + sample.PAY_CHASE
    + tuple(a for turns in sample.ASK.values() for _, answers in turns for a in answers)
    + tuple(a for _, answers in sample.AFTER_SALES for a in answers)
)


@pytest.mark.parametrize("phrase", GOOD_AGENT_PHRASES)
def test_good_agent_phrases_are_polite_and_long_enough(phrase):
    assert any(h in phrase for h in HONORIFICS)
    assert len(phrase.strip()) >= 5
    assert not any(w in phrase for w in UNAVAILABLE + INSULTS)


def test_fault_phrases_break_exactly_their_rule():
    for phrase in sample.GREETINGS_RUDE + sample.CLOSINGS_RUDE:
        assert not any(h in phrase for h in HONORIFICS) and len(phrase) >= 5, phrase
    assert all(any(w in p for w in CLOSING) for p in sample.CLOSINGS + sample.CLOSINGS_RUDE)
    assert all(len(p) <= 5 for p in sample.SHORT_REPLIES)
    assert all(any(w in p for w in UNAVAILABLE) for p in sample.STOCK_OUT_BAD + sample.STOCK_AFTER_CARDS)
    for _, insults, sarcasm in sample.CONFRONTATIONS:
        assert all(any(w in p for w in INSULTS) for p in insults)
        assert not any(w in p for p in sarcasm for w in INSULTS)  # only a QA finding catches these


def _ids(folder: Path) -> set[str]:
    out = set()
    for path in folder.iterdir():
        if path.suffix == ".jsonl":
            out |= {json.loads(line)["id"] for line in path.read_text("utf-8").splitlines() if line.strip()}
        elif path.suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as f:
                out |= {row[0] for row in list(csv.reader(f))[1:] if row}
    return out


def test_two_sample_months_never_share_an_event_id(tmp_path):
    generate(tmp_path / "2024-05", "2024-05", agents=2, conversations_per_day=3, seed=1, bad_rows=0)
    generate(tmp_path / "2024-06", "2024-06", agents=2, conversations_per_day=3, seed=1, bad_rows=0)
    may, june = _ids(tmp_path / "2024-05"), _ids(tmp_path / "2024-06")
    assert may and june and not (may & june)
