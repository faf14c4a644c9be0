"""Read a solved LP back into domain terms: the optimised PlacementPlan, builds.csv, sufficiency.csv.

All numpy: column values are scattered into dense arrays through the builder's id lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..domain import academic_year
from ..placements import PlacementPlan
from .formulation import _persistence
from .inputs import LPInputs
from .linear import LinearModel
from .solve import Solution

TOL = 1e-6


@dataclass
class Allocation:
    """Dense decision arrays of one solution (children, or places for builds).

    Placements are kept as their two factors, band by setting (``assign``) and each setting's
    split over providers (``route_share``): their product by band and provider,
    [T, L, N, P, B, S, K], grows with localities squared times bands (780 MB at 64 localities),
    and every table needs only one of its sums (``by_setting``, ``by_provider``).
    """

    assign: np.ndarray  # [T, L, N, P, B, S] entrants placed in year t, by band and setting
    route_share: np.ndarray  # [T, L, N, P, S, K] share of those in setting s placed at provider k
    unmet: np.ndarray  # [T, L, N, P, B] entrants left without a suitable place
    build_places: np.ndarray  # [T, S, K] places decided in year t (open t + lead)
    build_units: np.ndarray  # [T, S, K] build variables (whole units with integer builds)
    solution_x: np.ndarray  # the column values read back

    def by_setting(self) -> np.ndarray:
        """[T, L, N, P, B, S] placements by band and setting, over providers (a setting whose
        routes carry nobody places nobody)."""
        return self.assign * self.route_share.sum(-1)[:, :, :, :, None, :]

    def by_provider(self) -> np.ndarray:
        """[T, L, N, P, S, K] placements by setting and provider, over bands."""
        return self.assign.sum(axis=4)[..., None] * self.route_share


def _scatter(ids: np.ndarray | None, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape)
    if ids is None:
        return out
    have = ids >= 0
    out[have] = np.maximum(x[ids[have]], 0.0)  # clip solver noise below zero
    return out


def allocation(m: LinearModel, d: LPInputs, x: np.ndarray) -> Allocation:
    """Split ``assign`` x ``route`` back into per-band, per-provider placements.

    For a capacity-limited setting the cell's children of every band go to its providers in the
    proportions the routes give (costs are separable, so this split has the LP's cost); unlimited
    settings are at the nearest provider.
    """
    T, L, N, P, B = d.entrants.shape
    S = len(d.settings)
    assign = _scatter(m.ids.get("assign"), x, (T, L, N, P, B, S))
    route = _scatter(m.ids.get("route"), x, (T, L, N, P, S, L))
    tot = route.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(tot > 0, route / np.where(tot > 0, tot, 1.0), 0.0)
    free = np.zeros((L, L))
    free[np.arange(L), d.nearest] = 1.0
    frac = np.where(
        d.limited[None, None, None, None, :, None], frac, free[None, :, None, None, None]
    )
    places, units = build_decisions(m, d, x)
    return Allocation(
        assign=assign,
        route_share=frac,
        unmet=_scatter(m.ids.get("unmet"), x, (T, L, N, P, B)),
        build_places=places,
        build_units=units,
        solution_x=np.asarray(x, float),
    )


def build_decisions(m: LinearModel, d: LPInputs, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[T, S, K] places and build variables (whole units with integer builds) decided in each
    year, from a solution's (or a rounded plan's) column values."""
    T, S, L = len(d.years), len(d.settings), len(d.localities)
    units = _scatter(m.ids.get("build"), x, (T, S, L))
    if d.integer_builds:
        units = np.round(units)
    return units * d.build_unit_places[None, :, None], units


def default_band_mix(pdemand: Any, d: LPInputs) -> np.ndarray:
    """[N, P, S, B] band composition assumed for legacy placements (as the cost stage assumes)."""
    shares = getattr(pdemand, "band_shares", None)  # [N, P, B]
    if shares is None:
        shares = np.ones((len(d.needs), len(d.phases), len(d.bands)))
    w = shares[:, :, None, :] * d.suitable.transpose(1, 2, 0)[None]  # [N, P, S, B]
    tot = w.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 0.0)


