"""The fast paths of the fixed-effects helpers against their general counterparts.

Each fast path (closed-form and direct two-way projections, integer coding by bincount,
reading plain numeric formulas without patsy) must give what the general method gives:
alternating projections run to a tolerance far below the one compared here, pandas'
sorted factorisation, and patsy's design matrices.
"""

import numpy as np
import pandas as pd
import patsy
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import spimpact.models.did_fixed_effects as fixed_effects
from spimpact.models.did_fixed_effects import demean, design_matrices, encode_groups, is_nested


@pytest.fixture
def alternating_projections(monkeypatch):
    """``demean`` forced onto alternating projections, converged to 1e-14."""

    def project(matrix, groups, weights=None):
        with monkeypatch.context() as patch:
            patch.setattr(fixed_effects, "MAX_DIRECT_LEVELS", 0)
            patch.setattr(fixed_effects, "is_balanced", lambda groups: False)
            patch.setattr(fixed_effects, "DEMEAN_TOLERANCE", 1e-14)
            return demean(matrix, groups, weights=weights)

    return project


def panel_codes(balanced: bool):
    rng = np.random.default_rng(11)
    unit = np.repeat(np.arange(300), 12)
    time = np.tile(np.arange(12), 300)
    if not balanced:
        keep = rng.random(unit.size) > 0.2
        unit, time = encode_groups(pd.Series(unit[keep]))[0], time[keep]
    matrix = rng.normal(size=(unit.size, 3)) + unit[:, None] * 0.01 + time[:, None] * 0.3
    return unit, time, matrix, rng.uniform(0.2, 3.0, unit.size)


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_two_way_projection_equals_alternating_projections(
    alternating_projections, balanced, weighted
):
    unit, time, matrix, weights = panel_codes(balanced)
    weights = weights if weighted else None
    exact = demean(matrix, [unit, time], weights=weights)
    assert_allclose(
        exact, alternating_projections(matrix, [unit, time], weights), rtol=0, atol=1e-10
    )
    # the projection is orthogonal to both factors
    w = np.ones(unit.size) if weights is None else weights
    for codes in (unit, time):
        sums = np.stack([np.bincount(codes, weights=w * exact[:, j]) for j in range(3)])
        assert np.abs(sums).max() < 1e-9


@pytest.mark.parametrize(
    "values",
    [
        [5, -3, 5, 12, -3, 0],
        [2_000_000, 7, 7],
        ["b", "a", "c", "a"],
        [1.5, 0.5, 1.5],
    ],
)
def test_encode_groups_equals_sorted_factorize(values):
    codes, n_levels = encode_groups(pd.Series(values))
    expected, levels = pd.factorize(pd.Series(values), sort=True)
    assert_array_equal(codes, expected)
    assert n_levels == len(levels)


def test_is_nested():
    unit = np.array([0, 0, 1, 1, 2, 2])
    assert is_nested(unit, np.array([0, 0, 0, 0, 1, 1]))
    assert not is_nested(unit, np.array([0, 1, 0, 0, 1, 1]))


@pytest.mark.parametrize(
    "formula",
    ["y ~ a + b", "y ~ b + a - 1", "y ~ 0 + a", "y ~ flag + a", "y ~ s + b", "y ~ a:b"],
)
@pytest.mark.parametrize("drop_intercept", [True, False])
def test_plain_formulas_read_like_patsy(monkeypatch, formula, drop_intercept):
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "y": rng.normal(size=40),
            "a": rng.integers(0, 5, 40),
            "b": rng.normal(size=40),
            "flag": rng.random(40) > 0.5,
            "s": list("ab") * 20,
        }
    )
    data.loc[[3, 9], "b"] = np.nan
    data.loc[4, "y"] = np.nan
    env = patsy.EvalEnvironment.capture(0)
    fast = design_matrices(formula, data, eval_env=env, drop_intercept=drop_intercept)
    monkeypatch.setattr(fixed_effects, "_plain_numeric_formula", lambda *_: None)
    general = design_matrices(formula, data, eval_env=env, drop_intercept=drop_intercept)
    assert_array_equal(fast[0], general[0])
    assert_array_equal(fast[1], general[1])
    assert fast[2] == general[2]
    assert fast[3].equals(general[3])
