"""Benchmark: the GP attendance panel against a plain DuckDB group-by of the same appointments.

Generates synthetic appointment records (Parquet) under ``benchmarks/_data/`` once, then times
two jobs, each in its own process so that peak memory (max RSS) is its own:

* ``baseline``: ``COPY (SELECT patient_id, month, COUNT(*) ... GROUP BY ...) TO parquet``;
* ``panel``: ``spimpact.analyses.attendance.panel.build_panel(..., output=...)``, Parquet in
  and out.

Usage::

    python benchmarks/bench_panel.py                    # quick: 2 million rows
    python benchmarks/bench_panel.py --rows 50000000    # the scale the target is set for

Target (checked, exit code 1 when missed, from 10 million rows up, where fixed start-up
costs no longer dominate): the panel within 2x of the baseline's wall time, peak memory
under 4 GB (DuckDB memory_limit set to 3GB for both jobs).

Measured on 2026-11-30 (2 shared cores, best of 2 runs, 50 million rows, 2.5 million people):
baseline 124.5 s, panel 176.4 s (ratio 1.42); peak RSS panel 1.75 GB, baseline 2.96 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from spimpact.analyses.attendance.panel import build_panel

DATA = Path(__file__).parent / "_data"
MEMORY_LIMIT = "3GB"
APPOINTMENTS_PER_PERSON = 20
TARGET_FROM_ROWS = 10_000_000


def generate(rows: int) -> tuple[Path, Path]:
    """Write ``rows`` appointments for rows / 20 people and their cohort (index dates)."""
    folder = DATA / f"panel_{rows}"
    appointments = folder / "appointments.parquet"
    cohort = folder / "cohort.parquet"
    if appointments.exists() and cohort.exists():
        return appointments, cohort
    folder.mkdir(parents=True, exist_ok=True)
    people = max(rows // APPOINTMENTS_PER_PERSON, 1)
    connection = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
    connection.execute("SELECT setseed(0.2026)")
    connection.execute(
        f"""
        COPY (
            SELECT
                'P' || lpad(CAST(hash(i) % {people} AS VARCHAR), 9, '0') AS patient_id,
                DATE '2021-01-01' + CAST(floor(random() * 1826) AS INTEGER) AS appointment_date,
                (['gp', 'gp', 'gp', 'nurse', 'other_clinical', 'admin',
                  'social_prescribing_link_worker'])[1 + CAST(floor(random() * 7) AS INTEGER)]
                    AS staff_role,
                (['face_to_face', 'face_to_face', 'telephone', 'video', 'online', 'home_visit'])
                    [1 + CAST(floor(random() * 6) AS INTEGER)] AS mode,
                (['attended', 'attended', 'attended', 'attended', 'dna', 'cancelled'])
                    [1 + CAST(floor(random() * 6) AS INTEGER)] AS status,
                CASE WHEN random() < 0.05 THEN 'Social Prescribing Service'
                     ELSE 'General Consultation Routine' END AS slot_category
            FROM range({rows}) AS t(i)
        ) TO '{appointments}' (FORMAT PARQUET)
        """
    )
    connection.execute(
        f"""
        COPY (
            SELECT
                'P' || lpad(CAST(i AS VARCHAR), 9, '0') AS patient_id,
                DATE '2022-01-01' + CAST(floor(random() * 1096) AS INTEGER) AS index_date,
                CASE WHEN random() < 0.3 THEN 1 ELSE 0 END AS treated
            FROM range({people}) AS t(i)
        ) TO '{cohort}' (FORMAT PARQUET)
        """
    )
    connection.close()
    return appointments, cohort


def run_baseline(appointments: Path, output: Path) -> None:
    connection = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
    connection.execute(
        f"""
        COPY (
            SELECT patient_id, date_trunc('month', appointment_date) AS month, COUNT(*) AS n
            FROM read_parquet('{appointments}')
            GROUP BY patient_id, date_trunc('month', appointment_date)
        ) TO '{output}' (FORMAT PARQUET)
        """
    )
    connection.close()


def run_panel(appointments: Path, cohort: Path, output: Path) -> None:
    build_panel(
        appointments,
        cohort,
        window_months=12,
        observed_from="2021-01-01",
        observed_until="2026-01-01",
        output=output,
        memory_limit=MEMORY_LIMIT,
    )


def stage(name: str, rows: int) -> dict:
    appointments, cohort = generate(rows)
    output = appointments.parent / f"{name}_out.parquet"
    start = time.perf_counter()
    if name == "baseline":
        run_baseline(appointments, output)
    else:
        run_panel(appointments, cohort, output)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    n_out = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{output}')").fetchall()[0][0]
    return {"stage": name, "seconds": seconds, "peak_rss_mb": peak_mb, "rows_out": n_out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each job; best is kept")
    parser.add_argument("--stage", choices=["baseline", "panel"])
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.rows)))
        return
    start = time.perf_counter()
    generate(args.rows)
    print(f"data: {args.rows:,} appointments ready in {time.perf_counter() - start:.1f} s")
    results: dict[str, dict] = {}
    # Alternate the jobs and keep each one's fastest run: other work on a shared machine
    # slows single runs at random.
    for _ in range(args.repeat):
        for name in ("baseline", "panel"):
            completed = subprocess.run(
                [sys.executable, __file__, "--rows", str(args.rows), "--stage", name],
                check=True,
                capture_output=True,
                text=True,
            )
            run = json.loads(completed.stdout.strip().splitlines()[-1])
            print(
                f"{name:8s} {run['seconds']:8.1f} s  peak RSS {run['peak_rss_mb']:8.0f} MB  "
                f"rows out {run['rows_out']:,}"
            )
            peak = max(run["peak_rss_mb"], results.get(name, run)["peak_rss_mb"])
            if name not in results or run["seconds"] < results[name]["seconds"]:
                results[name] = run
            results[name]["peak_rss_mb"] = peak  # the worst peak of all runs
    ratio = results["panel"]["seconds"] / results["baseline"]["seconds"]
    peak = results["panel"]["peak_rss_mb"]
    print(
        f"best of {args.repeat}: baseline {results['baseline']['seconds']:.1f} s, "
        f"panel {results['panel']['seconds']:.1f} s"
    )
    print(f"panel / baseline wall time: {ratio:.2f} (target <= 2); panel peak {peak:.0f} MB")
    if args.rows >= TARGET_FROM_ROWS and (ratio > 2 or peak > 4096):
        sys.exit(1)


if __name__ == "__main__":
    main()
