"""Seeded synthetic example schemes with known true effects.

The example data is the default input of every report and the ground truth of the
end-to-end tests. Each scheme folder holds the tables of ``docs/data-contract.md``
and a ``truth.json`` with the effects used to simulate them:

* wellbeing: the expected change of each score from baseline to each follow-up,
  computed by Monte Carlo through the same item-generation and scoring path
  (``expected_change``);
* GP attendance: the true rate ratio after referral and the implied average effect
  on clients, in appointments per person-month (``gp_att_per_person_month``);
* dropout: follow-ups are missing at random given baseline score, age and IMD.

Referral is timed at an attendance peak (every person, client or comparison, has a
transient pre-index rise; clients' rises are larger on average), so a plain
before/after fall overstates the effect: the regression-to-the-mean trap that the
matched comparison is there to avoid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spimpact.contract import (
    ACTIVITY_TYPES,
    AGE_BANDS,
    ETHNIC_CATEGORIES,
    REFERRAL_SOURCES,
)

EXTRACT_DATE = pd.Timestamp("2025-12-31")
WINDOW_MONTHS = 12

REFERRAL_SOURCE_P = (0.55, 0.17, 0.10, 0.08, 0.05, 0.03, 0.02)  # in REFERRAL_SOURCES order
THEMES = (
    "confidence",
    "isolation",
    "physical_activity",
    "money_worries",
    "housing",
    "mental_health",
    "new_skills",
    "friendship",
    "nature",
)


@dataclass(frozen=True)
class SchemeSpec:
    """What makes one example scheme differ from another."""

    scheme_id: str
    title: str
    n_clients: int
    measures: tuple[str, ...]
    identifier: str = "client_id"  # or "nhs_number"
    age_source: str = "age"  # or "date_of_birth"
    gp_data: bool = True
    comparison_ratio: int = 2  # comparison pool size per client; 0 = no pool
    modified_scale_share: float = 0.0  # share of SWEMWBS forms recorded 0-10 per item
    n_areas: int = 60
    boundaries: bool = False
    ethnic_mix: str = "urban"  # or "rural"
    gp_rate_ratio: float = 0.85


EXAMPLE_SCHEMES = (
    SchemeSpec(
        "north_shore",
        "North Shore Social Prescribing Service",
        8000,
        ("swemwbs",),
        n_areas=120,
        boundaries=True,
    ),
    SchemeSpec(
        "riverside",
        "Riverside Community Connectors",
        1500,
        ("ons4", "ucla3", "ons_loneliness"),
        identifier="nhs_number",
        n_areas=50,
        gp_rate_ratio=0.9,
    ),
    SchemeSpec(
        "hillcrest",
        "Hillcrest Wellbeing Link",
        600,
        ("who5", "eq5d5l", "mycaw"),
        age_source="date_of_birth",
        gp_data=False,
        comparison_ratio=0,
        n_areas=30,
        boundaries=True,
        ethnic_mix="rural",
    ),
    SchemeSpec(
        "valley",
        "Valley Voluntary Action Social Prescribing",
        150,
        ("swemwbs",),
        comparison_ratio=0,
        modified_scale_share=0.35,
        n_areas=15,
        ethnic_mix="rural",
    ),
)

# Latent baseline mean, SD between people, residual SD and true change at follow-ups 1, 2,
# on each measure's own analysis scale (higher = better except where noted).
LATENT = {
    "swemwbs": dict(mean=19.0, sd_person=3.0, sd_resid=2.0, change=(2.0, 2.6)),
    "ons4_life_satisfaction": dict(mean=4.6, sd_person=1.8, sd_resid=1.2, change=(1.0, 1.3)),
    "ons4_worthwhile": dict(mean=5.2, sd_person=1.8, sd_resid=1.2, change=(0.8, 1.0)),
    "ons4_happiness": dict(mean=4.8, sd_person=1.9, sd_resid=1.4, change=(0.9, 1.1)),
    "ons4_anxiety": dict(mean=5.8, sd_person=2.0, sd_resid=1.5, change=(-1.0, -1.2)),
    "ucla3": dict(mean=6.6, sd_person=1.4, sd_resid=0.9, change=(-0.6, -0.8)),
    "who5": dict(mean=36.0, sd_person=14.0, sd_resid=9.0, change=(10.0, 12.0)),
    "eq5d5l": dict(mean=0.0, sd_person=1.0, sd_resid=0.5, change=(0.25, 0.3)),
    "mycaw": dict(mean=4.3, sd_person=0.9, sd_resid=0.7, change=(-1.6, -1.9)),
}

SWEMWBS_RAW_TO_METRIC = np.array(
    [7.00, 9.51, 11.25, 12.40, 13.33, 14.08, 14.75, 15.32, 15.84, 16.36, 16.88, 17.43, 17.98,
     18.59, 19.25, 19.98, 20.73, 21.54, 22.35, 23.21, 24.11, 25.03, 26.02, 27.03, 28.13, 29.31,
     30.70, 32.55, 35.00]
)  # fmt: skip  # Warwick conversion table (SPEC §1.1), used only to aim latent scores


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
        folders.append(folder)
    return folders


def simulate_scheme(spec: SchemeSpec, rng: np.random.Generator) -> tuple[dict, dict]:
    """Simulate one scheme's tables and its truth; deterministic given ``rng``."""
    areas = _simulate_areas(spec, rng)
    clients, latent = _simulate_clients(spec, areas, rng)
    contacts = _simulate_contacts(clients, rng)
    measures, truth_wellbeing = _simulate_measures(spec, clients, latent, rng)
    tables = {
        "clients": _public_clients(spec, clients, rng),
        "measures": measures,
        "contacts": contacts,
        "support_offered": _simulate_support(clients, rng),
        "feedback": _simulate_feedback(clients, latent, rng),
        "population": _simulate_population(spec, areas),
    }
    truth = {
        "scheme_id": spec.scheme_id,
        "n_clients": int(len(clients)),
        "wellbeing": truth_wellbeing,
        "dropout": "follow-up missing at random given baseline score, age and IMD decile",
    }
    if spec.gp_data:
        pool = _simulate_pool(spec, areas, rng) if spec.comparison_ratio else None
        appointments, truth_gp = _simulate_appointments(spec, clients, pool, rng)
        tables["gp_appointments"] = appointments
        truth["gp_attendance"] = truth_gp
        if pool is not None:
            tables["comparison_pool"] = pool.drop(columns=["peak"])
    if spec.identifier == "nhs_number":
        tables = _key_by_nhs_number(tables, rng)
    if spec.boundaries:
        tables["boundaries"] = _boundaries(areas)
    return tables, truth


