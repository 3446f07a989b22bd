"""The stable import path of the attrition estimators: ``spimpact.models.attrition``."""

import pytest

import spimpact.models.attrition as attrition
from spimpact.models import imputation, ipw, tipping_point
from spimpact.models.result import EstimatorResult


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("fit_ipw", ipw),
        ("IpwResult", ipw),
        ("pool_rubin", imputation),
        ("pool_analyses", imputation),
        ("impute_mice", imputation),
        ("fit_mice", imputation),
        ("Imputations", imputation),
        ("MiResult", imputation),
        ("fit_tipping_point", tipping_point),
        ("TippingPointResult", tipping_point),
    ],
)
def test_attrition_path_re_exports_the_estimators(name, module):
    assert getattr(attrition, name) is getattr(module, name)


@pytest.mark.parametrize("result", ["IpwResult", "MiResult", "TippingPointResult"])
def test_attrition_results_share_the_estimator_result_base(result):
    assert issubclass(getattr(attrition, result), EstimatorResult)
