"""review: looking at a policy and its results before anyone is paid — why a line exists, what
an edit would change, whether the policy's own examples hold.

Each command is split into computing (data records, no text) and rendering (text, no
computing), so tests and other front ends can use the records directly.

* `explain`: `explain_entry(entry_id, month=, policy_paths=, events_root=, roster=,
  adjustments_root=, out_dir=)` -> `EntryExplanation` (the line as the statement has it,
  found through `period.lifecycle.prepare_policy`, with its 应扣 / 减免 / 实扣), `explain_event(event_id, …)` -> `EventExplanation` (records in
  `explain_records`); `explain_render.render_entry` / `render_event` -> the text of
  `ledger explain`. An unknown id raises `LedgerError` (exit code 2). `explain_entry(…,
  period=)` reuses a month already prepared; `matched_in_text(policy, rule_location, text)`
  -> the rule's words found in a trigger's text (what a reader highlights).
* `queue`: `waiting(…)` / `waiting_in(period, events_root)` -> the 待复核 lines with the
  conversation around each trigger and its matched words; `render` -> `ledger review`.
* `diff`: `diff_month(month, policy_paths=, events_root=, base="HEAD", roster=,
  adjustments_root=, out_dir=)` -> `PolicyDiff`, `diff_months([...], …)` -> `MonthsDiff`
  (the rule text diff and the statement's money per employee, account, rule version and
  entry, base against working policy, both through `period.lifecycle.prepare_policy`;
  `base` is a policy file or folder, or a git revision); `diff_render.render_text` /
  `render_markdown` / `render_json` -> a terminal report / a review comment / CI data.
  `diff_proposal(months, current=, proposed=, …)` compares policies held in memory
  (`PolicyFile`s; `policy_files_of(paths)` reads them) — the review desk's proposal form.
  Reads the base through `git` when it is a revision.
* `examples`: `run_examples(policy, sources)` -> `[ExampleResult]` for the policy's
  `example` blocks, `uncovered_versions(policy)` -> `[Uncovered]` (rule versions and monthly
  rules no example covers; `uncovered_rules` their ids), `render_results(results, uncovered)`
  -> text, `results_json` -> the JSON of `--format json`, `exit_code(results)`;
  `test_command(paths, strict=, format=)` -> (text, exit code) is `ledger test`.

All of them only read (the policy files, the events, git) and return data or text; the
only files they write are temporary (the engine's database, an example's events).
Printing and exiting are the CLI's.

Imports: review may import core, lang, inputs, evaluate, outputs and period (the wings
below it); only desk and the CLI import review.
"""
