"""Output folders: only folders spimpact made are replaced; nothing outside is touched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import yaml
from hostile import KEY, NAME, NHS_NUMBER

from spimpact.params import load_params
from spimpact.paths import INTERNAL_DIR, OUTPUT_MARKER
from spimpact.report.provenance import build_provenance, input_hashes
from spimpact.runner import OutputFolderError, claim_folder, privacy_gate, run_reports

QUIET = {"progress": lambda _: None, "summary": False}


def snapshot(folder) -> dict[str, str]:
    """Every file and folder under ``folder`` with a hash of its content (links not followed)."""
    state = {}
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder)
            if os.path.islink(path):
                state[relative] = "link:" + os.readlink(path)
            elif os.path.isfile(path):
                state[relative] = hashlib.sha256(open(path, "rb").read()).hexdigest()
            else:
                state[relative] = "folder"
    return state


def _params(folder, name, data_dir, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    content = {"scheme_id": name, "title": name.title(), "data_dir": str(data_dir), **extra}
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path


def test_run_refuses_an_output_folder_it_did_not_make(tmp_path, contract_example_data):
    data = tmp_path / "data"
    shutil.copytree(contract_example_data / "valley", data / "valley")
    params = _params(tmp_path / "p", "valley", data / "valley")
    before = snapshot(tmp_path)
    with pytest.raises(OutputFolderError, match="data exists and was not made by `spimpact run`"):
        run_reports([params], output_root=data, **QUIET)
    assert snapshot(tmp_path) == before  # the input folder was neither deleted nor written


def test_run_replaces_only_scheme_folders_it_made(tmp_path):
    outputs = tmp_path / "outputs"
    foreign = outputs / "valley"
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("someone else's file")
    (outputs / OUTPUT_MARKER).write_text("")
    params = _params(tmp_path / "p", "valley", tmp_path / "nowhere")
    [outcome] = run_reports([params], output_root=outputs, **QUIET)
    assert outcome.status == "failed" and "was not made by `spimpact run`" in outcome.reason
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]  # no status.json either


@pytest.mark.parametrize("stem", ["..", "...", ".hidden", "Valley", "a b", "x;rm"])
def test_params_file_names_must_be_scheme_ids(tmp_path, stem):
    outputs = tmp_path / "area" / "outputs"
    path = tmp_path / "p" / f"{stem}.yaml"
    path.parent.mkdir()
    path.write_text("scheme_id: x\ntitle: X\ndata_dir: d\n")
    before = snapshot(tmp_path / "area")
    [outcome] = run_reports([path], output_root=outputs, **QUIET)
    assert outcome.status == "failed" and "must be its scheme id" in outcome.reason
    after = snapshot(tmp_path / "area")
    assert {k for k in after if k not in before} == {"outputs", f"outputs/{OUTPUT_MARKER}"}


def test_scheme_id_must_match_the_file_name(tmp_path):
    path = _params(tmp_path / "p", "valley", tmp_path)
    path.write_text(path.read_text().replace("scheme_id: valley", "scheme_id: riverside"))
    [outcome] = run_reports([path], output_root=tmp_path / "out", **QUIET)
    assert outcome.status == "failed" and "scheme_id must equal the file name" in outcome.reason
    assert not (tmp_path / "out" / "riverside").exists()


def test_claim_folder_marks_new_and_empty_folders_only(tmp_path):
    claim_folder(tmp_path / "new")
    assert (tmp_path / "new" / OUTPUT_MARKER).is_file()
    (tmp_path / "empty").mkdir()
    claim_folder(tmp_path / "empty")
    os.symlink(tmp_path / "new", tmp_path / "link")
    with pytest.raises(OutputFolderError, match="symbolic link"):
        claim_folder(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError):
        claim_folder(tmp_path / "file")


def test_provenance_hashes_contract_tables_only_by_name(tmp_path, contract_example_data):
    data = tmp_path / "valley"
    shutil.copytree(contract_example_data / "valley", data)
    stray = data / f"referral letter {NAME} {NHS_NUMBER}.docx"
    stray.write_bytes(b"letter")
    os.symlink("/etc/hostname", data / "population.parquet")  # a contract name, linked
    (data / "boundaries.geojson").mkdir()  # a contract name, not a file
    hashes = input_hashes(data)
    assert set(hashes) == {f"{t}.csv" for t in ("clients", "measures", "contacts",
                                                 "support_offered", "gp_appointments",
                                                 "feedback", "population")}  # fmt: skip
    params = load_params(_params(tmp_path / "params", "valley", data, pseudonym_key=KEY))
    provenance = json.dumps(build_provenance(tmp_path / "params" / "valley.yaml", params))
    for leaked in (NAME, NHS_NUMBER, "referral", "hostname", str(tmp_path), KEY):
        assert leaked not in provenance, leaked
    assert '"data_dir": "\\u2026/valley"' in provenance


def test_privacy_gate_withholds_a_scheme_whose_outputs_carry_an_identifier(
    tmp_path, contract_example_data
):
    params = load_params(_params(tmp_path / "p", "valley", contract_example_data / "valley"))
    outputs = tmp_path / "outputs"
    folder = outputs / "valley"
    claim_folder(outputs)
    claim_folder(folder)
    client_id = (contract_example_data / "valley" / "clients.csv").read_text().splitlines()[1][:13]
    (folder / "tables").mkdir()
    (folder / "tables" / "t.csv").write_text("group,n\na,10\n")
    (folder / "report.html").write_text(f"<html><body><p>{client_id}</p></body></html>")
    reason = privacy_gate(folder, params, outputs / INTERNAL_DIR / "valley")
    assert reason.startswith("privacy scan:") and "client id" in reason
    assert "in report.html;" in reason and "are not publishable" in reason
    assert client_id not in reason
    assert sorted(p.name for p in folder.iterdir()) == [OUTPUT_MARKER]
    assert (outputs / INTERNAL_DIR / "valley" / "report.html").exists()
    (folder / "report.html").write_text("<html><body><p>fine</p></body></html>")
    assert privacy_gate(folder, params, outputs / INTERNAL_DIR / "valley") is None
