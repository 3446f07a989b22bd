import json
import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from spimpact.analyses.maturity.section import MATURITY_COLUMNS
from spimpact.models.meta import fit_random_effects
from spimpact.publish.disclosure import format_for_publication
from spimpact.publish.section import HEADLINE_COLUMNS
from spimpact.report.summary import SUMMARY_COLUMNS, build_summary, meta_analyse_headlines

WELLBEING = "SWEMWBS metric change, baseline to 3 months"
SCHEMES = {
    # scheme_id: (title, SWEMWBS change, its SE, people, GP change)
    "north_shore": ("North Shore", 2.4, 0.5, 210, -0.4),
    "riverside": ("Riverside", 1.1, 0.7, 95, 0.2),
    "hillcrest": ("Hillcrest", 3.0, 0.9, 60, None),
}


def write_scheme(root, scheme_id, title, status="ok", reason=None, headline=None, maturity=None):
    folder = root / scheme_id
    (folder / "tables").mkdir(parents=True)
    (folder / "status.json").write_text(
        json.dumps({"scheme_id": scheme_id, "title": title, "status": status, "reason": reason})
    )
    if status == "ok":
        (folder / "report.html").write_text("<html></html>")
    if headline is not None:
        format_for_publication(headline).to_csv(folder / "tables" / "headline.csv", index=False)
    if maturity is not None:
        format_for_publication(maturity).to_csv(
            folder / "tables" / "data_maturity.csv", index=False
        )


def headline_rows(change, se, n, gp_change):
    rows = [
        ("person", WELLBEING, "swemwbs_metric", change, se, change - 1.96 * se,
         change + 1.96 * se, n, "paired mean change", 0.95),
        ("person", WELLBEING, "swemwbs_metric", change + 0.3, se, change + 0.3 - 1.96 * se,
         change + 0.3 + 1.96 * se, n, "multiple imputation", 0.95),
        ("community", "Community organisations clients were referred to", "n_organisations",
         40.0, np.nan, np.nan, np.nan, pd.NA, "count", np.nan),
    ]  # fmt: skip
    if gp_change is not None:
        rows.append(
            ("system", "GP appointments attended per person-year", "gp_rate", gp_change, 0.3,
             gp_change - 0.59, gp_change + 0.59, n, "Poisson GLMM", 0.9)
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))
    frame["n"] = frame["n"].astype("Int64")
    return frame


