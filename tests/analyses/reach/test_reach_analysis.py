"""Reach analysis: rates and rate ratios by group, the pathway and the referral SII."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from spimpact.analyses.reach.analysis import (
    add_reach_rates,
    fit_referral_sii,
    publish_reach,
    tabulate_pathway,
    tabulate_reach,
)
from spimpact.analyses.reach.areas import funnel_positions
from spimpact.models.inequality import rate_ci
from spimpact.publish.disclosure import DisclosureRule
from spimpact.publish.section import InsufficientData

RULE = DisclosureRule()


def _toy():
    clients = pd.DataFrame(
        {
            "client_id": [f"c{i}" for i in range(60)],
            "sex": ["female"] * 40 + ["male"] * 17 + ["unknown"] * 3,
            "discharge_reason": (["completed"] * 30 + ["disengaged"] * 30),
        }
    )
    population = pd.DataFrame(
        {
            "dimension": ["total", "sex", "sex"],
            "category": ["all", "female", "male"],
            "population": [2000, 1000, 1000],
        }
    )
    return clients, population


def test_reach_rates_and_rate_ratios_by_hand():
    clients, population = _toy()
    table = tabulate_reach(clients, population, dimensions=["sex"])
    female = table.set_index("category").loc["female"]
    # 40 per 1,000 people = 40 per 1,000; scheme average 60 / 2000 = 30 per 1,000.
    assert female["rate"] == pytest.approx(40.0)
    assert female["rate_ratio"] == pytest.approx(40 / 30)
    expected = rate_ci([40], [1000], per=1000)
    assert_allclose(
        female[["conf_low", "conf_high"]].astype(float), expected[["conf_low", "conf_high"]].iloc[0]
    )
    # var(log RR) of a part against its total = 1/40 - 1/60
    se = np.sqrt(1 / 40 - 1 / 60)
    assert female["rate_ratio_conf_high"] == pytest.approx(
        40 / 30 * np.exp(1.959964 * se), rel=1e-6
    )
    unknown = table.set_index("category").loc["unknown"]
    assert unknown["n_referrals"] == 3 and np.isnan(unknown["rate"])


def test_published_reach_hides_small_counts_and_their_rates():
    clients, population = _toy()
    raw = tabulate_reach(clients, population, dimensions=["sex"])
    safe = publish_reach(raw, RULE, n_total=60, total_population=2000).set_index("category")
    # 'unknown' (3) is primary-suppressed, so the next smallest in sex (male, 17) goes too.
    assert safe["n_referrals"].isna().tolist() == [False, True, True]
    assert safe.loc[["male", "unknown"], ["rate", "rate_ratio"]].isna().all().all()
    # rates come from the rounded count: 40 -> 40, over 1,000 people
    assert safe.loc["female", "rate"] == 40.0


def test_rate_ratio_of_the_whole_is_one_with_no_width():
    table = pd.DataFrame({"n_referrals": [50], "population": [1000]})
    out = add_reach_rates(table, n_total=50, total_population=1000)
    assert out.loc[0, "rate_ratio"] == pytest.approx(1)
    assert out.loc[0, "rate_ratio_conf_low"] == pytest.approx(1)


@pytest.mark.slow
def test_rate_ratio_interval_covers_truth():
    """Simulation: 5 groups with known rates, Poisson referrals; the delta-method
    interval for each group's ratio to the catchment average covers the true ratio in
    about 95% of 600 replications (accept 92-98%, binomial SE 0.9 points)."""
    rng = np.random.default_rng(11)
    population = np.array([5000, 8000, 12000, 3000, 7000])
    rates = np.array([0.02, 0.015, 0.01, 0.03, 0.012])
    true_ratio = rates / ((rates * population).sum() / population.sum())
    covered = []
    for _ in range(600):
        counts = rng.poisson(rates * population)
        table = pd.DataFrame({"n_referrals": counts, "population": population})
        out = add_reach_rates(table, n_total=counts.sum(), total_population=population.sum())
        covered.append(
            (out["rate_ratio_conf_low"] <= true_ratio) & (true_ratio <= out["rate_ratio_conf_high"])
        )
    coverage = np.mean(covered, axis=0)
    assert ((coverage > 0.92) & (coverage < 0.98)).all(), coverage


def test_referral_sii_recovers_a_known_gradient():
    """Deterministic: decile populations of 10,000 with referral rates falling
    log-linearly from 60 to 20 per 1,000 across relative rank; the PHE SII on
    log-transformed rates recovers the gap of the generating curve (20 - 60 = -40
    per 1,000) to within the discreteness of decile midpoints."""
    deciles = np.arange(1, 11)
    rank = (deciles - 0.5) / 10
    rates = np.exp(np.log(0.06) + np.log(20 / 60) * rank)
    counts = np.round(rates * 10_000).astype(int)
    clients = pd.DataFrame({"imd_decile": np.repeat(deciles, counts)})
    population = pd.DataFrame(
        {"dimension": "imd_decile", "category": [str(d) for d in deciles], "population": 10_000}
    )
    fit, dimension = fit_referral_sii(clients, population, seed=1, repetitions=2000)
    assert dimension == "imd_decile"
    assert fit.sii == pytest.approx(-40, abs=0.3)
    assert fit.rii == pytest.approx(1 / 3, abs=0.005)
    assert fit.sii_conf_low < fit.sii < fit.sii_conf_high


def test_referral_sii_needs_deprivation_denominators():
    clients, population = _toy()
    with pytest.raises(InsufficientData, match="IMD"):
        fit_referral_sii(clients.assign(imd_decile=1), population)


def test_pathway_counts():
    clients, _ = _toy()
    contacts = pd.DataFrame({"client_id": ["c0", "c1", "c45"]})
    table = tabulate_pathway(clients, contacts, {"c50"}, dimensions=["sex"]).set_index("category")
    assert table.loc["All referrals", ["n_referred", "n_engaged", "n_completed"]].tolist() == [
        60,
        3,
        31,
    ]
    assert table.loc["male", "n_completed"] == 1


def test_pathway_without_discharge_records_counts_follow_ups_as_completed():
    # a coded GP extract records no discharge: completion rests on follow-ups alone
    clients, _ = _toy()
    clients = clients.drop(columns="discharge_reason")
    table = tabulate_pathway(clients, None, {"c50", "c3"}, dimensions=["sex"])
    table = table.set_index("category")
    assert table.loc["All referrals", "n_completed"] == 2
    assert table.loc["male", "n_completed"] == 1


def test_funnel_positions_name_the_widest_limits_crossed():
    # 30 per 1,000 in 1,000 people: 95% limits about 20 to 41, 99.8% about 14 to 48
    areas = pd.DataFrame({"population": [1000.0] * 5, "rate": [30.0, 45.0, 60.0, 10.0, None]})
    positions = funnel_positions(areas, 0.03)
    assert positions.iloc[:4].tolist() == [
        "within limits",
        "above (outside 95% limits)",
        "above (outside 99.8% limits)",
        "below (outside 99.8% limits)",
    ]
    assert pd.isna(positions.iloc[4])
