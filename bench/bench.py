"""Benchmark `ledger run` on generated months, against a DuckDB floor.

Usage (from the repository root, after `pip install .`):

    python bench/bench.py 1000000 2000000 5000000 10000000   # sizes in events (approximate)

For each size it generates a month with `ledger.sample.generate` (cached under
bench/data/, which git ignores), then, in one run and on the same files:

* the **floor**: DuckDB alone reading the same CSV files (all columns as text) and
  sorting the messages by conversation and time — what any evaluation must at least do
  (the median of three measurements, just before the run);
* the full **`ledger run`** of the shipped policy in a fresh subprocess, with the phase
  times it prints (read, evaluate, statement, write), wall time, events per second, and peak
  memory (max RSS of that subprocess, from the OS via getrusage in a wrapper process).

Prints a Markdown table; BENCHMARKS.md holds the committed figures.
"""

from __future__ import annotations

import json
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
EVENTS_PER_DAILY_CONVERSATION = 403  # measured: events per unit of conversations_per_day


def month_of(size: int) -> Path:
    from ledger.sample.generator import generate

    folder = DATA / f"{size}"
    if not (folder / "2024-05" / "messages.csv").exists():
        per_day = max(size // EVENTS_PER_DAILY_CONVERSATION, 1)
        agents = max(10, per_day // 15)
        generate(folder / "2024-05", "2024-05", agents=agents, conversations_per_day=per_day,
                 seed=7, bad_rows=0, fault_rate=1.0)  # the fine-dense month the figures were measured on
    return folder


def floor_seconds(folder: Path) -> float:
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""CREATE TABLE m AS SELECT * FROM read_csv('{folder}/2024-05/messages.csv', all_varchar=true)
                    ORDER BY conversation, ts""")
    con.execute(f"""CREATE TABLE o AS SELECT * FROM read_csv(['{folder}/2024-05/orders.csv',
                    '{folder}/2024-05/shifts.csv', '{folder}/2024-05/qa.csv', '{folder}/2024-05/ratings.csv'],
                    union_by_name=true, all_varchar=true)""")
    con.close()
    return time.perf_counter() - started


def measure_child(argv: list[str]) -> dict:
    """Run argv; report its wall time, stdout and peak RSS. Runs inside a wrapper
    process (see main) so getrusage(RUSAGE_CHILDREN) sees only this child."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ledger failed ({proc.returncode}):\n{proc.stderr}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall": wall, "stdout": proc.stdout, "peak_mb": peak_kb / 1024}


def run_ledger(folder: Path) -> dict:
    argv = [sys.executable, "-m", "ledger.cli", "run", "--month", "2024-05", "--policy", str(ROOT / "policy"),
            "--events", str(folder), "--out", str(folder.parent / f"reports-{folder.name}")]
    wrapper = [sys.executable, __file__, "--measure", json.dumps(argv)]
    # In the data folder, so the repository's sample roster.csv is not picked up.
    r = json.loads(subprocess.run(wrapper, capture_output=True, text=True, check=True, cwd=folder).stdout)
    timing_line = next(line for line in r["stdout"].splitlines() if line.startswith("用时"))
    phases = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s", timing_line)}
    events = int(re.search(r"合计读取 [\d,]+ 行，接受 ([\d,]+)", r["stdout"]).group(1).replace(",", ""))
    entries = sum(int(n.replace(",", "")) for n in re.findall(r"^  \S+\s+罚款\s+([\d,]+)", r["stdout"], re.M))
    return {"events": events, "entries": entries, "wall": r["wall"], "peak_mb": r["peak_mb"], **phases}


def main(sizes: list[int]) -> None:
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}")
    print("| events | entries | read s | evaluate s | statement s | write s | wall s | events/s | peak MB | floor s "
          "| evaluate ÷ floor | wall ÷ floor |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        folder = month_of(size)
        # The floor varies by a second or more between runs on this machine: the median of three.
        floor = sorted(floor_seconds(folder) for _ in range(3))[1]
        r = run_ledger(folder)
        print(f"| {r['events']:,} | {r['entries']:,} | {r['read']:.2f} | {r['evaluate']:.2f} "
              f"| {r.get('statement', 0):.2f} | {r['write']:.2f} "
              f"| {r['wall']:.2f} | {r['events'] / r['wall']:,.0f} | {r['peak_mb']:,.0f} | {floor:.2f} "
              f"| {r['evaluate'] / floor:.1f} | {r['wall'] / floor:.1f} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure_child(json.loads(sys.argv[2]))))
    else:
        main([int(s) for s in sys.argv[1:]] or [1_000_000, 2_000_000])
