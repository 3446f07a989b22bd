"""A commissioner opens report.html on a locked-down machine: no network, everything shows.

The pages are also checked with axe-core (no serious or critical WCAG violation) and at a
1280 px wide window (nothing wider). axe-core is vendored at test time from the npm
registry by ``make browser-deps`` into ``.venv/axe`` (never fetched at run time).
Setting ``SPIMPACT_SCREENSHOTS`` to a folder saves page one of every page there (the
README's pictures in docs/images/ are made this way).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

AXE = Path(sys.prefix) / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WINDOW = (1280, 1000)


def _pages(rendered_reports):
    outputs, outcomes = rendered_reports
    pages = [(o.scheme_id, outputs / o.scheme_id / "report.html") for o in outcomes]
    return [*pages, ("index", outputs / "index.html")]


def _axe_source() -> str:
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail("axe-core missing: `make browser-deps` installs it from npm")
        pytest.skip("axe-core not installed (make browser-deps installs it from npm)")
    return AXE.read_text(encoding="utf-8")


def _driver(tmp_path, window=(1200, 900)):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if os.environ.get("CI"):
            pytest.fail(
                "Debian's chromium and chromium-driver must be installed in CI (make browser-deps)"
            )
        pytest.skip("chromium/chromedriver not installed (make browser-deps installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        # Network cut off: every host resolves nowhere and any proxied request dies.
        "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
        f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={window[0]},{window[1]}",
        "--hide-scrollbars",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def test_reports_render_offline_with_no_outside_request(rendered_reports, tmp_path):
    outputs, outcomes = rendered_reports
    driver = _driver(tmp_path)
    try:
        pages = [(o.scheme_id, outputs / o.scheme_id / "report.html", 5) for o in outcomes]
        for name, page, min_tables in [*pages, ("index", outputs / "index.html", 1)]:
            driver.get("about:blank")
            driver.get_log("performance")  # drop what the browser fetched before the page
            driver.get(page.as_uri())
            images = driver.execute_script(
                "return Array.from(document.images)"
                ".map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)])"
            )
            tables = driver.execute_script("return document.querySelectorAll('table').length")
            assert images, name
            assert all(
                done and width > 0 and src.startswith("data:image/") for done, width, src in images
            ), name
            assert tables >= min_tables, name
            requested = [
                json.loads(entry["message"])["message"]["params"]["request"]["url"]
                for entry in driver.get_log("performance")
                if '"Network.requestWillBeSent"' in entry["message"]
            ]
            outside = [
                url
                for url in requested
                if not url.startswith(("file:", "data:", "about:", "chrome:", "chrome-untrusted:"))
            ]
            assert outside == [], name
            driver.save_screenshot(str(tmp_path / f"{name}.png"))
    finally:
        driver.quit()


def test_pages_pass_axe_and_fit_a_1280_px_window(rendered_reports, tmp_path):
    axe = _axe_source()
    driver = _driver(tmp_path, window=WINDOW)
    driver.set_script_timeout(300)
    shots = os.environ.get("SPIMPACT_SCREENSHOTS")
    problems = {}
    try:
        for name, page in _pages(rendered_reports):
            driver.get(page.as_uri())
            width = driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert width[0] <= width[1] <= WINDOW[0], (name, width)
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(Path(shots) / f"{name}.png"))
            driver.execute_script(axe)
            violations = driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {resultTypes: ['violations']}).then(r => done("
                "r.violations.map(v => [v.id, v.impact, v.nodes.length,"
                " v.nodes.slice(0, 3).map(n => n.target.join(' '))])))"
            )
            serious = [v for v in violations if v[1] in ("serious", "critical")]
            if serious:
                problems[name] = serious
    finally:
        driver.quit()
    assert problems == {}
