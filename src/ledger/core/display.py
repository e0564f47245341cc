"""Terminal layout: CJK characters take two cells, so pad by display width."""

from __future__ import annotations

import unicodedata


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def ljust(text: str, cells: int) -> str:
    return text + " " * max(cells - width(text), 0)


def rjust(text: str, cells: int) -> str:
    return " " * max(cells - width(text), 0) + text
