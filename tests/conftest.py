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


def write_params_for(example_root: Path, params_dir: Path) -> list[Path]:
    """Copies of the project's example params pointing at ``example_root``."""
    params_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted((PROJECT_DIR / "params").glob("*.yaml")):
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        raw["data_dir"] = str(example_root / raw["scheme_id"])
        if raw.get("boundaries"):
            raw["boundaries"] = str(example_root / raw["scheme_id"] / Path(raw["boundaries"]).name)
        target = params_dir / source.name
        target.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        written.append(target)
    return written


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
