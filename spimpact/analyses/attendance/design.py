"""Which months a GP-attendance design compares, and which history it matches on.

A :class:`Design` names the months before the index date that form the baseline, the
months after it that form the post-period, and the earlier months whose attendance
(level and trajectory) the comparison patients are matched on. The primary design and
its alternatives (the sensitivity table, the placebo) are all built from the params'
``comparison`` block by :func:`primary_design`, :func:`placebo_design` and
:func:`sensitivity_designs`, so the report and the simulation study
(``benchmarks/bench_attendance_designs.py``) run exactly the same definitions.

Months are whole months relative to the index date: month 0 starts on the referral
date (the index date for comparison patients), month -1 is the month before it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Parts the matching history is split into (quarters of a year): its trajectory.
HISTORY_BINS = 4
#: Windows of history matched on before the window (2: two years for a 12-month window):
#: the longer the history, the closer matched people's usual attendance.
HISTORY_WINDOWS = 2


@dataclass(frozen=True)
class Design:
    """The months compared and the history matched on.

    Attributes
    ----------
    name
        Short key (``primary``, ``placebo``, ``whole_year`` ...), the term in tables.
    label
        What the design is, in words, for the report.
    baseline, post
        First and last month (inclusive) of the baseline and of the post-period.
    history
        First and last month of the attendance history matched on (in
        ``HISTORY_BINS`` parts), or ``None`` to match on demographics only.
    propensity_matching
        ``False``: no propensity matching; every eligible comparison patient indexed in
        the client's calendar month is a control, with the corrective weights of Wing,
        Freedman & Hollingsworth (2024) per index-month stack.
    match_index_month
        ``False``: comparison patients are not required to share the client's calendar
        index month (only for the simulation study, to show why they should).
    model
        ``"did"`` (difference-in-differences of person means) or ``"poisson"`` (rate
        ratio, person and month fixed effects).
    """

    name: str
    label: str
    baseline: tuple[int, int]
    post: tuple[int, int]
    history: tuple[int, int] | None
    propensity_matching: bool = True
    match_index_month: bool = True
    model: str = "did"

    def __post_init__(self):
        for name in ("baseline", "post"):
            first, last = getattr(self, name)
            if first > last:
                raise ValueError(f"design {self.name!r}: {name} months {first} to {last} are empty")
        if self.baseline[1] >= self.post[0]:
            raise ValueError(f"design {self.name!r}: the baseline must end before the post-period")
        if self.history is not None and self.history[1] >= self.baseline[0]:
            raise ValueError(
                f"design {self.name!r}: the matching history (months {self.history}) must end "
                f"before the baseline starts (month {self.baseline[0]}): matching on the compared "
                "months builds regression to the mean into the comparison group"
            )
        if self.model not in ("did", "poisson"):
            raise ValueError(f"design {self.name!r}: model must be 'did' or 'poisson'")

    @property
    def months(self) -> tuple[int, int]:
        """First and last month any part of the design reads (history included)."""
        first = self.baseline[0] if self.history is None else self.history[0]
        return first, self.post[1]

    def describe_months(self) -> str:
        """The compared months in words, e.g. ``months -12 to -4 against 3 to 11``."""
        return (
            f"months {_month(self.baseline[0])} to {_month(self.baseline[1])} against "
            f"{_month(self.post[0])} to {_month(self.post[1])}"
        )


def _month(month: int) -> str:
    return str(month).replace("-", "\u2212")


def primary_design(comparison) -> Design:
    """The primary design of the params ``comparison`` block.

    Baseline: months ``-window`` to ``-(washout_months_before + 1)``; post-period:
    months ``washout_months_after`` to ``window - 1``; the washout months in between
    (the pre-referral rise, the referral month and the transition after it) are left
    out of both. History matched on: the ``HISTORY_WINDOWS x window`` months before the
    window (months -36 to -13 for a 12-month window), in ``HISTORY_BINS`` parts.
    """
    window = comparison.window_months
    before = comparison.washout_months_before
    after = comparison.washout_months_after
    return Design(
        name="primary",
        label=(
            f"Matched difference-in-differences, months {_month(-before)} to {after - 1} "
            "around referral left out (primary)"
        ),
        baseline=(-window, -before - 1),
        post=(after, window - 1),
        history=(-(HISTORY_WINDOWS + 1) * window, -window - 1),
    )


def placebo_design(comparison) -> Design:
    """The primary design with the index date moved ``placebo_months_earlier`` earlier.

    Every month moves back by the shift; the post-period also stops before the primary
    design's washout begins, so the placebo never reads months that the pre-referral
    rise may touch. A true placebo effect is zero whatever the scheme did.
    """
    shift = comparison.placebo_months_earlier
    primary = primary_design(comparison)
    last_post = min(primary.post[1] - shift, primary.baseline[1])
    return Design(
        name="placebo",
        label=f"Placebo: index date moved {shift} months earlier (should be near zero)",
        baseline=(primary.baseline[0] - shift, primary.baseline[1] - shift),
        post=(primary.post[0] - shift, last_post),
        history=(primary.history[0] - shift, primary.history[1] - shift),
    )


def sensitivity_designs(comparison) -> tuple[Design, ...]:
    """Alternative designs shown beside the primary estimate in the sensitivity table.

    Other pre-period definitions (the whole year before referral, as the earlier
    design did; a baseline before the rise but every month after referral, as R
    ``did``'s ``anticipation``), a washout twice as long, no matching on prior
    attendance, index-month stacks without propensity matching (Wing et al. 2024
    weights) and the Poisson rate ratio over the primary's months.
    """
    window = comparison.window_months
    before = comparison.washout_months_before
    after = comparison.washout_months_after
    primary = primary_design(comparison)
    designs = [
        replace(
            primary,
            name="whole_year",
            label="All months: the whole year before referral against the year after",
            baseline=(-window, -1),
            post=(0, window - 1),
        ),
        replace(
            primary,
            name="anticipation_only",
            label=(
                f"Baseline before the rise (months {_month(-window)} to {_month(-before - 1)}) "
                "against every month after referral"
            ),
            post=(0, window - 1),
        ),
    ]
    wider_before, wider_after = 2 * before, 2 * after
    if -wider_before - 1 >= -window + 1 and wider_after <= window - 2:
        designs.append(
            replace(
                primary,
                name="wider_washout",
                label=(
                    f"Washout twice as long: months {_month(-wider_before)} to {wider_after - 1} "
                    "left out"
                ),
                baseline=(-window, -wider_before - 1),
                post=(wider_after, window - 1),
            )
        )
    designs += [
        replace(
            primary,
            name="no_history_matching",
            label="Primary months, comparison patients not matched on prior attendance",
            history=None,
        ),
        replace(
            primary,
            name="index_month_stacks",
            label=(
                "Primary months, every comparison patient indexed in the client's month "
                "(stacked, Wing et al. 2024 weights; no propensity matching)"
            ),
            history=None,
            propensity_matching=False,
        ),
        replace(
            primary,
            name="poisson",
            label="Primary months and matched sample, Poisson rate ratio",
            model="poisson",
        ),
    ]
    return tuple(designs)


def study_designs(comparison) -> tuple[Design, ...]:
    """Further alternatives weighed in the simulation study only (not in the report).

    The baseline including the rise but the post-period without the transition months,
    and the primary design without matching on the calendar index month.
    """
    window = comparison.window_months
    primary = primary_design(comparison)
    return (
        replace(
            primary,
            name="post_transition_only",
            label="The whole year before referral against the post-period months",
            baseline=(-window, -1),
        ),
        replace(
            primary,
            name="no_calendar_matching",
            label="Primary design without matching on the calendar index month",
            match_index_month=False,
        ),
    )
