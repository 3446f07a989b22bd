"""Load a scheme's tables, check them against the data contract, reconcile every row.

Every row read is either used or listed in ``SchemeData.exclusions`` with its reason;
``reconciliation`` gives ``n_read == n_used + n_excluded`` per table. Problems that
make a table unreadable raise ``DataValidationError`` naming file, row, column, value
and what was expected. NHS numbers are checked (Modulus 11) and replaced by keyed
pseudonyms here; raw numbers never leave this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact import contract
from spimpact.cells import (
    WITHHELD,
    ExclusionLog,
    nullable_int,
    parse_numbers,
)
from spimpact.contract import TABLES, Column, TableSpec
from spimpact.identifiers import is_valid_nhs_number, normalise_nhs_number, pseudonymise
from spimpact.params import check_key_allowed
from spimpact.readers import DataValidationError, find_table_file, read_table
from spimpact.scoring.validate import EXCLUSION_COLUMNS as ITEM_EXCLUSION_COLUMNS
from spimpact.scoring.validate import ItemCheck, validate_items

__all__ = [
    "DataValidationError",
    "SchemeData",
    "find_table_file",
    "is_valid_nhs_number",
    "load_scheme",
    "load_scheme_from_params",
    "read_table",
]

_Collector = ExclusionLog
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


@dataclass(frozen=True)
class SchemeData:
    """A scheme's validated tables with the account of every row read."""

    data_dir: Path
    clients: pd.DataFrame
    measures: pd.DataFrame
    reconciliation: pd.DataFrame
    exclusions: pd.DataFrame
    non_standard: pd.DataFrame
    contacts: pd.DataFrame | None = None
    support_offered: pd.DataFrame | None = None
    gp_appointments: pd.DataFrame | None = None
    comparison_pool: pd.DataFrame | None = None
    feedback: pd.DataFrame | None = None
    population: pd.DataFrame | None = None
    source_files: Mapping[str, Path] = field(default_factory=dict)
    ignored_columns: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["table", "column"])
    )

    def table(self, name: str) -> pd.DataFrame | None:
        """The validated table ``name`` (None when the scheme does not have it)."""
        return getattr(self, name)

    @property
    def measure_items(self) -> ItemCheck:
        """The measures as their items were checked on load, ready to score as they are."""
        no_exclusions = pd.DataFrame(columns=list(ITEM_EXCLUSION_COLUMNS))
        return ItemCheck(self.measures, no_exclusions, self.non_standard)


def _check_header(spec: TableSpec, frame: pd.DataFrame, path: Path) -> list[str]:
    present = set(frame.columns)
    problems = []
    for column in spec.columns:
        if column.required and column.name not in present:
            problems.append(
                f"{path.name} row 1, column '{column.name}': required column missing "
                f"(expected {column.expectation()})"
            )
    for group in spec.one_of:
        if not present.intersection(group):
            names = ", ".join(repr(g) for g in group)
            problems.append(f"{path.name} row 1: one of the columns {names} is required")
    return problems


def _parse_column(column: Column, values: pd.Series, rows: np.ndarray, out: _Collector):
    """Parse one text column; invalid cells are recorded and returned as missing."""
    # Arrow strings: compact, and their string functions run without a Python loop
    text = values.fillna("").astype("string[pyarrow]").str.strip()
    blank = (text == "").to_numpy(dtype=bool)
    if column.kind == "date":
        parsed = pd.to_datetime(text.where(~blank), format="%Y-%m-%d", errors="coerce")
        bad = ~blank & parsed.isna()
        out.add(
            rows[bad],
            column.name,
            text[bad],
            f"expected {column.expectation()} (impossible or malformed date)",
        )
    elif column.kind in ("int", "float"):
        parsed = parse_numbers(text)
        bad = ~blank & parsed.isna()
        if column.kind == "int":
            bad |= parsed.notna() & (parsed % 1 != 0)
        if column.minimum is not None:
            bad |= parsed < column.minimum
        if column.maximum is not None:
            bad |= parsed > column.maximum
        out.add(rows[bad], column.name, text[bad], f"expected {column.expectation()}")
        parsed = parsed.where(~bad)
        parsed = nullable_int(parsed) if column.kind == "int" else parsed.astype(float)
    elif column.kind == "bool":
        lowered = text.str.lower()
        parsed = pd.Series(pd.NA, index=text.index, dtype="boolean")
        parsed[lowered.isin(_TRUE)] = True
        parsed[lowered.isin(_FALSE)] = False
        bad = ~blank & parsed.isna()
        out.add(rows[bad], column.name, text[bad], f"expected {column.expectation()}")
    elif column.kind == "code":
        normalised = _normalise_code(column.name, text)
        bad = ~blank & ~normalised.isin(column.allowed or ())
        out.add(rows[bad], column.name, text[bad], f"expected {column.expectation()}")
        parsed = normalised.where(~blank & ~bad)
    else:
        bad = pd.Series(False, index=text.index)
        if column.pattern:
            bad = ~blank & ~text.str.fullmatch(column.pattern)
            out.add(rows[bad], column.name, text[bad], f"expected {column.expectation()}")
        parsed = text.where(~blank & ~bad)
    missing = blank if column.required else np.zeros(len(text), dtype=bool)
    out.add(rows[missing], column.name, "", "required value missing")
    if isinstance(parsed.dtype, pd.StringDtype):
        # text and codes leave as plain Python strings with NaN for missing, as before;
        # through a categorical, repeated values share one string object (8 bytes a row)
        parsed = parsed.astype("category").astype(object).where(parsed.notna(), np.nan)
    return parsed


