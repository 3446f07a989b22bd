"""``spimpact example-data --scale N``: a scheme of N clients as Parquet, for benchmarks."""

import pandas as pd
import pytest

from spimpact.cli import main
from spimpact.io import load_scheme


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
