"""The analysis plan: its hash, its lock (``spimpact plan freeze``) and what changed.

A scheme may pin its analysis plan under ``plan:`` in params (primary outcome and
time point, estimand, comparison design, covariates, dropout handling, multiplicity
policy). The plan recorded with a run (``plan_record``) is those items plus the params
settings that decide what the analyses estimate (``ANALYSIS_SETTINGS``), so a change of
measure, washout, matching, covariance order or imputation count with the words of the
plan left alone is still a change of plan. ``freeze_plan`` writes the lock
``params/<scheme_id>.plan-lock.json`` beside the params file; a run compares its plan
with the lock (or, without a lock, with the plan of the previous refresh in the history
store) and the report shows each difference. No clock is read: the lock records the
latest date in the data it was frozen on, so freezing twice on the same data writes the
same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from spimpact.files import FileRefused, read_bytes_limited
from spimpact.params import ParamsError, PlanParams, SchemeParams

LOCK_SUFFIX = ".plan-lock.json"
MAX_LOCK_BYTES = 64 * 1024
PLAN_LABELS = {
    "primary_outcome": "primary outcome",
    "time_point": "time point",
    "estimand": "estimand",
    "comparison_design": "comparison design",
    "covariates": "covariates",
    "dropout_handling": "dropout handling",
    "multiplicity": "multiplicity policy",
}
#: Params that decide what the analyses estimate, recorded and compared with the plan.
ANALYSIS_SETTINGS = ("conf_level", "seed", "episodes", "measures", "comparison")
SETTINGS_KEY = "settings"


def plan_record(params: SchemeParams) -> dict | None:
    """The plan as recorded with a run: its items and the analysis settings, flattened.

    ``None`` when the scheme has no ``plan:``. Settings are ``{"dotted.name": value}``
    with JSON values (``comparison.washout_months_before``, ``measures.primary``...).
    """
    if params.plan is None:
        return None
    settings = params.model_dump(mode="json", include=set(ANALYSIS_SETTINGS))
    return {**plan_dict(params.plan), SETTINGS_KEY: dict(_flatten(settings))}


def _flatten(value, prefix: str = ""):
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _flatten(value[key], f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value


def plan_dict(plan: PlanParams | dict | None) -> dict | None:
    """The plan as a plain dict (``None`` without a plan)."""
    if plan is None:
        return None
    return plan.model_dump(mode="json") if isinstance(plan, PlanParams) else dict(plan)


def plan_sha256(plan: PlanParams | dict | None) -> str | None:
    """SHA-256 of the plan's canonical JSON (sorted keys); ``None`` without a plan.

    Examples
    --------
    >>> plan_sha256(None) is None
    True
    >>> plan_sha256({"estimand": "ATT"}) == plan_sha256({"estimand": "ATT"})
    True
    """
    content = plan_dict(plan)
    if content is None:
        return None
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lock_path(params_path: Path) -> Path:
    """Where the plan lock of ``params/<scheme_id>.yaml`` lives."""
    params_path = Path(params_path)
    return params_path.with_name(params_path.stem + LOCK_SUFFIX)


def read_lock(params_path: Path) -> dict | None:
    """The plan lock beside ``params_path``, or ``None`` when the plan was never frozen.

    Raises
    ------
    ParamsError
        When the lock exists but is not a regular, small JSON file with a ``plan``.
    """
    path = lock_path(params_path)
    if not path.exists() and not path.is_symlink():
        return None
    try:
        content = json.loads(read_bytes_limited(path, MAX_LOCK_BYTES, what="plan lock"))
    except FileRefused as error:
        raise ParamsError(str(error)) from None
    except ValueError:
        raise ParamsError(f"{path.name}: not valid JSON; re-run `spimpact plan freeze`") from None
    if not isinstance(content, dict) or not isinstance(content.get("plan"), dict):
        raise ParamsError(f"{path.name}: expected an object with a 'plan'")
    return content


def freeze_plan(params_path: Path, params: SchemeParams, *, data_date: str | None) -> Path:
    """Write the lock of the params' plan beside the params file and return its path.

    ``data_date`` (the latest date in the scheme's data) is recorded as the day the
    plan was frozen, so the lock does not depend on the clock.
    """
    if params.plan is None:
        raise ParamsError(
            f"{Path(params_path).name}: no 'plan:' to freeze; add the analysis plan "
            "(primary_outcome, time_point, estimand, comparison_design, covariates, "
            "dropout_handling, multiplicity) first"
        )
    record = plan_record(params)
    content = {
        "scheme_id": params.scheme_id,
        "frozen_on_data_to": data_date,
        "plan": record,
        "plan_sha256": plan_sha256(record),
    }
    path = lock_path(params_path)
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def plan_differences(before: dict | None, after: dict | None) -> list[tuple[str, str, str]]:
    """``(item, before, after)`` for each plan item, then each setting, that differs.

    A plan added or removed counts as every item changing. Settings are compared only
    when both sides recorded them (a lock frozen before settings were recorded has none).

    Examples
    --------
    >>> plan_differences({"estimand": "ATT", "covariates": ["age"]},
    ...                  {"estimand": "ATE", "covariates": ["age"]})
    [('estimand', 'ATT', 'ATE')]
    >>> plan_differences({"settings": {"comparison.washout_months_before": 3}},
    ...                  {"settings": {"comparison.washout_months_before": 4}})
    [('setting comparison.washout_months_before', '3', '4')]
    """
    before, after = before or {}, after or {}
    rows = []
    for key, label in PLAN_LABELS.items():
        old, new = before.get(key), after.get(key)
        if old != new:
            rows.append((label, _text(old), _text(new)))
    if SETTINGS_KEY in before and SETTINGS_KEY in after:
        old_settings, new_settings = before[SETTINGS_KEY], after[SETTINGS_KEY]
        for key in sorted(set(old_settings) | set(new_settings)):
            old, new = old_settings.get(key), new_settings.get(key)
            if old != new:
                rows.append((f"setting {key}", _text(old), _text(new)))
    return rows


def _text(value) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)
