"""The sufficiency LP, one short ``define_<family>(m, d)`` per family of variables or constraints.

Index letters: t = year a child enters a placement, t2 = a year the placement is in place,
h = home locality, n = need, p = phase, b = complexity band, s = setting, k = provider locality.

Placements are split into two separable choices (decision 0004): ``assign[t,h,n,p,b,s]`` picks the
setting for band-b children (unit cost x band x need multiplier) and ``route[t,h,n,p,s,k]`` picks
the provider locality for capacity-limited settings (transport cost, capacity). Any solution
splits back into per-band, per-provider placements ``x = assign * route / sum(route)`` at the same
cost, so nothing is lost, and the capacity rows (where most non-zeros live) carry no band index.
Settings without a capacity limit are placed at the nearest provider locality (home), so they need
no ``route``.

Nothing is decided before ``policy.first_decision_year`` (``d.first_decision``): entrants of
earlier years are placed as the unmitigated forecast placed them and count, with the legacy
placements, as a fixed load (``d.fixed_at``); builds are decided from that year on.
"""

from __future__ import annotations

import numpy as np

from .inputs import LPInputs
from .linear import INF, LinearModel


def _has(m: LinearModel, name: str) -> bool:
    """Whether family ``name`` added any column (its dense id array has an id >= 0)."""
    ids = m.ids.get(name)
    return ids is not None and bool((ids >= 0).any())


def _persistence(d: LPInputs) -> np.ndarray:
    """Persistence with anything before entry zeroed (the contract says so; we make sure)."""
    T = len(d.years)
    upper = np.triu(np.ones((T, T), bool))
    return np.where(upper[:, :, None, None, None], d.persistence, 0.0)


def weights(m: LinearModel, d: LPInputs) -> None:
    """Discounted place-years each entrant cell brings, with and without price inflation."""
    pers = _persistence(d)
    m.ids["place_weight"] = np.einsum("abcde,b->acde", pers, d.year_weight * d.price_index)
    m.ids["child_years"] = np.einsum("abcde,b->acde", pers, d.year_weight)


def site_mask(d: LPInputs) -> np.ndarray:
    """[S, K] provider localities where a capacity-limited setting has (or may build) places."""
    has_places = (np.nan_to_num(d.capacity, posinf=0.0) > 0).any(axis=0)
    return d.limited[:, None] & (has_places | d.build_at)


def reach_mask(d: LPInputs) -> np.ndarray:
    """[L, K] journeys within the travel limit; the home locality is always reachable."""
    return d.reachable | np.eye(len(d.localities), dtype=bool)


# --------------------------------------------------------------------------- variables


def usable_settings(d: LPInputs) -> np.ndarray:
    """[S, L] setting s can take a child from home h: unlimited, or a site within reach."""
    sites = (reach_mask(d)[None, :, :] & site_mask(d)[:, None, :]).any(-1)
    return np.where(d.limited[:, None], sites, True)


def per_pupil_cost(d: LPInputs) -> np.ndarray:
    """[P, S] what one more child costs per place-year (price-base prices), before multipliers.

    In a capacity-limited setting with place funding the commissioned place is paid for whether
    filled or not, so a child adds only the top-up; elsewhere the whole unit cost.
    """
    return d.phase_unit_cost_gbp - d.place_funding_gbp[None, :]


def need_available(d: LPInputs) -> np.ndarray:
    """[L, N, P, B, S] setting s is suitable for band b in phase p, designated for need n and
    usable from home l."""
    return (
        d.suitable.transpose(1, 0, 2)[None, None]  # [1, 1, P, B, S]
        & d.serves_need[None, :, None, None, :]
        & usable_settings(d).T[:, None, None, None, :]
    )


def child_cost(d: LPInputs) -> np.ndarray:
    """[L, N, P, B, S] cheapest cost of one place-year (price-base prices) by home, need, phase,
    band, setting: per-pupil cost x band and need multipliers + transport to the nearest usable
    provider.
    """
    ok = reach_mask(d)[None, :, :] & site_mask(d)[:, None, :]  # [S, L, K]
    journey = d.transport_gbp + d.travel_penalty_gbp[None]  # a soft travel limit's penalty too
    tr_limited = np.where(ok, journey, np.inf).min(axis=2)  # [S, L]
    L = len(d.localities)
    tr_free = d.transport_gbp[:, np.arange(L), d.nearest]  # [S, L]
    tr = np.where(d.limited[:, None], tr_limited, tr_free)
    unit = d.band_multiplier[None, :, None] * per_pupil_cost(d)[:, None, :]  # [P, B, S]
    unit = d.need_multiplier[:, None, None, None] * unit[None]  # [N, P, B, S]
    return unit[None] + tr.T[:, None, None, None, :]


