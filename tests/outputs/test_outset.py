"""outset.py and core/scratch.py below the command line: the swap without RENAME_EXCHANGE,
recovery after a kill between the two renames, the lock, and the reaping of scratch
folders (issue 13 item 13)."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ledger.core import scratch
from ledger.core.errors import LedgerError
from ledger.outputs import outset


def write_set(folder: Path, text: str) -> None:
    (folder / "agents").mkdir(exist_ok=True)
    (folder / "ledger-2024-05.xlsx").write_text(text)
    (folder / "agents" / "a.xlsx").write_text(text)


def contents(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("exchange", [True, False])
def test_staged_swaps_the_whole_set_in_with_or_without_rename_exchange(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(outset, "exchange", lambda a, b: False)
    for text in ("one", "two"):
        before = contents(tmp_path / "2024-05")
        with outset.staged(tmp_path, "2024-05", "ledger-2024-05.xlsx") as folder:
            write_set(folder, text)
            assert contents(tmp_path / "2024-05") == before  # nothing shows until the block ends
        assert contents(tmp_path / "2024-05") == {"ledger-2024-05.xlsx": text, "agents/a.xlsx": text}
    assert list((tmp_path / ".ledger" / "staging").iterdir()) == []


def test_a_failure_inside_the_block_keeps_the_previous_set(tmp_path):
    with outset.staged(tmp_path, "2024-05", "ledger-2024-05.xlsx") as folder:
        write_set(folder, "one")
    with pytest.raises(KeyboardInterrupt):
        with outset.staged(tmp_path, "2024-05", "ledger-2024-05.xlsx") as folder:
            write_set(folder, "two")
            raise KeyboardInterrupt
    assert contents(tmp_path / "2024-05") == {"ledger-2024-05.xlsx": "one", "agents/a.xlsx": "one"}
    assert list((tmp_path / ".ledger" / "staging").iterdir()) == []


def test_recover_after_a_kill_between_the_two_renames(tmp_path):
    """The only in-between state of the two-rename swap: the month moved aside, the new set
    not yet in place. The next writer puts the previous set back and clears staging."""
    staging = tmp_path / ".ledger" / "staging"
    (staging / "2024-05.old-4242").mkdir(parents=True)
    write_set(staging / "2024-05.old-4242", "previous")
    (staging / "2024-05.new-4242").mkdir()
    write_set(staging / "2024-05.new-4242", "half")
    (staging / "2024-04.new-99").mkdir()  # a killed run of another month, before its swap
    with outset.writer_lock(tmp_path, "test"):
        assert contents(tmp_path / "2024-05") == {"ledger-2024-05.xlsx": "previous", "agents/a.xlsx": "previous"}
        assert list(staging.iterdir()) == []
        assert not (tmp_path / "2024-04").exists()


def test_an_old_set_beside_a_complete_month_is_just_removed(tmp_path):
    staging = tmp_path / ".ledger" / "staging"
    (staging / "2024-05.old-4242").mkdir(parents=True)
    (tmp_path / "2024-05").mkdir()
    write_set(tmp_path / "2024-05", "new")
    assert outset.recover(tmp_path) == ["removed 2024-05.old-4242"]
    assert contents(tmp_path / "2024-05") == {"ledger-2024-05.xlsx": "new", "agents/a.xlsx": "new"}


def test_the_lock_refuses_a_second_holder_with_who_holds_it(tmp_path):
    with outset.writer_lock(tmp_path, "ledger run --month 2024-05"):
        with pytest.raises(LedgerError) as refused:
            with outset.writer_lock(tmp_path, "ledger close 2024-05", wait=0):
                pass
        assert refused.value.exit_code == outset.EXIT_BUSY
        assert f"pid {os.getpid()} · ledger run --month 2024-05" in str(refused.value)
    with outset.writer_lock(tmp_path, "ledger close 2024-05", wait=0):  # released: free again
        pass


def test_scratch_folders_of_dead_runs_are_reaped_and_live_ones_never(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / (scratch.PREFIX + "1-dead")
    dead.mkdir()
    (dead / scratch.LOCK_NAME).touch()  # nobody holds it: its run is gone
    (dead / "month.duckdb").write_bytes(b"x" * 100)
    half = tmp_path / (scratch.PREFIX + "2-half")
    half.mkdir()  # no lock yet: a run that is just starting
    other = tmp_path / "ledger-unrelated"
    other.mkdir()
    with scratch.run_scratch() as mine:
        assert tempfile.gettempdir() == str(mine) and mine.parent == tmp_path
        assert not dead.exists() and half.exists() and other.exists()
        assert scratch.reap(tmp_path) == []  # our own folder is locked: kept
        assert mine.exists()
    assert not mine.exists() and tempfile.tempdir == str(tmp_path)


def test_a_failed_first_command_leaves_no_output_folder_and_waiters_relock(tmp_path):
    """The first holder created the folder and wrote nothing: it removes the folder and
    the lock file on the way out. A second writer that was waiting then holds a lock on
    a removed file; it must notice and lock the file now at the path, so that a third one
    is still refused."""
    out = tmp_path / "reports"
    waiting_started, second_holds, release_second = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def second():
        try:
            waiting_started.set()
            with outset.writer_lock(out, "second", wait=60):
                second_holds.set()
                release_second.wait(60)
        except BaseException as exc:  # reported below
            errors.append(exc)
            second_holds.set()

    with outset.writer_lock(out, "first"):
        thread = threading.Thread(target=second)
        thread.start()
        waiting_started.wait(10)
        time.sleep(0.3)  # let the second open the lock file and wait on it (not a timing assertion)
    assert second_holds.wait(60) and not errors
    try:
        with pytest.raises(LedgerError) as refused:
            with outset.writer_lock(out, "third", wait=0):
                pass
        assert "second" in str(refused.value)
    finally:
        release_second.set()
        thread.join(60)
    # (the second found the folder there when it started, so it leaves the folder it re-made)
    assert [p.name for p in out.iterdir()] == [".ledger"]


def test_a_policy_error_writes_no_output_folder(tmp_path, monkeypatch):
    from ledger.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.rules").write_text("rule x\n", encoding="utf-8")
    (tmp_path / "events").mkdir()
    assert main(["run", "--month", "2024-05", "--policy", "bad.rules", "--out", "reports"]) == 1
    assert not (tmp_path / "reports").exists()
