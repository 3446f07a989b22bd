"""The command line: `spimpact map`, `spimpact validate --mapping`, params `mapping:`."""

from __future__ import annotations

import hashlib
import textwrap

import pytest

from spimpact.cli import main
from spimpact.io import load_scheme_from_params
from spimpact.mapping import mapping_sha256
from spimpact.params import load_params
from spimpact.report.provenance import build_provenance, rebuild_key

CLIENTS = """\
Client Ref,Referral date,Route,Gender,Ethnicity,Age
a1,05/04/2024,GP Surgery,F,White - British,40
a2,06/04/2024,Walk in,M,Asian - Indian,50
a3,07/04/2024,Self referral,M,White - British,60
"""
MEASURES = """\
Client Ref,Date completed,Q1,Q2,Q3,Q4,Q5,Q6,Q7
a1,06/04/2024,3,3,3,3,3,3,3
a3,08/04/2024,2,2,2,2,2,2,2
"""
MAPPING = """\
tables:
  clients:
    source: referrals.csv
    columns:
      client_id: Client Ref
      referral_date: {column: Referral date, date_format: "%d/%m/%Y"}
      referral_source: {column: Route, values: {GP Surgery: gp, Self referral: self}}
      sex: Gender
      ethnic_category: {column: Ethnicity, values: {White - British: A, Asian - Indian: H}}
      age: Age
  measures:
    source: outcomes.csv
    columns:
      client_id: Client Ref
      measure: {constant: swemwbs}
      timepoint: {sequence: true}
      date: {column: Date completed, date_format: "%d/%m/%Y"}
    questionnaire: {layout: wide, forms: [{items: [Q1, Q2, Q3, Q4, Q5, Q6, Q7]}]}
"""


@pytest.fixture
def exports(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "referrals.csv").write_text(CLIENTS, encoding="utf-8")
    (folder / "outcomes.csv").write_text(MEASURES, encoding="utf-8")
    mapping = tmp_path / "params" / "mappings" / "demo.yaml"
    mapping.parent.mkdir(parents=True)
    mapping.write_text(textwrap.dedent(MAPPING), encoding="utf-8")
    return folder, mapping


def test_map_writes_a_proposal_and_refuses_to_overwrite(exports, capsys):
    folder, _ = exports
    out = folder.parent / "proposed.yaml"
    assert main(["map", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 source(s) given a table" in printed
    assert "referral_source:" in out.read_text(encoding="utf-8")
    assert main(["map", str(folder), "--out", str(out)]) == 2
    assert "exists (use --force" in capsys.readouterr().err
    assert main(["map", str(folder), "--out", str(out), "--force"]) == 0


def test_validate_with_a_mapping_lists_labels_not_mapped(exports, capsys):
    folder, mapping = exports
    assert main(["validate", str(folder), "--mapping", str(mapping)]) == 0
    out = capsys.readouterr().out
    assert (
        "clients.referral_source from referrals.csv 'Route': 'Walk in' (1 rows) not mapped: "
        "excluded" in out
    )
    assert "referrals.csv row 3, column 'referral_source': value 'Walk in'" in out


def test_validate_names_a_bad_mapping_and_a_folder_in_place_of_a_file(exports, capsys):
    folder, mapping = exports
    mapping.write_text(MAPPING.replace("sex: Gender", "sex: Sex"), encoding="utf-8")
    assert main(["validate", str(folder), "--mapping", str(mapping)]) == 1
    err = capsys.readouterr().err
    assert "demo.yaml: key 'tables.clients.columns.sex': source column 'Sex' not found" in err
    plain = folder.parent / "plain"
    plain.mkdir()
    (plain / "clients.csv").mkdir()
    (plain / "measures.csv").write_text("client_id\n", encoding="utf-8")
    assert main(["validate", str(plain)]) == 1
    err = capsys.readouterr().err
    assert "clients.csv: table is not a regular file" in err
    assert "IsADirectoryError" not in err


def test_params_name_the_mapping_and_provenance_hashes_it(exports):
    folder, mapping = exports
    params_path = mapping.parent.parent / "demo.yaml"
    params_path.write_text(
        f"scheme_id: demo\ntitle: Demo\ndata_dir: {folder}\nmapping: params/mappings/demo.yaml\n",
        encoding="utf-8",
    )
    params = load_params(params_path)
    assert params.mapping == mapping  # relative to the project root, as data_dir
    assert params.episodes == "first"
    scheme = load_scheme_from_params(params)
    assert scheme.mapping_file == mapping
    assert len(scheme.clients) == 2
    provenance = build_provenance(params_path, params)
    assert provenance["mapping_sha256"] == hashlib.sha256(mapping.read_bytes()).hexdigest()
    assert provenance["params"]["mapping"].endswith("demo.yaml")  # no machine path
    before = rebuild_key(provenance)
    mapping.write_text(MAPPING.replace("Walk in", "Walk-in") + "# edited\n", encoding="utf-8")
    assert rebuild_key(build_provenance(params_path, params)) != before


def test_mapping_hash_covers_user_code_lists(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "coded_events:\n  source: e.csv\n  columns: {patient_id: P, date: D, code: C}\n"
        "  measures: [mine.csv]\n"
        "tables:\n  clients:\n    source: p.csv\n"
        "    columns: {client_id: P, sex: S, ethnic_category: E, age: A}\n",
        encoding="utf-8",
    )
    (tmp_path / "mine.csv").write_text("code,term,measure,item\nx,y,ucla3,1\n", encoding="utf-8")
    before = mapping_sha256(mapping)
    (tmp_path / "mine.csv").write_text("code,term,measure,item\nx,y,ucla3,2\n", encoding="utf-8")
    assert mapping_sha256(mapping) != before
