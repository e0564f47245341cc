"""Rules over the same sequence share one sorted table (compile.shared_sequences); the
entries must be exactly those of each rule compiled on its own."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from ledger.evaluate import engine
from ledger.evaluate.compile import compile_rule, sequence_key, shared_sequences
from ledger.lang.syntax import parse
from ledger.lang.check import check
from ledger.core.month import Month
from ledger.evaluate.evidence import entries_of
from ledger.lang import load as policy_load

REPO = Path(__file__).resolve().parents[2]

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
    # a and c (no filter, per conversation) share a table; b and d (same filter however
    # spaced) and f read only positions, so they read it too, as numbered subsets.
    assert set(groups) == {(0, 1, 2, 3, 5)}
    both = groups[(0, 1, 2, 3, 5)]
    assert '"_previous_sender"' in both.sql and '"_next_kind"' in both.sql  # every neighbour of the group
    assert "_gap" not in both.sql  # nobody reads gap
    relations = dict(both.relations)
    assert len(relations) == 3  # the whole sequence, agent messages, buyer messages
    assert sum("WHERE" in r.sql for r in relations.values()) == 2


def test_a_subset_read_for_its_neighbours_joins_them_from_the_whole_table():
    """previous. in a subset means the previous *member of the subset*: not the whole
    sequence's lag, but the member numbered one before it (a join). A subset that reads
    `gap` still sorts on its own."""
    policy = policy_of("""
