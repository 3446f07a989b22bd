"""EQ-5D index for every health state under every value set, against the eq5d R package tables.

Reference tables (tests/reference/scoring/README.md) come from the eq5d R package
(fragla/eq5d, commit bfdc7ca), e.g. ``eq5d::eq5d(c(MO=2,SC=1,UA=2,PD=3,AD=2), version="5L",
type="VT", country="England")`` and ``type="DSU", country="UK", age=, sex=``.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from spimpact.scoring import dsu_age_band, eq5d3l_index, eq5d5l_index
from spimpact.scoring.eq5d import score_eq5d5l

REF = Path(__file__).parent.parent / "reference" / "scoring"
VALUES_5L = pd.read_csv(REF / "eq5d5l_values_all_states.csv", dtype={"state": str})
VALUES_3L = pd.read_csv(REF / "eq5d3l_uk_tto_all_states.csv", dtype={"state": str})
CROSSWALK = pd.read_csv(REF / "crosswalk_eq5d5l_to_3l_uk_vanhout2012.csv", dtype={"state": str})
DSU = pd.read_csv(REF / "dsu_eq5d5l_to_3l_uk.csv", dtype={"state": str})
# The DSU table's representative ages: any age inside each band maps to it.
BAND_AGES = {
    "18-34": [18, 34],
    "35-44": [35, 44],
    "45-54": [45, 54],
    "55-64": [55, 64],
    "65+": [65, 100],
}


def test_tables_cover_every_state():
    assert len(VALUES_5L) == len(CROSSWALK) == 5**5
    assert len(VALUES_3L) == 3**5
    assert len(DSU) == 5**5 * 5 * 2


@pytest.mark.parametrize("value_set", ["england_devlin2018", "uk_rowen2026"])
def test_5l_value_sets_for_all_3125_states(value_set):
    """Devlin et al. 2018 (England) and Rowen et al. 2026 (UK): 1 - sum of decrements."""
    index = eq5d5l_index(VALUES_5L["state"].to_numpy(), value_set=value_set)
    assert_array_equal(index, VALUES_5L[value_set].to_numpy())


def test_vanhout_crosswalk_for_all_3125_states():
    """van Hout et al. 2012 crosswalk (eq5d package table)."""
    index = eq5d5l_index(CROSSWALK["state"].to_numpy(), value_set="vanhout_crosswalk")
    assert_array_equal(index, CROSSWALK["crosswalk_eq5d3l_uk_vanhout2012"].to_numpy())


@pytest.mark.parametrize("sex", ["male", "female"])
@pytest.mark.parametrize("band", list(BAND_AGES))
def test_dsu_mapping_for_all_states_ages_and_sexes(band, sex):
    """NICE DSU (Hernández Alava et al. 2023), every state, by age in years and by band."""
    table = DSU[(DSU["age_band"] == band) & (DSU["sex"] == sex)]
    for age in [*BAND_AGES[band], band]:
        index = eq5d5l_index(table["state"].to_numpy(), value_set="dsu_5l_to_3l", age=age, sex=sex)
        assert_array_equal(index, table["mapped_eq5d3l_uk"].to_numpy())


def test_dsu_table_carries_the_devlin_index():
    """The DSU reference table's own 5L column is the Devlin index: a cross-check of both."""
    first = DSU[(DSU["age_band"] == "18-34") & (DSU["sex"] == "male")]
    index = eq5d5l_index(first["state"].to_numpy(), value_set="england_devlin2018")
    assert_array_equal(index, first["eq5d5l_england_devlin2018"].to_numpy())


def test_3l_uk_tto_for_all_243_states():
    """Dolan 1997 UK TTO value set, every 3L state."""
    assert_array_equal(
        eq5d3l_index(VALUES_3L["state"].to_numpy()), VALUES_3L["uk_dolan1997_tto"].to_numpy()
    )


