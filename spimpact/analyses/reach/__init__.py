"""Reach: who the scheme reaches, against the population it serves, by group and area."""

from spimpact.analyses.reach.analysis import area_section, kpi_spc_section, reach_section

__all__ = ["area_section", "kpi_spc_section", "reach_section"]
