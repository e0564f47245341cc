"""How `load_events` reads: which reader, the sizes the set-based reader goes by, and the
limits that keep hostile input bounded.

`ReaderSettings()` holds the defaults of a run. A caller that passes no settings to
`load_events` (the CLI, the engine) gets `ReaderSettings.from_env()`: the defaults, with
these environment settings:
- LEDGER_EVENTS_READER: `python` reads every file with the row-by-row Python reader,
  `fast` reads every UTF-8 CSV file set-based whatever its size; unset or anything else
  is `auto` (set-based from `sql_min_bytes` on).
- LEDGER_XLSX_READER: `openpyxl` reads workbooks with openpyxl (read-only); unset or
  anything else is `calamine` (python-calamine, openpyxl when it is not installed).
- LEDGER_ZIP_MAX_BYTES, LEDGER_ZIP_MAX_RATIO, LEDGER_MAX_COLUMNS, LEDGER_MAX_LINE_CHARS,
  LEDGER_XLSX_MAX_BYTES: the limits below (whole numbers; anything else keeps the default).
Tests and benchmarks pass settings instead, e.g. a small `part_min_bytes` to have small
files cut into parts read concurrently.

The limits (docs/events.md, "Limits"): a zip member that expands past `max_member_bytes`,
or past `max_ratio` times its compressed size once over `ratio_floor` bytes (a zip bomb),
is not read; a workbook (a file or a member) is held in memory to be read, so one over
`max_workbook_bytes` is not read; a physical line over `max_line_chars` characters rejects
its record without being held whole; at most `max_columns` distinct column names besides
the core ones and the fields the policy declares make columns of the events table (a
header or row bringing more is rejected).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs

READER_ENV = "LEDGER_EVENTS_READER"
READERS = ("auto", "python", "fast")
XLSX_READER_ENV = "LEDGER_XLSX_READER"
XLSX_READERS = ("calamine", "openpyxl")
# environment name -> ReaderSettings field, for the limits
LIMIT_ENV = {"LEDGER_ZIP_MAX_BYTES": "max_member_bytes", "LEDGER_ZIP_MAX_RATIO": "max_ratio",
             "LEDGER_MAX_COLUMNS": "max_columns", "LEDGER_MAX_LINE_CHARS": "max_line_chars",
             "LEDGER_XLSX_MAX_BYTES": "max_workbook_bytes"}


@attrs.frozen
class ReaderSettings:
    reader: str = attrs.field(default="auto", validator=attrs.validators.in_(READERS))
    # auto: smaller UTF-8 CSV files are read faster in Python than the SQL is set up
    sql_min_bytes: int = 1 << 18
    # files this big are read by one INSERT per core (at most max_parts); smaller ones by one.
    # One INSERT already runs on every core: only tests cut files (the UDF called concurrently)
    part_min_bytes: int = 32 << 20
    max_parts: int = 1
    cores: int = attrs.field(factory=lambda: os.cpu_count() or 1)
    xlsx_reader: str = attrs.field(default="calamine", validator=attrs.validators.in_(XLSX_READERS))
    # limits (see the module docstring)
    max_member_bytes: int = 4 << 30
    max_ratio: int = 100
    ratio_floor: int = 16 << 20
    max_workbook_bytes: int = 256 << 20
    max_line_chars: int = 1 << 22
    max_columns: int = 256

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReaderSettings:
        """The defaults, with the readers LEDGER_EVENTS_READER and LEDGER_XLSX_READER name
        and the limits of LIMIT_ENV (in `environ`, else in the process's environment)."""
        environ = os.environ if environ is None else environ
        mode = environ.get(READER_ENV, "").strip().lower()
        xlsx = environ.get(XLSX_READER_ENV, "").strip().lower()
        limits = {}
        for name, field in LIMIT_ENV.items():
            text = environ.get(name, "").strip()
            if text.isascii() and text.isdigit() and int(text) > 0:
                limits[field] = int(text)
        return cls(reader=mode if mode in ("python", "fast") else "auto",
                   xlsx_reader="openpyxl" if xlsx == "openpyxl" else "calamine", **limits)

    def member_limit(self, compressed: int) -> int:
        """The most bytes a zip member of `compressed` bytes may expand to."""
        return min(self.max_member_bytes, max(self.ratio_floor, self.max_ratio * max(compressed, 1)))
