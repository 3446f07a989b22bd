import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from simulated_attrition import make_params, make_scheme

from spimpact.analyses.attrition.data import AttritionData
from spimpact.analyses.attrition.section import (
    HEADLINE_METHODS,
    attrition_section,
    make_table_completer_balance,
)
from spimpact.publish.disclosure import DisclosureRule
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def section():
    scheme, scores = make_scheme(n=400)
    return attrition_section(scheme, scores, params=make_params())


def test_section_tables_are_disclosure_controlled(section):
    names = [table.name for table in section.tables]
    assert names == [
        "attrition_funnel",
        "attrition_completers_vs_non_completers",
        "attrition_change_estimates",
        "attrition_tipping_point",
        "attrition_ipw_weights",
        "attrition_dropout_predictors",
        "attrition_retention_logrank",
    ]
    tables = {table.name: table.frame for table in section.tables}
    for counts in (
        tables["attrition_funnel"]["n_people"],
        tables["attrition_change_estimates"]["n_people"],
        tables["attrition_ipw_weights"]["n_observed"],
        tables["attrition_ipw_weights"]["effective_sample_size"],
    ):
        shown = counts.dropna().astype(int)
        assert (shown % 5 == 0).all()
    # no identifiers anywhere in the published tables
    for frame in tables.values():
        text = frame.astype(str).to_numpy().ravel()
        assert not any(re.fullmatch(r"c\d{4}", cell) for cell in text)


def test_section_headline_and_text(section):
    headline = section.headline
    assert list(headline.columns) == list(HEADLINE_COLUMNS)
    assert set(headline["outcome_level"]) == {"person"}
    assert list(headline["method"]) == list(HEADLINE_METHODS.values())
    assert (headline["conf_low"] < headline["estimate"]).all()
    assert (headline["estimate"] < headline["conf_high"]).all()
    assert headline["n"].dropna().astype(int).mod(5).eq(0).all()
    text = " ".join(section.text)
    assert "points worse at each follow-up after they left" in text
    assert "stacked estimating equations" in text
    assert "back at their baseline" in text
    assert "log(-log)" in text
    assert len(section.figures) == 2


@pytest.mark.parametrize(
    ("n", "p_missing_shift", "message"),
    [(15, 0.0, "at least 20 people"), (300, -12.0, "cannot materially bias")],
)
def test_insufficient_data_gives_plain_sentence(n, p_missing_shift, message):
    scheme, scores = make_scheme(n=n, seed=2, p_missing_shift=p_missing_shift)
    with pytest.raises(InsufficientData, match=message):
        attrition_section(scheme, scores, params=make_params())


def test_completer_balance_smd_and_suppression():
    frame = pd.DataFrame(
        {
            "client_id": [str(i) for i in range(40)],
            "baseline": np.r_[np.full(20, 20.0), np.full(20, 18.0)] + np.tile([-1.0, 1.0], 20),
            "follow_up_1": np.r_[np.full(20, 22.0), np.full(20, np.nan)],
            "sex": ["female"] * 15 + ["male"] * 5 + ["female"] * 10 + ["male"] * 10,
        }
    )
    frame["change"] = frame["follow_up_1"] - frame["baseline"]
    data = AttritionData(frame, "swemwbs_metric", (1,), ("sex",), ("sex",), "baseline + C(sex)")
    table = make_table_completer_balance(data, rule=DisclosureRule()).set_index(
        ["characteristic", "level"]
    )
    sd = np.sqrt(np.var([-1.0, 1.0] * 10, ddof=1))
    assert_allclose(table.loc[("Baseline score", "mean"), "smd"], round(2 / sd, 3))
    assert table.loc[("Baseline score", "mean"), "completers"] == 20.0
    # 5 completers are male: a count of 1-7 people, so its SMD is withheld
    assert pd.isna(table.loc[("Sex", "male"), "smd"])
    p1, p0 = 15 / 20, 10 / 20
    assert_allclose(
        table.loc[("Sex", "female"), "smd"],
        round((p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2), 3),
    )


@pytest.mark.parametrize("scheme_id", ["valley"])
def test_example_scheme_has_the_section(example_data, scheme_id):
    """The smallest example scheme (150 referrals) still supports the section."""
    from spimpact.analyses.measures import score_scheme
    from spimpact.io import load_scheme_from_params
    from spimpact.params import load_params

    params = load_params(Path(__file__).parents[3] / "params" / f"{scheme_id}.yaml")
    params = params.model_copy(update={"data_dir": example_data / scheme_id})
    scheme = load_scheme_from_params(params)
    scores = score_scheme(scheme, params).scores
    section = attrition_section(scheme, scores, params=params)
    # sequential weighting and imputation at each of the two follow-ups
    assert len(section.headline) == 4
    assert section.headline["estimate"].notna().all()
    estimates = {t.name: t.frame for t in section.tables}["attrition_change_estimates"]
    assert set(estimates["method"]) >= {
        "Sequential inverse probability weighting", "Mixed model for repeated measures",
        "Multiple imputation, people who left back at baseline",
    }  # fmt: skip


def test_section_without_contacts_or_discharges():
    """Optional data missing: no contacts table and no discharge columns."""
    scheme, scores = make_scheme(n=200, seed=9)
    clients = scheme.clients.drop(columns=["discharge_date", "discharge_reason"])
    section = attrition_section(
        SimpleNamespace(clients=clients, contacts=None), scores, params=make_params()
    )
    funnel = {t.name: t.frame for t in section.tables}["attrition_funnel"]
    assert funnel["stage"].str.contains("contact|Discharged").sum() == 0
    assert len(section.headline) == 2
    assert any("disengaged" in note for note in section.notes)
