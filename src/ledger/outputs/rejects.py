"""`rejected-rows.csv`: every row or file that could not be read, with the reason.

Columns `file,line,reason,raw`, UTF-8 with BOM (Excel opens it without garbling), CRLF
line ends. The file is for a supervisor repairing data, and it is opened in
spreadsheets with whatever their import dialog guesses, so each text cell is made safe
for every common setting, not only for the comma:

* **No personal data**: phone and ID numbers and street addresses in `reason` and
  `raw` are masked as on the statement (`privacy.mask_text`); file names are kept (they
  say where to look).
* **One line per row**: TAB, CR, LF and the other control characters inside a cell
  are written as visible escapes (`\\t`, `\\r`, `\\n`, `\\x00`, `\\u2028`), so no import
  dialog can start a new row or column inside a cell at them.
* **Never a formula**: a `=`, `+`, `-` or `@` that starts the cell, or that follows a
  space, comma, semicolon, `|` or quote character (a cell boundary under some
  separator or text-qualifier setting), gets a `\\` in front. Whatever the dialog splits
  on (`,` `;` TAB space `|`, with `"` or `'` or no text qualifier), no cell starts
  with a formula character, also after trimming spaces. (A leading apostrophe is
  not used: with `'` as the text qualifier it would itself open a quoted cell.)

Backslashes already in the text are left alone, so `\\n` in a cell may also be a
backslash and an n in the original (rare in exports; the original file has the truth).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Sequence

from ledger.core.atomic import write_bytes
from ledger.inputs.contract import Reject
from ledger.inputs.encodings import printable
from ledger.outputs.privacy import mask_text

HEADER = ("file", "line", "reason", "raw")
FORMULA_START = "=+-@"
_NAMED = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A formula character at the start or after a possible cell boundary (spaces included).
_FORMULA = re.compile(r"(^|[\s,;|\"'])(?=[=+\-@])")


def safe_cell(text: str) -> str:
    """Text as a cell no spreadsheet import turns into a formula or splits into rows."""
    text = _CONTROL.sub(_escape, printable(text))
    return _FORMULA.sub(lambda m: m.group(1) + "\\", text)


def _escape(m: re.Match) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def rejects_text(rejects: Sequence[Reject]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for r in rejects:
        writer.writerow([safe_cell(r.file), r.line, safe_cell(mask_text(r.reason) or ""),
                         safe_cell(mask_text(r.raw) or "")])
    return "\ufeff" + out.getvalue()


def write_rejects(path: Path, rejects: Sequence[Reject]) -> None:
    """Write the rejected rows (atomically: a temporary name, then a rename)."""
    write_bytes(Path(path), rejects_text(rejects).encode("utf-8"))
