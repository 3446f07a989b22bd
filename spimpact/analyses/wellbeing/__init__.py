"""Wellbeing change: mixed-model change from baseline, paired change, for whom."""

from spimpact.analyses.wellbeing.analysis import WellbeingResult, analyse_wellbeing
from spimpact.analyses.wellbeing.section import wellbeing_section

__all__ = ["WellbeingResult", "analyse_wellbeing", "wellbeing_section"]