def _key_by_nhs_number(tables: dict, rng) -> dict:
    """Replace every person key by an NHS number, as a scheme without pseudonyms sends them."""
    ids = pd.concat(
        [
            tables["clients"]["client_id"],
            tables.get("comparison_pool", pd.DataFrame({"patient_id": []}))["patient_id"],
        ]
    ).unique()
    numbers = dict(zip(ids, _nhs_numbers(rng, len(ids)), strict=True))
    out = {}
    for name, frame in tables.items():
        frame = frame.copy()
        for key in ("client_id", "patient_id"):
            if key in frame:
                position = frame.columns.get_loc(key)
                frame.insert(position, "nhs_number", frame.pop(key).map(numbers))
        out[name] = frame
    return out


# --- people and places -------------------------------------------------------------------


def _simulate_areas(spec: SchemeSpec, rng) -> pd.DataFrame:
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
                f"Z{(offset // 1000) * 100 + i % 6 + 1:05d}" for i in range(spec.n_areas)
            ],
            "grid": np.arange(spec.n_areas),
        }
    )


def _ethnic_probabilities(mix: str) -> np.ndarray:
    if mix == "urban":
        p = [60, 2, 6, 1, 1, 1, 1, 5, 6, 3, 2, 2, 4, 1, 1, 2, 1, 1]
    else:
        p = [85, 1, 5, 0.5, 0.3, 0.5, 0.4, 1, 1, 0.4, 0.5, 0.3, 0.6, 0.2, 0.4, 0.6, 1.3, 1.0]
    p = np.asarray(p, dtype=float)
    return p / p.sum()


def _people(n: int, areas: pd.DataFrame, mix: str, rng, *, area_weights=None) -> pd.DataFrame:
    weights = areas["population"].to_numpy(float) if area_weights is None else area_weights
    area = rng.choice(len(areas), size=n, p=weights / weights.sum())
    age = np.clip(np.round(rng.normal(54, 19, size=n)), 18, 97).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "sex": rng.choice(
                ["female", "male", "other", "unknown"], size=n, p=[0.6, 0.385, 0.005, 0.01]
            ),
            "ethnic_category": rng.choice(ETHNIC_CATEGORIES, size=n, p=_ethnic_probabilities(mix)),
            "lsoa_code": areas["lsoa_code"].to_numpy()[area],
            "imd_decile": areas["imd_decile"].to_numpy()[area],
            "practice_code": areas["practice_code"].to_numpy()[area],
        }
    )


