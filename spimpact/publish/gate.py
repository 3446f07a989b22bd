"""The publishing gate: every value that leaves in HTML or CSV passes through here.

* **HTML** is built from a few escaped building blocks (``heading``, ``paragraph``,
  ``note``, ``table``, ``page``). Every piece of text is escaped first; only the markup
  these functions write themselves (``<p>``, ``<strong>``, ``<em>``, ``<code>``,
  ``<blockquote>``, ``<table>`` ...) is ever emitted, so nothing from the data (a
  title, a theme, an error message) can add an element or an attribute: no script, no
  ``<meta http-equiv=refresh>``, no ``<style>``, no link. Section text keeps a small
  Markdown subset for emphasis: ``**bold**``, ``*italic*``, `` `code` `` and ``> quote``.
* **Pages** carry a strict Content-Security-Policy (``content_security_policy``): no
  script, no network, images only as ``data:`` URIs, the one inline style sheet allowed
  by its SHA-256 hash, ``form-action 'none'`` and ``base-uri 'none'``.
* **CSV** cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab
  or carriage return first, unless the cell is a plain number) are prefixed with ``'``
  (``neutralise_formulas``; OWASP "CSV injection").
* **Free-text labels** (feedback themes) are published only when they belong to a
  controlled vocabulary or are short plain labels, unchanged by the scrubber and used
  often enough not to point at one person (``publish_labels``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from spimpact.publish.disclosure import SUPPRESSED
from spimpact.publish.scrub import scrub_text

# --------------------------------------------------------------------------- HTML

_ESCAPABLE = r"\\`*_{}\[\]()#+\-.!|>~"
_BACKSLASHED = re.compile(rf"\\([{_ESCAPABLE}])")
_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
# Private-use characters stand in for backslash-escaped Markdown characters while the
# inline markup is applied; data cannot smuggle them in (they are removed first).
_PRIVATE = 0xF0000


def escape(text) -> str:
    """Text as HTML: ``& < > " '`` escaped, so it can never become markup.

    Examples
    --------
    >>> escape('<meta http-equiv="refresh" content="0">')
    '&lt;meta http-equiv=&quot;refresh&quot; content=&quot;0&quot;&gt;'
    """
    return html.escape(str(text), quote=True)


def inline(text: str) -> str:
    r"""Escape ``text``, then apply ``**bold**``, ``*italic*`` and `` `code` `` markup.

    Backslash escapes (``\*``) keep a character literal. Only ``<strong>``, ``<em>``
    and ``<code>`` can result, whatever the text holds.

    Examples
    --------
    >>> inline("**Note.** Counts under `8` are hidden <b>here</b>")
    '<strong>Note.</strong> Counts under <code>8</code> are hidden &lt;b&gt;here&lt;/b&gt;'
    """
    text = re.sub("[\U000f0000-\U000fffff]", "", str(text))
    text = _BACKSLASHED.sub(lambda m: chr(_PRIVATE + ord(m.group(1))), text)
    parts = _CODE.split(text)
    out = []
    for position, part in enumerate(parts):
        if position % 2:  # inside `code`: literal
            out.append(f"<code>{escape(_restore(part, literal=True))}</code>")
            continue
        part = escape(part)
        part = _STRONG.sub(r"<strong>\1</strong>", part)
        part = _EMPHASIS.sub(r"<em>\1</em>", part)
        out.append(_restore(part))
    return "".join(out)


def _restore(text: str, *, literal: bool = False) -> str:
    def back(match: re.Match) -> str:
        character = chr(ord(match.group()) - _PRIVATE)
        return character if literal else escape(character)

    return re.sub("[\U000f0000-\U000fffff]", back, text)


def heading(text: str, level: int = 2) -> str:
    """``<hN>`` with escaped text (``level`` 1 to 6)."""
    level = min(max(int(level), 1), 6)
    return f"<h{level}>{escape(text)}</h{level}>"


def paragraph(text: str) -> str:
    """One paragraph of section text: ``> `` starts a quote; lines join with spaces."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if lines and all(line.startswith(">") for line in lines):
        body = " ".join(line[1:].strip() for line in lines)
        return f"<blockquote><p>{inline(body)}</p></blockquote>"
    return f"<p>{inline(' '.join(lines))}</p>"


def note(text: str) -> str:
    """A note under a section (small grey text), with the same inline markup."""
    return f'<p class="note">{inline(text)}</p>'


