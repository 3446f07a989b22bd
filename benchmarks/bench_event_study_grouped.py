r"""Benchmark: peak memory and time of ``fit_event_study_grouped`` against ``fit_event_study``.

Each fit runs in its own process on the same seeded panel (default 250,000 people x 20
months, a tenth of the rows removed at random, staggered referrals, window (-10, 9): 19
indicators, CR1 by person). The child builds the panel, resets its peak resident memory
(``/proc/self/clear_refs``, Linux), fits, and reports the peak (``VmHWM``), the resident
memory before the fit (the panel) and the seconds of the fit alone. The parent prints one
line per estimator and how far apart the two fits are (estimates in standard errors: the
pre-period estimates are near 0, so a relative difference says little).

Measured on 2026-12-01 (2 shared cores, load average 3.7-3.9, one run), 4,500,265 rows:
``fit_event_study`` 9.5 s, fit adds 1,673 MB (peak 2,064 MB); ``fit_event_study_grouped``
3.2 s, fit adds 406 MB (peak 798 MB); estimates within 2.8e-10 standard errors, standard
errors within 2.6e-12 (relative). 1,000,000 people x 24 months, 23 indicators (21,601,167
rows), grouped only: 14.3 s, fit adds 1,716 MB (peak 2,630 MB).

Usage::

    nice python benchmarks/bench_event_study_grouped.py
    # the attendance report's scale: 1,000,000 people x 24 months, 23 indicators
    nice python benchmarks/bench_event_study_grouped.py --people 1000000 --months 24 \
        --window -12 11 --only grouped
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

ESTIMATORS = ("event_study", "grouped")


def make_panel(n_people: int, n_months: int, seed: int):
    """People x months with a tenth of the rows removed; 60% referred in months 3-18."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    keep = np.flatnonzero(rng.random(n_people * n_months) > 0.1)
    person = (keep // n_months).astype(np.int64)
    month = (keep % n_months + 1).astype(np.int64)
    referral = np.where(rng.random(n_people) < 0.6, rng.integers(3, n_months - 1, n_people), 0)
    first_treated = referral[person]
    treated = (first_treated > 0) & (month >= first_treated)
    y = rng.normal(0, 1, n_people)[person] + 0.3 * treated + rng.normal(0, 1, keep.size)
    return pd.DataFrame({"person": person, "month": month, "first_treated": first_treated, "y": y})


def _memory_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(estimator: str, n_people: int, n_months: int, seed: int, window: list[int]) -> None:
    """Build the panel, fit once, print a JSON line of memory, time and results."""
    from spimpact.models.did_event_study import fit_event_study
    from spimpact.models.did_event_study_grouped import fit_event_study_grouped

    panel = make_panel(n_people, n_months, seed)
    fit = fit_event_study if estimator == "event_study" else fit_event_study_grouped
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before_kb = _memory_kb("VmRSS")
    started = time.perf_counter()
    result = fit(
        panel,
        outcome="y",
        unit="person",
        time="month",
        first_treated="first_treated",
        window=tuple(window),
        cluster="person",
    )
    seconds = time.perf_counter() - started
    tidy = result.tidy()
    print(
        json.dumps(
            {
                "estimator": estimator,
                "rows": len(panel),
                "seconds": seconds,
                "before_mb": before_kb / 1024,
                "peak_mb": _memory_kb("VmHWM") / 1024,
                "estimate": tidy["estimate"].tolist(),
                "std_error": tidy["std_error"].tolist(),
            }
        )
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=250_000)
    parser.add_argument("--months", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--window", type=int, nargs=2, default=[-10, 9])
    parser.add_argument("--only", choices=ESTIMATORS, default=None)
    parser.add_argument("--child", choices=ESTIMATORS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.people, args.months, args.seed, args.window)
        return 0
    results = {}
    for estimator in ESTIMATORS if args.only is None else (args.only,):
        command = [
            sys.executable,
            __file__,
            "--child",
            estimator,
            f"--people={args.people}",
            f"--months={args.months}",
            f"--seed={args.seed}",
            "--window",
            *(str(e) for e in args.window),
        ]
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            print(f"{estimator}: failed\n{finished.stderr}", file=sys.stderr)
            return 1
        result = json.loads(finished.stdout.strip().splitlines()[-1])
        results[estimator] = result
        print(
            f"{estimator}: {result['rows']:,} rows, fit {result['seconds']:.1f} s, "
            f"peak {result['peak_mb']:.0f} MB (panel {result['before_mb']:.0f} MB, "
            f"fit adds {result['peak_mb'] - result['before_mb']:.0f} MB)",
            flush=True,
        )
    if len(results) == 2:
        import numpy as np

        ours, theirs = results["grouped"], results["event_study"]
        standard_error = np.array(theirs["std_error"])
        estimate_gap = np.abs(np.array(ours["estimate"]) - theirs["estimate"]) / standard_error
        error_gap = np.abs(np.array(ours["std_error"]) - standard_error) / standard_error
        print(
            f"largest difference: estimates {estimate_gap.max():.1e} standard errors, "
            f"standard errors {error_gap.max():.1e} relative"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
