import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from spimpact.analyses.reach.analysis import (
    add_reach_rates,
    area_section,
    fit_referral_sii,
    kpi_spc_section,
    poisson_funnel_limits,
    publish_reach,
    reach_section,
    read_boundaries,
    tabulate_pathway,
    tabulate_reach,
)
from spimpact.io import SchemeData, load_scheme
from spimpact.models.inequality import rate_ci
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import DisclosureRule
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data

RULE = DisclosureRule()


@pytest.fixture(scope="module")
def example_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("reach_example")
    # the two small example schemes keep this fixture quick
    write_example_data(
        root, schemes=[s for s in EXAMPLE_SCHEMES if s.scheme_id in ("valley", "hillcrest")]
    )
    return root


@pytest.fixture(scope="module")
def schemes(example_root):
    loaded = {}
    for scheme_id in ("valley", "hillcrest"):
        data = load_scheme(example_root / scheme_id, pseudonym_key="reach-test-key")
        params = SchemeParams(
            scheme_id=scheme_id, title=scheme_id, data_dir=example_root / scheme_id
        )
        loaded[scheme_id] = (data, params)
    return loaded


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


@pytest.mark.parametrize("mean_events", [400.0, 2500.0])
@pytest.mark.parametrize("p", [0.001, 0.025, 0.975, 0.999])
def test_funnel_limits_bracket_the_poisson_quantile(mean_events, p):
    """Spiegelhalter (2005) appendix A.1.1: the interpolated limit lies between
    r_p - 1 and r_p, where r_p is the Poisson p-quantile, and is close to the normal
    approximation for large expected counts."""
    n = 10_000.0
    target = mean_events / n
    limit_events = poisson_funnel_limits(target, [n], p)[0] * n
    r = stats.poisson.ppf(p, mean_events)
    assert r - 1 <= limit_events <= r
    normal = mean_events + stats.norm.ppf(p) * np.sqrt(mean_events)
    assert limit_events == pytest.approx(normal, rel=0.02)


def test_reach_section_headline_and_sii(schemes):
    data, params = schemes["hillcrest"]
    section = reach_section(data, params=params)
    assert list(section.headline.columns) == list(HEADLINE_COLUMNS)
    assert section.headline.loc[0, "measure"] == "referral_rate_sii"
    assert {t.name for t in section.tables} == {"reach_rates", "reach_sii", "reach_pathway"}
    plt.close("all")


def test_reach_section_is_disclosure_controlled(schemes):
    data, params = schemes["valley"]
    section = reach_section(data, params=params)
    for table in section.tables:
        for column in [c for c in table.frame.columns if c.startswith("n_")]:
            values = table.frame[column].dropna().astype(int)
            assert not values.between(1, 7).any(), (table.name, column)
            assert (values % 5 == 0).all(), (table.name, column)
    rates = section.tables[0].frame
    assert rates.loc[rates["n_referrals"].isna(), "rate"].isna().all()
    assert section.figures
    plt.close("all")


def _kpi_scheme(tmp_path, *, drop_after=None):
    """30 months x 40 referrals; engagement 90% until ``drop_after`` months, then 60%."""
    rng = np.random.default_rng(3)
    months = pd.period_range("2022-01", periods=30, freq="M")
    dates = np.concatenate(
        [
            (m.to_timestamp() + pd.to_timedelta(rng.integers(0, 28, 40), unit="D")).to_numpy()
            for m in months
        ]
    )
    month_index = np.repeat(np.arange(30), 40)
    engaged_share = np.where(
        (drop_after is not None) & (month_index >= (drop_after or 0)), 0.6, 0.9
    )
    engaged = rng.random(len(dates)) < engaged_share
    ids = [f"k{i}" for i in range(len(dates))]
    clients = pd.DataFrame(
        {
            "client_id": ids,
            "referral_date": pd.to_datetime(dates),
            "discharge_date": pd.to_datetime(dates) + pd.Timedelta(days=120),
            "discharge_reason": np.where(rng.random(len(dates)) < 0.7, "completed", "disengaged"),
        }
    )
    contacts = pd.DataFrame(
        {
            "client_id": np.asarray(ids)[engaged],
            "contact_date": clients["referral_date"][engaged] + pd.Timedelta(days=7),
        }
    )
    empty = pd.DataFrame()
    measures = pd.DataFrame(columns=["client_id", "timepoint", "date"])
    data = SchemeData(
        data_dir=tmp_path,
        clients=clients,
        measures=measures,
        reconciliation=empty,
        exclusions=empty,
        non_standard=empty,
        contacts=contacts,
    )
    params = SchemeParams(scheme_id="kpi_toy", title="toy", data_dir=tmp_path)
    return data, params


def test_kpi_section_charts_engagement_and_completion(tmp_path):
    data, params = _kpi_scheme(tmp_path)
    section = kpi_spc_section(data, None, params=params)
    assert [t.name for t in section.tables] == ["kpi_engaged_spc", "kpi_completed_spc"]
    assert len(section.figures) == 2
    engaged, completed = (t.frame for t in section.tables)
    # first and last months dropped; completion also needs 6 months after referral
    assert len(engaged) == 28
    assert completed["date"].max() < engaged["date"].max()
    assert engaged["percent"].between(0, 100).all()
    plt.close("all")


def test_kpi_section_flags_a_fall_in_engagement_as_concern(tmp_path):
    data, params = _kpi_scheme(tmp_path, drop_after=20)
    section = kpi_spc_section(data, None, params=params)
    engaged = section.tables[0].frame
    assert (engaged["point_type"].iloc[-8:] == "special_cause_concern").all()
    assert "special-cause" in section.text[0]
    plt.close("all")


def test_kpi_section_on_a_small_scheme_says_why(schemes):
    data, params = schemes["valley"]
    with pytest.raises(InsufficientData, match="not charted"):
        kpi_spc_section(data, None, params=params)


def test_area_section_draws_a_map_with_boundaries(schemes):
    data, params = schemes["hillcrest"]
    section = area_section(data, params=params)
    table = section.tables[0].frame
    assert not table["n_referrals"].dropna().astype(int).between(1, 7).any()
    assert table.loc[table["n_referrals"].isna(), "rate"].isna().all()
    ax = section.figures[0].axes[0]
    assert len(ax.collections) == 2  # shaded and hatched (hidden) areas
    plt.close("all")


def test_area_section_draws_a_funnel_without_boundaries(schemes):
    data, params = schemes["valley"]
    section = area_section(data, params=params)
    assert "funnel" in " ".join(section.text)
    assert set(section.tables[0].frame["funnel_position"].dropna()) <= {
        "within limits",
        "above (outside 95% limits)",
        "below (outside 95% limits)",
        "above (outside 99.8% limits)",
        "below (outside 99.8% limits)",
    }
    plt.close("all")


def test_read_boundaries_rejects_other_geometries(tmp_path):
    path = tmp_path / "b.geojson"
    path.write_text(
        json.dumps(
            {
                "features": [
                    {
                        "properties": {"lsoa_code": "E01000001"},
                        "geometry": {"type": "Point", "coordinates": [0, 0]},
                    }
                ]
            }
        )
    )
    with pytest.raises(ValueError, match="expected Polygon"):
        read_boundaries(path, "lsoa_code")


def test_read_boundaries_reads_polygons(example_root):
    shapes = read_boundaries(Path(example_root) / "hillcrest" / "boundaries.geojson", "lsoa_code")
    assert len(shapes) == 30
    assert all(ring.shape[1] == 2 for rings in shapes.values() for ring in rings)
