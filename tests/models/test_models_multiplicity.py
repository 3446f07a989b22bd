"""Holm and Benjamini-Hochberg adjusted p-values."""

import numpy as np
import pytest

from spimpact.models.multiplicity import adjust_p_values

# Benjamini & Hochberg (1995), JRSS B 57(1), section 4.2: the 15 p-values of Neuhaus
# et al.'s thrombolysis trial, ordered. Published: at level 0.05 the Bonferroni-type
# (Holm) procedure rejects the three smallest, the FDR procedure the four smallest.
NEUHAUS = [
    0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
    0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000,
]  # fmt: skip


def test_benjamini_hochberg_paper_example():
    """Rejections at 0.05 as published in Benjamini & Hochberg (1995), section 4.2."""
    assert (adjust_p_values(NEUHAUS, "fdr_bh") <= 0.05).sum() == 4
    assert (adjust_p_values(NEUHAUS, "holm") <= 0.05).sum() == 3


def test_values_match_r_p_adjust_definitions():
    """R: p.adjust(p, "holm") = cummax(min(1, (n - i + 1) p_(i))) and
    p.adjust(p, "BH") = cummin from the top of min(1, n p_(i) / i), in the input order;
    e.g. p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm") is 0.05 0.08 0.09 0.09 0.09."""
    np.testing.assert_allclose(
        adjust_p_values([0.01, 0.02, 0.03, 0.04, 0.05], "holm"), [0.05, 0.08, 0.09, 0.09, 0.09]
    )
    np.testing.assert_allclose(adjust_p_values([0.01, 0.02, 0.03, 0.04, 0.05], "fdr_bh"), 0.05)
    p = np.array(NEUHAUS)[::-1]
    n = p.size
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, (n - np.arange(n)) * p[order]))
    bh = np.minimum.accumulate(np.minimum(1, n * p[order] / np.arange(1, n + 1))[::-1])[::-1]
    expected_holm, expected_bh = np.empty(n), np.empty(n)
    expected_holm[order], expected_bh[order] = holm, bh
    np.testing.assert_allclose(adjust_p_values(p, "holm"), expected_holm, rtol=1e-12)
    np.testing.assert_allclose(adjust_p_values(p, "fdr_bh"), expected_bh, rtol=1e-12)


def test_missing_values_are_set_aside():
    out = adjust_p_values([0.01, np.nan, 0.04], "holm")
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])


@pytest.mark.parametrize(
    ("p", "method", "message"),
    [([0.1, 1.2], "holm", r"\[0, 1\]"), ([0.1], "BH", "method must be one of")],
)
def test_bad_input(p, method, message):
    with pytest.raises(ValueError, match=message):
        adjust_p_values(p, method)
