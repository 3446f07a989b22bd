"""The person x month attendance panel (``spimpact.analyses.attendance.panel``)."""

import numpy as np
import pandas as pd
import pytest

from spimpact.analyses.attendance.panel import PANEL_COLUMNS, build_panel, panel_query

COUNT_COLUMNS = ["n_gp", "n_clinical", "n_clinical_face_to_face", "n_clinical_remote"]


def _appointments(rows):
    frame = pd.DataFrame(
        rows,
        columns=["patient_id", "appointment_date", "staff_role", "mode", "status", "slot_category"],
    )
    frame["appointment_date"] = pd.to_datetime(frame["appointment_date"])
    return frame


HAND_APPOINTMENTS = _appointments(
    [
        # person a, index 2024-03-15: month -1 is 2024-02-15 .. 2024-03-14
        ("a", "2024-02-20", "gp", "face_to_face", "attended", "General Consultation Routine"),
        ("a", "2024-03-14", "nurse", "telephone", "attended", None),
        ("a", "2024-03-14", "gp", "video", "dna", None),  # did not attend
        ("a", "2024-03-15", "other_clinical", "home_visit", "attended", None),  # month 0
        ("a", "2024-03-20", "admin", "face_to_face", "attended", None),  # not clinical
        ("a", "2024-03-21", "social_prescribing_link_worker", "face_to_face", "attended", None),
        ("a", "2024-03-22", "gp", "telephone", "attended", "Social Prescribing Service"),
        ("a", "2024-04-14", "gp", "online", "cancelled", None),
        ("a", "2024-04-15", "gp", "online", "attended", None),  # month 1
        ("a", "2023-12-14", "gp", "face_to_face", "attended", None),  # month -4 (< -3)
        ("b", "2024-01-31", "gp", "face_to_face", "attended", None),
        ("z", "2024-03-01", "gp", "face_to_face", "attended", None),  # not in the cohort
    ]
)
HAND_COHORT = pd.DataFrame(
    {
        "patient_id": ["a", "b"],
        "index_date": pd.to_datetime(["2024-03-15", "2024-02-10"]),
        "treated": [1, 0],
    }
)


@pytest.fixture(scope="module")
def hand_panel():
    return build_panel(
        HAND_APPOINTMENTS,
        HAND_COHORT,
        window_months=3,
        observed_from="2023-06-01",
        observed_until="2025-01-01",
    )


def test_panel_has_one_row_per_person_month_with_zeros(hand_panel):
    assert list(hand_panel.columns) == list(PANEL_COLUMNS)
    assert hand_panel.groupby("patient_id").size().to_dict() == {"a": 6, "b": 6}
    assert hand_panel["months_since_index"].tolist() == [-3, -2, -1, 0, 1, 2] * 2
    assert hand_panel["post"].tolist() == [0, 0, 0, 1, 1, 1] * 2
    person_b = hand_panel[hand_panel["patient_id"] == "b"].set_index("months_since_index")
    # 2024-01-31 lies in b's month -1 (2024-01-10 .. 2024-02-09)
    assert person_b[COUNT_COLUMNS].sum(axis=1).to_dict() == {-3: 0, -2: 0, -1: 3, 0: 0, 1: 0, 2: 0}


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        (-3, [0, 0, 0, 0]),
        (-2, [0, 0, 0, 0]),
        # gp face to face on 02-20 and nurse telephone on 03-14 (the DNA is not counted)
        (-1, [1, 2, 1, 1]),
        # home visit by other clinical staff; admin, link worker and SP-slot rows excluded
        (0, [0, 1, 1, 0]),
        (1, [1, 1, 0, 1]),  # online GP appointment; the cancelled one is not counted
        (2, [0, 0, 0, 0]),
    ],
)
def test_panel_counts_only_attended_clinical_appointments(hand_panel, month, expected):
    row = hand_panel[
        (hand_panel["patient_id"] == "a") & (hand_panel["months_since_index"] == month)
    ]
    assert row[COUNT_COLUMNS].iloc[0].tolist() == expected


def test_calendar_month_of_each_person_month(hand_panel):
    person_a = hand_panel[hand_panel["patient_id"] == "a"]
    assert person_a["calendar_month"].tolist() == [2024 * 12 + m for m in range(-1, 5)]


