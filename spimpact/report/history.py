"""The refresh history store: each run's headline estimates, maturity ratings and hashes.

``spimpact run`` appends one refresh per scheme to ``outputs/history/<scheme_id>/``
(Parquet, publishable tier: only what the report already published):

* ``refreshes.parquet``: ``HISTORY_REFRESH_COLUMNS``: the refresh number, its label
  (``data_to``: the latest date recorded in the data), the run key, the params, plan,
  input and code hashes and the rows used per table (rounded to 5);
* ``headlines.parquet``: ``refresh, data_to`` and the headline rows
  (``HEADLINE_COLUMNS``, disclosure-controlled);
* ``maturity.parquet``: ``refresh, data_to, domain, check, percent, rating``.

Reproducibility: the label comes from the data, never from the clock, and a run whose
inputs, params, plan lock and approved quotes are those of a refresh already stored
(its *run key*) replaces that refresh instead of adding one, so re-running on the same
inputs and history writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.params import DisclosureRule
from spimpact.paths import HISTORY_DIR
from spimpact.publish.disclosure import SUPPRESSED, disclose_count
from spimpact.publish.section import HEADLINE_COLUMNS
from spimpact.streaming import StreamedTable

HISTORY_REFRESH_COLUMNS = (
    "refresh",
    "data_to",
    "run_key",
    "params_sha256",
    "plan_sha256",
    "plan_json",
    "inputs_json",
    "code_sha256",
    "records_json",
)
HISTORY_MATURITY_COLUMNS = ("refresh", "data_to", "domain", "check", "percent", "rating")
HEADLINE_KEY = ["measure", "outcome", "method"]
_NUMERIC = ("estimate", "std_error", "conf_low", "conf_high", "n", "conf_level")
# Date columns that say when something happened in the scheme (not a birth date).
_EVENT_DATES = (
    ("clients", "referral_date"),
    ("clients", "discharge_date"),
    ("measures", "date"),
    ("contacts", "contact_date"),
    ("support_offered", "date"),
    ("gp_appointments", "appointment_date"),
    ("feedback", "date"),
)
_TABLES = ("clients", "measures", "contacts", "support_offered", "gp_appointments", "feedback")


@dataclass(frozen=True)
class History:
    """A scheme's stored refreshes (frames with the columns of the three files)."""

    refreshes: pd.DataFrame
    headlines: pd.DataFrame
    maturity: pd.DataFrame

    @property
    def empty(self) -> bool:
        """No refresh stored."""
        return self.refreshes.empty

    def before(self, key: str | None) -> History:
        """The refreshes before the one with run key ``key`` (all of them if it is new)."""
        match = self.refreshes.loc[self.refreshes["run_key"] == key, "refresh"]
        if match.empty:
            return self
        cut = int(match.iloc[0])
        return History(
            self.refreshes[self.refreshes["refresh"] < cut].reset_index(drop=True),
            self.headlines[self.headlines["refresh"] < cut].reset_index(drop=True),
            self.maturity[self.maturity["refresh"] < cut].reset_index(drop=True),
        )

    def last(self) -> pd.Series | None:
        """The latest refresh's row, or ``None``."""
        return None if self.refreshes.empty else self.refreshes.iloc[-1]


def empty_history() -> History:
    """A history without refreshes."""
    return History(
        pd.DataFrame(columns=list(HISTORY_REFRESH_COLUMNS)),
        pd.DataFrame(columns=["refresh", "data_to", *HEADLINE_COLUMNS]),
        pd.DataFrame(columns=list(HISTORY_MATURITY_COLUMNS)),
    )


def history_dir(output_root: Path, scheme_id: str) -> Path:
    """``outputs/history/<scheme_id>``."""
    return Path(output_root) / HISTORY_DIR / scheme_id


def read_history(folder: Path) -> History:
    """Read a scheme's history folder; an empty history when it has none yet."""
    folder = Path(folder)
    if not (folder / "refreshes.parquet").is_file():
        return empty_history()
    refreshes = pd.read_parquet(folder / "refreshes.parquet")
    headlines = pd.read_parquet(folder / "headlines.parquet")
    maturity = pd.read_parquet(folder / "maturity.parquet")
    return History(
        refreshes.sort_values("refresh", kind="stable").reset_index(drop=True),
        headlines,
        maturity,
    )


