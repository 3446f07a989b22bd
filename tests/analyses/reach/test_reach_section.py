"""The "Reach" section on example schemes: tables, headline and disclosure control."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from spimpact.analyses.reach import reach_section
from spimpact.publish.section import HEADLINE_COLUMNS


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
