"""A later extract of the example data: the same clients, more recorded, more referrals."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd

from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data
from spimpact.synthetic.schemes import EXTRACT_DATE

# referrals end six months before each extract; these run up to it
DATES = {"contacts": "contact_date", "measures": "date", "gp_appointments": "appointment_date"}


def test_later_extract_keeps_the_earlier_data_and_adds_three_months(tmp_path):
    valley = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "valley")
    spec = replace(valley, export="contract", recording=None)  # the contract's tables
    (usual,) = write_example_data(tmp_path / "usual", schemes=(spec,))
    (later,) = write_example_data(tmp_path / "later", schemes=(spec,), later_months=3)
    before = pd.read_csv(usual / "clients.csv", parse_dates=["referral_date"])
    after = pd.read_csv(later / "clients.csv", parse_dates=["referral_date"])
    kept = after[after["client_id"].isin(before["client_id"])]
    assert len(kept) == len(before)  # every earlier client is still there ...
    columns = ["client_id", "referral_date", "sex", "imd_decile", "lsoa_code"]
    pd.testing.assert_frame_equal(kept[columns].reset_index(drop=True), before[columns])
    new = after[~after["client_id"].isin(before["client_id"])]
    assert len(new) == round(spec.n_clients * 3 / 30)  # ... with three more months of referrals
    assert new["referral_date"].between("2025-07-01", "2025-09-30").all()
    for name, column in DATES.items():
        if not (later / f"{name}.csv").exists():
            continue
        usual_dates = pd.read_csv(usual / f"{name}.csv", parse_dates=[column])[column]
        later_dates = pd.read_csv(later / f"{name}.csv", parse_dates=[column])[column]
        assert usual_dates.max() <= EXTRACT_DATE < later_dates.max(), name
        assert later_dates.max() <= EXTRACT_DATE + pd.DateOffset(months=3), name
    # every earlier questionnaire is still there (its item values are redrawn: the
    # generator's draws depend on how many follow-ups are recorded by the extract date)
    keys = ["client_id", "measure", "timepoint"]
    old_measures = pd.read_csv(usual / "measures.csv")[keys]
    new_measures = pd.read_csv(later / "measures.csv")[keys]
    assert len(old_measures.merge(new_measures)) == len(old_measures)
    assert len(new_measures) > len(old_measures)
    marker = json.loads((later / "spimpact-synthetic.json").read_text(encoding="utf-8"))
    assert marker["later_months"] == 3
