"""GP attendance before and after social prescribing, against a matched comparison group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from spimpact.models.count import fit_poisson
from spimpact.models.did import EventStudyResult, fit_did_2x2, fit_event_study, fit_twfe
from spimpact.models.did_staggered import fit_staggered_did
from spimpact.models.matching import MatchResult, match_nearest
from spimpact.models.tidy import TIDY_COLUMNS, make_tidy
from spimpact.publish.disclosure import disclose_count, disclose_summary, disclose_table
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section, Table

PANEL_SQL = resources.files("spimpact.analyses.attendance") / "panel.sql"

PANEL_COLUMNS = (
    "patient_id",
    "treated",
    "index_date",
    "months_since_index",
    "post",
    "calendar_month",
    "n_gp",
    "n_clinical",
    "n_clinical_face_to_face",
    "n_clinical_remote",
)

APPOINTMENT_COLUMNS = (
    "patient_id",
    "appointment_date",
    "staff_role",
    "mode",
    "status",
    "slot_category",
)


def panel_query(*, window_months: int, observed_from: date, observed_until: date) -> str:
    """Return the attendance-panel SQL with its window and observation period filled in.

    The query reads tables ``appointments``, ``cohort`` and ``months`` and is plain
    SQL, so it runs on Spark SQL too.
    """
    window_months = _whole_number(window_months, "window_months")
    return PANEL_SQL.read_text(encoding="utf-8").format(
        first_month=-window_months,
        last_month=window_months - 1,
        observed_from=f"DATE '{pd.Timestamp(observed_from).date().isoformat()}'",
        observed_until=f"DATE '{pd.Timestamp(observed_until).date().isoformat()}'",
    )


def build_panel(
    appointments: pd.DataFrame | str | Path,
    cohort: pd.DataFrame,
    *,
    window_months: int = 12,
    observed_from: date | str | None = None,
    observed_until: date | str | None = None,
    output: str | Path | None = None,
    memory_limit: str = "4GB",
    threads: int | None = None,
) -> pd.DataFrame | Path:
    """Build a person x month panel of attended clinical appointments around an index date.

    Parameters
    ----------
    appointments
        Appointment-level records with ``APPOINTMENT_COLUMNS`` (``slot_category``
        optional), as a DataFrame or a path to a CSV or Parquet file (or a Parquet
        glob), read by DuckDB without loading it into memory.
    cohort
        One row per person: ``patient_id``, ``index_date`` (referral date for
        clients, assigned index date for comparison patients) and ``treated``
        (1 client, 0 comparison), as a DataFrame or a Parquet path.
    window_months
        Months before and after the index date (params ``comparison.window_months``):
        months ``-window_months`` to ``window_months - 1``; month 0 starts on the
        index date.
    observed_from, observed_until
        The period the appointment extract covers (``observed_from <= date <
        observed_until``). A person-month is kept only if it lies wholly inside it,
        so unobserved months are never read as months without appointments.
        Defaults: the first appointment date and the day after the last.
    output
        When given, the panel is written to this Parquet file (streamed, never
        held in memory) and its path is returned.
    memory_limit, threads
        DuckDB resource limits.

    Returns
    -------
    pandas.DataFrame or pathlib.Path
        ``PANEL_COLUMNS``, sorted by ``patient_id`` and ``months_since_index``:
        ``n_gp`` (GP appointments), ``n_clinical`` (GP, nurse and other clinical
        staff), ``n_clinical_face_to_face`` (face to face or home visit),
        ``n_clinical_remote`` (telephone, video, online), ``post`` (1 from month
        0), ``calendar_month`` (calendar month the person-month starts in, as
        ``year * 12 + month - 1``, for calendar-time fixed effects).

    Notes
    -----
    Counts attended appointments only (no DNAs or cancellations) with clinical
    staff, and leaves out link-worker appointments (role
    ``social_prescribing_link_worker`` or GPAD slot category "Social Prescribing
    Service"), which the intervention itself creates: SPEC §2.4 and NHS England,
    *Appointments in General Practice* (GPAD) definitions. Months with no
    appointment are zeros. The panel logic lives in ``spimpact/analyses/attendance/panel.sql``.

    Examples
    --------
    >>> appointments = pd.DataFrame({
    ...     "patient_id": ["a", "a"],
    ...     "appointment_date": pd.to_datetime(["2024-01-10", "2024-03-02"]),
    ...     "staff_role": ["gp", "nurse"], "mode": ["face_to_face", "telephone"],
    ...     "status": ["attended", "attended"], "slot_category": [None, None]})
    >>> cohort = pd.DataFrame({"patient_id": ["a"], "index_date": pd.to_datetime(["2024-02-01"]),
    ...                        "treated": [1]})
    >>> panel = build_panel(appointments, cohort, window_months=3,
    ...                     observed_from="2023-11-01", observed_until="2024-05-01")
    >>> panel[["months_since_index", "n_gp", "n_clinical"]].to_numpy().tolist()
    [[-3, 0, 0], [-2, 0, 0], [-1, 1, 1], [0, 0, 0], [1, 0, 1], [2, 0, 0]]
    """
    window_months = _whole_number(window_months, "window_months")
    connection = duckdb.connect(config={"memory_limit": memory_limit})
    try:
        if threads is not None:
            connection.execute(f"SET threads = {_whole_number(threads, 'threads')}")
        _register_appointments(connection, appointments)
        _register_cohort(connection, cohort)
        months = pd.DataFrame(
            {"months_since_index": np.arange(-window_months, window_months, dtype="int32")}
        )
        connection.register("months", months)
        if observed_from is None or observed_until is None:
            first, last = connection.execute(
                "SELECT MIN(appointment_date), MAX(appointment_date) FROM appointments"
            ).fetchone()
            if first is None:
                raise ValueError("appointments: no rows, so the observed period is unknown")
            observed_from = first if observed_from is None else observed_from
            observed_until = (
                pd.Timestamp(last) + pd.Timedelta(days=1)
                if observed_until is None
                else observed_until
            )
        query = panel_query(
            window_months=window_months,
            observed_from=observed_from,
            observed_until=observed_until,
        )
        ordered = f"{query}\nORDER BY patient_id, months_since_index"
        if output is not None:
            output = Path(output)
            output.parent.mkdir(parents=True, exist_ok=True)
            connection.execute(f"COPY ({query}) TO '{_sql_path(output)}' (FORMAT PARQUET)")
            return output
        panel = connection.execute(ordered).df()
    finally:
        connection.close()
    for column in PANEL_COLUMNS[3:]:
        panel[column] = panel[column].astype("int64")
    panel["treated"] = panel["treated"].astype("int64")
    panel["index_date"] = pd.to_datetime(panel["index_date"])
    return panel[list(PANEL_COLUMNS)]


def _whole_number(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _sql_path(path: Path | str) -> str:
    return str(path).replace("'", "''")


def _register_appointments(connection, appointments) -> None:
    if isinstance(appointments, pd.DataFrame):
        missing = [c for c in APPOINTMENT_COLUMNS[:-1] if c not in appointments.columns]
        if missing:
            raise ValueError(f"appointments: missing column(s) {', '.join(missing)}")
        frame = appointments.copy()
        if "slot_category" not in frame.columns:
            frame["slot_category"] = None
        frame["appointment_date"] = pd.to_datetime(frame["appointment_date"], errors="raise")
        frame = frame[list(APPOINTMENT_COLUMNS)]
        connection.register("appointments_input", frame)
        source = "appointments_input"
    else:
        path = Path(appointments)
        if path.suffix.lower() == ".csv":
            source = f"read_csv('{_sql_path(path)}', header = true, all_varchar = true)"
        elif path.suffix.lower() == ".parquet" or "*" in path.name:
            source = f"read_parquet('{_sql_path(path)}')"
        else:
            raise ValueError(f"appointments: expected a .csv or .parquet file, got {path}")
        columns = {
            row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        }
        missing = [c for c in APPOINTMENT_COLUMNS[:-1] if c not in columns]
        if missing:
            raise ValueError(f"appointments file {path}: missing column(s) {', '.join(missing)}")
        if "slot_category" not in columns:
            source = f"(SELECT *, CAST(NULL AS VARCHAR) AS slot_category FROM {source})"
    connection.execute(
        f"""
        CREATE TEMP VIEW appointments AS
        SELECT CAST(patient_id AS VARCHAR) AS patient_id,
               CAST(appointment_date AS DATE) AS appointment_date,
               CAST(staff_role AS VARCHAR) AS staff_role,
               CAST(mode AS VARCHAR) AS mode,
               CAST(status AS VARCHAR) AS status,
               CAST(slot_category AS VARCHAR) AS slot_category
        FROM {source}
        """
    )


def _register_cohort(connection, cohort) -> None:
    if isinstance(cohort, str | Path):
        source = f"read_parquet('{_sql_path(cohort)}')"
    else:
        missing = [c for c in ("patient_id", "index_date", "treated") if c not in cohort.columns]
        if missing:
            raise ValueError(f"cohort: missing column(s) {', '.join(missing)}")
        if cohort["patient_id"].duplicated().any():
            duplicate = cohort.loc[cohort["patient_id"].duplicated(), "patient_id"].iloc[0]
            raise ValueError(f"cohort: patient_id {duplicate!r} appears more than once")
        if cohort["index_date"].isna().any():
            raise ValueError("cohort: index_date is missing for some people")
        frame = cohort[["patient_id", "index_date", "treated"]].copy()
        frame["index_date"] = pd.to_datetime(frame["index_date"])
        frame["treated"] = frame["treated"].astype(int)
        connection.register("cohort_input", frame)
        source = "cohort_input"
    connection.execute(
        f"""
        CREATE TEMP VIEW cohort AS
        SELECT CAST(patient_id AS VARCHAR) AS patient_id,
               CAST(index_date AS DATE) AS index_date,
               CAST(treated AS INTEGER) AS treated
        FROM {source}
        """
    )


# --- scheme analysis --------------------------------------------------------------------------

OUTCOME = "n_clinical"
OUTCOME_LABEL = "attended clinical appointments (GP, nurse, other clinical staff)"
POWER = 0.8


@dataclass(frozen=True)
class AttendanceResult:
    """A scheme's GP attendance analysis (read-only).

    Attributes
    ----------
    design
        ``"matched_did"`` (clients against a matched comparison group) or
        ``"before_after"`` (clients only; regression to the mean not removed).
    panel
        Person x month panel of the people analysed (``PANEL_COLUMNS`` plus
        ``treated_post``).
    estimates
        Tidy table (``TIDY_COLUMNS`` plus ``scale``): ``did`` (appointments per
        person-month), ``did_gp`` (GP appointments only), ``twfe``, ``staggered``,
        ``rate_ratio`` (Poisson, ratio scale), ``before_after_clients``,
        ``before_after_comparison``.
    matching
        The :class:`~spimpact.models.matching.MatchResult` (``None`` without a
        comparison group).
    event_study
        Event-study fit (``None`` without a comparison group).
    n_clients, n_comparison
        People analysed in each group.
    n_clients_unmatched
        Clients left out because no comparable patient was found or their
        pre-referral months were not observed.
    pre_post
        Mean appointments per person-month before and after the index date, by
        group, with the number of people and person-months (not yet disclosure
        controlled).
    diagnostics
        Plain-English warnings gathered on the way.
    conf_level
        Confidence level of every interval.
    """

    design: str
    panel: pd.DataFrame
    estimates: pd.DataFrame
    matching: MatchResult | None
    event_study: EventStudyResult | None
    n_clients: int
    n_comparison: int
    n_clients_unmatched: int
    pre_post: pd.DataFrame
    diagnostics: tuple[str, ...]
    conf_level: float

    def tidy(self) -> pd.DataFrame:
        """Return the estimates table (broom columns plus ``scale``)."""
        return self.estimates.copy()

    def summary(self) -> str:
        """Text summary of the estimates and diagnostics."""
        lines = [
            f"GP attendance, design: {self.design}; clients {self.n_clients}, "
            f"comparison patients {self.n_comparison}",
            self.estimates.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
            *self.diagnostics,
        ]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Event-study picture (matched design) or mean attendance by month (before/after)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        if self.event_study is not None:
            study = self.event_study
            tidy = study.tidy()
            months = study.event_times
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.axvline(-0.5, color="grey", linestyle=":", linewidth=1)
            ax.errorbar(
                months,
                tidy["estimate"],
                yerr=[tidy["estimate"] - tidy["conf_low"], tidy["conf_high"] - tidy["estimate"]],
                fmt="o",
                capsize=3,
                color="#005eb8",
            )
            ax.plot([study.reference], [0.0], "o", mfc="white", color="#005eb8")
            ax.set_xlabel("Months since referral (index date for comparison patients)")
            ax.set_ylabel("Clients minus comparison\n(appointments per person-month)")
            ax.set_title(
                f"Difference relative to month {study.reference}; dotted line: referral "
                f"({self.conf_level:.0%} intervals)",
                fontsize=10,
            )
            return ax
        monthly = self.panel.groupby("months_since_index")[OUTCOME].mean()
        ax.plot(monthly.index, monthly.to_numpy(), marker="o")
        ax.axvline(-0.5, color="grey", linestyle=":")
        ax.set_xlabel("Months since referral")
        ax.set_ylabel("Appointments per person-month")
        return ax


def analyse_attendance(scheme, *, params) -> AttendanceResult:
    """Estimate the change in GP-practice attendance after referral to social prescribing.

    Parameters
    ----------
    scheme
        :class:`spimpact.io.SchemeData` with ``gp_appointments`` (and
        ``comparison_pool`` for the matched design).
    params
        :class:`spimpact.params.SchemeParams`; uses ``comparison`` (window,
        matching options), ``conf_level`` and ``seed``.

    Returns
    -------
    AttendanceResult

    Raises
    ------
    InsufficientData
        When there are no GP appointment data or too few people to analyse.

    Notes
    -----
    Matched design (the default when a comparison pool is supplied and
    ``params.comparison.enabled``): clients and pool patients are matched 1:k on a
    logistic propensity score (MatchIt conventions, :func:`match_nearest`) of the
    params covariates, including prior attendance (mean appointments per month in the
    two halves of the year before the analysis window, months -24 to -19 and -18 to -13
    for a 12-month window: never the compared months themselves, which would build
    regression to the mean into the comparison group, Daw & Hatfield 2018), exactly on
    the params ``exact`` columns. Effects are then estimated on the matched
    person x month panel: 2x2 difference-in-differences by OLS with standard errors
    clustered by person (the primary estimate), a Poisson model with person and
    month-since-index fixed effects for the rate ratio (fixest ``fepois``
    conventions), a calendar-month two-way fixed-effects regression, Callaway &
    Sant'Anna (2021) in months since the index date with comparison patients as the
    never-treated group, and an event study (reference: the earliest month of the window,
    far from the pre-referral peak). SPEC §5.4.
    """
    if scheme.gp_appointments is None or scheme.gp_appointments.empty:
        raise InsufficientData(
            "No GP appointment data were supplied for this scheme, so changes in GP "
            "attendance cannot be assessed."
        )
    comparison = params.comparison
    window = comparison.window_months
    use_pool = (
        comparison.enabled
        and scheme.comparison_pool is not None
        and not scheme.comparison_pool.empty
    )
    people = _people(scheme, include_pool=use_pool)
    # Twice the window: the earlier half is the attendance history used for matching,
    # kept apart from the months the difference-in-differences compares.
    history = build_panel(
        scheme.gp_appointments,
        people[["patient_id", "index_date", "treated"]],
        window_months=2 * window,
    )
    panel = history[history["months_since_index"].between(-window, window - 1)]
    panel = panel.reset_index(drop=True)
    diagnostics: list[str] = []
    if not use_pool:
        return _before_after(panel, people, params, diagnostics)
    return _matched(panel, history, people, params, diagnostics)


def _people(scheme, *, include_pool: bool) -> pd.DataFrame:
    columns = ["age", "sex", "imd_decile", "imd_quintile", "ethnic_group", "practice_code"]
    clients = scheme.clients.rename(
        columns={"client_id": "patient_id", "referral_date": "index_date"}
    ).assign(treated=1)
    frames = [clients]
    if include_pool:
        frames.append(scheme.comparison_pool.assign(treated=0))
    people = pd.concat(
        [
            f[["patient_id", "index_date", "treated", *[c for c in columns if c in f]]]
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


def _pre_attendance(history: pd.DataFrame, window: int) -> pd.DataFrame:
    """Mean appointments per observed month in the year(s) before the analysis window.

    Months ``-2 * window`` to ``-window - 1``, in two halves, one row per person;
    ``NaN`` where no month of a half was observed.
    """
    half = window // 2
    bins = ((-2 * window, -window - half - 1), (-window - half, -window - 1))
    out = {}
    for first, last in bins:
        rows = history[history["months_since_index"].between(first, last)]
        out[f"pre_attendance_months_{-first}_to_{-last}"] = rows.groupby("patient_id")[
            OUTCOME
        ].mean()
    return pd.DataFrame(out)


def _matching_columns(people: pd.DataFrame, names) -> tuple[pd.DataFrame, list[str]]:
    """Expand ``pre_attendance`` and handle missing values so every person can be matched."""
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


def _with_treated_post(panel: pd.DataFrame) -> pd.DataFrame:
    panel = panel.copy()
    panel["treated_post"] = panel["treated"] * panel["post"]
    return panel


def _pre_post_table(panel: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for treated, group in panel.groupby("treated"):
        for post, cell in group.groupby("post"):
            rows.append(
                {
                    "group": "clients" if treated == 1 else "comparison",
                    "period": "after" if post == 1 else "before",
                    "n_people": int(cell["patient_id"].nunique()),
                    "n_person_months": len(cell),
                    "appointments_per_person_month": float(cell[OUTCOME].mean()),
                    "gp_appointments_per_person_month": float(cell["n_gp"].mean()),
                }
            )
    return pd.DataFrame(rows)


def _paired_change(panel: pd.DataFrame, outcome: str, conf_level: float) -> pd.DataFrame:
    """Mean within-person change (after minus before) of monthly attendance."""
    means = panel.groupby(["patient_id", "post"])[outcome].mean().unstack("post").dropna()
    change = means[1] - means[0]
    n = len(change)
    if n < 2:
        return make_tidy(["change"], [np.nan], [np.nan], conf_level=conf_level)
    return make_tidy(
        ["change"],
        [change.mean()],
        [change.std(ddof=1) / np.sqrt(n)],
        conf_level=conf_level,
        df=n - 1,
    )


def _before_after(panel, people, params, diagnostics) -> AttendanceResult:
    panel = _with_treated_post(panel[panel["treated"] == 1])
    clients = panel["patient_id"].nunique()
    if clients < params.disclosure.min_n_summary:
        raise InsufficientData(
            "Too few clients have GP appointment data inside the observation window to "
            "summarise attendance safely."
        )
    change = _paired_change(panel, OUTCOME, params.conf_level)
    change["term"] = "before_after_clients"
    change["scale"] = "appointments per person-month"
    reason = (
        "The comparison group is switched off in this scheme's parameters"
        if not params.comparison.enabled
        else "No comparison pool was supplied"
    )
    diagnostics.append(
        f"{reason}, so this is a plain before/after comparison. People are usually referred "
        "when their attendance is at a peak, and attendance falls back afterwards whether "
        "or not social prescribing helps (regression to the mean). A fall shown here is "
        "therefore likely to overstate any effect of the scheme."
    )
    return AttendanceResult(
        design="before_after",
        panel=panel,
        estimates=change,
        matching=None,
        event_study=None,
        n_clients=int(clients),
        n_comparison=0,
        n_clients_unmatched=int((people["treated"] == 1).sum() - clients),
        pre_post=_pre_post_table(panel),
        diagnostics=tuple(diagnostics),
        conf_level=params.conf_level,
    )


def _matched(panel, history, people, params, diagnostics) -> AttendanceResult:
    comparison = params.comparison
    conf_level = params.conf_level
    window = comparison.window_months
    n_clients_total = int((people["treated"] == 1).sum())
    # Only people with months inside the analysis window before and after the index date
    # can contribute to a before/after contrast.
    in_window = panel.groupby("patient_id")["post"].agg(["min", "max"])
    both = in_window.index[(in_window["min"] == 0) & (in_window["max"] == 1)]
    people = people[people["patient_id"].isin(both)]
    n_no_window = n_clients_total - int((people["treated"] == 1).sum())
    if n_no_window:
        diagnostics.append(
            f"{n_no_window} clients were left out because the appointment data do not cover "
            "months both before and after their referral."
        )
    covariate_names = list(comparison.covariates)
    if "pre_attendance" in covariate_names:
        pre = _pre_attendance(history, window)
        people = people.merge(pre, left_on="patient_id", right_index=True, how="left")
        if people[pre.columns].isna().all(axis=None):
            covariate_names.remove("pre_attendance")
            diagnostics.append(
                f"Prior attendance was not used for matching: the appointment data do not go "
                f"back beyond the {window} months before referral that the comparison itself "
                "uses. Matching on those same months would build regression to the mean into "
                "the comparison group (comparison patients picked for a chance high count "
                "fall back afterwards) and bias the estimate (Daw & Hatfield 2018, Health Serv "
                "Res 53:4138)."
            )
    candidates, covariates = _matching_columns(people, covariate_names)
    candidates, _ = _matching_columns(candidates, comparison.exact)
    n_clients_candidates = int((candidates["treated"] == 1).sum())
    if n_clients_candidates < params.disclosure.min_n_summary:
        raise InsufficientData(
            "Too few clients have GP appointment data before and after referral to compare "
            "their attendance with a matched group."
        )
    matching = match_nearest(
        candidates.reset_index(drop=True),
        treatment="treated",
        covariates=covariates,
        ratio=comparison.ratio,
        caliper=comparison.caliper,
        replace=False,
        exact=list(comparison.exact) or None,
    )
    diagnostics.extend(matching.diagnostics)
    matched = matching.matched[["patient_id", "treated", "subclass", "weights"]]
    if not np.allclose(matched["weights"], 1.0):
        # The panel estimators take no weights; with unequal numbers of controls per
        # client the comparison group is then not exactly the matched-set average.
        diagnostics.append(
            "Some clients received fewer comparison patients than others; the estimates "
            "weight every matched person equally rather than by matched set."
        )
    analysed = _with_treated_post(panel.merge(matched[["patient_id", "subclass"]], on="patient_id"))
    n_clients = int(matched["treated"].sum())
    n_comparison = int(len(matched) - n_clients)

    did = fit_did_2x2(
        analysed,
        outcome=OUTCOME,
        treated="treated",
        post="post",
        cluster="patient_id",
        conf_level=conf_level,
    )
    did_gp = fit_did_2x2(
        analysed,
        outcome="n_gp",
        treated="treated",
        post="post",
        cluster="patient_id",
        conf_level=conf_level,
    )
    poisson = fit_poisson(
        f"{OUTCOME} ~ treated_post",
        analysed,
        absorb=["patient_id", "months_since_index"],
        cluster="patient_id",
        conf_level=conf_level,
    )
    diagnostics.extend(poisson.diagnostics)
    twfe = fit_twfe(
        f"{OUTCOME} ~ treated_post",
        analysed,
        unit="patient_id",
        time="calendar_month",
        cluster="patient_id",
        conf_level=conf_level,
    )
    relative = analysed.assign(
        period=analysed["months_since_index"] + window + 1,
        first_period=np.where(analysed["treated"] == 1, window + 1, 0),
    )
    staggered = _fit_staggered(relative, window, params, diagnostics)
    event_study = fit_event_study(
        relative,
        outcome=OUTCOME,
        unit="patient_id",
        time="period",
        first_treated="first_period",
        window=(-window, window - 1),
        # The month before referral is the attendance peak in social prescribing, so the
        # earliest month, far from it, is the clearer baseline for the picture.
        reference=-window,
        cluster="patient_id",
        conf_level=conf_level,
    )
    rows = [
        _row(did.tidy(), did.att_term, "did", "appointments per person-month"),
        _row(did_gp.tidy(), did_gp.att_term, "did_gp", "GP appointments per person-month"),
        _row(twfe.tidy(), "treated_post", "twfe", "appointments per person-month"),
        staggered,
        _row(poisson.tidy(exponentiate=True), "treated_post", "rate_ratio", "rate ratio"),
    ]
    for treated, term in ((1, "before_after_clients"), (0, "before_after_comparison")):
        change = _paired_change(analysed[analysed["treated"] == treated], OUTCOME, conf_level)
        rows.append(change.assign(term=term, scale="appointments per person-month"))
    estimates = pd.concat(rows, ignore_index=True)
    return AttendanceResult(
        design="matched_did",
        panel=analysed,
        estimates=estimates,
        matching=matching,
        event_study=event_study,
        n_clients=n_clients,
        n_comparison=n_comparison,
        n_clients_unmatched=n_clients_total - n_clients,
        pre_post=_pre_post_table(analysed),
        diagnostics=tuple(diagnostics),
        conf_level=conf_level,
    )


def _fit_staggered(relative, window, params, diagnostics) -> pd.DataFrame:
    """Callaway & Sant'Anna on people observed for the whole window, or a NaN row.

    Clients are aligned at their own referral month and compared with never-referred
    matched patients aligned at their index month. The months of pre-referral rise
    (``params.comparison.anticipation_months``) are treated as anticipation, so the
    baseline is the month before them rather than the referral peak.
    """
    months = relative.groupby("patient_id")["period"].nunique()
    complete = months.index[months == 2 * window]
    n_complete = relative.loc[
        relative["patient_id"].isin(complete) & (relative["treated"] == 1), "patient_id"
    ].nunique()
    if n_complete < params.disclosure.min_n_summary:
        diagnostics.append(
            "The Callaway & Sant'Anna estimate was not computed: it needs clients observed "
            f"for all {2 * window} months around referral, and only {n_complete} are."
        )
        row = make_tidy(["staggered"], [np.nan], [np.nan], conf_level=params.conf_level)
    else:
        fit = fit_staggered_did(
            relative[relative["patient_id"].isin(complete)],
            outcome=OUTCOME,
            unit="patient_id",
            time="period",
            first_treated="first_period",
            anticipation=params.comparison.anticipation_months,
            conf_level=params.conf_level,
        ).aggregate("simple")
        row = fit.tidy()
    row = row[list(TIDY_COLUMNS)].iloc[[0]].copy()
    row["term"] = "staggered"
    row["scale"] = "appointments per person-month"
    return row


def _safe_count(n: int, params) -> float:
    """A count as published: rounded, or NaN when it is 1 to the threshold."""
    return float(disclose_count([n], params.disclosure.rule()).astype("Float64").iloc[0])


def _count_words(n: int, params) -> str:
    """A count for a sentence, disclosure-controlled."""
    safe = _safe_count(n, params)
    return (
        f"fewer than {params.disclosure.threshold + 1}" if np.isnan(safe) else f"about {safe:,.0f}"
    )


def _row(tidy: pd.DataFrame, term: str, name: str, scale: str) -> pd.DataFrame:
    row = tidy.loc[tidy["term"] == term, list(TIDY_COLUMNS)].copy()
    if len(row) != 1:
        raise ValueError(f"expected one '{term}' row in the fitted model, got {len(row)}")
    row["term"] = name
    row["scale"] = scale
    return row


# --- report section ---------------------------------------------------------------------------

PER_1000_PER_YEAR = 12 * 1000
SECTION_TITLE = "GP attendance"
METHOD_LABELS = {
    "did": "Difference-in-differences against the matched comparison group (primary)",
    "did_gp": "Difference-in-differences, GP appointments only",
    "twfe": "Two-way fixed effects (person and calendar month)",
    "staggered": (
        "Callaway & Sant'Anna (2021), months since index, baseline before the "
        "pre-referral rise (anticipation months from params)"
    ),
    "before_after_clients": "Clients before and after referral (no comparison)",
    "before_after_comparison": "Comparison patients before and after their index date",
}


def attendance_section(scheme, *, params, result: AttendanceResult | None = None) -> Section:
    """Build the report section on whether GP-practice attendance changed after referral.

    Parameters
    ----------
    scheme
        :class:`spimpact.io.SchemeData`.
    params
        :class:`spimpact.params.SchemeParams`.
    result
        A result of :func:`analyse_attendance` for this scheme, to avoid refitting.

    Returns
    -------
    Section
        Text for commissioners, disclosure-controlled tables (``attendance_before_after``,
        ``attendance_estimates``, and for the matched design
        ``attendance_matching_sample`` and ``attendance_matching_balance``), the
        event-study figure and love plot, and ``headline`` rows (outcome level
        "system"): the change in appointments per 1,000 clients per year, the %
        change and the cost consequence.

    Raises
    ------
    InsufficientData
        Without GP appointment data or with too few people.

    Notes
    -----
    Estimators as :func:`analyse_attendance`. The cost consequence multiplies GP
    appointments averted (difference-in-differences on GP appointments only) by
    ``params.costs.gp_appointment_gbp``; nurse and other clinical appointments are
    not costed. The minimum detectable effect is ``(z_(1-a/2) + z_0.8) x SE`` of the
    primary estimate (Bloom 1995, Evaluation Review 19:547), i.e. 80% power.
    """
    result = analyse_attendance(scheme, params=params) if result is None else result
    rule = params.disclosure.rule()
    figures = []
    tables = [_before_after_table(result, rule)]
    if result.design == "before_after":
        text = _before_after_text(result, params)
        headline = _before_after_headline(result, params, rule)
        tables.append(_estimates_table(result))
        figure = _figure(result.plot())
        figures.append(figure)
    else:
        text = _matched_text(result, params)
        headline = _matched_headline(result, params, rule)
        tables += [
            _estimates_table(result),
            _matching_sample_table(result, rule),
            _balance_table(result),
        ]
        figures += [_figure(result.plot()), _figure(result.matching.plot())]
    return Section(
        title=SECTION_TITLE,
        text=tuple(text),
        tables=tuple(tables),
        figures=tuple(figures),
        headline=headline,
        notes=result.diagnostics,
    )


def _figure(ax):
    figure = ax.figure
    figure.tight_layout()
    return figure


def _estimate(result: AttendanceResult, term: str) -> pd.Series:
    return result.estimates.set_index("term").loc[term]


def _per_1000(row: pd.Series) -> tuple[float, float, float, float]:
    scale = PER_1000_PER_YEAR
    return (
        row["estimate"] * scale,
        row["std_error"] * scale,
        row["conf_low"] * scale,
        row["conf_high"] * scale,
    )


def _format(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}".replace("-", "\u2212")


def _ci(low: float, high: float, digits: int = 0) -> str:
    return f"{_format(low, digits)} to {_format(high, digits)}"


def _before_after_table(result: AttendanceResult, rule) -> Table:
    table = result.pre_post.copy()
    n_people = table["n_people"].to_numpy()
    frame = pd.DataFrame(
        {
            "group": table["group"],
            "period": table["period"],
            "n_people": disclose_count(n_people, rule).to_numpy(),
            "appointments_per_person_month": disclose_summary(
                table["appointments_per_person_month"].round(3), n_people, rule
            ).to_numpy(),
            "gp_appointments_per_person_month": disclose_summary(
                table["gp_appointments_per_person_month"].round(3), n_people, rule
            ).to_numpy(),
        }
    )
    frame["period"] = pd.Categorical(frame["period"], ["before", "after"])
    frame = frame.sort_values(["group", "period"], ascending=[False, True]).reset_index(drop=True)
    frame["period"] = frame["period"].astype(str)
    return Table(
        name="attendance_before_after",
        caption=(
            f"Mean {OUTCOME_LABEL} per person-month in the months before and after referral "
            "(index date for comparison patients). People counts rounded to the nearest 5; "
            "counts of 1-7 suppressed."
        ),
        frame=frame,
    )


def _estimates_table(result: AttendanceResult) -> Table:
    rows = []
    for _, row in result.estimates.iterrows():
        if row["term"] == "rate_ratio":
            rows.append(
                {
                    "method": "Poisson rate ratio (person and month fixed effects)",
                    "scale": "% change in the appointment rate",
                    "estimate": round(100 * (row["estimate"] - 1), 1),
                    "conf_low": round(100 * (row["conf_low"] - 1), 1),
                    "conf_high": round(100 * (row["conf_high"] - 1), 1),
                    "p_value": row["p_value"],
                }
            )
            continue
        estimate, _, low, high = _per_1000(row)
        rows.append(
            {
                "method": METHOD_LABELS[row["term"]],
                "scale": (
                    "GP appointments per 1,000 clients per year"
                    if row["term"] == "did_gp"
                    else "appointments per 1,000 people per year"
                ),
                "estimate": round(estimate),
                "conf_low": round(low),
                "conf_high": round(high),
                "p_value": row["p_value"],
            }
        )
    frame = pd.DataFrame(rows)
    frame["p_value"] = frame["p_value"].round(4)
    return Table(
        name="attendance_estimates",
        caption=(
            f"Change in {OUTCOME_LABEL} after referral, with {result.conf_level:.0%} "
            "confidence intervals; negative values are fewer appointments."
        ),
        frame=frame,
    )


def _matching_sample_table(result: AttendanceResult, rule) -> Table:
    sizes = result.matching.sample_sizes()
    frame = disclose_table(sizes, ["n_control", "n_treated"], rule).rename(
        columns={"n_control": "n_comparison_patients", "n_treated": "n_clients"}
    )
    return Table(
        name="attendance_matching_sample",
        caption="People available for matching, matched and left unmatched (rounded to 5).",
        frame=frame,
    )


def _balance_table(result: AttendanceResult) -> Table:
    balance = result.matching.balance()
    frame = pd.DataFrame(
        {
            "variable": balance["variable"].replace({"distance": "propensity score"}),
            "std_mean_diff_before": balance["std_mean_diff_before"].round(3),
            "std_mean_diff_after": balance["std_mean_diff_after"].round(3),
            "variance_ratio_after": balance["variance_ratio_after"].round(2),
        }
    )
    return Table(
        name="attendance_matching_balance",
        caption=(
            "Balance of clients and comparison patients before and after matching: "
            "standardised mean differences (client SD as denominator; |SMD| above 0.1 "
            "signals imbalance) and variance ratios (near 1 is good)."
        ),
        frame=frame,
    )


def _minimum_detectable(result: AttendanceResult) -> float:
    alpha = 1 - result.conf_level
    multiplier = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(POWER)
    return float(multiplier * _estimate(result, "did")["std_error"] * PER_1000_PER_YEAR)


def _clients_pre_rate(result: AttendanceResult) -> float:
    table = result.pre_post.set_index(["group", "period"])
    return float(table.loc[("clients", "before"), "appointments_per_person_month"])


def _matched_text(result: AttendanceResult, params) -> list[str]:
    did = _estimate(result, "did")
    estimate, _, low, high = _per_1000(did)
    ratio = _estimate(result, "rate_ratio")
    clients_change = _per_1000(_estimate(result, "before_after_clients"))[0]
    comparison_change = _per_1000(_estimate(result, "before_after_comparison"))[0]
    twfe = _per_1000(_estimate(result, "twfe"))
    staggered = _per_1000(_estimate(result, "staggered"))
    did_gp = _estimate(result, "did_gp")
    cost = params.costs
    gp_change, _, gp_low, gp_high = _per_1000(did_gp)
    unit_cost = cost.gp_appointment_gbp
    level = f"{result.conf_level:.0%}"
    window = params.comparison.window_months
    matching = result.matching
    max_smd = matching.balance()["std_mean_diff_after"].abs().max()
    mde = _minimum_detectable(result)
    pre_rate = _clients_pre_rate(result) * PER_1000_PER_YEAR
    pretrend = result.event_study.pretrend_test
    matched_on = [
        c
        for c in params.comparison.covariates
        if c != "pre_attendance" or any("pre_attendance" in v for v in matching.covariates)
    ]
    text = [
        f"We counted {OUTCOME_LABEL} at the clients' GP practices in the {window} months "
        f"before and the {window} months after referral. Appointments with the social "
        "prescribing link worker are left out: they are the scheme itself, not an outcome. "
        "Did-not-attend and cancelled bookings and administrative slots are not counted.",
        f"Compared with a matched group of patients who were not referred, clients' "
        f"attendance changed by **{_format(estimate)} appointments per 1,000 clients per "
        f"year** ({level} confidence interval {_ci(low, high)}), a change of "
        f"{_format(100 * (ratio['estimate'] - 1), 1)}% ({level} CI "
        f"{_ci(100 * (ratio['conf_low'] - 1), 100 * (ratio['conf_high'] - 1), 1)}%).",
        f"Why a comparison group matters: people are usually referred when they are "
        f"attending a lot, and attendance tends to fall back afterwards whatever happens "
        f"(regression to the mean). Clients' own attendance changed by "
        f"{_format(clients_change)} appointments per 1,000 per year after referral; the "
        f"matched comparison patients' changed by {_format(comparison_change)} over the same "
        "months around their own index date. Only the difference between the two can be "
        "credited to the scheme; a plain before/after figure would also count the change "
        "that happens anyway.",
        f"Other estimators agree or disagree as follows: two-way fixed effects with calendar "
        f"months gives {_format(twfe[0])} ({_ci(twfe[2], twfe[3])}); the Callaway & "
        "Sant'Anna estimator "
        + (
            f"gives {_format(staggered[0])} ({_ci(staggered[2], staggered[3])})"
            if np.isfinite(staggered[0])
            else "could not be computed (too few clients observed for the whole window)"
        )
        + ". They can differ because the two-way "
        "fixed-effects regression mixes clients referred at different times and uses "
        "clients already referred as comparisons for those referred later, which can bias "
        "it when the effect changes with time since referral; Callaway & Sant'Anna "
        "compares each month after referral with a single baseline month "
        f"{params.comparison.anticipation_months + 1} months before referral (before the "
        "usual pre-referral rise), only against never-referred patients, and uses only "
        "people observed for the whole window. The primary estimate averages the whole "
        "year before referral instead.",
        f"Cost consequence: at £{unit_cost:,.0f} per GP appointment "
        f"({cost.source}; {cost.price_year} prices), the change in GP appointments "
        f"({_format(gp_change)} per 1,000 clients per year, {_ci(gp_low, gp_high)}) "
        f"is worth **£{_format(-gp_change * unit_cost)} per 1,000 clients per year** in GP "
        f"time freed ({level} CI £{_format(-gp_high * unit_cost)} to "
        f"£{_format(-gp_low * unit_cost)}; negative means more GP time used). This is a "
        "cost consequence, not a cash saving: freed appointments are used by other patients.",
        f"With about {_format(_safe_count(result.n_clients, params))} matched clients this "
        "analysis can detect (80% "
        f"power, {1 - result.conf_level:.0%} two-sided test) a change of about "
        f"{_format(mde)} appointments per 1,000 clients per year, "
        f"{_format(100 * mde / pre_rate, 0) if pre_rate > 0 else 'an unknown share'}% of "
        "clients' attendance before referral; smaller real effects may go undetected.",
        f"Clients were matched {params.comparison.ratio}:1 to comparison patients on a "
        f"propensity score of {', '.join(c.replace('_', ' ') for c in matched_on)}"
        + (f", exactly on {', '.join(params.comparison.exact)}" if params.comparison.exact else "")
        + f". After matching the largest standardised difference is {max_smd:.2f}"
        + (" (good balance)." if max_smd <= 0.1 else " (above 0.1: some imbalance remains).")
        + (
            f" {_count_words(result.n_clients_unmatched, params).capitalize()} clients could "
            "not be matched "
            "or lacked appointment data before and after referral and are not in the estimate."
            if result.n_clients_unmatched
            else ""
        ),
        "Before referral the two groups' attendance moved "
        + (
            "in parallel (test of differing pre-referral trends: "
            if pretrend.p_value >= 0.05
            else "differently (test of differing pre-referral trends: "
        )
        + f"p = {pretrend.p_value:.3f}); the figure shows the month-by-month difference "
        f"between the groups, relative to the earliest month ({-window} months before "
        "referral). "
        + (
            ""
            if pretrend.p_value >= 0.05
            else "Differences around the referral month are expected when clients are "
            "referred at a peak; treat the estimate with more caution."
        ),
    ]
    return text


def _before_after_text(result: AttendanceResult, params) -> list[str]:
    change = _estimate(result, "before_after_clients")
    estimate, _, low, high = _per_1000(change)
    level = f"{result.conf_level:.0%}"
    window = params.comparison.window_months
    return [
        "**Warning: no comparison group.** "
        + " ".join(d for d in result.diagnostics if "regression to the mean" in d),
        f"We counted {OUTCOME_LABEL} in the {window} months before and after referral "
        "(link-worker appointments, did-not-attend and cancelled bookings left out). "
        f"Clients' attendance changed by {_format(estimate)} appointments per 1,000 clients "
        f"per year ({level} CI {_ci(low, high)}). This is not an estimate of the scheme's "
        "effect. To estimate the effect, supply a comparison pool of similar patients "
        "who were not referred.",
    ]


def _headline_row(outcome, measure, estimate, std_error, low, high, n, method) -> dict:
    return {
        "outcome_level": "system",
        "outcome": outcome,
        "measure": measure,
        "estimate": estimate,
        "std_error": std_error,
        "conf_low": low,
        "conf_high": high,
        "n": n,
        "method": method,
    }


def _matched_headline(result: AttendanceResult, params, rule) -> pd.DataFrame:
    n = disclose_count([result.n_clients], rule).iloc[0]
    method = (
        f"Difference-in-differences, {params.comparison.ratio}:1 propensity-matched "
        "comparison group, SE clustered by person"
    )
    estimate, std_error, low, high = _per_1000(_estimate(result, "did"))
    ratio = _estimate(result, "rate_ratio")
    gp = _per_1000(_estimate(result, "did_gp"))
    cost = params.costs.gp_appointment_gbp
    rows = [
        _headline_row(
            "Change in GP-practice clinical appointments per 1,000 clients per year",
            "gp_appointments_per_1000_per_year",
            estimate,
            std_error,
            low,
            high,
            n,
            method,
        ),
        _headline_row(
            "% change in GP-practice clinical appointment rate",
            "gp_appointments_pct_change",
            100 * (ratio["estimate"] - 1),
            100 * ratio["std_error"],
            100 * (ratio["conf_low"] - 1),
            100 * (ratio["conf_high"] - 1),
            n,
            "Poisson regression with person and month fixed effects, matched comparison",
        ),
        _headline_row(
            f"Cost of GP appointments averted per 1,000 clients per year "
            f"(£, {params.costs.price_year} prices)",
            "gp_cost_averted_gbp_per_1000_per_year",
            -gp[0] * cost,
            gp[1] * cost,
            -gp[3] * cost,
            -gp[2] * cost,
            n,
            f"GP appointments averted (difference-in-differences) x £{cost:g} "
            f"({params.costs.source})",
        ),
    ]
    return pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))


def _before_after_headline(result: AttendanceResult, params, rule) -> pd.DataFrame:
    n = disclose_count([result.n_clients], rule).iloc[0]
    estimate, std_error, low, high = _per_1000(_estimate(result, "before_after_clients"))
    row = _headline_row(
        "Change in GP-practice clinical appointments per 1,000 clients per year "
        "(before/after only; not an effect estimate)",
        "gp_appointments_per_1000_per_year_before_after",
        estimate,
        std_error,
        low,
        high,
        n,
        "Before/after, no comparison group: regression to the mean not removed",
    )
    return pd.DataFrame([row], columns=list(HEADLINE_COLUMNS))


# --- effect by group (for the equity section) -------------------------------------------------


def attendance_effect_by_group(
    scheme, *, params, by: str, result: AttendanceResult | None = None
) -> pd.DataFrame:
    """Difference-in-differences effect on GP attendance within each level of a client column.

    Parameters
    ----------
    scheme, params
        As :func:`analyse_attendance`.
    by
        A column of ``scheme.clients`` (e.g. ``imd_quintile``, ``ethnic_group``).
        Comparison patients take the level of the client they are matched to, so
        matched sets stay together.
    result
        A result of :func:`analyse_attendance` for this scheme, to avoid refitting.

    Returns
    -------
    pandas.DataFrame
        One row per level: ``by`` (the column name), ``term`` (the level),
        ``TIDY_COLUMNS`` in appointments per 1,000 clients per year, ``n_clients``
        (raw count: disclosure-control it before publishing); then one row
        ``term = "joint_test_of_difference"`` whose ``statistic`` is the Cochran Q
        chi-squared statistic, ``df`` its degrees of freedom and ``p_value`` the test
        that the effect is the same in every level. Levels with fewer than
        ``params.disclosure.min_n_summary`` clients get no estimate. Without a
        comparison group the rows are before/after changes (``method`` says so).

    Notes
    -----
    Separate 2x2 difference-in-differences fits per level (OLS, SE clustered by
    person) on disjoint people, so the estimates are independent and the
    heterogeneity statistic ``Q = sum w_g (b_g - b_w)^2`` with ``w_g = 1 / se_g^2``
    is chi-squared on ``G - 1`` df under equal effects (Cochran 1954).
    """
    result = analyse_attendance(scheme, params=params) if result is None else result
    if by not in scheme.clients.columns:
        raise ValueError(f"by: '{by}' is not a column of the clients table")
    levels = scheme.clients.set_index("client_id")[by]
    panel = result.panel.copy()
    if result.design == "matched_did":
        client_level = (
            panel.loc[panel["treated"] == 1, ["subclass", "patient_id"]]
            .drop_duplicates("subclass")
            .assign(level=lambda d: d["patient_id"].map(levels))
            .set_index("subclass")["level"]
        )
        panel["level"] = panel["subclass"].map(client_level)
        method = "difference-in-differences against the matched comparison group"
    else:
        panel["level"] = panel["patient_id"].map(levels)
        method = "before/after only (no comparison group; not an effect estimate)"
    rows = []
    for level, cell in panel.dropna(subset=["level"]).groupby("level", sort=True):
        n_clients = int(cell.loc[cell["treated"] == 1, "patient_id"].nunique())
        if n_clients < params.disclosure.min_n_summary:
            tidy = make_tidy([level], [np.nan], [np.nan], conf_level=params.conf_level)
        elif result.design == "matched_did":
            fit = fit_did_2x2(
                cell,
                outcome=OUTCOME,
                treated="treated",
                post="post",
                cluster="patient_id",
                conf_level=params.conf_level,
            )
            tidy = fit.tidy()
            tidy = tidy[tidy["term"] == fit.att_term]
        else:
            tidy = _paired_change(cell, OUTCOME, params.conf_level)
        tidy = tidy[list(TIDY_COLUMNS)].copy()
        tidy["term"] = str(level)
        for column in ("estimate", "std_error", "conf_low", "conf_high"):
            tidy[column] = tidy[column] * PER_1000_PER_YEAR
        tidy["n_clients"] = n_clients
        rows.append(tidy)
    table = pd.concat(rows, ignore_index=True)
    valid = table.dropna(subset=["estimate", "std_error"])
    valid = valid[valid["std_error"] > 0]
    weights = 1 / valid["std_error"] ** 2
    pooled = float(np.sum(weights * valid["estimate"]) / weights.sum()) if len(valid) else np.nan
    q = float(np.sum(weights * (valid["estimate"] - pooled) ** 2))
    df = len(valid) - 1
    joint = {
        "term": "joint_test_of_difference",
        "estimate": np.nan,
        "std_error": np.nan,
        "statistic": q if df > 0 else np.nan,
        "p_value": float(stats.chi2.sf(q, df)) if df > 0 else np.nan,
        "conf_low": np.nan,
        "conf_high": np.nan,
        "n_clients": int(table["n_clients"].sum()),
        "df": df if df > 0 else np.nan,
    }
    table = pd.concat([table, pd.DataFrame([joint])], ignore_index=True)
    table.insert(0, "by", by)
    table["method"] = method
    return table
