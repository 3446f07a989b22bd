"""Simulated GP-attendance scenarios with a known truth, for the simulation study of designs.

Each scenario gives clients and a comparison pool, a person x month panel of attended
clinical appointments (the columns of :func:`spimpact.analyses.attendance.build_panel`)
and the true average effect on clients over the months the design compares. The
scenarios differ in what the issue of GP-attendance designs is about: a transient rise
in attendance around referral that only clients have (before referral, around month 0,
or in both groups), a true effect or none, and staggered calendar timing with a secular
trend. ``benchmarks/bench_attendance_designs.py`` runs the study; the slow tests in
``tests/analyses/attendance`` run a smaller version of it.

Months are whole months relative to the index date (month 0 starts on it), as in the
panel; calendar months are counted from January 2023.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spimpact.synthetic.attendance_shapes import PEAK_SHAPES, effect_by_month, peak_profile

#: Months of history simulated before the index date (the placebo needs three years).
HISTORY_MONTHS = 36
#: Months simulated from the index date on (months 0 to 11).
FOLLOW_UP_MONTHS = 12
#: Months of the truth's average: after the transition months, to the end of the window.
TRUTH_POST_MONTHS = (3, 11)
#: Calendar month (0 = January 2023) of the last month the extract covers (June 2025).
LAST_OBSERVED_CALENDAR_MONTH = 29
#: Client index months run over 2023-2024, more of them later (a growing scheme).
INDEX_CALENDAR_MONTHS = 24


@dataclass(frozen=True)
class AttendanceScenario:
    """One data-generating process of the simulation study.

    Attributes
    ----------
    name, description
        Label and a sentence for the study's table.
    rate_ratio
        True effect: attendance multiplied by ``rate_ratio`` from month 3 (half of it in
        months 1 and 2); 1 means no effect.
    client_peak, comparison_peak
        Shape of the transient rise (a key of
        :data:`~spimpact.synthetic.attendance_shapes.PEAK_SHAPES`) in clients and in
        comparison patients around their own index date.
    secular_trend
        A non-linear rise of attendance over calendar time, with comparison index
        dates spread evenly over the period while referrals grow (so calendar timing
        differs between the groups unless the design aligns it).
    n_practices
        GP practices (``None``: practices not recorded).
    n_clients, pool_ratio
        Clients, and comparison pool patients per client.
    """

    name: str
    description: str
    rate_ratio: float = 1.0
    client_peak: str = "none"
    comparison_peak: str = "none"
    secular_trend: bool = False
    n_practices: int | None = 12
    n_clients: int = 1000
    pool_ratio: int = 3

    def __post_init__(self):
        for shape in (self.client_peak, self.comparison_peak):
            if shape not in PEAK_SHAPES:
                raise ValueError(f"unknown peak shape {shape!r}; choose from {sorted(PEAK_SHAPES)}")


@dataclass(frozen=True)
class ScenarioData:
    """One simulated data set: people, their monthly panel and the truth.

    Attributes
    ----------
    people
        One row per person: ``patient_id, treated, index_date, index_month, age, sex,
        imd_decile, ethnic_group, practice_code``.
    panel
        Person x month panel (``PANEL_COLUMNS`` of the attendance panel), months
        ``-HISTORY_MONTHS`` to ``FOLLOW_UP_MONTHS - 1`` where observed.
    truth
        ``att`` and ``rate_ratio`` of :meth:`true_effect` over ``TRUTH_POST_MONTHS``.
    """

    people: pd.DataFrame
    panel: pd.DataFrame
    truth: dict
    client_ids: np.ndarray = field(repr=False)
    months: np.ndarray = field(repr=False)
    rate: np.ndarray = field(repr=False)
    untreated_rate: np.ndarray = field(repr=False)
    observed: np.ndarray = field(repr=False)

    def true_effect(self, post: tuple[int, int], clients=None) -> dict:
        """The true average effect on clients over the observed months ``post``.

        ``att``: mean over clients (with a month observed in the year before the index
        date and one in ``post``; all of them, or those in ``clients``) of their mean
        effect per observed month of ``post``, in appointments per person-month;
        ``rate_ratio``: their expected appointments with the effect over those without
        it, summed over the same person-months.
        """
        in_post = (self.months >= post[0]) & (self.months <= post[1])
        in_baseline = (self.months >= -12) & (self.months < 0)
        seen = self.observed & in_post[None, :]
        eligible = seen.any(axis=1) & (self.observed & in_baseline[None, :]).any(axis=1)
        if clients is not None:
            eligible &= pd.Index(self.client_ids).isin(pd.Index(clients))
        if not eligible.any():
            return {"att": float("nan"), "rate_ratio": float("nan"), "n_clients": 0}
        difference = np.where(seen, self.rate - self.untreated_rate, 0.0)[eligible]
        per_client = difference.sum(axis=1) / seen[eligible].sum(axis=1)
        mask = seen[eligible]
        ratio = self.rate[eligible][mask].sum() / self.untreated_rate[eligible][mask].sum()
        return {
            "att": float(per_client.mean()),
            "rate_ratio": float(ratio),
            "n_clients": int(eligible.sum()),
        }


def _index_months(n: int, rng, *, even: bool) -> np.ndarray:
    months = np.arange(INDEX_CALENDAR_MONTHS)
    weights = np.ones(INDEX_CALENDAR_MONTHS) if even else 1 + 1.5 * months / months[-1]
    return rng.choice(months, size=n, p=weights / weights.sum())


def calendar_level(calendar_month: np.ndarray, *, secular_trend: bool) -> np.ndarray:
    """Attendance level by calendar month: a winter peak, and optionally a secular rise."""
    month_of_year = np.mod(calendar_month, 12)
    level = 1 + 0.08 * np.cos(2 * np.pi * month_of_year / 12)
    if secular_trend:
        # a logistic rise of about 17% centred on mid-2023 (GP appointments in England
        # rose by about that much after 2020): non-linear, so it does not cancel between
        # people indexed at different calendar times
        level = level * (0.92 + 0.16 / (1 + np.exp(-(calendar_month - 6) / 5)))
    return level


def simulate_attendance_scenario(
    scenario: AttendanceScenario, rng: np.random.Generator
) -> ScenarioData:
    """Simulate clients, a comparison pool and their monthly attendance.

    Parameters
    ----------
    scenario
        The data-generating process.
    rng
        Random generator (seeded by the caller).

    Returns
    -------
    ScenarioData

    Notes
    -----
    Expected appointments of person ``i`` in month ``m`` (calendar month ``c``):
    ``base_i x practice_p x level(c) x shock_{p,c} x (1 + size_i x peak(m)) x effect(m)``
    with ``base_i`` gamma distributed and 25% higher in clients (a stable difference
    that the difference-in-differences removes), practice levels and practice x month
    shocks shared by everyone in a practice, a transient peak of person-specific size
    (clients and comparison patients each have their own shape) and the effect only in
    clients. Counts are Poisson. Months after June 2025 are not observed.

    Examples
    --------
    >>> data = simulate_attendance_scenario(
    ...     AttendanceScenario("demo", "demo", n_clients=50), np.random.default_rng(1))
    >>> int(data.people["treated"].sum()), data.truth["att"] == 0.0
    (50, True)
    """
    n_clients = scenario.n_clients
    n = n_clients * (1 + scenario.pool_ratio)
    treated = np.arange(n) < n_clients
    index_month = np.where(
        treated,
        _index_months(n, rng, even=False),
        _index_months(n, rng, even=scenario.secular_trend),
    )
    age = np.clip(np.round(rng.normal(54, 19, size=n) + 4 * treated), 18, 97)
    imd_decile = np.clip(np.ceil(rng.beta(1.3 - 0.2 * treated, 1.8, size=n) * 10), 1, 10)
    sex = rng.choice(["female", "male"], size=n, p=[0.6, 0.4])
    ethnic_group = rng.choice(
        ["White", "Asian", "Black", "Mixed", "Other"], size=n, p=[0.75, 0.1, 0.07, 0.04, 0.04]
    )
    if scenario.n_practices is None:
        practice = np.zeros(n, dtype=int)
        practice_code = np.full(n, None, dtype=object)
    else:
        # unequal practice sizes, as in a real scheme
        sizes = rng.gamma(2.0, 1.0, size=scenario.n_practices)
        practice = rng.choice(scenario.n_practices, size=n, p=sizes / sizes.sum())
        practice_code = np.array([f"Y{90000 + p:05d}" for p in practice], dtype=object)
    n_levels = 1 if scenario.n_practices is None else scenario.n_practices
    practice_level = np.exp(rng.normal(0, 0.15, size=n_levels))

    months = np.arange(-HISTORY_MONTHS, FOLLOW_UP_MONTHS)
    calendar = index_month[:, None] + months[None, :]
    base = rng.gamma(3.0, 0.13, size=n) * np.exp(0.006 * (age - 50) - 0.03 * (imd_decile - 5))
    base = base * np.where(treated, 1.25, 1.0) * practice_level[practice]
    first_calendar = -HISTORY_MONTHS
    span = INDEX_CALENDAR_MONTHS + FOLLOW_UP_MONTHS + HISTORY_MONTHS
    shocks = np.exp(rng.normal(0, 0.05, size=(n_levels, span)))
    level = calendar_level(calendar, secular_trend=scenario.secular_trend)
    level = level * shocks[practice[:, None], calendar - first_calendar]
    size = np.where(treated, rng.gamma(2.0, 0.45, size=n), rng.gamma(1.2, 0.35, size=n))
    peak = np.where(
        treated[:, None],
        peak_profile(scenario.client_peak, months)[None, :],
        peak_profile(scenario.comparison_peak, months)[None, :],
    )
    untreated_rate = base[:, None] * level * (1 + size[:, None] * peak)
    effect = effect_by_month(scenario.rate_ratio, months)
    rate = untreated_rate * np.where(treated[:, None], effect[None, :], 1.0)
    observed = calendar <= LAST_OBSERVED_CALENDAR_MONTH
    counts = rng.poisson(rate)

    ids = np.array([f"{'C' if t else 'P'}{i:06d}" for i, t in enumerate(treated)], dtype=object)
    index_dates = pd.DatetimeIndex(
        (np.datetime64("2023-01", "M") + index_month.astype("timedelta64[M]")).astype(
            "datetime64[ns]"
        )
    )
    people = pd.DataFrame(
        {
            "patient_id": ids,
            "treated": treated.astype(int),
            "index_date": index_dates,
            "index_month": index_dates.strftime("%Y-%m"),
            "age": age.astype(int),
            "sex": sex,
            "imd_decile": imd_decile.astype(int),
            "ethnic_group": ethnic_group,
            "practice_code": practice_code,
        }
    )
    person, month_position = np.nonzero(observed)
    n_clinical = counts[person, month_position]
    n_gp = rng.binomial(n_clinical, 0.6)
    n_face = rng.binomial(n_clinical, 0.65)
    panel = pd.DataFrame(
        {
            "patient_id": ids[person],
            "treated": treated[person].astype("int64"),
            "index_date": index_dates[person],
            "months_since_index": months[month_position].astype("int64"),
            "post": (months[month_position] >= 0).astype("int64"),
            "calendar_month": (2023 * 12 + calendar[person, month_position]).astype("int64"),
            "n_gp": n_gp.astype("int64"),
            "n_clinical": n_clinical.astype("int64"),
            "n_clinical_face_to_face": n_face.astype("int64"),
            "n_clinical_remote": (n_clinical - n_face).astype("int64"),
        }
    )
    data = ScenarioData(
        people=people,
        panel=panel,
        truth={},
        client_ids=ids[treated],
        months=months,
        rate=rate[treated],
        untreated_rate=untreated_rate[treated],
        observed=observed[treated],
    )
    truth = {**data.true_effect(TRUTH_POST_MONTHS), "post_months": TRUTH_POST_MONTHS}
    return dataclasses.replace(data, truth=truth)


#: The simulation study's scenarios (``benchmarks/bench_attendance_designs.py``): no
#: rise, a rise before referral, around referral, in both groups, each with and without
#: an effect; staggered calendar timing with a secular trend; many practices (CR2
#: standard errors); and one rise longer than the default washout (outside the design's
#: assumption, shown to say what then happens).
STUDY_SCENARIOS = (
    AttendanceScenario("no_rise_null", "No rise around referral, no effect"),
    AttendanceScenario("no_rise_effect", "No rise, effect (rate ratio 0.85)", rate_ratio=0.85),
    AttendanceScenario(
        "rise_before_null", "Clients' rise in months -3 to -1, no effect", client_peak="before"
    ),
    AttendanceScenario(
        "rise_before_effect",
        "Clients' rise in months -3 to -1, effect",
        rate_ratio=0.85,
        client_peak="before",
    ),
    AttendanceScenario(
        "rise_around_null", "Clients' rise in months -2 to 2, no effect", client_peak="around_index"
    ),
    AttendanceScenario(
        "rise_around_effect",
        "Clients' rise in months -2 to 2, effect",
        rate_ratio=0.85,
        client_peak="around_index",
    ),
    AttendanceScenario(
        "rise_both_null",
        "Rise in both groups (comparisons' symmetric), no effect",
        client_peak="around_index",
        comparison_peak="symmetric",
    ),
    AttendanceScenario(
        "rise_both_effect",
        "Rise in both groups, effect",
        rate_ratio=0.85,
        client_peak="around_index",
        comparison_peak="symmetric",
    ),
    AttendanceScenario(
        "staggered_trend_null",
        "Staggered referrals, secular trend, comparison index dates spread "
        "evenly; rise around referral; practices not recorded; no effect",
        client_peak="around_index",
        secular_trend=True,
        n_practices=None,
    ),
    AttendanceScenario(
        "staggered_trend_effect",
        "Staggered referrals, secular trend, rise around referral, practices not recorded; effect",
        rate_ratio=0.85,
        client_peak="around_index",
        secular_trend=True,
        n_practices=None,
    ),
    AttendanceScenario(
        "many_practices_effect",
        "48 practices (CR2 standard errors), rise around referral, effect",
        rate_ratio=0.85,
        client_peak="around_index",
        n_practices=48,
        pool_ratio=4,
    ),
    AttendanceScenario(
        "long_rise_effect",
        "Rise in months -6 to 5, longer than the washout (outside the design's assumption), effect",
        rate_ratio=0.85,
        client_peak="long",
    ),
)
