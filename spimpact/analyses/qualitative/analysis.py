"""Qualitative and community evidence: feedback themes, scrubbed quotes, support offered.

Providers hold case studies and feedback that carry impact numbers miss; this module
turns the ``feedback`` and ``support_offered`` tables into report sections that are
safe to publish: counts pass disclosure control, quotes are shown only with consent
and after identifiers have been scrubbed, and the link between themes and wellbeing
change is labelled as descriptive.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from spimpact.publish.disclosure import (
    disclose_count,
    disclose_percentage,
    disclose_summary,
    disclose_table,
)
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section, Table
from spimpact.scoring import MAIN_SCORE, SCORES

# --- scrubbing ---------------------------------------------------------------------------

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


# --- report sections ---------------------------------------------------------------------

FEEDBACK_TYPE_LABELS = {"case_study": "Case study", "formal": "Formal", "informal": "Informal"}
SUBGROUP_DIMENSIONS = (
    ("sex", "Sex"),
    ("age_band", "Age band"),
    ("ethnic_group", "Ethnic group"),
    ("imd_quintile", "IMD quintile (1 = most deprived)"),
)
_MAX_QUOTES = 6
_NO_THEME = "(no theme recorded)"


def split_themes(feedback: pd.DataFrame) -> pd.DataFrame:
    """One row per feedback item and theme (``feedback_id, client_id, feedback_type, theme``).

    Theme labels are trimmed and lower-cased; feedback without a theme gets
    ``"(no theme recorded)"``.
    """
    themes = feedback["themes"].fillna("").astype(str).str.split(";")
    long = feedback.assign(theme=themes).explode("theme")
    long["theme"] = long["theme"].str.strip().str.lower().replace("", _NO_THEME)
    long = long.drop_duplicates(["feedback_id", "theme"])
    return long[["feedback_id", "client_id", "feedback_type", "theme"]].reset_index(drop=True)


def qualitative_section(scheme, scores, *, params) -> Section:
    """Feedback and case studies: themes, types, subgroups, consented quotes and a joint display.

    Parameters
    ----------
    scheme
        ``spimpact.io.SchemeData``; uses ``feedback`` and ``clients``.
    scores
        Scored wellbeing measures (long frame ``client_id, measure, timepoint, score,
        value``; a ``ScoredMeasures`` is accepted too), for the joint display.
    params
        Scheme parameters: primary measure, confidence level, seed (quote selection)
        and disclosure rule.

    Returns
    -------
    Section
        Tables ``feedback_by_type``, ``feedback_by_theme``, ``feedback_themes_by_subgroup``
        and ``feedback_joint_display``; scrubbed quotes in the text; a figure of the
        joint display.

    Notes
    -----
    Counts pass the NHS Digital disclosure rule (SPEC section 3.2). Quotes come only
    from feedback with ``consent_to_quote`` true and pass :func:`scrub_text`. The joint
    display places each theme beside quantitative change, as in mixed-methods joint
    displays (Guetterman, Fetters & Creswell 2015, Ann Fam Med 13(6):554-561); the
    difference in mean change uses Welch's t interval and is descriptive: people who
    raise a theme differ from others in many ways.
    """
    feedback = scheme.feedback
    if feedback is None or len(feedback) == 0:
        raise InsufficientData(
            "The scheme supplied no feedback or case studies, so there is no qualitative "
            "evidence to summarise."
        )
    rule = params.disclosure.rule()
    long = split_themes(feedback)

    by_type = (
        feedback.groupby("feedback_type").size().reindex(list(FEEDBACK_TYPE_LABELS), fill_value=0)
    )
    type_table = disclose_table(
        pd.DataFrame(
            {
                "feedback_type": [FEEDBACK_TYPE_LABELS[t] for t in by_type.index],
                "n_feedback": by_type.to_numpy(),
            }
        ),
        ["n_feedback"],
        rule,
    )
    theme_counts = (
        long.groupby("theme")
        .agg(n_feedback=("feedback_id", "nunique"), n_clients=("client_id", "nunique"))
        .reset_index()
        .sort_values(["n_feedback", "theme"], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    theme_table = disclose_table(theme_counts, ["n_feedback", "n_clients"], rule)
    subgroup_table = _themes_by_subgroup(long, scheme.clients, rule)
    joint = _joint_display(long, getattr(scores, "scores", scores), params)

    n_linked = int(feedback["client_id"].notna().sum())
    total = disclose_count([len(feedback)], rule).iloc[0]
    text = [
        f"The scheme recorded {_count_text(total)} pieces of feedback "
        f"({_count_text(disclose_count([n_linked], rule).iloc[0])} linked to a client). "
        "The tables count feedback by type and by theme; one piece of feedback can "
        "mention several themes.",
    ]
    text.extend(_quotes(feedback, long, params))
    text.append(
        "**Descriptive only.** The joint display sets each theme beside the change in "
        "wellbeing of the clients whose feedback mentions it. People who raise a theme "
        "differ from others in many ways, so a difference here does not show that the "
        "theme caused the change. Means are shown only where at least "
        f"{rule.min_n_summary} people stand behind them."
    )
    tables = [
        Table("feedback_by_type", "Feedback by type (counts rounded to 5; 1-7 shown as *)",
              type_table),
        Table("feedback_by_theme", "Feedback by theme (one item may have several themes)",
              theme_table),
        Table("feedback_themes_by_subgroup",
              "Themes by client subgroup (linked feedback only)", subgroup_table),
    ]  # fmt: skip
    figures = []
    if joint is not None:
        table, figure = joint
        tables.append(
            Table(
                "feedback_joint_display",
                "Joint display (descriptive): mean wellbeing change of clients whose "
                "feedback mentions each theme versus other clients",
                table,
            )
        )
        if figure is not None:
            figures.append(figure)
    return Section(
        title="What people told us",
        text=tuple(text),
        tables=tuple(tables),
        figures=tuple(figures),
    )


def _count_text(value) -> str:
    return "fewer than 8" if pd.isna(value) else f"{int(value):,}"


def _themes_by_subgroup(long: pd.DataFrame, clients: pd.DataFrame, rule) -> pd.DataFrame:
    linked = long.dropna(subset=["client_id"]).merge(
        clients, on="client_id", how="inner", suffixes=("", "_client")
    )
    rows = []
    for column, label in SUBGROUP_DIMENSIONS:
        if column not in linked.columns:
            continue
        group_sizes = linked.groupby(column)["feedback_id"].nunique()
        counts = linked.groupby([column, "theme"])["feedback_id"].nunique()
        for (category, theme), n in counts.items():
            rows.append((label, str(category), theme, int(n), int(group_sizes[category])))
    frame = pd.DataFrame(
        rows, columns=["dimension", "category", "theme", "n_feedback", "n_feedback_in_group"]
    )
    frame["percent_of_group"] = disclose_percentage(
        frame["n_feedback"].to_numpy(), frame["n_feedback_in_group"].to_numpy(), rule
    ).to_numpy()
    frame = disclose_table(frame, ["n_feedback", "n_feedback_in_group"], rule)
    return frame.sort_values(["dimension", "category", "theme"], kind="stable").reset_index(
        drop=True
    )


def _quotes(feedback: pd.DataFrame, long: pd.DataFrame, params) -> list[str]:
    consented = feedback[
        feedback["consent_to_quote"].fillna(False).astype(bool)
        & feedback["text"].fillna("").astype(str).str.strip().ne("")
    ].sort_values("feedback_id", kind="stable")
    if consented.empty:
        return ["No feedback came with consent to quote, so no quotes are shown."]
    rng = np.random.default_rng(params.seed)
    chosen = consented.iloc[
        np.sort(rng.choice(len(consented), size=min(_MAX_QUOTES, len(consented)), replace=False))
    ]
    themes = long.groupby("feedback_id")["theme"].agg(lambda t: ", ".join(sorted(t)))
    lines = [
        f"Quotes from feedback given with consent to quote ({len(chosen)} chosen at random; "
        "names, places, dates and contact details removed):"
    ]
    for row in chosen.itertuples(index=False):
        kind = FEEDBACK_TYPE_LABELS.get(row.feedback_type, str(row.feedback_type)).lower()
        lines.append(
            f"> “{_markdown_safe(scrub_text(row.text))}” "
            f"({kind}; themes: {themes.get(row.feedback_id, '').replace('_', ' ')})"
        )
    return lines


def _markdown_safe(text: str) -> str:
    """Quote free text literally: no HTML, and Markdown markup characters escaped."""
    text = " ".join(html.escape(text, quote=False).split())
    text = re.sub(r"([\\`*_{}#|])", r"\\\1", text)
    # "[...](...)" would become a link; placeholders like "[name]" stay readable.
    return text.replace("](", "]\\(")


def _joint_display(long: pd.DataFrame, scores, params):
    primary = params.measures.primary
    score_name = MAIN_SCORE.get(primary)
    if scores is None or score_name is None or len(scores) == 0:
        return None
    change = _change_scores(scores[scores["score"] == score_name])
    if change.empty:
        return None
    rule = params.disclosure.rule()
    crit_level = params.conf_level
    rows = []
    for theme in sorted(set(long["theme"]) - {_NO_THEME}):
        mentioned = set(long.loc[long["theme"] == theme, "client_id"].dropna())
        with_theme = change[change.index.isin(mentioned)]
        others = change[~change.index.isin(mentioned)]
        difference, low, high = _welch_interval(with_theme, others, crit_level)
        enough = len(with_theme) >= rule.min_n_summary and len(others) >= rule.min_n_summary
        rows.append(
            (
                theme,
                len(with_theme),
                with_theme.mean() if len(with_theme) else np.nan,
                len(others),
                others.mean() if len(others) else np.nan,
                difference if enough else np.nan,
                low if enough else np.nan,
                high if enough else np.nan,
            )
        )
    if not rows:
        return None
    table = pd.DataFrame(
        rows,
        columns=[
            "theme",
            "n_with_theme",
            "mean_change_with_theme",
            "n_others",
            "mean_change_others",
            "difference",
            "conf_low",
            "conf_high",
        ],
    )
    table["mean_change_with_theme"] = disclose_summary(
        table["mean_change_with_theme"], table["n_with_theme"], rule
    ).to_numpy()
    table["mean_change_others"] = disclose_summary(
        table["mean_change_others"], table["n_others"], rule
    ).to_numpy()
    table = disclose_table(table, ["n_with_theme", "n_others"], rule)
    for column in ("difference", "conf_low", "conf_high"):
        table[column] = table[column].astype("Float64")
    table.insert(1, "score", score_name)
    return table, _plot_joint(table, score_name)


def _change_scores(scores: pd.DataFrame) -> pd.Series:
    """Change from baseline to each client's first follow-up, indexed by client."""
    baseline = scores[scores["timepoint"] == 0].drop_duplicates("client_id").set_index("client_id")
    follow = scores[scores["timepoint"] > 0].sort_values(["client_id", "timepoint"])
    first = follow.drop_duplicates("client_id").set_index("client_id")
    both = baseline.index.intersection(first.index)
    change = first.loc[both, "value"].astype(float) - baseline.loc[both, "value"].astype(float)
    return change.dropna().sort_index()


