"""Validate a large table in SQL, straight from its CSV or Parquet file.

The pandas loader (:mod:`spimpact.io`) holds a table in memory; a GP appointment
extract of tens of millions of rows does not fit. For such a table the same checks run
as SQL written once (DuckDB's dialect; on Spark through :func:`spimpact.engine.to_dialect`):
types, codes, dates, required values, NHS numbers (Modulus 11, then keyed pseudonyms)
and records of unknown patients. They give the same exclusions, with the same reasons
and source lines, as the pandas path, and write the validated rows to a Parquet file
that is never read into pandas whole (:class:`StreamedTable`).

Source lines are counted as :func:`spimpact.readers.read_table` counts them. A CSV file
is streamed only when every line is one record (no quotes, no blank lines, one kind of
line ending, UTF-8, no ragged rows), the files the readers' fast path reads; any other
CSV file, and a Parquet file with a column type a CSV export would not hold, is read in
pandas, and :class:`StreamFallback` says why.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from spimpact import contract
from spimpact.cells import WITHHELD
from spimpact.contract import Column, TableSpec
from spimpact.engine import connect, sql_path
from spimpact.identifiers import pseudonymise
from spimpact.readers import _BOM, DataValidationError, _name_columns, _sniff_delimiter

__all__ = [
    "STREAM_MIN_ROWS",
    "STREAMABLE_TABLES",
    "StreamFallback",
    "StreamSource",
    "StreamedTable",
    "plan_stream",
    "validate_streamed",
]

# Tables validated in SQL when their file has at least ``stream_rows`` data rows
# (``load_scheme(stream_rows=...)``). GP appointments are the one table that grows to
# tens of millions of rows; its checks need no other table but the patient keys.
STREAMABLE_TABLES = ("gp_appointments",)
STREAM_MIN_ROWS = 1_000_000
# The characters Python's str.strip() (and Arrow's utf8_trim_whitespace) remove.
_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_WHITESPACE_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in _WHITESPACE)
_CHUNK = 16 * 1024 * 1024
_MISSING = "required value missing"
_INVALID_NHS = "invalid NHS number (fails the Modulus 11 check or is not 10 digits)"
_UNKNOWN_PATIENT = "appointment for a patient who is neither a client nor in the comparison pool"
_KINDS = ("text", "code", "date")
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")


class StreamFallback(Exception):
    """The file cannot be streamed with exact source lines; the message says why."""


@dataclass(frozen=True)
class StreamSource:
    """A table file planned for streaming: its path, format and header.

    ``header`` holds the column names as :func:`spimpact.readers.read_table` gives them
    (stripped, lower-cased), in file order; ``positions`` the file's own names or, for
    CSV, the 0-based field positions.
    """

    path: Path
    kind: str  # "csv" or "parquet"
    header: tuple[str, ...]
    delimiter: str = ","
    parquet_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamedTable:
    """A validated table kept as Parquet on disk (``path``: a file or a glob of parts).

    Stands in for the pandas frame of :class:`spimpact.io.SchemeData`: ``len()``,
    ``empty``, ``columns``; :meth:`to_pandas` reads it whole (small tables and tests
    only); :meth:`distinct`, :meth:`percent_present` and :meth:`latest` answer with
    SQL. ``os.fspath()`` gives the path, so it can be passed where a file is read
    (``build_panel``).
    """

    path: Path
    n_rows: int
    columns: tuple[str, ...]
    dates: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.n_rows

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def empty(self) -> bool:
        """No validated row."""
        return self.n_rows == 0

    def _query(self, sql: str) -> pd.DataFrame:
        with connect("duckdb") as connection:
            connection.execute(
                f"CREATE TEMP VIEW validated AS SELECT * FROM read_parquet('{sql_path(self.path)}')"
            )
            return connection.df(sql)

    def to_pandas(self, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The rows (or ``columns`` of them) as pandas, in source order."""
        names = list(self.columns if columns is None else columns)
        select = ", ".join(_quote(c) for c in names)
        frame = self._query(f"SELECT {select} FROM validated ORDER BY source_row")
        for name in names:
            if name in self.dates:
                frame[name] = pd.to_datetime(frame[name]).astype("datetime64[ns]")
            elif name != "source_row":
                frame[name] = frame[name].astype(object).where(frame[name].notna(), np.nan)
        return frame

    def distinct(self, column: str) -> list:
        """The distinct non-missing values of ``column``, sorted."""
        name = _quote(column)
        frame = self._query(
            f"SELECT DISTINCT {name} AS v FROM validated WHERE {name} IS NOT NULL ORDER BY v"
        )
        return frame["v"].tolist()

    def percent_present(self, column: str) -> float:
        """Percentage of rows with a value in ``column``."""
        if self.empty:
            return float("nan")
        present = self._query(f"SELECT count({_quote(column)}) AS n FROM validated")["n"].iloc[0]
        return float(present) / self.n_rows * 100

    def latest(self, column: str) -> pd.Timestamp | None:
        """The latest date in ``column`` (None when it has none)."""
        value = self._query(f"SELECT max({_quote(column)}) AS v FROM validated")["v"].iloc[0]
        return None if pd.isna(value) else pd.Timestamp(value)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_streamable(spec: TableSpec) -> bool:
    """Whether every column of ``spec`` is of a kind the SQL checks cover."""
    return spec.name in STREAMABLE_TABLES and all(
        c.kind in _KINDS or c.name == "nhs_number" for c in spec.columns
    )


