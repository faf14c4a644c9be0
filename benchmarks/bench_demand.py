"""Demand benchmark: seconds per 10,000 Monte Carlo paths for the Devon default at full resolution.

Full resolution: 11 years x 26 ages x 12 needs x 8 localities per path, growth, incidence and
cessation drawn per path and exact Poisson noise on every cell's joiners and leavers (about 500
million draws per 10,000 paths). Target: about 1 s on a 2-core machine. Also prints the time
without Poisson noise, the time of the tables' quantiles, what the machine is (CPU, flags, usable
CPUs, thread and BLAS settings, numba's cache state), and the time with more threads than usable
CPUs, the oversubscription a pool sized by the host's CPU count causes in a container.
Run: `python -m benchmarks demand`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import machine  # noqa: E402
from model.demand import run_demand  # noqa: E402
from model.io import load_scenario  # noqa: E402
from model.machine import available_cpus  # noqa: E402


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


def _kernel_cache_state() -> str:
    """Whether numba's on-disk cache of the year-step kernel exists before this run compiles it."""
    from model import demand

    src = Path(demand.__file__)
    where = os.environ.get("NUMBA_CACHE_DIR") or str(src.parent / "__pycache__")
    found = list(Path(where).rglob("demand_kernel.year_step*.nbi")) if Path(where).exists() else []
    writable = os.access(src.parent, os.W_OK) or bool(os.environ.get("NUMBA_CACHE_DIR"))
    state = "cached" if found else "not cached yet (compiled in this run)"
    return f"{state}; cache folder {where} ({'writable' if writable else 'read-only'})"


def _print_machine(threads: int | None, cache: str, warm: float) -> None:
    """What the figures below depend on, so two machines' figures can be compared."""
    from model import demand

    m = machine.describe()
    flags = ", ".join(m["cpu_flags"]) or "none of " + ", ".join(machine.CPU_FLAGS)
    print(
        f"CPU: {m['cpu']} (flags: {flags}; numpy SIMD: {', '.join(m.get('numpy_simd', [])) or '?'})"
    )
    print(
        f"CPUs: os.cpu_count {m['os_cpu_count']}, usable {m['available_cpus']} (affinity and "
        f"cgroup quota {m['cgroup_quota_cpus'] or 'none'}); demand threads: "
        f"{threads or m['available_cpus']}"
    )
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none set"
    print(f"thread and BLAS settings: {env}")
    pages = ", ".join(f"{k} {v}" for k, v in m["huge_pages"].items()) or "not reported"
    print(
        f"transparent huge pages: {pages}; numpy asks for them: "
        f"{m.get('numpy_madvise_hugepage', '?')} (the first touch of the paths' memory depends "
        "on both)"
    )
    kernel = getattr(demand._KERNELS, "year_step", None)
    stats = getattr(kernel, "stats", None)
    hits = f"{sum(stats.cache_hits.values())} cache hit(s), " if stats else ""
    misses = f"{sum(stats.cache_misses.values())} miss(es) (compiled)" if stats else ""
    print(
        f"numba {m.get('numba', '?')} (threading layer {m.get('numba_threading_layer')}; the "
        f"year-step kernel is single-threaded per call, threads come from the path chunks): kernel "
        f"{cache}; this process: {hits}{misses}; first 200-path run with imports {warm:.2f} s"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--paths", type=int, default=10_000, help="Monte Carlo paths (default 10,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    ap.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    ap.add_argument(
        "--oversubscribe",
        type=int,
        default=8,
        help="also time this many threads (what a pool sized by a container's host CPU count "
        "runs); 0 skips it",
    )
    args = ap.parse_args(argv if argv is not None else [])

    scn = load_scenario(None).scenario
    paths = args.paths
    cache = _kernel_cache_state()
    t0 = time.perf_counter()
    run_demand(scn, 200, 1, threads=args.threads)  # warm up imports and caches
    warm = time.perf_counter() - t0
    _print_machine(args.threads, cache, warm)
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
    if args.oversubscribe:
        n = args.oversubscribe
        over, cpu_over, _ = _best(lambda: run_demand(scn, paths, 1, threads=n), args.repeat)
        print(
            f"with {n} threads on {available_cpus()} usable CPUs (oversubscribed): "
            f"{over * per:.2f} s wall, {cpu_over * per:.2f} s CPU per 10,000 paths"
        )
    print(f"Devon 2025 plans P50: {res.headline()['plans']['2025']:,.0f} (SEN2: 9,848)")


if __name__ == "__main__":
    main(sys.argv[1:])
