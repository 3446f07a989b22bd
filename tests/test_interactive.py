"""The interactive entry point (issue 18): open_scheme, tiers, and the report's numbers."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import spimpact
from spimpact.analyses.wellbeing import WellbeingResult
from spimpact.interactive import Analysis, Scheme, TierError, open_scheme
from spimpact.report.render import section_html


def _params(example_params, name):
    return next(p for p in example_params if p.stem == name)


@pytest.fixture(scope="module")
def published(example_params):
    return open_scheme(_params(example_params, "valley"))


@pytest.fixture(scope="module")
def analyst(example_params):
    return open_scheme(_params(example_params, "valley"), tier="analyst")


def test_import_spimpact_stays_light():
    code = (
        "import sys, spimpact; "
        "print('spimpact.interactive' in sys.modules, 'pandas' in sys.modules); "
        "spimpact.open_scheme; print('spimpact.interactive' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]
    assert spimpact.open_scheme is open_scheme and spimpact.Scheme is Scheme
    with pytest.raises(AttributeError):
        spimpact.no_such_name  # noqa: B018


def test_scheme_holds_validated_params_and_data(analyst):
    assert analyst.params.scheme_id == "valley"
    assert {"clients", "measures", "exclusions"} <= set(vars(analyst.data))
    assert len(analyst.data.clients) > 0


def test_analyses_are_fitted_once(analyst):
    assert analyst.wellbeing() is analyst.wellbeing()
    assert analyst.wellbeing().result is analyst.wellbeing().result


def _headline_estimates(scheme, section, measure):
    headline = scheme.section(section).headline
    return np.sort(headline.loc[headline["measure"] == measure, "estimate"].to_numpy(dtype=float))


def test_wellbeing_equals_the_reports_numbers(analyst):
    result = analyst.wellbeing().result
    assert isinstance(result, WellbeingResult)
    tidy = analyst.wellbeing().tidy()
    np.testing.assert_allclose(
        np.sort(tidy["estimate"].to_numpy()),
        _headline_estimates(analyst, "wellbeing", result.score),
        rtol=1e-12,
    )


def test_attrition_equals_the_reports_numbers(example_params):
    scheme = open_scheme(_params(example_params, "hillcrest"), tier="analyst")
    attrition = scheme.attrition()
    reported = _headline_estimates(scheme, "attrition", attrition.score)
    fitted = attrition.tidy()["estimate"].to_numpy()
    assert len(reported) >= 1
    for value in reported:
        assert np.isclose(fitted, value, rtol=1e-12).any()


def test_reach_and_attendance_are_the_reports(analyst):
    reach = analyst.reach()
    headline = analyst.section("reach").headline
    if headline is not None and (headline["measure"] == "referral_rate_sii").any():
        sii = headline.loc[headline["measure"] == "referral_rate_sii", "estimate"]
        tidy = reach.tidy().set_index("term")
        assert tidy.loc["sii", "estimate"] == pytest.approx(float(sii.iloc[0]), rel=1e-12)
    # the attendance section is built from the very object open_scheme returns
    assert analyst.attendance().result is analyst.report.attendance()


def test_equity_stacks_one_result_per_grouping(example_params):
    scheme = open_scheme(_params(example_params, "riverside"), tier="analyst")
    equity = scheme.equity()
    tidy = equity.tidy()
    assert set(tidy["part"]) == set(equity.result)
    table = next(
        t for t in scheme.section("equity").tables if t.name == "equity_change_imd_quintile"
    )
    reported = table.frame["estimate"].to_numpy(dtype=float)
    fitted = equity.result["imd_quintile"].changes["estimate"].round(2).to_numpy()
    np.testing.assert_allclose(fitted, reported)


def test_published_tier_shows_only_the_report_section(published):
    wellbeing = published.wellbeing()
    with pytest.raises(TierError, match="tier='analyst'"):
        wellbeing.result  # noqa: B018
    with pytest.raises(TierError):
        wellbeing.change  # noqa: B018
    section = published.section("wellbeing")
    assert wellbeing.summary() == "\n\n".join([section.title, *section.text, *section.notes])
    head, tail = section_html(section, level=3)
    assert wellbeing._repr_html_() == head + tail
    # model estimates are shown; they need no further control
    assert "estimate" in wellbeing.tidy().columns
    assert wellbeing.plot() is not None


def test_published_tier_controls_counts(published, analyst):
    html = published._repr_html_()
    reconciliation = published.data.reconciliation
    for value in reconciliation["n_read"]:
        if value % 5:
            assert f"<td>{value}</td>" not in html
    frame = pd.DataFrame({"term": ["a"], "estimate": [1.0], "n_people": [3]})

    class Fake:
        conf_level = 0.95

        def tidy(self, conf_level=None):
            return frame

    controlled = Analysis("fake", Fake(), scheme=published, section_name="wellbeing").tidy()
    assert pd.isna(controlled["n_people"].iloc[0])
    exact = Analysis("fake", Fake(), scheme=analyst, section_name="wellbeing").tidy()
    assert exact["n_people"].iloc[0] == 3


def test_analyst_tier_shows_the_result(analyst):
    wellbeing = analyst.wellbeing()
    assert wellbeing.summary() == wellbeing.result.summary()
    assert wellbeing.change is wellbeing.result.change
    assert "analyst tier" in wellbeing._repr_html_()


def test_unknown_tier_is_refused(example_params):
    with pytest.raises(ValueError, match="tier must be one of"):
        open_scheme(_params(example_params, "valley"), tier="public")