def _token(rng, n: int, prefix: str) -> list[str]:
    raw = rng.integers(0, 16**10, size=n * 2, dtype=np.int64)
    tokens = list(dict.fromkeys(f"{prefix}{value:010x}" for value in raw))
    return tokens[:n]


def _referral_dates(n: int, rng) -> pd.DatetimeIndex:
    start = pd.Timestamp("2023-01-01")
    days = (pd.Timestamp("2025-06-30") - start).days
    # volume grows over time, with a winter rise
    u = rng.uniform(0, 1, size=n * 3)
    keep = rng.uniform(0, 1, size=n * 3) < (0.6 + 0.4 * u) * (
        0.85 + 0.15 * np.cos(2 * np.pi * u * days / 365.25)
    )
    chosen = u[keep][:n]
    return pd.DatetimeIndex(start + pd.to_timedelta(np.floor(chosen * days), unit="D"))


def _simulate_clients(spec: SchemeSpec, areas: pd.DataFrame, rng):
    n = spec.n_clients
    # SP reaches deprived areas more: weight areas towards low deciles.
    weights = areas["population"].to_numpy(float) * np.exp(-0.12 * areas["imd_decile"].to_numpy())
    people = _people(n, areas, spec.ethnic_mix, rng, area_weights=weights)
    people.insert(0, "client_id", _token(rng, n, spec.scheme_id[:2].upper() + "-"))
    people["referral_date"] = np.sort(_referral_dates(n, rng))
    people["referral_source"] = rng.choice(REFERRAL_SOURCES, size=n, p=REFERRAL_SOURCE_P)
    z_imd = (people["imd_decile"].to_numpy() - 5.5) / 2.9
    z_age = (people["age"].to_numpy() - 54) / 19
    latent = pd.DataFrame(
        {
            "person": rng.normal(0, 1, size=n),  # standardised stable wellbeing
            "z_imd": z_imd,
            "z_age": z_age,
        }
    )
    # Engagement with the link worker: lower in the most deprived and the youngest.
    p_engage = 1 / (1 + np.exp(-(1.5 + 0.25 * z_imd + 0.3 * z_age)))
    people["_engaged"] = rng.uniform(size=n) < p_engage
    return people, latent


def _public_clients(spec: SchemeSpec, clients: pd.DataFrame, rng) -> pd.DataFrame:
    out = clients.copy()
    n = len(out)
    out["consent_data_use"] = np.where(rng.uniform(size=n) < 0.99, "true", "false")
    out["consent_contact"] = np.where(rng.uniform(size=n) < 0.9, "yes", "no")
    discharge_reason = np.where(out["_engaged"], "completed", "disengaged")
    roll = rng.uniform(size=n)
    discharge_reason = np.where(roll < 0.06, "declined", discharge_reason)
    discharge_reason = np.where((roll >= 0.06) & (roll < 0.09), "referred_on", discharge_reason)
    discharge_reason = np.where((roll >= 0.09) & (roll < 0.11), "moved_away", discharge_reason)
    discharge_reason = np.where(
        out["_last_contact"].isna() & (discharge_reason == "completed"),
        "disengaged",
        discharge_reason,
    )
    discharge_date = out["_last_contact"].fillna(out["referral_date"] + pd.Timedelta(days=30))
    discharge_date = discharge_date + pd.to_timedelta(rng.integers(0, 21, size=n), unit="D")
    open_case = discharge_date > EXTRACT_DATE
    out["discharge_date"] = discharge_date.where(~open_case)
    out["discharge_reason"] = pd.Series(discharge_reason, index=out.index).where(~open_case)
    out = out.drop(columns=[c for c in out.columns if c.startswith("_")])
    if spec.age_source == "date_of_birth":
        birth = out["referral_date"] - pd.to_timedelta(
            out["age"] * 365.25 + rng.integers(0, 365, size=n), unit="D"
        )
        out.insert(out.columns.get_loc("age"), "date_of_birth", birth.dt.normalize())
        out = out.drop(columns=["age"])
    return out