def _welch_interval(a: pd.Series, b: pd.Series, conf_level: float):
    if len(a) < 2 or len(b) < 2:
        return np.nan, np.nan, np.nan
    result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(confidence_level=conf_level)
    return float(a.mean() - b.mean()), float(interval.low), float(interval.high)


def _plot_joint(table: pd.DataFrame, score_name: str):
    shown = table.dropna(subset=["difference"])
    if shown.empty:
        return None
    fig = Figure(figsize=(6.5, 0.8 + 0.4 * len(shown)))
    ax = fig.subplots()
    y = np.arange(len(shown))[::-1]
    ax.hlines(y, shown["conf_low"].astype(float), shown["conf_high"].astype(float), color="0.3")
    ax.scatter(shown["difference"].astype(float), y, color="#005EB8", zorder=3)
    ax.axvline(0, color="0.5", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(shown["theme"].str.replace("_", " "))
    label = SCORES[score_name].label if score_name in SCORES else score_name
    ax.set_xlabel(
        f"Difference in mean change of {label}\n(clients mentioning the theme minus others)"
    )
    ax.set_title("Descriptive joint display: not evidence of cause", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


ACTIVITY_LABELS = {
    "arts_culture": "Arts and culture",
    "physical_activity": "Physical activity",
    "nature_green": "Nature and green spaces",
    "befriending_social": "Befriending and social groups",
    "advice_welfare_debt": "Advice, welfare and debt",
    "housing": "Housing",
    "employment_learning": "Employment and learning",
    "mental_health_support": "Mental health support",
    "volunteering": "Volunteering",
    "other": "Other",
}


def community_section(scheme, *, params) -> Section:
    """Support offered: the activities and community organisations clients were connected to.

    Parameters
    ----------
    scheme
        ``spimpact.io.SchemeData``; uses ``support_offered`` and ``clients``.
    params
        Scheme parameters (disclosure rule).

    Returns
    -------
    Section
        Table ``support_by_activity`` (clients and referrals per activity type,
        disclosure-controlled), a bar chart, and headline rows at the ``community``
        level of the common outcomes framework: clients connected to at least one
        activity (count and percentage of clients) and organisations referred to.

    Notes
    -----
    "Support offered" is one of the four sets of the PRSB Social Prescribing
    Information Standard minimum dataset (SPEC section 2.1). Counts of people pass the
    disclosure rule (SPEC section 3.2); the number of organisations is not about
    individuals and is shown as counted.
    """
    support = scheme.support_offered
    if support is None or len(support) == 0:
        raise InsufficientData(
            "The scheme supplied no 'support offered' records, so the activities and "
            "organisations people were connected to cannot be described."
        )
    rule = params.disclosure.rule()
    n_clients_total = scheme.clients["client_id"].nunique()
    by_activity = (
        support.groupby("activity_type")
        .agg(n_clients=("client_id", "nunique"), n_referrals=("client_id", "size"))
        .reindex(list(ACTIVITY_LABELS), fill_value=0)
    )
    activity_table = disclose_table(
        pd.DataFrame(
            {
                "activity": [ACTIVITY_LABELS[a] for a in by_activity.index],
                "n_clients": by_activity["n_clients"].to_numpy(),
                "n_referrals": by_activity["n_referrals"].to_numpy(),
            }
        ),
        ["n_clients", "n_referrals"],
        rule,
    )
    n_connected = support["client_id"].nunique()
    n_organisations = (
        support["organisation_id"].dropna().nunique() if "organisation_id" in support else 0
    )
    connected_safe = disclose_count([n_connected], rule).iloc[0]
    total_safe = disclose_count([n_clients_total], rule).iloc[0]
    percent = disclose_percentage([n_connected], [n_clients_total], rule).iloc[0]
    headline = pd.DataFrame(
        [
            ("community", "Clients connected to at least one community activity",
             "n_clients_connected", connected_safe, total_safe,
             "count of clients with a support-offered record"),
            ("community", "Percentage of clients connected to a community activity",
             "pct_clients_connected", percent, total_safe,
             "clients with a support-offered record / clients referred"),
            ("community", "Community organisations clients were referred to",
             "n_organisations", n_organisations, connected_safe,
             "distinct organisation_id in support offered"),
        ],
        columns=["outcome_level", "outcome", "measure", "estimate", "n", "method"],
    )  # fmt: skip
    headline["estimate"] = pd.to_numeric(headline["estimate"], errors="coerce").astype(float)
    headline["n"] = pd.array(headline["n"], dtype="Int64")
    for column in ("std_error", "conf_low", "conf_high"):
        headline[column] = np.nan
    headline = headline.reindex(columns=list(HEADLINE_COLUMNS))

    text = [
        f"Link workers connected {_count_text(connected_safe)} clients "
        f"({'*' if pd.isna(percent) else f'{percent:g}%'} of {_count_text(total_safe)} referred) "
        f"to community support, through {n_organisations:,} community organisations.",
        "The table shows how many clients were connected to each kind of activity; a "
        "client can be connected to several.",
    ]
    return Section(
        title="Connecting people to their community",
        text=tuple(text),
        tables=(
            Table(
                "support_by_activity",
                "Clients and referrals by type of activity (counts rounded to 5; 1-7 shown as *)",
                activity_table,
            ),
        ),
        figures=(_plot_activities(activity_table),),
        headline=headline,
    )


def _plot_activities(table: pd.DataFrame):
    shown = table.dropna(subset=["n_clients"])
    shown = shown[shown["n_clients"] > 0].sort_values("n_clients", kind="stable")
    fig = Figure(figsize=(6.5, 0.8 + 0.35 * max(len(shown), 1)))
    ax = fig.subplots()
    ax.barh(shown["activity"], shown["n_clients"].astype(float), color="#005EB8")
    ax.set_xlabel("Clients connected (rounded to 5; suppressed groups omitted)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig
