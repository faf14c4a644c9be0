"""Batch benchmark: 20 scenarios with --jobs 2 against --jobs 1, printing the measured speed-up.

Target: close to 2 on a 2-core machine (scenarios are independent; the only serial parts are
starting the worker processes and writing the comparison). Also checks the two runs wrote
byte-identical CSVs. Run: `python -m benchmarks batch` or `python benchmarks/bench_batch.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.batch import run_batch, sweep_specs  # noqa: E402


def _csvs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.csv"))}


def _spin(n: int) -> int:
    """Pure CPU work with no I/O and no shared state."""
    return sum(i * i for i in range(n))


def machine_ceiling(jobs: int, n: int = 20_000_000) -> float:
    """Speed-up of ``jobs`` processes over one on pure CPU work, measured now: what the machine
    (and whatever else is running on it) allows any parallel batch to reach."""
    import multiprocessing

    t0 = time.perf_counter()
    for _ in range(jobs):
        _spin(n)
    serial = time.perf_counter() - t0
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        t0 = time.perf_counter()
        pool.map(_spin, [n] * jobs)
        parallel = time.perf_counter() - t0
    return serial / parallel


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenarios", type=int, default=20, help="scenarios in the batch (default 20)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes to compare with 1")
    ap.add_argument(
        "--paths", type=int, default=50, help="Monte Carlo paths per scenario (default 50)"
    )
    ap.add_argument("--no-reports", dest="reports", action="store_false", help="skip reports")
    args = ap.parse_args(argv if argv is not None else [])

    # Twenty variants of the Devon default: EHCP growth from 6% to 14%.
    n = args.scenarios
    values = [f"{0.06 + 0.08 * i / max(n - 1, 1):.4f}" for i in range(n)]
    specs = sweep_specs(None, [("demand.growth", [(v, float(v)) for v in values])])
    quiet = {"progress": False, "echo": lambda line, err: None}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        timings: dict[int, float] = {}
        for jobs in (1, args.jobs):
            out = Path(tmp) / f"jobs{jobs}"
            t0 = time.perf_counter()
            result = run_batch(
                specs, out, jobs=jobs, paths=args.paths, reports=args.reports, **quiet
            )
            timings[jobs] = time.perf_counter() - t0
            if result.exit_code != 0:
                bad = [line for o in result.outcomes if o.status != "ok" for line in o.lines()]
                raise SystemExit("benchmark batch failed:\n" + "\n".join(bad))
        identical = _csvs(Path(tmp) / "jobs1") == _csvs(Path(tmp) / f"jobs{args.jobs}")
    speedup = timings[1] / timings[args.jobs]
    ceiling = machine_ceiling(args.jobs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"scenarios: {n} (Devon default, {args.paths} paths), cpus: {os.cpu_count()}, "
          f"reports: {args.reports}, load average at the end: {load:.2f}")  # fmt: skip
    print(f"--jobs 1: {timings[1]:.2f} s ({timings[1] / n:.2f} s per scenario)")
    print(f"--jobs {args.jobs}: {timings[args.jobs]:.2f} s")
    print(f"speed-up --jobs {args.jobs} vs --jobs 1: {speedup:.2f}x (target close to {args.jobs})")
    print(
        f"machine ceiling now (pure CPU work, {args.jobs} processes vs 1): {ceiling:.2f}x; "
        f"batch efficiency against it: {speedup / ceiling:.0%}"
    )
    print(f"CSV outputs byte-identical: {identical}")


if __name__ == "__main__":
    main(sys.argv[1:])
