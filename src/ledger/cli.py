"""The `ledger` command line. Parsing arguments and printing only: logic lives elsewhere."""

from __future__ import annotations

import errno
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from ledger import __version__
from ledger.core.errors import LedgerError, PolicyError
from ledger.core.month import Month
from ledger.lang import load as policy_load

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="ledger — 客服奖惩台账 (penalty-and-incentive ledger for customer-service teams)")


def _progress():
    """Progress on a terminal (each phase, file and rule, with the time since the start);
    silent when piped (CI, scripts)."""
    if not sys.stderr.isatty():
        return None
    started = time.perf_counter()
    return lambda msg: print(f"… {time.perf_counter() - started:6.1f}s  {msg}", file=sys.stderr, flush=True)


@app.command()
def run(
    month: str = typer.Option(..., "--month", help="月份 YYYY-MM，例如 2024-05"),
    policy: List[Path] = typer.Option([Path("policy")], "--policy", help="规则文件或目录 (policy file or folder)"),
    events: Path = typer.Option(Path("events"), "--events", help="事件目录 (events folder)"),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录 (output folder)"),
    strict: bool = typer.Option(False, "--strict", help="有拒收行时以退出码 4 结束 (fail on rejected rows)"),
    adjustments: Path = typer.Option(Path("adjustments"), "--adjustments", help="申诉与调整目录 (adjustments folder)"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="花名册 CSV，默认当前目录的 roster.csv (if present)"),
):
    """按月出账：应用规则，生成 reports/<月份>/ 下的 Excel 账单。"""
    _run_period(month, policy, events, out, strict, adjustments, roster, seal=False)


@app.command("close")
def close_(
    month: Optional[str] = typer.Argument(None, help="要结账的月份 YYYY-MM，例如 2024-05"),
    month_option: Optional[str] = typer.Option(None, "--month", help="同上，也可以写成 --month 2024-05"),
    policy: List[Path] = typer.Option([Path("policy")], "--policy", help="规则文件或目录"),
    events: Path = typer.Option(Path("events"), "--events", help="事件目录"),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录"),
    adjustments: Path = typer.Option(Path("adjustments"), "--adjustments", help="申诉与调整目录"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="花名册 CSV，默认当前目录的 roster.csv"),
    leave_unconfirmed: bool = typer.Option(False, "--leave-unconfirmed",
                                           help="还有待复核的明细也结账：它们永不扣款 (close with lines still unconfirmed)"),
):
    """月结：出账并封存 reports/<月份>/CLOSED；已结账的月份只核对，永不覆盖。"""
    if (month is None) == (month_option is None):
        raise LedgerError("请给出一个月份：ledger close 2024-05 (give one month)", exit_code=2)
    _run_period(month or month_option, policy, events, out, False, adjustments, roster, seal=True,
                leave_unconfirmed=leave_unconfirmed)


def _run_period(month, policy, events, out, strict, adjustments, roster, *, seal: bool,
                leave_unconfirmed: bool = False) -> None:
    from ledger.inputs import events as events_mod
    from ledger.inputs import roster as roster_mod
    from ledger.outputs import outset

    Month.parse(month)  # a bad month is refused before anything is locked or written
    events_mod.check_output_folder(events, out)
    found = roster_mod.find(Path("."), roster, events)
    # One writer per output folder for the whole command: a second waits, then is refused (exit 9).
    with outset.writer_lock(out, f"ledger {'close' if seal else 'run'} --month {month}"):
        _bill(month, policy, events, out, strict, adjustments, found, seal=seal, leave_unconfirmed=leave_unconfirmed)


