"""One output file of the sample month: rows pushed in any order, written in time order.

Rows wait in a small heap and are written once no earlier row can come (the generator
says how far it has got), so memory holds only the rows in flight; files are replaced
atomically. CSV (with a header) or JSONL by the file's suffix.
"""

from __future__ import annotations

import csv
import heapq
import json
from pathlib import Path

from ledger.sample.phrases import BAD_TS

FILES = {  # file -> (columns, id prefix, type used for a synthetic row)
    "messages.csv": (("id", "ts", "type", "agent", "conversation", "buyer", "sender", "kind", "text"), "m", "message"),
    "orders.csv": (("id", "ts", "type", "agent", "buyer", "order", "amount"), "od", "order_placed"),
    "refunds.jsonl": (("id", "ts", "type", "agent", "buyer", "order", "reason", "amount"), "rf", "refund_requested"),
    "shifts.csv": (("id", "ts", "type", "agent", "handover", "successor"), "sh", "shift_start"),
    "qa.csv": (("id", "ts", "type", "agent", "conversation", "category", "note"), "qa", "qa_flag"),
    "ratings.csv": (("id", "ts", "type", "agent", "buyer", "conversation", "score"), "rt", "rating"),
}

# --------------------------------------------------------------------------------------
# Output: one heap-ordered, streaming writer per file
# --------------------------------------------------------------------------------------

class Sink:
    """Rows of one file, written in (ts, push order) once no earlier row can come."""

    def __init__(self, path: Path, name: str, fmt_ts, bad: list[tuple[int, str, int]], id_tag: str = ""):
        self.name = name
        self.columns, prefix, self.default_type = FILES[name]
        self.prefix = prefix + id_tag  # "m" + "2406": June's ids never collide with May's
        self.jsonl = name.endswith(".jsonl")
        self.fmt_ts = fmt_ts
        self.bad = bad  # (threshold ts, kind, global bad number), sorted by threshold
        self.heap: list = []
        self.seq = 0
        self.next_id = 1
        self.rows = 0
        self.watermark = 0
        self.last: tuple[int, tuple] | None = None
        self.file = path.open("w", encoding="utf-8", newline="")
        if self.jsonl:
            self.writer = None
        else:
            self.writer = csv.writer(self.file, lineterminator="\n")
            self.writer.writerow(self.columns)

    def push(self, ts: int, fields: tuple) -> None:
        """Queue a row; `fields` are the values of the columns after id and ts."""
        if ts < self.watermark:
            raise AssertionError(f"{self.name}: row at {ts} after flushing to {self.watermark}")
        heapq.heappush(self.heap, (ts, self.seq, fields))
        self.seq += 1

    def flush(self, upto: int) -> None:
        """Write every queued row earlier than `upto`."""
        self.watermark = max(self.watermark, upto)
        heap = self.heap
        while heap and heap[0][0] < upto:
            ts, _, fields = heapq.heappop(heap)
            while self.bad and self.bad[0][0] <= ts:
                self._write_bad(self.bad.pop(0), ts, fields)
            self._write(f"{self.prefix}{self.next_id:08d}", self.fmt_ts(ts), fields)
            self.next_id += 1
            self.last = (ts, fields)

    def close(self) -> int:
        self.flush(1 << 62)
        while self.bad:  # thresholds past the last row: corrupt a copy of the last row
            if self.last is None:
                self.last = (0, (self.default_type,) + ("",) * (len(self.columns) - 3))
            self._write_bad(self.bad.pop(0), *self.last)
        self.file.close()
        return self.rows

    def _write(self, row_id: str, ts: str | None, fields: tuple, drop_type: bool = False) -> None:
        if self.jsonl:
            obj = {"id": row_id}
            if ts is not None:
                obj["ts"] = ts
            for key, value in zip(self.columns[2:], fields):
                if value != "" and not (drop_type and key == "type"):
                    obj[key] = value
            self.file.write(json.dumps(obj, ensure_ascii=False) + "\n")
        else:
            self.writer.writerow((row_id, ts, *fields))
        self.rows += 1

    def _write_bad(self, bad: tuple[int, str, int], ts: int, fields: tuple) -> None:
        _, kind, number = bad
        row_id = f"{self.prefix}x{number:03d}"
        if kind == "bad_ts":
            self._write(row_id, BAD_TS[(number - 1) % len(BAD_TS)], fields)
        elif kind == "no_ts":
            self._write(row_id, None if self.jsonl else "", fields)
        elif kind == "no_type":
            if self.jsonl:
                self._write(row_id, self.fmt_ts(ts), fields, drop_type=True)
            else:
                self._write(row_id, self.fmt_ts(ts), ("",) + fields[1:])
        elif kind == "extra_column":  # an unquoted comma split the last field in two
            last = fields[-1] or "备注"
            cut = max(1, len(last) // 2)
            self._write(row_id, self.fmt_ts(ts), fields[:-1] + (last[:cut], last[cut:] or "。"))
        else:  # pragma: no cover - BAD_CYCLE only names the kinds above
            raise ValueError(kind)


