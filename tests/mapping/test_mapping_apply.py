"""Loading a scheme's own exports through its mapping file: every label and row counted."""

from __future__ import annotations

import datetime
import os
import textwrap

import pytest

from spimpact.io import load_scheme
from spimpact.mapping import MappingError, load_mapping
from spimpact.readers import DataValidationError

REFERRALS = """\
Client Ref;Date of referral;Referral route;Gender;Ethnicity;DOB;Postcode;Practice;Notes
C-001;05/04/2024;GP Surgery;F;White - British;12/03/1970;AB1 2CD;A81001 - Riverside;"long
note"
C-002;06/04/2024;Self referral;Male;Asian - Indian;01/01/1950;ab12cd;B82002 - Hill;
C-003;07/04/2024;Walk in;Female;White - British;01/01/1990;ZZ9 9ZZ;;
C-001;01/09/2024;gp surgery;F;White - British;12/03/1970;AB1 2CD;A81001 - Riverside;
C-004;31/02/2024;GP Surgery;F;Not given;12/03/1970;;A81001 - Riverside;
"""
OUTCOMES = """\
Client Ref,Assessment date,Q1,Q2,Q3,Q4,Q5,Q6,Q7,FU date,F1,F2,F3,F4,F5,F6,F7
C-001,10/04/2024,3,3,2,3,3,4,3,10/07/2024,4,4,4,4,4,4,4
C-002,11/04/2024,Often,3,3,3,3,3,3,,,,,,,,
C-001,05/09/2024,2,2,2,2,2,2,2,,,,,,,,
C-003,12/04/2024,3,3,3,3,3,3,3,,,,,,,,
"""
MAPPING = """\
tables:
  clients:
    source: referrals.csv
    columns:
      client_id: Client Ref
      episode: {sequence: true}
      referral_date: {column: Date of referral, date_format: "%d/%m/%Y"}
      referral_source:
        column: Referral route
        values: {GP Surgery: gp, Self referral: self}
      sex: Gender
      ethnic_category:
        column: Ethnicity
        values: {White - British: A, Asian - Indian: H, Not given: Z}
      date_of_birth: {column: DOB, date_format: "%d/%m/%Y"}
      lsoa_code: {postcode: Postcode, lookup: {file: lookup.csv, postcode: pcds, lsoa: lsoa11}}
      practice_code: {split: Practice, sep: " - ", part: 1}
  measures:
    source: outcomes.csv
    columns:
      client_id: Client Ref
    questionnaire:
      layout: wide
      responses: {Often: 4}
      forms:
        - measure: swemwbs
          timepoint: 0
          date: {column: Assessment date, date_format: "%d/%m/%Y"}
          items: [Q1, Q2, Q3, Q4, Q5, Q6, Q7]
        - measure: swemwbs
          timepoint: 1
          date: {column: FU date, date_format: "%d/%m/%Y"}
          items: [F1, F2, F3, F4, F5, F6, F7]
"""


def write_scheme(folder, mapping=MAPPING, **files):
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "referrals.csv": REFERRALS,
        "outcomes.csv": OUTCOMES,
        "lookup.csv": "pcds,lsoa11\nAB1 2CD,E01000001\n",
        **files,
    }
    for name, text in contents.items():
        (folder / name).write_text(text, encoding="utf-8")
    path = folder / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return folder, path


def assert_reconciled(scheme):
    rec = scheme.reconciliation
    assert (rec["n_read"] == rec["n_used"] + rec["n_excluded"]).all()
    for row in rec.itertuples():
        excluded = scheme.exclusions.loc[scheme.exclusions["table"] == row.table, "row"]
        assert excluded.nunique() == row.n_excluded


def report_rows(scheme, column, action=None):
    report = scheme.mapping_report
    rows = report[report["column"] == column]
    if action:
        rows = rows[rows["action"] == action]
    return {(r.source_value, r.target_value): r.n_rows for r in rows.itertuples()}


@pytest.fixture(scope="module")
def scheme(tmp_path_factory):
    folder, mapping = write_scheme(tmp_path_factory.mktemp("messy"))
    return load_scheme(folder, mapping=mapping)


