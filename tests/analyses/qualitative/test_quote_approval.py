"""Quotes a person approved: lower-case names, the review sheet and the approvals file."""

from __future__ import annotations

import pandas as pd
import pytest
from test_qualitative import fabricated_scheme, params

from spimpact.analyses.qualitative import analyse_feedback, qualitative_section
from spimpact.analyses.qualitative.approval import (
    ApprovalsError,
    quote_fingerprint,
    read_approvals,
    review_candidates,
    write_review_sheet,
)
from spimpact.io import SchemeData
from spimpact.publish.privacy import ANALYST_ONLY_MARK, scan_outputs
from spimpact.publish.scrub import find_sensitive_spans, first_names, scrub_text

LOWER_CASE_NAME = "my friend maureen from the group came too and now we go every week together"


def scheme_with_lower_case_name(tmp_path):
    scheme, scores, _ = fabricated_scheme(tmp_path)
    feedback = scheme.feedback.copy()
    feedback.loc[feedback["feedback_id"] == "F000", "text"] = LOWER_CASE_NAME
    return SchemeData(**{**scheme.__dict__, "feedback": feedback}), scores


def test_scrubbing_alone_misses_a_lower_case_name_but_the_gazetteer_flags_it():
    assert "maureen" in scrub_text(LOWER_CASE_NAME)  # why a person must approve quotes
    spans = find_sensitive_spans(LOWER_CASE_NAME)
    assert [(LOWER_CASE_NAME[a:b], kind) for a, b, kind in spans] == [("maureen", "name")]
    assert len(first_names()) > 300 and "maureen" in first_names()


@pytest.mark.parametrize(
    ("text", "found", "kind"),
    [
        ("ring 07700 900123 please", "07700 900123", "phone"),
        ("write to jo.bloggs@example.org", "jo.bloggs@example.org", "email"),
        ("we live at LS6 2AB now", "LS6 2AB", "postcode"),
        ("my number is 943 476 5919 ok", "943 476 5919", "NHS number"),  # valid check digit
        ("I went to the club in Harrogate", "Harrogate", "place"),
        ("then Sarah rang", "Sarah", "name"),
    ],
)
def test_sensitive_spans_by_kind(text, found, kind):
    assert (found, kind) in [(text[a:b], k) for a, b, k in find_sensitive_spans(text)]


def test_ten_digits_failing_the_nhs_check_are_not_an_nhs_number():
    text = "reference 943 476 5910 only"  # check digit should be 9
    assert all(kind != "NHS number" for _, _, kind in find_sensitive_spans(text))


def test_placeholders_are_not_flagged_again():
    assert find_sensitive_spans("[name] helped me on [date] at [place].") == []


def test_unapproved_lower_case_name_is_never_published(tmp_path):
    scheme, scores = scheme_with_lower_case_name(tmp_path)
    for approved in (None, {}, {"F000": "0" * 12}):  # none, empty, a stale fingerprint
        section = qualitative_section(scheme, scores, params=params(tmp_path), approved=approved)
        text = "\n".join(section.text)
        assert "maureen" not in text
        assert "shown only through its themes: confidence" in text
        assert not any(line.startswith(">") for line in section.text)


def test_approved_quotes_appear_and_only_they(tmp_path):
    scheme, scores = scheme_with_lower_case_name(tmp_path)
    candidates = review_candidates(scheme.feedback, pd.Series(dtype=str))
    assert candidates["feedback_id"].tolist() == ["F000", "F001", "F030"]  # consented only
    approved = {"F001": candidates.set_index("feedback_id").loc["F001", "fingerprint"]}
    result = analyse_feedback(scheme, scores, params=params(tmp_path), approved=approved)
    assert result.quotes["feedback_id"].tolist() == ["F001"]
    assert result.awaiting_review_themes == ("confidence", "housing")
    text = "\n".join(qualitative_section(scheme, scores, params=params(tmp_path),
                                         approved=approved).text)  # fmt: skip
    assert "> “I feel better.”" in text and "maureen" not in text


def test_an_approval_lapses_when_the_text_changes(tmp_path):
    scheme, scores = scheme_with_lower_case_name(tmp_path)
    approved = {"F000": quote_fingerprint("I feel better.")}  # approved before the edit
    result = analyse_feedback(scheme, scores, params=params(tmp_path), approved=approved)
    assert result.quotes.empty


def test_read_approvals(tmp_path):
    path = tmp_path / "x.approved-quotes.txt"
    assert read_approvals(path) == {}
    path.write_text("# reviewed by J. Analyst\n\nF001 0123456789ab\n", encoding="utf-8")
    assert read_approvals(path) == {"F001": "0123456789ab"}
    path.write_text("F001 approved\n", encoding="utf-8")
    with pytest.raises(ApprovalsError, match=r"line 1: expected"):
        read_approvals(path)


def test_review_sheet_highlights_spans_and_is_refused_in_a_publishable_folder(tmp_path):
    scheme, _ = scheme_with_lower_case_name(tmp_path)
    candidates = review_candidates(scheme.feedback, pd.Series(dtype=str))
    sheet, table = write_review_sheet(candidates, tmp_path / "_analyst" / "x", title="Test")
    page = sheet.read_text(encoding="utf-8")
    assert ANALYST_ONLY_MARK in page and '<mark title="name">maureen</mark>' in page
    assert f"F000 {quote_fingerprint(LOWER_CASE_NAME)}" in page
    assert ANALYST_ONLY_MARK in table.read_text(encoding="utf-8")
    published = tmp_path / "outputs" / "x"
    published.mkdir(parents=True)
    (published / "renamed.html").write_bytes(sheet.read_bytes())
    scan = scan_outputs(published, scheme)
    assert "analyst-only file" in set(scan.findings["kind"])


def test_privacy_scan_finds_unapproved_consented_words(tmp_path):
    scheme, _ = scheme_with_lower_case_name(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text(f"<p>{LOWER_CASE_NAME}</p>", encoding="utf-8")
    assert scan_outputs(out, scheme).clean  # consented: allowed by consent alone
    scan = scan_outputs(out, scheme, approved_quotes=["F001"])
    assert "feedback text without consent" in set(scan.findings["kind"])
    assert scan_outputs(out, scheme, approved_quotes=["F000"]).clean
