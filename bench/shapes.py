"""Benchmark `ledger run` on every real shape of input, against a DuckDB floor and pandas.

Usage (from the repository root; pandas and python-calamine installed):

    python bench/shapes.py 2000000                    # every shape, ~2M events
    python bench/shapes.py 200000 --shapes minimal,quoted
    python bench/shapes.py 10000000 --shapes minimal --no-pandas

It generates, with `ledger.sample.generate` (seed 7, no bad rows), three months of about N
events each, cached under bench/data/shapes/N/ (ignored by git; LEDGER_BENCH_DATA moves it):

* the **ordinary** month (the sample's own fault rate, 0.08), written in every shape:
  `minimal` (the csv module's minimal quoting, as `ledger sample` writes it), `quoted`
  (every field quoted), `quoted-but-ts` (every field but `ts` quoted), `crlf-bom` (CRLF line
  ends and a UTF-8 BOM), `gb18030`, `jsonl`, `xlsx` (one workbook per file; a sheet holds at
  most 1,048,575 rows, so a bigger file goes on over sheets `2`, `3`, ...);
* `fine-dense`: a month with every fault far more likely (fault_rate 1.5): at least 5% of
  agent messages fined (checked and printed);
* `many-agents`: 1,200 accounts, the same number of conversations (minimal quoting).

Then, in the same run and on the same files, for each shape:

* the **floor**: DuckDB alone reading every column of every file (as text) and sorting the
  messages by conversation and time (CSV: read_csv; GB18030: the file transcoded to UTF-8 as
  a stream, then read_csv; JSONL: read_json; xlsx: python-calamine reads every cell,
  DuckDB sorts). The median of three.
* **`ledger run`** of the shipped policy (statement and per-agent files written) in a fresh
  subprocess, with the phase times it prints (read, evaluate, statement, write), its wall
  time and its peak memory (max RSS of the process tree: getrusage of children in a wrapper).
* **pandas** (bench/pandas_rules.py): the ten house rules in plain pandas, in a subprocess,
  its wall time and peak memory. Its lines must equal the ledger's (rule, account, trigger
  event, status, amount), read back from the statement's 明细 sheets: the bench stops if not.

Prints a Markdown table (and the load average beside each row); BENCHMARKS.md holds the
committed figures.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
# LEDGER_BENCH_DATA: keep the (large) generated months elsewhere, e.g. shared by several checkouts
DATA = Path(os.environ.get("LEDGER_BENCH_DATA") or ROOT / "bench" / "data" / "shapes")
EVENTS_PER_DAILY_CONVERSATION = 403  # measured: events per unit of conversations_per_day
MONTH = "2024-05"
SHAPES = ("minimal", "quoted", "quoted-but-ts", "quoted-notes", "crlf-bom", "gb18030", "jsonl", "xlsx", "fine-dense",
          "many-agents", "split-agents")
# split-agents: the messages as one file per agent (messages/agent-NNN.csv), as shops that export
# each sub-account's chats write them; the other files as in minimal.
# quoted-notes: an exporter's own column order (reversed), every field quoted, and a 备注 column
# whose texts hold doubled quotes, commas and empty fields (the shape the other shapes lacked).
NOTES = ("", '买家说"尽快",谢谢', "已核对，无异常", '"加急"', "颜色选错了, 换成蓝色", '“改地址”,已同意')
BASES = {"ordinary": dict(fault_rate=0.08), "dense": dict(fault_rate=1.5), "agents": dict(fault_rate=0.08, agents=1200)}
SHEET_ROWS = 1_048_575  # data rows per sheet under Excel's 1,048,576 (with the header)


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + e.get("PYTHONPATH", "")
    return e


# ---------------------------------------------------------------- months and shapes

def base_month(size: int, name: str) -> Path:
    sys.path.insert(0, str(ROOT / "src"))
    from ledger.sample.generator import generate

    folder = DATA / str(size) / f"base-{name}" / MONTH
    if not (folder / "messages.csv").exists():
        per_day = max(size // EVENTS_PER_DAILY_CONVERSATION, 1)
        options = dict(BASES[name])
        agents = options.pop("agents", max(10, per_day // 15))
        started = time.perf_counter()
        generate(folder, MONTH, agents=agents, conversations_per_day=per_day, seed=7, bad_rows=0, **options)
        print(f"# generated {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


def shape_folder(size: int, shape: str) -> Path:
    """The events folder of one shape (its month under <folder>/2024-05), written once."""
    folder = DATA / str(size) / shape
    month = folder / MONTH
    if (folder / ".done").exists():
        return folder
    base = base_month(size, {"fine-dense": "dense", "many-agents": "agents"}.get(shape, "ordinary"))
    if month.exists():
        shutil.rmtree(month)
    month.mkdir(parents=True)
    started = time.perf_counter()
    for src in sorted(base.iterdir()):
        if src.suffix == ".jsonl" and shape not in ("jsonl", "xlsx"):
            shutil.copyfile(src, month / src.name)
            continue
        target = month / src.name
        if shape in ("minimal", "fine-dense", "many-agents"):
            shutil.copyfile(src, target)
            continue
        header, rows = _read_base(src)
        if shape in ("quoted", "crlf-bom"):
            with open(target, "w", encoding="utf-8-sig" if shape == "crlf-bom" else "utf-8", newline="") as out:
                w = csv.writer(out, lineterminator="\r\n" if shape == "crlf-bom" else "\n",
                               quoting=csv.QUOTE_ALL if shape == "quoted" else csv.QUOTE_MINIMAL)
                w.writerow(header)
                w.writerows(rows)
        elif shape == "quoted-notes":
            with open(target, "w", encoding="utf-8", newline="") as out:
                w = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
                w.writerow([*reversed(header), "备注"])
                w.writerows([*reversed(row), NOTES[i % len(NOTES)]] for i, row in enumerate(rows))
        elif shape == "split-agents":
            if src.stem != "messages":
                shutil.copyfile(src, target)
                continue
            agent = header.index("agent")
            by_agent: dict[str, list[list[str]]] = {}
            for row in rows:
                by_agent.setdefault(row[agent], []).append(row)
            (month / "messages").mkdir()
            for k, name in enumerate(sorted(by_agent)):
                with open(month / "messages" / f"agent-{k:04d}.csv", "w", encoding="utf-8", newline="") as out:
                    w = csv.writer(out, lineterminator="\n")
                    w.writerow(header)
                    w.writerows(by_agent[name])
        elif shape == "quoted-but-ts":
            ts = header.index("ts")
            with open(target, "w", encoding="utf-8", newline="") as out:
                for row in [header, *rows]:
                    out.write(",".join(v if i == ts else '"' + v.replace('"', '""') + '"'
                                       for i, v in enumerate(row)) + "\n")
        elif shape == "gb18030":
            with open(src, "rb") as fin, open(target, "wb") as out:
                decoder = codecs.getincrementaldecoder("utf-8")()
                while block := fin.read(1 << 22):
                    out.write(decoder.decode(block).encode("gb18030"))
        elif shape == "jsonl":
            with open(target.with_suffix(".jsonl"), "w", encoding="utf-8") as out:
                for row in rows:
                    out.write(json.dumps({k: v for k, v in zip(header, row) if v != ""}, ensure_ascii=False) + "\n")
        elif shape == "xlsx":
            _write_xlsx(target.with_suffix(".xlsx"), header, rows)
        else:
            raise SystemExit(f"unknown shape {shape}")
    (folder / ".done").write_text("")
    print(f"# wrote {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


def _read_base(path: Path) -> tuple[list[str], list[list[str]]]:
    if path.suffix == ".jsonl":
        objs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        header = list(dict.fromkeys(k for o in objs for k in o))
        return header, [[str(o.get(k, "")) for k in header] for o in objs]
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """A plain export workbook: every cell an inline string (as many exports write times
    and ids), the rows over as many sheets as Excel's row limit needs."""
    chunks = [rows[i:i + SHEET_ROWS] for i in range(0, len(rows), SHEET_ROWS)] or [[]]
    names = [path.stem if k == 0 else f"{path.stem}{k + 1}" for k in range(len(chunks))]

    def row_xml(n: int, values: list[str]) -> str:
        cells = "".join(f'<c t="inlineStr"><is><t>{escape(v)}</t></is></c>' for v in values if True)
        return f'<row r="{n}">{cells}</row>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>'
            + "".join(f'<Override PartName="/xl/worksheets/sheet{k + 1}.xml" ContentType="application/'
                      f'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for k in range(len(chunks)))
            + "</Types>"))
        z.writestr("_rels/.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        z.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
            + "".join(f'<sheet name="{escape(n)}" sheetId="{k + 1}" r:id="rId{k + 1}"/>' for k, n in enumerate(names))
            + "</sheets></workbook>"))
        z.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(f'<Relationship Id="rId{k + 1}" Type="http://schemas.openxmlformats.org/officeDocument/'
                      f'2006/relationships/worksheet" Target="worksheets/sheet{k + 1}.xml"/>' for k in range(len(chunks)))
            + "</Relationships>"))
        for k, chunk in enumerate(chunks):
            with z.open(f"xl/worksheets/sheet{k + 1}.xml", "w", force_zip64=True) as part:
                part.write(('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                            '<sheetData>' + row_xml(1, header)).encode())
                for start in range(0, len(chunk), 10_000):
                    part.write("".join(row_xml(start + i + 2, r)
                                       for i, r in enumerate(chunk[start:start + 10_000])).encode())
                part.write(b"</sheetData></worksheet>")


# ---------------------------------------------------------------- the floor

def floor_seconds(folder: Path) -> float:
    import duckdb

    month = folder / MONTH
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    tmp = None
    try:
        files = sorted(month.iterdir())
        csvs = [p for p in files if p.suffix == ".csv"]
        if any(p.suffix == ".xlsx" for p in files):
            import pandas as pd
            from python_calamine import CalamineWorkbook

            for p in files:
                book = CalamineWorkbook.from_path(str(p))
                sheets = [book.get_sheet_by_name(name).to_python() for name in book.sheet_names]
                frame = pd.DataFrame([r for s in sheets for r in s[1:]], columns=sheets[0][0])
                con.register("f", frame)
                order = " ORDER BY conversation, ts" if p.stem == "messages" else ""
                con.execute(f'CREATE TABLE "{p.stem}" AS SELECT * FROM f{order}')
                con.unregister("f")
            return time.perf_counter() - started
        if csvs and _is_gb18030(csvs[0]):
            tmp = Path(tempfile.mkdtemp(prefix="floor-"))
            for p in csvs:
                with open(p, "rb") as fin, open(tmp / p.name, "wb") as out:
                    decoder = codecs.getincrementaldecoder("gb18030")()
                    while block := fin.read(1 << 22):
                        out.write(decoder.decode(block).encode("utf-8"))
            csvs = [tmp / p.name for p in csvs]
        msgs = [p for p in csvs if p.stem == "messages"]
        others = [p for p in csvs if p.stem != "messages"]
        if (month / "messages").is_dir():  # split-agents
            con.execute(f"CREATE TABLE m AS SELECT * FROM read_csv('{month / 'messages' / '*.csv'}', all_varchar=true) "
                        f"ORDER BY conversation, ts")
        elif msgs:
            con.execute(f"CREATE TABLE m AS SELECT * FROM read_csv('{msgs[0]}', all_varchar=true) "
                        f"ORDER BY conversation, ts")
        else:
            con.execute(f"CREATE TABLE m AS SELECT * FROM read_json('{month / 'messages.jsonl'}', "
                        f"format='newline_delimited', sample_size=-1) ORDER BY conversation, ts")
        if others:
            listed = ", ".join(f"'{p}'" for p in others)
            con.execute(f"CREATE TABLE o AS SELECT * FROM read_csv([{listed}], union_by_name=true, all_varchar=true)")
        for p in files:
            if p.suffix == ".jsonl" and p.stem != "messages":
                con.execute(f"CREATE TABLE {p.stem} AS SELECT * FROM read_json('{p}', format='newline_delimited')")
    finally:
        con.close()
        if tmp is not None:
            shutil.rmtree(tmp)
    return time.perf_counter() - started


def _is_gb18030(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    try:
        head[:head.rfind(b"\n")].decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


# ---------------------------------------------------------------- measured runs

def measure_child(argv: list[str], cwd: str) -> dict:
    """Run argv; its wall time, stdout and peak RSS. Runs inside a wrapper process (see
    main) so getrusage(RUSAGE_CHILDREN) sees only this child and its children."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env())
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall": wall, "stdout": proc.stdout, "peak_mb": peak_kb / 1024}


def measured(argv: list[str], cwd: Path) -> dict:
    wrapper = [sys.executable, __file__, "--measure", json.dumps([argv, str(cwd)])]
    return json.loads(subprocess.run(wrapper, capture_output=True, text=True, check=True).stdout)


def run_ledger(folder: Path, out: Path) -> dict:
    argv = [sys.executable, "-m", "ledger", "run", "--month", MONTH, "--policy", str(ROOT / "policy"),
            "--events", str(folder), "--out", str(out)]
    r = measured(argv, folder)  # in the data folder: the repository's sample roster.csv is not used
    timing_line = next(line for line in r["stdout"].splitlines() if line.startswith("用时"))
    phases = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s", timing_line)}
    events = int(re.search(r"合计读取 [\d,]+ 行，接受 ([\d,]+)", r["stdout"]).group(1).replace(",", ""))
    rejected = int(re.search(r"拒收 ([\d,]+)；", r["stdout"]).group(1).replace(",", ""))
    if rejected:
        raise SystemExit(f"{folder}: the ledger rejected {rejected} rows:\n{r['stdout']}")
    return {"events": events, "wall": r["wall"], "peak_mb": r["peak_mb"], **phases}


def run_pandas(folder: Path, result: Path) -> dict:
    argv = [sys.executable, str(ROOT / "bench" / "pandas_rules.py"), str(folder), "--month", MONTH,
            "--out", str(result)]
    r = measured(argv, folder)
    phases = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s", r["stdout"].splitlines()[-1])}
    return {"wall": r["wall"], "peak_mb": r["peak_mb"], **phases}


# ---------------------------------------------------------------- same lines, same totals

def ledger_lines(statement: Path) -> Counter:
    """(rule, account, trigger event, status, amount) of every line of the statement's 明细 sheets."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(statement))
    lines: Counter = Counter()
    for name in book.sheet_names:
        if not name.startswith("明细"):
            continue
        rows = book.get_sheet_by_name(name).to_python()
        head = rows[0]
        i_rule, i_agent, i_status = head.index("规则"), head.index("客服"), head.index("状态")
        i_amount, i_event, i_kind = head.index("金额"), head.index("触发事件"), head.index("类型")
        for row in rows[1:]:
            if row[i_kind] != "罚款":
                continue
            status = row[i_status]
            if status.startswith("待复核"):
                amount, status = Decimal(re.search(r"确认后 ([\d.]+)元", status).group(1)), "to_confirm"
            elif status == "待定":
                amount, status = None, "pending"
            else:
                amount, status = Decimal(str(row[i_amount])).quantize(Decimal("0.01")), "applied"
            lines[(row[i_rule], row[i_agent], str(row[i_event]), status, amount)] += 1
    return lines


def pandas_lines(result: Path) -> Counter:
    lines: Counter = Counter()
    with open(result, encoding="utf-8", newline="") as f:
        for rule, agent, event, status, amount in csv.reader(f):
            lines[(rule, agent, event, status, Decimal(amount) if amount else None)] += 1
    return lines


def totals(lines: Counter) -> tuple[int, Decimal, int, Decimal]:
    applied = sum(n for k, n in lines.items() if k[3] == "applied")
    money = sum((k[4] * n for k, n in lines.items() if k[3] == "applied"), Decimal(0))
    confirm = sum((k[4] * n for k, n in lines.items() if k[3] == "to_confirm"), Decimal(0))
    return applied, money, sum(lines.values()) - applied, confirm


def agent_messages(folder: Path) -> int:
    import duckdb

    con = duckdb.connect()
    try:
        return con.execute(f"SELECT count(*) FROM read_csv('{folder / MONTH / 'messages.csv'}', all_varchar=true) "
                           f"WHERE sender = 'agent'").fetchone()[0]
    finally:
        con.close()


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[2_000_000])
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--floor-runs", type=int, default=3)
    ap.add_argument("--generate-only", action="store_true", help="write the shapes' files, measure nothing")
    args = ap.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    if args.generate_only:
        for size in args.sizes:
            for shape in shapes:
                shape_folder(size, shape)
        return
    import duckdb

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    print(f"machine: {os.cpu_count()} cores, {ram:.0f} GB, {cpu}, {platform.machine()}; "
          f"python {platform.python_version()}, duckdb {duckdb.__version__}")
    print("| shape | events | fine lines | floor s | read s | evaluate s | statement s | write s | ledger s "
          "| ledger ÷ floor | pandas s (read) | pandas ÷ ledger | ledger MB | pandas MB | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    walls: dict[str, float] = {}
    for size in args.sizes:
        for shape in shapes:
            folder = shape_folder(size, shape)
            out = DATA / str(size) / f"reports-{shape}"
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            floor = statistics.median(floor_seconds(folder) for _ in range(args.floor_runs))
            r = run_ledger(folder, out)
            mine = ledger_lines(out / MONTH / f"ledger-{MONTH}.xlsx")
            fined = sum(n for k, n in mine.items())
            p = None
            if not args.no_pandas:
                result = DATA / str(size) / f"pandas-{shape}.csv"
                p = run_pandas(folder, result)
                theirs = pandas_lines(result)
                if theirs != mine:
                    diff = list((mine - theirs).items())[:5], list((theirs - mine).items())[:5]
                    raise SystemExit(f"{shape}: pandas and the ledger differ: ledger only {diff[0]}; pandas only {diff[1]}"
                                     f"\nledger {totals(mine)}\npandas {totals(theirs)}")
            if shape == "fine-dense":
                share = fined / agent_messages(folder)
                print(f"# fine-dense: {fined:,} fine lines = {share:.1%} of agent messages", file=sys.stderr)
                if share < 0.05:
                    raise SystemExit("the fine-dense month has fewer than 5% of agent messages fined")
            applied, money, _, _ = totals(mine)
            print(f"# {shape}: totals equal: {applied:,} applied lines, {money:,.2f} 元", file=sys.stderr)
            walls[f"{size}/{shape}"] = r["wall"]
            ps = f"{p['wall']:.2f} ({p['read']:.2f}) | {p['wall'] / r['wall']:.2f}" if p else "— | —"
            pm = f"{p['peak_mb']:,.0f}" if p else "—"
            print(f"| {shape} | {r['events']:,} | {fined:,} | {floor:.2f} | {r['read']:.2f} | {r['evaluate']:.2f} "
                  f"| {r.get('statement', 0):.2f} | {r['write']:.2f} | {r['wall']:.2f} | {r['wall'] / floor:.1f} "
                  f"| {ps} | {r['peak_mb']:,.0f} | {pm} | {load} |", flush=True)
    if len(walls) > 1:
        fastest = min(walls, key=walls.get)
        print(f"\nfastest: {fastest} {walls[fastest]:.2f} s; each shape ÷ the fastest: "
              + ", ".join(f"{k} {v / walls[fastest]:.2f}" for k, v in walls.items()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        argv, cwd = json.loads(sys.argv[2])
        print(json.dumps(measure_child(argv, cwd)))
    else:
        main()
