"""Load a scheme's tables, check them against the data contract, reconcile every row.

Every row read is either used or listed in ``SchemeData.exclusions`` with its reason;
``reconciliation`` gives ``n_read == n_used + n_excluded`` per table. A scheme's own
exports are read through its mapping file (:mod:`spimpact.mapping`), which also
accounts for every label it mapped (``SchemeData.mapping_report``). Problems that
make a table unreadable raise ``DataValidationError`` naming file, row, column, value
and what was expected. NHS numbers are checked (Modulus 11) and replaced by keyed
pseudonyms here; raw numbers never leave this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact import contract
from spimpact.cells import (
    WITHHELD,
    nullable_int,
    parse_numbers,
)
from spimpact.contract import STREAM_MIN_ROWS, TABLES, Column, TableSpec
from spimpact.engine import check_engine
from spimpact.identifiers import is_valid_nhs_number, normalise_nhs_number, pseudonymise
from spimpact.linkage import (
    EXCLUSION_COLUMNS,
    Collector,
    attribute_episodes,
    check_relations,
    duplicates,
    select_episodes,
)
from spimpact.mapping import MAPPING_REPORT_COLUMNS, MappingFile, apply_mapping, load_mapping
from spimpact.mapping.model import check_variants
from spimpact.params import check_key_allowed
from spimpact.readers import DataValidationError, find_table_file, read_table
from spimpact.scoring.validate import EXCLUSION_COLUMNS as ITEM_EXCLUSION_COLUMNS
from spimpact.scoring.validate import ItemCheck, validate_items
from spimpact.streaming import (
    StreamedTable,
    StreamFallback,
    load_streamed,
    plan_stream,
    table_streamable,
)

__all__ = [
    "DataValidationError",
    "EXCLUSION_COLUMNS",
    "STREAM_MIN_ROWS",
    "SchemeData",
    "StreamedTable",
    "find_table_file",
    "is_valid_nhs_number",
    "load_scheme",
    "load_scheme_from_params",
    "read_table",
]

STREAMING_COLUMNS = ("table", "streamed", "engine", "note")
_TRUE = set(contract.BOOL_TRUE)
_FALSE = set(contract.BOOL_FALSE)


@dataclass(frozen=True)
class SchemeData:
    """A scheme's validated tables with the account of every row read.

    ``exclusions`` has :data:`EXCLUSION_COLUMNS`: ``table, row, column, value, reason``
    and where to find the row (``source``: file, or ``file [sheet]``; ``line``: its
    line or spreadsheet row). ``mapping_report`` (empty without a mapping) counts every
    label mapped or not, in ``spimpact.mapping.MAPPING_REPORT_COLUMNS``; its
    ``source_value`` may hold local labels and must pass disclosure control (small
    counts, labels not ``declared`` in the mapping file) before it is published.
    ``episodes`` lists every usable referral episode (``client_id, episode,
    referral_date, ...``, ``analysed``); the analysed tables hold the episode chosen
    by ``episode_rule`` (``first``: each client's first episode that passes the checks,
    or ``last``). ``mapping_file`` is the mapping the tables were read through.
    ``streaming`` (:data:`STREAMING_COLUMNS`): each large table validated in SQL (then a
    :class:`spimpact.streaming.StreamedTable`, its rows on disk) or read in pandas, why.
    """

    data_dir: Path
    clients: pd.DataFrame
    measures: pd.DataFrame
    reconciliation: pd.DataFrame
    exclusions: pd.DataFrame
    non_standard: pd.DataFrame
    contacts: pd.DataFrame | None = None
    support_offered: pd.DataFrame | None = None
    gp_appointments: pd.DataFrame | StreamedTable | None = None
    comparison_pool: pd.DataFrame | None = None
    feedback: pd.DataFrame | None = None
    population: pd.DataFrame | None = None
    source_files: Mapping[str, Path] = field(default_factory=dict)
    ignored_columns: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["table", "column"])
    )
    mapping_report: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(MAPPING_REPORT_COLUMNS))
    )
    episodes: pd.DataFrame | None = None
    episode_rule: str = "first"
    mapping_file: Path | None = None
    streaming: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(STREAMING_COLUMNS))
    )

    def table(self, name: str) -> pd.DataFrame | StreamedTable | None:
        """The validated table ``name`` (None when the scheme does not have it)."""
        return getattr(self, name)

    def raw_table(self, name: str) -> pd.DataFrame | None:
        """Table ``name`` as read, before any check: contract column names, text cells.

        Read again from the scheme's files (through its mapping, if it has one), for
        the privacy scan, which looks for identifiers as they were written in the
        inputs (NHS numbers, dates of birth). None when the scheme has no such table.
        """
        if self.mapping_file is not None:
            frame = _mapped_raw(str(self.mapping_file), str(self.data_dir)).get(name)
            return None if frame is None else frame.copy()
        path = self.source_files.get(name) if self.source_files else None
        return read_table(Path(path)) if path is not None else None

    @property
    def measure_items(self) -> ItemCheck:
        """The measures as their items were checked on load, ready to score as they are."""
        no_exclusions = pd.DataFrame(columns=list(ITEM_EXCLUSION_COLUMNS))
        return ItemCheck(self.measures, no_exclusions, self.non_standard)


def _parse_column(
    column: Column, values: pd.Series, rows: np.ndarray, out: Collector, already=frozenset()
):
    """Parse one text column; invalid cells are recorded and returned as missing.

    ``already``: rows a mapping rule excluded for this column (not reported again).
    """
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
        normalised = contract.normalise_codes(column.name, text)
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
    if already:
        missing = missing & ~pd.Series(rows).isin(already).to_numpy(dtype=bool)
    out.add(rows[missing], column.name, "", "required value missing")
    if isinstance(parsed.dtype, pd.StringDtype):
        # text and codes leave as plain Python strings with NaN for missing, as before;
        # through a categorical, repeated values share one string object (8 bytes a row)
        parsed = parsed.astype("category").astype(object).where(parsed.notna(), np.nan)
    return parsed


def _pseudonymise_key_column(
    spec: TableSpec, frame: pd.DataFrame, key: str | None, out: Collector, path: Path
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


def _load_one(
    spec: TableSpec, frame: pd.DataFrame, path: Path, key: str | None, out: Collector, already
):
    """Parse one table's text cells; ``already`` maps columns to rows a mapping excluded."""
    problems = spec.header_problems(frame.columns, path.name)
    if problems:
        raise DataValidationError(problems)
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
            parsed[column.name] = _parse_column(
                column, frame[column.name], rows, out, already.get(column.name, frozenset())
            ).to_numpy()
    result = pd.DataFrame(parsed)
    if "nhs_number" in frame:
        result["nhs_number"] = frame["nhs_number"].to_numpy()
        result = _pseudonymise_key_column(spec, result, key, out, path)
    return result, ignored


