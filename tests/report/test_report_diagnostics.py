"""Diagnostics notebooks (issue 18): nbval runs, `run --diagnostics`, an isolated analyst tier."""

import subprocess
import sys

import nbformat
import pytest

from spimpact.paths import NOTEBOOKS_DIR
from spimpact.report.diagnostics import (
    ANALYST_DIR,
    NOTEBOOKS,
    analyst_dir,
    publishable_files,
    scan_analyst_isolation,
)


def _params(example_params, name):
    return next(p for p in example_params if p.stem == name)


def test_scan_finds_links_and_copies_of_the_analyst_tier(tmp_path):
    scheme, analyst = tmp_path / "valley", analyst_dir(tmp_path, "valley")
    (scheme / "tables").mkdir(parents=True)
    analyst.mkdir(parents=True)
    (analyst / "wellbeing_diagnostics.html").write_text("<p>exact counts</p>", encoding="utf-8")
    (scheme / "report.html").write_text("<p>published</p>", encoding="utf-8")
    (tmp_path / "_internal").mkdir()
    (tmp_path / "_internal" / "note.txt").write_text(f"see {ANALYST_DIR}", encoding="utf-8")
    assert scan_analyst_isolation(tmp_path).empty
    assert [p.name for p in publishable_files(tmp_path)] == ["report.html"]

    (scheme / "report.html").write_text(
        f'<a href="../{ANALYST_DIR}/valley/wellbeing_diagnostics.html">more</a>', encoding="utf-8"
    )
    (scheme / "tables" / "copy.html").write_text("<p>exact counts</p>", encoding="utf-8")
    (tmp_path / "index.html").write_text("see attrition_diagnostics", encoding="utf-8")
    findings = scan_analyst_isolation(tmp_path)
    assert set(zip(findings["file"], findings["kind"], strict=True)) == {
        ("valley/report.html", "link"),
        ("valley/tables/copy.html", "copy"),
        ("index.html", "link"),
    }


def test_diagnostics_notebooks_are_thin():
    """Cells only open the scheme and show named items: no statistics in the notebooks."""
    for name in NOTEBOOKS:
        notebook = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
        code = [c.source for c in notebook.cells if c.cell_type == "code"]
        assert any("parameters" in c.metadata.get("tags", []) for c in notebook.cells)
        assert all(
            line.startswith(
                (
                    "diagnostics.show(",
                    "import ",
                    "from ",
                    "scheme",
                    "diagnostics =",
                    "#",
                    "params_path",
                )
            )
            for source in code
            for line in source.splitlines()
            if line.strip()
        ), name


@pytest.mark.e2e
def test_notebooks_run_under_nbval(example_params, tmp_path):
    """nbval executes the four diagnostics notebooks and the tutorial on small examples."""
    schemes = {
        "wellbeing_diagnostics": "valley",
        "attendance_diagnostics": "riverside",  # matched comparison group
        "attrition_diagnostics": "hillcrest",
        "data_quality_diagnostics": "hillcrest",  # has exclusions
        "tutorial": "valley",
    }
    copies = []
    for name, scheme in schemes.items():
        notebook = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = f'params_path = "{_params(example_params, scheme)}"'
        copies.append(tmp_path / f"{name}.ipynb")
        nbformat.write(notebook, copies[-1])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q"]
        + [str(c) for c in copies],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.e2e
def test_run_with_diagnostics_writes_an_isolated_analyst_tier(rendered_reports, example_params):
    from spimpact.runner import run_reports

    outputs, _ = rendered_reports
    hillcrest = _params(example_params, "hillcrest")
    outcomes = run_reports([hillcrest], output_root=outputs, diagnostics=True, progress=print)
    assert [o.status for o in outcomes] == ["unchanged"]
    folder = analyst_dir(outputs, "hillcrest")
    for name in NOTEBOOKS:
        notebook = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        errors = [
            o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"
        ]
        assert not errors, name
        page = (folder / f"{name}.html").read_text(encoding="utf-8")
        assert "Analyst tier" in page and "<script" not in page and "http://" not in page
        if name == "wellbeing_diagnostics":  # figures are embedded, nothing is fetched
            assert "data:image/png;base64" in page
    assert not (folder / "diagnostics_errors.txt").exists()
    assert scan_analyst_isolation(outputs).empty
    assert ANALYST_DIR not in (outputs / "index.html").read_text(encoding="utf-8")


def test_a_failing_analysis_is_shown_as_its_reason():
    from spimpact.publish.section import InsufficientData
    from spimpact.report.diagnostics import Diagnostics, _analysis

    def broken():
        raise KeyError("C(timepoint)[2]")

    result = _analysis(broken)
    with pytest.raises(InsufficientData, match="KeyError"):
        result()
    shown = Diagnostics({"summary": lambda: result().summary()})
    shown.show("summary")  # displays the reason instead of raising