def share_safe(d: LPInputs) -> np.ndarray:
    """[S2, S1] moving a child from s1 to s2 never hurts an active policy share limit."""
    ok = np.ones((len(d.settings),) * 2, bool)
    if d.max_independent_share is not None:
        ok &= d.independent[:, None] <= d.independent[None, :]
    if d.min_mainstream_share is not None:
        ok &= d.mainstream[:, None] >= d.mainstream[None, :]
    return ok


def dominated_settings(d: LPInputs) -> np.ndarray:
    """[L, N, P, B, S] setting s is never needed: an unlimited setting is at least as cheap.

    s1 is dominated by s2 when s2 suits the band, has no capacity limit, costs no more per
    place-year (unit and transport) and is no worse for the share limits in force: moving a child
    from s1 to s2 then never raises cost, never uses capacity and keeps every row feasible, so an
    optimum without s1 exists. Ties keep the capacity-limited setting out, then the lower index.
    """
    if not d.prune:
        return np.zeros(
            (len(d.localities), len(d.needs), len(d.phases), len(d.bands), len(d.settings)), bool
        )
    cost = child_cost(d)  # [L, N, P, B, S]
    S = len(d.settings)
    avail = need_available(d)
    # avail [L, N, P, B, S] ; pairwise (s2 dominates s1) -> [L, N, P, B, S1, S2]
    c1 = cost[..., :, None]
    c2 = cost[..., None, :]
    idx = np.arange(S)
    tie_ok = d.limited[:, None] | (idx[None, :] < idx[:, None])  # [S1, S2]
    better = (c2 < c1) | ((c2 == c1) & tie_ok)
    cand = (
        avail[..., None, :]
        & ~d.limited[None, :]
        & share_safe(d).T[None, None, None, None]
        & (idx[:, None] != idx[None, :])
    )
    return (better & cand).any(axis=-1)


def define_assign_variables(m: LinearModel, d: LPInputs) -> None:
    """Band-b entrants of cell (t, h, n, p) placed in setting s: suitable, reachable, not dominated."""
    keep = need_available(d) & ~dominated_settings(d)  # [L, N, P, B, S]
    mask = (d.entrants > 0)[..., None] & keep[None]
    m.ids["assign"] = np.full(mask.shape, -1, np.int64)
    if not mask.any():
        return
    t, h, n, p, b, s = np.nonzero(mask)
    w = m.ids["place_weight"][t, h, n, p]
    unit = per_pupil_cost(d)[p, s] * d.band_multiplier[b] * d.need_multiplier[n]
    # unlimited settings: transport to the nearest provider is part of the assignment's cost
    tr = np.where(d.limited[s], 0.0, d.transport_gbp[s, h, d.nearest[h]])
    ids = m.add_variables(
        "assign",
        {"year": t, "locality": h, "need": n, "phase": p, "band": b, "setting": s},
        cost=(unit + tr) * w,
    )
    m.ids["assign"][t, h, n, p, b, s] = ids


def define_route_variables(m: LinearModel, d: LPInputs) -> None:
    """Entrants of cell (t, h, n, p) placed in capacity-limited setting s at provider locality k."""
    if not _has(m, "assign") or not d.limited.any():
        return
    in_setting = (m.ids["assign"] >= 0).any(axis=4) & d.limited  # [T, L, N, P, S]
    if not in_setting.any():
        return
    ok = reach_mask(d)[None, :, :] & site_mask(d)[:, None, :]  # [S, L, K]
    t, h, n, p, s = np.nonzero(in_setting)
    sel = ok[s, h]  # [cells, K]
    ci, k = np.nonzero(sel)
    t, h, n, p, s = t[ci], h[ci], n[ci], p[ci], s[ci]
    journey = d.transport_gbp[s, h, k] + d.travel_penalty_gbp[h, k]
    cost = journey * m.ids["place_weight"][t, h, n, p]
    ids = m.add_variables(
        "route",
        {"year": t, "locality": h, "need": n, "phase": p, "setting": s, "provider": k},
        cost=cost,
    )
    m.ids["route"] = np.full(in_setting.shape + (len(d.localities),), -1, np.int64)
    m.ids["route"][t, h, n, p, s, k] = ids


