"""Attrition: who drops out and when, and change estimates adjusted for it."""

from spimpact.analyses.attrition.analysis import (
    AttritionResult,
    analyse_attrition,
    estimate_change,
    primary_score,
)
from spimpact.analyses.attrition.data import AttritionData, prepare_attrition_data
from spimpact.analyses.attrition.retention import (
    RetentionResult,
    analyse_retention,
    engagement_timeline,
    fit_dropout_model,
)
from spimpact.analyses.attrition.section import (
    HEADLINE_METHODS,
    attrition_section,
    make_table_completer_balance,
    make_table_funnel,
)

__all__ = [
    "HEADLINE_METHODS",
    "AttritionData",
    "AttritionResult",
    "RetentionResult",
    "analyse_attrition",
    "analyse_retention",
    "attrition_section",
    "engagement_timeline",
    "estimate_change",
    "fit_dropout_model",
    "make_table_completer_balance",
    "make_table_funnel",
    "prepare_attrition_data",
    "primary_score",
]
