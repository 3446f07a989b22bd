"""The SCORES registry is complete and every number in it carries a source."""

import pytest

from spimpact.scoring import INSTRUMENTS, SCORES

COMMON_SCORE_NAMES = [
    "swemwbs_metric",
    "swemwbs_raw",
    "wemwbs_total",
    "ons4_life_satisfaction",
    "ons4_worthwhile",
    "ons4_happiness",
    "ons4_anxiety",
    "who5_raw",
    "who5_pct",
    "eq5d5l_index",
    "eq5d_vas",
    "mycaw_concern_1",
    "mycaw_concern_2",
    "mycaw_wellbeing",
    "ucla3_total",
    "ons_loneliness",
]


def test_registry_holds_exactly_the_shared_score_names():
    assert list(SCORES) == COMMON_SCORE_NAMES


@pytest.mark.parametrize("name", COMMON_SCORE_NAMES)
def test_each_score_is_consistent_and_sourced(name):
    info = SCORES[name]
    assert info.name == name
    assert info.measure in INSTRUMENTS
    assert info.minimum < info.maximum
    if info.meaningful_change is not None or info.reliable_change is not None:
        assert info.change_source
    if info.sem is not None:
        assert info.sem_source
    if info.test_retest is not None:
        assert 0 < info.test_retest < 1 and info.test_retest_source
    for norm in info.norms:
        assert info.minimum <= norm.mean <= info.maximum and norm.source


@pytest.mark.parametrize(
    "name", ["mycaw_concern_1", "mycaw_concern_2", "mycaw_wellbeing", "ons4_anxiety", "ucla3_total"]
)
def test_lower_is_better_scores(name):
    assert not SCORES[name].higher_is_better
