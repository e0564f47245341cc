"""The row-by-row Python reader: the reference reading of every kind of input.

`PythonReader.load_file(rel, path)` reads one input's records (records.py), checks and
normalises each row (contract.check_row), folds duplicate ids (the first row wins; a
later row with other content is rejected) and writes the good rows to a temporary CSV
that table.insert_written bulk-loads into `events`. It gives the file's `FileReport`
and collects its `Reject`s.
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
    temporary CSV for DuckDB to bulk-load.

    With `dedup=False` (the set-based reader, which folds duplicates in SQL over all
    files at the end) every good row is written, duplicates included.
    """

    def __init__(self, tz: zoneinfo.ZoneInfo, schema: Schema, out, *, columns: "Columns | None" = None,
                 dedup: bool = True, profiles: tuple = (), settings: ReaderSettings | None = None):
        self.tz = tz
        self.schema = schema
        self.settings = ReaderSettings() if settings is None else settings  # how files are read, limits
        self.columns = Columns(self.settings.max_columns, declared(schema)) if columns is None else columns
        self.rejects: list[Reject] = []
        self.seen = _FirstSeen()
        self.files: list[str] = []
        self.dedup = dedup
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
        self.files.append(rel)
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
        if outcome == "folded":
            counts["accepted"] += 1
            counts["duplicates"] += 1
        elif outcome:
            counts["rejected"] += 1
            self.rejects.append(Reject(rel, record.line, outcome, printable(record.raw)))
        else:
            counts["accepted"] += 1

    def _accept(self, rel: str, record: Record) -> str | None:
        """Check, normalise and store one row. Returns a reject reason, "folded" or None."""
        values = record.values
        problem, checked = check_row(values, self.tz, self.schema)
        if problem:
            return problem
        digest, utc, local = checked
        event_id = values.get("id") or "h" + digest[:8].hex()
        if not self.dedup:
            self._write(event_id, utc, local, rel, record.line, values)
            return None
        mark = int.from_bytes(digest[8:16], "big")
        first = self.seen.get(event_id)
        if first is not None:
            first_mark, file_no, line = first
            if first_mark == mark:
                return "folded"
            return (f"重复 id 但内容不同 (duplicate id with different content), "
                    f"first seen at {self.files[file_no]}:{line}")
        self.seen.add(event_id, mark, len(self.files) - 1, record.line)
        self._write(event_id, utc, local, rel, record.line, values)
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


class _FirstSeen:
    """Event id -> (content mark, file number, line) of its first row.

    Packed into one int per id: a million ids stay around 150 MB instead of 250.
    """

    def __init__(self):
        self._packed: dict[str, int] = {}

    def get(self, event_id: str) -> tuple[int, int, int] | None:
        packed = self._packed.get(event_id)
        if packed is None:
            return None
        return packed >> 64, (packed >> 32) & 0xFFFFFFFF, packed & 0xFFFFFFFF

    def add(self, event_id: str, mark: int, file_no: int, line: int) -> None:
        self._packed[event_id] = mark << 64 | file_no << 32 | line
