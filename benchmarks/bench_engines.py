"""Benchmark: the GP attendance panel on Spark ``local[2]`` against DuckDB, side by side.

The same synthetic appointments (Parquet, from ``bench_panel.generate``: rows / 20 people)
go through ``build_panel(..., output=...)`` on each engine, each job in its own process;
peak memory is the largest resident set of the job's process tree, sampled every 0.1 s
(for Spark: the Python driver and its JVM). Spark's time is split into session start-up
and the panel itself.

Usage::

    nice python benchmarks/bench_engines.py                        # 2 million rows
    nice python benchmarks/bench_engines.py --rows 2000000 10000000 50000000

Measured on 2026-12-01 (2 shared cores, load average 5-7, one run each):
2M rows: DuckDB 1.7 s, 0.4 GB; Spark 46.2 s (+ 11.5 s session start), 3.6 GB.
10M rows: DuckDB 9.3 s, 0.6 GB; Spark 99.1 s (+ 15.2 s), 6.4 GB.
50M rows: DuckDB 84.8 s, 1.7 GB; Spark 294.8 s (+ 21.8 s), 4.9 GB. Same panel row counts.

Nothing is checked (a comparison, not a target): DuckDB embedded is the engine for one
machine; Spark's numbers show its per-row cost for the cluster estimate in docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench_panel import generate
from process_peak import run_with_peak

MEMORY_LIMIT = "3GB"


def stage(engine: str, rows: int) -> dict:
    from spimpact.analyses.attendance.panel import build_panel
    from spimpact.engine import spark_session

    appointments, cohort = generate(rows)
    output = appointments.parent / f"engine_{engine}_out.parquet"
    start = time.perf_counter()
    if engine == "spark":
        spark_session("local[2]", {"spark.driver.memory": "4g"}).sparkContext.setLogLevel("ERROR")
    started = time.perf_counter()
    build_panel(
        appointments,
        cohort,
        window_months=12,
        observed_from="2021-01-01",
        observed_until="2026-01-01",
        output=output,
        memory_limit=MEMORY_LIMIT,
        engine=engine,
    )
    done = time.perf_counter()
    import duckdb

    pattern = f"{output}/*.parquet" if output.is_dir() else str(output)
    n_out = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{pattern}')").fetchall()[0][0]
    return {
        "engine": engine,
        "start_s": started - start,
        "panel_s": done - started,
        "rows_out": n_out,
    }


def run_measured(engine: str, rows: int) -> dict:
    """Run one stage in a child process; its tree's peak RSS sampled every 0.1 s."""
    done = run_with_peak([sys.executable, __file__, "--stage", engine, "--rows", str(rows)])
    if done.returncode:
        raise RuntimeError(f"{engine} stage failed ({done.returncode}):\n{done.stderr[-2000:]}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    run["peak_rss_mb"] = done.peak_bytes / 2**20
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000])
    parser.add_argument("--stage", choices=["duckdb", "spark"])
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.rows[0])))
        return
    for rows in args.rows:
        generate(rows)
        results = {engine: run_measured(engine, rows) for engine in ("duckdb", "spark")}
        for engine, run in results.items():
            print(
                f"{rows:>11,} rows  {engine:6s} panel {run['panel_s']:7.1f} s "
                f"(+ start {run['start_s']:5.1f} s)  peak RSS {run['peak_rss_mb']:6.0f} MB  "
                f"panel rows {run['rows_out']:,}",
                flush=True,
            )
        same = results["duckdb"]["rows_out"] == results["spark"]["rows_out"]
        ratio = results["spark"]["panel_s"] / results["duckdb"]["panel_s"]
        print(f"{rows:>11,} rows  spark / duckdb panel time {ratio:.2f}; same row count: {same}")


if __name__ == "__main__":
    main()
