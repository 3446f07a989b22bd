"""Reading table files: text cells, the line each record came from, errors that name it."""

from __future__ import annotations

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
        (b"a\n1\n\xe9\n", r"clients.csv row 3: byte 0xe9 is not UTF-8"),
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
