"""The data contract's checks as SQL, written once (DuckDB's dialect, run on Spark too).

The SQL twin of :func:`spimpact.io._parse_column` and ``_pseudonymise_key_column`` and
of the records-of-unknown-patients check of :func:`spimpact.linkage.check_relations`:
the same rules, the same reason texts, on a table of text cells with their
``source_row``. :func:`check_table` records every exclusion and writes the validated,
typed rows to Parquet. The expressions use only what DuckDB and Spark share (through
SQLGlot): regular expressions both RE2 and Java read alike, integer arithmetic for
dates, no engine-specific date parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact import contract
from spimpact.cells import WITHHELD
from spimpact.contract import Column, TableSpec
from spimpact.identifiers import pseudonymise
from spimpact.readers import DataValidationError

__all__ = ["CheckedTable", "TableCheck", "check_table", "quote"]

# The characters Python's str.strip() (and Arrow's utf8_trim_whitespace) remove.
_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_WHITESPACE_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in _WHITESPACE)
_MISSING = "required value missing"
_INVALID_NHS = "invalid NHS number (fails the Modulus 11 check or is not 10 digits)"
_UNKNOWN_PATIENT = "appointment for a patient who is neither a client nor in the comparison pool"
# Column kinds the SQL checks cover (the kinds of the streamable tables).
SQL_KINDS = ("text", "code", "date")


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _date_parts(cell: str) -> tuple[str, str, str, str]:
    """Shape test and year, month, day of a ``YYYY-M-D`` cell (pandas' format)."""
    shape = f"regexp_matches({cell}, '^[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}$')"
    year = f"CAST(regexp_extract({cell}, '^([0-9]{{4}})-', 1) AS INTEGER)"
    month = f"CAST(regexp_extract({cell}, '^[0-9]{{4}}-([0-9]{{1,2}})-', 1) AS INTEGER)"
    day = f"CAST(regexp_extract({cell}, '-([0-9]{{1,2}})$', 1) AS INTEGER)"
    return shape, year, month, day


def _date_ok(cell: str) -> str:
    """A real calendar date inside pandas' nanosecond range (1677-09-22 to 2262-04-11)."""
    shape, year, month, day = _date_parts(cell)
    leap = f"({year} % 4 = 0 AND {year} % 100 <> 0 OR {year} % 400 = 0)"
    days = (
        f"CASE WHEN {month} IN (1, 3, 5, 7, 8, 10, 12) THEN 31 WHEN {month} IN (4, 6, 9, 11) "
        f"THEN 30 WHEN {leap} THEN 29 ELSE 28 END"
    )
    ordinal = f"{year} * 10000 + {month} * 100 + {day}"
    checked = (
        f"{month} BETWEEN 1 AND 12 AND {day} BETWEEN 1 AND {days} "
        f"AND {ordinal} BETWEEN 16770922 AND 22620411"
    )
    return f"(CASE WHEN {shape} THEN {checked} ELSE FALSE END)"


def _normalised_code(column: Column, cell: str) -> str:
    """``contract.normalise_codes`` in SQL."""
    if column.name == "sex":
        cases = " ".join(
            f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in contract.SEX_ALIASES.items()
        )
        return f"(CASE lower({cell}) {cases} ELSE lower({cell}) END)"
    if column.name == "ethnic_category":
        upper = f"upper({cell})"
        aliased = " ".join(
            f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in contract.ETHNIC_ALIASES.items()
        )
        upper = f"(CASE {upper} {aliased} ELSE {upper} END)"
        known = ", ".join(_literal(c) for c in contract.ETHNIC_CATEGORIES)
        return (
            f"(CASE WHEN {upper} NOT IN ({known}) AND length({upper}) = 2 "
            f"THEN substr({upper}, 1, 1) ELSE {upper} END)"
        )
    if column.name in ("age_band", "imd_edition"):
        return cell
    return f"lower({cell})"


def column_check(column: Column, cell: str) -> tuple[str | None, str]:
    """(the condition that a non-blank cell is invalid or None, its parsed value)."""
    if column.kind == "date":
        ok = _date_ok(cell)
        _, year, month, day = _date_parts(cell)
        return (
            f"NOT {ok}",
            f"CASE WHEN {cell} <> '' AND {ok} THEN make_date({year}, {month}, {day}) END",
        )
    if column.kind == "code":
        normal = _normalised_code(column, cell)
        allowed = ", ".join(_literal(c) for c in column.allowed or ())
        bad = f"{normal} NOT IN ({allowed})" if allowed else "TRUE"
        return bad, f"CASE WHEN {cell} <> '' AND NOT ({bad}) THEN {normal} END"
    if column.pattern:
        bad = f"NOT regexp_matches({cell}, {_literal('^(?:' + column.pattern + ')$')})"
        return bad, f"CASE WHEN {cell} <> '' AND NOT ({bad}) THEN {cell} END"
    return None, f"CASE WHEN {cell} <> '' THEN {cell} END"


def _stripped(cell: str) -> str:
    """``str.strip()`` of a cell, NULL read as blank (a pattern RE2 and Java read alike)."""
    edges = f"^[{_WHITESPACE_CLASS}]+|[{_WHITESPACE_CLASS}]+$"
    return f"regexp_replace(COALESCE({cell}, ''), '{edges}', '', 'g')"


def _nhs_digits(cell: str) -> str:
    """``identifiers.normalise_nhs_number``: whitespace and hyphens removed."""
    return f"regexp_replace({cell}, '[{_WHITESPACE_CLASS}-]', '', 'g')"


def _nhs_valid(digits: str) -> str:
    """``identifiers.is_valid_nhs_number`` in SQL: ten ASCII digits passing Modulus 11."""
    total = " + ".join(
        f"CAST(substr({digits}, {k}, 1) AS INTEGER) * {11 - k}" for k in range(1, 10)
    )
    check = f"(11 - ({total}) % 11) % 11 = CAST(substr({digits}, 10, 1) AS INTEGER)"
    return f"(CASE WHEN regexp_matches({digits}, '^[0-9]{{10}}$') THEN {check} ELSE FALSE END)"


@dataclass(frozen=True)
class TableCheck:
    """One table to check: its contract, the columns present, and what the checks need.

    ``known_ids``: the keys a GP appointment's patient may have (client and
    comparison-pool keys); ``key``: the pseudonym key for NHS numbers.
    """

    spec: TableSpec
    columns: list[str]
    source_name: str
    key: str | None
    known_ids: set[str]


@dataclass(frozen=True)
class CheckedTable:
    """What :func:`check_table` found: rows read, exclusions, the validated columns.

    ``exclusions`` has ``row, column, value, reason`` as the pandas path records them
    (values not yet withheld: :class:`spimpact.linkage.Collector` does that).
    """

    n_read: int
    n_used: int
    exclusions: pd.DataFrame
    columns: tuple[str, ...]
    dates: tuple[str, ...]


def check_table(connection, raw_sql: str, job: TableCheck, written: Path) -> CheckedTable:
    """Check the text rows ``raw_sql`` selects (``source_row`` and the columns).

    Runs on ``connection`` (:func:`spimpact.engine.connect`); the validated rows (those
    without an exclusion, typed, NHS numbers replaced by pseudonyms) are written to
    ``written`` as Parquet (a folder of parts on Spark).
    """
    spec, columns = job.spec, job.columns
    trimmed = ", ".join(f"{_stripped(quote(c))} AS {quote(c)}" for c in columns)
    connection.execute(
        f"CREATE TEMP VIEW cells AS SELECT source_row, {trimmed} FROM ({raw_sql}) AS raw"
    )
    checks, parsed = [], {}
    for column in spec.columns:
        if column.name not in columns or column.name == "nhs_number":
            continue
        cell = quote(column.name)
        bad, parsed[column.name] = column_check(column, cell)
        if bad is not None:
            reason = f"expected {column.expectation()}"
            if column.kind == "date":
                reason += " (impossible or malformed date)"
            checks.append((f"{cell} <> '' AND {bad}", column.name, cell, reason))
        if column.required:
            checks.append((f"{cell} = ''", column.name, "''", _MISSING))
    person = spec.person_key
    join = ""
    if "nhs_number" in columns:
        checks.append((f"\"nhs_number\" <> '' AND NOT {_nhs_valid(_nhs_digits('nhs_number'))}",
                       "nhs_number", _literal(WITHHELD), _INVALID_NHS))  # fmt: skip
        if not _has_person_key(connection, parsed.get(person)):
            if spec.name != "feedback":
                checks.append(("\"nhs_number\" = ''", "nhs_number", "''", _MISSING))
            _register_pseudonyms(connection, job)
            parsed[person] = "pseudonyms.pseudonym"
            join = f"LEFT JOIN pseudonyms ON pseudonyms.digits = {_nhs_digits('cells.nhs_number')}"
    order = [c.name for c in spec.columns if c.name in parsed]
    if person in parsed and person not in columns:
        order.remove(person)
        order.append(person)  # a key made from NHS numbers comes last, as in pandas
    selected = ", ".join(f"{parsed[c]} AS {quote(c)}" for c in order)
    connection.execute(
        f"CREATE TEMP VIEW parsed AS SELECT cells.source_row, {selected} FROM cells {join}"
    )
    queries = [_column_query(name, [c for c in checks if c[1] == name]) for name in columns]
    queries = [q for q in queries if q is not None]
    if spec.name == "gp_appointments" and person in order:
        queries.append(_orphan_query(connection, person, job.known_ids))
    exclusions = (
        connection.df(" UNION ALL ".join(queries) + " ORDER BY excluded_row, column_name")
        if queries
        else pd.DataFrame(columns=["excluded_row", "column_name", "value", "reason"])
    ).rename(columns={"excluded_row": "row", "column_name": "column"})
    n_read = int(connection.df("SELECT count(*) AS n FROM cells")["n"].iloc[0])
    excluded = pd.DataFrame({"row": np.unique(exclusions["row"].to_numpy(dtype="int64"))})
    _register(connection, "excluded_rows", excluded, {"row": "BIGINT"})
    connection.to_parquet(
        "SELECT parsed.* FROM parsed LEFT JOIN excluded_rows "
        "ON excluded_rows.row = parsed.source_row WHERE excluded_rows.row IS NULL",
        written,
    )
    dates = tuple(c for c in order if spec.column(c).kind == "date")
    return CheckedTable(n_read, n_read - len(excluded), exclusions, ("source_row", *order), dates)


def _column_query(name: str, checks: list[tuple[str, str, str, str]]) -> str | None:
    """The exclusions of one column in one scan (its checks exclude one another)."""
    if not checks:
        return None
    value = " ".join(f"WHEN {condition} THEN {shown}" for condition, _, shown, _ in checks)
    reason = " ".join(f"WHEN {condition} THEN {_literal(why)}" for condition, _, _, why in checks)
    found = " OR ".join(f"({condition})" for condition, *_ in checks)
    return (
        f"SELECT source_row AS excluded_row, {_literal(name)} AS column_name, "
        f"CASE {value} END AS value, CASE {reason} END AS reason FROM cells WHERE {found}"
    )


def _has_person_key(connection, parsed_key: str | None) -> bool:
    """Whether the person-key column holds a valid value anywhere.

    If it does, NHS numbers are only checked, as in ``io._pseudonymise_key_column``.
    """
    if parsed_key is None:
        return False
    found = connection.df(f"SELECT count(*) AS n FROM cells WHERE ({parsed_key}) IS NOT NULL")
    return bool(found["n"].iloc[0])


def _register_pseudonyms(connection, job: TableCheck) -> None:
    """Table ``pseudonyms`` (``digits, pseudonym``) of every distinct valid NHS number.

    The keyed HMAC runs in Python once per distinct number (a patient has many
    appointments), so the key never enters the SQL text.
    """
    if not job.key:
        raise DataValidationError(
            [
                f"{job.source_name}: NHS numbers must be pseudonymised on load but no key "
                "was given (set the environment variable named by params "
                "'pseudonym_key_env', SPIMPACT_PSEUDONYM_KEY by default)"
            ]
        )
    digits = _nhs_digits("nhs_number")
    numbers = connection.df(
        f"SELECT DISTINCT {digits} AS digits FROM cells "
        f"WHERE nhs_number <> '' AND {_nhs_valid(digits)}"
    )["digits"].astype(str)
    frame = pd.DataFrame(
        {"digits": numbers, "pseudonym": [pseudonymise(n, job.key) for n in numbers]},
        dtype=object,
    )
    _register(connection, "pseudonyms", frame, {"digits": "VARCHAR", "pseudonym": "VARCHAR"})


def _orphan_query(connection, person: str, known_ids: set[str]) -> str:
    """Appointments of patients neither a client nor in the comparison pool."""
    known = pd.DataFrame({"id": sorted(str(i) for i in known_ids)}, dtype=object)
    _register(connection, "known_ids", known, {"id": "VARCHAR"})
    key = f"parsed.{quote(person)}"
    return (
        f"SELECT parsed.source_row AS excluded_row, {_literal(person)} AS column_name, "
        f"{key} AS value, {_literal(_UNKNOWN_PATIENT)} AS reason "
        f"FROM parsed LEFT JOIN known_ids ON known_ids.id = {key} "
        f"WHERE {key} IS NOT NULL AND known_ids.id IS NULL"
    )


def _register(connection, name: str, frame: pd.DataFrame, types: dict[str, str]) -> None:
    """Register ``frame`` as table ``name``; an empty one as a typed empty view.

    (Spark cannot infer the column types of an empty frame.)
    """
    if len(frame):
        connection.register_frame(name, frame)
        return
    columns = ", ".join(f"CAST(NULL AS {kind}) AS {quote(c)}" for c, kind in types.items())
    connection.execute(f"CREATE TEMP VIEW {name} AS SELECT {columns} WHERE FALSE")
