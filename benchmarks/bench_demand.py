"""Demand benchmark: seconds per 10,000 Monte Carlo paths for the Devon default at full resolution.

Full resolution: 11 years x 26 ages x 12 needs x 8 localities per path, growth, incidence and
cessation drawn per path and exact Poisson noise on every cell's joiners and leavers (about 500
million draws per 10,000 paths). Target: about 1 s on a 2-core machine. Also prints the time
without Poisson noise and the time of the tables' quantiles. Run: `python -m benchmarks demand`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.demand import run_demand  # noqa: E402
from model.io import load_scenario  # noqa: E402


def _best(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall time, the CPU time of that run (all threads), and the result."""
    best, cpu, out = float("inf"), float("nan"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return best, cpu, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--paths", type=int, default=10_000, help="Monte Carlo paths (default 10,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    ap.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    args = ap.parse_args(argv if argv is not None else [])

    scn = load_scenario(None).scenario
    paths = args.paths
    run_demand(scn, 200, 1, threads=args.threads)  # warm up imports and caches
    secs, cpu, res = _best(lambda: run_demand(scn, paths, 1, threads=args.threads), args.repeat)
    quiet = load_scenario(None, ["demand.uncertainty.poisson=false"]).scenario
    secs_np, cpu_np, _ = _best(
        lambda: run_demand(quiet, paths, 1, threads=args.threads), args.repeat
    )
    t0 = time.perf_counter()
    res.tables()
    secs_tables = time.perf_counter() - t0
    per = 10_000 / paths
    shape = "x".join(str(n) for n in res.path_stock.shape)
    print(
        f"paths: {paths}, cpus: {os.cpu_count()}, path_stock: {shape} float32 "
        f"({res.path_stock.nbytes / 1e9:.2f} GB)"
    )
    print(
        f"seconds per 10,000 paths (Poisson flows): {secs * per:.2f} s wall, "
        f"{cpu * per:.2f} s CPU (target about 1 s wall)"
    )
    print(
        f"seconds per 10,000 paths (no Poisson):    {secs_np * per:.2f} s wall, {cpu_np * per:.2f} s CPU"
    )
    print(
        f"load average while measuring: {os.getloadavg()[0]:.2f} (other work slows the wall time)"
    )
    print(f"tables (P10/P50/P90 by year, locality, need, phase): {secs_tables:.2f} s")
    print(f"Devon 2025 plans P50: {res.headline()['plans']['2025']:,.0f} (SEN2: 9,848)")


if __name__ == "__main__":
    main(sys.argv[1:])