def plan_stream(path: Path, min_rows: int) -> StreamSource | None:
    """The file at ``path`` as a :class:`StreamSource` if it has at least ``min_rows`` rows.

    Returns None for a smaller file. Raises :class:`StreamFallback` for a large file
    that cannot be streamed with exact source lines, and
    :class:`spimpact.readers.DataValidationError` for a header ``read_table`` refuses.
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        try:
            schema = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise StreamFallback(f"the Parquet file cannot be opened: {error}") from None
        if schema.metadata.num_rows < min_rows:
            return None
        names = tuple(str(n) for n in schema.schema_arrow.names)
        return StreamSource(path, "parquet", _header(names, path), parquet_names=names)
    if path.suffix.lower() != ".csv":
        return None
    if not _has_lines(path, min_rows + 1):
        return None
    first = _check_plain_csv(path)
    delimiter = _sniff_delimiter(first)
    try:
        header = next(csv.reader([first], delimiter=delimiter))
    except (StopIteration, csv.Error):
        raise StreamFallback("the header line cannot be read as CSV") from None
    return StreamSource(path, "csv", _header(tuple(h.strip() for h in header), path), delimiter)


def _header(names: tuple[str, ...], path: Path) -> tuple[str, ...]:
    frame = _name_columns(pd.DataFrame(columns=["source_row", *names]), path, keep_case=False)
    return tuple(frame.columns[1:])


def _has_lines(path: Path, n_lines: int) -> bool:
    """Whether the file has at least ``n_lines`` lines (reads only as far as needed)."""
    found = 0
    with open(path, "rb") as handle:
        while found < n_lines and (chunk := handle.read(_CHUNK)):
            found += chunk.count(b"\n")
    return found >= n_lines


def _check_plain_csv(path: Path) -> str:
    """The header line of a CSV file in which every line is one record, else StreamFallback.

    The conditions of ``spimpact.readers._read_csv_fast``: no quote character, no blank
    line, carriage returns only in CRLF line ends, not UTF-16; checked chunk by chunk.
    """
    with open(path, "rb") as handle:
        head = handle.read(_CHUNK)
        if not head.strip():
            raise StreamFallback("the file is empty")
        if head.startswith((b"\n", b"\r", b"\xff\xfe", b"\xfe\xff")):
            raise StreamFallback("the file starts with a blank line or is UTF-16")
        previous, chunk = b"", head
        while chunk:
            joined = previous + chunk
            if b'"' in chunk:
                raise StreamFallback("the file has quoted fields")
            if b"\n\n" in joined or b"\n\r\n" in joined:
                raise StreamFallback("the file has blank lines")
            if joined.count(b"\r") != joined.count(b"\r\n") + joined.endswith(b"\r"):
                raise StreamFallback("the file has carriage returns outside CRLF line ends")
            previous = chunk[-1:]
            chunk = handle.read(_CHUNK)
        if previous == b"\r":
            raise StreamFallback("the file has carriage returns outside CRLF line ends")
    end = head.find(b"\n")
    if end < 0:
        raise StreamFallback("the file has no data rows")
    try:
        return head[:end].removesuffix(b"\r").removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError:
        raise StreamFallback("the header line is not UTF-8") from None


def _csv_tables(source: StreamSource, columns: list[str]):
    """The CSV's ``columns`` as text, with ``source_row`` (line numbers), block by block.

    Every line is one record (checked by :func:`plan_stream`), so data row ``k``
    (0-based) is line ``k + 2``. Rows whose every cell is blank are skipped, as the
    readers skip them. A ragged row or bytes that are not UTF-8 raise StreamFallback.
    """
    names = [f"c{k}" for k in range(len(source.header))]
    keep = {names[source.header.index(c)]: c for c in columns}
    schema = pa.schema([("source_row", pa.int64()), *((c, pa.string()) for c in keep.values())])
    line = 2
    try:
        reader = pacsv.open_csv(
            source.path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=_CHUNK),
            parse_options=pacsv.ParseOptions(
                delimiter=source.delimiter, quote_char=False, ignore_empty_lines=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            lines = pa.array(np.arange(line, line + batch.num_rows, dtype="int64"))
            line += batch.num_rows
            blank = None
            for name in names:
                cell = pc.equal(pc.utf8_trim_whitespace(batch.column(name)), "")
                blank = cell if blank is None else pc.and_(blank, cell)
            table = pa.Table.from_arrays([lines, *(batch.column(k) for k in keep)], schema=schema)
            yield table if blank is None else table.filter(pc.invert(blank))
    except (pa.ArrowInvalid, pa.ArrowException) as error:
        reason = str(error).splitlines()[0][:200]
        raise StreamFallback(f"the CSV reader stopped: {reason}") from None


def _stage_csv(source: StreamSource, columns: list[str], target: Path) -> None:
    """Write the CSV's ``columns`` as text Parquet with ``source_row`` (see _csv_tables)."""
    writer = None
    try:
        for table in _csv_tables(source, columns):
            writer = writer or pq.ParquetWriter(target, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        schema = pa.schema([("source_row", pa.int64()), *((c, pa.string()) for c in columns)])
        pq.write_table(schema.empty_table(), target)


def _parquet_text(name: str, duck_type: str) -> str:
    """A Parquet column as the text ``read_table`` gives it (``_cell_text``), in SQL."""
    column = _quote(name)
    if duck_type == "VARCHAR":
        return f"COALESCE({column}, '')"
    if duck_type == "DATE" or duck_type in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS"):
        return f"COALESCE(strftime(CAST({column} AS DATE), '%Y-%m-%d'), '')"
    if duck_type == "BOOLEAN":
        return f"CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' ELSE '' END"
    if duck_type.lstrip("U") in _INTEGER_TYPES:
        return f"COALESCE(CAST({column} AS VARCHAR), '')"
    raise StreamFallback(f"column '{name}' is stored as {duck_type}")


def _raw_parquet_sql(connection, source: StreamSource, columns: list[str]) -> str:
    """SELECT of ``source_row`` and the contract columns as text, from a Parquet file."""
    connection.execute(
        "CREATE TEMP VIEW parquet_source AS SELECT * FROM "
        f"read_parquet('{sql_path(source.path)}', file_row_number = true)"
    )
    types = {
        row[0]: row[1]
        for row in connection.connection.execute("DESCRIBE parquet_source").fetchall()
    }
    own = dict(zip(source.header, source.parquet_names, strict=True))
    cells = [f"{_parquet_text(own[c], types[own[c]])} AS {_quote(c)}" for c in columns]
    return f"SELECT file_row_number + 1 AS source_row, {', '.join(cells)} FROM parquet_source"


# ---- the checks, one SQL expression each, on the trimmed text cells ----------------


def _date_parts(cell: str) -> tuple[str, str, str, str]:
    """Shape test and year, month, day of a ``YYYY-M-D`` cell (pandas' format)."""
    shape = f"regexp_matches({cell}, '^[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}$')"
    year = f"CAST(regexp_extract({cell}, '^([0-9]{{4}})-', 1) AS INTEGER)"
    month = f"CAST(regexp_extract({cell}, '^[0-9]{{4}}-([0-9]{{1,2}})-', 1) AS INTEGER)"
    day = f"CAST(regexp_extract({cell}, '-([0-9]{{1,2}})$', 1) AS INTEGER)"
    return shape, year, month, day


def _date_ok(cell: str) -> str:
    """A real calendar date inside pandas' nanosecond range (1677-09-22 to 2262-04-11)."""
    shape, year, month, day = _date_parts(cell)
    leap = f"({year} % 4 = 0 AND {year} % 100 <> 0 OR {year} % 400 = 0)"
    days = (
        f"CASE WHEN {month} IN (1, 3, 5, 7, 8, 10, 12) THEN 31 WHEN {month} IN (4, 6, 9, 11) "
        f"THEN 30 WHEN {leap} THEN 29 ELSE 28 END"
    )
    ordinal = f"{year} * 10000 + {month} * 100 + {day}"
    checked = (
        f"{month} BETWEEN 1 AND 12 AND {day} BETWEEN 1 AND {days} "
        f"AND {ordinal} BETWEEN 16770922 AND 22620411"
    )
    return f"(CASE WHEN {shape} THEN {checked} ELSE FALSE END)"


def _normalised_code(column: Column, cell: str) -> str:
    """``contract.normalise_codes`` in SQL."""
    if column.name == "sex":
        cases = " ".join(
            f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in contract.SEX_ALIASES.items()
        )
        return f"(CASE lower({cell}) {cases} ELSE lower({cell}) END)"
    if column.name == "ethnic_category":
        upper = f"upper({cell})"
        aliased = " ".join(
            f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in contract.ETHNIC_ALIASES.items()
        )
        upper = f"(CASE {upper} {aliased} ELSE {upper} END)"
        known = ", ".join(_literal(c) for c in contract.ETHNIC_CATEGORIES)
        return (
            f"(CASE WHEN {upper} NOT IN ({known}) AND length({upper}) = 2 "
            f"THEN substr({upper}, 1, 1) ELSE {upper} END)"
        )
    if column.name in ("age_band", "imd_edition"):
        return cell
    return f"lower({cell})"


def _column_check(column: Column, cell: str) -> tuple[str | None, str]:
    """(the condition that a non-blank cell is invalid or None, its parsed value)."""
    if column.kind == "date":
        ok = _date_ok(cell)
        _, year, month, day = _date_parts(cell)
        return (
            f"NOT {ok}",
            f"CASE WHEN {cell} <> '' AND {ok} THEN make_date({year}, {month}, {day}) END",
        )
    if column.kind == "code":
        normal = _normalised_code(column, cell)
        allowed = ", ".join(_literal(c) for c in column.allowed or ())
        bad = f"{normal} NOT IN ({allowed})" if allowed else "TRUE"
        return bad, f"CASE WHEN {cell} <> '' AND NOT ({bad}) THEN {normal} END"
    if column.pattern:
        bad = f"NOT regexp_matches({cell}, {_literal('^(?:' + column.pattern + ')$')})"
        return bad, f"CASE WHEN {cell} <> '' AND NOT ({bad}) THEN {cell} END"
    return None, f"CASE WHEN {cell} <> '' THEN {cell} END"


def _stripped(cell: str) -> str:
    """``str.strip()`` of a cell, NULL read as blank (a pattern RE2 and Java read alike)."""
    edges = f"^[{_WHITESPACE_CLASS}]+|[{_WHITESPACE_CLASS}]+$"
    return f"regexp_replace(COALESCE({cell}, ''), '{edges}', '', 'g')"


def _nhs_digits(cell: str) -> str:
    """``identifiers.normalise_nhs_number``: whitespace and hyphens removed."""
    return f"regexp_replace({cell}, '[{_WHITESPACE_CLASS}-]', '', 'g')"


def _nhs_valid(digits: str) -> str:
    """``identifiers.is_valid_nhs_number`` in SQL: ten ASCII digits passing Modulus 11."""
    total = " + ".join(
        f"CAST(substr({digits}, {k}, 1) AS INTEGER) * {11 - k}" for k in range(1, 10)
    )
    check = f"(11 - ({total}) % 11) % 11 = CAST(substr({digits}, 10, 1) AS INTEGER)"
    return f"(CASE WHEN regexp_matches({digits}, '^[0-9]{{10}}$') THEN {check} ELSE FALSE END)"


@dataclass(frozen=True)
class StreamResult:
    """What :func:`validate_streamed` gives: the table, rows read, the exclusions found.

    ``exclusions`` has ``row, column, value, reason`` as the pandas path records them
    (values not yet withheld: :class:`spimpact.linkage.Collector` does that).
    """

    table: StreamedTable
    n_read: int
    exclusions: pd.DataFrame


@dataclass(frozen=True)
class _Job:
    spec: TableSpec
    columns: list[str]
    source_name: str
    key: str | None
    known_ids: set[str]
    target: Path
    staging: Path


def validate_streamed(
    spec: TableSpec,
    source: StreamSource,
    columns: list[str],
    *,
    engine: str,
    key: str | None,
    known_ids: set[str],
    cache_dir: Path,
    file_name: str,
) -> StreamResult:
    """Run the contract checks of ``spec`` on ``source`` in SQL; write the validated rows.

    ``columns`` are the contract columns the file has (its other columns are not
    read). ``known_ids`` are the keys an appointment's patient may have (client and
    comparison-pool keys). The validated rows go to ``cache_dir / file_name``; the
    source is staged (as text Parquet with its line numbers, in a private folder removed
    afterwards) when the engine cannot read it directly: a CSV file, or any file on
    Spark. Raises :class:`StreamFallback` when the file cannot be streamed.
    """
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="staging-") as staging:
        job = _Job(spec, columns, source.path.name, key, known_ids, cache_dir / file_name,
                   Path(staging))  # fmt: skip
        raw = job.staging / "raw.parquet"
        with connect("duckdb") as local:
            if source.kind == "csv":
                _stage_csv(source, columns, raw)
            elif engine == "duckdb":
                return _check(local, _raw_parquet_sql(local, source, columns), job)
            else:
                local.to_parquet(_raw_parquet_sql(local, source, columns), raw)
        with connect(engine) as connection:
            connection.register_file("raw_source", raw)
            return _check(connection, "SELECT * FROM raw_source", job)


