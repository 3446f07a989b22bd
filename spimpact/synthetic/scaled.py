"""A scheme of any size, written as Parquet, for benchmarks (``spimpact example-data --scale``).

The scheme is north_shore's (SWEMWBS, GP appointments, a comparison pool twice the
clients) with ``n_clients`` clients and areas and practices in proportion; about 75
GP appointment rows are written per client (clients and their comparison pool).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.paths import SYNTHETIC_MARKER
from spimpact.synthetic.schemes import EXAMPLE_SCHEMES
from spimpact.synthetic.writing import simulate_scheme

# Clients per area and per practice in the north_shore example (8,000 clients).
CLIENTS_PER_AREA = 8000 / 120
CLIENTS_PER_PRACTICE = 8000 / 48


def write_scaled_scheme(root: str | Path, n_clients: int, *, seed: int = 20261130) -> Path:
    """Write a north_shore-like scheme of ``n_clients`` clients to ``root/scale_<n>/``.

    Every table is a Parquet file (``<table>.parquet``, the contract's columns, dates
    as ``YYYY-MM-DD`` text as a CSV export holds them), beside ``truth.json`` and the
    synthetic-data marker. Deterministic given ``n_clients`` and ``seed``.

    Examples
    --------
    >>> import tempfile
    >>> folder = write_scaled_scheme(tempfile.mkdtemp(), 60)
    >>> folder.name, sorted(p.name for p in folder.glob("*.parquet"))[:3]
    ('scale_60', ['clients.parquet', 'comparison_pool.parquet', 'contacts.parquet'])
    """
    if isinstance(n_clients, bool) or int(n_clients) != n_clients or n_clients < 50:
        raise ValueError(f"--scale must be a whole number of clients >= 50, got {n_clients!r}")
    n_clients = int(n_clients)
    base = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "north_shore")
    spec = replace(
        base,
        scheme_id=f"scale_{n_clients}",
        title=f"Synthetic scheme of {n_clients:,} clients",
        n_clients=n_clients,
        n_areas=max(10, round(n_clients / CLIENTS_PER_AREA)),
        n_practices=max(4, round(n_clients / CLIENTS_PER_PRACTICE)),
        boundaries=False,
    )
    folder = Path(root) / spec.scheme_id
    folder.mkdir(parents=True, exist_ok=True)
    tables, truth = simulate_scheme(spec, np.random.default_rng(seed))
    for name, frame in tables.items():
        frame = frame.copy()
        for column in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[column]):
                frame[column] = frame[column].dt.strftime("%Y-%m-%d")
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True), "utf-8")
    (folder / SYNTHETIC_MARKER).write_text(
        json.dumps(
            {
                "written_by": "spimpact example-data",
                "scheme_id": spec.scheme_id,
                "seed": seed,
                "scale": n_clients,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n",
        encoding="utf-8",
    )
    return folder