def define_unmet_variables(m: LinearModel, d: LPInputs) -> None:
    """Entrants left without a suitable place, at the unmet penalty per child-year.

    Only where it can happen: a cell-band with an unlimited suitable setting that costs less than
    the penalty (and is safe for the share limits) is always placed, so it gets no unmet column.
    """
    cost = child_cost(d)  # [L, N, P, B, S]
    safe = np.ones(len(d.settings), bool)
    if d.max_independent_share is not None:
        safe &= ~d.independent
    if d.min_mainstream_share is not None:
        safe &= d.mainstream
    assign = m.ids["assign"]  # [T, L, N, P, B, S]
    free = (assign >= 0) & ~d.limited & safe  # an unlimited, share-safe option exists
    pw, cy = m.ids["place_weight"], m.ids["child_years"]  # [T, L, N, P]
    place_cost = cost[None] * pw[..., None, None]  # [T, L, N, P, B, S]
    cheaper = place_cost <= (d.unmet_penalty_gbp * cy)[..., None, None]
    needed = (d.entrants > 0) & ~((free & cheaper).any(axis=-1) & d.prune)
    m.ids["unmet"] = np.full(d.entrants.shape, -1, np.int64)
    t, h, n, p, b = np.nonzero(needed)
    if len(t) == 0:
        return
    ids = m.add_variables(
        "unmet",
        {"year": t, "locality": h, "need": n, "phase": p, "band": b},
        cost=d.unmet_penalty_gbp * cy[t, h, n, p],
    )
    m.ids["unmet"][t, h, n, p, b] = ids


def build_years(d: LPInputs) -> np.ndarray:
    """[T, S] bool: a build of setting s decided in year t (first decision year or later) opens
    within the horizon."""
    T = len(d.years)
    t = np.arange(T)[:, None]
    return (t >= max(d.first_decision, 1)) & (t + d.lead_time_years[None, :] <= T - 1)


