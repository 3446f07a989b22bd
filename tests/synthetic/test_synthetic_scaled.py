"""``spimpact example-data --scale N``: a scheme of N clients as Parquet, for benchmarks."""

import json

import pandas as pd
import pytest

from spimpact.cli import main
from spimpact.io import load_scheme
from spimpact.paths import SYNTHETIC_MARKER


def test_scaled_scheme_is_parquet_loads_and_is_deterministic(tmp_path, capsys):
    assert main(["example-data", "--scale", "120", "--out", str(tmp_path / "a")]) == 0
    assert "scale_120" in capsys.readouterr().out
    main(["example-data", "--scale", "120", "--out", str(tmp_path / "b")])
    folder = tmp_path / "a" / "scale_120"
    names = sorted(p.stem for p in folder.glob("*.parquet"))
    assert {"clients", "comparison_pool", "gp_appointments"} <= set(names)
    assert not list(folder.glob("*.csv"))
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_parquet(folder / f"{name}.parquet"),
            pd.read_parquet(tmp_path / "b" / "scale_120" / f"{name}.parquet"),
        )
    scheme = load_scheme(folder, pseudonym_key="test-key")
    assert scheme.clients["client_id"].nunique() >= 115  # a few refused consent
    assert len(scheme.comparison_pool) == 240  # two per client, as north_shore
    assert len(scheme.gp_appointments) > 40 * 120


def test_scale_below_fifty_is_refused(tmp_path):
    from spimpact.synthetic.scaled import write_scaled_scheme

    with pytest.raises(ValueError, match="whole number of clients >= 50, got 10"):
        write_scaled_scheme(tmp_path, 10)


def test_block_sizes_are_as_equal_as_can_be(monkeypatch):
    from spimpact.synthetic import scaled

    assert scaled.block_sizes(100_000) == [100_000]
    assert scaled.block_sizes(500_000) == [100_000] * 5
    assert scaled.block_sizes(250_001) == [83_334, 83_334, 83_333]
    monkeypatch.setattr(scaled, "BLOCK_CLIENTS", 60)
    assert scaled.block_sizes(150) == [50, 50, 50]
    assert scaled.block_sizes(61) == [31, 30]


def _tables(folder):
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def _as_written(frame):
    """A simulated table as the Parquet file holds it: dates as text."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    return frame


def test_one_block_is_the_whole_scheme_simulated_at_once(tmp_path):
    import numpy as np

    from spimpact.synthetic.scaled import _block_spec, write_scaled_scheme
    from spimpact.synthetic.writing import simulate_scheme

    folder = write_scaled_scheme(tmp_path, 120, seed=7)
    tables, truth = simulate_scheme(_block_spec("scale_120", 120, 120), np.random.default_rng(7))
    written = _tables(folder)
    assert set(written) == set(tables)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(written[name], _as_written(frame), check_dtype=False)
    assert json.loads((folder / "truth.json").read_text("utf-8")) == json.loads(json.dumps(truth))
    assert "blocks" not in json.loads((folder / SYNTHETIC_MARKER).read_text("utf-8"))


def test_blocks_have_distinct_identifiers_and_validate(tmp_path, monkeypatch):
    import numpy as np

    from spimpact.synthetic import scaled
    from spimpact.synthetic.writing import simulate_scheme

    monkeypatch.setattr(scaled, "BLOCK_CLIENTS", 60)
    folder = scaled.write_scaled_scheme(tmp_path / "a", 150, seed=3)
    again = scaled.write_scaled_scheme(tmp_path / "b", 150, seed=3)
    for path in sorted(folder.iterdir()):
        assert path.read_bytes() == (again / path.name).read_bytes(), path.name
    assert json.loads((folder / SYNTHETIC_MARKER).read_text("utf-8"))["blocks"] == [50] * 3
    written = _tables(folder)
    # each block as simulated on its own, before its identifiers were tagged
    blocks = [
        simulate_scheme(scaled._block_spec("scale_150", 150, 50), np.random.default_rng(s))
        for s in np.random.SeedSequence(3).spawn(3)
    ]
    for name, frame in written.items():
        if name != "population":  # every row of every block written once
            assert len(frame) == sum(len(tables[name]) for tables, _ in blocks), name
    # identifier and code columns: as many distinct values as the blocks have together
    id_columns = [
        ("clients", "client_id"),
        ("comparison_pool", "patient_id"),
        ("gp_appointments", "patient_id"),
        ("feedback", "feedback_id"),
        ("feedback", "client_id"),
        ("measures", "client_id"),
        ("contacts", "client_id"),
        ("support_offered", "client_id"),
        ("clients", "lsoa_code"),
        ("comparison_pool", "lsoa_code"),
        ("clients", "practice_code"),
        ("comparison_pool", "practice_code"),
    ]
    for name, column in id_columns:
        n_distinct = sum(tables[name][column].nunique() for tables, _ in blocks)
        assert written[name][column].nunique() == n_distinct, (name, column)
    assert written["clients"]["client_id"].is_unique
    assert written["comparison_pool"]["patient_id"].is_unique
    assert written["feedback"]["feedback_id"].is_unique
    assert not set(written["clients"]["client_id"]) & set(written["comparison_pool"]["patient_id"])
    tag_2 = written["clients"]["client_id"].str.startswith("SC-B2-")
    assert (
        written["clients"].loc[tag_2, "client_id"].str.replace("B2-", "", regex=False).tolist()
        == blocks[1][0]["clients"]["client_id"].tolist()
    )
    # population: each block's areas once, every other category summed over the blocks
    population = written["population"]
    areas = population[population["dimension"] == "lsoa_code"]
    assert areas["category"].is_unique
    assert len(areas) == 3 * scaled._block_spec("scale_150", 150, 50).n_areas
    assert set(written["clients"]["lsoa_code"]) <= set(areas["category"])
    totals = population.set_index(["dimension", "category"])["population"]
    assert totals["total", "all"] == areas["population"].sum()
    assert totals["total", "all"] == sum(
        int(t["population"].query("dimension == 'total'")["population"].iloc[0]) for t, _ in blocks
    )
    assert not population.duplicated(["dimension", "category"]).any()
    truth = json.loads((folder / "truth.json").read_text("utf-8"))
    assert truth["n_clients"] == 150
    assert [b["n_clients"] for b in truth["blocks"]] == [50] * 3
    assert [b["gp_att_per_person_month"] for b in truth["blocks"]] == [
        t["gp_attendance"]["gp_att_per_person_month"] for _, t in blocks
    ]
    assert truth["gp_attendance"]["rate_ratio_from_month_3"] == 0.85
    # the contract: only clients who refused consent, and their records, are excluded
    scheme = load_scheme(folder, pseudonym_key="test-key")
    reasons = scheme.exclusions.groupby("reason")["table"].agg(set).to_dict()
    assert reasons.pop("no consent to use the record for evaluation") == {"clients"}
    assert set(reasons) <= {"the client's own record was excluded"}
    refused = (written["clients"]["consent_data_use"] == "false").sum()
    assert (scheme.exclusions["table"] == "clients").sum() == refused
    assert len(scheme.clients) == 150 - refused
    assert len(scheme.comparison_pool) == 300
