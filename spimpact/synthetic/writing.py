"""Simulate a whole scheme from its spec and write the example folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spimpact.paths import SYNTHETIC_MARKER
from spimpact.synthetic.appointments import simulate_appointments, simulate_pool
from spimpact.synthetic.clients import (
    public_clients,
    simulate_clients,
    simulate_contacts,
    simulate_feedback,
    simulate_support,
)
from spimpact.synthetic.gp_extract import write_gp_extract
from spimpact.synthetic.measures import simulate_measures
from spimpact.synthetic.people import (
    key_by_nhs_number,
    simulate_areas,
    simulate_boundaries,
    simulate_population,
)
from spimpact.synthetic.platform import write_platform_export
from spimpact.synthetic.recording import describe, record
from spimpact.synthetic.schemes import EXAMPLE_SCHEMES, SchemeSpec
from spimpact.synthetic.spreadsheet import write_spreadsheet_export

# Clients of a spreadsheet export whose referral source is a label no mapping places.
N_UNPLACED = 9


def write_example_data(
    root: str | Path, *, seed: int = 20261130, schemes=EXAMPLE_SCHEMES
) -> list[Path]:
    """Write every example scheme under ``root/<scheme_id>/`` and return the folders.

    Examples
    --------
    >>> import tempfile
    >>> folders = write_example_data(tempfile.mkdtemp(), schemes=EXAMPLE_SCHEMES[-1:])
    >>> sorted(p.name for p in folders[0].iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['caseload.xlsx', 'gp_appointments.csv', 'population.csv', 'postcode_lookup.csv',
     'spimpact-synthetic.json', 'truth.json']
    """
    root = Path(root)
    folders = []
    seeds = np.random.SeedSequence(seed).spawn(len(schemes))
    for spec, child in zip(schemes, seeds, strict=True):
        folder = root / spec.scheme_id
        folder.mkdir(parents=True, exist_ok=True)
        tables, truth = simulate_scheme(spec, np.random.default_rng(child))
        # the recording gaps and the export draw from their own stream, so the simulated
        # scheme is the same whichever way it is sent
        write_scheme(folder, spec, tables, truth, np.random.default_rng(child.spawn(1)[0]))
        # Marks the folder as synthetic: only such data may keep its key in params.
        (folder / SYNTHETIC_MARKER).write_text(
            json.dumps(
                {"written_by": "spimpact example-data", "scheme_id": spec.scheme_id, "seed": seed},
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        folders.append(folder)
    return folders


def write_scheme(folder: Path, spec: SchemeSpec, tables: dict, truth: dict, rng) -> None:
    """Write one simulated scheme as it sends its data, with its ``truth.json``.

    The spec's ``recording`` profile first removes what the scheme did not record
    (:func:`spimpact.synthetic.recording.record`, completely at random, so the truth
    still holds); its ``export`` then decides the files: the contract's tables, a
    caseload workbook or a platform's CSV export.
    """
    truth = dict(truth)
    _remove_earlier_example(folder)
    if spec.recording is not None:
        tables, account = record(tables, spec.recording, rng)
        truth["recording"] = {"profile": describe(spec.recording), "records_changed": account}
    boundaries = tables.pop("boundaries", None)
    if spec.export == "contract":
        for name, frame in tables.items():
            frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    elif spec.export == "spreadsheet":
        write_spreadsheet_export(tables, folder, rng, title=spec.title, n_unplaced=N_UNPLACED)
        truth["export"] = {"format": "spreadsheet", "clients_with_unplaced_labels": N_UNPLACED}
    elif spec.export == "platform":
        write_platform_export(tables, folder, rng)
        truth["export"] = {"format": "platform"}
    elif spec.export == "gp_extract":
        if spec.identifier != "nhs_number":
            raise ValueError(f"scheme {spec.scheme_id}: a GP extract is keyed by NHS number")
        write_gp_extract(tables, folder, rng)
        truth["export"] = {"format": "gp_extract"}
    else:
        raise ValueError(f"unknown export {spec.export!r} of scheme {spec.scheme_id}")
    if boundaries is not None:
        (folder / "boundaries.geojson").write_text(
            json.dumps(boundaries, indent=1), encoding="utf-8"
        )
    (folder / "truth.json").write_text(
        json.dumps(truth, indent=2, sort_keys=True), encoding="utf-8"
    )


# Files an earlier example of any kind may have left: a scheme that changed how it
# sends its data must not keep its old files beside the new ones.
_EXAMPLE_FILES = (
    "*.csv",
    "*.parquet",
    "caseload.xlsx",
    "boundaries.geojson",
    "truth.json",
)


def _remove_earlier_example(folder: Path) -> None:
    """Delete the example files of an earlier run from a scheme folder (nothing else)."""
    if not (folder / "truth.json").is_file():
        return  # not an example folder: leave it alone
    for pattern in _EXAMPLE_FILES:
        for path in folder.glob(pattern):
            if path.is_file():
                path.unlink()


def simulate_scheme(spec: SchemeSpec, rng: np.random.Generator) -> tuple[dict, dict]:
    """Simulate one scheme's tables and its truth; deterministic given ``rng``."""
    areas = simulate_areas(spec, rng)
    clients, latent = simulate_clients(spec, areas, rng)
    contacts = simulate_contacts(clients, rng)
    measures, truth_wellbeing = simulate_measures(spec, clients, latent, rng)
    tables = {
        "clients": public_clients(spec, clients, rng),
        "measures": measures,
        "contacts": contacts,
        "support_offered": simulate_support(clients, rng),
        "feedback": simulate_feedback(clients, latent, rng),
        "population": simulate_population(spec, areas),
    }
    truth = {
        "scheme_id": spec.scheme_id,
        "n_clients": int(len(clients)),
        "wellbeing": truth_wellbeing,
        "dropout": "follow-up missing at random given baseline score, age and IMD decile",
    }
    if spec.gp_data:
        pool = simulate_pool(spec, areas, rng) if spec.comparison_ratio else None
        appointments, truth_gp = simulate_appointments(spec, clients, pool, rng)
        tables["gp_appointments"] = appointments
        truth["gp_attendance"] = truth_gp
        if pool is not None:
            tables["comparison_pool"] = pool
    if spec.identifier == "nhs_number":
        tables = key_by_nhs_number(tables, rng)
    if spec.boundaries:
        tables["boundaries"] = simulate_boundaries(areas)
    return tables, truth
