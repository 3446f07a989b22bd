"""An MMRM with a stated fallback order of residual covariance structures.

The unstructured covariance makes the fewest assumptions and is the default of trial
MMRMs, but a small or sparse data set may not support its ``V (V + 1) / 2``
parameters. :func:`fit_mmrm_fallback` tries the structures in order and keeps the
first fit that converges, with a note for each one that did not (the fallback order
is pre-specified, as regulators expect: ICH E9(R1); Mallinckrodt et al. 2008, Drug
Inf J 42:303-319). Generic: any data frame and column names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from spimpact.models.mmrm import fit_mmrm

DEFAULT_ORDER = ("us", "toeph", "ar1h", "cs")


def fit_mmrm_fallback(
    formula: str,
    data: pd.DataFrame,
    *,
    subject: str,
    visit: str,
    covariances: Sequence[str] = DEFAULT_ORDER,
    df: str = "kenward_roger",
    conf_level: float = 0.95,
):
    """Fit the MMRM with the first covariance structure in ``covariances`` that converges.

    Parameters
    ----------
    formula, data, subject, visit
        As :func:`spimpact.models.mmrm.fit_mmrm`.
    covariances
        Structures to try, in order (default unstructured, heterogeneous Toeplitz,
        heterogeneous AR(1), compound symmetry).
    df
        Degrees-of-freedom method of the t tests and intervals.
    conf_level
        Level of the intervals.

    Returns
    -------
    tuple
        ``(result, notes)``: the first converged
        :class:`~spimpact.models.mmrm_result.MmrmResult` and a tuple of plain-English
        notes on the structures that were tried and failed.

    Raises
    ------
    ValueError
        When no structure converges (the message lists each failure).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> long = pd.DataFrame({"id": np.repeat(np.arange(40), 3), "t": np.tile([0, 1, 2], 40)})
    >>> long["y"] = long.t + np.repeat(rng.normal(size=40), 3) + rng.normal(size=120)
    >>> fit, notes = fit_mmrm_fallback("y ~ C(t)", long, subject="id", visit="t")
    >>> fit.covariance_type, notes
    ('us', ())
    """
    if not covariances:
        raise ValueError("covariances needs at least one structure")
    failures = []
    for structure in covariances:
        try:
            fit = fit_mmrm(
                formula,
                data,
                subject=subject,
                visit=visit,
                covariance=structure,
                df=df,
                conf_level=conf_level,
            )
        except (ValueError, np.linalg.LinAlgError) as error:
            failures.append((structure, str(error)))
            continue
        if fit.converged:
            notes = tuple(
                f"The {name} residual covariance could not be fitted ({reason}); the model "
                f"fell back to the next structure in the pre-specified order."
                for name, reason in failures
            )
            return fit, notes
        failures.append((structure, "the fit did not converge"))
    listed = "; ".join(f"{name}: {reason}" for name, reason in failures)
    raise ValueError(f"no covariance structure could be fitted ({listed})")
