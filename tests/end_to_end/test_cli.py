"""The command line end to end: the sample month, determinism, and clean failures."""

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from ledger.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    code = main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"),
                 "--events", str(REPO / "events"), "--out", str(out)])
    assert code == 0
    return out / "2024-05"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sample_month_statement(sample_run):
    wb = openpyxl.load_workbook(sample_run / "ledger-2024-05.xlsx")
    assert wb.sheetnames[0] == "汇总"
    assert {"明细", "规则", "说明"} <= set(wb.sheetnames)
    summary = list(wb["汇总"].iter_rows(values_only=True))
    header = summary[0]
    assert header[:5] == ("客服", "罚款", "奖励", "净额", "次数")
    agents = [r for r in summary[1:] if r[0] != "合计"]
    assert len(agents) >= 10
    # 罚款 per agent = the sum of that agent's applied fine lines in 明细.
    detail = list(wb["明细"].iter_rows(values_only=True))
    h = detail[0]
    col = {name: i for i, name in enumerate(h)}
    per_agent: dict[str, Decimal] = {}
    for row in detail[1:]:
        if row[col["类型"]] == "罚款" and row[col["金额"]] is not None:
            per_agent[row[col["客服"]]] = per_agent.get(row[col["客服"]], Decimal(0)) + Decimal(str(row[col["金额"]]))
    for row in agents:
        assert Decimal(str(row[1])).quantize(Decimal("0.01")) == per_agent.get(row[0], Decimal(0)), row[0]
    # every house rule fires somewhere in a realistic month
    fired = {row[col["规则"]] for row in detail[1:]}
    assert {"敬语", "短语回复", "回复超时", "核对订单", "未再次询问", "退款超时", "交接班"} <= fired


def test_rejected_rows_file(sample_run):
    text = (sample_run / "rejected-rows.csv").read_text("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == "file,line,reason,raw"
    assert len(lines) - 1 == 3  # the sample carries three malformed rows on purpose


def test_two_runs_give_byte_identical_files(sample_run, tmp_path):
    code = main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"),
                 "--events", str(REPO / "events"), "--out", str(tmp_path)])
    assert code == 0
    for name in ("ledger-2024-05.xlsx", "rejected-rows.csv"):
        assert sha(tmp_path / "2024-05" / name) == sha(sample_run / name)


def test_check_passes_on_shipped_policy(capsys):
    assert main(["check", str(REPO / "policy")]) == 0
    assert "policy OK" in capsys.readouterr().out


def test_check_reports_misspelt_field(tmp_path, capsys):
    text = (REPO / "policy" / "house-rules.rules").read_text("utf-8").replace("reason has any", "reasn has any")
    (tmp_path / "house.rules").write_text(text, "utf-8")
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "reasn" in l)
    assert f"house.rules:{line}:" in err and "reason" in err and "^" in err


