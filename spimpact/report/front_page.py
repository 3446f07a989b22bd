"""A plain-language front page written from the report's own headline results.

Every sentence is generated from the ``headline`` rows of the other sections, so its
wording of direction ("an increase", "a decrease") and of certainty ("the interval rules out no
change") follows the numbers: it cannot say more than they do.
"""

from __future__ import annotations

import re

import pandas as pd

from spimpact.params import SchemeParams
from spimpact.publish.section import HEADLINE_COLUMNS, InsufficientData, Section
from spimpact.scoring import SCORES

_LEVEL_ORDER = {"person": 0, "system": 1, "community": 2}
_MAX_LISTED = 4
_CHANGE = re.compile(
    r"change|difference|before/after|before and after|pre/post|versus|\bvs\.?\b|ratio|"
    r"effect|\bDiD\b|reduction",
    re.IGNORECASE,
)
_RATIO = re.compile(r"\bratio\b", re.IGNORECASE)
_LEVEL = re.compile(r"at referral|at baseline|\(mean\)|\bnumber of\b", re.IGNORECASE)
_CONTROLLED = re.compile(
    r"\bcomparison\b|\bmatched\b|difference-in-differences|\bDiD\b|\bcontrol group|\bcontrols\b",
    re.IGNORECASE,
)
_UNCONTROLLED = re.compile(r"uncontrolled|\bno comparison|without (?:a )?comparison", re.IGNORECASE)


def collect_headlines(sections) -> pd.DataFrame:
    """Stack the ``headline`` rows of several sections into one frame (``HEADLINE_COLUMNS``)."""
    frames = [
        section.headline
        for section in sections
        if section.headline is not None and len(section.headline) > 0
    ]
    if not frames:
        return pd.DataFrame(columns=list(HEADLINE_COLUMNS))
    headlines = pd.concat(frames, ignore_index=True)
    missing = [column for column in HEADLINE_COLUMNS if column not in headlines.columns]
    if missing:
        raise ValueError(f"headline rows are missing columns {missing}")
    return headlines[list(HEADLINE_COLUMNS)]


def describe_result(row, *, conf_level: float = 0.95) -> str:
    """One sentence giving an estimate, its direction, its interval and how sure we can be.

    For a change or effect (see :func:`is_change`) direction words follow the sign of
    the estimate (for a ratio, whether it is above or below 1); "rules out no change"
    is used only when the confidence interval excludes no change, otherwise the
    sentence says the data are consistent with no change. For a score with a known
    direction (SCORES registry) it also says whether the change is an improvement.
    A level (e.g. a mean at referral) is given with its interval and no direction.
    """
    estimate, low, high = float(row["estimate"]), row["conf_low"], row["conf_high"]
    level = f"{100 * conf_level:g}%"
    outcome = _lower_first(str(row["outcome"]))
    people = _people(row["n"])
    has_interval = not (pd.isna(low) or pd.isna(high))
    interval = (
        f" ({level} confidence interval {_number(float(low))} to {_number(float(high))})"
        if has_interval
        else ""
    )
    if not is_change(row):
        return f"For {outcome}, our best estimate is {_number(estimate)}{people}{interval}."
    ratio = bool(_RATIO.search(f"{row['outcome']} {row['method']}"))
    null = 1.0 if ratio else 0.0
    if estimate == null:
        direction = "no change"
    elif ratio:
        size = f"{abs(estimate - 1) * 100:.0f}% (ratio {_number(estimate)})"
        direction = f"an increase of {size}" if estimate > 1 else f"a decrease of {size}"
    else:
        size = _number(abs(estimate))
        direction = f"an increase of {size}" if estimate > 0 else f"a decrease of {size}"
    sentence = f"For {outcome}, our best estimate is {direction}{people}{interval}"
    if not has_interval:
        return (
            sentence
            + "; no confidence interval could be calculated, so we cannot say how sure this is."
        )
    low, high = float(low), float(high)
    if low > null or high < null:
        info = SCORES.get(str(row["measure"]))
        if info is not None and estimate != null:
            better = (estimate > null) == info.higher_is_better
            judgement = "an improvement" if better else "a worsening"
            return sentence + f"; the interval rules out no change, so this looks like {judgement}."
        return sentence + "; the interval rules out no change."
    return sentence + (
        "; the interval includes no change, so we cannot be sure there was a real change "
        "either way."
    )


