"""Spreadsheet sources, questionnaires one item per row, several sources for one table."""

from __future__ import annotations

import datetime
import textwrap

import pytest

from spimpact.io import load_scheme

openpyxl = pytest.importorskip("openpyxl")

SWEMWBS_QUESTIONS = [
    "Optimistic about the future",
    "Feeling useful",
    "Feeling relaxed",
    "Dealing with problems well",
    "Thinking clearly",
    "Feeling close to other people",
    "Able to make up my own mind",
]
ANSWERS = ["None of the time", "Rarely", "Some of the time", "Often", "All of the time"]


def write_workbook(path):
    """A case-management export: cover sheet, title rows, Excel serial dates, local labels."""
    book = openpyxl.Workbook()
    book.active.title = "Read me"
    book.active["A1"] = "Exported by CaseBook"
    sheet = book.create_sheet("Referrals")
    sheet["A1"] = "Hillcrest referrals 2024/25"
    sheet.merge_cells("A1:F1")
    sheet["A2"] = "Produced 01/04/2025"
    sheet.append(["ID", "Referred on", "Source", "Sex", "Ethnic group", "Age at referral"])
    sheet.append(["h1", datetime.date(2024, 5, 2), "Doctor", "Female", "White British", 44])
    sheet.append(["h2", 45419, "Self", "Male", "Black Caribbean", 71])  # serial: 2024-05-07
    sheet.append(["h3", datetime.datetime(2024, 6, 1, 9, 30), "Doctor", "Male", "Refused", 35])
    book.save(path)


ANSWER_ROWS = (
    [("h1", "02/05/2024", "Baseline", SWEMWBS_QUESTIONS[k], ANSWERS[k % 5]) for k in range(7)]
    + [("h1", "02/08/2024", "3 month review", q, "Often") for q in SWEMWBS_QUESTIONS]
    + [("h2", "07/05/2024", "Baseline", q, "Rarely") for q in SWEMWBS_QUESTIONS[:6]]
    + [("h2", "07/05/2024", "Baseline", "A question we added", "Often")]
)

MAPPING = """\
tables:
  clients:
    source: export.xlsx
    sheet: Referrals
    columns:
      client_id: ID
      referral_date: {column: Referred on, date_format: excel}
      referral_source: {column: Source, values: {Doctor: gp, Self: self}}
      sex: Sex
      ethnic_category:
        column: Ethnic group
        values: {White British: A, Black Caribbean: M, Refused: Z}
      age: Age at referral
  measures:
    source: answers.csv
    columns:
      client_id: Client
      measure: {constant: swemwbs}
      date: {column: Completed, date_format: "%d/%m/%Y"}
      timepoint: {column: Stage, values: {Baseline: 0, 3 month review: 1}}
    questionnaire:
      layout: long
      item:
        column: Question
        values: {QUESTIONS}
      response: Answer
      responses: {None of the time: 1, Rarely: 2, Some of the time: 3, Often: 4,
                  All of the time: 5}
"""


def write_scheme(folder, mapping=None):
    write_workbook(folder / "export.xlsx")
    lines = ["Client,Completed,Stage,Question,Answer"]
    lines += [",".join(row) for row in ANSWER_ROWS]
    (folder / "answers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    questions = "{" + ", ".join(f"{q}: {k}" for k, q in enumerate(SWEMWBS_QUESTIONS, 1)) + "}"
    path = folder / "mapping.yaml"
    text = textwrap.dedent(mapping or MAPPING).replace("{QUESTIONS}", questions)
    path.write_text(text, encoding="utf-8")
    return folder, path


def test_spreadsheet_with_title_rows_and_serial_dates(tmp_path):
    scheme = load_scheme(*write_scheme(tmp_path)[:1], mapping=tmp_path / "mapping.yaml")
    clients = scheme.clients.set_index("client_id")
    assert clients["referral_date"].dt.strftime("%Y-%m-%d").to_dict() == {
        "h1": "2024-05-02",
        "h2": "2024-05-07",
        "h3": "2024-06-01",
    }
    assert clients["ethnic_category"].to_dict() == {"h1": "A", "h2": "M", "h3": "Z"}
    assert scheme.source_files["clients"].name == "export.xlsx"


def test_one_item_per_row_becomes_one_form(tmp_path):
    scheme = load_scheme(*write_scheme(tmp_path)[:1], mapping=tmp_path / "mapping.yaml")
    measures = scheme.measures.set_index(["client_id", "timepoint"])
    assert measures.loc[("h1", 0), [f"item_{k}" for k in range(1, 8)]].tolist() == [
        1,
        2,
        3,
        4,
        5,
        1,
        2,
    ]
    assert measures.loc[("h1", 1), "item_7"] == 4
    # h2's form has a question the mapping does not know: excluded with the line named
    excluded = scheme.exclusions[scheme.exclusions["table"] == "measures"]
    assert excluded["line"].unique().tolist() == [16]  # the form's first line
    assert excluded["reason"].str.startswith("row 22: question not in the mapping's item").any()
    rec = scheme.reconciliation.set_index("table").loc["measures"]
    assert rec.tolist() == [3, 2, 1]
    report = scheme.mapping_report
    read = report[(report["table"] == "measures") & (report["action"].isin(["read", "reshaped"]))]
    assert read.set_index("action")["n_rows"].to_dict() == {"read": 21, "reshaped": 3}


def test_several_sources_fill_one_table(tmp_path):
    folder, _ = write_scheme(tmp_path)
    (folder / "more_referrals.csv").write_text(
        "ID,Referred on,Source,Sex,Ethnic group,Age at referral\n"
        "h9,2024-07-01,Self,Female,White British,50\n",
        encoding="utf-8",
    )
    mapping = (folder / "mapping.yaml").read_text(encoding="utf-8")
    clients = mapping[mapping.index("  clients:") : mapping.index("  measures:")]
    body = clients.replace("  clients:\n", "")
    second = body.replace("source: export.xlsx", "source: more_referrals.csv").replace(
        "    sheet: Referrals\n", ""
    )
    listed = "  clients:\n" + ("    - " + body.strip().replace("\n", "\n  ")) + "\n"
    listed += "    - " + second.strip().replace("\n", "\n  ") + "\n"
    (folder / "mapping.yaml").write_text(mapping.replace(clients, listed), encoding="utf-8")
    scheme = load_scheme(folder, mapping=folder / "mapping.yaml")
    assert sorted(scheme.clients["client_id"]) == ["h1", "h2", "h3", "h9"]
    # rows of two sources get distinct numbers; exclusions still name file and line
    assert scheme.clients["source_row"].is_unique
    assert set(scheme.mapping_report["source"]) >= {"export.xlsx [Referrals]", "more_referrals.csv"}


def test_a_scale_variant_named_by_the_mapping_must_be_declared_in_params(tmp_path):
    from spimpact.mapping import MappingError
    from spimpact.params import ScaleVariant

    mapping = MAPPING.replace(
        "      layout: long\n", "      layout: long\n      variants: [swemwbs]\n"
    )
    folder, path = write_scheme(tmp_path, mapping=mapping)
    with pytest.raises(
        MappingError,
        match=r"key 'tables.measures.questionnaire.variants': the "
        r"params declare no scale variant for 'swemwbs'",
    ):
        load_scheme(folder, mapping=path)
    variant = ScaleVariant(observed_min=1, observed_max=5, reason="recorded as printed")
    scheme = load_scheme(folder, mapping=path, variants={"swemwbs": variant})
    assert len(scheme.measures) == 2
