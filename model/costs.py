"""Costs of a placement plan, by financial year and funding source.

- ``hnb`` placements: places in use x unit cost (setting and phase; day or residential) x need and
  band multipliers, inflated;
- ``hnb`` vacant places: commissioned places of a capacity-limited setting nobody fills still get
  their place funding (``costs.place_funding_gbp``: 10,000 special, 6,000 resource bases);
- ``hnb`` other high-needs spend not tied to a place (outreach, services), growing;
- transport (``costs.transport.funding_source``, the council's general fund): transported pupils x
  (fixed + per km x one-way distance home -> provider + the setting's extra km), inflated;
- ``capital``: committed pipeline places x capital per place, and the optimiser's builds.

Places are counted by academic year; money is reported by financial year (April-March, labelled
by its starting year): FY F = 5/12 x academic year F + 7/12 x academic year F+1, each priced at
its own prices. An academic year is priced at the financial year it starts in (September), so
academic year 2024/25 (label 2025) is at FY 2024-25 prices: index (1+inflation)^(label-1-price_base).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .domain import (
    by_phase_need,
    capacity_array,
    distances_km,
    financial_years,
    fy_label,
    fy_weights,
    price_index,
    suitability,
)
from .scenario import PHASES, Scenario

if TYPE_CHECKING:
    from .placements import PlacementPlan

COST_COLUMNS = [
    "year",
    "financial_year",
    "year_basis",
    "setting",
    "funding_source",
    "cost_line",
    "variant",
    "places",
    "cost_gbp",
]


# --------------------------------------------------------------------------- unit costs


def band_cost_factor(scn: Scenario) -> np.ndarray:
    """[N, P, S] average band multiplier of the children in a setting, by default.

    Assumes the children in setting s are drawn from the bands s can meet, in proportion to the
    scenario's band shares (used when a plan does not carry its own band composition).
    """
    bands = list(scn.bands)
    shares = by_phase_need(scn.placements.band_shares, list(scn.demand.needs), bands)  # [N, P, B]
    mult = np.array([scn.costs.band_multiplier.get(b, 1.0) for b in bands])
    w = shares[:, :, None, :] * suitability(scn).transpose(1, 2, 0)[None]  # [N, P, S, B]
    tot = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, (w * mult).sum(-1) / np.where(tot > 0, tot, 1.0), 1.0)


def phase_unit_cost(scn: Scenario) -> np.ndarray:
    """[P, S] cost per filled place per year at price-base prices (place funding plus top-up).

    The day cost is ``unit_cost_by_phase_gbp[setting][phase]`` where given, else
    ``unit_cost_gbp[setting]``; a ``residential_share`` of placements costs
    ``residential_unit_cost_gbp`` instead.
    """
    c = scn.costs
    out = np.zeros((len(PHASES), len(scn.setting_ids)))
    for j, s in enumerate(scn.setting_ids):
        res_share = c.residential_share.get(s, 0.0)
        res_cost = c.residential_unit_cost_gbp.get(s, c.unit_cost_gbp[s])
        for p, ph in enumerate(PHASES):
            day = c.unit_cost_by_phase_gbp.get(s, {}).get(ph, c.unit_cost_gbp[s])
            out[p, j] = (1.0 - res_share) * day + res_share * res_cost
    return out


def place_funding(scn: Scenario) -> np.ndarray:
    """[S] place funding per commissioned place per year (price-base prices); 0 where not given."""
    return np.array([scn.costs.place_funding_gbp.get(s, 0.0) for s in scn.setting_ids])


def commissioned_places(scn: Scenario, extra: np.ndarray | None = None) -> np.ndarray:
    """[T, S, L] places commissioned (existing grown, open pipeline, ``extra`` builds), before
    max_occupancy; zero for settings without a capacity limit (funded per pupil instead)."""
    cap = capacity_array(scn, extra) / scn.capacity.max_occupancy
    return np.where(np.isinf(cap), 0.0, cap)


def vacant_place_cost(
    scn: Scenario, occupied: np.ndarray, extra: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Place funding of commissioned places nobody fills, by academic year and setting.

    occupied [..., T, S, L'] places in use at each provider locality; returns vacant places and
    their cost at each year's prices, both [..., T, S].
    """
    vacant = np.maximum(commissioned_places(scn, extra) - occupied, 0.0)
    vacant = np.where(place_funding(scn)[:, None] > 0, vacant, 0.0).sum(-1)  # [..., T, S]
    return vacant, vacant * place_funding(scn) * price_index(scn)[:, None]


