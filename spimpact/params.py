"""Scheme parameters: one YAML file per scheme, validated before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

EQ5D_VALUE_SETS = (
    "dsu_5l_to_3l",
    "england_devlin2018",
    "uk_rowen2026",
    "vanhout_crosswalk",
)


@dataclass(frozen=True)
class DisclosureRule:
    """Thresholds of the disclosure-control rule (set per scheme in params).

    Used by :mod:`spimpact.publish.disclosure`; kept here, beside the params that set
    it, so that configuration never imports the publishing layer.

    Attributes
    ----------
    threshold
        Counts from 1 to ``threshold`` are suppressed.
    rounding
        Other counts are rounded to the nearest multiple of ``rounding``.
    min_n_summary
        Fewest people behind a published mean, median or percentage.
    one_decimal_denominator
        Smallest rounded denominator for a percentage with one decimal place.
    """

    threshold: int = 7
    rounding: int = 5
    min_n_summary: int = 8
    one_decimal_denominator: int = 4000

    def __post_init__(self):
        if self.threshold < 0 or self.rounding < 1 or self.min_n_summary < 1:
            raise ValueError(f"invalid disclosure rule {self}")

    @classmethod
    def named(cls, name: str) -> DisclosureRule:
        """Return a rule by name: ``nhsd_2018`` (the default) or ``legacy_1to5_secondary``.

        ``legacy_1to5_secondary`` suppresses 1-5 without rounding; use it with
        ``disclose_table(..., totals=...)`` for the secondary step (SPEC §3.2).
        """
        rules = {
            "nhsd_2018": cls(),
            "legacy_1to5_secondary": cls(threshold=5, rounding=1, min_n_summary=6),
        }
        if name not in rules:
            raise ValueError(f"unknown disclosure rule {name!r}; choose from {sorted(rules)}")
        return rules[name]


class ParamsError(ValueError):
    """A params file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleVariant(_Strict):
    """An explicit, visible mapping of a modified instrument back to its standard coding.

    Item responses recorded on ``observed_min``-``observed_max`` are mapped linearly
    to the standard range and rounded to the nearest whole response.
    """

    observed_min: int
    observed_max: int
    reason: str = Field(min_length=1)


class ChangeThresholds(_Strict):
    """Meaningful-change thresholds for one score, with their source."""

    meaningful: float = Field(gt=0)
    reliable: float | None = Field(default=None, gt=0)
    source: str


class MeasuresParams(_Strict):
    """Which measures are primary, time point labels, value set, variants and thresholds."""

    primary: str = "swemwbs"
    timepoints: dict[int, str] = {0: "Baseline", 1: "3 months", 2: "6 months"}
    eq5d_value_set: Literal[EQ5D_VALUE_SETS] = "dsu_5l_to_3l"  # type: ignore[valid-type]
    swemwbs_max_missing_items: Literal[0, 1] = 0
    variants: dict[str, ScaleVariant] = {}
    thresholds: dict[str, ChangeThresholds] = {}

    @field_validator("timepoints")
    @classmethod
    def _baseline_first(cls, value):
        if 0 not in value:
            raise ValueError("timepoints must include 0 (baseline)")
        return value


class ComparisonParams(_Strict):
    """The matched comparison group for GP attendance."""

    enabled: bool = True
    ratio: int = Field(default=1, ge=1, le=10)
    caliper: float | None = Field(default=0.2, gt=0)
    exact: list[str] = ["sex"]
    covariates: list[str] = ["age", "imd_decile", "ethnic_group", "pre_attendance"]
    window_months: int = Field(default=12, ge=3, le=36)
    # Months before referral in which attendance already rises towards the referral peak;
    # the staggered estimator takes its baseline before them (R did's `anticipation`).
    anticipation_months: int = Field(default=3, ge=0, le=11)


class DisclosureParams(_Strict):
    """Thresholds of statistical disclosure control (SPEC §3.2)."""

    threshold: int = Field(default=7, ge=0)
    rounding: int = Field(default=5, ge=1)
    min_n_summary: int = Field(default=8, ge=1)

    def rule(self) -> DisclosureRule:
        """The rule object used by ``spimpact.publish.disclosure``."""
        return DisclosureRule(
            threshold=self.threshold, rounding=self.rounding, min_n_summary=self.min_n_summary
        )


class CostParams(_Strict):
    """Unit cost of a GP appointment, with its price year and source."""

    gp_appointment_gbp: float = Field(default=48.0, gt=0)
    price_year: str = "2024/25"
    source: str = (
        "PSSRU Unit Costs of Health and Social Care 2025, Table 9.4.2: GP surgery "
        "consultation lasting 10 minutes, including qualification costs"
    )


class SchemeParams(_Strict):
    """Everything one scheme's report needs besides its data."""

    scheme_id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    data_dir: Path
    seed: int = 20261130
    conf_level: float = Field(default=0.95, gt=0.5, lt=1)
    imd_edition: Literal[2019, 2025] = 2019
    pseudonym_key_env: str = "SPIMPACT_PSEUDONYM_KEY"
    # Only for synthetic example data: a real scheme's key lives in the environment.
    pseudonym_key: SecretStr | None = None
    boundaries: Path | None = None
    # The scheme's mapping file (docs/mapping.md): its exports in data_dir are read
    # through it. Keep it beside the params, outside params/*.yaml (the runner reads
    # every such file as params), e.g. params/mappings/<scheme_id>.yaml.
    mapping: Path | None = None
    # Which referral episode of each client the analyses use: the first or the last.
    episodes: Literal["first", "last"] = "first"
    area_column: str = "lsoa_code"
    measures: MeasuresParams = MeasuresParams()
    comparison: ComparisonParams = ComparisonParams()
    disclosure: DisclosureParams = DisclosureParams()
    costs: CostParams = CostParams()


def load_params(path: str | Path) -> SchemeParams:
    """Read and validate ``params/<scheme_id>.yaml``.

    Relative paths in the file are taken from the project root (the folder that
    holds ``params/``). Unknown or misspelt keys are rejected.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ParamsError(f"{path}: cannot read params file: {error}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of keys to values")
    try:
        params = SchemeParams.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"key '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}"
            + (f" (got {e['input']!r})" if e["type"] != "missing" else "")
            for e in error.errors()
        )
        raise ParamsError(f"{path}: {problems}") from None
    root = path.resolve().parent.parent
    updates = {"data_dir": _resolve(root, params.data_dir)}
    for name in ("boundaries", "mapping"):
        if getattr(params, name) is not None:
            updates[name] = _resolve(root, getattr(params, name))
    return params.model_copy(update=updates)


def _resolve(root: Path, value: Path) -> Path:
    return value if value.is_absolute() else (root / value)
