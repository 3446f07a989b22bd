"""The example scheme whose staff used a 0-10 SWEMWBS is flagged, never silently scored."""

import numpy as np

from spimpact.analyses.measures.section import measure_quality_section
from spimpact.params import SchemeParams
from spimpact.scoring import score_measures, validate_items
from spimpact.synthetic import EXAMPLE_SCHEMES, simulate_scheme


def test_valley_zero_to_ten_swemwbs_is_caught(tmp_path):
    (spec,) = [s for s in EXAMPLE_SCHEMES if s.scheme_id == "valley"]
    assert spec.modified_scale_share > 0
    tables, _ = simulate_scheme(spec, np.random.default_rng(1))
    measures = tables["measures"].copy()
    measures["source_row"] = range(2, len(measures) + 2)
    check = validate_items(measures)
    issue = check.non_standard.set_index("measure").loc["swemwbs"]
    assert issue["issue"] == "items look like a 0–10 scale where 1–5 is expected (max observed 10)"
    assert issue["n_rows"] == len(check.exclusions) > 0
    scored = score_measures(check.measures)
    assert scored.scores["value"].between(7, 35).all()
    assert not set(check.exclusions["row"]) & set(scored.scores["source_row"])
    section = measure_quality_section(
        check.non_standard,
        check.exclusions,
        params=SchemeParams(scheme_id="valley", title="Valley", data_dir=tmp_path),
    )
    assert "0–10 scale where 1–5 is expected" in section.text[0]
