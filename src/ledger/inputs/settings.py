"""How `load_events` reads: which reader, and the sizes the set-based reader goes by.

`ReaderSettings()` holds the defaults of a run. A caller that passes no settings to
`load_events` (the CLI, the engine) gets `ReaderSettings.from_env()`: the defaults, with
two environment settings:
- LEDGER_EVENTS_READER: `python` reads every file with the row-by-row Python reader,
  `fast` reads every UTF-8 CSV file set-based whatever its size; unset or anything else
  is `auto` (set-based from `sql_min_bytes` on).
- LEDGER_XLSX_READER: `openpyxl` reads workbooks with openpyxl (read-only); unset or
  anything else is `calamine` (python-calamine, openpyxl when it is not installed).
Tests and benchmarks pass settings instead, e.g. a small `part_min_bytes` to have small
files cut into parts read concurrently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs

READER_ENV = "LEDGER_EVENTS_READER"
READERS = ("auto", "python", "fast")
XLSX_READER_ENV = "LEDGER_XLSX_READER"
XLSX_READERS = ("calamine", "openpyxl")


@attrs.frozen
class ReaderSettings:
    reader: str = attrs.field(default="auto", validator=attrs.validators.in_(READERS))
    # auto: smaller UTF-8 CSV files are read faster in Python than the SQL is set up
    sql_min_bytes: int = 1 << 18
    # files this big are read by one INSERT per core (at most max_parts); smaller ones by one
    part_min_bytes: int = 32 << 20
    max_parts: int = 4
    cores: int = attrs.field(factory=lambda: os.cpu_count() or 1)
    xlsx_reader: str = attrs.field(default="calamine", validator=attrs.validators.in_(XLSX_READERS))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReaderSettings:
        """The defaults, with the readers LEDGER_EVENTS_READER and LEDGER_XLSX_READER name
        (in `environ`, else in the process's environment)."""
        environ = os.environ if environ is None else environ
        mode = environ.get(READER_ENV, "").strip().lower()
        xlsx = environ.get(XLSX_READER_ENV, "").strip().lower()
        return cls(reader=mode if mode in ("python", "fast") else "auto",
                   xlsx_reader="openpyxl" if xlsx == "openpyxl" else "calamine")
