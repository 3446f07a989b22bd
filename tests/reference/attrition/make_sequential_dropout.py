"""Simulated monotone dropout and the stacked-sandwich reference for sequential IPW.

Writes ``sequential_dropout.csv`` (300 subjects, visits 0-3, dropout depending on the
previous score and a baseline characteristic; seeded) and
``sequential_dropout_delicatessen.csv``: the change from visit 0 at each later visit,
weighted by stabilised inverse probabilities of remaining (pooled logistic dropout model
``C(visit) + previous_y + x``, numerator ``C(visit)``), with the empirical sandwich of
the stacked estimating equations computed independently by delicatessen 4.3 (Zivich et
al. 2022, arXiv:2203.11300; numerically differentiated bread, subjects as units). Run
from the repository root:

    pip install delicatessen==4.3
    python tests/reference/attrition/make_sequential_dropout.py
"""

from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit


def main():
    from delicatessen import MEstimator  # test-only reference tool, not a dependency

    HERE = Path(__file__).parent
    rng = np.random.default_rng(20260203)
    n, visits = 300, 4
    x = rng.integers(0, 2, n)
    y = np.empty((n, visits))
    y[:, 0] = rng.normal(20, 4, n)
    for k in range(1, visits):
        y[:, k] = y[:, k - 1] + 1.0 + 0.5 * x + rng.normal(0, 2, n)
    observed = np.ones((n, visits), dtype=bool)
    for k in range(1, visits):
        stay = rng.random(n) < expit(2.2 - 0.15 * (y[:, k - 1] - 20) - 0.3 * k + 0.6 * x)
        observed[:, k] = observed[:, k - 1] & stay
    long = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), visits),
            "visit": np.tile(np.arange(visits), n),
            "x": np.repeat(x, visits),
            "y": np.where(observed, y, np.nan).round(4).ravel(),
        }
    )
    long.to_csv(HERE / "sequential_dropout.csv", index=False)

    # At-risk rows: subject i at visit k >= 1 when observed at k - 1.
    wide = long.pivot(index="id", columns="visit", values="y").to_numpy()
    rows = [
        (i, k, wide[i, k - 1], float(not np.isnan(wide[i, k])))
        for i in range(n)
        for k in range(1, visits)
        if not np.isnan(wide[i, k - 1])
    ]
    risk = pd.DataFrame(rows, columns=["id", "visit", "previous_y", "r"])
    risk["x"] = x[risk["id"]]
    visit_dummies = np.column_stack([risk["visit"] == k for k in range(1, visits)]).astype(float)
    x_den = np.column_stack([visit_dummies, risk["previous_y"], risk["x"]])
    x_num = visit_dummies
    r = risk["r"].to_numpy()
    subject = risk["id"].to_numpy()
    risk_visit = risk["visit"].to_numpy()
    change = wide - wide[:, [0]]

    def psi(theta):
        k_den, k_num = x_den.shape[1], x_num.shape[1]
        alpha, gamma, beta = theta[:k_den], theta[k_den : k_den + k_num], theta[k_den + k_num :]
        p_den, p_num = expit(x_den @ alpha), expit(x_num @ gamma)
        ratio = np.ones((n, visits))
        ratio[subject, risk_visit] = p_num / p_den
        weight = np.cumprod(ratio, axis=1)
        out = []
        for design, p in ((x_den, p_den), (x_num, p_num)):
            contribution = design * (r - p)[:, None]
            per_subject = np.zeros((n, design.shape[1]))
            np.add.at(per_subject, subject, contribution)
            out.append(per_subject.T)
        outcome = np.zeros((visits - 1, n))
        for k in range(1, visits):
            seen = ~np.isnan(change[:, k])
            residual = np.nan_to_num(change[:, k]) - beta[k - 1]
            outcome[k - 1] = np.where(seen, weight[:, k] * residual, 0)
        return np.vstack([*out, outcome])

    start_den = sm.GLM(r, x_den, family=sm.families.Binomial()).fit().params
    start_num = sm.GLM(r, x_num, family=sm.families.Binomial()).fit().params
    start_beta = np.nanmean(change[:, 1:], axis=0)
    estimator = MEstimator(psi, init=[*start_den, *start_num, *start_beta])
    estimator.estimate(solver="lm", maxiter=20000, tolerance=1e-12)
    outcome = slice(x_den.shape[1] + x_num.shape[1], None)
    pd.DataFrame(
        {
            "term": [f"C(visit)[{k}]" for k in range(1, visits)],
            "estimate": estimator.theta[outcome],
            "std_error": np.sqrt(np.diag(estimator.variance)[outcome]),
        }
    ).to_csv(HERE / "sequential_dropout_delicatessen.csv", index=False, float_format="%.8f")


if __name__ == "__main__":
    main()