def _read_files(data_dir: Path, stream_rows: int | None):
    """The contract tables as written by hand: ``<table>.csv`` or ``.parquet``.

    Large streamable tables are not read but planned (``streams``; ``notes``: why not).
    """
    frames, files, problems, streams, notes = {}, {}, [], {}, []
    for name, spec in TABLES.items():
        try:
            found = find_table_file(data_dir, name)
            if found is None:
                if spec.required:
                    problems.append(
                        f"{data_dir.name}: required table '{name}' missing "
                        f"(expected {name}.csv or {name}.parquet)"
                    )
                continue
            files[name] = found
            if stream_rows is not None and table_streamable(spec):
                try:
                    source = plan_stream(found, stream_rows)
                except StreamFallback as reason:
                    notes.append((name, False, "pandas", f"{found.name}: {reason}"))
                    source = None
                if source is not None:
                    streams[name] = source
                    continue
            frames[name] = read_table(found)
        except DataValidationError as error:
            problems.extend(error.problems)
    if problems:
        raise DataValidationError(problems)
    collectors = {name: Collector(name, files[name].name) for name in [*frames, *streams]}
    return frames, files, collectors, streams, notes


def load_scheme(
    path: str | Path,
    *,
    mapping: str | Path | MappingFile | None = None,
    episodes: str = "first",
    variants: Mapping | None = None,
    pseudonym_key: str | None = None,
    pseudonym_key_env: str = "SPIMPACT_PSEUDONYM_KEY",
    imd_edition: int = 2019,
    swemwbs_max_missing_items: int = 0,
    engine: str = "duckdb",
    stream_rows: int | None = STREAM_MIN_ROWS,
) -> SchemeData:
    """Load and validate the scheme folder ``path``.

    Parameters
    ----------
    path
        Folder holding the contract tables (``docs/data-contract.md``), or the scheme's
        own exports when ``mapping`` is given.
    mapping
        The scheme's mapping file (``docs/mapping.md``), or one loaded with
        ``spimpact.mapping.load_mapping``: the tables are made from the exports it
        names instead of read from ``<table>.csv``.
    episodes
        Which referral episode of each client the tables hold: ``first`` (default:
        each client's first episode that passes the checks) or ``last``. Every
        episode is listed in ``SchemeData.episodes``.
    variants
        Measure name to ``spimpact.params.ScaleVariant``: explicit mappings of modified
        instruments back to standard coding (otherwise such rows are excluded).
    pseudonym_key, pseudonym_key_env
        Key for NHS-number pseudonyms, or the environment variable holding it.
    imd_edition
        IMD edition assumed when ``clients`` has no ``imd_edition`` column.
    swemwbs_max_missing_items
        0 (standard: every item needed) or 1 (opt-in, flagged as non-standard).
    engine
        Where the SQL checks of streamed tables run: ``duckdb`` (default) or ``spark``
        (the active Spark session, or a local one; :mod:`spimpact.engine`). Both give
        the same reconciliation and exclusions.
    stream_rows
        GP appointment files (:data:`spimpact.streaming.STREAMABLE_TABLES`) of at least
        this many rows (0: always; None: never) are checked in SQL straight from the
        file, never read into pandas; the table is then a :class:`StreamedTable`
        (:mod:`spimpact.streaming`). A mapping's exports are always read in pandas.

    Returns
    -------
    SchemeData

    Raises
    ------
    DataValidationError
        When a table cannot be read as the contract describes; the message lists
        every such problem with file, row, column, value and what was expected.
        ``spimpact.mapping.MappingError`` (a subclass) when the mapping file cannot be
        used: each problem names the mapping file, the key and the source column.

    Examples
    --------
    >>> import tempfile
    >>> from spimpact.paths import PARAMS_DIR
    >>> from spimpact.synthetic import write_example_data, EXAMPLE_SCHEMES
    >>> folder = write_example_data(tempfile.mkdtemp(), schemes=EXAMPLE_SCHEMES[-1:])[0]
    >>> scheme = load_scheme(folder, mapping=PARAMS_DIR / "mappings" / "valley.yaml")
    >>> bool((scheme.reconciliation.n_read == scheme.reconciliation.n_used
    ...       + scheme.reconciliation.n_excluded).all())
    True
    """
    data_dir = Path(path)
    if not data_dir.is_dir():
        raise DataValidationError([f"{data_dir.name}: no such scheme folder"])
    check_engine(engine)
    key = pseudonym_key or os.environ.get(pseudonym_key_env)
    streams, notes = {}, []
    if mapping is not None:
        mapping = mapping if isinstance(mapping, MappingFile) else load_mapping(mapping)
        check_variants(mapping, variants)
        frames, files, collectors, already, report, ignored = _read_mapped(mapping, data_dir)
    else:
        frames, files, collectors, streams, notes = _read_files(data_dir, stream_rows)
        already, report, ignored = {}, None, []
    tables, problems = {}, []
    for name, frame in frames.items():
        spec = TABLES[name]
        try:
            tables[name], dropped = _load_one(
                spec, frame, files[name], key, collectors[name], already.get(name, {})
            )
        except DataValidationError as error:
            problems.extend(error.problems)
            continue
        ignored += [(name, c) for c in dropped]
        if spec.required and tables[name].empty:
            problems.append(
                f"{files[name].name}: has a header but no data rows (expected at least one row)"
            )
    streamed = {}
    for name, source in streams.items():
        try:
            try:
                streamed[name], dropped = load_streamed(
                    TABLES[name], source, tables, key, engine, collectors[name]
                )
                notes.append((name, True, engine, f"{files[name].name}: checked in SQL"))
            except StreamFallback as reason:  # read in pandas after all
                notes.append((name, False, "pandas", f"{files[name].name}: {reason}"))
                frame = read_table(files[name])
                tables[name], dropped = _load_one(
                    TABLES[name], frame, files[name], key, collectors[name], {}
                )
        except DataValidationError as error:
            problems.extend(error.problems)
            continue
        ignored += [(name, c) for c in dropped]
    missing = [n for n, spec in TABLES.items() if spec.required and n not in frames]
    problems += [
        f"{data_dir.name}: the mapping makes no '{n}' table (it is required)" for n in missing
    ]
    if problems:
        raise DataValidationError(problems)
    n_read = {name: len(frame) for name, frame in tables.items()}
    n_read.update({name: result.n_read for name, result in streamed.items()})
    clients = _check_clients(tables["clients"], collectors["clients"], imd_edition)
    item_check = _check_measure_items(
        tables["measures"], collectors["measures"], variants, {"swemwbs": swemwbs_max_missing_items}
    )
    tables["measures"] = item_check.measures
    tables["clients"] = clients
    attribute_episodes(tables, collectors)
    check_relations(tables, collectors)
    episode_table = select_episodes(tables, collectors, episodes)
    used = {name: _drop_excluded(frame, collectors[name]) for name, frame in tables.items()}
    used = contract.derive_person_columns(used)
    used.update({name: result.table for name, result in streamed.items()})
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
    extra = {} if report is None else {"mapping_report": report, "mapping_file": mapping.path}
    return SchemeData(
        data_dir=data_dir,
        reconciliation=reconciliation,
        exclusions=exclusions,
        non_standard=item_check.non_standard,
        source_files=files,
        ignored_columns=pd.DataFrame(ignored, columns=["table", "column"]),
        episodes=episode_table,
        episode_rule=episodes,
        streaming=pd.DataFrame(notes, columns=list(STREAMING_COLUMNS)),
        **extra,
        **used,
    )


