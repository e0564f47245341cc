"""What the set-based reader (sql_reader.py) learns of a file outside DuckDB, and how it reads
a group of files with one header by one INSERT.

`scan_file(path)` is one pass over a file's bytes (digest, physical lines, line ends) that
the reader checks against what DuckDB read. `group_key(plan)` says which planned files may be
read together (the same header, delimiter, zone table and quoting); `group_lines_sql` stores
their lines in one table numbered as if the files were one (`ln`, `fk` keep each line's own
number and file), and `ungroup_reject` gives a reject of that reading its own file and line.
Reading a month split into many files (one per day, per agent) one INSERT per file paid
~20 ms of planning each and ran every file under DuckDB's row group on one thread.
"""

from __future__ import annotations

import bisect
import hashlib
from pathlib import Path
from typing import NamedTuple

import attrs

from ledger.inputs.contract import Reject
from ledger.inputs.sql_plan import CsvPlan, numbered_lines_sql

SCAN_CHUNK = 1 << 22
RAW_DELIM = "\x01"  # the raw-line scan's column delimiter: a file containing it goes to Python


class FileScan(NamedTuple):
    """What one pass over a file's bytes tells: checked against what DuckDB read."""

    sha256: str
    lines: int  # physical lines, as Python's universal newlines count them
    bare_cr: bool  # a CR not followed by LF: a line break to Python, not to the raw-line scan
    raw_delim: bool
    newline: str | None  # "\n" or "\r\n" when every line ends so, None when they are mixed
    final_newline: bool  # the last line has a line end


def scan_file(path: Path, digested: bool = True) -> FileScan:
    """The scan of a file; its sha256 only when `digested` (a copy's is never reported)."""
    digest = hashlib.sha256() if digested else None
    lf = cr = crlf = 0
    delim = False
    last = b""
    with open(path, "rb") as fh:
        while block := fh.read(SCAN_CHUNK):
            if digest is not None:
                digest.update(block)
            lf += block.count(b"\n")
            n_cr = block.count(b"\r")
            if n_cr or last == b"\r":
                cr += n_cr
                crlf += block.count(b"\r\n") + (last == b"\r" and block[:1] == b"\n")
            delim = delim or RAW_DELIM.encode() in block
            last = block[-1:]
    newline = "\n" if not crlf else "\r\n" if crlf == lf else None
    sha = digest.hexdigest() if digest is not None else ""
    return FileScan(sha, lf + (last not in (b"", b"\n")), cr != crlf, delim, newline, last == b"\n")


def quotes_every_field(line: str, delimiter: str, width: int) -> bool:
    """Whether a line looks like an export that quotes every field (a hint for the order of
    the SQL's splits, never for what they read)."""
    return line.startswith('"') and line.endswith('"') and line.count(f'"{delimiter}"') >= width - 1


def quoted_fields(line: str, delimiter: str, width: int) -> tuple[int, ...]:
    """The fields (1-based) a line quotes when it quotes some but not all, each whole and
    holding no quote or delimiter (an export that quotes text but not times or numbers);
    () for any other line. A hint for the order of the SQL's splits, never for what they read."""
    pieces = line.split(delimiter)
    if len(pieces) != width:
        return ()
    quoted = tuple(i + 1 for i, p in enumerate(pieces) if len(p) >= 2 and p[0] == p[-1] == '"')
    if not quoted or len(quoted) == width or line.count('"') != 2 * len(quoted):
        return ()
    return quoted


def split_hints(line: str, delimiter: str, width: int) -> tuple[bool, tuple[int, ...]]:
    """A file's first data line's hints for its plan: (quoted, pattern) of CsvPlan."""
    quoted = quotes_every_field(line, delimiter, width)
    return quoted, () if quoted else quoted_fields(line, delimiter, width)


def group_key(plan: CsvPlan) -> tuple | None:
    """Files with equal keys may be read by one INSERT; None for a file read on its own."""
    if plan.jsonl or plan.lines is not None or plan.source is not None or plan.files:
        return None
    return (tuple(plan.names), plan.delimiter, plan.window, plan.quoted, plan.pattern)


def group_starts(data_lines: list[int]) -> list[int]:
    """The group's line number before each file's first data line, for the files' numbers of
    lines after their headers (`data_lines`): line 1 is a header that is not stored, the
    first file's data lines are 2, 3, ..., each next file's follow on."""
    starts, offset = [], 1
    for n in data_lines:
        starts.append(offset)
        offset += n
    return starts


def group_lines_sql(table: str, plans: list[CsvPlan], starts: list[int]) -> list[str]:
    """The statements storing the data lines of `plans` in `table` (line, l, fk, ln), numbered
    on from `starts` (group_starts)."""
    out = [f"CREATE TEMP TABLE {table} (line BIGINT, l VARCHAR, fk INTEGER, ln BIGINT)"]
    for k, (plan, start) in enumerate(zip(plans, starts)):
        out.append(f"INSERT INTO {table} SELECT {start - plan.header_line} + line, l, {k}, line "
                   f"FROM ({numbered_lines_sql(plan.path, plan.header_line + 1)})")
    return out


def ungroup_reject(reject: Reject, plans: list[CsvPlan], starts: list[int]) -> tuple[int, Reject]:
    """(file index, the reject with its own file and line) of a reject of the group's reading."""
    k = bisect.bisect_left(starts, reject.line) - 1
    line = reject.line - starts[k] + plans[k].header_line
    return k, attrs.evolve(reject, file=plans[k].rel, line=line)
