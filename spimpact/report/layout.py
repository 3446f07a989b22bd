"""The scheme report page: commissioner first, printable, accessible, one offline file.

Page one: the scheme's name and period, a row of key-figure cards, three or four
charts and the plain-language summary (plus any extra boxes other parts of the
report hand in). Then each section with its charts first, its interpretation, and
its tables (tables longer than ``LONG_TABLE_ROWS`` rows are collapsed in
``<details>``); every table can be downloaded as CSV from inside the page (an
embedded ``data:`` link, offline). A contents sidebar links every section; the
methods appendix holds the statistical notes, data quality and provenance.

Colours are the NHS identity palette; fonts are the NHS fallback stack (Frutiger
is licensed, so it is used only where installed, then Arial/Helvetica/Liberation
Sans), so nothing is fetched. A print style sheet starts each section on a new
page, keeps figures and short tables whole (``break-inside: avoid``), numbers the
pages (CSS page-margin boxes) and frames each printed figure and table with thin
rules of ``BLOCK_RULE`` colour, which the PDF test uses to prove none is cut.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from spimpact.publish import gate
from spimpact.publish.section import Section, Table

LONG_TABLE_ROWS = 15
# A short table is printed whole (a block) only when its wrapped text fits on a page:
# about PRINTED_LINES lines of table text, PRINTED_CHARS characters across the page.
PRINTED_LINES = 60
PRINTED_CHARS = 130
BLOCK_RULE = "#003087"  # NHS dark blue: used for nothing else on the page

REPORT_CSS = f"""
:root{{--blue:#005eb8;--dark:#003087;--text:#212b32;--grey:#4c6272;--pale:#f0f4f5;
--border:#d8dde0;--green:#007f3b;--red:#d5281b;--warm:#ffb81c}}
*{{box-sizing:border-box}}
body{{font-family:"Frutiger W01",Frutiger,Arial,Helvetica,"Liberation Sans",sans-serif;
margin:0;color:var(--text);line-height:1.5;background:#fff}}
a{{color:var(--blue)}}a:focus{{outline:3px solid var(--warm);background:var(--warm);color:#000}}
.skip{{position:absolute;left:-999px}}.skip:focus{{left:1em;top:1em;z-index:2}}
header.masthead{{background:var(--blue);color:#fff;padding:.8em 1.5em}}
header.masthead h1{{margin:0;font-size:1.7em;line-height:1.2}}
header.masthead p{{margin:.2em 0 0}}
.layout{{display:grid;grid-template-columns:14em minmax(0,1fr);max-width:80em;margin:0 auto}}
nav.contents{{position:sticky;top:0;align-self:start;max-height:100vh;overflow-y:auto;
padding:1em .8em;font-size:.9em;border-right:1px solid var(--border)}}
nav.contents h2{{font-size:1em;margin:0 0 .4em;border:0;color:var(--text)}}
nav.contents ol{{list-style:none;margin:0;padding:0}}nav.contents li{{margin:.15em 0}}
main{{padding:0 1.5em 2em;min-width:0}}#summary h2{{margin-top:.6em}}
h2{{color:var(--blue);border-bottom:2px solid var(--blue);padding-bottom:.15em;margin-top:1.6em}}
h3{{color:var(--text);margin:1em 0 .3em}}
.cards{{list-style:none;display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:.6em;
padding:0;margin:.6em 0}}
.card{{border:1px solid var(--border);border-top:5px solid var(--grey);padding:.4em .6em;
background:#fff;line-height:1.3}}
.card-better{{border-top-color:var(--green)}}.card-worse{{border-top-color:var(--red)}}
.card-unclear{{border-top-color:var(--warm)}}
.card-label{{font-size:.9em;margin:0;color:var(--grey)}}
.card-value{{font-size:1.7em;font-weight:bold;margin:0;line-height:1.2}}
.card p{{margin:.15em 0}}.card-ci,.card-evidence,.card-what{{font-size:.78em;color:var(--grey)}}
.card-verdict{{font-size:.82em}}
.charts{{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:.8em}}
.charts figure{{margin:0}}.charts img{{width:100%;height:11.5em;object-fit:contain}}
.charts figcaption{{margin:0}}
figure{{margin:1em 0}}img{{max-width:100%;height:auto}}
figcaption{{font-size:.85em;color:var(--grey)}}
.alert{{border:3px solid var(--red);background:#fdf1f0;padding:.2em 1em;margin:1em 0}}
.alert h2{{color:var(--red);border:0;margin-top:.4em}}
.box{{border-left:6px solid var(--blue);background:var(--pale);padding:.4em 1em;margin:1em 0}}
.table-wrap{{overflow-x:auto;max-width:100%;margin:.5em 0 1em}}
table{{border-collapse:collapse;font-size:.9em}}
th,td{{border:1px solid var(--border);padding:.3em .6em;text-align:right}}
th{{background:var(--pale)}}td:first-child,th:first-child{{text-align:left}}
caption{{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}}
details{{margin:.5em 0 1em}}summary{{cursor:pointer;color:var(--blue);font-weight:bold}}
.download{{font-size:.85em}}
.note{{color:var(--grey);font-size:.85em}}
blockquote{{border-left:4px solid var(--border);margin:.5em 0;padding:0 1em}}
@media (max-width:60em){{.layout{{grid-template-columns:1fr}}nav.contents{{position:static;
max-height:none;border:0}}.cards{{grid-template-columns:repeat(2,minmax(0,1fr))}}
.charts{{grid-template-columns:1fr}}}}
@page{{size:A4;margin:16mm 14mm 18mm;
@bottom-center{{content:"Page " counter(page) " of " counter(pages);font-size:9pt;color:#4c6272;
font-family:Arial,Helvetica,"Liberation Sans",sans-serif}}}}
@media print{{nav.contents,.skip,.download{{display:none}}.layout{{display:block;max-width:none}}
main{{padding:0}}header.masthead{{background:#fff;color:var(--text);padding:0;
border-bottom:3px solid var(--blue)}}
section.report-section{{break-before:page}}h2,h3{{break-after:avoid}}
.block{{break-inside:avoid;border-top:2px solid {BLOCK_RULE};border-bottom:2px solid {BLOCK_RULE};
padding:2px 0}}
.block img{{max-height:20cm;width:auto;max-width:100%}}.charts img{{height:7.5cm}}
.cards{{grid-template-columns:repeat(3,minmax(0,1fr))}}.card{{break-inside:avoid}}
.charts{{grid-template-columns:repeat(2,minmax(0,1fr))}}
.table-wrap{{overflow:visible}}a{{color:var(--text)}}}}
"""


@dataclass(frozen=True)
class Block:
    """A section placed on the page: its anchor id, heading level and PNG figures."""

    anchor: str
    section: Section
    pngs: tuple[bytes, ...]
    alts: tuple[str, ...]


def csv_link(table: Table, csv_bytes: bytes) -> str:
    """A link that downloads the table's CSV from inside the page (no network).

    The bytes are the ones written to ``tables/<name>.csv`` (formula cells
    neutralised); the link's type is a download, never a page to open.
    """
    data = base64.b64encode(csv_bytes).decode("ascii")
    name = gate.escape(f"{table.name}.csv")
    return (
        f'<p class="download"><a download="{name}" '
        f'href="data:application/octet-stream;base64,{data}">Download this table as CSV '
        f"({name})</a></p>"
    )


def table_block(table: Table, table_html: str, csv_bytes: bytes) -> str:
    """A table in a scrollable, focusable wrapper; long tables collapsed in ``<details>``."""
    rows = len(table.frame)
    link = csv_link(table, csv_bytes)
    label = gate.escape(table.caption or table.name)
    if rows > LONG_TABLE_ROWS:
        return (
            f"<details><summary>Show the table: {label} ({rows} rows)</summary>"
            f'<div class="table-wrap" tabindex="0" role="region" aria-label="{label}">'
            f"{table_html}</div></details>{link}"
        )
    css = "table-wrap block" if fits_a_printed_page(table) else "table-wrap"
    return (
        f'<div class="{css}" tabindex="0" role="region" aria-label="{label}">'
        f"{table_html}</div>{link}"
    )


def fits_a_printed_page(table: Table) -> bool:
    """Whether a short table's wrapped cells fit on one printed page (then it is kept whole).

    Each column gets an equal share of ``PRINTED_CHARS`` characters per line (at least
    10); a row takes as many lines as its longest cell wraps to. A table that would not
    fit (long method descriptions in many columns) may break between rows instead of
    being pushed to a page it overflows anyway.

    >>> import pandas as pd
    >>> fits_a_printed_page(Table("t", "T", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})))
    True
    >>> wide = pd.DataFrame({f"c{i}": ["word " * 60] * 3 for i in range(10)})
    >>> fits_a_printed_page(Table("t", "T", wide))
    False
    """
    frame = table.frame
    chars = max(10, PRINTED_CHARS // max(1, len(frame.columns)))
    header = max((len(str(c)) // chars + 1 for c in frame.columns), default=1)
    lines = header + sum(
        max((len(str(cell)) // chars + 1 for cell in row), default=1)
        for row in frame.itertuples(index=False)
    )
    return lines <= PRINTED_LINES


def figure_html(png: bytes, alt: str, *, caption: str = "", printed: bool = True) -> str:
    """An embedded figure whose alt text states its finding."""
    caption_html = f"<figcaption>{gate.escape(caption)}</figcaption>" if caption else ""
    css = ' class="block"' if printed else ""
    return f"<figure{css}>{gate.image(png, alt)}{caption_html}</figure>"


def contents_html(entries: list[tuple[str, str]]) -> str:
    """The contents sidebar: (anchor, title) pairs."""
    items = "".join(
        f'<li><a href="#{gate.escape(anchor)}">{gate.escape(title)}</a></li>'
        for anchor, title in entries
    )
    return f'<nav class="contents" aria-label="Contents"><h2>Contents</h2><ol>{items}</ol></nav>'


def box_html(section: Section) -> str:
    """An extra box for page one (e.g. a refresh notice) from a small section."""
    body = "".join(gate.paragraph(p) for p in section.text)
    return f'<aside class="box"><h3>{gate.escape(section.title)}</h3>{body}</aside>'


def alert_html(section: Section, tables: list[str]) -> str:
    """A prominent alert for the top of page one (e.g. "Analysis plan changed on DATE")."""
    body = "".join(gate.paragraph(p) for p in section.text) + "".join(tables)
    return f'<div class="alert">{gate.heading(section.title, 2)}{body}</div>'


def page_html(
    *,
    title: str,
    period: str,
    cards: str,
    charts: list[str],
    summary: Section | None,
    boxes: list[Section],
    findings: list[str],
    appendix: list[str],
    contents: list[tuple[str, str]],
    alerts: list[str] = (),
) -> str:
    """The whole report page (escaped parts only) with its strict policy.

    ``alerts`` (from ``alert_html``) open page one, above the key figures.
    """
    summary_html = "".join(gate.paragraph(p) for p in summary.text) if summary else ""
    charts_html = f'<div class="charts">{"".join(charts)}</div>' if charts else ""
    body = (
        '<a class="skip" href="#main">Skip to the report</a>'
        f'<header class="masthead"><h1>{gate.escape(title)}: impact evaluation</h1>'
        f"<p>{gate.escape(period)}</p></header>"
        f'<div class="layout">{contents_html(contents)}<main id="main">'
        '<section id="summary" aria-labelledby="summary-h">'
        f"{''.join(alerts)}"
        '<h2 id="summary-h">Summary for commissioners</h2>'
        f"{cards}{charts_html}{summary_html}{''.join(box_html(b) for b in boxes)}</section>"
        + "".join(findings)
        + (
            '<section id="appendix" class="report-section"><h2>Appendix: methods and '
            f"technical detail</h2>{''.join(appendix)}</section>"
            if appendix
            else ""
        )
        + "</main></div>"
    )
    return gate.page(f"{title}: impact evaluation", body, css=REPORT_CSS)