def _bill(month, policy, events, out, strict, adjustments, found, *, seal: bool, leave_unconfirmed: bool) -> None:
    from ledger.inputs import roster as roster_mod
    from ledger.outputs import report
    from ledger.period import close, register
    from ledger.period import lifecycle as period

    progress = _progress()
    p = period.prepare(policy, events, month, out_dir=out, adjustments_root=adjustments, progress=progress,
                       roster=roster_mod.read(found) if found is not None else None)
    result, statement = p.result, p.statement
    record, registered = register.sealed(out, result.month.text)
    if record is not None:
        ok, lines = period.verify(p, out, record)
        if ok:
            typer.echo(f"{result.month.text} 已结账 (closed)，核对一致 (verified)，没有写入任何文件：")
            typer.echo("\n".join(lines))
            if not registered and seal:
                folder = report.output_paths(out, result.month.text)["folder"]
                register.append(out, result.month.text, close.file_sha(folder / close.SNAPSHOT),
                                close.file_sha(folder / close.CLOSED))
                typer.echo(f"已登记到结账登记簿 (registered): {register.path(out)}")
            elif not registered:
                typer.echo("警告 (warning): " + register.unregistered_warning(out, [result.month.text])[0])
            return
        typer.echo("\n".join(lines), err=True)
        raise LedgerError(
            f"{result.month.text} 已结账 (closed month)，不会覆盖；上面是重新计算会带来的变化。更正会作为“上月更正”"
            f"记入下一个未结账的月份：ledger run --month {period.next_open_month(out, result.month.text)}",
            exit_code=close.EXIT_CLOSED_CHANGED)
    if result.load.n_events == 0:
        rejects = report.all_rejects(result)
        if not rejects:
            raise LedgerError(f"没有可用的事件 (no events): {events} 中没有可读取的事件行，什么也没有写", exit_code=3)
        paths = period.write(p, out, rejects_only=True)
        typer.echo("\n".join(report.load_lines(result)))
        raise LedgerError(f"没有可用的事件 (no events): {events} 中没有一行可用；拒收的 {len(rejects)} 行和原因见 "
                          f"{paths['rejects']}（这个月没有出账单）", exit_code=3)
    if seal and statement.to_confirm and not leave_unconfirmed:
        raise LedgerError(
            f"{result.month.text} 还有 {statement.to_confirm} 条待复核的明细没有确认，不能结账 (lines await confirmation)。"
            f"查看：ledger review --month {result.month.text}；在 {adjustments}/ 里写 confirm 或 waive；"
            f"或者用 --leave-unconfirmed 结账：这些明细不扣款，结账后也不会再扣",
            exit_code=close.EXIT_UNCONFIRMED)
    if progress:
        progress("写入账单 (writing statement)")
    started = time.perf_counter()
    paths = period.write(p, out, seal=seal)
    timings = result.timings + (("write", time.perf_counter() - started),)
    typer.echo("\n".join(report.summary_lines(result, statement, paths)))
    if p.n_adjusted or p.n_corrections:
        typer.echo(f"申诉与调整 (adjustments): {p.n_adjusted} 条；上月更正 (corrections of closed months): {p.n_corrections} 条")
    typer.echo("用时 (time): " + " · ".join(f"{name} {seconds:.2f}s" for name, seconds in timings))
    if seal:
        typer.echo(f"已结账 (closed): {paths['closed']}")
        typer.echo(f"结账校验码 (seal digest): {close.file_sha(paths['folder'] / close.SNAPSHOT)}"
                   f"（已印在账单 说明 表；请 HR 保存这份账单，日后用来核对）")
    if strict and (result.load.rejects or (result.roster is not None and result.roster.rejects)):
        raise LedgerError(f"--strict: 有 {len(report.all_rejects(result))} 行被拒收 (rows rejected)", exit_code=4)
    missing = statement.payroll.missing_from_hr if statement.payroll is not None else ()
    if strict and missing:
        raise LedgerError(f"--strict: HR导入 缺少 {len(missing)} 个账号的钱 (money missing from HR导入): "
                          + ", ".join(m[0] for m in missing), exit_code=4)


