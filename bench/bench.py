"""Benchmark `ledger run` on generated months, against a DuckDB floor.

Usage (from the repository root, after `pip install .`):

    python bench/bench.py 100000 1000000            # sizes in events (approximate)

For each size it generates a month with `ledger.sample.generate` (cached under
bench/data/, which git ignores), runs `ledger run` in a subprocess, and reports the
phase times the run prints, wall time, events per second and peak memory (the
child's max RSS from the OS). The floor is DuckDB alone reading the same CSV files
and sorting the messages by conversation and time. Prints a Markdown table.
"""

from __future__ import annotations

import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from ledger.sample import generate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
EVENTS_PER_DAILY_CONVERSATION = 800  # measured: events per unit of conversations_per_day


def month_of(size: int) -> Path:
    folder = DATA / f"{size}"
    if not (folder / "2024-05" / "messages.csv").exists():
        per_day = max(size // EVENTS_PER_DAILY_CONVERSATION, 1)
        agents = max(10, per_day // 15)
        generate(folder / "2024-05", "2024-05", agents=agents, conversations_per_day=per_day,
                 seed=7, bad_rows=0)
    return folder


def floor_seconds(folder: Path) -> float:
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE m AS SELECT * FROM read_csv('{folder}/*/*.csv', union_by_name=true,
                    all_varchar=true) ORDER BY conversation, ts""")
    con.close()
    return time.perf_counter() - started


def run_ledger(folder: Path) -> dict:
    out = folder / "reports"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ledger.cli", "run", "--month", "2024-05",
                           "--policy", str(ROOT / "policy"), "--events", str(folder),
                           "--out", str(out)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    phases = dict(re.findall(r"(\w+) ([\d.]+)s", proc.stdout.splitlines()[-1]))
    events = sum(int(n.replace(",", "")) for n in re.findall(r"接受\s+([\d,]+)", proc.stdout))
    return {"events": events, "wall": wall, "peak_mb": max(peak_kb, before) / 1024,
            **{k: float(v) for k, v in phases.items()}}


def main(sizes: list[int]) -> None:
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}")
    print("| events | read s | evaluate s | write s | wall s | events/s | peak MB | floor s | evaluate ÷ floor |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        folder = month_of(size)
        floor = floor_seconds(folder)
        r = run_ledger(folder)
        print(f"| {r['events']:,} | {r['read']:.2f} | {r['evaluate']:.2f} | {r['write']:.2f} | {r['wall']:.2f} "
              f"| {r['events'] / r['wall']:,.0f} | {r['peak_mb']:,.0f} | {floor:.2f} | {r['evaluate'] / floor:.1f} |",
              flush=True)


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [100_000, 1_000_000])
