"""Read a table file as the loaders need it: text cells, a source row number, clear errors.

The first step of loading a scheme (:mod:`spimpact.io` checks the tables against the
data contract afterwards) and of reading free text for the privacy checks
(:mod:`spimpact.publish.privacy`). CSV files are read record by record so that every
row keeps the line it came from; Parquet files keep their row number. Nothing is
parsed: every cell stays text until the contract says what it should be.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from spimpact.files import MAX_TABLE_BYTES, FileRefused, check_regular_file, read_bytes_limited

__all__ = ["DataValidationError", "find_table_file", "read_table"]

_BOM = b"\xef\xbb\xbf"


class DataValidationError(ValueError):
    """A table cannot be used as the data contract describes; ``problems`` lists why."""

    def __init__(self, problems: list[str]):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def find_table_file(data_dir: Path, name: str) -> Path | None:
    """``<name>.csv`` or ``<name>.parquet`` in ``data_dir`` (error if both exist).

    Tables are found by name and must be regular files: a symbolic link, folder or
    device of that name is refused (``DataValidationError``), never followed.
    """
    found = [Path(data_dir) / f"{name}{ext}" for ext in (".csv", ".parquet")]
    found = [p for p in found if os.path.lexists(p)]
    if len(found) > 1:
        raise DataValidationError(
            [f"{Path(data_dir).name}: both {found[0].name} and {found[1].name} exist"]
        )
    if found:
        try:
            check_regular_file(found[0], what="table")
        except FileRefused as error:
            raise DataValidationError([str(error)]) from None
    return found[0] if found else None


def read_table(path: Path) -> pd.DataFrame:
    r"""Read a CSV or Parquet file as text cells with a ``source_row`` column.

    ``source_row`` is the line number of the record in a CSV file (the header is line
    1; a quoted field may span lines) or the 1-based row number in a Parquet file.
    Header names are stripped and lower-cased.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "clients.csv"
    >>> _ = path.write_text('Client_ID,note\nc1,"two\nlines"\nc2,x\n', encoding="utf-8")
    >>> read_table(path)[["source_row", "client_id"]].values.tolist()
    [[2, 'c1'], [4, 'c2']]
    """
    try:
        raw = read_bytes_limited(path, MAX_TABLE_BYTES, what="table")
    except FileRefused as error:
        raise DataValidationError([str(error)]) from None
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(io.BytesIO(raw))
        except Exception as error:  # noqa: BLE001 - pyarrow raises many types
            reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            raise DataValidationError(
                [f"{path.name}: cannot read Parquet file: {reason}"]
            ) from None
        text = frame.apply(_parquet_text)
        text.columns = [str(c).strip().lower() for c in frame.columns]
        text.insert(0, "source_row", np.arange(1, len(frame) + 1))
        return text
    return _read_csv(path.name, raw)


def _parquet_text(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m-%d").fillna("")
    return column.map(
        lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
    )


def _read_csv(name: str, raw: bytes) -> pd.DataFrame:
    if not raw or raw.isspace():
        raise DataValidationError([f"{name}: the file is empty (expected a header row)"])
    raw = raw.removeprefix(_BOM)
    fast = _read_csv_fast(name, raw)
    if fast is not None:
        return fast
    return _read_csv_records(_Named(name), raw)


class _Named:
    """The file name the record reader's messages use (the folder is never shown)."""

    def __init__(self, name: str):
        self.name = name


def _read_csv_fast(name: str, raw: bytes) -> pd.DataFrame | None:
    """Read a plain CSV file (no quotes, no blank lines, no ragged rows) with Arrow.

    In such a file every line is one record, so the record on line ``k`` is row
    ``k - 1`` of the data and no per-record Python work is needed; cells stay Arrow
    strings (compact) until the contract parses them. Returns ``None`` when the file
    needs the record-by-record reader (quotes, blank lines, ragged rows, bad bytes).
    """
    end_of_header = raw.find(b"\n")
    if (
        b'"' in raw
        or end_of_header < 0
        or b"\n\n" in raw
        or b"\n\r\n" in raw
        or raw.startswith((b"\n", b"\r"))
        or raw.count(b"\r") != raw.count(b"\r\n")
    ):
        return None
    header_line = raw[:end_of_header].removesuffix(b"\r")
    try:
        header = next(csv.reader([header_line.decode("utf-8")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        return None
    header = [h.strip().lower() for h in header]
    _check_header_names(name, header)
    ragged: list[int] = []

    def invalid_row(row) -> str:
        ragged.append(row.number)
        return "skip"

    names = [f"c{k}" for k in range(len(header))]
    try:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(
                quote_char=False, ignore_empty_lines=True, invalid_row_handler=invalid_row
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    if ragged:
        return None
    columns = {
        column: pd.Series(pd.arrays.ArrowStringArray(table.column(key)), copy=False)
        for column, key in zip(header, names, strict=True)
    }
    frame = pd.DataFrame(columns) if columns else pd.DataFrame(index=range(table.num_rows))
    frame.insert(0, "source_row", np.arange(2, table.num_rows + 2))
    blank = None
    for key in names:  # rows whose every cell is blank are skipped, as in the record reader
        blank_cell = pc.equal(pc.utf8_trim_whitespace(table.column(key)), "")
        blank = blank_cell if blank is None else pc.and_(blank, blank_cell)
        if not pc.any(blank).as_py():
            break
    if blank is not None and pc.any(blank).as_py():
        frame = frame[~blank.to_numpy(zero_copy_only=False)].reset_index(drop=True)
    frame.attrs["ragged"] = []
    return frame


def _check_header_names(name: str, header: list[str]) -> None:
    problems = []
    if len(set(header)) != len(header):
        duplicated = sorted({h for h in header if header.count(h) > 1})
        problems.append(f"{name} row 1: column(s) {duplicated} appear more than once")
    if "source_row" in header:
        problems.append(f"{name} row 1: column 'source_row' is reserved")
    if problems:
        raise DataValidationError(problems)


def _read_csv_records(path: _Named, raw: bytes) -> pd.DataFrame:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataValidationError(
            [
                f"{path.name} row {line}: byte 0x{raw[error.start]:02x} is not UTF-8 "
                "(expected UTF-8 text; in Excel use 'Save as CSV UTF-8')"
            ]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as error:
        raise DataValidationError([f"{path.name}: cannot read the header row: {error}"]) from None
    header = [h.strip().lower() for h in header]
    _check_header_names(path.name, header)
    rows, lines, ragged = [], [], []
    start = reader.line_num + 1
    try:
        for record in reader:
            if record and any(cell.strip() for cell in record):
                if len(record) != len(header):
                    ragged.append((start, len(record)))
                    record = (record + [""] * len(header))[: len(header)]
                rows.append(record)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataValidationError([f"{path.name} row {start}: malformed CSV: {error}"]) from None
    frame = (
        pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header)
    )
    frame.insert(0, "source_row", np.asarray(lines, dtype=int))
    frame.attrs["ragged"] = ragged
    return frame
