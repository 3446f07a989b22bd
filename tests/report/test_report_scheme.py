"""The report assembly: one list of sections, shown by the notebook in that order."""

import re

import nbformat
import pandas as pd

from spimpact.paths import NOTEBOOK
from spimpact.report.scheme import SECTIONS, SchemeReport


def test_notebook_shows_every_section_in_report_order():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    shown = re.findall(r'report\.show\("([a-z_]+)"\)', source)
    assert shown == list(SECTIONS)


def test_headline_rows_with_an_interval_carry_their_level(example_params, tmp_path):
    valley = next(p for p in example_params if p.stem == "valley")
    report = SchemeReport.prepare(valley, tmp_path)
    for name in ("wellbeing", "community"):
        report.section(name)
    headlines = report.headlines()
    with_interval = headlines["conf_low"].notna()
    assert with_interval.any() and (~with_interval).any()
    assert (headlines.loc[with_interval, "conf_level"] == report.params.conf_level).all()
    assert headlines.loc[~with_interval, "conf_level"].isna().all()
    assert pd.api.types.is_float_dtype(headlines["conf_level"])
