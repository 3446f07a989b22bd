"""Use of outcome measures and wellbeing at referral."""

from spimpact.analyses.measures.analysis import (
    MeasureQualityResult,
    WellbeingAtReferralResult,
    analyse_measure_quality,
    analyse_wellbeing_at_referral,
    score_scheme,
)
from spimpact.analyses.measures.section import (
    measure_quality_section,
    wellbeing_at_referral_section,
)

__all__ = [
    "MeasureQualityResult",
    "WellbeingAtReferralResult",
    "analyse_measure_quality",
    "analyse_wellbeing_at_referral",
    "measure_quality_section",
    "score_scheme",
    "wellbeing_at_referral_section",
]
