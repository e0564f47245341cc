"""The Flask app of the desk: templates and static files from the package, the security
checks of `security`, the pages of `routes`, errors as Chinese pages.

`create_app(workspace, token, host=, port=)` returns a WSGI app; `server` runs it under
waitress, the tests drive it with Flask's test client. Templates are Jinja2 with
autoescaping on for every file (`.html` and `.svg` alike), so no text from events, names or
files becomes markup.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from ledger import __version__
from ledger.core.errors import LedgerError
from ledger.desk import routes, security, views
from ledger.desk.workspace import Workspace

HERE = Path(__file__).parent


def create_app(workspace: Workspace, token: str, *, host: str = "127.0.0.1", port: int = 0) -> Flask:
    app = Flask("ledger.desk", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"),
                static_url_path="/static")
    app.config.update(DESK=workspace, MAX_CONTENT_LENGTH=2 * 1024 * 1024, SEND_FILE_MAX_AGE_DEFAULT=300,
                      TEMPLATES_AUTO_RELOAD=False)
    app.jinja_env.autoescape = True  # every template, whatever its name
    app.jinja_env.filters["yuan"] = views.yuan
    app.jinja_env.globals.update(version=__version__)
    security.install(app, token, host=host, port=port)
    app.register_blueprint(routes.bp)

    @app.errorhandler(LedgerError)
    def ledger_error(exc: LedgerError):
        return render_template("error.html", title="无法完成 (cannot complete)", message=str(exc)), 500

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        titles = {404: "找不到这个页面 (not found)", 405: "不支持这种请求 (method not allowed)",
                  413: "提交的内容太大 (request too large)"}
        return (render_template("error.html", title=titles.get(exc.code, exc.name), message=exc.description or ""),
                exc.code)

    return app
