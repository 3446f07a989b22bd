"""The loader: every kind of bad input, and every row accounted for."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from spimpact.io import DataValidationError, load_scheme
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data

CLIENTS = """\
client_id,referral_date,referral_source,age,sex,ethnic_category,imd_decile,discharge_date,\
discharge_reason
c001,2024-01-10,gp,45,female,A,3,2024-06-01,completed
c002,2024-02-11,self,67,male,H,7,,
c003,2024-03-12,vcse,29,2,N,1,2024-05-01,disengaged
"""
MEASURES = """client_id,measure,timepoint,date,item_1,item_2,item_3,item_4,item_5,item_6,item_7
c001,swemwbs,0,2024-01-20,3,3,2,3,3,4,3
c001,swemwbs,1,2024-04-20,4,4,3,3,4,4,4
c002,swemwbs,0,2024-02-20,2,2,2,3,2,2,3
c003,swemwbs,0,2024-03-20,3,2,2,2,2,3,3
"""


def write_scheme(folder: Path, **tables: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    contents = {"clients": CLIENTS, "measures": MEASURES, **tables}
    for name, text in contents.items():
        if text is not None:
            (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def reasons(scheme, table):
    return scheme.exclusions.loc[scheme.exclusions["table"] == table]


def assert_reconciled(scheme):
    rec = scheme.reconciliation
    assert (rec["n_read"] == rec["n_used"] + rec["n_excluded"]).all()
    for row in rec.itertuples():
        excluded_rows = scheme.exclusions.loc[
            scheme.exclusions["table"] == row.table, "row"
        ].nunique()
        assert excluded_rows == row.n_excluded


def test_valid_scheme_loads_with_derived_columns(tmp_path):
    scheme = load_scheme(write_scheme(tmp_path))
    assert_reconciled(scheme)
    assert scheme.exclusions.empty
    clients = scheme.clients.set_index("client_id")
    assert clients.loc["c003", "sex"] == "female"  # NHS code 2
    assert clients.loc["c001", "imd_quintile"] == 2
    assert clients.loc["c002", "ethnic_group"] == "Asian"
    assert clients.loc["c002", "age_band"] == "65-74"
    assert scheme.contacts is None


def test_empty_file_is_fatal(tmp_path):
    write_scheme(tmp_path, clients="")
    with pytest.raises(DataValidationError, match=r"clients.csv: the file is empty"):
        load_scheme(tmp_path)


def test_header_only_required_table_is_fatal(tmp_path):
    write_scheme(tmp_path, measures=MEASURES.splitlines()[0] + "\n")
    with pytest.raises(DataValidationError, match=r"measures.csv: has a header but no data rows"):
        load_scheme(tmp_path)


def test_header_only_optional_table_loads_empty(tmp_path):
    scheme = load_scheme(write_scheme(tmp_path, contacts="client_id,contact_date,contact_type\n"))
    assert scheme.contacts.empty
    assert_reconciled(scheme)


def test_missing_required_column_names_file_column_and_expectation(tmp_path):
    write_scheme(
        tmp_path, clients=CLIENTS.replace("referral_date,", "").replace(",2024-0", ",X2024-0")
    )
    with pytest.raises(DataValidationError) as error:
        load_scheme(tmp_path)
    message = str(error.value)
    assert "clients.csv row 1, column 'referral_date': required column missing" in message
    assert "a date written YYYY-MM-DD" in message


def test_every_fatal_problem_is_listed_at_once(tmp_path):
    write_scheme(
        tmp_path,
        clients=CLIENTS.replace("referral_source,", "source,"),
        measures=MEASURES.replace("timepoint,", "time,"),
    )
    with pytest.raises(DataValidationError) as error:
        load_scheme(tmp_path)
    assert len(error.value.problems) == 2


def test_missing_required_table(tmp_path):
    write_scheme(tmp_path, measures=None)
    with pytest.raises(DataValidationError, match="required table 'measures' missing"):
        load_scheme(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "column", "reason"),
    [
        (
            "c002,2024-02-11,self,67",
            "c002,2024-02-11,self,sixty",
            "age",
            "whole number from 16 to 110",
        ),
        (
            "c002,2024-02-11,self,67",
            "c002,2024-02-11,self,67.5",
            "age",
            "whole number from 16 to 110",
        ),
        (
            "c002,2024-02-11,self,67",
            "c002,2024-02-11,self,130",
            "age",
            "whole number from 16 to 110",
        ),
        ("67,male,H,7", "67,male,H,11", "imd_decile", "from 1 to 10"),
        ("c002,2024-02-11", "c002,2024-02-30", "referral_date", "impossible or malformed date"),
        ("c002,2024-02-11", "c002,11/02/2024", "referral_date", "impossible or malformed date"),
        ("67,male,H", "67,male,Q", "ethnic_category", "one of A, B"),
        ("c002,2024-02-11,self", "c002,2024-02-11,friend", "referral_source", "one of gp"),
        (
            "c002,2024-02-11,self,67,male,H,7,,",
            "c002,,self,67,male,H,7,,",
            "referral_date",
            "required value missing",
        ),
    ],
)
def test_row_level_problem_excludes_the_row_with_its_reason(tmp_path, old, new, column, reason):
    scheme = load_scheme(write_scheme(tmp_path, clients=CLIENTS.replace(old, new)))
    excluded = reasons(scheme, "clients")
    assert excluded["row"].tolist()[:1] == [3]  # c002 is on line 3 (header = line 1)
    assert column in excluded["column"].tolist()
    assert excluded["reason"].str.contains(reason, regex=False).any()
    assert "c002" not in scheme.clients["client_id"].tolist()
    # the client's measures go too, each with its own reason
    assert "the client's own record was excluded" in reasons(scheme, "measures")["reason"].tolist()
    assert_reconciled(scheme)


def test_out_of_range_item_is_excluded_not_clipped(tmp_path):
    scheme = load_scheme(
        write_scheme(tmp_path, measures=MEASURES.replace("2024-02-20,2,2,2", "2024-02-20,7,2,2"))
    )
    excluded = reasons(scheme, "measures")
    assert excluded.iloc[0][["row", "column", "value"]].tolist() == [4, "item_1", "7"]
    assert len(scheme.measures) == 3
    assert_reconciled(scheme)


def test_follow_up_before_baseline(tmp_path):
    scheme = load_scheme(
        write_scheme(
            tmp_path,
            measures=MEASURES.replace("c001,swemwbs,1,2024-04-20", "c001,swemwbs,1,2024-01-02"),
        )
    )
    assert reasons(scheme, "measures")["reason"].tolist() == [
        "follow-up dated before the baseline of the same measure"
    ]


def test_duplicates_keep_the_first(tmp_path):
    clients = CLIENTS + "c001,2024-05-10,gp,45,female,A,3,,\n"
    scheme = load_scheme(write_scheme(tmp_path, clients=clients))
    excluded = reasons(scheme, "clients")
    assert excluded[["row", "reason"]].values.tolist() == [
        [5, "duplicate client_id (first seen at row 2)"]
    ]
    assert len(scheme.clients) == 3


def test_orphan_records(tmp_path):
    scheme = load_scheme(
        write_scheme(
            tmp_path,
            contacts="client_id,contact_date,contact_type\nc001,2024-01-15,initial_assessment\nc999,2024-01-15,follow_up\n",
        )
    )
    assert reasons(scheme, "contacts")[["row", "reason"]].values.tolist() == [
        [3, "record for an unknown client (not in clients)"]
    ]
    assert_reconciled(scheme)


def test_contact_before_referral(tmp_path):
    scheme = load_scheme(
        write_scheme(
            tmp_path,
            contacts="client_id,contact_date,contact_type\nc001,2023-12-15,initial_assessment\n",
        )
    )
    assert reasons(scheme, "contacts")["reason"].tolist() == ["contact before the referral date"]


def test_no_consent_is_excluded_and_said(tmp_path):
    clients = CLIENTS.replace("discharge_reason\n", "discharge_reason,consent_data_use\n")
    clients = (
        clients.replace("completed\n", "completed,yes\n", 1)
        .replace(",,\n", ",,,no\n")
        .replace("disengaged\n", "disengaged,Y\n")
    )
    scheme = load_scheme(write_scheme(tmp_path, clients=clients))
    assert reasons(scheme, "clients")["reason"].tolist() == [
        "no consent to use the record for evaluation"
    ]


def test_utf8_bom_and_excel_style_csv(tmp_path):
    """Excel's 'CSV UTF-8': a byte-order mark, CRLF line ends, quoted fields, padded headers."""
    excel = "\ufeff" + CLIENTS.replace("client_id,", '"Client_ID" ,').replace("\n", "\r\n").replace(
        "c001,", '"c001",'
    )
    write_scheme(tmp_path)
    (tmp_path / "clients.csv").write_bytes(excel.encode("utf-8"))
    scheme = load_scheme(tmp_path)
    assert scheme.clients["client_id"].tolist() == ["c001", "c002", "c003"]
    assert scheme.exclusions.empty


