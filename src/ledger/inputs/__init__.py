"""The inputs wing: a month's files, read into DuckDB and checked, with every unreadable
row accounted for.

In:
- the events folder: every `*.csv`, `*.jsonl`, `*.xlsx` (one input per sheet) and `*.zip`
  (one per member) under it, hidden files excepted (docs/events.md; contract.py), streamed
  within the limits of settings.py (containers.py: archives, members, what is not read);
- export profiles (`*.profile` in the events folder and in ./profiles, and the shipped
  ones: profiles.py), which map platform exports' columns to events (exports.py);
- the roster file, roster.csv (roster.py).

Out:
- `events.load_events(root, con, tz=, schema=)` fills the DuckDB table `events` (one row
  per accepted event: seq, id, ts, ts_local, the core columns, src_file, src_line, one
  text column per other field) and returns a `LoadResult`: a report per file, the ignored
  files and the rejects (file, line, reason, raw text), which outputs/rejects.py writes
  as CSV. How it reads is set by `settings.ReaderSettings` (LEDGER_EVENTS_READER,
  LEDGER_XLSX_READER); both readers give the same results.
- `roster.read(path)` gives the `Roster` with its own rejects.

May import: only ledger.core (and this wing's own modules). Inside, bottom up: contract,
encodings, settings; rows; workbooks; containers; profiles, exports; transcripts; records;
table, python_reader; sheet_csv; sql_plan, sql_reader; events; roster.
"""
