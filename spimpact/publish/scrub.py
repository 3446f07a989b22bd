"""Scrub free text before it is quoted: what may leave the building from a comment.

Feedback and case studies can name people, places, dates and contact details. Quotes
pass ``scrub_text`` before any report shows them; it is rule-based and deliberately
over-inclusive (see its Notes), so quotes are shown only with consent and should still
be read by a person before publication.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

import numpy as np

from spimpact.identifiers import is_valid_nhs_number

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAYS = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|"
    "fri|sat|sun"
)
_ORDINAL_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_MONTH = rf"(?:{_MONTHS})\.?"
_YEAR = r"(?:19|20)\d{2}"

_EMAIL = re.compile(r"\b[\w.+'-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"\b(?:https?://|www\.)\S+?(?=[.,;:!?)]*(?:\s|$))", re.IGNORECASE)
# NHS numbers: 10 digits, optionally grouped 3-3-4 with spaces or hyphens.
_NHS_NUMBER = re.compile(r"(?<![\d+])\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
# UK phone numbers: +44 or 0, then 9-10 more digits grouped with spaces, hyphens,
# dots or brackets; the digit count is checked after matching.
_PHONE = re.compile(r"(?<![\w+])(?:\+\s?44[\s.-]?(?:\(0\)[\s.-]?)?|\(?0)\d[\d\s().-]{7,14}\d(?!\d)")
_POSTCODE = re.compile(
    r"\b(?:GIR\s?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?\s*\d[ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE
)
# An outward code on its own ("LS6", "M14") in capitals.
# Questionnaire names shaped like an outward code (EQ5D, SF36, SF12) are kept.
_POSTCODE_DISTRICT = re.compile(r"\b(?!EQ5D\b|SF36\b|SF12\b)[A-PR-UWYZ][A-HK-Y]?\d{1,2}[A-Z]?\b")
_DATES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",  # 2024-03-12
        r"\b\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})\b",  # 12/03/2024, 12.3.24
        rf"\b(?:(?:{_WEEKDAYS})\.?,?\s+(?:the\s+)?)?{_ORDINAL_DAY}\s+(?:of\s+)?{_MONTH}"
        rf"(?:,?\s+(?:{_YEAR}|'?\d{{2}}))?\b",  # Tuesday 4th of June 2024, 12 Mar 24
        rf"\b(?:(?:{_WEEKDAYS})\.?,?\s+)?{_MONTH}\s+(?:the\s+)?{_ORDINAL_DAY}(?:,?\s+{_YEAR})?\b",
        rf"\b{_MONTH}\s+{_YEAR}\b",  # March 2024
    )
)
_STREET_SUFFIX = (
    "street|st|road|rd|avenue|ave|lane|ln|close|drive|way|crescent|court|ct|place|pl|"
    "terrace|gardens|grove|hill|square|walk|mews|row|parade|rise|view|green|boulevard"
)
_NAME_WORD = r"[A-Z][a-zA-Z'’-]+"
_ADDRESS = re.compile(
    rf"(?:\b(?i:flat|apartment|unit)\s+\d+[a-zA-Z]?,?\s+)?\b\d{{1,4}}[a-zA-Z]?,?\s+"
    rf"(?:{_NAME_WORD}\s+){{1,3}}(?i:(?:st|rd|ave|ln|ct|pl)\.|(?:{_STREET_SUFFIX})\b)",
)
_NAMED_STREET = re.compile(rf"\b(?:{_NAME_WORD}\s+){{1,3}}(?:{_STREET_SUFFIX.title()})\b")
_TITLES = (
    "Mr|Mrs|Ms|Miss|Mx|Dr|Doctor|Prof|Professor|Sir|Dame|Lady|Lord|Rev|Revd|Reverend|Father|"
    "Sister|Nurse|Cllr|Councillor|Auntie|Aunty|Uncle|Nan|Grandad|Granny"
)
_TITLED_NAME = re.compile(
    rf"\b(?:{_TITLES})\b\.?(?:\s+(?:[A-Z]\.?\s+)*{_NAME_WORD})+",
)
_CAPITALISED = re.compile(r"(?<![\w\[])[A-Z][a-zA-Z'’-]*(?![\w\]])")
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n]|[\"“‘(])\s*$")
_PLACE_PREPOSITIONS = {"in", "at", "from", "to", "near", "into", "outside", "around", "towards"}

# Capitalised words kept anywhere: not identifying on their own.
_ALWAYS_KEEP = frozenset(
    """i i'm i've i'd i'll nhs gp gps a&e ok tv uk england english scotland scottish wales welsh
    britain british ireland irish europe european covid covid-19 christmas easter ramadan eid
    diwali monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december god""".split()
)
# Common words that may start a sentence; any other sentence-initial capitalised word
# is treated as a possible name (we cannot tell "John helped" from "Walking helped").
_SENTENCE_STARTERS = frozenset(
    """a about after again all also although always an and another any anyway as at back
    because before being besides both but by can coming could did do does doing don't
    during each even ever every everyone everything finally first for from getting go going
    good had has have having he he's her here hers him his how however i if in instead is
    it it's its just last later let like little looking lots many maybe me meeting more most
    much my myself never next no not nothing now of often on once one only or other others
    our out over people perhaps please really since so some someone something sometimes
    still such thank thanks that that's the their them then there there's these they
    they're this those though through to today too twice under until up us very was we
    we're well were what when where whether which while who why will with within without
    would yes yesterday yet you you're your being feeling having joining taking talking
    attending before my since life things everybody nobody nowadays overall sadly luckily
    hopefully honestly definitely initially eventually recently she she's he'd she'd we've
    we'd they've they'd you've you'd i'd it'll call ring phone text email write visit come
    came went get got give gave take took make made keep kept find found feel felt know knew
    think thought see saw say said tell told ask asked help helped helping try tried trying
    walking gardening cooking singing painting reading swimming dancing volunteering
    knitting running cycling fishing talking listening learning working living meeting
    waiting sitting seeing having without despite given although thankfully fortunately
    unfortunately personally basically actually certainly obviously apparently suddenly
    slowly gradually generally usually normally mostly mainly sometimes occasionally
    afterwards beforehand meanwhile otherwise instead anyhow alright okay oh ah hi hello
    dear sorry great brilliant amazing lovely nice fantastic wonderful excellent fab super
    best better worse worst bad poor hard easy new old big small two three four five
    several few none nobody anyone anybody somebody everywhere somewhere nowhere anywhere
    home work money food housing debt benefits loneliness isolation confidence seen started
    met joined attended enjoyed loved liked wanted needed used moved stopped lost left felt
    near post postcode phone mobile address contact email tel telephone number name date
    since until nearly almost around approximately about following regarding re group
    groups session sessions class classes course courses staff volunteers everyone
    somehow""".split()
)


def scrub_text(text: str) -> str:
    """Remove identifying details from free text before it can be quoted.

    Replaces e-mail addresses, web links, NHS numbers, UK phone numbers, postcodes,
    dates, street addresses, titled names ("Mrs Jane O'Neil"), and other capitalised
    words that may be names or places, with bracketed placeholders such as
    ``[name]``, ``[place]``, ``[date]``, ``[phone]``.

    Parameters
    ----------
    text
        Free text, e.g. a feedback comment.

    Returns
    -------
    str
        The scrubbed text. Missing input (``None``/NaN) gives ``""``.

    Notes
    -----
    Rule-based and deliberately over-inclusive, following the "anonymise first"
    practice for published outputs (ICO Anonymisation code of practice; ISB 1523):
    a capitalised word that is not a common sentence starter or a generic term
    (NHS, GP, weekdays, months) is removed even if it is harmless. Names written in
    lower case ("my friend john") cannot be recognised; quotes are therefore shown
    only when ``consent_to_quote`` is true, and should still be read by a person
    before publication.

    Examples
    --------
    >>> scrub_text("Mrs Jane Smith rang me on 07700 900123 on 12/03/2024.")
    '[name] rang me on [phone] on [date].'
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    text = str(text)
    text = _EMAIL.sub("[email]", text)
    text = _URL.sub("[link]", text)
    text = _NHS_NUMBER.sub(_nhs_or_phone, text)
    text = _PHONE.sub(_phone_if_plausible, text)
    text = _POSTCODE.sub("[postcode]", text)
    for pattern in _DATES:
        text = pattern.sub("[date]", text)
    text = _ADDRESS.sub("[address]", text)
    text = _NAMED_STREET.sub("[address]", text)
    text = _POSTCODE_DISTRICT.sub("[postcode]", text)
    text = _TITLED_NAME.sub("[name]", text)
    text = _CAPITALISED.sub(lambda m: _scrub_capitalised(m, text), text)
    # "[name] [name]" from a first name and surname becomes one placeholder.
    text = re.sub(
        r"\[(name|place)\](?:['’]s)?(?:[\s-]+\[(?:name|place)\](?:['’]s)?)+", r"[\1]", text
    )
    return text


