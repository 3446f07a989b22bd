"""Diagnostics notebooks for analysts: what they show, how they run, where they go.

``spimpact run --diagnostics`` executes the four ``notebooks/*_diagnostics.ipynb`` for
each scheme with papermill (parameterised like the report) into the analyst-only tier
``outputs/_analyst/<scheme_id>/`` as ``.ipynb`` and self-contained ``.html`` (code
shown, figures embedded, nothing fetched). That tier holds row-level data and exact
counts: it is never linked from, or copied into, a publishable file
(``scan_analyst_isolation`` checks; docs/outputs.md).

The notebooks stay thin: each cell shows one named item of a ``Diagnostics`` set
(``wellbeing_diagnostics(scheme)`` ...), whose computations live in the analyses'
``diagnostics`` modules. An item that cannot be produced for a scheme (no comparison
group, too few people) is shown as its reason.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pandas as pd

from spimpact.analyses.attendance import diagnostics as attendance_dx
from spimpact.analyses.attrition import diagnostics as attrition_dx
from spimpact.analyses.overview import diagnostics as quality_dx
from spimpact.analyses.wellbeing import diagnostics as wellbeing_dx
from spimpact.paths import INTERNAL_DIR, NOTEBOOKS_DIR, OUTPUT_MARKER
from spimpact.publish import gate
from spimpact.publish.section import InsufficientData
from spimpact.report.render import REPORT_CSS, figure_png

ANALYST_DIR = "_analyst"
NOTEBOOKS = (
    "wellbeing_diagnostics",
    "attendance_diagnostics",
    "attrition_diagnostics",
    "data_quality_diagnostics",
)
CELL_TIMEOUT_SECONDS = 1800
ANALYST_BANNER = (
    "Analyst tier: row-level data and exact counts. For use inside the secure "
    "environment only; never publish this file or copy from it into a report."
)


class Diagnostics:
    """Named diagnostic items of one analysis, computed when first shown.

    ``items`` maps a name to a function of no arguments returning a DataFrame, a
    matplotlib Figure, a string, or a dict of those. ``show(name)`` displays it.
    """

    def __init__(self, items: dict[str, Callable[[], object]]):
        self.items = items
        self._values: dict[str, object] = {}

    def __getitem__(self, name: str):
        if name not in self._values:
            self._values[name] = self.items[name]()
        return self._values[name]

    def show(self, name: str) -> None:
        """Display item ``name`` in the notebook; a reason instead when it cannot be made."""
        try:
            value = self[name]
        except InsufficientData as reason:
            value = f"Not available for this scheme: {reason}"
        display_value(value)


def display_value(value) -> None:
    """Show a table in full, a figure as an embedded PNG, text as text, a dict item by item."""
    from IPython.display import HTML, Image, Markdown, display

    if isinstance(value, dict):
        for key, item in value.items():
            display(Markdown(f"**{key}**"))
            display_value(item)
    elif isinstance(value, pd.DataFrame):
        if value.empty:
            display(Markdown("*(nothing to show for this scheme)*"))
        else:
            display(HTML(value.to_html(index=False, na_rep="", float_format=_number)))
    elif hasattr(value, "savefig"):
        import matplotlib.pyplot as plt

        display(Image(data=figure_png(value), format="png"))
        plt.close(value)
    else:
        display(Markdown(str(value)))


def _number(value: float) -> str:
    return f"{value:.4g}"


def _analysis(fit: Callable[[], object]) -> Callable[[], object]:
    """The fitted result behind a scheme's analysis.

    Raises ``InsufficientData`` when the fit does, or with the error when the fit fails,
    so that a diagnostics notebook shows why instead of stopping.
    """
    cache: list = []

    def get():
        if not cache:
            try:
                cache.append(fit().result)
            except InsufficientData:
                raise
            except Exception as error:  # noqa: BLE001 - shown in the notebook, not hidden
                raise InsufficientData(
                    f"the analysis itself failed ({type(error).__name__}: {error}); the "
                    "report shows this section as an error too"
                ) from error
        return cache[0]

    return get


def wellbeing_diagnostics(scheme) -> Diagnostics:
    """Residuals, client effects, covariance choice, trajectories, influence, convergence."""
    result = _analysis(scheme.wellbeing)
    scores, clients = (lambda: scheme.scored.scores), (lambda: scheme.data.clients)
    items: dict[str, Callable[[], object]] = {}

    def residuals():
        return wellbeing_dx.residual_table(result(), scores(), clients())

    def trajectories():
        return wellbeing_dx.observed_vs_fitted(result(), diagnostics["residuals"])

    items["summary"] = lambda: result().summary()
    items["residuals"] = residuals
    items["residual plots"] = lambda: wellbeing_dx.plot_residuals(diagnostics["residuals"])
    items["client effects"] = lambda: wellbeing_dx.client_effects(diagnostics["residuals"]).head(30)
    items["covariance choice"] = lambda: wellbeing_dx.covariance_comparison(
        result(), scores(), clients()
    )
    items["observed vs fitted"] = trajectories
    items["trajectory plot"] = lambda: wellbeing_dx.plot_trajectories(
        diagnostics["residuals"], diagnostics["observed vs fitted"]
    )
    items["influence"] = lambda: wellbeing_dx.client_influence(result(), scores(), clients())
    items["convergence"] = lambda: wellbeing_dx.convergence_record(result())
    diagnostics = Diagnostics(items)
    return diagnostics


def attendance_diagnostics(scheme) -> Diagnostics:
    """Overlap, balance, matched sets, event study, placebo, designs, practices, weights."""
    result = _analysis(scheme.attendance)

    def love_plot():
        matching = result().matching
        if matching is None:
            raise InsufficientData("no matched comparison group (before/after design)")
        ax = matching.plot()
        return ax.figure

    def overlap_plot():
        if result().matching is None:
            raise InsufficientData("no matched comparison group (before/after design)")
        return attendance_dx.plot_propensity_overlap(result())

    def event_study_plot():
        if result().event_study is None:
            raise InsufficientData("no event study (no comparison group)")
        return result().plot().figure

    def event_study():
        table, pretrend = attendance_dx.event_study_table(result())
        return {"coefficients": table, "pre-trend test": pretrend}

    def practices():
        table, summary = attendance_dx.practice_clustering(result(), scheme.data)
        return {"people per practice": table, "clustering": summary}

    return Diagnostics(
        {
            "summary": lambda: result().summary(),
            "propensity overlap": lambda: attendance_dx.propensity_overlap(result()),
            "overlap plot": overlap_plot,
            "balance": lambda: (
                result().matching.balance() if result().matching is not None else pd.DataFrame()
            ),
            "love plot": love_plot,
            "matched set sizes": lambda: attendance_dx.matched_set_sizes(result()),
            "event study": event_study,
            "event study plot": event_study_plot,
            "placebo": lambda: attendance_dx.placebo_estimates(result()),
            "alternative designs": lambda: attendance_dx.alternative_designs(result()),
            "practices": practices,
            "weights": lambda: attendance_dx.matching_weights(result()),
        }
    )


def attrition_diagnostics(scheme) -> Diagnostics:
    """Dropout models, IPW weights and truncation, imputation stability, δ-sensitivity."""
    result = _analysis(scheme.attrition)

    def tipping_plot():
        return result().tipping.plot().figure

    items = {
        "summary": lambda: result().summary(),
        "dropout models": lambda: attrition_dx.dropout_models(result()),
        "weight distribution": lambda: attrition_dx.weight_distribution(result()),
        "truncation": lambda: attrition_dx.truncation_sensitivity(result()),
        "imputation stability": lambda: attrition_dx.imputation_stability(result()),
        "stability plot": lambda: attrition_dx.plot_imputation_stability(
            diagnostics["imputation stability"]
        ),
        "delta sensitivity": lambda: attrition_dx.delta_sensitivity(result()),
        "delta plot": tipping_plot,
    }
    diagnostics = Diagnostics(items)
    return diagnostics


def data_quality_diagnostics(scheme) -> Diagnostics:
    """Every exclusion with its source lines, completeness by month, measure use by site."""
    data = scheme.data
    return Diagnostics(
        {
            "reconciliation": lambda: data.reconciliation,
            "exclusions by reason": lambda: quality_dx.exclusions_by_reason(data),
            "exclusions": lambda: quality_dx.exclusions_list(data),
            "completeness by month": lambda: quality_dx.completeness_by_month(data),
            "measure use by site": lambda: quality_dx.measure_use_by_site(data),
        }
    )


def analyst_dir(output_root: Path, scheme_id: str) -> Path:
    """``outputs/_analyst/<scheme_id>``: where a scheme's diagnostics go."""
    return Path(output_root) / ANALYST_DIR / scheme_id


