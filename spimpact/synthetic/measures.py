"""Wellbeing questionnaires at baseline and follow-ups, with the true change they imply.

Latent scores move by a known change; items are generated from them and scored by
the package's own scoring, so ``truth.json`` holds the expected change of each score
(Monte Carlo through the same path). Follow-ups are missing at random given baseline
score, age and IMD.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spimpact.synthetic.clients import is_engaged
from spimpact.synthetic.schemes import EXTRACT_DATE, SchemeSpec

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


def simulate_measures(spec: SchemeSpec, clients, latent, rng, *, extract_date=EXTRACT_DATE):
    """Questionnaire items at baseline and two follow-ups, and the true changes."""
    n = len(clients)
    engaged_mask = is_engaged(clients)
    baseline_date = clients["referral_date"] + pd.to_timedelta(
        rng.integers(3, 28, size=n), unit="D"
    )
    has_baseline = engaged_mask & (rng.uniform(size=n) < 0.92) & (baseline_date <= extract_date)
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
                    & (dates <= extract_date)
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