def test_undecodable_file_is_fatal_with_line(tmp_path):
    write_scheme(tmp_path)
    raw = CLIENTS.replace("c003", "c_03").encode("cp1252").replace(b"c_03", b"c\x8103")
    (tmp_path / "clients.csv").write_bytes(raw)
    with pytest.raises(
        DataValidationError, match=r"clients.csv row 4: byte 0x81 is neither UTF-8 nor Windows-1252"
    ):
        load_scheme(tmp_path)


def test_windows_1252_export_loads(tmp_path):
    write_scheme(tmp_path)
    lines = CLIENTS.splitlines()
    text = "\n".join([lines[0] + ",note"] + [line + ",caf\xe9 \u2013 \xa35" for line in lines[1:]])
    (tmp_path / "clients.csv").write_bytes(text.encode("cp1252"))
    scheme = load_scheme(tmp_path)
    assert scheme.clients["client_id"].tolist() == ["c001", "c002", "c003"]
    assert scheme.exclusions.empty


def test_quoted_newline_keeps_line_numbers(tmp_path):
    feedback = (
        "feedback_id,client_id,date,feedback_type,consent_to_quote,text\n"
        'f1,c001,2024-05-01,informal,true,"two\nlines"\n'
        "f2,c001,2024-05-02,formal,maybe,x\n"
    )
    scheme = load_scheme(write_scheme(tmp_path, feedback=feedback))
    assert reasons(scheme, "feedback")[["row", "column"]].values.tolist() == [
        [4, "consent_to_quote"]
    ]


