"""Where the project's SQL runs: DuckDB (embedded, the default) or Spark.

The SQL is written once, in DuckDB's dialect. For Spark it is transpiled by SQLGlot in
:func:`to_dialect`, the one place dialect differences are handled, so there are never two
hand-kept copies of a query. :func:`connect` gives a :class:`Connection` with the same few
verbs on either engine: register a pandas frame or a CSV/Parquet file as a table, run a
statement, fetch a result as pandas, write a result to Parquet.

Spark is optional (``pip install 'spimpact[spark]'`` and a Java runtime). With no Spark
settings, :func:`spark_session` reuses the active session (as on Databricks) or starts a
local one whose master comes from the argument, then ``SPARK_MASTER``, then ``local[2]``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = ("duckdb", "spark")
SOURCE_DIALECT = "duckdb"
SPARK_DIALECT = "spark"
DEFAULT_SPARK_MASTER = "local[2]"


def check_engine(engine: str) -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`, else raise a clear ``ValueError``.

    >>> check_engine("spark")
    'spark'
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


@functools.lru_cache(maxsize=256)
def to_dialect(sql: str, engine: str) -> str:
    """Return ``sql`` (DuckDB's dialect) as the engine runs it; Spark SQL via SQLGlot.

    >>> to_dialect("SELECT CAST(x AS VARCHAR) AS y FROM t", "spark")
    'SELECT CAST(x AS STRING) AS y FROM t'
    >>> to_dialect("SELECT 1", "duckdb")
    'SELECT 1'
    """
    check_engine(engine)
    if engine == "duckdb":
        return sql
    import sqlglot

    statements = sqlglot.transpile(
        sql, read=SOURCE_DIALECT, write=SPARK_DIALECT, unsupported_level=sqlglot.ErrorLevel.RAISE
    )
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def spark_session(master: str | None = None, config: dict[str, str] | None = None):
    """The Spark session to run on: the active one, or a new one on ``master``.

    An active session (Databricks, or one the caller built) is used as it is when no
    ``master`` is given. Otherwise a session is built on ``master``, else the
    ``SPARK_MASTER`` environment variable, else ``local[2]``, with the session time
    zone UTC (dates never shift), Arrow transfers to pandas, and ``config`` on top.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "engine 'spark' needs PySpark and a Java runtime: pip install 'spimpact[spark]' "
            "(and e.g. Debian's default-jre-headless)"
        ) from error
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    master = master or os.environ.get("SPARK_MASTER") or DEFAULT_SPARK_MASTER
    builder = (
        SparkSession.builder.master(master)
        .appName("spimpact")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local"):
        # a handful of shuffle partitions suits one machine; a cluster keeps its own default
        builder = builder.config("spark.sql.shuffle.partitions", "8")
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    with _jvm_output_discarded():
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextlib.contextmanager
def _jvm_output_discarded():
    """Start the JVM with its standard output and error on /dev/null.

    The JVM inherits the process's file descriptors 1 and 2; in a report kernel those
    are captured into the notebook, and Spark's start-up log names the host and its
    address, which must not reach a report. Errors still reach Python as exceptions.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def connect(
    engine: str = "duckdb", *, memory_limit: str | None = None, threads: int | None = None
) -> Connection:
    """A :class:`Connection` on ``engine``; DuckDB takes ``memory_limit`` and ``threads``."""
    check_engine(engine)
    if engine == "duckdb":
        return DuckDBConnection(memory_limit=memory_limit, threads=threads)
    return SparkConnection(spark_session())


def sql_path(path: str | Path) -> str:
    """``path`` as the inside of a single-quoted SQL string literal."""
    return str(path).replace("'", "''")


class Connection:
    """The verbs the project's SQL needs, on one engine (see :func:`connect`)."""

    engine: str

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Make ``frame`` readable as table ``name``."""
        raise NotImplementedError

    def register_file(self, name: str, path: str | Path) -> None:
        """Make a CSV (every column text) or Parquet file readable as table ``name``."""
        raise NotImplementedError

    def columns(self, name: str) -> list[str]:
        """The column names of table ``name``."""
        raise NotImplementedError

    def execute(self, sql: str) -> None:
        """Run one statement written in DuckDB's dialect (e.g. ``CREATE TEMP VIEW``)."""
        raise NotImplementedError

    def df(self, sql: str) -> pd.DataFrame:
        """The result of one query (DuckDB's dialect) as a pandas frame."""
        raise NotImplementedError

    def fetchone(self, sql: str) -> tuple:
        """The first row of one query's result."""
        frame = self.df(sql)
        return tuple(frame.iloc[0]) if len(frame) else ()

    def to_parquet(self, sql: str, path: Path) -> Path:
        """Write the result of one query to Parquet at ``path`` and return the path."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the connection holds."""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DuckDBConnection(Connection):
    """An embedded, in-memory DuckDB database."""

    engine = "duckdb"

    def __init__(self, *, memory_limit: str | None = None, threads: int | None = None):
        import duckdb

        config = {} if memory_limit is None else {"memory_limit": memory_limit}
        self.connection = duckdb.connect(config=config)
        if threads is not None:
            self.connection.execute(f"SET threads = {int(threads)}")

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:  # noqa: D102
        self.connection.register(name, frame)

    def register_file(self, name: str, path: str | Path) -> None:  # noqa: D102
        self.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM {_duckdb_reader(path)}")

    def columns(self, name: str) -> list[str]:  # noqa: D102
        return [row[0] for row in self.connection.execute(f"DESCRIBE {name}").fetchall()]

    def execute(self, sql: str) -> None:  # noqa: D102
        self.connection.execute(sql)

    def df(self, sql: str) -> pd.DataFrame:  # noqa: D102
        return self.connection.execute(sql).df()

    def fetchone(self, sql: str) -> tuple:  # noqa: D102
        return self.connection.execute(sql).fetchone()

    def df_by_batches(self, sql: str, *, batch_rows: int = 1_000_000) -> pd.DataFrame:
        """The result as a frame collected batch by batch, never whole inside DuckDB.

        With a ``memory_limit`` and a temporary directory, DuckDB spills a large sort to
        disk and streams its result, so the frame is the only full copy held in memory.
        """
        reader = self.connection.sql(sql).to_arrow_reader(batch_rows)
        parts: dict[str, list] = {name: [] for name in reader.schema.names}
        for batch in reader:
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                parts[name].append(column.to_numpy(zero_copy_only=False))
        if not next(iter(parts.values()), []):
            return reader.schema.empty_table().to_pandas()
        # one column at a time, its batches freed as it is joined; copy=False keeps the
        # columns as they are rather than copying same-typed ones into one block
        columns = {name: np.concatenate(parts.pop(name)) for name in list(parts)}
        return pd.DataFrame(columns, copy=False)

    def to_parquet(self, sql: str, path: Path) -> Path:  # noqa: D102
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection.execute(f"COPY ({sql}) TO '{sql_path(path)}' (FORMAT PARQUET)")
        return path

    def close(self) -> None:  # noqa: D102
        self.connection.close()


class SparkConnection(Connection):
    """A Spark session of its own (temporary views never clash) on a shared SparkContext."""

    engine = "spark"

    def __init__(self, session):
        self.session = session.newSession()

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:  # noqa: D102
        self.session.createDataFrame(_arrow_ready(frame)).createOrReplaceTempView(name)

    def register_file(self, name: str, path: str | Path) -> None:  # noqa: D102
        path = Path(path)
        if path.suffix.lower() == ".csv":
            reader = self.session.read.csv(str(path), header=True, inferSchema=False)
        elif path.suffix.lower() == ".parquet" or "*" in path.name:
            reader = self.session.read.parquet(str(path))
        else:
            raise ValueError(f"expected a .csv or .parquet file, got {path}")
        reader.createOrReplaceTempView(name)

    def columns(self, name: str) -> list[str]:  # noqa: D102
        return list(self.session.table(name).columns)

    def execute(self, sql: str) -> None:  # noqa: D102
        self.session.sql(to_dialect(sql, "spark"))

    def df(self, sql: str) -> pd.DataFrame:  # noqa: D102
        return self.session.sql(to_dialect(sql, "spark")).toPandas()

    def to_parquet(self, sql: str, path: Path) -> Path:
        """Write the result as a Parquet dataset: a folder of part files at ``path``."""
        path = Path(path)
        self.session.sql(to_dialect(sql, "spark")).write.mode("overwrite").parquet(str(path))
        return path


def _duckdb_reader(path: str | Path) -> str:
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return f"read_csv('{sql_path(path)}', header = true, all_varchar = true)"
    if path.suffix.lower() == ".parquet" or "*" in path.name:
        return f"read_parquet('{sql_path(path)}')"
    raise ValueError(f"expected a .csv or .parquet file, got {path}")


def _arrow_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with dates as ``datetime.date`` and text as str, so Arrow types are exact.

    Timestamps would pass through the session time zone; an all-missing object column
    has no type Arrow can infer.
    """
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            frame[column] = values.dt.date.astype(object).where(values.notna(), None)
        elif values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            frame[column] = values.astype(object).where(values.notna(), None)
            if frame[column].isna().all():
                frame[column] = pd.array([None] * len(frame), dtype="string[pyarrow]")
    return frame
