"""The ``spimpact`` command: example data, validation, report rendering, ICB summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spimpact.contract import STREAM_MIN_ROWS
from spimpact.paths import EXAMPLE_DATA_DIR, OUTPUTS_DIR


def _example_data(args) -> int:
    from spimpact.synthetic import write_example_data

    if args.scale is not None:
        from spimpact.synthetic.scaled import write_scaled_scheme

        print(f"wrote {write_scaled_scheme(args.out, args.scale, seed=args.seed)}")
        return 0

    folders = write_example_data(args.out, seed=args.seed, later_months=args.later_months)
    for folder in folders:
        print(f"wrote {folder}")
    return 0


def _validate(args) -> int:
    from spimpact.io import (
        DataValidationError,
        load_scheme,
        load_scheme_from_params,
        summarise_mapping,
        summarise_problems,
    )
    from spimpact.params import ParamsError, load_params

    try:
        if args.params:
            update = {"data_dir": args.data_dir}
            if args.mapping:
                update["mapping"] = args.mapping
            if args.engine:
                update["engine"] = args.engine
            params = load_params(args.params).model_copy(update=update)
            scheme = load_scheme_from_params(params, stream_rows=args.stream_rows)
        else:
            scheme = load_scheme(
                args.data_dir,
                mapping=args.mapping,
                engine=args.engine or "duckdb",
                stream_rows=args.stream_rows,
            )
    except ParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except DataValidationError as error:
        print(f"{args.data_dir}: cannot be used as it stands:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(scheme.reconciliation.to_string(index=False))
    for row in scheme.streaming.itertuples(index=False):
        how = f"streamed ({row.engine})" if row.streamed else "read in pandas"
        print(f"{row.table}: {how}: {row.note}")
    exclusions = scheme.exclusions
    not_mapped = summarise_mapping(scheme.mapping_report)
    if not_mapped:
        print(f"\nLabels the mapping ({scheme.mapping_file.name}) does not map:")
        print("  " + not_mapped.replace("\n", "\n  "))
    if len(exclusions):
        n_rows = exclusions.drop_duplicates(["table", "row"]).shape[0]
        print(f"\n{len(exclusions)} problem(s) in {n_rows} excluded row(s):")
        print(summarise_problems(exclusions, limit=None if args.all else 200))
    if len(scheme.non_standard):
        print("\nNon-standard use of outcome measures:")
        for row in scheme.non_standard.itertuples(index=False):
            print(f"  {row.measure}: {row.issue} ({row.n_rows} rows). {row.detail}")
    if len(scheme.ignored_columns):
        cols = ", ".join(f"{t}.{c}" for t, c in scheme.ignored_columns.itertuples(index=False))
        print(f"\nColumns outside the data contract, not read: {cols}")
    print(
        "\nNo fatal problems."
        if len(exclusions) == 0
        else "\nNo fatal problems; the rows above are excluded from analysis."
    )
    return 0


def _map(args) -> int:
    from spimpact.mapping.propose import propose_mapping

    if args.out.exists() and not args.force:
        print(f"error: {args.out} exists (use --force to replace it)", file=sys.stderr)
        return 2
    if not args.source_dir.is_dir():
        print(f"error: {args.source_dir}: no such folder", file=sys.stderr)
        return 2
    proposal = propose_mapping(args.source_dir)
    args.out.write_text(proposal.text, encoding="utf-8")
    placed = proposal.placed["kind"].value_counts()
    print(
        f"wrote {args.out}: {placed.get('table', 0)} source(s) given a table, "
        f"{placed.get('column', 0)} column(s) and {placed.get('label', 0)} label(s) placed."
    )
    if proposal.unplaced:
        print("Could not place (see the end of the file):")
        for item in proposal.unplaced:
            print(f"  {item}")
    print(f"Check and edit it, then: spimpact validate {args.source_dir} --mapping {args.out}")
    return 0


def _run(args) -> int:
    from spimpact.params import ParamsError
    from spimpact.runner import OutputFolderError, exit_code, print_summary, run_reports

    try:
        outcomes = run_reports(
            args.params or None,
            jobs=args.jobs,
            force=args.force,
            output_root=args.output_dir,
            diagnostics=args.diagnostics,
            engine=args.engine,
            pdf=args.pdf,
        )
    except (ParamsError, OutputFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print()
    print_summary(outcomes)
    return exit_code(outcomes)


def _summary(args) -> int:
    from spimpact.report.summary import build_summary
    from spimpact.runner import OutputFolderError, claim_folder

    if not args.output_dir.is_dir():
        print(f"error: output folder {args.output_dir.name} does not exist", file=sys.stderr)
        return 2
    try:
        claim_folder(args.output_dir)  # never write the summary into someone else's folder
    except OutputFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {build_summary(args.output_dir)}")
    return 0


def _plan_freeze(args) -> int:
    from spimpact.params import ParamsError
    from spimpact.runner import freeze_analysis_plan

    try:
        path = freeze_analysis_plan(args.params)
    except ParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _quotes_review(args) -> int:
    from spimpact.io import DataValidationError
    from spimpact.params import ParamsError
    from spimpact.runner import OutputFolderError, review_quotes

    try:
        written = review_quotes(args.params, args.output_dir)
    except (ParamsError, OutputFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except DataValidationError as error:
        print(f"error: {'; '.join(error.problems[:5])}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path} (analyst-only: never publish it)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface: one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="spimpact",
        description="Reproducible impact evaluation of social prescribing schemes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    example = commands.add_parser(
        "example-data",
        help="write the seeded synthetic example schemes",
        description=(
            "Write the seeded synthetic example schemes (the default input) "
            "with their true effects."
        ),
    )
    example.add_argument(
        "--out",
        type=Path,
        default=EXAMPLE_DATA_DIR,
        help="folder to write (default: data/example)",
    )
    example.add_argument(
        "--seed", type=int, default=20261130, help="random seed (default: 20261130)"
    )
    example.add_argument(
        "--scale",
        type=int,
        default=None,
        metavar="N",
        help="instead, write one north_shore-like scheme of N clients (with its comparison "
        "pool and GP appointments, ~75 rows a client) as Parquet to OUT/scale_N, for "
        "benchmarks (docs/scale.md)",
    )
    example.add_argument(
        "--later-months",
        type=int,
        default=0,
        help=(
            "write a later extract: taken this many months later, with the same clients "
            "and this many more months of referrals (default: 0, the usual extract)"
        ),
    )
    example.set_defaults(handler=_example_data)

    validate = commands.add_parser(
        "validate",
        help="check a scheme's data folder against the data contract",
        description=(
            "Check a scheme folder against docs/data-contract.md. Lists every problem with "
            "file, row, "
            "column and value. Exit code 1 when a table cannot be used (fatal), 0 otherwise."
        ),
    )
    validate.add_argument(
        "data_dir", type=Path, help="folder holding clients.csv, measures.csv, ..."
    )
    validate.add_argument(
        "--params", type=Path, help="the scheme's params YAML (scale variants, pseudonym key)"
    )
    validate.add_argument(
        "--mapping",
        type=Path,
        help="the scheme's mapping file: read its own exports through it (docs/mapping.md)",
    )
    validate.add_argument(
        "--all", action="store_true", help="list every problem (default: the first 200)"
    )
    validate.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default=None,
        help="where the SQL checks of large GP appointment files run (default: the params "
        "file's 'engine', else duckdb; spark without settings starts a local session; "
        "docs/scale.md)",
    )
    validate.add_argument(
        "--stream-rows",
        type=int,
        default=STREAM_MIN_ROWS,
        help="check GP appointment files of at least this many rows in SQL straight from "
        f"the file, never read into pandas (default: {STREAM_MIN_ROWS:,}; 0: always)",
    )
    validate.set_defaults(handler=_validate)

    propose = commands.add_parser(
        "map",
        help="propose a mapping file for a folder of a scheme's own exports",
        description=(
            "Look at every CSV, spreadsheet and Parquet file in SOURCE_DIR and write a "
            "commented mapping file (docs/mapping.md) that places their columns and labels "
            "in the data contract; check and edit it, then run "
            "`spimpact validate SOURCE_DIR --mapping FILE`."
        ),
    )
    propose.add_argument("source_dir", type=Path, help="folder holding the scheme's exports")
    propose.add_argument("--out", type=Path, required=True, help="mapping file to write")
    propose.add_argument("--force", action="store_true", help="replace --out if it exists")
    propose.set_defaults(handler=_map)

    run = commands.add_parser(
        "run",
        help="render scheme reports and the ICB summary",
        description=(
            "Render outputs/<scheme_id>/report.html for each params file "
            "(default: params/*.yaml), then outputs/index.html. Schemes whose inputs, params "
            "and code are unchanged since their last successful run are not re-run unless "
            "--force. Exit code 1 if any scheme failed."
        ),
    )
    run.add_argument(
        "params", nargs="*", type=Path, help="params YAML files (default: all in params/)"
    )
    run.add_argument(
        "--jobs", type=int, default=1, help="schemes rendered in parallel (default: 1)"
    )
    run.add_argument("--force", action="store_true", help="re-run every scheme even if unchanged")
    run.add_argument("--output-dir", type=Path, default=OUTPUTS_DIR, help="default: outputs/")
    run.add_argument(
        "--diagnostics",
        action="store_true",
        help="also write the analyst-only diagnostics notebooks (.ipynb and .html) of each "
        "scheme to <output-dir>/_analyst/<scheme_id>/ (never publish them)",
    )
    run.add_argument(
        "--pdf",
        action="store_true",
        help="also print each report to report.pdf with headless Chromium (make browser-deps)",
    )
    run.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default=None,
        help="where the SQL over the large tables runs, for every scheme (default: each "
        "params file's 'engine', else duckdb; docs/scale.md)",
    )
    run.set_defaults(handler=_run)

    summary = commands.add_parser(
        "summary",
        help="rebuild the ICB summary page from rendered reports",
        description="Rebuild outputs/index.html from the scheme folders in the output directory.",
    )
    summary.add_argument("--output-dir", type=Path, default=OUTPUTS_DIR, help="default: outputs/")
    summary.set_defaults(handler=_summary)

    plan = commands.add_parser(
        "plan",
        help="lock a scheme's analysis plan",
        description="Work with a scheme's pre-specified analysis plan ('plan:' in params).",
    )
    plan_commands = plan.add_subparsers(dest="plan_command", required=True)
    freeze = plan_commands.add_parser(
        "freeze",
        help="write params/<scheme_id>.plan-lock.json from the params' plan",
        description=(
            "Lock the analysis plan of a params file. Later runs whose plan differs "
            "from the lock show an 'analysis plan changed' box and are marked on the ICB "
            "page. The lock records the latest date in the data, not today's date."
        ),
    )
    freeze.add_argument("params", type=Path, help="the scheme's params YAML")
    freeze.set_defaults(handler=_plan_freeze)

    quotes = commands.add_parser(
        "quotes",
        help="review consented quotes before they can be published",
        description="Quotes are published only after a person approves them.",
    )
    quote_commands = quotes.add_subparsers(dest="quotes_command", required=True)
    review = quote_commands.add_parser(
        "review",
        help="write the quote review sheet into outputs/_analyst/<scheme_id>/",
        description=(
            "Write an analyst-only review sheet of every consented quote, scrubbed, with "
            "spans that look like names, places, phone numbers, e-mails, postcodes or NHS "
            "numbers highlighted. Copy the approval lines of the quotes you approve into "
            "params/<scheme_id>.approved-quotes.txt; only those are published."
        ),
    )
    review.add_argument("params", type=Path, help="the scheme's params YAML")
    review.add_argument("--output-dir", type=Path, default=OUTPUTS_DIR, help="default: outputs/")
    review.set_defaults(handler=_quotes_review)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``spimpact`` console command."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - users see a sentence, not a traceback
        from spimpact.publish.section import redact_error

        print(f"error: {redact_error(error, max_chars=300)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