def _normalise_code(name: str, text: pd.Series) -> pd.Series:
    if name == "sex":
        lowered = text.str.lower()
        return lowered.map(lambda v: contract.SEX_ALIASES.get(v, v))
    if name == "ethnic_category":
        upper = text.str.upper()
        upper = upper.map(lambda v: contract.ETHNIC_ALIASES.get(v, v))
        # a 2-character local code: the national code is its first character
        return upper.where(
            upper.isin(contract.ETHNIC_CATEGORIES) | (upper.str.len() != 2), upper.str[0]
        )
    if name in ("age_band", "imd_edition"):
        return text
    return text.str.lower()


def _pseudonymise_key_column(
    spec: TableSpec, frame: pd.DataFrame, key: str | None, out: _Collector, path: Path
) -> pd.DataFrame:
    """Validate ``nhs_number`` and replace it by a pseudonym in the person-key column."""
    if "nhs_number" not in frame:
        return frame
    numbers = frame.pop("nhs_number").fillna("").astype(str).str.strip()
    rows = frame["source_row"].to_numpy()
    has_key_column = spec.person_key in frame and frame[spec.person_key].notna().any()
    blank = numbers == ""
    valid = numbers.map(is_valid_nhs_number)
    bad = ~blank & ~valid
    out.add(
        rows[bad],
        "nhs_number",
        WITHHELD,
        "invalid NHS number (fails the Modulus 11 check or is not 10 digits)",
    )
    if has_key_column:
        return frame
    if not key:
        raise DataValidationError(
            [
                f"{path.name}: NHS numbers must be pseudonymised on load but no key was given "
                "(set the environment variable named by params 'pseudonym_key_env', "
                "SPIMPACT_PSEUDONYM_KEY by default)"
            ]
        )
    required_missing = blank & (spec.name != "feedback")
    out.add(rows[required_missing], "nhs_number", "", "required value missing")
    frame[spec.person_key] = [
        pseudonymise(normalise_nhs_number(n), key) if ok else None
        for n, ok in zip(numbers, valid, strict=True)
    ]
    return frame


def _load_one(spec: TableSpec, path: Path, key: str | None):
    frame = read_table(path)
    problems = _check_header(spec, frame, path)
    if problems:
        raise DataValidationError(problems)
    out = _Collector(spec.name)
    for line, n_fields in frame.attrs.get("ragged", []):
        out.add(
            [line],
            "",
            f"{n_fields} fields",
            f"row has {n_fields} fields, the header has {frame.shape[1] - 1}",
        )
    known = set(spec.names)
    ignored = [c for c in frame.columns if c not in known and c != "source_row"]
    frame = frame.drop(columns=ignored)
    rows = frame["source_row"].to_numpy()
    parsed = {"source_row": rows}
    for column in spec.columns:
        if column.name in frame and column.name != "nhs_number":
            parsed[column.name] = _parse_column(column, frame[column.name], rows, out).to_numpy()
    result = pd.DataFrame(parsed)
    if "nhs_number" in frame:
        result["nhs_number"] = frame["nhs_number"].to_numpy()
        result = _pseudonymise_key_column(spec, result, key, out, path)
    return result, out, ignored


