"""Every result in spimpact.models is a frozen dataclass on EstimatorResult with one tidy.

The classes are found by walking the package (a class named ``*Result`` or with a
``tidy`` method), so a new estimator is checked as soon as it exists; each needs a
builder below that fits it on small simulated data at a given ``conf_level``.
"""

import dataclasses
import importlib
import inspect
import pkgutil

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import spimpact.models
from spimpact.models.count import fit_poisson
from spimpact.models.did import fit_did_2x2, fit_event_study, fit_stacked_did, fit_twfe
from spimpact.models.did_staggered import fit_staggered_did
from spimpact.models.imputation import fit_mice, impute_mice
from spimpact.models.inequality import fit_sii
from spimpact.models.ipw import fit_ipw
from spimpact.models.ipw_sequential import fit_sequential_ipw
from spimpact.models.matching import match_nearest
from spimpact.models.meta import fit_random_effects
from spimpact.models.mixed import fit_mixed
from spimpact.models.mmrm import fit_mmrm
from spimpact.models.paired import fit_mean, fit_welch
from spimpact.models.result import EstimatorResult, ExponentiableResult
from spimpact.models.spc import xmr
from spimpact.models.survival import KM_COLUMNS, fit_cox, fit_kaplan_meier, fit_logrank
from spimpact.models.tidy import MIXED_TIDY_COLUMNS, TIDY_COLUMNS
from spimpact.models.tipping_point import fit_tipping_point


def _result_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.iter_modules(spimpact.models.__path__):
        module = importlib.import_module(f"spimpact.models.{info.name}")
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and module.__name__ != "spimpact.models.result"
                and (name.endswith("Result") or hasattr(value, "tidy"))
            ):
                found[name] = value
    return found


RESULT_CLASSES = _result_classes()


def _panel(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": np.repeat(np.arange(120), 6), "t": np.tile(np.arange(1, 7), 120)})
    frame["g"] = np.select([frame.id < 40, frame.id < 80], [3, 5], 0)
    frame["treated_now"] = ((frame.g > 0) & (frame.t >= frame.g)).astype(float)
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = 0.2 * frame.t + frame.treated_now + 0.5 * frame.x + rng.normal(0, 1, len(frame))
    frame["treated"] = (frame.g > 0).astype(int)
    frame["post"] = (frame.t >= 4).astype(int)
    return frame


def _people(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    frame = pd.DataFrame({"age": rng.normal(50, 10, n), "arm": rng.choice(["a", "b"], n)})
    hazard = np.exp(0.03 * (frame.age - 50) + 0.5 * (frame.arm == "b"))
    time = rng.exponential(1 / hazard)
    censor = rng.exponential(1.5, n)
    frame["days"] = np.round(np.minimum(time, censor) * 100) + 1
    frame["event"] = (time <= censor).astype(int)
    frame["treated"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-(frame.age - 50) / 10))).astype(int)
    frame["visits"] = rng.poisson(np.exp(0.5 + 0.02 * (frame.age - 50)))
    return frame


def _deciles() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "decile": range(1, 11),
            "pop": [1000] * 10,
            "value": np.linspace(70, 80, 10),
            "se": [1.5] * 10,
        }
    )


def _mixed_panel() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(200), 3)
    frame = pd.DataFrame({"client_id": ids, "timepoint": np.tile([0, 1, 2], 200)})
    frame["score"] = frame.timepoint + rng.normal(size=200)[ids] + rng.normal(size=600)
    return frame


def _incomplete() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=200)})
    frame["y"] = 1 + frame.x + rng.normal(size=200)
    frame.loc[rng.random(200) < 1 / (1 + np.exp(-frame.x)), "y"] = np.nan
    return frame


def _two_visits() -> pd.DataFrame:
    """``_incomplete()`` as visit 1 after a visit 0 at which everyone was seen."""
    later = _incomplete().assign(id=lambda d: d.index, t=1, recorded=lambda d: d.y)
    return pd.concat([later.assign(t=0, recorded=0.0, y=np.nan), later], ignore_index=True)


def _ols(data: pd.DataFrame) -> pd.DataFrame:
    fit = smf.ols("y ~ x", data).fit()
    return pd.DataFrame({"term": fit.params.index, "estimate": fit.params, "std_error": fit.bse})


def _mean_y(data: pd.DataFrame) -> pd.DataFrame:
    std_error = data.y.std() / np.sqrt(len(data))
    return pd.DataFrame({"term": ["mean"], "estimate": [data.y.mean()], "std_error": [std_error]})


