"""One scheme's report: load once, build each section once, show them in order.

The report notebook stays thin: it prepares a ``SchemeReport`` from the params file
and calls ``report.show(name)`` for each section. A section that cannot be produced
degrades to a plain sentence (``build_section``) instead of stopping the report.
"""

from __future__ import annotations

import json
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from spimpact.analyses.attendance import analyse_attendance, attendance_section
from spimpact.analyses.attrition import attrition_section
from spimpact.analyses.community import community_section
from spimpact.analyses.equity import benefit_by_group_section
from spimpact.analyses.maturity import data_maturity_section
from spimpact.analyses.measures import (
    measure_quality_section,
    score_scheme,
    wellbeing_at_referral_section,
)
from spimpact.analyses.overview import data_quality_section, overview_section, referrals_spc_section
from spimpact.analyses.qualitative import qualitative_section
from spimpact.analyses.qualitative.approval import read_approvals
from spimpact.analyses.reach import area_section, kpi_spc_section, reach_section
from spimpact.analyses.wellbeing import wellbeing_section
from spimpact.io import SchemeData, load_scheme_from_params
from spimpact.params import SchemeParams, load_params
from spimpact.paths import INTERNAL_DIR
from spimpact.publish import gate
from spimpact.publish.disclosure import disclose_count, disclose_counts_in_text
from spimpact.publish.section import (
    HEADLINE_COLUMNS,
    InsufficientData,
    Section,
    Table,
    build_section,
)
from spimpact.report.front_page import front_page_section
from spimpact.report.history import History, data_date, history_dir, read_history, run_key
from spimpact.report.plan import read_lock
from spimpact.report.provenance import PROVENANCE_FILE, approvals_path, build_provenance
from spimpact.report.refresh import plan_change, plan_change_section, refresh_history_section
from spimpact.report.render import show, show_box
from spimpact.scoring import ScoredMeasures

SectionBuilder = Callable[["SchemeReport"], Section]


def _front_page(report: SchemeReport) -> Section:
    others = [report.section(name) for name in SECTIONS if name not in NOT_RESULTS]
    return front_page_section(others, params=report.params)


def _overview(report: SchemeReport) -> Section:
    return overview_section(report.scheme, params=report.params)


def _data_quality(report: SchemeReport) -> Section:
    return data_quality_section(report.scheme, params=report.params)


def _measure_quality(report: SchemeReport) -> Section:
    return measure_quality_section(
        report.scheme.non_standard, report.scored.exclusions, params=report.params
    )


def _maturity(report: SchemeReport) -> Section:
    return data_maturity_section(
        report.scheme, report.scores, non_standard=report.scheme.non_standard, params=report.params
    )


def _referrals(report: SchemeReport) -> Section:
    return referrals_spc_section(report.scheme, params=report.params)


def _kpis(report: SchemeReport) -> Section:
    return kpi_spc_section(report.scheme, report.scores, params=report.params)


def _reach(report: SchemeReport) -> Section:
    return reach_section(report.scheme, params=report.params)


def _area(report: SchemeReport) -> Section:
    return area_section(report.scheme, params=report.params)


def _wellbeing_at_referral(report: SchemeReport) -> Section:
    return wellbeing_at_referral_section(
        report.scores,
        report.scheme.clients,
        non_standard=report.scheme.non_standard,
        params=report.params,
    )


def _wellbeing(report: SchemeReport) -> Section:
    return wellbeing_section(report.scores, report.scheme.clients, params=report.params)


def _attrition(report: SchemeReport) -> Section:
    return attrition_section(report.scheme, report.scores, params=report.params)


def _attendance(report: SchemeReport) -> Section:
    return attendance_section(report.scheme, params=report.params, result=report.attendance())


def _equity(report: SchemeReport) -> Section:
    try:
        attendance = report.attendance()
    except InsufficientData:
        attendance = None  # the section says why GP attendance by group is not shown
    return benefit_by_group_section(
        report.scheme, report.scores, params=report.params, attendance=attendance
    )


def _community(report: SchemeReport) -> Section:
    return community_section(report.scheme, params=report.params)


def _qualitative(report: SchemeReport) -> Section:
    return qualitative_section(
        report.scheme, report.scores, params=report.params, approved=report.approved_quotes()
    )


# --- issue 17: refresh history and the analysis-plan box (spimpact.report.refresh) ---
def _plan_change(report: SchemeReport) -> Section:
    changes = plan_change(
        report.params, report.history, lock=report.plan_lock, data_to=report.data_to
    )
    return plan_change_section(changes, locked=report.plan_lock is not None) or Section(title="")


def _refresh_history(report: SchemeReport) -> Section:
    maturity = report.section("data_maturity")
    scorecard = next((t.frame for t in maturity.tables if t.name == "data_maturity"), None)
    return refresh_history_section(
        report.history,
        report.current_headlines(),
        data_to=report.data_to,
        records=report.provenance.get("records"),
        scorecard=scorecard,
        params=report.params,
    )


