"""The desk's pages and its one kind of write.

Every URL names a month (YYYY-MM, checked), an entry id (E + 12 hex digits, checked) or
an account (a query parameter compared with the statement's accounts, never a path). The
only files served are the package's static assets and a month's statement workbook, whose
path is built from the checked month. A path typed in the policy-edit form must lie inside
the workspace (`Workspace.inside`).

GET  /                         months found (events or statements), open / closed
GET  /m/<month>                totals per agent and rule, 待复核, rejected rows, state
GET  /m/<month>/agent?a=…      every line of one account with its evidence, 应扣/减免/实扣
GET  /m/<month>/line/<id>      one line: conversation, matched words, rule, windows (explain)
GET  /m/<month>/queue          the 待复核 queue: confirm (c) / waive (w), j/k to move
GET  /m/<month>/disputes       fines that can be disputed; upheld / overturned / reduced
POST /m/<month>/decide         one decision → one adjustments line, then the month recomputed
GET  /m/<month>/statement.xlsx the month's statement as written
GET  /trends                   months in reports/: per agent and per rule, charts
GET|POST /diff                 a proposed policy edit's money (review.diff)
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, send_file, url_for

from ledger.core.errors import LedgerError, PolicyError
from ledger.desk import actions, charts, trends, views
from ledger.desk.workspace import MONTH, Outside, Workspace
from ledger.lang.load import policy_files
from ledger.review import diff as diff_mod

bp = Blueprint("desk", __name__)
ENTRY = re.compile(r"E[0-9A-F]{12}|[AC][0-9A-F]{12}")
PROPOSAL_LIMIT = 1024 * 1024  # characters of a proposed rules file


def ws() -> Workspace:
    return current_app.config["DESK"]


def checked_month(month: str) -> str:
    if not MONTH.fullmatch(month):
        abort(404, description=f"月份应为 YYYY-MM (bad month): {month}")
    return month


def decisions_of(month: str) -> dict:
    try:
        return actions.current_decisions(ws(), month)
    except actions.Refused:
        return {}  # shown on the month page through the period's own error


@bp.get("/")
def home():
    return render_template("home.html", months=ws().months(), title="复核台")


@bp.get("/m/<month>")
def month_page(month: str):
    month = checked_month(month)
    w = ws()
    period = w.period(month)
    decided = sum(len(v) for v in decisions_of(month).values())
    view = views.month_view(period, closed=w.is_closed(month), decided=decided,
                            has_statement=w.statement_path(month).is_file())
    return render_template("month.html", v=view, title=f"{month} 月度总览",
                           adjustments=w.adjustments_file(month).as_posix())


@bp.get("/m/<month>/agent")
def agent_page(month: str):
    month = checked_month(month)
    agent = request.args.get("a", "")
    view = views.agent_view(ws().period(month), agent, decisions_of(month))
    if not view.known:
        abort(404, description=f"{month} 没有这个客服账号 (no such account): {agent}")
    return render_template("agent.html", v=view, title=f"{agent} · {month}")


@bp.get("/m/<month>/line/<entry_id>")
def line_page(month: str, entry_id: str):
    month = checked_month(month)
    if not ENTRY.fullmatch(entry_id):
        abort(404, description=f"明细编号不对 (bad entry id): {entry_id}")
    w = ws()
    x = w.explanation(month, entry_id)
    view = views.line_view(x, decisions_of(month).get(entry_id, ()), w.is_closed(month))
    return render_template("line.html", v=view, title=f"明细 {entry_id} · {month}")


@bp.get("/m/<month>/queue")
def queue_page(month: str):
    month = checked_month(month)
    w = ws()
    items = views.queue_items(w.queue(month))
    period = w.period(month)
    return render_template("queue.html", month=month, items=items, closed=w.is_closed(month),
                           to_confirm_amount=views.money_total([i.entry.amount for i in items]),
                           fines=period.statement.total_fines, title=f"{month} 待复核")


@bp.get("/m/<month>/disputes")
def disputes_page(month: str):
    month = checked_month(month)
    w = ws()
    period = w.period(month)
    agent, rule = request.args.get("agent", ""), request.args.get("rule", "")
    decisions = decisions_of(month)
    rows = views.dispute_rows(period, decisions, agent, rule)
    decided = [r for r in views.dispute_rows(period, decisions) if any("dispute" in d for d in r.decisions)]
    agents = sorted({e.agent for e in period.statement.entries})
    rules = [r.rule_id for r in period.statement.rules]
    return render_template("disputes.html", month=month, rows=rows, decided=decided, agents=agents, rules=rules,
                           agent=agent, rule=rule, closed=w.is_closed(month), title=f"{month} 申诉")


@bp.post("/m/<month>/decide")
def decide(month: str):
    month = checked_month(month)
    wants_json = "application/json" in request.headers.get("Accept", "")
    form = request.form
    try:
        decision = actions.parse(form.get("kind", ""), form.get("entry", ""), form.get("reason", ""),
                                 form.get("amount", ""))
        outcome = actions.decide(ws(), month, decision)
    except LedgerError as exc:  # Refused, or the month cannot be computed (a policy or adjustments error)
        status = exc.status if isinstance(exc, actions.Refused) else 500
        if wants_json:
            return jsonify(ok=False, message=str(exc)), status
        return render_template("error.html", title="没有写入 (not written)", message=str(exc)), status
    st = outcome.period.statement
    if wants_json:
        return jsonify(ok=True, line=outcome.line, where=outcome.where, fines=views.yuan(st.total_fines),
                       bonuses=views.yuan(st.total_bonuses), to_confirm=st.to_confirm,
                       to_confirm_amount=views.yuan(views.money_total([a.to_confirm_amount for a in st.agents])))
    back = form.get("next", "")
    if not back.startswith(f"/m/{month}/") and back != f"/m/{month}":
        back = url_for("desk.month_page", month=month)
    return redirect(back, code=303)


@bp.get("/m/<month>/statement.xlsx")
def statement_file(month: str):
    month = checked_month(month)
    path = ws().statement_path(month)
    if not path.is_file():
        abort(404, description=f"{month} 还没有账单文件 (no statement yet)")
    return send_file(path.resolve(), as_attachment=True, download_name=path.name)


@bp.get("/trends")
def trends_page():
    t = trends.read(ws().config.out)
    labels = list(t.labels)
    agents, rules = t.agents(), t.rules()
    totals = charts.bar_chart(labels, {"罚款": [m.fines for m in t.months], "奖励": [m.bonuses for m in t.months]},
                              colors=(charts.FINE_COLOR, charts.BONUS_COLOR))
    by_agent = charts.line_chart(labels, {a: t.agent_series(a) for a in agents})
    fine_rules = [r for r in rules if any(m.rules.get(r) and m.rules[r].kind == "罚款" for m in t.months)]
    by_rule = charts.line_chart(labels, {r: t.rule_series(r) for r in fine_rules})
    agent_rows = [(a, t.agent_series(a), charts.sparkline(t.agent_series(a))) for a in agents]
    rule_rows = [(r, t.rule_series(r, "count"), t.rule_series(r), charts.sparkline(t.rule_series(r, "count")))
                 for r in rules]
    return render_template("trends.html", t=t, labels=labels, totals=totals, by_agent=by_agent, by_rule=by_rule,
                           agent_rows=agent_rows, rule_rows=rule_rows, title="趋势")


@bp.route("/diff", methods=["GET", "POST"])
def diff_page():
    w = ws()
    current_files = [p.as_posix() for p in policy_files(list(w.config.policy))]
    found = [m for m in w.months() if m.events]
    months = [m.month for m in found]
    busiest = max(found, key=lambda m: m.events).month if found else ""
    form = request.form if request.method == "POST" else request.args
    chosen = form.get("file") if form.get("file") in current_files else (current_files[0] if current_files else "")
    loading = bool(form.get("load"))  # 载入: show the chosen file's text, compute nothing
    state = dict(mode="text" if loading else form.get("mode", "path"), path=form.get("path", ""), file=chosen,
                 month=form.get("month") if form.get("month") in months else busiest)
    text = None if loading else form.get("text")
    if text is None and chosen:
        text = Path(chosen).read_text(encoding="utf-8-sig")
    state["text"] = text or ""
    result = error = None
    if request.method == "POST" and not loading:
        try:
            result = _proposal_diff(w, state, current_files)
        except (Outside, PolicyError, LedgerError) as exc:
            error = str(exc)
    return render_template("diff.html", files=current_files, months=months, s=state, result=result, error=error,
                           title="规则修改的金额影响")


def _proposal_diff(w: Workspace, s: dict, current_files: list[str]):
    if not s["month"]:
        raise LedgerError("没有带事件的月份可以比较 (no month with events)")
    current = diff_mod.policy_files_of(list(w.config.policy))
    if s["mode"] == "text":
        if len(s["text"]) > PROPOSAL_LIMIT:
            raise LedgerError("提案太长了 (proposal too long)")
        name = s["file"]
        proposed = [diff_mod.PolicyFile(f.key, f.name, s["text"].encode("utf-8")) if f.name == name else f
                    for f in current]
        label = f"修改后的 {name}"
    else:
        path = w.inside(s["path"])
        if path.is_dir():
            proposed = diff_mod.policy_files_of([path])
        else:
            new = diff_mod.policy_files_of([path])[0]
            proposed = [f for f in current if f.key != new.key] + [new]
        label = path.as_posix()
    c = w.config
    return diff_mod.diff_proposal([s["month"]], current=current, proposed=proposed, events_root=c.events,
                                  roster=w.roster(), adjustments_root=c.adjustments, out_dir=c.out,
                                  current_label="当前规则", proposed_label=label).months[0]
