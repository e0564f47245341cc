"""The SQL split of one CSV line (sql_plan.FileSql._fields) against the csv module: for any
one-line record, whatever its quoting, the fields the SQL reads are the csv module's, and
the cheap branches take the shapes exporters write."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.inputs.sql_plan import CsvPlan, FileSql

from conftest import n_examples

# Characters that make the split hard: quotes, delimiters, the other delimiters, Chinese.
TEXT = st.text(alphabet=st.sampled_from(list('"",,;\t ab好，“”\\\'')), max_size=8)


def split_sql(delimiter: str, n: int, quoted: bool = False) -> str:
    """The split of one line `?` with `n` named fields; `quoted`: the file's first line quoted
    every field (the all-quoted split is tried first: another order, the same fields)."""
    plan = CsvPlan(rel="a.csv", path=Path("a.csv"), encoding="utf-8", delimiter=delimiter,
                   names=[f"c{i}" for i in range(n)], header_line=1, window=(None, None), size=0, line_bytes=0,
                   quoted=quoted)
    sql = FileSql.__new__(FileSql)
    sql.plan = plan
    pre, how, fields = sql._fields()
    values = ", ".join(sql._field(i + 1) for i in range(n))
    return (f"SELECT how, CASE WHEN f IS NULL THEN NULL ELSE len(f) END, [{values}] "
            f"FROM (SELECT how, {fields} AS f FROM (SELECT *, {how} AS how FROM (SELECT l{pre} FROM "
            f"(SELECT ?::VARCHAR AS l))))")


def write(row: list[str], delimiter: str, quoting) -> str:
    out = io.StringIO()
    if quoting == "all-but-first":
        head = write([row[0]], delimiter, csv.QUOTE_MINIMAL) if row else ""
        rest = write(row[1:], delimiter, csv.QUOTE_ALL) if len(row) > 1 else ""
        return head + (delimiter + rest if len(row) > 1 else "")
    csv.writer(out, delimiter=delimiter, lineterminator="", quoting=quoting).writerow(row)
    return out.getvalue()


CON = duckdb.connect()


@settings(max_examples=n_examples(300), deadline=None)
@given(row=st.lists(TEXT, min_size=1, max_size=5), delimiter=st.sampled_from([",", ";", "\t"]),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, "all-but-first"]), quoted=st.booleans())
def test_the_sql_split_of_a_written_row_is_the_row(row, delimiter, quoting, quoted):
    line = write(row, delimiter, quoting)
    if "\n" in line or "\r" in line:
        return
    how, n, values = CON.execute(split_sql(delimiter, len(row), quoted), [line]).fetchone()
    assert (csv.reader([line], delimiter=delimiter, strict=True).__next__()) == row
    assert how is not None and n == len(row) and values == row, (line, how)


@settings(max_examples=n_examples(300), deadline=None)
@given(line=st.text(alphabet=st.sampled_from(list('"",,ab ')), max_size=12), quoted=st.booleans())
def test_any_line_splits_as_the_csv_module_reads_it_or_not_at_all(line, quoted):
    """A line the SQL splits is split as the csv module (strict) reads it; a line it does not
    split (NULL) goes to the Python reader, which says what is wrong with it."""
    if not line:
        return  # an empty line is NULL in the numbered-lines table: never split
    try:
        expected = next(csv.reader([line], strict=True))
    except csv.Error:
        how, n, values = CON.execute(split_sql(",", 1, quoted), [line]).fetchone()
        assert n is None, line
        return
    how, n, values = CON.execute(split_sql(",", len(expected), quoted), [line]).fetchone()
    assert n is not None and values == expected, (line, how)


@pytest.mark.parametrize("line, how", [
    ('a,b,c', 0),                                   # no quote
    ('"a","b c",d', 0),                             # quotes that only wrap
    ('"a","b c","d"', 4),                           # every field quoted, no quote inside
    ('"a","b,c","他说""好"""', 1),                  # every field quoted, anything inside
    ('"","x",""', 4),                               # empty quoted fields: their quotes are the split's
    ('"a""","b"', 1),                               # a doubled quote beside a split point
    ('2024-05-01 10:00:00,"他说""好""","x"', 2),    # doubled quotes, no delimiter inside
    ('2024-05-01 10:00:00,"a,b","x"', 3),           # a bare field and a delimiter inside quotes
])
def test_each_export_shape_takes_the_cheapest_branch_that_reads_it(line, how):
    row = next(csv.reader([line], strict=True))
    got_how, n, values = CON.execute(split_sql(",", len(row), quoted=how in (1, 4)), [line]).fetchone()
    assert (got_how, values) == (how, row)


def test_a_file_whose_first_line_quotes_every_field_tries_that_split_first():
    line = '"a","b c","d"'  # both splits read it: the order decides which
    assert CON.execute(split_sql(",", 3, quoted=False), [line]).fetchone()[0] == 0
    assert CON.execute(split_sql(",", 3, quoted=True), [line]).fetchone()[0] == 4
