"""One consistent output set, one writer per output folder (issue 13 item 13).

Runs are real `python -m ledger` processes. LEDGER_TEST_PAUSE makes a run stop in the
per-agent phase (after its first per-agent file) until the test lets it go, so the tests
can kill it there or start a second writer beside it."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from conftest import write_events
from ledger.cli import main
from ledger.outputs.workbook import writer

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policy" / "house-rules.rules"
AGENTS = ["初晴旗舰店:小王", "初晴旗舰店:小李", "初晴旗舰店:小美", "初晴旗舰店:小雨"]


def flags(agents: list[str], per_agent: int) -> list[dict]:
    out = []
    for a, agent in enumerate(agents):
        for n in range(per_agent + a):
            out.append({"id": f"q{a}-{n}", "ts": f"2024-05-{n % 28 + 1:02d} 10:{a:02d}:00", "type": "qa_flag",
                        "agent": agent, "category": "未挂离开", "note": f"离开 {n} 分钟"})
    return out


@pytest.fixture
def shop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tmp").mkdir()
    write_events(flags(AGENTS[:3], 2), tmp_path / "events-a" / "2024-05")
    write_events(flags(AGENTS[1:], 3), tmp_path / "events-b" / "2024-05")
    return tmp_path


def args(command: str, events: str) -> list[str]:
    month = ["2024-05"] if command == "close" else ["--month", "2024-05"]
    return [command, *month, "--policy", str(POLICY), "--events", events, "--out", "out"]


def start(shop: Path, command: str, events: str, **env) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(REPO / "src"), TMPDIR=str(shop / "tmp"), **env)
    # SIGINT as a terminal gives it: pytest-xdist workers ignore it, and a child would inherit that.
    return subprocess.Popen([sys.executable, "-m", "ledger", *args(command, events)], cwd=shop, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_pause(pause: Path, n: int, proc: subprocess.Popen) -> list[int]:
    """The pids of the `n` processes stopped at the pause point."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = pause.read_text().splitlines() if pause.exists() else []
        if len(lines) >= n:
            return [int(line.split()[1]) for line in lines]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never reached the per-agent phase")


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # a zombie no one reaped has stopped all the same


def files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def summary(path: Path) -> dict[str, tuple]:
    rows = list(openpyxl.load_workbook(path, read_only=True)["汇总"].iter_rows(values_only=True))
    return {r[0]: (Decimal(str(r[1])), Decimal(str(r[2]))) for r in rows[1:] if r[0] != "合计"}


def info(path: Path) -> dict[str, object]:
    return {r[0]: r[1] for r in openpyxl.load_workbook(path, read_only=True)["说明"].iter_rows(values_only=True)}


def assert_consistent(month: Path, events: Path) -> dict[str, tuple]:
    """The set is one run's: each per-agent file names the statement beside it (SHA-256)
    and repeats its agent's totals; every agent has a file and no other file is there;
    the statement read the given events."""
    statement = month / "ledger-2024-05.xlsx"
    totals = summary(statement)
    sha = hashlib.sha256(statement.read_bytes()).hexdigest()
    agent_files = sorted((month / "agents").glob("*.xlsx"))
    assert sorted(p.stem.replace("_", ":") for p in agent_files) == sorted(totals)
    for p in agent_files:
        assert info(p)["来源账单 SHA-256"] == sha
        agent = p.stem.replace("_", ":")
        assert summary(p)[agent] == totals[agent]
    assert info(statement)["事件文件 1 SHA-256"] == hashlib.sha256(
        (events / "2024-05" / "events.jsonl").read_bytes()).hexdigest()
    return totals


def leftovers(shop: Path) -> list[str]:
    staging = shop / "out" / ".ledger" / "staging"
    return ([p.name for p in staging.iterdir()] if staging.is_dir() else []) + \
        [p.name for p in (shop / "tmp").iterdir() if p.name.startswith("ledger")] + \
        [p.name for p in (shop / "out").rglob("*.tmp")]


