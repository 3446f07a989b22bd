"""The one result base every estimator returns: tidy, summary, plot, HTML.

A fitted result is a frozen dataclass that derives from :class:`EstimatorResult`
and implements ``_tidy(conf_level)`` (the broom table at that level) and
``summary()`` (text for people). The base gives every result the same public
surface, after pyfixest's one-table design: ``tidy(conf_level=None)`` is the single
source of truth, and ``coef()``, ``se()`` and ``confint()`` read from it;
``_repr_html_`` shows the summary in Jupyter.
"""

from __future__ import annotations

import html

import pandas as pd


class EstimatorResult:
    """Base of every estimator's result (subclasses are frozen dataclasses).

    Subclasses hold a ``conf_level`` field (the level the fit was asked for) and
    implement ``_tidy(conf_level)`` and ``summary()``; those with a useful picture
    implement ``plot(ax=None, ...)`` returning the matplotlib Axes.
    """

    conf_level: float

    def tidy(self, conf_level: float | None = None) -> pd.DataFrame:
        """Broom table: ``term, estimate, std_error, statistic, p_value, conf_low, conf_high``.

        Parameters
        ----------
        conf_level
            Level of the intervals; ``None`` uses the level the result was fitted with.
        """
        level = self.conf_level if conf_level is None else conf_level
        if not 0 < level < 1:
            raise ValueError(f"conf_level must be between 0 and 1, got {level}")
        return self._tidy(level)

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        raise NotImplementedError

    def summary(self) -> str:
        """Text for people: the estimates and any diagnostics."""
        raise NotImplementedError

    def coef(self) -> pd.Series:
        """Estimates by term."""
        return self.tidy().set_index("term")["estimate"]

    def se(self) -> pd.Series:
        """Standard errors by term."""
        return self.tidy().set_index("term")["std_error"]

    def confint(self, conf_level: float | None = None) -> pd.DataFrame:
        """Interval bounds by term (``conf_low``, ``conf_high``)."""
        return self.tidy(conf_level).set_index("term")[["conf_low", "conf_high"]]

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.summary())}</pre>"
