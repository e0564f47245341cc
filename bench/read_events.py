"""Benchmark reading events (`ledger.inputs.events.load_events`) on its own, per reader.

Usage (from the repository root, after `pip install .`):

    python bench/read_events.py 1000000 2000000          # sizes in events (approximate)
    python bench/read_events.py --repeat 3 --readers python,fast --variants ids,no-ids 1000000

Months are generated with `ledger.sample.generate` (seed 7, `bad_rows=0`) into
bench/data/read-<size>/ (ignored by git), scaled by a calibration month so that the event
count is close to the size asked for. Variant `no-ids` is the same month with the `id`
column removed from every CSV file, so every id is derived (sha256 of the row's content).

Each measurement runs `load_events` with the shipped policy's schema in a fresh
subprocess, so the peak memory (the child's own max RSS, from the OS) belongs to that one
read. `--readers`: `python` (LEDGER_EVENTS_READER=python: every row decoded and checked in
Python) and `fast` (the default reader: UTF-8 CSV set-based in DuckDB). Each configuration
runs `--repeat` times (default 3; the machine is shared) and the best wall time is
reported with its peak memory. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import duckdb

from ledger.sample.generator import generate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from zoneinfo import ZoneInfo
import duckdb
from ledger.evaluate.engine import database
from ledger.lang.load import checked_policy
from ledger.inputs import events

policy, _ = checked_policy([Path(sys.argv[1])])
with database() as con:  # the run's own database: on disk, memory-limited
    started = time.perf_counter()
    result = events.load_events(Path(sys.argv[2]), con, tz=ZoneInfo(policy.timezone), schema=policy.schema())
    seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "events": result.n_events,
                  "rejects": len(result.rejects), "readers": events.last_readers}))
"""


def _events_per_daily_conversation() -> float:
    probe = DATA / "read-calibration"
    counts = generate(probe, "2024-05", agents=10, conversations_per_day=100, seed=7, bad_rows=0)
    return sum(counts.values()) / 100


def month_of(size: int, variant: str) -> Path:
    folder = DATA / f"read-{size}" / "ids"
    if not (folder / "messages.csv").exists():
        per_day = max(round(size / _events_per_daily_conversation()), 1)
        generate(folder, "2024-05", agents=max(10, per_day // 15), conversations_per_day=per_day, seed=7,
                 bad_rows=0)
    if variant == "ids":
        return folder
    target = folder.parent / variant
    if not (target / "messages.csv").exists():
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.iterdir()):
            if path.suffix == ".csv":
                _drop_id_column(path, target / path.name)
            else:
                (target / path.name).write_bytes(path.read_bytes())
    return target


def _drop_id_column(source: Path, target: Path) -> None:
    with source.open(newline="", encoding="utf-8") as src, target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        for row in csv.reader(src):
            writer.writerow(row[1:])  # the generator writes `id` first


def measure(folder: Path, reader: str) -> dict:
    env = dict(os.environ, LEDGER_EVENTS_READER=reader)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "policy"), str(folder)],
                          capture_output=True, text=True, check=True, env=env)
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1_000_000, 2_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--readers", default="python,fast")
    parser.add_argument("--variants", default="ids")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}")
    print(f"| events | ids | reader | read s (best of {args.repeat}) | events/s | peak MB | all runs s |")
    print("| ---: | --- | --- | ---: | ---: | ---: | --- |")
    for size in args.sizes:
        for variant in args.variants.split(","):
            folder = month_of(size, variant)
            for reader in args.readers.split(","):
                runs = [measure(folder, reader) for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["seconds"])
                every = ", ".join(format(r["seconds"], ".2f") for r in runs)
                print(f"| {best['events']:,} | {'in file' if variant == 'ids' else 'derived'} | {reader} "
                      f"| {best['seconds']:.2f} | {best['events'] / best['seconds']:,.0f} | {best['peak_mb']:,.0f} "
                      f"| {every} |", flush=True)


if __name__ == "__main__":
    main()
