"""The ICB summary page, one self-contained ``outputs/index.html`` across schemes.

It shows every scheme's status, headline results, data maturity and a cross-scheme
meta-analysis.

It reads only what the scheme reports already published (``status.json`` and the
disclosure-controlled ``tables/*.csv``), so it adds no new disclosure risk, and it
writes ``headline_estimates.csv``/``.parquet`` for analysts' own roll-ups.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.analyses.maturity.section import MATURITY_COLUMNS, RATINGS
from spimpact.models.meta import fit_random_effects
from spimpact.params import SCHEME_ID_PATTERN
from spimpact.publish import gate
from spimpact.publish.disclosure import SUPPRESSED
from spimpact.publish.section import HEADLINE_COLUMNS
from spimpact.report.board import forest_figures, matrix_html, maturity_side_by_side
from spimpact.report.refresh_summary import read_refresh_tables, refresh_html

LEVELS = (
    ("person", "Impact on the person", "Wellbeing and how people feel."),
    ("system", "Impact on the health and care system", "GP attendance and its cost."),
    (
        "community",
        "Impact on the community",
        "Activities and organisations people were connected to.",
    ),
)
# Level of the pooled intervals across schemes (each scheme's own level is shown beside
# its own estimate).
POOLED_CONF_LEVEL = 0.95
STATUS_KEYS = ("scheme_id", "title", "status", "reason")
SUMMARY_COLUMNS = ("scheme_id", "scheme_title", *HEADLINE_COLUMNS)
META_COLUMNS = (
    "outcome_level",
    "outcome",
    "measure",
    "method",
    "k",
    "schemes",
    "estimate",
    "std_error",
    "conf_low",
    "conf_high",
    "pi_low",
    "pi_high",
    "tau2",
    "i2",
    "q_p_value",
)
_CSS = """
*{box-sizing:border-box}
body{font-family:"Frutiger W01",Frutiger,Arial,Helvetica,"Liberation Sans",sans-serif;
margin:0 auto;max-width:76em;color:#212b32;line-height:1.45;padding:0 1em 2em}
header{background:#005eb8;color:#fff;padding:.8em 1em;margin:0 -1em 1em}
header h1{margin:0;font-size:1.6em}header p{margin:.3em 0 0}header code{color:#fff}
h2{color:#005eb8;border-bottom:2px solid #005eb8;padding-bottom:.2em;margin-top:1.6em}
.board-first h2{margin-top:.5em}
a{color:#005eb8}a:focus{outline:3px solid #ffb81c;background:#ffb81c;color:#000}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.8em 0 1.5em;font-size:.92em}
th,td{border:1px solid #d8dde0;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f0f4f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}
.matrix td{text-align:right;min-width:8em;line-height:1.25}.matrix th{line-height:1.25}
.matrix td,.matrix th{padding:.2em .5em}.ci{font-size:.85em;color:#4c6272}
.judge{font-weight:bold;white-space:nowrap}
.cell-better{background:#e1f2e8}.cell-worse{background:#fbe2e0}
.cell-unclear{background:#fff4d6}.cell-higher,.cell-lower{background:#e8f1f8}
.cell-none{color:#4c6272}
.ok{color:#007f3b;font-weight:bold}.failed{color:#d5281b;font-weight:bold}
.good{background:#e1f2e8}.fair{background:#fff4d6}.poor{background:#fbe2e0}
.forests{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:1em}
.forests figure{margin:0}figcaption{font-size:.85em;color:#4c6272}
.box{border-left:6px solid #005eb8;background:#f0f4f5;padding:.4em 1em;margin:1em 0}
.note{color:#4c6272;font-size:.9em}figure{margin:1em 0}img{max-width:100%;height:auto}
@media (max-width:60em){.forests{grid-template-columns:1fr}}
@page{size:A4 landscape;margin:12mm;
@bottom-center{content:"Page " counter(page) " of " counter(pages);font-size:9pt}}
@media print{header{background:#fff;color:#212b32;border-bottom:3px solid #005eb8}
header code{color:#212b32}h2{break-before:page}.board-first h2{break-before:auto}
figure,tr{break-inside:avoid}}
"""


def build_summary(outputs_dir, *, boxes=()) -> Path:
    """Write the ICB summary page ``outputs/index.html`` and the pooled headline files.

    Parameters
    ----------
    outputs_dir
        Folder holding one sub-folder per scheme, each with ``status.json``
        (``scheme_id``, ``title``, ``status`` "ok" or "failed", ``reason``) and,
        when the report ran, ``report.html``, ``tables/headline.csv`` (columns
        ``HEADLINE_COLUMNS``) and ``tables/data_maturity.csv``.

    Returns
    -------
    pathlib.Path
        Path of ``index.html``. ``headline_estimates.csv`` and
        ``headline_estimates.parquet`` are written beside it.
    boxes
        Extra boxes for page one, each ``(title, paragraphs)``; both are escaped
        (a hook for notices such as plan or refresh flags).

    Notes
    -----
    Page one is the board paper: an outcome-by-scheme matrix
    (``spimpact.report.board``), small-multiple forest plots (pooled when three or
    more schemes measured an outcome the same way; ratios on the log scale) and the
    data-maturity framework side by side; the details follow. Outcomes are grouped by
    the three levels of the NHS social prescribing common
    outcomes framework (person, community, health and care system; NHS England
    summary guide, SPEC section 2.3). Outcomes measured the same way (same
    ``measure`` and ``outcome``) in two or more schemes are pooled by REML
    random-effects meta-analysis with the Hartung-Knapp adjustment, which keeps
    near-nominal coverage with few schemes (IntHout et al. 2014, BMC Med Res
    Methodol 14:25). The page embeds its figures as base64 PNG, makes no
    external requests and carries the strict Content-Security-Policy of
    ``spimpact.publish.gate``; every value on it is escaped and the CSV and Parquet
    files have formula-like cells neutralised.
    """
    outputs_dir = Path(outputs_dir)
    if not outputs_dir.is_dir():
        raise ValueError(f"outputs folder {outputs_dir} does not exist")
    statuses = read_statuses(outputs_dir)
    headlines = read_headlines(outputs_dir, statuses)
    maturity = read_maturity(outputs_dir, statuses)
    meta = meta_analyse_headlines(headlines)

    published = gate.neutralise_formulas(headlines)
    published.to_csv(outputs_dir / "headline_estimates.csv", index=False)
    published.to_parquet(outputs_dir / "headline_estimates.parquet", index=False)

    titles = dict(zip(statuses["scheme_id"], statuses["title"], strict=True))
    forests = forest_figures(headlines, titles)
    extra = "".join(
        f'<aside class="box"><h3>{gate.escape(title)}</h3>'
        + "".join(gate.paragraph(p) for p in paragraphs)
        + "</aside>"
        for title, paragraphs in boxes
    )
    parts = [
        "<header><h1>Social prescribing impact: summary across schemes</h1>"
        f"<p>{len(statuses)} scheme report(s). Every number comes from the published scheme "
        f"reports; cells shown as <code>{SUPPRESSED}</code> are withheld to protect privacy."
        "</p></header>",
        '<section class="board-first"><h2>Outcomes by scheme</h2>',
        "<p>Each scheme's headline result for each outcome, grouped by the NHS social "
        "prescribing common outcomes framework (person, health and care system, community). "
        "Estimates from schemes without a comparison group describe change, not proven "
        "effect.</p>",
        matrix_html(headlines, _plan_marked(titles, outputs_dir, statuses)),
        extra,
        refresh_html(outputs_dir, statuses),  # issue 17 (report/refresh_summary.py)
        "</section><h2>Each outcome across schemes</h2>",
        "<p>One plot per outcome reported by two or more schemes: squares are schemes with "
        "their confidence intervals; where three or more schemes measured it the same way, "
        "the diamond is the pooled estimate (random-effects meta-analysis, REML with the "
        "Hartung-Knapp interval; ratios pooled on the log scale).</p>",
        f'<div class="forests">{"".join(forests)}</div>'
        if forests
        else "<p>No outcome was reported with an interval by two or more schemes.</p>",
        "<h2>Data maturity side by side</h2><p>How complete and consistent each scheme's "
        "data are against the spimpact data contract and the Social Prescribing Information "
        "Standard; better data give more certain results.</p>",
        maturity_side_by_side(maturity, titles, RATINGS),
        "<h2>Details</h2>",
        _status_html(outputs_dir, statuses),
        _headlines_html(headlines),
        _meta_html(headlines, meta),
        "<h3>Data for analysts</h3><p>Every scheme's headline estimates are in "
        '<a href="headline_estimates.csv">headline_estimates.csv</a> and '
        '<a href="headline_estimates.parquet">headline_estimates.parquet</a> (columns: '
        + html.escape(", ".join(SUMMARY_COLUMNS))
        + "), already disclosure-controlled.</p>",
    ]
    page = gate.page(
        "Social prescribing impact: summary across schemes", "\n".join(parts), css=_CSS
    )
    index = outputs_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _plan_marked(titles: dict[str, str], outputs_dir: Path, statuses) -> dict[str, str]:
    """Scheme titles for the matrix, marked where the analysis plan changed (issue 17)."""
    plan = read_refresh_tables(outputs_dir, statuses)["analysis_plan_changes"]
    changed = plan.groupby("scheme_id")["changed_on"].first() if len(plan) else {}
    return {
        scheme: f"{title} (\u26a0 analysis plan changed on {changed[scheme]})"
        if scheme in changed
        else title
        for scheme, title in titles.items()
    }


def read_statuses(outputs_dir: Path) -> pd.DataFrame:
    """Read every ``<scheme_id>/status.json`` under ``outputs_dir``, sorted by scheme."""
    rows = []
    for path in sorted(outputs_dir.glob("*/status.json")):
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read status file: {error}") from None
        missing = [key for key in STATUS_KEYS if key not in status]
        if missing:
            raise ValueError(f"{path}: status is missing keys {missing}")
        if status["status"] not in ("ok", "failed"):
            raise ValueError(f"{path}: status must be 'ok' or 'failed', got {status['status']!r}")
        if not isinstance(status["scheme_id"], str) or not re.fullmatch(
            SCHEME_ID_PATTERN, status["scheme_id"]
        ):
            raise ValueError(f"{path}: scheme_id is not a valid scheme id ({SCHEME_ID_PATTERN})")
        if status["scheme_id"] != path.parent.name:
            raise ValueError(
                f"{path}: scheme_id {status['scheme_id']!r} does not match its folder "
                f"{path.parent.name!r}"
            )
        rows.append({key: status[key] for key in STATUS_KEYS})
    return pd.DataFrame(rows, columns=list(STATUS_KEYS))


def read_headlines(outputs_dir: Path, statuses: pd.DataFrame) -> pd.DataFrame:
    """Stack every scheme's ``tables/headline.csv`` with its scheme id and title."""
    frames = []
    for scheme_id, title in zip(statuses["scheme_id"], statuses["title"], strict=True):
        path = outputs_dir / scheme_id / "tables" / "headline.csv"
        if not path.exists():
            continue
        frame = pd.read_csv(path, na_values=[SUPPRESSED], keep_default_na=True)
        missing = [column for column in HEADLINE_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        frame = frame[list(HEADLINE_COLUMNS)].assign(scheme_id=scheme_id, scheme_title=title)
        for column in ("estimate", "std_error", "conf_low", "conf_high", "n", "conf_level"):
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna() & frame[column].notna()
            if bad.any():
                row = int(np.flatnonzero(bad)[0]) + 2  # line number: header is line 1
                raise ValueError(
                    f"{path} line {row}, column '{column}': {frame[column][bad].iloc[0]!r} "
                    f"is not a number (or '{SUPPRESSED}' for a withheld value)"
                )
            frame[column] = values.astype("Int64" if column == "n" else float)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    headlines = pd.concat(frames, ignore_index=True)[list(SUMMARY_COLUMNS)]
    order = headlines["outcome_level"].map({lvl: i for i, (lvl, _, _) in enumerate(LEVELS)})
    return (
        headlines.assign(_order=order.fillna(len(LEVELS)))
        .sort_values(["_order", "measure", "outcome", "scheme_id"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def read_maturity(outputs_dir: Path, statuses: pd.DataFrame) -> pd.DataFrame:
    """Stack every scheme's ``tables/data_maturity.csv`` with its scheme id."""
    frames = []
    for scheme_id in statuses["scheme_id"]:
        path = outputs_dir / scheme_id / "tables" / "data_maturity.csv"
        if not path.exists():
            continue
        frame = pd.read_csv(path, na_values=[SUPPRESSED], keep_default_na=True)
        missing = [column for column in MATURITY_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        frames.append(frame[list(MATURITY_COLUMNS)].assign(scheme_id=scheme_id))
    if not frames:
        return pd.DataFrame(columns=["scheme_id", *MATURITY_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def meta_analyse_headlines(headlines: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Pool each outcome reported the same way by two or more schemes.

    Returns the table of pooled results (``META_COLUMNS``) and the fitted
    ``MetaResult`` per ``(measure, outcome, method)`` for plotting. Pooling uses REML
    random effects with the Hartung-Knapp interval.
    """
    rows, fits = [], {}
    usable = headlines[
        headlines["estimate"].notna()
        & headlines["std_error"].notna()
        & (headlines["std_error"] > 0)
    ]
    # Comparable means the same outcome, score and method: a scheme may report one
    # outcome several ways (e.g. complete-case and multiply imputed change).
    for (level, measure, outcome, method), group in usable.groupby(
        ["outcome_level", "measure", "outcome", "method"], sort=True
    ):
        if group["scheme_id"].nunique() < 2 or len(group) != group["scheme_id"].nunique():
            continue
        result = fit_random_effects(
            group["estimate"],
            group["std_error"],
            method="REML",
            hartung_knapp=True,
            labels=group["scheme_title"],
            conf_level=POOLED_CONF_LEVEL,
        )
        fits[(measure, outcome, method)] = (result, group)
        rows.append(
            (
                level,
                outcome,
                measure,
                method,
                result.k,
                ", ".join(group["scheme_id"]),
                result.estimate,
                result.std_error,
                result.conf_low,
                result.conf_high,
                result.pi_low,
                result.pi_high,
                result.tau2,
                result.i2,
                result.q_p_value,
            )
        )
    table = pd.DataFrame(rows, columns=list(META_COLUMNS))
    order = table["outcome_level"].map({lvl: i for i, (lvl, _, _) in enumerate(LEVELS)})
    table = (
        table.assign(_order=order.fillna(len(LEVELS)))
        .sort_values(["_order", "measure", "outcome", "method"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    keys = zip(table["measure"], table["outcome"], table["method"], strict=True)
    return table, {key: fits[key] for key in keys}


def _status_html(outputs_dir: Path, statuses: pd.DataFrame) -> str:
    if statuses.empty:
        return "<h3>Schemes</h3><p>No scheme reports were found.</p>"
    rows = []
    for row in statuses.itertuples(index=False):
        report = outputs_dir / row.scheme_id / "report.html"
        name = html.escape(str(row.title))
        if report.exists():
            name = f'<a href="{html.escape(row.scheme_id)}/report.html">{name}</a>'
        reason = "" if row.reason is None else html.escape(str(row.reason))
        rows.append(
            f"<tr><td>{name}</td><td><code>{html.escape(row.scheme_id)}</code></td>"
            f'<td class="{row.status}">{row.status}</td><td>{reason}</td></tr>'
        )
    n_failed = int((statuses["status"] == "failed").sum())
    note = (
        f"<p>{len(statuses)} schemes; {n_failed} could not be reported (reason given).</p>"
        if n_failed
        else f"<p>All {len(statuses)} scheme reports were produced.</p>"
    )
    return (
        "<h3>Schemes</h3>" + note + "<table><thead><tr><th>Scheme report</th><th>Id</th>"
        "<th>Status</th><th>Reason</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _headlines_html(headlines: pd.DataFrame) -> str:
    parts = ["<h3>Headline results by outcome level</h3>"]
    known = [level for level, _, _ in LEVELS]
    groups = [(headlines["outcome_level"] == level, title, text) for level, title, text in LEVELS]
    other = ~headlines["outcome_level"].isin(known)
    if other.any():
        groups.append((other, "Other results", "Results not tagged with a framework level."))
    for mask, title, description in groups:
        rows = headlines[mask]
        parts.append(f"<h4>{html.escape(title)}</h4><p class='note'>{html.escape(description)}</p>")
        if rows.empty:
            parts.append("<p>No scheme reported a result at this level.</p>")
            continue
        table = pd.DataFrame(
            {
                "Scheme": rows["scheme_title"],
                "Outcome": rows["outcome"],
                "Estimate": rows["estimate"].map(_format_number),
                "Confidence interval": [
                    _format_interval(low, high, level)
                    for low, high, level in zip(
                        rows["conf_low"], rows["conf_high"], rows["conf_level"], strict=True
                    )
                ],
                "People": rows["n"].map(_format_count),
                "Method": rows["method"],
                "Data": "headline.csv",
            }
        )
        links = {"Data": [f"{scheme}/tables/headline.csv" for scheme in rows["scheme_id"]]}
        parts.append(
            _table_html(table, numeric=("Estimate", "Confidence interval", "People"), links=links)
        )
    return "".join(parts)


def _meta_html(headlines: pd.DataFrame, meta) -> str:
    table, fits = meta
    parts = [
        "<h3>Pooled estimates</h3><p>Where two or more schemes reported the same outcome "
        "measured the same way, their results are pooled by random-effects meta-analysis "
        "(REML, Hartung-Knapp confidence interval). The prediction interval shows the "
        "range of results a similar new scheme might expect. With few schemes these "
        "intervals are wide; differences between schemes may reflect who they serve and "
        "how they collect data as much as what they do.</p>"
    ]
    if table.empty:
        parts.append("<p>No outcome was reported in the same way by two or more schemes.</p>")
        return "".join(parts)
    display = pd.DataFrame(
        {
            "Outcome": table["outcome"],
            "Method in each scheme": table["method"],
            "Schemes": table["k"].astype(str),
            "Pooled estimate": table["estimate"].map(_format_number),
            f"{POOLED_CONF_LEVEL:.0%} CI": [
                _format_interval(lo, hi)
                for lo, hi in zip(table["conf_low"], table["conf_high"], strict=True)
            ],
            f"{POOLED_CONF_LEVEL:.0%} prediction interval": [
                _format_interval(lo, hi)
                for lo, hi in zip(table["pi_low"], table["pi_high"], strict=True)
            ],
            "I² (%)": table["i2"].map(lambda v: f"{v:.0f}"),
        }
    )
    parts.append(_table_html(display, numeric=tuple(display.columns[2:])))
    return "".join(parts)


def _table_html(frame: pd.DataFrame, *, numeric=(), links=None) -> str:
    """Render ``frame`` as HTML; ``links`` maps a column to one relative href per row."""
    links = links or {}
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    body = []
    for position, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            css = ' class="num"' if column in numeric else ""
            content = html.escape(str(value))
            if column in links:
                content = f'<a href="{html.escape(links[column][position])}">{content}</a>'
            cells.append(f"<td{css}>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _format_number(value) -> str:
    if pd.isna(value):
        return SUPPRESSED
    value = float(value)
    if value.is_integer() and abs(value) >= 10:
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _format_interval(low, high, level=None) -> str:
    """``low to high``, followed by the interval's level when it is given."""
    if pd.isna(low) or pd.isna(high):
        return ""
    interval = f"{_format_number(low)} to {_format_number(high)}"
    return interval if level is None or pd.isna(level) else f"{interval} ({float(level):.0%})"


def _format_count(value) -> str:
    return SUPPRESSED if pd.isna(value) else f"{int(value):,}"


def _worst_rating(ratings: pd.Series) -> str:
    present = [rating for rating in reversed(RATINGS) if rating in set(ratings.dropna())]
    return present[0] if present else ""
