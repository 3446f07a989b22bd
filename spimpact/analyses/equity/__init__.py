"""Who benefits: change in wellbeing and GP attendance by group."""

from spimpact.analyses.equity.analysis import benefit_by_group_section, fit_change_by_group

__all__ = ["benefit_by_group_section", "fit_change_by_group"]
