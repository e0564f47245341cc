"""Event files → the DuckDB table `events`: `load_events` (outputs/rejects.py writes the rejects).

Every input under the events folder (contract.py says which, and how a row is read)
is read in code-point order of its path: workbooks one input per sheet, zip archives
one per member (containers.py). Each row is checked and normalised, the good rows are
bulk-loaded into `events`, and a row that cannot be read is rejected with its file,
line and a reason, never lost. Gives a `LoadResult` (files, ignored files, rejects).

Two readers, one meaning. The reference is the row-by-row Python reader
(python_reader.py): every row decoded, checked and normalised in Python, then
bulk-loaded. UTF-8 CSV files of 256 KB or more (the bulk of a big month) are read
set-based instead (sql_reader.py, SQL in sql_plan.py), with exactly the same table,
rejects and file reports; tests/inputs/test_events.py checks it on random folders.
Which reader reads what is set by `ReaderSettings` (settings.py): LEDGER_EVENTS_READER=python
forces the Python reader for every file, =fast the set-based one for every UTF-8 CSV file
whatever its size. Either way `SqlReader` drives the load, and duplicate ids over all files
are folded, or superseded by a newer version of the record, in SQL at the end (dedup.py).
"""

from __future__ import annotations

import os
import stat
import zoneinfo
from pathlib import Path

import attrs
import duckdb

from ledger.core.errors import LedgerError
from ledger.inputs import containers, exports, message_kinds
from ledger.inputs import profiles as profiles_mod
from ledger.inputs.contract import (
    EVENT_SUFFIXES,
    FileReport,
    LoadResult,
    Reject,
    Schema,
    check_schema,
)
from ledger.inputs.settings import ReaderSettings
from ledger.inputs.sql_reader import SqlReader, udf_types

# The records load_events gives are the contract's; they are named here too for its callers.
__all__ = ["FileReport", "LoadResult", "Reject", "last_readers", "load_events"]


#: How the last `load_events` read each file: rel path -> "sql" or "python" (tests, benchmarks).
last_readers: dict[str, str] = {}


# ---------------------------------------------------------------------------
# Discovery

def _discover(root: Path, settings: ReaderSettings,
              archives: containers.Archives) -> tuple[list[tuple[str, object]], list[str]]:
    """(inputs, ignored files) under `root`, in code-point order of their paths.

    Symbolic links are never followed, to files or to folders (a link could put any file of
    the machine into rejected-rows.csv): each is an input that is not read, rejected with
    the reason. Files that are not regular files (pipes, devices) are ignored."""
    found, ignored = [], []

    def unreadable_folder(error: OSError) -> None:  # a folder that cannot be listed is reported, not skipped
        rel = _display(Path(error.filename).relative_to(root).as_posix()) if error.filename else "."
        found.append((rel, containers.Unreadable(Path(rel).name, f"无法读取文件夹 (cannot read folder): {error.strerror}")))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable_folder):  # links are never followed
        links = [d for d in dirnames if not d.startswith(".") and os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in links]
        for name in links + filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath, name)
            rel = _display(path.relative_to(root).as_posix())
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                found.append((rel, containers.Unreadable(name, containers.LINK_REASON)))
            elif not stat.S_ISREG(mode):
                ignored.append(rel)
            elif path.suffix.lower() in EVENT_SUFFIXES:
                found.append((rel, path))
            elif path.suffix.lower() != profiles_mod.SUFFIX:  # export profiles are read, not ignored
                ignored.append(rel)
    found.sort(key=lambda item: item[0])
    out = []
    for rel, path in found:  # workbooks: one input per sheet; archives: one per member (containers.py)
        inputs, more_ignored = containers.expand(rel, path, settings, archives)
        out += inputs
        ignored += more_ignored
    return out, sorted(ignored)


def check_output_folder(events_root: Path, out_dir: Path) -> None:
    """LedgerError (exit 2) when the output folder is inside the events folder, or holds it:
    every run would read its own statement, rejects and per-agent files as events."""
    events_real, out_real = Path(os.path.realpath(events_root)), Path(os.path.realpath(out_dir))
    if events_real == out_real or events_real in out_real.parents or out_real in events_real.parents:
        raise LedgerError(f"输出目录 {out_dir} 与事件目录 {events_root} 不能互相包含：每次运行都会把自己的输出当成事件读进来。"
                          f"请把 --out 放到事件目录之外 (the output folder must not be inside the events folder, "
                          f"nor hold it)", exit_code=2)


def _display(name: str) -> str:
    # File names that are not valid UTF-8 (e.g. GBK names from a zip) still print.
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Loading

def load_events(root: Path, con: duckdb.DuckDBPyConnection, *, tz: zoneinfo.ZoneInfo,
                schema: Schema, progress=None, settings: ReaderSettings | None = None) -> LoadResult:
    """Read every event file under `root` into table `events` of `con`.

    UTF-8 CSV files are read set-based in DuckDB where that gives exactly what the
    row-by-row Python reader gives (see `SqlReader`); everything else, and every row the
    SQL cannot vouch for, goes through Python. `settings` (settings.py) choose the reader
    and its sizes; without them, `ReaderSettings.from_env()`: LEDGER_EVENTS_READER=python
    forces the Python reader for every file, =fast uses the set-based one for every UTF-8
    CSV file whatever its size. `progress(message)` hears of each file as it is read.
    """
    root = Path(root)
    if not root.is_dir():
        raise LedgerError(f"找不到事件目录 (events folder not found): {root}", exit_code=2)
    check_schema(schema)
    settings = ReaderSettings.from_env() if settings is None else settings
    archives = containers.Archives()
    try:
        return _load(root, con, tz, schema, progress, settings, archives)
    finally:
        archives.close_all()


def _load(root: Path, con, tz, schema, progress, settings: ReaderSettings, archives) -> LoadResult:
    files, ignored = _discover(root, settings, archives)
    profiles = tuple(profiles_mod.load([root, Path("profiles")]))
    if udf_types() is None:  # this DuckDB cannot declare the UDF's types: the Python reader for every file
        settings = attrs.evolve(settings, reader="python")
    last_readers.clear()
    reader = SqlReader(con, tz, schema, settings=settings, profiles=profiles, progress=_file_progress(progress, files))
    result = reader.run(files, ignored)
    last_readers.update(reader.readers)
    exports.cut_sessions(con)
    message_kinds.derive(con)
    return result


def _file_progress(progress, files):
    """say(rel, path): 'messages.csv (2/6, 1.3 GB)' to `progress`, if any."""
    number = {rel: i for i, (rel, _) in enumerate(files, 1)}

    def say(rel: str, path) -> None:
        if progress is None:
            return
        try:
            size = path.stat().st_size if isinstance(path, Path) else getattr(path, "size", 0)
        except OSError:
            size = 0
        unit, scale = next(((u, b) for u, b in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)) if size >= b),
                           ("B", 1))
        progress(f"读取 {rel} ({number.get(rel, '?')}/{len(files)}, {size / scale:.1f} {unit})")

    return say
