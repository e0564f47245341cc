"""Failures that used to end in a traceback end in one line and a documented exit code
(issue 13 item 12): months out of range, a full disk or `ulimit -f`, a damaged seal, an
account name too long for a file name."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.cli import main
from ledger.outputs.agents import file_name, file_names

REPO = Path(__file__).resolve().parents[2]
POLICY = str(REPO / "policy")
EVENT = '{"ts": "2024-05-10 10:00:00", "type": "qa_flag", "agent": "店:小王", "category": "未挂离开"}\n'


def one_line(err: str) -> str:
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.fixture
def events(tmp_path) -> Path:
    folder = tmp_path / "events"
    folder.mkdir()
    (folder / "qa.jsonl").write_text(EVENT, encoding="utf-8")
    return folder


@pytest.mark.parametrize("month", ["9999-12", "0000-01", "3000-01"])
def test_months_out_of_range_are_one_line(events, tmp_path, capsys, month):
    code = main(["run", "--month", month, "--policy", POLICY, "--events", str(events), "--out", str(tmp_path / "o")])
    assert code == 2 and "月份超出范围" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["byte", "folder"])
def test_a_damaged_seal_is_one_line_and_nothing_is_written(events, tmp_path, capsys, damage):
    month = tmp_path / "o" / "2024-05"
    month.mkdir(parents=True)
    if damage == "byte":
        (month / "CLOSED").write_bytes(b"month: 2024-05\n\xff\n")
    else:
        (month / "CLOSED").mkdir()
    for command in (["run", "--month", "2024-05"], ["close", "2024-05"]):
        code = main(command + ["--policy", POLICY, "--events", str(events), "--out", str(tmp_path / "o")])
        assert code == 6 and "结账记录" in one_line(capsys.readouterr().err)
    assert [p.name for p in month.iterdir()] == ["CLOSED"]


def _limit_file_size(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("limit", [64 << 10, 1 << 20])
def test_ulimit_f_is_one_line_with_exit_code_5(events, tmp_path, limit):
    """`ulimit -f`: writing past it fails with EFBIG (Python ignores SIGXFSZ), in the reader's
    temporary file or in DuckDB's database; either way one line, exit code 5."""
    (events / "big.csv").write_text("id,ts,type,note\n" + "".join(
        f"n{i},2024-05-10 10:00:00,note,{'x' * 200}\n" for i in range(6000)), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), LEDGER_EVENTS_READER="python")
    done = subprocess.run([sys.executable, "-m", "ledger", "run", "--month", "2024-05", "--policy", POLICY,
                           "--events", str(events), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, preexec_fn=_limit_file_size(limit), timeout=300)
    assert done.returncode == 5, done.stderr
    assert "磁盘空间不足或文件超过大小限制" in one_line(done.stderr)


def test_long_account_names_make_safe_stable_unique_file_names():
    long = "shop:" + "很长的名字" * 30  # 455 bytes: past the 255 a file system allows
    names = file_names([long, long + "2", long.upper(), "店:小王"])  # the last two differ past the cut
    assert len(set(names.values())) == 4
    assert all(len(n.encode()) <= 200 for n in names.values())
    assert len({n.lower() for n in names.values()}) == 4  # also on file systems that ignore case
    assert names[long] == file_name(long) == file_names([long])[long]  # the same from run to run
    assert names["店:小王"] == "店_小王.xlsx"
    assert file_name("店:" + "😀" * 100).encode().decode() == file_name("店:" + "😀" * 100)  # cut between characters
