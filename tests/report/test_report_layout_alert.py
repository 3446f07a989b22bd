"""The analysis-plan alert (issue 17) on the directly rendered page (issue 16)."""

from __future__ import annotations

import pandas as pd

from spimpact.publish.section import Section, Table
from spimpact.report import layout, page


def plan_box() -> Section:
    changes = pd.DataFrame(
        {"item": ["estimand"], "before": ["a <b>"], "after": ["c"], "changed_on": ["2026-03-31"]}
    )
    return Section(
        title="Analysis plan changed on 2026-03-31",
        text=("**The analysis plan changed on 2026-03-31**.",),
        tables=(Table("analysis_plan_changes", "Analysis plan: items that changed", changes),),
    )


def page_with(alerts: list[str]) -> str:
    return layout.page_html(
        title="Valley",
        period="Referrals from 2025",
        cards='<ul class="cards"></ul>',
        charts=[],
        summary=Section(title="Summary for commissioners", text=("All well.",)),
        boxes=[],
        alerts=alerts,
        findings=['<section id="s-overview"><h2>Overview</h2></section>'],
        appendix=[],
        contents=[("summary", "Summary for commissioners")],
    )


def test_the_plan_alert_opens_page_one_above_the_key_figures():
    section = plan_box()
    csv = section.tables[0].frame.to_csv(index=False).encode()
    alert = page._alert_html(section, (), (), [csv], page._tables_html(section))
    html = page_with([alert])
    start = html.index('<div class="alert"><h2>Analysis plan changed on 2026-03-31</h2>')
    assert start < html.index("Summary for commissioners</h2>") < html.index('class="cards"')
    assert "a &lt;b&gt;" in html and "<b>" not in html.split("<body>")[1]  # escaped
    assert 'download="analysis_plan_changes.csv"' in alert


def test_no_alert_when_the_plan_did_not_change():
    assert page._alert_html(Section(title=""), (), (), [], ()) == ""
    assert 'class="alert"' not in page_with([])
