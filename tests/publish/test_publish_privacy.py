from pathlib import Path

import pandas as pd
import pytest

from spimpact.io import SchemeData, load_scheme_from_params
from spimpact.params import load_params
from spimpact.publish.privacy import scan_outputs


def _scheme(tmp_path: Path) -> SchemeData:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # raw clients file: NHS numbers and dates of birth are dropped on load, so the scan
    # re-reads them from here (999 range: test numbers that pass Modulus 11)
    (data_dir / "clients.csv").write_text(
        "nhs_number,date_of_birth,sex\n9990000018,1950-03-17,female\n", encoding="utf-8"
    )
    clients = pd.DataFrame({"client_id": ["SC-abcdef1234", "SC-0123456789"]})
    feedback = pd.DataFrame(
        {
            "feedback_id": ["FB-000001", "FB-000002"],
            "consent_to_quote": [False, True],
            "text": [
                "My neighbour Jean from the flats drove me to every single session in March",
                "The group helped me feel less alone and I look forward to Tuesdays now",
            ],
        }
    )
    empty = pd.DataFrame()
    return SchemeData(
        data_dir=data_dir,
        clients=clients,
        measures=empty,
        reconciliation=empty,
        exclusions=empty,
        non_standard=empty,
        feedback=feedback,
    )


def _write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_clean_outputs_pass(tmp_path):
    scheme = _scheme(tmp_path)
    out = tmp_path / "out"
    _write(
        out,
        "report.html",
        "<p>The group helped me feel less alone and I look forward to "
        "Tuesdays now</p><p>Referrals: 120</p>",
    )
    _write(out, "tables/reach.csv", "category,n_referrals,rate\nfemale,10,4.5\nmale,,\n")
    scan = scan_outputs(out, scheme)
    assert scan.clean, scan.findings
    assert "Nothing was found" in scan.summary()


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("report.html", "<td>SC-abcdef1234</td>", "client id"),
        ("report.ipynb", '{"text": "FB-000001"}', "feedback id"),
        ("report.html", "<td>999 000 0018</td>", "NHS number"),
        ("provenance.json", '{"x": "9990000018"}', "NHS number"),
        ("report.html", "born 17/03/1950", "date of birth"),
        ("tables/t.csv", "dob\n1950-03-17\n", "date of birth"),
        (
            "report.html",
            "she said my neighbour Jean from the flats drove me to every single session",
            "feedback text without consent",
        ),
        ("tables/t.csv", "group,n\na,5\nb,40\n", "small count"),
        ("tables/t.csv", "group,n_completed\na,3\n", "small count"),
    ],
)
def test_each_kind_of_leak_is_found(tmp_path, name, text, kind):
    scheme = _scheme(tmp_path)
    out = tmp_path / "out"
    _write(out, "index.html", "<p>fine</p>")
    _write(out, name, text)
    scan = scan_outputs(out, scheme)
    assert list(scan.findings["kind"]) == [kind]
    assert list(scan.findings["file"]) == [name]
    # the finding never repeats the identifier itself
    assert "SC-abcdef1234" not in scan.summary() and "9990000018" not in scan.summary()


def test_embedded_images_are_not_scanned(tmp_path):
    scheme = _scheme(tmp_path)
    out = tmp_path / "out"
    _write(
        out, "report.html", '<img src="data:image/png;base64,AAAASC-abcdef1234AAAA9990000018==">'
    )
    assert scan_outputs(out, scheme).clean


def test_counts_outside_count_columns_are_not_flagged(tmp_path):
    scheme = _scheme(tmp_path)
    out = tmp_path / "out"
    _write(out, "tables/t.csv", "imd_quintile,percent,n\n1,5.0,10\n2,3.0,15\n")
    assert scan_outputs(out, scheme).clean


def test_missing_folder_raises(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        scan_outputs(tmp_path / "nope", _scheme(tmp_path))


@pytest.mark.e2e
def test_rendered_example_reports_pass_the_privacy_scan(rendered_reports, example_params):
    outputs, outcomes = rendered_reports
    for path, outcome in zip(example_params, outcomes, strict=True):
        params = load_params(path)
        scheme = load_scheme_from_params(params)
        scan = scan_outputs(outputs / outcome.scheme_id, scheme, rule=params.disclosure.rule())
        assert scan.clean, scan.summary()
