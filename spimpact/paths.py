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

# Written by `spimpact example-data` into each synthetic scheme folder: only such data
# may carry its pseudonymisation key in params (docs/outputs.md, "Security").
SYNTHETIC_MARKER = "spimpact-synthetic.json"
# Written by `spimpact run` into every folder it makes: it replaces only folders that
# carry it, so it never deletes a folder it did not make.
OUTPUT_MARKER = ".spimpact-output"
# Beside the scheme folders, never published: failed notebooks and full error texts.
INTERNAL_DIR = "_internal"
# Beside the scheme folders, publishable: each scheme's refresh history (Parquet).
HISTORY_DIR = "history"
# Beside the scheme folders, never published: what a person must read before anything
# is published from it (the quote review sheet).
ANALYST_DIR = "_analyst"
