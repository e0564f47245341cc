"""The row-by-row Python reader: the reference reading of every kind of input.

`PythonReader.load_file(rel, source)` reads one input's records (records.py), checks and
normalises each row (contract.check_row) and writes every good row, duplicates included,
to a temporary CSV that table.insert_written bulk-loads into `events` (duplicate ids are
folded over all files in SQL at the end: dedup.py). It gives the file's `FileReport` and
collects its `Reject`s.
"""

from __future__ import annotations

import csv
import zoneinfo
from datetime import datetime

from ledger.inputs.containers import READ_ERRORS, describe_error
from ledger.inputs.contract import MORE_COLUMNS, FileReport, Reject, Schema, check_row
from ledger.inputs.encodings import printable
from ledger.inputs.records import file_records
from ledger.inputs.rows import Columns, Record
from ledger.inputs.settings import ReaderSettings


class PythonReader:
    """Rows of files, one at a time in Python: checked, normalised and written to a
    temporary CSV for DuckDB to bulk-load."""

    def __init__(self, tz: zoneinfo.ZoneInfo, schema: Schema, out, *, columns: "Columns | None" = None,
                 profiles: tuple = (), settings: ReaderSettings | None = None):
        self.tz = tz
        self.schema = schema
        self.settings = ReaderSettings() if settings is None else settings  # how files are read, limits
        self.columns = Columns(self.settings.max_columns, declared(schema)) if columns is None else columns
        self.rejects: list[Reject] = []
        self.profiles = profiles  # export profiles (profiles.py)
        self.set_output(out)

    def set_output(self, out) -> None:
        """Write the rows that follow to `out`, numbered from 0."""
        self.writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n") if out else None
        self.n_events = 0

    def load_file(self, rel: str, source) -> FileReport:
        """Read one input (a path, a zip member, a sheet: containers.py), streamed. An input
        that cannot be read, or fails while being read, is one reject naming it."""
        counts = {"read": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
        encoding = digest = ""
        try:
            encoding, digest, records = file_records(rel, source, self.columns, self.profiles, self.settings)
            for record in records:
                self._take(rel, record, counts)
        except READ_ERRORS as e:
            self.rejects.append(Reject(rel, 0, describe_error(e), ""))
        return FileReport(rel, encoding, digest, **counts)

    def _take(self, rel: str, record: Record, counts: dict[str, int]) -> None:
        if not record.is_row:
            self.rejects.append(Reject(rel, record.line, record.error, printable(record.raw)))
            return
        counts["read"] += 1
        outcome = record.error or self._accept(rel, record)
        if outcome:
            counts["rejected"] += 1
            self.rejects.append(Reject(rel, record.line, outcome, printable(record.raw)))
        else:
            counts["accepted"] += 1

    def _accept(self, rel: str, record: Record) -> str | None:
        """Check, normalise and store one row. Returns a reject reason or None."""
        values = record.values
        problem, checked = check_row(values, self.tz, self.schema)
        if problem:
            return problem
        digest, utc, local = checked
        self._write(values.get("id") or "h" + digest[:8].hex(), utc, local, rel, record.line, values)
        return None

    def _write(self, event_id: str, utc: datetime, local: datetime, rel: str, line: int, values: dict) -> None:
        cells = [self.n_events, event_id, utc.isoformat(" "), local.isoformat(" "), rel, line]
        cells += map(values.get, self.columns.order)  # "" and None are both read back as NULL
        if self.columns.overflow:
            cells[self.columns.index[MORE_COLUMNS]] = self.columns.more(values)
        self.writer.writerow(cells)
        self.n_events += 1


def declared(schema: Schema) -> set[str]:
    """Every field name the policy declares for some event type."""
    return {name for fields in schema.values() for name in fields}
