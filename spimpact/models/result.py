"""The one result base every estimator returns: tidy, summary, plot, HTML.

A fitted result is a frozen dataclass that derives from :class:`EstimatorResult`
and implements ``_tidy(conf_level)`` (the broom table at that level) and
``summary()`` (text for people). The base gives every result the same public
surface, after pyfixest's one-table design: ``tidy(conf_level=None)`` is the single
source of truth, and ``coef()``, ``se()`` and ``confint()`` read from it;
``_repr_html_`` shows the summary in Jupyter. Results on a log scale (rate and
hazard ratios) derive from :class:`ExponentiableResult`, whose ``tidy`` also takes
``exponentiate``.

>>> from dataclasses import dataclass
>>> from spimpact.models.tidy import make_tidy
>>> @dataclass(frozen=True)
... class Slope(EstimatorResult):
...     estimate: float
...     std_error: float
...     conf_level: float = 0.95
...     def _tidy(self, conf_level):
...         return make_tidy(["x"], [self.estimate], [self.std_error], conf_level=conf_level)
...     def summary(self):
...         return f"slope {self.estimate}"
>>> fit = Slope(2.0, 1.0)
>>> float(fit.tidy().conf_low.iloc[0].round(3)), float(fit.tidy(0.5).conf_low.iloc[0].round(3))
(0.04, 1.326)
>>> fit.coef().to_dict()
{'x': 2.0}
"""

from __future__ import annotations

import html
from typing import ClassVar

import pandas as pd

from spimpact.models.tidy import exponentiate_tidy


class EstimatorResult:
    """Base of every estimator's result (subclasses are frozen dataclasses).

    Subclasses hold a ``conf_level`` field (the level the fit was asked for) and
    implement ``_tidy(conf_level)`` and ``summary()``; those with a useful picture
    implement ``plot(ax=None, ...)`` returning the matplotlib Axes.

    A result whose intervals were computed once, at fit time (by a library, or by
    simulation), sets ``intervals_fixed_at_fit = True``: ``tidy`` then refuses any
    other level with a ``ValueError`` instead of returning the fitted one.
    """

    conf_level: float
    intervals_fixed_at_fit: ClassVar[bool] = False

    def tidy(self, conf_level: float | None = None) -> pd.DataFrame:
        """Broom table: ``term, estimate, std_error, statistic, p_value, conf_low, conf_high``.

        Parameters
        ----------
        conf_level
            Level of the intervals; ``None`` uses the level the result was fitted with.
        """
        return self._tidy(self._level(conf_level))

    def _level(self, conf_level: float | None) -> float:
        """The level to report: the fitted one unless another is asked for and possible."""
        level = self.conf_level if conf_level is None else conf_level
        if not 0 < level < 1:
            raise ValueError(f"conf_level must be between 0 and 1, got {level}")
        if self.intervals_fixed_at_fit and level != self.conf_level:
            raise ValueError(
                f"{type(self).__name__} intervals were computed at fit time at conf_level "
                f"{self.conf_level}; fit again with conf_level={level} for that level"
            )
        return level

    def _tidy(self, conf_level: float) -> pd.DataFrame:
        raise NotImplementedError

    def summary(self) -> str:
        """Text for people: the estimates and any diagnostics."""
        raise NotImplementedError

    def _by_term(self, table: pd.DataFrame) -> pd.DataFrame:
        if "term" not in table.columns:
            raise TypeError(
                f"{type(self).__name__}.tidy() has no 'term' column; read its columns "
                f"{list(table.columns)} directly"
            )
        return table.set_index("term")

    def coef(self) -> pd.Series:
        """Estimates by term."""
        return self._by_term(self.tidy())["estimate"]

    def se(self) -> pd.Series:
        """Standard errors by term."""
        return self._by_term(self.tidy())["std_error"]

    def confint(self, conf_level: float | None = None) -> pd.DataFrame:
        """Interval bounds by term (``conf_low``, ``conf_high``)."""
        return self._by_term(self.tidy(conf_level))[["conf_low", "conf_high"]]

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.summary())}</pre>"


class ExponentiableResult(EstimatorResult):
    """A result on a log scale: ``tidy(exponentiate=True)`` gives rate or hazard ratios."""

    def tidy(self, conf_level: float | None = None, *, exponentiate: bool = False) -> pd.DataFrame:
        """Broom table; ``exponentiate=True`` gives ratios with delta-method SEs.

        Parameters
        ----------
        conf_level
            Level of the intervals; ``None`` uses the level the result was fitted with.
        exponentiate
            Exponentiate estimates and interval bounds (the statistic and p-value stay
            those of the log-scale test, as broom does).
        """
        table = super().tidy(conf_level)
        return exponentiate_tidy(table) if exponentiate else table
