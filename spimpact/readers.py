"""Read a table file as the loaders need it: text cells, a source row number, clear errors.

The first step of loading a scheme (:mod:`spimpact.io` checks the tables against the
data contract afterwards) and of reading free text for the privacy checks
(:mod:`spimpact.publish.privacy`). Files are read as they arrive from case-management
platforms and spreadsheets:

* CSV (or TSV/TXT) with any common delimiter (comma, semicolon, tab, pipe: taken from
  the header line), encoded as UTF-8 (with or without a byte-order mark), UTF-16 with
  a byte-order mark, or Windows-1252; quoted fields may span lines and may be of any
  length;
* Excel workbooks (``.xlsx``, ``.xlsm``, ``.xlsb``, ``.xls``) and ``.ods``, read with
  python-calamine: any sheet, a header below title rows (found, or given), dates
  stored as dates;
* Parquet.

Every row keeps the number it has in its source (the CSV line, the spreadsheet row,
the Parquet row) in a ``source_row`` column, so an excluded row can be found again.
Nothing is parsed: every cell stays text until the contract says what it should be,
and nothing read is written anywhere.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from spimpact.files import MAX_TABLE_BYTES, FileRefused, check_regular_file, read_bytes_limited

__all__ = ["DataValidationError", "TABLE_SUFFIXES", "find_table_file", "read_table"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
TABLE_SUFFIXES = (*CSV_SUFFIXES, *EXCEL_SUFFIXES, ".parquet")
DELIMITERS = (",", ";", "\t", "|")
# Title rows above a spreadsheet's header are looked for in the first rows only.
_HEADER_SEARCH_ROWS = 30
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


def read_table(
    path: Path,
    *,
    sheet: str | int | None = None,
    header_row: int | None = None,
    keep_case: bool = False,
) -> pd.DataFrame:
    r"""Read a CSV, spreadsheet or Parquet file as text cells with a ``source_row`` column.

    Parameters
    ----------
    path
        The file; its suffix says how to read it (:data:`TABLE_SUFFIXES`).
    sheet
        Spreadsheets only: the sheet's name or 0-based position (default: the first).
    header_row
        Spreadsheets only: the 1-based row holding the header (default: the first row,
        within the first 30, that is filled like a header, so title rows are skipped).
    keep_case
        Keep header names as written (stripped); by default they are lower-cased.

    Returns
    -------
    pandas.DataFrame
        ``source_row`` (the line of the record in a CSV file, header = line 1, a quoted
        field may span lines; the row number in a spreadsheet; the 1-based row in a
        Parquet file), then one text column per source column. A blank header is named
        ``unnamed_<k>`` (k = 1-based column position). ``attrs`` holds ``ragged``
        (CSV records with too few or too many fields), and ``encoding`` and
        ``delimiter`` (CSV) or ``sheet`` and ``header_row`` (spreadsheets).

    Raises
    ------
    DataValidationError
        Naming the file (and row) when it cannot be read: a folder, link or device in
        place of a regular file, a file over 2 GiB, an empty file, an unknown encoding,
        a repeated column name.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "clients.csv"
    >>> _ = path.write_text('Client_ID;note\nc1;"two\nlines"\nc2;x\n', encoding="utf-8")
    >>> read_table(path)[["source_row", "client_id"]].values.tolist()
    [[2, 'c1'], [4, 'c2']]
    """
    path = Path(path)
    try:
        # only a regular file (no link, folder or device), of bounded size
        raw = read_bytes_limited(path, MAX_TABLE_BYTES, what="table")
    except FileRefused as error:
        raise DataValidationError([str(error)]) from None
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = _read_parquet(path, raw)
    elif suffix in EXCEL_SUFFIXES:
        frame = _read_spreadsheet(path, raw, sheet, header_row)
    else:
        frame = _read_csv(path, raw)
    return _name_columns(frame, path, keep_case)


def _name_columns(frame: pd.DataFrame, path: Path, keep_case: bool) -> pd.DataFrame:
    names = []
    for k, name in enumerate(frame.columns[1:], start=1):
        name = " ".join(str(name).split())
        names.append(name if name else f"unnamed_{k}")
    if not keep_case:
        names = [n.lower() for n in names]
    problems = []
    folded = [n.lower() for n in names]
    if len(set(folded)) != len(folded):
        duplicated = sorted({n for n, f in zip(names, folded, strict=True) if folded.count(f) > 1})
        where = _header_location(frame)
        problems.append(f"{path.name}{where}: column(s) {duplicated} appear more than once")
    if "source_row" in folded:
        problems.append(f"{path.name}{_header_location(frame)}: column 'source_row' is reserved")
    if problems:
        raise DataValidationError(problems)
    frame.columns = ["source_row", *names]
    return frame


def _header_location(frame: pd.DataFrame) -> str:
    sheet = frame.attrs.get("sheet")
    row = frame.attrs.get("header_row", 1)
    return f" sheet '{sheet}' row {row}" if sheet is not None else f" row {row}"


def _reason(error: Exception) -> str:
    """A reader library's error in one short line (never a whole cell's content)."""
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def _read_parquet(path: Path, raw: bytes) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except Exception as error:  # noqa: BLE001 - pyarrow raises many types
        raise DataValidationError(
            [f"{path.name}: cannot read Parquet file: {_reason(error)}"]
        ) from None
    text = frame.apply(_parquet_text) if len(frame.columns) else frame
    text.columns = [str(c) for c in frame.columns]
    text.insert(0, "source_row", np.arange(1, len(frame) + 1))
    return text


def _parquet_text(column: pd.Series) -> pd.Series:
    """A Parquet column as text cells, as ``_cell_text`` makes them.

    Text, whole numbers and dates are converted without a Python call per cell.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m-%d").fillna("")
    if pd.api.types.is_integer_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column):
        return column.astype("string").fillna("").astype(object)
    if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        return column.astype(object).where(column.notna(), "")
    return column.map(_cell_text)


