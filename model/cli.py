"""The `sendplan` command: a thin layer over ``model.engine`` and ``model.io``.

Exit codes: 0 success, 1 a scenario failed while running, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from . import __version__
from .io import ScenarioError, load_scenario

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (its default), never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"sendplan: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sendplan", description="SEND placement sufficiency and High Needs Block forecasting."
    )
    p.add_argument("--version", action="version", version=f"sendplan {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run", help="run scenarios (the embedded Devon default when none is given)"
    )
    run.add_argument("scenarios", nargs="*", help="scenario YAML files")
    run.add_argument("--out", default="results", help="output folder (default: results/)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a scenario key (value parsed as YAML); repeatable",
    )
    run.add_argument(
        "--paths",
        type=int,
        default=None,
        help="Monte Carlo paths (default: the scenario's run.paths)",
    )
    run.add_argument(
        "--seed", type=int, default=None, help="random seed (default: the scenario's run.seed)"
    )
    run.add_argument("--jobs", type=int, default=1, help="scenarios run in parallel processes")
    run.add_argument(
        "--solver",
        choices=["highs", "cbc"],
        default=None,
        help="LP solver (default: the scenario's)",
    )
    run.add_argument(
        "--export-lp", action="store_true", help="write model.mps, the LP exactly as solved"
    )
    run.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format")

    val = sub.add_parser("validate", help="check scenario files; exit 2 with one line per problem")
    val.add_argument("scenarios", nargs="+", help="scenario YAML files")
    val.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE"
    )

    sch = sub.add_parser("schema", help="print the scenario JSON Schema")
    sch.add_argument("--markdown", action="store_true", help="print the scenario reference instead")
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


def cmd_run(args: argparse.Namespace) -> int:
    from .engine import run_scenario, write_outputs

    if args.paths is not None and args.paths < 1:
        print("sendplan: error: --paths must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    files: list[str | None] = list(args.scenarios) or [None]
    bad_input = failed = 0
    for f in files:
        try:
            resolved = load_scenario(f, args.overrides)
        except ScenarioError as e:
            bad_input += 1
            for prob in e.problems:
                print(prob, file=sys.stderr)
            continue
        try:
            results = run_scenario(
                resolved,
                paths=args.paths,
                seed=args.seed,
                solver=args.solver,
                export_lp=args.export_lp,
            )
            folder = write_outputs(results, Path(args.out), fmt=args.format)
        except Exception as e:  # one failing scenario is reported, never a bare traceback
            failed += 1
            print(f"{resolved.source}: run failed: {type(e).__name__}: {e}", file=sys.stderr)
            if "SENDPLAN_DEBUG" in __import__("os").environ:
                traceback.print_exc()
            continue
        print(f"{resolved.source}: wrote {folder}")
    if failed:
        return EXIT_FAILED
    return EXIT_BAD_INPUT if bad_input else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"run": cmd_run, "validate": cmd_validate, "schema": cmd_schema}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("sendplan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
