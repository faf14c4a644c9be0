"""Robust planning: plan for a demand quantile, then see how the fixed build plan fares on every path.

``plan_stock`` gives the demand the plan must serve (``policy.plan_for``); ``evaluate_paths`` runs
the optimised placement pattern, with the build plan fixed, against each Monte Carlo path's demand
using the placement stage's capacity-limited allocation (spill to the nearest spare place, then
overflow), and the unmitigated pattern beside it, so the report can say what the plan costs and
how many children it leaves without a place across the paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..costs import builds_capital
from ..montecarlo import MAX_ROBUST_PATHS, PathRuns, PlanPattern, derive_path_new, run_paths
from ..scenario import Scenario
from .formulation import child_cost, need_available
from .inputs import LPInputs
from .readback import Allocation


def plan_stock(
    scn: Scenario, demand: Any, q: float
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Stock and new plans [T, A, N, L] the plan is built for, and a note for the summary.

    q = 0.5 (the default) plans for the central forecast, the demand the unmitigated variant uses,
    so the two variants compare like with like. Another quantile scales every locality's central
    stock in each year to the q-quantile of that locality-year's total plans across the Monte
    Carlo paths (keeping the central age and need pattern, which per-cell quantiles of noisy small
    counts would not), with new plans re-derived so the stock-flow identity still holds.
    """
    stock = np.asarray(demand.stock, float)
    new = np.asarray(demand.new, float)
    ps = getattr(demand, "path_stock", None)
    if abs(q - 0.5) < 1e-12:
        return stock, new, {"plan_for": q, "demand": "central forecast"}
    if ps is None or np.asarray(ps).shape[0] <= 1:
        return (
            stock,
            new,
            {
                "plan_for": q,
                "demand": "central forecast",
                "note": "plan_for needs Monte Carlo paths (run.paths > 1); planned for the central "
                "forecast",
            },
        )
    ps = np.asarray(ps, float)
    target = np.quantile(ps.sum(axis=(2, 3)), q, axis=0)  # [T, L]
    central = stock.sum(axis=(1, 2))  # [T, L]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(central > 0, target / np.where(central > 0, central, 1.0), 1.0)
    stock_q = stock * ratio[:, None, None, :]
    new_q = derive_path_new(stock_q[None], stock, new)[0]
    return (
        stock_q,
        new_q,
        {
            "plan_for": q,
            "demand": f"P{round(100 * q)} of each locality's plans by year across "
            f"{ps.shape[0]} Monte Carlo paths",
            "plans_by_year": {
                int(y): round(float(v), 1)
                for y, v in zip(scn.years, stock_q.sum(axis=(1, 2, 3)), strict=True)
            },
        },
    )


def entrant_pattern(d: LPInputs, a: Allocation) -> tuple[np.ndarray, np.ndarray]:
    """Where the optimised plan sends each band's entrants: shares [T, L, N, P, B, S] and unmet share.

    Cells the central forecast leaves empty (a path may fill them) use the cheapest suitable
    setting that can take a child from home.
    """
    ent = d.entrants  # [T, L, N, P, B]
    by_setting = a.by_setting()  # [T, L, N, P, B, S]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(
            ent[..., None] > 0, by_setting / np.where(ent > 0, ent, 1.0)[..., None], 0.0
        )
        unmet = np.where(ent > 0, a.unmet / np.where(ent > 0, ent, 1.0), 0.0)
    cost = child_cost(d)  # [L, N, P, B, S]
    c = np.where(need_available(d), cost, np.inf)  # [L, N, P, B, S]
    best = np.argmin(c, axis=-1)
    fallback = np.eye(len(d.settings))[best] * np.isfinite(c.min(-1))[..., None]
    empty = ent <= 0
    share = np.where(empty[..., None], fallback[None], share)
    return share, unmet


def plan_pattern(scn: Scenario, d: LPInputs, a: Allocation, builds: Any) -> PlanPattern:
    """The optimised plan as the Monte Carlo paths follow it: entrant pattern, builds open by year
    (after their lead times), independent settings and the builds' capital."""
    share, unmet_share = entrant_pattern(d, a)
    extra = np.zeros_like(a.build_places)
    T = len(d.years)
    for s in range(len(d.settings)):  # settings only: builds open from year_decided + lead
        lag = int(d.lead_time_years[s])
        if lag < T:
            extra[lag:, s] = np.cumsum(a.build_places[:, s], axis=0)[: T - lag]
    capital = float(builds_capital(scn, builds)["cost_gbp"].sum()) if len(builds) else 0.0
    return PlanPattern(share, unmet_share, d.first_decision, extra, d.independent, capital)


# summary.json's robustness while a run has deferred the check (``engine.complete_robustness``)
DEFERRED_NOTE = (
    "deferred: this run (an app lever's answer) left the robustness check out; writing its "
    "outputs (the app's downloads) runs it"
)


def robustness_summary(
    runs: PathRuns | None, last_year: int, deferred: bool = False
) -> dict[str, Any]:
    """summary.json's ``optimisation.robustness`` from the paths' results (``deferred``: the run
    left the check for later)."""
    r = runs.robust if runs is not None else None
    if deferred and runs is not None:
        return {"paths_evaluated": 0, "deferred": True, "note": DEFERRED_NOTE}
    if r is None:
        return {"paths_evaluated": 0, "note": "needs Monte Carlo paths (run.paths > 1)"}
    saving = r.unmitigated_cost_gbp - r.plan_cost_gbp
    unmet_v = r.unplaced_last

    def q(v: np.ndarray) -> dict[str, float]:
        p10, p50, p90 = np.quantile(v, [0.1, 0.5, 0.9])
        return {
            "p10": round(float(p10), 1),
            "p50": round(float(p50), 1),
            "p90": round(float(p90), 1),
        }

    last = int(last_year)
    return {
        "paths_evaluated": int(len(r.paths)),
        "method": "fixed build plan; each path's entrants follow the optimised pattern by band, "
        "limited by committed + new places, spilling to the nearest spare place then to the "
        "overflow setting (the placement stage's allocation); unmitigated pattern on the same "
        "path for the saving",
        "total_cost_gbp": q(r.plan_cost_gbp),
        "saving_vs_unmitigated_gbp": {
            **q(saving),
            "share_of_paths_positive": float((saving > 0).mean()),
        },
        f"unplaced_children_{last}": {**q(unmet_v), "max": round(float(unmet_v.max()), 1)},
        f"independent_places_{last}": q(r.independent_last),
        f"independent_places_{last}_unmitigated": q(r.independent_unmitigated_last),
    }


def evaluate_paths(
    scn: Scenario,
    demand: Any,
    d: LPInputs,
    a: Allocation,
    builds: Any,
    max_paths: int = MAX_ROBUST_PATHS,
) -> dict[str, Any]:
    """Cost and unplaced children of the fixed build plan across Monte Carlo paths.

    For each path (up to ``max_paths``, evenly spaced): entrants by band follow the optimised
    pattern (today's pattern before the first decision year, as in the plan itself); places are
    limited by committed capacity plus the plan's builds; children who do not fit spill to the
    nearest spare place or go to the overflow setting, as in the unmitigated allocation. Cost =
    HNB placements + transport (both by financial year, summed) + capital of the builds. The
    unmitigated pattern on the same path gives the saving. (The engine runs the same through
    ``model.montecarlo.run_paths`` together with the finance bands.)
    """
    runs = run_paths(
        scn,
        demand,
        pattern=plan_pattern(scn, d, a, builds),
        finance=False,
        max_robust_paths=max_paths,
    )
    return robustness_summary(runs, d.years[-1])
