"""Benchmark fit_mmrm (unstructured MMRM) against statsmodels MixedLM (random intercept).

Usage: ``python benchmarks/bench_mmrm.py [--sizes 1000 20000] [--repeats 3]``

Simulates subjects with 4 visits (standard deviations 2, 3, 4.5, 6; AR(1)
correlation 0.6; monotone dropout that depends on the previous score), an arm,
age and sex, and fits ``score ~ C(visit) * arm + age + sex`` on the same data by

- spimpact ``fit_mmrm`` with an unstructured covariance (10 parameters, REML,
  Satterthwaite degrees of freedom, all the inference included), and
- statsmodels ``MixedLM`` with a random intercept per subject (REML), the usual
  Python substitute: it cannot fit an unstructured residual covariance at all.

Prints the best of ``--repeats`` wall-clock times per fit and the ratio
statsmodels / spimpact (above 1: the MMRM is cheaper). Not a timed test: timings
depend on the machine.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from spimpact.models.mmrm import fit_mmrm

FORMULA = "score ~ C(visit) * arm + age + sex"
MEANS = np.array([20.0, 21.0, 22.0, 23.0])
SDS = np.array([2.0, 3.0, 4.5, 6.0])


def simulate(n_subjects: int, seed: int = 2026) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lags = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    covariance = 0.6**lags * np.outer(SDS, SDS)
    arm = rng.integers(0, 2, n_subjects)
    age = rng.integers(18, 90, n_subjects).astype(float)
    sex = rng.choice(["female", "male"], n_subjects)
    scores = MEANS + np.outer(arm, [0, 0.5, 1.0, 1.5]) + 0.02 * age[:, None]
    scores = scores + rng.multivariate_normal(np.zeros(4), covariance, n_subjects)
    attended = np.ones((n_subjects, 4), dtype=bool)
    for visit in range(1, 4):
        previous = (scores[:, visit - 1] - scores[:, visit - 1].mean()) / SDS[visit - 1]
        probability = 1 / (1 + np.exp(-(-2.0 + 1.2 * previous)))
        attended[:, visit] = attended[:, visit - 1] & (rng.random(n_subjects) >= probability)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n_subjects), 4),
            "visit": np.tile(np.arange(4), n_subjects),
            "arm": np.repeat(arm, 4),
            "age": np.repeat(age, 4),
            "sex": np.repeat(sex, 4),
            "score": scores.ravel(),
        }
    )
    return frame[attended.ravel()].reset_index(drop=True)


def best_time(function, repeats: int):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for n_subjects in args.sizes:
        frame = simulate(n_subjects)
        mmrm_seconds, mmrm = best_time(
            lambda frame=frame: fit_mmrm(FORMULA, frame, subject="id", visit="visit"),
            args.repeats,
        )

        def fit_statsmodels(frame=frame):
            model = smf.mixedlm(FORMULA, frame, groups=frame["id"])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                return model.fit(reml=True), len(caught)

        statsmodels_seconds, (_, n_warnings) = best_time(fit_statsmodels, args.repeats)
        row = {
            "subjects": n_subjects,
            "rows": len(frame),
            "mmrm_us_s": round(mmrm_seconds, 3),
            "mixedlm_intercept_s": round(statsmodels_seconds, 3),
            "ratio": round(statsmodels_seconds / mmrm_seconds, 1),
            "mmrm_converged": mmrm.converged,
            "mixedlm_warnings": n_warnings,
        }
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1), flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    print(
        "\nratio = MixedLM random-intercept time / fit_mmrm unstructured time (> 1: MMRM cheaper)"
    )


if __name__ == "__main__":
    main()