@lru_cache(maxsize=2)
def _mapped_raw(mapping_file: str, data_dir: str) -> dict[str, pd.DataFrame]:
    return apply_mapping(load_mapping(mapping_file), data_dir).tables


def _read_mapped(mapping: MappingFile, data_dir: Path):
    """The contract tables a mapping makes from the scheme's exports."""
    mapped = apply_mapping(mapping, data_dir)
    collectors, already = {}, {}
    for name in mapped.tables:
        out = Collector(name, mapped.files[name].name, mapped.origins[name])
        excluded = mapped.exclusions[mapped.exclusions["table"] == name]
        out.add(excluded["source_row"], excluded["column"], excluded["value"], excluded["reason"])
        collectors[name] = out
        already[name] = {
            column: frozenset(group["source_row"]) for column, group in excluded.groupby("column")
        }
    ignored = list(mapped.ignored[["table", "column"]].itertuples(index=False, name=None))
    return mapped.tables, mapped.files, collectors, already, mapped.report, ignored


def load_scheme_from_params(params, **options) -> SchemeData:
    """Load the scheme a ``spimpact.params.SchemeParams`` describes, with its options.

    The data folder, mapping file, episode rule, declared scale variants,
    pseudonymisation key (params or the environment variable it names), IMD edition,
    SWEMWBS missing-item rule and engine come from the params; ``options`` go to
    :func:`load_scheme`. A key kept in params is
    refused unless the folder holds synthetic example data
    (``spimpact.params.check_key_allowed``).
    """
    check_key_allowed(params)
    key = params.pseudonym_key.get_secret_value() if params.pseudonym_key else None
    if params.engine == "spark":
        from spimpact.engine import spark_session

        spark_session(params.spark.master, params.spark.config)  # the session the SQL uses
    return load_scheme(
        params.data_dir,
        mapping=params.mapping,
        episodes=params.episodes,
        variants=params.measures.variants,
        pseudonym_key=key,
        pseudonym_key_env=params.pseudonym_key_env,
        imd_edition=params.imd_edition,
        swemwbs_max_missing_items=params.measures.swemwbs_max_missing_items,
        engine=params.engine,
        **options,
    )