def _check(connection, raw_sql: str, job: _Job) -> StreamResult:
    """The checks on the text rows ``raw_sql`` selects (``source_row`` and the columns)."""
    spec, columns = job.spec, job.columns
    trimmed = ", ".join(f"{_stripped(_quote(c))} AS {_quote(c)}" for c in columns)
    connection.execute(
        f"CREATE TEMP VIEW cells AS SELECT source_row, {trimmed} FROM ({raw_sql}) AS raw"
    )
    checks, parsed = [], {}
    for column in spec.columns:
        if column.name not in columns or column.name == "nhs_number":
            continue
        cell = _quote(column.name)
        bad, parsed[column.name] = _column_check(column, cell)
        if bad is not None:
            reason = f"expected {column.expectation()}"
            if column.kind == "date":
                reason += " (impossible or malformed date)"
            checks.append((f"{cell} <> '' AND {bad}", column.name, cell, reason))
        if column.required:
            checks.append((f"{cell} = ''", column.name, "''", _MISSING))
    person = spec.person_key
    join = ""
    if "nhs_number" in columns:
        checks.append((f"\"nhs_number\" <> '' AND NOT {_nhs_valid(_nhs_digits('nhs_number'))}",
                       "nhs_number", _literal(WITHHELD), _INVALID_NHS))  # fmt: skip
        if not _has_person_key(connection, parsed.get(person)):
            if spec.name != "feedback":
                checks.append(("\"nhs_number\" = ''", "nhs_number", "''", _MISSING))
            _register_pseudonyms(connection, job)
            parsed[person] = "pseudonyms.pseudonym"
            join = f"LEFT JOIN pseudonyms ON pseudonyms.digits = {_nhs_digits('cells.nhs_number')}"
    order = [c.name for c in spec.columns if c.name in parsed]
    if person in parsed and person not in columns:
        order.remove(person)
        order.append(person)  # a key made from NHS numbers comes last, as in pandas
    selected = ", ".join(f"{parsed[c]} AS {_quote(c)}" for c in order)
    connection.execute(
        f"CREATE TEMP VIEW parsed AS SELECT cells.source_row, {selected} FROM cells {join}"
    )
    queries = [
        f"SELECT source_row AS excluded_row, {_literal(name)} AS column_name, {value} AS value, "
        f"{_literal(reason)} AS reason FROM cells WHERE {condition}"
        for condition, name, value, reason in checks
    ]
    if spec.name == "gp_appointments" and person in order:
        queries.append(_orphan_query(connection, person, job.known_ids))
    exclusions = (
        connection.df(" UNION ALL ".join(queries) + " ORDER BY excluded_row, column_name")
        if queries
        else pd.DataFrame(columns=["excluded_row", "column_name", "value", "reason"])
    ).rename(columns={"excluded_row": "row", "column_name": "column"})
    n_read = int(connection.df("SELECT count(*) AS n FROM cells")["n"].iloc[0])
    excluded = pd.DataFrame({"row": np.unique(exclusions["row"].to_numpy(dtype="int64"))})
    connection.register_frame("excluded_rows", excluded)
    written = job.staging / "validated.parquet"
    connection.to_parquet(
        "SELECT parsed.* FROM parsed LEFT JOIN excluded_rows "
        "ON excluded_rows.row = parsed.source_row WHERE excluded_rows.row IS NULL",
        written,
    )
    _replace(written, job.target)
    path = job.target / "*.parquet" if job.target.is_dir() else job.target
    dates = tuple(c for c in order if spec.column(c).kind == "date")
    table = StreamedTable(path, n_read - len(excluded), ("source_row", *order), dates)
    return StreamResult(table, n_read, exclusions)


