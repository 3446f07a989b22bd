"""Use of outcome measures and wellbeing at referral."""

from spimpact.analyses.measures.analysis import score_scheme
from spimpact.analyses.measures.section import (
    measure_quality_section,
    wellbeing_at_referral_section,
)

__all__ = ["measure_quality_section", "score_scheme", "wellbeing_at_referral_section"]
