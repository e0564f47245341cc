"""LibreOffice, where it is installed, reads the statement: HR导入 holds numbers, not
text (a payroll import reads the cells as LibreOffice does). Skipped without soffice."""

import shutil
from decimal import Decimal
import subprocess
from pathlib import Path

import pytest

from ledger.cli import main

REPO = Path(__file__).resolve().parents[2]
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed")
def test_libreoffice_reads_hr_import_as_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the sample roster.csv at the workspace root
    assert main(["run", "--month", "2024-05", "--events", str(REPO / "events"), "--out", str(tmp_path)]) == 0
    book = tmp_path / "2024-05" / "ledger-2024-05.xlsx"
    # CSV of sheet 2 (HR导入) with every text cell quoted: numbers come out bare.
    out = tmp_path / "csv"
    subprocess.run([SOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,true,true,false,false,false,2",
                    "--outdir", str(out), str(book)], check=True, capture_output=True, timeout=180)
    lines = next(out.glob("*.csv")).read_text("utf-8").splitlines()
    assert lines[0] == '"工号","姓名","月份","扣款","奖金","净额"'
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 9
    for row in rows:
        assert row[0].startswith('"') and row[2] == '"2024-05"'
        assert not any(cell.startswith('"') for cell in row[3:])  # numbers, read as numbers
    fines = sum(Decimal(row[3]) for row in rows)
    net = sum(Decimal(row[5]) for row in rows)
    assert fines == Decimal("20400") and net == -fines  # the sample month: fines only
