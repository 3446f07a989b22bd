"""Reference for the stacked-sandwich standard errors of inverse probability of censoring weights.

Independent implementation with delicatessen (Zivich et al. 2022, arXiv:2203.11300,
version 4.3): M-estimation with numerically differentiated bread. NHEFS, Hernán &
Robins *What If* Program 12.7: the censoring model of the book (logistic, denominator
``C(qsmk) + L``, stabilising numerator ``C(qsmk)``) is estimated inside the stacked
equations; the book's stabilised treatment weights are computed first and held fixed.
Writes ``nhefs_ipcw_stacked_delicatessen.csv``. Run from the repository root:

    pip install delicatessen==4.3
    python tests/reference/attrition/make_nhefs_stacked_ipcw.py
"""

from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import statsmodels.formula.api as smf
from scipy.special import expit


def main():
    from delicatessen import MEstimator  # test-only reference tool, not a dependency
    from delicatessen.estimating_equations import ee_regression

    HERE = Path(__file__).parent
    L = (
        "C(sex) + C(race) + age + I(age**2) + C(education) + smokeintensity"
        " + I(smokeintensity**2) + smokeyrs + I(smokeyrs**2) + C(exercise) + C(active)"
        " + wt71 + I(wt71**2)"
    )

    d = pd.read_csv(HERE / "nhefs.csv")
    treatment = smf.logit("qsmk ~ " + L, d).fit(disp=0).predict(d)
    share = d["qsmk"].mean()
    sw_a = np.where(d["qsmk"] == 1, share / treatment, (1 - share) / (1 - treatment))
    observed = d["wt82_71"].notna().to_numpy(dtype=float)
    x_den = np.asarray(patsy.dmatrix("C(qsmk) + " + L, d))
    x_num = np.asarray(patsy.dmatrix("C(qsmk)", d))
    u = np.asarray(patsy.dmatrix("qsmk", d))
    y = d["wt82_71"].fillna(0).to_numpy()
    k_den, k_num = x_den.shape[1], x_num.shape[1]

    def psi(theta):
        alpha, gamma, beta = theta[:k_den], theta[k_den : k_den + k_num], theta[k_den + k_num :]
        p_den = expit(x_den @ alpha)
        p_num = expit(x_num @ gamma)
        weight = observed * sw_a * p_num / p_den
        return np.vstack(
            [
                ee_regression(alpha, X=x_den, y=observed, model="logistic"),
                ee_regression(gamma, X=x_num, y=observed, model="logistic"),
                ee_regression(beta, X=u, y=y, model="linear", weights=weight),
            ]
        )

    start_den = smf.logit("o ~ C(qsmk) + " + L, d.assign(o=observed)).fit(disp=0).params.to_numpy()
    start_num = smf.logit("o ~ C(qsmk)", d.assign(o=observed)).fit(disp=0).params.to_numpy()
    estimator = MEstimator(psi, init=[*start_den, *start_num, 1.7, 3.5])
    estimator.estimate(solver="lm", maxiter=20000, tolerance=1e-12)
    outcome = slice(k_den + k_num, None)
    pd.DataFrame(
        {
            "term": ["Intercept", "qsmk"],
            "estimate": estimator.theta[outcome],
            "std_error": np.sqrt(np.diag(estimator.variance)[outcome]),
        }
    ).to_csv(HERE / "nhefs_ipcw_stacked_delicatessen.csv", index=False, float_format="%.8f")


if __name__ == "__main__":
    main()
