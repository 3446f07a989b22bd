"""Code lists in the OpenSAFELY codelist CSV format (``code,term``), built in or the user's.

``builtin:<name>`` names a list shipped in ``spimpact/mapping/codelists/`` (its
README says which codes are confirmed); any other reference is a CSV file taken from
the folder of the mapping file, so a scheme's edited lists are versioned with it.
"""

from __future__ import annotations

from pathlib import Path

from spimpact.contract import MEASURES, N_ITEMS
from spimpact.mapping.model import MappingError, MappingFile
from spimpact.readers import DataValidationError, read_table

__all__ = ["BUILTIN_DIR", "builtin_codelists", "read_codelist", "user_codelist_paths"]

BUILTIN_DIR = Path(__file__).resolve().parent / "codelists"
BUILTIN = "builtin:"


def builtin_codelists() -> tuple[str, ...]:
    """Names of the built-in code lists (``builtin:<name>``)."""
    return tuple(sorted(p.stem for p in BUILTIN_DIR.glob("*.csv")))


def _path(reference: str, mapping: MappingFile) -> Path:
    if reference.startswith(BUILTIN):
        return BUILTIN_DIR / f"{reference[len(BUILTIN) :]}.csv"
    path = Path(reference)
    if not path.is_absolute() and mapping.path is not None:
        path = Path(mapping.path).parent / path
    return path


def user_codelist_paths(mapping: MappingFile) -> list[Path]:
    """The user's code list files a mapping names (not the built-in ones), sorted."""
    coded = mapping.coded_events
    if coded is None:
        return []
    references = [
        coded.referral_accepted,
        coded.referral_declined,
        coded.referral_offered,
        *coded.measures,
    ]
    return sorted(
        {_path(r, mapping) for r in references if r is not None and not r.startswith(BUILTIN)}
    )


def read_codelist(reference: str, mapping: MappingFile, *, key: str, items: bool = False):
    """Read one code list as text columns ``code, term`` (and ``measure, item``).

    Parameters
    ----------
    reference
        ``builtin:<name>`` or a CSV path (relative to the mapping file).
    mapping
        The mapping that names the list (for its folder and its name in messages).
    key
        The mapping key that names the list, for messages.
    items
        The list gives questionnaire items: ``measure`` (a contract measure) and
        ``item`` (1 … 14, or ``total`` for a total score) columns are required.

    Examples
    --------
    >>> from spimpact.mapping.model import MappingFile
    >>> codes = read_codelist(
    ...     "builtin:social_prescribing_referral_accepted", MappingFile(), key="example"
    ... )
    >>> codes[["code", "status"]].values.tolist()
    [['871731000000106', 'confirmed']]
    """
    path = _path(reference, mapping)
    where = f"{mapping.name}: key '{key}'"
    if reference.startswith(BUILTIN) and not path.is_file():
        raise MappingError(
            [
                f"{where}: no built-in code list '{reference}' "
                f"(built in: {', '.join(builtin_codelists())})"
            ]
        )
    try:
        frame = read_table(path)
    except DataValidationError as error:
        raise MappingError([f"{where}: code list {p}" for p in error.problems]) from None
    needed = ["code", "term"] + (["measure", "item"] if items else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise MappingError(
            [
                f"{where}: code list {path.name} has no column(s) {', '.join(missing)} "
                f"(expected the OpenSAFELY format {','.join(needed)})"
            ]
        )
    frame = frame.assign(code=frame["code"].str.strip())
    problems = []
    if items:
        bad_measure = ~frame["measure"].str.strip().str.lower().isin(MEASURES)
        allowed_items = {str(k) for k in range(1, N_ITEMS + 1)} | {"total"}
        bad_item = ~frame["item"].str.strip().str.lower().isin(allowed_items)
        for row in frame.loc[bad_measure | bad_item, "source_row"]:
            problems.append(
                f"{where}: code list {path.name} row {row}: expected measure one of "
                f"{', '.join(MEASURES)} and item 1 to {N_ITEMS} or 'total'"
            )
        frame = frame.assign(
            measure=frame["measure"].str.strip().str.lower(),
            item=frame["item"].str.strip().str.lower(),
        )
    duplicated = frame.loc[frame["code"].duplicated(), "source_row"]
    problems += [f"{where}: code list {path.name} row {r}: code listed twice" for r in duplicated]
    if problems:
        raise MappingError(problems)
    return frame.reset_index(drop=True)
