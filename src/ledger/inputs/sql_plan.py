"""The SQL that reads one planned UTF-8 CSV file into `events` (for sql_reader.py).

A `CsvPlan` is a file whose one-line header was checked; `FileSql(plan, ...).sql()` is
its INSERT: it reads the file's raw lines, numbered once into a table (`numbered_lines_sql`),
splits the lines the csv module would split at the delimiter, and checks and normalises in
SQL only the forms whose reading is certain (see `FileSql`); every other line goes to the Python
UDF. The SQL gives exactly what contract.check_row gives: same ts, ids and values.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime, timedelta
from pathlib import Path

import attrs

from ledger.core.entries import ACCOUNT_INVISIBLE, ACCOUNT_SPACES
from ledger.inputs.contract import Schema, steady_offset
from ledger.inputs.rows import Columns
from ledger.inputs.table import quote_name, sql_string

_FIELD_LIMIT = 131072  # csv.field_size_limit(): longer lines are left to the csv module


@attrs.define
class CsvPlan:
    """A UTF-8 CSV file whose header (a single line) is good: read set-based."""

    rel: str
    path: Path
    encoding: str
    delimiter: str
    names: list[str]  # cleaned header names, "" for a column without one
    header_line: int
    window: tuple[datetime, datetime]  # wall times whose zone offsets are tabled
    size: int
    line_bytes: float  # average line length at the start of the file
    scan: object = None  # Future of what sql_reader scans in the file
    source: Path | None = None  # the file as given, when `path` is its UTF-8 transcoding
    jsonl: bool = False  # JSON Lines: `names` are the keys its first lines use
    sha256: str | None = None  # of `source`'s bytes, when transcoded
    lines: str | None = None  # JSON Lines: the table of its numbered lines made in planning (`jsonl_keys_sql`)
    quoted: bool = False  # its first data line quotes every field: FileSql tries that split first
    # The fields (1-based) its first data line quotes when it quotes some but not all, simply
    # (file_groups.quoted_fields): FileSql tries that pattern first.
    pattern: tuple[int, ...] = ()
    # A group of files with this header read by one INSERT (sql_reader._append_group): their
    # names; `lines` then also holds each line's file (fk, 0-based) and its own line number (ln).
    files: tuple[str, ...] = ()


def raw_lines_sql(path: Path) -> str:
    """A file as its physical lines (without line ends), one VARCHAR column `l`; empty
    lines are NULL. Quotes, escapes and comments mean nothing here."""
    return (f"read_csv({sql_string(str(path))}, header=false, auto_detect=false, delim='\\x01', quote='', "
            f"escape='', comment='', new_line='\\r\\n', strict_mode=false, max_line_size=16777216, "
            f"columns={{'l': 'VARCHAR'}})")


def numbered_lines_sql(path: Path, first: int) -> str:
    """The physical lines of a file from line `first` on, numbered from 1, as (line, l): to be
    stored in a table, so that the INSERTs reading it run on every core (numbering the lines
    takes one thread)."""
    return (f"SELECT ordinality AS line, l FROM {raw_lines_sql(path)} WITH ORDINALITY "
            f"WHERE ordinality >= {int(first)}")


def jsonl_keys_sql(lines: str, names: list[str]) -> str:
    """The numbered lines (line, l) of a JSON Lines file, from table `lines`, with
    what one JSON parse of each tells: `nk`, the number of keys of a line DuckDB reads as an
    object (NULL for any other line), and `x`, its keys when some are not among `names` (else
    NULL). Planning takes the file's later keys from `x`; the INSERT takes `nk` (jsonl_types).
    Over a stored table this runs on every core; numbering the lines takes one thread, so
    the lines are stored first and parsed after, not while they are numbered (2M lines:
    3.4 s in one pass, 1.1 + 1.6 s in two)."""
    listed = ", ".join(sql_string(n) for n in names)
    return (f"SELECT line, l, len(k) AS nk, CASE WHEN NOT list_has_all([{listed}]::VARCHAR[], k) THEN k END AS x "
            f"FROM (SELECT line, l, CASE WHEN starts_with(ltrim(l, ' '), '{{') AND json_valid(l) "
            f"THEN json_keys(l) END AS k FROM {lines})")


# Forms the SQL takes itself: within the range and scale of the SQL types (contract.MONEY_LIMIT,
# NUMBER_LIMIT), so no rounding can reach the limit; no sign '+', no exponent, no thousands
# separators, no negative amount. Every other form goes to the UDF (contract.check_row).
_DECIMAL_RE = r"-?[0-9]{1,28}(\.[0-9]{1,10})?"
_MONEY_RE = r"[¥￥]?[0-9]{1,14}(\.[0-9]{1,4})?元?"
# A single-line CSV record as the csv module reads it (strict, doubled quotes), and its fields:
RECORD_RE = r'(?:"(?:[^"]|"")*"|[^"{d}][^{d}]*|)(?:{d}(?:"(?:[^"]|"")*"|[^"{d}][^{d}]*|))*'
_FIELD_RE = r'{d}("(?:[^"]|"")*"|[^"{d}][^{d}]*|)'
# A record whose quoted fields hold neither a quote nor the delimiter.
SIMPLE_RECORD_RE = r'(?:"[^"{d}]*"|[^"{d}]*)(?:{d}(?:"[^"{d}]*"|[^"{d}]*))*'
# A record whose quoted fields hold no delimiter, and quotes only doubled.
DOUBLED_RECORD_RE = r'(?:"(?:[^"{d}]|"")*"|[^"{d}]*)(?:{d}(?:"(?:[^"{d}]|"")*"|[^"{d}]*))*'
_REST_RE = r"(\.[0-9]{1,9})?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?"  # after 'YYYY-MM-DD HH:MM:SS'
_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class FileSql:
    """The INSERT that reads one planned CSV file into `events`.

    A line is taken by the SQL only when the csv module would split it at the
    delimiter (no quote character), it has the header's column count, and every value
    is in a form whose reading is certain: `ts` as 'YYYY-MM-DD HH:MM:SS' (or with T,
    fractional seconds, an offset) inside the tabled time zone window, and declared
    money/number/yes-no values in plain forms. Everything else goes to the UDF.
    """

    def __init__(self, plan: CsvPlan, columns: Columns, schema: Schema, tz: zoneinfo.ZoneInfo, udf: str,
                 base: int, lines: str, spans_table: str | None = None, first: int | None = None,
                 last: int | None = None):
        self.spans_table = spans_table
        # the table of the file's numbered lines: (line, l) from `numbered_lines_sql`, with `nk`
        # for JSON Lines (`jsonl_keys_sql`), with `fk`, `ln` for a group of files (`plan.files`)
        self.lines = lines
        self.first = plan.header_line + 1 if first is None else first
        self.last = last
        self.plan = plan
        self.columns = columns
        self.schema = schema
        self.tz = tz
        self.udf = udf
        self.base = base
        self.pos = {name: i + 1 for i, name in enumerate(plan.names) if name}  # 1-based field index

    def v(self, name: str) -> str:
        return f"v{self.pos[name]}"

    def sql(self) -> str:
        plan = self.plan
        names = plan.names
        unnamed_ok = " AND ".join(f"{self._field(i + 1)} = ''" for i, n in enumerate(names) if not n) or "true"
        values = ", ".join(f"nullif({self._field(i)}, '') AS v{i}" for i in self.pos.values())
        ts, type_ = self.v("ts"), self.v("type")
        wall_spans, utc_spans = _zone_spans(self.tz, *plan.window)
        declared = {name: self._declared(name) for name in self.pos if name not in ("id", "ts", "type")}
        norm = ", ".join(f"{expr} AS n{self.pos[name]}" for name, (expr, _) in declared.items())
        checks = " AND ".join(f"({ok})" for _, ok in declared.values()) or "true"
        in_span = f"line IN (SELECT line FROM {self.spans_table})" if self.spans_table else "false"
        fast = (f"NOT in_span AND NOT contains(l, chr(0)) AND strlen(l) <= {_FIELD_LIMIT} "
                f"AND nf = {len(names)} AND unnamed_ok AND {type_} IS NOT NULL AND CAST(w0 AS VARCHAR) = t19 "
                f"AND okrest AND okoff AND utc IS NOT NULL AND loc IS NOT NULL AND {checks}")
        named = [n for n in names if n]
        pre, how, fields = self._fields()
        # seq counts lines from `base` at line `first`: the caller closes the gaps a rejected,
        # blank or continuation line leaves (no window: the INSERT runs on every core).
        out = {"seq": f"{int(self.base)} + line - {int(self.first)}",
               "id": f"CASE WHEN fast THEN {self._id()} ELSE py[1] END",
               "ts": "CASE WHEN fast THEN utc ELSE CAST(py[2] AS TIMESTAMP) END",
               "ts_local": "CASE WHEN fast THEN loc ELSE CAST(py[3] AS TIMESTAMP) END",
               "src_file": sql_string(plan.rel),
               "src_line": "CAST(line AS INTEGER)"}
        if plan.files:
            out["src_file"] = f"[{', '.join(sql_string(f) for f in plan.files)}][fk + 1]"
            out["src_line"] = "CAST(ln AS INTEGER)"
        carry = ", fk, ln" if plan.files else ""
        for k, name in enumerate(named):
            if name not in ("id", "ts"):
                value = self.v(name) if name == "type" else f"n{self.pos[name]}"
                out[name] = f"CASE WHEN fast THEN {value} ELSE py[{k + 4}] END"
        targets = ["seq", "id", "ts", "ts_local", *Columns.STORED_CORE, "src_file", "src_line", *self.columns.extras]
        select = ", ".join(out.get(name, "NULL") for name in targets)
        return f"""
            INSERT INTO events ({', '.join(quote_name(n) for n in targets)})
            WITH src AS ({self._source()}),
            a0 AS (SELECT *, {how} AS how FROM {jsonl_types(plan.names) if plan.jsonl else f"(SELECT *{pre} FROM src)"}
                   WHERE line >= {int(self.first)}),
            a AS (SELECT line, l, how, {fields} AS f{carry} FROM a0),
            b AS (SELECT line, l{carry}, len(f) AS nf, {unnamed_ok} AS unnamed_ok, {in_span} AS in_span, {values} FROM a),
            c AS (SELECT *, replace(left({ts}, 19), 'T', ' ') AS t19, substr({ts}, 20) AS rest FROM b),
            d AS (SELECT *, try_cast(t19 AS TIMESTAMP) AS w0,
                         CASE WHEN rest = '' THEN true ELSE regexp_full_match(rest, '{_REST_RE}') END AS okrest,
                         CASE WHEN rest = '' THEN NULL
                              ELSE regexp_extract(rest, '^{_REST_RE}$', ['fr', 'off', 'mm']) END AS rx
                  FROM c),
            e AS (SELECT *, coalesce(rx.fr, '') AS fr, coalesce(rx.off, '') AS off FROM d),
            g AS (SELECT *,
                         w0 + to_microseconds(CASE WHEN fr = '' THEN 0
                                                   ELSE CAST(rpad(substr(fr, 2, 6), 6, '0') AS BIGINT) END) AS wall,
                         CASE WHEN off IN ('', 'Z', 'z') THEN 0
                              ELSE (CASE WHEN off[1] = '-' THEN -1 ELSE 1 END)
                                   * (TRY_CAST(substr(off, 2, 2) AS BIGINT) * 3600
                                      + (CASE WHEN strlen(off) > 3 THEN TRY_CAST(right(off, 2) AS BIGINT) ELSE 0 END)
                                        * 60) END AS osec,
                         CASE WHEN off IN ('', 'Z', 'z') THEN true
                              ELSE TRY_CAST(substr(off, 2, 2) AS BIGINT) <= 23
                                   AND (strlen(off) <= 3 OR TRY_CAST(right(off, 2) AS BIGINT) <= 59) END AS okoff
                  FROM e),
            h AS (SELECT *, CASE WHEN off = '' THEN {_span_case('wall', wall_spans, '-')}
                                 ELSE wall - to_seconds(osec) END AS utc FROM g),
            i AS (SELECT *, CASE WHEN off = '' THEN wall ELSE {_span_case('utc', utc_spans, '+')} END AS loc FROM h),
            j AS (SELECT *{', ' + norm if norm else ''} FROM i),
            k AS (SELECT *, coalesce({fast}, false) AS fast FROM j),
            m AS (SELECT *, CASE WHEN fast THEN NULL ELSE {self.udf}(line, l) END AS py FROM k),
            r AS (SELECT * FROM m WHERE fast OR py IS NOT NULL)
            SELECT {select} FROM r"""

    def _source(self) -> str:
        """The lines `first` to `last` of the table `lines`, with the columns it holds."""
        last = f" AND line <= {int(self.last)}" if self.last is not None else ""
        carry = ", nk" if self.plan.jsonl else ", fk, ln" if self.plan.files else ""
        return f"SELECT line, l{carry} FROM {self.lines} WHERE line >= {int(self.first)}{last}"

    def _fields(self) -> tuple[str, str, str]:
        """(pre, how, f): columns to add to the lines first (", <expr> AS f4" or ""); how the
        SQL splits line `l`; and its fields as the csv module splits a one-line record, NULL
        for a line that is not one (a quoted field left open, text after a closing quote, ...).
        `how` tells what is left to do to a field (`_field`): 0 nothing, 1 strip the line's
        outer quotes and undouble quotes, 4 strip them only, 2 unquote it when quoted, 3
        nothing (the record regex unquoted it)."""
        if self.plan.jsonl:
            return "", "0", jsonl_fields(self.plan.names)
        d = sql_string(self.plan.delimiter)
        simple = sql_string(SIMPLE_RECORD_RE.replace("{d}", self.plan.delimiter))
        doubled = sql_string(DOUBLED_RECORD_RE.replace("{d}", self.plan.delimiter))
        record = sql_string(RECORD_RE.replace("{d}", self.plan.delimiter))
        field = sql_string(_FIELD_RE.replace("{d}", self.plan.delimiter))
        sep = sql_string(f'"{self.plan.delimiter}"')
        unquote = "CASE WHEN starts_with(x, '\"') THEN replace(x[2:-2], '\"\"', '\"') ELSE x END"
        # Cheapest first; the regexes are plain (one DFA pass each), regexp_extract_all with a
        # lambda, ten times dearer, is left for lines none of the others takes.
        # - no quote: the delimiters are the field ends.
        # - every field quoted, anything inside ("a,b","say ""hi"""): the fields end at
        #   '"<d>"'. That split is the csv module's when every run of quotes left between the
        #   pieces is even (quote pairs); the line's own first and last quote, with one more
        #   quote added at each end, make a pair with their neighbours. A lone quote means the
        #   split fell inside a field, or the line is not a record. 4: no pair inside at all.
        # - quoted fields hold neither a quote nor the delimiter ("a",b,"c d": exports that
        #   quote every field but some): drop the quotes and split.
        # - quoted fields hold doubled quotes but no delimiter: split, then unquote each.
        # - anything else: the general record regex.
        every_field = (f"WHEN starts_with(l, '\"') AND ends_with(l, '\"') AND strlen(l) >= 2 "
                       f"AND NOT contains(replace(replace('\"' || l || '\"', {sep}, chr(0)), '\"\"', ''), '\"') "
                       f"THEN CASE WHEN contains(l, '\"\"') THEN 1 ELSE 4 END ")
        wrapping = f"WHEN regexp_full_match(l, {simple}) THEN 0 "
        # The order only decides the cost (each test is exact): a file whose first line quotes
        # every field tries that split first, other files the one-regex test.
        first = every_field + wrapping if self.plan.quoted else wrapping + every_field
        split, pre, bare = f"string_split(l, {sep})", "", "replace(l, '\"', '')"
        if self.plan.quoted:
            # Cheaper still, for such a file's lines, on the split made anyway (f4): when the
            # line's quotes are its first, its last and two per split point, and neither end
            # is a split point ('","a"'), no piece holds a quote: the split is exact, 4.
            pre, split = f", {split} AS f4", "f4"
            first = (f"WHEN starts_with(l, '\"') AND ends_with(l, '\"') AND NOT starts_with(l, {sep}) "
                     f"AND NOT ends_with(l, {sep}) AND strlen(l) - strlen(replace(l, '\"', '')) = 2 * len(f4) "
                     f"THEN 4 ") + first
        elif self.plan.pattern:
            # A file that quotes some fields (all but times and numbers): when the line splits at
            # the delimiter into as many pieces, each field of the pattern is one '"..."' and
            # the line holds no other quote, those quotes only wrap (0), found without the regex;
            # the line without its quotes (r5) is what that split reads.
            pre, bare = f", string_split(l, {d}) AS f5, replace(l, '\"', '') AS r5", "r5"
            ends = " AND ".join(f"strlen(f5[{i}]) >= 2 AND starts_with(f5[{i}], '\"') AND ends_with(f5[{i}], '\"')"
                                for i in self.plan.pattern)
            first = (f"WHEN len(f5) = {len(self.plan.names)} AND {ends} "
                     f"AND strlen(l) - strlen(r5) = {2 * len(self.plan.pattern)} THEN 0 ") + first
        how = (f"CASE WHEN NOT contains(l, '\"') THEN 0 {first}"
               f"WHEN regexp_full_match(l, {doubled}) THEN 2 "
               f"WHEN regexp_full_match(l, {record}) THEN 3 END")
        f = (f"CASE how WHEN 0 THEN string_split(CASE WHEN contains(l, '\"') THEN {bare} ELSE l END, {d}) "
             f"WHEN 1 THEN {split} WHEN 4 THEN {split} "
             f"WHEN 2 THEN string_split(l, {d}) "
             f"WHEN 3 THEN list_transform(regexp_extract_all({d} || l, {field}, 1), lambda x: {unquote}) END")
        return pre, how, f

    def _field(self, i: int) -> str:
        """Field `i` (1-based) of `f` as read, by `how` (see `_fields`). In a line split at
        '"<d>"' (1, 4) the first field still starts with the line's first quote and the last
        ends with its last quote (a line of another field count is not taken: `nf`)."""
        x, n = f"f[{int(i)}]", len(self.plan.names)
        bare = f"{x}[2:-2]" if i == 1 == n else f"substr({x}, 2)" if i == 1 else f"{x}[:-2]" if i == n else x
        return (f"CASE how WHEN 4 THEN {bare} WHEN 1 THEN replace({bare}, '\"\"', '\"') "
                f"WHEN 2 THEN CASE WHEN starts_with({x}, '\"') THEN replace({x}[2:-2], '\"\"', '\"') ELSE {x} END "
                f"ELSE {x} END")

    def _declared(self, name: str) -> tuple[str, str]:
        """(normalised value, check) of one column, by the kind each event type declares for it."""
        v, type_ = self.v(name), self.v("type")
        kinds: dict[str, list[str]] = {}
        for event_type, fields in self.schema.items():
            kind = fields.get(name)
            if kind and kind != "text":
                kinds.setdefault(kind, []).append(event_type)
        if name == "agent":  # taken as it is only when normalise_account would not change it
            edge = "".join(f"\\x{{{ord(c):04x}}}" for c in ACCOUNT_SPACES)
            inner = "".join(f"\\x{{{ord(c):04x}}}" for c in ACCOUNT_INVISIBLE + "：")
            bad = sql_string(f"^[{edge}]|[{edge}]$|[{inner}]")
            return v, f"{v} IS NULL OR NOT regexp_matches({v}, {bad})"
        if not kinds:
            return v, "true"

        def of(*wanted):
            types = [t for k in wanted for t in kinds.get(k, ())]
            return f"{type_} IN ({', '.join(sql_string(t) for t in types)})" if types else "false"

        def decimal(text: str) -> str:  # plain_decimal of a text matching _DECIMAL_RE
            body = f"ltrim({text}, '-')"
            whole, frac = f"ltrim(split_part({body}, '.', 1), '0')", f"rtrim(split_part({body}, '.', 2), '0')"
            return (f"CASE WHEN {whole} = '' AND {frac} = '' THEN '0' ELSE concat("
                    f"CASE WHEN starts_with({text}, '-') THEN '-' ELSE '' END, "
                    f"CASE WHEN {whole} = '' THEN '0' ELSE {whole} END, "
                    f"CASE WHEN {frac} = '' THEN '' ELSE '.' || {frac} END) END")

        amount = f"regexp_replace({v}, '^[¥￥]|元$', '', 'g')"
        true_words = ", ".join(sql_string(w) for w, flag in _BOOL_WORDS.items() if flag)
        words = ", ".join(sql_string(w) for w in _BOOL_WORDS)
        flag = f"CASE WHEN {v} = '是' OR lower({v}) IN ({true_words}) THEN 'true' ELSE 'false' END"
        value = (f"CASE WHEN {v} IS NULL THEN NULL WHEN {of('money')} THEN {decimal(amount)} "
                 f"WHEN {of('number')} THEN {decimal(v)} WHEN {of('bool')} THEN {flag} ELSE {v} END")
        check = (f"{v} IS NULL OR CASE WHEN {of('money')} THEN regexp_full_match({v}, '{_MONEY_RE}') "
                 f"WHEN {of('number')} THEN regexp_full_match({v}, '{_DECIMAL_RE}') "
                 f"WHEN {of('bool')} THEN {v} IN ('是', '否') "
                 f"OR (strlen({v}) = length({v}) AND lower({v}) IN ({words})) "
                 f"WHEN {of('time')} THEN false ELSE true END")
        return value, check

    def _id(self) -> str:
        """The event id: the `id` column, else 'h' + sha256 of the canonical content (`canonical_content`)."""
        iso = ("strftime(utc, '%Y-%m-%dT%H:%M:%S') || CASE WHEN microsecond(utc) % 1000000 = 0 THEN '' "
               "ELSE '.' || strftime(utc, '%f') END")
        parts = [self.v("type"), "chr(0)", iso]
        for name in sorted(self.pos):
            if name not in ("id", "ts", "type"):
                n = f"n{self.pos[name]}"
                parts.append(f"CASE WHEN {n} IS NULL THEN '' ELSE chr(0) || {sql_string(name)} || chr(0) || {n} END")
        derived = f"'h' || left(sha256(concat({', '.join(parts)})), 16)"
        if "id" in self.pos:
            return f"CASE WHEN {self.v('id')} IS NOT NULL THEN {self.v('id')} ELSE {derived} END"
        return derived