@app.command()
def check(
    paths: Optional[List[Path]] = typer.Argument(None, help="规则文件或目录，默认 policy/"),
    month: Optional[str] = typer.Option(None, "--month", help="再用这个月的数据检查重复处罚 (also look for events fined twice)"),
    events: Path = typer.Option(Path("events"), "--events", help="事件目录 (with --month)"),
    adjustments: Path = typer.Option(Path("adjustments"), "--adjustments", help="申诉与调整目录 (adjustments folder)"),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录，用来找已结账的月份 (to find closed months)"),
    format: str = typer.Option("text", "--format", help="text 或 json (for CI; shape in docs/cli.md)"),
):
    """检查规则文件：一次列出全部错误和警告 (all errors and warnings in one pass)。"""
    from ledger.evaluate import caps, engine
    from ledger.inputs import roster as roster_mod
    from ledger.lang.lint import diagnostics_json, double_fines, lint
    from ledger.period import lifecycle as period

    if format not in ("text", "json"):
        raise LedgerError(f"--format 只能是 text 或 json (unknown format): {format}", exit_code=2)
    as_json = format == "json"

    def show(diagnostics, notes, error: str | None) -> None:
        """Print everything found: text to stderr, or one JSON document to stdout."""
        if as_json:
            typer.echo(json.dumps(diagnostics_json(diagnostics, notes), ensure_ascii=False, indent=2))
        else:
            for d in diagnostics:
                typer.echo(d.render(), err=True)
            for where, note in notes:
                typer.echo(f"{where}: 警告: {note}", err=True)
        if error is not None:
            raise LedgerError(error, exit_code=1)

    policy, diagnostics, sources = policy_load.load_policy(paths or [Path("policy")])
    errors = sum(1 for d in diagnostics if d.severity == "error")
    diagnostics = diagnostics + lint(policy)  # warnings beside errors: lint reads what did check
    if errors:
        n_warnings = len(diagnostics) - errors
        show(diagnostics, [], f"规则文件有 {errors} 个错误 (policy has {errors} error{'s' if errors != 1 else ''})"
             + (f"，警告 {n_warnings} 个" if n_warnings else ""))
    from ledger.inputs import profiles as profiles_mod

    _, profile_diags = profiles_mod.read([events, Path("profiles")])  # export profiles: errors end the check
    profile_errors = sum(1 for d in profile_diags if d.severity == "error")
    diagnostics = diagnostics + profile_diags
    if profile_errors:
        show(diagnostics, [], f"导出格式文件有 {profile_errors} 个错误 (export profiles have {profile_errors} "
                              f"error{'s' if profile_errors != 1 else ''})")
    adjustment_diags = period.check_adjustments(policy, sources, events, out, adjustments)
    adjustment_errors = sum(1 for d in adjustment_diags if d.severity == "error")
    if adjustment_errors:
        show(diagnostics + adjustment_diags, [],
             f"调整文件有 {adjustment_errors} 个错误 (adjustments have {adjustment_errors} "
             f"error{'s' if adjustment_errors != 1 else ''})")
    diagnostics = diagnostics + adjustment_diags
    notes: list[tuple[str, str]] = []  # warnings about the data, without a place in a policy file
    found = roster_mod.find(Path("."), None, events)
    unprotected = caps.unprotected_pay(policy, roster_mod.read(found)) if found is not None else None
    if unprotected:
        notes.append((str(found), unprotected))
    if month:
        result = engine.run_policy(policy, sources, events, Month.parse(month))
        notes.extend((month, line) for line in double_fines(result.entries))
    show(diagnostics, notes, None)
    if not as_json:
        typer.echo(f"规则文件没有错误 (policy OK): {len(sources)} 个文件，{len(policy.rules)} 条规则，"
                   f"{len(policy.events)} 种事件，{len(policy.words)} 个词表，{len(policy.examples)} 个例子，"
                   f"{len(policy.metrics)} 个指标，{len(policy.monthly)} 条月度规则；"
                   f"警告 {len(diagnostics) + len(notes)} 个")


@app.command()
def sample(
    out: Path = typer.Option(Path("events/2024-05"), "--out", help="输出目录"),
    month: str = typer.Option("2024-05", "--month", help="月份 YYYY-MM"),
    agents: int = typer.Option(10, "--agents", min=1, help="客服人数"),
    per_day: Optional[int] = typer.Option(None, "--conversations-per-day", min=1, help="每天会话数"),
    seed: int = typer.Option(20240501, "--seed", help="随机种子 (same seed → same files)"),
    bad_rows: int = typer.Option(3, "--bad-rows", min=0, help="故意写入的坏行数 (malformed rows to include)"),
):
    """生成示例月份的事件数据 (generate a realistic sample month)。"""
    from ledger.sample import generator as sample_mod

    Month.parse(month)
    counts = sample_mod.generate(out, month, agents=agents, conversations_per_day=per_day,
                                 seed=seed, bad_rows=bad_rows)
    for name, n in counts.items():
        typer.echo(f"  {name}: {n:,} 行")
    typer.echo(f"已生成 (written): {out}")


