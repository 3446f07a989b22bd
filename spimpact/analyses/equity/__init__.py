"""Who benefits: change in wellbeing and GP attendance by group.

``analysis`` estimates the change per group with a joint test of difference;
``section`` turns the estimates into the report section.
"""

from spimpact.analyses.equity.analysis import (
    GroupChangeResult,
    attendance_effect_by_group,
    fit_change_by_group,
)
from spimpact.analyses.equity.section import benefit_by_group_section

__all__ = [
    "GroupChangeResult",
    "attendance_effect_by_group",
    "benefit_by_group_section",
    "fit_change_by_group",
]