def _nhs_or_phone(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[phone]" if digits.startswith("0") else "[NHS number]"


def _phone_if_plausible(match: re.Match) -> str:
    found = match.group()
    digits = re.sub(r"\D", "", found)
    if digits.startswith("44"):
        digits = "0" + digits[2:].removeprefix("0")
    if len(digits) < 10:
        return found
    if len(digits) == 11 or len(digits) == 10:
        return "[phone]"
    # The match ran on into a following number ("0113 496 0000 2 times"): a UK number
    # has at most 11 digits, so scrub those and keep the rest.
    seen = 0
    for position, character in enumerate(found):
        seen += character.isdigit()
        if seen == 11:
            return "[phone]" + found[position + 1 :]
    return "[phone]"


def _scrub_capitalised(match: re.Match, text: str) -> str:
    word = match.group()
    possessive = re.search(r"['’]s$", word)
    suffix = possessive.group() if possessive else ""
    bare = word[: len(word) - len(suffix)].lower()
    if bare in _ALWAYS_KEEP or word.lower() in _ALWAYS_KEEP:
        return word
    before = text[: match.start()]
    if _SENTENCE_END.search(before):
        return word if word.lower() in _SENTENCE_STARTERS else "[name]" + suffix
    if word.isupper() and len(word) > 1:
        return word  # acronyms (CBT, MIND) are organisations or terms, not people
    previous = re.findall(r"[A-Za-z]+", before[-20:])
    if previous and previous[-1].lower() in _PLACE_PREPOSITIONS:
        return "[place]" + suffix
    return "[name]" + suffix


# --- issue 17: spans a reviewer must check before a quote is approved -------------
GAZETTEER_FILE = "first_names_ons_en_gb.csv"
SPAN_KINDS = ("name", "place", "phone", "email", "postcode", "NHS number")
_WORDS = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_DIGIT_RUN = re.compile(r"(?<![\d])\d[\d \-]{8,14}\d(?![\d])")


@cache
def first_names() -> frozenset[str]:
    """The names gazetteer: first names common in England and Wales, lower case.

    From the ONS baby names reference tables as compiled by Faker (MIT); see
    ``spimpact/data/README.md``.

    Examples
    --------
    >>> "maureen" in first_names()
    True
    """
    text = files("spimpact").joinpath("data", GAZETTEER_FILE).read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines()[1:] if line.strip())