def _has_person_key(connection, parsed_key: str | None) -> bool:
    """Whether the person-key column holds a valid value anywhere.

    If it does, NHS numbers are only checked, as in ``io._pseudonymise_key_column``.
    """
    if parsed_key is None:
        return False
    found = connection.df(f"SELECT count(*) AS n FROM cells WHERE ({parsed_key}) IS NOT NULL")
    return bool(found["n"].iloc[0])


def _register_pseudonyms(connection, job: _Job) -> None:
    """Table ``pseudonyms`` (``digits, pseudonym``) of every distinct valid NHS number.

    The keyed HMAC runs in Python once per distinct number (a patient has many
    appointments), so the key never enters the SQL text.
    """
    if not job.key:
        raise DataValidationError(
            [
                f"{job.source_name}: NHS numbers must be pseudonymised on load but no key "
                "was given (set the environment variable named by params "
                "'pseudonym_key_env', SPIMPACT_PSEUDONYM_KEY by default)"
            ]
        )
    digits = _nhs_digits("nhs_number")
    numbers = connection.df(
        f"SELECT DISTINCT {digits} AS digits FROM cells "
        f"WHERE nhs_number <> '' AND {_nhs_valid(digits)}"
    )["digits"].astype(str)
    frame = pd.DataFrame(
        {"digits": numbers, "pseudonym": [pseudonymise(n, job.key) for n in numbers]},
        dtype=object,
    )
    connection.register_frame("pseudonyms", frame)


