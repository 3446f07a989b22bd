"""Where the project's folders are: package, project root, notebooks, params, outputs."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
NOTEBOOK = NOTEBOOKS_DIR / "scheme_report.ipynb"
PARAMS_DIR = PROJECT_DIR / "params"
OUTPUTS_DIR = PROJECT_DIR / "outputs"
EXAMPLE_DATA_DIR = PROJECT_DIR / "data" / "example"
