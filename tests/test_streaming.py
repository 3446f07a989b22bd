"""Streamed validation (SQL straight from the file) gives what the pandas loader gives.

Every case loads one scheme twice: in pandas (``stream_rows=None``) and streamed with a
threshold of 0 (every GP appointment file streamed), and the two must agree row for
row: reconciliation, exclusions (table, row, column, value, reason, source, line),
the validated appointments, the columns not read, or the same fatal problems.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from spimpact.analyses.attendance.analysis import analyse_attendance
from spimpact.analyses.overview.analysis import field_completeness
from spimpact.io import DataValidationError, StreamedTable, load_scheme
from spimpact.params import SchemeParams
from spimpact.publish.privacy import collect_identifiers
from spimpact.report.history import data_date, record_counts
from spimpact.streaming import STREAM_MIN_ROWS, StreamFallback, default_cache_dir, plan_stream
from spimpact.synthetic import EXAMPLE_SCHEMES, SchemeSpec, write_example_data
from spimpact.synthetic.scaled import write_scaled_scheme
from tests.test_io import CLIENTS, MEASURES, write_scheme

HEADER = "patient_id,appointment_date,staff_role,mode,status,slot_category\n"
GOOD = [
    "c001,2024-01-15,gp,face_to_face,attended,routine",
    "c001,2024-02-15,nurse,telephone,dna,",
    "c002,2024-03-01,admin,video,cancelled,urgent",
    "c003,2024-04-01,other_clinical,online,attended,",
]
POOL = "patient_id,index_date,age,sex,ethnic_category\np900,2024-01-01,50,female,A\n"
# NHS numbers: valid (spaced and not), failing Modulus 11, not ten digits
VALID, VALID_SPACED, BAD_CHECK, SHORT = "9434765919", "943 476 5870", "9434765918", "94347659"


def appointments(*rows: str, header: str = HEADER) -> str:
    return header + "".join(f"{row}\n" for row in rows)


def load_both(folder: Path, **options):
    """The scheme loaded in pandas and streamed (or the fatal problems of each)."""
    loaded = []
    for stream_rows in (None, 0):
        try:
            loaded.append(load_scheme(folder, stream_rows=stream_rows, **options))
        except DataValidationError as error:
            loaded.append(error.problems)
    return loaded


def rows(table) -> pd.DataFrame:
    return table.to_pandas() if isinstance(table, StreamedTable) else table


def assert_same(pandas_loaded, streamed, *, expect_streamed: bool = True):
    """``streamed`` (its appointments a StreamedTable if ``expect_streamed``) as expected."""
    if isinstance(pandas_loaded, tuple):
        assert streamed == pandas_loaded
        return
    assert not isinstance(streamed, tuple), streamed
    pd.testing.assert_frame_equal(streamed.reconciliation, pandas_loaded.reconciliation)
    pd.testing.assert_frame_equal(streamed.exclusions, pandas_loaded.exclusions)
    pd.testing.assert_frame_equal(streamed.ignored_columns, pandas_loaded.ignored_columns)
    table = streamed.gp_appointments
    assert isinstance(table, StreamedTable) == expect_streamed, streamed.streaming
    if table is None:
        assert pandas_loaded.gp_appointments is None
        return
    assert len(table) == len(pandas_loaded.gp_appointments)
    assert table.empty == pandas_loaded.gp_appointments.empty
    pd.testing.assert_frame_equal(rows(table), rows(pandas_loaded.gp_appointments))


CASES = {
    "valid": appointments(*GOOD),
    "bad_dates": appointments(
        "c001,2024-02-30,gp,face_to_face,attended,",
        "c001,15/01/2024,gp,face_to_face,attended,",
        "c001,2024-1-5,gp,face_to_face,attended,",
        "c001,2024-01-05 10:00,gp,face_to_face,attended,",
        "c001,1677-09-21,gp,face_to_face,attended,",
        "c001,2262-04-12,gp,face_to_face,attended,",
        "c001,2000-02-29,gp,face_to_face,attended,",
        "c001,1900-02-29,gp,face_to_face,attended,",
        "c001,02024-01-05,gp,face_to_face,attended,",
    ),
    "bad_codes_and_case": appointments(
        "c001,2024-01-15,GP,Face_To_Face,ATTENDED,",
        "c001,2024-01-15,doctor,face_to_face,attended,",
        "c001,2024-01-15,gp,in person,attended,",
        "c001,2024-01-15,gp,face_to_face,did not attend,",
    ),
    "required_missing": appointments(
        "c001,,gp,face_to_face,attended,",
        "c001,2024-01-15,,face_to_face,attended,",
        "c001,2024-01-15,gp, ,attended,",
        "c001,2024-01-15,gp,face_to_face,,",
        ",2024-01-15,gp,face_to_face,attended,",
    ),
    "orphans_and_bad_keys": appointments(
        *GOOD,
        "c999,2024-01-15,gp,face_to_face,attended,",
        "p900,2024-01-15,gp,face_to_face,attended,",
        "c 001,2024-01-15,gp,face_to_face,attended,",
        "x" * 65 + ",2024-01-15,gp,face_to_face,attended,",
        "943 476 5919,2024-01-15,gp,face_to_face,attended,",
        "c001,2024-01-15,gp,face_to_face,attended,1998-05-04",
    ),
    "whitespace_padding": appointments(
        "  c001 ,\t2024-01-15 , gp,face_to_face\u00a0,attended,  ",
        "c002,2024-01-15,gp,face_to_face,attended, routine ",
    ),
    "blank_and_whitespace_rows": appointments(*GOOD[:2], ",,,,,", " , ,\t, , , ", *GOOD[2:]),
    "crlf_and_bom": "\ufeff" + appointments(*GOOD).replace("\n", "\r\n"),
    "semicolons_and_header_case": appointments(*GOOD, header=HEADER.upper()).replace(",", ";"),
    "unknown_columns": appointments(
        *(f"{row},Smith" for row in GOOD), header=HEADER.replace("\n", ",surname\n")
    ),
    "columns_reordered_slot_missing": appointments(
        "attended,gp,2024-01-15,c001,face_to_face",
        "dna,nurse,2024-02-30,c002,telephone",
        header="status,staff_role,appointment_date,patient_id,mode\n",
    ),
    "header_only": HEADER,
    "missing_required_column": appointments(
        "c001,2024-01-15,gp,attended", header="patient_id,appointment_date,staff_role,status\n"
    ),
    "repeated_column": appointments(
        "c001,2024-01-15,gp,face_to_face,attended,,c001",
        header=HEADER.replace("\n", ",Patient_ID\n"),
    ),
    # files the streamed path cannot number exactly: read in pandas, same answer
    "quoted_newline": appointments(
        '"c001",2024-01-15,gp,face_to_face,attended,"two\nlines"',
        "c001,2024-02-30,gp,face_to_face,attended,",
    ),
    "blank_line": appointments(GOOD[0], "", "c001,2024-02-30,gp,face_to_face,attended,"),
    "ragged_rows": appointments(GOOD[0], "c001,2024-01-15,gp", GOOD[1] + ",extra"),
    "lone_carriage_return": appointments(GOOD[0] + "\r" + GOOD[1]),
}
FALLBACK = {"quoted_newline", "blank_line", "ragged_rows", "lone_carriage_return"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_streamed_csv_matches_pandas(tmp_path, case):
    folder = write_scheme(tmp_path, gp_appointments=CASES[case], comparison_pool=POOL)
    pandas_loaded, streamed = load_both(folder)
    assert_same(pandas_loaded, streamed, expect_streamed=case not in FALLBACK)


def test_windows_1252_file_falls_back_with_the_reason(tmp_path):
    text = appointments(GOOD[0], "c001,2024-01-15,gp,face_to_face,attended,caf\xe9")
    folder = write_scheme(tmp_path)
    (folder / "gp_appointments.csv").write_bytes(text.encode("cp1252"))
    pandas_loaded, streamed = load_both(folder)
    assert_same(pandas_loaded, streamed, expect_streamed=False)
    assert (
        "not UTF-8" in streamed.streaming["note"].iloc[0]
        or "CSV reader" in (streamed.streaming["note"].iloc[0])
    )


@pytest.mark.parametrize(
    "patient_ids",
    [None, ["", "", "", "", ""], ["c001", "", "", "", ""]],
    ids=["nhs_only", "blank_key_column", "key_column_used"],
)
def test_streamed_nhs_numbers_match_pandas(tmp_path, patient_ids):
    """Modulus 11, pseudonyms made from NHS numbers, and the key column when it is filled."""
    clients = CLIENTS.replace("client_id,", "nhs_number,").replace("c001,", f"{VALID},")
    numbers = [VALID, VALID_SPACED, BAD_CHECK, SHORT, ""]
    header = "nhs_number,appointment_date,staff_role,mode,status\n"
    if patient_ids is not None:
        header = "patient_id," + header
    rows = [
        ("" if patient_ids is None else patient_ids[k] + ",")
        + f"{number},2024-01-15,gp,face_to_face,attended"
        for k, number in enumerate(numbers)
    ]
    folder = write_scheme(
        tmp_path,
        clients=clients,
        measures=MEASURES.replace("c001,", f"{VALID},"),
        gp_appointments=appointments(*rows, header=header),
    )
    pandas_loaded, streamed = load_both(folder, pseudonym_key="streaming-test-key")
    assert_same(pandas_loaded, streamed)
    ids = streamed.gp_appointments.distinct("patient_id")
    assert all(i.startswith("P-") for i in ids) or patient_ids is not None
    text = streamed.exclusions.to_csv() + streamed.gp_appointments.to_pandas().to_csv()
    assert VALID not in text and BAD_CHECK not in text


def test_nhs_numbers_without_key_is_fatal_when_streamed(tmp_path, monkeypatch):
    monkeypatch.delenv("SPIMPACT_PSEUDONYM_KEY", raising=False)
    header = "nhs_number,appointment_date,staff_role,mode,status\n"
    folder = write_scheme(
        tmp_path,
        gp_appointments=appointments(f"{VALID},2024-01-15,gp,face_to_face,attended", header=header),
    )
    pandas_loaded, streamed = load_both(folder)
    assert isinstance(pandas_loaded, tuple) and "no key was given" in pandas_loaded[0]
    assert streamed == pandas_loaded


def test_parquet_types_are_read_as_a_csv_export_holds_them(tmp_path):
    """Dates, timestamps and whole numbers in Parquet: the text ``read_table`` gives them."""
    folder = write_scheme(tmp_path)
    frame = pd.DataFrame(
        {
            "patient_id": ["c001", "c002", None, "c003"],
            "appointment_date": pd.to_datetime(
                ["2024-01-15", "2024-02-15 10:30", None, "2024-03-01"], format="ISO8601"
            ),
            "staff_role": ["gp", "NURSE", "gp", "dentist"],
            "mode": ["face_to_face", "video", "online", "telephone"],
            "status": ["attended", "dna", "attended", "attended"],
            "slot_category": pd.array([1, None, 3, 4], dtype="Int64"),
        }
    )
    frame.to_parquet(folder / "gp_appointments.parquet")
    pandas_loaded, streamed = load_both(folder)
    assert_same(pandas_loaded, streamed)
    frame["slot_category"] = [0.5, 1.0, None, 2.0]
    frame.to_parquet(folder / "gp_appointments.parquet")
    pandas_loaded, streamed = load_both(folder)
    assert_same(pandas_loaded, streamed, expect_streamed=False)
    assert "stored as DOUBLE" in streamed.streaming["note"].iloc[0]


@pytest.fixture(scope="module")
def contract_examples(tmp_path_factory) -> Path:
    """The four example schemes written as the contract's own tables (CSV)."""
    root = tmp_path_factory.mktemp("contract_examples")
    write_example_data(root, schemes=tuple(replace(s, export="contract") for s in EXAMPLE_SCHEMES))
    return root


