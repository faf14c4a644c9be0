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

from ..costs import builds_capital, fy_weights, placement_spend_fy, transport_cost_per_place
from ..finance import derive_path_new, path_indices
from ..placements import (
    _demand_batch,
    allocate,
    capacity_array,
    carried_entrants,
    desired_unmitigated,
    path_chunk,
    planned_fraction,
    spill_pairs,
)
from ..scenario import Scenario
from .formulation import child_cost, need_available
from .inputs import LPInputs
from .readback import Allocation

MAX_ROBUST_PATHS = 100  # paths evaluated (evenly spaced; paths are i.i.d.)


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
    by_setting = a.entrants.sum(axis=-1)  # [T, L, N, P, B, S]
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
    pattern (today's pattern before the first decision year, as in the plan itself); places are limited by committed capacity plus the plan's builds; children who do not
    fit spill to the nearest spare place or go to the overflow setting, as in the unmitigated
    allocation. Cost = HNB placements + transport (both by financial year, summed) + capital of the
    builds. The unmitigated pattern on the same path gives the saving.
    """
    ps = getattr(demand, "path_stock", None)
    if ps is None or np.asarray(ps).shape[0] <= 1:
        return {"paths_evaluated": 0, "note": "needs Monte Carlo paths (run.paths > 1)"}
    idx = path_indices(np.asarray(ps).shape[0], max_paths)
    ps = np.asarray(ps)[idx].astype(float)
    pn = getattr(demand, "path_new", None)
    pn = (
        np.asarray(pn)[idx].astype(float)
        if pn is not None
        else derive_path_new(ps, np.asarray(demand.stock, float), np.asarray(demand.new, float))
    )
    share, unmet_share = entrant_pattern(d, a)
    f = d.first_decision
    extra = np.zeros_like(a.build_places)
    T = len(d.years)
    for s in range(len(d.settings)):  # settings only: builds open from year_decided + lead
        lag = int(d.lead_time_years[s])
        if lag < T:
            extra[lag:, s] = np.cumsum(a.build_places[:, s], axis=0)[: T - lag]
    cap_plan = capacity_array(scn, extra)
    cap_now = capacity_array(scn)
    pairs = spill_pairs(scn)
    tr = transport_cost_per_place(scn)  # [T, L, L', S]
    W = fy_weights(T)
    capital = float(builds_capital(scn, builds)["cost_gbp"].sum()) if len(builds) else 0.0
    cost_plan, cost_now, unmet_last, indep_last, indep_now_last = [], [], [], [], []
    indep = d.independent
    chunk = path_chunk(scn)  # paths allocated at once, within a memory budget
    for lo in range(0, ps.shape[0], chunk):
        arr = _demand_batch(scn, ps[lo : lo + chunk], pn[lo : lo + chunk])
        ent = arr["entrants"]  # [K, T, L, N, P, B]
        # plans carried where nobody plans (EHE, NEET, ...) stay there; the rest follow the plan
        carried = carried_entrants(arr, arr["planned"])
        keep = planned_fraction(ent, carried)[..., None]
        desired = np.einsum("ktlnpb,tlnpbs->ktlnps", ent * keep, share) + carried
        left = np.einsum("ktlnpb,tlnpb->ktlnp", ent * keep, unmet_share)
        # before the first decision year nothing is decided: today's pattern, as unmitigated
        desired[:, :f] = desired_unmitigated(arr)[:, :f]
        left[:, :f] = 0.0
        pers = arr["persistence"]
        chain, serves, ok = arr["overflow_chain"], arr["serves_need"], arr["chain_ok"]
        places, _, unmet = allocate(
            desired,
            pers,
            arr["legacy"],
            cap_plan,
            arr["overflow"],
            pairs,
            chain,
            serves,
            ok,
            entrants=False,
        )
        waiting = np.einsum("ketlnp,kelnp->kt", pers, left + unmet)
        base, _, _ = allocate(
            desired_unmitigated(arr),
            pers,
            arr["legacy"],
            cap_now,
            arr["overflow"],
            pairs,
            chain,
            serves,
            ok,
            entrants=False,
        )
        for out, pl, ext in ((cost_plan, places, extra), (cost_now, base, None)):
            hnb = placement_spend_fy(scn, pl, ext).sum(-1)
            trans = np.einsum("ktlmnps,tlms->kt", pl, tr) @ W.sum(0)
            out.append(hnb + trans)
        unmet_last.append(waiting[:, -1])
        indep_last.append(places[:, -1][..., indep].sum(axis=(1, 2, 3, 4, 5)))
        indep_now_last.append(base[:, -1][..., indep].sum(axis=(1, 2, 3, 4, 5)))
    plan_cost = np.concatenate(cost_plan) + capital
    now_cost = np.concatenate(cost_now)
    saving = now_cost - plan_cost
    unmet_v = np.concatenate(unmet_last)
    ind_v = np.concatenate(indep_last)
    ind_now = np.concatenate(indep_now_last)

    def q(v: np.ndarray) -> dict[str, float]:
        p10, p50, p90 = np.quantile(v, [0.1, 0.5, 0.9])
        return {
            "p10": round(float(p10), 1),
            "p50": round(float(p50), 1),
            "p90": round(float(p90), 1),
        }

    last = int(d.years[-1])
    return {
        "paths_evaluated": int(ps.shape[0]),
        "method": "fixed build plan; each path's entrants follow the optimised pattern by band, "
        "limited by committed + new places, spilling to the nearest spare place then to the "
        "overflow setting (the placement stage's allocation); unmitigated pattern on the same "
        "path for the saving",
        "total_cost_gbp": q(plan_cost),
        "saving_vs_unmitigated_gbp": {
            **q(saving),
            "share_of_paths_positive": float((saving > 0).mean()),
        },
        f"unplaced_children_{last}": {**q(unmet_v), "max": round(float(unmet_v.max()), 1)},
        f"independent_places_{last}": q(ind_v),
        f"independent_places_{last}_unmitigated": q(ind_now),
    }
