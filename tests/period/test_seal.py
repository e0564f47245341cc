"""A closed month stays closed (issue 13 items 17 and 18): every file the seal lists is
verified, the roster is sealed, deleting or forging the seal is caught by the register of
closed months, and the seal's digest is on the statement HR receives."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import openpyxl
import pytest

from conftest import write_events
from ledger.cli import main
from ledger.outputs.workbook.sheets import SEAL_LABEL

REPO = Path(__file__).resolve().parents[2]
WANG, LI = "初晴旗舰店:小王", "初晴旗舰店:小李"
ROSTER = ("客服,工号,姓名,部门,基本工资,绩效工资,最低工资,入职,离职\n"
          f"{WANG},CQ002,王晓,售前,3000,1500,2690,2023-06-15,\n"
          f"{LI},CQ005,李立,售后,3000,1500,2690,2023-06-15,\n")
MONTH = Path("reports/2024-05")


def flag(i: int, day: str, agent: str) -> dict:
    return {"id": f"q{i}", "ts": f"{day} 10:00:00", "type": "qa_flag", "agent": agent, "category": "未挂离开",
            "note": "离开 30 分钟未挂离开"}


@pytest.fixture
def shop(tmp_path, monkeypatch):
    write_events([flag(1, "2024-05-03", WANG), flag(2, "2024-05-04", LI), flag(3, "2024-05-09", WANG),
                  flag(4, "2024-06-02", LI)], tmp_path / "events" / "2024-05")
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "house.rules").symlink_to(REPO / "policy" / "house-rules.rules")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> int:
    return main(list(args))


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot_of_folder(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def sheets(path: Path) -> dict[str, list[tuple]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def register_lines(root: Path = Path("reports")) -> list[str]:
    text = (root / ".ledger" / "closed-months.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_close_seals_every_file_and_the_statement_shows_the_seal_digest(shop, capsys):
    assert run("run", "--month", "2024-05", "--out", "open") == 0
    assert run("close", "2024-05") == 0
    record = (MONTH / "CLOSED").read_text(encoding="utf-8")
    agent_files = sorted((MONTH / "agents").glob("*.xlsx"))
    assert len(agent_files) == 2
    for p in agent_files:
        assert f"agent_statement: agents/{p.name} sha256={sha(p)}" in record
    assert f"rejects: rejected-rows.csv sha256={sha(MONTH / 'rejected-rows.csv')}" in record
    assert f"roster: roster.csv sha256={sha('roster.csv')}" in record
    assert re.search(r"^hr_import: HR导入 sha256=[0-9a-f]{64}$", record, re.M)
    seal = sha(MONTH / "closed-entries.tsv")
    (line,) = register_lines()
    assert line.startswith(f"2024-05 seal={seal} closed={sha(MONTH / 'CLOSED')} at=")
    assert f"结账校验码 (seal digest): {seal}" in capsys.readouterr().out
    # the digest is on the statement HR receives and on each agent's statement
    closed, opened = sheets(MONTH / "ledger-2024-05.xlsx"), sheets(Path("open/2024-05/ledger-2024-05.xlsx"))
    assert dict(closed["说明"])[SEAL_LABEL] == seal
    for p in agent_files:
        assert dict(sheets(p)["说明"])[SEAL_LABEL] == seal
    # ... and that is the only difference from the statement `ledger run` writes
    assert {k: v for k, v in closed.items() if k != "说明"} == {k: v for k, v in opened.items() if k != "说明"}
    assert [r for r in closed["说明"] if r[0] not in (SEAL_LABEL, "结账说明")] == opened["说明"]
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 0
    out = capsys.readouterr().out
    assert "逐字节相同" in out and seal in out and "已封存的 5 个文件都与结账时相同" in out


@pytest.mark.parametrize("change", ["edit", "delete", "add", "edit rejects"])
def test_a_per_agent_statement_edited_deleted_or_added_is_a_mismatch(shop, capsys, change):
    assert run("close", "2024-05") == 0
    wang = MONTH / "agents" / "初晴旗舰店_小王.xlsx"
    if change == "edit":
        wang.write_bytes(wang.read_bytes() + b"\0")
    elif change == "delete":
        wang.unlink()
    elif change == "add":
        (MONTH / "agents" / "初晴旗舰店_小赵.xlsx").write_bytes(wang.read_bytes())
    else:
        (MONTH / "rejected-rows.csv").write_text("file,line,reason,raw\r\n", encoding="utf-8")
    before = snapshot_of_folder(MONTH)
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 6
    err = capsys.readouterr().err
    expected = {"edit": "个人账单 改动 (changed): agents/初晴旗舰店_小王.xlsx",
                "delete": "个人账单 删除 (removed): agents/初晴旗舰店_小王.xlsx",
                "add": "个人账单 新增 (added): agents/初晴旗舰店_小赵.xlsx",
                "edit rejects": "拒收行文件不见了或被改动过"}[change]
    assert expected in err and "核对一致" not in err
    assert snapshot_of_folder(MONTH) == before  # nothing written


def test_the_roster_is_sealed(shop, capsys):
    assert run("close", "2024-05") == 0
    # someone hired in July: HR导入 of May does not change, the roster change is listed
    Path("roster.csv").write_text(ROSTER + "初晴旗舰店:小赵,CQ009,赵新,售前,3000,1500,2690,2024-07-01,\n",
                                  encoding="utf-8")
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 0
    assert "花名册 改动 (changed): roster.csv" in capsys.readouterr().out
    # a rename changes the HR导入 rows HR imported: a mismatch
    Path("roster.csv").write_text(ROSTER.replace("王晓", "王小"), encoding="utf-8")
    assert run("run", "--month", "2024-05") == 6
    assert "HR导入 会变" in capsys.readouterr().err


def test_deleting_closed_does_not_reopen_the_month(shop, capsys):
    assert run("close", "2024-05") == 0
    seal = sha(MONTH / "closed-entries.tsv")
    (MONTH / "CLOSED").unlink()
    before = snapshot_of_folder(MONTH)
    for args in (["run", "--month", "2024-05"], ["close", "2024-05"], ["run", "--month", "2024-06"]):
        capsys.readouterr()
        assert run(*args) == 6, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "CLOSED 不见了" in err and seal in err
    assert snapshot_of_folder(MONTH) == before
    assert not Path("reports/2024-06").exists()


def _forge_snapshot():
    """Lower a fine in the snapshot and recompute its sha256 in CLOSED, as a careful forger would."""
    snapshot = MONTH / "closed-entries.tsv"
    text = snapshot.read_text(encoding="utf-8")
    forged = text.replace("\t20.00\t", "\t1010.00\t", 1)
    assert forged != text
    snapshot.write_text(forged, encoding="utf-8")
    record = (MONTH / "CLOSED").read_text(encoding="utf-8")
    record = re.sub(r"(entries: closed-entries\.tsv sha256=)[0-9a-f]{64}", lambda m: m.group(1) + sha(snapshot), record)
    (MONTH / "CLOSED").write_text(record, encoding="utf-8")


def test_a_forged_snapshot_never_gives_a_silent_correction(shop, capsys):
    assert run("close", "2024-05") == 0
    seal = sha(MONTH / "closed-entries.tsv")
    _forge_snapshot()
    capsys.readouterr()
    assert run("run", "--month", "2024-06") == 6
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "与登记簿不符" in err and seal in err
    assert not Path("reports/2024-06").exists()
    assert run("run", "--month", "2024-05") == 6


def test_a_forged_snapshot_with_the_register_rewritten_too_shows_another_digest_than_hrs(shop, capsys):
    """What the seal cannot stop locally (docs/closing-and-adjustments.md): a forger who also
    rewrites the register. The digest ledger then shows differs from the one on HR's copy."""
    assert run("close", "2024-05") == 0
    on_hrs_copy = dict(sheets(MONTH / "ledger-2024-05.xlsx")["说明"])[SEAL_LABEL]
    _forge_snapshot()
    register = Path("reports/.ledger/closed-months.txt")
    text = register.read_text(encoding="utf-8")
    text = re.sub(r"seal=[0-9a-f]{64} closed=[0-9a-f]{64}",
                  f"seal={sha(MONTH / 'closed-entries.tsv')} closed={sha(MONTH / 'CLOSED')}", text)
    register.write_text(text, encoding="utf-8")
    forged = sha(MONTH / "closed-entries.tsv")
    capsys.readouterr()
    assert run("run", "--month", "2024-06") == 0  # every local check passes: a −990元 上月更正 ...
    june = sheets(Path("reports/2024-06/ledger-2024-06.xlsx"))["明细"]
    (fix,) = [dict(zip(june[0], r)) for r in june[1:] if str(r[3]).startswith("上月更正")]
    assert fix["金额"] == -990
    # ... but it names the seal it corrects, and that is not the one on HR's copy of May
    assert f"结账校验码 {forged[:16]}" in fix["依据"] and on_hrs_copy[:16] not in fix["依据"]
    assert run("close", "2024-05") == 6  # (and May's statement no longer matches the forged entries)
    err = capsys.readouterr().err
    assert f"结账校验码 (seal digest): {forged}" in err and on_hrs_copy not in err