def _plan_note(provenance: dict) -> str:
    """One sentence on the analysis plan's hash and lock for "About this report"."""
    if not provenance.get("plan_sha256"):
        return ""
    lock = provenance.get("plan_lock")
    frozen = (
        f", frozen on data to {lock.get('frozen_on_data_to') or 'an unknown date'}"
        if lock
        else ", not frozen"
    )
    return f" Analysis plan SHA-256 `{provenance['plan_sha256'][:16]}…`{frozen}."


# --- end issue 17 ---


def _about(report: SchemeReport) -> Section:
    provenance = report.provenance
    rule = report.params.disclosure
    inputs = pd.DataFrame(sorted(provenance["inputs_sha256"].items()), columns=["file", "sha256"])
    versions = pd.DataFrame(sorted(provenance["versions"].items()), columns=["software", "version"])
    text = (
        f"Produced by spimpact {provenance['versions']['spimpact']} from params file "
        f"`{provenance['params_file']}` (SHA-256 `{provenance['params_sha256'][:16]}…`), "
        f"random seed {report.params.seed}, confidence level {report.params.conf_level:.0%}. "
        "The same data, params and software give the same numbers; `provenance.json` beside "
        "this report lists every input's SHA-256 hash." + _plan_note(provenance),
        f"Disclosure control: counts of 1 to {rule.threshold} are not shown, other counts are "
        f"rounded to the nearest {rule.rounding}, and means, medians and percentages need at least "
        f"{rule.min_n_summary} people behind them.",
    )
    return Section(
        title="About this report",
        text=text,
        tables=(
            Table("provenance_inputs", "Input files and their SHA-256 hashes", inputs),
            Table("provenance_versions", "Software versions", versions),
        ),
    )


# Report order; the title is used when a section degrades to a sentence.
SECTIONS: dict[str, tuple[str, SectionBuilder]] = {
    "plan_change": ("Analysis plan", _plan_change),
    "front_page": ("Summary for commissioners", _front_page),
    "refresh_history": ("Changes since the last refresh", _refresh_history),
    "overview": ("Scheme overview", _overview),
    "data_quality": ("Data quality", _data_quality),
    "measure_quality": ("Use of outcome measures", _measure_quality),
    "data_maturity": ("Data maturity", _maturity),
    "referrals": ("Referrals over time", _referrals),
    "kpis": ("Scheme KPIs over time", _kpis),
    "reach": ("Reach", _reach),
    "area": ("Reach by area", _area),
    "wellbeing_at_referral": ("Wellbeing at referral", _wellbeing_at_referral),
    "wellbeing": ("Wellbeing change", _wellbeing),
    "attrition": ("Attrition and missing follow-ups", _attrition),
    "attendance": ("GP attendance", _attendance),
    "equity": ("Who benefits", _equity),
    "community": ("Impact on the community", _community),
    "qualitative": ("Case studies and feedback", _qualitative),
    "about": ("About this report", _about),
}
# Sections that are not results: the front page does not summarise them.
NOT_RESULTS = ("front_page", "about", "plan_change", "refresh_history")


def _with_warning_notes(section: Section, caught) -> Section:
    """Turn library warnings raised while building a section into one plain note."""
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    if not messages:
        return section
    note = (
        "Technical note: the software raised warnings while computing this section "
        f"({'; '.join(messages)[:600]}). The results above stand, but an analyst should "
        "check them before relying on them."
    )
    return replace(section, notes=(*section.notes, note))


def configure_figures() -> None:
    """Figure settings that keep rendered reports byte-identical between runs.

    The non-interactive Agg backend stops the notebook showing figures by itself;
    sections' figures are shown, in order, by ``render.show``.
    """
    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "svg.hashsalt": "spimpact",
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )


