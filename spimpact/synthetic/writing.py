"""Simulate a whole scheme from its spec and write the example folders."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

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
    REFERRALS_TO,
    key_by_nhs_number,
    simulate_areas,
    simulate_boundaries,
    simulate_population,
)
from spimpact.synthetic.schemes import EXAMPLE_SCHEMES, EXTRACT_DATE, SchemeSpec


def write_example_data(
    root: str | Path, *, seed: int = 20261130, schemes=EXAMPLE_SCHEMES, later_months: int = 0
) -> list[Path]:
    """Write every example scheme under ``root/<scheme_id>/`` and return the folders.

    ``later_months`` > 0 writes a later extract of the same schemes: taken that many
    months after ``EXTRACT_DATE``, with the same clients (more of their follow-ups,
    contacts and appointments now recorded, more episodes closed) and the referrals of
    that many more months, as a scheme's refreshed data would be
    (``simulate_scheme``).

    Examples
    --------
    >>> import tempfile
    >>> folders = write_example_data(tempfile.mkdtemp(), schemes=EXAMPLE_SCHEMES[-1:])
    >>> sorted(p.name for p in folders[0].iterdir())[:3]
    ['clients.csv', 'contacts.csv', 'feedback.csv']
    """
    root = Path(root)
    folders = []
    if later_months < 0:
        raise ValueError(f"later_months must be 0 or more, got {later_months}")
    seeds = np.random.SeedSequence(seed).spawn(len(schemes))
    # the later referrals come from their own stream: the earlier data are drawn as before
    later_seeds = np.random.SeedSequence([seed, 1]).spawn(len(schemes))
    for spec, child, later in zip(schemes, seeds, later_seeds, strict=True):
        folder = root / spec.scheme_id
        folder.mkdir(parents=True, exist_ok=True)
        tables, truth = simulate_scheme(
            spec,
            np.random.default_rng(child),
            later_months=later_months,
            later_rng=np.random.default_rng(later),
        )
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
                {
                    "written_by": "spimpact example-data",
                    "scheme_id": spec.scheme_id,
                    "seed": seed,
                    **({"later_months": later_months} if later_months else {}),
                },
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        folders.append(folder)
    return folders


def simulate_scheme(
    spec: SchemeSpec, rng: np.random.Generator, *, later_months: int = 0, later_rng=None
) -> tuple[dict, dict]:
    """Simulate one scheme's tables and its truth; deterministic given the generators.

    With ``later_months`` the extract is taken that many months later: the clients of
    the usual extract are drawn exactly as before (only what is recorded by the later
    date differs), and clients referred in the ``later_months`` months after the usual
    referral window are added from ``later_rng``.
    """
    extract = EXTRACT_DATE + pd.DateOffset(months=later_months)
    areas = simulate_areas(spec, rng)
    clients, latent = simulate_clients(spec, areas, rng)
    contacts = simulate_contacts(clients, rng, extract_date=extract)
    measures, truth_wellbeing = simulate_measures(spec, clients, latent, rng, extract_date=extract)
    tables = {
        "clients": public_clients(spec, clients, rng, extract_date=extract),
        "measures": measures,
        "contacts": contacts,
        "support_offered": simulate_support(clients, rng, extract_date=extract),
        "feedback": simulate_feedback(clients, latent, rng, extract_date=extract),
        "population": simulate_population(spec, areas),
    }
    truth = {
        "scheme_id": spec.scheme_id,
        "n_clients": int(len(clients)),
        "wellbeing": truth_wellbeing,
        "dropout": "follow-up missing at random given baseline score, age and IMD decile",
    }
    if later_months:
        added, new_clients = _later_referrals(spec, areas, later_rng, later_months, extract)
        for name, frame in added.items():
            tables[name] = pd.concat([tables[name], frame], ignore_index=True)
        truth["n_clients"] += int(len(new_clients))
        truth["extract_date"] = f"{extract:%Y-%m-%d}"
    if spec.gp_data:
        pool = simulate_pool(spec, areas, rng) if spec.comparison_ratio else None
        appointments, truth_gp = simulate_appointments(
            spec, clients, pool, rng, extract_date=extract
        )
        if later_months:
            extra, _ = simulate_appointments(
                spec, new_clients, None, later_rng, extract_date=extract
            )
            appointments = pd.concat([appointments, extra], ignore_index=True)
        tables["gp_appointments"] = appointments
        truth["gp_attendance"] = truth_gp
        if pool is not None:
            tables["comparison_pool"] = pool.drop(columns=["peak"])
    if spec.identifier == "nhs_number":
        tables = key_by_nhs_number(tables, rng)
    if spec.boundaries:
        tables["boundaries"] = simulate_boundaries(areas)
    return tables, truth


def _later_referrals(spec: SchemeSpec, areas, rng, months: int, extract) -> tuple[dict, object]:
    """The tables of clients referred in the ``months`` after the usual referral window."""
    start = REFERRALS_TO + pd.Timedelta(days=1)
    end = start + pd.DateOffset(months=months) - pd.Timedelta(days=1)
    # the usual window has 30 months of referrals
    n = max(1, round(spec.n_clients * months / 30))
    later = replace(spec, n_clients=n, scheme_id=spec.scheme_id)
    clients, latent = simulate_clients(later, areas, rng, referred=(start, end))
    clients["client_id"] = [f"{c[:3]}L{c[4:]}" for c in clients["client_id"]]
    contacts = simulate_contacts(clients, rng, extract_date=extract)
    measures, _ = simulate_measures(later, clients, latent, rng, extract_date=extract)
    feedback = simulate_feedback(clients, latent, rng, extract_date=extract)
    feedback["feedback_id"] = feedback["feedback_id"].str.replace("FB-", "FB-L", regex=False)
    tables = {
        "clients": public_clients(later, clients, rng, extract_date=extract),
        "measures": measures,
        "contacts": contacts,
        "support_offered": simulate_support(clients, rng, extract_date=extract),
        "feedback": feedback,
    }
    return tables, clients
