"""The PDF of every example report: numbered pages and no figure or table cut by a page break.

Printed figures and short tables are framed by thin rules of ``layout.BLOCK_RULE``
(a colour used for nothing else). The pages are rasterised with pdftoppm (Debian's
poppler-utils, installed by ``make browser-deps``); on every page each block's top and
bottom rule must both be there, and all blocks of the HTML must be printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from spimpact.report.layout import BLOCK_RULE
from spimpact.report.pdf import find_chromium, write_pdf

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

DPI = 100
RULE_RGB = np.array([int(BLOCK_RULE[i : i + 2], 16) for i in (1, 3, 5)])
MIN_RULE_PX = 120  # a block spans at least a third of the printed width


def _tools():
    if find_chromium() is None or shutil.which("pdftoppm") is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and poppler-utils must be installed in CI (make browser-deps)")
        pytest.skip("chromium or pdftoppm missing (make browser-deps installs them as root)")


def rules(page: np.ndarray) -> list[tuple[int, int, int]]:
    """Horizontal rules of the block colour: (row, first column, last column)."""
    close = (np.abs(page[:, :, :3].astype(int) - RULE_RGB) <= 30).all(axis=2)
    found, previous = [], set()
    for y in np.flatnonzero(close.sum(axis=1) >= MIN_RULE_PX):
        row = np.concatenate([[False], close[y], [False]])
        edges = np.flatnonzero(np.diff(row.astype(int)))
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            if end - start < MIN_RULE_PX:
                continue
            key = (start // 4, end // 4)
            if (y - 1, key) not in previous and (y - 2, key) not in previous:
                found.append((int(y), int(start), int(end)))
            previous.add((y, key))
    return found


def test_every_report_prints_with_no_cut_figure_or_table(rendered_reports, tmp_path):
    _tools()
    outputs, outcomes = rendered_reports
    for outcome in outcomes:
        html_path = outputs / outcome.scheme_id / "report.html"
        html = html_path.read_text(encoding="utf-8")
        printed = len(re.findall(r'class="(?:table-wrap )?block"', html))
        pdf = write_pdf(html_path, tmp_path / f"{outcome.scheme_id}.pdf")
        prefix = tmp_path / outcome.scheme_id
        subprocess.run(["pdftoppm", "-r", str(DPI), "-png", str(pdf), str(prefix)], check=True)
        images = sorted(tmp_path.glob(f"{outcome.scheme_id}-*.png"))
        assert len(images) > 3
        total = 0
        for image in images:
            found = rules(np.asarray(Image.open(image).convert("RGB")))
            by_column = {}
            for _, start, end in found:
                by_column.setdefault((start // 8, end // 8), []).append(1)
            # top and bottom rule of each block on the same page: never one without the other
            assert all(len(v) % 2 == 0 for v in by_column.values()), (image.name, found)
            total += len(found)
        assert total == 2 * printed, outcome.scheme_id


def test_run_with_pdf_writes_report_pdf(example_params, tmp_path):
    _tools()
    from spimpact.runner import run_reports

    valley = [p for p in example_params if p.stem == "valley"]
    (outcome,) = run_reports(
        valley, output_root=tmp_path, pdf=True, summary=False, progress=lambda _: None
    )
    assert outcome.status == "ok", outcome.reason
    pdf = tmp_path / "valley" / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    first = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True
    ).stdout
    assert "Page 1 of" in first and "People referred" in first