def placement_plan(pdemand: Any, d: LPInputs, a: Allocation) -> PlacementPlan:
    """The optimised PlacementPlan: legacy at home, entrants before the first decision year where
    the unmitigated forecast placed them, and the LP's entrants, still in place, with band mix.

    Fixed placements (legacy and pre-decision) carry the cost stage's default band mix, so before
    the first decision year the plan, and its costs, are the unmitigated forecast's."""
    L = len(d.localities)
    pers = _persistence(d)  # [T, T2, L, N, P]
    ent = a.by_provider()  # [T, L, N, P, S, K]
    new_inplace = np.einsum("etlnp,elnpsk->tlnpsk", pers, ent)  # [T, L, N, P, S, K]
    legacy = np.asarray(pdemand.legacy, float)  # [T, L, N, P, S]
    places = new_inplace.transpose(0, 1, 5, 2, 3, 4).copy()  # [T, L, K, N, P, S]
    diag = np.arange(L)
    places[:, diag, diag] += legacy
    places += d.early_places
    entrant_places = ent.transpose(0, 1, 5, 2, 3, 4) + d.early_entrants
    # band composition of the children in place, by home locality (fixed: default mix)
    by_band = np.einsum("etlnp,elnpbs->tlnpsb", pers, a.by_setting())  # [T, L, N, P, S, B]
    fixed = legacy + d.early_places.sum(axis=2)  # [T, L, N, P, S] by home locality
    by_band = by_band + fixed[..., None] * default_band_mix(pdemand, d)[None, None]
    tot = by_band.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        band_share = np.where(tot > 0, by_band / np.where(tot > 0, tot, 1.0), 0.0)
    return PlacementPlan(
        variant="optimised",
        years=list(d.years),
        localities=list(d.localities),
        needs=list(d.needs),
        phases=list(d.phases),
        settings=list(d.settings),
        places=places,
        entrant_places=entrant_places,
        unmet=a.unmet.sum(-1) + d.early_unmet,
        bands=list(d.bands),
        band_share=band_share,
    )


def unmet_in_place(d: LPInputs, a: Allocation) -> np.ndarray:
    """[T] children without a suitable place in each January (unmet entrants still waiting)."""
    return np.einsum("etlnp,elnp->t", _persistence(d), a.unmet.sum(-1) + d.early_unmet)


def builds_table(d: LPInputs, build_places: np.ndarray, build_units: np.ndarray) -> pd.DataFrame:
    """builds.csv: one row per decided build (capital at price-base prices, as the cost stage),
    from the [T, S, K] places and units decided (``build_decisions``)."""
    t, s, k = np.nonzero(build_places > TOL)
    years = np.asarray(d.years)
    lead = d.lead_time_years[s]
    places = build_places[t, s, k]
    return pd.DataFrame(
        {
            "year_decided": years[t],
            "year_open": years[t] + lead,
            "provider_locality": np.asarray(d.localities, dtype=object)[k],
            "setting": np.asarray(d.settings, dtype=object)[s],
            "places": places,
            "units": build_units[t, s, k],
            "capital_cost_gbp": places * d.capital_per_place_gbp[s],
        }
    )


def open_builds(d: LPInputs, a: Allocation) -> np.ndarray:
    """[T, S, K] new places open (x max_occupancy) in each year from the decided builds."""
    T = len(d.years)
    out = np.zeros_like(a.build_places)
    for s in range(len(d.settings)):  # a loop over settings only
        lag = int(d.lead_time_years[s])
        if lag < T:
            decided = np.cumsum(a.build_places[:, s, :], axis=0)  # decided by year t
            out[lag:, s, :] = decided[: T - lag]
    return out * d.occupancy


