"""Starting the desk: bind, make the token, say where it is.

`make_server(config, host=, port=, port_given=)` binds a waitress server (pure Python, a
fixed pool of threads, no C extension; the desk's work is DuckDB runs in those threads)
around `app.create_app` and returns it with the URL to print. 127.0.0.1 unless told
otherwise; `warning(host)` is the line to print when it is not a loopback address. When the
default port is taken and no --port was given, the next free one of a few is used; a taken
--port is an error (exit code 2). `--port 0` asks the system for any free port.
"""

from __future__ import annotations

import errno
import ipaddress

import attrs
from waitress import create_server

from ledger.core.errors import LedgerError
from ledger.desk import security
from ledger.desk.app import create_app
from ledger.desk.workspace import Config, Workspace

DEFAULT_PORT = 8765
TRIES = 20  # ports tried after the default one when it is taken
THREADS = 4


@attrs.frozen
class Started:
    server: object  # waitress server: .run() serves until .close()
    url: str  # with the token: printed once
    host: str
    port: int
    token: str


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warning(host: str) -> str | None:
    if is_loopback(host):
        return None
    return (f"警告 (warning)：复核台监听 {host}，不只是本机：同一网络里的其他电脑也能连上它。"
            f"只有拿到带令牌链接的人能打开；连接没有加密 (HTTP)，请只在可信的网络里这样做。")


def make_server(config: Config, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                port_given: bool = True, month: str | None = None) -> Started:
    token = security.new_token()
    ports = [port] if port_given or port == 0 else [port + i for i in range(TRIES + 1)]
    last: OSError | None = None
    for candidate in ports:
        holder: dict = {}  # the app needs the real port (cookie name, allowed hosts): made after binding

        def wsgi(environ, start_response, holder=holder):
            return holder["app"](environ, start_response)

        try:
            server = create_server(wsgi, host=host, port=candidate, threads=THREADS, ident="ledger-desk",
                                   clear_untrusted_proxy_headers=True)
        except OSError as exc:
            last = exc
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                break
            continue
        actual = server.effective_port
        holder["app"] = create_app(Workspace(config), token, host=host, port=actual)
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
        path = f"/m/{month}" if month else "/"
        return Started(server, f"http://{shown}:{actual}{path}?token={token}", host, actual, token)
    raise LedgerError(f"无法监听 {host}:{port}（{last.strerror if last else '未知原因'}）；请用 --port 换一个端口 "
                      f"(cannot listen)", exit_code=2)
