"""Data-quality diagnostics (issue 18) on the hillcrest example, which has exclusions."""

import pandas as pd
import pytest

from spimpact.analyses.overview import diagnostics as dx
from spimpact.interactive import open_scheme


@pytest.fixture(scope="module")
def scheme(example_params):
    params = next(p for p in example_params if p.stem == "hillcrest")
    return open_scheme(params, tier="analyst").data


def test_every_exclusion_is_listed_with_its_file_and_line(scheme):
    table = dx.exclusions_list(scheme)
    assert len(table) == len(scheme.exclusions) > 0
    assert list(table.columns) == ["reason", "file", "line", "column", "value"]
    lines = scheme.exclusions["line"] if "line" in scheme.exclusions else scheme.exclusions["row"]
    assert sorted(table["line"].astype(int)) == sorted(lines.astype(int))
    assert table["file"].str.len().gt(0).all()
    by_reason = dx.exclusions_by_reason(scheme)
    assert by_reason["n_rows"].sum() == len(table.drop_duplicates(["reason", "file", "line"]))


def test_completeness_by_month(scheme):
    table = dx.completeness_by_month(scheme)
    assert table["n_clients"].sum() == len(scheme.clients)
    shares = table.drop(columns=["referral_month", "n_clients"])
    assert ((shares >= 0) & (shares <= 100)).all().all()
    month = table["referral_month"].iloc[0]
    clients = scheme.clients[
        pd.to_datetime(scheme.clients["referral_date"]).dt.strftime("%Y-%m") == month
    ]
    baseline = set(scheme.measures.loc[scheme.measures["timepoint"] == 0, "client_id"])
    expected = round(100 * clients["client_id"].isin(baseline).mean(), 1)
    assert table["baseline measure"].iloc[0] == pytest.approx(expected)


def test_measure_use_by_site_prefers_a_recorded_link_worker(scheme):
    by_practice = dx.measure_use_by_site(scheme)
    assert by_practice.columns[0] == "practice_code"
    assert by_practice["n_clients"].sum() == len(scheme.clients)
    workers = scheme.clients.assign(link_worker=["A", "B"] * (len(scheme.clients) // 2)
                                    + ["A"] * (len(scheme.clients) % 2))  # fmt: skip
    with_worker = dx.measure_use_by_site(type(scheme)(**{**scheme.__dict__, "clients": workers}))
    assert list(with_worker["link_worker"]) == ["A", "B"]
    assert dx.measure_use_by_site(scheme, columns=("site",)).empty
