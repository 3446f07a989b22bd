"""A commissioner opens report.html on a locked-down machine: no network, everything shows."""

from __future__ import annotations

import json
import os
import shutil

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def _driver(tmp_path):
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
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900",
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