def test_ragged_row(tmp_path):
    scheme = load_scheme(write_scheme(tmp_path, clients=CLIENTS + "c004,2024-03-12,vcse\n"))
    excluded = reasons(scheme, "clients")
    assert excluded["row"].unique().tolist() == [5]
    assert excluded["reason"].str.contains("row has 3 fields").any()


def test_nhs_numbers_are_validated_and_pseudonymised(tmp_path):
    clients = CLIENTS.replace("client_id,", "nhs_number,")
    clients = (
        clients.replace("c001,", "943 476 5919,")
        .replace("c002,", "9434765918,")
        .replace("c003,", "9000000009,")
    )
    measures = MEASURES.replace("client_id,", "nhs_number,").replace("c001,", "9434765919,")
    measures = measures.replace("c002,", "9434765918,").replace("c003,", "9000000009,")
    scheme = load_scheme(
        write_scheme(tmp_path, clients=clients, measures=measures), pseudonym_key="k"
    )
    excluded = reasons(scheme, "clients")
    assert excluded[["row", "column", "value"]].values.tolist() == [[3, "nhs_number", "(withheld)"]]
    ids = scheme.clients["client_id"].tolist()
    assert len(ids) == 2 and all(i.startswith("P-") for i in ids)
    assert set(scheme.measures["client_id"]) == set(ids)  # the same person links across tables
    for frame in (scheme.clients, scheme.measures, scheme.exclusions):
        text = frame.to_csv()
        assert "9434765919" not in text and "476 5919" not in text and "9434765918" not in text
    assert_reconciled(scheme)


