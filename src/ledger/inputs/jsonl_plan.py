"""Which JSON Lines files the set-based reader can read, and under which keys.

`jsonl_head(path, columns)` reads the first lines of a `.jsonl` file in Python and gives
the keys the set-based reader reads it under (sql_plan.jsonl_fields), with those lines'
values, or None when the file is better read in Python: a BOM, bytes that are not UTF-8,
no `ts` or `type` key, a key the Python reader would clean, rename or refuse. Only lines
whose reading is certain give keys (flat objects of strings, nulls and booleans): the
Python reader registers the keys of such lines whatever else the file holds. sql_reader
then stores the file's numbered lines with the keys of every line (numbered on one thread,
parsed on every core: sql_plan.jsonl_keys_sql; the INSERT reads the table later); a line with a key still
unplanned is met by its UDF, which has the load start again with the file read in Python.
"""

from __future__ import annotations

import codecs
import itertools
import json
from pathlib import Path

from ledger.inputs.encodings import utf16_without_bom
from ledger.inputs.rows import Columns, clean_name

HEAD_BYTES = 1 << 16
HEAD_LINES = 64


def jsonl_head(path: Path, columns: Columns) -> tuple[list[str], list[list[str]], float] | None:
    """(keys in first-seen order, the head lines' values under them, bytes per line), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return None
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or utf16_without_bom(head[:4096]):
        return None
    if len(head) == HEAD_BYTES:
        head = head[:head.rfind(b"\n") + 1]
    try:
        lines = head.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return None
    names: dict[str, None] = {}
    objects = []
    for raw in itertools.islice((x for x in lines if x.strip()), HEAD_LINES):
        obj = _plain_object(raw.rstrip("\r"))
        if obj is not None:
            objects.append(obj)
            names.update(dict.fromkeys(obj))
    if "ts" not in names or "type" not in names:
        return None
    keys = list(names)
    if not plain_keys(keys, columns):
        return None
    line_bytes = max(1.0, len(head) / max(1, head.count(b"\n")))
    return keys, [[_text(obj.get(k)) for k in keys] for obj in objects], line_bytes


def plain_keys(keys: list[str], columns: Columns) -> bool:
    """Whether the Python reader takes these keys as they are: clean, allowed, no two differing
    in case (it refuses the later one's rows), and quotable in a JSON path."""
    for name in keys:
        if clean_name(name) != name or columns.problem(name) or any(c in name for c in '"\\') or not name.isprintable():
            return False
    return len({k.lower() for k in keys}) == len(keys)


def _plain_object(raw: str) -> dict | None:
    """The line as a dict when it is a flat object of strings, nulls and booleans, each key
    once, without \\u escapes or control characters (what jsonl_fields takes itself)."""
    if "\\u" in raw or any(ord(c) < 0x20 for c in raw):
        return None
    try:
        pairs = json.loads(raw, object_pairs_hook=list)
    except ValueError:
        return None
    if not isinstance(pairs, list) or any(not isinstance(p, tuple) for p in pairs):
        return None
    obj = dict(pairs)
    if len(obj) != len(pairs) or any(not (v is None or isinstance(v, (str, bool))) for v in obj.values()):
        return None
    return obj


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
