"""National benchmark: `sendplan init --all`, then every LA run with `--jobs 2` at the default paths.

Target: all LAs (153) within 10 minutes on 2 cores. Each LA is one locality and runs without
report.xlsx/report.html (`--no-reports`: 153 workbooks and HTML pages are for people, not for a
national comparison; the CSVs, summary.json and the comparison with its England row are written).
Prints the seconds to write the scenarios, the seconds to run them, LAs per minute and the England
row. Run: `python -m benchmarks national` or `python benchmarks/bench_national.py [--limit N]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.batch import run_batch  # noqa: E402
from model.cli import main as sendplan  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    ap.add_argument(
        "--paths", type=int, default=None, help="Monte Carlo paths (default: each file's, 200)"
    )
    ap.add_argument(
        "--limit", type=int, default=None, help="run only the first N LAs (a quick check)"
    )
    args = ap.parse_args(argv if argv is not None else [])

    with tempfile.TemporaryDirectory(prefix="sendplan-national-") as tmp:
        las = Path(tmp) / "las"
        t0 = time.perf_counter()
        assert sendplan(["init", "--all", "--out", str(las)]) == 0
        init_s = time.perf_counter() - t0
        files = sorted(las.glob("*.yaml"))[: args.limit]
        t0 = time.perf_counter()
        result = run_batch(
            [str(f) for f in files],
            Path(tmp) / "out",
            jobs=args.jobs,
            paths=args.paths,
            reports=False,
            progress=False,
        )
        run_s = time.perf_counter() - t0
        n = len(result.ok)
        print(f"init --all: {init_s:.1f} s for {len(list(las.glob('*.yaml')))} LAs")
        print(
            f"run: {n} of {len(files)} LAs ok in {run_s:.1f} s with --jobs {args.jobs} "
            f"({60 * n / run_s:.1f} LAs per minute); total {init_s + run_s:.1f} s"
        )
        for o in result.failed + result.bad_input:
            print(f"  {o.lines()[0]}")
        total = result.comparison[result.comparison["status"] == "total"]
        if not total.empty:
            r = total.iloc[0]
            print(
                f"{r['scenario']}: plans {r['plans_base']:,.0f} in {r['base_year']:.0f} -> "
                f"P50 {r['plans_horizon']:,.0f} (P10-P90 {r['plans_horizon_p10']:,.0f}-"
                f"{r['plans_horizon_p90']:,.0f}) in {r['horizon_year']:.0f}; unmitigated HNB "
                f"spend over the forecast P50 GBP {r['hnb_spend_unmitigated_gbp_p50'] / 1e9:,.1f}bn"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
