"""Messy exports of the example schemes: the gaps a scheme leaves, the files it sends, and
the contract tables its mapping file gives back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spimpact.io import load_scheme
from spimpact.paths import PARAMS_DIR
from spimpact.synthetic import EXAMPLE_SCHEMES, simulate_scheme
from spimpact.synthetic.gp_extract import write_gp_extract
from spimpact.synthetic.platform import write_platform_export
from spimpact.synthetic.recording import RecordingProfile, record
from spimpact.synthetic.spreadsheet import write_spreadsheet_export

MAPPINGS = PARAMS_DIR / "mappings"
KEY = "exports-test-key"


def small(scheme_id: str, **changes):
    """A small copy of an example scheme (same areas and codes, fewer clients)."""
    spec = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == scheme_id)
    return replace(spec, n_clients=200, recording=None, **changes)


@pytest.fixture(scope="module")
def simulated():
    """Tables of three small schemes, as simulated (before any export)."""
    return {
        scheme_id: simulate_scheme(small(scheme_id), np.random.default_rng(k))[0]
        for k, scheme_id in enumerate(("valley", "hillcrest", "riverside"))
    }


def write_contract(tables: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if name != "boundaries":
            frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return folder


def comparable(frame: pd.DataFrame, keys: list[str], drop=()) -> pd.DataFrame:
    """A loaded table without row numbers, in a fixed row and column order, as text."""
    out = frame.drop(columns=["source_row", "variant", *drop], errors="ignore")
    out = (
        out[sorted(out.columns)].astype(str).replace({"<NA>": "", "nan": "", "None": "", "NaT": ""})
    )
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- recording gaps


def test_recording_removes_what_the_profile_says_completely_at_random(simulated):
    tables = simulated["hillcrest"]
    profile = RecordingProfile(
        ethnicity_not_stated=0.2,
        ethnicity_not_known=0.1,
        area_not_recorded=0.25,
        discharge_reason_not_recorded=0.5,
        follow_up_kept=0.5,
    )
    recorded, account = record(tables, profile, np.random.default_rng(5))
    clients, before = recorded["clients"], tables["clients"]
    assert list(clients.columns) == list(before.columns)  # still contract tables
    assert 0.15 < account["ethnicity_not_stated"] / len(clients) < 0.25
    unknown = clients["ethnic_category"].isin(["Z", "99"]).mean()
    assert 0.25 < unknown < 0.4 and before["ethnic_category"].isin(["Z", "99"]).mean() < 0.05
    assert clients["lsoa_code"].isna().equals(clients["imd_decile"].isna())
    assert 0.18 < clients["lsoa_code"].isna().mean() < 0.32
    # baselines are kept; about half the follow-up forms are gone, whole forms at a time
    measures = recorded["measures"]
    assert (measures["timepoint"] == 0).sum() == (tables["measures"]["timepoint"] == 0).sum()
    kept = (measures["timepoint"] > 0).sum() / (tables["measures"]["timepoint"] > 0).sum()
    assert 0.4 < kept < 0.6
    # a form (the questionnaires of one client at one time point) is kept or lost whole
    form = ["client_id", "timepoint"]
    after = measures.groupby(form)["measure"].nunique()
    whole = tables["measures"].groupby(form)["measure"].nunique()
    pd.testing.assert_series_equal(after, whole.loc[after.index])


def test_monotone_follow_up_leaves_no_gap(simulated):
    tables = simulated["riverside"]
    profile = RecordingProfile(follow_up_kept=0.6, monotone_follow_up=True)
    recorded, _ = record(tables, profile, np.random.default_rng(2))
    timepoints = recorded["measures"].groupby(["nhs_number", "measure"])["timepoint"].agg(sorted)
    assert all(list(t) == list(range(len(t))) for t in timepoints)
    original = tables["measures"].groupby(["nhs_number", "measure"])["timepoint"].agg(sorted)
    assert any(list(t) != list(range(len(t))) for t in original)  # the simulation has gaps


def test_recording_profile_refuses_impossible_shares():
    with pytest.raises(ValueError, match="within 0-1"):
        RecordingProfile(follow_up_kept=1.5)
    with pytest.raises(ValueError, match="exceed 1"):
        RecordingProfile(ethnicity_not_stated=0.6, ethnicity_not_known=0.6)


# ---------------------------------------------------------------- exports and their mappings


def test_caseload_workbook_loads_back_to_the_same_tables(simulated, tmp_path):
    """The workbook (title row, local labels, practice names, postcodes, typed UK dates)
    read through params/mappings/valley.yaml gives the tables it was written from; only
    the IMD decile, which the charity does not keep, is not in it."""
    tables = simulated["valley"]
    export = tmp_path / "export"
    export.mkdir()
    write_spreadsheet_export(dict(tables), export, np.random.default_rng(1), title="Valley",
                             n_unplaced=0)  # fmt: skip
    mapped = load_scheme(export, mapping=MAPPINGS / "valley.yaml")
    direct = load_scheme(write_contract(tables, tmp_path / "contract"))
    assert_same_tables(mapped, direct, drop={"clients": ["imd_decile", "imd_quintile"]})


def test_platform_export_loads_back_to_the_same_tables(simulated, tmp_path):
    """Windows-1252 CSVs with the platform's headers and labels, a split practice field,
    postcodes and one row per question answered, read through hillcrest.yaml."""
    tables = simulated["hillcrest"]
    export = tmp_path / "export"
    export.mkdir()
    write_platform_export(dict(tables), export, np.random.default_rng(1))
    raw = (export / "CaseLink_Clients.csv").read_bytes()
    assert b"\x96" in raw  # an en dash in Windows-1252
    mapped = load_scheme(export, mapping=MAPPINGS / "hillcrest.yaml")
    direct = load_scheme(write_contract(tables, tmp_path / "contract"))
    assert_same_tables(mapped, direct)


def assert_same_tables(mapped, direct, drop=None):
    drop = drop or {}
    keys = {
        "clients": ["client_id"],
        "measures": ["client_id", "measure", "timepoint"],
        "contacts": ["client_id", "contact_date", "contact_type", "mode", "duration_minutes"],
        "support_offered": ["client_id", "date", "activity_type", "organisation_id"],
        "feedback": ["feedback_id"],
        "gp_appointments": ["patient_id", "appointment_date", "staff_role", "mode", "status"],
        "population": ["dimension", "category"],
    }
    for name, key in keys.items():
        if direct.table(name) is None:
            assert mapped.table(name) is None, name
            continue
        left = comparable(mapped.table(name), key, ["episode", *drop.get(name, [])])
        right = comparable(direct.table(name), key, ["episode", *drop.get(name, [])])
        pd.testing.assert_frame_equal(left, right, obj=name)
    assert direct.exclusions.empty or set(mapped.exclusions["reason"]) <= set(
        direct.exclusions["reason"]
    ) | {"the client's own record was excluded"}


def test_gp_extract_keeps_every_person_appointment_and_answer(simulated, tmp_path):
    """The coded extract cannot carry referral source, consent, closure or time-point
    labels, and its ids are the data service's pseudonyms; everything else survives:
    the same people, demographics, appointments and answers (forms numbered in date
    order match the time points when follow-ups have no gaps)."""
    tables, _ = record(
        simulated["riverside"],
        RecordingProfile(monotone_follow_up=True),
        np.random.default_rng(3),
    )
    # consent is not in a GP extract (the data flow has its own legal basis)
    tables["clients"] = tables["clients"].assign(consent_data_use="true")
    export = tmp_path / "export"
    export.mkdir()
    write_gp_extract(dict(tables), export, np.random.default_rng(1))
    assert not any("999" in p.read_text()[:2000] for p in export.glob("*.csv"))
    mapped = load_scheme(export, mapping=MAPPINGS / "riverside.yaml")
    direct = load_scheme(write_contract(tables, tmp_path / "contract"), pseudonym_key=KEY)
    for name in ("clients", "measures", "gp_appointments", "comparison_pool", "contacts"):
        assert len(mapped.table(name)) == len(direct.table(name)), name
    for column in ("sex", "ethnic_category", "age", "lsoa_code", "imd_decile", "practice_code"):
        pd.testing.assert_series_equal(
            mapped.clients[column].astype(str).value_counts().sort_index(),
            direct.clients[column].astype(str).value_counts().sort_index(),
            obj=column,
        )
    assert set(mapped.clients["referral_source"]) == {"gp"}
    items = [f"item_{k}" for k in range(1, 5)]
    by = ["measure", "timepoint"]
    pd.testing.assert_frame_equal(
        mapped.measures.groupby(by)[items].sum(), direct.measures.groupby(by)[items].sum()
    )
    counts = ["staff_role", "mode", "status"]
    pd.testing.assert_frame_equal(
        mapped.gp_appointments.value_counts(counts).sort_index().to_frame(),
        direct.gp_appointments.value_counts(counts).sort_index().to_frame(),
    )
    report = mapped.mapping_report
    declined = report[report["target_value"] == "referral declined"]["n_rows"].sum()
    assert declined == round(0.12 * len(tables["clients"]))