def load_scheme(
    path: str | Path,
    *,
    variants: Mapping | None = None,
    pseudonym_key: str | None = None,
    pseudonym_key_env: str = "SPIMPACT_PSEUDONYM_KEY",
    imd_edition: int = 2019,
    swemwbs_max_missing_items: int = 0,
) -> SchemeData:
    """Load and validate the scheme folder ``path``.

    Parameters
    ----------
    path
        Folder holding the contract tables (``docs/data-contract.md``).
    variants
        Measure name to ``spimpact.params.ScaleVariant``: explicit mappings of modified
        instruments back to standard coding (otherwise such rows are excluded).
    pseudonym_key, pseudonym_key_env
        Key for NHS-number pseudonyms, or the environment variable holding it.
    imd_edition
        IMD edition assumed when ``clients`` has no ``imd_edition`` column.
    swemwbs_max_missing_items
        0 (standard: every item needed) or 1 (opt-in, flagged as non-standard).

    Returns
    -------
    SchemeData

    Raises
    ------
    DataValidationError
        When a table cannot be read as the contract describes; the message lists
        every such problem with file, row, column, value and what was expected.

    Examples
    --------
    >>> import tempfile
    >>> from spimpact.synthetic import write_example_data, EXAMPLE_SCHEMES
    >>> folder = write_example_data(tempfile.mkdtemp(), schemes=EXAMPLE_SCHEMES[-1:])[0]
    >>> scheme = load_scheme(folder)
    >>> bool((scheme.reconciliation.n_read == scheme.reconciliation.n_used
    ...       + scheme.reconciliation.n_excluded).all())
    True
    """
    data_dir = Path(path)
    if not data_dir.is_dir():
        raise DataValidationError([f"{data_dir.name}: no such scheme folder"])
    key = pseudonym_key or os.environ.get(pseudonym_key_env)
    tables, collectors, files, problems, ignored = {}, {}, {}, [], []
    for name, spec in TABLES.items():
        try:
            found = find_table_file(data_dir, name)
        except DataValidationError as error:
            problems.extend(error.problems)
            continue
        if found is None:
            if spec.required:
                problems.append(
                    f"{data_dir.name}: required table '{name}' missing "
                    f"(expected {name}.csv or {name}.parquet)"
                )
            continue
        try:
            tables[name], collectors[name], dropped = _load_one(spec, found, key)
        except DataValidationError as error:
            problems.extend(error.problems)
            continue
        files[name] = found
        ignored += [(name, c) for c in dropped]
        if spec.required and tables[name].empty:
            problems.append(
                f"{found.name}: has a header but no data rows (expected at least one row)"
            )
    if problems:
        raise DataValidationError(problems)
    n_read = {name: len(frame) for name, frame in tables.items()}
    clients = _check_clients(tables["clients"], collectors["clients"], imd_edition)
    item_check = _check_measure_items(
        tables["measures"], collectors["measures"], variants, {"swemwbs": swemwbs_max_missing_items}
    )
    tables["measures"] = item_check.measures
    tables["clients"] = clients
    _check_relations(tables, collectors)
    used = {name: _drop_excluded(frame, collectors[name]) for name, frame in tables.items()}
    used = _derive(used)
    exclusions = pd.concat([c.frame() for c in collectors.values()], ignore_index=True)
    exclusions = exclusions.sort_values(["table", "row", "column"], kind="stable").reset_index(
        drop=True
    )
    reconciliation = pd.DataFrame(
        [
            (name, n_read[name], len(used[name]), n_read[name] - len(used[name]))
            for name in TABLES
            if name in used
        ],
        columns=["table", "n_read", "n_used", "n_excluded"],
    )
    return SchemeData(
        data_dir=data_dir,
        reconciliation=reconciliation,
        exclusions=exclusions,
        non_standard=item_check.non_standard,
        source_files=files,
        ignored_columns=pd.DataFrame(ignored, columns=["table", "column"]),
        **used,
    )


def load_scheme_from_params(params) -> SchemeData:
    """Load the scheme a ``spimpact.params.SchemeParams`` describes, with its options.

    The data folder, declared scale variants, pseudonymisation key (params or the
    environment variable it names), IMD edition and SWEMWBS missing-item rule all
    come from the params. A key kept in params is refused unless the folder holds
    synthetic example data (``spimpact.params.check_key_allowed``).
    """
    check_key_allowed(params)
    key = params.pseudonym_key.get_secret_value() if params.pseudonym_key else None
    return load_scheme(
        params.data_dir,
        variants=params.measures.variants,
        pseudonym_key=key,
        pseudonym_key_env=params.pseudonym_key_env,
        imd_edition=params.imd_edition,
        swemwbs_max_missing_items=params.measures.swemwbs_max_missing_items,
    )