@pytest.mark.parametrize("scheme_id", [s.scheme_id for s in EXAMPLE_SCHEMES])
def test_example_schemes_match_pandas(contract_examples, load_example, scheme_id):
    folder = contract_examples / scheme_id
    pandas_loaded, streamed = (
        load_example(folder, mapping=None, pseudonym_key="example", stream_rows=rows)
        for rows in (None, 0)
    )
    has_appointments = (folder / "gp_appointments.csv").exists()
    assert_same(pandas_loaded, streamed, expect_streamed=has_appointments)


def test_scaled_parquet_scheme_matches_pandas(tmp_path):
    folder = write_scaled_scheme(tmp_path, 60)
    pandas_loaded, streamed = load_both(folder, pseudonym_key="scaled")
    assert_same(pandas_loaded, streamed)
    assert len(streamed.gp_appointments) > 1000
    # the privacy scan reads the Parquet file's raw identifiers without pandas
    assert collect_identifiers(streamed) == collect_identifiers(pandas_loaded)


def test_small_files_stay_in_pandas_by_default(tmp_path):
    folder = write_scheme(tmp_path, gp_appointments=appointments(*GOOD))
    assert plan_stream(folder / "gp_appointments.csv", STREAM_MIN_ROWS) is None
    assert isinstance(load_scheme(folder).gp_appointments, pd.DataFrame)