def front_page_section(sections, *, params: SchemeParams) -> Section:
    """Five or six plain sentences for a commissioner, from the other sections' headlines.

    Parameters
    ----------
    sections
        The report's other ``Section`` objects; their ``headline`` frames are used.
    params
        The scheme's parameters (title, primary measure, confidence level).

    Returns
    -------
    Section
        Titled "At a glance", with the sentences as paragraphs. It has no
        ``headline`` of its own, so the scheme's headline rows are not counted twice.

    Raises
    ------
    InsufficientData
        When no section produced a headline result.

    Notes
    -----
    What was measured, the best estimate, how sure we are and what could bias it, in
    that order, as recommended for plain-language summaries (Cochrane plain language
    summary guidance; SPEC section 5.3 for the biases named).
    """
    headlines = collect_headlines(sections)
    headlines = headlines[headlines["estimate"].notna()].reset_index(drop=True)
    if headlines.empty:
        raise InsufficientData(
            "No headline result could be estimated from this scheme's data, so there is no "
            "summary to give."
        )
    conf_level = params.conf_level
    change = headlines.apply(is_change, axis=1)
    primary = headlines["measure"].astype(str).str.startswith(params.measures.primary)
    gp = (
        headlines[["outcome", "measure"]]
        .astype(str)
        .agg(" ".join, axis=1)
        .str.contains(r"\bgp\b|attend|appointment", case=False)
    )
    by_level = headlines["outcome_level"].map(_LEVEL_ORDER).fillna(len(_LEVEL_ORDER))
    ordered = headlines.assign(_level=by_level).sort_values("_level", kind="stable")
    outcomes = list(dict.fromkeys(ordered["outcome"].astype(str)))
    listed = [_lower_first(o) for o in outcomes[:_MAX_LISTED]]
    if len(outcomes) > _MAX_LISTED:
        listed.append(f"{len(outcomes) - _MAX_LISTED} more")
    sentences = [
        f"This report looks at {_count_phrase(len(outcomes))} for people referred to "
        f"{params.title}, including {_join(listed)}."
    ]
    described = []
    person = _first(headlines, [change & primary, change], level="person")
    if person is not None:
        sentences.append(_with_other_methods(headlines, person, conf_level))
        described.append(person)
    system = _first(headlines, [change & gp, change], level="system")
    if system is not None:
        sentences.append(_with_other_methods(headlines, system, conf_level))
        described.append(system)
    if not described:
        row = headlines.iloc[0]
        sentences.append(describe_result(row, conf_level=conf_level))
    community = headlines[headlines["outcome_level"] == "community"]
    if not community.empty:
        row = community.iloc[0]
        sentences.append(
            f"In the community, {_lower_first(str(row['outcome']))}: "
            f"{_number(float(row['estimate']))}{_people(row['n'])}."
        )
    described_rows = headlines.loc[[row.name for row in described]] if described else headlines
    sentences.extend(_bias_sentences(described_rows))
    return Section(title="At a glance", text=tuple(sentences))


def is_change(row) -> bool:
    """Whether a headline row is a change or effect (so "increase"/"decrease" apply).

    Levels such as a mean score at referral or a count are not changes and are
    described without direction words.
    """
    text = f"{row['outcome']} {row['method']}"
    return bool(_CHANGE.search(text)) and not _LEVEL.search(str(row["outcome"]))


def _first(headlines: pd.DataFrame, preferences, *, level: str):
    at_level = headlines["outcome_level"] == level
    for preference in preferences:
        rows = headlines[at_level & preference]
        if not rows.empty:
            return rows.iloc[0]
    return None


def _with_other_methods(headlines: pd.DataFrame, row, conf_level: float) -> str:
    """Describe ``row``; add the range given by other methods for the same outcome."""
    sentence = describe_result(row, conf_level=conf_level)
    same = headlines[
        (headlines["measure"] == row["measure"])
        & (headlines["outcome"] == row["outcome"])
        & (headlines.index != row.name)
    ]
    if same.empty:
        return sentence
    low, high = same["estimate"].min(), same["estimate"].max()
    others = "another method" if len(same) == 1 else f"{len(same)} other methods"
    spread = _number(low) if low == high else f"{_number(low)} to {_number(high)}"
    return sentence[:-1] + f" ({others} gave {spread})."


def _bias_sentences(described: pd.DataFrame) -> list[str]:
    """What could bias the described results, said separately for compared and uncompared ones."""
    methods = described["method"].fillna("").astype(str)
    controlled = methods.map(lambda m: bool(_CONTROLLED.search(m)) and not _UNCONTROLLED.search(m))
    changes = described.apply(is_change, axis=1)
    parts = []
    if (controlled & changes).any():
        parts.append(
            "Results compared with a similar group of people who were not referred can still "
            "be biased by differences between the groups that were not measured."
        )
    if (~controlled & changes).any():
        parts.append(
            ("Other results have" if parts else "There was")
            + " no comparison group, so part of any change may be people recovering from a low "
            "point that prompted their referral (regression to the mean) rather than the effect "
            "of the scheme."
        )
    if (described["outcome_level"] == "person").any():
        parts.append(
            "Wellbeing was only known for people who completed a follow-up questionnaire, "
            "who may have been doing better than those who did not."
        )
    return [" ".join(parts)] if parts else []


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def _people(n) -> str:
    if pd.isna(n):
        return " among a small number of people (fewer than 8)"
    return f" among {int(n):,} people"


def _count_phrase(k: int) -> str:
    return "one result" if k == 1 else f"{k} results"


def _join(items) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _lower_first(text: str) -> str:
    # Keep acronyms and instrument names (SWEMWBS, GP) in capitals.
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text