def _nhs_numbers(rng, n: int) -> list[str]:
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


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row owner and position within owner for ``counts[i]`` rows per owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.arange(len(owner)) - starts


def _simulate_contacts(clients: pd.DataFrame, rng) -> pd.DataFrame:
    n = len(clients)
    n_contacts = np.where(
        _engaged_mask(clients), rng.integers(2, 9, size=n), rng.integers(0, 2, size=n)
    )
    owner, position = _expand(n_contacts)
    gaps = rng.integers(3, 35, size=len(owner))
    cumulative = np.cumsum(gaps)
    starts = (np.cumsum(n_contacts) - n_contacts)[n_contacts > 0]
    offset = cumulative - np.repeat(cumulative[starts] - gaps[starts], n_contacts[n_contacts > 0])
    dates = clients["referral_date"].to_numpy()[owner] + offset.astype("timedelta64[D]")
    kinds = rng.choice(
        ["follow_up", "group_session", "telephone_check_in", "other"],
        size=len(owner),
        p=[0.55, 0.15, 0.25, 0.05],
    )
    contacts = pd.DataFrame(
        {
            "client_id": clients["client_id"].to_numpy()[owner],
            "contact_date": dates,
            "contact_type": np.where(position == 0, "initial_assessment", kinds),
            "mode": rng.choice(
                ["face_to_face", "telephone", "video", "home_visit"],
                size=len(owner),
                p=[0.55, 0.35, 0.05, 0.05],
            ),
            "duration_minutes": rng.choice([15, 30, 45, 60], size=len(owner)),
        }
    )
    contacts = contacts[contacts["contact_date"] <= EXTRACT_DATE].reset_index(drop=True)
    last = contacts.groupby("client_id")["contact_date"].max()
    clients["_last_contact"] = clients["client_id"].map(last)
    return contacts


def _engaged_mask(clients: pd.DataFrame) -> np.ndarray:
    return clients["_engaged"].to_numpy()


# --- wellbeing measures --------------------------------------------------------------------


def _simulate_measures(spec: SchemeSpec, clients, latent, rng):
    n = len(clients)
    engaged_mask = _engaged_mask(clients)
    baseline_date = clients["referral_date"] + pd.to_timedelta(
        rng.integers(3, 28, size=n), unit="D"
    )
    has_baseline = engaged_mask & (rng.uniform(size=n) < 0.92) & (baseline_date <= EXTRACT_DATE)
    person_noise = latent["person"].to_numpy()
    rows = []
    truth = {}
    for measure in spec.measures:
        items_for = _ITEM_GENERATORS[measure]
        scores = _latent_scores(measure, person_noise, latent, rng)  # (n, 3) latent per timepoint
        # Follow-up observed at random given baseline score, age and IMD (MAR).
        baseline = scores[:, 0] if scores.ndim == 2 else scores[:, 0, 0]
        base_std = (baseline - baseline.mean()) / baseline.std()
        direction = -1.0 if measure in ("ucla3", "mycaw") else 1.0
        for t in (0, 1, 2):
            dates = (
                baseline_date
                + pd.Timedelta(days=91 * t)
                + pd.to_timedelta(rng.integers(-10, 15, size=n), unit="D")
            )
            if t == 0:
                observed = has_baseline.copy()
            else:
                logit = (
                    0.9
                    - 0.45 * t
                    + 0.5 * direction * base_std
                    + 0.35 * latent["z_age"].to_numpy()
                    + 0.3 * latent["z_imd"].to_numpy()
                )
                observed = (
                    has_baseline
                    & (rng.uniform(size=n) < 1 / (1 + np.exp(-logit)))
                    & (dates <= EXTRACT_DATE)
                )
            idx = np.flatnonzero(observed)
            items = items_for(scores[idx, t], rng)
            if measure == "swemwbs" and spec.modified_scale_share:
                modified = rng.uniform(size=len(idx)) < spec.modified_scale_share
                items[modified] = np.clip(
                    np.round(
                        (items[modified] - 1) * 2.5
                        + rng.integers(-1, 2, size=items[modified].shape)
                    ),
                    0,
                    10,
                )
            frame = pd.DataFrame(
                items, columns=[f"item_{k + 1}" for k in range(items.shape[1])]
            ).astype("Int64")
            if measure == "mycaw":  # concern 2 is optional: about a quarter name only one concern
                frame.loc[rng.uniform(size=len(idx)) < 0.25, "item_2"] = pd.NA
            if measure == "eq5d5l":  # EQ-VAS missing for some
                frame.loc[rng.uniform(size=len(idx)) < 0.1, "item_6"] = pd.NA
            frame.insert(0, "date", dates.to_numpy()[idx])
            frame.insert(0, "timepoint", t)
            frame.insert(0, "measure", measure)
            frame.insert(0, "client_id", clients["client_id"].to_numpy()[idx])
            rows.append(frame)
        truth[measure] = _expected_change(measure, rng)
    measures = pd.concat(rows, ignore_index=True)
    measures = measures.sort_values(["date", "client_id", "measure"], kind="stable").reset_index(
        drop=True
    )
    item_cols = [f"item_{k}" for k in range(1, 15)]
    for col in item_cols:
        if col not in measures:
            measures[col] = pd.array([pd.NA] * len(measures), dtype="Int64")
    return measures[["client_id", "measure", "timepoint", "date", *item_cols]], truth


