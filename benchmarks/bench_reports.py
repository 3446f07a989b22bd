"""Benchmark: regenerate every example report with --jobs 2.

Prints wall time per scheme through papermill (execute + render HTML), the same
scheme's analysis run in-process (prepare + every section, no kernel), and the
difference as papermill/kernel/nbconvert overhead; then the wall time of the whole
parallel run. Usage: python benchmarks/bench_reports.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from spimpact.paths import PROJECT_DIR  # noqa: E402
from spimpact.report.scheme import SECTIONS, SchemeReport  # noqa: E402
from spimpact.runner import find_params, run_reports  # noqa: E402


def in_process_seconds(params_path: Path, out_dir: Path) -> float:
    started = time.perf_counter()
    report = SchemeReport.prepare(params_path, out_dir)
    for name in SECTIONS:
        report.section(name)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if not (PROJECT_DIR / "data" / "example").exists():
        print("run `spimpact example-data` first", file=sys.stderr)
        return 1
    params = find_params()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        outcomes = run_reports(
            params,
            jobs=args.jobs,
            force=True,
            output_root=tmp / "parallel",
            progress=lambda _: None,
        )
        parallel = time.perf_counter() - started
        serial = {
            o.scheme_id: o.seconds
            for o in run_reports(
                params,
                jobs=1,
                force=True,
                output_root=tmp / "serial",
                summary=False,
                progress=lambda _: None,
            )
        }
        print(f"{'scheme':<12} {'papermill s':>12} {'in-process s':>13} {'overhead s':>11}")
        for path in params:
            scheme_id = path.stem
            direct = in_process_seconds(path, tmp / "direct" / scheme_id)
            print(
                f"{scheme_id:<12} {serial[scheme_id]:12.1f} {direct:13.1f} "
                f"{serial[scheme_id] - direct:11.1f}"
            )
        print(
            f"all {len(outcomes)} schemes with --jobs {args.jobs}: {parallel:.1f} s wall "
            f"(sum of serial runs {sum(serial.values()):.1f} s, "
            f"speed-up {sum(serial.values()) / parallel:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
