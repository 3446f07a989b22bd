"""The mapping file: how a scheme's own exports become the data contract's tables.

One YAML file per scheme, versioned with its params (``docs/mapping.md`` describes
every key). It is validated as strictly as the params: unknown or misspelt keys, a
key written twice, a contract column mapped twice, a required column left unmapped
or a rule that does not fit its column stop with :class:`MappingError`, naming the
mapping file and the key. Nothing here reads the data; :mod:`spimpact.mapping.apply`
does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from spimpact.contract import N_ITEMS, TABLES
from spimpact.files import FileRefused, check_regular_file, read_bytes_limited
from spimpact.readers import DataValidationError

__all__ = [
    "CodedEvents",
    "ColumnRule",
    "Form",
    "Lookup",
    "MappingError",
    "MappingFile",
    "Questionnaire",
    "TableMapping",
    "check_variants",
    "load_mapping",
    "mapping_sha256",
]

# Derived-column kinds: exactly one of these says where a column's value comes from.
SOURCES = ("column", "constant", "concat", "split", "postcode", "sequence")
SEQUENCED = {"episode": "clients", "timepoint": "measures"}


class MappingError(DataValidationError):
    """A mapping file that cannot be used; each problem names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _inside_folder(value: str) -> str:
    path = Path(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError("give a file inside the data folder (no absolute path, no '..')")
    return value


class Lookup(_Strict):
    """A user-supplied postcode → LSOA lookup (e.g. the ONS Postcode Directory).

    ``file`` is taken from the source folder; ``postcode`` and ``lsoa`` name its columns.
    """

    file: str
    postcode: str = "postcode"
    lsoa: str = "lsoa_code"

    _file_inside = field_validator("file")(_inside_folder)


class ColumnRule(_Strict):
    """Where one contract column's value comes from, and how it is converted.

    Exactly one source: ``column`` (a source column), ``constant`` (one value for every
    row), ``concat`` (source columns joined with ``sep``), ``split`` (a source column cut
    at ``sep``, keeping ``part``: 1 = first, -1 = last), ``postcode`` (a source postcode
    column looked up in ``lookup``; for ``lsoa_code``) or ``sequence: true`` (numbered
    by date within each client: ``episode`` 1, 2, ... by referral date; ``timepoint`` 0,
    1, ... by date within client, episode and measure).

    Conversions: ``date_format`` (a ``strptime`` format such as ``%d/%m/%Y``, or
    ``excel`` for day numbers counted from 1899-12-30; default ISO ``YYYY-MM-DD``, with
    any time of day dropped), ``values`` (local label → contract code, matched ignoring
    case and repeated spaces) and ``unmapped`` (what a label missing from ``values``
    does: ``exclude`` the row, make it ``blank``, or ``keep`` it for the contract check;
    default ``exclude`` with ``values``, ``keep`` without).
    """

    column: str | None = None
    constant: str | int | float | bool | None = None
    concat: list[str] | None = Field(default=None, min_length=2)
    split: str | None = None
    postcode: str | None = None
    sequence: bool = False
    sep: str | None = None
    part: int | None = None
    lookup: Lookup | None = None
    date_format: str | None = None
    values: dict[str, str | int] | None = None
    unmapped: Literal["exclude", "blank", "keep"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        return {"column": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self):
        given = [s for s in SOURCES if getattr(self, s) not in (None, False)]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(SOURCES)} (got {', '.join(given) or 'none'})"
            )
        if self.split is not None and (self.sep is None or self.part is None or self.part == 0):
            raise ValueError("split needs sep and part (1 = first part, -1 = last)")
        if self.postcode is not None and self.lookup is None:
            raise ValueError("postcode needs a lookup file")
        if self.unmapped is not None and self.values is None:
            raise ValueError("unmapped only applies together with values")
        return self

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The source columns this rule reads."""
        if self.column is not None:
            return (self.column,)
        if self.concat is not None:
            return tuple(self.concat)
        return tuple(c for c in (self.split, self.postcode) if c is not None)

    @property
    def unmapped_action(self) -> str:
        """``exclude``, ``blank`` or ``keep``, the default filled in."""
        return self.unmapped or ("exclude" if self.values is not None else "keep")


class Form(_Strict):
    """One questionnaire on a wide source row: its item columns, in the item order.

    ``measure``, ``timepoint`` and ``date`` are given here when they differ between the
    forms of one row (baseline and follow-up side by side); otherwise in ``columns``.
    A ``null`` item keeps an item unasked.
    """

    items: list[str | None] = Field(min_length=1, max_length=N_ITEMS)
    measure: str | None = None
    timepoint: int | None = Field(default=None, ge=0)
    date: ColumnRule | None = None


class Questionnaire(_Strict):
    """How questionnaire items are laid out in a source of ``measures``.

    ``layout: wide``: one row per form, ``forms`` lists each form's item columns.
    ``layout: long``: one row per answered item; ``item`` says which item (a column with
    item numbers, or labels mapped by ``values``) and ``response`` the answer. Rows with
    the same client, measure, date and time point make one form.
    ``responses`` maps answer labels (e.g. "None of the time") to numbers for every item.
    ``variants`` names the measures this source records on a modified scale; each must
    be declared, with its observed range and reason, in the params
    (``measures.variants``), which map it back to the standard coding.
    """

    layout: Literal["wide", "long"]
    forms: list[Form] | None = None
    item: ColumnRule | None = None
    response: ColumnRule | None = None
    responses: dict[str, int] = {}
    variants: list[str] = []

    @model_validator(mode="after")
    def _fits_layout(self):
        if self.layout == "wide" and (not self.forms or self.item or self.response):
            raise ValueError("layout wide needs forms (and no item or response)")
        if self.layout == "long" and (self.forms or not self.item or not self.response):
            raise ValueError("layout long needs item and response (and no forms)")
        return self


class TableMapping(_Strict):
    """One source file (or sheet) that fills a contract table."""

    source: str = Field(min_length=1)
    sheet: str | int | None = None
    header_row: int | None = Field(default=None, ge=1)
    columns: dict[str, ColumnRule] = {}
    questionnaire: Questionnaire | None = None

    _source_inside = field_validator("source")(_inside_folder)

    def label(self) -> str:
        """The source as people name it: ``file`` or ``file [sheet]``."""
        return self.source if self.sheet is None else f"{self.source} [{self.sheet}]"


class CodedEvents(_Strict):
    """A long GP extract of coded events turned into clients (and measures).

    ``columns`` maps ``patient_id``, ``date``, ``code`` and optionally ``value``.
    Code lists (OpenSAFELY format, ``code,term``) are ``builtin:<name>`` or a CSV file
    beside the mapping file. Each accepted referral starts an episode of a client;
    declined and offered referrals are counted; codes in ``measures`` lists (columns
    ``code, term, measure, item``) give questionnaire items.
    """

    source: str = Field(min_length=1)
    sheet: str | int | None = None
    header_row: int | None = Field(default=None, ge=1)
    columns: dict[Literal["patient_id", "date", "code", "value"], ColumnRule]
    referral_accepted: str = "builtin:social_prescribing_referral_accepted"
    referral_declined: str | None = "builtin:social_prescribing_referral_declined"
    referral_offered: str | None = "builtin:social_prescribing_referral_offered"
    referral_source: str = "gp"
    measures: list[str] = ["builtin:wellbeing_scores"]

    _source_inside = field_validator("source")(_inside_folder)

    @model_validator(mode="after")
    def _needs_keys(self):
        missing = [k for k in ("patient_id", "date", "code") if k not in self.columns]
        if missing:
            raise ValueError(f"columns must map {', '.join(missing)}")
        return self

    def label(self) -> str:
        """The source as people name it."""
        return self.source if self.sheet is None else f"{self.source} [{self.sheet}]"


class MappingFile(_Strict):
    """A whole mapping file; ``path`` is where it was read from (set on load)."""

    version: Literal[1] = 1
    description: str | None = None
    tables: dict[str, TableMapping | list[TableMapping]] = {}
    coded_events: CodedEvents | None = None
    path: Path | None = None

    def sources(self, table: str) -> list[TableMapping]:
        """The sources of ``table`` (none when the mapping does not fill it)."""
        value = self.tables.get(table)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    @property
    def name(self) -> str:
        """The mapping file's name, for messages."""
        return self.path.name if self.path else "mapping"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in one mapping."""


def _construct_unique(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key '{key}' appears twice (lines {seen[key]} and "
                f"{key_node.start_mark.line + 1}): a contract column can be mapped from one "
                "source only",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique)


# A mapping file is a few KiB (labels of a few coded columns); aliases are not needed.
MAX_MAPPING_BYTES = 1 << 20
MAX_YAML_ALIASES = 16


def load_mapping(path: str | Path) -> MappingFile:
    """Read and validate a mapping file.

    Raises
    ------
    MappingError
        Every problem found, each naming the file and the key.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "mapping.yaml"
    >>> _ = path.write_text('''
    ... tables:
    ...   clients:
    ...     source: referrals.csv
    ...     columns:
    ...       client_id: Client Ref
    ...       referral_date: {column: Referred, date_format: "%d/%m/%Y"}
    ...       referral_source: {column: Route, values: {GP Surgery: gp}}
    ...       age: Age
    ...       sex: Gender
    ...       ethnic_category: Ethnicity
    ...   measures:
    ...     source: outcomes.csv
    ...     columns: {client_id: Client Ref, measure: {constant: swemwbs}, date: Date,
    ...               timepoint: {sequence: true}}
    ...     questionnaire: {layout: wide, forms: [{items: [Q1, Q2, Q3, Q4, Q5, Q6, Q7]}]}
    ... ''')
    >>> mapping = load_mapping(path)
    >>> mapping.sources("clients")[0].columns["referral_source"].values
    {'GP Surgery': 'gp'}
    """
    path = Path(path)
    try:
        data = read_bytes_limited(
            path, MAX_MAPPING_BYTES, what="mapping file", follow_symlinks=True
        )
        text = data.decode("utf-8")
    except FileRefused as error:
        raise MappingError([str(error)]) from None
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise MappingError([f"{path.name} line {line}: not UTF-8 text"]) from None
    try:
        n_aliases = sum(
            isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)
        )
        if n_aliases > MAX_YAML_ALIASES:
            raise MappingError(
                [f"{path.name}: uses {n_aliases} YAML aliases (at most {MAX_YAML_ALIASES})"]
            )
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506
    except (yaml.YAMLError, RecursionError) as error:
        raise MappingError([f"{path.name}: not valid YAML: {error}"]) from None
    if not isinstance(raw, dict):
        raise MappingError([f"{path.name}: expected a mapping of keys to values"])
    try:
        mapping = MappingFile.model_validate({**raw, "path": path})
    except ValidationError as error:
        raise MappingError(
            [
                f"{path.name}: key '{_location(e['loc'])}': {e['msg']}"
                + (f" (got {e['input']!r})" if e["type"] not in ("missing", "value_error") else "")
                for e in error.errors()
            ]
        ) from None
    problems = _check_against_contract(mapping)
    if problems:
        raise MappingError([f"{path.name}: {p}" for p in problems])
    return mapping


def _location(loc) -> str:
    # pydantic puts the union member's name in the path; people wrote none
    skip = {"TableMapping", "list[TableMapping]", "ColumnRule", "function-before[_shorthand()]"}
    return ".".join(str(p) for p in loc if str(p) not in skip)


def _check_against_contract(mapping: MappingFile) -> list[str]:
    problems = []
    coded = mapping.coded_events is not None
    if coded and not mapping.sources("clients"):
        problems.append(
            "key 'coded_events': the patients' demographics are needed too: map them as "
            "'tables.clients' (client_id = the patient id, sex, ethnic_category, age ...)"
        )
    for table, value in mapping.tables.items():
        if table not in TABLES:
            problems.append(
                f"key 'tables.{table}': no such contract table (expected one of "
                f"{', '.join(TABLES)})"
            )
            continue
        sources = value if isinstance(value, list) else [value]
        for k, source in enumerate(sources):
            key = f"tables.{table}" + (f"[{k}]" if isinstance(value, list) else "")
            problems += _check_table(table, source, key, coded_clients=coded and table == "clients")
    return problems


def _check_table(table: str, source: TableMapping, key: str, *, coded_clients: bool) -> list[str]:
    spec = TABLES[table]
    problems = []
    mapped = set(source.columns)
    for name, rule in source.columns.items():
        where = f"key '{key}.columns.{name}'"
        if name not in spec.names:
            problems.append(f"{where}: '{name}' is not a column of the contract table '{table}'")
            continue
        column = spec.column(name)
        if rule.date_format is not None and column.kind != "date":
            problems.append(f"{where}: date_format applies to date columns only")
        if rule.values is not None and column.kind not in ("code", "bool", "int", "text"):
            problems.append(f"{where}: values applies to coded columns only")
        if rule.sequence and SEQUENCED.get(name) != table:
            problems.append(
                f"{where}: sequence numbers 'episode' in clients and 'timepoint' in measures only"
            )
        if rule.postcode is not None and name != "lsoa_code":
            problems.append(f"{where}: postcode lookup gives lsoa_code only")
    if source.questionnaire is not None:
        if table != "measures":
            problems.append(f"key '{key}.questionnaire': only measures have questionnaire items")
        else:
            problems += _check_questionnaire(source, key)
            mapped |= {f"item_{k}" for k in range(1, N_ITEMS + 1)}
            for form in source.questionnaire.forms or ():
                mapped |= {
                    c for c in ("measure", "timepoint", "date") if getattr(form, c) is not None
                }
    if coded_clients:
        mapped |= {"client_id", "referral_date", "referral_source", "episode"}
    for column in spec.columns:
        if column.required and column.name not in mapped:
            problems.append(
                f"key '{key}.columns': required contract column '{column.name}' is not mapped "
                f"(expected {column.expectation()})"
            )
    for group in spec.one_of:
        if not mapped.intersection(group):
            problems.append(
                f"key '{key}.columns': map one of the contract columns {', '.join(group)}"
            )
    return problems


def _check_questionnaire(source: TableMapping, key: str) -> list[str]:
    problems = []
    questionnaire = source.questionnaire
    items_in_columns = sorted(c for c in source.columns if c.startswith("item_"))
    if items_in_columns:
        problems.append(
            f"key '{key}.columns': {', '.join(items_in_columns)} mapped twice "
            "(in columns and by the questionnaire)"
        )
    for k, form in enumerate(questionnaire.forms or ()):
        for name in ("measure", "timepoint", "date"):
            if getattr(form, name) is not None and name in source.columns:
                problems.append(
                    f"key '{key}.questionnaire.forms[{k}].{name}': '{name}' is mapped twice "
                    f"(also in '{key}.columns')"
                )
        for name in ("measure", "timepoint", "date"):
            if getattr(form, name) is None and name not in source.columns:
                problems.append(
                    f"key '{key}.questionnaire.forms[{k}]': '{name}' is mapped neither here "
                    "nor in columns"
                )
    return problems


def check_variants(mapping: MappingFile, declared) -> None:
    """Every scale variant a mapping names must be declared in the params.

    Raises
    ------
    MappingError
        Naming the mapping key and the measure.
    """
    problems = []
    for k, source in enumerate(mapping.sources("measures")):
        questionnaire = source.questionnaire
        for measure in questionnaire.variants if questionnaire else ():
            if measure not in (declared or {}):
                key = "tables.measures" + (f"[{k}]" if len(mapping.sources("measures")) > 1 else "")
                problems.append(
                    f"{mapping.name}: key '{key}.questionnaire.variants': the params declare no "
                    f"scale variant for '{measure}' (add it under measures.variants with its "
                    "observed range and reason)"
                )
    if problems:
        raise MappingError(problems)


def source_files(mapping: MappingFile) -> list[str]:
    """The data-folder files a mapping reads (sources and lookups), as written in it, sorted."""
    files = set()
    for table in mapping.tables:
        for source in mapping.sources(table):
            files.add(source.source)
            for rule in source.columns.values():
                if rule.lookup is not None:
                    files.add(rule.lookup.file)
    if mapping.coded_events is not None:
        files.add(mapping.coded_events.source)
    return sorted(files)


def mapping_sha256(mapping: MappingFile | str | Path) -> str:
    """SHA-256 of a mapping file's bytes and of the user code lists it names (for provenance)."""
    from spimpact.mapping.codelists import user_codelist_paths

    mapping = mapping if isinstance(mapping, MappingFile) else load_mapping(mapping)
    path = Path(mapping.path)
    digest = hashlib.sha256(
        read_bytes_limited(path, MAX_MAPPING_BYTES, what="mapping file", follow_symlinks=True)
    )
    for path in user_codelist_paths(mapping):
        digest.update(path.name.encode())
        try:
            check_regular_file(path, what="code list")
        except FileRefused:
            continue  # a missing code list is reported when the mapping is applied
        digest.update(path.read_bytes())
    return digest.hexdigest()
