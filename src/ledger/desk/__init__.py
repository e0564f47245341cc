"""desk: the review desk (复核台) — the month in a browser, for the supervisor who reads the
conversations behind the fines, confirms or waives the judgement calls, answers disputes,
watches the trends and weighs a policy edit's money before it lands.

`ledger serve` starts it (`server.make_server` → a waitress server around the Flask app of
`app.create_app`). The text files stay the source of truth: every decision is appended to
`adjustments/<month>.txt` as the line a person would type (`actions`), then the month is
recomputed and its statement rewritten through `period.lifecycle`, exactly as `ledger run`
does. Nothing here computes money or explanations of its own: pages show what
`period.lifecycle`, `review.explain`, `review.queue` and `review.diff` return.

* `workspace`: the folders served (policy, events, reports, adjustments, roster), the
  month's prepared period cached by the files' fingerprint, paths kept inside the workspace.
* `actions`: a decision → one adjustments line (locked, checked against what is already
  decided, 409 when it is), then the month recomputed and written.
* `views`: records and pages' data (highlighted text, money columns), no Flask.
* `trends`: the months found in `reports/` read back from their statements; `charts`: the
  geometry of the SVG charts (the templates draw them).
* `security`: the access token (URL once, then a cookie), allowed hosts, same-origin
  checks on every state-changing request, response headers.
* `app` / `routes`: the Flask app and its pages; `templates/` (Jinja2, autoescaped) and
  `static/` (CSS, one small script) ship in the package, nothing is loaded from the internet.
* `server`: binding (127.0.0.1 unless told otherwise), the printed URL.

Imports: desk may import core, lang, inputs, evaluate, outputs, period and review (the wings
below it); only the CLI imports desk.
"""
