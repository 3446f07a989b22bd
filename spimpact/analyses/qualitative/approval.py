"""Quotes a person approved: the review sheet and the approved-quotes file.

Automatic scrubbing (``spimpact.publish.scrub.scrub_text``) misses names written in
lower case ("my friend maureen came too"), so a quote is published only when a person
has read it and approved it. ``spimpact quotes review params/<scheme_id>.yaml`` writes
the review sheet into the analyst-only tier (``outputs/_analyst/<scheme_id>/``): every
consented candidate quote, scrubbed, with the spans that look like names, places,
phone numbers, e-mails, postcodes or NHS numbers highlighted
(``spimpact.publish.scrub.find_sensitive_spans``). The reviewer copies the lines of
the quotes they approve into ``params/<scheme_id>.approved-quotes.txt``; each line is
a feedback id and the fingerprint of the scrubbed text it approves, so an approval
lapses if the text changes. Unapproved consented quotes appear in the report only
through their themes.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import pandas as pd

from spimpact.files import FileRefused, read_bytes_limited
from spimpact.publish import gate
from spimpact.publish.privacy import ANALYST_ONLY_MARK
from spimpact.publish.scrub import find_sensitive_spans, scrub_text

APPROVALS_MAX_BYTES = 1024 * 1024
REVIEW_COLUMNS = ("feedback_id", "feedback_type", "themes", "text", "fingerprint", "flagged")
_LINE = re.compile(r"([A-Za-z0-9_.:-]{1,64})\s+([0-9a-f]{12})")


class ApprovalsError(ValueError):
    """An approved-quotes file that cannot be read; names the file and line, not values."""


def quote_fingerprint(text: str) -> str:
    """The first 12 hex digits of the SHA-256 of a scrubbed quote.

    Examples
    --------
    >>> quote_fingerprint("I have made real friends at the group.")
    'dedc858a6fcd'
    """
    return hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:12]


def read_approvals(path: Path) -> dict[str, str]:
    """Approved quotes from ``path``: feedback id -> fingerprint (empty when no file).

    One approval a line, ``<feedback_id> <fingerprint>`` as the review sheet lists them;
    blank lines and lines starting with ``#`` are ignored.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        data = read_bytes_limited(path, APPROVALS_MAX_BYTES, what="approved-quotes file")
        text = data.decode("utf-8")
    except (FileRefused, UnicodeDecodeError) as error:
        raise ApprovalsError(f"{path.name}: {error}") from None
    approved = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise ApprovalsError(
                f"{path.name} line {number}: expected '<feedback_id> <12-digit fingerprint>' "
                "as listed in the review sheet"
            )
        approved[match.group(1)] = match.group(2)
    return approved


def review_candidates(feedback: pd.DataFrame, themes: pd.Series) -> pd.DataFrame:
    """Every consented, non-empty comment, scrubbed, with its fingerprint and flagged spans.

    ``themes`` maps feedback id to its published theme labels (comma-separated).
    Returns ``REVIEW_COLUMNS`` in feedback-id order; ``flagged`` lists the kinds of
    span found (e.g. "name, phone").
    """
    consented = feedback[
        feedback["consent_to_quote"].fillna(False).astype(bool)
        & feedback["text"].fillna("").astype(str).str.strip().ne("")
    ].sort_values("feedback_id", kind="stable")
    rows = []
    for row in consented.itertuples(index=False):
        text = scrub_text(row.text)
        kinds = sorted({kind for _, _, kind in find_sensitive_spans(text)})
        rows.append((str(row.feedback_id), row.feedback_type, themes.get(row.feedback_id, ""),
                     text, quote_fingerprint(text), ", ".join(kinds)))  # fmt: skip
    return pd.DataFrame(rows, columns=list(REVIEW_COLUMNS))


def highlight(text: str) -> str:
    """Escaped HTML of ``text`` with each sensitive span in ``<mark title=kind>``."""
    parts, position = [], 0
    for start, end, kind in find_sensitive_spans(text):
        parts.append(html.escape(text[position:start]))
        parts.append(f'<mark title="{html.escape(kind)}">{html.escape(text[start:end])}</mark>')
        position = end
    parts.append(html.escape(text[position:]))
    return "".join(parts)


def write_review_sheet(candidates: pd.DataFrame, folder: Path, *, title: str) -> list[Path]:
    """Write ``quote_review.html`` and ``quote_review.csv`` into ``folder`` (analyst-only).

    The caller chooses ``folder`` in the analyst-only tier (``outputs/_analyst/...``);
    both files carry ``ANALYST_ONLY_MARK``, which the privacy scan refuses in any
    publishable folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(
        f"<tr><td><code>{html.escape(r.feedback_id)}</code></td>"
        f"<td>{html.escape(str(r.feedback_type))}</td><td>{html.escape(str(r.themes))}</td>"
        f"<td>{highlight(r.text)}</td><td>{html.escape(r.flagged) or 'none'}</td>"
        f"<td><code>{html.escape(r.feedback_id)} {r.fingerprint}</code></td></tr>"
        for r in candidates.itertuples(index=False)
    )
    body = (
        f"<p><strong>{html.escape(ANALYST_ONLY_MARK)}</strong></p>"
        f"<h1>Quotes to review: {html.escape(title)}</h1>"
        "<p>Each row is a comment given with consent to quote, after automatic scrubbing. "
        "Highlighted words look like names (including lower-case first names), places, "
        "phone numbers, e-mails, postcodes or NHS numbers: read every quote in full. To "
        "approve a quote, copy its last column into "
        "<code>params/&lt;scheme_id&gt;.approved-quotes.txt</code> (one a line). A "
        "quote whose text changes needs approving again. Quotes not approved are shown "
        "in the report only through their themes.</p>"
        "<table><thead><tr><th>Id</th><th>Type</th><th>Themes</th><th>Scrubbed text</th>"
        "<th>Flagged</th><th>Approval line</th></tr></thead><tbody>" + rows + "</tbody></table>"
    )
    css = (
        "body{font-family:Arial,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top}"
        "mark{background:#ffeb3b;font-weight:bold}"
    )
    sheet = folder / "quote_review.html"
    sheet.write_text(gate.page(f"Quotes to review: {title}", body, css=css), encoding="utf-8")
    table = folder / "quote_review.csv"
    lines = candidates["feedback_id"] + " " + candidates["fingerprint"]
    frame = candidates.assign(approval_line=lines)
    gate.write_csv(pd.concat([pd.DataFrame([{"feedback_id": ANALYST_ONLY_MARK}]), frame]), table)
    return [sheet, table]
