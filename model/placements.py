"""Placement demand (who needs a new place, when) and the unmitigated placement forecast.

A plan needs a place. A placement, once made, persists until the plan ceases, the child reaches the
next phase (a *transfer*: a new place is needed) or the placement breaks down mid-phase (a *mover*).
``placement_demand`` turns the demand stage's stock and new plans into entrants, persistence and the
legacy (base-year) placements so that the places in use always equal the plans (see the identity in
``PlacementDemand``). ``unmitigated`` places entrants on today's mix, limited by capacity, with the
overflow going to independent provision: the mechanism that drives high-needs cost in real LAs.
Terms are defined in docs/decisions/0003-placements-and-finance.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .domain import (
    AGE_PHASE,
    IS_TRANSFER_AGE,
    PHASE_LAST_AGES,
    PHASE_STARTS,
    academic_year,
    by_phase_need,
    capacity_array,
    chain_suitable,
    distances_km,
    need_served,
    overflow_chain,
    overflow_settings,
    planned_settings,
    suitability,
)
from .errors import Problem, ScenarioError
from .scenario import AGES, PHASES, Scenario

# Why a child needs a new place in year t (PlacementDemand.entrants_by_kind, last axis).
ENTRANT_KINDS = ("new", "transfer", "mover")

_TINY = 1e-12


@dataclass
class PlacementDemand:
    """Who needs a place when: the shared input of the unmitigated forecast and the sufficiency LP.

    Axes: T years (index 0 = base year), L home localities, N needs, P phases, S settings, B bands.
    Identity (exact up to float rounding; tests check it):
        legacy[t2].sum(S) + sum_t entrants[t].sum(B) * persistence[t, t2] == stock[t2]   by (l, n, p)
    where ``stock`` is the demand stage's January count of plans summed over the phase's ages.
    Breakdown (mover) rates are averaged over today's mix so persistence does not depend on the
    setting chosen; that keeps the identity exact whatever the LP decides.
    """

    years: list[int]
    localities: list[str]
    needs: list[str]
    phases: list[str]
    settings: list[str]
    bands: list[str]
    entrants: np.ndarray  # [T, L, N, P, B] children needing a new place in year t (t=0 zeros)
    persistence: np.ndarray  # [T, T2, L, N, P] share of year-t entrants still in place in t2
    legacy: np.ndarray  # [T, L, N, P, S] base-year placements (today's mix, home locality) in place
    suitable: np.ndarray  # [B, P, S] bool: band b in phase p can be met in setting s
    # [T, S, L] usable places (existing + open pipeline) x max_occupancy; inf where unlimited
    capacity: np.ndarray
    # --- added fields (beyond the stage contract) ---
    entrants_by_kind: np.ndarray  # [T, L, N, P, K] K = ENTRANT_KINDS (new, transfer, mover)
    stock: np.ndarray  # [T, L, N, P] plans needing a place (the identity's right-hand side)
    mix: np.ndarray  # [N, P, S] today's placement mix (default row where a need has none)
    band_shares: np.ndarray  # [N, P, B] complexity-band shares of new plans and transfers
    mover_destination: np.ndarray  # [N, P, S] where movers go on today's pattern (sums to 1 or 0)
    mover_rate: np.ndarray  # [N, P] annual share of in-place children whose placement breaks down
    overflow: np.ndarray  # [P] setting index children go to when capacity is full (-1: none)
    capacity_limited: np.ndarray  # [S] bool
    # [N, S] bool: setting s takes need n (need designations); None = every setting takes every need
    serves_need: np.ndarray | None = None
    # [S] bool: the optimiser plans placements here (False: EHE, NEET, awaiting provision, ...)
    planned: np.ndarray | None = None
    # [P, C] setting indices of each phase's overflow chain, tried in order (-1 = none)
    overflow_chain: np.ndarray | None = None
    kinds: list[str] = field(default_factory=lambda: list(ENTRANT_KINDS))

    @property
    def legacy_persistence(self) -> np.ndarray:
        """[T, L, N, P] share of base-year placements still in place in year t."""
        return self.persistence[0]

    def in_place_check(self) -> np.ndarray:
        """Left-hand side of the identity [T, L, N, P]: legacy plus entrants still in place."""
        ent = self.entrants.sum(-1)  # [T, L, N, P]
        return self.legacy.sum(-1) + np.einsum("elnp,etlnp->tlnp", ent, self.persistence)


@dataclass
class PlacementPlan:
    """Places in use by (year, home locality, provider locality, need, phase, setting) for one variant.

    ``places`` is the stock in place in each January (legacy plus entrants still in place), which is
    what costs are charged on; ``entrant_places`` are the placements made in that year.
    """

    variant: str
    years: list[int]
    localities: list[str]
    needs: list[str]
    phases: list[str]
    settings: list[str]
    places: np.ndarray  # [T, L, L', N, P, S] children in place (home l, provider l')
    entrant_places: np.ndarray | None = None  # [T, L, L', N, P, S] placements made in year t
    unmet: np.ndarray | None = None  # [T, L, N, P] children needing a place left without one
    # Optional complexity-band composition of the places, used for band cost multipliers; when
    # None, costs assume the children in a setting are drawn from the bands it can meet in
    # proportion to the scenario's band shares.
    bands: list[str] | None = None
    band_share: np.ndarray | None = None  # [T, L, N, P, S, B] sums to 1 over B (or 0)

    def table(self, min_places: float = 1e-9) -> pd.DataFrame:
        """placements.csv rows: places in place (stock) and placements made that year; zero rows dropped."""
        idx = np.nonzero(
            (self.places > min_places)
            | (self.entrant_places > min_places if self.entrant_places is not None else False)
        )
        years = np.asarray(self.years)[idx[0]]
        academic = np.asarray([academic_year(y) for y in self.years])  # once per year
        df = pd.DataFrame(
            {
                "year": years,
                "academic_year": academic[idx[0]],
                "locality": np.asarray(self.localities)[idx[1]],
                "provider_locality": np.asarray(self.localities)[idx[2]],
                "need": np.asarray(self.needs)[idx[3]],
                "phase": np.asarray(self.phases)[idx[4]],
                "setting": np.asarray(self.settings)[idx[5]],
                "places": self.places[idx],
                "new_places": (
                    self.entrant_places[idx] if self.entrant_places is not None else np.nan
                ),
                "variant": self.variant,
            }
        )
        return df.reset_index(drop=True)

    def by_setting(self) -> np.ndarray:
        """[T, S] places in place by year and setting."""
        return self.places.sum(axis=(1, 2, 3, 4))

    def occupancy(self) -> np.ndarray:
        """[T, S, L'] places in use at each provider locality."""
        return np.einsum("tlmnps->tsm", self.places)


# --------------------------------------------------------------------------- scenario arrays


def _problem(path: str, message: str) -> ScenarioError:
    return ScenarioError([Problem("scenario", path, message)])


def _mover_arrays(
    scn: Scenario, mix: np.ndarray, band_shares: np.ndarray, suitable: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mover rate [N, P], destination [N, P, S] and band [N, P, B] from placements.movers.

    A breakdown out of setting s into d is a child whose needs s no longer meets: their band is the
    base band distribution restricted to bands that d can meet and s cannot (if none, d can meet).
    """
    settings, bands = scn.setting_ids, list(scn.bands)
    N, P, S = mix.shape
    B = len(bands)
    rate = np.zeros((N, P))
    dest = np.zeros((N, P, S))
    band = np.zeros((N, P, B))
    serves = need_served(scn)  # [N, S]
    planned = planned_settings(scn)
    for ph, by_from in scn.placements.movers.items():
        p = PHASES.index(ph)
        for fk, to in by_from.items():
            f = settings.index(fk)
            for dk, share in to.items():
                if share <= 0:
                    continue
                d = settings.index(dk)
                # [N] share of the phase's in-place children moving (only needs d is designated for)
                flow = mix[:, p, f] * share * serves[:, d]
                if not planned[d]:
                    # moves into a setting nobody chooses (e.g. NEET) are carried, not banded
                    rate[:, p] += flow
                    dest[:, p, d] += flow
                    band[:, p, :] += flow[:, None] * band_shares[:, p, :]
                    continue
                w = band_shares[:, p, :] * (suitable[:, p, d] & ~suitable[:, p, f])[None, :]
                fallback = band_shares[:, p, :] * suitable[:, p, d][None, :]
                w = np.where(w.sum(1, keepdims=True) > 0, w, fallback)
                if np.any((w.sum(1) <= 0) & (flow > 0)):
                    if not suitable[:, p, d].any():
                        raise _problem(
                            f"placements.movers.{ph}.{fk}.{dk}",
                            f"no band can be met in '{dk}' in phase {ph}: add it to a band",
                        )
                    # Band shares give none of the suitable bands: use the most specific one.
                    spec = int(np.argmin(np.where(suitable[:, p, d], suitable.sum((1, 2)), 10**9)))
                    w = np.where(w.sum(1, keepdims=True) > 0, w, np.eye(B)[spec][None, :])
                w = w / np.maximum(w.sum(1, keepdims=True), _TINY)
                rate[:, p] += flow
                dest[:, p, d] += flow
                band[:, p, :] += flow[:, None] * w
    with np.errstate(invalid="ignore", divide="ignore"):
        dest = np.where(rate[..., None] > 0, dest / rate[..., None], 0.0)
        band = np.where(rate[..., None] > 0, band / rate[..., None], 0.0)
    return rate, dest, band


def inclusion_shares(scn: Scenario) -> np.ndarray:
    """[T, B, B] band transition matrices by year from policy.inclusion (rows: from band)."""
    bands = list(scn.bands)
    B = len(bands)
    out = np.tile(np.eye(B), (len(scn.years), 1, 1))
    for t, y in enumerate(scn.years):
        for inc in scn.policy.inclusion:
            if y < inc.from_year:
                continue
            moved = min(inc.max_share, inc.share_per_year * (y - inc.from_year + 1))
            f, to = bands.index(inc.from_band), bands.index(inc.to_band)
            step = np.eye(B)
            step[f, f] -= moved
            step[f, to] += moved
            out[t] = out[t] @ step
    return out


# --------------------------------------------------------------------------- stock-flow cohorts


def _cohorts(
    stock: np.ndarray, new: np.ndarray, mover_rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split the stock into placement cohorts by entry year, exactly, summed over phase ages.

    stock, new: [K, T, A, N, L] (K = paths). mover_rate: [N, P].
    Returns entrants by kind [K, T, P, N, L, 3] (new, transfer, mover), in place [K, E, T, P, N, L]
    (cohort entered in year e, still in its placement in year t; e = 0 is the base-year legacy),
    persistence [K, E, T, P, N, L] (in place / entered: 1 on the diagonal, 0 before entry) and
    the stock [K, T, P, N, L].

    Survivors into (t, a) are stock[t, a] - new[t, a]; every cohort at (t-1, a-1) survives at the
    same rate r. At a transfer age all survivors need a new place; otherwise a share ``mover_rate``
    breaks down and needs one. Entrants are whatever the stock holds beyond the cohorts still in
    place, so sum over cohorts == stock holds by construction, even for noisy Monte Carlo paths.
    Runs compiled (``placement_kernel.cohort_paths``), path by path, adding in numpy's order (the
    results are the earlier numpy code's, bit for bit; tests keep that code as the oracle).
    """
    from .placement_kernel import cohort_paths  # numba: imported with placement demand

    K, T, A, N, L = stock.shape
    P, C = len(PHASES), N * L
    m_age = mover_rate[:, AGE_PHASE].T * ~IS_TRANSFER_AGE[:, None]  # [A, N]
    kinds = np.zeros((K, T, P, N, L, 3))
    inplace = np.zeros((K, T, T, P, N, L))
    persistence = np.zeros((K, T, T, P, N, L))
    stock_p = np.zeros((K, T, P, N, L))
    cohort_paths(
        np.ascontiguousarray(stock).reshape(K, T, A, C),
        np.ascontiguousarray(new).reshape(K, T, A, C),
        np.ascontiguousarray(np.repeat(m_age, L, axis=1)),  # [A, C], C = (need, locality)
        (~IS_TRANSFER_AGE).astype(float),
        IS_TRANSFER_AGE.astype(float),
        PHASE_STARTS,
        PHASE_LAST_AGES,
        _TINY,
        kinds.reshape(K, T, P, C, 3),
        inplace.reshape(K, T, T, P, C),
        persistence.reshape(K, T, T, P, C),
        stock_p.reshape(K, T, P, C),
    )
    return kinds, inplace, persistence, stock_p


def batch_constants(scn: Scenario) -> dict[str, Any]:
    """Everything ``_demand_batch`` reads from the scenario (the paths aside): the mix, bands,
    moves, inclusion shifts, suitability, capacity and overflow rules, as arrays."""
    needs, settings, bands = list(scn.demand.needs), scn.setting_ids, list(scn.bands)
    mix = by_phase_need(scn.placements.mix, needs, settings)
    band_shares = by_phase_need(scn.placements.band_shares, needs, bands)
    suitable = suitability(scn)
    m_rate, m_dest, m_band = _mover_arrays(scn, mix, band_shares, suitable)
    return {
        "dims": np.array([len(scn.years), len(AGES), len(needs), len(scn.locality_ids)]),
        "suitable": suitable,
        "capacity": capacity_array(scn),
        "mix": mix,
        "band_shares": band_shares,
        "mover_destination": m_dest,
        "mover_rate": m_rate,
        "mover_band": m_band,
        "inclusion": inclusion_shares(scn),  # [T, B, B]
        "overflow": overflow_settings(scn),
        "overflow_chain": overflow_chain(scn),
        "chain_ok": chain_suitable(scn),
        "serves_need": need_served(scn),
        "planned": planned_settings(scn),
        "capacity_limited": np.array([scn.settings[s].capacity_limited for s in settings]),
    }


def paths_fingerprint(consts: dict[str, Any]) -> str:
    """sha256 of ``batch_constants``, which include all a batch's per-path arrays (PATH_ARRAYS)
    depend on: equal fingerprints and equal paths give equal arrays. Of the capacity only the base
    year counts (it caps the legacy placements), so a lever adding places from a later year keeps
    them."""
    h = hashlib.sha256()
    for k in sorted(consts):
        a = np.ascontiguousarray(consts[k][:1] if k == "capacity" else consts[k])
        h.update(f"{k}:{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# _demand_batch arrays with a leading path axis (the rest are the scenario's constants)
PATH_ARRAYS = ("entrants", "persistence", "legacy", "entrants_by_kind", "stock")


def _demand_batch(
    scn: Scenario,
    stock: np.ndarray,
    new: np.ndarray,
    consts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """placement_demand over a leading path axis K: arrays with K first (see PlacementDemand).

    ``consts``: ``batch_constants(scn)``, when the caller has them already."""
    c = batch_constants(scn) if consts is None else consts
    stock = np.asarray(stock, dtype=float)
    new = np.asarray(new, dtype=float)
    K, T, A, N, L = stock.shape
    if (T, A, N, L) != tuple(c["dims"]):
        raise ValueError(
            f"stock has shape {stock.shape[1:]}, expected "
            f"{tuple(c['dims'])} (years, ages, needs, localities)"
        )
    return shared_arrays(c) | _path_arrays(stock, new, c)


def shared_arrays(consts: dict[str, Any]) -> dict[str, Any]:
    """The arrays of a batch that are the same on every path (from ``batch_constants``)."""
    return {k: v for k, v in consts.items() if k not in ("dims", "mover_band", "inclusion")}


def _path_arrays(stock: np.ndarray, new: np.ndarray, c: dict[str, Any]) -> dict[str, np.ndarray]:
    """The per-path arrays of a batch (PATH_ARRAYS) from its stock and new plans [K, T, A, N, L]."""
    kinds, inplace, pers, stock_p = _cohorts(stock, new, c["mover_rate"])
    # The views below keep the memory order [..., P, N, L] these arrays always had: sums taken
    # over them later (the robustness check's einsum) add in an order that follows it.
    # Entrants by home locality, need, phase, kind: [K, T, L, N, P, 3]
    by_kind = kinds.transpose(0, 1, 4, 3, 2, 5)
    # Persistence [K, E, T, L, N, P]: in place / entered (1 on the diagonal by definition).
    inpl = inplace.transpose(0, 1, 2, 5, 4, 3)  # [K, E, T, L, N, P]
    pers = pers.transpose(0, 1, 2, 5, 4, 3)

    # Bands: new plans and transfers by band_shares; movers by their conditional band; then the
    # KPI 14 inclusion shifts of the year.
    bands_t = (by_kind[..., 0] + by_kind[..., 1])[..., None] * c["band_shares"][
        None, None, None
    ] + by_kind[..., 2][..., None] * c["mover_band"][None, None, None]
    entrants = np.einsum("ktlnpb,tbc->ktlnpc", bands_t, c["inclusion"])
    entrants[:, 0] = 0.0
    by_kind[:, 0] = 0.0

    # Legacy: base-year stock by today's mix at home; what exceeds the home locality's base-year
    # capacity goes to the overflow setting (places in use can never exceed places that exist).
    mix, limited, ovf = c["mix"], c["capacity_limited"], c["overflow"]
    stock0 = inpl[:, 0, 0]  # [K, L, N, P] base-year plans
    want = stock0[..., None] * mix[None, None]  # [K, L, N, P, S]
    use = want.sum(axis=(2, 3))  # [K, L, S]
    cap0 = c["capacity"][0].T[None]  # [1, L, S]
    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.where(limited & (use > cap0), cap0 / np.where(use > 0, use, 1.0), 1.0)
    placed0 = want * fill[:, :, None, None, :]
    excess = (want - placed0).sum(-1)  # [K, L, N, P]
    for p, s in enumerate(ovf):
        if s >= 0:
            placed0[..., p, s] += excess[..., p]
        else:  # nowhere to overflow: keep them where the mix puts them (over capacity)
            placed0[..., p, :] = want[..., p, :]
    legacy = placed0[:, None] * pers[:, 0, :, :, :, :, None]  # [K, T, L, N, P, S]
    return {
        "entrants": entrants,
        "persistence": pers,
        "legacy": legacy,
        "entrants_by_kind": by_kind,
        "stock": stock_p.transpose(0, 1, 4, 3, 2),
    }


def placement_demand(scn: Scenario, stock: np.ndarray, new: np.ndarray) -> PlacementDemand:
    """Entrants, persistence and legacy placements from demand stock and new plans [T, A, N, L].

    Works per Monte Carlo path too: pass one path's stock (and its new plans).
    """
    arr = _demand_batch(scn, np.asarray(stock)[None], np.asarray(new)[None])
    return PlacementDemand(
        years=list(scn.years),
        localities=scn.locality_ids,
        needs=list(scn.demand.needs),
        phases=list(PHASES),
        settings=scn.setting_ids,
        bands=list(scn.bands),
        entrants=arr["entrants"][0],
        persistence=arr["persistence"][0],
        legacy=arr["legacy"][0],
        suitable=arr["suitable"],
        capacity=arr["capacity"],
        entrants_by_kind=arr["entrants_by_kind"][0],
        stock=arr["stock"][0],
        mix=arr["mix"],
        band_shares=arr["band_shares"],
        mover_destination=arr["mover_destination"],
        mover_rate=arr["mover_rate"],
        overflow=arr["overflow"],
        capacity_limited=arr["capacity_limited"],
        serves_need=arr["serves_need"],
        planned=arr["planned"],
        overflow_chain=arr["overflow_chain"],
    )


# --------------------------------------------------------------------------- unmitigated forecast


def provider_mask(scn: Scenario, dist: np.ndarray) -> np.ndarray:
    """[L, L'] provider localities a home locality may use at all: home and, where
    ``policy.max_provider_localities`` is set, only that many nearest in all (ties keep locality
    order). The travel limit is applied separately (it may be soft)."""
    L = dist.shape[0]
    keep = scn.policy.max_provider_localities
    if keep is None or keep >= L:
        return np.ones((L, L), bool)
    d = np.where(np.eye(L, dtype=bool), -np.inf, dist)  # home first
    order = np.argsort(d, axis=1, kind="stable")[:, :keep]
    mask = np.zeros((L, L), bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def spill_pairs(scn: Scenario) -> list[tuple[int, int]]:
    """(home, provider) locality pairs a child may be placed across, nearest first.

    Only pairs within policy.max_travel_km (when set) and among the home's
    policy.max_provider_localities nearest (when set); ties keep locality order.
    """
    d = distances_km(scn).to_numpy()
    limit = scn.policy.max_travel_km
    ok = provider_mask(scn, d) & ~np.eye(d.shape[0], dtype=bool)
    if limit is not None:
        ok &= d <= limit
    i, j = np.nonzero(ok)
    return sorted(zip(i.tolist(), j.tolist(), strict=True), key=lambda ij: (d[ij], ij))


PATH_CHUNK_BYTES = 2**28  # 256 MB: what one batch of Monte Carlo paths holds per path, in all


def path_bytes(scn: Scenario) -> int:
    """Bytes one Monte Carlo path holds in a batch (float64): its persistence and one copy
    [T, T, L, N, P], about three arrays over (year, provider, need, phase, setting) (demand, places
    by provider) and places by (year, home, provider, setting). Full placements by pair are never
    kept for paths (``PathPlaces``); the allocation's own scratch is per call, not per path."""
    T, L = len(scn.years), len(scn.locality_ids)
    N, P, S = len(scn.demand.needs), len(PHASES), len(scn.setting_ids)
    return 8 * (2 * T * T * L * N * P + 3 * T * L * N * P * S + T * L * L * S)


def path_chunk(scn: Scenario, most: int = 25) -> int:
    """Monte Carlo paths allocated at once: ``most``, or fewer so a batch stays within
    PATH_CHUNK_BYTES (an LA with 64 localities runs a dozen paths at a time)."""
    return int(max(1, min(most, PATH_CHUNK_BYTES // path_bytes(scn))))


def allocate(
    desired: np.ndarray,
    persistence: np.ndarray,
    legacy: np.ndarray,
    capacity: np.ndarray,
    overflow: np.ndarray,
    pairs: list[tuple[int, int]],
    chain: np.ndarray | None = None,
    serves: np.ndarray | None = None,
    chain_ok: np.ndarray | None = None,
    entrants: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Place entrants year by year on a fixed pattern, limited by capacity (batched over paths K).

    desired [K, T, L, N, P, S]: entrants wanting each setting; persistence [K, T, T2, L, N, P];
    legacy [K, T, L, N, P, S] (at home); capacity [T, S, L'] or [K, T, S, L'] (inf = unlimited);
    overflow [P] setting index (-1: none); pairs: (home, provider) localities to spill to, in order;
    chain [P, C]: settings each phase's leftovers try next, in order (-1 pads); serves [N, S]: the
    needs a setting is designated for (chain settings take only those); chain_ok [S, S']: who
    wanted s may overflow to s' (``chain_suitable``).
    Each year: places still in use are legacy plus earlier entrants times persistence; entrants fill
    spare places at home first (pro rata when short), then spare places elsewhere nearest first;
    those left try the phase's chain the same way, and whoever is still left goes to the phase's
    overflow setting at home (or is unmet where there is none).
    Returns places in place, entrant placements [K, T, L, L', N, P, S] (None unless ``entrants``)
    and unmet [K, T, L, N, P]. Runs compiled (``placement_kernel``, decision 0008).
    """
    K, T, L, N, P, S = desired.shape
    places = np.zeros((K, T, L, L, N, P, S))
    alloc = np.zeros((K if entrants else 0, T, L, L, N, P, S))
    unmet = np.zeros((K, T, L, N, P))
    none = np.zeros((0, T, L, N, P, S))
    _run_kernel(
        (desired, persistence, legacy, capacity, overflow, pairs, chain, serves, chain_ok),
        (places, alloc, unmet, none, np.zeros((0, T, L, L, S))),
    )
    return places, alloc if entrants else None, unmet


@dataclass
class PathPlaces:
    """Places in use on a batch of Monte Carlo paths, in the two sums finance and the robustness
    check read (the full [K, T, L, L', N, P, S] array is never built: it grows with localities²)."""

    by_provider: np.ndarray  # [K, T, L', N, P, S] summed over home localities
    by_pair: np.ndarray  # [K, T, L, L', S] summed over needs and phases
    unmet: np.ndarray  # [K, T, L, N, P]

    def take(self, rows: np.ndarray) -> PathPlaces:
        """The paths ``rows`` (a mask or indices)."""
        return PathPlaces(self.by_provider[rows], self.by_pair[rows], self.unmet[rows])


def allocate_totals(
    desired: np.ndarray,
    persistence: np.ndarray,
    legacy: np.ndarray,
    capacity: np.ndarray,
    overflow: np.ndarray,
    pairs: list[tuple[int, int]],
    chain: np.ndarray | None = None,
    serves: np.ndarray | None = None,
    chain_ok: np.ndarray | None = None,
) -> PathPlaces:
    """``allocate`` for many paths when only places by provider and by (home, provider, setting)
    are needed: the same allocation, summed as it goes."""
    K, T, L, N, P, S = desired.shape
    out = PathPlaces(
        np.zeros((K, T, L, N, P, S)), np.zeros((K, T, L, L, S)), np.zeros((K, T, L, N, P))
    )
    empty = np.zeros((0, T, L, L, N, P, S))
    _run_kernel(
        (desired, persistence, legacy, capacity, overflow, pairs, chain, serves, chain_ok),
        (empty, empty, out.unmet, out.by_provider, out.by_pair),
    )
    return out


def _run_kernel(inputs: tuple, outputs: tuple) -> None:
    """Call the compiled allocation (``placement_kernel``) with ``allocate``'s inputs and the
    kernel's five output arrays (places, entrant placements, unmet, by provider, by pair)."""
    from .placement_kernel import allocate_paths  # numba: imported when an allocation runs

    desired, persistence, legacy, capacity, overflow, pairs, chain, serves, chain_ok = inputs
    K, T, L, N, P, S = desired.shape
    cap = np.broadcast_to(np.asarray(capacity, float), (K, *np.shape(capacity)[-3:]))
    limited = ~np.isinf(cap[0, 0, :, 0])  # [S] settings with a capacity limit
    pair_arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    chain = np.full((P, 0), -1) if chain is None else np.asarray(chain)
    serves = np.ones((N, S), bool) if serves is None else np.asarray(serves, bool)
    chain_ok = np.ones((S, S), bool) if chain_ok is None else np.asarray(chain_ok, bool)

    def c(a: Any, dtype: Any = float) -> np.ndarray:
        # one compiled signature: C-ordered, writable (a broadcast view is read-only) arrays
        return np.require(a, dtype, ["C", "W"])

    # the kernel reads desired and legacy as [K, T, N, P, L, S] and persistence as
    # [K, E, T, P, N, L]: the memory order _path_arrays and desired_unmitigated build them in, so
    # a batch's arrays need no copy
    allocate_paths(
        c(desired.transpose(0, 1, 3, 4, 2, 5)),
        c(
            np.broadcast_to(persistence, (K, *np.shape(persistence)[1:])).transpose(
                0, 1, 2, 5, 4, 3
            )
        ),
        c(np.broadcast_to(legacy, (K, *np.shape(legacy)[1:])).transpose(0, 1, 3, 4, 2, 5)),
        c(cap),
        c(limited, bool),
        c(overflow, np.int64),
        c(pair_arr, np.int64),
        c(chain, np.int64),
        c(serves, bool),
        c(chain_ok, bool),
        *outputs,
    )


def desired_unmitigated(arr: dict[str, np.ndarray]) -> np.ndarray:
    """[K, T, L, N, P, S] entrants by setting on today's pattern: new plans and transfers by the mix,
    movers by the movers table's destinations (bands and inclusion shifts are not used)."""
    kinds = arr["entrants_by_kind"]
    return (kinds[..., 0] + kinds[..., 1])[..., None] * arr["mix"][None, None, None] + kinds[
        ..., 2
    ][..., None] * arr["mover_destination"][None, None, None]


def carried_entrants(
    arr: dict[str, np.ndarray], planned: np.ndarray, today: np.ndarray | None = None
) -> np.ndarray:
    """[K, T, L, N, P, S] entrants carried in settings nobody plans (EHE, NEET, awaiting
    provision: ``planned`` False) on today's pattern; both variants keep them there.
    ``today``: ``desired_unmitigated(arr)`` if the caller has it already."""
    today = desired_unmitigated(arr) if today is None else today
    return today * ~np.asarray(planned, bool)


def planned_fraction(entrants: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """[..., L, N, P] share of a cell's entrants the optimiser places (the rest are carried)."""
    tot = entrants.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            tot > 0, np.clip(1.0 - carried.sum(-1) / np.where(tot > 0, tot, 1.0), 0, 1), 1.0
        )


def unmitigated(scn: Scenario, pdemand: PlacementDemand) -> PlacementPlan:
    """The unmitigated forecast: today's placement mix, capacity limited, overflow to independent."""
    arr = {
        "entrants_by_kind": pdemand.entrants_by_kind[None],
        "mix": pdemand.mix,
        "mover_destination": pdemand.mover_destination,
    }
    places, alloc, unmet = allocate(
        desired_unmitigated(arr),
        pdemand.persistence[None],
        pdemand.legacy[None],
        pdemand.capacity,
        pdemand.overflow,
        spill_pairs(scn),
        overflow_chain(scn),
        need_served(scn),
        chain_suitable(scn),
    )
    return PlacementPlan(
        variant="unmitigated",
        years=list(pdemand.years),
        localities=list(pdemand.localities),
        needs=list(pdemand.needs),
        phases=list(pdemand.phases),
        settings=list(pdemand.settings),
        places=places[0],
        entrant_places=alloc[0],
        unmet=unmet[0],
    )


def market_limit_warnings(scn: Scenario, plan: PlacementPlan) -> list[dict[str, object]]:
    """Warnings where placements exceed a ``capacity.market_limits`` row (e.g. independent post-16
    and 19+ places beyond the specialist post-16 places that exist): {kind, message, size, years}.

    ``size`` is the largest excess in places; ``years`` the January census years over the limit.
    """
    out: list[dict[str, object]] = []
    for lim in scn.capacity.market_limits:
        s_idx = [plan.settings.index(x) for x in lim.settings if x in plan.settings]
        p_idx = [plan.phases.index(x) for x in lim.phases if x in plan.phases]
        used = plan.places[..., p_idx, :][..., s_idx].sum(axis=(1, 2, 3, 4, 5))  # [T]
        excess = used - np.asarray(lim.places_by_year(list(plan.years)))
        over = excess > 0.5  # a whole place or more
        if not over.any():
            continue
        years = [int(y) for y, o in zip(plan.years, over, strict=True) if o]
        size = float(excess.max())
        out.append(
            {
                "kind": "market_limit",
                "variant": plan.variant,
                "message": f"{plan.variant}: {', '.join(lim.settings)} places in "
                f"{', '.join(lim.phases)} exceed the {lim.name} ({lim.places:,.0f} in "
                f"{plan.years[0]}, growing {lim.growth:.1%} a year) by up to {size:,.0f} places "
                f"in {years[0]}-{years[-1]}",
                "size": round(size, 1),
                "years": years,
            }
        )
    return out


# --------------------------------------------------------------------------- the stage


@dataclass
class PlacementsResult:
    """The placement stage: who needs a place when, where today's pattern puts them, and the
    provider markets that pattern fills beyond what they hold."""

    demand: PlacementDemand
    unmitigated: PlacementPlan
    warnings: list[dict[str, object]] = field(default_factory=list)


def run_placements(scn: Scenario, stock: np.ndarray, new: np.ndarray) -> PlacementsResult:
    """Placement demand from the demand stage's stock and new plans [T, A, N, L], and the
    unmitigated forecast (today's mix, committed capacity)."""
    pdemand = placement_demand(scn, stock, new)
    plan = unmitigated(scn, pdemand)
    return PlacementsResult(pdemand, plan, market_limit_warnings(scn, plan))
