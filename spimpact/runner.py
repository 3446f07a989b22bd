"""Render every scheme's report with papermill, in parallel, isolating failures.

For each params file: validate it (all files before anything runs), skip it when its
inputs, params and code are unchanged since the last successful run (unless
``force``), execute ``notebooks/scheme_report.ipynb`` into
``outputs/<scheme_id>/report.ipynb``, render ``report.html`` and write
``provenance.json`` and ``status.json``. One failing scheme never stops the others.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from spimpact.io import DataValidationError
from spimpact.params import ParamsError, SchemeParams, load_params
from spimpact.paths import NOTEBOOK, OUTPUTS_DIR, PARAMS_DIR
from spimpact.report.provenance import (
    PROVENANCE_FILE,
    build_provenance,
    rebuild_key,
    write_json,
)
from spimpact.report.render import notebook_to_html

CELL_TIMEOUT_SECONDS = 1800
# A failed run's notebook may hold a traceback quoting input values: it is kept for the
# analyst here, outside the publishable scheme folders (docs/outputs.md).
INTERNAL_DIR = "_internal"
REASON_MAX_CHARS = 300


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one scheme: ``ok``, ``unchanged`` (not re-run) or ``failed``."""

    scheme_id: str
    title: str
    status: str
    reason: str | None
    seconds: float
    output_dir: Path


def find_params(params_dir: Path = PARAMS_DIR) -> list[Path]:
    """Every ``params/*.yaml`` file of the project, sorted."""
    return sorted(Path(params_dir).glob("*.yaml"))


def run_reports(
    params_paths=None,
    *,
    jobs: int = 1,
    force: bool = False,
    output_root: Path | None = None,
    summary: bool = True,
    progress=print,
) -> list[RunOutcome]:
    """Render the reports of ``params_paths`` (default: all of ``params/``).

    Returns one ``RunOutcome`` per params file, in the order given.
    """
    output_root = Path(output_root) if output_root else OUTPUTS_DIR
    paths = [Path(p) for p in (params_paths or find_params())]
    if not paths:
        raise ParamsError("no params files found (expected params/*.yaml)")
    outcomes: dict[Path, RunOutcome] = {}
    runnable: list[tuple[Path, SchemeParams]] = []
    for path in paths:
        try:
            runnable.append((path, load_params(path)))
        except ParamsError as error:
            outcomes[path] = _failed(path.stem, path.stem, str(error), output_root)
    progress(
        f"Rendering {len(runnable)} scheme report(s) with {jobs} job(s); "
        f"{len(outcomes)} params file(s) invalid."
    )
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(render_scheme, path, params, output_root, force): path
            for path, params in runnable
        }
        for done, future in enumerate(as_completed(futures), start=1):
            path = futures[future]
            outcome = future.result()
            outcomes[path] = outcome
            detail = f": {outcome.reason}" if outcome.reason else ""
            progress(
                f"[{done}/{len(runnable)}] {outcome.scheme_id}: {outcome.status} "
                f"({outcome.seconds:.1f} s){detail}"
            )
    ordered = [outcomes[p] for p in paths]
    for outcome in ordered:
        if outcome.status == "failed":
            outcome.output_dir.mkdir(parents=True, exist_ok=True)
            write_json(outcome.output_dir / "status.json", _status(outcome))
    if summary:
        from spimpact.report.summary import build_summary

        index = build_summary(output_root)
        progress(f"ICB summary: {index}")
    return ordered


def render_scheme(
    params_path: Path, params: SchemeParams, output_root: Path, force: bool = False
) -> RunOutcome:
    """Execute and render one scheme's report; never raises.

    ``params`` were validated from ``params_path`` by the caller; provenance is built
    once here and written before the notebook runs, which reads it.
    """
    started = time.perf_counter()
    scheme_id, title = params.scheme_id, params.title
    out_dir = output_root / scheme_id
    try:
        if not params.data_dir.is_dir():
            raise DataValidationError([f"{params.data_dir}: no such scheme folder"])
        provenance = build_provenance(params_path, params)
        if not force and _unchanged(out_dir, provenance):
            return RunOutcome(
                scheme_id,
                title,
                "unchanged",
                "inputs, params and code unchanged; not re-run",
                time.perf_counter() - started,
                out_dir,
            )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        write_json(out_dir / PROVENANCE_FILE, provenance)
        notebook_path = out_dir / "report.ipynb"
        _execute(params_path, out_dir, notebook_path)
        notebook_to_html(notebook_path, out_dir / "report.html", title=title)
        outcome = RunOutcome(scheme_id, title, "ok", None, time.perf_counter() - started, out_dir)
    except Exception as error:  # noqa: BLE001 - one scheme's failure is reported, not raised
        _keep_failed_notebook_internal(out_dir, output_root / INTERNAL_DIR / scheme_id)
        outcome = RunOutcome(
            scheme_id, title, "failed", _reason(error), time.perf_counter() - started, out_dir
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "status.json", _status(outcome))
    return outcome