def data_date(scheme) -> str | None:
    """The latest date recorded in the scheme's data (ISO ``YYYY-MM-DD``), or ``None``.

    This labels the refresh: it changes when the data do and never with the clock.
    """
    latest = []
    for table, column in _EVENT_DATES:
        frame = getattr(scheme, table, None)
        if frame is not None and column in frame.columns and len(frame):
            if isinstance(frame, StreamedTable):  # rows on disk: asked in SQL
                value = frame.latest(column)
            else:
                value = pd.to_datetime(frame[column], errors="coerce").max()
            if pd.notna(value):
                latest.append(value)
    return f"{max(latest):%Y-%m-%d}" if latest else None


def record_counts(scheme, rule: DisclosureRule) -> dict[str, int | None]:
    """Rows used per table, disclosure-controlled (``None`` when withheld)."""
    counts = {}
    for table in _TABLES:
        frame = getattr(scheme, table, None)
        if frame is not None:
            value = disclose_count([len(frame)], rule).iloc[0]
            counts[table] = None if pd.isna(value) else int(value)
    return counts


def run_key(provenance: dict) -> str:
    """What identifies a refresh: inputs, params, plan lock and approved quotes (not code)."""
    parts = {
        k: provenance.get(k)
        for k in (
            "params_sha256",
            "inputs_sha256",
            "mapping_sha256",
            "plan_lock",
            "approved_quotes_sha256",
        )
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def refresh_row(provenance: dict, refresh: int) -> dict:
    """One ``refreshes.parquet`` row from a run's provenance."""
    plan = provenance.get("plan")
    return {
        "refresh": refresh,
        "data_to": provenance.get("data_date") or "",
        "run_key": run_key(provenance),
        "params_sha256": provenance.get("params_sha256", ""),
        "plan_sha256": provenance.get("plan_sha256") or "",
        "plan_json": "" if plan is None else json.dumps(plan, sort_keys=True),
        "inputs_json": json.dumps(provenance.get("inputs_sha256", {}), sort_keys=True),
        "code_sha256": provenance.get("code_sha256", ""),
        "records_json": json.dumps(provenance.get("records", {}), sort_keys=True),
    }


def append_refresh(
    folder: Path, provenance: dict, headlines: pd.DataFrame, maturity: pd.DataFrame | None
) -> History:
    """Add this run to the history in ``folder`` (replacing a refresh with its run key).

    ``headlines`` has ``HEADLINE_COLUMNS`` (``tables/headline.csv``); ``maturity``
    the scorecard (``tables/data_maturity.csv``) or ``None``.
    """
    folder = Path(folder)
    history = read_history(folder)
    key = run_key(provenance)
    existing = history.refreshes.loc[history.refreshes["run_key"] == key, "refresh"]
    number = (
        int(existing.iloc[0])
        if len(existing)
        else int(pd.to_numeric(history.refreshes["refresh"]).max()) + 1
        if len(history.refreshes)
        else 1
    )
    row = refresh_row(provenance, number)
    refreshes = _stack(
        [history.refreshes[history.refreshes["refresh"] != number], pd.DataFrame([row])]
    )
    new_headlines = clean_headlines(headlines).assign(refresh=number, data_to=row["data_to"])
    new_maturity = (
        pd.DataFrame(columns=list(HISTORY_MATURITY_COLUMNS))
        if maturity is None or maturity.empty
        else maturity.assign(refresh=number, data_to=row["data_to"])
    )
    result = History(
        _sorted(refreshes, list(HISTORY_REFRESH_COLUMNS)),
        _sorted(
            _stack([history.headlines[history.headlines["refresh"] != number], new_headlines]),
            ["refresh", "data_to", *HEADLINE_COLUMNS],
        ),
        _sorted(
            _stack([history.maturity[history.maturity["refresh"] != number], new_maturity]),
            list(HISTORY_MATURITY_COLUMNS),
        ),
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("refreshes", result.refreshes),
        ("headlines", result.headlines),
        ("maturity", result.maturity),
    ):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return result


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate the non-empty frames (the first frame's columns when all are empty)."""
    kept = [frame.dropna(axis=1, how="all") if len(frame) else frame for frame in frames]
    kept = [frame for frame in kept if len(frame)]
    if not kept:
        return frames[0].iloc[0:0]
    return pd.concat(kept, ignore_index=True)


def clean_headlines(headlines: pd.DataFrame) -> pd.DataFrame:
    """Headline rows with numeric columns as floats (withheld ``*`` as missing)."""
    out = headlines.reindex(columns=list(HEADLINE_COLUMNS)).copy()
    for column in _NUMERIC:
        out[column] = pd.to_numeric(
            out[column].replace(SUPPRESSED, np.nan), errors="coerce"
        ).astype(float)
    for column in ("outcome_level", "outcome", "measure", "method"):
        out[column] = out[column].astype(object).where(out[column].notna(), "").astype(str)
    return out


def _sorted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    frame = frame.reindex(columns=columns)
    frame["refresh"] = pd.to_numeric(frame["refresh"]).astype("int64")
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype(str).where(frame[column].notna(), None)
    return frame.sort_values(
        [c for c in ("refresh", "measure", "outcome", "method", "domain", "check") if c in columns],
        kind="stable",
    ).reset_index(drop=True)


def trend_table(previous: History, current: pd.DataFrame, current_label: str) -> pd.DataFrame:
    """Each headline's estimate at every refresh, this one last.

    Columns ``refresh, data_to, outcome_level, outcome, measure, method, estimate,
    conf_low, conf_high, conf_level, n``.
    """
    number = (
        int(pd.to_numeric(previous.refreshes["refresh"]).max()) + 1
        if len(previous.refreshes)
        else 1
    )
    now = clean_headlines(current).assign(refresh=number, data_to=current_label or "")
    frames = [f for f in (previous.headlines, now) if len(f)]
    if not frames:
        return pd.DataFrame(columns=["refresh", "data_to", *HEADLINE_COLUMNS])
    long = pd.concat(frames, ignore_index=True)
    columns = ["refresh", "data_to", "outcome_level", "outcome", "measure", "method",
               "estimate", "conf_low", "conf_high", "conf_level", "n"]  # fmt: skip
    long = long[columns].copy()
    long["refresh"] = pd.to_numeric(long["refresh"]).astype("int64")
    return long.sort_values(["measure", "outcome", "method", "refresh"], kind="stable").reset_index(
        drop=True
    )


def refresh_flags(
    previous: History, current: pd.DataFrame, current_records: dict | None
) -> pd.DataFrame:
    """What changed since the last refresh, one row per flag.

    Columns ``outcome, measure, method, previous_estimate, previous_conf_low,
    previous_conf_high, estimate, flag``. A headline is flagged when its estimate
    lies outside the previous refresh's confidence interval, when fewer people stand
    behind it, or when it is new or no longer reported; the data are flagged when any
    table has fewer rows than at the previous refresh (rounded counts).
    """
    columns = ["outcome", "measure", "method", "previous_estimate", "previous_conf_low",
               "previous_conf_high", "estimate", "flag"]  # fmt: skip
    last = previous.last()
    if last is None:
        return pd.DataFrame(columns=columns)
    before = clean_headlines(previous.headlines[previous.headlines["refresh"] == last["refresh"]])
    now = clean_headlines(current)
    merged = before.merge(
        now, on=HEADLINE_KEY, how="outer", suffixes=("_before", ""), indicator="presence"
    )
    rows = []
    for row in merged.itertuples(index=False):
        outcome = row.outcome
        flags = []
        if row.presence == "right_only":
            flags.append("new result since the last refresh")
        elif row.presence == "left_only":
            flags.append("no longer reported")
        elif (
            pd.notna(row.estimate)
            and pd.notna(row.conf_low_before)
            and pd.notna(row.conf_high_before)
            and not row.conf_low_before <= row.estimate <= row.conf_high_before
        ):
            flags.append("moved beyond the previous confidence interval")
        if pd.notna(row.n) and pd.notna(row.n_before) and row.n < row.n_before:
            flags.append(f"fewer people ({row.n_before:,.0f} to {row.n:,.0f})")
        for flag in flags:
            before = (row.estimate_before, row.conf_low_before, row.conf_high_before)
            rows.append((outcome, row.measure, row.method, *before, row.estimate, flag))
    old_records = json.loads(last["records_json"] or "{}")
    for table, count in sorted((current_records or {}).items()):
        old = old_records.get(table)
        if count is not None and old is not None and count < old:
            rows.append((f"{table} rows", "", "", float(old), np.nan, np.nan, float(count),
                         "the data shrank: fewer rows than at the last refresh"))  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
