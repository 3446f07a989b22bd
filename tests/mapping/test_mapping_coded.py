"""A SNOMED-coded GP extract becomes clients (one per accepted referral) and measures."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from spimpact.io import load_scheme
from spimpact.mapping import MappingError, builtin_codelists, read_codelist
from spimpact.mapping.model import MappingFile

ACCEPTED, DECLINED, OFFERED = "871731000000106", "871711000000103", "871691000000100"
SWEMWBS_TOTAL = "718466001"
EVENTS = f"""\
PatientID,EventDate,SNOMEDCode,NumericValue
p1,03/01/2024,{OFFERED},
p1,05/01/2024,{ACCEPTED},
p1,05/01/2024,{ACCEPTED},
p1,06/01/2024,LOC-UC1,3
p1,06/01/2024,LOC-UC2,2
p1,06/01/2024,LOC-UC3,3
p1,06/01/2024,{SWEMWBS_TOTAL},24
p1,10/04/2024,LOC-UC1,1
p1,10/04/2024,LOC-UC2,1
p1,10/04/2024,LOC-UC3,2
p1,01/10/2024,{ACCEPTED},
p1,02/10/2024,LOC-UC1,2
p1,02/10/2024,LOC-UC2,2
p1,02/10/2024,LOC-UC3,2
p2,07/02/2024,{DECLINED},
p3,08/02/2024,{ACCEPTED},
p3,08/02/2024,LOC-UC1,five
p3,08/02/2024,LOC-UC2,3
p3,08/02/2024,LOC-UC3,3
p4,09/02/2024,{ACCEPTED},
p9,09/02/2024,22K..,
p9,10/02/2024,1234567,
"""
PATIENTS = """\
PatientID,Sex,Ethnicity,YearsOld
p1,F,A,40
p2,M,B,50
p3,M,,60
p5,F,A,70
"""
ITEMS = (
    "code,term,measure,item\n"
    "LOC-UC1,UCLA lack companionship,ucla3,1\n"
    "LOC-UC2,UCLA left out,ucla3,2\n"
    "LOC-UC3,UCLA isolated,ucla3,3\n"
)
MAPPING = """\
coded_events:
  source: events.csv
  columns:
    patient_id: PatientID
    date: {column: EventDate, date_format: "%d/%m/%Y"}
    code: SNOMEDCode
    value: NumericValue
  measures: [builtin:wellbeing_scores, local_items.csv]
tables:
  clients:
    source: patients.csv
    columns:
      client_id: PatientID
      sex: Sex
      ethnic_category: {column: Ethnicity, values: {A: A, B: B}}
      age: YearsOld
"""


@pytest.fixture(scope="module")
def scheme(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gp")
    (folder / "events.csv").write_text(EVENTS, encoding="utf-8")
    (folder / "patients.csv").write_text(PATIENTS, encoding="utf-8")
    (folder / "local_items.csv").write_text(ITEMS, encoding="utf-8")
    (folder / "mapping.yaml").write_text(textwrap.dedent(MAPPING), encoding="utf-8")
    return load_scheme(folder, mapping=folder / "mapping.yaml")


def codes(scheme, action):
    report = scheme.mapping_report
    rows = report[(report["column"] == "code") & (report["action"] == action)]
    return {(r.source_value, r.target_value): r.n_rows for r in rows.itertuples()}


def test_each_accepted_referral_is_an_episode(scheme):
    episodes = scheme.episodes
    assert episodes[["client_id", "episode", "analysed"]].values.tolist() == [
        ["p1", "1", True], ["p1", "2", False]
    ]  # fmt: skip
    clients = scheme.clients.set_index("client_id")
    assert clients.loc["p1", ["referral_date", "referral_source", "sex", "age"]].tolist() == [
        pd.Timestamp("2024-01-05"), "gp", "female", 40
    ]  # fmt: skip


def test_patients_without_demographics_or_with_bad_ones_are_excluded_with_reason(scheme):
    reasons = scheme.exclusions.set_index("value")["reason"]
    assert "no row for this patient in patients.csv" in reasons["p4"]
    p3 = scheme.exclusions[scheme.exclusions["line"] == 17]
    assert set(p3["column"]) == {"ethnic_category"}
    assert "required value missing" in set(p3["reason"])
    rec = scheme.reconciliation
    assert (rec["n_read"] == rec["n_used"] + rec["n_excluded"]).all()


def test_codes_are_counted(scheme):
    assert codes(scheme, "mapped") == {
        (ACCEPTED, "referral accepted"): 5,
        ("LOC-UC1", "ucla3 item 1"): 4,
        ("LOC-UC2", "ucla3 item 2"): 4,
        ("LOC-UC3", "ucla3 item 3"): 4,
    }
    assert codes(scheme, "not_used") == {
        (OFFERED, "referral offered"): 1,
        (DECLINED, "referral declined"): 1,
        (SWEMWBS_TOTAL, "swemwbs total score"): 1,
        (None, "(other codes)"): 2,
        (None, "referral accepted again on the same day"): 1,
    }


def test_item_codes_give_forms_in_their_episode(scheme):
    measures = scheme.measures.set_index(["client_id", "timepoint"])
    assert measures.loc[("p1", 0), ["item_1", "item_2", "item_3"]].tolist() == [3, 2, 3]
    assert measures.loc[("p1", 1), ["item_1", "item_2", "item_3"]].tolist() == [1, 1, 2]
    assert len(measures) == 2  # p1's second episode is not analysed; p3's form is bad
    excluded = scheme.exclusions[scheme.exclusions["table"] == "measures"]
    assert "row 18: expected a number" in set(excluded["reason"])
    second_episode = excluded[excluded["reason"].str.startswith("another episode")]
    assert second_episode["line"].tolist() == [13]


def test_builtin_codelists_flag_the_unconfirmed_code():
    assert "social_prescribing_referral_offered" in builtin_codelists()
    offered = read_codelist("builtin:social_prescribing_referral_offered", MappingFile(), key="k")
    assert offered["status"].tolist() == ["UNCONFIRMED"]
    accepted = read_codelist("builtin:social_prescribing_referral_accepted", MappingFile(), key="k")
    assert accepted[["code", "status"]].values.tolist() == [[ACCEPTED, "confirmed"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("code,label\nx,y\n", r"local_items.csv has no column\(s\) term, measure, item"),
        ("code,term,measure,item\nx,y,phq9,1\n", r"local_items.csv row 2: expected measure"),
        ("code,term,measure,item\nx,y,ucla3,1\nx,z,ucla3,2\n", r"row 3: code listed twice"),
    ],
)
def test_bad_user_codelists_name_the_key(tmp_path, content, message):
    (tmp_path / "local_items.csv").write_text(content, encoding="utf-8")
    mapping = MappingFile(path=tmp_path / "mapping.yaml")
    with pytest.raises(
        MappingError, match=f"mapping.yaml: key 'coded_events.measures\\[1\\]'.*{message}"
    ):
        read_codelist("local_items.csv", mapping, key="coded_events.measures[1]", items=True)