def _latent_scores(measure: str, person, latent, rng) -> np.ndarray:
    keys = [k for k in LATENT if k == measure or k.startswith(measure + "_")]
    if measure in ("ons4",):
        keys = [k for k in LATENT if k.startswith("ons4_")]
    if measure == "ons_loneliness":
        keys = ["ucla3"]
    out = []
    for key in keys:
        spec = LATENT[key]
        deprivation = (
            -0.15
            * latent["z_imd"].to_numpy()
            * spec["sd_person"]
            * (-1 if key in ("ucla3", "mycaw", "ons4_anxiety") else 1)
        )
        base = (
            spec["mean"]
            - deprivation
            + spec["sd_person"] * (0.7 * person + 0.71 * rng.normal(size=len(person)))
        )
        change = np.array((0.0, *spec["change"]))
        out.append(
            base[:, None] + change[None, :] + spec["sd_resid"] * rng.normal(size=(len(person), 3))
        )
    return np.stack(out, axis=-1) if len(out) > 1 else out[0]


def _swemwbs_items(metric, rng):
    raw = np.abs(SWEMWBS_RAW_TO_METRIC[None, :] - np.asarray(metric)[:, None]).argmin(axis=1) + 7
    return _split_total(raw, 7, 1, 5, rng)


def _split_total(total, n_items: int, low: int, high: int, rng) -> np.ndarray:
    """Spread each total over ``n_items`` items in ``low..high``, uniformly over the unit slots."""
    total = np.clip(np.asarray(total, dtype=int), n_items * low, n_items * high)
    width = high - low
    extra = total - n_items * low
    ranks = rng.uniform(size=(len(total), n_items * width)).argsort(axis=1).argsort(axis=1)
    chosen = ranks < extra[:, None]
    return low + chosen.reshape(len(total), n_items, width).sum(axis=2)


def _ons4_items(scores, rng):
    return np.clip(np.round(scores), 0, 10).astype(int)


def _ucla3_items(score, rng):
    return _split_total(np.round(score), 3, 1, 3, rng)


def _ons_loneliness_items(score, rng):
    # higher UCLA-like score -> more often lonely -> lower code (1 = often/always)
    code = 6 - np.clip(np.round((np.asarray(score) - 3) / 6 * 4 + 1), 1, 5)
    return code.astype(int)[:, None]


def _who5_items(pct, rng):
    raw = np.clip(np.round(np.asarray(pct) / 4), 0, 25)
    return _split_total(raw, 5, 0, 5, rng)


def _eq5d5l_items(health, rng):
    health = np.asarray(health)
    cut = np.array([-0.6, 0.2, 1.0, 1.8])
    dims = []
    for shift in (0.4, 0.8, 0.2, -0.3, -0.2):
        level = 1 + (
            -(health[:, None]) + shift + 0.6 * rng.normal(size=(len(health), 1)) > cut[None, :]
        ).sum(axis=1)
        dims.append(level)
    vas = np.clip(np.round(62 + 14 * health + 8 * rng.normal(size=len(health))), 0, 100)
    return np.column_stack([*dims, vas]).astype(int)


def _mycaw_items(score, rng):
    score = np.asarray(score)
    c1 = np.clip(np.round(score + 0.6 + 0.6 * rng.normal(size=len(score))), 0, 6)
    c2 = np.clip(np.round(score + 0.2 + 0.6 * rng.normal(size=len(score))), 0, 6)
    wb = np.clip(np.round(score - 0.5 + 0.6 * rng.normal(size=len(score))), 0, 6)
    return np.column_stack([c1, c2, wb]).astype(int)


