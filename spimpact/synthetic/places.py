"""Postcodes and practice names: how a scheme writes where its clients live and register.

Schemes rarely know a client's LSOA; they keep the home postcode, and the analyst
derives the LSOA from a postcode lookup (the ONS National Statistics Postcode Lookup
has one row per postcode with its LSOA). The example postcodes are synthetic: every
one starts with ``Q``, a letter no UK postcode area begins with, so none is real.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Letters of the inward code's unit (the last two characters) in real postcodes.
_UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
POSTCODE_COLUMNS = ("pcds", "lsoa11")


def postcode_lookup(lsoa_codes, area: str, rng, *, per_lsoa: tuple[int, int] = (3, 8)):
    r"""A postcode lookup for ``lsoa_codes``: several postcodes per LSOA.

    Parameters
    ----------
    lsoa_codes
        The LSOAs of the scheme's area, in order.
    area
        Postcode area after the leading ``Q`` (one letter), e.g. ``"V"`` for ``QV…``.
    rng
        ``numpy.random.Generator``.
    per_lsoa
        Fewest and most postcodes per LSOA.

    Returns
    -------
    pandas.DataFrame
        ``pcds`` (postcode, one space before the inward code) and ``lsoa11``, one row
        per postcode, sorted by postcode; every postcode distinct.

    Examples
    --------
    >>> lookup = postcode_lookup(["E01090001", "E01090002"], "V", np.random.default_rng(1))
    >>> bool(lookup["pcds"].str.fullmatch(r"QV\d{1,2} \d[A-Z]{2}").all())
    True
    >>> sorted(lookup["lsoa11"].unique())
    ['E01090001', 'E01090002']
    """
    lsoa_codes = list(lsoa_codes)
    counts = rng.integers(per_lsoa[0], per_lsoa[1] + 1, size=len(lsoa_codes))
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for k, (lsoa, count) in enumerate(zip(lsoa_codes, counts, strict=True)):
        district = 1 + k // 12  # neighbouring LSOAs share a postcode district
        made = 0
        while made < count:
            sector = int(rng.integers(0, 10))
            unit = "".join(rng.choice(_UNIT_LETTERS, size=2))
            postcode = f"Q{area}{district} {sector}{unit}"
            if postcode not in seen:
                seen.add(postcode)
                rows.append((postcode, lsoa))
                made += 1
    lookup = pd.DataFrame(rows, columns=list(POSTCODE_COLUMNS))
    return lookup.sort_values("pcds", kind="stable").reset_index(drop=True)


def postcodes_for(lsoa: pd.Series, lookup: pd.DataFrame, rng, *, untidy: float = 0.0):
    """A home postcode in each person's LSOA (blank where the LSOA is not recorded).

    ``untidy`` is the share written as people type them: lower case or without the
    space. Every postcode maps back to its LSOA through ``lookup`` once tidied.
    """
    choices = lookup.groupby("lsoa11")["pcds"].agg(list)
    values = lsoa.astype(object).where(lsoa.notna(), None).to_numpy()
    out = []
    for code in values:
        if code is None:
            out.append("")
            continue
        options = choices[code]
        out.append(options[int(rng.integers(0, len(options)))])
    out = pd.Series(out, index=lsoa.index, dtype=object)
    roll = rng.uniform(size=len(out))
    recorded = out != ""
    lower = recorded & (roll < untidy / 2)
    squashed = recorded & (roll >= untidy / 2) & (roll < untidy)
    out[lower] = out[lower].str.lower()
    out[squashed] = out[squashed].str.replace(" ", "", regex=False)
    return out


PRACTICE_NAMES = (
    "Valley Medical Centre",
    "Bridge Street Surgery",
    "Millbrook Health Centre",
    "The Old Forge Practice",
    "Station Road Surgery",
    "Hilltop Family Practice",
    "Elm Tree Surgery",
    "Castle View Medical Practice",
    "Riverside Health Partnership",
    "Orchard Lane Surgery",
    "Kingsway Medical Group",
    "St Anne's Surgery",
)


def practice_names(codes, *, first: int = 0) -> dict[str, str]:
    """A fictional practice name for each ODS code, in sorted code order.

    Names are taken from ``PRACTICE_NAMES`` starting at position ``first`` (so two
    example schemes need not share names).
    """
    codes = sorted(pd.Series(list(codes), dtype=object).dropna().unique())
    names = PRACTICE_NAMES[first:] + PRACTICE_NAMES[:first]
    if len(codes) > len(names):
        raise ValueError(f"{len(codes)} practices, only {len(names)} names")
    return dict(zip(codes, names, strict=False))
