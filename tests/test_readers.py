"""Reading table files: text cells, the line each record came from, errors that name it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import spimpact.io
from spimpact.readers import DataValidationError, find_table_file, read_table


def test_csv_cells_stay_text_with_their_line(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text(
        ' Client_ID ,Age,note\nc1,007,"two\nlines"\n\nc2,,x\n', encoding="utf-8", newline=""
    )
    frame = read_table(path)
    assert list(frame.columns) == ["source_row", "client_id", "age", "note"]
    assert frame.values.tolist() == [[2, "c1", "007", "two\nlines"], [5, "c2", "", "x"]]


def test_ragged_records_are_padded_and_remembered(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text("a,b\n1\n2,3,4\n", encoding="utf-8")
    frame = read_table(path)
    assert frame[["a", "b"]].values.tolist() == [["1", ""], ["2", "3"]]
    assert frame.attrs["ragged"] == [(2, 1), (3, 3)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"clients.csv: the file is empty"),
        (b"a,A\n1,2\n", r"clients.csv row 1: column\(s\) \['a'\] appear more than once"),
        (b"source_row\n1\n", r"clients.csv row 1: column 'source_row' is reserved"),
        (b"a\n1\n\x81\n", r"clients.csv row 3: byte 0x81 is neither UTF-8 nor Windows-1252"),
    ],
)
def test_unreadable_files_name_file_row_and_problem(tmp_path, content, message):
    path = tmp_path / "clients.csv"
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match=message):
        read_table(path)


def test_parquet_cells_become_text_with_row_numbers(tmp_path):
    path = tmp_path / "clients.parquet"
    pd.DataFrame(
        {"ID": ["c1", "c2"], "when": pd.to_datetime(["2024-01-10", None]), "n": [1.5, None]}
    ).to_parquet(path)
    frame = read_table(path)
    assert frame.values.tolist() == [[1, "c1", "2024-01-10", "1.5"], [2, "c2", "", ""]]


def test_parquet_columns_read_as_the_same_text_as_cell_by_cell(tmp_path):
    from spimpact.readers import _cell_text

    columns = {
        "text": ["a", None, " b ", ""],
        "whole": np.array([1, -2, 30, 0], dtype="int64"),
        "nullable": pd.array([1, None, 3, 4], dtype="Int64"),
        "flag": [True, False, True, False],
        "number": [1.0, 2.5, np.nan, 1e20],
        "none": [None, None, None, None],
        "arrow": pd.array(["p", None, "q", "r"], dtype="string[pyarrow]"),
    }
    pd.DataFrame(columns).to_parquet(tmp_path / "t.parquet")
    frame = read_table(tmp_path / "t.parquet")
    stored = pd.read_parquet(tmp_path / "t.parquet")
    for name in columns:
        expected = [_cell_text(v) for v in stored[name].astype(object)]
        assert frame[name].tolist() == expected, name
        assert all(isinstance(v, str) for v in frame[name]), name


def test_broken_parquet_is_a_validation_error(tmp_path):
    path = tmp_path / "clients.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(DataValidationError, match="clients.parquet: cannot read Parquet file"):
        read_table(path)


def test_find_table_file_takes_csv_or_parquet_but_not_both(tmp_path):
    assert find_table_file(tmp_path, "clients") is None
    (tmp_path / "clients.parquet").write_bytes(b"")
    assert find_table_file(tmp_path, "clients") == tmp_path / "clients.parquet"
    (tmp_path / "clients.csv").write_text("a\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="both clients.csv and clients.parquet exist"):
        find_table_file(tmp_path, "clients")


def test_io_keeps_the_stable_names():
    assert spimpact.io.read_table is read_table
    assert spimpact.io.find_table_file is find_table_file
    assert spimpact.io.DataValidationError is DataValidationError


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_taken_from_the_header(tmp_path, delimiter):
    path = tmp_path / "export.csv"
    rows = [["Client ID", "Notes", "Age"], ["c1", "a, b; c", "45"], ["c2", "", "50"]]
    path.write_text(
        "\n".join(delimiter.join(f'"{v}"' if "," in v or ";" in v else v for v in r) for r in rows)
        + "\n",
        encoding="utf-8",
    )
    frame = read_table(path, keep_case=True)
    assert list(frame.columns) == ["source_row", "Client ID", "Notes", "Age"]
    assert frame["Notes"].tolist() == ["a, b; c", ""]
    assert frame.attrs["delimiter"] == delimiter


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8-sig", "utf-8"), ("utf-16", "utf-16"), ("cp1252", "windows-1252")],
)
def test_csv_encodings_are_detected(tmp_path, encoding, expected):
    path = tmp_path / "export.csv"
    path.write_bytes("name,town\nc1,Bront\xeb \u2013 Cr\xe8me\n".encode(encoding))
    frame = read_table(path)
    assert frame["town"].tolist() == ["Bront\xeb \u2013 Cr\xe8me"]
    assert frame.attrs["encoding"] == expected


def test_a_one_megabyte_free_text_cell_is_read(tmp_path):
    path = tmp_path / "feedback.csv"
    long_text = "word " * 220_000
    path.write_text(f'id,text\nf1,"{long_text}"\nf2,short\n', encoding="utf-8")
    frame = read_table(path)
    assert frame["text"].str.len().tolist() == [len(long_text), 5]
    assert frame["source_row"].tolist() == [2, 3]


def test_a_folder_in_place_of_a_file_is_a_validation_error(tmp_path):
    (tmp_path / "clients.csv").mkdir()
    with pytest.raises(DataValidationError, match="clients.csv: table is not a regular file"):
        read_table(tmp_path / "clients.csv")


def test_blank_headers_are_named_by_position(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("a,,b,\n1,2,3,\n", encoding="utf-8")
    assert list(read_table(path).columns) == ["source_row", "a", "unnamed_2", "b", "unnamed_4"]


def write_workbook(path):
    import datetime

    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Cover"
    sheet["A1"] = "Nothing here but a note"
    referrals = workbook.create_sheet("Referrals")
    referrals["A1"] = "North Shore referrals, April 2024 to March 2025"
    referrals.merge_cells("A1:E1")
    referrals.append([])
    referrals.append(["Client Ref", "Date of referral", "Age", "Review date (serial)", "Score"])
    referrals.append(["c1", datetime.date(2024, 4, 5), 45, 45400, 3.5])
    referrals.append([])
    referrals.append(["c2", datetime.datetime(2024, 5, 6, 14, 30), 61, None, True])
    workbook.save(path)
    return path


def test_spreadsheet_header_below_title_rows_with_excel_row_numbers(tmp_path):
    path = write_workbook(tmp_path / "export.xlsx")
    frame = read_table(path, sheet="Referrals", keep_case=True)
    assert frame.attrs["header_row"] == 3
    assert list(frame.columns) == [
        "source_row", "Client Ref", "Date of referral", "Age", "Review date (serial)", "Score"
    ]  # fmt: skip
    assert frame.values.tolist() == [
        [4, "c1", "2024-04-05", "45", "45400", "3.5"],
        [6, "c2", "2024-05-06 14:30:00", "61", "", "true"],
    ]


def test_spreadsheet_sheet_by_position_and_explicit_header(tmp_path):
    path = write_workbook(tmp_path / "export.xlsx")
    frame = read_table(path, sheet=1, header_row=3)
    assert frame["client ref"].tolist() == ["c1", "c2"]
    assert read_table(path).attrs["sheet"] == "Cover"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sheet": "Outcomes"}, r"no sheet 'Outcomes' \(the sheets are 'Cover', 'Referrals'\)"),
        ({"sheet": 5}, "has 2 sheet\\(s\\), no sheet number 6"),
        ({"sheet": "Referrals", "header_row": 99}, "no row 99"),
    ],
)
def test_spreadsheet_errors_name_file_and_sheet(tmp_path, options, message):
    path = write_workbook(tmp_path / "export.xlsx")
    with pytest.raises(DataValidationError, match=message):
        read_table(path, **options)


def test_broken_workbook_is_a_validation_error(tmp_path):
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"not a workbook")
    with pytest.raises(DataValidationError, match="export.xlsx: cannot read the workbook"):
        read_table(path)
