"""The hostile corpus through a whole report: no payload leaves through any door.

The ``valley`` example with every payload of ``hostile.py`` planted is reported twice:
in process (every section built and written as the notebook would, fast) and once end to
end with ``spimpact run`` (papermill, notebook, HTML, status, ICB page; marked ``e2e``).
Both must publish none of the identifiers, no active markup and no spreadsheet formula,
and leave every folder outside the output folder as it was.
"""

from __future__ import annotations

import json

import pytest
from hostile import (
    DOB_DIGITS,
    DOB_SLASHED,
    IDENTIFIERS,
    KEY,
    NHS_NUMBER,
    leaks,
    write_hostile_scheme,
)
from test_security_outputs import snapshot

from spimpact.cli import main
from spimpact.paths import OUTPUT_MARKER
from spimpact.publish import gate
from spimpact.publish.privacy import scan_outputs
from spimpact.report.provenance import PROVENANCE_FILE, build_provenance, write_json
from spimpact.report.render import REPORT_CSS, figure_png, section_html, write_tables
from spimpact.report.scheme import SECTIONS, SchemeReport
from spimpact.runner import run_reports


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, contract_example_data):
    root = tmp_path_factory.mktemp("hostile")
    params, data = write_hostile_scheme(contract_example_data / "valley", root)
    return root, params, data


@pytest.fixture(scope="module")
def in_process(hostile):
    """Every section of the hostile scheme, written as ``report.show`` would write it."""
    root, params, data = hostile
    before = snapshot(root)
    out = root / "outputs" / "valley"
    out.mkdir(parents=True)
    (out / OUTPUT_MARKER).write_text("")
    write_json(out / PROVENANCE_FILE, build_provenance(params, _load(params)))
    report = SchemeReport.prepare(params, out)
    body = [gate.heading(f"{report.params.title}: impact evaluation", 1)]
    for name in SECTIONS:
        section = report.section(name)
        head, tail = section_html(section)
        figures = [gate.image(figure_png(f), "figure") for f in section.figures]
        body += [head, *figures, tail]
        write_tables(section, report.tables_dir)
    report.finish()
    (out / "report.html").write_text(
        gate.page(report.params.title, "\n".join(body), css=REPORT_CSS), encoding="utf-8"
    )
    return root, out, report, before


def _load(params):
    from spimpact.params import load_params

    return load_params(params)


def test_no_output_carries_a_payload(in_process):
    _, out, _, _ = in_process
    assert leaks(out) == []


def test_privacy_scan_of_the_outputs_is_clean(in_process):
    _, out, report, _ = in_process
    scan = scan_outputs(out, report.scheme, secrets=(KEY,))
    assert scan.clean, scan.summary()


def test_inputs_and_everything_outside_the_outputs_are_untouched(in_process):
    root, _, _, before = in_process
    after = {k: v for k, v in snapshot(root).items() if not k.startswith("outputs")}
    assert after == before


def test_free_text_themes_are_published_only_as_safe_labels(in_process):
    _, out, _, _ = in_process
    themes = (out / "tables" / "feedback_by_theme.csv").read_text(encoding="utf-8")
    assert gate.OTHER_LABEL in themes and "confidence" in themes
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "themes: " in html  # the quote line names only published labels


def test_out_of_range_item_values_are_not_repeated(in_process):
    _, out, report, _ = in_process
    text = " ".join(report.section("measure_quality").text)
    quality = (out / "tables" / "measure_quality.csv").read_text(encoding="utf-8")
    assert "withheld" in quality
    for value in (NHS_NUMBER, DOB_DIGITS):
        assert value not in quality and value not in text


def test_hostile_population_categories_are_excluded_on_load(in_process):
    _, _, report, _ = in_process
    exclusions = report.scheme.exclusions
    population = exclusions[exclusions["table"] == "population"]
    assert len(population) == 4
    assert population["reason"].str.contains("category of the data contract").all()


def test_a_boundary_file_error_names_the_feature_not_its_values(in_process):
    _, _, report, _ = in_process
    text = " ".join(report.section("area").text)
    assert "feature" in text and "geometry" in text


def test_validate_prints_no_date_of_birth_or_nhs_number(hostile, capsys):
    _, _, data = hostile
    main(["validate", str(data), "--all"])
    printed = capsys.readouterr()
    output = printed.out + printed.err
    assert "date_of_birth" in output  # the problem is named ...
    for value in (DOB_SLASHED, "1960-02-31", NHS_NUMBER, DOB_DIGITS):
        assert value not in output, value  # ... its value is not


@pytest.mark.e2e
def test_spimpact_run_on_the_hostile_scheme_publishes_nothing_it_should_not(hostile):
    root, params, _ = hostile
    before = {k: v for k, v in snapshot(root).items() if not k.startswith(("outputs", "run"))}
    outputs = root / "run"
    [outcome] = run_reports([params], output_root=outputs, progress=lambda _: None)
    assert outcome.status == "ok", outcome.reason  # the privacy scan found nothing
    assert leaks(outputs) == []
    status = json.loads((outputs / "valley" / "status.json").read_text())
    assert status["status"] == "ok"
    after = {k: v for k, v in snapshot(root).items() if not k.startswith(("outputs", "run"))}
    assert after == before
    assert all(
        value not in json.dumps(status) for values in IDENTIFIERS.values() for value in values
    )


def _browser(tmp_path):
    """Headless Chromium cut off from the network (as in tests/test_report_browser.py)."""
    import shutil

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium/chromedriver not installed (make browser-deps installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


@pytest.mark.e2e
@pytest.mark.browser
def test_policy_keeps_the_page_style_and_blocks_injected_style_and_refresh(in_process, tmp_path):
    """In Chromium: the report keeps its look; markup that bypassed the gate would be inert."""
    _, out, _, _ = in_process
    bypass = tmp_path / "bypass.html"  # what the policy does if markup ever got through
    bypass.write_text(
        gate.page(
            "t",
            '<h2 id="h">Findings</h2><p id="p" style="color: rgb(255, 0, 0)">x</p>'
            "<style>h2{display:none}</style>",
            css=REPORT_CSS,
        )
    )
    driver = _browser(tmp_path)
    try:
        driver.get((out / "report.html").as_uri())
        heading = driver.find_element("css selector", "h2")
        assert heading.value_of_css_property("color") == "rgba(0, 94, 184, 1)"  # #005eb8
        counts = driver.execute_script(
            "return [document.querySelectorAll('body script, body style, body meta').length,"
            " document.querySelectorAll('[style]').length]"
        )
        assert counts == [0, 0]
        assert driver.current_url == (out / "report.html").as_uri()  # no refresh happened
        driver.get(bypass.as_uri())
        assert driver.find_element("id", "h").is_displayed()  # injected <style> ignored
        color = driver.find_element("id", "p").value_of_css_property("color")
        assert color != "rgba(255, 0, 0, 1)"  # injected style attribute ignored
    finally:
        driver.quit()
