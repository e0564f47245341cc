"""Who may use the desk, and what a page may load.

* **The access token.** `ledger serve` makes a random token and prints it once, in the URL
  (`/?token=…`). A request carrying the right token gets it as a cookie (HttpOnly,
  SameSite=Strict, named after the port so two desks do not overwrite each other) and is
  redirected to the same address without it; every later request needs the cookie. Without
  it: 403 and a Chinese page saying how to open the desk. Static assets (the package's own
  CSS and script) are served without the token.
* **Hosts.** The Host header must name the address the desk listens on (127.0.0.1,
  localhost, [::1] or the --host given, with the port), so a page of another site that
  resolves its own name to 127.0.0.1 (DNS rebinding) is refused. Listening on every address
  (0.0.0.0) accepts any host; the token still applies.
* **Same origin.** Every state-changing request (anything but GET/HEAD/OPTIONS) must carry
  an Origin header equal to the desk's own origin — or, without Origin, a Referer under it —
  and the token: a form on another site posting here is refused (403).
* **Headers.** A Content-Security-Policy allowing only the desk's own scripts, styles and
  images (no inline script, no framing), nosniff, no referrer outside the desk, no caching
  of pages.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote, urlencode, urlsplit

from flask import Flask, Response, redirect, request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
WILDCARD = ("0.0.0.0", "::", "")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
FORBIDDEN = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>复核台：拒绝访问</title>
<h1>复核台：拒绝访问 (forbidden)</h1>
<p>{message}</p>
<p>请使用 <code>ledger serve</code> 启动时打印的完整链接（带 <code>?token=</code> 的那个）打开复核台，
在复核台自己的页面上操作。</p>
</html>"""


def new_token() -> str:
    return secrets.token_urlsafe(32)


def cookie_name(port: int) -> str:
    return f"ledger_desk_{port}"


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """Host headers the desk answers; None when it listens on every address."""
    if host in WILDCARD:
        return None
    names = set(LOOPBACK) | {f"[{host}]" if ":" in host and not host.startswith("[") else host}
    return frozenset(f"{n}:{port}" for n in names) | (frozenset(names) if port == 80 else frozenset())


def install(app: Flask, token: str, *, host: str, port: int) -> None:
    """Check every request and set the response headers."""
    cookie = cookie_name(port)
    hosts = allowed_hosts(host, port)

    def refuse(message: str) -> Response:
        body = FORBIDDEN.format(message=message)
        return Response(body, status=403, content_type="text/html; charset=utf-8")

    @app.before_request
    def guard():
        if hosts is not None and request.host.lower() not in hosts:
            return refuse("这个地址不是复核台监听的地址 (unexpected Host header)。")
        if request.path.startswith("/static/") and request.method in SAFE_METHODS:
            return None
        given = request.args.get("token")
        if given is not None and request.method in SAFE_METHODS:
            if not hmac.compare_digest(given.encode(), token.encode()):
                return refuse("访问令牌不对 (wrong token)。")
            args = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
            query = urlencode(args)
            response = redirect(quote(request.path) + (f"?{query}" if query else ""), code=303)
            response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
            return response
        held = request.cookies.get(cookie, "")
        if not hmac.compare_digest(held.encode(), token.encode()):
            return refuse("没有访问令牌，或令牌已经失效（复核台重新启动后令牌会变）(no valid token)。")
        if request.method not in SAFE_METHODS and not same_origin():
            return refuse("拒绝跨站请求：只接受复核台自己页面发出的操作 (cross-origin request refused)。")
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def same_origin() -> bool:
    """Origin (or, without it, Referer) names this desk: scheme, host and port."""
    own = f"{request.scheme}://{request.host}".lower()
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin.lower() == own
    referer = request.headers.get("Referer")
    if not referer:
        return False
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}".lower() == own