def render_diagnostics(params_path: Path, scheme_id: str, output_root: Path) -> str | None:
    """Execute the four diagnostics notebooks of one scheme; never raises.

    Writes ``<name>.ipynb`` and ``<name>.html`` into ``analyst_dir``; returns ``None``,
    or the first line of the error (the full traceback goes to ``diagnostics_errors.txt``
    in the same analyst folder).
    """
    import papermill

    folder = analyst_dir(output_root, scheme_id)
    _claim(folder.parent)
    _claim(folder)
    try:
        for name in NOTEBOOKS:
            target = folder / f"{name}.ipynb"
            papermill.execute_notebook(
                str(NOTEBOOKS_DIR / f"{name}.ipynb"),
                str(target),
                parameters={"params_path": str(Path(params_path).resolve())},
                kernel_name="python3",
                cwd=str(NOTEBOOKS_DIR),
                progress_bar=False,
                log_output=False,
                execution_timeout=CELL_TIMEOUT_SECONDS,
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
            _strip_run_metadata(target)
            notebook_to_analyst_html(target, folder / f"{name}.html", title=f"{scheme_id}: {name}")
    except Exception as error:  # noqa: BLE001 - one scheme's failure is reported, not raised
        with open(folder / "diagnostics_errors.txt", "a", encoding="utf-8") as log:
            log.write("".join(traceback.format_exception(error)))
        return f"{type(error).__name__} (see {ANALYST_DIR}/{scheme_id}/diagnostics_errors.txt)"
    return None


def render_all_diagnostics(schemes, output_root: Path, *, jobs: int = 1, progress=print):
    """Render every ``(params_path, scheme_id)``'s diagnostics, ``jobs`` at a time.

    Returns ``{scheme_id: error or None}``.
    """
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            scheme_id: pool.submit(render_diagnostics, path, scheme_id, output_root)
            for path, scheme_id in schemes
        }
        errors = {}
        for scheme_id, future in futures.items():
            errors[scheme_id] = future.result()
            state = errors[scheme_id] or "written"
            progress(f"diagnostics {scheme_id}: {state} ({ANALYST_DIR}/{scheme_id}/)")
    return errors


