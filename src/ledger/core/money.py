"""Money is Decimal 元, rounded per line to 0.01 half-up. Never float."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_line(amount: Decimal) -> Decimal:
    """Round one ledger line to the 分, half-up (0.005 → 0.01)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


_AMOUNT = re.compile(r"([+-]?)[¥￥]?([+-]?)[ ]?((?:\d{1,3}(?:,\d{3})+|\d{1,3}(?:，\d{3})+|\d+)(?:\.\d+)?)元?",
                     re.ASCII)


def parse_yuan(text: str) -> Decimal:
    """Parse an amount as exports write it: '12', '12.5', '-3.20', '1,299.00', '¥59', '59元'.

    Only unambiguous forms: ASCII digits, a '.' decimal point, thousands separators
    (',' or '，') in groups of exactly three ('12,5', '1.299,00', '1,2,3' are not
    amounts), no exponent, at most one sign. Raise ValueError otherwise. Never goes
    through float.
    """
    m = _AMOUNT.fullmatch(text.strip())
    if not m or (m.group(1) and m.group(2)):
        raise ValueError(f"不是金额 (not an amount): {text!r}")
    sign = "-" if "-" in (m.group(1) + m.group(2)) else ""
    return Decimal(sign + m.group(3).replace(",", "").replace("，", ""))


def total(amounts) -> Decimal:
    """Sum of lines exactly as shown (each already rounded)."""
    return sum((a for a in amounts if a is not None), ZERO)


class Percent(Decimal):
    """A share (0.425): shown as a percentage (a number cell with Excel's built-in 0.00% format)."""
