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
from spimpact.synthetic.measures import simulate_measures
from spimpact.synthetic.people import (
    key_by_nhs_number,
    simulate_areas,
    simulate_boundaries,
    simulate_population,
)
from spimpact.synthetic.schemes import EXAMPLE_SCHEMES, SchemeSpec


def write_example_data(
    root: str | Path, *, seed: int = 20261130, schemes=EXAMPLE_SCHEMES
) -> list[Path]:
    """Write every example scheme under ``root/<scheme_id>/`` and return the folders.

    Examples
    --------
    >>> import tempfile
    >>> folders = write_example_data(tempfile.mkdtemp(), schemes=EXAMPLE_SCHEMES[-1:])
    >>> sorted(p.name for p in folders[0].iterdir())[:3]
    ['clients.csv', 'contacts.csv', 'feedback.csv']
    """
    root = Path(root)
    folders = []
    seeds = np.random.SeedSequence(seed).spawn(len(schemes))
    for spec, child in zip(schemes, seeds, strict=True):
        folder = root / spec.scheme_id
        folder.mkdir(parents=True, exist_ok=True)
        tables, truth = simulate_scheme(spec, np.random.default_rng(child))
        for name, frame in tables.items():
            if name == "boundaries":
                (folder / "boundaries.geojson").write_text(
                    json.dumps(frame, indent=1), encoding="utf-8"
                )
            else:
                frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
        (folder / "truth.json").write_text(
            json.dumps(truth, indent=2, sort_keys=True), encoding="utf-8"
        )
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
