"""Shared harness for the house-rule tests: write events as files, run the engine, and
explain a mismatch between two sets of entries."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests run with sizes chosen so the whole suite stays under 5 minutes on the
# 2-core CI machine. HYPOTHESIS_PROFILE=thorough (a nightly-style run) gives every test
# five times as many examples: `n_examples(n)` for tests that name their count, the profile's
# default for the others.
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE", "") == "thorough"
settings.register_profile("ci", deadline=None)
settings.register_profile("thorough", deadline=None, max_examples=500)
settings.load_profile("thorough" if THOROUGH else "ci")


def n_examples(n: int) -> int:
    """`n` examples in CI, five times as many in the thorough profile."""
    return n * 5 if THOROUGH else n

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "policy"


# File names whose plain code-point order ('-' < '.' < '/') differs from pathlib's
# part-by-part order: docs/decisions.md reads files in code-point order of the path.
SPLIT_FILES = ["a-z.jsonl", "a.csv", "a/b.jsonl", "a/b/c.csv"]


def write_events(events: list[dict], folder: Path, fmt: str = "jsonl") -> Path:
    """The events in list order (so list order is the input order).

    jsonl: one file, one JSON object per line, keys as given (an absent key stays absent).
    csv:   one file, header = every key seen, in first-seen order; missing = empty cell.
    split: consecutive slices in SPLIT_FILES (jsonl and csv), which sort in list order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "split":
        size = max(1, -(-len(events) // len(SPLIT_FILES)))
        for number, name in enumerate(SPLIT_FILES):
            chunk = events[number * size:(number + 1) * size]
            if chunk:
                path = folder / name
                write_events(chunk, path.parent, path.suffix[1:])
                (path.parent / ("events." + path.suffix[1:])).rename(path)
        return folder
    if fmt == "jsonl":
        path = folder / "events.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for event in events:
                f.write(json.dumps(event, ensure_ascii=False) + "\n")
        return path
    if fmt == "csv":
        columns: list[str] = []
        for event in events:
            for column in event:
                if column not in columns:
                    columns.append(column)
        path = folder / "events.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            for event in events:
                writer.writerow(event)
        return path
    raise ValueError(fmt)


def as_tuples(entries) -> set[tuple]:
    return {(e.rule_id, e.agent, e.event_id, e.status, e.amount) for e in entries}


def run_engine_on(events: list[dict], fmt: str = "jsonl", month: str = "2024-05") -> set[tuple]:
    """Run ledger.engine.run_month with the shipped policy over `events` in a fresh folder."""
    from ledger.evaluate.engine import run_month  # imported here: the engine may not exist yet

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "events"
        write_events(events, root, fmt)
        result = run_month(policy_paths=[POLICY], events_root=root, month=month)
        return as_tuples(result.entries)


def describe_mismatch(expected: set, got: set, events: list[dict], got_name: str) -> str:
    """A readable diff: what is missing, what is extra, and the events in input order."""
    lines = [f"{got_name} differs from the expectation"]
    missing = sorted(expected - got, key=repr)
    extra = sorted(got - expected, key=repr)
    if missing:
        lines.append(f"  expected but not produced by {got_name}:")
        lines += [f"    - {entry}" for entry in missing]
    if extra:
        lines.append(f"  produced by {got_name} but not expected:")
        lines += [f"    + {entry}" for entry in extra]
    lines.append("  events (input order):")
    lines += [f"    {json.dumps(e, ensure_ascii=False)}" for e in events]
    return "\n".join(lines)


@pytest.fixture(scope="session")
def run_engine():
    """run_engine(events, fmt="jsonl", month="2024-05") -> {(rule, agent, event, status, amount)}."""
    return run_engine_on


@pytest.fixture(scope="session")
def assert_same_entries():
    """assert_same_entries(got, expected, events, got_name): equality with a readable diff."""

    def check(got: set, expected: set, events: list[dict], got_name: str) -> None:
        if got != expected:
            raise AssertionError(describe_mismatch(expected, got, events, got_name))

    return check
