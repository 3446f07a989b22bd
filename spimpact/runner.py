"""Render every scheme's report in worker processes, in parallel, isolating failures.

For each params file: validate it (all files before anything runs), skip it when its
inputs, params and code are unchanged since the last successful run (unless
``force``), render ``report.html`` in the worker process (``spimpact.report.page``:
sections straight to HTML, no kernel start or notebook conversion) together with
``report.ipynb`` (the thin notebook with the same outputs), optionally print
``report.pdf`` (``pdf=True``), write ``provenance.json``, run the privacy scan on
everything written, append the refresh to ``outputs/history/`` when the scan passes
and write ``status.json``. One failing scheme never stops the others; each worker
process imports the analysis stack once and renders several schemes. With
``diagnostics=True`` the analyst-only diagnostics notebooks are then executed with
papermill into ``outputs/_analyst/`` (``spimpact.report.diagnostics``).

The runner touches nothing outside the output folder and replaces only folders it
made (they carry ``OUTPUT_MARKER``); a params file's name must be its scheme id. A
scheme whose outputs fail the privacy scan is marked failed and its outputs are moved
to ``_internal/`` (docs/outputs.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import pandas as pd

from spimpact.analyses.qualitative.approval import read_approvals
from spimpact.engine import check_engine
from spimpact.io import DataValidationError, load_scheme_from_params
from spimpact.params import (
    ENGINE_ENV,
    SCHEME_ID_PATTERN,
    ParamsError,
    SchemeParams,
    check_key_allowed,
    load_params,
)
from spimpact.paths import (
    ANALYST_DIR,
    HISTORY_DIR,
    INTERNAL_DIR,
    OUTPUT_MARKER,
    OUTPUTS_DIR,
    PARAMS_DIR,
)
from spimpact.publish.privacy import scan_outputs
from spimpact.publish.section import redact_message
from spimpact.report.history import append_refresh, history_dir
from spimpact.report.provenance import (
    PROVENANCE_FILE,
    approvals_path,
    build_provenance,
    rebuild_key,
    write_json,
)

CELL_TIMEOUT_SECONDS = 1800
REASON_MAX_CHARS = 300
# Errors of these types are spimpact's own: their messages name files, keys, columns and
# rows but never values, so their first line is published as the reason for a failure.
OWN_ERRORS = (
    "ParamsError",
    "DataValidationError",
    "FileRefused",
    "OutputFolderError",
    "ApprovalsError",
    "PdfError",
)
# Files of a scheme folder that are moved to _internal when the privacy scan finds anything.
PUBLISHED = ("report.html", "report.pdf", "report.ipynb", "provenance.json", "tables")


class OutputFolderError(ValueError):
    """An output folder that spimpact did not make and will not write into or replace."""


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
    pdf: bool = False,
    summary: bool = True,
    progress=print,
    diagnostics: bool = False,
    engine: str | None = None,
) -> list[RunOutcome]:
    """Render the reports of ``params_paths`` (default: all of ``params/``).

    ``engine`` (``duckdb`` or ``spark``) overrides every scheme's params ``engine``,
    through the environment variable ``SPIMPACT_ENGINE`` the report kernels inherit.

    With ``diagnostics``, also the analyst-only diagnostics notebooks of every scheme
    whose report rendered (``spimpact.report.diagnostics``; ``outputs/_analyst/``).
    With ``pdf`` each rendered report is also printed to ``report.pdf`` (headless
    Chromium). Returns one ``RunOutcome`` per params file, in the order given.
    """
    if engine is not None:
        with _engine_env(check_engine(engine)):
            return run_reports(
                params_paths,
                jobs=jobs,
                force=force,
                output_root=output_root,
                summary=summary,
                progress=progress,
                diagnostics=diagnostics,
            )
    output_root = Path(output_root) if output_root else OUTPUTS_DIR
    paths = [Path(p) for p in (params_paths or find_params())]
    if not paths:
        raise ParamsError("no params files found (expected params/*.yaml)")
    claim_folder(output_root)
    outcomes: dict[Path, RunOutcome] = {}
    runnable: list[tuple[Path, SchemeParams]] = []
    for path in paths:
        if not re.fullmatch(SCHEME_ID_PATTERN, path.stem):
            outcomes[path] = _failed(
                path.stem,
                path.stem,
                f"{path.name}: a params file's name must be its scheme id (lower-case letters, "
                "digits and '_'), e.g. params/valley.yaml",
                output_root,
            )
            continue
        try:
            params = load_params(path)
        except ParamsError as error:
            outcomes[path] = _failed(path.stem, path.stem, str(error), output_root)
            continue
        if params.scheme_id != path.stem:
            outcomes[path] = _failed(
                path.stem,
                path.stem,
                f"{path.name}: scheme_id must equal the file name ({path.stem}), so that one "
                "params file writes one output folder",
                output_root,
            )
            continue
        runnable.append((path, params))
    if runnable:
        claim_folder(output_root / HISTORY_DIR)  # before the workers add their schemes
    progress(
        f"Rendering {len(runnable)} scheme report(s) with {jobs} job(s); "
        f"{len(outcomes)} params file(s) invalid."
    )
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(render_scheme, path, params, output_root, force, pdf): path
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
    if diagnostics:
        _run_diagnostics(runnable, outcomes, output_root, jobs=jobs, progress=progress)
    ordered = [outcomes[p] for p in paths]
    for outcome in ordered:
        if outcome.status == "failed" and re.fullmatch(SCHEME_ID_PATTERN, outcome.scheme_id):
            try:
                claim_folder(outcome.output_dir)
            except OutputFolderError:
                continue  # not ours: the reason was printed; nothing is written there
            write_json(outcome.output_dir / "status.json", _status(outcome))
    if summary:
        from spimpact.report.summary import build_summary

        index = build_summary(output_root)
        progress(f"ICB summary: {index}")
    return ordered


@contextlib.contextmanager
def _engine_env(engine: str):
    """``SPIMPACT_ENGINE`` set to ``engine`` while the reports render, then as it was."""
    previous = os.environ.get(ENGINE_ENV)
    os.environ[ENGINE_ENV] = engine
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENGINE_ENV, None)
        else:
            os.environ[ENGINE_ENV] = previous


def _run_diagnostics(runnable, outcomes, output_root: Path, *, jobs: int, progress) -> None:
    """Render the diagnostics notebooks (issue 18) and check the analyst tier is isolated.

    A scheme whose publishable files link to or copy an analyst file is marked failed
    (its reason names the files, never their content).
    """
    from spimpact.report.diagnostics import render_all_diagnostics, scan_analyst_isolation

    rendered = [
        (path, params.scheme_id)
        for path, params in runnable
        if outcomes[path].status in ("ok", "unchanged")
    ]
    render_all_diagnostics(rendered, output_root, jobs=jobs, progress=progress)
    findings = scan_analyst_isolation(output_root)
    for path, scheme_id in rendered:
        mine = findings[findings["file"].str.startswith(f"{scheme_id}/")]
        if len(mine):
            outcomes[path] = replace(
                outcomes[path],
                status="failed",
                reason="analyst tier linked from or copied into publishable file(s): "
                + ", ".join(sorted(set(mine["file"]))),
            )
    others = findings[~findings["file"].str.contains("/")]
    if len(others):
        progress("analyst tier linked from: " + ", ".join(sorted(set(others["file"]))))


def render_scheme(
    params_path: Path,
    params: SchemeParams,
    output_root: Path,
    force: bool = False,
    pdf: bool = False,
) -> RunOutcome:
    """Execute and render one scheme's report; never raises.

    ``params`` were validated from ``params_path`` by the caller; the data are loaded
    once here, for provenance (written before the report renders, which reads it), the
    rendering and the privacy scan.
    """
    started = time.perf_counter()
    scheme_id, title = params.scheme_id, params.title
    out_dir = output_root / scheme_id
    owned = False
    try:
        claim_folder(out_dir)
        owned = True
        if not params.data_dir.is_dir():
            raise DataValidationError(
                [f"params 'data_dir' ({params.data_dir.name}): no such scheme folder"]
            )
        check_key_allowed(params)
        if not force and _unchanged(out_dir, build_provenance(params_path, params), pdf=pdf):
            return RunOutcome(
                scheme_id,
                title,
                "unchanged",
                "inputs, params and code unchanged; not re-run",
                time.perf_counter() - started,
                out_dir,
            )
        try:
            scheme = load_scheme_from_params(params)
        except DataValidationError:
            scheme = None  # the rendering stops on it; its traceback is kept internal
        provenance = build_provenance(params_path, params, scheme)  # with the refresh label
        shutil.rmtree(out_dir)  # ours: claim_folder checked its marker
        claim_folder(out_dir)
        write_json(out_dir / PROVENANCE_FILE, provenance)
        rendered = _render(params_path, out_dir, output_root / INTERNAL_DIR / scheme_id, scheme)
        if pdf:
            from spimpact.report.pdf import write_pdf

            write_pdf(out_dir / "report.html", out_dir / "report.pdf")
        # With an approved-quotes file, words of any comment not approved are a finding
        # too; without one no quote is published (the report shows themes only) and the
        # scan checks consent, so a title sharing words with a comment is not refused.
        approvals = approvals_path(params_path)
        approved = read_approvals(approvals) if approvals.is_file() else None
        reason = privacy_gate(
            out_dir,
            params,
            output_root / INTERNAL_DIR / scheme_id,
            scheme=scheme if scheme is not None else rendered,
            approved_quotes=approved,
        )
        if reason is None:
            record_refresh(output_root, scheme_id, out_dir, provenance)
        outcome = RunOutcome(
            scheme_id,
            title,
            "failed" if reason else "ok",
            reason,
            time.perf_counter() - started,
            out_dir,
        )
    except Exception as error:  # noqa: BLE001 - one scheme's failure is reported, not raised
        if owned:
            _keep_failed_notebook_internal(out_dir, output_root / INTERNAL_DIR / scheme_id)
        outcome = RunOutcome(
            scheme_id, title, "failed", _reason(error), time.perf_counter() - started, out_dir
        )
    if owned:
        write_json(out_dir / "status.json", _status(outcome))
    return outcome


def privacy_gate(
    out_dir: Path,
    params: SchemeParams,
    internal_dir: Path,
    *,
    scheme=None,
    approved_quotes=None,
) -> str | None:
    """Scan what a scheme's run wrote; withhold it all if anything is found.

    Runs ``spimpact.publish.privacy.scan_outputs`` on ``out_dir`` (identifiers from the
    scheme's inputs, small counts, NHS numbers, the pseudonymisation key, active markup,
    spreadsheet formulas). When it finds anything, the publishable files are moved to
    ``internal_dir`` and the reason (kinds of finding and files, never values) is
    returned; ``None`` means the outputs may be published. ``scheme`` is the loaded
    data (loaded here when not given); with ``approved_quotes`` (ids), words of any
    comment a person did not approve are a finding too.
    """
    scan = scan_outputs(
        out_dir,
        scheme if scheme is not None else load_scheme_from_params(params),
        rule=params.disclosure.rule(),
        secrets=_secrets(params),
        approved_quotes=approved_quotes,
    )
    if scan.clean:
        return None
    _move_internal(out_dir, internal_dir, PUBLISHED)
    kinds = sorted(set(scan.findings["kind"]))
    files = sorted(set(scan.findings["file"]))
    return (
        f"privacy scan: {len(scan.findings)} finding(s) ({', '.join(kinds)}) in "
        f"{', '.join(files)}; the outputs were moved to {INTERNAL_DIR}/{internal_dir.name} "
        "and are not publishable"
    )


def record_refresh(output_root: Path, scheme_id: str, out_dir: Path, provenance: dict) -> None:
    """Append this run to ``outputs/history/<scheme_id>`` (``spimpact.report.history``).

    Only what the report published goes in: ``tables/headline.csv`` and
    ``tables/data_maturity.csv`` (disclosure-controlled) and provenance's hashes.
    """
    folder = history_dir(output_root, scheme_id)
    claim_folder(folder.parent)
    claim_folder(folder)
    tables = out_dir / "tables"
    headline = tables / "headline.csv"
    headlines = (
        pd.read_csv(headline, dtype=str, keep_default_na=False, na_values=[""])
        if headline.is_file()
        else pd.DataFrame(columns=["measure"])
    )
    maturity_path = tables / "data_maturity.csv"
    maturity = None
    if maturity_path.is_file():
        maturity = pd.read_csv(maturity_path, dtype=str, keep_default_na=False, na_values=[""])
        maturity = maturity.reindex(columns=["domain", "check", "percent", "rating"])
        maturity["percent"] = pd.to_numeric(maturity["percent"], errors="coerce")
    append_refresh(folder, provenance, headlines, maturity)


def review_quotes(params_path: Path, output_root: Path | None = None) -> list[Path]:
    """Write the quote review sheet of one scheme into ``outputs/_analyst/<scheme_id>/``.

    The analyst-only tier is never published (docs/outputs.md); the sheet lists every
    consented comment, scrubbed, with spans that look identifying highlighted, and the
    approval line to copy into ``params/<scheme_id>.approved-quotes.txt``.
    """
    from spimpact.analyses.qualitative.analysis import publishable_themes, split_themes
    from spimpact.analyses.qualitative.approval import review_candidates, write_review_sheet

    output_root = Path(output_root) if output_root else OUTPUTS_DIR
    params = load_params(params_path)
    check_key_allowed(params)
    scheme = load_scheme_from_params(params)
    feedback = scheme.feedback
    if feedback is None or feedback.empty:
        raise DataValidationError([f"{params.scheme_id}: the scheme supplied no feedback"])
    long = publishable_themes(split_themes(feedback), params.disclosure.rule())
    themes = long.groupby("feedback_id")["theme"].agg(lambda t: ", ".join(sorted(t)))
    claim_folder(output_root)
    claim_folder(output_root / ANALYST_DIR)
    folder = output_root / ANALYST_DIR / params.scheme_id
    claim_folder(folder)
    return write_review_sheet(review_candidates(feedback, themes), folder, title=params.title)


def freeze_analysis_plan(params_path: Path) -> Path:
    """Write the plan lock of ``params_path`` (``spimpact plan freeze``)."""
    from spimpact.report.history import data_date
    from spimpact.report.plan import freeze_plan

    params = load_params(params_path)
    check_key_allowed(params)
    scheme = load_scheme_from_params(params) if params.data_dir.is_dir() else None
    return freeze_plan(params_path, params, data_date=data_date(scheme) if scheme else None)


def claim_folder(folder: Path) -> None:
    """Make sure ``folder`` is one spimpact made, creating it (with its marker) if missing.

    A folder that exists is accepted when it carries ``OUTPUT_MARKER`` or is empty
    (it is then marked). Anything else (a data folder, a folder of someone else's
    files, a symbolic link, a file) is refused: the runner never writes into it or
    deletes it.

    Raises
    ------
    OutputFolderError
        When ``folder`` exists and was not made by spimpact.
    """
    folder = Path(folder)
    marker = folder / OUTPUT_MARKER
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputFolderError(
            f"output folder {folder.name} is a symbolic link or a file; spimpact writes only "
            "into folders it made"
        )
    if folder.is_dir():
        if marker.is_file() and not marker.is_symlink():
            return
        if any(folder.iterdir()):
            raise OutputFolderError(
                f"output folder {folder.name} exists and was not made by `spimpact run` (it "
                f"has no {OUTPUT_MARKER}); it is not replaced or written into. Choose an "
                "empty or new --output-dir, or remove the folder yourself"
            )
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "Made by `spimpact run`; the next run may replace this folder.\n", encoding="utf-8"
    )


def _secrets(params: SchemeParams) -> tuple[str, ...]:
    key = params.pseudonym_key.get_secret_value() if params.pseudonym_key else None
    key = key or os.environ.get(params.pseudonym_key_env)
    return (key,) if key else ()


def _render(params_path: Path, out_dir: Path, internal_dir: Path, scheme=None):
    """Render the report in this process; on failure keep the traceback internally.

    Returns the scheme's loaded data (for the privacy scan). The traceback (it can
    quote input values) goes to ``internal_dir/report.ipynb`` as the error output of a
    one-cell notebook, as a failed notebook run kept it.
    """
    from spimpact.report.page import render_scheme_report

    try:
        return render_scheme_report(
            Path(params_path).resolve(), out_dir.resolve(), scheme=scheme
        ).scheme
    except Exception as error:
        internal_dir.mkdir(parents=True, exist_ok=True)
        cell = nbformat.v4.new_code_cell("render_scheme_report(params_path, output_dir)")
        cell.outputs = [
            nbformat.v4.new_output(
                "error",
                ename=type(error).__name__,
                evalue=str(error),
                traceback=traceback.format_exception(error),
            )
        ]
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), internal_dir / "report.ipynb")
        raise


def _unchanged(out_dir: Path, provenance: dict, *, pdf: bool = False) -> bool:
    status_path, provenance_path = out_dir / "status.json", out_dir / PROVENANCE_FILE
    if not (
        status_path.exists() and provenance_path.exists() and (out_dir / "report.html").exists()
    ):
        return False
    if pdf and not (out_dir / "report.pdf").exists():
        return False
    status = json.loads(status_path.read_text(encoding="utf-8"))
    previous = json.loads(provenance_path.read_text(encoding="utf-8"))
    return status.get("status") in ("ok", "unchanged") and rebuild_key(previous) == rebuild_key(
        provenance
    )


def _keep_failed_notebook_internal(out_dir: Path, internal_dir: Path) -> None:
    _move_internal(out_dir, internal_dir, ("report.ipynb",))
    for partial in ("report.html", "report.pdf", "report.ipynb", "provenance.json", "tables"):
        path = out_dir / partial
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _move_internal(out_dir: Path, internal_dir: Path, names) -> None:
    """Move ``names`` from a scheme folder to its internal folder (never published)."""
    for name in names:
        source = out_dir / name
        if not source.exists():
            continue
        internal_dir.mkdir(parents=True, exist_ok=True)
        target = internal_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        shutil.move(source, target)


def _reason(error: Exception) -> str:
    """The first line of the error: names files, keys and columns, never values.

    spimpact's own errors (``OWN_ERRORS``) are written without values and shown as
    they are; any other error (a library's, or one raised in the notebook) is shown
    by ``redact_error``, without quoted text, long numbers or paths.
    """
    ename, evalue = getattr(error, "ename", None), getattr(error, "evalue", None)
    name = ename or type(error).__name__
    message = evalue if ename else str(error)
    if name in OWN_ERRORS:
        text = f"{name}: {message}"
    else:
        text = f"{name}: {redact_message(message, max_chars=REASON_MAX_CHARS)}"
    lines = text.strip().splitlines() or [name]
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
