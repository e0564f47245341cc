"""Benchmark the workbook writer alone: `write_statement` on a synthetic statement.

Usage (from the repository root):

    python bench/xlsx_writer.py 100000 300000                 # the writer in the working tree
    python bench/xlsx_writer.py 100000 300000 --ref 5a07677   # ... and the one at a git revision
    python bench/xlsx_writer.py 100000 --level 1 --level 6    # compare zip compression levels
    python bench/xlsx_writer.py 100000 --repeat 3             # fastest of three runs each

Each measurement runs in its own subprocess: it builds a statement of N detail rows
(15 columns, text shaped like a real month: Chinese rule titles and excerpts, long
evidence strings, ids, times, amounts, some pending rows, a few hostile or control-
character texts), then times `write_statement` once. Reported: wall seconds, detail
rows per second, CPU seconds of the process (all threads; less sensitive than wall
time to other work on the machine), file size, and peak memory as the growth of the process's max RSS over its
resident size just before writing (so the statement itself is not counted). With
`--repeat K`, each measurement runs K times and the fastest run is reported.

`--ref REV` loads src/ledger/xlsx.py (the writer before the layout of wings) as it was at git revision REV (e.g. the openpyxl
writer) into the same installed package, so "before" and "after" run on the same
statement in the same environment. `--level N` overrides the writer's zip compression
level (the new writer only). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RULES = [
    ("敬语", "全程对话，开头、结尾必须用敬语", "policy/house-rules.rules:41", "fine", "10元",
     '[on message[sender = "agent" and kind = "text"] per conversation when (first or last) '
     'and not text has any 敬语] 成立'),
    ("短语回复", "禁止使用少于5个字的短词语或语气词回答买家询单", "policy/house-rules.rules:47", "fine",
     "10元", '[on message per conversation when sender = "agent" and kind = "text" and '
     'previous.sender = "buyer" and (length(text) < 5 or text only 语气词)] 成立'),
    ("未再次询问", "买家询单回答无反应，应在10-20分钟内再次询问", "policy/house-rules.rules:90", "fine",
     "20元", '[on message per conversation when sender = "agent" and kind = "text" and '
     'previous.sender = "buyer" and not text has any 结束语] 成立；[unless message[sender = "buyer"] '
     'same conversation within 20m] 查找范围 {t0} 至 {t1}：未找到；[unless message[sender = "agent"] '
     'same conversation within 10m..20m] 查找范围 {t0} 至 {t1}：未找到'),
    ("首响超时", "首次响应超过 30 秒", "policy/house-rules.rules:12", "fine", "5元",
     "[on message[sender = \"buyer\"] per conversation when first] 成立；[unless message[sender = "
     "\"agent\"] same conversation within 30s] 查找范围 {t0} 至 {t1}：未找到"),
    ("好评奖励", "买家给出五星好评", "policy/house-rules.rules:120", "bonus", "5元",
     "[on rating when stars = 5] 成立"),
]
EXCERPTS = ["好的，再见", "不清楚", "在", "嗯", "亲，建议您拍L码，穿着会比较合身哦",
            "亲亲，这边已经为您催促仓库尽快发货了呢，请您耐心等待一下哦~",
            "您好，欢迎光临初晴旗舰店，有什么可以帮您的吗？", "退款已经处理了，请查收",
            "=HYPERLINK(\"http://example.com\")", "  前后空格  ", "第一行\n第二行", "a\x01b",
            "价格 <100 & >50", "😀 收到"]
AGENTS = [f"初晴旗舰店:{n}" for n in ("糖糖", "小满", "小北", "小鹿", "阿宝", "木木", "七七", "豆豆")]


def make_statement(n: int):
    from ledger.core.entries import APPLIED, PENDING, Entry
    from ledger.outputs.statement import FileInfo, RunInfo, build

    rnd = random.Random(7)
    t = datetime(2024, 5, 1, 9, 0, 0)
    entries = []
    for i in range(n):
        t += timedelta(seconds=rnd.randint(1, 20))
        rid, title, loc, kind, _, evidence = RULES[rnd.randrange(len(RULES))]
        pending = rnd.random() < 0.02
        fmt = "%Y-%m-%d %H:%M:%S"
        entries.append(Entry(
            id=f"E{rnd.getrandbits(48):012X}", rule_id=rid, rule_title=title, rule_location=loc,
            kind=kind, agent=AGENTS[rnd.randrange(len(AGENTS))], ts=t,
            amount=None if pending else Decimal(rnd.choice(["5.00", "10.00", "20.00", "0.50"])),
            status=PENDING if pending else APPLIED, event_id=f"m{i * 7:08d}", event_seq=i,
            conversation=f"c{t:%Y%m%d}{i // 3:06d}",
            order=f"{rnd.getrandbits(60)}" if rnd.random() < 0.3 else None,
            buyer=f"tb{rnd.randrange(10**10):010d}", excerpt=rnd.choice(EXCERPTS),
            evidence=evidence.format(t0=t.strftime(fmt), t1=(t + timedelta(minutes=20)).strftime(fmt)),
        ))
    info = RunInfo(month="2024-05", timezone="Asia/Shanghai", policy_name="bench",
                   policy_files=(FileInfo("policy/house-rules.rules", "a" * 64),),
                   event_files=(FileInfo("events/messages.csv", "b" * 64, read=n, accepted=n),),
                   ignored_files=(), data_end=f"{t:%Y-%m-%d %H:%M:%S}", duplicates_folded=0,
                   version="bench")
    rules = [r[:5] for r in RULES]
    return build(info, entries, set(AGENTS), rules)


def load_writer(ref: str | None):
    if ref is None:
        import types

        from ledger.outputs.workbook import sheets, writer

        def set_level(level: int) -> None:
            writer.COMPRESS_LEVEL = level

        return types.SimpleNamespace(write_statement=sheets.write_statement, set_level=set_level)
    source = subprocess.run(["git", "show", f"{ref}:src/ledger/xlsx.py"], cwd=ROOT, check=True,
                            capture_output=True).stdout
    import ledger
    spec = importlib.util.spec_from_loader("ledger._xlsx_ref", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "ledger"
    module.__file__ = f"<{ref}:src/ledger/xlsx.py>"
    sys.modules[spec.name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    ledger._xlsx_ref = module
    return module


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(n: int, ref: str | None, level: int | None, out: str) -> None:
    writer = load_writer(ref)
    if level is not None:
        if hasattr(writer, "set_level"):
            writer.set_level(level)
        else:  # a revision from before the layout: one xlsx module
            writer.COMPRESS_LEVEL = level
    statement = make_statement(n)
    before = rss_mb()
    cpu = time.process_time()
    started = time.perf_counter()
    writer.write_statement(statement, Path(out))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "bytes": Path(out).stat().st_size,
                      "peak_mb": max(peak - before, 0.0)}))


def measure(n: int, ref: str | None, level: int | None, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--out", str(out)]
    if ref:
        cmd += ["--ref", ref]
    if level is not None:
        cmd += ["--level", str(level)]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[100_000, 300_000])
    ap.add_argument("--ref", help="also time src/ledger/xlsx.py at this git revision")
    ap.add_argument("--level", type=int, action="append", help="zip compression level (repeatable)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per measurement; the fastest is reported (the machine may be shared)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "data" / "xlsx-writer.xlsx"))
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.ref, (args.level or [None])[0], args.out)
        return

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = [(f"{args.ref} (reference)", args.ref, None)] if args.ref else []
    runs += [("working tree" + (f", level {lv}" if lv is not None else ""), None, lv)
             for lv in (args.level or [None])]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print("| writer | detail rows | seconds | rows/s | CPU s | file MB | peak MB over statement |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.sizes:
        for label, ref, level in runs:
            r = min((measure(n, ref, level, out) for _ in range(args.repeat)),
                    key=lambda m: m["seconds"])
            print(f"| {label} | {n:,} | {r['seconds']:.2f} | {n / r['seconds']:,.0f} | {r['cpu']:.2f} "
                  f"| {r['bytes'] / 2**20:.1f} | {r['peak_mb']:,.0f} |", flush=True)
    out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
