"""Estimators for outcomes lost to follow-up, under one stable import path.

The estimators live in their own modules: inverse probability weighting in
:mod:`spimpact.models.ipw`, multiple imputation and Rubin's rules in
:mod:`spimpact.models.imputation`, the delta-adjusted tipping point in
:mod:`spimpact.models.tipping_point`. The social-prescribing use sits in
``spimpact.analyses.attrition``.

>>> from spimpact.models.attrition import fit_ipw, pool_rubin
"""

from spimpact.models.imputation import (
    Imputations,
    MiResult,
    fit_mice,
    impute_mice,
    pool_analyses,
    pool_rubin,
)
from spimpact.models.ipw import IpwResult, fit_ipw
from spimpact.models.tipping_point import TippingPointResult, fit_tipping_point

__all__ = [
    "Imputations",
    "IpwResult",
    "MiResult",
    "TippingPointResult",
    "fit_ipw",
    "fit_mice",
    "fit_tipping_point",
    "impute_mice",
    "pool_analyses",
    "pool_rubin",
]
