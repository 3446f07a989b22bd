"""Render one scheme's report in-process: sections straight to HTML, no kernel, no nbconvert.

``render_scheme_report`` builds every section of ``scheme.SECTIONS`` once, writes
each table as CSV, encodes each figure once as PNG and assembles the page
(``layout.page_html``). It also writes ``report.ipynb``: the thin notebook
(``notebooks/scheme_report.ipynb``) with each cell's outputs filled from the same
rendering, so the notebook promised by docs/outputs.md holds exactly what the HTML
shows without starting a kernel. Running that notebook by hand gives the same outputs.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import pandas as pd
from nbformat.v4 import new_output

from spimpact.paths import NOTEBOOK
from spimpact.publish import gate
from spimpact.report import layout
from spimpact.report.alt_text import figure_alt
from spimpact.report.cards import cards_html, key_cards
from spimpact.report.render import (
    TABLE_FOOTNOTE,
    figure_png,
    section_html,
    table_html,
    write_tables,
)
from spimpact.report.scheme import SECTIONS, SchemeReport

# Findings in reading order; sections not named here or in APPENDIX (e.g. added later)
# follow the findings in SECTIONS order.
FINDINGS = (
    "refresh_history",
    "overview",
    "reach",
    "area",
    "referrals",
    "kpis",
    "wellbeing_at_referral",
    "wellbeing",
    "attrition",
    "attendance",
    "equity",
    "community",
    "qualitative",
    "data_maturity",
)
APPENDIX = ("data_quality", "measure_quality", "about")
# First figure of each of these sections, in this order, until PAGE_ONE_CHART_COUNT.
PAGE_ONE_CHARTS = ("wellbeing", "attendance", "reach", "referrals", "overview", "community")
PAGE_ONE_CHART_COUNT = 4
# Hook: sections shown as boxes on page one (and not again below), e.g. a refresh notice.
PAGE_ONE_BOXES: tuple[str, ...] = ()
# Sections shown as an alert at the top of page one, only when they have a title (the
# "Analysis plan changed on DATE" box of issue 17), and not again below.
PAGE_ONE_ALERTS = ("plan_change",)
_SHOW_CALL = re.compile(r"""report\.show\(\s*["'](\w+)["']\s*\)""")


def render_scheme_report(params_path, output_dir, *, scheme=None) -> SchemeReport:
    """Write ``output_dir/report.html``, its tables, ``report.ipynb`` and the headline rows.

    ``scheme``: the data already loaded from the same params, if any (not loaded again).
    Returns the ``SchemeReport`` (its data are reused by the privacy scan).
    """
    output_dir = Path(output_dir)
    # A worker renders several schemes: start each from matplotlib's defaults and no open
    # figures, so nothing one scheme's figures changed carries over (byte-identical reruns).
    plt.close("all")
    matplotlib.rcdefaults()
    report = SchemeReport.prepare(params_path, output_dir, scheme=scheme)
    sections = {name: report.section(name) for name in SECTIONS}
    conf_level = report.params.conf_level
    rendered = {}
    for name, section in sections.items():
        written = write_tables(section, report.tables_dir)
        pngs, alts = [], []
        for figure in section.figures:
            pngs.append(figure_png(figure))  # drawn first: tick labels are then known
            alts.append(
                figure_alt(
                    figure, title=section.title, headline=section.headline, conf_level=conf_level
                )
            )
            plt.close(figure)
        csvs = [p.read_bytes() for p in written]
        rendered[name] = (section, tuple(pngs), tuple(alts), csvs, _tables_html(section))
    report.finish()
    html = _page(report, rendered)
    (output_dir / "report.html").write_text(html, encoding="utf-8")
    write_notebook(output_dir / "report.ipynb", report, rendered)
    return report


def _page(report: SchemeReport, rendered: dict) -> str:
    attrition = rendered["attrition"][0].tables if "attrition" in rendered else ()
    funnel = next((t.frame for t in attrition if t.name == "attrition_funnel"), None)
    cards = cards_html(key_cards(report, report.headlines(), funnel))
    charts = []
    for name in PAGE_ONE_CHARTS:
        if name in rendered and rendered[name][1] and len(charts) < PAGE_ONE_CHART_COUNT:
            section, pngs, alts, *_ = rendered[name]
            charts.append(layout.figure_html(pngs[0], alts[0], caption=section.title, printed=True))
    placed = {"front_page", *PAGE_ONE_BOXES, *PAGE_ONE_ALERTS}
    order = [n for n in FINDINGS if n in rendered]
    order += [n for n in rendered if n not in placed and n not in order and n not in APPENDIX]
    findings = [_section_html(name, *rendered[name]) for name in order]
    appendix = [_notes_html(rendered, order)]
    appendix += [_section_html(n, *rendered[n], level=3) for n in APPENDIX if n in rendered]
    contents = [("summary", "Summary for commissioners")]
    contents += [(f"s-{n}", rendered[n][0].title) for n in order]
    contents.append(("appendix", "Appendix: methods"))
    boxes = [rendered[n][0] for n in PAGE_ONE_BOXES if n in rendered]
    alerts = [_alert_html(*rendered[n]) for n in PAGE_ONE_ALERTS if n in rendered]
    return layout.page_html(
        title=report.params.title,
        period=_period(report),
        cards=cards,
        charts=charts,
        summary=rendered["front_page"][0] if "front_page" in rendered else None,
        boxes=boxes,
        alerts=alerts,
        findings=findings,
        appendix=[a for a in appendix if a],
        contents=contents,
    )


def _tables_html(section) -> tuple[str, ...]:
    return tuple(table_html(table) for table in section.tables)


def _section_html(name, section, pngs, alts, csvs, tables_html, *, level: int = 2) -> str:
    """Charts first, then the interpretation, then tables (long ones collapsed)."""
    figures = [layout.figure_html(png, alt) for png, alt in zip(pngs, alts, strict=True)]
    text = [gate.paragraph(p) for p in section.text]
    tables = [
        layout.table_block(table, html, csv)
        for table, html, csv in zip(section.tables, tables_html, csvs, strict=True)
    ]
    if section.tables:
        tables.append(gate.note(TABLE_FOOTNOTE))
    css = ' class="report-section"' if level == 2 else ""
    return (
        f'<section id="s-{name}"{css}>{gate.heading(section.title, level)}'
        + "".join(figures + text + tables)
        + "</section>"
    )


def _alert_html(section, pngs, alts, csvs, tables_html) -> str:
    """A page-one alert with its tables; nothing when the section is empty (no title)."""
    if not section.title:
        return ""
    tables = [
        layout.table_block(table, html, csv)
        for table, html, csv in zip(section.tables, tables_html, csvs, strict=True)
    ]
    return layout.alert_html(section, tables)


def _notes_html(rendered: dict, order: list[str]) -> str:
    parts = []
    for name in order:
        section = rendered[name][0]
        if section.notes:
            parts.append(gate.heading(section.title, 4))
            parts += [gate.note(n) for n in section.notes]
    if not parts:
        return ""
    return "<h3>Statistical and technical notes by section</h3>" + "".join(parts)


def _period(report: SchemeReport) -> str:
    dates = pd.to_datetime(report.scheme.clients["referral_date"])
    if dates.empty:
        return "No referrals recorded"
    return (
        f"Referrals from {dates.min():%B %Y} to {dates.max():%B %Y} · scheme id "
        f"{report.params.scheme_id} · {report.params.conf_level:.0%} confidence intervals"
    )


def write_notebook(path: Path, report: SchemeReport, rendered: dict) -> Path:
    """The thin notebook with each cell's outputs from this rendering (no kernel run)."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags:
            cell.source = "# parameters injected by spimpact run (paths omitted)"
            continue
        if "report.show_title()" in cell.source:
            title = gate.heading(f"{report.params.title}: impact evaluation", 1)
            cell.outputs.append(new_output("display_data", data={"text/html": title}))
        match = _SHOW_CALL.search(cell.source)
        if match and match.group(1) in rendered:
            section, pngs, _, _, tables_html = rendered[match.group(1)]
            if not section.title:  # e.g. no analysis-plan box: the plan did not change
                continue
            head, tail = section_html(section, tables=tables_html)
            if match.group(1) in PAGE_ONE_ALERTS:  # as SchemeReport.show frames it
                head, tail = f'<div class="alert">{head}', f"{tail}</div>"
            cell.outputs.append(new_output("display_data", data={"text/html": head}))
            for png in pngs:
                cell.outputs.append(
                    new_output("display_data", data={"image/png": _b64(png)}, metadata={})
                )
            if tail:
                cell.outputs.append(new_output("display_data", data={"text/html": tail}))
    nbformat.write(notebook, path)
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
