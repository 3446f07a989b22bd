"""End to end: refreshes of one scheme with `spimpact run` (issue 17).

Valley is reported on the usual example extract, its analysis plan frozen, then
reported on a later extract (three more months of referrals) with one plan item
changed, then on data that shrank with two quotes approved, then once more on the same
inputs. The reports and the ICB page must show the plan-change box and mark, the
history trend and the "changed since last refresh" flags; unapproved quotes never
appear, approved ones do; re-running on the same inputs and history is byte-identical.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pandas as pd
import pytest
import yaml

from spimpact.cli import main
from spimpact.paths import ANALYST_DIR, HISTORY_DIR
from spimpact.publish.privacy import ANALYST_ONLY_MARK
from spimpact.runner import run_reports
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data

pytestmark = pytest.mark.e2e

QUIET = {"progress": lambda _: None, "summary": True}
PLAN = {
    "primary_outcome": "swemwbs_metric",
    "time_point": "3 months",
    "estimand": "mean change in clients who completed",
    "comparison_design": "before and after, no comparison group",
    "covariates": ["age", "imd_decile"],
    "dropout_handling": "multiple imputation under missing at random",
    "multiplicity": "one primary outcome; the others exploratory",
}


@pytest.fixture(scope="module")
def refreshes(example_params, tmp_path_factory):
    root = tmp_path_factory.mktemp("refresh")
    valley = next(p for p in example_params if p.stem == "valley")
    raw = yaml.safe_load(valley.read_text(encoding="utf-8"))
    raw.pop("mapping", None)  # both extracts are written as the contract's tables
    spec = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "valley")
    spec = replace(spec, export="contract", recording=None)
    (usual,) = write_example_data(root / "usual", schemes=(spec,))
    raw["data_dir"] = str(usual)
    params = root / "params" / "valley.yaml"
    params.parent.mkdir()
    out = root / "out"

    def run(**changes):
        raw.update(changes)
        params.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        (outcome,) = run_reports([params], output_root=out, force=True, **QUIET)
        assert outcome.status == "ok", outcome.reason
        return {
            "report": (out / "valley" / "report.html").read_text(encoding="utf-8"),
            "index": (out / "index.html").read_text(encoding="utf-8"),
            "tables": {
                p.stem: p.read_text(encoding="utf-8")
                for p in (out / "valley" / "tables").glob("*.csv")
            },  # fmt: skip
        }

    first = run(plan=PLAN, maturity={"goals": [
        {"check": "clients with ethnic category recorded", "target_percent": 99,
         "by": "2026-06-30"}]})  # fmt: skip
    assert main(["plan", "freeze", str(params)]) == 0
    (later,) = write_example_data(root / "later", schemes=(spec,), later_months=3)
    second = run(data_dir=str(later), plan={**PLAN, "estimand": "mean change in all referred"})
    assert main(["quotes", "review", str(params), "--output-dir", str(out)]) == 0
    review = (out / ANALYST_DIR / "valley" / "quote_review.csv").read_text(encoding="utf-8")
    lines = [line.split(",")[-1] for line in review.splitlines()[2:4]]
    (root / "params" / "valley.approved-quotes.txt").write_text("\n".join(lines) + "\n")
    shrunk = root / "shrunk"
    shutil.copytree(later, shrunk)
    contacts = pd.read_csv(shrunk / "contacts.csv", dtype=str, keep_default_na=False)
    contacts.iloc[:-60].to_csv(shrunk / "contacts.csv", index=False)
    third = run(data_dir=str(shrunk))
    history = {p.name: p.read_bytes() for p in (out / HISTORY_DIR / "valley").iterdir()}
    fourth = run()  # the same inputs and history again
    return {"out": out, "runs": (first, second, third, fourth), "history": history,
            "approved": [line.split()[0] for line in lines]}  # fmt: skip


def test_plan_change_box_and_icb_mark(refreshes):
    first, second, _, _ = refreshes["runs"]
    assert "Analysis plan changed" not in first["report"]
    assert "analysis plan changed on" not in first["index"]
    report = second["report"]
    assert '<div class="alert"><h2>Analysis plan changed on 2026-03-' in report
    assert "mean change in clients who completed → mean change in all referred" in report
    assert "analysis plan changed on 2026-03-" in second["index"]
    assert "estimand" in second["tables"]["analysis_plan_changes"]


def test_history_trend_and_changed_since_last_refresh(refreshes):
    first, second, third, _ = refreshes["runs"]
    assert "This is the first refresh recorded" in first["report"]
    assert "Refresh 2 (data to 2026-03-" in second["report"]
    trend = second["tables"]["refresh_trend"]
    assert "2025-12-" in trend and "2026-03-" in trend
    assert "Headline results at each refresh" in second["report"]
    assert "maturity_history" in second["tables"] and "maturity_goals" in second["tables"]
    flags = third["tables"]["refresh_flags"]
    assert "contacts rows" in flags and "the data shrank" in flags
    assert "change(s) since the last refresh are flagged" in third["report"]
    assert "Changed since last refresh" in third["index"] and "the data shrank" in third["index"]


def test_only_approved_quotes_are_published(refreshes):
    _, second, third, _ = refreshes["runs"]
    assert "consent to quote and approved" not in second["report"]  # none approved yet
    assert "shown only through its themes" in second["report"]
    assert "“" not in second["report"]
    assert "Quotes from feedback given with consent to quote and approved" in third["report"]
    assert third["report"].count("<blockquote>") == 2


def test_review_sheet_stays_in_the_analyst_tier(refreshes):
    out = refreshes["out"]
    assert (out / ANALYST_DIR / "valley" / "quote_review.html").is_file()
    for path in (out / "valley").rglob("*"):
        if path.is_file() and path.suffix in (".html", ".csv", ".json", ".ipynb"):
            assert ANALYST_ONLY_MARK not in path.read_text(encoding="utf-8"), path.name
    for approved in refreshes["approved"]:
        assert approved not in refreshes["runs"][2]["report"]  # ids never published


def test_rerun_on_the_same_inputs_and_history_is_byte_identical(refreshes):
    _, _, third, fourth = refreshes["runs"]
    assert third == fourth
    out = refreshes["out"]
    assert refreshes["history"] == {
        p.name: p.read_bytes() for p in (out / HISTORY_DIR / "valley").iterdir()
    }
