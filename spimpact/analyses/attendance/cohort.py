"""The people compared: clients and comparison patients, and the columns they are matched on.

``analyse_attendance`` builds its cohort here (one row per person with an index date)
and prepares the matching covariates: prior attendance taken from before the compared
months, and missing values handled so that nobody drops out of the match silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CLIENT_COLUMNS = ("age", "sex", "imd_decile", "imd_quintile", "ethnic_group", "practice_code")


def cohort_people(scheme, *, include_pool: bool) -> pd.DataFrame:
    """One row per person: clients (``treated = 1``) and, if asked, the comparison pool.

    Columns ``patient_id``, ``index_date`` (referral date for clients), ``treated``,
    the ``CLIENT_COLUMNS`` present, ``index_month`` (``YYYY-MM``) and every other
    client attribute (e.g. an equity grouping), by ``patient_id``.
    """
    clients = scheme.clients.rename(
        columns={"client_id": "patient_id", "referral_date": "index_date"}
    ).assign(treated=1)
    frames = [clients]
    if include_pool:
        frames.append(scheme.comparison_pool.assign(treated=0))
    people = pd.concat(
        [
            f[["patient_id", "index_date", "treated", *[c for c in CLIENT_COLUMNS if c in f]]]
            for f in frames
        ],
        ignore_index=True,
    )
    people["index_date"] = pd.to_datetime(people["index_date"])
    people["index_month"] = people["index_date"].dt.strftime("%Y-%m")
    # Keep every client attribute (e.g. an equity grouping) available by patient_id.
    extra = [c for c in scheme.clients.columns if c not in people.columns and c != "client_id"]
    people = people.merge(
        scheme.clients[["client_id", *extra]].rename(columns={"client_id": "patient_id"}),
        on="patient_id",
        how="left",
    )
    return people


def attendance_history(
    panel: pd.DataFrame, months: tuple[int, int], *, bins: int, outcome: str
) -> pd.DataFrame:
    """Mean appointments per observed month in ``bins`` equal parts of ``months``.

    The history a design matches on: its shape (the trajectory) as well as its level.
    One row per person of ``panel`` with a month in ``months`` (inclusive), columns
    ``pre_attendance_months_<a>_to_<b>`` (months ``-a`` to ``-b``), ``NaN`` where no
    month of a part was observed.
    """
    first, last = months
    edges = np.linspace(first, last + 1, bins + 1).round().astype(int)
    rows = panel[panel["months_since_index"].between(first, last)]
    out = {}
    for low, high in zip(edges[:-1], edges[1:] - 1, strict=True):
        part = rows[rows["months_since_index"].between(low, high)]
        out[f"pre_attendance_months_{-low}_to_{-high}"] = part.groupby("patient_id")[outcome].mean()
    return pd.DataFrame(out)


def matching_columns(people: pd.DataFrame, names) -> tuple[pd.DataFrame, list[str]]:
    """Expand ``pre_attendance`` and handle missing values so every person can be matched.

    Returns the people with missing values filled and the columns to match on.
    """
    expanded = []
    for name in names:
        if name == "pre_attendance":
            expanded += [c for c in people.columns if c.startswith("pre_attendance_months_")]
        elif name in people.columns:
            expanded.append(name)
        else:
            raise ValueError(
                f"params comparison covariate '{name}' is not a client or comparison-pool "
                "column (nor 'pre_attendance' or 'index_month')"
            )
    frame = people.copy()
    columns = []
    for name in expanded:
        series = frame[name]
        columns.append(name)
        if not series.isna().any():
            continue
        if pd.api.types.is_numeric_dtype(series):
            # Median imputation plus a missingness indicator keeps people with a missing
            # value in the match and lets the indicator itself be balanced.
            frame[f"{name}_missing"] = series.isna().astype(int)
            frame[name] = series.astype(float).fillna(series.astype(float).median())
            columns.append(f"{name}_missing")
        else:
            frame[name] = series.astype("object").where(series.notna(), "missing")
    return frame, columns
