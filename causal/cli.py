"""Command line: ``causal run | track | validate | schema | list | simulate``.

Imports are lazy so ``causal --help`` answers at once. Errors in the user's spec or data print
one or two lines, without a traceback (``--debug`` shows it), and exit with code 2.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

DESCRIPTION = """\
Measure what a service change brought, in money, with honest uncertainty.

An experiment spec (experiments/NAME.yaml) names the intervention, the units, the treatment,
the outcomes, the data sources and how money is counted. `causal run` joins the data, checks
the design, estimates the effect, prices it and renders reports/NAME/index.html.
"""

EPILOG = """\
examples:
  causal run experiments/extended_warranty_pilot.yaml     estimate and render the report
  causal validate experiments/lalonde_nsw_experiment.yaml check spec and data, estimate nothing
  causal schema > spec.schema.json                        JSON Schema for editor completion
  causal list                                             experiments and their latest reports
  causal report --index                                   rebuild reports/index.html
  causal report reports/NAME                              re-render one report from results.json
  causal simulate extended_warranty_pilot --out data/w    write the simulated silos as files

exit codes: 0 ok, 2 bad spec, data or input (message says what to fix), 1 unexpected error.
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``causal`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from causal.errors import CausalError

    try:
        return args.handler(args)
    except CausalError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was replaced", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="causal",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.set_defaults(command=None)
    # --debug is accepted after the command too; SUPPRESS keeps a top-level --debug intact.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    sub.add_parser = functools.partial(sub.add_parser, parents=[debug])

    run = sub.add_parser(
        "run",
        help="validate, estimate, price and render the report",
        description="Validate the spec and its data, run the design's checks and estimators, "
        "turn the effect into money and write REPORTS/NAME/{results.json,index.html}. "
        "The previous report is replaced only when the new one is complete.",
    )
    run.add_argument("spec", type=Path, help="experiment spec, e.g. experiments/NAME.yaml")
    run.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="folder that holds the report folders (default: reports)",
    )
    run.add_argument(
        "--no-report",
        action="store_true",
        help="write results.json only, skip the notebook and HTML",
    )
    _engine_options(run)
    run.set_defaults(handler=_run, command="run")

    validate = sub.add_parser(
        "validate",
        help="check the spec and its data without estimating",
        description="Load the spec, join its data sources and validate the analysis table "
        "(unique units, 0/1 treatment, numeric outcomes, covariates present, "
        "missing values counted). Writes nothing.",
    )
    validate.add_argument("spec", type=Path, help="experiment spec")
    _engine_options(validate)
    validate.set_defaults(handler=_validate, command="validate")

    schema = sub.add_parser(
        "schema",
        help="print the spec's JSON Schema",
        description="Print the JSON Schema of experiment specs, for editors "
        "(e.g. the YAML language server's `# yaml-language-server: "
        "$schema=spec.schema.json`).",
    )
    schema.set_defaults(handler=_schema, command="schema")

    lister = sub.add_parser(
        "list",
        help="list experiments and their latest reports",
        description="One line per spec in the experiments folder: name, "
        "design, title and the latest report's headline.",
    )
    lister.add_argument("--experiments", type=Path, default=Path("experiments"), metavar="DIR")
    lister.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR")
    lister.set_defaults(handler=_list, command="list")

    report = sub.add_parser(
        "report",
        help="re-render a report from its results.json, or rebuild the index",
        description="Re-run the design's notebook on REPORT_DIR/results.json and replace "
        "REPORT_DIR/index.html atomically, then rebuild the index of reports next to it; "
        "with --index only, rebuild REPORTS/index.html.",
    )
    report.add_argument("folder", type=Path, nargs="?", metavar="REPORT_DIR")
    report.add_argument("--index", action="store_true", help="rebuild the index of reports")
    report.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR")
    report.set_defaults(handler=_report, command="report")

    track = sub.add_parser(
        "track",
        help="look at a running pilot: confidence sequences, decision, history",
        description="Compute every look of the spec's tracking block (units assigned and events "
        "observed by each look date), with anytime-valid confidence sequences, the sample "
        "ratio and a decision line; record the looks append-only in DIR/NAME/track/ and write "
        "the tracking report to DIR/NAME/tracking/.",
    )
    track.add_argument("spec", type=Path, help="experiment spec with a tracking block")
    track.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR")
    track.add_argument(
        "--as-of", type=_iso_date, default=None, metavar="DATE", help="one look at DATE"
    )
    track.add_argument("--no-report", action="store_true", help="record the looks only")
    _engine_options(track)
    track.set_defaults(handler=_track, command="track")

    simulate = sub.add_parser(
        "simulate",
        help="write a bundled simulator's data silos as files",
        description="Generate a simulated service pilot with known truth and write its tables "
        "(CRM, ERP orders, finance margins) plus truth.json into DIR, and the per-unit true "
        "effects as unit_truth.csv (or .parquet) when the simulator has them.",
    )
    simulate.add_argument("name", help="simulator name, e.g. extended_warranty_pilot")
    simulate.add_argument("--out", type=Path, required=True, metavar="DIR")
    simulate.add_argument("--format", choices=("csv", "parquet"), default="csv")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="simulator parameter, e.g. n_customers=20000 (repeatable)",
    )
    simulate.set_defaults(handler=_simulate, command="simulate")
    return parser