@pytest.mark.parametrize("args, code, needle", [
    (["run", "--month", "2024-13"], 2, "YYYY-MM"),
    (["run", "--month", "May"], 2, "YYYY-MM"),
    (["run", "--month", "2024-05", "--events", "/nonexistent/events"], 2, "events folder not found"),
    (["run", "--month", "2024-05", "--policy", "/nonexistent/policy"], 2, "policy path not found"),
    (["run"], 2, "--month"),
    (["frobnicate"], 2, "frobnicate"),
])
def test_bad_input_is_one_clear_line(args, code, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(args + (["--out", str(tmp_path)] if args[0] == "run" and len(args) > 1 else [])) == code
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_empty_events_folder(tmp_path, capsys):
    (tmp_path / "events").mkdir()
    code = main(["run", "--month", "2024-05", "--policy", str(REPO / "policy"),
                 "--events", str(tmp_path / "events"), "--out", str(tmp_path / "out")])
    assert code == 3
    assert "no events" in capsys.readouterr().err
    assert not (tmp_path / "out" / "2024-05" / "ledger-2024-05.xlsx").exists()


def test_strict_fails_on_rejects_but_still_writes(tmp_path, capsys):
    events = tmp_path / "events"
    events.mkdir()
    (events / "m.csv").write_text("ts,type,agent\n2024-05-02 10:00:00,shift_end,a\nbad-ts,shift_end,a\n", "utf-8")
    args = ["run", "--month", "2024-05", "--policy", str(REPO / "policy"), "--events", str(events),
            "--out", str(tmp_path / "out")]
    assert main(args) == 0
    assert main(args + ["--strict"]) == 4
    assert (tmp_path / "out" / "2024-05" / "ledger-2024-05.xlsx").exists()


def test_diff_command_against_a_file(tmp_path, capsys):
    base = tmp_path / "base.rules"
    text = (REPO / "policy" / "house-rules.rules").read_text("utf-8")
    base.write_text(text.replace("fine 30元\n\n", "fine 25元\n\n", 1), "utf-8")
    args = ["diff", "--month", "2024-05", "--base", str(base), "--policy", str(REPO / "policy"),
            "--events", str(REPO / "events")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "25元 → 30元" in out and "退款超时" in out
    assert main(args + ["--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "```diff" in md and "| --- |" in md
    assert main(args + ["--format", "html"]) == 2


def test_explain_command(capsys):
    common = ["--month", "2024-05", "--policy", str(REPO / "policy"), "--events", str(REPO / "events")]
    result = __import__("ledger.evaluate.engine", fromlist=["run_month"]).run_month([REPO / "policy"], REPO / "events", "2024-05")
    entry = next(e for e in result.entries if e.rule_id == "回复超时")
    assert main(["explain", entry.id] + common) == 0
    out = capsys.readouterr().out
    assert entry.id in out and "回复超时" in out and "会话记录" in out
    assert main(["explain", "--event", entry.event_id] + common) == 0
    assert "规则 (rules)" in capsys.readouterr().out
    assert main(["explain", "ENOPE"] + common) == 2
    assert main(["explain"] + common) == 2


def test_test_command_runs_the_shipped_examples(capsys, tmp_path):
    assert main(["test", "--strict", str(REPO / "policy")]) == 0
    out = capsys.readouterr().out
    # every rule and version has examples, the monthly rules (incentives) too: --strict passes
    assert "失败 0" in out and "没有例子的规则 (rules without examples): 无" in out
    wrong = tmp_path / "house.rules"
    text = (REPO / "policy" / "house-rules.rules").read_text("utf-8")
    wrong.write_text(text.replace("expect 回复超时 20元", "expect 回复超时 25元", 1), "utf-8")
    assert main(["test", str(wrong)]) == 1
    line = next(i for i, l in enumerate(wrong.read_text("utf-8").splitlines(), 1) if "expect 回复超时 25元" in l)
    out = capsys.readouterr().out
    assert "✗" in out and f"第 {line} 行" in out


def test_shipped_policy_is_formatted(capsys):
    assert main(["fmt", "--check", str(REPO / "policy")]) == 0
    assert "already formatted" in capsys.readouterr().out


def test_run_on_a_terminal_shows_progress_for_every_phase(tmp_path):
    """stderr a terminal: each phase, file and rule is announced with the time so far;
    the summary gives each phase's time. (Piped, as everywhere else here: silent.)"""
    import os
    import pty
    import re
    import subprocess
    import sys

    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "ledger", "run", "--month", "2024-05",
                           "--policy", str(REPO / "policy"), "--events", str(REPO / "events"),
                           "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=follower, text=True,
                          timeout=300, env=env)  # the source tree under test, not an installed copy
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed (Linux: EIO)
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    progress = b"".join(chunks).decode("utf-8").splitlines()
    assert proc.returncode == 0
    steps = [re.sub(r"^… +\d+\.\ds  ", "", line) for line in progress]
    assert len(steps) == len(progress) and all(line.startswith("… ") for line in progress)
    assert steps[0] == "读取事件 (reading events)"
    files = sorted(p.name for p in (REPO / "events" / "2024-05").iterdir())
    read = [s for s in steps if re.fullmatch(r"读取 2024-05/\S+ \(\d/6, [\d.]+ (KB|MB)\)", s)]
    assert sorted(s.split()[1].removeprefix("2024-05/") for s in read) == files
    rules = [s for s in steps if s.startswith("规则 ")]
    assert rules[0].startswith("规则 1/11 ") and rules[-1].startswith("规则 11/11 ") and len(rules) == 11
    assert steps.index("应用规则 (evaluating rules)") < steps.index(rules[0])
    assert steps[-1] == "写入账单 (writing statement)"
    times = [float(re.match(r"^… +(\d+\.\d)s", line).group(1)) for line in progress]
    assert times == sorted(times)
    assert steps.index("整理账单 (building statement)") == len(steps) - 2
    assert re.search(r"^用时 \(time\): read [\d.]+s · evaluate [\d.]+s · statement [\d.]+s · write [\d.]+s$",
                     proc.stdout, re.M)
