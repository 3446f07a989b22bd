"""Foundation sections: scheme overview, data quality and referrals over time.

Turns the results of ``spimpact.analyses.overview.analysis`` into words, tables and
figures.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from spimpact.analyses.overview.analysis import (
    analyse_data_quality,
    analyse_overview,
    analyse_referrals,
)
from spimpact.analyses.overview.mapping import NOT_IN_LOOKUP, ValueMappingResult
from spimpact.io import SchemeData
from spimpact.params import DisclosureRule, SchemeParams
from spimpact.publish.disclosure import disclose_count
from spimpact.publish.section import Section, Table

DEMOGRAPHIC_COLUMNS = {
    "age_band": "Age band",
    "sex": "Sex",
    "ethnic_group": "Ethnic group",
    "imd_quintile": "IMD quintile (1 = most deprived)",
}


def overview_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Who was referred, when, from where: the scheme at a glance."""
    result = analyse_overview(scheme, params=params)
    n_clients = result.n_clients_published
    n_text = "fewer than 8" if pd.isna(n_clients) else f"about {int(n_clients):,}"
    tables = [
        Table(
            "referral_sources",
            "Referrals by source",
            result.referral_sources.rename(columns={"referral_source": "Referral source"}),
        ),
        *(
            Table(
                f"demographics_{column}",
                f"Referrals by {DEMOGRAPHIC_COLUMNS[column].split(' (')[0].lower()}",
                counts.rename(columns={column: DEMOGRAPHIC_COLUMNS[column]}),
            )
            for column, counts in result.demographics.items()
        ),
    ]
    text = (
        f"**{params.title}** ({params.scheme_id}). This report covers {n_text} people referred "
        f"between {result.first_referral:%B %Y} and {result.last_referral:%B %Y} whose records "
        "could be used (see Data quality for every record that could not).",
        "All counts in this report are rounded to the nearest 5 and counts of 1 to 7 are "
        "not shown, so that no individual can be identified; totals are rounded from exact "
        "values and need not equal the sum of the rounded rows.",
    )
    return Section(
        title="Scheme overview",
        text=text,
        tables=tuple(tables),
        figures=(_sources_figure(tables[0].frame),),
    )


def _sources_figure(sources: pd.DataFrame):
    shown = sources[(sources.iloc[:, 0] != "Total") & sources["n"].notna()]
    fig, ax = plt.subplots(figsize=(7, 0.4 * max(len(shown), 3) + 1))
    ax.barh(shown.iloc[:, 0].astype(str), shown["n"].astype(float), color="#005eb8")
    ax.invert_yaxis()
    ax.set_xlabel("Referrals (rounded to the nearest 5)")
    ax.set_title("Where referrals came from")
    fig.tight_layout()
    return fig


