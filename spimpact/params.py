"""Scheme parameters: one YAML file per scheme, validated before anything runs."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from spimpact.contract import MEASURES as INSTRUMENT_NAMES
from spimpact.files import MAX_PARAMS_BYTES, FileRefused, read_bytes_limited
from spimpact.paths import SYNTHETIC_MARKER

# A params file needs no YAML aliases; a few are allowed, many are refused (an alias
# bomb expands exponentially in anything that walks the document).
MAX_YAML_ALIASES = 16
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_KEY_SHAPE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,39}")

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


SCHEME_ID_PATTERN = r"^[a-z0-9_]+$"


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


MMRM_COVARIANCES = ("us", "toeph", "toep", "ar1h", "ar1", "csh", "cs")


class ChangeModelParams(_Strict):
    """The mixed model for repeated measures (MMRM) behind wellbeing change.

    ``covariance_order`` is tried in turn until a fit converges (unstructured first,
    when the data support it); ``df`` is the small-sample degrees-of-freedom method of
    the t intervals.
    """

    covariance_order: tuple[Literal[MMRM_COVARIANCES], ...] = (  # type: ignore[valid-type]
        "us",
        "toeph",
        "ar1h",
        "cs",
    )
    df: Literal["kenward_roger", "satterthwaite", "residual"] = "kenward_roger"
    # Fewest people with a follow-up per covariate parameter before covariates join the
    # model (a small scheme is not spread over sex x age x IMD levels).
    people_per_covariate_parameter: int = Field(default=10, ge=1)

    @field_validator("covariance_order")
    @classmethod
    def _not_empty(cls, value):
        if not value:
            raise ValueError("covariance_order needs at least one covariance structure")
        return value


class MissingDataParams(_Strict):
    """Sensitivity of the change to missing follow-ups (attrition section)."""

    n_imputations: int = Field(default=20, ge=2, le=500)
    # Quantiles at which the sequential IPW weights are truncated for the reported
    # truncation sensitivity (the primary estimate uses the untruncated weights).
    ipw_truncate: tuple[float, float] = (0.01, 0.99)

    @field_validator("ipw_truncate")
    @classmethod
    def _quantiles(cls, value):
        if not 0 <= value[0] < value[1] <= 1:
            raise ValueError("ipw_truncate must be (lower, upper) with 0 <= lower < upper <= 1")
        return value


class MeasuresParams(_Strict):
    """Which measures are primary, time point labels, value set, variants and thresholds."""

    primary: str = "swemwbs"
    timepoints: dict[int, str] = {0: "Baseline", 1: "3 months", 2: "6 months"}
    eq5d_value_set: Literal[EQ5D_VALUE_SETS] = "dsu_5l_to_3l"  # type: ignore[valid-type]
    swemwbs_max_missing_items: Literal[0, 1] = 0
    variants: dict[str, ScaleVariant] = {}
    thresholds: dict[str, ChangeThresholds] = {}
    change_model: ChangeModelParams = ChangeModelParams()
    missing_data: MissingDataParams = MissingDataParams()

    @field_validator("timepoints")
    @classmethod
    def _baseline_first(cls, value):
        if 0 not in value:
            raise ValueError("timepoints must include 0 (baseline)")
        return value


class ComparisonParams(_Strict):
    """The matched comparison group and the design of the GP-attendance analysis.

    The defaults make the primary design robust to the transient rise in attendance
    around referral without configuration (docs/methods.md, "GP attendance"): months
    ``-washout_months_before`` to ``washout_months_after - 1`` are left out, so the
    baseline is months ``-window_months`` to ``-washout_months_before - 1`` and the
    post-period months ``washout_months_after`` to ``window_months - 1``.
    """

    enabled: bool = True
    ratio: int = Field(default=1, ge=1, le=10)
    # Propensity-score caliper (SD of the score); none by default: within strata of one
    # practice, sex and index month a caliper leaves clients unmatched for want of a close
    # score, shifting the estimate towards clients who attend less.
    caliper: float | None = Field(default=None, gt=0)
    exact: list[str] = ["sex"]
    covariates: list[str] = ["age", "imd_decile", "ethnic_group", "pre_attendance"]
    window_months: int = Field(default=12, ge=3, le=36)
    # Months before referral in which attendance may already rise towards referral, and
    # months from referral on in which it may still be falling back or the scheme may
    # only be starting: left out of the baseline and the post-period.
    washout_months_before: int = Field(default=3, ge=0, le=35)
    washout_months_after: int = Field(default=3, ge=0, le=35)
    # Comparison patients share the client's calendar index month; clients without one
    # there may take one indexed up to this many months away (0: the same month only).
    index_month_caliper: int = Field(default=1, ge=0, le=6)
    # Match within the client's GP practice when practices are recorded.
    match_within_practice: bool = True
    # Practices needed for CR2 standard errors clustered by practice; with fewer the
    # wild cluster bootstrap is used (MacKinnon, Nielsen & Webb 2023).
    min_practices_for_cr2: int = Field(default=40, ge=2)
    bootstrap_draws: int = Field(default=9999, ge=99)
    placebo_months_earlier: int = Field(default=12, ge=1, le=36)

    @model_validator(mode="after")
    def _washout_leaves_months(self):
        window = self.window_months
        if self.washout_months_before > window - 1 or self.washout_months_after > window - 1:
            raise ValueError(
                f"washout_months_before ({self.washout_months_before}) and "
                f"washout_months_after ({self.washout_months_after}) must each be at most "
                f"window_months - 1 ({window - 1}), so that a baseline and a post-period remain"
            )
        return self


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

    scheme_id: str = Field(pattern=SCHEME_ID_PATTERN, max_length=64)
    title: str = Field(min_length=1, max_length=200)
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

    Errors name the file (never its folder), the line and the key, and the rule
    broken; they never repeat a value or a line of the file, which could hold the
    pseudonymisation key. The file must be a regular file of at most
    ``MAX_PARAMS_BYTES`` and use at most ``MAX_YAML_ALIASES`` YAML aliases.
    """
    path = Path(path)
    name = path.name
    try:
        data = read_bytes_limited(path, MAX_PARAMS_BYTES, what="params file", follow_symlinks=True)
    except FileRefused as error:
        raise ParamsError(str(error)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ParamsError(f"{name} line {line}: not UTF-8 text") from None
    raw, lines = _parse_yaml(text, name)
    if not isinstance(raw, dict):
        raise ParamsError(f"{name}: expected a mapping of keys to values")
    try:
        params = SchemeParams.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            _describe_error(e, lines) for e in error.errors(include_input=False, include_url=False)
        )
        raise ParamsError(f"{name}: {_redact(problems, raw)}") from None
    root = path.resolve().parent.parent
    updates = {"data_dir": _resolve(root, params.data_dir)}
    for name in ("boundaries", "mapping"):
        if getattr(params, name) is not None:
            updates[name] = _resolve(root, getattr(params, name))
    return params.model_copy(update=updates)


