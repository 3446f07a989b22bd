"""The attendance panel on Spark (``engine="spark"``) is DuckDB's panel, cell for cell.

One local[2] Spark session serves every test here (the ``spark`` fixture in
tests/conftest.py); the panel SQL reaches Spark through SQLGlot (spimpact.engine).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_attendance_panel import HAND_APPOINTMENTS, HAND_COHORT

from spimpact.analyses.attendance.cohort import cohort_people
from spimpact.analyses.attendance.panel import PANEL_COLUMNS, build_panel

pytestmark = pytest.mark.spark

# Rows of the generated extract: 2M appointments build on Spark local[2] in about a
# minute on a 2-core machine, within the test budget.
N_LARGE_ROWS = 2_000_000


def _assert_same_panel(spark_panel: pd.DataFrame, duckdb_panel: pd.DataFrame) -> None:
    assert list(spark_panel.columns) == list(PANEL_COLUMNS)
    assert len(spark_panel) == len(duckdb_panel) > 0
    keys = ["patient_id", "months_since_index"]
    left = spark_panel.sort_values(keys).reset_index(drop=True)
    right = duckdb_panel.sort_values(keys).reset_index(drop=True)
    assert left.dtypes.to_dict() == right.dtypes.to_dict()
    pd.testing.assert_frame_equal(left, right, check_exact=True)


def test_hand_panel_is_the_same_on_spark(spark):
    options = {"window_months": 3, "observed_from": "2023-06-01", "observed_until": "2025-01-01"}
    duckdb_panel = build_panel(HAND_APPOINTMENTS, HAND_COHORT, **options)
    spark_panel = build_panel(HAND_APPOINTMENTS, HAND_COHORT, engine="spark", **options)
    _assert_same_panel(spark_panel, duckdb_panel)
    # the default observed period (first and last appointment) is found the same way
    default = {"window_months": 3}
    _assert_same_panel(
        build_panel(HAND_APPOINTMENTS, HAND_COHORT, engine="spark", **default),
        build_panel(HAND_APPOINTMENTS, HAND_COHORT, **default),
    )


def test_example_scheme_panel_is_the_same_on_spark(spark, example_data, load_example):
    folder = example_data / "north_shore"
    scheme = load_example(folder)
    cohort = cohort_people(scheme, include_pool=True)[["patient_id", "index_date", "treated"]]
    path = folder / "gp_appointments.csv"
    options = {"window_months": 12, "months_before": 24}
    duckdb_panel = build_panel(path, cohort, **options)
    _assert_same_panel(build_panel(path, cohort, engine="spark", **options), duckdb_panel)
    # the loaded frame, as the report passes it, gives the same panel as the file
    _assert_same_panel(
        build_panel(scheme.gp_appointments, cohort, engine="spark", **options), duckdb_panel
    )


def _large_extract(folder, n_rows: int, seed: int = 14):
    """``n_rows`` appointments of ~n_rows / 40 people over four years, and their cohort."""
    rng = np.random.default_rng(seed)
    n_people = n_rows // 40
    ids = np.array([f"P{i:07d}" for i in range(n_people)])
    start = np.datetime64("2020-01-01")
    days = rng.integers(0, 4 * 365, n_rows)
    appointments = pd.DataFrame(
        {
            "patient_id": ids[rng.integers(0, n_people, n_rows)],
            "appointment_date": (start + days).astype("datetime64[s]"),
            "staff_role": rng.choice(
                ["gp", "nurse", "other_clinical", "admin", "social_prescribing_link_worker"],
                n_rows,
                p=[0.45, 0.25, 0.15, 0.1, 0.05],
            ),
            "mode": rng.choice(
                ["face_to_face", "home_visit", "telephone", "video", "online", "unknown"], n_rows
            ),
            "status": rng.choice(["attended", "dna", "cancelled"], n_rows, p=[0.85, 0.1, 0.05]),
            "slot_category": rng.choice(
                ["General Consultation Routine", "Social Prescribing Service", None], n_rows
            ),
        }
    )
    path = folder / "gp_appointments.parquet"
    appointments.to_parquet(path, index=False)
    # index days 1-31 exercise months shorter than the index day (29-31 January)
    cohort = pd.DataFrame(
        {
            "patient_id": ids,
            "index_date": start + rng.integers(200, 4 * 365 - 200, n_people),
            "treated": rng.integers(0, 2, n_people),
        }
    )
    cohort["index_date"] = cohort["index_date"].astype("datetime64[s]")
    return path, cohort


def test_large_extract_panel_is_the_same_on_spark(spark, tmp_path):
    path, cohort = _large_extract(tmp_path, N_LARGE_ROWS)
    options = {
        "window_months": 12,
        "months_before": 18,
        "observed_from": "2020-01-01",
        "observed_until": "2023-12-31",
    }
    duckdb_panel = build_panel(path, cohort, **options)
    spark_panel = build_panel(path, cohort, engine="spark", **options)
    _assert_same_panel(spark_panel, duckdb_panel)
    assert duckdb_panel["n_clinical"].sum() > N_LARGE_ROWS // 4


def test_attendance_estimates_are_the_same_on_spark(spark, tmp_path):
    """The whole analysis (matching, DiD, event study) from the Spark panel equals DuckDB's."""
    from spimpact.analyses.attendance.analysis import analyse_attendance
    from spimpact.io import load_scheme
    from spimpact.params import ComparisonParams, SchemeParams
    from spimpact.synthetic import SchemeSpec, write_example_data

    spec = SchemeSpec("tiny", "Tiny Link", 300, ("swemwbs",), n_areas=20)
    (folder,) = write_example_data(tmp_path, schemes=(spec,))
    scheme = load_scheme(folder, pseudonym_key="test-key")
    params = SchemeParams(
        scheme_id="tiny",
        title="Tiny Link",
        data_dir=folder,
        comparison=ComparisonParams(bootstrap_draws=199),
    )
    on_duckdb = analyse_attendance(scheme, params=params)
    on_spark = analyse_attendance(scheme, params=params.model_copy(update={"engine": "spark"}))
    pd.testing.assert_frame_equal(
        on_spark.tidy(), on_duckdb.tidy(), check_exact=False, rtol=0, atol=1e-9
    )
    pd.testing.assert_frame_equal(on_spark.panel, on_duckdb.panel, check_exact=True)
    assert (on_spark.n_clients, on_spark.n_comparison) == (
        on_duckdb.n_clients,
        on_duckdb.n_comparison,
    )
