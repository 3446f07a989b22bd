"""Explore one scheme in Jupyter: ``spimpact.open_scheme("params/north_shore.yaml")``.

A :class:`Scheme` holds the scheme's validated params and data (``.data``, the
:class:`~spimpact.io.SchemeData`) and fits each analysis the first time it is asked
for, with the same functions and options the report uses (``.wellbeing()``,
``.attendance()``, ``.attrition()``, ``.reach()``, ``.equity()``). Each returns an
:class:`Analysis` with ``tidy()``, ``summary()``, ``plot()`` and ``_repr_html_``.

Two tiers decide what an analysis shows (docs/outputs.md):

* ``tier="published"`` (the default): only what the report itself may show. The HTML
  in Jupyter is the report's disclosure-controlled section; ``summary()`` passes its
  counts through disclosure control; ``tidy()`` gives model estimates (counts in
  ``n`` columns are controlled); ``plot()`` gives the section's figures. The raw
  result (row-level frames, exact counts) is refused.
* ``tier="analyst"``: the explicit switch for work inside the secure environment.
  ``.result`` is the fitted result object itself, every attribute of it is reachable
  from the analysis (``scheme.wellbeing().change``), and the summaries quote exact
  counts. Nothing from this tier may be published; the diagnostics notebooks use it
  and are written to ``outputs/_analyst/``.
"""

from __future__ import annotations

import dataclasses
import html
import tempfile
from pathlib import Path

import pandas as pd

from spimpact.analyses.attrition import analyse_attrition
from spimpact.analyses.equity import fit_change_by_group
from spimpact.analyses.equity.section import GROUPINGS
from spimpact.analyses.measures import score_scheme
from spimpact.analyses.reach import analyse_reach
from spimpact.analyses.wellbeing import analyse_wellbeing
from spimpact.analyses.wellbeing.analysis import ANALYSED_SCORES
from spimpact.io import SchemeData, load_scheme_from_params
from spimpact.params import SchemeParams, load_params
from spimpact.publish.disclosure import SUPPRESSED, disclose_count
from spimpact.publish.section import InsufficientData, Section
from spimpact.report.provenance import build_provenance
from spimpact.report.scheme import SchemeReport, configure_figures
from spimpact.scoring import MAIN_SCORE, ScoredMeasures

TIERS = ("published", "analyst")


class TierError(PermissionError):
    """Asked for something only the analyst tier shows, from the published tier."""


