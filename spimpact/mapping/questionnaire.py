"""Contract rows from mapped source rows, reshaping questionnaire items on the way.

The contract's ``measures`` table has one row per client × measure × time point with
``item_1`` … ``item_14``. Exports come three ways: already so (one questionnaire per
row: plain column rules), wide (several questionnaires or time points side by side on
one row: ``layout: wide`` with ``forms``) or long (one answered item per row:
``layout: long``). Every source row is accounted for: rows that give no questionnaire
are counted in the mapping report, and a problem on any row of a questionnaire
excludes that questionnaire with its reason.
"""

from __future__ import annotations

import pandas as pd

from spimpact.contract import N_ITEMS
from spimpact.mapping import derive
from spimpact.mapping.apply import (
    SourceRows,
    _count_row,
    convert_cell_text,
    evaluate_rule,
    find_column,
    label_report,
    map_labels,
)
from spimpact.mapping.model import MappingFile, TableMapping

__all__ = ["contract_rows"]

# Columns that identify one questionnaire in a long export.
FORM_KEY = ("client_id", "nhs_number", "episode", "measure", "timepoint", "date")


def contract_rows(rows: SourceRows, source: TableMapping, mapping: MappingFile, key: str):
    """The contract rows of one source.

    Returns ``(made, problems, report, used)``: ``made`` holds the contract columns,
    ``_line`` (the source line of each row: the first line of a long questionnaire);
    ``problems`` are ``(position in made, column, value, reason)``; ``report`` lists
    report frames; ``used`` the source columns read for items.
    """
    questionnaire = source.questionnaire
    if questionnaire is None:
        made = rows.values.reset_index(drop=True).assign(_line=rows.frame["source_row"].to_numpy())
        positions = {i: p for p, i in enumerate(rows.values.index)}
        problems = [(positions[i], c, v, why) for i, c, v, why in rows.problems]
        return made, problems, [], set()
    if questionnaire.layout == "wide":
        return _wide(rows, source, mapping, key)
    return _long(rows, source, mapping, key)


def _answers(rows: SourceRows, text: pd.Series, responses: dict, where: str):
    """Answer labels mapped to numbers; returns the text, bad mask and report frame."""
    numeric = pd.to_numeric(text, errors="coerce").notna()
    mapped, action = map_labels(text, responses or None, "exclude", numeric)
    if not responses:
        action = action.where(action != "mapped", "unchanged")
    return mapped, action == "excluded", action


def _wide(rows: SourceRows, source: TableMapping, mapping: MappingFile, key: str):
    frame, values = rows.frame, rows.values
    responses = source.questionnaire.responses
    made, links, problems, reports, used = [], [], [], [], set()
    by_row: dict[int, list[tuple]] = {}
    for i, column, value, why in rows.problems:
        by_row.setdefault(i, []).append((column, value, why))
    answers_text, answers_action = [], []
    for k, form in enumerate(source.questionnaire.forms):
        where = f"{mapping.name}: key '{key}.questionnaire.forms[{k}]"
        part = pd.DataFrame(index=frame.index)
        bad_answers = pd.Series(False, index=frame.index)
        for n, name in enumerate(form.items, start=1):
            if name is None:
                continue
            column = find_column(name, frame, f"{where}.items'", rows.label)
            used.add(column)
            text = frame[column].fillna("").astype(str).str.strip()
            mapped, bad, action = _answers(rows, text, responses, where)
            answers_text.append(text)
            answers_action.append(action)
            for i in frame.index[bad]:
                by_row.setdefault(("form", k, i), []).append(
                    (f"item_{n}", text[i], f"answer not in the mapping's responses ({where[2:]}')")
                )
            part[f"item_{n}"] = mapped.where(~bad, "")
            bad_answers |= bad
        answered = (part != "").any(axis=1) | bad_answers
        for name in ("measure", "timepoint"):
            fixed = getattr(form, name)
            part[name] = str(fixed) if fixed is not None else values[name]
        if form.date is not None:
            text, _ = evaluate_rule(form.date, frame, f"{where}.date'", rows.label, ".")
            used |= {find_column(c, frame, where, rows.label) for c in form.date.source_columns}
            text, date_rows, report = convert_cell_text(
                "measures",
                "date",
                form.date,
                text,
                f"{where}.date'",
                rows.label,
                ", ".join(form.date.source_columns),
            )
            reports += report
            for i, value, why in date_rows:
                by_row.setdefault(("form", k, i), []).append(("date", value, why))
            part["date"] = text
        else:
            part["date"] = values["date"]
        shared = values.drop(columns=[c for c in ("measure", "timepoint", "date") if c in values])
        part = pd.concat([shared, part], axis=1)[answered]
        made.append(part.assign(_line=frame.loc[answered, "source_row"].to_numpy()))
        links += [(k, i) for i in part.index]
        reports.append(
            _count_row(
                "measures",
                f"forms[{k}]",
                rows.label,
                "(items)",
                "no_answers",
                int((~answered).sum()),
            )
        )
    result = pd.concat(made, ignore_index=True) if made else pd.DataFrame(columns=["_line"])
    for position, (k, i) in enumerate(links):
        for column, value, why in by_row.get(i, []) + by_row.get(("form", k, i), []):
            problems.append((position, column, value, why))
    if answers_text:
        text = pd.concat(answers_text, ignore_index=True)
        action = pd.concat(answers_action, ignore_index=True)
        target, _ = map_labels(text, responses or None, "exclude", action == "unchanged")
        declared = {derive.label_key(k) for k in responses}
        report = label_report(
            "measures", "items", rows.label, "(items)", text, target, action, declared
        )
        reports.append(report[report["action"] != "missing"])
    reports.append(_count_row("measures", "", rows.label, "", "read", len(frame)))
    reports.append(_count_row("measures", "", rows.label, "", "reshaped", len(result)))
    return result, problems, reports, used


