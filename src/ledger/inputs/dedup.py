"""Duplicate ids over all files, in SQL: the same content folds; other content is another
version of the same record, and the newer version wins by its content, never by the files'
names (issue 13 item 7).

Overlapping downloads hold the same record twice: unchanged (folded, counted as "合并重复"),
or changed in between — a refund's status moved on (退款中 → 退款成功), the buyer edited the
reason. `fold_duplicates(con, columns)` keeps, per id, the newest version, ordered by:

1. status: a final status (`FINAL_STATUS`: 成功, 关闭, 完结, … ; success, closed, …) is
   newer than any other — a finished record never goes back to open;
2. the record's own latest time: the later of `ts` and `updated` (a modification time,
   when the export has one);
3. the data end of the file it came from: the later download reaches later (its latest
   `ts`, events dated after tomorrow left out);
4. when nothing tells them apart: the larger content digest — arbitrary but the same
   whatever the files are called, and said so in the reason and the run's warning.

The kept version keeps the place (seq, file, line) of its first row; every row of an older
version is rejected as superseded (its reason names the kept row and why it won), every
other row of the kept version is folded. seq is closed up after.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import duckdb

from ledger.inputs.rows import Columns
from ledger.inputs.sql_plan import stored_canonical
from ledger.inputs.table import quote_name, sql_string

# A status with one of these (not after 未/不/非) is final: the record is finished.
FINAL_STATUS = ("成功", "关闭", "完结", "已完成", "已退款", "已撤销", "已取消",
                "success", "succeeded", "closed", "finished", "done", "completed", "cancelled", "canceled")
WHY = {
    "status": "状态已完结 (final status)",
    "time": "时间更晚 (later time)",
    "file": "所在文件的数据更晚，是较新的下载 (its file reaches later: the newer download)",
    "digest": "无法判断哪个更新，按内容摘要选定，请核对 (nothing tells which is newer: chosen by content digest, check it)",
}


class Dropped(NamedTuple):
    """A row taken out: folded into the kept row (same content) or superseded by it."""

    seq: int
    file: str
    line: int
    folded: bool
    kept_file: str
    kept_line: int
    why: str | None  # a key of WHY for a superseded row


def fold_duplicates(con: duckdb.DuckDBPyConnection, columns: Columns) -> list[Dropped]:
    """Take folded and superseded rows out of `events` (seq closed up); the rows taken out,
    in seq order."""
    con.execute("CREATE OR REPLACE TEMP TABLE ledger_dup_ids AS SELECT id FROM events GROUP BY id HAVING count(*) > 1")
    try:
        if not con.execute("SELECT count(*) FROM ledger_dup_ids").fetchone()[0]:
            return []
        con.execute(_dups_sql(columns), [datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=1)])
        dropped = [Dropped(*r) for r in con.execute(
            "SELECT seq, src_file, src_line, folded, kept_file, kept_line, why FROM ledger_dups ORDER BY seq").fetchall()]
        con.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM ledger_dups)")
        # Close up seq: every row moves down by the number of dropped rows before it.
        con.execute("""
            UPDATE events SET seq = events.seq - s.shift FROM (
                SELECT e.seq AS old, d.n AS shift FROM events e
                ASOF JOIN (SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM ledger_dups) d
                ON e.seq > d.seq) s
            WHERE events.seq = s.old""")
        return dropped
    finally:
        con.execute("DROP TABLE IF EXISTS ledger_dup_ids")
        con.execute("DROP TABLE IF EXISTS ledger_dups")


def _dups_sql(columns: Columns) -> str:
    status = quote_name("status")
    if "status" in columns.index:
        chinese = "|".join(w for w in FINAL_STATUS if not w.isascii())
        english = "|".join(w for w in FINAL_STATUS if w.isascii())
        final = (f"coalesce(regexp_matches({status}, {sql_string(f'(^|[^未不非])({chinese})')}) "
                 f"OR regexp_matches(lower({status}), {sql_string(f'(^|[^a-z])({english})([^a-z]|$)')}), false)")
    else:
        final = "false"
    own_time = (f"greatest(ts_local, try_cast({quote_name('updated')} AS TIMESTAMP))"
                if "updated" in columns.index else "ts_local")
    return f"""
        CREATE OR REPLACE TEMP TABLE ledger_dups AS
        WITH d AS (
            SELECT seq, id, src_file, src_line, substr(sha256({stored_canonical(columns)}), 17, 16) AS mark,
                   {final} AS k_final, {own_time} AS k_time
            FROM events WHERE id IN (SELECT id FROM ledger_dup_ids)),
        f AS (
            SELECT src_file, max(ts) AS k_end FROM events
            WHERE ts <= ? AND src_file IN (SELECT src_file FROM d) GROUP BY src_file),
        v AS (
            SELECT d.id, d.mark, min(d.seq) AS keep_seq, bool_or(d.k_final) AS k_final,
                   max(d.k_time) AS k_time, max(f.k_end) AS k_end
            FROM d LEFT JOIN f USING (src_file) GROUP BY d.id, d.mark),
        w AS (
            SELECT *, row_number() OVER (PARTITION BY id ORDER BY k_final DESC, k_time DESC NULLS LAST,
                                                     k_end DESC NULLS LAST, mark DESC) AS rank
            FROM v),
        win AS (
            SELECT w.id, w.mark, w.keep_seq, w.k_final, w.k_time, w.k_end, e.src_file AS kept_file,
                   e.src_line AS kept_line
            FROM w JOIN d e ON e.seq = w.keep_seq WHERE w.rank = 1)
        SELECT d.seq, d.src_file, d.src_line, d.mark = win.mark AS folded, win.kept_file, win.kept_line,
               CASE WHEN d.mark = win.mark THEN NULL
                    WHEN win.k_final AND NOT v.k_final THEN 'status'
                    WHEN win.k_time > v.k_time THEN 'time'
                    WHEN win.k_end > v.k_end OR (win.k_end IS NOT NULL AND v.k_end IS NULL) THEN 'file'
                    ELSE 'digest' END AS why
        FROM d JOIN win USING (id) JOIN v ON v.id = d.id AND v.mark = d.mark
        WHERE d.seq <> win.keep_seq"""