def open_scheme(params_path: str | Path, *, tier: str = "published") -> Scheme:
    """Open a scheme for interactive work: validated params and data, lazy analyses.

    Parameters
    ----------
    params_path
        The scheme's params YAML, e.g. ``"params/north_shore.yaml"``.
    tier
        ``"published"`` (default): everything shown passes disclosure control, as in
        the report. ``"analyst"``: the raw results with exact counts, for use inside
        the secure environment only (never to be published).

    Returns
    -------
    Scheme

    Raises
    ------
    spimpact.params.ParamsError, spimpact.io.DataValidationError
        As ``spimpact run`` would for the same params file and data.
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(TIERS)}; got {tier!r}")
    params_path = Path(params_path)
    params = load_params(params_path)
    return Scheme(params_path, params, load_scheme_from_params(params), tier=tier)


class Scheme:
    """One scheme's params, validated data and analyses (fitted once, when first asked for).

    Attributes
    ----------
    params
        The validated :class:`~spimpact.params.SchemeParams`.
    data
        The validated :class:`~spimpact.io.SchemeData` (row-level: level 3, internal).
    tier
        ``"published"`` or ``"analyst"`` (see :func:`open_scheme`).
    """

    def __init__(self, params_path: Path, params: SchemeParams, data: SchemeData, *, tier: str):
        self.params_path = Path(params_path)
        self.params = params
        self.data = data
        self.tier = tier
        self._report: SchemeReport | None = None
        self._analyses: dict[tuple, Analysis] = {}
        configure_figures()

    def __repr__(self) -> str:
        return f"Scheme({self.params.scheme_id!r}, tier={self.tier!r})"

    def _repr_html_(self) -> str:
        rule = self.params.disclosure.rule()
        counts = self.data.reconciliation.copy()
        if self.tier == "published":
            for column in [c for c in counts.columns if pd.api.types.is_integer_dtype(counts[c])]:
                safe = disclose_count(counts[column].to_numpy(), rule)
                counts[column] = safe.astype(object).where(safe.notna(), SUPPRESSED).to_numpy()
        return (
            f"<h3>{html.escape(self.params.title)}</h3>"
            f"<p>tier: {html.escape(self.tier)}; rows read and kept per table "
            f"{'(disclosure-controlled)' if self.tier == 'published' else '(exact)'}</p>"
            + counts.to_html(index=False)
        )

    @property
    def report(self) -> SchemeReport:
        """The scheme's report sections, built exactly as ``spimpact run`` builds them.

        Full error texts of failed sections go to a temporary folder, not to ``outputs/``.
        """
        if self._report is None:
            output_dir = Path(tempfile.mkdtemp(prefix="spimpact-")) / self.params.scheme_id
            self._report = SchemeReport(
                params=self.params,
                params_path=self.params_path,
                scheme=self.data,
                scored=score_scheme(self.data, self.params),
                output_dir=output_dir,
                provenance=build_provenance(self.params_path, self.params),
            )
        return self._report

    @property
    def scored(self) -> ScoredMeasures:
        """Every measure scored as the report scores it."""
        return self.report.scored

    def section(self, name: str) -> Section:
        """The report's disclosure-controlled section ``name`` (a key of ``SECTIONS``)."""
        return self.report.section(name)

    def _analysis(self, key: tuple, section: str, fit) -> Analysis:
        if key not in self._analyses:
            self._analyses[key] = Analysis(key[0], fit(), scheme=self, section_name=section)
        return self._analyses[key]

    def wellbeing(self, score: str | None = None) -> Analysis:
        """Change in one wellbeing score (default: the primary measure's main score).

        The ``WellbeingResult`` of ``analyse_wellbeing``, as the report's wellbeing
        section fits it.
        """
        score = score or self.primary_score
        return self._analysis(
            ("wellbeing", score),
            "wellbeing",
            lambda: analyse_wellbeing(
                self.report.scores, self.data.clients, score=score, params=self.params
            ),
        )

    @property
    def primary_score(self) -> str:
        """The score of the primary measure the report's headline uses."""
        measure = self.params.measures.primary
        return MAIN_SCORE.get(measure) or ANALYSED_SCORES[measure][0]

    def attendance(self) -> Analysis:
        """GP attendance before and after referral (``analyse_attendance``)."""
        return self._analysis(("attendance",), "attendance", self.report.attendance)

    def attrition(self) -> Analysis:
        """The primary score's change allowing for attrition (``analyse_attrition``)."""
        return self._analysis(
            ("attrition",),
            "attrition",
            lambda: analyse_attrition(self.data, self.report.scores, params=self.params),
        )

    def reach(self) -> Analysis:
        """Referral rates by group and the deprivation gradient (``analyse_reach``)."""
        return self._analysis(
            ("reach",), "reach", lambda: analyse_reach(self.data, params=self.params)
        )

    def equity(self) -> Analysis:
        """Change in the primary score by group, one ``GroupChangeResult`` per grouping.

        The groupings of the report's "Who benefits" section whose change could be
        estimated; ``.result`` is a dict from grouping column to result.
        """
        return self._analysis(("equity",), "equity", self._fit_equity)

    def _fit_equity(self) -> dict:
        score = MAIN_SCORE.get(self.params.measures.primary)
        scores = self.report.scores
        if score is None or scores.empty or not (scores["score"] == score).any():
            raise InsufficientData("No scored wellbeing measures: benefit by group is not fitted.")
        groupings = [g for g in GROUPINGS if g in self.data.clients.columns]
        data = scores.loc[scores["score"] == score, ["client_id", "timepoint", "value"]].merge(
            self.data.clients[["client_id", *groupings]], on="client_id", how="inner"
        )
        results = {}
        for by in groupings:
            try:
                results[by] = fit_change_by_group(
                    data, by=by, at=1, conf_level=self.params.conf_level, score=score
                )
            except InsufficientData:
                continue
        if not results:
            raise InsufficientData("No group could be estimated.")
        return results


