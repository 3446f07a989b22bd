"""What each score means: direction, range, change thresholds, reliability and norms, with sources.

Unknown values are ``None``: a number is only here when a source gives it (SPEC §1 status
tags noted in the source text).
"""

from __future__ import annotations

from dataclasses import dataclass

_SHAH_2018 = (
    "Shah N et al. Health Qual Life Outcomes 2018;16:239, doi:10.1186/s12955-018-1060-2 "
    "(clinical sample, n = 172)"
)
_NG_FAT_2017 = (
    "Ng Fat L et al. Qual Life Res 2017;26(5):1129-44, doi:10.1007/s11136-016-1454-8 "
    "(Health Survey for England 2010-2013, adults 16+)"
)
_HSE_2016 = (
    "Health Survey for England 2016, adult well-being report (read via a mirror of the official "
    "PDF: secondary)"
)
_ONS_2023 = (
    "ONS, Personal well-being in the UK: April 2022 to March 2023 (UK means; life satisfaction "
    "and worthwhile confirmed on the ONS page, happiness and anxiety from a report of the same "
    "bulletin; latest release found)"
)
_WHO5_SHEET = (
    "WHO-5 scoring sheet (Psychiatric Research Unit, Hillerød): 'a 10% difference indicates a "
    "significant change'"
)
_WHO5_RETEST = (
    "Test-retest reliability of the Danish WHO-5 in outpatients with epilepsy, Health Qual Life "
    "Outcomes 2018, doi:10.1186/s12955-018-1001-0: ICC 0.81 (median 22 days)"
)


@dataclass(frozen=True)
class Norm:
    """A population reference value for a score."""

    group: str
    mean: float
    sd: float | None
    source: str


@dataclass(frozen=True)
class ScoreInfo:
    """Everything spimpact knows about one score (see the module docstring on unknowns).

    ``meaningful_change`` is the smallest change counted as meaningful and
    ``reliable_change`` the change beyond measurement error at 95% (1.96 × √2 × SEM);
    ``sem`` is a published standard error of measurement and ``test_retest`` a published
    test–retest reliability, used for the Jacobson–Truax reliable change index.
    """

    name: str
    label: str
    measure: str
    higher_is_better: bool
    minimum: float
    maximum: float
    meaningful_change: float | None = None
    reliable_change: float | None = None
    change_source: str | None = None
    sem: float | None = None
    sem_source: str | None = None
    test_retest: float | None = None
    test_retest_source: str | None = None
    norms: tuple[Norm, ...] = ()
    ordinal: bool = False


SCORES: dict[str, ScoreInfo] = {
    info.name: info
    for info in (
        ScoreInfo(
            "swemwbs_metric",
            "SWEMWBS (metric score)",
            "swemwbs",
            True,
            7,
            35,
            meaningful_change=1.03,
            reliable_change=2.87,
            change_source=_SHAH_2018 + ": 1 SEM = 1.03 and 2.77 SEM = 2.87 metric points",
            sem=1.03,
            sem_source=_SHAH_2018,
            test_retest=0.70,
            test_retest_source=(
                "Sun Y et al. Qual Life Res 2019;28(10):2813-20: Chinese SWEMWBS, Hong Kong "
                "general population, two-week ICC 0.70 (95% CI 0.55-0.80); no English-sample "
                "value was found"
            ),
            norms=(
                Norm("men", 23.7, None, _NG_FAT_2017),
                Norm("women", 23.2, None, _NG_FAT_2017),
            ),
        ),
        ScoreInfo("swemwbs_raw", "SWEMWBS (raw total)", "swemwbs", True, 7, 35),
        ScoreInfo(
            "wemwbs_total",
            "WEMWBS total",
            "wemwbs",
            True,
            14,
            70,
            test_retest=0.83,
            test_retest_source=(
                "Tennant R et al. Health Qual Life Outcomes 2007;5:63, doi:10.1186/1477-7525-5-63: "
                "one-week test-retest ICC 0.83"
            ),
            norms=(
                Norm("men", 50.1, None, _HSE_2016),
                Norm("women", 49.6, None, _HSE_2016),
                Norm(
                    "Scotland adults",
                    49.4,
                    8.96,
                    "Scottish Health Survey 2018, Table 1.2 (gov.scot)",
                ),
            ),
        ),
        ScoreInfo(
            "ons4_life_satisfaction",
            "ONS4 life satisfaction",
            "ons4",
            True,
            0,
            10,
            norms=(Norm("UK adults", 7.45, None, _ONS_2023),),
        ),
        ScoreInfo(
            "ons4_worthwhile",
            "ONS4 worthwhile",
            "ons4",
            True,
            0,
            10,
            norms=(Norm("UK adults", 7.73, None, _ONS_2023),),
        ),
        ScoreInfo(
            "ons4_happiness",
            "ONS4 happiness",
            "ons4",
            True,
            0,
            10,
            norms=(Norm("UK adults", 7.39, None, _ONS_2023),),
        ),
        ScoreInfo(
            "ons4_anxiety",
            "ONS4 anxiety",
            "ons4",
            False,
            0,
            10,
            norms=(Norm("UK adults", 3.23, None, _ONS_2023),),
        ),
        ScoreInfo(
            "who5_raw",
            "WHO-5 (raw score)",
            "who5",
            True,
            0,
            25,
            meaningful_change=2.5,
            change_source=_WHO5_SHEET + " (10 percentage points = 2.5 raw points)",
            test_retest=0.81,
            test_retest_source=_WHO5_RETEST,
        ),
        ScoreInfo(
            "who5_pct",
            "WHO-5 (percentage score)",
            "who5",
            True,
            0,
            100,
            meaningful_change=10,
            change_source=_WHO5_SHEET,
            test_retest=0.81,
            test_retest_source=_WHO5_RETEST,
        ),
        # The lowest index of the supported value sets is the 3L UK minimum, -0.594 (33333).
        ScoreInfo("eq5d5l_index", "EQ-5D index", "eq5d5l", True, -0.594, 1),
        ScoreInfo("eq5d_vas", "EQ-VAS", "eq5d5l", True, 0, 100),
        ScoreInfo("mycaw_concern_1", "MYCaW concern 1", "mycaw", False, 0, 6),
        ScoreInfo("mycaw_concern_2", "MYCaW concern 2", "mycaw", False, 0, 6),
        ScoreInfo("mycaw_wellbeing", "MYCaW wellbeing", "mycaw", False, 0, 6),
        ScoreInfo("ucla3_total", "UCLA 3-item loneliness", "ucla3", False, 3, 9),
        # Coded 1 often/always ... 5 never, so a higher code is less lonely.
        ScoreInfo(
            "ons_loneliness",
            "ONS loneliness (how often lonely)",
            "ons_loneliness",
            True,
            1,
            5,
            ordinal=True,
        ),
    )
}


# The score that stands for each instrument wherever one number per measure is needed
# (headline change, attrition, equity, the qualitative joint display).
MAIN_SCORE: dict[str, str] = {
    "swemwbs": "swemwbs_metric",
    "wemwbs": "wemwbs_total",
    "ons4": "ons4_life_satisfaction",
    "who5": "who5_pct",
    "eq5d5l": "eq5d5l_index",
    "mycaw": "mycaw_wellbeing",
    "ucla3": "ucla3_total",
    "ons_loneliness": "ons_loneliness",
}
