"""Benchmark: a full scheme report as the scheme grows (issue 14's growth curve).

For each number of clients, a north_shore-like scheme is generated once with
``spimpact example-data --scale N`` (Parquet; ~75 GP appointment rows per client with its
comparison pool) under ``benchmarks/_data/scale/``, and a params file like
``params/north_shore.yaml`` is written for it. Then ``spimpact run PARAMS --force``
renders the report in a child process; its wall time and the peak resident memory of its
process tree (sampled every 0.2 s) are reported, with the time per 100,000 clients, and
the growth curve is plotted to ``benchmarks/_data/scale/growth.png``.

Usage::

    nice python benchmarks/bench_scale_report.py                       # quick: 10k and 20k
    nice python benchmarks/bench_scale_report.py --clients 50000 100000 250000 500000

Target (issue 14): 500,000 clients under 8 GB peak with the DuckDB engine on a 2-core,
24 GB machine. Generating a scheme is simulated in memory and is not part of the timing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import duckdb
from process_peak import run_with_peak

HERE = Path(__file__).parent
WORK = HERE / "_data" / "scale"
PARAMS = """\
scheme_id: scale_{n}
title: Synthetic scheme of {n:,} clients
data_dir: {data_dir}
seed: 101
engine: {engine}
measures:
  primary: swemwbs
  timepoints: {{0: Baseline, 1: 3 months, 2: 6 months}}
comparison:
  enabled: true
  ratio: 1
  window_months: 12
costs:
  gp_appointment_gbp: 48
  price_year: 2024/25
"""


def spimpact(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "spimpact"), *args]


def prepare(n: int, engine: str) -> tuple[Path, int]:
    """The scheme's params file (generating its data when missing) and its appointment rows."""
    folder = WORK / f"scale_{n}"
    if not (folder / "gp_appointments.parquet").exists():
        subprocess.run(spimpact("example-data", "--scale", str(n), "--out", str(WORK)), check=True)
    params = WORK / f"params_{engine}" / f"scale_{n}.yaml"  # a params file is named by its id
    params.parent.mkdir(exist_ok=True)
    params.write_text(PARAMS.format(n=n, data_dir=folder.resolve(), engine=engine))
    rows = duckdb.sql(
        f"SELECT COUNT(*) FROM read_parquet('{folder / 'gp_appointments.parquet'}')"
    ).fetchall()[0][0]
    return params, rows


def measured(command: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak resident GB of the process tree, exit code)."""
    done = run_with_peak(command, interval=0.2)
    if done.returncode:
        sys.stderr.write(done.stderr[-2000:])
    return done.seconds, done.peak_bytes / 2**30, done.returncode


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = [r["clients"] / 1000 for r in results]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    left.plot(clients, [r["seconds"] / 60 for r in results], marker="o")
    left.set(xlabel="clients (thousands)", ylabel="minutes", title="Report time")
    right.plot(clients, [r["peak_gb"] for r in results], marker="o")
    right.axhline(8, linestyle="--", color="grey", label="target 8 GB")
    top = max(9.0, 1.1 * max(r["peak_gb"] for r in results))
    right.set(xlabel="clients (thousands)", ylabel="GB", title="Peak resident memory")
    right.set_ylim(0, top)
    left.set_ylim(0, None)
    right.legend()
    figure.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results = []
    for n in args.clients:
        params, rows = prepare(n, args.engine)
        out = WORK / f"outputs_{args.engine}"
        seconds, peak, code = measured(
            spimpact("run", str(params), "--force", "--output-dir", str(out))
        )
        status = "ok" if code == 0 else f"failed ({code})"
        results.append({"clients": n, "rows": rows, "seconds": seconds, "peak_gb": peak})
        print(
            f"{n:>9,} clients {rows:>12,} appointment rows  {seconds:8.1f} s "
            f"({seconds / n * 100_000:6.1f} s per 100k clients)  peak {peak:5.2f} GB  {status}",
            flush=True,
        )
    if len(results) > 1:
        plot(results, WORK / "growth.png")
        print(f"growth curve: {WORK / 'growth.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