def sufficiency_table(
    m: LinearModel, d: LPInputs, a: Allocation, plan: PlacementPlan, sol: Solution
) -> pd.DataFrame:
    """sufficiency.csv: places used vs committed and new capacity, with the capacity shadow price.

    One row per (year, provider locality, capacity-limited setting) with any capacity or use.
    demand_places: children the optimised plan places there (legacy + new still in place);
    capacity_places: committed places (existing + pipeline after delays, x max_occupancy);
    new_capacity_places: the optimiser's builds open that year; gap_places = demand - committed
    capacity (positive = more places needed than committed, covered by new places);
    shadow_price_gbp: what one more place in that year saves, in that year's money (GBP per
    place-year; dual of the capacity row / the year's discount weight); shadow_price_pv_gbp: the same
    at base-year present value (the raw dual). Zero where no row exists (nothing could use a place).
    """
    T, S, K = len(d.years), len(d.settings), len(d.localities)
    used = plan.occupancy()  # [T, S, K]
    committed = np.where(np.isfinite(d.capacity), d.capacity, 0.0)
    new = open_builds(d, a)
    pv = np.zeros((T, S, K))
    row_of = m.ids.get("capacity_row_of")
    if row_of is not None and np.isfinite(sol.dual).all():
        have = row_of >= 0
        pv[have] = -sol.dual[row_of[have]]
    pv = np.where(np.abs(pv) < 1e-9, 0.0, pv)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_year = np.where(
            d.year_weight[:, None, None] > 0, pv / d.year_weight[:, None, None], 0.0
        )
    keep = d.limited[None, :, None] & ((committed > 0) | (used > TOL) | (new > TOL))
    t, s, k = np.nonzero(keep)
    years = np.asarray(d.years)
    demand = _clean(used[t, s, k])
    cap = committed[t, s, k]
    return pd.DataFrame(
        {
            "year": years[t],
            "academic_year": [academic_year(int(y)) for y in years[t]],
            "provider_locality": np.asarray(d.localities, dtype=object)[k],
            "setting": np.asarray(d.settings, dtype=object)[s],
            "demand_places": demand,
            "capacity_places": cap,
            "new_capacity_places": _clean(new[t, s, k]),
            "gap_places": _clean(demand - cap),
            "shadow_price_gbp": per_year[t, s, k],
            "shadow_price_pv_gbp": pv[t, s, k],
        }
    )


def _clean(v: np.ndarray) -> np.ndarray:
    """Solver round-off (|v| < 1e-7 places) shown as zero."""
    return np.where(np.abs(v) < 1e-7, 0.0, v)


def row_activity(m: LinearModel, x: np.ndarray) -> np.ndarray:
    return m.csr() @ x


POLICY_FAMILIES = {
    "build_per_year": "most places decided per year",
    "build_total": "most places over the horizon",
    "capital_budget_gbp_m": "capital budget (GBP m)",
    "share_independent": "maximum independent share",
    "share_mainstream": "minimum mainstream share",
}


def binding_limits(
    m: LinearModel, d: LPInputs, sol: Solution, plan: PlacementPlan | None = None
) -> list[dict[str, Any]]:
    """Policy rows at their bound (or with a non-zero dual).

    ``shadow_price_pv_gbp``: what relaxing the limit by one unit saves (present value; the unit is
    a place for build and share limits, GBP 1m for the capital budget). Share limits also give the
    share of places in that year and the limit as shares.
    """
    act = row_activity(m, sol.x)
    shares = None
    if plan is not None:
        by = plan.by_setting()  # [T, S]
        tot = np.maximum(by.sum(axis=1), 1e-12)
        shares = {
            "share_independent": (by[:, d.independent].sum(1) / tot, d.max_independent_share),
            "share_mainstream": (by[:, d.mainstream].sum(1) / tot, d.min_mainstream_share),
        }
    out: list[dict[str, Any]] = []
    for name, what in POLICY_FAMILIES.items():
        blk = m.constraints.get(name)
        if blk is None:
            continue
        for i, r in enumerate(blk.ids.tolist()):
            upper = bool(np.isfinite(blk.upper[i]))
            bound = blk.upper[i] if upper else blk.lower[i]
            slack = abs(bound - act[r])
            dual = float(sol.dual[r]) if np.isfinite(sol.dual[r]) else 0.0
            if slack > 1e-6 * max(1.0, abs(bound)) and abs(dual) < 1e-9:
                continue
            labels = {dim: m.labels[dim][int(blk.codes[dim][i])] for dim in blk.dims}
            row: dict[str, Any] = {
                "constraint": name,
                "description": what,
                **labels,
                "limit": float(bound),
                "value": float(act[r]),
                # relaxing a <= row raises its bound (objective changes by dual <= 0); a >= row
                # lowers it (objective changes by -dual <= 0)
                "shadow_price_pv_gbp": -dual if upper else dual,
            }
            if shares is not None and name in shares:
                values, limit = shares[name]
                t = int(blk.codes["year"][i])
                row.update({"limit": limit, "value": round(float(values[t]), 4), "unit": "share"})
            out.append(row)
    return out