def test_nhs_numbers_without_key_is_fatal(tmp_path, monkeypatch):
    monkeypatch.delenv("SPIMPACT_PSEUDONYM_KEY", raising=False)
    write_scheme(
        tmp_path,
        clients=CLIENTS.replace("client_id,", "nhs_number,").replace("c001,", "9434765919,"),
    )
    with pytest.raises(DataValidationError, match="no key was given"):
        load_scheme(tmp_path)


def test_unknown_columns_are_not_read(tmp_path):
    clients = CLIENTS.replace("discharge_reason\n", "discharge_reason,surname\n")
    clients = (
        "\n".join(line + (",Smith" if i else "") for i, line in enumerate(clients.splitlines()))
        + "\n"
    )
    scheme = load_scheme(write_scheme(tmp_path, clients=clients))
    assert "surname" not in scheme.clients
    assert scheme.ignored_columns.values.tolist() == [["clients", "surname"]]


def test_parquet_tables(tmp_path):
    write_scheme(tmp_path)
    frame = pd.read_csv(tmp_path / "clients.csv", dtype=str)
    frame["referral_date"] = pd.to_datetime(frame["referral_date"])
    frame.to_parquet(tmp_path / "clients.parquet")
    (tmp_path / "clients.csv").unlink()
    scheme = load_scheme(tmp_path)
    assert scheme.clients["referral_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-10",
        "2024-02-11",
        "2024-03-12",
    ]


def test_example_data_reconciles(example_data, load_example):
    for folder in sorted(example_data.iterdir()):
        scheme = load_example(folder)
        assert_reconciled(scheme)


def test_modified_scale_example_is_flagged(example_data, load_example):
    scheme = load_example(example_data / "valley")
    assert scheme.non_standard["measure"].tolist() == ["swemwbs"]
    assert "0–10" in scheme.non_standard["issue"].iloc[0]


def test_corrupted_example_lists_every_problem(tmp_path):
    # hillcrest written as the contract's own tables (the example sends a platform export)
    spec = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "hillcrest")
    (written,) = write_example_data(tmp_path, schemes=(replace(spec, export="contract"),))
    folder = tmp_path / "corrupt"
    shutil.copytree(written, folder)
    lines = (folder / "clients.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[5].split(",")
    cells[header.index("imd_decile")] = "12"
    cells[header.index("referral_date")] = "2024-13-01"
    lines[5] = ",".join(cells)
    (folder / "clients.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    scheme = load_scheme(folder)
    excluded = reasons(scheme, "clients")
    assert sorted(excluded.loc[excluded["row"] == 6, "column"]) == ["imd_decile", "referral_date"]


def test_one_missing_swemwbs_item_only_when_opted_in(tmp_path):
    measures = MEASURES.replace(
        "c002,swemwbs,0,2024-02-20,2,2,2,3,2,2,3", "c002,swemwbs,0,2024-02-20,2,2,,3,2,2,3"
    )
    folder = write_scheme(tmp_path, measures=measures)
    assert reasons(load_scheme(folder), "measures")["row"].tolist() == [4]
    opted_in = load_scheme(folder, swemwbs_max_missing_items=1)
    assert reasons(opted_in, "measures").empty
    assert len(opted_in.measures) == 4


def test_a_folder_named_like_a_table_is_a_validation_error(tmp_path):
    write_scheme(tmp_path, clients=None)
    (tmp_path / "clients.csv").mkdir()
    with pytest.raises(DataValidationError, match="clients.csv: table is not a regular file"):
        load_scheme(tmp_path)


def test_a_one_megabyte_free_text_cell_does_not_stop_the_scheme(tmp_path):
    text = "x" * 1_100_000
    feedback = (
        "feedback_id,client_id,date,feedback_type,consent_to_quote,text\n"
        f'f1,c001,2024-05-01,informal,true,"{text}"\n'
    )
    scheme = load_scheme(write_scheme(tmp_path, feedback=feedback))
    assert scheme.feedback["text"].str.len().tolist() == [1_100_000]


def test_raw_table_reads_the_contract_file_again(tmp_path):
    scheme = load_scheme(write_scheme(tmp_path))
    assert scheme.raw_table("clients")["client_id"].tolist() == ["c001", "c002", "c003"]
    assert scheme.raw_table("contacts") is None
    assert scheme.mapping_report.empty and scheme.mapping_file is None
