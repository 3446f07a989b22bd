"""The rendered scheme reports: commissioner-first page, alt text, tables, CSV downloads."""

from __future__ import annotations

import base64
import re
from html import unescape

import pytest

from spimpact.report.layout import LONG_TABLE_ROWS

pytestmark = pytest.mark.e2e

GENERIC = ("No description has been provided", "image", "figure", "chart")


def pages(rendered_reports):
    outputs, outcomes = rendered_reports
    return [
        (o.scheme_id, outputs / o.scheme_id, (outputs / o.scheme_id / "report.html").read_text())
        for o in outcomes
    ]


def test_page_one_has_the_five_key_figure_cards_and_charts(rendered_reports):
    for name, _, html in pages(rendered_reports):
        summary = html[html.index('<section id="summary"') : html.index("</section>")]
        labels = re.findall(r'<h3 class="card-label">([^<]*)</h3>', summary)
        assert labels == [
            "People referred",
            "Referred per 1,000 residents",
            "Wellbeing change",
            "GP attendance change",
            "Follow-up rate",
        ], name
        # each card gives a verdict and its strength of evidence in words
        assert summary.count('class="card-verdict"') == 5, name
        assert len(re.findall(r"(Stronger|Moderate|Weaker) evidence|No estimate", summary)) == 5
        # an estimate says what it measures (a bare "-552" would not)
        cards = re.findall(r'<li class="card [^"]*">(.*?)</li>', summary)
        for card in cards[2:4]:  # wellbeing and GP attendance change
            if "not available" not in card:
                assert 'class="card-what"' in card, (name, card)
        if name == "riverside":
            assert "clinical appointments per 1,000 clients per year" in cards[3], cards[3]
        charts = summary[summary.index('<div class="charts">') :]
        assert 3 <= charts.count("<img ") <= 4, name
        assert summary.index('class="cards"') < summary.index('class="charts"')


def test_every_figure_has_alt_text_stating_its_finding(rendered_reports):
    for name, _, html in pages(rendered_reports):
        alts = re.findall(r'<img alt="([^"]*)"', html)
        assert len(alts) == html.count("<img "), name
        for alt in alts:
            assert alt.startswith("Chart for "), (name, alt)
            # numbers read from the plotted data, not a generic description
            assert re.search(r"\d", alt.split(". ", 1)[1]), (name, alt)
            assert alt.strip(". ").lower() not in {g.lower() for g in GENERIC}
            assert "No description has been provided" not in alt


def test_long_tables_are_collapsed_and_every_table_downloads_as_its_csv(rendered_reports):
    for name, folder, html in pages(rendered_reports):
        links = re.findall(
            r'<a download="([^"]+)" href="data:application/octet-stream;base64,([^"]+)">', html
        )
        assert links, name
        for file_name, data in links:
            assert base64.b64decode(data) == (folder / "tables" / file_name).read_bytes()
        for details in re.findall(r"<details>.*?</details>", html, flags=re.S):
            rows = details.count("<tr>") - 1  # header row
            assert rows > LONG_TABLE_ROWS, name
        shown = re.sub(r"<details>.*?</details>", "", html, flags=re.S)
        for table in re.findall(r"<table.*?</table>", shown, flags=re.S):
            assert table.count("<tr>") - 1 <= LONG_TABLE_ROWS, name


def test_headings_are_in_order_and_sections_are_in_the_contents(rendered_reports):
    for name, _, html in pages(rendered_reports):
        body = html[html.index("<body>") :]
        levels = [int(level) for level in re.findall(r"<h([1-6])[ >]", body)]
        assert levels[0] == 1 and levels.count(1) == 1, name
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), name
        anchors = re.findall(r'<a href="#([^"]+)">', body)
        for anchor in anchors:
            assert f'id="{anchor}"' in body, (name, anchor)
        assert "appendix" in anchors and "summary" in anchors


def test_page_keeps_the_strict_policy_and_no_inline_style(rendered_reports):
    for name, _, html in pages(rendered_reports):
        head = unescape(html[: html.index("</head>")])
        assert "default-src 'none'" in head and "style-src 'sha256-" in head, name
        body = html[html.index("</head>") :]
        assert not re.search(r"\sstyle\s*=|<script|<style|<link", body), name
