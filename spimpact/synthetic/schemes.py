"""What makes each example scheme differ, and the dates every table shares."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from spimpact.synthetic.recording import RecordingProfile

# The day the example extracts were taken: nothing in them is dated later.
EXTRACT_DATE = pd.Timestamp("2025-12-31")
# Months of GP attendance compared before and after referral.
WINDOW_MONTHS = 12


@dataclass(frozen=True)
class SchemeSpec:
    """What makes one example scheme differ from another."""

    scheme_id: str
    title: str
    n_clients: int
    measures: tuple[str, ...]
    identifier: str = "client_id"  # or "nhs_number"
    age_source: str = "age"  # or "date_of_birth"
    gp_data: bool = True
    comparison_ratio: int = 2  # comparison pool size per client; 0 = no pool
    modified_scale_share: float = 0.0  # share of SWEMWBS forms recorded 0-10 per item
    n_areas: int = 60
    boundaries: bool = False
    ethnic_mix: str = "urban"  # or "rural"
    gp_rate_ratio: float = 0.85
    # shape of clients' transient rise in attendance around referral
    # (spimpact.synthetic.attendance_shapes.PEAK_SHAPES)
    client_peak: str = "around_index"
    n_practices: int = 6
    # How the scheme sends its data: "contract" (the contract's tables), "spreadsheet"
    # (a caseload workbook, spimpact.synthetic.spreadsheet), "platform" (a case-
    # management platform's CSV export, spimpact.synthetic.platform) or "gp_extract"
    # (coded GP events, pseudonymised, spimpact.synthetic.gp_extract).
    export: str = "contract"
    recording: RecordingProfile | None = None  # gaps in what the scheme recorded


EXAMPLE_SCHEMES = (
    SchemeSpec(
        "north_shore",
        "North Shore Social Prescribing Service",
        8000,
        ("swemwbs",),
        n_areas=120,
        boundaries=True,
        client_peak="north_shore",
        n_practices=48,
    ),
    SchemeSpec(
        "riverside",
        "Riverside Community Connectors",
        1500,
        ("ons4", "ucla3", "ons_loneliness"),
        identifier="nhs_number",
        n_areas=50,
        gp_rate_ratio=0.9,
        client_peak="riverside",
        n_practices=12,
        export="gp_extract",
        recording=RecordingProfile(
            ethnicity_not_stated=0.03,
            ethnicity_not_known=0.15,
            area_not_recorded=0.02,
            follow_up_kept=0.75,
            monotone_follow_up=True,
        ),
    ),
    SchemeSpec(
        "hillcrest",
        "Hillcrest Wellbeing Link",
        600,
        ("who5", "eq5d5l", "mycaw"),
        age_source="date_of_birth",
        gp_data=False,
        comparison_ratio=0,
        n_areas=30,
        boundaries=True,
        ethnic_mix="rural",
        export="platform",
        recording=RecordingProfile(
            ethnicity_not_stated=0.08,
            ethnicity_not_known=0.1,
            area_not_recorded=0.06,
            practice_not_recorded=0.02,
            consent_contact_not_recorded=0.1,
            discharge_reason_not_recorded=0.1,
            follow_up_kept=0.5,
        ),
    ),
    SchemeSpec(
        "valley",
        "Valley Voluntary Action Social Prescribing",
        150,
        ("swemwbs",),
        comparison_ratio=0,
        modified_scale_share=0.35,
        n_areas=15,
        ethnic_mix="rural",
        export="spreadsheet",
        recording=RecordingProfile(
            ethnicity_not_stated=0.15,
            ethnicity_not_known=0.25,
            area_not_recorded=0.12,
            practice_not_recorded=0.08,
            consent_contact_not_recorded=0.3,
            discharge_reason_not_recorded=0.25,
            follow_up_kept=0.5,
        ),
    ),
)