_ITEM_GENERATORS = {
    "swemwbs": _swemwbs_items,
    "ons4": _ons4_items,
    "ucla3": _ucla3_items,
    "ons_loneliness": _ons_loneliness_items,
    "who5": _who5_items,
    "eq5d5l": _eq5d5l_items,
    "mycaw": _mycaw_items,
}


def _expected_change(measure: str, rng, n: int = 100_000) -> dict:
    """Expected change of each score by Monte Carlo through items and scoring."""
    latent = pd.DataFrame({"z_imd": rng.normal(size=n), "z_age": rng.normal(size=n)})
    scores = _latent_scores(measure, rng.normal(size=n), latent, rng)
    per_t = []
    for t in (0, 1, 2):
        items = _ITEM_GENERATORS[measure](scores[:, t], rng)
        frame = pd.DataFrame(items, columns=[f"item_{k + 1}" for k in range(items.shape[1])])
        per_t.append(_score_items(measure, frame))
    result = {}
    for name in per_t[0]:
        result[name] = {
            str(t): round(float(np.mean(per_t[t][name]) - np.mean(per_t[0][name])), 4)
            for t in (1, 2)
        }
    return result


def _score_items(measure: str, items: pd.DataFrame) -> dict:
    from spimpact.scoring.eq5d import eq5d5l_index
    from spimpact.scoring.swemwbs import swemwbs_metric

    if measure == "swemwbs":
        return {"swemwbs_metric": swemwbs_metric(items.sum(axis=1).to_numpy())}
    if measure == "ons4":
        names = ("ons4_life_satisfaction", "ons4_worthwhile", "ons4_happiness", "ons4_anxiety")
        return {name: items[f"item_{k + 1}"].to_numpy() for k, name in enumerate(names)}
    if measure == "ucla3":
        return {"ucla3_total": items.sum(axis=1).to_numpy()}
    if measure == "ons_loneliness":
        return {"ons_loneliness": items["item_1"].to_numpy()}
    if measure == "who5":
        return {"who5_pct": 4 * items.sum(axis=1).to_numpy()}
    if measure == "eq5d5l":
        states = items[[f"item_{k}" for k in range(1, 6)]].to_numpy() @ np.array(
            [10000, 1000, 100, 10, 1]
        )
        index = eq5d5l_index(states.astype(str), value_set="england_devlin2018")
        return {
            "eq5d5l_index_england_devlin2018": np.asarray(index, dtype=float),
            "eq5d_vas": items["item_6"].to_numpy(),
        }
    if measure == "mycaw":
        return {
            "mycaw_concern_1": items["item_1"].to_numpy(),
            "mycaw_wellbeing": items["item_3"].to_numpy(),
        }
    raise ValueError(f"no scoring rule for {measure}")


# --- support, feedback, population -------------------------------------------------------------


def _simulate_support(clients, rng) -> pd.DataFrame:
    counts = np.where(_engaged_mask(clients), rng.integers(1, 4, size=len(clients)), 0)
    owner, _ = _expand(counts)
    dates = clients["referral_date"].to_numpy()[owner] + rng.integers(
        7, 60, size=len(owner)
    ).astype("timedelta64[D]")
    support = pd.DataFrame(
        {
            "client_id": clients["client_id"].to_numpy()[owner],
            "date": dates,
            "activity_type": rng.choice(ACTIVITY_TYPES, size=len(owner)),
            "organisation_id": [f"ORG-{k:03d}" for k in rng.integers(1, 41, size=len(owner))],
        }
    )
    return support[support["date"] <= EXTRACT_DATE].reset_index(drop=True)