BUILDERS = {
    "MixedResult": lambda level: fit_mixed(
        "score ~ C(timepoint)", _mixed_panel(), group="client_id", conf_level=level
    ),
    "DidResult": lambda level: fit_did_2x2(
        _panel(), outcome="y", treated="treated", post="post", conf_level=level
    ),
    "TwfeResult": lambda level: fit_twfe(
        "y ~ treated_now + x", _panel(), unit="id", time="t", cluster="id", conf_level=level
    ),
    "EventStudyResult": lambda level: fit_event_study(
        _panel(),
        outcome="y",
        unit="id",
        time="t",
        first_treated="g",
        window=(-3, 2),
        conf_level=level,
    ),  # fmt: skip
    "StaggeredDidResult": lambda level: fit_staggered_did(
        _panel(), outcome="y", unit="id", time="t", first_treated="g", conf_level=level
    ),
    "AggregateResult": lambda level: fit_staggered_did(
        _panel(), outcome="y", unit="id", time="t", first_treated="g", conf_level=level
    ).aggregate("dynamic"),
    "StackedDidResult": lambda level: fit_stacked_did(
        _panel(),
        outcome="y",
        unit="id",
        time="t",
        first_treated="g",
        kappa_pre=2,
        kappa_post=1,
        conf_level=level,
    ),  # fmt: skip
    "StackedAggregateResult": lambda level: fit_stacked_did(
        _panel(),
        outcome="y",
        unit="id",
        time="t",
        first_treated="g",
        kappa_pre=2,
        kappa_post=1,
        se="CR2",
        conf_level=level,
    ).aggregate("simple"),  # fmt: skip
    "PoissonResult": lambda level: fit_poisson("visits ~ age", _people(), conf_level=level),
    "MatchResult": lambda level: match_nearest(
        _people(), treatment="treated", covariates=["age"], conf_level=level
    ),
    "MetaResult": lambda level: fit_random_effects(
        [0.1, 0.3, 0.5, 0.2], [0.1, 0.1, 0.2, 0.15], conf_level=level
    ),
    "KaplanMeierResult": lambda level: fit_kaplan_meier(
        _people(), duration="days", event="event", group="arm", conf_level=level
    ),
    "LogRankResult": lambda level: fit_logrank(
        _people(), duration="days", event="event", group="arm"
    ),
    "CoxResult": lambda level: fit_cox(
        _people(),
        duration="days",
        event="event",
        formula="age + arm",
        conf_level=level,
        check_proportional_hazards=False,
    ),  # fmt: skip
    "SiiResult": lambda level: fit_sii(
        _deciles(),
        quantile="decile",
        population="pop",
        value="value",
        std_error="se",
        repetitions=2000,
        seed=1,
        conf_level=level,
    ),  # fmt: skip
    "XmrResult": lambda level: xmr(np.random.default_rng(4).normal(10, 2, 24), conf_level=level),
    "MeanResult": lambda level: fit_mean([1.0, 2.5, 3.0, 4.5, 2.0], conf_level=level),
    "IpwResult": lambda level: fit_ipw(
        _incomplete(), outcome_formula="y ~ 1", censoring_formula="x", conf_level=level
    ),
    "MiResult": lambda level: fit_mice(
        _incomplete(), _ols, m=3, max_iter=3, seed=1, conf_level=level
    ),
    "TippingPointResult": lambda level: fit_tipping_point(
        impute_mice(_incomplete(), m=3, max_iter=2, seed=1),
        _mean_y,
        column="y",
        term="mean",
        deltas=[-2.0, 0.0],
        conf_level=level,
    ),
    "SequentialIpwResult": lambda level: fit_sequential_ipw(
        _two_visits(),
        subject="id",
        visit="t",
        outcome="recorded",
        outcome_formula="y ~ 1",
        dropout_formula="x",
        conf_level=level,
    ),
    "MmrmResult": lambda level: fit_mmrm(
        "score ~ C(timepoint)",
        _mixed_panel(),
        subject="client_id",
        visit="timepoint",
        conf_level=level,
    ),
    "WelchResult": lambda level: fit_welch([5.0, 6.0, 7.5], [1.0, 2.0, 3.0, 4.5], conf_level=level),
}

# broom's layout for results that are not coefficient tables
EXPECTED_COLUMNS = {
    "MixedResult": MIXED_TIDY_COLUMNS,
    "MmrmResult": (*MIXED_TIDY_COLUMNS, "df"),  # plus the degrees of freedom
    "KaplanMeierResult": KM_COLUMNS,  # broom's tidy.survfit
    "LogRankResult": ("statistic", "df", "p_value", "method"),  # broom's glance.survdiff
    "TippingPointResult": ("delta", *TIDY_COLUMNS),  # one row per shift delta
}
NO_INTERVALS = {"LogRankResult"}


