"""The desk over HTTP, without a browser (Flask's test client): the token, the hosts, the
same-origin check, paths that must not leave the workspace, hostile text escaped, and
decisions landing in the adjustments file exactly once, with the totals they imply."""

from __future__ import annotations

import re
import socket
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from deskws import EVIL_AGENT, HOSTILE_RUDE, MONTH, copy_workspace, pristine  # noqa: F401 (a fixture)
from ledger.cli import main
from ledger.core.entries import APPLIED, FINE, TO_CONFIRM
from ledger.core.errors import LedgerError
from ledger.desk import server
from ledger.desk.app import create_app
from ledger.desk.trends import read_statement
from ledger.desk.workspace import Config, Workspace
from ledger.period import adjustments as adj

PORT = 5123
ORIGIN = f"http://127.0.0.1:{PORT}"
TOKEN = "t0ken-for-tests"


@pytest.fixture(scope="module")
def root(pristine, tmp_path_factory) -> Path:
    return copy_workspace(pristine, tmp_path_factory.mktemp("http") / "ws")


@pytest.fixture(scope="module")
def desk(root):
    config = Config(root.resolve(), (Path("policy"),), Path("events"), Path("reports"), Path("adjustments"), None)
    return Workspace(config)


@pytest.fixture
def client(desk, root, monkeypatch):
    monkeypatch.chdir(root)
    app = create_app(desk, TOKEN, host="127.0.0.1", port=PORT)
    c = app.test_client()
    r = c.get(f"/?token={TOKEN}", base_url=ORIGIN)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert f"ledger_desk_{PORT}={TOKEN}" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    assert "SameSite=Strict" in r.headers["Set-Cookie"]
    return c


def get(c, path, **kw):
    return c.get(path, base_url=ORIGIN, **kw)


def post(c, path, data, origin=ORIGIN, json=True, **kw):
    headers = {"Accept": "application/json"} if json else {}
    if origin is not None:
        headers["Origin"] = origin
    return c.post(path, data=data, base_url=ORIGIN, headers=headers | kw.pop("headers", {}), **kw)


def waiting(desk) -> list[str]:
    return [e.id for e in desk.period(MONTH).statement.entries if e.status == TO_CONFIRM]


# ------------------------------------------------------------------ token, hosts, origin

def test_without_the_token_nothing_is_served(desk, root, monkeypatch):
    monkeypatch.chdir(root)
    c = create_app(desk, TOKEN, host="127.0.0.1", port=PORT).test_client()
    for path in ("/", f"/m/{MONTH}", f"/m/{MONTH}/queue", "/trends", f"/m/{MONTH}/statement.xlsx"):
        r = get(c, path)
        assert r.status_code == 403 and "访问令牌" in r.get_data(as_text=True), path
    assert get(c, "/?token=wrong").status_code == 403
    c.set_cookie(f"ledger_desk_{PORT}", "wrong", domain="127.0.0.1")
    assert get(c, f"/m/{MONTH}").status_code == 403
    r = post(c, f"/m/{MONTH}/decide", {"kind": "confirm", "entry": HOSTILE_RUDE})
    assert r.status_code == 403
    assert get(c, "/static/desk.css").status_code == 200  # the package's own stylesheet needs no token
    assert not (root / "adjustments").exists()


def test_a_foreign_host_name_is_refused(client):
    # DNS rebinding: a page of another site whose name resolves to 127.0.0.1.
    r = client.get("/", base_url=f"http://evil.example:{PORT}")
    assert r.status_code == 403
    assert get(client, "/").status_code == 200
    # localhost is the same desk (its own cookie: the token in the URL once more)
    assert client.get(f"/?token={TOKEN}", base_url=f"http://localhost:{PORT}").status_code == 303
    assert client.get(f"/?token={TOKEN}", base_url=f"http://evil.example:{PORT}").status_code == 403


def test_cross_origin_posts_are_refused_and_write_nothing(client, root):
    entry = {"kind": "waive", "entry": HOSTILE_RUDE, "reason": "跨站"}
    for origin in ("http://evil.example", f"http://127.0.0.1:{PORT + 1}", "null"):
        assert post(client, f"/m/{MONTH}/decide", entry, origin=origin).status_code == 403, origin
    assert post(client, f"/m/{MONTH}/decide", entry, origin=None).status_code == 403  # neither Origin nor Referer
    r = post(client, f"/m/{MONTH}/decide", entry, origin=None, headers={"Referer": "http://evil.example/x"})
    assert r.status_code == 403
    assert not (root / "adjustments").exists()
    # A Referer on the desk itself (a browser that sends no Origin) passes the check: the bad kind is 400.
    r = post(client, f"/m/{MONTH}/decide", {"kind": "nope", "entry": HOSTILE_RUDE}, origin=None,
             headers={"Referer": f"{ORIGIN}/m/{MONTH}/queue"})
    assert r.status_code == 400