def share_breaches(m: LinearModel, d: LPInputs, x: np.ndarray) -> dict[str, dict[str, float]]:
    """Place-years by which a policy share limit had to be breached (legacy or no alternative)."""
    out: dict[str, dict[str, float]] = {}
    for kind in ("independent", "mainstream"):
        blk = m.variables.get(f"share_slack_{kind}")
        if blk is None:
            continue
        vals = x[blk.ids]
        years = [m.labels["year"][c] for c in blk.codes["year"]]
        br = {y: float(v) for y, v in zip(years, vals, strict=True) if v > TOL}
        if br:
            out[kind] = br
    return out


def independent_floor(d: LPInputs) -> np.ndarray:
    """[T] places in independent settings no plan can avoid: children placed there before the
    first decision year (never moved), and entrants of a band only independent settings suit in
    their phase, while they stay. A cap on the independent share below this is out of reach."""
    state = d.suitable & ~d.independent  # [B, P, S] suitable state-funded settings
    only_indep = d.suitable.any(axis=2) & ~state.any(axis=2)  # [B, P]
    entrants = np.einsum("tlnpb,tulnp,bp->u", d.entrants, d.persistence, only_indep.astype(float))
    return d.fixed_at[:, d.independent, :].sum(axis=(1, 2)) + entrants


def soft_limit_breaches(m: LinearModel, d: LPInputs, a: Allocation) -> dict[str, dict[str, Any]]:
    """Soft build, budget and travel limits exceeded at their penalty: for each, the unit, the
    total (the largest year's for travel), the years affected and what the breach is."""
    out: dict[str, dict[str, Any]] = {}
    x_of = a.solution_x
    years = np.asarray(d.years)
    built = sorted({int(y) for y in years[np.nonzero(a.build_places.sum(axis=(1, 2)) > TOL)[0]]})
    per_year = m.variables.get("build_slack_per_year")
    total = m.variables.get("build_slack_total")
    places = 0.0
    yrs: set[int] = set()
    if per_year is not None:
        v = x_of[per_year.ids]
        hit = v > TOL
        places += float(v[hit].sum())
        yrs |= {int(years[c]) for c in per_year.codes["year"][hit]}
    if total is not None:
        v = x_of[total.ids]
        if (v > TOL).any():
            places += float(v[v > TOL].sum())
            yrs |= set(built)
    if places > TOL:
        out["build_limits"] = {
            "unit": "places",
            "total": places,
            "years": sorted(yrs),
            "what": "places decided beyond the per-year or total build limits",
        }
    budget = m.variables.get("budget_slack_gbp_m")
    if budget is not None:
        over = float(x_of[budget.ids].sum()) * 1e6
        if over > 1.0:
            out["capital_budget_gbp"] = {
                "unit": "GBP",
                "total": over,
                "years": built,
                "what": "capital beyond the budget, in the years builds are decided",
            }
    beyond = d.travel_penalty_gbp > 0  # [L, K]
    if beyond.any():
        far = (a.by_provider() * beyond[None, :, None, None, None, :]).sum(axis=(4, 5))
        in_place = np.einsum("etlnp,elnp->t", _persistence(d), far)
        hit = in_place >= 0.5
        if hit.any():
            out["max_travel_km"] = {
                "unit": "children",
                "total": float(in_place.max()),
                "years": [int(y) for y in years[hit]],
                "what": "children placed beyond the travel limit (largest number in a year)",
            }
    return out