def _drop_excluded(frame: pd.DataFrame, out: _Collector) -> pd.DataFrame:
    excluded = out.excluded_rows()
    return frame[~frame["source_row"].isin(excluded)].reset_index(drop=True)


def _duplicates(frame: pd.DataFrame, keys: list[str], out: _Collector, what: str) -> None:
    complete = frame.dropna(subset=keys)
    dup = complete.duplicated(subset=keys, keep="first")
    if dup.any():
        # the row each duplicate repeats, found by one group-by (not one look-up per row);
        # one reason text per first row, shared by its duplicates
        first = complete.groupby(keys, sort=False)["source_row"].transform("first")[dup]
        codes, firsts = pd.factorize(first)
        reasons = np.array([f"duplicate {what} (first seen at row {r})" for r in firsts], object)
        out.add(
            complete.loc[dup, "source_row"],
            "+".join(keys),
            complete.loc[dup, keys[0]].astype(str),
            reasons[codes],
        )


def _check_clients(clients: pd.DataFrame, out: _Collector, imd_edition: int) -> pd.DataFrame:
    clients = clients.copy()
    _duplicates(clients, ["client_id"], out, "client_id")
    if "discharge_date" in clients:
        early = clients["discharge_date"] < clients["referral_date"]
        out.add(
            clients.loc[early, "source_row"],
            "discharge_date",
            clients.loc[early, "discharge_date"].dt.strftime("%Y-%m-%d"),
            "discharge date before referral date",
        )
    if "consent_data_use" in clients:
        refused = clients["consent_data_use"].eq(False).fillna(False).to_numpy(bool)
        out.add(
            clients.loc[refused, "source_row"],
            "consent_data_use",
            "false",
            "no consent to use the record for evaluation",
        )
    if "date_of_birth" in clients:
        born_after = clients["date_of_birth"] > clients["referral_date"]
        out.add(
            clients.loc[born_after, "source_row"],
            "date_of_birth",
            WITHHELD,
            "date of birth after referral date",
        )
    if "imd_edition" not in clients:
        clients["imd_edition"] = str(imd_edition)
    return clients


def _check_measure_items(measures: pd.DataFrame, out: _Collector, variants, max_missing_items):
    items = validate_items(
        measures, variants=dict(variants or {}), max_missing_items=max_missing_items
    )
    excluded = items.exclusions
    out.add(excluded["row"], excluded["column"], excluded["value"].astype(str), excluded["reason"])
    return items


def _check_relations(tables: dict, collectors: dict) -> None:
    clients = tables["clients"]
    all_ids = set(clients["client_id"].dropna())
    excluded_rows = collectors["clients"].excluded_rows()
    usable = set(clients.loc[~clients["source_row"].isin(excluded_rows), "client_id"].dropna())
    for name in ("measures", "contacts", "support_offered", "feedback"):
        if name not in tables:
            continue
        frame = tables[name]
        ids = frame["client_id"]
        unknown = ids.notna() & ~ids.isin(all_ids)
        collectors[name].add(
            frame.loc[unknown, "source_row"],
            "client_id",
            ids[unknown],
            "record for an unknown client (not in clients)",
        )
        dropped = ids.notna() & ids.isin(all_ids) & ~ids.isin(usable)
        collectors[name].add(
            frame.loc[dropped, "source_row"],
            "client_id",
            ids[dropped],
            "the client's own record was excluded",
        )
    measures = tables["measures"]
    _duplicates(
        measures,
        ["client_id", "measure", "timepoint"],
        collectors["measures"],
        "client_id+measure+timepoint",
    )
    baseline = (
        measures[measures["timepoint"] == 0]
        .drop_duplicates(["client_id", "measure"])
        .set_index(["client_id", "measure"])["date"]
    )
    base_date = pd.Series(
        baseline.reindex(pd.MultiIndex.from_frame(measures[["client_id", "measure"]])).to_numpy(),
        index=measures.index,
    )
    early = (measures["timepoint"] > 0) & (measures["date"] < base_date)
    collectors["measures"].add(
        measures.loc[early, "source_row"],
        "date",
        measures.loc[early, "date"].dt.strftime("%Y-%m-%d"),
        "follow-up dated before the baseline of the same measure",
    )
    referral = clients.drop_duplicates("client_id").set_index("client_id")["referral_date"]
    if "contacts" in tables:
        contacts = tables["contacts"]
        early = contacts["contact_date"] < contacts["client_id"].map(referral)
        collectors["contacts"].add(
            contacts.loc[early, "source_row"],
            "contact_date",
            contacts.loc[early, "contact_date"].dt.strftime("%Y-%m-%d"),
            "contact before the referral date",
        )
        _exact_duplicates(contacts, collectors["contacts"])
    if "support_offered" in tables:
        _exact_duplicates(tables["support_offered"], collectors["support_offered"])
    if "feedback" in tables:
        _duplicates(tables["feedback"], ["feedback_id"], collectors["feedback"], "feedback_id")
    if "comparison_pool" in tables:
        pool = tables["comparison_pool"]
        _duplicates(pool, ["patient_id"], collectors["comparison_pool"], "patient_id")
        overlap = pool["patient_id"].isin(all_ids)
        collectors["comparison_pool"].add(
            pool.loc[overlap, "source_row"],
            "patient_id",
            pool.loc[overlap, "patient_id"],
            "comparison patient is also a client",
        )
    if "gp_appointments" in tables:
        appointments = tables["gp_appointments"]
        known = all_ids | (
            set(tables["comparison_pool"]["patient_id"].dropna())
            if "comparison_pool" in tables
            else set()
        )
        unknown = appointments["patient_id"].notna() & ~appointments["patient_id"].isin(known)
        collectors["gp_appointments"].add(
            appointments.loc[unknown, "source_row"],
            "patient_id",
            appointments.loc[unknown, "patient_id"],
            "appointment for a patient who is neither a client nor in the comparison pool",
        )
    if "population" in tables:
        _check_population_categories(tables["population"], collectors["population"])
        _duplicates(
            tables["population"],
            ["dimension", "category"],
            collectors["population"],
            "dimension+category",
        )


