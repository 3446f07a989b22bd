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
from spimpact.synthetic.gp_extract import write_gp_extract
from spimpact.synthetic.measures import simulate_measures
from spimpact.synthetic.people import (
    REFERRALS_TO,
    key_by_nhs_number,
    simulate_areas,
    simulate_boundaries,
    simulate_population,
)
from spimpact.synthetic.platform import write_platform_export
from spimpact.synthetic.recording import describe, record
from spimpact.synthetic.schemes import EXAMPLE_SCHEMES, EXTRACT_DATE, SchemeSpec
from spimpact.synthetic.spreadsheet import write_spreadsheet_export

# Clients of a spreadsheet export whose referral source is a label no mapping places.
N_UNPLACED = 9


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
    >>> sorted(p.name for p in folders[0].iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['caseload.xlsx', 'gp_appointments.csv', 'population.csv', 'postcode_lookup.csv',
     'spimpact-synthetic.json', 'truth.json']
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
        # the recording gaps and the export draw from their own stream, so the simulated
        # scheme is the same whichever way it is sent
        write_scheme(folder, spec, tables, truth, np.random.default_rng(child.spawn(1)[0]))
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
            tables["comparison_pool"] = pool
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