_FIRST = (
    "Margaret",
    "David",
    "Aisha",
    "Tomasz",
    "Priya",
    "John",
    "Grace",
    "Mohammed",
    "Sian",
    "Kwame",
)
_LAST = (
    "Okafor",
    "Hughes",
    "Patel",
    "Nowak",
    "Begum",
    "Murphy",
    "Evans",
    "Khan",
    "Lloyd",
    "Mensah",
)
_PLACES = (
    "Riverside Community Centre",
    "St Mark's Church Hall",
    "Hillcrest Library",
    "North Shore Allotments",
)
_SENTENCES = {
    "confidence": "I feel more confident going out on my own now.",
    "isolation": "Before this I hardly spoke to anyone from one week to the next.",
    "physical_activity": "The walking group got me moving again.",
    "money_worries": "The advice session sorted out my benefits and the debt letters stopped.",
    "housing": "They helped me get the damp in my flat looked at.",
    "mental_health": "My mood is a lot better than when I was first referred.",
    "new_skills": "I learnt to use the computer at the library course.",
    "friendship": "I have made real friends at the group.",
    "nature": "Being outside at the garden project calms me down.",
}


def _simulate_feedback(clients, latent, rng) -> pd.DataFrame:
    mask = _engaged_mask(clients) & (rng.uniform(size=len(clients)) < 0.12)
    rows = []
    for k, i in enumerate(np.flatnonzero(mask)):
        good = latent["person"].iloc[i] > 0
        p = np.full(len(THEMES), 1.0)
        if good:
            p[[0, 7]] += 1.5  # better-off clients talk more about confidence and friendship
        themes = sorted(set(rng.choice(THEMES, size=int(rng.integers(1, 4)), p=p / p.sum())))
        name = f"{rng.choice(('Mrs', 'Mr', 'Ms'))} {rng.choice(_FIRST)} {rng.choice(_LAST)}"
        when = clients["referral_date"].iloc[i] + pd.Timedelta(days=int(rng.integers(60, 200)))
        text = " ".join(_SENTENCES[t] for t in themes)
        extra = rng.integers(0, 4)
        if extra == 1:
            text = f"{name} told us: {text}"
        elif extra == 2:
            text += (
                f" You can ring me on 07700 900{rng.integers(100, 999)} if you want to hear more."
            )
        elif extra == 3:
            text += f" I first went to {rng.choice(_PLACES)} on {when:%d/%m/%Y}."
        rows.append(
            (
                f"FB-{k + 1:05d}",
                clients["client_id"].iloc[i] if rng.uniform() < 0.9 else None,
                min(when, EXTRACT_DATE),
                rng.choice(["case_study", "formal", "informal"], p=[0.15, 0.35, 0.5]),
                ";".join(themes),
                "true" if rng.uniform() < 0.6 else "false",
                text,
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "feedback_id",
            "client_id",
            "date",
            "feedback_type",
            "themes",
            "consent_to_quote",
            "text",
        ],
    )


def _simulate_population(spec: SchemeSpec, areas: pd.DataFrame) -> pd.DataFrame:
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
    group_p = _ethnic_probabilities(spec.ethnic_mix)
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


def _boundaries(areas: pd.DataFrame) -> dict:
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


# --- GP appointments -------------------------------------------------------------------------


def _simulate_pool(spec: SchemeSpec, areas, rng) -> pd.DataFrame:
    n = spec.n_clients * spec.comparison_ratio
    pool = _people(n, areas, spec.ethnic_mix, rng)
    pool.insert(0, "patient_id", _token(rng, n, "CP-"))
    pool.insert(1, "index_date", np.sort(_referral_dates(n, rng)))
    pool["peak"] = rng.gamma(1.2, 0.35, size=n)  # smaller pre-index rises than clients on average
    return pool


