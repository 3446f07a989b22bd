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

from spimpact.contract import STREAM_MIN_ROWS, STREAMABLE_TABLES, TableSpec
from spimpact.contract_sql import SQL_KINDS, TableCheck, check_table, quote
from spimpact.engine import connect, sql_path
from spimpact.readers import _BOM, DataValidationError, _name_columns, _sniff_delimiter

__all__ = [
    "STREAM_MIN_ROWS",
    "STREAMABLE_TABLES",
    "StreamFallback",
    "StreamSource",
    "StreamedTable",
    "load_streamed",
    "plan_stream",
    "validate_streamed",
]

_CHUNK = 16 * 1024 * 1024
# DuckDB's memory while it checks a table: with the small tables in pandas and Python
# itself, a process stays under 4 GB (issue 14's target); beyond it DuckDB spills to disk.
MEMORY_LIMIT = "2GB"
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")


class StreamFallback(Exception):
    """The file cannot be streamed with exact source lines; the message says why."""


@dataclass(frozen=True)
class StreamSource:
    """A table file planned for streaming: its path, format and header.

    ``header`` holds the column names as :func:`spimpact.readers.read_table` gives them
    (stripped, lower-cased), in file order; ``parquet_names`` a Parquet file's own
    names, in the same order; ``delimiter`` a CSV file's.
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
        select = ", ".join(quote(c) for c in names)
        frame = self._query(f"SELECT {select} FROM validated ORDER BY source_row")
        for name in names:
            if name in self.dates:
                frame[name] = pd.to_datetime(frame[name]).astype("datetime64[ns]")
            elif name != "source_row":
                frame[name] = frame[name].astype(object).where(frame[name].notna(), np.nan)
        return frame

    def distinct(self, column: str) -> list:
        """The distinct non-missing values of ``column``, sorted."""
        name = quote(column)
        frame = self._query(
            f"SELECT DISTINCT {name} AS v FROM validated WHERE {name} IS NOT NULL ORDER BY v"
        )
        return frame["v"].tolist()

    def percent_present(self, column: str) -> float:
        """Percentage of rows with a value in ``column``."""
        if self.empty:
            return float("nan")
        present = self._query(f"SELECT count({quote(column)}) AS n FROM validated")["n"].iloc[0]
        return float(present) / self.n_rows * 100

    def latest(self, column: str) -> pd.Timestamp | None:
        """The latest date in ``column`` (None when it has none)."""
        value = self._query(f"SELECT max({quote(column)}) AS v FROM validated")["v"].iloc[0]
        return None if pd.isna(value) else pd.Timestamp(value)


def table_streamable(spec: TableSpec) -> bool:
    """Whether every column of ``spec`` is of a kind the SQL checks cover."""
    return spec.name in STREAMABLE_TABLES and all(
        c.kind in SQL_KINDS or c.name == "nhs_number" for c in spec.columns
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
    column = quote(name)
    if duck_type == "VARCHAR":
        return f"COALESCE({column}, '')"
    if duck_type in ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
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
    cells = [f"{_parquet_text(own[c], types[own[c]])} AS {quote(c)}" for c in columns]
    return f"SELECT file_row_number + 1 AS source_row, {', '.join(cells)} FROM parquet_source"


@dataclass(frozen=True)
class StreamResult:
    """What :func:`validate_streamed` gives: the table, rows read, the exclusions found.

    ``exclusions`` has ``row, column, value, reason`` as the pandas path records them
    (values not yet withheld: :class:`spimpact.linkage.Collector` does that).
    """

    table: StreamedTable
    n_read: int
    exclusions: pd.DataFrame


def validate_streamed(
    job: TableCheck, source: StreamSource, *, engine: str, cache_dir: Path, file_name: str
) -> StreamResult:
    """Run the contract checks ``job`` describes on ``source`` in SQL on ``engine``.

    The validated rows go to ``cache_dir / file_name`` (replaced). The source is staged
    first (as text Parquet with its line numbers, in a private folder removed
    afterwards) when the engine cannot read it directly: a CSV file, or any file on
    Spark. Raises :class:`StreamFallback` when the file cannot be streamed.
    """
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="staging-") as staging:
        raw, written = Path(staging) / "raw.parquet", Path(staging) / "validated.parquet"
        with _duckdb(staging) as local:
            if source.kind == "csv":
                _stage_csv(source, job.columns, raw)
            elif engine == "duckdb":
                checked = check_table(
                    local, _raw_parquet_sql(local, source, job.columns), job, written
                )
            else:
                local.to_parquet(_raw_parquet_sql(local, source, job.columns), raw)
        if source.kind == "csv" or engine != "duckdb":
            with _duckdb(staging) if engine == "duckdb" else connect(engine) as connection:
                connection.register_file("raw_source", raw)
                checked = check_table(connection, "SELECT * FROM raw_source", job, written)
        target = cache_dir / file_name
        _replace(written, target)
    _remove_older(target)
    path = target / "*.parquet" if target.is_dir() else target
    table = StreamedTable(path, checked.n_used, checked.columns, checked.dates)
    return StreamResult(table, checked.n_read, checked.exclusions)


def _duckdb(staging: str):
    """A DuckDB connection held to :data:`MEMORY_LIMIT`, spilling into ``staging``."""
    connection = connect("duckdb", memory_limit=MEMORY_LIMIT)
    connection.execute(f"SET temp_directory = '{sql_path(Path(staging) / 'spill')}'")
    return connection


def load_streamed(spec: TableSpec, source: StreamSource, tables: dict, key, engine: str, out):
    """Check a streamed table in SQL, beside the tables pandas has already parsed.

    The patient keys of ``clients`` and ``comparison_pool`` (parsed, in ``tables``)
    are the keys an appointment may have. The exclusions go to ``out`` (a
    :class:`spimpact.linkage.Collector`, which withholds identifying values). Returns
    the :class:`StreamResult` and the file's columns outside the contract (not read).
    Raises ``DataValidationError`` for a header the contract refuses,
    :class:`StreamFallback` as :func:`validate_streamed` does.
    """
    problems = spec.header_problems(source.header, source.path.name)
    if problems:
        raise DataValidationError(problems)
    known = set()
    for name, column in (("clients", "client_id"), ("comparison_pool", "patient_id")):
        if name in tables:
            known |= set(tables[name][column].dropna())
    columns = [c for c in source.header if c in spec.names]
    job = TableCheck(spec, columns, source.path.name, key, known)
    ids = hashlib.sha256("\n".join(sorted(map(str, known))).encode("utf-8")).hexdigest()
    result = validate_streamed(
        job,
        source,
        engine=engine,
        cache_dir=default_cache_dir(),
        file_name=cache_name(source.path, engine, key_fingerprint(key), ids),
    )
    excluded = result.exclusions
    out.add(excluded["row"], excluded["column"], excluded["value"], excluded["reason"])
    return result, [c for c in source.header if c not in spec.names]


def _replace(written: Path, target: Path) -> None:
    """Move ``written`` (file or Spark folder) to ``target``, replacing what is there."""
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    os.replace(written, target)


def cache_name(path: Path, *parts: str) -> str:
    """A deterministic file name for the validated rows of ``path`` under ``parts``.

    ``<stem>-<source>-<input>-<options>.parquet``: ``source`` names the input file (its
    full path), ``input`` its size and modification time, ``options`` the ``parts``
    (engine, key, patients).
    """
    stat = Path(path).stat()

    def digest(*values: str) -> str:
        return hashlib.sha256("\0".join(values).encode("utf-8")).hexdigest()[:16]

    source = digest(str(Path(path).resolve()))
    version = digest(str(stat.st_size), str(stat.st_mtime_ns))
    return f"{Path(path).stem}-{source}-{version}-{digest(*parts)}.parquet"


def _remove_older(target: Path) -> None:
    """Remove the validated rows of earlier versions of the same input file.

    Each refresh of a large extract would otherwise leave its validated copy behind.
    Copies of the current version under other options (another engine or key) stay:
    a scheme loaded from them may still be in use.
    """
    stem, source, version, _ = target.name.rsplit("-", 3)
    for older in target.parent.glob(f"{stem}-{source}-*.parquet"):
        if older.name.rsplit("-", 3)[2] == version:
            continue
        if older.is_dir():
            shutil.rmtree(older, ignore_errors=True)
        else:
            older.unlink(missing_ok=True)


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
                c: connection.df(f"SELECT DISTINCT {quote(c)} AS v FROM ({sql}) ORDER BY v")[
                    "v"
                ].tolist()
                for c in wanted
            }
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in values.items()})