@pytest.mark.parametrize(
    ("date", "month"),
    [
        ("2023-01-30", -1),
        ("2023-01-31", 0),
        ("2023-02-27", 0),
        ("2023-02-28", 1),  # add_months(2023-01-31, 1) = 2023-02-28: month 1 starts
        ("2023-03-30", 1),
        ("2023-03-31", 2),
        ("2022-12-31", -1),
        ("2022-12-30", -2),
    ],
)
def test_month_boundaries_follow_add_months_at_month_ends(date, month):
    appointments = _appointments([("c", date, "gp", "face_to_face", "attended", None)])
    cohort = pd.DataFrame({"patient_id": ["c"], "index_date": [pd.Timestamp("2023-01-31")]})
    panel = build_panel(
        appointments,
        cohort.assign(treated=1),
        window_months=3,
        observed_from="2022-01-01",
        observed_until="2024-01-01",
    )
    assert panel.loc[panel["n_gp"] == 1, "months_since_index"].tolist() == [month]


def test_months_outside_the_extract_are_dropped_not_zero():
    panel = build_panel(
        HAND_APPOINTMENTS,
        HAND_COHORT,
        window_months=3,
        observed_from="2023-12-16",  # a's month -3 starts 2023-12-15: not whole, dropped
        observed_until="2024-05-15",  # a's month 2 ends 2024-06-14: dropped
    )
    person_a = panel[panel["patient_id"] == "a"]
    assert person_a["months_since_index"].tolist() == [-2, -1, 0, 1]
    person_b = panel[panel["patient_id"] == "b"]  # index 2024-02-10
    assert person_b["months_since_index"].tolist() == [-1, 0, 1, 2]


def _pandas_panel(appointments, cohort, window, observed_from, observed_until):
    """Independent re-implementation with pandas DateOffset month arithmetic."""
    kept = appointments[
        (appointments["status"] == "attended")
        & appointments["staff_role"].isin(["gp", "nurse", "other_clinical"])
        & (appointments["slot_category"].fillna("") != "Social Prescribing Service")
    ]
    rows = []
    for person in cohort.itertuples():
        mine = kept[kept["patient_id"] == person.patient_id]
        for k in range(-window, window):
            start = person.index_date + pd.DateOffset(months=k)
            end = person.index_date + pd.DateOffset(months=k + 1)
            if start < observed_from or end > observed_until:
                continue
            inside = mine[(mine["appointment_date"] >= start) & (mine["appointment_date"] < end)]
            rows.append(
                {
                    "patient_id": person.patient_id,
                    "months_since_index": k,
                    "n_gp": int((inside["staff_role"] == "gp").sum()),
                    "n_clinical": len(inside),
                    "n_clinical_face_to_face": int(
                        inside["mode"].isin(["face_to_face", "home_visit"]).sum()
                    ),
                    "n_clinical_remote": int(
                        inside["mode"].isin(["telephone", "video", "online"]).sum()
                    ),
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def random_appointments():
    rng = np.random.default_rng(7)
    n_people, n_rows = 60, 3000
    cohort = pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(n_people)],
            # include month-end index days, where month arithmetic is delicate
            "index_date": pd.Timestamp("2023-01-28")
            + pd.to_timedelta(rng.integers(0, 400, n_people), unit="D"),
            "treated": rng.integers(0, 2, n_people),
        }
    )
    appointments = pd.DataFrame(
        {
            "patient_id": rng.choice(cohort["patient_id"], n_rows),
            "appointment_date": pd.Timestamp("2021-06-01")
            + pd.to_timedelta(rng.integers(0, 1400, n_rows), unit="D"),
            "staff_role": rng.choice(
                ["gp", "nurse", "other_clinical", "admin", "social_prescribing_link_worker"],
                n_rows,
            ),
            "mode": rng.choice(
                ["face_to_face", "telephone", "video", "online", "home_visit"], n_rows
            ),
            "status": rng.choice(["attended", "dna", "cancelled"], n_rows, p=[0.8, 0.1, 0.1]),
            "slot_category": rng.choice(
                ["General Consultation Routine", "Social Prescribing Service", None], n_rows
            ),
        }
    )
    return appointments, cohort


