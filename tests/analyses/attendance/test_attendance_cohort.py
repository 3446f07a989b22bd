"""The people compared and their matching columns (``spimpact.analyses.attendance.cohort``)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.attendance.cohort import attendance_history, cohort_people, matching_columns


def test_cohort_has_clients_then_pool_with_index_month():
    clients = pd.DataFrame(
        {
            "client_id": ["c1", "c2"],
            "referral_date": pd.to_datetime(["2024-01-31", "2024-03-02"]),
            "age": [40, 60],
            "sex": ["F", "M"],
            "gp_practice_list_size": [9000, 7000],  # any other client attribute is kept
        }
    )
    pool = pd.DataFrame(
        {"patient_id": ["p1"], "index_date": pd.to_datetime(["2024-02-15"]), "age": [50]}
    )
    scheme = SimpleNamespace(clients=clients, comparison_pool=pool)
    people = cohort_people(scheme, include_pool=True)
    assert people["patient_id"].tolist() == ["c1", "c2", "p1"]
    assert people["treated"].tolist() == [1, 1, 0]
    assert people["index_month"].tolist() == ["2024-01", "2024-03", "2024-02"]
    assert people["gp_practice_list_size"].tolist()[:2] == [9000, 7000]
    assert np.isnan(people["gp_practice_list_size"].iloc[2])
    assert people["sex"].iloc[:2].tolist() == ["F", "M"] and pd.isna(people["sex"].iloc[2])
    clients_only = cohort_people(scheme, include_pool=False)
    assert clients_only["patient_id"].tolist() == ["c1", "c2"]


def test_attendance_history_is_the_mean_of_each_part_of_the_history_months():
    # history months -8..-5 in two parts -8..-7 and -6..-5; months -4.. are compared
    history = pd.DataFrame(
        {
            "patient_id": ["a"] * 6 + ["b"] * 2,
            "months_since_index": [-8, -7, -6, -5, -4, 0, -6, -5],
            "n_clinical": [1, 3, 0, 4, 9, 9, 2, 2],
        }
    )
    pre = attendance_history(history, (-8, -5), bins=2, outcome="n_clinical")
    assert list(pre.columns) == ["pre_attendance_months_8_to_7", "pre_attendance_months_6_to_5"]
    assert pre.loc["a"].tolist() == [2.0, 2.0]
    assert np.isnan(pre.loc["b", "pre_attendance_months_8_to_7"])  # not observed
    assert pre.loc["b", "pre_attendance_months_6_to_5"] == 2.0
    quarters = attendance_history(history, (-8, -5), bins=4, outcome="n_clinical")
    assert quarters.loc["a"].tolist() == [1.0, 3.0, 0.0, 4.0]  # the trajectory, month by month


def test_missing_values_are_imputed_and_flagged_not_dropped():
    people = pd.DataFrame(
        {
            "age": [30.0, np.nan, 50.0, 70.0],
            "sex": ["F", None, "M", "F"],
            "pre_attendance_months_36_to_31": [1.0, 2.0, 3.0, 4.0],
        }
    )
    frame, columns = matching_columns(people, ["age", "sex", "pre_attendance"])
    assert columns == ["age", "age_missing", "sex", "pre_attendance_months_36_to_31"]
    assert frame["age"].tolist() == [30.0, 50.0, 50.0, 70.0]  # median of the observed
    assert frame["age_missing"].tolist() == [0, 1, 0, 0]
    assert frame["sex"].tolist() == ["F", "missing", "M", "F"]
    assert people["age"].isna().sum() == 1  # the input is not changed


def test_unknown_covariate_is_named():
    with pytest.raises(ValueError, match="covariate 'shoe_size' is not a client"):
        matching_columns(pd.DataFrame({"age": [1.0]}), ["shoe_size"])