def is_synthetic_folder(folder: str | Path) -> bool:
    """Whether ``folder`` was written by the synthetic generator (``spimpact example-data``)."""
    marker = Path(folder) / SYNTHETIC_MARKER
    try:
        content = json.loads(read_bytes_limited(marker, 4096, what="synthetic marker"))
    except (FileRefused, ValueError):
        return False
    return isinstance(content, dict) and content.get("written_by") == "spimpact example-data"


def check_key_allowed(params: SchemeParams) -> None:
    """Refuse a pseudonymisation key kept in params unless the data are synthetic.

    A key in a params file travels with the file (and its published SHA-256 would let
    anyone check a guessed key offline), so it is allowed only for data the synthetic
    generator wrote, which it marks with ``SYNTHETIC_MARKER``. Real schemes keep the
    key in the environment variable named by ``pseudonym_key_env``.

    Raises
    ------
    ParamsError
        When params hold a key and ``data_dir`` is not a synthetic example folder.
    """
    if params.pseudonym_key is not None and not is_synthetic_folder(params.data_dir):
        raise ParamsError(
            "params key 'pseudonym_key': a key in the params file is allowed only for "
            "synthetic example data (a folder written by `spimpact example-data`); keep a real "
            "scheme's key in the environment variable named by 'pseudonym_key_env' "
            "(SPIMPACT_PSEUDONYM_KEY by default)"
        )


def _parse_yaml(text: str, name: str):
    """The YAML document and the line of each key path; errors never quote the file."""
    try:
        n_aliases = sum(
            isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)
        )
        if n_aliases > MAX_YAML_ALIASES:
            raise ParamsError(
                f"{name}: uses {n_aliases} YAML aliases (at most {MAX_YAML_ALIASES} are allowed)"
            )
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = _QUOTED.sub("…", str(error.problem or "syntax error"))
        raise ParamsError(
            f"{name}{where}: not valid YAML ({problem}); the line is not repeated here in "
            "case it holds a secret"
        ) from None
    except (yaml.YAMLError, RecursionError):
        raise ParamsError(f"{name}: not valid YAML") from None
    lines: dict[tuple, int] = {}
    _key_lines(node, (), lines)
    return raw, lines


def _key_lines(node, prefix: tuple, lines: dict) -> None:
    if isinstance(node, yaml.MappingNode) and len(prefix) < 4:
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                path = (*prefix, key.value)
                lines.setdefault(path, key.start_mark.line + 1)
                _key_lines(value, path, lines)


def _known_names() -> frozenset[str]:
    names = set(EQ5D_VALUE_SETS) | set(INSTRUMENT_NAMES)
    models = [SchemeParams]
    while models:
        model = models.pop()
        for field_name, info in model.model_fields.items():
            names.add(field_name)
            annotation = info.annotation
            for candidate in (annotation, *getattr(annotation, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    models.append(candidate)
    return frozenset(names)


def _describe_error(error: dict, lines: dict) -> str:
    """``line N, key 'a.b': rule broken`` without the value received."""
    known = _known_names()
    loc = error["loc"]
    parts = [str(p) if isinstance(p, int) or p in known or p == "[key]" else "…" for p in loc]
    key = ".".join(parts)
    line = next(
        (lines[tuple(loc[:k])] for k in range(len(loc), 0, -1) if tuple(loc[:k]) in lines), None
    )
    where = f"line {line}, " if line else ""
    if error["type"] == "extra_forbidden":
        typed = str(loc[-1])
        close = difflib.get_close_matches(typed, sorted(known), n=1, cutoff=0.75)
        if close:
            shown = ".".join([*parts[:-1], typed]) if _KEY_SHAPE.fullmatch(typed) else key
            return f"{where}key '{shown}' is not allowed (did you mean '{close[0]}'?)"
        return f"{where}unknown key (its name is not repeated here)"
    return f"{where}key '{key}': {error['msg']}"


def _redact(message: str, raw) -> str:
    """Replace any value of the params file that still appears in ``message`` by '…'."""
    known = _known_names()
    values = set()
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif item is not None and not isinstance(item, bool):
            text = str(item)
            # a misspelt key name is shown on purpose ("did you mean ...")
            misspelt = difflib.get_close_matches(text, sorted(known), n=1, cutoff=0.75)
            if len(text) >= 4 and text not in known and not misspelt:
                values.add(text)
    for value in sorted(values, key=len, reverse=True):
        message = message.replace(value, "…")
    return message


def _resolve(root: Path, value: Path) -> Path:
    return value if value.is_absolute() else (root / value)