@dataclass
class SchemeReport:
    """A scheme's params, validated data and scores, and its sections built on demand."""

    params: SchemeParams
    params_path: Path
    scheme: SchemeData
    scored: ScoredMeasures
    output_dir: Path
    provenance: dict
    _built: dict[str, Section] = field(default_factory=dict, repr=False)
    _fitted: dict[str, object] = field(default_factory=dict, repr=False)

    @classmethod
    def prepare(
        cls, params_path: str | Path, output_dir: str | Path, *, scheme: SchemeData | None = None
    ) -> SchemeReport:
        """Validate params, load and check the data, and score every measure.

        Provenance is read from ``output_dir/provenance.json`` when the runner has
        written it for this run, and built here otherwise (a notebook run by hand).
        ``scheme`` is the data already loaded from the same params (the runner loads
        them once for provenance); loaded here when not given.
        """
        params_path, output_dir = Path(params_path), Path(output_dir)
        params = load_params(params_path)
        if scheme is None:
            scheme = load_scheme_from_params(params)
        scored = score_scheme(scheme, params)
        provenance_path = output_dir / PROVENANCE_FILE
        provenance = (
            json.loads(provenance_path.read_text(encoding="utf-8"))
            if provenance_path.exists()
            else build_provenance(params_path, params, scheme)
        )
        configure_figures()
        return cls(
            params=params,
            params_path=params_path,
            scheme=scheme,
            scored=scored,
            output_dir=output_dir,
            provenance=provenance,
        )

    @property
    def scores(self) -> pd.DataFrame:
        """Every scored measure, long (``spimpact.scoring.score_measures``)."""
        return self.scored.scores

    @property
    def tables_dir(self) -> Path:
        """Where each section's tables are written as CSV."""
        return self.output_dir / "tables"

    def attendance(self):
        """The GP attendance analysis, fitted once for the sections that use it."""
        if "attendance" not in self._fitted:
            self._fitted["attendance"] = analyse_attendance(self.scheme, params=self.params)
        return self._fitted["attendance"]

    def show_title(self) -> None:
        """The report's heading."""
        from IPython.display import HTML, display

        display(HTML(gate.heading(f"{self.params.title}: impact evaluation", 1)))

    def section(self, name: str) -> Section:
        """Build section ``name`` once; later calls return the same object."""
        if name not in self._built:
            title, builder = SECTIONS[name]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                section = build_section(
                    title, lambda: builder(self), on_error=self._keep_error_internal
                )
            section = _with_warning_notes(section, caught)
            # diagnostics of generic estimators quote exact counts: control them here
            rule = self.params.disclosure.rule()
            notes = tuple(disclose_counts_in_text(note, rule) for note in section.notes)
            self._built[name] = replace(
                section, notes=notes, headline=self._with_conf_level(section.headline)
            )
        return self._built[name]

    @property
    def internal_dir(self) -> Path:
        """Where full error texts go: beside the scheme folders, never published."""
        return self.output_dir.parent / INTERNAL_DIR / self.output_dir.name

    def _keep_error_internal(self, title: str, error: BaseException) -> None:
        """Append a section's full error (it may quote data) to the internal log."""
        self.internal_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(traceback.format_exception(error))
        with open(self.internal_dir / "section_errors.txt", "a", encoding="utf-8") as log:
            log.write(f"== {title}\n{text}\n")

    def _with_conf_level(self, headline: pd.DataFrame | None) -> pd.DataFrame | None:
        """Headline rows with an interval carry the level it was computed at."""
        if headline is None:
            return None
        headline = headline.reindex(columns=list(HEADLINE_COLUMNS))
        has_interval = headline["conf_low"].notna() | headline["conf_high"].notna()
        missing = has_interval & headline["conf_level"].isna()
        return headline.assign(
            conf_level=headline["conf_level"].astype(float).mask(missing, self.params.conf_level)
        )

    def show(self, name: str) -> None:
        """Display section ``name`` in the notebook and write its tables.

        The analysis-plan box is shown only when the plan changed, framed as an alert.
        """
        section = self.section(name)
        if name == "plan_change":
            if section.title:
                show_box(section, tables_dir=self.tables_dir)
            return
        show(section, tables_dir=self.tables_dir)

    # --- issue 17: refresh history, plan lock and approved quotes ---
    @property
    def data_to(self) -> str | None:
        """The label of the refresh: the latest date recorded in the data."""
        return self.provenance.get("data_date") or data_date(self.scheme)

    @property
    def history(self) -> History:
        """Stored refreshes before this one (``outputs/history/<scheme_id>``)."""
        if "history" not in self._fitted:
            stored = read_history(history_dir(self.output_dir.parent, self.params.scheme_id))
            self._fitted["history"] = stored.before(run_key(self.provenance))
        return self._fitted["history"]

    @property
    def plan_lock(self) -> dict | None:
        """The frozen analysis plan (``spimpact plan freeze``), or ``None``."""
        return read_lock(self.params_path)

    def approved_quotes(self) -> dict[str, str]:
        """Approved quote ids and their text fingerprints (``spimpact.analyses.qualitative``)."""
        return read_approvals(approvals_path(self.params_path))

    def current_headlines(self) -> pd.DataFrame:
        """Headline rows of every results section, built if need be."""
        for name in SECTIONS:
            if name not in NOT_RESULTS:
                self.section(name)
        return self.headlines()

    # --- end issue 17 ---

    def headlines(self) -> pd.DataFrame:
        """Headline rows of every built section, for the ICB summary."""
        frames = [
            s.headline for s in self._built.values() if s.headline is not None and len(s.headline)
        ]
        if not frames:
            return pd.DataFrame(columns=["scheme_id", *HEADLINE_COLUMNS])
        out = pd.concat(frames, ignore_index=True)
        n = pd.to_numeric(out["n"], errors="coerce").astype("Float64")
        out["n"] = disclose_count(
            n.to_numpy(dtype=float, na_value=np.nan), self.params.disclosure.rule()
        )
        out.insert(0, "scheme_id", self.params.scheme_id)
        return out[["scheme_id", *HEADLINE_COLUMNS]]

    def finish(self) -> Path:
        """Write ``tables/headline.csv`` and return its path."""
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        return gate.write_csv(self.headlines(), self.tables_dir / "headline.csv")
