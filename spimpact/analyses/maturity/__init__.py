"""Data maturity scorecard against the data contract and the SP information standard."""

from spimpact.analyses.maturity.section import MATURITY_COLUMNS, RATINGS, data_maturity_section

__all__ = ["MATURITY_COLUMNS", "RATINGS", "data_maturity_section"]
