"""Sufficiency optimisation: the LP that plans places and new capacity at least cost.

Three steps a user can call separately (formulation in docs/decisions/0004-sufficiency-lp.md):

    model = build(scn, pdemand)              # vectorised families of variables and constraints
    solution = solve(model, solver="highs")  # HiGHS in one call (or CBC through PuLP)
    result = read_back(scn, pdemand, model, solution)

``optimise`` does all three. ``model.to_pulp()`` gives the identical PuLP problem (to inspect, extend,
solve with any PuLP solver or export: ``model.mps_text()`` is PuLP's writeMPS of it).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..costs import cost_table
from ..placements import PlacementDemand, PlacementPlan, placement_demand
from ..placements import unmitigated as unmitigated_plan
from ..scenario import Scenario
from ..stages import report_stage
from .formulation import build_linear_model
from .inputs import LPInputs, first_decision_year, prepare_inputs
from .linear import LinearModel, PulpModel, to_pulp
from .readback import (
    Allocation,
    allocation,
    binding_limits,
    build_decisions,
    builds_table,
    independent_floor,
    placement_plan,
    share_breaches,
    soft_limit_breaches,
    sufficiency_table,
    unmet_in_place,
)
from .robust import evaluate_paths, plan_stock
from .saving import CAUSES, cause_pieces, saving_by_cause
from .solve import (
    MIP_REL_GAP,
    Solution,
    highs_available,
    solve_cbc,
    solve_highs,
)
from .warm import ScopedWarmStarts, WarmStarts

__all__ = [
    "SufficiencyModel",
    "SufficiencyResult",
    "build",
    "solve",
    "read_back",
    "optimise",
    "optimise_scenario",
    "compare_variants",
    "no_build_plan",
    "saving",
    "SavingResult",
    "cause_pieces",
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
    pdemand: PlacementDemand,
    fixed_builds: np.ndarray | None = None,
    prune: bool = True,
    before: PlacementPlan | None = None,
) -> SufficiencyModel:
    """Build the LP for one placement demand.

    ``fixed_builds`` [T, S, K] (places) pins the build plan; ``prune=False`` keeps the columns an
    optimum never needs (for checking that pruning is exact). Entrants before
    ``policy.first_decision_year`` keep the placements of ``before``: the unmitigated forecast of
    this demand (computed here when not given; that needs a full PlacementDemand).
    """
    t0 = time.perf_counter()
    f = max(first_decision_year(scn) - int(pdemand.years[0]), 1)
    if before is None and np.asarray(pdemand.entrants)[1:f].any():
        before = unmitigated_plan(scn, pdemand)  # type: ignore[arg-type]
    d = prepare_inputs(scn, pdemand, before)
    d.prune = prune
    lp = build_linear_model(d)
    if fixed_builds is not None:
        lp = _pinned(lp, d, fixed_builds)
    return SufficiencyModel(d, lp, time.perf_counter() - t0, fixed_builds)


def _pinned(lp: LinearModel, d: LPInputs, fixed_builds: np.ndarray) -> LinearModel:
    """``lp`` with its builds pinned at ``fixed_builds`` [T, S, K] places: a copy whose build
    block has its own bounds (every other block, and the coefficients, shared and never changed)."""
    ids = lp.ids.get("build")
    if ids is None or not (ids >= 0).any():  # a short horizon may leave nothing to build
        return lp
    have = ids >= 0
    blk = lp.variables["build"]
    units = fixed_builds[have] / d.build_unit_places[np.nonzero(have)[1]]
    pos = ids[have] - blk.start
    lower, upper = blk.lower.copy(), blk.upper.copy()
    lower[pos] = units
    upper[pos] = units
    pinned = dataclasses.replace(blk, lower=lower, upper=upper)
    return dataclasses.replace(lp, variables={**lp.variables, "build": pinned})


def pinned_model(model: SufficiencyModel, fixed_builds: np.ndarray) -> SufficiencyModel:
    """``model`` (built for the same scenario and demand) with its builds pinned at
    ``fixed_builds``: the LP ``build`` would make with them, without building it again."""
    lp = _pinned(model.lp, model.inputs, fixed_builds)
    return SufficiencyModel(model.inputs, lp, 0.0, fixed_builds)


def solve(
    model: SufficiencyModel,
    solver: str = "highs",
    time_limit: float | None = None,
    mip_gap: float = MIP_REL_GAP,
    mip_time_limit: float | None = None,
    warm: ScopedWarmStarts | None = None,
    on_builds: Callable[[pd.DataFrame], None] | None = None,
    branch_and_bound: bool = True,
) -> Solution:
    """Solve with HiGHS (default) or CBC within ``time_limit`` seconds in all; falls back to CBC,
    with a note, if highspy is missing. Whole-unit builds stop at ``mip_gap`` (see solve_highs);
    ``on_builds`` hears each whole-unit plan as builds.csv rows before it is re-solved (HiGHS
    only): the rounded plan, then branch and bound's if it betters it. Without
    ``branch_and_bound`` HiGHS's rounded plan stands even outside the gap (status provisional).

    From scratch unless ``warm`` holds the last run's basis of an LP with the same dimensions: the
    primal simplex then starts from it where only costs changed (it is still primal feasible), the
    dual simplex otherwise, several times faster than from scratch (warm.py, decision 0004)."""
    if solver == "highs" and highs_available():
        return solve_highs(
            model.lp,
            time_limit,
            mip_gap,
            mip_time_limit,
            stage=report_stage,
            warm=warm,
            on_rounded=_as_builds(model, on_builds) if on_builds is not None else None,
            branch_and_bound=branch_and_bound,
        )
    sol = solve_cbc(model.lp, model.to_pulp(), time_limit, mip_gap, stage=report_stage)
    if solver == "highs":
        sol.notes.append("highspy is not installed: solved with CBC instead")
    return sol


def _as_builds(
    model: SufficiencyModel, on_builds: Callable[[pd.DataFrame], None]
) -> Callable[[np.ndarray, np.ndarray], None]:
    """``solve_highs``' whole-unit plans (units of its integer columns) handed to ``on_builds``
    as builds.csv rows."""

    def rounded(icols: np.ndarray, units: np.ndarray) -> None:
        x = np.zeros(model.lp.n_cols)
        x[icols] = units
        on_builds(builds_table(model.inputs, *build_decisions(model.lp, model.inputs, x)))

    return rounded


def read_back(
    scn: Scenario, pdemand: PlacementDemand, model: SufficiencyModel, sol: Solution
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
    builds = builds_table(d, a.build_places, a.build_units)
    suff = sufficiency_table(m, d, a, plan, sol)
    unmet = unmet_in_place(d, a)
    indep = d.independent
    summary: dict[str, Any] = {
        "solver": sol.solver,
        "status": sol.status,
        "objective_gbp": sol.objective,
        "objective_note": "present value (base year) of the spend the LP controls: placements and "
        "transport of entrants from the first decision year, capital of new builds, unmet "
        "penalty; legacy placements and those made before the first decision year excluded",
        "first_decision_year": first_decision_year(scn),
        "first_decision_note": "placements and builds are decided from this academic year "
        "(January census year); entrants of earlier years are placed as in the unmitigated "
        "forecast, so both variants are identical before it",
        "build_seconds": round(model.build_seconds, 4),
        "solve_seconds": round(sol.seconds, 4),
        **model.size,
        "integer_builds": d.integer_builds,
        "mip_gap": sol.mip_gap,
        "mip_gap_target": scn.policy.mip_gap if d.integer_builds else None,
        "lp_bound_gbp": sol.lp_bound,
        "best_bound_gbp": sol.best_bound,
        "solve_stages_seconds": {k: round(v, 4) for k, v in sol.stages.items()},
        "time_limit_seconds": scn.run.time_limit_seconds,
        "notes": list(sol.notes),
        "binding_policy_limits": binding_limits(m, d, sol, plan),
        "policy_share_breaches": share_breaches(m, d, sol.x),
        "limit_modes": scn.policy.limits.model_dump(),
        "limit_breaches": soft_limit_breaches(m, d, a),
        "unmet_places_by_year": {int(y): float(v) for y, v in zip(d.years, unmet, strict=True)},
        "new_places_by_setting": {
            str(s): round(float(v), 6) for s, v in builds.groupby("setting")["places"].sum().items()
        },
        "capital_cost_gbp": float(builds["capital_cost_gbp"].sum()),
        "independent_places_by_year": {
            int(y): float(v)
            for y, v in zip(d.years, plan.by_setting()[:, indep].sum(-1), strict=True)
        },
        # what a cap on the independent share cannot push below (placed before the first
        # decision year, or in a band only independent settings suit)
        "independent_places_floor_by_year": {
            int(y): float(v) for y, v in zip(d.years, independent_floor(d), strict=True)
        },
    }
    summary["readback_seconds"] = round(time.perf_counter() - t0, 4)
    return SufficiencyResult(plan, builds, suff, summary, model, sol, a)


def optimise(
    scn: Scenario,
    pdemand: PlacementDemand,
    solver: str | None = None,
    export_lp: bool = False,
    time_limit: float | None = None,
    fixed_builds: np.ndarray | None = None,
    before: PlacementPlan | None = None,
    warm: ScopedWarmStarts | None = None,
    on_builds: Callable[[pd.DataFrame], None] | None = None,
    branch_and_bound: bool = True,
    model: SufficiencyModel | None = None,
    on_model: Callable[[SufficiencyModel], None] | None = None,
) -> SufficiencyResult:
    """Build, solve and read back the sufficiency LP for one placement demand.

    ``before``: the unmitigated forecast of this demand, if already computed (see ``build``);
    ``warm``: bases kept between runs, ``on_builds``: hears the rounded builds and
    ``branch_and_bound``: False defers it (``solve``). ``model``: this LP built already (with
    ``fixed_builds`` pinned: ``pinned_model``); ``on_model`` hears the model once built.
    """
    if model is None:
        model = build(scn, pdemand, fixed_builds, before=before)
    if on_model is not None:
        on_model(model)
    sol = solve(
        model,
        solver or scn.run.solver,
        time_limit or scn.run.time_limit_seconds,
        scn.policy.mip_gap,
        scn.policy.mip_time_limit_seconds,
        warm,
        on_builds,
        branch_and_bound,
    )
    res = read_back(scn, pdemand, model, sol)
    if export_lp:
        res.mps_text = model.mps_text()
    return res


def optimise_scenario(
    scn: Scenario,
    demand: Any,
    pdemand: PlacementDemand,
    solver: str | None = None,
    export_lp: bool = False,
    robust: bool = True,
    before: PlacementPlan | None = None,
    warm: WarmStarts | None = None,
    on_builds: Callable[[pd.DataFrame], None] | None = None,
    branch_and_bound: bool = True,
    on_model: Callable[[SufficiencyModel | None], None] | None = None,
) -> SufficiencyResult:
    """The engine's entry point: plan for ``policy.plan_for``, report on the central forecast.

    At plan_for 0.5 one LP plans and places on the central forecast. At another quantile the build
    plan comes from the LP on that quantile's demand (its objective and model.mps are the summary's),
    and the placements, costs and shadow prices from the LP on the central forecast with those
    builds fixed, so the optimised variant compares like with like with the unmitigated one.
    ``robust`` adds how the fixed build plan fares across the Monte Carlo paths. ``before`` is the
    unmitigated forecast of ``pdemand`` (its placements before the first decision year are kept).
    ``warm``: bases kept between runs, one set per LP (``solve``). ``on_builds``: hears the
    rounded whole-unit builds of the LP that decides them, before it is re-solved (``solve``).
    ``branch_and_bound``: False lets that LP's rounded plan stand outside the gap (``solve``).
    ``on_model`` hears, once, the central forecast's LP as built where it decides the plan (the
    saving's no-build LP is that LP with no builds), else None at once.
    """
    q = scn.policy.plan_for
    stock_q, new_q, note = (
        plan_stock(scn, demand, q)
        if demand is not None
        else (None, None, {"plan_for": q, "demand": "central forecast"})
    )
    if note["demand"] == "central forecast":
        res = optimise(
            scn,
            pdemand,
            solver,
            export_lp,
            before=before,
            warm=_scope(warm, "plan"),
            on_builds=on_builds,
            branch_and_bound=branch_and_bound,
            on_model=on_model,
        )
    else:
        if on_model is not None:  # the plan's LP is on another demand: nothing to share
            on_model(None)
        planning = optimise(
            scn,
            placement_demand(scn, stock_q, new_q),
            solver,
            export_lp,
            warm=_scope(warm, "plan"),
            on_builds=on_builds,
            branch_and_bound=branch_and_bound,
        )
        res = optimise(
            scn,
            pdemand,
            solver,
            False,
            fixed_builds=planning.allocation.build_places,
            before=before,
            warm=_scope(warm, "central"),
        )
        central = {k: res.summary[k] for k in _LP_KEYS}
        res.summary.update({k: planning.summary[k] for k in _LP_KEYS})
        res.summary["central_reallocation"] = {
            **central,
            "note": "the central forecast placed with the build plan fixed: placements, costs "
            "and shadow prices come from this LP",
        }
        res.summary["planning_unmet_places_by_year"] = planning.summary["unmet_places_by_year"]
        res.mps_text = planning.mps_text
    res.summary["plan_for"] = note
    if robust and demand is not None:
        t0 = time.perf_counter()
        res.summary["robustness"] = evaluate_paths(
            scn, demand, res.model.inputs, res.allocation, res.builds
        )
        res.summary["robustness"]["seconds"] = round(time.perf_counter() - t0, 3)
    return res


_LP_KEYS = (
    "solver",
    "status",
    "objective_gbp",
    "build_seconds",
    "solve_seconds",
    "readback_seconds",
    "variables",
    "constraints",
    "nonzeros",
    "mip_gap",
    "lp_bound_gbp",
    "best_bound_gbp",
    "solve_stages_seconds",
    "notes",
)


def compare_variants(
    scn: Scenario, costs: pd.DataFrame, unmitigated: PlacementPlan, optimised: PlacementPlan
) -> dict[str, Any]:
    """Saving (unmitigated - optimised, all funding sources, reported financial years) and the
    independent placements the optimised plan avoids."""
    tot = costs.pivot_table(
        index="year", columns="variant", values="cost_gbp", aggfunc="sum", fill_value=0.0
    )
    by_src = costs.pivot_table(
        index="funding_source", columns="variant", values="cost_gbp", aggfunc="sum", fill_value=0.0
    )
    saving_fy = tot["unmitigated"] - tot["optimised"]
    indep = [i for i, s in enumerate(optimised.settings) if not scn.settings[s].state_funded]
    u_ind = unmitigated.by_setting()[:, indep].sum(-1)
    o_ind = optimised.by_setting()[:, indep].sum(-1)
    return {
        "total_cost_gbp": {v: round(float(tot[v].sum())) for v in tot.columns},
        "saving_gbp": round(float(saving_fy.sum())),
        "saving_by_funding_source_gbp": {
            str(k): round(float(by_src.loc[k, "unmitigated"] - by_src.loc[k, "optimised"]))
            for k in by_src.index
        },
        "saving_by_financial_year_gbp": {int(y): round(float(v)) for y, v in saving_fy.items()},
        "independent_places_avoided_by_year": {
            int(y): round(float(a - b), 1)
            for y, a, b in zip(optimised.years, u_ind, o_ind, strict=True)
        },
        "independent_place_years_avoided": round(float((u_ind - o_ind)[1:].sum()), 1),
    }


def _scope(warm: WarmStarts | None, tag: str) -> ScopedWarmStarts | None:
    return warm.scoped(tag) if warm is not None else None


def no_build_plan(
    scn: Scenario,
    pdemand: PlacementDemand,
    unmitigated: PlacementPlan,
    solver: str | None = None,
    warm: WarmStarts | None = None,
    central: Future[SufficiencyModel | None] | None = None,
) -> PlacementPlan:
    """The central LP re-solved with every build fixed at zero: what better placement within
    committed places alone achieves. Needs nothing from the optimised plan, so the engine solves
    it beside that plan's LP (where the plan builds nothing, the plan itself is the answer).
    ``central``: that LP as the optimiser built it (``optimise_scenario``'s ``on_model``), pinned
    here rather than built again (the same LP; None: built here)."""
    shape = (len(pdemand.years), len(pdemand.settings), len(pdemand.localities))
    zeros = np.zeros(shape)
    built = central.result() if central is not None else None
    return optimise(
        scn,
        pdemand,
        solver,
        fixed_builds=zeros,
        before=unmitigated,
        warm=_scope(warm, "no_build"),
        model=pinned_model(built, zeros) if built is not None else None,
    ).plan


def saving_breakdown(
    scn: Scenario,
    costs: pd.DataFrame,
    unmitigated: PlacementPlan,
    suff: SufficiencyResult,
    routing_only: PlacementPlan,
    pieces: Mapping[str, pd.Series] | None = None,
) -> dict[str, Any]:
    """summary.json's saving by cause (routing, builds, post16) and by funding source, against
    ``routing_only`` (``no_build_plan``); ``pieces``: the ``cause_pieces`` of the unmitigated
    plan or of ``routing_only`` (keys ``unmitigated``, ``no_builds``) computed already."""
    pieces = pieces or {}
    # (a plan's costs only where its pieces are not given: costing the no-build plan is the work
    # the engine does on its second thread)
    table = saving_by_cause(
        scn,
        pieces["unmitigated"]
        if "unmitigated" in pieces
        else (unmitigated, costs[costs["variant"] == "unmitigated"]),
        pieces["no_builds"]
        if "no_builds" in pieces
        else (routing_only, cost_table(scn, routing_only, None)),
        (suff.plan, costs[costs["variant"] == "optimised"]),
    )
    by_cause = table.groupby("cause")["saving_gbp"].sum()
    return {
        "saving_by_cause_gbp": {c: round(float(by_cause.get(c, 0.0))) for c in CAUSES},
        "saving_by_cause_and_source_gbp": {
            c: {
                str(r.funding_source): round(float(r.saving_gbp))
                for r in table[table["cause"] == c].itertuples()
            }
            for c in CAUSES
        },
        "saving_by_cause_note": "against the LP re-solved with no builds: routing = children "
        "under 16 and post16 = young people aged 16-25 placed better within committed places "
        "(unmitigated - no builds); builds = what the new places add for every age, net of "
        "their capital and place funding (no builds - optimised). The three add up to "
        "saving_gbp",
    }


@dataclass
class SavingResult:
    """What the optimised plan saves against the unmitigated one (summary.json's optimisation)."""

    comparison: dict[str, Any]  # compare_variants: totals, saving, independent places avoided
    by_cause: dict[str, Any]  # saving_breakdown: by cause (routing, builds, post16) and source
    places_built: float

    def summary(self) -> dict[str, Any]:
        return {**self.comparison, **self.by_cause, "places_built": self.places_built}


def saving(
    scn: Scenario,
    costs: pd.DataFrame,
    unmitigated: PlacementPlan,
    suff: SufficiencyResult,
    routing_only: PlacementPlan,
    pieces: Mapping[str, pd.Series] | None = None,
) -> SavingResult:
    """The saving stage: both variants' costs.csv rows and the no-build plan in (with ``pieces``
    as in ``saving_breakdown``), the saving and its causes out."""
    return SavingResult(
        compare_variants(scn, costs, unmitigated, suff.plan),
        saving_breakdown(scn, costs, unmitigated, suff, routing_only, pieces),
        round(float(suff.builds["places"].sum()), 6),
    )