def capital_discount(d: LPInputs, t: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """Mean discount factor of the financial years a build's capital is spread over.

    As in ``model.costs.builds_capital``: evenly over financial years year_open - max(1, lead) ..
    year_open - 1, where year_open = year_decided + lead (year labels = financial-year labels).
    """
    y0 = d.years[0]
    opens = np.asarray(d.years)[t] + lead
    span = np.maximum(lead, 1)
    F = len(d.fy_discount)
    fy = np.arange(F) + y0  # financial year labels
    inside = (fy[None, :] >= (opens - span)[:, None]) & (fy[None, :] <= (opens - 1)[:, None])
    return (inside * d.fy_discount[None, :]).sum(axis=1) / span


def define_build_variables(m: LinearModel, d: LPInputs) -> None:
    """New places (or whole units) of setting s at locality k decided in year t, open t + lead."""
    mask = build_years(d)[:, :, None] & d.build_at[None, :, :] & d.buildable[None, :, None]
    m.ids["build"] = np.full(mask.shape, -1, np.int64)
    if not mask.any():
        return
    t, s, k = np.nonzero(mask)
    unit = d.build_unit_places[s]
    cost = d.capital_per_place_gbp[s] * unit * capital_discount(d, t, d.lead_time_years[s])
    # a new commissioned place draws its place funding every year it is open, filled or not
    open_pv = np.cumsum((d.year_weight * d.price_index)[::-1])[::-1]  # [T] from year t2 on
    opens = t + d.lead_time_years[s]
    funded = np.where(opens < len(d.years), open_pv[np.minimum(opens, len(d.years) - 1)], 0.0)
    cost = cost + d.place_funding_gbp[s] * unit * funded
    ids = m.add_variables(
        "build", {"year": t, "setting": s, "provider": k}, cost=cost, integer=d.integer_builds
    )
    m.ids["build"][t, s, k] = ids


def define_share_slack_variables(m: LinearModel, d: LPInputs) -> None:
    """Breach of a policy share limit in year t2 (place-years), used only where unavoidable.

    Only from the first decision year: before it every placement is fixed.
    """
    T = len(d.years)
    for kind, limit in (
        ("independent", d.max_independent_share),
        ("mainstream", d.min_mainstream_share),
    ):
        t2 = np.arange(d.first_decision, T)
        if limit is None or len(t2) == 0:
            continue
        ids = m.add_variables(
            f"share_slack_{kind}",
            {"year": t2},
            cost=d.share_penalty_by_kind.get(kind, d.share_penalty_gbp) * d.year_weight[t2],
        )
        m.ids[f"share_slack_{kind}"] = ids


# --------------------------------------------------------------------------- constraints


def define_demand_constraints(m: LinearModel, d: LPInputs) -> None:
    """Every entrant is placed somewhere suitable or counted unmet: sum_s assign + unmet = entrants."""
    t, h, n, p, b = np.nonzero(d.entrants > 0)
    if len(t) == 0:
        return
    e = d.entrants[t, h, n, p, b]
    rows = m.add_constraints(
        "demand", {"year": t, "locality": h, "need": n, "phase": p, "band": b}, e, e
    )
    row_of = np.full(d.entrants.shape, -1, np.int64)
    row_of[t, h, n, p, b] = rows
    unmet = m.ids["unmet"]
    m.add_terms(row_of[unmet >= 0], unmet[unmet >= 0], 1.0)
    at, al, an, ap, ab, _ = np.nonzero(m.ids["assign"] >= 0)
    m.add_terms(row_of[at, al, an, ap, ab], m.ids["assign"][m.ids["assign"] >= 0], 1.0)


def define_link_constraints(m: LinearModel, d: LPInputs) -> None:
    """Children assigned to a capacity-limited setting are routed to its providers."""
    if not _has(m, "route"):
        return
    cells = (m.ids["route"] >= 0).any(axis=5)  # [T, L, N, P, S]
    t, h, n, p, s = np.nonzero(cells)
    rows = m.add_constraints(
        "link", {"year": t, "locality": h, "need": n, "phase": p, "setting": s}, 0.0, 0.0
    )
    row_of = np.full(cells.shape, -1, np.int64)
    row_of[t, h, n, p, s] = rows
    at, al, an, ap, _, as_ = np.nonzero(m.ids["assign"] >= 0)
    keep = d.limited[as_]
    acol = m.ids["assign"][m.ids["assign"] >= 0][keep]
    m.add_terms(row_of[at[keep], al[keep], an[keep], ap[keep], as_[keep]], acol, 1.0)
    rt, rl, rn, rp, rs, _ = np.nonzero(m.ids["route"] >= 0)
    m.add_terms(row_of[rt, rl, rn, rp, rs], m.ids["route"][m.ids["route"] >= 0], -1.0)


def capacity_rows(m: LinearModel, d: LPInputs) -> np.ndarray:
    """[T, S, K] bool: capacity rows needed (a route or a build reaches that year, setting, place)."""
    T, S, K = len(d.years), len(d.settings), len(d.localities)
    need = np.zeros((T, S, K), bool)
    if _has(m, "route"):
        pers_any = _persistence(d) > 0  # [T, T2, L, N, P]
        rt, rl, rn, rp, rs, rk = np.nonzero(m.ids["route"] >= 0)
        for t2 in range(1, T):
            hit = pers_any[rt, t2, rl, rn, rp]
            need[t2, rs[hit], rk[hit]] = True
    if _has(m, "build"):
        bt, bs, bk = np.nonzero(m.ids["build"] >= 0)
        for t2 in range(1, T):
            hit = bt + d.lead_time_years[bs] <= t2
            need[t2, bs[hit], bk[hit]] = True
    need[0] = False
    return need


def define_capacity_constraints(m: LinearModel, d: LPInputs) -> None:
    """Per (t2, s, k): fixed + new placements still in place <= committed places + builds open.

    Fixed placements are the legacy ones and those made before the first decision year. Where
    they alone exceed the committed places, they stay (children already in a school are not
    moved) and the row's right-hand side is floored at zero: no new entrants there until the
    fixed load falls below capacity or new places open.
    """
    need = capacity_rows(m, d)
    if not need.any():
        return
    t2, s, k = np.nonzero(need)
    rhs = np.maximum(d.capacity[t2, s, k] - d.fixed_at[t2, s, k], 0.0)
    rows = m.add_constraints("capacity", {"year": t2, "setting": s, "provider": k}, -INF, rhs)
    row_of = np.full(need.shape, -1, np.int64)
    row_of[t2, s, k] = rows
    m.ids["capacity_row_of"] = row_of
    if _has(m, "route"):
        pers = _persistence(d)
        rt, rl, rn, rp, rs, rk = np.nonzero(m.ids["route"] >= 0)
        rcol = m.ids["route"][m.ids["route"] >= 0]
        for y in range(1, len(d.years)):  # a loop over years only
            w = pers[rt, y, rl, rn, rp]
            hit = w > 0
            m.add_terms(row_of[y, rs[hit], rk[hit]], rcol[hit], w[hit])
    if _has(m, "build"):
        bt, bs, bk = np.nonzero(m.ids["build"] >= 0)
        bcol = m.ids["build"][m.ids["build"] >= 0]
        for y in range(1, len(d.years)):
            hit = bt + d.lead_time_years[bs] <= y
            m.add_terms(
                row_of[y, bs[hit], bk[hit]],
                bcol[hit],
                -d.build_unit_places[bs[hit]] * d.occupancy,
            )


def define_build_limit_constraints(m: LinearModel, d: LPInputs) -> None:
    """Most places decided per year and over the horizon, for each buildable setting."""
    if not _has(m, "build"):
        return
    bt, bs, bk = np.nonzero(m.ids["build"] >= 0)
    bcol = m.ids["build"][m.ids["build"] >= 0]
    unit = d.build_unit_places[bs]
    T, S = len(d.years), len(d.settings)
    per_year = np.broadcast_to(d.max_places_per_year[None, :], (T, S))
    has = np.zeros((T, S), bool)
    has[bt, bs] = True
    has &= np.isfinite(per_year)
    if has.any():
        yt, ys = np.nonzero(has)
        rows = m.add_constraints(
            "build_per_year", {"year": yt, "setting": ys}, -INF, per_year[yt, ys]
        )
        row_of = np.full((T, S), -1, np.int64)
        row_of[yt, ys] = rows
        hit = row_of[bt, bs] >= 0
        m.add_terms(row_of[bt, bs][hit], bcol[hit], unit[hit])
        if d.build_limit_penalty_gbp is not None:  # soft: places beyond the limit, at a penalty
            ids = m.add_variables(
                "build_slack_per_year",
                {"year": yt, "setting": ys},
                cost=np.full(len(rows), d.build_limit_penalty_gbp),
            )
            m.add_terms(rows, ids, -1.0)
    tot = np.zeros(S, bool)
    tot[bs] = True
    tot &= np.isfinite(d.max_places_total)
    if tot.any():
        (ts,) = np.nonzero(tot)
        rows = m.add_constraints("build_total", {"setting": ts}, -INF, d.max_places_total[ts])
        row_of = np.full(S, -1, np.int64)
        row_of[ts] = rows
        hit = row_of[bs] >= 0
        m.add_terms(row_of[bs][hit], bcol[hit], unit[hit])
        if d.build_limit_penalty_gbp is not None:
            ids = m.add_variables(
                "build_slack_total",
                {"setting": ts},
                cost=np.full(len(rows), d.build_limit_penalty_gbp),
            )
            m.add_terms(rows, ids, -1.0)


def define_budget_constraint(m: LinearModel, d: LPInputs) -> None:
    """Capital for new places (price-base prices, like the cost stage's capital) within the budget."""
    if d.capital_budget_gbp is None or not _has(m, "build"):
        return
    bt, bs, _ = np.nonzero(m.ids["build"] >= 0)
    # in GBP millions: keeps the row's numbers near the others' (HiGHS warns on 1e7+ bounds)
    cash = d.capital_per_place_gbp[bs] * d.build_unit_places[bs] / 1e6
    (row,) = m.add_constraints("capital_budget_gbp_m", {}, -INF, d.capital_budget_gbp / 1e6)
    m.add_terms(np.full(len(bt), row), m.ids["build"][m.ids["build"] >= 0], cash)
    if d.budget_penalty_per_gbp is not None:  # soft: GBP m beyond the budget, at a penalty
        (ids,) = m.add_variables(
            "budget_slack_gbp_m", {}, cost=np.array([d.budget_penalty_per_gbp * 1e6])
        )
        m.add_terms(np.array([row]), np.array([ids]), -1.0)


def define_share_constraints(m: LinearModel, d: LPInputs) -> None:
    """Policy shares of in-place placements each year: independent at most, mainstream at least.

    placed(t2) = fixed(t2) + sum over cohorts of persistence x (entrants - unmet), so the rows
    need only the independent (or mainstream) assignments and the unmet columns. Rows exist from
    the first decision year (earlier years hold no decision).
    """
    T = len(d.years)
    pers = _persistence(d)
    pers_e = np.einsum("abcde,acde->b", pers, d.entrants.sum(axis=4))  # [T2] new in place
    placed_if_all_met = d.fixed_total + pers_e
    ut, ul, un, up, _ = np.nonzero(m.ids["unmet"] >= 0)
    ucol = m.ids["unmet"][m.ids["unmet"] >= 0]
    at, al, an, ap, _, as_ = np.nonzero(m.ids["assign"] >= 0)
    acol = m.ids["assign"][m.ids["assign"] >= 0]
    t2 = np.arange(d.first_decision, T)
    if len(t2) == 0:
        return
    for kind, limit, flag, sign in (
        ("independent", d.max_independent_share, d.independent, -1.0),
        ("mainstream", d.min_mainstream_share, d.mainstream, +1.0),
    ):
        if limit is None:
            continue
        fixed_kind = d.fixed_at[:, flag, :].sum(axis=(1, 2))
        rhs = limit * placed_if_all_met[t2] - fixed_kind[t2]
        if sign < 0:  # kind + share*unmet - slack <= rhs
            rows = m.add_constraints(f"share_{kind}", {"year": t2}, -INF, rhs)
        else:  # kind + share*unmet + slack >= rhs
            rows = m.add_constraints(f"share_{kind}", {"year": t2}, rhs, INF)
        m.add_terms(rows, m.ids[f"share_slack_{kind}"], sign)
        sel = flag[as_]
        for i, y in enumerate(t2):  # a loop over years only
            w = pers[at[sel], y, al[sel], an[sel], ap[sel]]
            hit = w > 0
            m.add_terms(np.full(hit.sum(), rows[i]), acol[sel][hit], w[hit])
            wu = pers[ut, y, ul, un, up]
            hu = wu > 0
            m.add_terms(np.full(hu.sum(), rows[i]), ucol[hu], limit * wu[hu])


# --------------------------------------------------------------------------- the model

VARIABLE_FAMILIES = (
    define_assign_variables,
    define_route_variables,
    define_unmet_variables,
    define_build_variables,
    define_share_slack_variables,
)
CONSTRAINT_FAMILIES = (
    define_demand_constraints,
    define_link_constraints,
    define_capacity_constraints,
    define_build_limit_constraints,
    define_budget_constraint,
    define_share_constraints,
)


def build_linear_model(d: LPInputs) -> LinearModel:
    """Assemble every family into one sparse LP (no solver involved).

    ``m.ids`` holds dense id arrays (-1 = absent) so families find each other's columns and rows:
    assign [T, L, N, P, B, S], route [T, L, N, P, S, K], unmet [T, L, N, P, B], build [T, S, K],
    capacity_row_of [T, S, K]; ``place_weight`` / ``child_years`` [T, L, N, P] are the discounted
    (inflated / plain) place-years one entrant of a cell brings.
    """
    labels = {
        "year": [str(y) for y in d.years],
        "locality": d.localities,
        "need": d.needs,
        "phase": d.phases,
        "band": d.bands,
        "setting": d.settings,
        "provider": d.localities,
    }
    m = LinearModel(labels=labels)
    weights(m, d)
    for define in VARIABLE_FAMILIES + CONSTRAINT_FAMILIES:
        define(m, d)
    return m
