"""Whole-unit (integer) builds on the Devon default: solve time and the gap reached.

Prints, from one run on this machine: the time of each solve step (LP relaxation, whole units
rounded from it and re-solved with those builds fixed, the bound lifted by whole units, branch
and bound if the rounded plan is not yet within policy.mip_gap) and the gap proven (and the gap to
the relaxation alone), at the default gap and at a tighter 0.5%, for the Devon default, Devon with
the independent share capped at 8% (the app's cap lever) and scenarios/faster_resource_bases.yaml. Target: Devon's integer builds within 10 s
on 2 cores (measure on an idle machine; a loaded one says little).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from model import sufficiency as su
from model.demand import run_demand
from model.io import load_scenario
from model.placements import placement_demand, unmitigated

FASTER = Path(__file__).resolve().parents[1] / "scenarios" / "faster_resource_bases.yaml"
TARGET_SECONDS = 10.0


def _case(path: Path | None, overrides: list[str]) -> tuple[Any, Any, Any]:
    """The scenario, its central placement demand and the unmitigated plan (not timed)."""
    scn = load_scenario(path, overrides).scenario
    dem = run_demand(scn, paths=1, seed=scn.run.seed)
    pdm = placement_demand(scn, dem.stock, dem.new)
    return scn, pdm, unmitigated(scn, pdm)


def _one(label: str, path: Path | None, overrides: list[str]) -> dict[str, Any]:
    scn, pdm, before = _case(path, overrides)
    t0 = time.perf_counter()
    res = su.optimise(scn, pdm, before=before)
    seconds = time.perf_counter() - t0
    s = res.summary
    steps = ", ".join(f"{k} {v:.2f} s" for k, v in s["solve_stages_seconds"].items())
    units = res.builds["units"]
    print(
        f"{label:<44} {seconds:6.2f} s (build {s['build_seconds']:.2f} + solve "
        f"{s['solve_seconds']:.2f} + read-back {s['readback_seconds']:.2f}); status {s['status']}, "
        f"gap {s['mip_gap']:.3%} (target {s['mip_gap_target']:.2%}; to the relaxation alone "
        f"{(s['objective_gbp'] - s['lp_bound_gbp']) / s['objective_gbp']:.3%}); "
        f"{units.sum():.0f} units, {res.builds['places'].sum():,.0f} places; steps: {steps}",
        flush=True,
    )
    return {"seconds": seconds, "gap": s["mip_gap"], "whole": bool((units % 1 == 0).all())}


def main() -> dict[str, Any]:
    out = {
        "devon": _one("Devon default (policy.mip_gap)", None, []),
        "devon_0.5%": _one(
            "Devon, policy.mip_gap 0.5%",
            None,
            ["policy.mip_gap=0.005", "policy.mip_time_limit_seconds=120"],
        ),
        "devon_cap": _one(
            "Devon, independent share capped at 8%", None, ["policy.max_independent_share=0.08"]
        ),
        "faster": _one("faster_resource_bases.yaml", FASTER, []),
    }
    d = out["devon"]
    print(
        f"Devon integer builds: {d['seconds']:.2f} s end to end (target {TARGET_SECONDS:.0f} s on "
        f"2 cores, idle), gap {d['gap']:.3%}; builds.csv in whole units: {d['whole']}"
    )
    return out


if __name__ == "__main__":
    main()
