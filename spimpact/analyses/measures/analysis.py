"""Score a scheme's outcome measures with the options its params set."""

from __future__ import annotations

from spimpact.io import SchemeData
from spimpact.params import SchemeParams
from spimpact.scoring import ScoredMeasures, score_measures


def score_scheme(scheme: SchemeData, params: SchemeParams) -> ScoredMeasures:
    """Score every measure of ``scheme`` as checked on load (items are not checked twice).

    The EQ-5D value set and the SWEMWBS missing-item rule come from
    ``params.measures``; declared scale variants were applied by the loader.
    """
    return score_measures(
        scheme.measure_items,
        clients=scheme.clients,
        eq5d_value_set=params.measures.eq5d_value_set,
        swemwbs_max_missing_items=params.measures.swemwbs_max_missing_items,
    )