def _json_paths(names: list[str]) -> str:
    return ", ".join(sql_string('$."' + n + '"') for n in names)


JSON_SPACE_CONTROLS = (9, 10, 13)  # the control characters JSON allows, as spaces between tokens only


def jsonl_types(names: list[str]) -> str:
    """The raw lines `src` (line, l, nk: jsonl_keys_sql) with `jt`: the JSON types of the
    values under `names` (NULL for a missing key), for a line that may be read in SQL: a valid
    JSON object (`nk` not NULL) without a \\u escape (records.py checks what those decode to),
    a control character (Python's JSON parser refuses them raw) or a trailing comma (DuckDB's
    parser allows one; a valid object's last character but spaces is its closing brace)."""
    # A line DuckDB reads as an object holds no other control character than these (its JSON
    # parser refuses the others, and any raw one in a string: tests/inputs/test_events.py).
    control = " OR ".join(f"contains(l, chr({i}))" for i in JSON_SPACE_CONTROLS)
    return (f"(SELECT line, l, nk, CASE WHEN nk IS NOT NULL AND NOT contains(l, '\\u') AND NOT ({control}) "
            f"AND NOT regexp_matches(l, ', *[}}] *$') "
            f"THEN json_type(l, [{_json_paths(names)}]) END AS jt FROM src)")