def _simulate_appointments(spec: SchemeSpec, clients, pool, rng):
    people = clients[["client_id", "referral_date", "age", "imd_decile"]].rename(
        columns={"client_id": "patient_id", "referral_date": "index_date"}
    )
    people["treated"] = True
    people["peak"] = rng.gamma(2.0, 0.45, size=len(people))
    if pool is not None:
        other = pool[["patient_id", "index_date", "age", "imd_decile", "peak"]].assign(
            treated=False
        )
        people = pd.concat([people, other], ignore_index=True)
    n = len(people)
    base_rate = rng.gamma(3.0, 0.13, size=n) * np.exp(
        0.006 * (people["age"].to_numpy() - 50) - 0.03 * (people["imd_decile"].to_numpy() - 5)
    )
    base_rate = base_rate * np.where(people["treated"], 1.25, 1.0)
    # two years of history before the index month: the earlier year is what matching on
    # prior attendance may use without touching the months the comparison itself uses
    # month 0 is the month of referral (or index date); analyses compare months -12..-1
    # with months 0..11
    months = np.arange(-2 * WINDOW_MONTHS, WINDOW_MONTHS)
    # transient rise peaking in the index month, decaying after it (regression to the mean)
    shape = np.exp(-np.abs(months) / 1.5)
    rate = base_rate[:, None] * (1 + people["peak"].to_numpy()[:, None] * shape[None, :])
    # the scheme's effect starts the month after referral: partial for 3 months, then full
    effect = np.where(
        months > 0, np.where(months <= 3, 1 - (1 - spec.gp_rate_ratio) / 2, spec.gp_rate_ratio), 1.0
    )
    treated = people["treated"].to_numpy()
    rate_treated = rate * np.where(treated[:, None], effect[None, :], 1.0)
    month_start = people["index_date"].to_numpy().astype("datetime64[M]")[:, None] + months[
        None, :
    ].astype("timedelta64[M]")
    in_extract = month_start <= np.datetime64(EXTRACT_DATE, "M")
    counts = rng.poisson(rate_treated) * in_extract
    # truth: average effect on clients per observed person-month in months 0..11
    # (month 0, the month of referral, has no effect yet)
    post = (months >= 0)[None, :] & in_extract & treated[:, None]
    att = float(((rate_treated - rate)[post]).mean())
    truth = {
        "rate_ratio_months_1_to_3": round(1 - (1 - spec.gp_rate_ratio) / 2, 4),
        "rate_ratio_months_4_to_11": spec.gp_rate_ratio,
        "gp_att_per_person_month": round(att, 5),
        "outcome": (
            "attended clinical appointments (all clinical staff, link-worker slots excluded) "
            "per person-month"
        ),
        "window_months": WINDOW_MONTHS,
    }
    person_idx, month_idx = np.nonzero(counts)
    reps = counts[person_idx, month_idx]
    person_idx = np.repeat(person_idx, reps)
    month_idx = np.repeat(month_idx, reps)
    start = month_start[person_idx, month_idx].astype("datetime64[D]")
    dates = start + rng.integers(0, 28, size=len(start)).astype("timedelta64[D]")
    m = len(dates)
    role = rng.choice(["gp", "nurse", "other_clinical"], size=m, p=[0.6, 0.28, 0.12])
    appointments = pd.DataFrame(
        {
            "patient_id": people["patient_id"].to_numpy()[person_idx],
            "appointment_date": dates,
            "staff_role": role,
            "mode": rng.choice(
                ["face_to_face", "telephone", "video", "online", "home_visit"],
                size=m,
                p=[0.62, 0.3, 0.03, 0.03, 0.02],
            ),
            "status": "attended",
            "slot_category": rng.choice(
                [
                    "General Consultation Routine",
                    "General Consultation Acute",
                    "Clinical Triage",
                    "Planned Clinics",
                ],
                size=m,
                p=[0.45, 0.3, 0.15, 0.1],
            ),
        }
    )
    # Did-not-attend and cancelled bookings, admin slots and link-worker slots: not outcomes.
    noise_n = int(0.12 * m)
    noise_src = rng.integers(0, m, size=noise_n)
    noise = appointments.iloc[noise_src].copy()
    noise["status"] = rng.choice(["dna", "cancelled"], size=noise_n, p=[0.6, 0.4])
    admin = appointments.iloc[rng.integers(0, m, size=int(0.04 * m))].copy()
    admin["staff_role"] = "admin"
    admin["slot_category"] = "Non-contractual chargeable work"
    lw_owner, lw_k = _expand(rng.integers(1, 4, size=len(clients)))
    lw_dates = clients["referral_date"].to_numpy()[lw_owner] + (
        7 + 21 * lw_k + rng.integers(0, 7, size=len(lw_k))
    ).astype("timedelta64[D]")
    link_worker = pd.DataFrame(
        {
            "patient_id": clients["client_id"].to_numpy()[lw_owner],
            "appointment_date": lw_dates,
            "staff_role": "social_prescribing_link_worker",
            "mode": "face_to_face",
            "status": "attended",
            "slot_category": "Social Prescribing Service",
        }
    )
    appointments = pd.concat([appointments, noise, admin, link_worker], ignore_index=True)
    appointments["appointment_date"] = pd.to_datetime(appointments["appointment_date"])
    appointments = appointments[appointments["appointment_date"] <= EXTRACT_DATE]
    appointments = appointments.sort_values(
        ["appointment_date", "patient_id", "staff_role"], kind="stable"
    )
    return appointments.reset_index(drop=True), truth
