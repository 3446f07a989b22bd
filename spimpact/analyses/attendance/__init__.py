"""GP attendance before and after referral, against a matched comparison group."""

from spimpact.analyses.attendance.analysis import (
    PANEL_COLUMNS,
    AttendanceResult,
    analyse_attendance,
    attendance_effect_by_group,
    attendance_section,
    build_panel,
    panel_query,
)

__all__ = [
    "PANEL_COLUMNS",
    "AttendanceResult",
    "analyse_attendance",
    "attendance_effect_by_group",
    "attendance_section",
    "build_panel",
    "panel_query",
]
