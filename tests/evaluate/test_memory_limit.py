"""The run's DuckDB memory limit (engine.memory_limit_for, usable_memory, database)."""

from __future__ import annotations

import pytest

from ledger.evaluate import engine

GB = 1 << 30


@pytest.mark.parametrize("total, limit", [
    (24 * GB, f"{int(24 * GB * 0.4) >> 20}MiB"),  # this machine: 9,830MiB
    (2 * GB, "1024MiB"),                          # a small machine: never under 1 GB
    (256 * GB, "16384MiB"),                       # a big server: never over 16 GB
    (None, "3GB"),                               # memory unknown: the old fixed limit
])
def test_the_limit_is_a_share_of_the_usable_memory_within_bounds(total, limit):
    assert engine.memory_limit_for(total) == limit


def test_a_container_limit_below_the_machine_memory_wins(tmp_path, monkeypatch):
    cgroup = tmp_path / "memory.max"
    cgroup.write_text("2147483648\n")
    monkeypatch.setattr(engine, "_CGROUP_LIMITS", (tmp_path / "absent", cgroup))
    assert engine.usable_memory() == 2 * GB
    cgroup.write_text("max\n")  # no container limit: the machine's memory
    assert engine.usable_memory() > 2 * GB


def test_the_database_gets_the_limit_and_the_variable_overrides_it(monkeypatch):
    monkeypatch.delenv("LEDGER_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(engine, "usable_memory", lambda: 10 * GB)
    with engine.database() as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "4.0 GiB"
        assert con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0].endswith("GiB")
    monkeypatch.setenv("LEDGER_MEMORY_LIMIT", "2GB")
    with engine.database() as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "1.8 GiB"