def _each_class():
    return [pytest.param(name, id=name, marks=()) for name in sorted(RESULT_CLASSES)]


def _each_built():
    return [pytest.param(name, id=name) for name in sorted(BUILDERS)]


def test_the_walk_finds_the_estimators():
    assert {"MixedResult", "DidResult", "CoxResult", "XmrResult", "MeanResult"} <= set(
        RESULT_CLASSES
    )


@pytest.mark.parametrize("name", _each_class())
def test_result_is_a_frozen_dataclass_on_the_base(name):
    cls = RESULT_CLASSES[name]
    assert issubclass(cls, EstimatorResult)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert "conf_level" in {f.name for f in dataclasses.fields(cls)}
    parameters = list(inspect.signature(cls.tidy).parameters.values())[1:]
    assert parameters[0].name == "conf_level" and parameters[0].default is None
    others = {p.name: p for p in parameters[1:]}
    if issubclass(cls, ExponentiableResult):
        assert set(others) == {"exponentiate"}
        assert others["exponentiate"].kind is inspect.Parameter.KEYWORD_ONLY
    else:
        assert not others, f"{name}.tidy takes more than conf_level: {list(others)}"
    assert cls._tidy is not EstimatorResult._tidy, f"{name} does not implement _tidy"
    assert cls.summary is not EstimatorResult.summary, f"{name} does not implement summary"


@pytest.mark.parametrize("name", _each_class())
def test_every_result_has_a_builder_here(name):
    assert name in BUILDERS, f"add a builder for {name} to BUILDERS"


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(name: str, level: float = 0.95):
        if (name, level) not in cache:
            cache[name, level] = BUILDERS[name](level)
        return cache[name, level]

    return get


@pytest.mark.parametrize("name", _each_built())
def test_tidy_has_broom_columns_at_the_fitted_level(name, fitted):
    result = fitted(name, 0.9)
    assert result.conf_level == (0.95 if name in NO_INTERVALS else 0.9)
    table = result.tidy()
    expected = EXPECTED_COLUMNS.get(name, TIDY_COLUMNS)
    assert tuple(table.columns)[: len(expected)] == tuple(expected)
    pd.testing.assert_frame_equal(table, result.tidy(conf_level=0.9))
    assert len(table) > 0
    text = result.summary()
    assert isinstance(text, str) and text
    assert result._repr_html_().startswith("<pre>")


@pytest.mark.parametrize("name", _each_built())
def test_intervals_narrow_with_the_level(name, fitted):
    cls = RESULT_CLASSES[name]
    if name in NO_INTERVALS:
        pd.testing.assert_frame_equal(fitted(name).tidy(0.9), fitted(name).tidy(0.99))
        return
    if cls.intervals_fixed_at_fit:
        with pytest.raises(ValueError, match="computed at fit time"):
            fitted(name).tidy(0.9)
        narrow, wide = fitted(name, 0.9).tidy(), fitted(name, 0.99).tidy()
    else:
        narrow, wide = fitted(name).tidy(0.9), fitted(name).tidy(0.99)
    narrow_width = (narrow["conf_high"] - narrow["conf_low"]).to_numpy(float)
    wide_width = (wide["conf_high"] - wide["conf_low"]).to_numpy(float)
    finite = np.isfinite(narrow_width) & np.isfinite(wide_width) & (wide_width > 0)
    assert finite.any()
    assert (narrow_width[finite] < wide_width[finite]).all()


@pytest.mark.parametrize("name", ["PoissonResult", "CoxResult"])
def test_exponentiate_gives_ratios_at_any_level(name, fitted):
    result = fitted(name)
    log_scale = result.tidy(0.9)
    ratios = result.tidy(0.9, exponentiate=True)
    np.testing.assert_allclose(ratios["estimate"], np.exp(log_scale["estimate"]), rtol=1e-12)
    np.testing.assert_allclose(ratios["conf_low"], np.exp(log_scale["conf_low"]), rtol=1e-12)


def test_a_level_outside_zero_one_is_refused(fitted):
    with pytest.raises(ValueError, match="between 0 and 1"):
        fitted("DidResult").tidy(95)


def test_a_table_without_terms_says_so(fitted):
    with pytest.raises(TypeError, match="no 'term' column"):
        fitted("KaplanMeierResult").coef()
