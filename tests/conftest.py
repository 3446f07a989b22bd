"""Shared fixtures: example data and rendered example reports, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def example_data(tmp_path_factory) -> Path:
    """The seeded example schemes, written to a temporary folder."""
    from spimpact.synthetic import write_example_data

    root = tmp_path_factory.mktemp("example")
    write_example_data(root)
    return root


@pytest.fixture(scope="session")
def contract_example_data(tmp_path_factory) -> Path:
    """The small ``valley`` example sent as the contract's own tables.

    The example schemes other than north_shore arrive as messy exports read through a
    mapping file; tests of the contract loader itself (the security corpus) need a
    small scheme in contract form, which this gives under ``<root>/valley``.
    """
    import dataclasses

    from spimpact.synthetic import write_example_data
    from spimpact.synthetic.schemes import EXAMPLE_SCHEMES

    root = tmp_path_factory.mktemp("contract_example")
    valley = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "valley")
    write_example_data(root, schemes=(dataclasses.replace(valley, export="contract"),))
    return root


def write_params_for(example_root: Path, params_dir: Path) -> list[Path]:
    """Copies of the project's example params pointing at ``example_root``."""
    params_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted((PROJECT_DIR / "params").glob("*.yaml")):
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        raw["data_dir"] = str(example_root / raw["scheme_id"])
        if raw.get("boundaries"):
            raw["boundaries"] = str(example_root / raw["scheme_id"] / Path(raw["boundaries"]).name)
        if raw.get("mapping"):
            raw["mapping"] = str(PROJECT_DIR / raw["mapping"])
        target = params_dir / source.name
        target.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        written.append(target)
    return written


def load_example_scheme(folder: Path, **options):
    """Load an example scheme's folder as its report does: through the mapping file and
    with the pseudonym key its params name (``params/<folder name>.yaml``)."""
    from spimpact.io import load_scheme

    raw = yaml.safe_load((PROJECT_DIR / "params" / f"{Path(folder).name}.yaml").read_text())
    if raw.get("mapping"):
        options.setdefault("mapping", PROJECT_DIR / raw["mapping"])
    if raw.get("pseudonym_key"):
        options.setdefault("pseudonym_key", raw["pseudonym_key"])
    return load_scheme(folder, **options)


@pytest.fixture(scope="session")
def load_example():
    """``load_example(folder, **options)``: an example scheme loaded as its report loads it."""
    return load_example_scheme


@pytest.fixture(scope="session")
def example_params(example_data, tmp_path_factory) -> list[Path]:
    return write_params_for(example_data, tmp_path_factory.mktemp("params"))


@pytest.fixture(scope="session")
def rendered_reports(example_params, tmp_path_factory):
    """Every example report rendered once, two at a time, as `spimpact run --jobs 2` does."""
    from spimpact.runner import run_reports

    outputs = tmp_path_factory.mktemp("outputs")
    outcomes = run_reports(example_params, jobs=2, output_root=outputs, progress=lambda _: None)
    return outputs, outcomes
