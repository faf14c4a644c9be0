"""The numbers the sufficiency LP reads, gathered once from the scenario and the placement demand.

Everything here is a plain array indexed by the placement-demand label lists (years, localities,
needs, phases, settings, bands), so the model builder never looks at the scenario again.
Placements made before ``policy.first_decision_year`` are not decisions: they come from the
unmitigated forecast and join the legacy placements as a fixed load (decision 0004).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..costs import (
    distances_km,
    fy_weights,
    phase_unit_cost,
    place_funding,
    price_index,
    transport_cost_per_place,
)
from ..placements import carried_entrants, planned_fraction, provider_mask
from ..scenario import PHASES, Scenario

if TYPE_CHECKING:
    from ..placements import PlacementDemand, PlacementPlan


@dataclass
class LPInputs:
    """Arrays for one LP: demand, persistence, capacity, unit costs, discounting and policy."""

    years: list[int]
    localities: list[str]
    needs: list[str]
    phases: list[str]
    settings: list[str]
    bands: list[str]
    entrants: np.ndarray  # [T, L, N, P, B] children the LP places (zero before first_decision)
    persistence: np.ndarray  # [T, T2, L, N, P] share
    first_decision: int  # index in years of policy.first_decision_year (len(years): none)
    # fixed placements: legacy, plus entrants before the first decision year where the
    # unmitigated forecast placed them, still in place
    fixed_at: np.ndarray  # [T, S, L'] by provider locality
    fixed_total: np.ndarray  # [T] all fixed placements
    early_places: np.ndarray  # [T, L, L', N, P, S] those fixed placements still in place
    # [T, L, L', N, P, S] fixed placements made in year t: before the first decision year, and
    # plans carried in settings nobody plans (EHE, NEET, ...) in every year
    early_entrants: np.ndarray
    early_unmet: np.ndarray  # [T, L, N, P] pre-decision entrants the forecast left unplaced
    suitable: np.ndarray  # [B, P, S] bool (already AND-ed with the phases each setting serves)
    capacity: np.ndarray  # [T, S, L'] usable places (x max_occupancy); inf where unlimited
    limited: np.ndarray  # [S] bool: capacity limited
    independent: np.ndarray  # [S] bool: not state funded (counts towards max_independent_share)
    mainstream: np.ndarray  # [S] bool: counts towards KPI 14 (min_mainstream_share)
    reachable: np.ndarray  # [L, L'] bool: within policy.max_travel_km
    nearest: (
        np.ndarray
    )  # [L] provider locality index nearest home (home itself unless a tie or closer)
    unit_cost_gbp: np.ndarray  # [S] per place-year at price-base prices
    # [P, S] cost per filled place-year by phase (day/residential mix), price-base prices
    phase_unit_cost_gbp: np.ndarray
    # [S] paid per commissioned place of a capacity-limited setting, filled or not (0 elsewhere):
    # a child placed there costs only the rest (the top-up); a new place costs this every year
    place_funding_gbp: np.ndarray
    serves_need: np.ndarray  # [N, S] bool: need designations
    band_multiplier: np.ndarray  # [B]
    need_multiplier: np.ndarray  # [N]
    transport_gbp: np.ndarray  # [S, L, L'] expected transport per pupil-year at price-base prices
    price_index: np.ndarray  # [T] inflation factor from price-base prices to academic year t
    year_weight: np.ndarray  # [T] discounted share of academic year t's spend that is reported
    fy_discount: np.ndarray  # [F] present-value factor of financial year F (base year = 1)
    unmet_penalty_gbp: float
    share_penalty_gbp: float  # per place-year a soft limit is breached (see decision 0004)
    # per place-year a share limit is breached, by kind ("independent", "mainstream"): the soft
    # penalty, or for a hard limit ten unmet penalties (breached only where nothing else is possible)
    share_penalty_by_kind: dict[str, float]
    travel_penalty_gbp: np.ndarray  # [L, L'] per place-year beyond a soft travel limit (else 0)
    build_limit_penalty_gbp: float | None  # per place beyond a soft build limit (None: hard)
    budget_penalty_per_gbp: float | None  # per GBP beyond a soft capital budget (None: hard)
    max_independent_share: float | None
    min_mainstream_share: float | None
    occupancy: float
    # builds
    buildable: np.ndarray  # [S] bool
    build_at: np.ndarray  # [S, L'] bool: localities where a setting may be built
    build_unit_places: np.ndarray  # [S] places per build variable unit (1 for continuous builds)
    integer_builds: bool
    lead_time_years: np.ndarray  # [S] int
    capital_per_place_gbp: np.ndarray  # [S] at price-base prices (capital is not inflated)
    max_places_per_year: np.ndarray  # [S] nan where unlimited
    max_places_total: np.ndarray  # [S] nan where unlimited
    capital_budget_gbp: float | None
    # drop settings and unmet columns an optimum never needs (exact; see dominated_settings)
    prune: bool = True

    @property
    def shape(self) -> dict[str, int]:
        return {
            "years": len(self.years),
            "localities": len(self.localities),
            "needs": len(self.needs),
            "phases": len(self.phases),
            "settings": len(self.settings),
            "bands": len(self.bands),
        }


def year_weights(scn: Scenario, years: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Discounted weight of each academic year's spend, and each financial year's discount factor.

    costs.csv reports financial years base_year .. base_year + horizon - 1, each 5/12 of academic
    year F plus 7/12 of F + 1 (``model.costs.fy_weights``). Discounting financial year F by
    (1 + r)^-(F - base_year) gives academic year t the weight sum_F d_F W[F, t], so the LP minimises
    exactly the present value of the spend costs.csv will show.
    """
    fys = np.asarray(years[:-1], float)
    d_fy = (1.0 + scn.policy.discount_rate) ** -(fys - years[0])
    return d_fy @ fy_weights(len(years)), d_fy