rule a: on message per conversation when previous.sender = "buyer" fine 1元
rule b: on message[kind = "text"] per conversation when first fine 1元
rule c: on message per conversation when sender = "buyer" fine 1元
rule g: on message[sender = "agent"] per conversation when previous.text = "x" fine 1元
rule h: on message[sender = "buyer"] per conversation when gap > 10m fine 1元
rule i: on message[sender = "buyer"] per conversation when first fine 1元
""")
    groups = {s.rules: s for s in shared_sequences(policy, list(policy.rules))}
    assert set(groups) == {(0, 1, 2, 3), (4, 5)}  # h (gap) and i sort buyer messages on their own
    table = groups[(0, 1, 2, 3)]
    assert 'lag("sender")' in table.sql and 'lag("text")' not in table.sql  # g's neighbour is not the whole's
    relations = dict(table.relations)
    subset = relations[sequence_key(policy, policy.rules[3])]
    assert "LEFT JOIN" in subset.sql and '"_previous_text"' in subset.sql
    assert "JOIN" not in relations[sequence_key(policy, policy.rules[1])].sql  # positions only


def test_house_policy_sorts_messages_per_conversation_once():
    """The per-conversation house rules and turn metrics read one table (the engine
    passes rules, then metrics with `on`); 敬语 (agent text messages: first, last),
    首次响应时长 (buyer messages: first), 短语回复 and 未再次询问 read it as numbered subsets."""
    policy, _ = policy_load.checked_policy([REPO / "policy"])
    readers = list(policy.rules) + [m for m in policy.metrics if m.on is not None]
    shared = shared_sequences(policy, readers)
    name = lambda r: r.id.value if hasattr(r, "id") else r.name.value  # noqa: E731
    # 短语回复 and 未再次询问 read answers with the robot's lines left out (and their
    # previous.): a subset too, its neighbours joined.
    assert [[name(readers[i]) for i in s.rules] for s in shared] == [
        ["敬语", "短语回复", "回复超时", "未再次询问", "首次响应时长", "平均响应时长", "提问轮次", "三分钟回复轮次",
         "回复轮次"]]


def test_shared_tables_give_the_entries_of_rules_compiled_alone():
    policy, sources = policy_load.checked_policy([REPO / "policy"])
    month = Month.parse("2024-05")
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
            alone += entries_of(compiled, names, cursor.fetchall(), data_end_local, [])
    # The event rules' lines (the month's incentive lines are monthly rules, not compiled alone).
    per_event = [e for e in result.entries if not e.event_id.startswith("month:")]
    assert len(per_event) > 100
    assert sorted(per_event, key=lambda e: e.id) == sorted(alone, key=lambda e: e.id)


SEQUENCE_POLICY = """
rule g: on message per conversation when gap > 10m fine 1元
rule p: on message per conversation when position = 3 fine 2元
rule l: on message[sender = "agent"] per conversation when last fine 3元
rule n: on message[sender = "agent"] per conversation when next.sender = "agent" fine 4元
rule t: on message per buyer when hour(previous.ts) = 10 fine 5元
rule f: on message[sender = "buyer"] per conversation when first or (position = 2 and last) fine 6元
"""


def naive(events: list[dict]) -> set[tuple]:
    """The six rules above, read literally, in plain Python."""
    from datetime import datetime

    def seqs(members, key):
        groups: dict = {}
        for i, e in enumerate(members):
            groups.setdefault(e.get(key) or ("alone", e["id"]), []).append(e)
        return [sorted(g, key=lambda e: (e["ts"], events.index(e))) for g in groups.values()]

    ts = lambda e: datetime.fromisoformat(e["ts"])  # noqa: E731
    out = set()
    for s in seqs(events, "conversation"):
        for k, e in enumerate(s):
            if k and (ts(e) - ts(s[k - 1])).total_seconds() > 600:
                out.add(("g", e["id"]))
            if k == 2:
                out.add(("p", e["id"]))
    agents = [e for e in events if e.get("sender") == "agent"]
    for s in seqs(agents, "conversation"):
        for k, e in enumerate(s):
            if k == len(s) - 1:
                out.add(("l", e["id"]))
            if k + 1 < len(s) and s[k + 1].get("sender") == "agent":
                out.add(("n", e["id"]))
    for s in seqs(events, "buyer"):
        for k, e in enumerate(s):
            if k and ts(s[k - 1]).hour == 10:
                out.add(("t", e["id"]))
    buyers = [e for e in events if e.get("sender") == "buyer"]
    for s in seqs(buyers, "conversation"):
        for k, e in enumerate(s):
            if k == 0 or (k == 1 and len(s) == 2):
                out.add(("f", e["id"]))
    return out


def test_sequence_facts_with_shared_and_narrowed_sequences(tmp_path):
    """gap, position, last, next. and previous.ts from a shared table (g+p), a sequence
    of its own (t) and subsets numbered inside g+p's table (f: first, position and last
    among buyer messages; l+n: last and next. among agent messages, next. joined),
    against the rules read literally."""
    import json

    policy = policy_of(SEQUENCE_POLICY)
    assert sorted(s.rules for s in shared_sequences(policy, list(policy.rules))) == [(0, 1, 2, 3, 5)]
    rows = []
    for c in range(6):
        for k in range(7):
            minute = [0, 3, 15, 16, 40, 41, 41][k] + c
            rows.append({"id": f"e{c}{k}", "ts": f"2024-05-0{1 + c % 3} {9 + (k + c) % 3:02d}:{minute:02d}:00",
                         "type": "message", "conversation": f"c{c}" if c != 5 else "",
                         "buyer": f"b{c % 2}", "agent": "店:小王",
                         "sender": ["buyer", "agent", "agent", "buyer", "agent", "agent", "buyer"][(k + c) % 7],
                         "text": "好的"})
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    result = engine.run_policy(policy, (), tmp_path, Month.parse("2024-05"))
    got = {(e.rule_id, e.event_id) for e in result.entries}
    want = naive(rows)
    assert {r for r, _ in want} == {"g", "p", "l", "n", "t", "f"}  # every rule has something to find
    assert got == want
    # g and p read no `last`: the shared table has no member count, and the evidence counts
    # the sequences of the lines' events (a missing conversation: a sequence of one)
    assert '"_count"' not in shared_sequences(policy, list(policy.rules))[0].sql.replace("_count_", "")
    facts = {}
    for s in naive_sequences(rows, rows, "conversation"):
        facts.update({e["id"]: f"第 {k + 1}/{len(s)} 条" for k, e in enumerate(s)})
    checked = [e for e in result.entries if e.rule_id in ("g", "p")]
    assert checked
    for e in checked:
        assert facts[e.event_id] in e.evidence, (e.event_id, e.evidence)
    # the same for every buyer message, with a missing conversation among them
    policy = policy_of('rule y: on message per conversation when previous.sender = "agent" fine 1元\n'
                       'rule z: on message per conversation when sender = "buyer" fine 1元\n')
    assert len(shared_sequences(policy, list(policy.rules))) == 1
    checked = [e for e in engine.run_policy(policy, (), tmp_path, Month.parse("2024-05")).entries if e.rule_id == "z"]
    assert len(checked) == sum(r["sender"] == "buyer" for r in rows)
    assert any(facts[e.event_id] == "第 1/1 条" for e in checked)  # a missing conversation: a sequence of one
    for e in checked:
        assert facts[e.event_id] in e.evidence, (e.event_id, e.evidence)


def naive_sequences(events: list[dict], members: list[dict], key: str) -> list[list[dict]]:
    """`members` grouped by `key` (a missing key: a sequence of its own), each in time order."""
    groups: dict = {}
    for e in members:
        groups.setdefault(e.get(key) or ("alone", e["id"]), []).append(e)
    return [sorted(g, key=lambda e: (e["ts"], events.index(e))) for g in groups.values()]