def builds_capacity(scn: Scenario, builds: pd.DataFrame | None) -> np.ndarray | None:
    """[T, S, L] places added by builds (builds.csv rows) from their opening year."""
    if builds is None or len(builds) == 0:
        return None
    years, settings, locs = np.asarray(scn.years), scn.setting_ids, scn.locality_ids
    extra = np.zeros((len(years), len(settings), len(locs)))
    for b in builds.itertuples(index=False):
        extra[
            years >= int(b.year_open),
            settings.index(str(b.setting)),
            locs.index(str(b.provider_locality)),
        ] += float(b.places)
    return extra


def unit_cost_array(scn: Scenario, plan: PlacementPlan | None = None) -> np.ndarray:
    """HNB cost per place per academic year, at that year's prices: [T, L, N, P, S].

    unit cost (setting and phase, day or residential) x need_multiplier[need] x band factor x
    price index.
    """
    settings, needs = scn.setting_ids, list(scn.demand.needs)
    unit = phase_unit_cost(scn)  # [P, S]
    need_m = np.array([scn.costs.need_multiplier.get(n, 1.0) for n in needs])
    T, L = len(scn.years), len(scn.locality_ids)
    if plan is not None and plan.band_share is not None:
        mult = np.array([scn.costs.band_multiplier.get(b, 1.0) for b in plan.bands or []])
        tot = plan.band_share.sum(-1)
        band = np.where(tot > 0, (plan.band_share * mult).sum(-1), 1.0)  # [T, L, N, P, S]
    else:
        band = np.broadcast_to(
            band_cost_factor(scn)[None, None], (T, L, len(needs), len(PHASES), len(settings))
        )
    return (
        band
        * unit
        * need_m[None, None, :, None, None]
        * price_index(scn)[:, None, None, None, None]
    )


def transport_cost_per_place(scn: Scenario) -> np.ndarray:
    """[T, L, L', S] transport cost per place in use (share transported x cost of one journey)."""
    tr = scn.costs.transport
    settings = scn.setting_ids
    share = np.array([tr.share_transported.get(s, 0.0) for s in settings])
    extra = np.array([tr.extra_km.get(s, 0.0) for s in settings])
    d = distances_km(scn).to_numpy()
    per_pupil = tr.fixed_gbp + tr.per_km_gbp * (d[:, :, None] + extra[None, None, :])  # [L, L', S]
    return price_index(scn)[:, None, None, None] * (share * per_pupil)[None]


def other_hnb_spend(scn: Scenario) -> np.ndarray:
    """[F] high-needs spend not tied to a place, growing from the first financial year."""
    fys = np.asarray(financial_years(scn))
    return scn.costs.other_hnb_spend_gbp * (1.0 + scn.costs.other_hnb_growth) ** (fys - fys[0])


def placement_spend_fy(
    scn: Scenario, places: np.ndarray, extra: np.ndarray | None = None
) -> np.ndarray:
    """HNB placement spend by financial year for a batch of plans: places [..., T, L, L', N, P, S] -> [..., F].

    Uses the default band composition (for Monte Carlo paths of the unmitigated pattern) and adds
    the place funding of commissioned places left empty (``extra``: builds' places [T, S, L]).
    """
    return provider_spend_fy(scn, places.sum(axis=-5), extra)


def provider_spend_fy(
    scn: Scenario, by_provider: np.ndarray, extra: np.ndarray | None = None
) -> np.ndarray:
    """``placement_spend_fy`` from places summed over home localities [..., T, L', N, P, S] (what
    the Monte Carlo paths keep: ``placements.PathPlaces.by_provider``)."""
    uc = unit_cost_array(scn)[:, 0]  # [T, N, P, S] (identical across localities by default)
    ay = np.einsum("...tmnps,tnps->...t", by_provider, uc)
    occupied = np.einsum("...tmnps->...tsm", by_provider)
    ay = ay + vacant_place_cost(scn, occupied, extra)[1].sum(-1)
    return ay @ fy_weights(len(scn.years)).T


# --------------------------------------------------------------------------- capital


def _spread(total: float, first_fy: int, last_fy: int, fys: list[int]) -> dict[int, float]:
    """Spread ``total`` evenly over financial years first..last, keeping those reported."""
    span = list(range(first_fy, last_fy + 1))
    return {f: total / len(span) for f in span if f in fys}


def pipeline_capital(scn: Scenario) -> pd.DataFrame:
    """Capital of committed pipeline places by financial year and setting.

    places x capital_per_place_gbp (at price-base prices, not inflated), spread evenly over the
    lead_time_years (at least 1) financial years before the places open in September: a project
    opening in academic year label Y (September Y-1) spends in FYs Y-lead .. Y-1. Spend falling
    before the first reported financial year is sunk and not shown.
    """
    fys = financial_years(scn)
    rows = []
    for item in scn.capacity.pipeline:
        per_place = scn.costs.capital_per_place_gbp.get(item.setting, 0.0)
        if per_place <= 0 or item.places <= 0:
            continue
        y_open = scn.capacity.open_year(item)
        lead = max(1, scn.costs.lead_time_years.get(item.setting, 1))
        for f, v in _spread(item.places * per_place, y_open - lead, y_open - 1, fys).items():
            rows.append((f, item.setting, v))
    return pd.DataFrame(rows, columns=["year", "setting", "cost_gbp"])