def jsonl_fields(names: list[str]) -> str:
    """The values of JSON line `l` under `names` (NULL for a missing key), for a line whose
    reading is certain (see jsonl_types): its values strings, nulls and booleans only, its
    keys among `names` and none twice (as many keys as names found). Anything else is NULL:
    the Python reader reads the line."""
    simple = "list_bool_and(list_transform(jt, lambda t: t IS NULL OR t IN ('VARCHAR', 'NULL', 'BOOLEAN')))"
    found = "len(list_filter(jt, lambda t: t IS NOT NULL))"
    return (f"CASE WHEN {simple} AND nk = {found} "
            f"THEN json_extract_string(l, [{_json_paths(names)}]) END")


def stored_canonical(columns: Columns) -> str:
    """`canonical_content` of an `events` row, from its stored columns (missing values are NULL)."""
    iso = ("strftime(ts, '%Y-%m-%dT%H:%M:%S') || CASE WHEN microsecond(ts) % 1000000 = 0 THEN '' "
           "ELSE '.' || strftime(ts, '%f') END")
    parts = ["type", "chr(0)", iso]
    for name in sorted(set(Columns.STORED_CORE) - {"type"} | set(columns.extras)):
        q = quote_name(name)
        parts.append(f"CASE WHEN {q} IS NULL THEN '' ELSE chr(0) || {sql_string(name)} || chr(0) || {q} END")
    return f"concat({', '.join(parts)})"


