"""Measure .xlsx readers for event input: openpyxl read-only vs python-calamine.

    python bench/read_xlsx.py [ROWS]

Writes a workbook of ROWS chat-record-like rows (text, dates as real date cells, numbers)
with openpyxl's write-only mode (as Excel-like exports are), then reads every cell of it
with each reader available, three times, and prints the best wall time and rows/s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path


def make(path: Path, rows: int) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("聊天记录")
    ws.append(["客户名", "消息序号", "发送时间", "发送内容", "发送账号", "账号类型"])
    start = datetime(2024, 5, 1, 8)
    for i in range(rows):
        ws.append([f"tb{8800000000 + i // 40}", i % 40 + 1, start + timedelta(seconds=17 * i),
                   f"亲，您好，这款有现货的，今天下单明天发货哦 {i}", "初晴旗舰店:小王" if i % 2 else f"tb{i // 40}",
                   "客服" if i % 2 else "买家"])
    wb.save(path)


def openpyxl_rows(path: Path) -> int:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    n = 0
    for ws in wb.worksheets:
        for _ in ws.iter_rows(values_only=True):
            n += 1
    wb.close()
    return n


def calamine_rows(path: Path) -> int:
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    n = 0
    for name in wb.sheet_names:
        n += len(wb.get_sheet_by_name(name).to_python())
    return n


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    readers = {"openpyxl read-only": openpyxl_rows}
    try:
        import python_calamine  # noqa: F401
        readers["python-calamine"] = calamine_rows
    except ImportError:
        print("python-calamine not installed: skipped")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chat.xlsx"
        t = time.perf_counter()
        make(path, rows)
        print(f"{rows:,} rows, {path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t:.1f}s")
        for name, read in readers.items():
            best = min(_timed(read, path) for _ in range(3))
            print(f"{name:20s} {best:7.2f}s  {rows / best:>10,.0f} rows/s")


def _timed(read, path) -> float:
    t = time.perf_counter()
    read(path)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
