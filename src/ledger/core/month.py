"""Months and wall times: the billing month as local bounds, and how a time is written.

A month is `[YYYY-MM-01 00:00, next month's first day 00:00)` in the policy's time zone
(docs/decisions.md); `format_ts` is the one way a wall time becomes text in evidence,
explanations and transcripts.
"""

from __future__ import annotations

import re
from datetime import datetime
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

import attrs

from ledger.core.errors import LedgerError

_MONTH = re.compile(r"(\d{4})-(\d{2})")
# Months a ledger can be run for: every date computed from one (the next month, the data-end
# horizon, corrections) stays inside what datetime and DuckDB hold (9999-12 overflowed).
FIRST_YEAR, LAST_YEAR = 1970, 2999


@attrs.frozen
class Month:
    text: str  # "2024-05"
    start_local: datetime
    end_local: datetime

    @classmethod
    def parse(cls, text: str) -> "Month":
        m = _MONTH.fullmatch(text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise LedgerError(f"月份格式应为 YYYY-MM，例如 2024-05 (bad month): {text!r}", exit_code=2)
        if not FIRST_YEAR <= int(m.group(1)) <= LAST_YEAR:
            raise LedgerError(f"月份超出范围，应在 {FIRST_YEAR}-01 到 {LAST_YEAR}-12 之间 (month out of range): {text!r}",
                              exit_code=2)
        y, mo = int(m.group(1)), int(m.group(2))
        start = datetime(y, mo, 1)
        end = datetime(y + (mo == 12), mo % 12 + 1, 1)
        return cls(f"{y:04d}-{mo:02d}", start, end)

    def bounds_utc(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return to_utc(self.start_local, tz), to_utc(self.end_local, tz)


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(dt_timezone.utc).replace(tzinfo=None)


def format_ts(ts: datetime) -> str:
    """2024-05-03 12:34:56: a wall time (isoformat is several times faster than strftime)."""
    if ts.tzinfo is not None:
        return ts.strftime("%Y-%m-%d %H:%M:%S")
    return ts.isoformat(" ", "seconds")