def find_sensitive_spans(text: str) -> list[tuple[int, int, str]]:
    """Spans of ``text`` that look identifying: ``(start, end, kind)``, sorted, disjoint.

    Kinds are ``SPAN_KINDS``: names, places, phone numbers, e-mails, postcodes and NHS
    numbers.

    Meant for the person who approves quotes (``spimpact quotes review``), so it is
    over-inclusive: a word of the names gazetteer (``first_names``) is flagged in any
    case ("my friend maureen"), a capitalised word that is not a common sentence
    starter or generic term is flagged as a possible name (or place, after "in", "at",
    "from" ...), and a run of 10 digits passing the NHS number check digit is flagged
    whatever its spacing. Placeholders left by ``scrub_text`` ("[name]") are not flagged.

    Examples
    --------
    >>> text = "my friend maureen came too"
    >>> [(text[a:b], kind) for a, b, kind in find_sensitive_spans(text)]
    [('maureen', 'name')]
    """
    text = "" if text is None else str(text)
    spans: list[tuple[int, int, str]] = []
    for pattern, kind in ((_EMAIL, "email"), (_POSTCODE, "postcode"),
                          (_POSTCODE_DISTRICT, "postcode")):  # fmt: skip
        spans += [(m.start(), m.end(), kind) for m in pattern.finditer(text)]
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if len(digits) == 10 and is_valid_nhs_number(digits):
            spans.append((match.start(), match.end(), "NHS number"))
        elif digits.startswith(("0", "44")) and len(digits) in (10, 11, 12):
            spans.append((match.start(), match.end(), "phone"))
    names = first_names()
    for match in _WORDS.finditer(text):
        word = match.group()
        bare = re.sub(r"['’]s$", "", word)
        if _inside_placeholder(text, match.start()):
            continue
        if bare.lower() in names:
            spans.append((match.start(), match.start() + len(bare), "name"))
        elif word[0].isupper():
            kept = _scrub_capitalised(match, text)
            if kept.startswith("[place]"):
                spans.append((match.start(), match.start() + len(bare), "place"))
            elif kept.startswith("[name]"):
                spans.append((match.start(), match.start() + len(bare), "name"))
    return _without_overlaps(spans)


def _inside_placeholder(text: str, position: int) -> bool:
    opening = text.rfind("[", 0, position)
    return opening != -1 and "]" not in text[opening:position] and "]" in text[position:]


def _without_overlaps(spans):
    kept: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end, kind))
    return kept


# --- end issue 17 ---
