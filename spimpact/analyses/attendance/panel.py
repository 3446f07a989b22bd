"""The person x month attendance panel: DuckDB registration of the inputs and ``panel.sql``.

Plain SQL on DuckDB (embedded): appointment records and a cohort with index dates in,
one row per person and month around the index date out, counts of attended clinical
appointments in each month (SPEC §2.4).
"""

from __future__ import annotations

import tempfile
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.engine import check_engine, connect, sql_path

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

#: Columns of :func:`build_coded_panel`: ``PANEL_COLUMNS`` without the dates.
CODED_COLUMNS = (
    "patient_id",
    "treated",
    "months_since_index",
    "post",
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


def panel_query(
    *,
    window_months: int,
    observed_from: date,
    observed_until: date,
    months_before: int | None = None,
) -> str:
    """Return the attendance-panel SQL with its window and observation period filled in.

    The query reads tables ``appointments``, ``cohort`` and ``months`` and is plain
    SQL, so it runs on Spark SQL too. Months ``-months_before`` (default
    ``-window_months``) to ``window_months - 1``.
    """
    window_months = _whole_number(window_months, "window_months")
    before = window_months if months_before is None else months_before
    before = _whole_number(before, "months_before")
    return PANEL_SQL.read_text(encoding="utf-8").format(
        first_month=-before,
        last_month=window_months - 1,
        observed_from=f"DATE '{pd.Timestamp(observed_from).date().isoformat()}'",
        observed_until=f"DATE '{pd.Timestamp(observed_until).date().isoformat()}'",
    )


def build_panel(
    appointments: pd.DataFrame | str | Path,
    cohort: pd.DataFrame,
    *,
    window_months: int = 12,
    months_before: int | None = None,
    observed_from: date | str | None = None,
    observed_until: date | str | None = None,
    output: str | Path | None = None,
    memory_limit: str = "4GB",
    threads: int | None = None,
    engine: str = "duckdb",
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
    months_before
        Months of history before the index date when more than ``window_months``
        are needed (matching on prior attendance, the placebo): months
        ``-months_before`` to ``window_months - 1``.
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
    engine
        ``"duckdb"`` (embedded, the default) or ``"spark"``: the same SQL, transpiled by
        :mod:`spimpact.engine`, on the active Spark session or a local one. The panel is
        the same either way; with ``output`` Spark writes a Parquet folder of part files.

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
    before = (
        window_months if months_before is None else _whole_number(months_before, "months_before")
    )
    check_engine(engine)
    if threads is not None:
        threads = _whole_number(threads, "threads")
    with connect(engine, memory_limit=memory_limit, threads=threads) as connection:
        _register_appointments(connection, appointments)
        _register_cohort(connection, cohort)
        months = pd.DataFrame(
            {"months_since_index": np.arange(-before, window_months, dtype="int32")}
        )
        connection.register_frame("months", months)
        if observed_from is None or observed_until is None:
            first, last = connection.fetchone(
                "SELECT MIN(appointment_date), MAX(appointment_date) FROM appointments"
            )
            if first is None or pd.isna(first):
                raise ValueError("appointments: no rows, so the observed period is unknown")
            observed_from = first if observed_from is None else observed_from
            observed_until = (
                pd.Timestamp(last) + pd.Timedelta(days=1)
                if observed_until is None
                else observed_until
            )
        query = panel_query(
            window_months=window_months,
            months_before=before,
            observed_from=observed_from,
            observed_until=observed_until,
        )
        if output is not None:
            return connection.to_parquet(query, Path(output))
        panel = connection.df(f"{query}\nORDER BY patient_id, months_since_index")
    for column in PANEL_COLUMNS[3:]:
        panel[column] = panel[column].astype("int64")
    panel["treated"] = panel["treated"].astype("int64")
    # one unit whichever engine (DuckDB gives microseconds, Spark dates via Arrow nanoseconds)
    panel["index_date"] = pd.to_datetime(panel["index_date"]).astype("datetime64[ns]")
    return panel[list(PANEL_COLUMNS)]


def build_coded_panel(
    appointments: pd.DataFrame | str | Path,
    cohort: pd.DataFrame,
    *,
    window_months: int = 12,
    months_before: int | None = None,
    engine: str = "duckdb",
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`build_panel` in a fraction of the memory, for cohorts of hundreds of thousands.

    Returns ``(panel, ids)``. ``ids`` holds the cohort's ``patient_id`` values sorted;
    the panel's ``patient_id`` is a person's position in ``ids`` (``int32``), so that
    sorting or grouping by it orders people as their ids would, and ``ids[code]`` gives
    the id back. The other ``CODED_COLUMNS`` are narrow integers (``treated`` and
    ``post`` ``int8``, ``months_since_index`` and the counts ``int16``; a count that
    does not fit is an error, never wrapped). Rows and values are those of
    :func:`build_panel`, sorted by person and month. With DuckDB the panel is written to
    a temporary Parquet file and read back coded, so it never exists with one text id per
    row; with Spark it is collected, then coded by DuckDB.
    """
    ids = np.unique(cohort["patient_id"].astype(str).to_numpy(dtype=object))
    options = {"window_months": window_months, "months_before": months_before}
    codes = pd.DataFrame({"patient_id": ids, "code": np.arange(len(ids), dtype="int32")})
    counts = ", ".join(f"CAST(p.{c} AS SMALLINT) AS {c}" for c in CODED_COLUMNS[4:])
    coded = f"""
        SELECT c.code AS patient_id, CAST(p.treated AS TINYINT) AS treated,
               CAST(p.months_since_index AS SMALLINT) AS months_since_index,
               CAST(p.post AS TINYINT) AS post, {counts}
        FROM {{source}} AS p INNER JOIN codes AS c ON CAST(p.patient_id AS VARCHAR) = c.patient_id
        ORDER BY c.code, p.months_since_index
    """
    with tempfile.TemporaryDirectory(prefix="spimpact-panel-") as folder:
        # the sort spills to the folder beyond 1 GB; the frame is the one full copy
        with connect("duckdb", memory_limit="1GB") as connection:
            connection.execute(f"SET temp_directory = '{sql_path(folder)}'")
            connection.register_frame("codes", codes)
            if engine == "duckdb":
                path = build_panel(
                    appointments,
                    cohort,
                    **options,
                    output=Path(folder) / "panel.parquet",
                    memory_limit="1GB",
                )
                source = f"read_parquet('{sql_path(path)}')"
            else:
                connection.register_frame(
                    "panel", build_panel(appointments, cohort, **options, engine=engine)
                )
                source = "panel"
            panel = connection.df_by_batches(coded.format(source=source))
    return panel, ids


def _whole_number(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _register_appointments(connection, appointments) -> None:
    source = "appointments_input"
    if isinstance(appointments, pd.DataFrame):
        missing = [c for c in APPOINTMENT_COLUMNS[:-1] if c not in appointments.columns]
        if missing:
            raise ValueError(f"appointments: missing column(s) {', '.join(missing)}")
        frame = appointments.copy()
        if "slot_category" not in frame.columns:
            frame["slot_category"] = None
        frame["appointment_date"] = pd.to_datetime(frame["appointment_date"], errors="raise")
        frame = frame[list(APPOINTMENT_COLUMNS)]
        connection.register_frame("appointments_input", frame)
    else:
        path = Path(appointments)
        try:
            connection.register_file("appointments_input", path)
        except ValueError as error:
            raise ValueError(f"appointments: {error}") from None
        columns = set(connection.columns("appointments_input"))
        missing = [c for c in APPOINTMENT_COLUMNS[:-1] if c not in columns]
        if missing:
            raise ValueError(f"appointments file {path}: missing column(s) {', '.join(missing)}")
        if "slot_category" not in columns:
            source = "(SELECT *, CAST(NULL AS VARCHAR) AS slot_category FROM appointments_input)"
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
        connection.register_file("cohort_input", Path(cohort))
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
        connection.register_frame("cohort_input", frame)
    connection.execute(
        """
        CREATE TEMP VIEW cohort AS
        SELECT CAST(patient_id AS VARCHAR) AS patient_id,
               CAST(index_date AS DATE) AS index_date,
               CAST(treated AS INTEGER) AS treated
        FROM cohort_input
        """
    )