def test_sigkill_in_the_per_agent_phase_keeps_the_previous_set_and_stops_the_workers(shop):
    assert main(args("run", "events-a")) == 0
    before = files(shop / "out" / "2024-05")
    pause = shop / "pause"
    run = start(shop, "run", "events-b", LEDGER_TEST_PAUSE=str(pause), LEDGER_WORKERS="2")
    workers = wait_for_pause(pause, 2, run)
    assert run.pid not in workers  # forked writers
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 30
    while not all(gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(pid) for pid in workers), "per-agent workers outlived their parent"
    assert files(shop / "out" / "2024-05") == before
    assert leftovers(shop)  # the killed run's staging folder and scratch folder are still there ...
    again = start(shop, "run", "events-b")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert leftovers(shop) == []  # ... and the next run removed them
    totals = assert_consistent(shop / "out" / "2024-05", shop / "events-b")
    assert set(totals) == set(AGENTS[1:])


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_in_the_per_agent_phase_keeps_the_previous_set_and_leaves_no_litter(shop, workers):
    assert main(args("run", "events-a")) == 0
    before = files(shop / "out" / "2024-05")
    pause = shop / "pause"
    run = start(shop, "run", "events-b", LEDGER_TEST_PAUSE=str(pause), LEDGER_WORKERS=str(workers))
    paused = wait_for_pause(pause, workers, run)
    run.send_signal(signal.SIGINT)  # to the parent only: it must stop its workers itself
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130 and err.strip() == "ledger: 已取消 (aborted)"
    assert all(gone(pid) for pid in paused)
    assert files(shop / "out" / "2024-05") == before
    assert leftovers(shop) == []


def test_a_second_writer_is_refused_while_the_first_writes_and_sets_never_mix(shop, monkeypatch, capsys):
    pause = shop / "pause"
    first = start(shop, "run", "events-a", LEDGER_TEST_PAUSE=str(pause), LEDGER_WORKERS="1")
    wait_for_pause(pause, 1, first)
    monkeypatch.setenv("LEDGER_LOCK_WAIT", "0")
    capsys.readouterr()
    assert main(args("run", "events-b")) == 9
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "另一个 ledger 正在写" in err and f"pid {first.pid}" in err
    assert "ledger run --month 2024-05" in err
    # close beside a run never seals the other run's statement
    assert main(args("close", "events-b")) == 9
    assert not (shop / "out" / "2024-05" / "CLOSED").exists()
    (shop / "pause.go").touch()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert set(assert_consistent(shop / "out" / "2024-05", shop / "events-a")) == set(AGENTS[:3])
    assert main(args("run", "events-b")) == 0
    assert set(assert_consistent(shop / "out" / "2024-05", shop / "events-b")) == set(AGENTS[1:])


def test_a_second_writer_waits_for_the_first_then_writes_its_own_set(shop):
    pause = shop / "pause"
    first = start(shop, "run", "events-a", LEDGER_TEST_PAUSE=str(pause), LEDGER_WORKERS="1")
    wait_for_pause(pause, 1, first)
    second = start(shop, "close", "events-b", LEDGER_LOCK_WAIT="120")
    # the second is waiting for the lock (it has not written a thing) ...
    assert not (shop / "out" / ".ledger" / "closed-months.txt").exists()
    (shop / "pause.go").touch()
    assert first.wait(timeout=120) == 0
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    # ... and then closed its own run: the sealed statement is the one it wrote, from events-b
    month = shop / "out" / "2024-05"
    assert set(assert_consistent(month, shop / "events-b")) == set(AGENTS[1:])
    sealed = (month / "CLOSED").read_text(encoding="utf-8")
    assert f"statement: ledger-2024-05.xlsx sha256={files(month)['ledger-2024-05.xlsx']}" in sealed


@pytest.mark.parametrize("code, words, workers", [(errno.ENOSPC, "磁盘空间不足", "1"),
                                                  (errno.EFBIG, "文件超过允许的大小", "1"),
                                                  (errno.ENOSPC, "磁盘空间不足", "2")])
