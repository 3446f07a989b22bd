"""Provenance of a rendered report: what went in, so any number can be reproduced."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path

from spimpact.contract import TABLES
from spimpact.files import FileRefused, check_regular_file
from spimpact.mapping import load_mapping, mapping_sha256, source_files
from spimpact.params import SchemeParams
from spimpact.paths import NOTEBOOK, PACKAGE_DIR, PROJECT_DIR

KEY_LIBRARIES = (
    "numpy", "pandas", "scipy", "statsmodels", "lifelines", "matplotlib",
    "duckdb", "papermill", "nbconvert", "pydantic",
)  # fmt: skip

PROVENANCE_FILE = "provenance.json"

# Output tiers (docs/outputs.md), after OpenSAFELY's release levels.
OUTPUT_TIERS = {
    "report.html": "publishable",
    "report.ipynb": "publishable",
    "tables/*.csv": "publishable",
    "provenance.json": "publishable",
    "status.json": "publishable",
}


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_hashes(
    data_dir: Path, boundaries: Path | None = None, mapped: tuple[str, ...] = ()
) -> dict[str, str]:
    """SHA-256 of the scheme's contract tables (and boundaries), by contract file name.

    Only the files the data contract names are hashed (``<table>.csv`` or
    ``<table>.parquet``, ``boundaries.geojson``), looked up by name, and the files a
    mapping file names (``mapped``: its sources and lookups, as written in it); other
    files in the folder are neither read nor named, so a stray letter or export never
    appears in provenance. Symbolic links, folders and devices are skipped, never
    followed. A boundaries file given in params is listed as ``boundaries.geojson``.
    """
    data_dir = Path(data_dir)
    candidates = [
        (f"{table}{suffix}", data_dir / f"{table}{suffix}")
        for table in TABLES
        for suffix in (".csv", ".parquet")
    ]
    candidates += [(name, data_dir / name) for name in mapped]
    candidates.append(("boundaries.geojson", Path(boundaries or data_dir / "boundaries.geojson")))
    hashes = {}
    for name, path in candidates:
        try:
            given = boundaries is not None and name == "boundaries.geojson"
            check_regular_file(path, follow_symlinks=given)
        except FileRefused:
            continue
        hashes[name] = sha256_file(path)
    return dict(sorted(hashes.items()))


def code_hash() -> str:
    """One hash of the package source and the report notebook: changes when the code does."""
    digest = hashlib.sha256()
    files = sorted(PACKAGE_DIR.rglob("*.py")) + sorted(PACKAGE_DIR.rglob("*.csv")) + [NOTEBOOK]
    for path in files:
        if path.exists() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(PROJECT_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Installed versions of spimpact and the libraries its numbers depend on."""
    versions = {"python": _python_version(), "spimpact": importlib.metadata.version("spimpact")}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _python_version() -> str:
    import platform

    return platform.python_version()


def git_commit() -> str | None:
    """The project's git commit, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def redacted_params(params: SchemeParams) -> dict:
    """The validated params, every default filled in, with any secret removed.

    Paths inside the project are given relative to it, so provenance does not depend
    on where the project was checked out; a path outside it is shown by its last part
    only (``…/valley``), which reveals nothing of the machine's folders.
    """
    content = params.model_dump(mode="json")
    if content.get("pseudonym_key") is not None:
        content["pseudonym_key"] = "(redacted)"
    for key in ("data_dir", "boundaries", "mapping"):
        if content.get(key) is not None:
            content[key] = _project_relative(Path(content[key]))
    return content


def _project_relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(PROJECT_DIR).as_posix()
    except ValueError:
        return f"…/{path.name}"


def build_provenance(params_path: Path, params: SchemeParams) -> dict:
    """Everything needed to reproduce a report: input, params and code hashes, versions.

    ``mapping_sha256`` hashes the scheme's mapping file with the user code lists it
    names (None without a mapping); a changed mapping re-runs the report.
    """
    return {
        "params_file": Path(params_path).name,
        "params_sha256": sha256_file(Path(params_path)),
        "params": redacted_params(params),
        "inputs_sha256": input_hashes(
            params.data_dir,
            params.boundaries,
            tuple(source_files(load_mapping(params.mapping))) if params.mapping else (),
        ),
        "mapping_sha256": mapping_sha256(params.mapping) if params.mapping else None,
        "code_sha256": code_hash(),
        "git_commit": git_commit(),
        "versions": library_versions(),
        "output_tiers": OUTPUT_TIERS,
    }


def rebuild_key(provenance: dict) -> dict:
    """The parts of provenance that decide whether a report must be rebuilt."""
    keys = ("params_sha256", "inputs_sha256", "mapping_sha256", "code_sha256")
    return {k: provenance.get(k) for k in keys}


def write_json(path: Path, content: dict) -> None:
    """Write JSON with sorted keys so identical content gives identical bytes."""
    path.write_text(
        json.dumps(content, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
