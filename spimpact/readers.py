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
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DataValidationError", "find_table_file", "read_table"]


class DataValidationError(ValueError):
    """A table cannot be used as the data contract describes; ``problems`` lists why."""

    def __init__(self, problems: list[str]):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def find_table_file(data_dir: Path, name: str) -> Path | None:
    """``<name>.csv`` or ``<name>.parquet`` in ``data_dir`` (error if both exist)."""
    found = [data_dir / f"{name}{ext}" for ext in (".csv", ".parquet")]
    found = [p for p in found if p.exists()]
    if len(found) > 1:
        raise DataValidationError([f"{data_dir}: both {found[0].name} and {found[1].name} exist"])
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
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # noqa: BLE001 - pyarrow raises many types
            raise DataValidationError([f"{path.name}: cannot read Parquet file: {error}"]) from None
        text = frame.apply(_parquet_text)
        text.columns = [str(c).strip().lower() for c in frame.columns]
        text.insert(0, "source_row", np.arange(1, len(frame) + 1))
        return text
    return _read_csv(path)


def _parquet_text(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m-%d").fillna("")
    return column.map(
        lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
    )


def _read_csv(path: Path) -> pd.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataValidationError([f"{path.name}: the file is empty (expected a header row)"])
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
    problems = []
    if len(set(header)) != len(header):
        duplicated = sorted({h for h in header if header.count(h) > 1})
        problems.append(f"{path.name} row 1: column(s) {duplicated} appear more than once")
    if "source_row" in header:
        problems.append(f"{path.name} row 1: column 'source_row' is reserved")
    if problems:
        raise DataValidationError(problems)
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
