"""Rules over the same sequence share one sorted table (compile.shared_sequences); the
entries must be exactly those of each rule compiled on its own."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from ledger import engine
from ledger.compile import compile_rule, shared_sequences
from ledger.syntax import parse
from ledger.check import check

REPO = Path(__file__).resolve().parents[1]

HEADER = """
event message(conversation, buyer, agent, sender, kind = "text", text)
"""


def policy_of(text: str):
    parsed, diagnostics = parse(HEADER + text, "t.rules")
    policy, more = check([parsed])
    assert not [d for d in diagnostics + more if d.severity == "error"], diagnostics + more
    return policy


def test_rules_with_the_same_members_and_keys_share_one_table():
    policy = policy_of("""
rule a: on message per conversation when previous.sender = "buyer" fine 1元
rule b: on message[sender = "agent"] per conversation when first fine 1元
rule c: on message per conversation when sender = "buyer" and next.kind = "text" fine 1元
rule d: on message[sender  =  "agent"] per conversation when last fine 1元
rule e: on message per buyer when first fine 1元
rule f: on message[sender = "buyer"] per conversation when first fine 1元
""")
    groups = {s.rules: s for s in shared_sequences(policy, list(policy.rules))}
    # a and c (no filter, per conversation); b and d (same filter however spaced).
    assert set(groups) == {(0, 2), (1, 3)}
    both = groups[(0, 2)].sql
    assert '"_previous_sender"' in both and '"_next_kind"' in both  # every neighbour of the group
    assert "_gap" not in both  # nobody reads gap


def test_house_policy_sorts_messages_per_conversation_once():
    policy, _ = engine.checked_policy([REPO / "policy"])
    rules = list(policy.rules)
    shared = shared_sequences(policy, rules)
    assert [[rules[i].id.value for i in s.rules] for s in shared] == [["短语回复", "回复超时", "未再次询问"]]


def test_shared_tables_give_the_entries_of_rules_compiled_alone():
    policy, sources = engine.checked_policy([REPO / "policy"])
    month = engine.Month.parse("2024-05")
    result = engine.run_policy(policy, sources, REPO / "events", month)
    tz = ZoneInfo(policy.timezone)
    start, end = month.bounds_utc(tz)
    alone = []
    with engine.database() as con:
        engine.load_month(con, policy, REPO / "events")
        data_end_utc, data_end_local = con.execute("SELECT max(ts), max(ts_local) FROM events").fetchone()
        params = {"start": start, "end": end, "data_end": data_end_utc}
        for rule in policy.rules:
            compiled = compile_rule(policy, rule)
            assert "_seq_" not in compiled.sql
            cursor = con.execute(compiled.sql, {k: v for k, v in params.items() if f"${k}" in compiled.sql})
            names = [d[0] for d in cursor.description]
            alone += engine._entries(compiled, names, cursor.fetchall(), data_end_local, [])
    assert len(result.entries) > 1000
    assert sorted(result.entries, key=lambda e: e.id) == sorted(alone, key=lambda e: e.id)
