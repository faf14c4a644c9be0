"""Process benchmark: what the statutory pipeline adds to a default run (target: 10% or less).

Times, in one run on this machine: the process stage alone (the monthly pipeline for the default's
Monte Carlo paths, its reviews, process.csv and the summary KPIs), a whole default run with it
(``run_scenario``: pipeline, demand, placements, LP, costs, finance) and the same run with the
``process`` section removed (and the former one-off backlog of 350 plans restored, so both runs
carry similar numbers of plans). Prints the stage's share of the run, the target, and the
with/without ratio (which also moves with the plans the downstream stages place).
Run: `python -m benchmarks process`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.engine import run_scenario  # noqa: E402
from model.io import dump_yaml, load_scenario, load_scenario_text  # noqa: E402
from model.process import pipeline_for  # noqa: E402


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the best is reported")
    ap.add_argument("--paths", type=int, default=None, help="paths (default: the scenario's)")
    args = ap.parse_args(argv if argv is not None else [])

    with_proc = load_scenario(None)
    scn = with_proc.scenario
    paths = args.paths or scn.run.paths
    data = dict(with_proc.resolved)
    data.pop("process")
    # like with like: the default as it was before the pipeline (a one-off backlog of 350 plans)
    data["demand"] = {**data["demand"], "backlog": [{"year": 2025, "plans": 350}]}
    without = load_scenario_text(dump_yaml(data), "devon-without-process.yaml")

    def stage() -> None:
        res = pipeline_for(scn, paths, scn.run.seed, "embedded:devon")
        assert res is not None
        res.tables()
        res.headline()

    stage()  # warm up imports
    run_scenario(without, paths=paths)  # and the demand kernel and solver
    t_stage = _best(stage, max(args.repeat, 3))
    t_with, t_without = float("inf"), float("inf")
    for _ in range(args.repeat):  # interleaved, so load from other work hits both alike
        t_with = min(t_with, _best(lambda: run_scenario(with_proc, paths=paths), 1))
        t_without = min(t_without, _best(lambda: run_scenario(without, paths=paths), 1))
    print(f"paths: {paths}, cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    print(f"process stage alone: {t_stage:.3f} s")
    print(f"default run with the process stage: {t_with:.2f} s; without it: {t_without:.2f} s")
    print(
        f"process stage / default run: {t_stage / t_with:.3f} (target 0.10 or less); "
        f"run with / without: {t_with / t_without:.3f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