def notebook_to_analyst_html(notebook_path: Path, html_path: Path, *, title: str) -> Path:
    """One self-contained HTML page of an executed notebook, code included, nothing fetched."""
    from nbconvert import HTMLExporter

    notebook = nbformat.read(notebook_path, as_version=4)
    exporter = HTMLExporter(template_name="basic", exclude_input_prompt=True)
    body, _ = exporter.from_notebook_node(notebook)
    body = gate.note(ANALYST_BANNER) + body
    html_path.write_text(gate.page(title, body, css=REPORT_CSS), encoding="utf-8")
    return html_path


def _strip_run_metadata(notebook_path: Path) -> None:
    """Remove timestamps and durations, so that a re-run gives the same file."""
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
    nbformat.write(notebook, notebook_path)


def _claim(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / OUTPUT_MARKER
    if not marker.exists():
        marker.write_text("Made by `spimpact run --diagnostics` (analyst tier).\n", "utf-8")


def publishable_files(output_root: Path) -> list[Path]:
    """Every file under ``output_root`` outside ``_analyst`` and ``_internal``."""
    root = Path(output_root)
    hidden = (ANALYST_DIR, INTERNAL_DIR)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in hidden and p.name != OUTPUT_MARKER
    )


def scan_analyst_isolation(output_root: Path) -> pd.DataFrame:
    """Publishable files that link to, name, or copy a file of the analyst tier.

    Returns ``file, kind, detail`` (``kind``: ``link`` for a mention of ``_analyst`` or
    of a diagnostics notebook, ``copy`` for a file byte-identical to an analyst file);
    empty when the tier is isolated.
    """
    root = Path(output_root)
    analyst = root / ANALYST_DIR
    digests = {}
    if analyst.is_dir():
        for path in analyst.rglob("*"):
            if path.is_file() and path.name != OUTPUT_MARKER:
                digests[hashlib.sha256(path.read_bytes()).hexdigest()] = path.relative_to(root)
    mention = re.compile("|".join([re.escape(ANALYST_DIR), *map(re.escape, NOTEBOOKS)]))
    findings = []
    for path in publishable_files(root):
        content = path.read_bytes()
        name = str(path.relative_to(root))
        digest = hashlib.sha256(content).hexdigest()
        if digest in digests:
            findings.append((name, "copy", f"same bytes as {digests[digest]}"))
        found = mention.search(content.decode("utf-8", errors="ignore"))
        if found:
            findings.append((name, "link", f"mentions {found.group(0)}"))
    return pd.DataFrame(findings, columns=["file", "kind", "detail"])
