"""Print a rendered report to PDF with headless Chromium (Debian's ``chromium``).

The PDF is the same HTML through the page's own print style sheet
(``layout.REPORT_CSS``): each section starts on a new page, figures and short
tables are never split, and pages are numbered by CSS page-margin boxes (so
Chromium's own header and footer, which would print the file's path and the date,
are switched off). The browser runs with the network cut off, like the report.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PDF_TIMEOUT_SECONDS = 180


class PdfError(RuntimeError):
    """The PDF could not be written (no browser, or the browser failed)."""


def find_chromium() -> str | None:
    """Path of a headless-capable Chromium on ``PATH``, or ``None``."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def write_pdf(html_path, pdf_path) -> Path:
    """Print ``html_path`` to ``pdf_path`` (A4, page numbers, no browser header/footer).

    Raises
    ------
    PdfError
        When no Chromium is installed (``make browser-deps`` installs Debian's) or
        printing fails; the message names the report file, not its content.
    """
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path).resolve()
    browser = find_chromium()
    if browser is None:
        raise PdfError(
            f"cannot write {pdf_path.name}: no chromium found (install Debian's chromium, "
            "e.g. `make browser-deps`)"
        )
    with tempfile.TemporaryDirectory(prefix="spimpact-pdf-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            "--run-all-compositor-stages-before-draw",
            f"--print-to-pdf={pdf_path}",
            html_path.as_uri(),
        ]
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                timeout=PDF_TIMEOUT_SECONDS,
                stdin=subprocess.DEVNULL,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
            raise PdfError(
                f"chromium could not print {html_path.name} to PDF ({type(error).__name__})"
            ) from None
    if not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        raise PdfError(f"chromium wrote no {pdf_path.name}")
    return pdf_path