def test_every_response_forbids_inline_script_and_framing(client):
    r = get(client, f"/m/{MONTH}")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"] == "no-store"


# ------------------------------------------------------------------ paths

@pytest.mark.parametrize("path", [
    "/static/../pyproject.toml", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fcli.py",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", f"/m/..%2f..%2fetc/statement.xlsx",
    "/m/%2e%2e/statement.xlsx", f"/m/{MONTH}/line/..%2f..%2fpolicy", f"/m/{MONTH}/line/%2e%2e",
    "/m/2024-05%2f..%2f..%2f/statement.xlsx", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
])
def test_no_url_reaches_a_file_outside_the_workspace(client, path):
    r = get(client, path)
    body = r.get_data()
    assert r.status_code in (404, 308, 400), (path, r.status_code)
    assert b"root:" not in body and b"[project]" not in body and b"def main" not in body


@pytest.mark.parametrize("typed", ["../outside.rules", "/etc/passwd", "%2e%2e/outside.rules", "link/outside.rules",
                                   "policy/../../outside.rules", "nonexistent/"])
def test_the_policy_edit_form_reads_only_inside_the_workspace(client, root, typed):
    outside = root.parent / "outside.rules"
    outside.write_text('policy "外面"\n', encoding="utf-8")
    if not (root / "link").exists():
        (root / "link").symlink_to(root.parent, target_is_directory=True)
    r = post(client, "/diff", {"month": MONTH, "mode": "path", "path": typed}, json=False)
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and "没有算出来" in text, typed
    assert "外面" not in text


# ------------------------------------------------------------------ hostile text

def test_hostile_text_and_names_are_escaped_everywhere(client):
    pages = [f"/m/{MONTH}", f"/m/{MONTH}/queue", f"/m/{MONTH}/line/{HOSTILE_RUDE}", f"/m/{MONTH}/disputes",
             f"/m/{MONTH}/agent?a={EVIL_AGENT}"]
    for path in pages:
        r = get(client, path)
        html = r.get_data(as_text=True)
        assert r.status_code == 200, path
        assert "<script>window" not in html and "<img src=x" not in html, path
        assert "&lt;img src=x onerror=window.__pwned=1&gt;" in html, path  # the name, shown as text
    line = get(client, f"/m/{MONTH}/line/{HOSTILE_RUDE}").get_data(as_text=True)
    assert "&lt;script&gt;window.__pwned = &#34;script&#34;&lt;/script&gt;" in line
    assert "<mark>你有病</mark>" in line and "<mark>爱买不买</mark>" in line  # matched words highlighted
    # Every <script> on a page is the desk's own file.
    assert re.findall(r"<script[^>]*>", line) == ['<script src="/static/desk.js">']


# ------------------------------------------------------------------ decisions

def test_confirm_appends_the_line_a_person_would_type_and_adds_its_amount(client, desk, root):
    before = desk.period(MONTH).statement
    entry = next(e for e in before.entries if e.id == HOSTILE_RUDE)
    r = post(client, f"/m/{MONTH}/decide", {"kind": "confirm", "entry": HOSTILE_RUDE, "reason": '确属顶撞，"态度"恶劣'})
    assert r.status_code == 200 and r.json["ok"], r.json
    text = (root / "adjustments" / f"{MONTH}.txt").read_text(encoding="utf-8")
    assert text.splitlines()[-2:] == [f"month {MONTH}", f'confirm {HOSTILE_RUDE} "确属顶撞，\\"态度\\"恶劣"']
    parsed, diags = adj.parse(text, "x.txt")
    assert not diags and parsed.actions[-1].reason == '确属顶撞，"态度"恶劣'
    after = desk.period(MONTH).statement
    assert after.total_fines == before.total_fines + entry.amount  # no cap bites in this small month
    assert after.to_confirm == before.to_confirm - 1
    assert r.json["fines"] == f"{after.total_fines:,.2f}"
    assert main(["check", "--events", "events"]) == 0  # `ledger check` reads what the desk wrote
    # The statement on disk was rewritten through the run's path, with the new totals.
    on_disk = read_statement(root / "reports" / MONTH / f"ledger-{MONTH}.xlsx", MONTH)
    assert on_disk.fines == after.total_fines


def test_deciding_the_same_line_twice_never_writes_twice(client, root):
    target = root / "adjustments" / f"{MONTH}.txt"
    before = target.read_bytes()
    for data in ({"kind": "confirm", "entry": HOSTILE_RUDE},
                 {"kind": "waive", "entry": HOSTILE_RUDE, "reason": "另一个标签页"}):
        r = post(client, f"/m/{MONTH}/decide", data)
        assert r.status_code == 409 and "已经在" in r.json["message"] and "没有重复写入" in r.json["message"]
    assert target.read_bytes() == before