class Analysis:
    """One fitted analysis of a :class:`Scheme`, shown according to the scheme's tier.

    ``tidy(conf_level=None)``, ``summary()``, ``plot()`` and ``_repr_html_`` work in
    both tiers; ``result`` (and any attribute of it) only in the analyst tier.
    """

    def __init__(self, name: str, result, *, scheme: Scheme, section_name: str):
        self.name = name
        self._result = result
        self._scheme = scheme
        self._section_name = section_name

    @property
    def tier(self) -> str:
        """The tier of the scheme this analysis belongs to."""
        return self._scheme.tier

    @property
    def result(self):
        """The fitted result object the report's analysis returns (analyst tier only)."""
        if self.tier != "analyst":
            raise TierError(
                f"the {self.name} result holds row-level data and exact counts; open the "
                "scheme with open_scheme(..., tier='analyst') to see it (never publish it)"
            )
        return self._result

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.result, name)

    def __repr__(self) -> str:
        return f"<{self.name} analysis of {self._scheme.params.scheme_id} ({self.tier} tier)>"

    def _parts(self) -> dict:
        """The result's parts that have a tidy table (one, or one per grouping)."""
        result = self._result
        if isinstance(result, dict):
            return result
        if hasattr(result, "tidy"):
            return {None: result}
        if getattr(result, "sii", None) is not None:  # ReachResult: its model is the SII fit
            return {"sii": result.sii}
        return {}

    def tidy(self, conf_level: float | None = None) -> pd.DataFrame:
        """Broom table of the estimates (counts in ``n``/``n_*`` columns controlled if published).

        A dict of results (equity) is stacked with the key in a ``part`` column.
        """
        frames = []
        for key, part in self._parts().items():
            table = part.tidy(conf_level)
            frames.append(table if key is None else table.assign(part=key))
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if self.tier == "published":
            rule = self._scheme.params.disclosure.rule()
            for column in [c for c in table.columns if c == "n" or c.startswith("n_")]:
                values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
                table[column] = disclose_count(values, rule).to_numpy()
        return table

    def summary(self) -> str:
        """Text for people: the result's own summary (analyst) or the section's text (published).

        The published tier shows the report section's sentences and notes, which passed
        disclosure control; a result's own summary quotes exact counts.
        """
        if self.tier == "published":
            section = self.section()
            return "\n\n".join([section.title, *section.text, *section.notes])
        result = self._result
        if isinstance(result, dict):
            return "\n".join(f"[{key}]\n{part.summary()}" for key, part in result.items())
        if hasattr(result, "summary"):
            return result.summary()
        return "\n".join([_describe(result), *(p.summary() for p in self._parts().values())])

    def section(self) -> Section:
        """The report's disclosure-controlled section for this analysis."""
        return self._scheme.section(self._section_name)

    def plot(self, ax=None):
        """A picture: the result's own ``plot()`` (analyst) or the section's figure (published).

        Returns the matplotlib Axes (published: of the report section's first figure).
        """
        if self.tier == "analyst":
            parts = [p for p in self._parts().values() if hasattr(p, "plot")]
            if hasattr(self._result, "plot"):
                parts = [self._result]
            if parts:
                return parts[0].plot(ax=ax)
        figures = self.section().figures
        if not figures:
            raise InsufficientData(f"the {self.name} section has no figure")
        return figures[0].axes[0]

    def _repr_html_(self) -> str:
        if self.tier == "analyst":
            return (
                f"<p><b>{html.escape(self.name)}</b> (analyst tier: exact counts, not for "
                f"publication)</p><pre>{html.escape(self.summary())}</pre>"
            )
        from spimpact.report.render import section_html

        head, tail = section_html(self.section(), level=3)
        return head + tail


def _describe(result) -> str:
    """A plain account of a result without its own ``summary()``: scalars and table sizes."""
    if not dataclasses.is_dataclass(result):
        return repr(result)
    lines = [type(result).__name__]
    for item in dataclasses.fields(result):
        value = getattr(result, item.name)
        if isinstance(value, pd.DataFrame):
            lines.append(f"  {item.name}: table of {len(value)} rows ({', '.join(value.columns)})")
        elif value is None or isinstance(value, str | int | float | pd.Timestamp):
            lines.append(f"  {item.name}: {value}")
    return "\n".join(lines)