def test_a_full_disk_while_writing_agent_files_keeps_the_previous_set(shop, monkeypatch, capsys, code, words,
                                                                      workers):
    assert main(args("run", "events-a")) == 0
    month = shop / "out" / "2024-05"
    before = files(month)
    real, real_finish = writer.write_tables, writer.finish_tables
    written = []

    def full(tables, info, path, **kw):
        if written:
            raise OSError(code, os.strerror(code))
        written.append(path)
        return real(tables, info, path, **kw)

    def full_finish(pending, last, path):  # a forked worker finishes its files with this
        if written:
            raise OSError(code, os.strerror(code))
        written.append(path)
        return real_finish(pending, last, path)

    monkeypatch.setenv("LEDGER_WORKERS", workers)  # 2: the failure happens in a forked worker
    monkeypatch.setattr(writer, "write_tables", full)
    monkeypatch.setattr(writer, "finish_tables", full_finish)
    capsys.readouterr()
    assert main(args("run", "events-b")) == 5
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "上一次的输出保持原样" in err
    assert files(month) == before
    assert list((shop / "out" / ".ledger" / "staging").iterdir()) == []


def test_a_rerun_keeps_the_users_own_files_and_drops_old_tmp_litter(shop):
    assert main(args("run", "events-a")) == 0
    month = shop / "out" / "2024-05"
    (month / "主管备注.txt").write_text("5 月已发 HR", encoding="utf-8")
    (month / "agents" / "签字扫描.pdf").write_bytes(b"%PDF")
    (month / ".ledger-2024-05.xlsx.abc123.tmp").write_bytes(b"half")  # an older version's litter
    stale = month / "agents" / "初晴旗舰店_小王.xlsx"
    assert stale.exists()
    assert main(args("run", "events-b")) == 0
    assert (month / "主管备注.txt").read_text(encoding="utf-8") == "5 月已发 HR"
    assert (month / "agents" / "签字扫描.pdf").read_bytes() == b"%PDF"
    assert not (month / ".ledger-2024-05.xlsx.abc123.tmp").exists()
    assert not stale.exists()  # 小王 has no line in events-b: his old file is not handed out again
    assert_consistent(month, shop / "events-b")


def test_a_run_without_one_usable_row_still_writes_every_reason(shop, capsys):
    """Issue 13 item 15: the reasons (and the unknown-layout diagnosis) are never lost."""
    assert main(args("run", "events-a")) == 0
    bad = shop / "events-bad" / "2024-05"
    bad.mkdir(parents=True)
    (bad / "导出.csv").write_text("客户,内容\n张三,在吗\n", encoding="utf-8")
    (bad / "加密.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    (bad / "events.jsonl").write_text(
        '{"id": "x1", "type": "qa_flag", "agent": "店:小王", "note": "买家电话 13812345678"}\n', encoding="utf-8")
    capsys.readouterr()
    assert main(args("run", "events-bad")) == 3
    captured = capsys.readouterr()
    (error,) = captured.err.strip().splitlines()
    assert "rejected-rows.csv" in error
    month = shop / "out" / "2024-05"
    # the month holds this run's result alone: no statement of another run beside its rejects
    assert sorted(p.name for p in month.iterdir()) == ["rejected-rows.csv"]
    text = (month / "rejected-rows.csv").read_text(encoding="utf-8-sig")
    assert "unknown layout" in text and "加密.xlsx" in text and "events.jsonl" in text
    assert "13812345678" not in text and "138****5678" in text
    n_rows = len(text.strip().splitlines()) - 1
    assert f"拒收的 {n_rows} 行" in error
    assert "3 个文件没有一行可用" in captured.out


def test_a_run_that_finds_nothing_at_all_writes_nothing(shop, capsys):
    assert main(args("run", "events-a")) == 0
    before = files(shop / "out" / "2024-05")
    (shop / "events-empty").mkdir()
    assert main(args("run", "events-empty")) == 3
    assert "什么也没有写" in capsys.readouterr().err
    assert files(shop / "out" / "2024-05") == before