def maturity_rows(follow_up_rating):
    return pd.DataFrame(
        [
            ("Completeness", "clients with sex recorded", 99.0, 200, "good", "", "Record sex."),
            ("Follow-up", "clients with a follow-up", 40.0, 200, follow_up_rating, "1",
             "Book the follow-up questionnaire."),
        ],
        columns=list(MATURITY_COLUMNS),
    )  # fmt: skip


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Fabricated scheme output folders, with the summary built once for the module."""
    root = tmp_path_factory.mktemp("outputs")
    for scheme_id, (title, change, se, n, gp) in SCHEMES.items():
        write_scheme(
            root, scheme_id, title, headline=headline_rows(change, se, n, gp),
            maturity=maturity_rows("poor" if scheme_id == "riverside" else "fair"),
        )  # fmt: skip
    write_scheme(root, "valley", "Valley", status="failed", reason="clients.csv is empty")
    build_summary(root)
    return root


def test_summary_page_links_reports_and_shows_status(outputs):
    page = (outputs / "index.html").read_text(encoding="utf-8")
    for scheme_id, (title, *_) in SCHEMES.items():
        assert f'href="{scheme_id}/report.html">{title}</a>' in page
    assert 'href="valley/report.html"' not in page  # failed schemes have no report to link
    assert "clients.csv is empty" in page
    assert page.count('class="failed"') == 1


def test_summary_page_is_self_contained(outputs):
    page = (outputs / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "<script" not in page and "<link" not in page
    assert "data:image/png;base64," in page


def test_summary_groups_headlines_by_outcome_level(outputs):
    page = (outputs / "index.html").read_text(encoding="utf-8")
    page = page[page.index("<h2>Details") :]
    person = page.index("Impact on the person")
    system = page.index("Impact on the health and care system")
    community = page.index("Impact on the community")
    assert person < system < community
    assert page.index(WELLBEING) > person
    assert "2.40" in page and "1.42 to 3.38 (95%)" in page  # estimate and CI of North Shore
    assert "(90%)" in page  # each interval is labelled with its own scheme's level
    assert 'href="north_shore/tables/headline.csv"' in page  # the data behind it
    assert "Other results" not in page  # only shown for rows outside the three levels


def test_meta_analysis_pools_only_outcomes_shared_by_two_or_more_schemes(outputs):
    headlines = pd.read_parquet(outputs / "headline_estimates.parquet")
    table, fits = meta_analyse_headlines(headlines)
    # Wellbeing (3 schemes) and GP attendance (2 schemes) are pooled; the community
    # count has no standard error, so it is not.
    # person before system; each method of the wellbeing change is pooled separately
    assert table["measure"].tolist() == ["swemwbs_metric", "swemwbs_metric", "gp_rate"]
    assert table["method"].tolist()[:2] == ["multiple imputation", "paired mean change"]
    wellbeing = table.set_index("method").loc["paired mean change"]
    order = sorted(SCHEMES)  # rows are sorted by scheme_id
    direct = fit_random_effects(
        [SCHEMES[s][1] for s in order], [SCHEMES[s][2] for s in order],
        method="REML", hartung_knapp=True,
    )  # fmt: skip
    assert wellbeing["k"] == 3
    assert_allclose(
        [wellbeing["estimate"], wellbeing["conf_low"], wellbeing["conf_high"]],
        [direct.estimate, direct.conf_low, direct.conf_high],
        rtol=1e-12,
    )


def test_headline_estimates_files_hold_every_scheme(outputs):
    from_csv = pd.read_csv(outputs / "headline_estimates.csv")
    from_parquet = pd.read_parquet(outputs / "headline_estimates.parquet")
    assert tuple(from_csv.columns) == SUMMARY_COLUMNS
    assert len(from_csv) == len(from_parquet) == 3 + 3 + 2 + 3
    assert set(from_csv["scheme_id"]) == set(SCHEMES)
    community = from_parquet[from_parquet["measure"] == "n_organisations"]
    assert community["n"].isna().all()  # suppressed on publication stays suppressed


def test_maturity_scorecard_shows_weakest_rating_and_advice(outputs):
    page = (outputs / "index.html").read_text(encoding="utf-8")
    scorecard = page[page.index("<h2>Data maturity") : page.index("<h2>Details")]
    # domains as rows, schemes side by side; the rating in words beside its mark
    assert scorecard.count('class="poor"><span aria-hidden="true">✗</span> poor') == 1
    assert scorecard.count('class="fair"><span aria-hidden="true">!</span> fair') == 2
    assert scorecard.count('class="good"><span aria-hidden="true">✓</span> good') == 3
    assert "Book the follow-up questionnaire." in scorecard


def test_summary_is_byte_identical_when_rebuilt(outputs):
    first = (outputs / "index.html").read_bytes()
    index = build_summary(outputs)
    assert index == outputs / "index.html"
    assert index.read_bytes() == first


def test_empty_outputs_folder_builds_a_page(tmp_path):
    page = build_summary(tmp_path).read_text(encoding="utf-8")
    assert "No scheme reports were found" in page


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"scheme_id": "a", "title": "A", "status": "done", "reason": None}, "'ok' or 'failed'"),
        ({"scheme_id": "a", "title": "A", "status": "ok"}, "missing keys"),
        ({"scheme_id": "b", "title": "A", "status": "ok", "reason": None}, "does not match"),
    ],
)
def test_bad_status_files_are_rejected(tmp_path, status, message):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "status.json").write_text(json.dumps(status))
    with pytest.raises(ValueError, match=message):
        build_summary(tmp_path)


def test_headline_without_required_columns_is_rejected(tmp_path):
    write_scheme(tmp_path, "a", "A", headline=pd.DataFrame({"outcome": ["x"]}))
    with pytest.raises(ValueError, match=r"headline\.csv: missing columns"):
        build_summary(tmp_path)


def test_headline_with_text_in_a_number_column_is_rejected(tmp_path):
    frame = headline_rows(2.4, 0.5, 210, None)
    frame["estimate"] = frame["estimate"].astype(object)
    frame.loc[1, "estimate"] = "about 40"
    write_scheme(tmp_path, "a", "A", headline=frame)
    with pytest.raises(ValueError, match=r"headline\.csv line 3, column 'estimate': 'about 40'"):
        build_summary(tmp_path)


def test_missing_outputs_folder_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        build_summary(tmp_path / "nowhere")


def test_board_page_one_is_the_outcome_by_scheme_matrix(outputs):
    page = (outputs / "index.html").read_text(encoding="utf-8")
    matrix = page[page.index("<h2>Outcomes by scheme") : page.index("<h2>Each outcome")]
    # one row per outcome (first method of each scheme), one column per reporting scheme
    assert matrix.count('<th scope="row">') == 3
    assert matrix.count('<th scope="col">') == 1 + 3
    # North Shore 2.40 (1.42 to 3.38) rules out no change in a better direction;
    # Riverside 1.10 (-0.27 to 2.47) does not
    assert re.search(r'class="cell-better">2\.40<br><span class=\'ci\'>1\.42 to 3\.38', matrix)
    assert re.search(r'class="cell-unclear">1\.10<br><span class=\'ci\'>-0\.27 to 2\.47', matrix)
    assert "✓</span> better" in matrix and "?</span> unclear" in matrix  # words beside colour
    assert 'class="cell-none">not reported' in matrix  # Hillcrest has no GP result
    assert page.index("<h2>Outcomes by scheme") < page.index("<h2>Details")


def test_board_forests_pool_three_schemes_and_not_two(outputs):
    page = (outputs / "index.html").read_text(encoding="utf-8")
    forests = page[page.index("<h2>Each outcome") : page.index("<h2>Data maturity")]
    alts = re.findall(r'<img alt="([^"]*)"', forests)
    assert len(alts) == 2  # wellbeing (3 schemes) and GP attendance (2 schemes)
    wellbeing = next(a for a in alts if WELLBEING in a)
    gp = next(a for a in alts if "GP appointments" in a)
    order = sorted(SCHEMES)
    direct = fit_random_effects(
        [SCHEMES[s][1] for s in order], [SCHEMES[s][2] for s in order],
        method="REML", hartung_knapp=True,
    )  # fmt: skip
    assert f"Pooled estimate {direct.estimate:.2f} ({direct.conf_low:.2f} to " in wellbeing
    assert "North Shore 2.40 (1.42 to 3.38)" in wellbeing
    assert "Not pooled: fewer than three schemes" in gp
