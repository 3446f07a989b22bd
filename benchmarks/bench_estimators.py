"""Benchmark: the GP-attendance estimators against pyfixest on one balanced panel, side by side.

A balanced synthetic person x month panel (24 months, 30% of people referred in a month
between 7 and 18, monthly attendances Poisson with person and month effects and a rate
ratio of exp(0.2) after referral; practices of about 200 people) is fitted by

- ``twfe``: ``fit_twfe("attendances ~ treated_now", unit="person", time="month")`` against
  ``pyfixest.feols("attendances ~ treated_now | person + month")``;
- ``event_study``: ``fit_event_study(window=(-6, 6), reference=-1)`` against
  ``feols("attendances ~ i(event_time, ref=-1) | person + month")`` (event time binned at
  the window's ends, never-referred people at the reference: the same design);
- ``poisson``: ``fit_poisson("attendances ~ treated_now", absorb=["person", "month"])``
  against ``pyfixest.fepois("attendances ~ treated_now | person + month")``;
- ``event_study_cells``: the panel written to Parquet, reduced by one DuckDB ``GROUP BY``
  to (practice, referral month, month) cells (``sum_panel_cells``) and fitted by
  ``fit_event_study_from_cells``, against pyfixest's event study on the panel in memory
  (always clustered by practice: clustered by person the cells are the panel itself);

all with CR1 standard errors clustered by ``--cluster`` (person or practice), pyfixest's
and our defaults being the same small-sample correction (fixest's). Each fit runs in its
own process, after a warm-up fit on 10,000 rows (imports, numba compilation), on a panel
generated in that process; time is the fit's wall clock, ``fit MB`` the peak resident
memory during the fit above the resident memory before it (Linux ``VmHWM``, reset with
``/proc/self/clear_refs`` just before the fit) and ``peak MB`` the process's peak
(psutil, sampled every 0.05 s, so it includes the panel). The run stops with an error if
any estimate or standard error differs from pyfixest's by more than ``TOLERANCE``
(relative). pyfixest's Poisson is timed at its default tolerances (IRLS 1e-8,
demeaning 1e-6), which leave it 1.5e-6 (1M rows) and 5.3e-9 (5M) from the exact fit, so
the comparison uses an untimed refit at tolerances 1e-14 (last column: the difference at
the defaults).

Usage::

    nice python benchmarks/bench_estimators.py                       # 1M and 5M rows
    nice python benchmarks/bench_estimators.py --rows 20000000 --estimators twfe

Measured on 2026-12-01, one run each, on 2 cores shared with other work: 1M and 5M rows
at 10:46-10:50 UTC (load average 5.7 at the start, 8.2 at the end), 20M at 10:50-10:52
(load 8.0); times vary by +-30% between runs at such load. ``rel diff``: the largest
relative difference of any estimate or SE from pyfixest's::

    estimator         cluster  rows ours s  pyf s ratio  fit MB ours/pyf  peak MB ours/pyf rel diff
    twfe              person     1M   0.13   1.10   8.8           30/303           437/678  3.0e-15
    event_study       person     1M   0.82   3.04   3.7          227/781          612/1155  1.3e-11
    poisson           person     1M   0.98   4.41   4.5          171/355           555/940  5.8e-15
    event_study_cells practice   1M   0.15   3.19  21.1            0/781          506/1155  1.2e-11
    twfe              person     5M   0.83   6.50   7.8         349/1660         1329/2182  3.4e-15
    event_study       person     5M   4.92  17.99   3.7        1305/3724         1861/4280  7.1e-10
    poisson           person     5M   6.07  27.07   4.5         990/1820         1548/2850  1.3e-14
    event_study_cells practice   5M   0.75  23.00  30.8         123/3720         1273/4275  7.0e-10
    twfe              person    20M   3.51  28.10   8.0        1399/6606         4457/7947  1.5e-14

Clustered by practice (``--cluster practice``, 11:00-11:04 UTC, load 3.6-4.9) the
speed-ups were 9.7x / 9.4x (TWFE, 1M / 5M rows), 3.9x / 3.9x (event study) and 3.8x /
4.5x (Poisson), memory during the fit as above, differences from pyfixest <= 7.1e-10.

At 20M rows the event study from cells took 3.7 s and 0.5 GB above the resident memory
before it (``--stage event_study_cells,spimpact``); pyfixest's event study on the 20M
panel was stopped at 14 GB resident, to leave memory for the machine's other work.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from process_peak import run_with_peak

N_MONTHS = 24
WINDOW = (-6, 6)
PRACTICE_SIZE = 200
TOLERANCE = 1e-8
ESTIMATORS = ("twfe", "event_study", "poisson", "event_study_cells")
LIBRARIES = ("spimpact", "pyfixest")


def make_panel(n_rows: int, seed: int = 20261201) -> pd.DataFrame:
    """Balanced person x month panel with ``n_rows // N_MONTHS`` people, sorted by person."""
    rng = np.random.default_rng(seed)
    n_people = n_rows // N_MONTHS
    person = np.repeat(np.arange(n_people, dtype=np.int64), N_MONTHS)
    month = np.tile(np.arange(1, N_MONTHS + 1, dtype=np.int64), n_people)
    referred = rng.random(n_people) < 0.3
    referral_month = np.where(referred, rng.integers(7, N_MONTHS - 5, n_people), 0)
    first_treated = np.repeat(referral_month, N_MONTHS)
    n_practices = max(n_people // PRACTICE_SIZE, 2)
    practice = np.repeat(rng.integers(0, n_practices, n_people), N_MONTHS)
    treated_now = ((first_treated > 0) & (month >= first_treated)).astype(np.float64)
    log_rate = (
        np.repeat(rng.normal(-0.5, 0.5, n_people), N_MONTHS)
        + np.tile(rng.normal(0.0, 0.1, N_MONTHS), n_people)
        + 0.2 * treated_now
    )
    never = first_treated == 0
    event_time = np.where(never, -1, np.clip(month - first_treated, *WINDOW))
    return pd.DataFrame(
        {
            "person": person,
            "month": month,
            "practice": practice,
            "first_treated": first_treated,
            "treated_now": treated_now,
            "event_time": event_time,
            "attendances": rng.poisson(np.exp(log_rate)).astype(np.float64),
        }
    )


def fit_spimpact(estimator: str, panel: pd.DataFrame | Path, cluster: str) -> pd.DataFrame:
    from spimpact.models.cell_fits import fit_event_study_from_cells, sum_panel_cells
    from spimpact.models.count import fit_poisson
    from spimpact.models.did import fit_event_study, fit_twfe

    if estimator == "event_study_cells":
        # the panel is a Parquet file: one GROUP BY to cells, then the fit on the cells
        cells = sum_panel_cells(
            panel, by=[cluster, "first_treated", "month"], outcome="attendances"
        )
        result = fit_event_study_from_cells(
            cells,
            outcome="attendances",
            time="month",
            first_treated="first_treated",
            window=WINDOW,
            cluster=cluster,
        )
    elif estimator == "twfe":
        result = fit_twfe(
            "attendances ~ treated_now", panel, unit="person", time="month", cluster=cluster
        )
    elif estimator == "event_study":
        result = fit_event_study(
            panel,
            outcome="attendances",
            unit="person",
            time="month",
            first_treated="first_treated",
            window=WINDOW,
            cluster=cluster,
        )
    else:
        result = fit_poisson(
            "attendances ~ treated_now", panel, absorb=["person", "month"], cluster=cluster
        )
    return result.tidy()[["term", "estimate", "std_error"]]


def fit_pyfixest(
    estimator: str, panel: pd.DataFrame, cluster: str, *, tight: bool = False
) -> pd.DataFrame:
    """pyfixest's fit; ``tight``: Poisson convergence tolerances 1e-14 instead of the
    defaults (IRLS 1e-8, demeaning 1e-6), accurate enough for the 1e-8 comparison."""
    import pyfixest

    vcov = {"CRV1": cluster}
    if estimator == "twfe":
        fit = pyfixest.feols("attendances ~ treated_now | person + month", panel, vcov=vcov)
    elif estimator in ("event_study", "event_study_cells"):
        fit = pyfixest.feols(
            "attendances ~ i(event_time, ref=-1) | person + month", panel, vcov=vcov
        )
    else:
        options = {}
        if tight:
            options = {
                "iwls_tol": 1e-14,
                "iwls_maxiter": 100,
                "demeaner": pyfixest.MapDemeaner(fixef_tol=1e-14),
            }
        fit = pyfixest.fepois(
            "attendances ~ treated_now | person + month", panel, vcov=vcov, **options
        )
    tidy = fit.tidy()
    return pd.DataFrame(
        {
            "term": [str(t) for t in tidy.index],
            "estimate": tidy["Estimate"].to_numpy(),
            "std_error": tidy["Std. Error"].to_numpy(),
        }
    )


def _resident_mb() -> tuple[float, float]:
    """Current and peak (since the last reset) resident memory of this process, in MB."""
    status = Path("/proc/self/status").read_text().splitlines()
    values = {line.split(":")[0]: line.split()[1] for line in status if line.startswith("Vm")}
    return int(values["VmRSS"]) / 1024, int(values["VmHWM"]) / 1024


def stage(estimator: str, library: str, n_rows: int, cluster: str) -> dict:
    """One fit in this process: warm up, generate the panel, reset the peak, time the fit."""
    fit = fit_spimpact if library == "spimpact" else fit_pyfixest
    on_disk = estimator == "event_study_cells" and library == "spimpact"
    with tempfile.TemporaryDirectory() as folder:
        panel = prepare(make_panel(10_000, seed=1), on_disk, Path(folder) / "warm.parquet")
        fit(estimator, panel, cluster)
        panel = prepare(make_panel(n_rows), on_disk, Path(folder) / "panel.parquet")
        return timed(fit, estimator, panel, cluster)


def prepare(panel: pd.DataFrame, on_disk: bool, path: Path) -> pd.DataFrame | Path:
    """The panel itself, or the path of a Parquet copy (for the fit from cells)."""
    if not on_disk:
        return panel
    panel.to_parquet(path)
    return path


def timed(fit, estimator: str, panel: pd.DataFrame | Path, cluster: str) -> dict:
    """Time one fit; its peak memory above the resident memory before it."""
    Path("/proc/self/clear_refs").write_text("5")
    before_mb, _ = _resident_mb()
    start = time.perf_counter()
    table = fit(estimator, panel, cluster)
    seconds = time.perf_counter() - start
    _, peak_mb = _resident_mb()
    result = {"seconds": seconds, "fit_mb": peak_mb - before_mb, "table": table}
    if fit is fit_pyfixest and estimator == "poisson":
        # timed at pyfixest's defaults; compared at tight tolerances (an untimed refit)
        result["table_at_defaults"] = table
        result["table"] = fit_pyfixest(estimator, panel, cluster, tight=True)
    return {k: v.to_dict(orient="list") if k.startswith("table") else v for k, v in result.items()}


def run_measured(estimator: str, library: str, n_rows: int, cluster: str) -> dict:
    """Run one stage in a child process; its peak RSS also sampled from outside."""
    stage = f"{estimator},{library}"
    command = [sys.executable, __file__, "--stage", stage, "--rows", str(n_rows)]
    done = run_with_peak([*command, "--cluster", cluster], interval=0.05)
    if done.returncode != 0:
        raise RuntimeError(f"{estimator} with {library} on {n_rows} rows failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"peak_mb": done.peak_bytes / 2**20}


def compare(estimator: str, ours: dict, theirs: dict) -> float:
    """Largest relative difference of estimates and SEs; raises if terms differ."""
    a, b = pd.DataFrame(ours), pd.DataFrame(theirs)
    if a["term"].tolist() != b["term"].tolist():
        terms = (a["term"].tolist(), b["term"].tolist())
        raise AssertionError(f"{estimator}: terms differ (ours, pyfixest's): {terms}")
    worst = 0.0
    for column in ("estimate", "std_error"):
        x, y = a[column].to_numpy(), b[column].to_numpy()
        worst = max(worst, float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300))))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=list(ESTIMATORS))
    parser.add_argument("--cluster", choices=("person", "practice"), default="person")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        estimator, library = args.stage.split(",")
        print(json.dumps(stage(estimator, library, args.rows[0], args.cluster)))
        return
    print(f"load average before: {psutil.getloadavg()}")
    header = (
        f"{'estimator':<18}{'cluster':>9}{'rows':>10}{'ours s':>9}{'pyfixest s':>11}"
        f"{'speed-up':>9}{'ours fit MB':>12}{'pyf fit MB':>11}{'ours peak MB':>13}"
        f"{'pyf peak MB':>12}{'max rel diff':>13}{'(pyf defaults)':>15}"
    )
    print(header)
    failures = []
    for n_rows in args.rows:
        for estimator in args.estimators:
            # the cells are a reduction only when clustering coarser than the person
            cluster = "practice" if estimator == "event_study_cells" else args.cluster
            ours = run_measured(estimator, "spimpact", n_rows, cluster)
            theirs = run_measured(estimator, "pyfixest", n_rows, cluster)
            difference = compare(estimator, ours["table"], theirs["table"])
            at_defaults = ""
            if "table_at_defaults" in theirs:
                at_defaults = (
                    f"{compare(estimator, ours['table'], theirs['table_at_defaults']):.1e}"
                )
            print(
                f"{estimator:<18}{cluster:>9}{n_rows:>10}{ours['seconds']:>9.2f}"
                f"{theirs['seconds']:>11.2f}{theirs['seconds'] / ours['seconds']:>9.1f}"
                f"{ours['fit_mb']:>12.0f}{theirs['fit_mb']:>11.0f}{ours['peak_mb']:>13.0f}"
                f"{theirs['peak_mb']:>12.0f}{difference:>13.1e}{at_defaults:>15}",
                flush=True,
            )
            if difference > TOLERANCE:
                failures.append(f"{estimator} at {n_rows} rows: relative difference {difference}")
    print(f"load average after: {psutil.getloadavg()}")
    if failures:
        raise SystemExit("estimates or SEs differ from pyfixest's: " + "; ".join(failures))


if __name__ == "__main__":
    main()
