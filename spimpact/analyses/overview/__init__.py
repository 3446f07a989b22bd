"""Scheme overview, data quality and referrals over time."""

from spimpact.analyses.overview.section import (
    data_quality_section,
    overview_section,
    referrals_spc_section,
)

__all__ = ["data_quality_section", "overview_section", "referrals_spc_section"]
