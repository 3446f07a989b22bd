"""The ICB page as a board paper: outcome-by-scheme matrix, forests, maturity side by side.

Page one shows an outcome-by-scheme matrix, small-multiple forest plots and the
data-maturity framework side by side.

Every number comes from the schemes' published headline rows (already
disclosure-controlled). A matrix cell gives the estimate, its interval and a
judgement that follows them: *better* or *worse* when the interval rules out no
change (direction from the score's registry, or fewer GP appointments being
better), *unclear* when it includes no change; the judgement is written in words
with a symbol and coloured, so colour is never the only cue.

Forest plots show one outcome each with schemes as rows; when three or more schemes
measured it the same way (same measure, outcome and method) the pooled estimate
(REML random effects, Hartung-Knapp interval) is drawn as a diamond. Ratios are
pooled on the log scale (``pool_outcome``).
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from spimpact.models.meta import fit_random_effects
from spimpact.publish import gate
from spimpact.report.front_page import is_change
from spimpact.scoring import SCORES

MIN_POOLED = 3
POOLED_CONF_LEVEL = 0.95
_RATIO = re.compile(r"\bratio\b", re.IGNORECASE)
_LOWER_BETTER = re.compile(r"\bgp\b|gp_|appointment|attendance|loneliness", re.IGNORECASE)
_HIGHER_BETTER = re.compile(r"averted|connected", re.IGNORECASE)
_JUDGEMENT = {
    "better": ("✓", "better"),
    "worse": ("✗", "worse"),
    "unclear": ("?", "unclear"),
    "higher": ("▲", "higher, clear"),
    "lower": ("▼", "lower, clear"),
    "level": ("", ""),
}
_RATING_MARK = {"good": "✓", "fair": "!", "poor": "✗"}


def is_ratio(row) -> bool:
    """Whether a headline row is a ratio (pooled and judged against 1, on the log scale)."""
    return bool(_RATIO.search(f"{row['outcome']} {row['method']} {row['measure']}"))


def judge(row) -> str:
    """What a headline row shows: ``better``, ``worse`` or ``unclear``.

    ``higher``/``lower`` when the direction carries no value judgement; ``level`` for
    a level, a count or an estimate without an interval.
    """
    low, high = row["conf_low"], row["conf_high"]
    if not is_change(row) or pd.isna(low) or pd.isna(high) or pd.isna(row["estimate"]):
        return "level"
    null = 1.0 if is_ratio(row) else 0.0
    if low <= null <= high:
        return "unclear"
    up = float(row["estimate"]) > null
    info = SCORES.get(str(row["measure"]))
    measure = f"{row['measure']} {row['outcome']}"
    if info is not None:
        higher_better = info.higher_is_better
    elif _HIGHER_BETTER.search(measure):  # e.g. GP cost averted
        higher_better = True
    elif _LOWER_BETTER.search(measure):
        higher_better = False
    else:
        return "higher" if up else "lower"
    return "better" if up == higher_better else "worse"


def matrix_rows(headlines: pd.DataFrame) -> pd.DataFrame:
    """One row per outcome for the matrix: each measure's first change outcome (else level).

    Within a scheme the first method listed for that outcome is shown (the scheme
    report's own headline order); the others are in the details below.
    """
    if headlines.empty:
        return headlines
    change = headlines.apply(is_change, axis=1)
    picked = []
    for _, group in headlines.assign(_change=change).groupby(
        ["outcome_level", "measure"], sort=False
    ):
        preferred = group[group["_change"]] if group["_change"].any() else group
        outcome = preferred["outcome"].iloc[0]
        rows = preferred[preferred["outcome"] == outcome]
        picked.append(rows.drop_duplicates("scheme_id", keep="first"))
    return pd.concat(picked, ignore_index=True).drop(columns="_change")


def matrix_html(headlines: pd.DataFrame, titles: dict[str, str]) -> str:
    """The outcome-by-scheme matrix: estimate, interval and judgement in each cell."""
    rows = matrix_rows(headlines)
    if rows.empty:
        return "<p>No scheme reported a headline result.</p>"
    schemes = [s for s in titles if s in set(rows["scheme_id"])]
    header = "".join(f'<th scope="col">{gate.escape(titles[s])}</th>' for s in schemes)
    body = []
    for (level, _measure, outcome), group in rows.groupby(
        ["outcome_level", "measure", "outcome"], sort=False
    ):
        cells = []
        by_scheme = {r["scheme_id"]: r for _, r in group.iterrows()}
        for scheme in schemes:
            row = by_scheme.get(scheme)
            if row is None:
                cells.append('<td class="cell-none">not reported</td>')
                continue
            verdict = judge(row)
            mark, words = _JUDGEMENT[verdict]
            interval = (
                f"<br><span class='ci'>{_num(row['conf_low'])} to {_num(row['conf_high'])}</span>"
                if pd.notna(row["conf_low"]) and pd.notna(row["conf_high"])
                else ""
            )
            judgement = (
                f" <span class='judge'><span aria-hidden='true'>{mark}</span> {words}</span>"
                if words
                else ""
            )
            cells.append(
                f'<td class="cell-{verdict}">{gate.escape(_num(row["estimate"]))}'
                f"{interval}{judgement}</td>"
            )
        body.append(
            f'<tr><th scope="row">{gate.escape(outcome)} <span class="ci">'
            f"({gate.escape(level)})</span></th>"
            f"{''.join(cells)}</tr>"
        )
    return (
        '<div class="table-wrap" tabindex="0" role="region" aria-label="Outcomes by scheme">'
        '<table class="matrix"><caption>Headline result of each scheme for each outcome: '
        "estimate, confidence interval and what it shows</caption><thead><tr>"
        f'<th scope="col">Outcome</th>{header}</tr></thead><tbody>{"".join(body)}</tbody>'
        "</table></div>"
        "<p class='note'>✓ better / ✗ worse: the interval rules out no change, in a "
        "good or bad direction; ? unclear: the interval includes no change; ▲/▼: a clear "
        "rise or fall with no better or worse direction. Cells without a mark are levels "
        "or counts. Schemes without a comparison group show change, not proven effect.</p>"
    )


def pool_outcome(group: pd.DataFrame):
    """Random-effects pool of one outcome's rows (one per scheme), or ``None`` if < 3.

    Ratios are pooled as log ratios with standard errors from their intervals
    (``log(high / low) / (2 z)``) and the pooled result is returned on the ratio scale;
    other estimates use their standard error (or, when missing, the interval's).

    Returns
    -------
    tuple or None
        ``(estimate, conf_low, conf_high, k)``.
    """
    rows = group.dropna(subset=["estimate", "conf_low", "conf_high"])
    if rows["scheme_id"].nunique() < MIN_POOLED or len(rows) != rows["scheme_id"].nunique():
        return None
    level = rows["conf_level"].fillna(POOLED_CONF_LEVEL).to_numpy(dtype=float)
    z = stats.norm.ppf(0.5 + level / 2)
    ratio = is_ratio(rows.iloc[0])
    if ratio:
        if (rows[["estimate", "conf_low", "conf_high"]] <= 0).any(axis=None):
            return None
        y = np.log(rows["estimate"].to_numpy(dtype=float))
        se = np.log(rows["conf_high"].to_numpy(float) / rows["conf_low"].to_numpy(float)) / (2 * z)
    else:
        y = rows["estimate"].to_numpy(dtype=float)
        from_ci = (rows["conf_high"].to_numpy(float) - rows["conf_low"].to_numpy(float)) / (2 * z)
        se = rows["std_error"].to_numpy(dtype=float)
        se = np.where(np.isfinite(se) & (se > 0), se, from_ci)
    if not (np.isfinite(se).all() and (se > 0).all()):
        return None
    fit = fit_random_effects(y, se, method="REML", hartung_knapp=True, conf_level=POOLED_CONF_LEVEL)
    values = (fit.estimate, fit.conf_low, fit.conf_high)
    if ratio:
        values = tuple(float(np.exp(v)) for v in values)
    return (*values, fit.k)


def forest_figures(headlines: pd.DataFrame, titles: dict[str, str]) -> list[str]:
    """One small forest plot per outcome reported with an interval by two or more schemes."""
    rows = matrix_rows(headlines)
    if rows.empty:
        return []
    rows = rows.dropna(subset=["estimate", "conf_low", "conf_high"])
    out = []
    for (measure, outcome), group in rows.groupby(["measure", "outcome"], sort=False):
        if group["scheme_id"].nunique() < 2:
            continue
        same_method = group[group["method"] == group["method"].iloc[0]]
        pooled = pool_outcome(same_method) if len(same_method) == len(group) else None
        out.append(_forest(group, pooled, titles, outcome, measure))
    return out


def _forest(group, pooled, titles, outcome, measure) -> str:
    names = [titles.get(s, s) for s in group["scheme_id"]]
    estimates = group["estimate"].to_numpy(float)
    low, high = group["conf_low"].to_numpy(float), group["conf_high"].to_numpy(float)
    ratio = is_ratio(group.iloc[0])
    null = 1.0 if ratio else 0.0
    n_rows = len(group) + (1 if pooled else 0)
    fig = Figure(figsize=(5.6, 1.0 + 0.38 * n_rows))
    ax = fig.subplots()
    positions = np.arange(len(group))[::-1] + (1 if pooled else 0)
    ax.errorbar(
        estimates,
        positions,
        xerr=[estimates - low, high - estimates],
        fmt="s",
        color="#005eb8",
        ecolor="#425563",
        capsize=3,
    )
    labels = list(names)
    ticks = list(positions)
    if pooled:
        est, lo, hi, k = pooled
        ax.fill([lo, est, hi, est], [0, 0.25, 0, -0.25], color="#003087")
        labels.append(f"Pooled ({k} schemes)")
        ticks.append(0)
    ax.axvline(null, color="#768692", linestyle="--", linewidth=1)
    if ratio:
        ax.set_xscale("log")
    ax.set_yticks(ticks, labels)
    ax.set_ylim(-0.7, max(ticks) + 0.7)
    ax.set_xlabel(_wrap(outcome), fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    listed = "; ".join(
        f"{n} {_num(e)} ({_num(lo)} to {_num(hi)})"
        for n, e, lo, hi in zip(names, estimates, low, high, strict=True)
    )
    alt = f"Forest plot of {outcome} across {len(group)} schemes: {listed}."
    if pooled:
        alt += (
            f" Pooled estimate {_num(pooled[0])} ({_num(pooled[1])} to {_num(pooled[2])}, "
            f"{POOLED_CONF_LEVEL:.0%} CI)."
        )
    else:
        alt += " Not pooled: fewer than three schemes measured it the same way."
    return (
        f"<figure class='forest block'>{gate.image(_png(fig), alt)}"
        f"<figcaption>{gate.escape(outcome)} (<code>{gate.escape(measure)}</code>)"
        "</figcaption></figure>"
    )


def maturity_side_by_side(maturity: pd.DataFrame, titles: dict[str, str], ratings) -> str:
    """Data-maturity domains as rows and schemes as columns (weakest rating per domain)."""
    if maturity.empty:
        return "<p>No scheme published a data-maturity scorecard.</p>"
    schemes = [s for s in titles if s in set(maturity["scheme_id"])]
    domains = list(dict.fromkeys(maturity["domain"]))
    header = "".join(f'<th scope="col">{gate.escape(titles[s])}</th>' for s in schemes)
    body = []
    for domain in domains:
        cells = []
        for scheme in schemes:
            found = maturity.loc[
                (maturity["scheme_id"] == scheme) & (maturity["domain"] == domain), "rating"
            ]
            present = [r for r in reversed(ratings) if r in set(found.dropna())]
            worst = present[0] if present else ""
            mark = _RATING_MARK.get(worst, "")
            cells.append(
                f'<td class="{gate.escape(worst)}"><span aria-hidden="true">{mark}</span> '
                f"{gate.escape(worst)}</td>"
                if worst
                else "<td>not assessed</td>"
            )
        body.append(f'<tr><th scope="row">{gate.escape(domain)}</th>{"".join(cells)}</tr>')
    advice = []
    for scheme in schemes:
        rows = maturity[maturity["scheme_id"] == scheme]
        ranked = rows.assign(_rank=pd.to_numeric(rows["priority"], errors="coerce"))
        first = ranked.dropna(subset=["_rank"]).sort_values("_rank", kind="stable")
        text = "; ".join(str(a) for a in first["improve"].head(2)) or "No priority gaps."
        advice.append(f"<td>{gate.escape(text)}</td>")
    body.append(f'<tr><th scope="row">Improve first</th>{"".join(advice)}</tr>')
    return (
        '<div class="table-wrap" tabindex="0" role="region" aria-label="Data maturity">'
        '<table class="maturity"><caption>Weakest rating in each domain of the data-maturity '
        f'framework</caption><thead><tr><th scope="col">Domain</th>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        "<p class='note'>✓ good, ! fair, ✗ poor: the weakest of the domain's checks; the "
        "scheme reports list every check.</p>"
    )


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _wrap(text: str, width: int = 70) -> str:
    words, lines, line = str(text).split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


def _num(value) -> str:
    if pd.isna(value):
        return "*"
    value = float(value)
    if value.is_integer() and abs(value) >= 10:
        return f"{int(value):,}"
    digits = 0 if abs(value) >= 1000 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"
