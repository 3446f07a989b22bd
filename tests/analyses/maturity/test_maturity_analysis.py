"""Data-maturity analysis: the scorecard, its ranking and what to improve first."""

import pytest

from spimpact.analyses.maturity import MATURITY_COLUMNS, RATINGS, analyse_maturity
from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.publish.section import InsufficientData


def _params(tmp_path):
    return SchemeParams(scheme_id="t", title="T", data_dir=tmp_path)


def test_scorecard_ranks_what_to_improve_first(tmp_path, make_scheme):
    scheme, scores = make_scheme(tmp_path, n_ethnic_unknown=30)
    result = analyse_maturity(
        scheme, scores, non_standard=scheme.non_standard, params=_params(tmp_path)
    )
    assert tuple(result.scorecard.columns) == MATURITY_COLUMNS
    assert set(result.scorecard["rating"]) <= set(RATINGS)
    assert result.n_good == (result.scorecard["rating"] == "good").sum()
    first = result.improve_first(3)
    assert first["priority"].tolist() == ["1", "2", "3"]
    assert first["rating"].iloc[0] == "poor"


def test_analysis_without_clients_is_insufficient(tmp_path, make_scheme):
    scheme, scores = make_scheme(tmp_path)
    empty = SchemeData(**{**scheme.__dict__, "clients": scheme.clients.iloc[0:0]})
    with pytest.raises(InsufficientData, match="no client records"):
        analyse_maturity(empty, scores, non_standard=None, params=_params(tmp_path))
