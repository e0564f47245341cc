"""A small workspace for the review desk's tests: the shipped policy and roster, a small
sample month (4 agents, seed 7: two 待复核 lines of its own) and one conversation of
hostile text — a buyer's message and an agent's account that are markup — whose rude reply
is a third 待复核 line."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from conftest import REPO
from ledger.core.entries import entry_id
from ledger.sample import generator

MONTH = "2024-05"
SCRIPT = '<script>window.__pwned = "script"</script>'
IMG = '<img src=x onerror="window.__pwned = \'img\'">'
EVIL_AGENT = "初晴旗舰店:<img src=x onerror=window.__pwned=1>"
HOSTILE_RUDE = entry_id("顶撞买家", "hx4", EVIL_AGENT)  # 待复核: the agent's rude reply


def build_workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "policy", root / "policy", ignore=shutil.ignore_patterns("quality"))
    shutil.copy(REPO / "roster.csv", root / "roster.csv")
    generator.generate(root / "events" / MONTH, MONTH, agents=4, conversations_per_day=12, seed=7)
    rows = [
        ("hx1", "2024-05-20 10:00:00", "buyer", SCRIPT),
        ("hx2", "2024-05-20 10:00:20", "buyer", IMG),
        ("hx3", "2024-05-20 10:00:40", "buyer", "能便宜点吗，别家才卖19元"),
        ("hx4", "2024-05-20 10:01:00", "agent", "你有病吧，爱买不买"),
    ]
    with (root / "events" / MONTH / "hostile.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "ts", "type", "conversation", "buyer", "agent", "sender", "text"])
        for i, ts, sender, text in rows:
            w.writerow([i, ts, "message", "c-hostile", "tb-hostile", EVIL_AGENT, sender, text])
    return root


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Path:
    """Built once per test process; tests copy it (copytree is cheap) before writing."""
    return build_workspace(tmp_path_factory.mktemp("desk") / "pristine")


def copy_workspace(pristine: Path, to: Path) -> Path:
    shutil.copytree(pristine, to)
    return to
