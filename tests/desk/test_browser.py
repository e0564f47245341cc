"""The desk in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright,
against `ledger serve` started as a user starts it (its printed URL, its token).

Flows: open the month, open a line, confirm one line and waive one with a reason from the
queue with the keyboard, see the adjustments file change and the totals move by the right
amount; hostile text stays text (no script of the data ever runs); a browser without the
token and a form posted from another origin are refused.

Skipped, with the reason said, where no Chromium or no Playwright is installed (.ci/run
installs both). `LEDGER_SCREENSHOTS=1` also writes the README's screenshots
(docs/screenshots/*.png) from the bundled month.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import REPO
from deskws import EVIL_AGENT, HOSTILE_RUDE, MONTH, copy_workspace, pristine  # noqa: F401 (a fixture)

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = REPO / "docs" / "screenshots"


def chromium() -> str | None:
    for candidate in (os.environ.get("LEDGER_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def start(root: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`ledger serve` in `root`; (the process, the URL it printed)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1")
    errors = root.parent / "serve.err"  # a file, not a pipe nobody reads (the server's log could fill it)
    with errors.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ledger", "serve", "--port", "0", *extra], cwd=root, env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    line = proc.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+/\S*\?token=\S+", line)
    if not found:
        proc.kill()
        raise AssertionError(f"ledger serve printed no URL: {line!r} {errors.read_text()!r}")
    return proc, found.group(0)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if sync_playwright is None:
        pytest.skip("浏览器测试跳过 (browser tests skipped): Playwright for Python is not installed "
                    "(pip install '.[test]')")
    if exe is None:
        pytest.skip("浏览器测试跳过 (browser tests skipped): no Chromium found at /usr/bin/chromium or on PATH "
                    "(apt-get install chromium; or set LEDGER_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(browser, pristine, tmp_path_factory):
    root = copy_workspace(pristine, tmp_path_factory.mktemp("browser") / "ws")
    proc, url = start(root)
    yield root, url
    stop(proc)


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", "").strip())


def test_confirm_and_waive_from_the_queue_change_the_file_and_the_totals(browser, served):
    root, url = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    assert page.url.endswith("/") and "token" not in page.url  # the token left the address bar
    page.click(f"a[href='/m/{MONTH}']")
    fines = money(page.text_content("#total-fines"))
    assert page.text_content("#to-confirm").strip() == "3"

    page.click("header nav >> text=待复核")
    items = page.locator("section.item")
    assert items.count() == 3
    first, second = items.nth(0).get_attribute("data-entry"), items.nth(1).get_attribute("data-entry")
    page.keyboard.press("c")  # the first item is selected on arrival
    page.wait_for_selector(f"#item-{first} .result.ok")
    text = (root / "adjustments" / f"{MONTH}.txt").read_text(encoding="utf-8")
    assert text.splitlines()[-1] == f"confirm {first}"
    assert money(page.text_content("#total-fines")) == fines + Decimal("100.00")

    page.keyboard.press("w")  # the selection moved on to the next line; w asks for a reason
    page.keyboard.type("买家先出言不逊，主管同意免除")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#item-{second} .result.ok")
    text = (root / "adjustments" / f"{MONTH}.txt").read_text(encoding="utf-8")
    assert text.splitlines()[-1] == f'waive {second} "买家先出言不逊，主管同意免除"'
    assert money(page.text_content("#total-fines")) == fines + Decimal("100.00")  # a 待复核 line waived: no money

    page.click("header nav >> text=总览")
    assert money(page.text_content("#total-fines")) == fines + Decimal("100.00")
    assert page.text_content("#to-confirm").strip() == "1"
    assert not errors, errors


def test_a_line_shows_its_conversation_and_matched_words(browser, served):
    root, url = served
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(url)
    page.click(f"a[href='/m/{MONTH}']")
    page.click(f"#agents a >> text={EVIL_AGENT}")  # the month page → the agent page → the line
    page.click(f"#lines a >> text={HOSTILE_RUDE}")
    page.wait_for_selector("h1 >> text=明细")
    trigger = page.locator(".chat .msg.trigger")
    assert trigger.count() == 1
    assert page.locator(".chat .msg.trigger mark").all_text_contents()[:1] == ["你有病"]
    assert "policy/house-rules.rules:" in page.text_content("main")
    assert "没有 unless 时间窗口" in page.text_content("main")


def test_hostile_text_stays_text(browser, served):
    root, url = served
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    base = url.split("/?")[0]
    for path in (f"/m/{MONTH}/line/{HOSTILE_RUDE}", f"/m/{MONTH}", f"/m/{MONTH}/queue", f"/m/{MONTH}/disputes"):
        page.goto(base + path)
        assert page.evaluate("typeof window.__pwned") == "undefined", path
        assert page.locator("main img").count() == 0, path  # the <img onerror> is text, not an image
        assert page.locator("main script").count() == 0, path
    page.goto(base + f"/m/{MONTH}/line/{HOSTILE_RUDE}")
    chat = page.text_content(".chat")
    assert '<script>window.__pwned = "script"</script>' in chat
    assert "<img src=x onerror=\"window.__pwned = 'img'\">" in chat
    assert EVIL_AGENT in page.text_content("h1")
    assert not dialogs


def test_a_browser_without_the_token_is_refused(browser, served):
    root, url = served
    context = browser.new_context()  # no cookie
    page = context.new_page()
    response = page.goto(url.split("/?")[0] + f"/m/{MONTH}")
    assert response.status == 403 and "访问令牌" in page.text_content("body")
    context.close()


def test_a_form_from_another_origin_is_refused(browser, served):
    root, url = served
    base = url.split("/?")[0]
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)  # this browser holds the desk's cookie
    before = (root / "adjustments" / f"{MONTH}.txt").read_bytes()
    evil = (f'<form id="f" method="post" action="{base}/m/{MONTH}/decide">'
            f'<input name="kind" value="waive"><input name="entry" value="{HOSTILE_RUDE}">'
            f'<input name="reason" value="cross-site"></form>')
    context.route("http://evil.test/**", lambda route: route.fulfill(status=200, content_type="text/html", body=evil))
    page.goto("http://evil.test/")
    with page.expect_navigation() as nav:
        page.evaluate("document.getElementById('f').submit()")
    assert nav.value.status == 403
    assert (root / "adjustments" / f"{MONTH}.txt").read_bytes() == before
    context.close()


# ------------------------------------------------------------------ screenshots for the README

def screenshot_workspace(root: Path) -> Path:
    """The bundled month as shipped, plus two earlier sample months, all billed into reports/."""
    root.mkdir(parents=True)
    for name in ("policy", "events"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("quality"))
    shutil.copy(REPO / "roster.csv", root / "roster.csv")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    for month, seed in (("2024-03", 20240301), ("2024-04", 20240401)):
        subprocess.run([sys.executable, "-m", "ledger", "sample", "--out", f"events/{month}", "--month", month,
                        "--seed", str(seed), "--bad-rows", "0"], cwd=root, env=env, check=True, capture_output=True)
    for month in ("2024-03", "2024-04", "2024-05"):
        subprocess.run([sys.executable, "-m", "ledger", "run", "--month", month], cwd=root, env=env, check=True,
                       capture_output=True)
    return root


@pytest.mark.skipif(os.environ.get("LEDGER_SCREENSHOTS") != "1",
                    reason="README screenshots are made only with LEDGER_SCREENSHOTS=1")
def test_screenshots_for_the_readme(browser, tmp_path):
    root = screenshot_workspace(tmp_path / "shop")
    proc, url = start(root)
    try:
        base = url.split("/?")[0]
        page = browser.new_page(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
        page.goto(url)
        SHOTS.mkdir(parents=True, exist_ok=True)

        def shot(name: str, path: str, full: bool = False) -> None:
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)

        shot("month", f"/m/{MONTH}")
        shot("queue", f"/m/{MONTH}/queue")
        first = page.locator("section.item").first.get_attribute("data-entry")
        shot("line", f"/m/{MONTH}/line/{first}")
        agent = page.locator("h1 .sub a").first.text_content()
        shot("agent", f"/m/{MONTH}/agent?a={agent}")
        shot("trends", "/trends", full=True)
        page.goto(base + "/diff")
        text = page.input_value("textarea")
        page.check("input[value=text]")
        page.fill("textarea", text.replace("fine 10元", "fine 15元", 1))
        page.click("button.primary")
        page.wait_for_selector("#diff-rules")
        page.locator("h2 >> nth=0").scroll_into_view_if_needed()
        page.evaluate("document.querySelector('h2').scrollIntoView()")
        page.screenshot(path=str(SHOTS / "diff.png"))
        assert all((SHOTS / f"{n}.png").stat().st_size > 10_000
                   for n in ("month", "queue", "line", "agent", "trends", "diff"))
    finally:
        stop(proc)
