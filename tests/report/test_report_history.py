"""The refresh history store, "changed since last refresh" flags and the plan-change box."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.maturity.tracking import goal_progress, rating_history
from spimpact.params import MaturityGoal, ParamsError, PlanParams, SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS
from spimpact.report.history import (
    append_refresh,
    data_date,
    empty_history,
    read_history,
    refresh_flags,
    run_key,
    trend_table,
)
from spimpact.report.plan import (
    freeze_plan,
    plan_differences,
    plan_record,
    plan_sha256,
    read_lock,
)
from spimpact.report.refresh import plan_change, plan_change_section, refresh_history_section

PLAN = {
    "primary_outcome": "swemwbs_metric",
    "time_point": "3 months",
    "estimand": "mean change in clients who completed",
    "comparison_design": "before and after",
    "covariates": ["age", "imd_decile"],
    "dropout_handling": "multiple imputation",
    "multiplicity": "one primary outcome",
}


def headline(estimate, low, high, n, *, measure="swemwbs_metric"):
    row = dict.fromkeys(HEADLINE_COLUMNS)
    row.update(outcome_level="person", outcome=f"{measure} change", measure=measure,
               estimate=estimate, std_error=0.5, conf_low=low, conf_high=high, n=n,
               method="paired", conf_level=0.95)  # fmt: skip
    return row


def provenance(inputs="a", data_to="2025-12-31", plan=PLAN, records=None):
    return {
        "params_sha256": "p" * 64,
        "inputs_sha256": {"clients.csv": inputs},
        "plan_lock": None,
        "approved_quotes_sha256": None,
        "code_sha256": "c" * 64,
        "data_date": data_to,
        "records": records or {"clients": 150},
        "plan_sha256": plan_sha256(plan),
        "plan": plan,
    }


def maturity(rating="fair", percent=85.0):
    return pd.DataFrame({"domain": ["Completeness"], "check": ["clients with sex recorded"],
                         "percent": [percent], "rating": [rating]})  # fmt: skip


def test_history_appends_refreshes_and_replaces_a_rerun_byte_for_byte(tmp_path):
    folder = tmp_path / "history" / "valley"
    append_refresh(folder, provenance("a"), pd.DataFrame([headline(2.0, 1.0, 3.0, 100)]),
                   maturity())  # fmt: skip
    second = provenance("b", "2026-03-31")
    append_refresh(folder, second, pd.DataFrame([headline(4.0, 3.0, 5.0, 120)]), maturity("good"))
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    history = append_refresh(
        folder, second, pd.DataFrame([headline(4.0, 3.0, 5.0, 120)]), maturity("good")
    )  # the same inputs again: replaced, not added
    assert files == {p.name: p.read_bytes() for p in folder.iterdir()}
    assert history.refreshes["data_to"].tolist() == ["2025-12-31", "2026-03-31"]
    assert read_history(folder).headlines["estimate"].tolist() == [2.0, 4.0]
    before = read_history(folder).before(run_key(second))
    assert before.refreshes["refresh"].tolist() == [1]
    assert read_history(folder).before("new").refreshes["refresh"].tolist() == [1, 2]


def test_flags_an_estimate_outside_the_previous_interval_and_shrinking_data(tmp_path):
    folder = tmp_path / "h"
    previous = append_refresh(
        folder,
        provenance(records={"clients": 150, "measures": 400}),
        pd.DataFrame([headline(2.0, 1.0, 3.0, 100), headline(0.1, 0.0, 0.2, 50, measure="ons4"),
                      headline(5.0, 4.0, 6.0, 60, measure="ucla3")]),
        None,
    )  # fmt: skip
    current = pd.DataFrame(
        [
            headline(3.5, 2.5, 4.5, 90),
            headline(0.15, 0.0, 0.3, 50, measure="ons4"),
            headline(1.0, 0.5, 1.5, 30, measure="who5"),
        ]
    )
    flags = refresh_flags(previous, current, {"clients": 145, "measures": 400})
    found = set(zip(flags["measure"], flags["flag"], strict=True))
    assert ("swemwbs_metric", "moved beyond the previous confidence interval") in found
    assert ("swemwbs_metric", "fewer people (100 to 90)") in found
    assert ("who5", "new result since the last refresh") in found
    assert ("ucla3", "no longer reported") in found
    assert not any(m == "ons4" for m, _ in found)  # within its interval
    shrank = flags[flags["flag"].str.startswith("the data shrank")]
    assert shrank["outcome"].tolist() == ["clients rows"] and shrank["estimate"].tolist() == [145]
    assert refresh_flags(empty_history(), current, {"clients": 1}).empty


def test_trend_lists_every_refresh_in_order(tmp_path):
    previous = append_refresh(tmp_path / "h", provenance(), pd.DataFrame([headline(2, 1, 3, 100)]),
                              None)  # fmt: skip
    trend = trend_table(previous, pd.DataFrame([headline(3, 2, 4, 110)]), "2026-03-31")
    assert trend[["refresh", "data_to", "estimate"]].values.tolist() == [
        [1, "2025-12-31", 2.0], [2, "2026-03-31", 3.0]
    ]  # fmt: skip


def test_history_section_shows_the_trend_flags_and_maturity_goals(tmp_path):
    previous = append_refresh(tmp_path / "h", provenance(), pd.DataFrame([headline(2, 1, 3, 100)]),
                              maturity("poor", 60.0))  # fmt: skip
    params = SchemeParams(
        scheme_id="x", title="X", data_dir=tmp_path,
        maturity={"goals": [{"check": "Clients with sex recorded", "target_percent": 80,
                             "by": "2026-06-30"}]},
    )  # fmt: skip
    section = refresh_history_section(
        previous, pd.DataFrame([headline(4, 3, 5, 100)]), data_to="2026-03-31",
        records={"clients": 150}, scorecard=maturity("fair", 85.0), params=params,
    )  # fmt: skip
    tables = {t.name: t.frame for t in section.tables}
    assert "1 change(s) since the last refresh are flagged" in " ".join(section.text)
    assert tables["refresh_flags"]["flag"].tolist() == [
        "moved beyond the previous confidence interval"
    ]
    assert len(section.figures) == 1
    history = tables["maturity_history"]
    assert history.columns.tolist()[-3:] == ["2025-12-31 (#1)", "2026-03-31 (#2)", "since_last"]
    assert history["since_last"].tolist() == ["better"]
    assert tables["maturity_goals"]["status"].tolist() == ["met"]


def test_goal_progress_statuses():
    card = pd.DataFrame({"check": ["a", "b", "c"], "percent": [50.0, 99.0, np.nan]})
    goals = [MaturityGoal(check=c, target_percent=90, by=date(2026, 6, 30))
             for c in ("a", "b", "c", "zzz")]  # fmt: skip
    now = goal_progress(card, goals, data_to="2026-03-31")["status"].tolist()
    assert now == ["not yet met", "met", "cannot tell (percentage withheld)", "no such check"]
    assert goal_progress(card, goals[:1], data_to="2026-07-31")["status"].tolist() == ["missed"]


def test_rating_history_directions():
    previous = pd.DataFrame({"refresh": [1, 1], "data_to": ["2025-06-30"] * 2,
                             "domain": ["D", "D"], "check": ["a", "b"],
                             "rating": ["poor", "good"]})  # fmt: skip
    now = pd.DataFrame({"domain": ["D", "D", "D"], "check": ["a", "b", "c"],
                        "rating": ["fair", "poor", "good"]})  # fmt: skip
    table = rating_history(previous, now, data_to="2025-12-31")
    assert table["since_last"].tolist() == ["better", "worse", "new"]


def test_plan_change_against_the_lock_is_dated_by_its_first_refresh(tmp_path):
    params_path = tmp_path / "params" / "x.yaml"
    params_path.parent.mkdir()
    params_path.write_text("", encoding="utf-8")
    frozen = SchemeParams(scheme_id="x", title="X", data_dir=tmp_path, plan=PLAN)
    lock_file = freeze_plan(params_path, frozen, data_date="2025-12-31")
    assert lock_file.name == "x.plan-lock.json"
    lock = read_lock(params_path)
    assert lock["frozen_on_data_to"] == "2025-12-31"
    assert {k: lock["plan"][k] for k in PLAN} == PLAN
    assert lock["plan"]["settings"]["comparison.washout_months_before"] == 3
    changed = frozen.model_copy(update={"plan": PlanParams(**{**PLAN, "estimand": "ATE"})})
    assert plan_change(frozen, empty_history(), lock=lock, data_to="2026-03-31").empty
    changes = plan_change(changed, empty_history(), lock=lock, data_to="2026-03-31")
    assert changes.values.tolist() == [
        ["estimand", "mean change in clients who completed", "ATE", "2026-03-31"]
    ]
    section = plan_change_section(changes, locked=True)
    assert section.title == "Analysis plan changed on 2026-03-31"
    assert "**estimand**: mean change in clients who completed → ATE" in section.text[0]
    # a later refresh with the same changed plan keeps the date of the change
    history = append_refresh(tmp_path / "h", provenance(data_to="2026-03-31",
                             plan=plan_record(changed)), pd.DataFrame([headline(1, 0, 2, 9)]),
                             None)  # fmt: skip
    later = plan_change(changed, history, lock=lock, data_to="2026-06-30")
    assert later["changed_on"].tolist() == ["2026-03-31"]


def test_a_changed_analysis_setting_is_a_change_of_plan(tmp_path):
    """Same plan words, a longer washout in params: flagged against the lock."""
    params_path = tmp_path / "params" / "x.yaml"
    params_path.parent.mkdir()
    params_path.write_text("", encoding="utf-8")
    frozen = SchemeParams(scheme_id="x", title="X", data_dir=tmp_path, plan=PLAN)
    freeze_plan(params_path, frozen, data_date="2025-12-31")
    lock = read_lock(params_path)
    longer = frozen.model_copy(
        update={"comparison": frozen.comparison.model_copy(update={"washout_months_before": 4})}
    )
    changes = plan_change(longer, empty_history(), lock=lock, data_to="2026-03-31")
    assert changes[["item", "before", "after"]].values.tolist() == [
        ["setting comparison.washout_months_before", "3", "4"]
    ]
    assert plan_sha256(plan_record(longer)) != plan_sha256(plan_record(frozen))
    # a lock frozen before settings were recorded compares the plan's words only
    words_only = {**lock, "plan": dict(PLAN)}
    assert plan_change(longer, empty_history(), lock=words_only, data_to="2026-03-31").empty


def test_plan_change_without_a_lock_compares_with_the_previous_refresh(tmp_path):
    history = append_refresh(tmp_path / "h", provenance(), pd.DataFrame([headline(1, 0, 2, 9)]),
                             None)  # fmt: skip
    params = SchemeParams(scheme_id="x", title="X", data_dir=tmp_path,
                          plan={**PLAN, "covariates": ["age"]})  # fmt: skip
    changes = plan_change(params, history, lock=None, data_to="2026-03-31")
    assert changes[["item", "before", "after"]].values.tolist() == [
        ["covariates", "age, imd_decile", "age"]
    ]
    assert plan_differences(PLAN, PLAN) == []


def test_freezing_needs_a_plan_and_a_broken_lock_is_named(tmp_path):
    params_path = tmp_path / "x.yaml"
    with pytest.raises(ParamsError, match="no 'plan:' to freeze"):
        freeze_plan(params_path, SchemeParams(scheme_id="x", title="X", data_dir=tmp_path),
                    data_date=None)  # fmt: skip
    (tmp_path / "x.plan-lock.json").write_text(json.dumps({"plan": 3}), encoding="utf-8")
    with pytest.raises(ParamsError, match=r"x.plan-lock.json: expected an object"):
        read_lock(params_path)


def test_data_date_is_the_latest_event_in_the_data():
    class Scheme:
        clients = pd.DataFrame({"referral_date": pd.to_datetime(["2025-01-01", "2025-06-30"]),
                                "date_of_birth": pd.to_datetime(["2030-01-01", None])})  # fmt: skip
        measures = pd.DataFrame({"date": pd.to_datetime(["2025-12-29"])})

    assert data_date(Scheme()) == "2025-12-29"  # birth dates never label a refresh
