"""The Python side of the set-based reader (sql_reader.py): the UDF that reads the lines its
SQL leaves to Python, exactly as the Python reader reads them.

`LineRows(plan, tz, schema, spans)` is called by DuckDB with (line number, raw line) for
each line the SQL does not take itself, and gives the row's values or None (a blank or
rejected line, kept in `rejects`, or a continuation line of a multi-line record).
`quote_state` tells whether a line leaves a quoted field open (a multi-line record);
`OpenQuote` and `NewKeys` stop the INSERT when the file must be read another way.
"""

from __future__ import annotations

import csv
import zoneinfo

from ledger.inputs.contract import Reject, Schema, check_row
from ledger.inputs.encodings import printable
from ledger.inputs.records import jsonl_row
from ledger.inputs.rows import Columns, Record, csv_row, is_blank
from ledger.inputs.sql_plan import CsvPlan


class OpenQuote(Exception):
    """A line ends inside a quoted field: the INSERT is abandoned (see `_multi_line_records`)."""


class NewKeys(Exception):
    """A JSON line has a key the file's plan does not: the load starts again (see `SqlReader.run`)."""

    def __init__(self, rel: str):
        super().__init__(rel)
        self.rel = rel


class LineRows:
    """The UDF for rows the SQL leaves to Python: one physical line of a planned file,
    read exactly as the Python reader reads it. Returns [id, UTC, local, value per named
    column] for a good row; None for a blank or rejected row (kept in `rejects`) and for
    the later lines of a multi-line record (counted in `skipped`, as blank lines are)."""

    def __init__(self, plan: CsvPlan, tz: zoneinfo.ZoneInfo, schema: Schema, spans: dict | None = None):
        self.rel = plan.rel
        self.delimiter = plan.delimiter
        self.names = plan.names
        self.named = [n for n in plan.names if n]
        self.unnamed = [i for i, n in enumerate(plan.names) if not n]
        self.tz = tz
        self.schema = schema
        self.spans = spans or {}  # first line of a multi-line record -> (n_lines, raw, fields, problem)
        self.members = {first + k for first, (n, *_) in self.spans.items() for k in range(1, n)}
        self.rejects: list[Reject] = []
        self.not_rows: list[int] = []  # list.append is atomic: DuckDB may call from two threads
        self.opened = False
        self.jsonl = plan.jsonl
        self.sheet = plan.encoding == "xlsx"  # the raw text of a sheet's row has no trailing empty cells
        self.new_keys = False
        self.scratch = Columns()  # a JSON line's new keys are registered here, never in the reader's
        self.scratch.register(self.named, plan.rel)

    @property
    def skipped(self) -> int:
        return len(self.not_rows)

    def __call__(self, line: int, text: str | None) -> list[str | None] | None:
        if line in self.members:
            self.not_rows.append(line)
            return None
        if self.jsonl:
            return self._json_line(line, text)
        span = self.spans.get(line)
        if span is not None:
            n_lines, raw, fields, problem = span
        else:
            n_lines, raw = 1, text or ""
            if is_blank(raw, self.delimiter):
                self.not_rows.append(line)
                return None
            problem = None
            try:
                fields = next(csv.reader((raw + "\n",), delimiter=self.delimiter, strict=True))
            except csv.Error as e:
                if quote_state(raw, self.delimiter, False) == "open":  # also past the field size limit
                    self.opened = True
                    raise OpenQuote(line) from None
                fields, problem = [], f"CSV 格式错误 (malformed CSV): {e}"
            if "\x00" in raw:
                problem = "含有 NUL 字符 (NUL character)"
        record = (Record(line, raw, error=problem) if problem
                  else csv_row(self.names, self.unnamed, fields, line, n_lines, raw))
        if record.error:
            return self._reject(line, record.error, raw)
        return self._checked(line, record.values, raw)

    def _checked(self, line: int, values: dict, raw: str) -> list[str | None] | None:
        problem, checked = check_row(values, self.tz, self.schema)
        if problem:
            return self._reject(line, problem, raw)
        digest, utc, local = checked
        event_id = values.get("id") or "h" + digest[:8].hex()
        return [event_id, utc.isoformat(" "), local.isoformat(" ")] + [values.get(n) or None for n in self.named]

    def _json_line(self, line: int, text: str | None) -> list[str | None] | None:
        if text is None or not text.strip():
            self.not_rows.append(line)
            return None
        record = jsonl_row(text.rstrip("\r\n"), line, self.scratch, self.rel)
        if record.error:
            return self._reject(line, record.error, record.raw)
        if not record.values.keys() <= set(self.named):
            self.new_keys = True
            raise NewKeys(self.rel)
        return self._checked(line, record.values, record.raw)

    def _reject(self, line: int, reason: str, raw: str) -> None:
        if self.sheet:
            raw = raw.rstrip(self.delimiter)
        self.rejects.append(Reject(self.rel, line, reason, printable(raw)))
        return None


def quote_state(text: str, delimiter: str, inside: bool) -> str:
    """'open' if the csv module, starting this line inside a quoted field (or not), ends
    it still inside one; else 'closed' (the record ends on this line, well-formed or not)."""
    feed = ('"\n', text + "\n") if inside else (text + "\n",)
    try:
        next(csv.reader(feed, delimiter=delimiter, strict=True))
    except csv.Error as e:
        if "field larger than field limit" in str(e):  # as rows.physical_records: by the quotes' parity
            return "open" if (text.count('"') + inside) % 2 else "closed"
        return "open" if str(e) == "unexpected end of data" else "closed"
    return "closed"
