"""The reach, KPI and area sections on the two small example schemes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from spimpact.analyses.reach import (
    analyse_areas,
    analyse_kpis,
    area_section,
    kpi_spc_section,
    reach_section,
)
from spimpact.params import SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data


@pytest.fixture(scope="module")
def example_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("reach_example")
    # the two small example schemes keep this fixture quick
    write_example_data(
        root, schemes=[s for s in EXAMPLE_SCHEMES if s.scheme_id in ("valley", "hillcrest")]
    )
    return root


@pytest.fixture(scope="module")
def schemes(example_root, load_example):
    loaded = {}
    for scheme_id in ("valley", "hillcrest"):
        data = load_example(example_root / scheme_id)
        params = SchemeParams(
            scheme_id=scheme_id, title=scheme_id, data_dir=example_root / scheme_id
        )
        loaded[scheme_id] = (data, params)
    return loaded


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


def test_kpi_section_on_a_small_scheme_says_why(schemes):
    data, params = schemes["valley"]
    with pytest.raises(InsufficientData, match="not charted"):
        kpi_spc_section(data, None, params=params)


def test_kpi_analysis_on_a_small_scheme_has_no_chart(schemes):
    data, params = schemes["valley"]
    result = analyse_kpis(data, None, params=params)
    assert all(kpi.chart is None and kpi.unit == "quarter" for kpi in result.charts)


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


def test_area_analysis_reads_boundaries_from_the_data_folder(schemes):
    data, params = schemes["hillcrest"]
    result = analyse_areas(data, params=params)
    assert result.shapes is not None and len(result.shapes) == 30
    assert result.n_hidden == result.areas["n_referrals"].isna().sum()
    valley, valley_params = schemes["valley"]
    assert analyse_areas(valley, params=valley_params).shapes is None