def data_quality_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Rows read, used and excluded; why; and completeness of every contract field."""
    result = analyse_data_quality(scheme, params=params)
    tables = [
        Table(
            "reconciliation",
            "Every row read is either used or excluded with a reason",
            result.reconciliation,
        ),
        Table(
            "exclusion_reasons",
            "Why rows were excluded (first reason per row)",
            result.exclusion_reasons,
        ),
        Table(
            "completeness",
            "Completeness of each field in the data contract (% of used rows with a value)",
            result.completeness,
        ),
    ]
    text = [
        "Rows that broke the data contract (docs/data-contract.md) were excluded and are "
        "counted here with their reason; the full list with row numbers is available to the "
        "scheme's analyst from `spimpact validate` and is never published.",
    ]
    text.append(episode_text(result.episode_rule, result.episodes, params.disclosure.rule()))
    if result.ignored_columns:
        text.append(
            f"Columns outside the data contract were not read: {', '.join(result.ignored_columns)}."
        )
    if result.missing_tables:
        text.append(
            f"Tables not supplied: {', '.join(result.missing_tables)}; the analyses that need "
            "them say so below."
        )
    if result.value_mapping is not None:
        text.append(value_mapping_text(result.value_mapping, params.disclosure.rule()))
        tables.append(
            Table(
                "value_mapping",
                "How the scheme's own labels were mapped to the data contract's codes "
                "(rows per label)",
                result.value_mapping.table,
            )
        )
    return Section(title="Data quality", text=tuple(text), tables=tuple(tables))


def episode_text(rule_name: str, episodes: tuple[int, int] | None, rule: DisclosureRule) -> str:
    """Which referral episode of each client the analyses use, and how many are set aside."""
    if episodes is None:
        return "Each client has one referral in these data; every analysis below uses it."
    text = (
        f"Referral episodes: every analysis below uses each client's {rule_name} referral "
        f"episode that passes the checks (params `episodes: {rule_name}`)."
    )
    clients, others = disclose_count(list(episodes), rule)
    if not pd.isna(clients) and clients == 0:
        return text + " No client was referred more than once."
    referred = "A few clients" if pd.isna(clients) else f"About {int(clients):,} clients"
    set_aside = "count withheld" if pd.isna(others) else f"about {int(others):,}"
    return (
        f"{text} {referred} were referred more than once; their other episodes "
        f"({set_aside}) are not analysed, and their records are counted among the "
        "exclusions (reason: another episode of the client)."
    )


_ACTIONS = {"excluded": "not mapped: excluded", "blank": "not mapped: left blank"}
# Unplaced labels named in the text; the table lists them all.
_MAX_NAMED = 6


def value_mapping_text(mapping: ValueMappingResult, rule: DisclosureRule) -> str:
    """One paragraph: how many values the mapping file placed, and which it did not."""
    placed, not_placed = disclose_count([mapping.n_rows_placed, mapping.n_rows_not_placed], rule)
    text = (
        "The scheme's exports were read through its mapping file (local labels to the data "
        f"contract's codes; table 'value_mapping' counts every label): {_values(placed, rule)} "
        "in coded fields were placed"
    )
    named = [
        f"'{row.source_value}' ({_rows(row.n_rows, rule)}, {row.table}.{row.column}) "
        f"{_ACTIONS[row.action]}"
        for row in mapping.not_placed.itertuples(index=False)
        if not row.source_value.startswith("(")
    ]
    lookup = mapping.table[mapping.table["source_value"] == NOT_IN_LOOKUP]
    missed = [
        f"{row.source_column} of {_rows(row.n_rows, rule)} not found in the postcode lookup "
        f"({row.table}.{row.column} left blank)"
        for row in lookup.itertuples(index=False)
        if row.n_rows != 0
    ]
    if mapping.n_rows_not_placed == 0 and not missed:
        return text + " and every label was placed."
    text += f"; {_values(not_placed, rule)} had labels the mapping does not place"
    listed = named[:_MAX_NAMED] + (["..."] if len(named) > _MAX_NAMED else []) + missed
    if listed:
        text += ": " + "; ".join(listed)
    return (
        text + ". Add such labels to the mapping file, or record them with the scheme's usual "
        "labels, so that no record is lost."
    )


def _values(n, rule: DisclosureRule) -> str:
    """A published count of values in words ("about 14,120 values", "count withheld")."""
    return _rows(n, rule).replace("rows", "values")


def _rows(n, rule: DisclosureRule) -> str:
    """A published count of rows in words ("about 210 rows", "count withheld")."""
    if pd.isna(n):
        return "count withheld"
    return "no rows" if int(n) == 0 else f"about {int(n):,} rows"


def referrals_spc_section(scheme: SchemeData, *, params: SchemeParams) -> Section:
    """Referrals per month as a Making Data Count XmR chart.

    Monthly counts are rounded to the nearest 5 before charting (every published count
    passes disclosure control); when a month has 1 to 7 referrals the chart uses
    quarters instead, and when a quarter does too it is not drawn.
    """
    result = analyse_referrals(scheme, params=params)
    chart, label = result.chart, result.unit
    ax = chart.plot(title=f"Referrals per {label} (XmR chart)", ylabel=f"Referrals per {label}")
    special = chart.points[chart.points["special_cause"]]
    text = [
        f"Referrals per {label}, rounded to the nearest 5, against the mean "
        f"({chart.mean:.0f}) and natural process limits ({max(chart.lower, 0):.0f} to "
        f"{chart.upper:.0f}) of an XmR chart (NHS England, *Making Data Count*). "
        + (
            f"{len(special)} {label}s show special-cause variation ("
            + ", ".join(sorted(special["special_cause_type"].str.replace("_", " ").unique()))
            + "): something changed beyond the usual month-to-month variation."
            if len(special)
            else "No point shows special-cause variation: the referral rate has been stable."
        ),
        f"The first and last {label}s are left out because they are usually only partly covered.",
    ]
    table = chart.points[["date", "value", "mean", "lower", "upper", "special_cause_type"]].rename(
        columns={"value": "referrals_rounded"}
    )
    table["date"] = pd.to_datetime(table["date"]).dt.strftime("%Y-%m")
    return Section(
        title=f"Referrals per {label}",
        text=tuple(text),
        tables=(Table("referrals_spc", f"Referrals per {label} with XmR limits", table),),
        figures=(ax.figure,),
    )