def _drop_excluded(frame: pd.DataFrame, out: Collector) -> pd.DataFrame:
    excluded = out.excluded_rows()
    return frame[~frame["source_row"].isin(excluded)].reset_index(drop=True)


def _check_clients(clients: pd.DataFrame, out: Collector, imd_edition: int) -> pd.DataFrame:
    clients = clients.copy()
    episodes = "episode" in clients and clients["episode"].notna().any()
    key = ["client_id", "episode"] if episodes else ["client_id"]
    duplicates(clients, key, out, "+".join(key))
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


def _check_measure_items(measures: pd.DataFrame, out: Collector, variants, max_missing_items):
    items = validate_items(
        measures, variants=dict(variants or {}), max_missing_items=max_missing_items
    )
    excluded = items.exclusions
    out.add(excluded["row"], excluded["column"], excluded["value"].astype(str), excluded["reason"])
    return items


def summarise_problems(exclusions: pd.DataFrame, *, limit: int | None = None) -> str:
    """Plain lines 'file row N, column 'c': value 'v': reason' for the command line.

    The file and row are the row's ``source`` and ``line`` when the exclusions have them
    (the table and its ``row`` otherwise).
    """
    located = "source" in exclusions and "line" in exclusions
    lines = [
        f"{r.source if located else r.table} row {r.line if located else r.row}, "
        f"column '{r.column}': value {r.value!r}: {r.reason}"
        for r in exclusions.itertuples(index=False)
    ]
    if limit is not None and len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return "\n".join(lines)


def summarise_mapping(report: pd.DataFrame) -> str:
    """Plain lines saying how many rows each label not mapped left out or blank.

    >>> report = pd.DataFrame({"table": ["clients"], "column": ["referral_source"],
    ...     "source": ["referrals.csv"], "source_column": ["Route"], "source_value": ["Walk in"],
    ...     "target_value": [None], "n_rows": [9], "action": ["excluded"], "declared": [False]})
    >>> print(summarise_mapping(report))
    clients.referral_source from referrals.csv 'Route': 'Walk in' (9 rows) not mapped: excluded
    """
    lines = []
    for r in report[report["action"].isin(["excluded", "blank"])].itertuples(index=False):
        what = f"'{r.source_value}'" if r.source_value is not None else "values"
        how = "excluded" if r.action == "excluded" else "left blank"
        lines.append(
            f"{r.table}.{r.column} from {r.source} '{r.source_column}': {what} "
            f"({r.n_rows} rows) not mapped: {how}"
        )
    return "\n".join(lines)
