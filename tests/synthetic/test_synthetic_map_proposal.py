"""`spimpact map` on the example exports: how much it places unedited, and the round trip
contract tables -> messy export -> proposal -> edited mapping -> the same contract tables."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml
from mapping_accuracy import score_proposal

from spimpact.io import load_scheme
from spimpact.mapping import load_mapping
from spimpact.mapping.propose import propose_mapping
from spimpact.paths import PARAMS_DIR
from spimpact.synthetic import EXAMPLE_SCHEMES, simulate_scheme
from spimpact.synthetic.platform import ETHNICITY, write_platform_export

EXAMPLE_EXPORTS = ("valley", "hillcrest", "riverside")
# The bar: unedited, the proposal places at least 90% of columns and labels.
MIN_SHARE = 0.90


@pytest.fixture(scope="module")
def accuracy(example_data, load_example):
    """The proposal for each example export scored against its committed mapping."""
    scores = {}
    for scheme_id in EXAMPLE_EXPORTS:
        folder = example_data / scheme_id
        mapping = load_mapping(PARAMS_DIR / "mappings" / f"{scheme_id}.yaml")
        report = load_example(folder).mapping_report
        scores[scheme_id] = score_proposal(propose_mapping(folder).placed, mapping, report)
    return scores


@pytest.mark.slow
def test_map_places_most_columns_and_labels_of_the_example_exports(accuracy):
    """Measured on the three example exports (a caseload workbook, a platform's CSV
    export, a coded GP extract): columns and labels placed correctly out of those the
    committed mapping files place (tests/synthetic/mapping_accuracy.py says how)."""
    correct = sum(a.n_columns_correct + a.n_labels_correct for a in accuracy.values())
    total = sum(a.n_columns + a.n_labels for a in accuracy.values())
    lines = [
        f"{k}: {a.n_columns_correct}/{a.n_columns} columns, "
        f"{a.n_labels_correct}/{a.n_labels} labels ({a.share:.1%})"
        for k, a in accuracy.items()
    ]
    missed = [m for a in accuracy.values() for m in a.missed]
    print("\n".join([*lines, f"all: {correct}/{total} ({correct / total:.1%})", *missed]))
    assert correct / total >= MIN_SHARE, "\n".join([*lines, *missed])


def deep_merge(base, edits):
    """``base`` with ``edits`` applied: mappings merged key by key, ``None`` deletes a key,
    anything else replaces."""
    if not isinstance(base, dict) or not isinstance(edits, dict):
        return edits
    out = dict(base)
    for key, value in edits.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = deep_merge(base.get(key), value)
    return out


def test_round_trip_through_a_proposed_and_edited_mapping(tmp_path):
    """Contract tables -> the platform's CSV export -> `spimpact map` -> the analyst's
    edits -> the same contract tables. The edits are what the proposal does not know:
    the platform's 'Ethnic Origin' field and its 2021-census wording (and time points,
    checked)."""
    spec = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "hillcrest")
    tables, _ = simulate_scheme(replace(spec, n_clients=150), np.random.default_rng(4))
    contract = tmp_path / "contract"
    contract.mkdir()
    for name, frame in tables.items():
        if name != "boundaries":
            frame.to_csv(contract / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    export = tmp_path / "export"
    export.mkdir()
    write_platform_export(dict(tables), export, np.random.default_rng(1))

    proposal = yaml.safe_load(propose_mapping(export).text)
    labels = {
        label: code
        for code, options in ETHNICITY.items()
        for label in ((options,) if isinstance(options, str) else options)
    }
    edits = {
        "tables": {
            "clients": {
                "columns": {"ethnic_category": {"column": "Ethnic Origin", "values": labels}}
            },
            "measures": {
                "columns": {
                    "timepoint": {
                        "column": "Stage",
                        "values": {"Initial Assessment": 0, "Review": 1, "Final Review": 2},
                    }
                }
            },
        }
    }
    edited = tmp_path / "mapping.yaml"
    edited.write_text(yaml.safe_dump(deep_merge(proposal, edits)), encoding="utf-8")

    mapped = load_scheme(export, mapping=edited)
    direct = load_scheme(contract)
    keys = {
        "clients": ["client_id"],
        "measures": ["client_id", "measure", "timepoint"],
        "contacts": ["client_id", "contact_date", "contact_type", "mode", "duration_minutes"],
        "support_offered": ["client_id", "date", "activity_type", "organisation_id"],
        "feedback": ["feedback_id"],
        "population": ["dimension", "category"],
    }
    for name, key in keys.items():
        pd.testing.assert_frame_equal(
            _comparable(mapped.table(name), key), _comparable(direct.table(name), key), obj=name
        )


def _comparable(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.drop(columns=["source_row", "variant", "episode"], errors="ignore")
    out = out[sorted(out.columns)].astype(str).replace({"<NA>": "", "nan": "", "None": ""})
    return out.sort_values(keys, kind="stable").reset_index(drop=True)
