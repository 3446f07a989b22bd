"""Derived columns of a mapping: dates, split and joined text, postcodes to LSOAs, sequences.

Each function takes text Series (the cells as read) and returns text Series in the
contract's spelling, plus a mask of the cells it could not convert, so the caller can
exclude those rows with their reason. Nothing here decides what to exclude.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = [
    "EXCEL_EPOCH",
    "concat_columns",
    "convert_dates",
    "label_key",
    "lookup_lsoa",
    "normalise_postcode",
    "number_in_sequence",
    "split_column",
]

# Excel's day 0 (its 1900 calendar counts a 29 February 1900 that never was, so
# serial 60 and later are right from this epoch, as every modern reader does).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_ISO = r"(\d{4}-\d{2}-\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"


def label_key(value) -> str:
    """How labels are matched: case and repeated or surrounding spaces ignored.

    >>> label_key("  White -  British ") == label_key("white - british")
    True
    """
    return " ".join(str(value).split()).casefold()


def convert_dates(text: pd.Series, date_format: str | None) -> tuple[pd.Series, pd.Series]:
    """Dates as ISO ``YYYY-MM-DD`` text, and the mask of cells that are not such dates.

    ``date_format`` is a ``strptime`` format (e.g. ``%d/%m/%Y``), ``excel`` (day
    numbers counted from 1899-12-30, as spreadsheets store dates) or None (ISO). ISO
    dates are accepted whatever the format (spreadsheet cells stored as dates arrive
    so), and a time of day is dropped. With None, nothing is flagged here: the data
    contract checks the ISO dates itself.

    Examples
    --------
    >>> text = pd.Series(["05/04/2024", "2024-04-06 10:30:00", "45390", "31/02/2024", ""])
    >>> iso, bad = convert_dates(text, "%d/%m/%Y")
    >>> iso.tolist(), bad.tolist()
    (['2024-04-05', '2024-04-06', '', '', ''], [False, False, True, True, False])
    >>> convert_dates(pd.Series(["45390"]), "excel")[0].tolist()
    ['2024-04-08']
    """
    text = text.fillna("").astype(str).str.strip()
    blank = text == ""
    iso = text.str.extract(f"^{_ISO}$", expand=False)
    if date_format is None or date_format.lower() == "iso":
        return iso.fillna(text).where(~blank, ""), pd.Series(False, index=text.index)
    if date_format.lower() == "excel":
        serial = pd.to_numeric(text.where(iso.isna() & ~blank), errors="coerce")
        serial = serial.where((serial >= 1) & (serial < 2958466))
        parsed = EXCEL_EPOCH + pd.to_timedelta(serial.fillna(0).astype("int64"), unit="D")
        converted = parsed.dt.strftime("%Y-%m-%d").where(serial.notna())
    else:
        parsed = pd.to_datetime(
            text.where(iso.isna() & ~blank), format=date_format, errors="coerce"
        )
        converted = parsed.dt.strftime("%Y-%m-%d")
    result = iso.astype(object).where(iso.notna(), converted.astype(object))
    bad = ~blank & result.isna()
    return result.fillna("").where(~blank, ""), bad


def concat_columns(columns: list[pd.Series], sep: str) -> pd.Series:
    """The non-blank cells of several columns joined with ``sep``."""
    parts = pd.concat([c.fillna("").astype(str).str.strip() for c in columns], axis=1)
    return parts.apply(lambda row: sep.join(v for v in row if v), axis=1).astype(object)


def split_column(text: pd.Series, sep: str, part: int) -> pd.Series:
    """Part ``part`` (1 = first, -1 = last) of each cell cut at ``sep``; blank if absent.

    >>> split_column(pd.Series(["A81001 - Riverside Surgery", "B82002"]), " - ", 1).tolist()
    ['A81001', 'B82002']
    """
    pieces = text.fillna("").astype(str).str.split(sep, regex=False)
    index = part - 1 if part > 0 else part
    return pieces.map(lambda p: p[index].strip() if -len(p) <= index < len(p) else "")


def normalise_postcode(text: pd.Series) -> pd.Series:
    """Postcodes in upper case without spaces, as lookups are matched."""
    return text.fillna("").astype(str).str.upper().str.replace(r"\s+", "", regex=True)


def lookup_lsoa(postcodes: pd.Series, lookup_file: Path, postcode_column: str, lsoa_column: str):
    """LSOA codes of postcodes from a lookup file (CSV or Parquet), joined in DuckDB.

    Returns the LSOA text ('' when the postcode is blank or not in the lookup) and the
    mask of postcodes that were given but not found. Only the two named columns of the
    lookup are read, so a full ONS Postcode Directory can be used as it is.
    """
    import duckdb

    from spimpact.files import MAX_TABLE_BYTES, FileRefused, check_regular_file
    from spimpact.readers import DataValidationError

    try:  # only a regular file of bounded size, never a link, device or folder
        if check_regular_file(lookup_file, what="postcode lookup") > MAX_TABLE_BYTES:
            raise FileRefused(f"{lookup_file.name}: postcode lookup is larger than 2 GiB")
    except FileRefused as error:
        raise DataValidationError([str(error)]) from None
    reader = (
        "read_parquet(?)"
        if lookup_file.suffix == ".parquet"
        else ("read_csv(?, all_varchar = true, header = true)")
    )
    wanted = pd.DataFrame({"row": range(len(postcodes)), "pc": normalise_postcode(postcodes)})
    with duckdb.connect() as con:
        con.register("wanted", wanted)
        found = con.execute(
            f"""
            WITH lookup AS (
                SELECT upper(regexp_replace(CAST({_quote(postcode_column)} AS VARCHAR),
                                            '\\s+', '', 'g')) AS pc,
                       any_value(CAST({_quote(lsoa_column)} AS VARCHAR)) AS lsoa
                FROM {reader}
                GROUP BY 1
            )
            SELECT wanted.row, lookup.lsoa
            FROM wanted LEFT JOIN lookup USING (pc)
            ORDER BY wanted.row
            """,
            [str(lookup_file)],
        ).df()
    lsoa = pd.Series(found["lsoa"].fillna("").to_numpy(), index=postcodes.index, dtype=object)
    given = wanted["pc"].to_numpy() != ""
    return lsoa, pd.Series(given & (lsoa.to_numpy() == ""), index=postcodes.index)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def number_in_sequence(frame: pd.DataFrame, by: list[str], order: str, *, start: int) -> pd.Series:
    """Number rows ``start``, ``start + 1``, ... by ``order`` within groups of ``by``.

    Rows with a blank ``order`` or group key get a blank number. Ties keep the rows'
    order.

    >>> frame = pd.DataFrame({"client_id": ["a", "a", "b", "a"],
    ...                       "date": ["2024-03-01", "2024-01-01", "2024-02-01", ""]})
    >>> number_in_sequence(frame, ["client_id"], "date", start=0).tolist()
    ['1', '0', '0', '']
    """
    usable = frame[order].fillna("").ne("")
    for column in by:
        usable &= frame[column].fillna("").ne("")
    ranked = frame[usable].sort_values([*by, order], kind="stable")
    numbers = ranked.groupby(by, sort=False).cumcount() + start
    return numbers.astype(str).reindex(frame.index).fillna("").astype(object)