def _check_population_categories(population: pd.DataFrame, out: _Collector) -> None:
    """A category must be a code of its dimension: free text would be published as is."""
    patterns = contract.population_category_patterns()
    for dimension, pattern in patterns.items():
        rows = population["dimension"] == dimension
        categories = population.loc[rows, "category"].astype("string[pyarrow]")
        bad = categories.notna() & ~categories.str.fullmatch(pattern).fillna(False)
        bad = bad.to_numpy(dtype=bool)
        out.add(
            population.loc[rows, "source_row"].to_numpy()[bad],
            "category",
            categories.to_numpy(dtype=object)[bad],
            f"not a {dimension} category of the data contract",
        )


def _exact_duplicates(frame: pd.DataFrame, out: _Collector) -> None:
    content = [c for c in frame.columns if c != "source_row"]
    dup = frame.duplicated(subset=content, keep="first")
    out.add(frame.loc[dup, "source_row"], "", "(whole row)", "exact duplicate of an earlier row")


def _derive(tables: dict) -> dict:
    """Add derived person columns and drop what must not travel further."""
    for name in ("clients", "comparison_pool"):
        if name not in tables:
            continue
        frame = tables[name].copy()
        index_date = frame["referral_date"] if name == "clients" else frame["index_date"]
        if "date_of_birth" in frame:
            years = _whole_years(frame["date_of_birth"], index_date)
            frame["age"] = frame["age"].fillna(years) if "age" in frame else years
            frame = frame.drop(columns=["date_of_birth"])
        if "age" in frame:
            derived = contract.age_band(frame["age"].astype(float))
            frame["age_band"] = (
                frame["age_band"].fillna(derived) if "age_band" in frame else derived
            )
        if "imd_decile" in frame:
            frame["imd_quintile"] = ((frame["imd_decile"] + 1) // 2).astype("Int64")
        frame["ethnic_group"] = frame["ethnic_category"].map(contract.ETHNIC_GROUPS)
        tables[name] = frame
    return tables


def _whole_years(born: pd.Series, on: pd.Series) -> pd.Series:
    years = on.dt.year - born.dt.year
    before_birthday = (on.dt.month < born.dt.month) | (
        (on.dt.month == born.dt.month) & (on.dt.day < born.dt.day)
    )
    return (years - before_birthday.astype(int)).astype("Int64")


def summarise_problems(exclusions: pd.DataFrame, *, limit: int | None = None) -> str:
    """Plain lines 'file row N, column 'c': value 'v': reason' for the command line."""
    lines = [
        f"{r.table} row {r.row}, column '{r.column}': value {r.value!r}: {r.reason}"
        for r in exclusions.itertuples(index=False)
    ]
    if limit is not None and len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return "\n".join(lines)
