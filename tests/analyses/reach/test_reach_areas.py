"""Reach by area: the map with boundaries, the funnel plot without."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

from spimpact.analyses.reach import analyse_areas, area_section
from spimpact.analyses.reach.areas import funnel_positions


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


def test_area_analysis_reads_boundaries_from_the_data_folder(schemes):
    data, params = schemes["hillcrest"]
    result = analyse_areas(data, params=params)
    assert result.shapes is not None and len(result.shapes) == 30
    assert result.n_hidden == result.areas["n_referrals"].isna().sum()
    valley, valley_params = schemes["valley"]
    assert analyse_areas(valley, params=valley_params).shapes is None