@pytest.mark.parametrize("window", [3, 9])
def test_panel_matches_independent_pandas_calculation(random_appointments, window):
    appointments, cohort = random_appointments
    observed_from, observed_until = pd.Timestamp("2022-01-01"), pd.Timestamp("2025-03-01")
    panel = build_panel(
        appointments,
        cohort,
        window_months=window,
        observed_from=observed_from,
        observed_until=observed_until,
    )
    expected = _pandas_panel(appointments, cohort, window, observed_from, observed_until)
    expected = expected.sort_values(["patient_id", "months_since_index"]).reset_index(drop=True)
    got = panel[expected.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_file_inputs_and_parquet_output_give_the_same_panel(random_appointments, tmp_path, kind):
    appointments, cohort = random_appointments
    path = tmp_path / f"gp_appointments.{kind}"
    if kind == "csv":
        appointments.assign(
            appointment_date=appointments["appointment_date"].dt.strftime("%Y-%m-%d")
        ).to_csv(path, index=False)
    else:
        appointments.to_parquet(path)
    options = dict(window_months=6, observed_from="2022-01-01", observed_until="2025-03-01")
    expected = build_panel(appointments, cohort, **options)
    from_file = build_panel(path, cohort, **options)
    pd.testing.assert_frame_equal(from_file, expected)
    written = build_panel(path, cohort, output=tmp_path / "panel.parquet", **options)
    on_disk = pd.read_parquet(written).sort_values(["patient_id", "months_since_index"])
    assert on_disk[COUNT_COLUMNS].to_numpy().tolist() == expected[COUNT_COLUMNS].to_numpy().tolist()


def test_default_observed_period_is_the_extract_span():
    panel = build_panel(HAND_APPOINTMENTS, HAND_COHORT, window_months=3)
    # Appointments run from 2023-12-14 to 2024-04-15: only whole months inside that count.
    assert panel.groupby("patient_id")["months_since_index"].agg(list).to_dict() == {
        "a": [-3, -2, -1, 0],
        "b": [-1, 0, 1],
    }


def test_query_is_plain_sql_with_its_window():
    query = panel_query(window_months=6, observed_from="2022-01-01", observed_until="2024-01-01")
    assert "BETWEEN -6 AND 5" in query
    assert "DATE '2022-01-01'" in query and "{" not in query
    for duckdb_only in ("read_parquet", "to_months", "date_trunc", "::"):
        assert duckdb_only not in query


@pytest.mark.parametrize(
    ("appointments", "cohort", "window", "message"),
    [
        (HAND_APPOINTMENTS.drop(columns="status"), HAND_COHORT, 3, "missing column.*status"),
        (HAND_APPOINTMENTS, pd.concat([HAND_COHORT, HAND_COHORT]), 3, "appears more than once"),
        (HAND_APPOINTMENTS, HAND_COHORT.drop(columns="treated"), 3, "missing column.*treated"),
        (HAND_APPOINTMENTS, HAND_COHORT, 0, "window_months must be a whole number >= 1"),
        ("appointments.txt", HAND_COHORT, 3, "expected a .csv or .parquet file"),
    ],
)
def test_bad_panel_input_is_named(appointments, cohort, window, message):
    with pytest.raises(ValueError, match=message):
        build_panel(appointments, cohort, window_months=window)


def test_longer_history_before_the_index_date(hand_panel):
    """months_before extends the panel backwards only; the shared months are unchanged."""
    longer = build_panel(
        HAND_APPOINTMENTS,
        HAND_COHORT,
        window_months=3,
        months_before=6,
        observed_from="2023-06-01",
        observed_until="2025-01-01",
    )
    assert longer.groupby("patient_id")["months_since_index"].agg(["min", "max"]).to_dict(
        "list"
    ) == {"min": [-6, -6], "max": [2, 2]}
    shared = longer[longer["months_since_index"] >= -3].reset_index(drop=True)
    pd.testing.assert_frame_equal(shared, hand_panel)
    with pytest.raises(ValueError, match="months_before must be a whole number"):
        build_panel(HAND_APPOINTMENTS, HAND_COHORT, window_months=3, months_before=0)


def test_coded_panel_is_the_panel_with_people_as_codes(random_appointments, tmp_path):
    """build_coded_panel: build_panel's rows and counts, people as positions in the sorted
    ids (text order: p10 before p9), narrow integer types, sorted by person and month."""
    from spimpact.analyses.attendance.panel import CODED_COLUMNS, build_coded_panel

    appointments, cohort = random_appointments
    path = tmp_path / "gp_appointments.parquet"
    appointments.to_parquet(path)
    options = dict(window_months=6, months_before=9)
    expected = build_panel(path, cohort, **options).reset_index(drop=True)
    panel, ids = build_coded_panel(path, cohort.sample(frac=1, random_state=3), **options)
    assert list(ids) == sorted(cohort["patient_id"])
    assert list(panel.columns) == list(CODED_COLUMNS)
    assert panel["patient_id"].dtype == "int32" and panel["n_clinical"].dtype == "int16"
    pd.testing.assert_series_equal(
        pd.Series(ids[panel["patient_id"].to_numpy()], name="patient_id"),
        expected["patient_id"],
        check_dtype=False,
    )
    for column in CODED_COLUMNS[1:]:
        assert panel[column].tolist() == expected[column].tolist(), column
