"""GP attendance before and after referral, against a matched comparison group.

``panel`` builds the person x month panel (DuckDB, ``panel.sql``); ``cohort`` the
people compared and their matching columns; ``analysis`` fits the estimators into an
:class:`AttendanceResult`; ``section`` turns that result into the report section.
"""

from spimpact.analyses.attendance.analysis import AttendanceResult, analyse_attendance
from spimpact.analyses.attendance.panel import PANEL_COLUMNS, build_panel, panel_query
from spimpact.analyses.attendance.section import attendance_section

__all__ = [
    "PANEL_COLUMNS",
    "AttendanceResult",
    "analyse_attendance",
    "attendance_section",
    "build_panel",
    "panel_query",
]