def first_decision_year(scn: Scenario) -> int:
    """``policy.first_decision_year``, by default base_year + 2.

    The latest January count is of the base year + 1 (Devon: January 2025, academic year 2024/25,
    already under way), so the first year a plan made now can change is the next academic year.
    With a one-year horizon that lies beyond the horizon and the optimiser decides nothing.
    """
    fdy = scn.policy.first_decision_year
    return scn.meta.base_year + 2 if fdy is None else int(fdy)


def prepare_inputs(
    scn: Scenario, pdemand: PlacementDemand, before: PlacementPlan | None = None
) -> LPInputs:
    """Gather the LP's arrays from the scenario and the placement demand (no modelling choices).

    ``before``: the plan whose placements of entrants before the first decision year are kept
    (the unmitigated forecast); needed only when such entrants exist.
    """
    years = list(pdemand.years)
    locs = list(pdemand.localities)
    needs = list(pdemand.needs)
    phases = list(pdemand.phases)
    settings = list(pdemand.settings)
    bands = list(pdemand.bands)
    L, S = len(locs), len(settings)
    pol, costs = scn.policy, scn.costs
    st = [scn.settings[s] for s in settings]

    serves = np.array([[p in x.phases for p in phases] for x in st], bool)  # [S, P]
    suitable = np.asarray(pdemand.suitable, bool) & serves.T[None, :, :]
    limited = np.array([x.capacity_limited for x in st], bool)
    occupancy = float(scn.capacity.max_occupancy)
    capacity = np.asarray(pdemand.capacity, float).copy()  # already x max_occupancy
    capacity[:, ~limited, :] = np.inf

    legacy = np.asarray(pdemand.legacy, float)  # [T, L, N, P, S]
    T, N, P = len(years), len(needs), len(phases)
    f = min(max(first_decision_year(scn) - years[0], 1), T)
    entrants = np.asarray(pdemand.entrants, float).copy()
    early_entrants = np.zeros((T, L, L, N, P, S))
    early_unmet = np.zeros((T, L, N, P))
    if entrants[1:f].any():
        if before is None:
            raise ValueError(
                "entrants before policy.first_decision_year need the plan that placed them "
                "(the unmitigated forecast)"
            )
        early_entrants[1:f] = before.entrant_places[1:f]
        if before.unmet is not None:
            early_unmet[1:f] = before.unmet[1:f]
    # Plans carried in settings nobody plans (EHE, NEET, awaiting provision) stay there at home
    # on today's pattern in both variants: a fixed load, not a decision.
    planned = (
        np.ones(S, bool)
        if getattr(pdemand, "planned", None) is None
        else np.asarray(pdemand.planned, bool)
    )
    if (~planned).any():
        arr = {
            "entrants_by_kind": np.asarray(pdemand.entrants_by_kind)[None],
            "mix": pdemand.mix,
            "mover_destination": pdemand.mover_destination,
        }
        carried = carried_entrants(arr, planned)[0]  # [T, L, N, P, S]
        carried[:f] = 0.0
        entrants = entrants * planned_fraction(entrants, carried)[..., None]
        diag = np.arange(L)
        early_entrants[:, diag, diag] += carried
    entrants[:f] = 0.0
    pers = np.where(np.triu(np.ones((T, T), bool))[:, :, None, None, None], pdemand.persistence, 0)
    early_places = np.einsum("etlnp,elmnps->tlmnps", pers, early_entrants)
    legacy_at = legacy.sum(axis=(2, 3)).transpose(0, 2, 1)  # [T, S, L]
    fixed_at = legacy_at + early_places.sum(axis=(1, 3, 4)).transpose(0, 2, 1)
    dist = distances_km(scn).loc[locs, locs].to_numpy(dtype=float)
    modes = pol.limits
    soft_penalty = (
        float(pol.unmet_penalty_gbp) / 2.0
        if modes.soft_penalty_gbp is None
        else float(modes.soft_penalty_gbp)
    )
    hard_penalty = 10.0 * float(pol.unmet_penalty_gbp)
    reach = np.ones((L, L), bool) if pol.max_travel_km is None else dist <= pol.max_travel_km
    travel_penalty = np.zeros((L, L))
    if modes.max_travel_km == "soft":  # any journey allowed; beyond the limit at a penalty
        travel_penalty = np.where(reach, 0.0, soft_penalty)
        reach = np.ones((L, L), bool)
    reach &= provider_mask(scn, dist)  # home and its nearest providers only, where limited
    # Unlimited settings are placed at the nearest provider locality (normally home): with no
    # capacity to run out of, a longer journey only adds transport cost.
    nearest = np.argmin(np.where(np.eye(L, dtype=bool), dist - 1e-9, dist), axis=1)

    # the cost stage's transport per place [T, L, L', S], brought back to price-base prices
    pi = price_index(scn)
    transport = (transport_cost_per_place(scn)[0] / pi[0]).transpose(2, 0, 1)
    order = [scn.locality_ids.index(x) for x in locs]
    transport = transport[:, order][:, :, order]

    weight, d_fy = year_weights(scn, years)

    buildable = np.array([s in pol.buildable for s in settings], bool)
    build_at = np.zeros((S, L), bool)
    per_year = np.full(S, np.nan)
    total = np.full(S, np.nan)
    for i, s in enumerate(settings):
        lim = pol.buildable.get(s)
        if lim is None:
            continue
        build_at[i] = [lim.localities is None or loc in lim.localities for loc in locs]
        if lim.max_places_per_year is not None:
            per_year[i] = lim.max_places_per_year
        if lim.max_places_total is not None:
            total[i] = lim.max_places_total
    build_at &= limited[:, None]  # building only matters where places are limited
    unit = np.array(
        [float(costs.build_unit_places.get(s, 1)) if pol.integer_builds else 1.0 for s in settings]
    )

    return LPInputs(
        years=years,
        localities=locs,
        needs=needs,
        phases=phases,
        settings=settings,
        bands=bands,
        entrants=entrants,
        persistence=np.asarray(pdemand.persistence, float),
        first_decision=f,
        fixed_at=fixed_at,
        fixed_total=fixed_at.sum(axis=(1, 2)),
        early_places=early_places,
        early_entrants=early_entrants,
        early_unmet=early_unmet,
        suitable=suitable,
        capacity=capacity,
        limited=limited,
        independent=np.array([not x.state_funded for x in st], bool),
        mainstream=np.array([x.counts_as_mainstream for x in st], bool),
        reachable=reach,
        nearest=nearest,
        unit_cost_gbp=np.array([costs.unit_cost_gbp[s] for s in settings], float),
        phase_unit_cost_gbp=phase_unit_cost(scn)[[PHASES.index(ph) for ph in phases]][
            :, [scn.setting_ids.index(s) for s in settings]
        ],
        place_funding_gbp=np.where(
            limited, place_funding(scn)[[scn.setting_ids.index(s) for s in settings]], 0.0
        ),
        serves_need=(
            np.ones((N, S), bool)
            if getattr(pdemand, "serves_need", None) is None
            else np.asarray(pdemand.serves_need, bool)
        ),
        band_multiplier=np.array([costs.band_multiplier.get(b, 1.0) for b in bands], float),
        need_multiplier=np.array([costs.need_multiplier.get(n, 1.0) for n in needs], float),
        transport_gbp=transport,
        price_index=pi,
        year_weight=weight,
        fy_discount=d_fy,
        unmet_penalty_gbp=float(pol.unmet_penalty_gbp),
        share_penalty_gbp=soft_penalty,
        share_penalty_by_kind={
            "independent": soft_penalty if modes.max_independent_share == "soft" else hard_penalty,
            "mainstream": soft_penalty if modes.min_mainstream_share == "soft" else hard_penalty,
        },
        travel_penalty_gbp=travel_penalty,
        build_limit_penalty_gbp=soft_penalty if modes.build_limits == "soft" else None,
        budget_penalty_per_gbp=(
            float(modes.capital_overrun_penalty) if modes.capital_budget == "soft" else None
        ),
        max_independent_share=pol.max_independent_share,
        min_mainstream_share=pol.min_mainstream_share,
        occupancy=occupancy,
        buildable=buildable,
        build_at=build_at,
        build_unit_places=unit,
        integer_builds=bool(pol.integer_builds),
        lead_time_years=np.array([int(costs.lead_time_years.get(s, 0)) for s in settings], int),
        capital_per_place_gbp=np.array(
            [costs.capital_per_place_gbp.get(s, 0.0) for s in settings], float
        ),
        max_places_per_year=per_year,
        max_places_total=total,
        capital_budget_gbp=pol.capital_budget_gbp,
    )