def _cell_text(value) -> str:
    """A spreadsheet or Parquet cell as the text a CSV export would hold."""
    if value is None or value is pd.NaT or value is pd.NA:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read with."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as error:
            raise DataValidationError(
                [f"{path.name}: not valid UTF-16 text: {error.reason}"]
            ) from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            # Excel's "CSV (Comma delimited)" on Windows writes Windows-1252
            return raw.decode("cp1252"), "windows-1252"
        except UnicodeDecodeError:
            line = raw[: utf8_error.start].count(b"\n") + 1
            raise DataValidationError(
                [
                    f"{path.name} row {line}: byte 0x{raw[utf8_error.start]:02x} is neither "
                    "UTF-8 nor Windows-1252 (expected UTF-8 text; in Excel use "
                    "'Save as CSV UTF-8')"
                ]
            ) from None


def _sniff_delimiter(text: str) -> str:
    """The delimiter found most often in the header line, outside quotes (comma on a tie)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "\r\n":
            break
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _read_csv(path: Path, raw: bytes) -> pd.DataFrame:
    if not raw.strip():
        raise DataValidationError([f"{path.name}: the file is empty (expected a header row)"])
    fast = _read_csv_fast(raw.removeprefix(_BOM))
    if fast is not None:
        return fast
    text, encoding = _decode(raw, path)
    delimiter = _sniff_delimiter(text)
    # A free-text cell may be longer than the csv module's default limit (128 KiB);
    # no field can be longer than the file, so that is the limit for this read.
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(max(previous_limit, len(text) + 1))
    try:
        return _parse_csv(text, path, delimiter, encoding)
    finally:
        csv.field_size_limit(previous_limit)


def _read_csv_fast(raw: bytes) -> pd.DataFrame | None:
    """Read a plain UTF-8 CSV file (no quotes, no blank lines, no ragged rows) with Arrow.

    In such a file every line is one record, so the record on line ``k`` is row
    ``k - 1`` of the data and no per-record Python work is needed; cells stay Arrow
    strings (compact) until the contract parses them. Returns ``None`` when the file
    needs the record-by-record reader (quotes, blank lines, ragged rows, bytes that
    are not UTF-8, a UTF-16 file).
    """
    end_of_header = raw.find(b"\n")
    if (
        b'"' in raw
        or end_of_header < 0
        or b"\n\n" in raw
        or b"\n\r\n" in raw
        or raw.startswith((b"\n", b"\r", b"\xff\xfe", b"\xfe\xff"))
        or raw.count(b"\r") != raw.count(b"\r\n")
    ):
        return None
    try:
        header_text = raw[:end_of_header].removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return None
    delimiter = _sniff_delimiter(header_text)
    try:
        header = next(csv.reader([header_text], delimiter=delimiter))
    except (StopIteration, csv.Error):
        return None
    header = [h.strip() for h in header]
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
                delimiter=delimiter,
                quote_char=False,
                ignore_empty_lines=True,
                invalid_row_handler=invalid_row,
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
        key: pd.Series(pd.arrays.ArrowStringArray(table.column(key)), copy=False) for key in names
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
    frame.columns = ["source_row", *header]
    frame.attrs.update(ragged=[], encoding="utf-8", delimiter=delimiter)
    return frame


def _parse_csv(text: str, path: Path, delimiter: str, encoding: str) -> pd.DataFrame:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as error:
        raise DataValidationError([f"{path.name}: cannot read the header row: {error}"]) from None
    header = [h.strip() for h in header]
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
    frame = _frame(rows, lines, header)
    frame.attrs.update(ragged=ragged, encoding=encoding, delimiter=delimiter)
    return frame


def _frame(rows: list[list[str]], lines: list[int], header: list[str]) -> pd.DataFrame:
    positions = [f"c{k}" for k in range(len(header))]
    frame = (
        pd.DataFrame(rows, columns=positions, dtype=object)
        if rows
        else pd.DataFrame(columns=positions, dtype=object)
    )
    frame.insert(0, "source_row", np.asarray(lines, dtype=int))
    frame.columns = ["source_row", *header]
    return frame


def _read_spreadsheet(path: Path, raw: bytes, sheet: str | int | None, header_row: int | None):
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(raw))
    except Exception as error:  # noqa: BLE001 - calamine raises its own error types
        raise DataValidationError(
            [f"{path.name}: cannot read the workbook: {_reason(error)}"]
        ) from None
    names = list(workbook.sheet_names)
    if sheet is None:
        sheet = 0
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise DataValidationError(
                [f"{path.name}: has {len(names)} sheet(s), no sheet number {sheet + 1}"]
            )
        sheet = names[sheet]
    elif sheet not in names:
        listed = ", ".join(repr(n) for n in names)
        raise DataValidationError([f"{path.name}: no sheet '{sheet}' (the sheets are {listed})"])
    try:
        cells = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    except Exception as error:  # noqa: BLE001
        raise DataValidationError(
            [f"{path.name} sheet '{sheet}': cannot read the sheet: {_reason(error)}"]
        ) from None
    grid = [
        [_cell_text(v).strip() if isinstance(v, str) else _cell_text(v) for v in r] for r in cells
    ]
    if not any(any(row) for row in grid):
        raise DataValidationError(
            [f"{path.name} sheet '{sheet}': the sheet is empty (expected a header row)"]
        )
    if header_row is None:
        header_row = _find_header_row(grid)
    elif not 1 <= header_row <= len(grid):
        raise DataValidationError(
            [f"{path.name} sheet '{sheet}': no row {header_row} (the sheet has {len(grid)} rows)"]
        )
    header = grid[header_row - 1]
    width = max((len(r) for r in grid[header_row - 1 :]), default=0)
    last = max((k + 1 for k, v in enumerate(header) if v), default=0)
    # columns right of the header are kept only if they hold data
    for row in grid[header_row:]:
        last = max(last, max((k + 1 for k, v in enumerate(row) if v), default=0))
    width = min(width, last)
    header = (header + [""] * width)[:width]
    rows, lines = [], []
    for number, row in enumerate(grid[header_row:], start=header_row + 1):
        row = (row + [""] * width)[:width]
        if any(cell.strip() for cell in row):
            rows.append(row)
            lines.append(number)
    frame = _frame(rows, lines, header)
    frame.attrs.update(ragged=[], sheet=sheet, header_row=header_row)
    return frame


def _find_header_row(grid: list[list[str]]) -> int:
    """The first row filled like a header: most cells filled, all of them words."""
    top = grid[:_HEADER_SEARCH_ROWS]
    filled = [sum(1 for v in row if v) for row in top]
    most = max(filled)
    for number, (row, n) in enumerate(zip(top, filled, strict=True), start=1):
        if n >= max(2, 0.8 * most) or (most < 2 and n):
            words = [v for v in row if v]
            if all(not _looks_numeric(v) for v in words) or n == most:
                return number
    return 1


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
