"""Benchmark: regenerate every example report; the cost of rendering beyond the analysis.

For each example scheme, in one warm process (as each `spimpact run` worker is after its
first scheme): the analysis alone (prepare + every section, as the report builds them)
and the whole rendering of ``runner.render_scheme`` (provenance, the same analysis,
figure encoding, alt text, page and notebook assembly, CSV tables, privacy scan). The
difference is the rendering overhead, which issue 16 asks to keep under 3 s per scheme
(it was 10-14 s with papermill, a kernel per scheme and nbconvert). The median of
``--repeats`` runs is reported, since the machine may be shared. Then the printing of
each report to PDF (``--pdf``) and the wall time of the whole parallel run.

Usage: python benchmarks/bench_reports.py [--jobs 2] [--repeats 3] [--pdf] [--no-parallel]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from spimpact.params import load_params  # noqa: E402
from spimpact.paths import PROJECT_DIR  # noqa: E402
from spimpact.report.scheme import SECTIONS, SchemeReport  # noqa: E402
from spimpact.runner import find_params, render_scheme, run_reports  # noqa: E402

OVERHEAD_TARGET_SECONDS = 3.0


def analysis_seconds(params_path: Path, out_dir: Path) -> float:
    started = time.perf_counter()
    report = SchemeReport.prepare(params_path, out_dir)
    for name in SECTIONS:
        report.section(name)
    return time.perf_counter() - started


def render_seconds(params_path: Path, output_root: Path) -> float:
    params = load_params(params_path)
    outcome = render_scheme(params_path, params, output_root, force=True)
    if outcome.status != "ok":
        raise RuntimeError(f"{params.scheme_id}: {outcome.reason}")
    return outcome.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pdf", action="store_true", help="also time report.pdf")
    parser.add_argument("--no-parallel", action="store_true", help="skip the parallel run")
    args = parser.parse_args()
    if not (PROJECT_DIR / "data" / "example").exists():
        print("run `spimpact example-data` first", file=sys.stderr)
        return 1
    params = find_params()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        render_seconds(params[0], tmp / "warm-up")  # imports and caches, as a warm worker
        print(
            f"{'scheme':<12} {'analysis s':>11} {'rendered s':>11} {'overhead s':>11} {'target':>7}"
        )
        worst = 0.0
        for path in params:
            analysis, rendered = [], []
            for repeat in range(args.repeats):
                analysis.append(analysis_seconds(path, tmp / "direct" / str(repeat)))
                rendered.append(render_seconds(path, tmp / f"rendered{repeat}"))
            a, r = statistics.median(analysis), statistics.median(rendered)
            worst = max(worst, r - a)
            verdict = "ok" if r - a < OVERHEAD_TARGET_SECONDS else "over"
            print(f"{path.stem:<12} {a:11.1f} {r:11.1f} {r - a:11.1f} {verdict:>7}")
        if args.pdf:
            from spimpact.report.pdf import write_pdf

            for path in params:
                html = tmp / "rendered0" / path.stem / "report.html"
                started = time.perf_counter()
                write_pdf(html, tmp / f"{path.stem}.pdf")
                print(f"{path.stem:<12} report.pdf {time.perf_counter() - started:6.1f} s")
        if args.no_parallel:
            print(f"largest overhead {worst:.1f} s (target < {OVERHEAD_TARGET_SECONDS:.0f} s)")
            return 0
        started = time.perf_counter()
        outcomes = run_reports(
            params,
            jobs=args.jobs,
            force=True,
            output_root=tmp / "parallel",
            progress=lambda _: None,
        )
        parallel = time.perf_counter() - started
        print(
            f"all {len(outcomes)} schemes with --jobs {args.jobs}: {parallel:.1f} s wall "
            f"(per scheme: {', '.join(f'{o.scheme_id} {o.seconds:.1f} s' for o in outcomes)}); "
            f"largest overhead {worst:.1f} s (target < {OVERHEAD_TARGET_SECONDS:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
