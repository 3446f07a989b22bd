"""People and places: small areas, the people living in them, their identifiers.

Shared by the clients and the comparison pool, together with each area's population
table and the synthetic boundaries drawn on maps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.contract import AGE_BANDS, ETHNIC_CATEGORIES
from spimpact.synthetic.schemes import SchemeSpec


def simulate_areas(spec: SchemeSpec, rng) -> pd.DataFrame:
    """Small areas, each with an IMD decile, a population and a practice."""
    offset = {"north_shore": 90000, "riverside": 91000, "hillcrest": 92000, "valley": 93000}.get(
        spec.scheme_id, 94000
    )
    deprived_lean = rng.beta(1.3, 1.8, size=spec.n_areas)
    return pd.DataFrame(
        {
            # E01 + 6 digits above the real 2011/2021 ranges (E01000001-E01035xxx): synthetic.
            "lsoa_code": [f"E01{offset + i:06d}" for i in range(1, spec.n_areas + 1)],
            "imd_decile": np.clip(np.ceil(deprived_lean * 10), 1, 10).astype(int),
            "population": rng.integers(1200, 2600, size=spec.n_areas),
            "practice_code": [
                f"Z{(offset // 1000) * 100 + i % spec.n_practices + 1:05d}"
                for i in range(spec.n_areas)
            ],
            "grid": np.arange(spec.n_areas),
        }
    )


def ethnic_probabilities(mix: str) -> np.ndarray:
    """Shares of the 18 ethnic categories in an urban or a rural population."""
    if mix == "urban":
        p = [60, 2, 6, 1, 1, 1, 1, 5, 6, 3, 2, 2, 4, 1, 1, 2, 1, 1]
    else:
        p = [85, 1, 5, 0.5, 0.3, 0.5, 0.4, 1, 1, 0.4, 0.5, 0.3, 0.6, 0.2, 0.4, 0.6, 1.3, 1.0]
    p = np.asarray(p, dtype=float)
    return p / p.sum()


def simulate_people(
    n: int, areas: pd.DataFrame, mix: str, rng, *, area_weights=None
) -> pd.DataFrame:
    """People living in ``areas`` (by population or ``area_weights``)."""
    weights = areas["population"].to_numpy(float) if area_weights is None else area_weights
    area = rng.choice(len(areas), size=n, p=weights / weights.sum())
    age = np.clip(np.round(rng.normal(54, 19, size=n)), 18, 97).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "sex": rng.choice(
                ["female", "male", "other", "unknown"], size=n, p=[0.6, 0.385, 0.005, 0.01]
            ),
            "ethnic_category": rng.choice(ETHNIC_CATEGORIES, size=n, p=ethnic_probabilities(mix)),
            "lsoa_code": areas["lsoa_code"].to_numpy()[area],
            "imd_decile": areas["imd_decile"].to_numpy()[area],
            "practice_code": areas["practice_code"].to_numpy()[area],
        }
    )


def tokens(rng, n: int, prefix: str) -> list[str]:
    """``n`` distinct pseudonymous identifiers starting with ``prefix``."""
    raw = rng.integers(0, 16**10, size=n * 2, dtype=np.int64)
    tokens = list(dict.fromkeys(f"{prefix}{value:010x}" for value in raw))
    return tokens[:n]


def referral_dates(n: int, rng) -> pd.DatetimeIndex:
    """Dates from 2023 to mid-2025, rising over time, with a winter peak."""
    start = pd.Timestamp("2023-01-01")
    days = (pd.Timestamp("2025-06-30") - start).days
    # volume grows over time, with a winter rise
    u = rng.uniform(0, 1, size=n * 3)
    keep = rng.uniform(0, 1, size=n * 3) < (0.6 + 0.4 * u) * (
        0.85 + 0.15 * np.cos(2 * np.pi * u * days / 365.25)
    )
    chosen = u[keep][:n]
    return pd.DatetimeIndex(start + pd.to_timedelta(np.floor(chosen * days), unit="D"))


def nhs_numbers(rng, n: int) -> list[str]:
    """Modulus-11-valid numbers from the 999 range reserved for test data (SPEC §3.1)."""
    numbers: list[str] = []
    seen = set()
    while len(numbers) < n:
        body = f"999{rng.integers(0, 10**6):06d}"
        total = sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        check = 0 if check == 11 else check
        if check == 10 or body in seen:
            continue
        seen.add(body)
        number = body + str(check)
        numbers.append(
            f"{number[:3]} {number[3:6]} {number[6:]}" if len(numbers) % 3 == 0 else number
        )
    return numbers


def key_by_nhs_number(tables: dict, rng) -> dict:
    """Replace every person key by an NHS number, as a scheme without pseudonyms sends them."""
    ids = pd.concat(
        [
            tables["clients"]["client_id"],
            tables.get("comparison_pool", pd.DataFrame({"patient_id": []}))["patient_id"],
        ]
    ).unique()
    numbers = dict(zip(ids, nhs_numbers(rng, len(ids)), strict=True))
    out = {}
    for name, frame in tables.items():
        frame = frame.copy()
        for key in ("client_id", "patient_id"):
            if key in frame:
                position = frame.columns.get_loc(key)
                frame.insert(position, "nhs_number", frame.pop(key).map(numbers))
        out[name] = frame
    return out


def simulate_population(spec: SchemeSpec, areas: pd.DataFrame) -> pd.DataFrame:
    """The population table of the scheme's area, by each dimension."""
    total = int(areas["population"].sum())
    rows = [("total", "all", total)]
    rows += [
        ("lsoa_code", a, int(p))
        for a, p in zip(areas["lsoa_code"], areas["population"], strict=True)
    ]
    by_decile = areas.groupby("imd_decile")["population"].sum()
    rows += [("imd_decile", str(d), int(p)) for d, p in by_decile.items()]
    by_quintile = areas.assign(q=(areas["imd_decile"] + 1) // 2).groupby("q")["population"].sum()
    rows += [("imd_quintile", str(q), int(p)) for q, p in by_quintile.items()]
    age_share = np.array([0.13, 0.17, 0.16, 0.16, 0.15, 0.12, 0.11])
    rows += [
        ("age_band", b, int(round(total * s))) for b, s in zip(AGE_BANDS, age_share, strict=True)
    ]
    rows += [("sex", "female", int(round(total * 0.51))), ("sex", "male", int(round(total * 0.49)))]
    group_p = ethnic_probabilities(spec.ethnic_mix)
    groups = {
        "White": group_p[0:3].sum(),
        "Mixed": group_p[3:7].sum(),
        "Asian": group_p[7:11].sum(),
        "Black": group_p[11:14].sum(),
        "Other": group_p[14:16].sum(),
    }
    norm = sum(groups.values())
    rows += [("ethnic_group", g, int(round(total * s / norm))) for g, s in groups.items()]
    return pd.DataFrame(rows, columns=["dimension", "category", "population"])


def simulate_boundaries(areas: pd.DataFrame) -> dict:
    """Synthetic square 'neighbourhoods' on a grid: for maps only, not real geography."""
    side = int(np.ceil(np.sqrt(len(areas))))
    features = []
    for code, g in zip(areas["lsoa_code"], areas["grid"], strict=True):
        x0, y0 = -2.0 + 0.01 * (g % side), 53.0 + 0.01 * (g // side)
        ring = [[x0, y0], [x0 + 0.01, y0], [x0 + 0.01, y0 + 0.01], [x0, y0 + 0.01], [x0, y0]]
        features.append(
            {
                "type": "Feature",
                "properties": {"lsoa_code": code},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "features": features}
