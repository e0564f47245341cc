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

from ledger.inputs.file_groups import split_hints
from ledger.inputs.sql_plan import CsvPlan, FileSql

from conftest import n_examples

# Characters that make the split hard: quotes, delimiters, the other delimiters, Chinese.
TEXT = st.text(alphabet=st.sampled_from(list('"",,;\t ab好，“”\\\'')), max_size=8)


def split_sql(delimiter: str, n: int, quoted: bool = False, pattern: tuple[int, ...] = ()) -> str:
    """The split of one line `?` with `n` named fields; `quoted`: the file's first line quoted
    every field, `pattern`: the fields it quoted (the split those hint at is tried first:
    another order, the same fields)."""
    plan = CsvPlan(rel="a.csv", path=Path("a.csv"), encoding="utf-8", delimiter=delimiter,
                   names=[f"c{i}" for i in range(n)], header_line=1, window=(None, None), size=0, line_bytes=0,
                   quoted=quoted, pattern=pattern)
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
    if quoting == "odd-fields":  # every other field quoted, the others as needed
        return delimiter.join(write([x], delimiter, csv.QUOTE_ALL if k % 2 else csv.QUOTE_MINIMAL)
                              for k, x in enumerate(row))
    csv.writer(out, delimiter=delimiter, lineterminator="", quoting=quoting).writerow(row)
    return out.getvalue()


CON = duckdb.connect()


@settings(max_examples=n_examples(300), deadline=None)
@given(row=st.lists(TEXT, min_size=1, max_size=5), delimiter=st.sampled_from([",", ";", "\t"]),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, "all-but-first", "odd-fields"]),
       hint=st.sampled_from(["none", "all", "this line's"]))
def test_the_sql_split_of_a_written_row_is_the_row(row, delimiter, quoting, hint):
    line = write(row, delimiter, quoting)
    if "\n" in line or "\r" in line:
        return
    quoted, pattern = (hint == "all", ()) if hint != "this line's" else split_hints(line, delimiter, len(row))
    how, n, values = CON.execute(split_sql(delimiter, len(row), quoted, pattern), [line]).fetchone()
    assert (csv.reader([line], delimiter=delimiter, strict=True).__next__()) == row
    assert how is not None and n == len(row) and values == row, (line, how)


@settings(max_examples=n_examples(300), deadline=None)
@given(line=st.text(alphabet=st.sampled_from(list('"",,ab ')), max_size=12), quoted=st.booleans(),
       pattern=st.sets(st.integers(1, 4)))
def test_any_line_splits_as_the_csv_module_reads_it_or_not_at_all(line, quoted, pattern):
    """A line the SQL splits is split as the csv module (strict) reads it, whatever the file's
    hints; a line it does not split (NULL) goes to the Python reader, which says what is
    wrong with it."""
    if not line:
        return  # an empty line is NULL in the numbered-lines table: never split
    try:
        expected = next(csv.reader([line], strict=True))
    except csv.Error:
        how, n, values = CON.execute(split_sql(",", 1, quoted), [line]).fetchone()
        assert n is None, line
        return
    pattern = () if quoted else tuple(sorted(i for i in pattern if i <= len(expected)))
    how, n, values = CON.execute(split_sql(",", len(expected), quoted, pattern), [line]).fetchone()
    assert n is not None and values == expected, (line, how)


@pytest.mark.parametrize("line, how", [
    ('a,b,c', 0),                                   # no quote
    ('"a","b c",d', 0),                             # quotes that only wrap
    ('"a","b c","d"', 4),                           # every field quoted, no quote inside
    ('"a","b,c","他说""好"""', 1),                  # every field quoted, anything inside
    ('"m1",2024-05-01 10:00:00,"x"', 0),            # quotes that only wrap, by the file's pattern
    ('"","x",""', 4),                               # empty quoted fields: their quotes are the split's
    ('"a""","b"', 1),                               # a doubled quote beside a split point
    ('2024-05-01 10:00:00,"他说""好""","x"', 2),    # doubled quotes, no delimiter inside
    ('2024-05-01 10:00:00,"a,b","x"', 3),           # a bare field and a delimiter inside quotes
])
def test_each_export_shape_takes_the_cheapest_branch_that_reads_it(line, how):
    row = next(csv.reader([line], strict=True))
    pattern = (1, 3) if line.startswith('"m1"') else ()
    got_how, n, values = CON.execute(split_sql(",", len(row), how in (1, 4), pattern), [line]).fetchone()
    assert (got_how, values) == (how, row)


def test_a_file_whose_first_line_quotes_every_field_tries_that_split_first():
    line = '"a","b c","d"'  # both splits read it: the order decides which
    assert CON.execute(split_sql(",", 3, quoted=False), [line]).fetchone()[0] == 0
    assert CON.execute(split_sql(",", 3, quoted=True), [line]).fetchone()[0] == 4


@pytest.mark.parametrize("line, hints", [
    ('"a","b c","d"', (True, ())),
    ('"m1",2024-05-01 10:00:00,"x"', (False, (1, 3))),
    ('m1,2024-05-01 10:00:00,x', (False, ())),            # nothing quoted: the plain split is first anyway
    ('"m1",2024-05-01 10:00:00,"x ""y"""', (False, ())),  # a quote inside: no pattern
    ('"m1","x",2024-05-01,7', (False, ())),              # another field count
])
def test_a_files_first_line_gives_its_split_hints(line, hints):
    assert split_hints(line, ",", 3) == hints
