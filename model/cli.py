"""The `sendplan` command: a thin layer over ``model.batch``, ``model.engine`` and ``model.io``.

Exit codes: 0 success, 1 a scenario failed while running, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .io import ScenarioError, load_scenario

EXIT_OK, EXIT_BAD_INPUT = 0, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (its default), never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"sendplan: error: {message}\n")


def _add_batch_options(cmd: argparse.ArgumentParser) -> None:
    """Options shared by `run` and `sweep`."""
    cmd.add_argument("--out", default="results", help="output folder (default: results/)")
    cmd.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a scenario key (value parsed as YAML); repeatable",
    )
    cmd.add_argument(
        "--paths",
        type=int,
        default=None,
        help="Monte Carlo paths (default: the scenario's run.paths)",
    )
    cmd.add_argument(
        "--seed", type=int, default=None, help="random seed (default: the scenario's run.seed)"
    )
    cmd.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="scenarios run in parallel processes (default 1; 0 = one per CPU; with "
        "--scheduler local: the number of workers)",
    )
    cmd.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS|local",
        help="run on a dask.distributed cluster at ADDRESS (e.g. tcp://host:8786), or 'local' "
        "for a LocalCluster on this machine; OUT must be on a file system every worker sees",
    )
    cmd.add_argument(
        "--solver",
        choices=["highs", "cbc"],
        default=None,
        help="LP solver (default: the scenario's run.solver, HiGHS unless it says cbc)",
    )
    cmd.add_argument(
        "--export-lp", action="store_true", help="write model.mps, the LP exactly as solved"
    )
    cmd.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format")
    cmd.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT's comparison.* even when it has more rows than this batch",
    )
    # one setting: skipping the reports and adding the full workbook to them contradict
    reports = cmd.add_mutually_exclusive_group()
    reports.add_argument(
        "--no-reports",
        dest="reports",
        action="store_false",
        help="skip report.xlsx and report.html in each scenario folder (faster, smaller)",
    )
    reports.add_argument(
        "--full-workbook",
        dest="reports",
        action="store_const",
        const="full",
        help="also write tables.xlsx: every table in full, one sheet each (slower; report.xlsx "
        "holds summaries and points to the CSV/Parquet files)",
    )
    cmd.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: only when output is a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sendplan", description="SEND placement sufficiency and High Needs Block forecasting."
    )
    p.add_argument("--version", action="version", version=f"sendplan {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="run scenarios (files, globs, folders; the embedded Devon default when none is given)",
    )
    run.add_argument(
        "scenarios",
        nargs="*",
        help="scenario YAML files, glob patterns, folders (every *.yaml inside) or "
        "embedded:NAME (a scenario shipped in the package)",
    )
    _add_batch_options(run)

    sweep = sub.add_parser(
        "sweep", help="run the Cartesian product of --grid values over one base scenario"
    )
    sweep.add_argument(
        "base", nargs="?", default=None, help="base scenario YAML (default: the embedded Devon)"
    )
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        required=True,
        metavar="KEY.PATH=V1,V2,...",
        help="values of one key to sweep (parsed as YAML); repeat for more keys",
    )
    _add_batch_options(sweep)

    val = sub.add_parser("validate", help="check scenario files; exit 2 with one line per problem")
    val.add_argument(
        "scenarios", nargs="+", help="scenario YAML files (or embedded:NAME, a shipped scenario)"
    )
    val.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="check the scenario with this key overridden, as `run --set` would (repeatable)",
    )

    sch = sub.add_parser("schema", help="print the scenario JSON Schema")
    sch.add_argument("--markdown", action="store_true", help="print the scenario reference instead")

    init = sub.add_parser(
        "init", help="write a scenario for an English LA from the shipped SEN2 data"
    )
    which = init.add_mutually_exclusive_group(required=True)
    which.add_argument("--la", metavar="NAME|CODE", help="LA name, GSS code or 3-digit number")
    which.add_argument("--all", action="store_true", help="every LA, one file each, into --out DIR")
    which.add_argument(
        "--template",
        action="store_true",
        help="the blank template (England's pattern at the size of an average LA, no history); "
        "the shipped one is embedded:template",
    )
    init.add_argument(
        "--out",
        default=None,
        help="file to write (default <la>.yaml); with --all the folder (default las/)",
    )
    init.add_argument(
        "--localities",
        default=None,
        metavar="FILE",
        help="CSV of districts: id, name, share (of the 0-25 population), lat, lon",
    )
    init.add_argument(
        "--base-year",
        type=int,
        default=None,
        help="January count to start from (default: the latest published)",
    )

    data = sub.add_parser("data", help="the published data shipped inside sendplan (DfE SEN2)")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    build = data_sub.add_parser(
        "build", help="rebuild the shipped SEN2 panel from a release folder (e.g. next year's)"
    )
    build.add_argument(
        "--release", required=True, metavar="DIR", help="folder with the release's *.csv.gz files"
    )
    build.add_argument(
        "--out", default=None, metavar="FILE", help="where to write (default: inside the package)"
    )
    data_sub.add_parser("info", help="which release is shipped, its attribution and coverage")

    bt = sub.add_parser(
        "backtest",
        help="rolling-origin backtest of the demand forecast against naive baselines (SEN2)",
    )
    from .backtest import add_arguments as add_backtest_arguments

    add_backtest_arguments(bt)
    return p


def cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for f in args.scenarios:
        try:
            load_scenario(f, args.overrides)
        except ScenarioError as e:
            bad += 1
            for prob in e.problems:
                print(prob, file=sys.stderr)
        else:
            print(f"{f}: ok")
    return EXIT_BAD_INPUT if bad else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from .scenario import Scenario, reference_markdown

    if args.markdown:
        print(reference_markdown(), end="")
    else:
        print(json.dumps(Scenario.model_json_schema(), indent=2))
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    from .sources import sen2

    if args.data_command == "info":
        las = sen2.authorities()
        print(f"release: {sen2.RELEASE} ({sen2.PANEL_FILE.name})")
        print(
            f"local authorities: {len(las)} ({int(las['full_series'].sum())} with January counts "
            f"{sen2.FIRST_YEAR}-{sen2.LAST_YEAR} on today's boundary)"
        )
        print(sen2.ATTRIBUTION)
        return EXIT_OK
    try:
        panel = sen2.build_panel(args.release)
    except (OSError, KeyError, ValueError) as e:
        print(f"{args.release}: not a readable SEN2 release folder ({e})", file=sys.stderr)
        return EXIT_BAD_INPUT
    from .pooling import PRIOR_FILE, write_priors

    path = sen2.write_panel(panel, args.out or sen2.PANEL_FILE)
    print(f"{path}: {len(panel):,} rows from {args.release}")
    priors = write_priors(panel, path.with_name(PRIOR_FILE.name))
    print(f"{priors}: the pooled prior at every origin, from the same panel")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    """Write one LA's scenario (and its provenance CSV), or every LA's into a folder."""
    from pathlib import Path

    from .io import atomic_folder
    from .sources import sen2
    from .sources.la_scenario import files_for_la, read_localities, slug

    try:
        localities = read_localities(args.localities) if args.localities else None
    except ScenarioError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.all:
        if localities is not None:
            print("sendplan: error: --localities needs --la (one LA)", file=sys.stderr)
            return EXIT_BAD_INPUT
        out = Path(args.out or "las")
        if out.exists() and (
            not out.is_dir()
            or any(
                not (f.name.endswith(".yaml") or f.name.endswith(".provenance.csv"))
                for f in out.iterdir()
            )
        ):
            print(
                f"sendplan: error: {out}: exists and holds other files; give a new or empty "
                "folder (a folder of earlier `init --all` files is replaced)",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        files: dict[str, str] = {}
        skipped = []
        for la in sen2.authorities().itertuples():
            try:
                files.update(
                    files_for_la(la.area_code, f"{slug(la.area_name)}.yaml", args.base_year)
                )
            except ValueError as e:  # no January count at the requested base year
                skipped.append(f"{la.area_name}: skipped: {e}")
        for line in skipped:
            print(f"sendplan: warning: {line}", file=sys.stderr)
        with atomic_folder(out) as tmp:
            for name, text in files.items():
                (tmp / name).write_text(text, encoding="utf-8")
        n = len(files) // 2
        print(f"wrote {n} LA scenarios to {out}/ (run them: sendplan run {out} --jobs 2)")
        print(sen2.ATTRIBUTION)
        return EXIT_OK
    try:
        area = sen2.find_la(args.la) if not args.template else None
    except LookupError as e:
        print(f"sendplan: error: {e.args[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if area is None:
        area = sen2.Area("template", "national-average LA", "england", "", "")
    target = Path(args.out or f"{slug(area.name) if not args.template else 'template'}.yaml")
    try:
        code = "template" if args.template else area.code
        files = files_for_la(code, target.name, args.base_year, localities)
    except ValueError as e:
        print(f"sendplan: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    target.parent.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target.with_name(name))
    prov_name = next(n for n in files if n != target.name)
    print(f"wrote {target} ({area.name}, {area.code}) and {target.with_name(prov_name)}")
    print(sen2.ATTRIBUTION)
    return EXIT_OK


def _batch_arguments_ok(args: argparse.Namespace) -> bool:
    for name, least, most in (("paths", 1, 1_000_000), ("jobs", 0, 1024), ("seed", 0, 2**63 - 1)):
        value = getattr(args, name)
        if value is not None and not least <= value <= most:
            bound = f"at least {least}" if value < least else f"at most {most}"
            print(f"sendplan: error: --{name} must be {bound}", file=sys.stderr)
            return False
    return True


def _run_batch(args: argparse.Namespace, specs: list) -> int:
    """Run a batch (``run`` or ``sweep``) and turn its outcome into the exit-code contract."""
    from .batch import run_batch

    jobs = args.jobs
    if jobs == 0:
        jobs = os.cpu_count() or 1
    try:
        result = run_batch(
            specs,
            args.out,
            jobs=jobs if jobs is not None else (None if args.scheduler else 1),
            scheduler=args.scheduler,
            fmt=args.format,
            paths=args.paths,
            seed=args.seed,
            solver=args.solver,
            export_lp=args.export_lp,
            reports=args.reports,
            overrides=args.overrides,
            progress=args.progress,
            overwrite=args.overwrite,
        )
    except OSError as e:  # the scheduler cannot be reached, or OUT cannot be created
        print(f"sendplan: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for w in result.warnings:
        print(f"sendplan: warning: {w}", file=sys.stderr)
    n = len(result.outcomes)
    where = result.out / "comparison.csv" if result.comparison_written else "not written"
    print(
        f"{n} scenario{'s' if n != 1 else ''}: {len(result.ok)} ok, {len(result.failed)} failed, "
        f"{len(result.bad_input)} bad input; comparison: {where}"
    )
    return result.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    if not _batch_arguments_ok(args):
        return EXIT_BAD_INPUT
    return _run_batch(args, list(args.scenarios) or [None])


def cmd_sweep(args: argparse.Namespace) -> int:
    from .batch import parse_grid, sweep_specs

    if not _batch_arguments_ok(args):
        return EXIT_BAD_INPUT
    try:
        grid = parse_grid(args.grid)
    except ScenarioError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        return EXIT_BAD_INPUT
    return _run_batch(args, sweep_specs(args.base, grid, args.overrides))


def cmd_backtest(args: argparse.Namespace) -> int:
    from .backtest import command

    return command(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {
        "run": cmd_run,
        "sweep": cmd_sweep,
        "validate": cmd_validate,
        "schema": cmd_schema,
        "data": cmd_data,
        "backtest": cmd_backtest,
        "init": cmd_init,
    }[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("sendplan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
