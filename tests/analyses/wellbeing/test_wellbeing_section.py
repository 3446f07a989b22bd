import pandas as pd
import pytest
from simulated_wellbeing import make_scheme

from spimpact.analyses.wellbeing.section import wellbeing_section
from spimpact.params import SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, Section


@pytest.fixture(scope="module")
def params():
    return SchemeParams(scheme_id="test", title="Test scheme", data_dir=".")


@pytest.fixture(scope="module")
def section(params):
    swemwbs, clients = make_scheme(n_clients=150, seed=3)
    who5, _ = make_scheme(n_clients=150, seed=4, score="who5_pct")
    who5 = who5.assign(value=who5.value * 2)
    params = params.model_copy(
        update={"measures": params.measures.model_copy(update={"primary": "who5"})}
    )
    return wellbeing_section(pd.concat([swemwbs, who5]), clients, params=params)


def test_section_reports_every_measure_primary_first(section):
    assert isinstance(section, Section)
    change = section.tables[0].frame
    assert change.score.unique().tolist() == ["WHO-5 (percentage score)", "SWEMWBS (metric score)"]
    assert [t.name for t in section.tables] == [
        "wellbeing_change",
        "wellbeing_model_sensitivity",
        "wellbeing_change_categories",
        "wellbeing_subgroups",
        "wellbeing_models",
    ]
    assert len(section.figures) == 3
    assert section.text[0].startswith("WHO-5 (percentage score) rose on average")


def test_section_headline_rows(section):
    headline = section.headline
    assert list(headline.columns) == list(HEADLINE_COLUMNS)
    assert set(headline.outcome_level) == {"person"}
    assert headline.outcome.iloc[0] == "WHO-5 (percentage score) change, baseline to 3 months"
    assert (headline.n.dropna() % 5 == 0).all()


def test_section_tables_are_disclosure_controlled(section):
    for table in section.tables:
        frame = table.frame
        for column in [c for c in frame.columns if c.startswith("n_") or c == "n"]:
            counts = pd.to_numeric(frame[column], errors="coerce").dropna()
            assert (counts % 5 == 0).all(), (table.name, column)
    subgroups = {table.name: table.frame for table in section.tables}["wellbeing_subgroups"]
    small = subgroups.n_people.isna()
    assert subgroups.loc[small, "estimate"].isna().all()


def test_section_shows_the_random_intercept_model_as_a_sensitivity_row(section):
    tables = {table.name: table.frame for table in section.tables}
    sensitivity = tables["wellbeing_model_sensitivity"]
    models = sensitivity.groupby(["score", "follow_up"]).model.apply(list)
    assert all(
        names == ["MMRM, unstructured covariance (headline)",
                  "Random intercept per client (sensitivity)"]
        for names in models
    )  # fmt: skip
    change = tables["wellbeing_change"]
    assert (change.model_df > 80).all()  # ~100 clients with a follow-up: df near that
    assert "repeated measures" in section.headline.method.iloc[0]
    assert "degrees of freedom" in section.text[0]