@app.command()
def diff(
    month: Optional[str] = typer.Option(None, "--month", help="用哪个月的数据比较 (month of events to compare on)"),
    months: Optional[str] = typer.Option(None, "--months", help="几个月一起比较，例如 2024-03..2024-05"),
    base: str = typer.Option("HEAD", "--base", help="基准：git 版本 (REV) 或规则文件/目录 (FILE)"),
    policy: List[Path] = typer.Option([Path("policy")], "--policy", help="工作区的规则文件或目录"),
    events: Path = typer.Option(Path("events"), "--events", help="事件目录"),
    format: str = typer.Option("text", "--format", help="text（终端）、markdown（贴到评审里）或 json（CI）"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="花名册 CSV，默认当前目录的 roster.csv"),
    adjustments: Path = typer.Option(Path("adjustments"), "--adjustments", help="申诉与调整目录"),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录（找已结账的月份）"),
    fail_over: Optional[float] = typer.Option(None, "--fail-over", help="金额变化（各员工净额变化的绝对值之和）"
                                              "超过这么多元时退出码 8 (for CI)"),
):
    """比较规则修改前后：规则文本的变化，和账单上每位员工、每个账号、每条规则的金额变化
    （与 ledger run 走同一条路：版本、花名册、上限、最低工资、调整、上月更正）。"""
    from decimal import Decimal

    from ledger.inputs import roster as roster_mod
    from ledger.review.diff import diff_months, parse_months
    from ledger.review.diff_render import render_json, render_markdown, render_text

    if format not in ("text", "markdown", "json"):
        raise LedgerError(f"--format 只能是 text、markdown 或 json (got {format!r})", exit_code=2)
    if (month is None) == (months is None):
        raise LedgerError("请给出 --month 2024-05 或 --months 2024-03..2024-05 之一 (give one)", exit_code=2)
    found = roster_mod.find(Path("."), roster, events)
    result = diff_months(parse_months(months) if months else [month], policy_paths=list(policy), events_root=events,
                         base=base, roster=roster_mod.read(found) if found is not None else None,
                         adjustments_root=adjustments, out_dir=out)
    render = {"text": render_text, "markdown": render_markdown, "json": render_json}[format]
    typer.echo(render(result), nl=False)
    if format != "json":
        for w in result.warnings:
            typer.echo(f"警告 (warning): {w}", err=True)
    if fail_over is not None and result.moved > Decimal(str(fail_over)):
        raise LedgerError(f"--fail-over {fail_over}: 金额变化 {result.moved:,.2f}元 超过上限 "
                          f"(money moved over the limit)", exit_code=8)


@app.command()
def explain(
    entry_id: Optional[str] = typer.Argument(None, help="明细编号，如 E042B9E906020 (entry id)"),
    month: str = typer.Option(..., "--month", help="月份 YYYY-MM"),
    event: Optional[str] = typer.Option(None, "--event", help="改为解释一个事件：每条规则为什么罚或不罚 (event id)"),
    policy: List[Path] = typer.Option([Path("policy")], "--policy", help="规则文件或目录"),
    events: Path = typer.Option(Path("events"), "--events", help="事件目录"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="花名册 CSV，默认当前目录的 roster.csv"),
    adjustments: Path = typer.Option(Path("adjustments"), "--adjustments", help="申诉与调整目录"),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录（找已结账的月份）"),
):
    """解释一笔明细为什么产生、账单上实扣多少（上限、最低工资、调整之后），或一个事件为什么被罚 / 没被罚。"""
    from ledger.inputs import roster as roster_mod
    from ledger.review import explain as explain_mod
    from ledger.review.explain_render import render_entry, render_event

    if (entry_id is None) == (event is None):
        raise LedgerError("请给出一个明细编号，或用 --event 给出事件编号 (give an entry id or --event ID)", exit_code=2)
    if event is not None:
        typer.echo(render_event(explain_mod.explain_event(
            event, month=month, policy_paths=list(policy), events_root=events)))
    else:
        found = roster_mod.find(Path("."), roster, events)
        typer.echo(render_entry(explain_mod.explain_entry(
            entry_id, month=month, policy_paths=list(policy), events_root=events,
            roster=roster_mod.read(found) if found is not None else None, adjustments_root=adjustments,
            out_dir=out)))


