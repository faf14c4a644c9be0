"""Backtest benchmark: `sendplan backtest --all` (every LA with a full 2019-2025 series, origins
2021-2023, 200 paths, 2 processes) end to end, reports included. Target: under 5 minutes on a
2-core machine. Prints the seconds, the ratio to the target and the scores it reached.
Run: `python -m benchmarks backtest`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.cli import main as cli_main  # noqa: E402

TARGET_SECONDS = 300.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--paths", type=int, default=200, help="Monte Carlo paths (default 200)")
    args = ap.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "backtest"
        cmd = ["backtest", "--all", "--jobs", str(args.jobs), "--paths", str(args.paths)]
        text = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(text):
            rc = cli_main([*cmd, "--out", str(out)])
        secs = time.perf_counter() - t0
        rows = sum(1 for _ in (out / "backtest.csv").open()) - 1 if rc == 0 else 0
    print(f"cpus: {os.cpu_count()}, jobs: {args.jobs}, paths: {args.paths}, exit code: {rc}")
    print(
        f"backtest --all: {secs:.1f} s for {rows:,} rows "
        f"(target {TARGET_SECONDS:.0f} s: ratio {secs / TARGET_SECONDS:.2f})"
    )
    verdict = text.getvalue().split("sendplan against the best naive baseline at each origin:")
    print("sendplan against the best naive baseline at each origin:" + verdict[-1].split("\n\n")[0])


if __name__ == "__main__":
    main(sys.argv[1:])
