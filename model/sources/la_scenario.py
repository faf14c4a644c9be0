"""Build a complete scenario for one English local authority from the published SEN2 release.

``scenario_for_la`` turns the shipped SEN2 panel (``model.sources.sen2``) into a scenario mapping
and a provenance table (one row per key pattern: source, derived, assumption or input), and
``scenario_yaml`` writes it as commented YAML. What SEN2 publishes is taken exactly (January
counts, flows, age profile, needs, requests, timeliness, the caseload by placement type); what it
does not (population, unit costs, the HNB allocation, the deficit, capacity) is a national-average
default or an assumption, marked in the provenance with what the LA should put in its place.

Placement types map onto settings as ``PLACEMENT_SETTING`` says (docs/decisions/0005).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..scenario import MAX_AGE, PHASES, phase_of_age
from . import sen2

ENGLAND = "E92000001"

# SEN2 placement columns (the release's own leaf columns, not its totals) -> our settings.
PLACEMENT_SETTING: dict[str, str] = {
    "mainstream_la_maintained": "mainstream",
    "mainstream_academy": "mainstream",
    "mainstream_free_school": "mainstream",
    "nm_early_years": "mainstream",
    "mainstream_la_maintained_resourced_provision": "resource_base",
    "mainstream_la_maintained_senunit": "resource_base",
    "mainstream_academy_resourced_provision": "resource_base",
    "mainstream_academy_senunit": "resource_base",
    "mainstream_free_school_resourced_provision": "resource_base",
    "mainstream_free_school_senunit": "resource_base",
    "special_la_maintained": "special",
    "special_academy_free": "special",
    "special_independent": "independent",
    "special_non_maintained": "independent",
    "mainstream_independent": "independent",
    "ap_pru_total": "ap_eotas",
    "other_arrangements_la": "ap_eotas",
    "general_fe_tertiary_colleges": "post16",
    "specialist_post_16_institutions": "post16",
    "ukrlp_provider": "post16",
    "elective_home_education": "ehe",
    "neet": "neet",
    "neet_ntci": "neet",
    "neet_other": "neet",
    "neet_other_csa": "neet",
    "other_arrangements_parents": "other",
    "online_provider": "other",
    "w_settings": "other",
    "other_schools": "other",
    "other_placement_settings": "other",
    "placement_unknown": "other",
    "await_prov_2022": "other",
    "perm_ex_2022": "other",
}

# The settings every generated scenario declares: name, phases served as standard, and flags.
SETTINGS: dict[str, dict[str, Any]] = {
    "mainstream": {
        "name": "Mainstream school or early-years setting",
        "phases": ["early_years", "primary", "secondary", "post16"],
        "capacity_limited": False,
        "counts_as_mainstream": True,
    },
    "resource_base": {
        "name": "Resourced provision or SEN unit in a mainstream school",
        "phases": ["primary", "secondary"],
        "counts_as_mainstream": True,
    },
    "special": {
        "name": "State-funded special school (LA maintained, academy or free school)",
        "phases": ["early_years", "primary", "secondary", "post16"],
    },
    "independent": {
        "name": "Independent or non-maintained special school (and independent mainstream)",
        "phases": ["primary", "secondary", "post16", "post19"],
        "capacity_limited": False,
        "overflow": True,
        "state_funded": False,
    },
    "post16": {
        "name": "FE college, specialist post-16 or training provider",
        "phases": ["post16", "post19"],
    },
    "ap_eotas": {
        "name": "Alternative provision, PRU or other arrangements made by the LA (EOTAS)",
        "phases": ["primary", "secondary", "post16"],
        "capacity_limited": False,
    },
    "ehe": {"name": "Elective home education", "phases": list(PHASES), "capacity_limited": False},
    "neet": {
        "name": "Not in education, employment or training",
        "phases": list(PHASES),
        "capacity_limited": False,
    },
    "other": {
        "name": "Other arrangements, awaiting provision or placement not recorded",
        "phases": list(PHASES),
        "capacity_limited": False,
    },
}
SETTING_IDS = tuple(SETTINGS)
CAPACITY_LIMITED = ("resource_base", "special", "post16")

# Bands: who each setting's children are. A quarter of independent special placements are taken
# to be meetable in a state special school (assumption, as in the Devon default); specialist
# post-16 institutions count as specialist, FE colleges and training providers as universal.
BANDS: dict[str, dict[str, Any]] = {
    "universal": {
        "description": "Can be met in mainstream with support",
        "settings": ["mainstream", "resource_base", "special", "independent", "post16", "ap_eotas"],
    },
    "resourced": {
        "description": "Needs a resource base or better",
        "settings": ["resource_base", "special", "independent", "post16"],
    },
    "specialist": {
        "description": "Needs a special school",
        "settings": ["special", "independent", "post16"],
    },
    "independent_only": {
        "description": "Needs specialist independent provision",
        "settings": ["independent"],
    },
}
INDEPENDENT_ONLY_SHARE = 0.75

# National-average unit costs (GBP per place per year at 2024-25 prices); note says where from.
UNIT_COSTS: dict[str, tuple[float, str, str]] = {
    "mainstream": (
        7000,
        "national_mainstream_notional_threshold",
        "assumed top-up above the GBP 6,000 notional SEN budget (DfE)",
    ),
    "resource_base": (
        16000,
        "national_place_funding_unit_rb",
        "GBP 6,000 DfE place funding + assumed GBP 10,000 top-up",
    ),
    "special": (
        25000,
        "national_place_funding_special",
        "GBP 10,000 DfE place funding + assumed GBP 15,000 top-up",
    ),
    "independent": (
        64000,
        "national_inmss_avg_cost",
        "national average independent/non-maintained special school cost (DfE)",
    ),
    "post16": (10000, "-", "assumed FE element 2 and 3 funding"),
    "ap_eotas": (20000, "-", "assumed AP place plus top-up or EOTAS package"),
    "ehe": (
        0,
        "-",
        "no high-needs placement cost while home educated (LA support, if any, is in other_hnb_spend_gbp)",
    ),
    "neet": (0, "-", "no placement cost while not in education or training"),
    "other": (0, "-", "no placement cost assumed for other arrangements and unrecorded placements"),
}
# Devon's published 0.83% of 0-24 year olds requesting an assessment (2023): the rate the default
# population is derived from (only population x rate matters, see population_note).
REQUESTS_PER_1000 = 8.3
# Flat across school ages with a student bump at 18-22 (the Devon default's assumption).
POP_AGE_SHARES = [0.0363, 0.0363, 0.0363, 0.0363, 0.0363, 0.0381, 0.0381, 0.0381, 0.0381, 0.0381,
                  0.0381, 0.0381, 0.0381, 0.0381, 0.0381, 0.0381, 0.0363, 0.0363, 0.0454, 0.0472,
                  0.0472, 0.0436, 0.0399, 0.0345, 0.0345, 0.0345]  # fmt: skip
UNDER_3_WEIGHTS = np.array([1.0, 2.0, 4.0]) / 7.0  # plans rise steeply from birth to age 2
PRICE_BASE_YEAR = 2024
# Devon default's assumptions per plan, used as national-average defaults scaled by plans.
OTHER_HNB_PER_PLAN = 1700.0  # GBP 15m other high-needs spend for 8,873 plans
CAPITAL_PER_PLAN = 6750.0  # GBP 60m capital budget for 8,873 plans
BUILD_RB_PER_YEAR, BUILD_RB_TOTAL = 0.0135, 0.068  # 120 a year, 600 in all, for 8,873 plans
BUILD_SPECIAL_PER_YEAR, BUILD_SPECIAL_TOTAL = 0.034, 0.068  # 300 a year, 600 in all
WITHIN_LOCALITY_KM = 10.0


@dataclass
class _Prov:
    """Provenance rows collected while building: key pattern, kind, source, note."""

    rows: list[dict[str, str]]

    def add(self, key: str, kind: str, source: str, note: str) -> None:
        self.rows.append({"key": key, "kind": kind, "source": source, "note": note})


def _release(measure: str, years: str = "") -> str:
    tail = f" {years}" if years else ""
    return f"{sen2.RELEASE} ({measure}{tail})"


def _age_of(label: str) -> tuple[int, int]:
    """SEN2 age band label ('0-2', '7', '20+') as an inclusive (lo, hi) in 0..25."""
    if label.endswith("+"):
        return int(label[:-1]), MAX_AGE
    if "-" in label:
        lo, hi = label.split("-")
        return int(lo), int(hi)
    return int(label), int(label)


def _spread_by_age(values: pd.Series, last_age: int = MAX_AGE) -> np.ndarray:
    """Counts by SEN2 age band -> counts by single year of age 0..25 (bands spread by assumption)."""
    out = np.zeros(MAX_AGE + 1)
    for label, v in values.items():
        if not np.isfinite(v):
            continue
        lo, hi = _age_of(str(label))
        hi = min(hi, last_age)
        if (lo, hi) == (0, 2):
            out[0:3] += v * UNDER_3_WEIGHTS
        else:
            out[lo : hi + 1] += v / (hi - lo + 1)
    return out


def _shares(v: np.ndarray, digits: int = 6) -> list[float]:
    """Shares rounded to ``digits`` that sum to 1 exactly (the residual goes to the largest)."""
    s = v / v.sum()
    r = np.round(s, digits)
    r[int(np.argmax(r))] += round(1.0 - float(r.sum()), digits)
    return [float(round(x, digits)) for x in r]


def _share_map(keys: list[str], v: np.ndarray) -> dict[str, float]:
    keep = v > 0
    vals = _shares(v[keep])
    return dict(zip([k for k, m in zip(keys, keep, strict=True) if m], vals, strict=True))


def _count(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)


@lru_cache(maxsize=1)
def _wide() -> dict[str, dict[str, pd.DataFrame]]:
    """Published values by measure and area_code: year rows, one column per breakdown. Built once:
    a filter of the whole panel per look-up would make `init --all` take minutes."""
    p = sen2.panel()
    p = p[p["status"] == "published"].drop_duplicates(["area_code", "measure", "year", "breakdown"])
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for m, g in p.groupby("measure", sort=False):
        wide = g.pivot(index=["area_code", "year"], columns="breakdown", values="value")
        out[str(m)] = {str(code): t.droplevel(0) for code, t in wide.groupby(level=0, sort=False)}
    return out


@lru_cache(maxsize=8192)
def _table(code: str, measure: str) -> pd.DataFrame:
    """As ``sen2.table(code, measure)`` (published values only); empty where nothing is published."""
    t = _wide().get(measure, {}).get(code)
    if t is None:
        return pd.DataFrame()
    return t.loc[:, t.notna().any()].sort_index()


def _series(code: str, measure: str, breakdown: str = "all") -> pd.Series:
    """As ``sen2.series`` (published values only), NaN dropped."""
    t = _table(code, measure)
    if t.empty or breakdown not in t.columns:
        return pd.Series(dtype=float)
    return t[breakdown].dropna().astype(float)


@lru_cache(maxsize=512)
def mapped_caseload(code: str) -> pd.DataFrame:
    """Published January caseload by our settings (placement columns mapped): year x setting.

    Only years where the release publishes the placement split (the mapped columns hold at least
    half the total); plans in no published column (the total less the columns) count as ``other``.
    """
    t = _table(code, "plans_by_placement")
    total = _series(code, "plans")
    cols = [c for c in PLACEMENT_SETTING if c in t.columns]
    if t.empty or total.empty or not cols:
        return pd.DataFrame(columns=list(SETTING_IDS), dtype=float)
    by = t[cols].T.groupby(lambda c: PLACEMENT_SETTING[c]).sum(min_count=1).T
    by = by.reindex(columns=list(SETTING_IDS)).fillna(0.0)
    total = total.reindex(by.index)
    ok = total.notna() & (by.sum(axis=1) >= 0.5 * total)
    by, total = by[ok], total[ok]
    by["other"] += (total - by.sum(axis=1)).clip(lower=0.0)
    return by


def mapped_placements(code: str, year: int) -> pd.Series | None:
    """Published January caseload of ``year`` by our settings, or None where not published."""
    by = mapped_caseload(code)
    return by.loc[year].copy() if year in by.index else None


def _age_by_setting(code: str, year: int) -> np.ndarray:
    """[26 ages, settings] January caseload by age and placement type, mapped (0 where unpublished)."""
    t = _table(code, "plans_by_age_placement")
    out = np.zeros((MAX_AGE + 1, len(SETTING_IDS)))
    if year not in t.index:
        return out
    row = t.loc[year].dropna()
    for key, v in row.items():
        age_label, _, col = str(key).partition("|")
        setting = PLACEMENT_SETTING.get(col)
        if setting is None:
            continue
        lo, hi = _age_of(age_label)
        if (lo, hi) == (0, 2):
            out[0:3, SETTING_IDS.index(setting)] += float(v) * UNDER_3_WEIGHTS
        else:
            out[lo : hi + 1, SETTING_IDS.index(setting)] += float(v) / (hi - lo + 1)
    return out


def _phase_matrix() -> np.ndarray:
    """[26 ages, phases] 1 where the age is in the phase."""
    m = np.zeros((MAX_AGE + 1, len(PHASES)))
    for a in range(MAX_AGE + 1):
        m[a, PHASES.index(phase_of_age(a))] = 1.0
    return m


def rake(seed: np.ndarray, rows: np.ndarray, cols: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Iterative proportional fitting of ``seed`` to row and column totals (equal grand totals)."""
    x = seed.astype(float).copy()
    for _ in range(2000):
        rs = x.sum(axis=1)
        x *= np.divide(rows, rs, out=np.zeros_like(rows), where=rs > 0)[:, None]
        cs = x.sum(axis=0)
        x *= np.divide(cols, cs, out=np.zeros_like(cols), where=cs > 0)[None, :]
        if np.abs(x.sum(axis=1) - rows).max() <= tol * max(rows.sum(), 1.0):
            break
    return x


