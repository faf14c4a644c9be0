"""High Needs Block finance by financial year: income against spend, the DSG deficit, the Safety Valve test.

In-year balance = HNB income (DSG high-needs allocation + transfers in from other DSG blocks)
                  - HNB spend (placements + other high-needs lines)          (negative = deficit).
Contributions towards the accumulated deficit (DfE Safety Valve instalments, the council's own
contributions) are not income of the year: they reduce the cumulative deficit, as in Devon's
reporting ("in-year deficit increase of 51.6m before DfE and Devon contributions"):
    cumulative_deficit[F] = cumulative_deficit[F-1] - in_year_balance[F] - contributions[F],
starting from finance.opening_deficit_gbp at 31 March of the base year.
Monte Carlo demand paths flow through the unmitigated allocation (capacity and overflow included)
to give P10/P50/P90 bands and the probability of meeting the Safety Valve trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .alerts import RunWarning, add_warning, fy_span
from .costs import (
    builds_capacity,
    cost_table,
    financial_years,
    fy_label,
    other_hnb_spend,
    placement_spend_fy,
)
from .placements import (
    PlacementPlan,
    _demand_batch,
    allocate,
    capacity_array,
    desired_unmitigated,
    path_chunk,
    spill_pairs,
)
from .scenario import Scenario

MAX_FINANCE_PATHS = 200  # Monte Carlo paths run through placements and finance (evenly subsampled)
QUANTILES = {"p10": 0.10, "p50": 0.50, "p90": 0.90}
PLACEMENT_LINES = ("placements", "vacant_places")  # HNB cost lines counted as placement spend


# --------------------------------------------------------------------------- income


def hnb_allocation(scn: Scenario) -> np.ndarray:
    """[F] DSG high-needs allocation: the latest known allocation (hnb_income_by_year, or
    hnb_income_gbp in the first financial year) grown at hnb_income_growth to later years."""
    f = scn.finance
    known = {financial_years(scn)[0]: f.hnb_income_gbp, **f.hnb_income_by_year}
    out = []
    for fy in financial_years(scn):
        prior = [k for k in known if k <= fy]
        base = max(prior) if prior else min(known)
        out.append(known[base] * (1.0 + f.hnb_income_growth) ** (fy - base))
    return np.array(out)


def _by_fy(table: dict[int, float], fys: list[int]) -> np.ndarray:
    return np.array([float(table.get(fy, 0.0)) for fy in fys])


def _plan(scn: Scenario, fys: list[int]) -> np.ndarray:
    return np.array([scn.finance.plan_cumulative_deficit_gbp.get(fy, np.nan) for fy in fys])


# --------------------------------------------------------------------------- deficit, instalments, general fund


@dataclass
class DeficitPath:
    """Year-by-year deficit arrays [paths, F] (one path for the deterministic forecast)."""

    safety_valve_paid: np.ndarray
    cumulative_deficit: np.ndarray
    interest: np.ndarray
    general_fund_exposure: np.ndarray


def override_in_force(scn: Scenario, fys: list[int]) -> np.ndarray:
    """[F] bool: the statutory override keeps the DSG deficit off the general fund in year F."""
    end = scn.finance.statutory_override_end
    return np.ones(len(fys), bool) if end is None else np.asarray(fys) <= end


def deficit_paths(scn: Scenario, fys: list[int], balance: np.ndarray) -> DeficitPath:
    """Run the deficit forward from ``balance`` [paths, F] (income - spend, before contributions).

    cumulative[F] = cumulative[F-1] - balance[F] - Safety Valve paid[F] - council contributions[F].
    A conditional instalment (``finance.safety_valve_conditional``) is paid in F only if the test
    of ``finance.safety_valve_condition`` holds on that path (a scheduled instalment in a year
    without a trajectory value is paid). Interest (``finance.deficit_interest_rate``) is a general
    fund cost on the deficit at the start of each year; once the statutory override has ended,
    the whole cumulative deficit counts against the general fund too:
    general_fund_exposure[F] = (cumulative[F] if F is after the override, else 0) + interest to F.
    """
    f = scn.finance
    bal = np.atleast_2d(np.asarray(balance, float))
    n, F = bal.shape
    sched = _by_fy(f.safety_valve_instalments_gbp, fys)
    la = _by_fy(f.la_contributions_gbp, fys)
    plan = _plan(scn, fys)
    plan_prev = np.concatenate([[np.nan], plan[:-1]])
    # the plan's in-year deficit before contributions, with every scheduled contribution made
    plan_deficit = plan - np.concatenate([[f.opening_deficit_gbp], plan[:-1]]) + sched + la
    paid = np.zeros((n, F))
    cum = np.zeros((n, F))
    interest = np.zeros((n, F))
    prev = np.full(n, float(f.opening_deficit_gbp))
    tol = 0.5  # GBP: on plan to the pound
    for i in range(F):  # a loop over financial years only; paths are vectorised
        ok = np.ones(n, bool)
        if f.safety_valve_conditional:
            if f.safety_valve_condition == "cumulative" and np.isfinite(plan_prev[i]):
                ok = prev <= plan_prev[i] + tol
            elif f.safety_valve_condition == "in_year" and np.isfinite(plan[i]):
                ok = -bal[:, i] <= plan_deficit[i] + tol
        paid[:, i] = np.where(ok, sched[i], 0.0)
        interest[:, i] = f.deficit_interest_rate * np.maximum(prev, 0.0)
        cum[:, i] = prev - bal[:, i] - paid[:, i] - la[i]
        prev = cum[:, i]
    after = ~override_in_force(scn, fys)
    exposure = np.where(after[None], np.maximum(cum, 0.0), 0.0) + np.cumsum(interest, axis=1)
    return DeficitPath(paid, cum, interest, exposure)


# --------------------------------------------------------------------------- the table


def finance_table(
    scn: Scenario,
    costs: pd.DataFrame,
    path_hnb_spend: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """finance.csv rows: one per (financial year, variant) in ``costs``.

    ``path_hnb_spend`` maps a variant to Monte Carlo HNB spend [paths, F]; where given, the table
    carries P10/P50/P90 of spend, in-year balance and cumulative deficit and ``prob_meet_plan``
    (share of paths whose cumulative deficit is at or below the Safety Valve trajectory).
    The un-suffixed columns are the deterministic forecast (the same run as costs.csv).
    """
    fys = financial_years(scn)
    f = scn.finance
    alloc = hnb_allocation(scn)
    transfers = _by_fy(f.block_transfers_gbp, fys)
    income = alloc + transfers
    sv = _by_fy(f.safety_valve_instalments_gbp, fys)
    la = _by_fy(f.la_contributions_gbp, fys)
    contrib = sv + la  # as scheduled: the plan assumes every instalment is paid
    in_force = override_in_force(scn, fys)
    reserves = np.nan if f.general_fund_reserves_gbp is None else float(f.general_fund_reserves_gbp)
    plan = _plan(scn, fys)
    plan_prev = np.concatenate([[f.opening_deficit_gbp], plan[:-1]])
    frames = []
    for variant, c in costs.groupby("variant", sort=False):
        hnb = c[c["funding_source"] == "hnb"]
        spend = hnb.groupby("year")["cost_gbp"].sum().reindex(fys, fill_value=0.0).to_numpy()
        pl = hnb[hnb["cost_line"] == "placements"]
        # placement spend includes the place funding of commissioned places left empty
        placing = hnb["cost_line"].isin(PLACEMENT_LINES)
        placement_spend = (
            hnb[placing].groupby("year")["cost_gbp"].sum().reindex(fys, fill_value=0.0).to_numpy()
        )
        other = (
            hnb[~placing].groupby("year")["cost_gbp"].sum().reindex(fys, fill_value=0.0).to_numpy()
        )
        plans = pl.groupby("year")["places"].sum().reindex(fys, fill_value=0.0).to_numpy()
        balance = income - spend
        det = deficit_paths(scn, fys, balance[None])
        cum = det.cumulative_deficit[0]
        exposure = det.general_fund_exposure[0]
        df = pd.DataFrame(
            {
                "financial_year": fys,
                "financial_year_label": [fy_label(y) for y in fys],
                "variant": variant,
                "hnb_allocation_gbp": alloc,
                "block_transfers_gbp": transfers,
                "hnb_income_gbp": income,
                "placement_spend_gbp": placement_spend,
                "other_hnb_spend_gbp": other,
                "hnb_spend_gbp": spend,
                "in_year_balance_gbp": balance,
                "safety_valve_scheduled_gbp": sv,
                "safety_valve_gbp": det.safety_valve_paid[0],
                "la_contributions_gbp": la,
                "cumulative_deficit_gbp": cum,
                "plan_cumulative_deficit_gbp": plan,
                "plan_in_year_balance_gbp": -(plan - plan_prev + contrib),
                "gap_to_plan_gbp": cum - plan,
                "plans": plans,
                "avg_cost_per_plan_gbp": np.where(
                    plans > 0, placement_spend / np.maximum(plans, 1e-9), np.nan
                ),
                "statutory_override": in_force,
                "deficit_interest_gbp": det.interest[0],
                "general_fund_exposure_gbp": exposure,
                "general_fund_reserves_gbp": reserves,
                "reserves_after_exposure_gbp": reserves - exposure,
            }
        )
        paths = (path_hnb_spend or {}).get(str(variant))
        if paths is not None and len(paths):
            bal_p = income[None] - paths
            dp = deficit_paths(scn, fys, bal_p)
            cum_p = dp.cumulative_deficit
            for name, arr in (
                ("hnb_spend_gbp", paths),
                ("in_year_balance_gbp", bal_p),
                ("cumulative_deficit_gbp", cum_p),
                ("general_fund_exposure_gbp", dp.general_fund_exposure),
            ):
                for q, level in QUANTILES.items():
                    df[f"{name}_{q}"] = np.quantile(arr, level, axis=0)
            meets = (cum_p <= plan[None]).mean(axis=0)
            df["prob_meet_plan"] = np.where(np.isnan(plan), np.nan, meets)
            df["paths"] = paths.shape[0]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- Monte Carlo


def path_indices(n_paths: int, max_paths: int = MAX_FINANCE_PATHS) -> np.ndarray:
    """Paths used for finance bands: all of them, or ``max_paths`` evenly spaced (paths are i.i.d.)."""
    if n_paths <= max_paths:
        return np.arange(n_paths)
    return np.unique(np.linspace(0, n_paths - 1, max_paths).round().astype(int))


def derive_path_new(path_stock: np.ndarray, stock: np.ndarray, new: np.ndarray) -> np.ndarray:
    """New plans per path when the demand stage gives only path stocks: each path's survivors follow
    the deterministic survival ratio of its cell, so its extra stock shows up as extra new plans."""
    P, T = path_stock.shape[:2]
    out = np.zeros(path_stock.shape, dtype=float)
    out[:, :, 0] = path_stock[:, :, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        prev = stock[:-1, :-1]
        r = np.where(
            prev > 0,
            np.clip((stock[1:, 1:] - new[1:, 1:]) / np.where(prev > 0, prev, 1.0), 0, 1),
            0.0,
        )
    out[:, 1:, 1:] = np.maximum(path_stock[:, 1:, 1:] - path_stock[:, :-1, :-1] * r[None], 0.0)
    out[:, 0] = 0.0
    return out


def path_hnb_spend(
    scn: Scenario,
    path_stock: np.ndarray,
    path_new: np.ndarray,
    extra_capacity: np.ndarray | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """[P, F] HNB spend per Monte Carlo path on the unmitigated pattern (capacity and overflow kept).

    In chunks of paths (``path_chunk`` unless given); ``extra_capacity`` [T, S, L] adds places
    (e.g. the LP's builds).
    """
    chunk = chunk or path_chunk(scn)
    cap = capacity_array(scn, extra_capacity)
    pairs = spill_pairs(scn)
    other = other_hnb_spend(scn)
    out = []
    for lo in range(0, path_stock.shape[0], chunk):
        arr = _demand_batch(scn, path_stock[lo : lo + chunk], path_new[lo : lo + chunk])
        places, _, _ = allocate(
            desired_unmitigated(arr),
            arr["persistence"],
            arr["legacy"],
            cap,
            arr["overflow"],
            pairs,
            arr["overflow_chain"],
            arr["serves_need"],
            arr["chain_ok"],
            entrants=False,
        )
        out.append(placement_spend_fy(scn, places, extra_capacity) + other[None])
    return np.concatenate(out, axis=0)


# --------------------------------------------------------------------------- one variant, end to end


@dataclass
class VariantResult:
    """Tables and headline figures of one variant (unmitigated or optimised)."""

    variant: str
    placements: pd.DataFrame
    costs: pd.DataFrame
    finance: pd.DataFrame
    headline: dict[str, Any] = field(default_factory=dict)
    # Monte Carlo HNB spend [paths, financial years] (the paths ``path_indices`` keeps), if run.
    path_hnb_spend: np.ndarray | None = None


def headline(finance: pd.DataFrame) -> dict[str, Any]:
    """summary.json figures for one variant, keyed by financial-year label ('2024-25')."""
    lab = finance["financial_year_label"]

    def by_fy(col: str, digits: int = 0) -> dict[str, float | None]:
        return {
            k: (None if pd.isna(v) else round(float(v), digits))
            for k, v in zip(lab, finance[col], strict=True)
        }

    first = finance.iloc[0]
    out: dict[str, Any] = {
        "definitions": {
            "avg_cost_per_plan_gbp": "HNB placement spend in the financial year / financial-year "
            "average of plans in place (5/12 January count F + 7/12 January count F+1)",
            "in_year_deficit_gbp": "HNB spend - HNB income (allocation + block transfers), before "
            "Safety Valve and council contributions; positive = deficit",
            "cumulative_deficit_gbp": "DSG deficit at 31 March ending the financial year, after "
            "contributions; positive = deficit",
        },
        "avg_cost_per_plan_gbp": by_fy("avg_cost_per_plan_gbp"),
        "hnb_spend_gbp": by_fy("hnb_spend_gbp"),
        "cumulative_deficit_gbp": by_fy("cumulative_deficit_gbp"),
        "plan_cumulative_deficit_gbp": by_fy("plan_cumulative_deficit_gbp"),
        "first_financial_year": str(first["financial_year_label"]),
        "in_year_deficit_first_fy_gbp": round(-float(first["in_year_balance_gbp"])),
        "plan_in_year_deficit_first_fy_gbp": (
            None
            if pd.isna(first["plan_in_year_balance_gbp"])
            else round(-float(first["plan_in_year_balance_gbp"]))
        ),
    }
    last = finance.iloc[-1]
    above = finance[finance["reserves_after_exposure_gbp"] < 0]
    in_force = finance[finance["statutory_override"].astype(bool)]
    out.update(
        {
            "statutory_override_last_fy": (
                str(in_force["financial_year_label"].iloc[-1]) if len(in_force) else None
            ),
            "safety_valve_withheld_gbp": round(
                float((finance["safety_valve_scheduled_gbp"] - finance["safety_valve_gbp"]).sum())
            ),
            "deficit_interest_total_gbp": round(float(finance["deficit_interest_gbp"].sum())),
            "general_fund_exposure_gbp": by_fy("general_fund_exposure_gbp"),
            "general_fund_exposure_horizon_gbp": round(float(last["general_fund_exposure_gbp"])),
            "general_fund_reserves_gbp": (
                None
                if pd.isna(last["general_fund_reserves_gbp"])
                else round(float(last["general_fund_reserves_gbp"]))
            ),
            "first_fy_exposure_above_reserves": (
                str(above["financial_year_label"].iloc[0]) if len(above) else None
            ),
        }
    )
    out["definitions"]["general_fund_exposure_gbp"] = (
        "deficit the council's general fund carries at 31 March: the cumulative DSG deficit once "
        "the statutory override has ended (finance.statutory_override_end), plus interest on the "
        "deficit to date (finance.deficit_interest_rate)"
    )
    if "prob_meet_plan" in finance:
        out["prob_meet_plan"] = by_fy("prob_meet_plan", 3)
        out["cumulative_deficit_gbp_p10"] = by_fy("cumulative_deficit_gbp_p10")
        out["cumulative_deficit_gbp_p90"] = by_fy("cumulative_deficit_gbp_p90")
        out["paths_used"] = int(finance["paths"].iloc[0])
    return out


def variant_tables(
    scn: Scenario,
    plan: PlacementPlan,
    builds: pd.DataFrame | None = None,
    demand: Any = None,
    max_paths: int = MAX_FINANCE_PATHS,
) -> VariantResult:
    """placements, costs and finance tables plus headline figures for one plan.

    ``demand`` is the DemandResult (stock, new, path_stock, optional path_new); with more than one
    path the finance table gets Monte Carlo bands. For the unmitigated variant each path runs the
    unmitigated allocation. For another variant (the LP's plan, fixed across paths) a path's spend
    is the plan's own spend plus that path's deviation from the deterministic spend of an
    unmitigated allocation with the plan's builds added as capacity.
    """
    costs = cost_table(scn, plan, builds)
    paths = None
    spend = None
    if demand is not None and getattr(demand, "path_stock", None) is not None:
        ps = np.asarray(demand.path_stock)
        if ps.shape[0] > 1:
            idx = path_indices(ps.shape[0], max_paths)
            ps = ps[idx].astype(float)
            pn = getattr(demand, "path_new", None)
            pn = (
                np.asarray(pn)[idx].astype(float)
                if pn is not None
                else derive_path_new(ps, np.asarray(demand.stock), np.asarray(demand.new))
            )
            extra = builds_capacity(scn, builds)
            spend = path_hnb_spend(scn, ps, pn, extra)
            if plan.variant != "unmitigated":
                det = path_hnb_spend(
                    scn, np.asarray(demand.stock)[None], np.asarray(demand.new)[None], extra
                )
                own = costs[costs["funding_source"] == "hnb"].groupby("year")["cost_gbp"].sum()
                spend = own.reindex(financial_years(scn)).to_numpy()[None] + (spend - det)
            paths = {plan.variant: spend}
    fin = finance_table(scn, costs, paths)
    return VariantResult(plan.variant, plan.table(), costs, fin, headline(fin), spend)


def add_variant(
    tables: dict[str, pd.DataFrame], summary: dict[str, Any], result: VariantResult
) -> None:
    """Append one variant's rows to the run's tables and its headline to summary['finance']."""
    for name in ("placements", "costs", "finance"):
        new = getattr(result, name)
        old = tables.get(name)
        tables[name] = new if old is None else pd.concat([old, new], ignore_index=True)
    summary.setdefault("finance", {})[result.variant] = result.headline
    h = result.headline
    summary.setdefault("headlines", {})[f"general_fund_exposure_horizon_{result.variant}_gbp"] = h[
        "general_fund_exposure_horizon_gbp"
    ]
    for w in finance_warnings(result.variant, result.finance):
        add_warning(summary, w)


def finance_warnings(variant: str, finance: pd.DataFrame) -> list[RunWarning]:
    """Instalments withheld and a general-fund exposure above reserves, for one variant."""
    out: list[RunWarning] = []
    fin = finance.reset_index(drop=True)
    withheld = fin["safety_valve_scheduled_gbp"] - fin["safety_valve_gbp"]
    hit = withheld > 0.5
    if hit.any():
        years = tuple(int(y) for y in fin.loc[hit, "financial_year"])
        out.append(
            RunWarning(
                "safety_valve_withheld",
                f"{variant}: Safety Valve instalments of £{withheld[hit].sum() / 1e6:,.1f}m are "
                f"withheld in financial years {fy_span(years)} (off the trajectory; "
                "finance.safety_valve_conditional).",
                float(withheld[hit].sum()),
                years,
            )
        )
    over = fin["reserves_after_exposure_gbp"] < 0
    if over.any():
        years = tuple(int(y) for y in fin.loc[over, "financial_year"])
        worst = fin.loc[over, "general_fund_exposure_gbp"].max()
        res = float(fin["general_fund_reserves_gbp"].iloc[0])
        out.append(
            RunWarning(
                "general_fund_exposure",
                f"{variant}: the deficit the general fund carries (statutory override ended) "
                f"reaches £{worst / 1e6:,.1f}m, above general fund reserves of £{res / 1e6:,.1f}m "
                f"in financial years {fy_span(years)}.",
                float(worst - res),
                years,
            )
        )
    return out
