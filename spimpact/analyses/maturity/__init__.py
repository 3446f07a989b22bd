"""Data maturity scorecard against the data contract and the SP information standard."""

from spimpact.analyses.maturity.analysis import (
    MATURITY_COLUMNS,
    RATINGS,
    MaturityResult,
    analyse_maturity,
)
from spimpact.analyses.maturity.section import data_maturity_section

__all__ = [
    "MATURITY_COLUMNS",
    "RATINGS",
    "MaturityResult",
    "analyse_maturity",
    "data_maturity_section",
]