def table(frame: pd.DataFrame, caption: str = "", *, na_rep: str = SUPPRESSED) -> str:
    """An HTML table of ``frame`` with an escaped caption; cells and headers escaped.

    pandas writes the cells (so numbers look as in a notebook) with ``escape=True``;
    the inline style attribute it adds to the header row is removed, since the page's
    policy allows no inline style.
    """
    body = frame.to_html(index=False, border=0, escape=True, na_rep=na_rep)
    body = body.replace(' style="text-align: right;"', "")
    if caption:
        body = body.replace(">", f"><caption>{escape(caption)}</caption>", 1)
    return body


def image(png: bytes, alt: str) -> str:
    """An embedded PNG (``data:`` URI) with escaped alternative text."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline style sheet (``'sha256-…'``)."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


def content_security_policy(css: str) -> str:
    """A policy that lets a self-contained page show text, styles and embedded images only.

    No script runs, nothing is fetched from the network, no form can be submitted, a
    ``<base>`` element cannot redirect links, and the only style allowed is the page's
    own style sheet (by hash: an injected ``<style>`` or ``style=`` attribute is ignored).

    Examples
    --------
    >>> content_security_policy("p{}").split("; ")[:2]
    ["default-src 'none'", 'img-src data:']
    """
    return "; ".join(
        (
            "default-src 'none'",
            "img-src data:",
            f"style-src {style_hash(css)}",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def page(title: str, body: str, *, css: str) -> str:
    """A whole self-contained HTML document with the strict policy above.

    ``body`` must itself have been built from the escaped blocks of this module.
    """
    policy = content_security_policy(css)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{css}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- CSV

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise_cell(value):
    r"""A text cell that a spreadsheet would run as a formula, made inert with a ``'``.

    Numbers (including negative ones, as text or not) are left alone.

    Examples
    --------
    >>> neutralise_cell('=HYPERLINK("http://x","y")'), neutralise_cell("-1.5")
    ('\'=HYPERLINK("http://x","y")', '-1.5')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        if not _PLAIN_NUMBER.fullmatch(value):
            return "'" + value
    return value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every formula-like text cell and column name made inert."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            out[column] = values.map(neutralise_cell, na_action="ignore")
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: Path, *, na_rep: str = "") -> Path:
    """Write a table for publication: formulas neutralised, Unix line ends, no index."""
    neutralise_formulas(frame).to_csv(path, index=False, lineterminator="\n", na_rep=na_rep)
    return path


# ------------------------------------------------------------------ free-text labels

OTHER_LABEL = "other (label not shown)"
_LABEL = re.compile(r"[a-z][a-z'_ -]{0,39}")
_MAX_LABEL_WORDS = 4


def publish_labels(
    labels: pd.Series, vocabulary: Iterable[str], *, counts: pd.Series, min_count: int
) -> pd.Series:
    """Map free-text labels (e.g. feedback themes) to labels that may be published.

    Parameters
    ----------
    labels
        Lower-case labels as recorded.
    vocabulary
        Labels that may always be shown (a controlled vocabulary).
    counts
        How many distinct records carry each label (index: label).
    min_count
        A label outside the vocabulary is shown only when at least this many records
        carry it (use the disclosure threshold + 1): a label typed once is free text
        about one person, not a category.

    Returns
    -------
    pandas.Series
        The label, or ``OTHER_LABEL``. Outside the vocabulary a label must also be a
        short plain label (letters, spaces, ``_``, ``-`` or ``'``; at most 40 characters
        and 4 words: no digits, so no dates, phone or NHS numbers) that the scrubber
        leaves unchanged.

    Examples
    --------
    >>> labels = pd.Series(["confidence", "943 476 5919", "jane dob 01/02/1960"])
    >>> counts = pd.Series(1, index=labels)
    >>> publish_labels(labels, {"confidence"}, counts=counts, min_count=8).tolist()
    ['confidence', 'other (label not shown)', 'other (label not shown)']
    """
    vocabulary = set(vocabulary)

    def publish(label) -> str:
        label = str(label)
        if label in vocabulary:
            return label
        plain = (
            _LABEL.fullmatch(label) is not None
            and len(label.split()) <= _MAX_LABEL_WORDS
            and scrub_text(label) == label
        )
        return label if plain and int(counts.get(label, 0)) >= min_count else OTHER_LABEL

    return labels.map(publish)