def _orphan_query(connection, person: str, known_ids: set[str]) -> str:
    """Appointments of patients neither a client nor in the comparison pool."""
    known = pd.DataFrame({"id": sorted(str(i) for i in known_ids)}, dtype=object)
    connection.register_frame("known_ids", known)
    key = f"parsed.{_quote(person)}"
    return (
        f"SELECT parsed.source_row AS excluded_row, {_literal(person)} AS column_name, "
        f"{key} AS value, {_literal(_UNKNOWN_PATIENT)} AS reason "
        f"FROM parsed LEFT JOIN known_ids ON known_ids.id = {key} "
        f"WHERE {key} IS NOT NULL AND known_ids.id IS NULL"
    )


def _replace(written: Path, target: Path) -> None:
    """Move ``written`` (file or Spark folder) to ``target``, replacing what is there."""
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    os.replace(written, target)


def cache_name(path: Path, *parts: str) -> str:
    """A deterministic file name for the validated rows of ``path`` under ``parts``."""
    stat = Path(path).stat()
    digest = hashlib.sha256()
    for part in (str(Path(path).resolve()), str(stat.st_size), str(stat.st_mtime_ns), *parts):
        digest.update(part.encode("utf-8") + b"\0")
    return f"{Path(path).stem}-{digest.hexdigest()[:24]}.parquet"


