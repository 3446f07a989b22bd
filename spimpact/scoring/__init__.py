"""Score wellbeing questionnaires exactly, and catch modified instruments before scoring."""

from spimpact.scoring.change import ChangeClassification, classify_change
from spimpact.scoring.eq5d import EQ5D_VALUE_SETS, dsu_age_band, eq5d3l_index, eq5d5l_index
from spimpact.scoring.instruments import INSTRUMENTS, ITEM_COLUMNS, Instrument, Item
from spimpact.scoring.ons4 import ons4_band
from spimpact.scoring.registry import MAIN_SCORE, SCORES, Norm, ScoreInfo
from spimpact.scoring.score import SCORE_COLUMNS, ScoredMeasures, score_measures
from spimpact.scoring.swemwbs import swemwbs_metric
from spimpact.scoring.validate import ItemCheck, validate_items
from spimpact.scoring.who5 import who5_band

__all__ = [
    "EQ5D_VALUE_SETS",
    "INSTRUMENTS",
    "ITEM_COLUMNS",
    "MAIN_SCORE",
    "SCORES",
    "SCORE_COLUMNS",
    "ChangeClassification",
    "Instrument",
    "Item",
    "ItemCheck",
    "Norm",
    "ScoreInfo",
    "ScoredMeasures",
    "classify_change",
    "dsu_age_band",
    "eq5d3l_index",
    "eq5d5l_index",
    "ons4_band",
    "score_measures",
    "swemwbs_metric",
    "validate_items",
    "who5_band",
]
