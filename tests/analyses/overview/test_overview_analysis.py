"""Overview numbers: disclosure-controlled category counts, referrals over time."""

import pandas as pd
import pytest

from spimpact.analyses.overview import analyse_referrals, count_table
from spimpact.params import SchemeParams
from spimpact.publish.disclosure import DEFAULT_RULE
from spimpact.publish.section import InsufficientData


def test_count_table_suppresses_small_cells_and_the_cell_that_would_reveal_them():
    values = pd.Series(["a"] * 3 + ["b"] * 40 + ["c"] * 52)
    table = count_table(values, "group", DEFAULT_RULE).set_index("group")
    assert pd.isna(table.loc["a", "n"])  # primary: 3 is in 1-7
    assert pd.isna(table.loc["b", "n"])  # secondary: total minus c would reveal a
    assert table.loc["c", "n"] == 50 and table.loc["Total", "n"] == 95
    assert pd.isna(table.loc["a", "percent"]) and pd.isna(table.loc["b", "percent"])
    assert table.loc["c", "percent"] == 53  # 50 / 95 from rounded counts, whole percent


def test_count_table_total_is_rounded_from_exact_counts():
    values = pd.Series(["a"] * 12 + ["b"] * 12)
    table = count_table(values, "group", DEFAULT_RULE).set_index("group")
    assert table.loc[["a", "b"], "n"].tolist() == [10, 10]
    assert table.loc["Total", "n"] == 25  # 24 rounded, not 10 + 10


def test_referrals_fall_back_to_quarters_or_say_why(example_data, load_example):
    hillcrest = load_example(example_data / "hillcrest")
    params = SchemeParams(scheme_id="hillcrest", title="H", data_dir=example_data / "hillcrest")
    result = analyse_referrals(hillcrest, params=params)
    assert result.unit in ("month", "quarter") and len(result.chart.points) >= 12
    valley = load_example(example_data / "valley")
    params = SchemeParams(scheme_id="valley", title="V", data_dir=example_data / "valley")
    with pytest.raises(InsufficientData, match="too few to chart"):
        analyse_referrals(valley, params=params)