def key_fingerprint(key: str | None) -> str:
    """A value that changes with the pseudonym key without revealing it."""
    if not key:
        return ""
    return hmac.new(key.encode("utf-8"), b"spimpact validated cache", "sha256").hexdigest()


def default_cache_dir() -> Path:
    """``<system temp>/spimpact-<user>/validated``: outside every publishable folder."""
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"spimpact-{user}" / "validated"


def raw_distinct(path: Path, columns: Iterable[str]) -> pd.DataFrame:
    """Distinct raw text of ``columns`` of a large table file, one column each (NaN padded).

    For the privacy scan of a streamed table: the identifiers as written in the input,
    without reading the file into pandas. Raises :class:`StreamFallback` for a file that
    cannot be streamed (read it with ``read_table`` instead).
    """
    source = plan_stream(Path(path), 0)
    if source is None:
        raise StreamFallback(f"{Path(path).name}: not a CSV or Parquet file with data rows")
    wanted = [c for c in columns if c in source.header]
    if source.kind == "csv":
        found: dict[str, set] = {c: set() for c in wanted}
        for table in _csv_tables(source, wanted):
            for column in wanted:
                found[column].update(pc.unique(table.column(column)).to_pylist())
        values = {c: sorted(v) for c, v in found.items()}
    else:
        with connect("duckdb") as connection:
            sql = _raw_parquet_sql(connection, source, wanted)
            values = {
                c: connection.df(f"SELECT DISTINCT {_quote(c)} AS v FROM ({sql}) ORDER BY v")[
                    "v"
                ].tolist()
                for c in wanted
            }
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in values.items()})