@app.command()
def fmt(
    paths: Optional[List[Path]] = typer.Argument(None, help="规则文件或目录，默认 policy/"),
    check: bool = typer.Option(False, "--check", help="只检查不修改；需要格式化时退出码 1 (check only)"),
):
    """把规则文件整理成统一格式，注释保留在原处 (canonical layout, comments kept)。"""
    from ledger.lang.fmt import fmt_command

    text, code = fmt_command(list(paths or [Path("policy")]), check)
    typer.echo(text)
    if code:
        raise typer.Exit(code)


@app.command("test")
def test_(
    paths: Optional[List[Path]] = typer.Argument(None, help="规则文件或目录，默认 policy/"),
    strict: bool = typer.Option(False, "--strict", help="有规则版本（或月度规则）没有例子时也退出码 1 (uncovered rules fail)"),
    format: str = typer.Option("text", "--format", help="text 或 json (for CI)"),
):
    """运行规则文件里的 example 例子；列出没有例子的规则版本 (run the policy's examples)。"""
    from ledger.review.examples import test_command

    text, code = test_command(list(paths or [Path("policy")]), strict=strict, format=format)
    typer.echo(text)
    if code:
        raise LedgerError("有例子没有通过，或 --strict 下有规则没有例子 (examples failed or rules uncovered)",
                          exit_code=code)


@app.command("review")
def review_(
    month: str = typer.Option(..., "--month", help="月份 YYYY-MM"),
    policy: List[Path] = typer.Option([Path("policy")], "--policy", help="规则文件或目录"),
    events: Path = typer.Option(Path("events"), "--events", help="事件目录"),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录（找已结账的月份）"),
    adjustments: Path = typer.Option(Path("adjustments"), "--adjustments", help="申诉与调整目录"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="花名册 CSV，默认当前目录的 roster.csv"),
):
    """列出待复核的明细和它们前后的聊天记录，以及确认/免除要写的那一行 (the confirmation queue)。"""
    from ledger.inputs import roster as roster_mod
    from ledger.review import queue

    found = roster_mod.find(Path("."), roster, events)
    month_text, items = queue.waiting(policy, events, month, out_dir=out, adjustments_root=adjustments,
                                      roster=roster_mod.read(found) if found is not None else None)
    typer.echo(queue.render(month_text, items))


@app.command()
def serve(
    port: Optional[int] = typer.Option(None, "--port", min=0, max=65535,
                                       help="端口，默认 8765（被占用时自动换下一个）；0 = 任意空闲端口"),
    host: str = typer.Option("127.0.0.1", "--host", help="监听地址，默认只有本机能访问；改成别的地址会打印警告"),
    month: Optional[str] = typer.Option(None, "--month", help="打开时直接显示这个月 YYYY-MM"),
    policy: List[Path] = typer.Option([Path("policy")], "--policy", help="规则文件或目录"),
    events: Path = typer.Option(Path("events"), "--events", help="事件目录"),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录"),
    adjustments: Path = typer.Option(Path("adjustments"), "--adjustments", help="申诉与调整目录"),
    roster: Optional[Path] = typer.Option(None, "--roster", help="花名册 CSV，默认当前目录的 roster.csv"),
):
    """复核台：在浏览器里看每个月、读聊天记录、确认/免除待复核、记录申诉、看趋势和规则修改的影响。"""
    from ledger.desk.server import DEFAULT_PORT, make_server, warning
    from ledger.desk.workspace import Config
    from ledger.lang.load import policy_files
    from ledger.inputs import roster as roster_mod

    if month is not None:
        Month.parse(month)
    policy_files(list(policy))  # a missing policy path fails now, with its own message
    roster_mod.find(Path("."), roster, events)  # a missing --roster too
    config = Config(Path.cwd().resolve(), tuple(policy), events, out, adjustments, roster)
    started = make_server(config, host=host, port=DEFAULT_PORT if port is None else port,
                          port_given=port is not None, month=month)
    note = warning(host)
    if note:
        typer.echo(note, err=True)
    typer.echo(f"复核台已启动 (review desk): {started.url}")
    typer.echo("在浏览器里打开上面的链接（链接里带着访问令牌，只在这台电脑上显示这一次）；按 Ctrl+C 停止。", err=False)
    sys.stdout.flush()
    try:
        started.server.run()
    finally:
        started.server.close()