def test_mapped_clients_carry_contract_codes(scheme):
    clients = scheme.clients.set_index("client_id")
    assert list(clients.index) == ["C-001", "C-002"]
    assert clients.loc["C-001", ["referral_source", "sex", "ethnic_category"]].tolist() == [
        "gp", "female", "A"
    ]  # fmt: skip
    assert clients.loc["C-002", "referral_date"] == datetime.datetime(2024, 4, 6)
    assert clients.loc["C-001", "age"] == 54  # from the date of birth, then dropped
    assert "date_of_birth" not in clients
    assert clients["lsoa_code"].tolist() == ["E01000001", "E01000001"]  # spaces, case ignored
    assert clients["practice_code"].tolist() == ["A81001", "B82002"]


def test_every_row_is_reconciled_and_exclusions_name_source_and_line(scheme):
    assert_reconciled(scheme)
    rec = scheme.reconciliation.set_index("table")
    assert rec.loc["clients"].tolist() == [5, 2, 3]
    excluded = scheme.exclusions
    walk_in = excluded[excluded["value"] == "Walk in"].iloc[0]
    assert (walk_in["source"], walk_in["line"], walk_in["column"]) == (
        "referrals.csv", 5, "referral_source"
    )  # fmt: skip
    assert "label not in the mapping's values for 'referral_source'" in walk_in["reason"]
    assert "mapping.yaml key 'tables.clients.columns.referral_source'" in walk_in["reason"]
    bad_date = excluded[excluded["column"] == "referral_date"].iloc[0]
    assert bad_date["line"] == 7
    assert "expected a date written as %d/%m/%Y" in bad_date["reason"]
    # a label excluded by the mapping is not reported a second time as missing
    assert not ((excluded["line"] == 5) & (excluded["reason"] == "required value missing")).any()


def test_labels_are_counted_mapped_or_not(scheme):
    assert report_rows(scheme, "referral_source") == {
        ("GP Surgery", "gp"): 2,
        ("gp surgery", "gp"): 1,
        ("Self referral", "self"): 1,
        ("Walk in", None): 1,
    }
    assert report_rows(scheme, "referral_source", "excluded") == {("Walk in", None): 1}
    assert report_rows(scheme, "sex", "unchanged") == {
        ("F", "female"): 3, ("Female", "female"): 1, ("Male", "male"): 1
    }  # fmt: skip
    assert report_rows(scheme, "lsoa_code", "blank") == {("(postcode not in the lookup)", None): 1}
    report = scheme.mapping_report
    declared = report[report["column"] == "referral_source"].set_index("source_value")["declared"]
    assert declared.to_dict() == {
        "GP Surgery": True, "gp surgery": True, "Self referral": True, "Walk in": False
    }  # fmt: skip


def test_wide_forms_become_one_row_per_time_point(scheme):
    measures = scheme.measures
    assert sorted(zip(measures["client_id"], measures["timepoint"], strict=True)) == [
        ("C-001", 0), ("C-001", 1), ("C-002", 0)
    ]  # fmt: skip
    c002 = measures[measures["client_id"] == "C-002"].iloc[0]
    assert c002["item_1"] == 4  # the answer label "Often" mapped by responses
    assert report_rows(scheme, "forms[1]", "no_answers") == {(None, None): 3}
    assert report_rows(scheme, "", "read") == {(None, None): 4}
    assert report_rows(scheme, "", "reshaped") == {(None, None): 5}


def test_episodes_are_numbered_and_the_first_is_analysed(scheme):
    episodes = scheme.episodes
    assert episodes[["client_id", "episode", "analysed"]].values.tolist() == [
        ["C-001", "1", True], ["C-001", "2", False], ["C-002", "1", True]
    ]  # fmt: skip
    assert scheme.episode_rule == "first"
    second = scheme.exclusions[scheme.exclusions["reason"].str.startswith("another episode")]
    # the second referral of C-001 and its questionnaire dated after it
    assert sorted(zip(second["table"], second["line"], strict=True)) == [
        ("clients", 6), ("measures", 4)
    ]  # fmt: skip


def test_unused_source_columns_are_listed_by_name(scheme):
    assert scheme.ignored_columns.values.tolist() == [["clients", "Notes"]]


def test_the_last_episode_can_be_analysed_instead(tmp_path):
    folder, mapping = write_scheme(tmp_path)
    scheme = load_scheme(folder, mapping=mapping, episodes="last")
    clients = scheme.clients.set_index("client_id")
    assert clients.loc["C-001", "episode"] == "2"
    assert scheme.measures[scheme.measures["client_id"] == "C-001"]["timepoint"].tolist() == [0]


