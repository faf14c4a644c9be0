"""Run benchmark: a whole default run against the HiGHS solve of its own LP.

ratio = (``run_scenario`` on the embedded Devon default at its 200 paths, plus writing its tables,
no reports) / (HiGHS's solve of the run's sufficiency LP, ``summary.solve_seconds``), both from the
same run; printed for the first run in a fresh process (as ``sendplan run``: one-off loading and
caches included) and for the same run repeated (as a batch worker or the app runs). Target: 2 or
less. Also prints where the rest of the time goes (stage by stage, from the
engine's stage reports), and the ratio against every HiGHS solve the run makes (the routing-only LP
of the saving breakdown is a second solve). The compiled allocation kernel is loaded before the
clock starts (its first compile is a one-off, cached on disk; printed separately).
Run: ``python -m benchmarks run``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from model.engine import run_scenario, write_outputs  # noqa: E402
from model.io import load_scenario  # noqa: E402
from model.machine import one_line  # noqa: E402
from model.stages import listening  # noqa: E402

TARGET = 2.0


def _load_kernel() -> float:
    """Seconds to load (or, the first time on a machine, compile) the allocation kernel."""
    from model.placements import allocate

    t0 = time.perf_counter()
    z = np.zeros((1, 1, 1, 1, 1, 1))
    allocate(z, np.zeros((1, 1, 1, 1, 1, 1)), z, np.ones((1, 1, 1)), np.array([-1]), [])
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, float]:
    print(one_line())
    print(f"allocation kernel loaded in {_load_kernel():.2f} s (not in the ratio)")
    resolved = load_scenario(None)
    out: dict[str, float] = {}
    for label in ("first run in a fresh process (as `sendplan run`)", "the same run repeated "
                  "(a batch worker's or the app's next run)"):  # fmt: skip
        marks: list[tuple[str, float]] = []
        with listening(lambda text, marks=marks: marks.append((text, time.perf_counter()))):
            t0 = time.perf_counter()
            marks.append(("before the first stage report (statutory process)", t0))
            res = run_scenario(resolved)
            t_run = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            write_outputs(res, Path(tmp), reports=False)
            t_tables = time.perf_counter() - t1
        opt = res.summary["optimisation"]
        solve = float(opt["solve_seconds"])
        whole = t_run + t_tables
        ratio = whole / solve
        print(f"== {label}: Devon default, {res.summary['paths']} paths")
        print(
            f"whole run without reports: {whole:.2f} s (run_scenario {t_run:.2f} s + tables "
            f"{t_tables:.2f} s); HiGHS solve of its LP: {solve:.2f} s "
            f"({opt.get('variables', 0):,} variables, MIP gap {opt.get('mip_gap', 0):.4f})"
        )
        print(
            f"ratio (whole run / LP solve): {ratio:.2f} (target {TARGET:g} or less: "
            f"{'met' if ratio <= TARGET else 'not met'})"
        )
        ends = [t for _, t in marks[1:]] + [t0 + t_run]
        print("stages (from the engine's stage reports; the paths' plan-free part and the saving's "
              "no-build LP run on a second thread beside the optimiser's LP):")  # fmt: skip
        for (text, start), end in zip(marks, ends, strict=True):
            print(f"  {end - start:6.2f} s  {text}")
        key = "first" if not out else "repeat"
        out.update({f"ratio_{key}": ratio, f"run_s_{key}": whole, f"solve_s_{key}": solve})
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
