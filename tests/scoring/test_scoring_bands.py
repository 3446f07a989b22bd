"""ONS4, WHO-5, MYCaW and loneliness: band edges and direction."""

import numpy as np
import pandas as pd
import pytest

from spimpact.scoring import SCORES, ons4_band, who5_band
from spimpact.scoring.loneliness import score_ons_loneliness, score_ucla3
from spimpact.scoring.mycaw import score_mycaw
from spimpact.scoring.ons4 import score_ons4
from spimpact.scoring.who5 import score_who5

POSITIVE = ["low"] * 5 + ["medium"] * 2 + ["high"] * 2 + ["very high"] * 2
ANXIETY = ["very low"] * 2 + ["low"] * 2 + ["medium"] * 2 + ["high"] * 5


@pytest.mark.parametrize(
    ("score", "bands"),
    [
        ("ons4_life_satisfaction", POSITIVE),
        ("ons4_worthwhile", POSITIVE),
        ("ons4_happiness", POSITIVE),
        ("ons4_anxiety", ANXIETY),
    ],
)
def test_ons4_bands_for_every_response(score, bands):
    """ONS FOI bands: 0-4 low, 5-6 medium, 7-8 high, 9-10 very high; anxiety 0-1/2-3/4-5/6-10."""
    assert ons4_band(list(range(11)), score=score) == bands


@pytest.mark.parametrize("value", [-1, 11, 4.5])
def test_ons4_band_rejects_values_off_the_scale(value):
    with pytest.raises(ValueError, match="not a whole number from 0 to 10"):
        ons4_band([value], score="ons4_happiness")


def test_ons4_items_are_scored_separately_never_summed():
    items = pd.DataFrame(
        {"item_1": [4, 9], "item_2": [5, None], "item_3": [7, 0], "item_4": [6, 5]}
    ).astype("Int64")
    scored = score_ons4(items)
    assert set(scored["score"]) == {
        "ons4_life_satisfaction",
        "ons4_worthwhile",
        "ons4_happiness",
        "ons4_anxiety",
    }
    assert len(scored) == 7  # the blank worthwhile answer gives no row
    anxiety = scored[scored["score"] == "ons4_anxiety"]
    assert anxiety["band"].tolist() == ["high", "medium"]
    assert anxiety["poor_band"].tolist() == [True, False]
    life = scored[scored["score"] == "ons4_life_satisfaction"]
    assert life["poor_band"].tolist() == [True, False]


@pytest.mark.parametrize(
    ("raw", "pct", "band", "poor"),
    [
        (0, 0, "likely depression", True),
        (7, 28, "likely depression", True),
        (8, 32, "poor wellbeing", True),
        (12, 48, "poor wellbeing", True),
        (13, 52, "above 50", False),
        (25, 100, "above 50", False),
    ],
)
def test_who5_band_edges(raw, pct, band, poor):
    """Topp et al. 2015: <= 50 poor wellbeing, <= 28 likely depression; raw < 13 <=> pct <= 50."""
    items = [raw // 5 + (1 if i < raw % 5 else 0) for i in range(5)]
    scored = score_who5(pd.DataFrame([items], columns=[f"item_{i}" for i in range(1, 6)]))
    assert scored["value"].tolist() == [raw, pct]
    assert scored["band"].tolist() == [band, band]
    assert scored["poor_band"].tolist() == [poor, poor]


def test_who5_band_exact_cutoffs():
    assert who5_band([28, 29, 50, 51, np.nan]) == [
        "likely depression",
        "poor wellbeing",
        "poor wellbeing",
        "above 50",
        None,
    ]


def test_mycaw_higher_is_worse_and_concern_2_optional():
    items = pd.DataFrame({"item_1": [5, 2], "item_2": [None, 3], "item_3": [4, 1]}).astype("Int64")
    scored = score_mycaw(items)
    assert scored["score"].tolist() == [
        "mycaw_concern_1",
        "mycaw_concern_1",
        "mycaw_concern_2",
        "mycaw_wellbeing",
        "mycaw_wellbeing",
    ]
    assert all(not SCORES[name].higher_is_better for name in set(scored["score"]))


@pytest.mark.parametrize(
    ("answers", "total", "lonely"),
    [([1, 1, 1], 3, False), ([2, 2, 1], 5, False), ([2, 2, 2], 6, True), ([3, 3, 3], 9, True)],
)
def test_ucla3_total_and_lonely_cutoff(answers, total, lonely):
    """UCLA-3 (Hughes 2004): total 3-9, lonely >= 6 (SPEC §1.7)."""
    scored = score_ucla3(pd.DataFrame([answers], columns=["item_1", "item_2", "item_3"]))
    assert scored["value"].item() == total
    assert bool(scored["poor_band"].item()) == lonely
    assert scored["band"].item() == ("lonely" if lonely else "not lonely")


def test_ons_loneliness_stays_ordinal():
    scored = score_ons_loneliness(pd.DataFrame({"item_1": [1, 2, 3, 4, 5]}))
    assert scored["band"].tolist() == [
        "often/always",
        "some of the time",
        "occasionally",
        "hardly ever",
        "never",
    ]
    assert scored["poor_band"].tolist() == [True, False, False, False, False]
    assert SCORES["ons_loneliness"].ordinal
    assert SCORES["ons_loneliness"].higher_is_better  # code 5 = never lonely
