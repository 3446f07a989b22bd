"""`spimpact map`: a proposal from messy exports that loads, and a round trip to the contract."""

from __future__ import annotations

import datetime

import pandas as pd
import pytest

from spimpact.io import load_scheme
from spimpact.mapping.propose import propose_mapping

openpyxl = pytest.importorskip("openpyxl")

ETHNIC = {
    "A": "White: English, Welsh, Scottish, Northern Irish or British",
    "B": "White: Irish",
    "H": "Asian or Asian British: Indian",
    "N": "Black, Black British, Caribbean or African: African",
    "Z": "Prefer not to say",
    "S": "Other ethnic group: Arab",
}
SOURCE = {
    "gp": "GP Surgery",
    "self": "Self-referral",
    "vcse": "Voluntary sector",
    "social_care": "Adult Social Care",
}
SEX = {"female": "Woman", "male": "Man"}
CONTACT = {
    "initial_assessment": "Initial assessment",
    "follow_up": "Follow-up",
    "telephone_check_in": "Welfare call",
}


def contract_tables(n=40):
    """Small contract tables with every code used."""
    ethnic, source = list(ETHNIC), list(SOURCE)
    clients = pd.DataFrame(
        {
            "client_id": [f"c{k:03d}" for k in range(n)],
            "referral_date": [
                datetime.date(2024, 1, 1) + datetime.timedelta(days=3 * k) for k in range(n)
            ],
            "referral_source": [source[k % len(source)] for k in range(n)],
            "age": [20 + (k * 7) % 60 for k in range(n)],
            "sex": ["female" if k % 3 else "male" for k in range(n)],
            "ethnic_category": [ethnic[k % len(ethnic)] for k in range(n)],
        }
    )
    baseline = clients.assign(timepoint=0, date=clients["referral_date"] + pd.Timedelta(days=7))
    review = clients.iloc[::2].assign(
        timepoint=1, date=clients["referral_date"] + pd.Timedelta(days=90)
    )
    measures = pd.concat([baseline, review], ignore_index=True)[["client_id", "timepoint", "date"]]
    for item in range(1, 8):
        measures[f"item_{item}"] = (measures.index * item) % 5 + 1
    contacts = pd.DataFrame(
        {
            "client_id": clients["client_id"].repeat(2).to_numpy(),
            "contact_date": (clients["referral_date"].repeat(2) + pd.Timedelta(days=10)).to_numpy(),
            "contact_type": ["initial_assessment", "follow_up"] * n,
            "duration_minutes": [30, 45] * n,
        }
    )
    contacts.loc[contacts.index % 5 == 4, "contact_type"] = "telephone_check_in"
    return clients, measures, contacts


def write_messy_export(folder, clients, measures, contacts):
    """What a case-management platform would export for these tables."""
    uk = "%d/%m/%Y"
    export = pd.DataFrame(
        {
            "Client Reference": clients["client_id"],
            "Date Referral Received": pd.to_datetime(clients["referral_date"]).dt.strftime(uk),
            "Referred By": clients["referral_source"].map(SOURCE),
            "Age at Referral": clients["age"],
            "Gender": clients["sex"].map(SEX),
            "Ethnicity": clients["ethnic_category"].map(ETHNIC),
            "Notes": "free text that must not travel",
        }
    )
    export.to_csv(folder / "Referrals Export.csv", sep=";", index=False, encoding="cp1252")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "SWEMWBS"
    sheet["A1"] = "Wellbeing scores (SWEMWBS) - export"
    sheet.merge_cells("A1:J1")
    sheet.append(["Client Reference", "Review", "Date completed", *[f"Q{k}" for k in range(1, 8)]])
    stage = {0: "Baseline", 1: "3 month review"}
    for row in measures.itertuples(index=False):
        items = [getattr(row, f"item_{k}") for k in range(1, 8)]
        sheet.append(
            [row.client_id, stage[row.timepoint], pd.Timestamp(row.date).to_pydatetime(), *items]
        )
    book.save(folder / "Outcomes.xlsx")
    sessions = pd.DataFrame(
        {
            "Client Reference": contacts["client_id"],
            "Session Date": pd.to_datetime(contacts["contact_date"]).dt.strftime(uk),
            "Session Type": contacts["contact_type"].map(CONTACT),
            "Duration (mins)": contacts["duration_minutes"],
        }
    )
    sessions.to_csv(folder / "Sessions.csv", index=False)


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    tables = contract_tables()
    write_messy_export(folder, *tables)
    proposal = propose_mapping(folder)
    (folder / "mapping.yaml").write_text(proposal.text, encoding="utf-8")
    return tables, proposal, load_scheme(folder, mapping=folder / "mapping.yaml")