@pytest.mark.parametrize(
    ("state", "england", "uk", "crosswalk", "dsu_female_45_54"),
    [
        ("11111", 1.000, 1.000, 1.000, 0.985),
        ("11112", 0.922, 0.959, 0.879, 0.889),
        ("21111", 0.942, 0.968, 0.877, 0.918),
        ("11211", 0.950, 0.951, 0.906, 0.920),
        ("21232", 0.730, 0.812, 0.654, 0.628),
        ("33333", 0.593, 0.604, 0.516, 0.426),
        ("12345", 0.322, 0.114, 0.063, 0.027),
        ("55555", -0.285, -0.567, -0.594, -0.521),
    ],
)
def test_spec_test_vectors(state, england, uk, crosswalk, dsu_female_45_54):
    """SPEC §1.5 test vectors (published minima: England -0.285, 3L UK -0.594)."""
    assert eq5d5l_index(state, value_set="england_devlin2018") == england
    assert eq5d5l_index(int(state), value_set="uk_rowen2026") == uk
    assert eq5d5l_index(state, value_set="vanhout_crosswalk") == crosswalk
    dsu = eq5d5l_index(state, value_set="dsu_5l_to_3l", age="45-54", sex="female")
    assert round(dsu, 3) == dsu_female_45_54


def test_states_as_a_table_of_dimensions():
    table = pd.DataFrame([[2, 1, 2, 3, 2], [1, 1, 1, 1, None]])
    index = eq5d5l_index(table, value_set="england_devlin2018")
    assert index[0] == 0.730
    assert np.isnan(index[1])


def test_dsu_per_state_ages_and_sexes():
    index = eq5d5l_index(
        ["11111", "11111"], value_set="dsu_5l_to_3l", age=[20, 70], sex=["male", "Female"]
    )
    expected = DSU[(DSU["state"] == "11111")].set_index(["age_band", "sex"])["mapped_eq5d3l_uk"]
    assert_allclose(index, [expected["18-34", "male"], expected["65+", "female"]], rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"states": "123456", "value_set": "england_devlin2018"}, "not 5 digits"),
        ({"states": "12360", "value_set": "england_devlin2018"}, "not 5 digits each from 1 to 5"),
        ({"states": "11111", "value_set": "england_2019"}, "unknown EQ-5D value set"),
        ({"states": "11111", "value_set": "dsu_5l_to_3l", "sex": "male"}, "needs an age"),
        ({"states": "11111", "value_set": "dsu_5l_to_3l", "age": 40}, "'male' or 'female'"),
        (
            {"states": "11111", "value_set": "dsu_5l_to_3l", "age": 17, "sex": "male"},
            "covers ages 18 and over",
        ),
        (
            {"states": "11111", "value_set": "dsu_5l_to_3l", "age": "16-24", "sex": "male"},
            "does not lie inside one NICE DSU mapping band",
        ),
        (
            {"states": "11111", "value_set": "dsu_5l_to_3l", "age": 40, "sex": "unknown"},
            "'male' or 'female'",
        ),
        (
            {
                "states": ["11111", "11111"],
                "value_set": "dsu_5l_to_3l",
                "age": [40, 50, 60],
                "sex": "male",
            },
            "3 values for 2 states",
        ),
    ],
)
def test_invalid_input_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        eq5d5l_index(kwargs.pop("states"), **kwargs)


def test_3l_rejects_level_4():
    with pytest.raises(ValueError, match="from 1 to 3"):
        eq5d3l_index("11114")


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (18, "18-34"),
        (34.9, "18-34"),
        (35, "35-44"),
        (64, "55-64"),
        (65, "65+"),
        (104, "65+"),
        ("25-34", "18-34"),
        ("65-74", "65+"),
        ("75+", "65+"),
        ("45-54", "45-54"),
    ],
)
def test_dsu_age_band_edges(age, band):
    assert dsu_age_band(age).tolist() == [band]


def test_score_eq5d5l_lists_rows_without_age_or_sex():
    items = pd.DataFrame(
        [[1, 1, 1, 1, 1, 90], [2, 2, 2, 2, 2, None], [1, 2, 3, 4, 5, 40]],
        columns=[f"item_{i}" for i in range(1, 7)],
        index=[10, 11, 12],
    ).astype("Int64")
    scores, unscored = score_eq5d5l(
        items,
        value_set="dsu_5l_to_3l",
        age=pd.Series([50, None, 40], index=items.index),
        sex=pd.Series(["female", "male", "other"], index=items.index),
    )
    index = scores[scores["score"] == "eq5d5l_index"]
    assert index["index"].tolist() == [10]
    assert round(index["value"].item(), 3) == 0.985
    assert scores.loc[scores["score"] == "eq5d_vas", "value"].tolist() == [90, 40]
    assert unscored["index"].tolist() == [11, 12]
    assert unscored["column"].tolist() == ["age", "sex"]
