"""Shared domain helpers every stage uses: phases, settings and suitability, capacity,
distances, financial years and prices.

The lowest model module besides the schema: it imports only ``model.scenario``, never a stage, so
stages can share these without importing one another's private helpers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .scenario import AGES, PHASE_AGES, PHASES, TRANSFER_AGES, Scenario, phase_of_age

EARTH_RADIUS_KM = 6371.0088

# Age -> phase index.
AGE_PHASE = np.array([PHASES.index(phase_of_age(a)) for a in AGES])
IS_TRANSFER_AGE = np.array([a in TRANSFER_AGES for a in AGES])
PHASE_STARTS = np.array(TRANSFER_AGES)  # phases are contiguous age ranges starting here
PHASE_LAST_AGES = np.array([hi for _, hi in PHASE_AGES.values()])  # ... and ending here


def phase_sum(x: np.ndarray, axis: int) -> np.ndarray:
    """Sum single years of age (length 26 on ``axis``) into phases (length 5 there)."""
    return np.add.reduceat(x, PHASE_STARTS, axis=axis)


# --------------------------------------------------------------------------- phases, settings, suitability


def by_phase_need(
    table: dict[str, dict[str, dict[str, float]]], needs: list[str], keys: list[str]
) -> np.ndarray:
    """phase -> need (or `default`) -> key -> share as an array [N, P, K]; absent phases are zeros."""
    out = np.zeros((len(needs), len(PHASES), len(keys)))
    for p, ph in enumerate(PHASES):
        by_need = table.get(ph, {})
        for n, need in enumerate(needs):
            row = by_need.get(need, by_need.get("default", {}))
            for k, key in enumerate(keys):
                out[n, p, k] = row.get(key, 0.0)
    return out


def suitability(scn: Scenario) -> np.ndarray:
    """[B, P, S] bool: band b's needs can be met in setting s, s serves phase p and is planned.

    Settings with ``planned: false`` (EHE, NEET, awaiting provision) meet no band: nobody is
    placed there by choice; today's share of entrants is carried there instead.
    """
    settings, bands = scn.setting_ids, list(scn.bands)
    serves = np.array([[ph in scn.settings[s].phases for s in settings] for ph in PHASES])  # [P, S]
    in_band = np.array([[s in scn.bands[b].settings for s in settings] for b in bands])  # [B, S]
    planned = planned_settings(scn)
    return in_band[:, None, :] & serves[None, :, :] & planned[None, None, :]


def planned_settings(scn: Scenario) -> np.ndarray:
    """[S] bool: the optimiser may choose this setting: ``settings.<s>.planned`` and listed in a
    band. A setting no band lists can never be chosen, so today's share there is carried too
    (e.g. EHE or NEET settings a scenario declares without ``planned: false``)."""
    in_band = {s for b in scn.bands.values() for s in b.settings}
    return np.array([scn.settings[s].planned and s in in_band for s in scn.setting_ids], bool)


def need_served(scn: Scenario) -> np.ndarray:
    """[N, S] bool: setting s takes children whose primary need is n (its designation, or all)."""
    needs = list(scn.demand.needs)
    return np.array(
        [
            [scn.settings[s].needs is None or n in scn.settings[s].needs for s in scn.setting_ids]
            for n in needs
        ],
        bool,
    )


def chain_suitable(scn: Scenario) -> np.ndarray:
    """[S, S'] bool: a child who wanted setting s may overflow to setting s': s' is in every band
    that lists s, so it can meet any need s was meeting (FE cannot take a special-school sixth
    former's place when FE meets no specialist band). Settings in no band may go anywhere."""
    settings = scn.setting_ids
    bands = [set(b.settings) for b in scn.bands.values()]
    return np.array(
        [[all(t in b for b in bands if s in b) for t in settings] for s in settings], bool
    )


def overflow_chain(scn: Scenario) -> np.ndarray:
    """[P, C] setting indices each phase's entrants try, in order, when their setting is full
    (``placements.overflow``); -1 pads. The phase's overflow setting takes whoever is left."""
    settings = scn.setting_ids
    chains = [[settings.index(x) for x in scn.placements.overflow.get(ph, [])] for ph in PHASES]
    width = max([len(c) for c in chains] + [0])
    out = np.full((len(PHASES), width), -1)
    for p, c in enumerate(chains):
        out[p, : len(c)] = c
    return out


def overflow_settings(scn: Scenario) -> np.ndarray:
    """[P] setting index children go to when capacity is full: the `overflow` setting serving the
    phase, else the first setting without a capacity limit that serves it, else -1 (left unmet)."""
    settings = scn.setting_ids
    out = np.full(len(PHASES), -1)
    for p, ph in enumerate(PHASES):
        serving = [i for i, s in enumerate(settings) if ph in scn.settings[s].phases]
        flagged = [i for i in serving if scn.settings[settings[i]].overflow]
        uncapped = [i for i in serving if not scn.settings[settings[i]].capacity_limited]
        if flagged or uncapped:
            out[p] = (flagged or uncapped)[0]
    return out


def capacity_array(scn: Scenario, extra: np.ndarray | None = None) -> np.ndarray:
    """[T, S, L] usable places: existing + pipeline open by year t (after delays), x max_occupancy.

    Settings that are not capacity limited get +inf. ``extra`` [T, S, L] adds places (e.g. LP builds).
    """
    years, settings, locs = scn.years, scn.setting_ids, scn.locality_ids
    cap = np.zeros((len(years), len(settings), len(locs)))
    for s, sk in enumerate(settings):
        # existing places, grown at capacity.growth (e.g. FE colleges adding high-needs places)
        grow = (1.0 + scn.capacity.growth.get(sk, 0.0)) ** (np.asarray(years) - years[0])
        for lk, v in scn.capacity.existing.get(sk, {}).items():
            cap[:, s, locs.index(lk)] += v * grow
    for item in scn.capacity.pipeline:
        opens = scn.capacity.open_year(item)
        t_open = np.asarray(years) >= opens
        cap[t_open, settings.index(item.setting), locs.index(item.locality)] += item.places
    if extra is not None:
        cap = cap + extra
    cap = cap * scn.capacity.max_occupancy
    limited = np.array([scn.settings[s].capacity_limited for s in settings])
    cap[:, ~limited, :] = np.inf
    return cap


# --------------------------------------------------------------------------- geography


def distances_km(scn: Scenario) -> pd.DataFrame:
    """One-way travel distance (km) from home locality (rows) to provider locality (columns).

    From ``geography.distances_km`` when given; otherwise great-circle distance between the
    localities' coordinates x ``road_factor``, with ``within_locality_km`` on the diagonal.
    """
    g = scn.geography
    ids = scn.locality_ids
    if g.distances_km is not None:
        d = np.array([[g.distances_km[i][j] for j in ids] for i in ids], dtype=float)
    else:
        lat = np.radians([loc.lat for loc in g.localities])
        lon = np.radians([loc.lon for loc in g.localities])
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        h = (
            np.sin(dlat / 2) ** 2
            + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
        )
        d = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))) * g.road_factor
        np.fill_diagonal(d, g.within_locality_km)
    return pd.DataFrame(d, index=pd.Index(ids, name="locality"), columns=ids)


# --------------------------------------------------------------------------- time and prices


def financial_years(scn: Scenario) -> list[int]:
    """Financial years reported: base_year .. base_year + horizon_years - 1 (by starting year)."""
    return scn.years[:-1]


def academic_year(year: int) -> str:
    """Label of the academic year whose January census is ``year``: 2025 -> '2024/25'."""
    return f"{year - 1}/{year % 100:02d}"


def fy_label(fy: int) -> str:
    """2024 -> '2024-25'."""
    return f"{fy}-{(fy + 1) % 100:02d}"


def fy_weights(n_years: int) -> np.ndarray:
    """[F, T] weights turning academic-year amounts into financial years (5/12 of label F, 7/12 of F+1)."""
    w = np.zeros((n_years - 1, n_years))
    idx = np.arange(n_years - 1)
    w[idx, idx] = 5 / 12
    w[idx, idx + 1] = 7 / 12
    return w


def price_index(scn: Scenario) -> np.ndarray:
    """[T] price factor for each academic year: priced at the financial year it starts in."""
    years = np.asarray(scn.years)
    return (1.0 + scn.costs.inflation) ** (years - 1 - scn.meta.price_base_year)