def test_two_tabs_at_once_write_one_line(client, desk, root):
    entry = waiting(desk)[0]
    results = []

    def decide(kind, reason):
        results.append(post(client, f"/m/{MONTH}/decide", {"kind": kind, "entry": entry, "reason": reason}).status_code)

    threads = [threading.Thread(target=decide, args=("confirm", "甲")), threading.Thread(target=decide, args=("waive", "乙"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    lines = (root / "adjustments" / f"{MONTH}.txt").read_text(encoding="utf-8").splitlines()
    assert sum(1 for line in lines if entry in line) == 1


def test_waive_needs_a_reason_and_keeps_it_on_one_line(client, desk, root):
    entry = waiting(desk)[0]
    r = post(client, f"/m/{MONTH}/decide", {"kind": "waive", "entry": entry, "reason": "  "})
    assert r.status_code == 400 and "理由" in r.json["message"]
    reason = '买家先骂人\n主管同意 # 不是注释 \\ 反斜杠'
    r = post(client, f"/m/{MONTH}/decide", {"kind": "waive", "entry": entry, "reason": reason})
    assert r.status_code == 200, r.json
    text = (root / "adjustments" / f"{MONTH}.txt").read_text(encoding="utf-8")
    parsed, diags = adj.parse(text, "x.txt")
    assert not diags and parsed.actions[-1].kind == "waive"
    assert parsed.actions[-1].reason == "买家先骂人 主管同意 # 不是注释 \\ 反斜杠"
    e = next(e for e in desk.period(MONTH).statement.entries if e.id == entry)
    assert e.status == APPLIED and e.amount == 0


def test_a_dispute_reduces_a_fine_by_the_right_amount(client, desk, root):
    st = desk.period(MONTH).statement
    fine = next(e for e in st.entries if e.kind == FINE and e.status == APPLIED and e.id.startswith("E")
                and e.amount and e.amount > 5 and e.owed is None)
    r = post(client, f"/m/{MONTH}/decide", {"kind": "reduced", "entry": fine.id, "amount": str(fine.amount),
                                            "reason": "不低于原金额"})
    assert r.status_code == 400 and "应小于原金额" in r.json["message"]
    r = post(client, f"/m/{MONTH}/decide", {"kind": "reduced", "entry": fine.id, "amount": "5", "reason": "情节轻微"})
    assert r.status_code == 200, r.json
    assert r.json["line"] == f'dispute {fine.id} reduced 5元 "情节轻微"'
    after = desk.period(MONTH).statement
    assert after.total_fines == st.total_fines - fine.amount + Decimal("5.00")
    # A confirmed 待复核 line can still be disputed; a waived one cannot.
    r = post(client, f"/m/{MONTH}/decide", {"kind": "overturned", "entry": HOSTILE_RUDE, "reason": "申诉成功"})
    assert r.status_code == 200, r.json
    assert next(e for e in desk.period(MONTH).statement.entries if e.id == HOSTILE_RUDE).amount == 0
    r = post(client, f"/m/{MONTH}/decide", {"kind": "upheld", "entry": HOSTILE_RUDE, "reason": "再来一次"})
    assert r.status_code == 409


def test_a_form_without_script_posts_and_comes_back(client, desk, root):
    st = desk.period(MONTH).statement
    fine = next(e for e in st.entries if e.kind == FINE and e.status == APPLIED and e.id.startswith("E")
                and e.amount and e.owed is None and e.id not in (root / "adjustments" / f"{MONTH}.txt").read_text())
    back = f"/m/{MONTH}/line/{fine.id}"
    data = {"kind": "waive", "entry": fine.id, "reason": "系统误判", "next": back}
    r = post(client, f"/m/{MONTH}/decide", data, json=False)
    assert r.status_code == 303 and r.headers["Location"] == back
    assert desk.period(MONTH).statement.total_fines == st.total_fines - fine.amount
    page = get(client, back).get_data(as_text=True)
    assert "已免除" in page and "waive" in page and 'name="kind" value="waive"' not in page  # decided: no form
    r = post(client, f"/m/{MONTH}/decide", data | {"next": "https://evil.example/"}, json=False)
    assert r.status_code == 409 and "没有重复写入" in r.get_data(as_text=True)
    assert waiting(desk) == []
    assert "没有待复核的明细" in get(client, f"/m/{MONTH}/queue").get_data(as_text=True)


def test_a_closed_month_is_read_only(client, desk, root):
    assert main(["close", "2024-06"]) == 0  # the sample's last minutes spill into June
    target = root / "adjustments" / "2024-06.txt"
    r = post(client, "/m/2024-06/decide", {"kind": "waive", "entry": "E000000000000", "reason": "x"})
    assert r.status_code == 409 and "已结账" in r.json["message"] and not target.exists()
    page = get(client, "/m/2024-06").get_data(as_text=True)
    assert "已结账" in page and 'action="/m/2024-06/decide"' not in page


# ------------------------------------------------------------------ pages

def test_every_page_opens(client):
    for path in ("/", f"/m/{MONTH}", f"/m/{MONTH}/queue", f"/m/{MONTH}/disputes", "/trends", "/diff",
                 f"/m/{MONTH}/statement.xlsx", "/static/desk.js", f"/m/{MONTH}/disputes?agent={EVIL_AGENT}"):
        assert get(client, path).status_code == 200, path
    assert get(client, f"/m/{MONTH}/agent?a=nobody").status_code == 404
    assert get(client, f"/m/{MONTH}/line/E000000000000").status_code == 500  # explain: no such entry
    assert "找不到明细编号" in get(client, f"/m/{MONTH}/line/E000000000000").get_data(as_text=True)


def test_a_proposed_edit_shows_the_money_ledger_diff_computes(client, root):
    text = (root / "policy" / "house-rules.rules").read_text(encoding="utf-8")
    edited = text.replace("rule 敬语 ", "rule 敬语 ", 1)
    block = edited[edited.index("rule 敬语 "):]
    amount = re.search(r"fine (\d+)元", block).group(0)
    edited = edited[:edited.index("rule 敬语 ")] + block.replace(amount, "fine 25元", 1)
    r = post(client, "/diff", {"month": MONTH, "mode": "text", "file": "policy/house-rules.rules", "text": edited},
             json=False)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "没有算出来" not in html, html[-2000:]
    assert "+    fine 25元" in html and "10元 → 25元" in html
    (root / "proposal").mkdir()
    (root / "proposal" / "house-rules.rules").write_text(edited, encoding="utf-8")
    r = post(client, "/diff", {"month": MONTH, "mode": "path", "path": "proposal/house-rules.rules"}, json=False)
    assert "10元 → 25元" in r.get_data(as_text=True)


# ------------------------------------------------------------------ starting

def test_serve_refuses_bad_options_before_listening(root, monkeypatch, capsys):
    monkeypatch.chdir(root)
    assert main(["serve", "--month", "2024-5"]) == 2
    assert main(["serve", "--policy", "nope"]) == 2
    assert main(["serve", "--roster", "nope.csv"]) == 2
    assert "roster" in capsys.readouterr().err


def test_binding_and_the_printed_url(root):
    assert server.warning("127.0.0.1") is None and server.warning("localhost") is None
    assert "警告" in server.warning("0.0.0.0") and "警告" in server.warning("192.168.1.5")
    config = Config(root.resolve(), (Path("policy"),), Path("events"), Path("reports"), Path("adjustments"), None)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        with pytest.raises(LedgerError) as refused:
            server.make_server(config, port=port, port_given=True)
        assert refused.value.exit_code == 2 and "--port" in str(refused.value)
        started = server.make_server(config, port=port, port_given=False, month=MONTH)
        try:
            assert started.port != port
            assert re.fullmatch(rf"http://127\.0\.0\.1:{started.port}/m/{MONTH}\?token=[\w-]{{40,}}", started.url)
        finally:
            started.server.close()
    finally:
        busy.close()


def test_a_broken_adjustments_file_is_said_and_not_written_to(pristine, tmp_path, monkeypatch):
    broken = copy_workspace(pristine, tmp_path / "ws")
    (broken / "adjustments").mkdir(exist_ok=True)
    (broken / "adjustments" / "by-hand.txt").write_text(f"month {MONTH}\nwaiv E000000000000 \"手误\"\n", encoding="utf-8")
    monkeypatch.chdir(broken)
    config = Config(broken.resolve(), (Path("policy"),), Path("events"), Path("reports"), Path("adjustments"), None)
    c = create_app(Workspace(config), TOKEN, host="127.0.0.1", port=PORT).test_client()
    get(c, f"/?token={TOKEN}")
    target = broken / "adjustments" / f"{MONTH}.txt"
    before = target.read_bytes() if target.exists() else None
    r = post(c, f"/m/{MONTH}/decide", {"kind": "waive", "entry": HOSTILE_RUDE, "reason": "x"})
    assert r.status_code == 500 and "by-hand.txt:2" in r.json["message"] and "waive" in r.json["message"]
    assert (target.read_bytes() if target.exists() else None) == before
    page = get(c, f"/m/{MONTH}")
    assert page.status_code == 500 and "by-hand.txt:2" in page.get_data(as_text=True)
