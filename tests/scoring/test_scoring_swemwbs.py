"""SWEMWBS and WEMWBS scoring against the published conversion table."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from spimpact.scoring import swemwbs_metric
from spimpact.scoring.swemwbs import score_swemwbs, score_wemwbs

REF = Path(__file__).parent.parent / "reference" / "scoring"
TABLE = pd.read_csv(REF / "swemwbs_raw_to_metric.csv")


@pytest.mark.parametrize(("raw", "metric"), list(TABLE.itertuples(index=False, name=None)))
def test_every_row_of_the_conversion_table(raw, metric):
    """Warwick SWEMWBS raw-to-metric table (SPEC §1.1; GEDA 2022: 23 -> 20.73, 32 -> 29.31)."""
    assert swemwbs_metric(raw) == metric


def test_conversion_table_properties():
    assert len(TABLE) == 29
    assert TABLE["raw_score"].tolist() == list(range(7, 36))
    assert np.all(np.diff(TABLE["metric_score"]) > 0)
    assert_array_equal(swemwbs_metric(TABLE["raw_score"].to_numpy()), TABLE["metric_score"])


def test_published_anchor_values():
    """German GEDA 2022 norms paper: raw 23 -> 20.73 and raw 32 -> 29.31."""
    assert swemwbs_metric([23, 32]).tolist() == [20.73, 29.31]


@pytest.mark.parametrize("raw", [6, 36, 0, 70, 7.5, "seven", True])
def test_metric_rejects_raw_outside_the_table(raw):
    with pytest.raises(ValueError, match="not a whole number from 7 to 35"):
        swemwbs_metric(raw)


def test_metric_passes_missing_through():
    assert np.isnan(swemwbs_metric([7, None])[1])


def _items(rows):
    frame = pd.DataFrame(rows, columns=[f"item_{i}" for i in range(1, len(rows[0]) + 1)])
    return frame.astype("Int64")


def test_score_swemwbs_gives_raw_and_metric():
    scored = score_swemwbs(_items([[1, 2, 3, 4, 5, 4, 4], [5] * 7]))
    raw = scored[scored["score"] == "swemwbs_raw"]["value"].tolist()
    metric = scored[scored["score"] == "swemwbs_metric"]["value"].tolist()
    assert raw == [23, 35]
    assert metric == [20.73, 35.0]
    assert not scored["non_standard"].any()


@pytest.mark.parametrize(
    ("answers", "raw"),
    [
        # mean of 3,3,3,4,4,4 = 3.5 -> 4 (halves up): 21 + 4 = 25
        ([3, 3, 3, 4, 4, 4, None], 25),
        # mean of 1,1,1,1,1,2 = 1.17 -> 1: 7 + 1 = 8
        ([1, 1, None, 1, 1, 1, 2], 8),
    ],
)
def test_one_missing_item_imputed_only_when_allowed(answers, raw):
    scored = score_swemwbs(_items([answers]), max_missing_items=1)
    assert scored.loc[scored["score"] == "swemwbs_raw", "value"].item() == raw
    assert scored["non_standard"].all()
    assert "imputed" in scored["note"].iloc[0]
    with pytest.raises(ValueError, match="more than 0 missing"):
        score_swemwbs(_items([answers]))


def test_score_wemwbs_sums_14_items():
    scored = score_wemwbs(_items([[1] * 14, [5] * 14, list(range(1, 6)) * 2 + [3, 3, 3, 3]]))
    assert scored["value"].tolist() == [14, 70, 42]
