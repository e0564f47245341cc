"""Money is Decimal 元, rounded per line to 0.01 half-up. Never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_line(amount: Decimal) -> Decimal:
    """Round one ledger line to the 分, half-up (0.005 → 0.01)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_yuan(text: str) -> Decimal:
    """Parse an amount as exports write it: '12', '12.5', '-3.20', '1,299.00', '¥59', '59元'.

    Raise ValueError otherwise. Never goes through float.
    """
    s = text.strip().replace(",", "").replace("，", "")
    s = s.removeprefix("¥").removeprefix("￥").removesuffix("元").strip()
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"不是金额 (not an amount): {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"不是金额 (not an amount): {text!r}")
    return value


def total(amounts) -> Decimal:
    """Sum of lines exactly as shown (each already rounded)."""
    return sum((a for a in amounts if a is not None), ZERO)


class Percent(Decimal):
    """A share (0.425): shown as a percentage (a number cell with Excel's built-in 0.00% format)."""
