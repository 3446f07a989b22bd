"""Data maturity across refreshes, against the improvement goals a scheme sets in params.

NHS England's social prescribing maturity framework asks ICBs to agree improvement
goals for data recording and review them (six-monthly here). A scheme lists goals
under ``maturity: goals:`` in params (the check as the scorecard names it, a target
percentage and the date it is due); ``goal_progress`` says whether each is met, and
``rating_history`` sets each check's rating at every refresh side by side, so a
scheme sees whether its recording is getting better.
"""

from __future__ import annotations

import pandas as pd

from spimpact.analyses.maturity.analysis import RATINGS

GOAL_COLUMNS = ("check", "target_percent", "due", "percent_now", "status")


def goal_progress(scorecard: pd.DataFrame, goals, *, data_to: str | None) -> pd.DataFrame:
    """Each goal against the scorecard of this refresh.

    Parameters
    ----------
    scorecard
        The data-maturity scorecard (``check``, ``percent``; disclosure-controlled).
    goals
        ``MaturityGoal`` objects (``check``, ``target_percent``, ``by``).
    data_to
        The refresh's label (latest date in the data, ``YYYY-MM-DD``): a goal whose
        date has passed and is not met is *missed*, else *not yet met*.

    Returns
    -------
    pandas.DataFrame
        ``GOAL_COLUMNS``; ``status`` is one of "met", "not yet met", "missed",
        "cannot tell (percentage withheld)" or "no such check" (the goal names a check
        the scorecard does not have; the names are those of the ``check`` column).

    Examples
    --------
    >>> from datetime import date
    >>> from types import SimpleNamespace as Goal
    >>> card = pd.DataFrame({"check": ["clients with sex recorded"], "percent": [91.0]})
    >>> goal_progress(card, [Goal(check="Clients with sex recorded", target_percent=95,
    ...                           by=date(2026, 6, 30))], data_to="2025-12-31")["status"].tolist()
    ['not yet met']
    """
    checks = scorecard["check"].astype(str).str.strip().str.lower()
    by_name = dict(zip(checks, scorecard["percent"], strict=True))
    rows = []
    for goal in goals:
        due = f"{goal.by:%Y-%m-%d}"
        key = goal.check.strip().lower()
        if key not in by_name:
            rows.append((goal.check, goal.target_percent, due, float("nan"), "no such check"))
            continue
        now = pd.to_numeric(pd.Series([by_name[key]]), errors="coerce").iloc[0]
        if pd.isna(now):
            status = "cannot tell (percentage withheld)"
        elif now >= goal.target_percent:
            status = "met"
        elif data_to is not None and data_to > due:
            status = "missed"
        else:
            status = "not yet met"
        rows.append((goal.check, float(goal.target_percent), due, float(now), status))
    return pd.DataFrame(rows, columns=list(GOAL_COLUMNS))


def rating_history(
    previous: pd.DataFrame, scorecard: pd.DataFrame, *, data_to: str | None
) -> pd.DataFrame:
    """Each check's rating at every refresh (columns by refresh label), and the direction.

    ``previous`` holds stored refreshes (``refresh, data_to, domain, check, rating``);
    ``scorecard`` this refresh's. The last column, ``since_last``, is "better",
    "worse", "same" or "new" against the previous refresh.
    """
    now = scorecard[["domain", "check", "rating"]].assign(refresh=_next(previous), data_to=data_to)
    frames = [f for f in (previous, now) if len(f)]
    long = pd.concat(frames, ignore_index=True)[["refresh", "data_to", "domain", "check", "rating"]]
    long["refresh"] = pd.to_numeric(long["refresh"]).astype("int64")
    refreshes = long.drop_duplicates("refresh").sort_values("refresh")
    label_of = {
        number: f"{data_to or 'refresh'} (#{number})"
        for number, data_to in zip(refreshes["refresh"], refreshes["data_to"], strict=True)
    }
    labels = list(label_of.values())
    long["label"] = long["refresh"].map(label_of)
    wide = long.pivot_table(
        index=["domain", "check"], columns="label", values="rating", aggfunc="last"
    ).reindex(columns=labels)
    wide = wide.reindex(pd.MultiIndex.from_frame(scorecard[["domain", "check"]])).reset_index()
    wide.columns.name = None
    rank = {rating: i for i, rating in enumerate(RATINGS)}
    if len(labels) >= 2:
        wide["since_last"] = [
            _direction(old, new, rank)
            for old, new in zip(wide[labels[-2]], wide[labels[-1]], strict=True)
        ]
    else:
        wide["since_last"] = "first refresh"
    return wide.fillna("")


def _next(previous: pd.DataFrame) -> int:
    return int(pd.to_numeric(previous["refresh"]).max()) + 1 if len(previous) else 1


def _direction(old, new, rank: dict) -> str:
    if pd.isna(old):
        return "new"
    if old == new:
        return "same"
    return "better" if rank[new] < rank[old] else "worse"
