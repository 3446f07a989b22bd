"""Scheme overview, data quality and referrals over time."""

from spimpact.analyses.overview.analysis import (
    DataQualityResult,
    OverviewResult,
    ReferralsResult,
    analyse_data_quality,
    analyse_overview,
    analyse_referrals,
    count_table,
)
from spimpact.analyses.overview.section import (
    data_quality_section,
    overview_section,
    referrals_spc_section,
)

__all__ = [
    "DataQualityResult",
    "OverviewResult",
    "ReferralsResult",
    "analyse_data_quality",
    "analyse_overview",
    "analyse_referrals",
    "count_table",
    "data_quality_section",
    "overview_section",
    "referrals_spc_section",
]
