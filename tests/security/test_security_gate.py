"""The publishing gate: HTML from escaped blocks under a strict policy, formula-safe CSV."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pandas as pd
import pytest
from hostile import FORMULAS, MARKUP, NHS_NUMBER, SCRIPT, TITLE, leaks

from spimpact.paths import OUTPUT_MARKER
from spimpact.publish import gate
from spimpact.publish.section import HEADLINE_COLUMNS, Section, Table, build_section
from spimpact.report.render import REPORT_CSS, section_html, write_tables
from spimpact.report.summary import build_summary

# The only markup the gate writes in a page body, and the attributes it may carry.
ALLOWED = {
    "p": {"class"},
    "h1": set(),
    "h2": set(),
    "strong": set(),
    "em": set(),
    "code": set(),
    "blockquote": set(),
    "table": {"class", "border"},
    "caption": set(),
    "thead": set(),
    "tbody": set(),
    "tr": set(),
    "th": set(),
    "td": set(),
}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, set[str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name for name, _ in attrs}))


def _markup(fragment: str) -> list[tuple[str, set[str]]]:
    parser = _Tags()
    parser.feed(fragment)
    return parser.tags


def _only_gate_markup(fragment: str) -> None:
    for tag, attributes in _markup(fragment):
        assert tag in ALLOWED, (tag, fragment)
        assert attributes <= ALLOWED[tag], (tag, attributes, fragment)


@pytest.mark.parametrize("payload", MARKUP, ids=range(len(MARKUP)))
@pytest.mark.parametrize("block", ["heading", "paragraph", "quote", "note"])
def test_no_payload_becomes_markup(payload, block):
    text = f"**Bold** and `code` then {payload}"
    html = {
        "heading": lambda: gate.heading(payload),
        "paragraph": lambda: gate.paragraph(text),
        "quote": lambda: gate.paragraph(f"> “{text}”"),
        "note": lambda: gate.note(text),
    }[block]()
    _only_gate_markup(html)
    assert "javascript:" not in html or "href" not in html


def test_section_html_escapes_every_part():
    section = Section(
        title=TITLE,
        text=(f"**{SCRIPT}** {MARKUP[2]}", f"> {MARKUP[3]}"),
        tables=(
            Table(
                "t",
                f"caption {SCRIPT}",
                pd.DataFrame({f"col {MARKUP[1]}": [MARKUP[4], FORMULAS[0]], "n": [10, 15]}),
            ),
        ),
        notes=(f"note {MARKUP[5]} {MARKUP[6]}",),
    )
    head, tail = section_html(section)
    _only_gate_markup(head + tail)
    assert "&lt;script&gt;" in head and "&lt;meta http-equiv=&quot;refresh&quot;" in head


def test_section_errors_are_published_without_values():
    def broken():
        raise ValueError(f"cannot parse '{NHS_NUMBER}' in /srv/data/{SCRIPT}.csv at 01/02/1960")

    section = build_section("Broken", broken)
    text = " ".join(section.text)
    assert NHS_NUMBER not in text and "01/02/1960" not in text and "/srv" not in text
    assert text.startswith("This section could not be produced: ValueError: cannot parse")


def test_page_policy_is_strict_and_allows_only_its_own_style():
    page = gate.page(TITLE, gate.paragraph("x"), css=REPORT_CSS)
    head = page.split("</head>")[0]
    policy = head.split('Content-Security-Policy" content="')[1].split('"')[0]
    policy = policy.replace("&#x27;", "'")
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'none'" and directives["img-src"] == "data:"
    assert directives["style-src"] == gate.style_hash(REPORT_CSS)
    assert "unsafe-inline" not in policy and "script-src" not in policy  # default: none
    assert directives["form-action"] == "'none'" and directives["base-uri"] == "'none'"
    assert head.count("<style>") == 1 and "<script" not in page
    assert "&lt;script&gt;" in head  # the title is escaped too


@pytest.mark.parametrize("formula", FORMULAS)
def test_formula_cells_are_neutralised(tmp_path, formula):
    frame = pd.DataFrame({formula: [formula, "-1.5", "+2", "1e-3", "plain"], "x": [1, 2, 3, 4, 5]})
    write_tables(Section("s", tables=(Table("t", "c", frame),)), tmp_path)
    written = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)
    assert written.columns[0] == "'" + formula
    assert written.iloc[:, 0].tolist() == ["'" + formula, "-1.5", "+2", "1e-3", "plain"]
    assert leaks(tmp_path) == []


def test_icb_summary_escapes_and_neutralises_what_schemes_published(tmp_path):
    outputs = tmp_path / "outputs"
    folder = outputs / "valley"
    (folder / "tables").mkdir(parents=True)
    (outputs / OUTPUT_MARKER).write_text("")
    status = {"scheme_id": "valley", "title": TITLE, "status": "failed", "reason": MARKUP[3]}
    (folder / "status.json").write_text(json.dumps(status))
    headline = pd.DataFrame(
        [["person", FORMULAS[1], "swemwbs_metric", 1.0, 0.5, 0.1, 2.0, 20, FORMULAS[3], 0.95]],
        columns=list(HEADLINE_COLUMNS),
    )
    headline.to_csv(folder / "tables" / "headline.csv", index=False)
    index = build_summary(outputs).read_text(encoding="utf-8")
    body = index.split("<body>")[1]
    assert "<script" not in body and "<meta" not in body and "<style" not in body
    assert "Content-Security-Policy" in index and "unsafe-inline" not in index
    (folder / "tables" / "headline.csv").unlink()  # the test's own input, written raw
    assert leaks(outputs) == []
    summary = pd.read_csv(outputs / "headline_estimates.csv", dtype=str)
    assert summary.loc[0, "scheme_title"].startswith("'=")
    assert summary.loc[0, "outcome"] == "'" + FORMULAS[1]


def test_theme_labels_are_published_only_through_the_vocabulary_or_as_plain_common_labels():
    labels = pd.Series(
        ["confidence", "garden club", "garden club", "943 476 5919", SCRIPT, "=1+1", "jane"]
    )
    counts = pd.Series({"garden club": 8, "jane": 1, "943 476 5919": 9, SCRIPT: 9, "=1+1": 9})
    published = gate.publish_labels(labels, {"confidence"}, counts=counts, min_count=8)
    assert (
        published.tolist() == ["confidence", "garden club", "garden club"] + [gate.OTHER_LABEL] * 4
    )