def test_a_closed_month_missing_from_the_register_warns_and_close_registers_it(shop, capsys):
    assert run("close", "2024-05") == 0
    Path("reports/.ledger/closed-months.txt").unlink()  # as closed by an older version
    capsys.readouterr()
    assert run("run", "--month", "2024-06") == 0
    assert "不在结账登记簿" in capsys.readouterr().out
    assert run("close", "2024-05") == 0
    assert "已登记到结账登记簿" in capsys.readouterr().out
    (line,) = register_lines()
    assert line.startswith(f"2024-05 seal={sha(MONTH / 'closed-entries.tsv')} ")
    assert run("run", "--month", "2024-06") == 0
    assert "不在结账登记簿" not in capsys.readouterr().out


def test_a_torn_register_line_is_ignored_and_a_strange_one_refused(shop, capsys):
    assert run("close", "2024-05") == 0
    register = Path("reports/.ledger/closed-months.txt")
    good = register.read_text(encoding="utf-8")
    register.write_text(good + "2024-06 seal=ab", encoding="utf-8")  # a write cut off by a crash
    assert run("run", "--month", "2024-06") == 0
    register.write_text(good + "2024-06 closed by hand\n", encoding="utf-8")
    capsys.readouterr()
    assert run("run", "--month", "2024-06") == 6
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "closed-months.txt:3" in err


@pytest.mark.parametrize("damage", ["folder", "binary"])
def test_a_damaged_closed_file_is_one_line(shop, capsys, damage):
    assert run("close", "2024-05") == 0
    closed = MONTH / "CLOSED"
    closed.unlink()
    if damage == "folder":
        closed.mkdir()
    else:
        closed.write_bytes(b"month: 2024-05\n\xff\n")
    capsys.readouterr()
    assert run("run", "--month", "2024-05") == 6
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CLOSED" in err and "Traceback" not in err
