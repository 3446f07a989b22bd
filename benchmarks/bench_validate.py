"""Benchmark: validating a large GP appointment table, streamed, against a plain DuckDB scan.

A scaled synthetic scheme (``spimpact example-data --scale``, Parquet) is validated
four ways, each in its own process, with the peak resident memory of the process tree
sampled every 0.1 s:

* ``stream``: the GP appointments only, through ``spimpact.streaming.load_streamed``
  (the SQL checks of the data contract, exclusions with their lines, validated rows to
  Parquet), on DuckDB;
* ``plain``: one hand-written DuckDB query over the same file doing the same checks
  (dates, codes, identifiers, required values, unknown patients) and writing the
  rows that pass: the floor a streamed validation can be held to;
* ``load``: ``load_scheme`` of the whole scheme (small tables in pandas, the
  appointments streamed);
* ``validate``: the ``spimpact validate`` command on the scheme.

``--copies K`` writes the appointments K times over (the same patients' appointments
repeated), so that tens of millions of rows can be validated without simulating
hundreds of thousands of clients in memory.

Usage::

    nice python benchmarks/bench_validate.py                      # 2,000 clients (~150k rows)
    nice python benchmarks/bench_validate.py --clients 65000      # ~5 million rows
    nice python benchmarks/bench_validate.py --clients 65000 --copies 10   # ~50 million rows

``--format csv`` writes the appointments as CSV; ``--bad-percent P`` gives P% of them an
impossible date; ``--stages ... spark`` adds the streamed validation on Spark ``local[2]``.

Targets (issue 14): peak memory under 4 GB and ``stream`` within 3 times ``plain``.
Measured on 2026-12-01 (2 shared cores, load average 4-7, one run each), 65,000 clients
x 10 = 48.9 million rows: Parquet: plain 22.9 s, stream 54.4 s (2.4x), load 59.0 s,
validate 47.9 s, peak 0.85 GB; CSV with 5% bad rows: plain 91.3 s, stream 140.1 s
(1.5x), load 147.2 s, validate 85.6 s, peak 2.6 GB; Parquet with 5% bad rows (load
average 3): plain 9.7 s, stream 26.6 s (2.8x), Spark 40.2 s (session start included),
peak 1.9 GB (docs/scale.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from process_peak import run_with_peak

KEY = "benchmark-key"
TARGET_PEAK_MB = 4096
TARGET_RATIO = 3.0
STAGES = ("plain", "stream", "load", "validate", "spark")


def prepare(root: Path, clients: int, copies: int, file_format: str, bad_percent: int) -> Path:
    """The scaled scheme (written once per size), its appointments ``copies`` times over.

    ``bad_percent`` of the appointment rows get an impossible date (2024-02-30), so that
    the exclusions path carries weight too; ``file_format`` is parquet or csv.
    """
    from spimpact.synthetic.scaled import write_scaled_scheme

    folder = root / f"scale_{clients}_x{copies}_{file_format}_bad{bad_percent}"
    target = folder / f"gp_appointments.{file_format}"
    if target.exists():
        return folder
    single = root / f"scale_{clients}"
    if not (single / "gp_appointments.parquet").exists():
        write_scaled_scheme(root, clients)
    folder.mkdir(parents=True, exist_ok=True)
    for path in single.iterdir():
        if path.name != "gp_appointments.parquet" and not (folder / path.name).exists():
            shutil.copyfile(path, folder / path.name)
    import duckdb

    source = single / "gp_appointments.parquet"
    date = (
        f"CASE WHEN hash(a.patient_id, a.appointment_date, copy.range) % 100 < {bad_percent} "
        "THEN '2024-02-30' ELSE a.appointment_date END AS appointment_date"
    )
    options = "FORMAT PARQUET" if file_format == "parquet" else "FORMAT CSV, HEADER"
    duckdb.sql(
        f"COPY (SELECT a.* REPLACE ({date}) FROM read_parquet('{source}') AS a, "
        f"range({copies}) AS copy) TO '{target}' ({options})"
    )
    return folder


def plain_sql(folder: Path, output: Path) -> str:
    """The same checks as the data contract's, written by hand for this file's columns."""
    from spimpact import contract

    def codes(values) -> str:
        return ", ".join(f"'{v}'" for v in values)

    date = "try_strptime(appointment_date, '%Y-%m-%d')"
    csv = folder / "gp_appointments.csv"
    reader = (
        f"read_csv('{csv}', header = true, all_varchar = true)"
        if csv.exists()
        else f"read_parquet('{folder / 'gp_appointments.parquet'}')"
    )
    return f"""
    COPY (
        WITH known AS (
            SELECT client_id AS id FROM read_parquet('{folder / "clients.parquet"}')
            UNION SELECT patient_id FROM read_parquet('{folder / "comparison_pool.parquet"}')
        ),
        cells AS (
            SELECT trim(patient_id) AS patient_id, trim(appointment_date) AS appointment_date,
                   lower(trim(staff_role)) AS staff_role, lower(trim(mode)) AS mode,
                   lower(trim(status)) AS status, trim(slot_category) AS slot_category
            FROM {reader}
        )
        SELECT cells.patient_id, CAST({date} AS DATE) AS appointment_date, staff_role, mode,
               status, nullif(slot_category, '') AS slot_category
        FROM cells JOIN known ON known.id = cells.patient_id
        WHERE regexp_full_match(cells.patient_id, '[A-Za-z0-9_\\-]{{1,64}}')
          AND {date} IS NOT NULL
          AND staff_role IN ({codes(contract.STAFF_ROLES)})
          AND mode IN ({codes(contract.MODES)})
          AND status IN ({codes(contract.APPOINTMENT_STATUSES)})
    ) TO '{output}' (FORMAT PARQUET)
    """


def stage(name: str, folder: Path) -> dict:
    """Run one stage; its wall time and what it found."""
    import duckdb

    from spimpact.contract import TABLES
    from spimpact.io import load_scheme
    from spimpact.linkage import Collector
    from spimpact.readers import read_table
    from spimpact.streaming import load_streamed, plan_stream

    start = time.perf_counter()
    if name == "plain":
        output = Path(tempfile.mkdtemp()) / "plain.parquet"
        duckdb.sql(plain_sql(folder, output))
        n_used = duckdb.sql(f"SELECT count(*) FROM read_parquet('{output}')").fetchall()[0][0]
        result = {"n_used": n_used}
    elif name in ("stream", "spark"):
        tables = {t: read_table(folder / f"{t}.parquet") for t in ("clients", "comparison_pool")}
        tables = {t: frame.replace("", None) for t, frame in tables.items()}
        engine = "spark" if name == "spark" else "duckdb"
        if engine == "spark":
            from spimpact.engine import spark_session

            spark_session("local[2]", {"spark.driver.memory": "2g"})
        path = next(folder.glob("gp_appointments.*"))
        source = plan_stream(path, 0)
        out = Collector("gp_appointments", "gp_appointments.parquet")
        streamed, _ = load_streamed(TABLES["gp_appointments"], source, tables, KEY, "duckdb", out)
        result = {"n_read": streamed.n_read, "n_used": len(streamed.table),
                  "n_exclusions": len(streamed.exclusions)}  # fmt: skip
    elif name == "load":
        scheme = load_scheme(folder, pseudonym_key=KEY)
        rows = scheme.reconciliation.set_index("table").loc["gp_appointments"]
        result = {"n_read": int(rows["n_read"]), "n_used": int(rows["n_used"]),
                  "streamed": scheme.streaming["streamed"].tolist()}  # fmt: skip
    else:
        command = [sys.executable, "-m", "spimpact.cli", "validate", str(folder)]
        env = {**os.environ, "SPIMPACT_PSEUDONYM_KEY": KEY}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        result = {"streamed": "streamed (duckdb)" in done.stdout}
    result["seconds"] = time.perf_counter() - start
    return result


def run_measured(name: str, folder: Path) -> dict:
    """Run one stage in a child process; its tree's peak RSS sampled every 0.1 s."""
    done = run_with_peak([sys.executable, __file__, "--stage", name, "--folder", str(folder)])
    if done.returncode:
        raise RuntimeError(f"stage {name} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    run["peak_rss_mb"] = done.peak_bytes / 2**20
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "bench_validate")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--bad-percent", type=int, default=0)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES[:4]))
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.folder)))
        return
    started = time.perf_counter()
    folder = prepare(args.root, args.clients, args.copies, args.format, args.bad_percent)
    import duckdb

    path = next(folder.glob("gp_appointments.*"))
    n_rows = duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]
    print(f"{n_rows:,} appointment rows ({args.clients:,} clients x {args.copies}); "
          f"data ready in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    results = {}
    for name in args.stages:
        results[name] = run = run_measured(name, folder)
        shown = {k: v for k, v in run.items() if k not in ("seconds", "peak_rss_mb")}
        print(f"{name:9s} {run['seconds']:7.1f} s  peak RSS {run['peak_rss_mb']:6.0f} MB  {shown}",
              flush=True)  # fmt: skip
    if "plain" in results and "stream" in results:
        ratio = results["stream"]["seconds"] / results["plain"]["seconds"]
        peak = max(r["peak_rss_mb"] for r in results.values())
        print(f"stream / plain time {ratio:.2f} (target <= {TARGET_RATIO}); largest peak RSS "
              f"{peak:.0f} MB (target < {TARGET_PEAK_MB})")  # fmt: skip


if __name__ == "__main__":
    main()