def _iso_date(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r}; use YYYY-MM-DD") from None


def _engine_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default=None,
        help="where the SQL runs (default: the spec's engine, else embedded duckdb); spark "
        "needs the spark extra and Java 17",
    )
    command.add_argument(
        "--spark-master",
        default=None,
        metavar="URL",
        help="Spark master: local[*] (default), spark://host:7077, yarn, or sc://host:15002 "
        "for Spark Connect",
    )


def _load(args: argparse.Namespace):
    from causal.spec import load_spec, with_engine

    engine = args.engine
    if engine is None and args.spark_master is not None:
        engine = "spark"  # a master URL only means Spark
    return with_engine(load_spec(args.spec), engine, args.spark_master)


def _track(args: argparse.Namespace) -> int:
    from causal.track_report import run_track

    spec = _load(args)
    results, path, update = run_track(
        spec, out=args.out, as_of=args.as_of, render=not args.no_report
    )
    line = results.tracking["lines"][-1]
    print(f"look {line['look']} ({line['look_date']}, {line['units']:,} units): {line['decision']}")
    print(
        f"history: {len(update.added)} looks added, {len(update.unchanged)} unchanged, "
        f"{len(update.revised)} revised"
    )
    print(f"report: {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from causal.pipeline import analyse
    from causal.report import resolve_notebook, write_report

    spec = _load(args)
    notebook = None
    if not args.no_report:
        notebook = resolve_notebook(
            spec.report.notebook, design=spec.design.kind, base_dir=spec.base_dir
        )
    results = analyse(spec)
    path = write_report(results, args.out / spec.name, notebook=notebook, render=not args.no_report)
    from causal.report_index import write_index

    write_index(args.out)
    headline = results.headline()
    print(headline.summary().splitlines()[0])
    if results.value is not None:
        from causal.narrative import value_sentence

        print(value_sentence(results))
    if results.long_term and results.long_term.get("service_value"):
        from causal.narrative_long_term import long_term_sentence

        print(long_term_sentence(results.long_term["service_value"]))
    print(f"report: {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from causal.data.dataset import load_dataset

    spec = _load(args)
    if spec.design.kind == "synthetic_control":
        return _validate_panel(spec, args.spec)
    if spec.design.kind == "did":
        return _validate_did(spec, args.spec)
    if spec.design.kind == "observational":
        return _validate_observational(spec, args.spec)
    if spec.design.kind == "uplift":
        return _validate_uplift(spec, args.spec)
    if spec.design.kind == "clv":
        return _validate_clv(spec, args.spec)
    from causal.pipeline import pushdown_reason

    if spec.engine.kind == "spark" and pushdown_reason(spec) is None:
        from causal.pipeline_pushdown import summarize_spec  # the table stays in Spark

        data = summarize_spec(spec)
    else:
        data = load_dataset(spec)
    missing = {c: n for c, n in data.missing.items() if n}
    print(f"{args.spec}: valid {spec.design.kind} spec {spec.name!r}")
    print(
        f"analysis table: {data.n_units} units, {data.n_treated} treated, "
        f"fingerprint {data.fingerprint[:12]}"
    )
    print("missing values: " + (", ".join(f"{c} {n}" for c, n in missing.items()) or "none"))
    return 0


def _validate_clv(spec, path: Path) -> int:
    from causal.data.dataset import query_table
    from causal.designs.clv import summarise_transactions
    from causal.designs.clv_run import PERIOD_CODE

    design = spec.design
    log = query_table(spec)
    summary = summarise_transactions(
        log,
        customer=spec.unit,
        date=design.date_column,
        amount=spec.outcomes[0].column,
        calibration_end=design.calibration_end,
        observation_end=design.observation_end,
        period=PERIOD_CODE[design.period],
    )
    repeat = int((summary.frequency > 0).sum())
    print(f"{path}: valid clv spec {spec.name!r}")
    print(
        f"transaction log: {len(log):,} transactions, {len(summary):,} customers "
        f"({repeat:,} with repeat purchases before {design.calibration_end})"
    )
    return 0


def _validate_panel(spec, path: Path) -> int:
    from causal.data.dataset import query_table
    from causal.designs.synth import convex_hull_check
    from causal.designs.synth_run import build_panels

    panels = build_panels(spec, query_table(spec))
    print(f"{path}: valid {spec.design.kind} spec {spec.name!r}")
    for column, panel in panels.items():
        hull = convex_hull_check(panel)
        print(
            f"{column}: {panel.n0} donors, {len(panel.treated_units)} treated, "
            f"{panel.t0} pre-periods, {len(panel.times) - panel.t0} post-periods; "
            f"[{hull.status}] {hull.detail}"
        )
    return 0


def _validate_observational(spec, path: Path) -> int:
    from causal.data.dataset import query_table
    from causal.designs.obs_run import prepare

    frame, adjustment, _, checks = prepare(spec, query_table(spec))
    print(f"{path}: valid observational spec {spec.name!r} (estimand {spec.design.estimand})")
    print(
        f"analysis table: {len(frame.table)} units, {frame.n_treated} treated, "
        f"fingerprint {frame.fingerprint[:12]}"
    )
    print(f"adjustment set: {', '.join(adjustment) or '(none)'}")
    for check in checks:
        print(f"[{check.status}] {check.name}: {check.detail}")
    return 0


def _validate_uplift(spec, path: Path) -> int:
    from causal.data.dataset import query_table
    from causal.designs.uplift_run import prepare, split_customers

    data = prepare(spec, query_table(spec))
    splits = split_customers(data.d, spec)
    evaluated = sum(len(test) for _, test in splits)
    print(f"{path}: valid uplift spec {spec.name!r}")
    print(
        f"analysis table: {len(data.y)} customers, {int(data.d.sum())} treated, "
        f"{len(data.names)} feature columns after encoding, fingerprint {data.fingerprint[:12]}"
    )
    print(
        f"evaluation: {spec.design.evaluation}, {evaluated} customers scored out of sample; "
        f"learners: {', '.join(spec.design.learners)}"
    )
    return 0


def _validate_did(spec, path: Path) -> int:
    from causal.data.dataset import query_table
    from causal.designs.did_run import build_panels

    panels, notes = build_panels(spec, query_table(spec))
    print(f"{path}: valid did spec {spec.name!r}")
    for column, panel in panels.items():
        cohorts = sorted({int(c) for c in panel.cohort_pos if c >= 0})
        starts = ", ".join(str(panel.times[c]) for c in cohorts)
        never = int((panel.cohort_pos < 0).sum())
        shape = "balanced" if panel.balanced else "unbalanced"
        print(
            f"{column}: {panel.n_units} units × {panel.n_periods} periods ({shape}), "
            f"cohorts first treated in {starts}; {never} never treated"
        )
    for note in notes:
        print(f"warning: {note.detail}", file=sys.stderr)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from causal.spec import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _list(args: argparse.Namespace) -> int:
    from causal.errors import CausalError
    from causal.report_index import IndexRow, collect, terminal_table
    from causal.spec import load_spec

    rows = collect(args.reports) if args.reports.is_dir() else []
    reported = {r.name for r in rows}
    for path in sorted(args.experiments.glob("*.yaml")):
        try:
            spec = load_spec(path)
        except CausalError as exc:
            rows.append(IndexRow(name=path.stem, problem="invalid spec: " + str(exc)[-80:]))
            continue
        if spec.name not in reported:
            rows.append(IndexRow(name=spec.name, design=spec.design.kind, effect="not run"))
    if not rows:
        print(f"no reports in {args.reports}/ and no specs in {args.experiments}/")
        return 0
    print(terminal_table(rows))
    return 0


def _report(args: argparse.Namespace) -> int:
    from causal.report import render_existing
    from causal.report_index import write_index

    if args.folder is None and not args.index:
        from causal.errors import ReportError

        raise ReportError("causal report needs a report folder (REPORT_DIR) or --index")
    if args.folder is not None:
        path = render_existing(args.folder)
        print(f"report: {path}")
        reports = args.folder.parent
    else:
        reports = args.reports
    print(f"index: {write_index(reports)}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from causal.errors import SpecError
    from causal.simulate import simulate, write_tables

    params = {}
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SpecError(f"--param {item!r}: expected KEY=VALUE, e.g. n_customers=20000")
        params[key] = _number(raw)
    pilot = simulate(args.name, seed=args.seed, **params)
    paths = write_tables(pilot, args.out, fmt=args.format)
    (args.out / "truth.json").write_text(json.dumps(dict(pilot.truth), indent=2))
    for table, path in paths.items():
        print(f"{table}: {path}")
    print(f"truth: {args.out / 'truth.json'}")
    if pilot.unit_truth is not None:  # per-unit true effects: for evaluation, not a data source
        unit_path = args.out / f"unit_truth.{args.format}"
        if args.format == "csv":
            pilot.unit_truth.to_csv(unit_path, index=False)
        else:
            pilot.unit_truth.to_parquet(unit_path, index=False)
        print(f"unit truth: {unit_path}")
    return 0


def _number(raw: str) -> int | float | str:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


if __name__ == "__main__":
    sys.exit(main())
