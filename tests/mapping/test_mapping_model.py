"""The mapping file is validated as strictly as the params: every error names file and key."""

from __future__ import annotations

import textwrap

import pytest

from spimpact.mapping import MappingError, load_mapping

CLIENTS = """\
tables:
  clients:
    source: referrals.csv
    columns:
      client_id: Client Ref
      referral_date: {column: Referred, date_format: "%d/%m/%Y"}
      referral_source: {column: Route, values: {GP Surgery: gp}}
      age: Age
      sex: Gender
      ethnic_category: Ethnicity
"""
MEASURES = """\
  measures:
    source: outcomes.csv
    columns: {client_id: Client Ref, measure: {constant: swemwbs}, date: Date, timepoint: Visit}
    questionnaire: {layout: wide, forms: [{items: [Q1, Q2, Q3, Q4, Q5, Q6, Q7]}]}
"""


def write(tmp_path, text):
    path = tmp_path / "north_shore.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_valid_mapping_loads(tmp_path):
    mapping = load_mapping(write(tmp_path, CLIENTS + MEASURES))
    assert mapping.name == "north_shore.yaml"
    assert mapping.sources("clients")[0].columns["client_id"].column == "Client Ref"
    assert mapping.sources("contacts") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            CLIENTS.replace("      age: Age\n", "      age: Age\n      sex: Sex at birth\n")
            + MEASURES,
            r"north_shore.yaml: not valid YAML: key 'sex' appears twice \(lines 9 and 10\)",
        ),
        (
            CLIENTS.replace("      sex: Gender\n", "") + MEASURES,
            r"north_shore.yaml: key 'tables.clients.columns': required contract column 'sex' "
            r"is not mapped \(expected one of female, male, other, unknown\)",
        ),
        (
            CLIENTS.replace("      age: Age\n", "") + MEASURES,
            r"key 'tables.clients.columns': map one of the contract columns age, age_band, "
            "date_of_birth",
        ),
        (
            CLIENTS.replace("source: referrals.csv", "source: referrals.csv\n    sheeet: 2")
            + MEASURES,
            r"key 'tables.clients.sheeet': Extra inputs are not permitted",
        ),
        (
            CLIENTS + MEASURES + "  clinics:\n    source: x.csv\n",
            r"key 'tables.clinics': no such contract table",
        ),
        (
            CLIENTS.replace("age: Age", "age: {column: Age, constant: 40}") + MEASURES,
            r"key 'tables.clients.columns.age': Value error, give exactly one of column, "
            r"constant, concat, split, postcode, sequence \(got column, constant\)",
        ),
        (
            CLIENTS.replace("age: Age", "age: {column: Age, date_format: '%Y'}") + MEASURES,
            r"key 'tables.clients.columns.age': date_format applies to date columns only",
        ),
        (
            CLIENTS.replace("age: Age", "age: Age\n      practice_code: {sequence: true}")
            + MEASURES,
            r"sequence numbers 'episode' in clients and 'timepoint' in measures only",
        ),
        (
            CLIENTS + MEASURES.replace("timepoint: Visit}", "timepoint: Visit, item_1: Q1}"),
            r"key 'tables.measures.columns': item_1 mapped twice \(in columns and by the "
            "questionnaire\\)",
        ),
        (
            CLIENTS + MEASURES.replace("date: Date, ", ""),
            r"key 'tables.measures.questionnaire.forms\[0\]': 'date' is mapped neither here "
            "nor in columns",
        ),
        (
            CLIENTS + MEASURES.replace("layout: wide, forms", "layout: long, forms"),
            r"layout long needs item and response",
        ),
        (
            CLIENTS.replace("Route, values", "Route, unmapped: blank, valuez") + MEASURES,
            r"key 'tables.clients.columns.referral_source.valuez'",
        ),
        (
            CLIENTS.replace("source: referrals.csv", "source: ../../etc/referrals.csv") + MEASURES,
            r"key 'tables.clients.source': Value error, give a file inside the data folder",
        ),
        (
            "coded_events:\n  source: e.csv\n  columns: {patient_id: P, date: D, code: C}\n"
            + MEASURES.replace("  measures:", "tables:\n  measures:"),
            r"key 'coded_events': the patients' demographics are needed too",
        ),
        ("- just\n- a list\n", r"north_shore.yaml: expected a mapping of keys to values"),
        ("tables: [\n", r"north_shore.yaml: not valid YAML"),
    ],
)
def test_a_bad_mapping_stops_with_file_and_key(tmp_path, text, message):
    with pytest.raises(MappingError, match=message):
        load_mapping(write(tmp_path, text))


def test_every_problem_is_listed_at_once(tmp_path):
    text = CLIENTS.replace("      sex: Gender\n", "").replace("      age: Age\n", "") + MEASURES
    with pytest.raises(MappingError) as caught:
        load_mapping(write(tmp_path, text))
    assert len(caught.value.problems) == 2
    assert all(p.startswith("north_shore.yaml: key 'tables.clients") for p in caught.value.problems)


def test_a_mapping_error_is_a_data_validation_error():
    from spimpact.io import DataValidationError

    assert issubclass(MappingError, DataValidationError)
