"""Sufficiency optimisation: the LP that plans places and new capacity at least cost.

Three steps a user can call separately (formulation in docs/decisions/0004-sufficiency-lp.md):

    model = build(scn, pdemand)              # vectorised families of variables and constraints
    solution = solve(model, solver="highs")  # HiGHS in one call (or CBC through PuLP)
    result = read_back(scn, pdemand, model, solution)

``optimise`` does all three. ``model.to_pulp()`` gives the identical PuLP problem (to inspect, extend,
solve with any PuLP solver or export: ``model.mps_text()`` is PuLP's writeMPS of it).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..placements import PlacementPlan
from ..scenario import Scenario
from .formulation import build_linear_model
from .inputs import LPInputs, PlacementDemandLike, prepare_inputs
from .linear import LinearModel, PulpModel, to_pulp
from .readback import (
    Allocation,
    allocation,
    binding_limits,
    builds_table,
    placement_plan,
    share_breaches,
    sufficiency_table,
    unmet_in_place,
)
from .solve import Solution, highs_available, solve_cbc, solve_highs

__all__ = [
    "SufficiencyModel",
    "SufficiencyResult",
    "build",
    "solve",
    "read_back",
    "optimise",
]


@dataclass
class SufficiencyModel:
    """A built LP: its inputs, the sparse model, and (on demand) the same model in PuLP."""

    inputs: LPInputs
    lp: LinearModel
    build_seconds: float
    fixed_builds: np.ndarray | None = None  # [T, S, K] build variables fixed (robust re-solves)
    _pulp: PulpModel | None = field(default=None, repr=False)

    def to_pulp(self) -> PulpModel:
        """The PuLP problem (built once, then cached): one LpVariable per column, one row each."""
        if self._pulp is None:
            self._pulp = to_pulp(self.lp)
        return self._pulp

    def write_mps(self, path: str | Path) -> Path:
        """PuLP's writeMPS of the model exactly as solved (free MPS with readable names)."""
        path = Path(path)
        self.to_pulp().problem.writeMPS(str(path))
        return path

    def mps_text(self) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            return self.write_mps(Path(tmp) / "model.mps").read_text(encoding="utf-8")

    @property
    def size(self) -> dict[str, int]:
        return {"variables": self.lp.n_cols, "constraints": self.lp.n_rows, "nonzeros": self.lp.nnz}


@dataclass
class SufficiencyResult:
    """What the optimiser returns: the plan, the build plan, sufficiency, summary and the model."""

    plan: PlacementPlan
    builds: pd.DataFrame
    sufficiency: pd.DataFrame
    summary: dict[str, Any]
    model: SufficiencyModel
    solution: Solution
    allocation: Allocation
    mps_text: str | None = None


def build(
    scn: Scenario,
    pdemand: PlacementDemandLike,
    fixed_builds: np.ndarray | None = None,
    prune: bool = True,
) -> SufficiencyModel:
    """Build the LP for one placement demand.

    ``fixed_builds`` [T, S, K] (places) pins the build plan; ``prune=False`` keeps the columns an
    optimum never needs (for checking that pruning is exact).
    """
    t0 = time.perf_counter()
    d = prepare_inputs(scn, pdemand)
    d.prune = prune
    lp = build_linear_model(d)
    if fixed_builds is not None:
        ids = lp.ids.get("build")
        if ids is not None:
            have = ids >= 0
            blk = lp.variables["build"]
            units = fixed_builds[have] / d.build_unit_places[np.nonzero(have)[1]]
            pos = ids[have] - blk.start
            blk.lower[pos] = units
            blk.upper[pos] = units
    return SufficiencyModel(d, lp, time.perf_counter() - t0, fixed_builds)


def solve(
    model: SufficiencyModel, solver: str = "highs", time_limit: float | None = None
) -> Solution:
    """Solve with HiGHS (default) or CBC; falls back to CBC, with a note, if highspy is missing."""
    if solver == "highs" and highs_available():
        return solve_highs(model.lp, time_limit)
    sol = solve_cbc(model.lp, model.to_pulp(), time_limit)
    if solver == "highs":
        sol.notes.append("highspy is not installed: solved with CBC instead")
    return sol


def read_back(
    scn: Scenario, pdemand: PlacementDemandLike, model: SufficiencyModel, sol: Solution
) -> SufficiencyResult:
    """Turn a solution into the optimised plan, builds.csv, sufficiency.csv and a summary."""
    t0 = time.perf_counter()
    d, m = model.inputs, model.lp
    if not sol.ok:
        raise RuntimeError(
            f"the sufficiency LP was not solved ({sol.solver}: {sol.status}); "
            "check run.time_limit_seconds or export the model with --export-lp"
        )
    a = allocation(m, d, sol.x)
    plan = placement_plan(pdemand, d, a)
    builds = builds_table(d, a)
    suff = sufficiency_table(m, d, a, plan, sol)
    unmet = unmet_in_place(d, a)
    indep = d.independent
    summary: dict[str, Any] = {
        "solver": sol.solver,
        "status": sol.status,
        "objective_gbp": sol.objective,
        "objective_note": "present value (base year) of the spend the LP controls: placements and "
        "transport of new entrants, capital of new builds, unmet penalty; legacy placements excluded",
        "build_seconds": round(model.build_seconds, 4),
        "solve_seconds": round(sol.seconds, 4),
        **model.size,
        "integer_builds": d.integer_builds,
        "mip_gap": sol.mip_gap,
        "notes": list(sol.notes),
        "binding_policy_limits": binding_limits(m, d, sol),
        "policy_share_breaches": share_breaches(m, d, sol.x),
        "unmet_places_by_year": {int(y): float(v) for y, v in zip(d.years, unmet, strict=True)},
        "new_places_by_setting": {
            str(s): float(v) for s, v in builds.groupby("setting")["places"].sum().items()
        },
        "capital_cost_gbp": float(builds["capital_cost_gbp"].sum()),
        "independent_places_by_year": {
            int(y): float(v)
            for y, v in zip(d.years, plan.by_setting()[:, indep].sum(-1), strict=True)
        },
    }
    summary["readback_seconds"] = round(time.perf_counter() - t0, 4)
    return SufficiencyResult(plan, builds, suff, summary, model, sol, a)


def optimise(
    scn: Scenario,
    pdemand: PlacementDemandLike,
    solver: str | None = None,
    export_lp: bool = False,
    time_limit: float | None = None,
    fixed_builds: np.ndarray | None = None,
) -> SufficiencyResult:
    """Build, solve and read back the sufficiency LP for one placement demand."""
    model = build(scn, pdemand, fixed_builds)
    sol = solve(model, solver or scn.run.solver, time_limit or scn.run.time_limit_seconds)
    res = read_back(scn, pdemand, model, sol)
    if export_lp:
        res.mps_text = model.mps_text()
    return res