@app.command()
def score(
    paths: Optional[List[Path]] = typer.Argument(None, help="标注对话文件或目录 (*.chat)，默认 policy/quality/"),
    policy: List[Path] = typer.Option([Path("policy")], "--policy", help="规则文件或目录，可重复"),
    minimum: Optional[float] = typer.Option(None, "--min", help="任何规则的精确率或召回率低于这个百分比时退出码 1"),
    quiet: bool = typer.Option(False, "--quiet", help="只显示每条规则的得分，不列不一致的消息"),
):
    """用人工标注的对话给规则打分：每条规则的精确率和召回率，并列出不一致的消息 (score the policy)。"""
    from decimal import Decimal

    from ledger.review.quality import score_command

    text, code = score_command(list(paths or [Path("policy") / "quality"]), list(policy),
                               None if minimum is None else Decimal(str(minimum)), show=not quiet)
    typer.echo(text)
    if code:
        raise LedgerError("有规则的得分低于 --min (a rule scored under the minimum)", exit_code=code)


@app.command()
def version():
    """显示版本。"""
    typer.echo(f"ledger {__version__}")


def _exception_classes(name: str) -> tuple[type, ...]:
    """Click's exception classes by name. Typer ≥ 0.26 vendors its own copy of click
    (typer._click), older versions use click itself: catch whichever is in use."""
    import importlib

    found = []
    for module in ("typer._click.exceptions", "typer.exceptions", "typer", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


_USAGE = _exception_classes("UsageError")
_EXIT = _exception_classes("Exit")
_ABORT = _exception_classes("Abort")
_CLICK = _exception_classes("ClickException")


def main(argv: list[str] | None = None) -> int:
    """Entry point: every user mistake ends in one clear message and a documented exit
    code (docs/cli.md). The console script passes the return value to sys.exit."""
    from ledger.core.scratch import run_scratch

    command = typer.main.get_command(app)
    try:
        # Every temporary file of the command in one scratch folder, removed at the end (and by
        # the next command when this one is killed); see core/scratch.py.
        with run_scratch():
            # Without standalone mode click returns an Exit's code instead of exiting.
            returned = command.main(args=argv if argv is not None else sys.argv[1:], prog_name="ledger",
                                    standalone_mode=False)
    except _USAGE as exc:
        message = " ".join(exc.format_message().split())
        print(f"ledger: {message}（运行 ledger --help 查看用法）", file=sys.stderr)
        return 2
    except _EXIT as exc:
        return getattr(exc, "exit_code", 0)
    except (_ABORT + (KeyboardInterrupt,)):
        print("ledger: 已取消 (aborted)", file=sys.stderr)
        return 130
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except LedgerError as exc:
        print(f"ledger: {exc}", file=sys.stderr)
        return exc.exit_code
    except _CLICK as exc:
        print(f"ledger: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a full disk or `ulimit -f` outside the month's set: one line, exit 5
        message = _io_failure(exc)  # (inside the set, outputs/outset.py says so and keeps the previous set)
        if message is None:
            raise
        print(f"ledger: {message}", file=sys.stderr)
        return 5
    if returned == 130:  # typer turns Ctrl-C into a returned 130 (no command returns it)
        print("ledger: 已取消 (aborted)", file=sys.stderr)
    return returned if isinstance(returned, int) else 0


_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_DISK_WORDS = ("No space left on device", "File too large", "Disk quota exceeded")


def _io_failure(exc: BaseException) -> str | None:
    """One line for a file that could not be written or read (OSError; DuckDB's own I/O
    errors, which carry the system's message), or None for anything else."""
    import tempfile

    text = " ".join(str(exc).split())[:400]
    full = (isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS) or any(w in text for w in _DISK_WORDS)
    if full:
        return (f"磁盘空间不足或文件超过大小限制，无法写入 (no space left on device / file too large): {text}。"
                f"临时文件在 {tempfile.gettempdir()}（TMPDIR），输出在 --out 目录；腾出空间后重新运行")
    if isinstance(exc, OSError):
        return f"读写文件失败 (input/output error): {text}"
    return None


if __name__ == "__main__":
    sys.exit(main())
