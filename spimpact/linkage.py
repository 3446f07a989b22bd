"""How a scheme's tables link: keys, duplicates, orphan records and referral episodes.

The second half of loading (:func:`spimpact.io.load_scheme`): after each table has been
parsed on its own, records are checked against each other. Every problem excludes a
row with its reason through a :class:`Collector`, never silently.

Episodes. A client may be referred more than once. When ``clients`` has an ``episode``
column, its rows are the client's episodes (key ``client_id`` + ``episode``); records
of ``measures``, ``contacts`` and ``support_offered`` name their episode, or else
belong to the episode running on their date (the latest referral on or before it; the
first episode for a record dated before every referral). The analyses use one episode
per client, by default each client's first episode that passes the checks
(``episodes="first"``; or ``"last"``); rows of the other episodes are excluded with
the reason :data:`OTHER_EPISODE`, and every episode is listed in
``SchemeData.episodes``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact import contract
from spimpact.cells import ExclusionLog

__all__ = [
    "EPISODE_RULES",
    "EXCLUSION_COLUMNS",
    "OTHER_EPISODE",
    "Collector",
    "attribute_episodes",
    "check_relations",
    "duplicates",
    "episode_on",
    "select_episodes",
]

EXCLUSION_COLUMNS = ("table", "row", "column", "value", "reason", "source", "line")
EPISODE_RULES = ("first", "last")
OTHER_EPISODE = "another episode of the client: the analyses use each client's {rule} episode"
EPISODE_COLUMNS = ("client_id", "episode", "referral_date", "referral_source", "discharge_date")
_DATE_COLUMN = {"measures": "date", "contacts": "contact_date", "support_offered": "date"}


class Collector(ExclusionLog):
    """Accumulates row-level exclusions for one table (identifying values withheld).

    ``origins`` (``source_row, source, row``) says where each row came from when the
    table was made by a mapping; otherwise every row is line ``source_row`` of
    ``source``. Values are recorded as :class:`spimpact.cells.ExclusionLog` does:
    identifying ones are ``(withheld)``.
    """

    def __init__(self, table: str, source: str = "", origins: pd.DataFrame | None = None):
        super().__init__(table)
        self.source = source
        self.origins = None if origins is None else origins.set_index("source_row")

    def where(self, row: int) -> tuple[str, int]:
        """The source and line of row ``row``."""
        if self.origins is None or row not in self.origins.index:
            return self.source, int(row)
        origin = self.origins.loc[row]
        return str(origin["source"]), int(origin["row"])

    def describe(self, row: int) -> str:
        """'row 12' (or 'export.xlsx [Referrals] row 12' for a mapped table)."""
        source, line = self.where(row)
        return f"{source} row {line}" if self.origins is not None else f"row {line}"

    def frame(self) -> pd.DataFrame:
        """The exclusions in :data:`EXCLUSION_COLUMNS`."""
        frame = super().frame()
        rows = frame["row"].astype("int64")
        if self.origins is None or frame.empty:
            frame["source"] = self.source
            frame["line"] = rows
        else:
            origin = self.origins[~self.origins.index.duplicated()].reindex(rows.to_numpy())
            frame["source"] = origin["source"].fillna(self.source).astype(str).to_numpy()
            line = origin["row"].to_numpy(dtype=float)
            frame["line"] = np.where(np.isnan(line), rows.to_numpy(), line).astype("int64")
        return frame[list(EXCLUSION_COLUMNS)]


def duplicates(frame: pd.DataFrame, keys: list[str], out: Collector, what: str) -> None:
    """Exclude later rows that repeat the key ``keys`` of an earlier row."""
    complete = frame.dropna(subset=keys)
    dup = complete.duplicated(subset=keys, keep="first")
    if dup.any():
        # the row each duplicate repeats, found by one group-by (not one look-up per row);
        # one reason text per first row, shared by its duplicates
        first = complete.groupby(keys, sort=False)["source_row"].transform("first")[dup]
        codes, firsts = pd.factorize(first)
        reasons = np.array(
            [f"duplicate {what} (first seen at {out.describe(r)})" for r in firsts], object
        )
        out.add(
            complete.loc[dup, "source_row"],
            "+".join(keys),
            complete.loc[dup, keys[0]].astype(str),
            reasons[codes],
        )


def _has_episodes(tables: dict) -> bool:
    return "episode" in tables["clients"] and tables["clients"]["episode"].notna().any()


def attribute_episodes(tables: dict, collectors: dict) -> None:
    """Give records of the episode tables their client's episode (in place).

    Without episodes in ``clients`` an ``episode`` column elsewhere has no meaning and
    is dropped. A named episode the client does not have excludes the record.
    """
    if not _has_episodes(tables):
        for name in _DATE_COLUMN:
            if name in tables and "episode" in tables[name]:
                tables[name] = tables[name].drop(columns=["episode"])
        return
    clients = tables["clients"]
    excluded = collectors["clients"].excluded_rows()
    known = clients.loc[~clients["source_row"].isin(excluded)].dropna(
        subset=["client_id", "episode"]
    )
    starts = known.sort_values(["client_id", "referral_date", "source_row"], kind="stable")
    for name, date_column in _DATE_COLUMN.items():
        if name not in tables:
            continue
        frame = tables[name].copy()
        if "episode" in frame and frame["episode"].notna().any():
            pairs = set(zip(clients["client_id"], clients["episode"], strict=True))
            named = frame["client_id"].notna() & frame["episode"].notna()
            unknown = named & ~pd.Series(
                [p in pairs for p in zip(frame["client_id"], frame["episode"], strict=True)],
                index=frame.index,
            )
            collectors[name].add(
                frame.loc[unknown, "source_row"],
                "episode",
                frame.loc[unknown, "episode"].astype(str),
                "record for an episode the client does not have (not in clients)",
            )
            blank = frame["episode"].isna()
        else:
            blank = pd.Series(True, index=frame.index)
        frame["episode"] = frame.get("episode", pd.Series(None, index=frame.index, dtype=object))
        frame.loc[blank, "episode"] = episode_on(frame.loc[blank], date_column, starts).to_numpy()
        tables[name] = frame


def episode_on(records: pd.DataFrame, date_column: str, starts: pd.DataFrame) -> pd.Series:
    """The episode running on each record's date (the first if before every referral).

    ``starts`` holds ``client_id, episode, referral_date``; records of clients without
    an episode get None. Vectorised with ``pandas.merge_asof``.

    >>> starts = pd.DataFrame({"client_id": ["a", "a"], "episode": ["1", "2"],
    ...                        "referral_date": pd.to_datetime(["2024-01-01", "2024-06-01"])})
    >>> dates = pd.to_datetime(["2024-03-01", "2024-07-01", "2023-12-01", "2024-01-01"])
    >>> records = pd.DataFrame({"client_id": ["a", "a", "a", "b"], "date": dates})
    >>> episode_on(records, "date", starts).tolist()
    ['1', '2', '1', None]
    """
    starts = starts.dropna(subset=["client_id", "referral_date"])
    starts = starts.sort_values(["referral_date", "client_id"], kind="stable")
    first = starts.drop_duplicates("client_id").set_index("client_id")["episode"]
    dates = pd.to_datetime(records[date_column])
    frame = pd.DataFrame(
        {"client_id": records["client_id"].to_numpy(), "_date": dates.to_numpy(),
         "_order": np.arange(len(records))}
    )  # fmt: skip
    dated = frame.dropna(subset=["_date", "client_id"]).sort_values("_date", kind="stable")
    found = pd.merge_asof(
        dated,
        starts[["client_id", "episode", "referral_date"]].rename(
            columns={"referral_date": "_date"}
        ),
        on="_date",
        by="client_id",
        direction="backward",
    ).set_index("_order")["episode"]
    result = frame["_order"].map(found)
    result = result.where(result.notna(), frame["client_id"].map(first))
    return pd.Series(result.to_numpy(), index=records.index, dtype=object).where(
        lambda s: s.notna(), None
    )


def select_episodes(tables: dict, collectors: dict, rule: str) -> pd.DataFrame:
    """Keep one episode per client for the analyses; returns every usable episode.

    Returns a frame of :data:`EPISODE_COLUMNS` (those present) plus ``analysed``
    (True for the episode the analyses use), one row per usable ``clients`` row.
    """
    if rule not in EPISODE_RULES:
        raise ValueError(f"episodes must be one of {', '.join(EPISODE_RULES)} (got {rule!r})")
    clients = tables["clients"]
    usable = clients[~clients["source_row"].isin(collectors["clients"].excluded_rows())]
    usable = usable.dropna(subset=["client_id"])
    columns = [c for c in EPISODE_COLUMNS if c in usable]
    if not _has_episodes(tables):
        return usable[columns].assign(analysed=True).reset_index(drop=True)
    order = usable.sort_values(["client_id", "referral_date", "source_row"], kind="stable")
    chosen = order.drop_duplicates("client_id", keep="first" if rule == "first" else "last")
    reason = OTHER_EPISODE.format(rule=rule)
    others = usable[~usable["source_row"].isin(chosen["source_row"])]
    collectors["clients"].add(
        others["source_row"], "episode", others["episode"].astype(str), reason
    )
    analysed = set(zip(chosen["client_id"], chosen["episode"], strict=True))
    for name in _DATE_COLUMN:
        if name not in tables or "episode" not in tables[name]:
            continue
        frame = tables[name]
        mine = pd.Series(
            [p in analysed for p in zip(frame["client_id"], frame["episode"], strict=True)],
            index=frame.index,
        )
        already = frame["source_row"].isin(collectors[name].excluded_rows())
        other = ~mine & frame["client_id"].isin(chosen["client_id"]) & ~already
        collectors[name].add(
            frame.loc[other, "source_row"], "episode", frame.loc[other, "episode"].astype(str),
            reason,
        )  # fmt: skip
    episodes = usable[columns].assign(analysed=usable["source_row"].isin(chosen["source_row"]))
    return episodes.sort_values(["client_id", "referral_date"], kind="stable").reset_index(
        drop=True
    )


def check_relations(tables: dict, collectors: dict) -> None:
    """Orphan records, duplicate keys and dates out of order between tables."""
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
    episode = ["episode"] if _has_episodes(tables) else []
    measures = tables["measures"]
    key = ["client_id", *episode, "measure", "timepoint"]
    duplicates(measures, key, collectors["measures"], "+".join(key))
    form = ["client_id", *episode, "measure"]
    baseline = measures[measures["timepoint"] == 0].drop_duplicates(form).set_index(form)["date"]
    base_date = pd.Series(
        baseline.reindex(pd.MultiIndex.from_frame(measures[form])).to_numpy(),
        index=measures.index,
    )
    early = (measures["timepoint"] > 0) & (measures["date"] < base_date)
    collectors["measures"].add(
        measures.loc[early, "source_row"],
        "date",
        measures.loc[early, "date"].dt.strftime("%Y-%m-%d"),
        "follow-up dated before the baseline of the same measure",
    )
    person = ["client_id", *episode]
    referral = clients.drop_duplicates(person).set_index(person)["referral_date"]
    if "contacts" in tables:
        contacts = tables["contacts"]
        started = referral.reindex(pd.MultiIndex.from_frame(contacts[person])).to_numpy() if (
            episode
        ) else contacts["client_id"].map(referral).to_numpy()  # fmt: skip
        early = contacts["contact_date"].to_numpy() < started
        collectors["contacts"].add(
            contacts.loc[early, "source_row"],
            "contact_date",
            contacts.loc[early, "contact_date"].dt.strftime("%Y-%m-%d"),
            "contact before the referral date",
        )
        exact_duplicates(contacts, collectors["contacts"])
    if "support_offered" in tables:
        exact_duplicates(tables["support_offered"], collectors["support_offered"])
    if "feedback" in tables:
        duplicates(tables["feedback"], ["feedback_id"], collectors["feedback"], "feedback_id")
    if "comparison_pool" in tables:
        pool = tables["comparison_pool"]
        duplicates(pool, ["patient_id"], collectors["comparison_pool"], "patient_id")
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
        duplicates(
            tables["population"],
            ["dimension", "category"],
            collectors["population"],
            "dimension+category",
        )


def _check_population_categories(population: pd.DataFrame, out: Collector) -> None:
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


def exact_duplicates(frame: pd.DataFrame, out: Collector) -> None:
    """Exclude rows identical to an earlier row in every column."""
    content = [c for c in frame.columns if c != "source_row"]
    dup = frame.duplicated(subset=content, keep="first")
    out.add(frame.loc[dup, "source_row"], "", "(whole row)", "exact duplicate of an earlier row")
