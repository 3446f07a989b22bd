"""Attrition: who drops out and when, and change estimates adjusted for it."""

from spimpact.analyses.attrition.analysis import attrition_section

__all__ = ["attrition_section"]
