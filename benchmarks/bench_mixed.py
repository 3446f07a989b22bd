"""Benchmark spimpact's exact fast mixed models against statsmodels MixedLM.

Usage: ``python benchmarks/bench_mixed.py [--sizes 1000 20000 100000]``

Simulates clients with a baseline and two follow-ups (about 30% of follow-ups
missing at random), fits ``score ~ C(timepoint) + age + sex`` with a random
intercept, and with a random intercept and slope on time, by both libraries on
the same data, and prints the time ratio and the largest difference in the
fixed effects. statsmodels is skipped where its projected time (linear in the
number of clients from the previous size) exceeds five minutes.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from spimpact.models.mixed import fit_mixed

FORMULA = "score ~ C(timepoint) + age + sex"
STATSMODELS_LIMIT_SECONDS = 300


def simulate(n_clients: int, seed: int = 2026) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n_clients), 3)
    time_point = np.tile([0, 1, 2], n_clients)
    age = rng.integers(18, 90, n_clients)[ids].astype(float)
    sex = rng.choice(["female", "male"], n_clients)[ids]
    intercept = rng.normal(0, 3.5, n_clients)[ids]
    slope = rng.normal(0, 1.0, n_clients)[ids]
    score = 20 + 1.5 * (time_point == 1) + 2.0 * (time_point == 2) + 0.03 * age
    score = score + intercept + slope * time_point + rng.normal(0, 2.5, 3 * n_clients)
    frame = pd.DataFrame(
        {"client_id": ids, "timepoint": time_point, "age": age, "sex": sex, "score": score}
    )
    missing = (time_point > 0) & (rng.random(3 * n_clients) < 0.3)
    return frame[~missing].reset_index(drop=True)


def time_spimpact(frame: pd.DataFrame, re_formula):
    start = time.perf_counter()
    result = fit_mixed(FORMULA, frame, group="client_id", re_formula=re_formula)
    return time.perf_counter() - start, result


def time_statsmodels(frame: pd.DataFrame, re_formula):
    start = time.perf_counter()
    model = smf.mixedlm(FORMULA, frame, groups=frame["client_id"], re_formula=re_formula or "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(reml=True, method="lbfgs")
    return time.perf_counter() - start, result, len(caught)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000, 100000])
    args = parser.parse_args()
    rows = []
    last_statsmodels: dict[str, tuple[int, float]] = {}
    for n_clients in args.sizes:
        frame = simulate(n_clients)
        for label, re_formula in (("intercept", None), ("intercept+slope", "~timepoint")):
            fast_seconds, fast = time_spimpact(frame, re_formula)
            row = {
                "clients": n_clients,
                "rows": len(frame),
                "model": label,
                "spimpact_s": round(fast_seconds, 3),
                "statsmodels_s": np.nan,
                "ratio": np.nan,
                "max_abs_diff_fixed": np.nan,
                "loglik_diff": np.nan,
                "note": "",
            }
            projected = np.inf
            if label in last_statsmodels:
                size, seconds = last_statsmodels[label]
                projected = seconds * n_clients / size
            if label not in last_statsmodels or projected <= STATSMODELS_LIMIT_SECONDS:
                slow_seconds, slow, n_warnings = time_statsmodels(frame, re_formula)
                last_statsmodels[label] = (n_clients, slow_seconds)
                row.update(
                    statsmodels_s=round(slow_seconds, 2),
                    ratio=round(slow_seconds / fast_seconds, 1),
                    max_abs_diff_fixed=float(np.max(np.abs(fast.coef - slow.fe_params.to_numpy()))),
                    loglik_diff=float(fast.loglik - slow.llf),
                    note=f"statsmodels warnings: {n_warnings}" if n_warnings else "",
                )
            else:
                row["note"] = (
                    f"statsmodels skipped: projected {projected:.0f} s > "
                    f"{STATSMODELS_LIMIT_SECONDS} s"
                )
            rows.append(row)
            print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False))
    print(
        "\nloglik_diff = spimpact minus statsmodels restricted log-likelihood "
        "(>= 0: spimpact reached at least as high an optimum)."
    )


if __name__ == "__main__":
    main()