def _execute(params_path: Path, out_dir: Path, notebook_path: Path) -> None:
    import papermill

    papermill.execute_notebook(
        str(NOTEBOOK),
        str(notebook_path),
        parameters={
            "params_path": str(Path(params_path).resolve()),
            "output_dir": str(out_dir.resolve()),
        },
        kernel_name="python3",
        cwd=str(NOTEBOOK.parent),
        progress_bar=False,
        log_output=False,
        execution_timeout=CELL_TIMEOUT_SECONDS,
        report_mode=True,
        # the kernel's own start-up log (e.g. a note on loopback TCP) is not the report's
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    _strip_run_metadata(notebook_path)


def _strip_run_metadata(notebook_path: Path) -> None:
    """Remove timestamps, durations, random ids and absolute paths: re-runs are byte-identical."""
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"  # papermill gives it a random id
        if "parameters" in cell.metadata.get(
            "tags", []
        ) or "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = (
                "\n".join(
                    line
                    for line in cell.source.splitlines()
                    if not line.strip().startswith(("params_path", "output_dir"))
                )
                or "# parameters injected by spimpact run (paths omitted)"
            )
    nbformat.write(notebook, notebook_path)


def _unchanged(out_dir: Path, provenance: dict) -> bool:
    status_path, provenance_path = out_dir / "status.json", out_dir / PROVENANCE_FILE
    if not (
        status_path.exists() and provenance_path.exists() and (out_dir / "report.html").exists()
    ):
        return False
    status = json.loads(status_path.read_text(encoding="utf-8"))
    previous = json.loads(provenance_path.read_text(encoding="utf-8"))
    return status.get("status") in ("ok", "unchanged") and rebuild_key(previous) == rebuild_key(
        provenance
    )


def _keep_failed_notebook_internal(out_dir: Path, internal_dir: Path) -> None:
    notebook = out_dir / "report.ipynb"
    if notebook.exists():
        internal_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(notebook, internal_dir / "report.ipynb")
    for partial in ("report.html", "provenance.json", "tables"):
        path = out_dir / partial
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _reason(error: Exception) -> str:
    """The first line of the error: names files, keys and columns, not row values."""
    ename, evalue = getattr(error, "ename", None), getattr(error, "evalue", None)
    text = f"{ename}: {evalue}" if ename else f"{type(error).__name__}: {error}"
    lines = text.strip().splitlines() or [type(error).__name__]
    first = (
        lines[0] if len(lines[0]) <= REASON_MAX_CHARS else lines[0][: REASON_MAX_CHARS - 1] + "…"
    )
    if len(lines) > 1:
        first += f" (and {len(lines) - 1} more line(s); `spimpact validate` lists every problem)"
    return first


def _failed(scheme_id: str, title: str, reason: str, output_root: Path) -> RunOutcome:
    return RunOutcome(scheme_id, title, "failed", reason, 0.0, output_root / scheme_id)


def _status(outcome: RunOutcome) -> dict:
    status = "ok" if outcome.status in ("ok", "unchanged") else "failed"
    return {
        "scheme_id": outcome.scheme_id,
        "title": outcome.title,
        "status": status,
        "reason": outcome.reason if status == "failed" else None,
    }


def exit_code(outcomes: list[RunOutcome]) -> int:
    """0 when every scheme rendered (or was unchanged), 1 otherwise."""
    return int(any(o.status == "failed" for o in outcomes))


def print_summary(outcomes: list[RunOutcome], stream=sys.stdout) -> None:
    """A closing table: scheme, status, seconds, reason."""
    width = max(len(o.scheme_id) for o in outcomes)
    for o in outcomes:
        reason = f"  {o.reason}" if o.reason else ""
        print(f"{o.scheme_id:<{width}}  {o.status:<9}  {o.seconds:6.1f} s{reason}", file=stream)
    n_failed = sum(o.status == "failed" for o in outcomes)
    n_unchanged = sum(o.status == "unchanged" for o in outcomes)
    print(
        f"{len(outcomes) - n_failed - n_unchanged} rendered, "
        f"{n_unchanged} unchanged (not re-run), {n_failed} failed.",
        file=stream,
    )
