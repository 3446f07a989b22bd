"""The engine setting (``spimpact.engine``): one SQL source, transpiled for Spark in one place."""

import os

import pytest

from spimpact.analyses.attendance.panel import panel_query
from spimpact.engine import check_engine, connect, to_dialect


def test_unknown_engine_is_refused_by_name():
    with pytest.raises(ValueError, match="engine must be one of duckdb, spark, got 'polars'"):
        check_engine("polars")
    with pytest.raises(ValueError, match="got 'polars'"):
        connect("polars")


def test_panel_sql_transpiles_to_spark_sql():
    pytest.importorskip("sqlglot")
    sql = panel_query(window_months=12, observed_from="2020-01-01", observed_until="2024-01-01")
    spark_sql = to_dialect(sql, "spark")
    assert to_dialect(sql, "duckdb") == sql
    assert "LAST_DAY" in spark_sql.upper() and "VARCHAR" not in spark_sql.upper()
    view = to_dialect("CREATE TEMP VIEW v AS SELECT CAST(x AS VARCHAR) AS x FROM t", "spark")
    assert view == "CREATE TEMPORARY VIEW v AS SELECT CAST(x AS STRING) AS x FROM t"


def test_duckdb_connection_registers_frames_and_files(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": ["x", "y"], "n": [1, 2]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    with connect("duckdb", memory_limit="1GB", threads=1) as connection:
        connection.register_frame("f", frame)
        connection.register_file("c", tmp_path / "t.csv")
        assert connection.columns("c") == ["a", "n"]
        # CSV columns are text, as the validation reads them
        assert connection.fetchone("SELECT typeof(n) FROM c LIMIT 1") == ("VARCHAR",)
        assert connection.df("SELECT SUM(n) AS s FROM f")["s"].tolist() == [3]
        with pytest.raises(ValueError, match="expected a .csv or .parquet file"):
            connection.register_file("x", tmp_path / "t.xlsx")


def test_duckdb_result_collected_in_batches_is_the_whole_result():
    query = "SELECT i::INTEGER AS i, (i % 3)::TINYINT AS k, 'r' || i AS s FROM range(25) t(i)"
    with connect("duckdb") as connection:
        whole = connection.df(f"{query} ORDER BY i DESC")
        batched = connection.df_by_batches(f"{query} ORDER BY i DESC", batch_rows=7)
        empty = connection.df_by_batches(f"{query} WHERE i < 0", batch_rows=7)
    import pandas as pd

    pd.testing.assert_frame_equal(batched, whole)
    assert list(empty.columns) == ["i", "k", "s"] and len(empty) == 0


def test_run_engine_option_reaches_the_report_kernels_and_is_undone(monkeypatch):
    from spimpact import runner
    from spimpact.params import ENGINE_ENV

    monkeypatch.delenv(ENGINE_ENV, raising=False)
    with runner._engine_env("spark"):
        assert os.environ[ENGINE_ENV] == "spark"
    assert ENGINE_ENV not in os.environ


@pytest.mark.spark
def test_local_spark_session_prints_nothing(spark):
    """Spark's start-up log names the host and its address: none of it may reach a report."""
    import subprocess
    import sys

    script = (
        "from spimpact.engine import spark_session\n"
        "session = spark_session('local[1]')\n"
        "assert session.range(3).count() == 3\n"
        "session.stop()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout == "" and done.stderr == ""
