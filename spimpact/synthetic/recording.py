"""How schemes really record: the gaps of a real extract, applied to the contract tables.

Research with social prescribing schemes found ethnicity often not asked or not
stated, addresses kept as postcodes (or not at all), closure reasons left blank and
follow-up questionnaires collected for a minority of clients. A
:class:`RecordingProfile` says how much of each; :func:`record` applies it to a
scheme's clean contract tables and returns the tables as the scheme recorded them
(still contract tables: the export modules then write them in the scheme's own
format, losslessly).

Every gap is drawn completely at random, independently of the outcomes and of the
variables the outcomes depend on. So the estimands of ``truth.json`` (the expected
change of each score, the effect on GP attendance) are those of the recorded data
too: a follow-up lost at random widens an interval but does not move its centre.
What was removed is written to ``truth.json`` under ``recording``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class RecordingProfile:
    """Shares of records with each gap (0 = recorded in full).

    Attributes
    ----------
    ethnicity_not_stated, ethnicity_not_known
        Clients recorded as "not stated" (``Z``: asked, declined) and "not known"
        (``99``: never asked).
    area_not_recorded
        Clients without a home postcode, hence without LSOA and IMD decile.
    practice_not_recorded
        Clients without their GP practice.
    consent_contact_not_recorded
        Clients whose consent to follow-up contact was not recorded.
    discharge_reason_not_recorded
        Closed episodes without a closure reason.
    follow_up_kept
        Share of follow-up questionnaire forms (every measure of one client at one
        follow-up time point together) that were entered at all.
    monotone_follow_up
        Keep a follow-up of a measure only when the one before it was kept: a coded GP
        extract has no time-point labels, so its forms are numbered in date order and a
        gap would shift the later ones (see ``docs/mapping.md``).
    """

    ethnicity_not_stated: float = 0.0
    ethnicity_not_known: float = 0.0
    area_not_recorded: float = 0.0
    practice_not_recorded: float = 0.0
    consent_contact_not_recorded: float = 0.0
    discharge_reason_not_recorded: float = 0.0
    follow_up_kept: float = 1.0
    monotone_follow_up: bool = False

    def __post_init__(self):
        shares = {k: v for k, v in asdict(self).items() if not isinstance(v, bool)}
        bad = {k: v for k, v in shares.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"recording shares must be within 0-1: {bad}")
        if self.ethnicity_not_stated + self.ethnicity_not_known > 1:
            raise ValueError("ethnicity_not_stated + ethnicity_not_known exceed 1")


def record(tables: dict, profile: RecordingProfile, rng) -> tuple[dict, dict]:
    """The tables as a scheme with ``profile`` recorded them, and an account of the gaps.

    Parameters
    ----------
    tables
        Contract tables by name (``clients`` and ``measures`` at least), as
        :func:`spimpact.synthetic.simulate_scheme` returns them; not modified.
    profile
        How much of each item goes unrecorded.
    rng
        ``numpy.random.Generator``.

    Returns
    -------
    tables, account
        New contract tables, and ``{item: number of records changed}`` for
        ``truth.json``.

    Examples
    --------
    >>> import numpy as np
    >>> from spimpact.synthetic import EXAMPLE_SCHEMES, simulate_scheme
    >>> tables, _ = simulate_scheme(EXAMPLE_SCHEMES[-1], np.random.default_rng(1))
    >>> recorded, account = record(
    ...     tables, RecordingProfile(ethnicity_not_stated=0.5), np.random.default_rng(2)
    ... )
    >>> 50 < account["ethnicity_not_stated"] < 100
    True
    >>> int((recorded["clients"]["ethnic_category"] == "Z").sum()) >= account[
    ...     "ethnicity_not_stated"]
    True
    """
    out = dict(tables)
    clients = tables["clients"].copy()
    n = len(clients)
    account: dict[str, int] = {}

    roll = rng.uniform(size=n)
    not_stated = roll < profile.ethnicity_not_stated
    not_known = ~not_stated & (roll < profile.ethnicity_not_stated + profile.ethnicity_not_known)
    clients.loc[not_stated, "ethnic_category"] = "Z"
    clients.loc[not_known, "ethnic_category"] = "99"
    account["ethnicity_not_stated"] = int(not_stated.sum())
    account["ethnicity_not_known"] = int(not_known.sum())

    area_columns = [c for c in ("lsoa_code", "imd_decile") if c in clients]
    account["area_not_recorded"] = _blank(clients, area_columns, profile.area_not_recorded, rng)
    for column, share in (
        ("practice_code", profile.practice_not_recorded),
        ("consent_contact", profile.consent_contact_not_recorded),
    ):
        if column in clients:
            account[f"{column}_not_recorded"] = _blank(clients, [column], share, rng)
    if "discharge_reason" in clients:
        closed = clients["discharge_reason"].notna().to_numpy()
        lost = closed & (rng.uniform(size=n) < profile.discharge_reason_not_recorded)
        clients.loc[lost, "discharge_reason"] = None
        account["discharge_reason_not_recorded"] = int(lost.sum())
    out["clients"] = clients

    measures = tables["measures"]
    key = "client_id" if "client_id" in measures else "nhs_number"
    forms = measures.loc[measures["timepoint"] > 0, [key, "timepoint"]].drop_duplicates()
    forms = forms.sort_values([key, "timepoint"], kind="stable")
    lost = forms[rng.uniform(size=len(forms)) >= profile.follow_up_kept]
    dropped = measures.merge(lost.assign(_lost=True), on=[key, "timepoint"], how="left")["_lost"]
    keep = dropped.isna().to_numpy()
    if profile.monotone_follow_up:
        keep &= _without_gaps(measures, key, keep)
    out["measures"] = measures[keep].reset_index(drop=True)
    account["follow_up_forms_not_entered"] = len(lost)
    account["follow_up_rows_not_entered"] = int((~keep).sum())
    return out, account


def _without_gaps(measures: pd.DataFrame, key: str, keep) -> pd.Series:
    """Whether each row's earlier time points of the same measure are all kept."""
    kept = measures.loc[keep, [key, "measure", "timepoint"]]
    rank = kept.groupby([key, "measure"])["timepoint"].rank(method="first") - 1
    # within a client and measure, time point t is kept only if 0..t are all there
    complete = kept["timepoint"] == rank
    return complete.reindex(measures.index, fill_value=False).to_numpy()


def _blank(frame: pd.DataFrame, columns: list[str], share: float, rng) -> int:
    """Blank ``columns`` in a random ``share`` of rows that have a value; return the count."""
    if not columns:
        return 0
    has_value = frame[columns[0]].notna().to_numpy()
    lost = has_value & (rng.uniform(size=len(frame)) < share)
    for column in columns:
        frame[column] = frame[column].astype(object).where(~lost, None)
    return int(lost.sum())


def describe(profile: RecordingProfile) -> dict:
    """The profile as plain values, for ``truth.json``."""
    return {k: v if isinstance(v, bool) else float(v) for k, v in asdict(profile).items()}
