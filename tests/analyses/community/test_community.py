"""Connecting people to their community: support offered, by activity, and its headline."""

import pandas as pd
import pytest

from spimpact.analyses.community import analyse_community, community_section
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data

N_CLIENTS = 40


def fabricated_scheme(tmp_path, *, support=True):
    """40 clients; 30 connected to arts and culture, 3 of them also to housing, via 6
    organisations."""
    ids = [f"C{i:03d}" for i in range(N_CLIENTS)]
    clients = pd.DataFrame({"client_id": ids, "sex": ["female", "male"] * (N_CLIENTS // 2)})
    support_frame = pd.DataFrame(
        {
            "client_id": ids[:30] + ids[:3],
            "activity_type": ["arts_culture"] * 30 + ["housing"] * 3,
            "organisation_id": [f"ORG-{i % 6}" for i in range(33)],
        }
    )
    return SchemeData(
        data_dir=tmp_path,
        clients=clients,
        measures=pd.DataFrame(columns=["client_id", "measure", "timepoint"]),
        reconciliation=pd.DataFrame(columns=["table", "n_read", "n_used", "n_excluded"]),
        exclusions=pd.DataFrame(),
        non_standard=pd.DataFrame(columns=["measure", "issue", "n_rows", "detail"]),
        support_offered=support_frame if support else None,
    )


def params(tmp_path):
    return SchemeParams(scheme_id="test_scheme", title="Test", data_dir=tmp_path)


def tables_of(section):
    return {table.name: table.frame for table in section.tables}


def test_community_section_counts_and_headline(tmp_path):
    scheme = fabricated_scheme(tmp_path)
    section = community_section(scheme, params=params(tmp_path))
    activity = tables_of(section)["support_by_activity"].set_index("activity")
    assert activity.loc["Arts and culture", "n_clients"] == 30
    assert pd.isna(activity.loc["Housing", "n_clients"])  # 3 clients: suppressed
    assert activity.loc["Volunteering", "n_clients"] == 0
    headline = section.headline.set_index("measure")
    assert tuple(section.headline.columns) == HEADLINE_COLUMNS
    assert (section.headline["outcome_level"] == "community").all()
    assert headline.loc["n_clients_connected", "estimate"] == 30
    assert headline.loc["pct_clients_connected", "estimate"] == 75  # 30 of 40
    assert headline.loc["n_organisations", "estimate"] == 6
    assert headline.loc["n_clients_connected", "n"] == 40


def test_community_without_support_offered_is_insufficient(tmp_path):
    scheme = fabricated_scheme(tmp_path, support=False)
    with pytest.raises(InsufficientData, match="support offered"):
        community_section(scheme, params=params(tmp_path))


def test_community_analysis_keeps_organisations_as_counted(tmp_path):
    result = analyse_community(fabricated_scheme(tmp_path), params=params(tmp_path))
    assert result.n_organisations == 6  # not about individuals: not rounded
    assert (result.n_clients_connected_published, result.n_clients_published) == (30, 40)
    assert result.percent_connected == 75
    assert result.activities["activity"].iloc[0] == "Arts and culture"


@pytest.mark.slow
def test_community_section_on_example_scheme(tmp_path, load_example):
    scheme_spec = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "valley")
    (folder,) = write_example_data(tmp_path, schemes=(scheme_spec,))
    scheme = load_example(folder)
    scheme_params = SchemeParams(scheme_id="valley", title="Valley", data_dir=folder)
    community = community_section(scheme, params=scheme_params)
    assert community.headline["estimate"].notna().all()