def _long(rows: SourceRows, source: TableMapping, mapping: MappingFile, key: str):
    frame, values = rows.frame, rows.values
    questionnaire = source.questionnaire
    where = f"{mapping.name}: key '{key}.questionnaire"
    reports, used = [], set()
    item_text, _ = evaluate_rule(questionnaire.item, frame, f"{where}.item'", rows.label, ".")
    used |= {find_column(c, frame, where, rows.label) for c in questionnaire.item.source_columns}
    item_valid = pd.to_numeric(item_text, errors="coerce").isin(range(1, N_ITEMS + 1))
    item, item_action = map_labels(item_text, questionnaire.item.values, "exclude", item_valid)
    declared = {derive.label_key(k) for k in questionnaire.item.values or {}}
    reports.append(
        label_report(
            "measures",
            "item",
            rows.label,
            ", ".join(questionnaire.item.source_columns),
            item_text,
            item,
            item_action,
            declared,
        )
    )
    answer_text, _ = evaluate_rule(
        questionnaire.response, frame, f"{where}.response'", rows.label, "."
    )
    used |= {
        find_column(c, frame, where, rows.label) for c in questionnaire.response.source_columns
    }
    responses = {**questionnaire.responses, **(questionnaire.response.values or {})}
    answer, bad_answer, answer_action = _answers(rows, answer_text, responses, where)
    reports.append(
        label_report(
            "measures",
            "items",
            rows.label,
            ", ".join(questionnaire.response.source_columns),
            answer_text,
            answer,
            answer_action,
            {derive.label_key(k) for k in responses},
        )
    )
    key_columns = [c for c in FORM_KEY if c in values]
    keys = values[key_columns].astype(str).agg("\x1f".join, axis=1)
    line = frame["source_row"]
    groups = keys.groupby(keys, sort=False).groups
    made, problems = [], []
    by_row: dict[int, list[tuple]] = {}
    for i, column, value, why in rows.problems:
        by_row.setdefault(i, []).append((column, value, why))
    for position, (_, index) in enumerate(groups.items()):
        first = index[0]
        row = {c: values.at[first, c] for c in values.columns}
        row["_line"] = int(line[first])
        for i in index:
            for column, value, why in by_row.get(i, []):
                problems.append((position, column, value, f"row {line[i]}: {why}"))
            if item_action[i] == "excluded":
                problems.append(
                    (
                        position,
                        "item",
                        item_text[i],
                        f"row {line[i]}: question not in the mapping's item values "
                        f"({where[2:]}.item')",
                    )
                )
                continue
            if bad_answer[i]:
                problems.append(
                    (
                        position,
                        "item",
                        answer_text[i],
                        f"row {line[i]}: answer not in the mapping's responses "
                        f"({where[2:]}.response')",
                    )
                )
                continue
            if item[i] == "":
                continue
            column = f"item_{int(float(item[i]))}"
            if row.get(column, answer[i]) != answer[i]:
                problems.append(
                    (position, column, answer[i], f"row {line[i]}: item answered twice in one form")
                )
            row[column] = answer[i]
        made.append(row)
    result = pd.DataFrame(made) if made else pd.DataFrame(columns=["_line", *values.columns])
    reports.append(_count_row("measures", "", rows.label, "", "read", len(frame)))
    reports.append(_count_row("measures", "", rows.label, "", "reshaped", len(result)))
    return result, problems, reports, used