def test_quoted_file_is_refused_for_streaming_with_the_reason(tmp_path):
    path = tmp_path / "gp_appointments.csv"
    path.write_text(appointments('"c001",2024-01-15,gp,face_to_face,attended,'))
    with pytest.raises(StreamFallback, match="quoted fields"):
        plan_stream(path, 0)


@pytest.mark.spark
@pytest.mark.parametrize("case", ["bad_dates", "orphans_and_bad_keys", "blank_and_whitespace_rows"])
def test_spark_gives_what_duckdb_gives(tmp_path, spark, case):
    folder = write_scheme(tmp_path, gp_appointments=CASES[case], comparison_pool=POOL)
    duckdb_loaded, spark_loaded = (
        load_scheme(folder, stream_rows=0, engine=engine) for engine in ("duckdb", "spark")
    )
    assert spark_loaded.streaming["engine"].tolist() == ["spark"]
    assert_same(duckdb_loaded, spark_loaded)


@pytest.mark.spark
def test_spark_pseudonyms_and_parquet_match_duckdb(tmp_path, spark):
    folder = write_scaled_scheme(tmp_path, 60)
    duckdb_loaded, spark_loaded = (
        load_scheme(folder, stream_rows=0, engine=engine, pseudonym_key="scaled")
        for engine in ("duckdb", "spark")
    )
    assert_same(duckdb_loaded, spark_loaded)


