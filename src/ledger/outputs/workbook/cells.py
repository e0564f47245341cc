"""Cells: the `Table` a sheet is made of, and the rules every cell value follows.

Text is never a formula and round-trips (`encode_text` / `decode_text`, ST_Xstring
escapes), long text is cut at Excel's limit (`clip_text`), money is its Decimal text
with two decimals (`money_text`), and column widths count CJK characters double
(`display_width`). Imports only ledger.core.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from ledger.core.money import round_line

EXCEL_MAX_ROWS = 1_048_576
MAX_CELL_CHARS = 32_767  # Excel's limit, in UTF-16 code units
TRUNCATED = "…（已截断）"
MONEY_FORMAT = "0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
MIN_WIDTH = 8
MAX_WIDTH = 60
WIDTH_SAMPLE_ROWS = 1000


@attrs.frozen
class Table:
    """One sheet: a header, data rows under an autofilter, and bold footer rows.

    `items` are turned into rows by `to_row` one at a time, so a million detail
    lines never exist as rows all at once.
    """

    title: str
    header: tuple[str, ...]
    items: Sequence[Any]
    to_row: Callable[[Any], tuple] = tuple
    footer: tuple[tuple, ...] = ()

    def rows(self) -> Iterable[tuple]:
        return map(self.to_row, self.items)


# -------------------------------------------------------------------- text rules

# Characters XML 1.0 cannot hold, plus CR (an XML parser would turn it into LF).
_UNSAFE = "\x00-\x08\x0b\x0c\r\x0e-\x1f\ufffe\uffff"
# An unsafe character, or an underscore that a decoder would read as the start of
# `_xHHHH_` (its closing underscore may be a literal one or come from an escape).
_ENCODE = re.compile(f"[{_UNSAFE}]|_(?=x[0-9A-Fa-f]{{4}}(?:_|[{_UNSAFE}]))")
_DECODE = re.compile("_x([0-9A-Fa-f]{4})_")


def encode_text(text: str) -> str:
    """Escape text for a cell as Excel does (ST_Xstring): `\\x01` → `_x0001_`, `_` → `_x005F_`."""
    return _ENCODE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def decode_text(text: str) -> str:
    """The inverse of `encode_text`, as Excel and LibreOffice apply it when reading."""
    return _DECODE.sub(lambda m: chr(int(m.group(1), 16)), text)


def clip_text(text: str) -> str:
    """Cut text to what a cell holds, marking the cut with TRUNCATED."""
    if len(text) <= MAX_CELL_CHARS // 2 or _utf16_len(text) <= MAX_CELL_CHARS:
        return text
    budget = MAX_CELL_CHARS - _utf16_len(TRUNCATED)
    units = text.encode("utf-16-le")[: 2 * budget]
    # A cut through a surrogate pair leaves half a character: drop it.
    return units.decode("utf-16-le", errors="ignore") + TRUNCATED


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def display_width(text: str, cap: int = MAX_WIDTH) -> int:
    """Width of text in a cell: CJK (wide, fullwidth) characters count double."""
    if len(text) >= cap:  # every character is at least 1 wide
        return cap
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if width >= cap:
            return cap
    return width


def money_text(amount: Decimal) -> str:
    """The exact text of an amount for `<v>`: always two decimals."""
    return format(round_line(amount), "f")