def _span_case(expr: str, spans, sign: str) -> str:
    """`expr` moved by the zone offset of the span it falls in; NULL outside all spans."""
    if not spans:
        return "NULL::TIMESTAMP"
    whens = " ".join(
        f"WHEN {expr} >= TIMESTAMP '{start.isoformat(' ')}' AND {expr} < TIMESTAMP '{end.isoformat(' ')}' "
        f"THEN {expr} {sign} to_microseconds({offset // timedelta(microseconds=1)})"
        for start, end, offset in spans)
    return f"CASE {whens} ELSE NULL END"


@functools.lru_cache(maxsize=32)
def _zone_spans(tz: zoneinfo.ZoneInfo, start: datetime, end: datetime):
    """Hour-aligned spans of [start, end) with a steady zone offset, as (from, to, offset):
    for wall times exactly where `parse_ts` uses `steady_offset`, and for UTC times
    where `tz.fromutc` adds the same offset all hour. Other hours are left to Python."""
    wall: list[tuple[datetime, datetime, timedelta]] = []
    utc: list[tuple[datetime, datetime, timedelta]] = []
    hour, last = timedelta(hours=1), timedelta(minutes=59, seconds=59, microseconds=999999)
    t = start
    while t < end:
        _extend(wall, t, t + hour, steady_offset.__wrapped__(tz, t.year, t.month, t.day, t.hour))
        at_start = tz.fromutc(t.replace(tzinfo=tz)).replace(tzinfo=None) - t
        at_end = tz.fromutc((t + last).replace(tzinfo=tz)).replace(tzinfo=None) - (t + last)
        _extend(utc, t, t + hour, at_start if at_start == at_end else None)
        t += hour
    return tuple(wall), tuple(utc)


def _extend(spans: list, start: datetime, end: datetime, offset: timedelta | None) -> None:
    if offset is None:
        return
    if spans and spans[-1][1] == start and spans[-1][2] == offset:
        spans[-1] = (spans[-1][0], end, offset)
    else:
        spans.append((start, end, offset))
