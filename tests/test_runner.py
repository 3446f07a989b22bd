"""End to end: every example report renders, reproducibly, with provenance and a summary."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spimpact.paths import OUTPUT_MARKER
from spimpact.runner import exit_code, run_reports

pytestmark = pytest.mark.e2e

QUIET = {"progress": lambda _: None}


def test_every_example_report_renders(rendered_reports, example_params):
    outputs, outcomes = rendered_reports
    assert [o.status for o in outcomes] == ["ok"] * len(example_params), [
        (o.scheme_id, o.reason) for o in outcomes
    ]
    for outcome in outcomes:
        folder = outputs / outcome.scheme_id
        for name in (
            "report.html",
            "report.ipynb",
            "provenance.json",
            "status.json",
            "tables/headline.csv",
        ):
            assert (folder / name).exists(), name
        html = (folder / "report.html").read_text(encoding="utf-8")
        assert "could not be produced" not in html, outcome.scheme_id
        assert "Traceback" not in html and "Error" not in html.split("<body>")[1][:200]


def test_provenance_names_every_input(rendered_reports, example_data):
    outputs, outcomes = rendered_reports
    for outcome in outcomes:
        provenance = json.loads((outputs / outcome.scheme_id / "provenance.json").read_text())
        folder = example_data / outcome.scheme_id
        # the contract's tables (and boundaries) and the files a mapping file names (the
        # example exports: csv, xlsx) only: truth.json and the marker are not inputs
        files = {p.name for p in folder.iterdir() if p.suffix in (".csv", ".geojson", ".xlsx")}
        assert set(provenance["inputs_sha256"]) == files
        assert len(provenance["params_sha256"]) == 64 and len(provenance["code_sha256"]) == 64
        assert provenance["versions"]["statsmodels"] != "not installed"
        assert "example-data-only-not-secret" not in json.dumps(provenance)


def test_summary_links_every_scheme(rendered_reports):
    outputs, outcomes = rendered_reports
    index = (outputs / "index.html").read_text(encoding="utf-8")
    for outcome in outcomes:
        assert f'href="{outcome.scheme_id}/report.html"' in index


def test_modified_scale_is_flagged_in_its_report(rendered_reports):
    outputs, _ = rendered_reports
    html = (outputs / "valley" / "report.html").read_text(encoding="utf-8")
    assert "0–10 scale where 1–5 is expected" in html


def test_rerun_without_changes_executes_nothing(rendered_reports, example_params):
    outputs, _ = rendered_reports
    before = {p: p.stat().st_mtime_ns for p in outputs.rglob("report.html")}
    lines = []
    outcomes = run_reports(example_params, jobs=2, output_root=outputs, progress=lines.append)
    assert {o.status for o in outcomes} == {"unchanged"}
    assert any("unchanged" in line for line in lines)
    assert before == {p: p.stat().st_mtime_ns for p in outputs.rglob("report.html")}


def test_same_inputs_give_byte_identical_outputs(rendered_reports, example_params, tmp_path):
    first, _ = rendered_reports
    second = tmp_path / "again"
    valley = [p for p in example_params if p.stem == "valley"]
    run_reports(valley, output_root=second, summary=False, force=True, **QUIET)
    files = sorted(
        p.relative_to(first / "valley") for p in (first / "valley").rglob("*") if p.is_file()
    )
    assert files == sorted(
        p.relative_to(second / "valley") for p in (second / "valley").rglob("*") if p.is_file()
    )
    for name in files:
        assert (first / "valley" / name).read_bytes() == (second / "valley" / name).read_bytes(), (
            name
        )


def test_a_failing_scheme_does_not_stop_the_others(example_params, tmp_path):
    valley = next(p for p in example_params if p.stem == "valley")
    broken = tmp_path / "broken.yaml"
    raw = yaml.safe_load(valley.read_text())
    raw.update(scheme_id="broken", title="Broken", data_dir=str(tmp_path / "nowhere"))
    broken.write_text(yaml.safe_dump(raw))
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text(valley.read_text().replace("seed:", "sede:"))
    corrupt_data = tmp_path / "corrupt_data"
    shutil.copytree(Path(yaml.safe_load(valley.read_text())["data_dir"]), corrupt_data)
    (corrupt_data / "caseload.xlsx").write_bytes(b"")  # valley's workbook, emptied
    corrupt = tmp_path / "corrupt.yaml"
    raw.update(scheme_id="corrupt", title="Corrupt", data_dir=str(corrupt_data))
    corrupt.write_text(yaml.safe_dump(raw))
    outcomes = run_reports(
        [broken, valley, misspelt, corrupt], jobs=2, output_root=tmp_path / "out", **QUIET
    )
    status = {o.scheme_id: (o.status, o.reason) for o in outcomes}
    assert status["valley"] == ("ok", None)
    assert status["broken"][0] == "failed" and "no such scheme folder" in status["broken"][1]
    assert status["misspelt"][0] == "failed" and "sede" in status["misspelt"][1]
    assert status["corrupt"][0] == "failed"
    assert "caseload.xlsx: cannot read the workbook" in status["corrupt"][1]
    # the failed notebook (it may hold a traceback quoting data) is kept outside the
    # publishable scheme folder
    assert sorted(p.name for p in (tmp_path / "out" / "corrupt").iterdir()) == [
        OUTPUT_MARKER,
        "status.json",
    ]
    assert (tmp_path / "out" / "_internal" / "corrupt" / "report.ipynb").exists()
    assert exit_code(outcomes) == 1
    saved = json.loads((tmp_path / "out" / "broken" / "status.json").read_text())
    assert saved["status"] == "failed" and "no such scheme folder" in saved["reason"]
    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "broken" in index


def test_cli_validate_reports_rows_without_traceback(contract_example_data, tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(contract_example_data / "valley", folder)
    text = (folder / "contacts.csv").read_text().splitlines()
    text[3] = text[3].replace(text[3].split(",")[1], "2024-02-31")
    (folder / "contacts.csv").write_text("\n".join(text) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "spimpact.cli", "validate", str(folder)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "contacts.csv row 4, column 'contact_date': value '2024-02-31'" in result.stdout
    assert "0–10 scale" in result.stdout
    (folder / "measures.csv").write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "spimpact.cli", "validate", str(folder)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "measures.csv: the file is empty" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", [[], ["example-data"], ["validate"], ["run"], ["summary"]])
def test_cli_help(command):
    result = subprocess.run(
        [sys.executable, "-m", "spimpact.cli", *command, "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "usage: spimpact" in result.stdout


def test_notebook_runs_under_nbval(example_params, tmp_path):
    """nbval executes the committed notebook (parameters pointed at the example data)."""
    import nbformat

    from spimpact.paths import NOTEBOOK

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    valley = next(p for p in example_params if p.stem == "valley")
    parameters.source = f'params_path = "{valley}"\noutput_dir = "{tmp_path / "out"}"'
    copy = tmp_path / "scheme_report.ipynb"
    nbformat.write(notebook, copy)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", str(copy)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "out" / "tables" / "headline.csv").exists()