def test_cli_validate_streams_and_says_so(tmp_path):
    folder = write_scheme(tmp_path, gp_appointments=CASES["bad_dates"])
    command = [sys.executable, "-m", "spimpact.cli", "validate", str(folder), "--stream-rows", "0"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "gp_appointments: streamed (duckdb): gp_appointments.csv: checked in SQL" in (
        result.stdout
    )
    assert "gp_appointments.csv row 2, column 'appointment_date': value '2024-02-30'" in (
        result.stdout
    )


@pytest.fixture(scope="module")
def small_schemes(tmp_path_factory):
    """A small example scheme loaded in pandas and streamed."""
    spec = SchemeSpec("tiny", "Tiny Link", 400, ("swemwbs",), n_areas=20)
    (folder,) = write_example_data(tmp_path_factory.mktemp("example"), schemes=(spec,))
    return tuple(load_scheme(folder, pseudonym_key="k", stream_rows=n) for n in (None, 0))


def test_report_inputs_are_the_same_from_a_streamed_table(small_schemes):
    """What the report takes from the appointments: the attendance estimates (the panel
    built from the Parquet file), completeness, counts, data date, identifiers scanned."""
    in_memory, streamed = small_schemes
    assert isinstance(streamed.gp_appointments, StreamedTable)
    params = SchemeParams(scheme_id="tiny", title="Tiny Link", data_dir=Path("."))
    expected, found = (analyse_attendance(s, params=params) for s in small_schemes)
    pd.testing.assert_frame_equal(found.estimates, expected.estimates)
    pd.testing.assert_frame_equal(found.panel, expected.panel)
    pd.testing.assert_frame_equal(field_completeness(streamed), field_completeness(in_memory))
    assert data_date(streamed) == data_date(in_memory)
    rule = params.disclosure.rule()
    assert record_counts(streamed, rule) == record_counts(in_memory, rule)
    assert collect_identifiers(streamed) == collect_identifiers(in_memory)


def test_the_cache_keeps_one_version_of_each_input(tmp_path):
    folder = write_scheme(tmp_path, gp_appointments=appointments(*GOOD))
    first = load_scheme(folder, stream_rows=0).gp_appointments.path
    (folder / "gp_appointments.csv").write_text(appointments(*GOOD[:2]))
    second = load_scheme(folder, stream_rows=0).gp_appointments
    assert len(second) == 2 and second.path != first and not first.exists()
    assert second.path.parent == default_cache_dir()
    assert not second.path.is_relative_to(folder)
