"""The DuckDB table `events`: its columns, and appending the rows the Python reader wrote.

`create_empty` (re)creates `events` with the fixed columns, the stored core columns and
one VARCHAR per extra column in `Columns`; `insert_written` appends a temporary CSV
written by `PythonReader`, shifting its seq. `quote_name` and `sql_string` quote
identifiers and literals for the SQL built here and in sql_plan.py.
"""

from __future__ import annotations

import duckdb

from ledger.inputs.rows import Columns


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_table(con: duckdb.DuckDBPyConnection, columns: Columns, tmp: str | None) -> None:
    create_empty(con, columns)
    if tmp is not None:
        insert_written(con, columns, tmp)


def create_empty(con: duckdb.DuckDBPyConnection, columns: Columns) -> None:
    extras = columns.extras
    decl = ["seq BIGINT", "id VARCHAR", "ts TIMESTAMP", "ts_local TIMESTAMP", "type VARCHAR",
            "agent VARCHAR", "conversation VARCHAR", "buyer VARCHAR", '"order" VARCHAR',
            "src_file VARCHAR", "src_line INTEGER"] + [f"{quote_name(n)} VARCHAR" for n in extras]
    con.execute(f"CREATE OR REPLACE TABLE events ({', '.join(decl)})")


def insert_written(con: duckdb.DuckDBPyConnection, columns: Columns, tmp: str, base: int = 0) -> None:
    """Append the rows `PythonReader` wrote to `tmp`, their seq shifted by `base`."""
    extras = columns.extras
    width = len(Columns.FIXED) + len(columns.index)
    types = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width))
    col = {name: f"c{i}" for name, i in columns.index.items()}
    select = ([f"CAST(c0 AS BIGINT) + {int(base)}", "c1", "CAST(c2 AS TIMESTAMP)", "CAST(c3 AS TIMESTAMP)"]
              + [col[n] for n in Columns.STORED_CORE] + ["c4", "CAST(c5 AS INTEGER)"]
              + [col[n] for n in extras])
    # Rows written before a new column appeared are shorter: null_padding fills them,
    # and the parallel reader cannot combine that with quoted newlines.
    con.execute(
        f"INSERT INTO events SELECT {', '.join(select)} FROM read_csv({sql_string(tmp)}, "
        f"header=false, auto_detect=false, delim=',', quote='\"', escape='\"', new_line='\\n', "
        f"allow_quoted_nulls=true, null_padding=true, parallel=false, strict_mode=true, max_line_size=268435456, "
        f"columns={{{types}}})"
    )
