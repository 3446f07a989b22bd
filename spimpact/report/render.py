"""Show a Section in a notebook and write its tables; build the self-contained HTML.

Everything a section shows is written as HTML from the escaped building blocks of
:mod:`spimpact.publish.gate` (never as Markdown the notebook renderer would pass raw
HTML through), and every table is written as CSV through the same gate.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd

from spimpact.publish import gate
from spimpact.publish.disclosure import SUPPRESSED, format_for_publication
from spimpact.publish.section import Section, Table

TABLE_FOOTNOTE = (
    f"{SUPPRESSED} = not shown: a count of 1 to 7, a value that would reveal one, or a "
    "summary of fewer than 8 people. Other counts are rounded to the nearest 5."
)

REPORT_CSS = """
body { font-family: "Segoe UI", Arial, sans-serif; max-width: 1000px; margin: 2em auto;
       color: #212b32; line-height: 1.5; padding: 0 1em; }
h1 { color: #005eb8; } h2 { color: #005eb8; border-bottom: 2px solid #005eb8; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #d8dde0; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f4f5; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 0.3em 0; }
img { max-width: 100%; }
.note { color: #4c6272; font-size: 0.85em; }
.jp-OutputPrompt, .jp-InputPrompt, .prompt, .anchor-link { display: none; }
.alert { border: 3px solid #d5281b; background: #fdf1f0; padding: 0.2em 1em; margin: 1em 0; }
"""


def format_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Round numbers for people (3 significant decimals) and mark withheld cells ``*``."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_float_dtype(values) and not pd.api.types.is_integer_dtype(values):
            out[column] = values.astype(object).map(lambda v: v if pd.isna(v) else _round(v))
    return format_for_publication(out)


def _round(value: float):
    if float(value).is_integer() and abs(value) < 1e12:
        return int(value)
    return float(np.round(value, 3 if abs(value) < 100 else 1))


def table_html(table: Table) -> str:
    """HTML of a publishable table with its caption (cells, headers and caption escaped)."""
    return gate.table(format_table(table.frame), table.caption, na_rep=SUPPRESSED)


def write_tables(section: Section, tables_dir: Path) -> list[Path]:
    """Write each table of ``section`` to ``tables_dir/<name>.csv`` (withheld cells ``*``).

    Cells a spreadsheet would run as a formula are neutralised (``gate.write_csv``).
    """
    tables_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table in section.tables:
        written.append(gate.write_csv(format_table(table.frame), tables_dir / f"{table.name}.csv"))
    return written


def section_html(
    section: Section, *, level: int = 2, tables: tuple[str, ...] | None = None
) -> tuple[str, str]:
    """The escaped HTML before the figures (title, text) and after them (tables, notes).

    ``tables``: each table's ``table_html`` when already made (not made again).
    """
    head = [gate.heading(section.title, level), *(gate.paragraph(p) for p in section.text)]
    tail = list(tables) if tables is not None else [table_html(t) for t in section.tables]
    if section.tables:
        tail.append(gate.note(TABLE_FOOTNOTE))
    tail += [gate.note(note) for note in section.notes]
    return "\n".join(head), "\n".join(tail)


def figure_png(figure) -> bytes:
    """PNG bytes of a figure, without metadata that could vary between runs."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def show(section: Section, *, tables_dir: Path | None = None, level: int = 2) -> None:
    """Display ``section`` in a notebook (Markdown, tables, figures) and save its tables.

    Figures are shown as PNG images and closed, so nothing depends on the notebook's
    matplotlib backend showing open figures at the end of a cell. Text is shown as
    escaped HTML (``section_html``).
    """
    from IPython.display import HTML, Image, display

    head, tail = section_html(section, level=level)
    display(HTML(head))
    for figure in section.figures:
        display(Image(data=figure_png(figure), format="png"))
        plt.close(figure)
    if tail:
        display(HTML(tail))
    if tables_dir is not None:
        write_tables(section, Path(tables_dir))


# --- issue 17: a section framed as an alert box (the "analysis plan changed" box) ---
def show_box(section: Section, *, tables_dir: Path | None = None) -> None:
    """Display ``section`` inside an alert box (``.alert``) and save its tables."""
    from IPython.display import HTML, display

    head, tail = section_html(section, level=2)
    display(HTML(f'<div class="alert">{head}\n{tail}</div>'))
    if tables_dir is not None:
        write_tables(section, Path(tables_dir))


# --- end issue 17 ---


def notebook_to_html(notebook_path: Path, html_path: Path, *, title: str) -> Path:
    """Render an executed notebook as one offline HTML page without code.

    nbconvert's ``basic`` template gives the cell outputs only; they are wrapped in a
    page with one inline style sheet, so nothing is fetched from the network (no
    require.js, no MathJax, no web fonts) and every figure is an embedded PNG. The page's
    Content-Security-Policy (``gate.content_security_policy``) runs no script, allows
    only that style sheet, and no form or ``<base>``.
    """
    from nbconvert import HTMLExporter

    notebook = nbformat.read(notebook_path, as_version=4)
    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(notebook)
    html_path.write_text(gate.page(title, body, css=REPORT_CSS), encoding="utf-8")
    return html_path