def _nearest(years: list[int], year: int) -> int:
    return min(years, key=lambda y: (abs(y - year), -y))


def placement_year(code: str, base_year: int) -> int | None:
    """The January whose caseload by placement type gives today's mix: the base year if published."""
    ok = [int(y) for y in mapped_caseload(code).index]
    return _nearest(ok, base_year) if ok else None


NEW_BASIS_YEAR = 2023  # SEN2 moved to person-level data in January 2023


def population_note() -> str:
    return (
        "assumption: the 0-25 population is not in SEN2; it is derived as the published "
        f"assessment requests / {REQUESTS_PER_1000} per 1,000 (Devon's published rate), so "
        "population x requests_per_1000 reproduces the LA's published requests. Only the product "
        "population x requests x conversion (x incidence) sets new plans, so results do not depend "
        "on this default; replace both with ONS projections and your own request rate"
    )


def scenario_for_la(
    code_or_name: str,
    base_year: int | None = None,
    localities: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The scenario mapping for one LA from SEN2, and its provenance rows (key, kind, source, note).

    ``localities`` (columns id, name, share, and lat, lon when more than one) splits the LA by
    district shares of its 0-25 population; by default the LA is one locality.
    Raises LookupError for an unknown LA and ValueError where the release has no January count.
    """
    return _scenario_for_area(sen2.find_la(code_or_name), base_year, localities)


def _scenario_for_area(
    area: sen2.Area,
    base_year: int | None = None,
    localities: pd.DataFrame | None = None,
    scale: float = 1.0,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """``scenario_for_la`` for any area of the panel; ``scale`` multiplies its counts (the template
    is England scaled to an average LA)."""
    code = area.code
    prov = _Prov([])
    plans = _series(code, "plans")
    if plans.empty:
        raise ValueError(f"{area.name}: the release publishes no January count of EHC plans")
    history = {int(y): _count(v) for y, v in plans.items()}
    if base_year is None:
        base_year = max(history)
    if base_year not in history:
        raise ValueError(
            f"{area.name}: no published January count for base year {base_year} "
            f"(published: {min(history)}-{max(history)})"
        )
    h_base = float(history[base_year]) * scale

    # ----------------------------------------------------------------- localities
    locs = _localities(area.name, localities)
    loc_ids = [loc["id"] for loc in locs]
    loc_share = np.array([loc.pop("share") for loc in locs], dtype=float)
    loc_share = loc_share / loc_share.sum()

    # ----------------------------------------------------------------- flows and rates
    new_total = _series(code, "new_plans")
    requests = _table(code, "requests")
    flow_years = [
        int(y)
        for y in new_total.index
        if y in requests.index and requests.loc[y].get("received", np.nan) > 0
    ]
    fallback_rates = not flow_years
    rate_code = ENGLAND if fallback_rates else code
    if fallback_rates:
        new_total = _series(ENGLAND, "new_plans")
        requests = _table(ENGLAND, "requests")
        flow_years = [int(y) for y in new_total.index if y in requests.index]
    flow_year = (
        base_year - 1 if base_year - 1 in flow_years else _nearest(flow_years, base_year - 1)
    )
    received = float(requests.loc[flow_year, "received"]) * scale
    new_plans = float(new_total[flow_year])
    conversion = min(1.0, new_plans / received)
    scale = 1.0
    if fallback_rates:  # England's rates applied to this LA's size
        scale = h_base / float(_series(ENGLAND, "plans")[base_year])
    pop_total = received * scale / (REQUESTS_PER_1000 / 1000.0)

    # ----------------------------------------------------------------- age profile
    stock_age, stock_src = _by_age_nearest(code, "plans_by_age", base_year, MAX_AGE)
    stock_age = stock_age / stock_age.sum()  # shares of the January stock by age
    new_age, new_age_src = _by_age_nearest(rate_code, "new_plans_by_age", flow_year, MAX_AGE - 1)
    # ----------------------------------------------------------------- needs
    needs = ["ASD", "SEMH", "SLCN", "MLD", "SLD", "PMLD", "SpLD", "HI", "VI", "MSI", "PD", "OTH"]
    need_shares, need_src = _need_shares(code, "needs_all_plans", needs)
    new_need_shares, new_need_src = _need_shares(code, "needs_new_plans", needs)

    # ----------------------------------------------------------------- cessation
    ces_by_age, ces_src = _cessation(code, base_year)

    # ----------------------------------------------------------------- placements
    p_year = placement_year(code, base_year)
    mix, band_shares, phases_served, p_src = _placement_mix(code, p_year, stock_age, h_base)

    # ----------------------------------------------------------------- flow history and timeliness
    flow_history = _flow_history(code)
    timeliness = _timeliness(code)

    # ----------------------------------------------------------------- capacity, costs, finance
    phase_stock = h_base * (stock_age @ _phase_matrix())  # [P]
    placed = {
        s: float(
            sum(
                phase_stock[p] * mix[ph].get("default", {}).get(s, 0.0)
                for p, ph in enumerate(PHASES)
            )
        )
        for s in SETTING_IDS
    }
    existing = {
        s: {
            lid: float(np.ceil(placed[s] * share))
            for lid, share in zip(loc_ids, loc_share, strict=True)
        }
        for s in CAPACITY_LIMITED
        if placed[s] > 0
    }
    unit_cost = {s: float(v[0]) for s, v in UNIT_COSTS.items()}
    placement_spend = sum(placed[s] * unit_cost[s] for s in SETTING_IDS)
    other_spend = round(OTHER_HNB_PER_PLAN * h_base, -3)
    hnb_income = round(placement_spend + other_spend, -5)

    settings = {}
    for s, spec in SETTINGS.items():
        d = dict(spec)
        d["phases"] = [ph for ph in PHASES if ph in spec["phases"] or ph in phases_served[s]]
        settings[s] = d

    rb_year = max(12.0, round(BUILD_RB_PER_YEAR * h_base / 12) * 12)
    sp_year = max(50.0, round(BUILD_SPECIAL_PER_YEAR * h_base / 50) * 50)
    scenario: dict[str, Any] = {
        "meta": {
            "name": f"{area.name} (from {sen2.RELEASE})",
            "description": (
                f"{area.name} from the DfE SEN2 release {sen2.RELEASE}: published January counts, "
                "flows, age, needs and today's placement mix; national-average costs and finance "
                "defaults the LA must replace (see the provenance file)."
            ),
            "la_name": area.name,
            "base_year": int(base_year),
            "horizon_years": 10,
            "price_base_year": PRICE_BASE_YEAR,
        },
        "geography": {
            "localities": locs,
            "road_factor": 1.3,
            "within_locality_km": WITHIN_LOCALITY_KM,
        },
        "population": {
            "base_0_25": {
                lid: float(round(pop_total * share))
                for lid, share in zip(loc_ids, loc_share, strict=True)
            },
            "age_shares": list(POP_AGE_SHARES),
            "growth": 0.0,
        },
        "demand": {
            "needs": needs,
            "history": history,
            "flow_history": flow_history,
            "timeliness_within_20_weeks": timeliness,
            "stock_age_shares": _shares(stock_age),
            "new_age_shares": _shares(new_age),
            "need_shares": need_shares,
            "new_need_shares": new_need_shares,
            "requests_per_1000": REQUESTS_PER_1000,
            "conversion_rate": round(conversion, 6),
            "cessation_rate": 0.02,
            "cessation_by_age": ces_by_age,
            "calibration": {"enabled": True, "fit": ["incidence", "cessation"]}
            | ({"ignore_before": NEW_BASIS_YEAR} if base_year >= NEW_BASIS_YEAR else {}),
        },
        "settings": settings,
        "bands": BANDS,
        "placements": {"mix": mix, "band_shares": band_shares},
        "capacity": {"existing": existing, "max_occupancy": 1.0},
        "costs": {
            "unit_cost_gbp": unit_cost,
            "inflation": 0.03,
            "transport": {
                "share_transported": {
                    "mainstream": 0.10,
                    "resource_base": 0.50,
                    "special": 0.80,
                    "independent": 0.90,
                    "post16": 0.30,
                    "ap_eotas": 0.50,
                },
                "fixed_gbp": 4000.0,
                "per_km_gbp": 165.0,
                "extra_km": {"independent": 25.0},
                "funding_source": "general_fund",
            },
            "capital_per_place_gbp": {
                "resource_base": 40000.0,
                "special": 90000.0,
                "post16": 30000.0,
            },
            "lead_time_years": {"resource_base": 1, "special": 3, "post16": 2},
            "build_unit_places": {"resource_base": 12, "special": 150, "post16": 50},
            "other_hnb_spend_gbp": float(other_spend),
            "other_hnb_growth": 0.03,
        },
        "finance": {
            "opening_deficit_gbp": 0.0,
            "hnb_income_gbp": float(hnb_income),
            "hnb_income_growth": 0.04,
        },
        "policy": {
            "buildable": {
                "resource_base": {
                    "max_places_per_year": rb_year,
                    "max_places_total": max(rb_year, round(BUILD_RB_TOTAL * h_base / 12) * 12),
                },
                "special": {
                    "max_places_per_year": sp_year,
                    "max_places_total": max(sp_year, round(BUILD_SPECIAL_TOTAL * h_base / 50) * 50),
                },
            },
            "capital_budget_gbp": float(round(CAPITAL_PER_PLAN * h_base, -5)),
            "integer_builds": False,
            "max_travel_km": 80.0,
            "discount_rate": 0.035,
            "unmet_penalty_gbp": 250000.0,
            "plan_for": 0.5,
        },
        "run": {"paths": 200, "seed": 20250331, "solver": "highs"},
    }
    if len(loc_ids) == 1:
        scenario["geography"]["distances_km"] = {loc_ids[0]: {loc_ids[0]: WITHIN_LOCALITY_KM}}

    _provenance(
        prov,
        area,
        base_year,
        flow_year,
        p_year,
        locs,
        fallback_rates,
        stock_src,
        new_age_src,
        need_src,
        new_need_src,
        ces_src,
        p_src,
    )
    if area.level == "la":
        # the statutory pipeline calibrated to the LA's published requests, assessments and
        # timeliness (model.process_fit); its plans issued become the projection's new plans
        from ..process_fit import process_inputs_for_la

        try:
            proc = process_inputs_for_la(code)
        except LookupError:  # no published requests: the fixed new-plan rate stays
            proc = None
        if proc is not None:
            scenario["process"] = proc["process"]
            for row in proc["provenance"]:
                prov.add(row["key"], row["kind"], row["source"], row["note"])
    return scenario, pd.DataFrame(prov.rows, columns=["key", "kind", "source", "note"])


def _by_age_nearest(code: str, measure: str, year: int, last_age: int) -> tuple[np.ndarray, str]:
    """Counts by single year of age from the published year nearest ``year`` (the LA's, else
    England's), and where they came from. SEN2 publishes ages only from 2022-2024 on."""
    for c, label in ((code, ""), (ENGLAND, ", England")):
        t = _table(c, measure)
        years = [int(y) for y in t.index if np.nansum(t.loc[y].to_numpy(dtype=float)) > 0]
        if years:
            y = _nearest(years, year)
            note = "" if y == year else f" (nearest published year to {year}: assumption)"
            return _spread_by_age(t.loc[y], last_age), _release(f"{measure}{label}", f"{y}{note}")
    raise ValueError(f"{code}: no published {measure}")


def _localities(la_name: str, localities: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Locality rows (id, name, share[, lat, lon]); one locality named after the LA by default."""
    if localities is None or len(localities) == 0:
        lid = re.sub(r"[^a-z0-9]+", "_", la_name.lower()).strip("_") or "la"
        if not lid[0].isalpha():
            lid = f"la_{lid}"
        return [{"id": lid, "name": la_name, "share": 1.0}]
    out = []
    for r in localities.to_dict("records"):
        d: dict[str, Any] = {"id": str(r["id"]), "name": str(r["name"]), "share": float(r["share"])}
        for k in ("lat", "lon"):
            if k in r and pd.notna(r[k]):
                d[k] = float(r[k])
        out.append(d)
    return out


def _need_shares(code: str, measure: str, needs: list[str]) -> tuple[dict[str, float], str]:
    """Primary-need shares (unknown dropped) from the LA, or England where the LA's are unpublished."""
    for c, label in ((code, ""), (ENGLAND, ", England")):
        t = _table(c, measure)
        if t.empty:
            continue
        year = int(t.index.max())
        v = np.array([t.loc[year].get(n, np.nan) for n in needs], dtype=float)
        v = np.nan_to_num(v)
        if v.sum() > 0:
            return _share_map(needs, v), _release(f"{measure}{label}", str(year))
    raise ValueError(f"{code}: no published {measure}")


def _cessation(code: str, base_year: int) -> tuple[dict[int, float], str]:
    """Share of plans ceasing by model age: ceased at age x in calendar Y / January Y plans aged x-1.

    Averaged over the published years (pooled counts); England's where the LA's are unpublished.
    """
    for c, label in ((code, ""), (ENGLAND, ", England")):
        ces = _table(c, "ceased_by_age")
        stock = _table(c, "plans_by_age")
        years = [int(y) for y in ces.index if y in stock.index]
        if not years:
            continue
        ceased = np.zeros(MAX_AGE + 1)
        held = np.zeros(MAX_AGE + 1)
        for y in years:
            st = _spread_by_age(stock.loc[y])
            for label_age, v in ces.loc[y].dropna().items():
                lo, hi = _age_of(str(label_age))
                ages = np.arange(max(lo - 1, 0), min(hi - 1, MAX_AGE - 1) + 1)
                ceased[ages] += v * st[ages] / st[ages].sum() if st[ages].sum() > 0 else 0.0
                held[ages] += st[ages]
        if ceased.sum() <= 0:
            continue
        q = np.divide(ceased, held, out=np.zeros_like(ceased), where=held > 0)
        q = np.clip(q, 0.0, 0.95)
        out = {a: round(float(q[a]), 4) for a in range(MAX_AGE)}
        return out, _release(f"ceased_by_age{label} / plans_by_age", f"{min(years)}-{max(years)}")
    raise ValueError(f"{code}: no published ceased plans")


def _placement_mix(
    code: str,
    year: int | None,
    stock_age: np.ndarray,
    h_base: float,
    phases_of: dict[str, list[str]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, set[str]], str]:
    """Today's mix (phase -> default -> setting share) raked to the published caseload by type.

    Rows: plans by phase from the age profile; columns: the caseload by placement type mapped onto
    settings; seed: the caseload by age and placement type. Raking keeps the published split by
    placement type exactly (the age-by-type cells carry suppressed values the totals do not).
    ``phases_of`` (setting -> phases) confines each setting to the phases it serves (an existing
    scenario's settings); by default a setting also serves any phase the caseload puts it in.
    """
    src_code, label = code, ""
    if year is None:  # no year with a published placement split: England's pattern
        src_code, label = ENGLAND, ", England"
        year = int(_series(ENGLAND, "plans").index.max())
    cols = mapped_placements(src_code, year)
    assert cols is not None
    col_target = cols.to_numpy() * h_base / cols.sum()
    ph = _phase_matrix()
    row_target = h_base * (stock_age @ ph)
    seed_years = [int(y) for y in _table(src_code, "plans_by_age_placement").index]
    seed_year = _nearest(seed_years, year) if seed_years else year
    seed = ph.T @ _age_by_setting(src_code, seed_year)  # [P, S]
    allowed = np.array(
        [
            [
                p in (phases_of or SETTINGS)[s] if phases_of else p in SETTINGS[s]["phases"]
                for s in SETTING_IDS
            ]
            for p in PHASES
        ],
        dtype=float,
    )
    if phases_of is None:
        seed = seed + 1e-6 * allowed + 1e-9  # somewhere to put columns the age cells miss
    else:  # nothing outside the phases a setting serves
        seed = seed * allowed + 1e-6 * allowed
    fitted = rake(seed, row_target, col_target)
    fitted[fitted < 1e-6 * max(h_base, 1.0)] = 0.0  # drop the seed's specks
    fitted = rake(np.where(fitted > 0, fitted, 0.0) + 0.0, row_target, col_target)

    fe_spec = 0.0
    t = _table(src_code, "plans_by_placement")
    if year in t.index:
        fe = float(
            np.nansum(
                [
                    t.loc[year].get(c, np.nan)
                    for c in (
                        "general_fe_tertiary_colleges",
                        "specialist_post_16_institutions",
                        "ukrlp_provider",
                    )
                ]
            )
        )
        spec = float(np.nan_to_num(t.loc[year].get("specialist_post_16_institutions", np.nan)))
        fe_spec = spec / fe if fe > 0 else 0.0
    band_of = {
        "mainstream": {"universal": 1.0},
        "resource_base": {"resourced": 1.0},
        "special": {"specialist": 1.0},
        "independent": {
            "specialist": 1 - INDEPENDENT_ONLY_SHARE,
            "independent_only": INDEPENDENT_ONLY_SHARE,
        },
        "post16": {"universal": 1 - fe_spec, "specialist": fe_spec},
        "ap_eotas": {"universal": 1.0},
        "ehe": {"universal": 1.0},
        "neet": {"universal": 1.0},
        "other": {"universal": 1.0},
    }
    bands = list(BANDS)
    to_band = np.array([[band_of[s].get(b, 0.0) for b in bands] for s in SETTING_IDS])
    mix: dict[str, Any] = {}
    band_shares: dict[str, Any] = {}
    served: dict[str, set[str]] = {s: set() for s in SETTING_IDS}
    fallback = {
        "early_years": "mainstream",
        "primary": "mainstream",
        "secondary": "mainstream",
        "post16": "post16",
        "post19": "post16",
    }
    for p, phase in enumerate(PHASES):
        row = fitted[p]
        if row.sum() <= 0:
            row = np.array([1.0 if s == fallback[phase] else 0.0 for s in SETTING_IDS])
        m = _share_map(list(SETTING_IDS), row)
        mix[phase] = {"default": m}
        for s in m:
            served[s].add(phase)
        by_band = row @ to_band
        # A band needs a setting serving the phase; where none does, its children join 'specialist'.
        for b, band in enumerate(bands):
            if by_band[b] > 0 and not any(
                phase in SETTINGS[s]["phases"] or phase in served[s]
                for s in BANDS[band]["settings"]
            ):
                by_band[bands.index("specialist")] += by_band[b]
                by_band[b] = 0.0
        band_shares[phase] = {"default": _share_map(bands, by_band)}
    src = _release(f"plans_by_placement and plans_by_age_placement{label}", str(year))
    return mix, band_shares, served, src


def _flow_history(code: str) -> list[dict[str, Any]]:
    """New plans (by age band and total) and ceased plans (likewise) in every published year."""
    rows: list[dict[str, Any]] = []
    for flow, total_m, age_m in (
        ("new", "new_plans", "new_plans_by_age"),
        ("ceased", "ceased_plans", "ceased_by_age"),
    ):
        total = _series(code, total_m)
        by_age = _table(code, age_m)
        for y, v in total.items():
            rows.append(
                {"year": int(y), "flow": flow, "plans": _count(v), "age_min": None, "age_max": None}
            )
            if y in by_age.index:
                for label, n in by_age.loc[y].dropna().items():
                    lo, hi = _age_of(str(label))
                    rows.append(
                        {
                            "year": int(y),
                            "flow": flow,
                            "plans": _count(n),
                            "age_min": lo,
                            "age_max": hi,
                        }
                    )
    return rows


def _timeliness(code: str) -> dict[int, float]:
    """Share of new plans issued within 20 weeks (including exceptions) by calendar year."""
    t = _table(code, "timeliness")
    out: dict[int, float] = {}
    for y in t.index:
        issued, within = t.loc[y].get("issued", np.nan), t.loc[y].get("within_20_weeks", np.nan)
        if np.isfinite(issued) and np.isfinite(within) and issued > 0:
            out[int(y)] = round(float(within / issued), 4)
    return out


def _provenance(
    prov: _Prov,
    area: Any,
    base_year: int,
    flow_year: int,
    p_year: int | None,
    locs: list[dict[str, Any]],
    fallback_rates: bool,
    stock_src: str,
    new_age_src: str,
    need_src: str,
    new_need_src: str,
    ces_src: str,
    p_src: str,
) -> None:
    """One row per key pattern of the generated scenario, in the Devon provenance format."""
    a = prov.add
    R = sen2.RELEASE
    a(
        "meta.*",
        "label",
        "-",
        f"{area.name} ({area.code}); base year {base_year} = the January {base_year} SEN2 count; unit costs at {PRICE_BASE_YEAR}-25 prices",
    )
    if len(locs) == 1:
        a(
            "geography.localities.*",
            "label",
            "-",
            "one locality for the whole LA (use --localities FILE to split by district)",
        )
        a(
            "geography.distances_km.*",
            "assumption",
            "-",
            f"typical journey within the LA ({WITHIN_LOCALITY_KM:g} km); replace with your own",
        )
    else:
        a(
            "geography.localities.*",
            "input",
            "--localities FILE",
            "districts, shares and coordinates given by the LA",
        )
    a(
        "geography.road_factor",
        "assumption",
        "-",
        "road distance per straight-line km (rule of thumb)",
    )
    a("geography.within_locality_km", "assumption", "-", "typical journey within a locality")
    a(
        "population.base_0_25.*",
        "assumption",
        _release("requests", str(flow_year)),
        population_note(),
    )
    a(
        "population.age_shares",
        "assumption",
        "-",
        "flat across school ages with a student bump at 18-22; replace with ONS single-year-of-age estimates",
    )
    a(
        "population.growth",
        "assumption",
        "-",
        "flat 0-25 population; replace with ONS sub-national projections",
    )
    a("demand.needs", "label", R, "SEN2 primary need codes")
    a(
        "demand.history.*",
        "source",
        _release("plans"),
        "January counts of EHC plans exactly as published (published years only)",
    )
    a(
        "demand.flow_history.*",
        "source",
        _release("new_plans, new_plans_by_age, ceased_plans, ceased_by_age"),
        "new plans by calendar year (2019-2024) and ceased plans (2022-2024), by age band and in total, exactly as published",
    )
    a(
        "demand.timeliness_within_20_weeks.*",
        "derived",
        _release("timeliness"),
        "plans issued within 20 weeks (including exceptions) / plans issued, by calendar year",
    )
    a(
        "demand.stock_age_shares",
        "derived",
        stock_src,
        "January plans by age; under-3s split 1:2:4 over ages 0-2 (assumption)",
    )
    a(
        "demand.new_age_shares",
        "derived",
        new_age_src,
        "new plans by age at start; under-3s split 1:2:4, 20+ spread evenly over 20-24 (assumption)",
    )
    a(
        "demand.need_shares.*",
        "derived",
        need_src,
        "primary need of all plans; 'unknown' left out and the rest rescaled",
    )
    a(
        "demand.new_need_shares.*",
        "derived",
        new_need_src,
        "primary need of new plans; 'unknown' left out and the rest rescaled",
    )
    a(
        "demand.requests_per_1000",
        "assumption",
        "devon_initial_requests_share_0_24_baseline",
        "Devon's published rate, used with the derived population so population x rate = the LA's published requests",
    )
    conv_note = f"new plans / assessment requests received in calendar {flow_year}" + (
        " (England's: the LA's flows are not published)" if fallback_rates else ""
    )
    a(
        "demand.conversion_rate",
        "derived",
        _release("new_plans and requests", str(flow_year)),
        conv_note,
    )
    a(
        "demand.cessation_rate",
        "assumption",
        "-",
        "ages without a published rate (none where SEN2 gives ceased plans by age)",
    )
    a(
        "demand.cessation_by_age.*",
        "derived",
        ces_src,
        "ceased at age x in a year / January plans aged x-1, pooled over the published years; 20+ spread over 19-24",
    )
    a(
        "demand.calibration.*",
        "setting",
        "-",
        "incidence, growth and cessation are fitted to the January history and the flows; growth "
        "has a prior pooled across all LAs from SEN2 (docs/decisions/0006)",
    )
    a(
        "settings.*",
        "label",
        "docs/decisions/0005-sen2-placement-mapping.md",
        "sendplan settings the SEN2 placement types map onto; a setting serves the standard phases plus any phase the caseload puts children in",
    )
    a(
        "bands.*",
        "assumption",
        "-",
        "complexity bands and the settings that can meet them (as the Devon default)",
    )
    p_note = "today's mix: plans by phase (age profile) raked to the published caseload by placement type, seeded by the caseload by age and placement type"
    if p_year is not None and p_year != base_year:
        p_note += (
            f"; the {base_year} split is not published, so the {p_year} split is used (assumption)"
        )
    a("placements.mix.*", "derived", p_src, p_note)
    a(
        "placements.band_shares.*",
        "assumption",
        p_src,
        f"band by setting: {INDEPENDENT_ONLY_SHARE:.0%} of independent placements need independent provision, specialist post-16 institutions are specialist, the rest universal; judgement",
    )
    a(
        "capacity.existing.*",
        "assumption",
        p_src,
        "places filled in the base year (capacity = base-year placements, rounded up): replace with your actual places",
    )
    a("capacity.max_occupancy", "assumption", "-", "every place can be filled")
    for s, (_, ref, note) in UNIT_COSTS.items():
        kind = "source" if ref == "national_inmss_avg_cost" else "assumption"
        a(
            f"costs.unit_cost_gbp.{s}",
            kind,
            ref,
            f"national-average default: {note}; replace with your own rates",
        )
    a("costs.inflation", "assumption", "-", "unit costs rise 3% a year")
    a(
        "costs.transport.*",
        "assumption",
        "national_send_transport_cost_per_child",
        "about GBP 8,100 per transported child (NAO 2024) at 25 km; shares transported by setting are judgement",
    )
    a(
        "costs.capital_per_place_gbp.*",
        "assumption",
        "-",
        "national-average default cost of a new place; replace with your own",
    )
    a("costs.lead_time_years.*", "assumption", "-", "years from a build decision to opening")
    a("costs.build_unit_places.*", "assumption", "-", "typical unit sizes")
    a(
        "costs.other_hnb_spend_gbp",
        "assumption",
        "-",
        f"INPUT: GBP {OTHER_HNB_PER_PLAN:,.0f} per plan (the Devon default's GBP 15m for 8,873 plans); replace with your high-needs spend not tied to a place",
    )
    a("costs.other_hnb_growth", "assumption", "-", "3% a year")
    a(
        "finance.opening_deficit_gbp",
        "assumption",
        "-",
        "INPUT: no cumulative DSG deficit assumed; replace with yours at 31 March of the base year (positive = deficit)",
    )
    a(
        "finance.hnb_income_gbp",
        "assumption",
        "-",
        "INPUT: set to the base year's modelled HNB spend (placements x unit costs + other spend), so the first year is about balanced; replace with your DSG High Needs Block allocation",
    )
    a(
        "finance.hnb_income_growth",
        "assumption",
        "national_send_funding_increase",
        "4% a year; replace with your allocations",
    )
    a(
        "policy.buildable.*",
        "assumption",
        "-",
        "build limits scaled by plans from the Devon default (resource bases 1.35% of plans a year, special places 3.4%)",
    )
    a(
        "policy.capital_budget_gbp",
        "assumption",
        "-",
        f"GBP {CAPITAL_PER_PLAN:,.0f} per plan (the Devon default's GBP 60m for 8,873 plans)",
    )
    a("policy.*", "setting", "-", "optimiser settings as the Devon default")
    a("run.*", "setting", "-", "Monte Carlo paths, seed and solver")


# --------------------------------------------------------------------------- rendering

SECTIONS = (
    "meta",
    "geography",
    "population",
    "demand",
    "settings",
    "bands",
    "placements",
    "capacity",
    "costs",
    "finance",
    "policy",
    "run",
    "process",
)


def provenance_file_name(yaml_name: str) -> str:
    """The provenance CSV written beside a generated scenario: ``kent.yaml`` -> ``kent.provenance.csv``."""
    stem = yaml_name[: -len(".yaml")] if yaml_name.endswith(".yaml") else yaml_name
    return f"{stem}.provenance.csv"


def _is_flat(items: Any) -> bool:
    """Short scalar values only: written on one line (rows, shares, lists of numbers)."""
    return all(
        v is None or isinstance(v, int | float | bool) or (isinstance(v, str) and len(v) <= 40)
        for v in items
    )


def _yaml_classes() -> type:
    import yaml

    class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
        """Block style for sections, flow style for flat mappings and lists (one line each)."""

        def represent_dict(self, data: Any) -> Any:  # type: ignore[override]
            return self.represent_mapping(
                "tag:yaml.org,2002:map", data.items(), flow_style=_is_flat(data.values())
            )

        def represent_list(self, data: Any) -> Any:  # type: ignore[override]
            return self.represent_sequence(
                "tag:yaml.org,2002:seq", data, flow_style=bool(data) and _is_flat(data)
            )

    Dumper.add_representer(dict, Dumper.represent_dict)
    Dumper.add_representer(list, Dumper.represent_list)
    return Dumper


_Dumper = _yaml_classes()


def scenario_yaml(scenario: dict[str, Any], provenance: pd.DataFrame, yaml_name: str) -> str:
    """The scenario as commented YAML: a header (source, attribution, inputs to supply), then each
    section preceded by the provenance of its keys."""
    import yaml

    meta = scenario["meta"]
    rows = provenance.to_dict("records")
    inputs = [r["key"] for r in rows if r["note"].startswith("INPUT")]
    head = [
        f"# {meta['la_name']}: a sendplan scenario generated by `sendplan init` from {sen2.RELEASE}.",
        "#",
        f"# {sen2.ATTRIBUTION}",
        "#",
        "# Every value has a provenance row in "
        f"{provenance_file_name(yaml_name)} (key, kind, source, note): 'source' and 'derived'",
        "# values come from the published release; 'assumption' values are national-average",
        "# defaults or judgement. Replace these inputs with your own figures before relying on",
        "# costs or finance:",
        *[f"#   - {k}" for k in inputs],
        "#   - population.base_0_25 (ONS projections), capacity.existing (your actual places),",
        "#     capacity.pipeline (your committed projects) and finance.safety_valve_* (if any)",
        "#",
        "# Years: `year` is the January census year (2025 = academic year 2024/25); flows in",
        "# demand.flow_history are calendar years; financial years are labelled by their start.",
        "",
    ]
    body: list[str] = []
    for section in SECTIONS:
        if section not in scenario:
            continue
        body.append(f"# ---- {section}")
        for r in rows:
            if r["key"].split(".")[0] == section:
                src = "" if r["source"] in ("", "-") else f" [{r['source']}]"
                body.append(f"# {r['key']}: {r['kind']}{src}: {r['note']}")
        text = yaml.dump(
            {section: scenario[section]},
            Dumper=_Dumper,
            sort_keys=False,
            width=100,
            allow_unicode=True,
        )
        body.append(text.rstrip("\n"))
        body.append("")
    return "\n".join(head + body)


def slug(name: str) -> str:
    """File stem for an LA: 'Bristol, City of' -> 'bristol-city-of'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "la"


def provenance_csv(provenance: pd.DataFrame) -> str:
    """The provenance rows as CSV text (the Devon default's columns: key, kind, source, note)."""
    return provenance.to_csv(index=False, lineterminator="\n")


def files_for_la(
    code_or_name: str,
    yaml_name: str,
    base_year: int | None = None,
    localities: pd.DataFrame | None = None,
) -> dict[str, str]:
    """The two files `sendplan init` writes for one LA (or ``"template"``), validated:
    {name: text} (YAML, provenance).

    Raises ScenarioError (naming ``yaml_name``) if the generated scenario does not validate.
    """
    import yaml

    from ..io import validate_mapping

    if code_or_name == "template":
        scenario, prov = template_scenario()
    else:
        scenario, prov = scenario_for_la(code_or_name, base_year, localities)
    text = scenario_yaml(scenario, prov, yaml_name)
    # What is written is what runs: the text must read back as the mapping, and the mapping validate.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if yaml.load(text, Loader=loader) != scenario:
        raise ValueError(f"{yaml_name}: the written YAML does not read back as the scenario")
    validate_mapping(scenario, yaml_name)
    return {yaml_name: text, provenance_file_name(yaml_name): provenance_csv(prov)}


def read_localities(path: str) -> pd.DataFrame:
    """Districts from a CSV (id, name, share; lat, lon needed when there is more than one).

    Raises ScenarioError with ``FILE: localities...: message`` problems.
    """
    from ..io import Problem, ScenarioError

    def bad(where: str, msg: str) -> ScenarioError:
        return ScenarioError([Problem(path, where, msg)])

    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise bad("", f"cannot read a localities CSV: {e}") from None
    missing = [c for c in ("id", "name", "share") if c not in df.columns]
    if missing:
        raise bad("", f"missing column(s) {', '.join(missing)} (need id, name, share[, lat, lon])")
    if df.empty:
        raise bad("", "no localities")
    shares = pd.to_numeric(df["share"], errors="coerce")
    for i, (lid, sh) in enumerate(zip(df["id"].astype(str), shares, strict=True)):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", lid):
            raise bad(f"localities.{i}.id", f"'{lid}' must be lower case letters, digits and _")
        if not np.isfinite(sh) or sh <= 0:
            raise bad(f"localities.{i}.share", f"share {df['share'].iloc[i]!r} must be positive")
    if abs(float(shares.sum()) - 1.0) > 1e-3:
        raise bad("share", f"shares sum to {shares.sum():.4f}, not 1")
    if df["id"].duplicated().any():
        raise bad("id", "duplicate locality id")
    if len(df) > 1:
        for c in ("lat", "lon"):
            if c not in df.columns or pd.to_numeric(df[c], errors="coerce").isna().any():
                raise bad(c, f"give {c} for every locality (distances come from coordinates)")
    df["share"] = shares
    return df


TEMPLATE_LOCALITY = {"id": "la", "name": "Your LA", "share": 1.0}


def template_scenario() -> tuple[dict[str, Any], pd.DataFrame]:
    """The blank template (``embedded:template``): England's published rates, age profile, needs
    and placement mix at the size of an average LA, no history, national-average costs.

    A scenario that extends it gives its own ``demand.history`` (and flows), its population and
    capacity; everything else can stay or be replaced key by key.
    """
    las = sen2.authorities()
    area = sen2.Area(ENGLAND, "Your LA", "england", "", "")
    scale = 1.0 / len(las)
    scenario, prov = _scenario_for_area(area, None, pd.DataFrame([TEMPLATE_LOCALITY]), scale=scale)
    base = scenario["meta"]["base_year"]
    scenario["meta"].update(
        name="Template: a national-average LA",
        description=(
            f"England's published SEN2 pattern ({sen2.RELEASE}) at the size of an average LA "
            f"(England / {len(las)}), with national-average costs. Extend it "
            "(`extends: embedded:template`) and give your own history, population and capacity."
        ),
        la_name="Your LA",
    )
    scenario["demand"]["history"] = {}
    scenario["demand"]["flow_history"] = []
    keep = ~prov["key"].isin(["demand.history.*", "demand.flow_history.*"])
    prov = prov[keep].reset_index(drop=True)
    prov.loc[len(prov)] = {
        "key": "demand.flow_history",
        "kind": "input",
        "source": "-",
        "note": "INPUT: empty in the template; give your LA's history and flows "
        "(`sendplan init --la` writes them from SEN2)",
    }
    prov.loc[prov["key"] == "meta.*", "note"] = (
        f"template: England's January {base} pattern scaled to an average LA (1/{len(las)}); "
        "base year and price base as `sendplan init`"
    )
    prov["note"] = prov["note"].str.replace(
        "the LA's published requests", f"England's published requests / {len(las)}", regex=False
    )
    return scenario, prov


def rebased_mix(
    code: str, year: int, stock_age_shares: list[float], phases_of: dict[str, list[str]]
) -> dict[str, dict[str, float]]:
    """Today's mix (phase -> setting share) for an existing scenario's settings, raked to the
    published caseload by placement type of ``year`` (used to re-base the Devon default)."""
    ages = np.asarray(stock_age_shares, dtype=float)
    mix, _, _, _ = _placement_mix(code, year, ages / ages.sum(), 1.0e4, phases_of)
    return {ph: m["default"] for ph, m in mix.items()}
