"""Reach: who the scheme reaches, against the population it serves, by group and area."""

from spimpact.analyses.reach.analysis import ReachResult, analyse_reach
from spimpact.analyses.reach.area_section import area_section
from spimpact.analyses.reach.areas import AreaResult, analyse_areas
from spimpact.analyses.reach.kpi_section import kpi_spc_section
from spimpact.analyses.reach.kpis import KpiResult, analyse_kpis
from spimpact.analyses.reach.section import reach_section

__all__ = [
    "AreaResult",
    "KpiResult",
    "ReachResult",
    "analyse_areas",
    "analyse_kpis",
    "analyse_reach",
    "area_section",
    "kpi_spc_section",
    "reach_section",
]
