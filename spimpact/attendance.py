"""Stable import path of the GP-attendance analysis, now in :mod:`spimpact.analyses.attendance`."""

from spimpact.analyses.attendance import analyse_attendance, build_panel

__all__ = ["analyse_attendance", "build_panel"]