def test_the_unedited_proposal_places_every_column_and_label(round_trip):
    _, proposal, _ = round_trip
    placed = proposal.placed
    tables = dict(
        zip(
            placed.loc[placed["kind"] == "table", "source"],
            placed.loc[placed["kind"] == "table", "table"],
            strict=True,
        )
    )
    assert tables == {
        "Referrals Export.csv": "clients",
        "Outcomes.xlsx [SWEMWBS]": "measures",
        "Sessions.csv": "contacts",
    }
    columns = placed[placed["kind"] == "column"]
    clients = dict(
        zip(
            columns.loc[columns["table"] == "clients", "target"],
            columns.loc[columns["table"] == "clients", "source_column"],
            strict=True,
        )
    )
    assert clients == {
        "client_id": "Client Reference",
        "referral_date": "Date Referral Received",
        "referral_source": "Referred By",
        "age": "Age at Referral",
        "sex": "Gender",
        "ethnic_category": "Ethnicity",
    }
    labels = placed[placed["kind"] == "label"]
    wanted = {f"ethnic_category={c}": v for c, v in ETHNIC.items()}
    wanted |= {f"referral_source={c}": v for c, v in SOURCE.items()}
    wanted |= {f"sex={c}": v for c, v in SEX.items()}
    wanted |= {f"contact_type={c}": v for c, v in CONTACT.items()}
    wanted |= {"timepoint=0": "Baseline", "timepoint=1": "3 month review"}
    assert dict(zip(labels["target"], labels["label"], strict=True)) == wanted
    assert proposal.unplaced == ()
    assert "Notes" not in proposal.text.split("# Could not place")[0].replace('"Notes"', "")
    assert "free text" not in proposal.text


def test_the_round_trip_gives_back_the_contract_tables(round_trip):
    (clients, measures, contacts), _, scheme = round_trip
    assert scheme.exclusions.empty
    loaded = scheme.clients.set_index("client_id").sort_index()
    truth = clients.set_index("client_id").sort_index()
    for column in ("referral_source", "sex", "ethnic_category"):
        assert loaded[column].tolist() == truth[column].tolist()
    assert loaded["referral_date"].dt.date.tolist() == truth["referral_date"].tolist()
    assert loaded["age"].tolist() == truth["age"].tolist()
    items = [f"item_{k}" for k in range(1, 8)]
    got = scheme.measures.sort_values(["client_id", "timepoint"])[
        ["client_id", "timepoint", *items]
    ]
    want = measures.sort_values(["client_id", "timepoint"])[["client_id", "timepoint", *items]]
    assert got.astype(str).values.tolist() == want.astype(str).values.tolist()
    assert scheme.measures["measure"].unique().tolist() == ["swemwbs"]
    assert sorted(scheme.contacts["contact_type"]) == sorted(contacts["contact_type"])
    assert scheme.ignored_columns.values.tolist() == [["clients", "Notes"]]


def test_what_cannot_be_placed_is_listed_not_guessed(tmp_path):
    (tmp_path / "clients.csv").write_text(
        "Client Ref,Referral date,Route,Gender,Ethnicity,Age\n"
        "a1,2024-01-05,Carrier pigeon,F,White British,40\n"
        "a2,2024-01-06,GP,M,Zzyzx,50\n",
        encoding="utf-8",
    )
    proposal = propose_mapping(tmp_path)
    assert '# "Carrier pigeon": ???   # could not place' in proposal.text
    assert '# "Zzyzx": ???   # could not place' in proposal.text
    assert any("Carrier pigeon" in u for u in proposal.unplaced)
    assert (
        any(
            "no column for required 'measure'" in u or "fits no" in u or "measures" in u
            for u in proposal.unplaced
        )
        or "measures" not in proposal.text
    )


def test_a_coded_gp_extract_is_recognised(tmp_path):
    (tmp_path / "gp_events.csv").write_text(
        "PatientID,EventDate,SNOMEDCode,NumericValue\n"
        "p1,05/01/2024,871731000000106,\n"
        "p2,06/01/2024,871711000000103,\n",
        encoding="utf-8",
    )
    (tmp_path / "patients.csv").write_text(
        "PatientID,Sex,Ethnicity,Age\np1,F,A,40\np2,M,B,50\n", encoding="utf-8"
    )
    proposal = propose_mapping(tmp_path)
    assert "coded_events:" in proposal.text
    (tmp_path / "mapping.yaml").write_text(proposal.text, encoding="utf-8")
    # clients come from the accepted referral; measures are missing, so the scheme is incomplete
    with pytest.raises(Exception, match="the mapping makes no 'measures' table"):
        load_scheme(tmp_path, mapping=tmp_path / "mapping.yaml")


def test_long_census_ethnicity_labels_are_still_labels():
    """The 2021 Census labels run past 60 characters; the column is still a coded one."""
    from spimpact.mapping.profile import match_label, profile_column

    long_label = "Black, Black British, Caribbean or African: Any other Black background"
    cells = pd.Series([long_label, "White: Irish", "Not recorded"] * 5)
    profile = profile_column("Ethnic Origin", cells)
    assert long_label in profile.labels
    assert match_label("ethnic_category", long_label)[0] == "P"