def test_unmapped_blank_keeps_the_row(tmp_path):
    mapping = MAPPING.replace(
        "values: {GP Surgery: gp, Self referral: self}",
        "values: {GP Surgery: gp, Self referral: self, Walk in: other}",
    ).replace("Not given: Z}", "Not given: Z}\n        unmapped: blank")
    folder, path = write_scheme(tmp_path, mapping=mapping)
    scheme = load_scheme(folder, mapping=path)
    assert "C-003" in set(scheme.clients["client_id"])
    assert_reconciled(scheme)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("sex: Gender", "sex: Gendr"),
            r"mapping.yaml: key 'tables.clients.columns.sex': source column 'Gendr' not found "
            r"in referrals.csv; closest: 'Gender'",
        ),
        (
            ("source: outcomes.csv", "source: outcome.csv"),
            r"mapping.yaml: key 'tables.measures.source': no file 'outcome.csv' in ",
        ),
        (
            ("items: [F1, F2", "items: [F0, F2"),
            r"key 'tables.measures.questionnaire.forms\[1\].items': source column 'F0' not found",
        ),
        (
            ("file: lookup.csv", "file: lookups.csv"),
            r"key 'tables.clients.columns.lsoa_code.lookup': no lookup file 'lookups.csv'",
        ),
    ],
)
def test_a_mapping_that_does_not_fit_the_sources_names_file_key_and_column(
    tmp_path, change, message
):
    folder, path = write_scheme(tmp_path, mapping=MAPPING.replace(*change))
    with pytest.raises(MappingError, match=message):
        load_scheme(folder, mapping=path)


def test_errors_never_show_row_values(tmp_path):
    folder, path = write_scheme(tmp_path, mapping=MAPPING.replace("sex: Gender", "sex: Gendr"))
    with pytest.raises(MappingError) as caught:
        load_scheme(folder, mapping=path)
    assert "C-001" not in str(caught.value) and "White" not in str(caught.value)


def test_raw_tables_are_read_again_through_the_mapping(scheme):
    raw = scheme.raw_table("clients")
    assert raw["date_of_birth"].tolist()[:2] == ["1970-03-12", "1950-01-01"]
    assert scheme.raw_table("contacts") is None


def test_free_text_in_a_coded_column_is_never_listed(tmp_path):
    long_text = "Referred after a fall at home, lives alone, daughter in Leeds"
    referrals = REFERRALS.replace("Walk in", long_text)
    folder, path = write_scheme(tmp_path, **{"referrals.csv": referrals})
    scheme = load_scheme(folder, mapping=path)
    report = scheme.mapping_report
    assert long_text not in set(report["source_value"].dropna())
    assert report_rows(scheme, "referral_source", "excluded") == {("(other values)", None): 1}


def test_mapped_sources_are_read_only_as_bounded_regular_files(tmp_path):
    """Issue 19 holds for mapped sources: no links, devices or folders; no path shown."""
    folder, path = write_scheme(tmp_path / "scheme")
    (folder / "referrals.csv").unlink()
    os.symlink("/etc/hostname", folder / "referrals.csv")
    with pytest.raises(DataValidationError, match="referrals.csv: table is a symbolic link"):
        load_scheme(folder, mapping=path)
    (folder / "referrals.csv").unlink()
    (folder / "referrals.csv").write_text(REFERRALS, encoding="utf-8")
    (folder / "lookup.csv").unlink()
    os.symlink("/dev/zero", folder / "lookup.csv")
    with pytest.raises(MappingError, match="lookup.csv: postcode lookup is a symbolic link") as e:
        load_scheme(folder, mapping=path)
    assert str(tmp_path) not in str(e.value)
    link = tmp_path / "link.yaml"
    os.symlink("/dev/zero", link)
    with pytest.raises(MappingError, match="link.yaml: mapping file is not a regular file"):
        load_mapping(link)
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("a: &x [1]\n" + "".join(f"b{k}: *x\n" for k in range(20)))
    with pytest.raises(MappingError, match="aliases.yaml: uses 20 YAML aliases"):
        load_mapping(aliases)