def builds_capital(scn: Scenario, builds: pd.DataFrame | None) -> pd.DataFrame:
    """Capital of the optimiser's builds (builds.csv) by financial year and setting.

    ``capital_cost_gbp`` is taken as given (so capital lines add up to builds.csv) and spread evenly
    over the financial years year_open - lead .. year_open - 1, lead = year_open - year_decided (>= 1).
    """
    fys = financial_years(scn)
    if builds is None or len(builds) == 0:
        return pd.DataFrame(columns=["year", "setting", "cost_gbp"])
    rows = []
    for b in builds.itertuples(index=False):
        lead = max(1, int(b.year_open) - int(b.year_decided))
        y_open = int(b.year_open)
        for f, v in _spread(float(b.capital_cost_gbp), y_open - lead, y_open - 1, fys).items():
            rows.append((f, str(b.setting), v))
    return pd.DataFrame(rows, columns=["year", "setting", "cost_gbp"])


# --------------------------------------------------------------------------- the table


def cost_table(
    scn: Scenario, plan: PlacementPlan, builds: pd.DataFrame | None = None
) -> pd.DataFrame:
    """costs.csv rows for one plan: one row per (financial year, setting, funding source, cost line).

    ``year`` is the financial year (by starting year; ``year_basis`` says so). ``places`` is the
    financial-year average of places in use (placements) or of transported pupils (transport).
    """
    settings = scn.setting_ids
    fys = financial_years(scn)
    W = fy_weights(len(scn.years))  # [F, T]
    places = plan.places
    frames: list[pd.DataFrame] = []

    def add(
        values: np.ndarray,
        counts: np.ndarray | None,
        line: str,
        source: str,
        which: np.ndarray | None = None,
    ) -> None:
        # values, counts: [F, S] (S = the settings selected by ``which``, all by default)
        F, S = values.shape
        names = np.asarray(settings)[which] if which is not None else np.asarray(settings)
        frames.append(
            pd.DataFrame(
                {
                    "year": np.repeat(fys, S),
                    "setting": np.tile(names, F),
                    "funding_source": source,
                    "cost_line": line,
                    "places": counts.ravel() if counts is not None else np.nan,
                    "cost_gbp": values.ravel(),
                }
            )
        )

    uc = unit_cost_array(scn, plan)  # [T, L, N, P, S]
    hnb_ay = np.einsum("tlmnps,tlnps->ts", places, uc)
    places_ay = places.sum(axis=(1, 2, 3, 4))  # [T, S]
    add(W @ hnb_ay, W @ places_ay, "placements", "hnb")
    if place_funding(scn).any():
        vacant, vacant_cost = vacant_place_cost(
            scn, np.einsum("tlmnps->tsm", places), builds_capacity(scn, builds)
        )
        funded = place_funding(scn) > 0
        add(W @ vacant_cost[:, funded], W @ vacant[:, funded], "vacant_places", "hnb", funded)

    per_place = transport_cost_per_place(scn)  # [T, L, L', S]
    by_route = places.sum(axis=(3, 4))  # [T, L, L', S]
    tr_ay = (by_route * per_place).sum(axis=(1, 2))
    share = np.array([scn.costs.transport.share_transported.get(s, 0.0) for s in settings])
    add(W @ tr_ay, W @ (places_ay * share), "transport", scn.costs.transport.funding_source)

    for line, cap in (
        ("capital_pipeline", pipeline_capital(scn)),
        ("capital_builds", builds_capital(scn, builds)),
    ):
        if len(cap):
            g = cap.groupby(["year", "setting"], as_index=False)["cost_gbp"].sum()
            g["funding_source"] = "capital"
            g["cost_line"] = line
            g["places"] = np.nan
            frames.append(g)

    frames.append(
        pd.DataFrame(
            {
                "year": fys,
                "setting": "none",
                "funding_source": "hnb",
                "cost_line": "other_high_needs",
                "places": np.nan,
                "cost_gbp": other_hnb_spend(scn),
            }
        )
    )
    out = pd.concat(frames, ignore_index=True)
    out["year"] = out["year"].astype(int)
    out["financial_year"] = out["year"].map(fy_label)
    out["year_basis"] = "financial_year"
    out["variant"] = plan.variant
    return (
        out[COST_COLUMNS]
        .sort_values(["year", "cost_line", "setting"], kind="stable")
        .reset_index(drop=True)
    )
