"""Reports for people: headline figures, ``report.xlsx`` and ``report.html`` per scenario, and the
batch comparison (``comparison.csv``/``.xlsx``/``.html``).

Reports never stop a run: a missing table becomes a note where its chart would be, and a report that
cannot be written is skipped with a warning (``write_reports`` returns the warnings).
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import charts, labels
from .alerts import warnings_table
from .domain import fy_label
from .io import atomic_write
from .results import TABLE_ORDER, Results

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


DISCLAIMER = (
    "Illustrative model output. Figures depend on the scenario's assumptions (listed below); "
    "they are not official forecasts."
)
EXCEL_MAX_ROWS = 1_048_575  # one row is the header
VARIANTS = ("unmitigated", "optimised")

# comparison.csv / front-sheet headline figures: column -> (label, unit). Order is column order.
HEADLINE: dict[str, tuple[str, str]] = {
    "base_year": ("Base year (January census of the starting stock)", "year"),
    "horizon_year": ("Horizon (last January census year projected)", "year"),
    "plans_base": ("EHCPs in the base year", "plans"),
    "plans_horizon": ("EHCPs at the horizon (P50)", "plans"),
    "plans_horizon_p10": ("EHCPs at the horizon, P10", "plans"),
    "plans_horizon_p90": ("EHCPs at the horizon, P90", "plans"),
    "total_cost_unmitigated_gbp": (
        "Total cost over the forecast, unmitigated (central forecast)",
        "GBP",
    ),
    "total_cost_optimised_gbp": (
        "Total cost over the forecast, optimised plan (central forecast)",
        "GBP",
    ),
    "saving_gbp": (
        "Saving of the optimised plan (unmitigated minus optimised; central forecast)",
        "GBP",
    ),
    "horizon_financial_year": ("Last financial year reported", "financial year"),
    "cumulative_deficit_horizon_unmitigated_gbp": (
        "Cumulative DSG deficit at the horizon, unmitigated (central forecast)",
        "GBP",
    ),
    "cumulative_deficit_horizon_optimised_gbp": (
        "Cumulative DSG deficit at the horizon, optimised plan (central forecast)",
        "GBP",
    ),
    "cumulative_deficit_horizon_optimised_gbp_p10": (
        "Cumulative DSG deficit at the horizon, optimised plan, P10",
        "GBP",
    ),
    "cumulative_deficit_horizon_optimised_gbp_p90": (
        "Cumulative DSG deficit at the horizon, optimised plan, P90",
        "GBP",
    ),
    "plan_cumulative_deficit_horizon_gbp": ("Safety Valve plan deficit at the horizon", "GBP"),
    "first_balanced_fy_unmitigated": (
        "First financial year in balance, unmitigated (central forecast)",
        "financial year",
    ),
    "first_balanced_fy_optimised": (
        "First financial year in balance, optimised (central forecast)",
        "financial year",
    ),
    "safety_valve_final_fy": ("Last financial year of the Safety Valve plan", "financial year"),
    "plan_cumulative_deficit_final_gbp": (
        "Safety Valve plan deficit at the plan's last year",
        "GBP",
    ),
    "gap_to_plan_final_unmitigated_gbp": (
        "Deficit above the Safety Valve plan at its last year, unmitigated (central forecast)",
        "GBP",
    ),
    "gap_to_plan_final_optimised_gbp": (
        "Deficit above the Safety Valve plan at its last year, optimised (central forecast)",
        "GBP",
    ),
    "p_meet_safety_valve_unmitigated": (
        "Probability of meeting the Safety Valve plan in its last year, unmitigated",
        "share",
    ),
    "p_meet_safety_valve_optimised": (
        "Probability of meeting the Safety Valve plan in its last year, optimised",
        "share",
    ),
    "places_built": ("New places built by the optimised plan", "places"),
    "capital_cost_gbp": ("Capital cost of the new places", "GBP"),
    "unmet_places": (
        "Children without a suitable place in the optimised plan, peak year",
        "places",
    ),
    "general_fund_exposure_horizon_optimised_gbp": (
        "Deficit the general fund carries at the horizon (override ended), optimised "
        "(central forecast)",
        "GBP",
    ),
    "general_fund_reserves_gbp": ("General fund reserves set against it", "GBP"),
    "warnings": ("Warnings raised (limits breached, unmet places, ...)", "count"),
    "mip_gap": ("Build plan proven within this share of the cheapest", "share"),
    "solver": ("LP solver", "text"),
    "solver_status": ("LP solver status", "text"),
    "objective_gbp": ("LP objective (discounted cost)", "GBP"),
    # statutory process (runs whose scenario has a process section)
    "plans_issued_first_year": (
        "Plans issued in the first financial year (statutory process)",
        "plans",
    ),
    "share_within_20_weeks_first_year": (
        "Plans issued within 20 weeks, first financial year",
        "share",
    ),
    "share_within_20_weeks_horizon": (
        "Plans issued within 20 weeks, last financial year (P50 where paths > 1)",
        "share",
    ),
    "overdue_assessments_first_year": (
        "Assessments open over 20 weeks at the end of the first financial year",
        "cases",
    ),
    "reviews_overdue_first_year": (
        "Overdue annual reviews at the end of the first financial year",
        "reviews",
    ),
    "backlog_plans_issued_total": (
        "Plans issued after 20 weeks over the forecast (when the backlog's cost lands)",
        "plans",
    ),
}
# Identity columns that lead every comparison row.
ID_COLUMNS = ("scenario", "slug", "status", "error", "source")
TRAILING_COLUMNS = ("seed", "paths", "overrides", "scenario_sha256")


# --------------------------------------------------------------------------- headline figures


def _get(summary: Mapping[str, Any], section: str, *keys: str) -> Any:
    """First present, non-null value among ``keys`` (dotted paths allowed) in ``summary[section]``."""
    sec = summary.get(section)
    if not isinstance(sec, Mapping):
        return None
    for key in keys:
        node: Any = sec
        for part in key.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, Mapping) and part.isdigit() and int(part) in node:
                node = node[int(part)]
            else:
                node = None
                break
        if node is not None and not isinstance(node, Mapping | list):
            return node
    return None


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _has(tables: Mapping[str, pd.DataFrame], name: str, *cols: str) -> pd.DataFrame | None:
    df = tables.get(name)
    if df is None or any(c not in df.columns for c in cols):
        return None
    return df


def headline_figures(
    summary: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]
) -> dict[str, Any]:
    """The headline figures of one run (keys of ``HEADLINE``), None where the run lacks the input.

    Figures a stage reports in its summary section win; otherwise they are derived from the contract
    tables (totals over every cost line, the deficit at the last financial year, and so on).
    """
    h: dict[str, Any] = dict.fromkeys(HEADLINE)
    base = summary.get("base_year")
    horizon = summary.get("horizon_years")
    h["base_year"] = base
    if base is not None and horizon is not None:
        h["horizon_year"] = int(base) + int(horizon)
        h["horizon_financial_year"] = int(base) + int(horizon) - 1

    # Demand ----------------------------------------------------------------------------------
    dem = _has(tables, "demand", "year", "plans")
    if dem is not None and not dem.empty:
        by_year = dem.groupby("year")["plans"].sum()
        h["plans_base"] = float(by_year.iloc[0])
        h["plans_horizon"] = float(by_year.iloc[-1])
        last = dem[dem["year"] == by_year.index[-1]]
        for q in ("p10", "p90"):
            if f"plans_{q}" in last.columns and last[f"plans_{q}"].notna().any():
                h[f"plans_horizon_{q}"] = float(last[f"plans_{q}"].sum())
    # The demand stage's county totals (P50 and band of the total over paths) beat cell sums:
    # quantiles do not add, so summed cell bands are wider than the band of the total.
    totals = _demand_totals(summary)
    if totals is not None and not totals.empty:
        totals = totals.sort_values("year")
        h["plans_base"] = _num(totals["plans"].iloc[0])
        last = totals.iloc[-1]
        for q in ("", "_p10", "_p90"):
            if f"plans{q}" in totals.columns:
                h[f"plans_horizon{q}"] = _num(last[f"plans{q}"])

    # Costs -----------------------------------------------------------------------------------
    costs = _has(tables, "costs", "variant", "cost_gbp")
    for variant in VARIANTS:
        v = _num(_get(summary, "optimisation", f"total_cost_gbp.{variant}"))
        if v is None and costs is not None:
            rows = costs[costs["variant"] == variant]
            v = float(rows["cost_gbp"].sum()) if not rows.empty else None
        h[f"total_cost_{variant}_gbp"] = v
    saving = _num(_get(summary, "optimisation", "saving_gbp"))
    if saving is None and None not in (
        h["total_cost_unmitigated_gbp"],
        h["total_cost_optimised_gbp"],
    ):
        saving = h["total_cost_unmitigated_gbp"] - h["total_cost_optimised_gbp"]
    h["saving_gbp"] = saving

    # Finance ---------------------------------------------------------------------------------
    fin = _has(tables, "finance", "financial_year", "variant")
    if fin is not None and not fin.empty:
        last_fy = fin["financial_year"].max()
        h["horizon_financial_year"] = int(last_fy)
        at_end = fin[fin["financial_year"] == last_fy]
        for variant in VARIANTS:
            rows = at_end[at_end["variant"] == variant]
            if not rows.empty and "cumulative_deficit_gbp" in rows.columns:
                h[f"cumulative_deficit_horizon_{variant}_gbp"] = _num(
                    rows["cumulative_deficit_gbp"].iloc[0]
                )
            if variant == "optimised" and not rows.empty:
                for q in ("p10", "p90"):
                    if f"cumulative_deficit_gbp_{q}" in rows.columns:
                        h[f"cumulative_deficit_horizon_optimised_gbp_{q}"] = _num(
                            rows[f"cumulative_deficit_gbp_{q}"].iloc[0]
                        )
            v_rows = fin[fin["variant"] == variant].sort_values("financial_year")
            if "in_year_balance_gbp" in fin.columns and not v_rows.empty:
                ok = v_rows[v_rows["in_year_balance_gbp"] >= 0]
                h[f"first_balanced_fy_{variant}"] = (
                    int(ok["financial_year"].iloc[0]) if not ok.empty else None
                )
            # The trajectory is judged at its last year: the share of Monte Carlo paths whose
            # cumulative deficit is at or below the plan then (finance.csv's prob_meet_plan).
            if "prob_meet_plan" in fin.columns and not v_rows.empty:
                probs = v_rows.dropna(subset=["prob_meet_plan"])
                if not probs.empty:
                    h[f"p_meet_safety_valve_{variant}"] = _num(probs["prob_meet_plan"].iloc[-1])
        if "plan_cumulative_deficit_gbp" in fin.columns:
            plan = fin.dropna(subset=["plan_cumulative_deficit_gbp"])
            if not plan.empty:
                final = int(plan["financial_year"].max())
                h["safety_valve_final_fy"] = final
                at_final = plan[plan["financial_year"] == final]
                h["plan_cumulative_deficit_final_gbp"] = _num(
                    at_final["plan_cumulative_deficit_gbp"].iloc[0]
                )
                if "cumulative_deficit_gbp" in at_final.columns:
                    for variant in VARIANTS:
                        row = at_final[at_final["variant"] == variant]
                        if not row.empty:  # positive: the deficit is above the agreed trajectory
                            h[f"gap_to_plan_final_{variant}_gbp"] = _num(
                                row["cumulative_deficit_gbp"].iloc[0]
                                - row["plan_cumulative_deficit_gbp"].iloc[0]
                            )
            at_h = at_end["plan_cumulative_deficit_gbp"].dropna()
            h["plan_cumulative_deficit_horizon_gbp"] = (
                _num(at_h.iloc[0]) if not at_h.empty else None
            )
    for variant in VARIANTS:
        v = _num(
            _get(
                summary,
                "finance",
                f"p_meet_safety_valve.{variant}",
                f"p_meet_safety_valve_{variant}",
            )
        )
        if v is not None:
            h[f"p_meet_safety_valve_{variant}"] = v

    # Sufficiency LP --------------------------------------------------------------------------
    builds = _has(tables, "builds", "places")
    if builds is not None:
        h["places_built"] = float(builds["places"].sum())
        if "capital_cost_gbp" in builds.columns:
            h["capital_cost_gbp"] = float(builds["capital_cost_gbp"].sum())
    v = _num(_get(summary, "optimisation", "places_built"))
    if v is not None:
        h["places_built"] = v
    opt = summary.get("optimisation")
    unmet = opt.get("unmet_places_by_year") if isinstance(opt, Mapping) else None
    if isinstance(unmet, Mapping) and unmet:
        # The worst year: children the optimised plan cannot place suitably, while builds open.
        h["unmet_places"] = max(float(v) for v in unmet.values() if v is not None)
    gf = summary.get("finance")
    if isinstance(gf, Mapping) and isinstance(gf.get("optimised"), Mapping):
        h["general_fund_exposure_horizon_optimised_gbp"] = _num(
            gf["optimised"].get("general_fund_exposure_horizon_gbp")
        )
        h["general_fund_reserves_gbp"] = _num(gf["optimised"].get("general_fund_reserves_gbp"))
    if "warnings" in summary:  # a run from the engine always has the list, maybe empty
        h["warnings"] = len(summary.get("warnings") or [])
    h["mip_gap"] = _num(_get(summary, "optimisation", "mip_gap"))
    h["solver"] = _get(summary, "optimisation", "solver")
    h["solver_status"] = _get(summary, "optimisation", "status", "solver_status")
    h["objective_gbp"] = _num(_get(summary, "optimisation", "objective_gbp"))
    h.update(_process_headlines(summary))
    return h


def _process_headlines(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Statutory-process KPIs from summary["process"] (financial years from the base year)."""
    pr = summary.get("process")
    if not isinstance(pr, Mapping):
        return {}

    def at(key: str, last: bool = False) -> float | None:
        series = pr.get(key)
        if not isinstance(series, Mapping) or not series:
            return None
        years = sorted(series, key=int)
        return _num(series[years[-1] if last else years[0]])

    late = pr.get("plans_issued_over_20_weeks")
    return {
        "plans_issued_first_year": at("plans_issued"),
        "share_within_20_weeks_first_year": at("share_within_20_weeks"),
        "share_within_20_weeks_horizon": at("share_within_20_weeks_p50", True)
        if isinstance(pr.get("share_within_20_weeks_p50"), Mapping)
        else at("share_within_20_weeks", True),
        "overdue_assessments_first_year": at("overdue_assessments_end"),
        "reviews_overdue_first_year": at("reviews_overdue_end"),
        "backlog_plans_issued_total": float(sum(late.values()))
        if isinstance(late, Mapping) and late
        else None,
    }


def comparison_row(
    summary: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]
) -> dict[str, Any]:
    """One comparison.csv row (without status/error) for a scenario that ran."""
    row: dict[str, Any] = {
        "scenario": summary.get("scenario"),
        "slug": summary.get("slug"),
        "source": summary.get("source"),
    }
    row.update(headline_figures(summary, tables))
    row["seed"] = summary.get("seed")
    row["paths"] = summary.get("paths")
    row["overrides"] = " ".join(summary.get("overrides") or [])
    row["scenario_sha256"] = summary.get("scenario_sha256")
    return row


# --------------------------------------------------------------------------- formatting helpers


# Columns whose unit the name alone does not give: costs.csv counts money by financial year.
TABLE_COLUMN_UNITS = {("costs", "year"): "financial year from April"}


def unit_of(column: str, table: str = "") -> str:
    """The unit a contract column carries, read from its name (``cost_gbp`` -> GBP); ``table``
    names the table where a column's unit depends on it (``year`` in costs is a financial year)."""
    if (table, column) in TABLE_COLUMN_UNITS:
        return TABLE_COLUMN_UNITS[(table, column)]
    c = column.lower()
    if c.endswith("_gbp") or "_gbp_" in c:
        return "GBP"
    if c == "financial_year" or c.endswith("_fy") or "_fy_" in c:
        return "financial year from April"
    if c in ("year", "year_open", "year_decided", "base_year", "horizon_year"):
        return "January census year"
    if "share" in c or c.startswith(("p_meet", "prob_", "probability")):
        return "share"
    if "places" in c:
        return "places"
    if "plans" in c:
        return "plans"
    if c.endswith("_seconds"):
        return "seconds"
    return ""


def header_of(column: str, table: str = "") -> str:
    unit = unit_of(column, table)
    return f"{column} [{unit}]" if unit else column


def _excel_format(column: str, table: str = "") -> str | None:
    unit = unit_of(column, table)
    return {
        "GBP": "£#,##0;[Red]-£#,##0",
        "places": "#,##0.0",
        "plans": "#,##0.0",
        "share": "0.0%",
        "January census year": "0",
        "financial year from April": "0",
        "seconds": "0.00",
    }.get(unit)


def _display(value: Any, unit: str) -> str:
    """A headline value as text for the HTML report."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, str):
        return value
    if unit == "GBP":  # a negative sum reads -£5.0m
        v = float(value)
        sign = "-" if v < 0 else ""
        return f"{sign}£{abs(v) / 1e6:,.1f}m" if abs(v) >= 1e6 else f"{sign}£{abs(v):,.0f}"
    if unit == "share":  # a small share keeps its digits (a plan gap of 0.38% is not "0%")
        v = float(value)
        return f"{v:.2%}" if 0 < abs(v) < 0.01 else f"{v:.1%}" if 0 < abs(v) < 0.1 else f"{v:.0%}"
    if unit in ("plans", "places", "cases", "reviews", "count"):  # people and cases are whole
        return f"{float(value):,.0f}"
    if unit == "financial year":  # 2033-34, never a bare 2033 (the year ending March 2033?)
        return fy_label(int(value))
    if unit == "year":
        return str(int(value))
    return str(value)


def _assumptions(results: Results) -> list[tuple[str, Any]]:
    """What a reader needs to reproduce and judge the figures."""
    scn = results.resolved.scenario
    s = results.summary
    opt = s.get("optimisation") if isinstance(s.get("optimisation"), Mapping) else {}
    return [
        ("Scenario", scn.meta.name),
        ("Local authority", scn.meta.la_name),
        ("Description", scn.meta.description),
        ("Source file", s.get("source", results.resolved.source)),
        ("Overrides (--set)", " ".join(s.get("overrides") or []) or "none"),
        ("Scenario sha256 (resolved YAML)", s.get("scenario_sha256", results.resolved.sha256)),
        ("Seed", s.get("seed")),
        ("Monte Carlo paths", s.get("paths")),
        ("Base year", scn.meta.base_year),
        ("Horizon (years)", scn.meta.horizon_years),
        ("Price base (financial year)", scn.meta.price_base_year),
        ("Cost inflation per year", f"{scn.costs.inflation:.1%}"),
        ("EHCP new-plan growth per year (first year)", _growth_used(s, scn.demand.growth)),
        *_limit_assumptions(scn),
        ("Discount rate (a year)", f"{scn.policy.discount_rate:.1%}"),
        (
            "Money",
            "outturn prices (each year's own prices, inflated from the price base); "
            "present values, where named, are discounted to the base year",
        ),
        ("Solver", opt.get("solver", scn.run.solver)),
        ("sendplan version", s.get("package_version")),
        ("Year convention", s.get("year_convention", "")),
    ]


def _limit_assumptions(scn: Any) -> list[tuple[str, Any]]:
    """Each policy limit with whether it is hard or soft and what happens when it cannot be met;
    whether it was breached is in the warnings."""
    pol = scn.policy
    modes = pol.limits
    soft = pol.unmet_penalty_gbp / 2 if modes.soft_penalty_gbp is None else modes.soft_penalty_gbp

    def say(value: str | None, mode: str, penalty: str) -> str:
        if value is None:
            return "none"
        if mode == "hard":
            return f"{value} (hard: never breached; children go unmet instead, see warnings)"
        return f"{value} (soft: breached at {penalty} where cheaper, see warnings)"

    share = f"£{soft:,.0f} per place-year"
    indep, main = pol.max_independent_share, pol.min_mainstream_share
    travel = None if pol.max_travel_km is None else f"{pol.max_travel_km:g} km"
    budget = None if pol.capital_budget_gbp is None else f"£{pol.capital_budget_gbp:,.0f}"
    overrun = f"£{modes.capital_overrun_penalty:g} per £1 over"
    return [
        ("Cap on independent share", say(None if indep is None else f"{indep:.1%}", modes.max_independent_share, share)),
        ("Floor on mainstream share", say(None if main is None else f"{main:.1%}", modes.min_mainstream_share, share)),
        ("Travel limit", say(travel, modes.max_travel_km, share)),
        ("Build limits (policy.buildable)", say("per setting" if pol.buildable else None, modes.build_limits, f"£{soft:,.0f} per place")),
        ("Capital budget", say(budget, modes.capital_budget, overrun)),
        ("Whole-unit builds", f"{'yes' if pol.integer_builds else 'no'} (gap target {pol.mip_gap:.2%})"),
    ]  # fmt: skip


def _growth_used(summary: Mapping[str, Any], typed: float) -> Any:
    """The calibrated first-year growth and where it came from (pooled across LAs, or typed)."""
    demand = summary.get("demand")
    cal = demand.get("calibration") if isinstance(demand, Mapping) else None
    if not isinstance(cal, Mapping) or not isinstance(cal.get("parameters"), Mapping):
        return f"{typed:.2%}"
    g = cal["parameters"].get("growth", typed)
    return f"{g:.2%} ({cal.get('growth_source', 'given')})"


def _absent_tables(results: Results) -> list[str]:
    return [t for t in TABLE_ORDER if results.tables.get(t) is None]


# --------------------------------------------------------------------------- Excel


SAVING_CAUSES = {
    "routing": "Routing: under-16s placed better within committed places",
    "post16": "Post-16: 16-25s placed better within committed places",
    "builds": "Builds: what the new places add, net of capital and place funding",
}


def saving_by_cause_table(summary: Mapping[str, Any]) -> pd.DataFrame | None:
    """The optimised saving by cause (rows) and funding source (columns, GBP), with totals; None
    when the run has no breakdown."""
    by = (summary.get("optimisation") or {}).get("saving_by_cause_and_source_gbp")
    if not isinstance(by, Mapping) or not by:
        return None
    sources = sorted({str(k) for v in by.values() for k in v})
    rows = [
        {"cause": SAVING_CAUSES.get(c, c), **{f"{k}_gbp": float(by[c].get(k, 0)) for k in sources}}
        for c in SAVING_CAUSES
        if c in by
    ]
    df = pd.DataFrame(rows)
    df["total_gbp"] = df[[f"{k}_gbp" for k in sources]].sum(axis=1)
    total = {"cause": "Total saving", **df.drop(columns="cause").sum().to_dict()}
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def _write_table_sheet(wb: Any, name: str, df: pd.DataFrame, formats: dict[str, Any]) -> Any:
    """One sheet per table: unit-bearing headers, number formats, frozen header, autofilter."""
    ws = wb.add_worksheet(name[:31])
    head = formats["header"]
    rows = df
    truncated = len(df) > EXCEL_MAX_ROWS
    if truncated:
        rows = df.iloc[:EXCEL_MAX_ROWS]
    for j, col in enumerate(df.columns):
        ws.write_string(0, j, header_of(str(col), name), head)
        fmt_str = _excel_format(str(col), name)
        width = max(10, min(40, len(header_of(str(col), name)) + 2))
        ws.set_column(j, j, width, formats.get(fmt_str) if fmt_str else None)
        values = rows[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            arr = values.to_numpy(dtype=float)
            for i, v in enumerate(arr, start=1):
                if math.isfinite(v):
                    ws.write_number(i, j, v)
                elif not math.isnan(v):  # +/- inf: capacity without a limit
                    ws.write_string(i, j, "unlimited" if v > 0 else "-inf")
        elif pd.api.types.is_bool_dtype(values):
            for i, v in enumerate(values.tolist(), start=1):
                ws.write_boolean(i, j, bool(v))
        else:  # labels (localities, needs, settings): strings, the bulk of a big table
            write_string = ws.write_string
            for i, v in enumerate(values.tolist(), start=1):
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue
                write_string(i, j, v if isinstance(v, str) else str(v))
    ws.freeze_panes(1, 0)
    if len(df.columns):
        ws.autofilter(0, 0, max(len(rows), 1), len(df.columns) - 1)
    if truncated:
        ws.write_string(
            0, len(df.columns) + 1, f"Truncated at {EXCEL_MAX_ROWS:,} rows: see the CSV file."
        )
    return ws


def _finance_pivot(fin: pd.DataFrame) -> pd.DataFrame:
    """financial_year x (cumulative deficit per variant, plan), for the native Excel line chart."""
    # each plan's line on the basis the HTML chart and the app draw: the paths' P50 where the run
    # has paths, else the central forecast (charts.central), named with it
    variants = list(dict.fromkeys(fin["variant"]))
    variants = [v for v in VARIANTS if v in variants] + [v for v in variants if v not in VARIANTS]
    lines = {}
    for v in variants:
        rows = (
            fin[fin["variant"] == v].drop_duplicates("financial_year").set_index("financial_year")
        )
        line, basis = charts.central(rows, "cumulative_deficit_gbp")
        lines[f"{v} cumulative deficit ({basis})"] = line
    pv = pd.DataFrame(lines)
    if "plan_cumulative_deficit_gbp" in fin.columns:
        plan = fin.groupby("financial_year")["plan_cumulative_deficit_gbp"].first()
        pv["Safety Valve plan"] = plan
    opt = fin[fin["variant"] == "optimised"].set_index("financial_year")
    for q in ("p10", "p90"):  # the optimised plan's Monte Carlo band, as two thin lines
        col = f"cumulative_deficit_gbp_{q}"
        if col in opt.columns and opt[col].notna().any():
            pv[f"optimised {q.upper()}"] = opt[col]
    return pv.sort_index()


def _formats(wb: Any) -> dict[str, Any]:
    fmt = {
        "header": wb.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True}),
        "title": wb.add_format({"bold": True, "font_size": 16}),
        "subtitle": wb.add_format({"bold": True, "font_size": 12}),
        "bold": wb.add_format({"bold": True}),
        "wrap": wb.add_format({"text_wrap": True, "valign": "top"}),
        "italic": wb.add_format({"italic": True, "font_color": "#666666"}),
    }  # fmt: skip
    for f in ("£#,##0;[Red]-£#,##0", "#,##0.0", "#,##0", "0.0%", "0", "0.00"):
        fmt[f] = wb.add_format({"num_format": f})
    return fmt


def _summary_sheet(wb: Any, results: Results, fmt: dict[str, Any], files: Sequence[str]) -> Any:
    """The front sheet: headline figures, assumptions, and where the full tables are."""
    front = wb.add_worksheet("Summary")
    s = results.summary
    front.set_column(0, 0, 58)
    front.set_column(1, 1, 70)
    front.set_column(2, 2, 16)
    front.write_string(0, 0, f"sendplan report: {s.get('scenario', '')}", fmt["title"])
    front.write_string(1, 0, DISCLAIMER, fmt["italic"])
    r = 3
    warn = warnings_table(s)
    if len(warn):
        # what the run found (limits breached, unmet places, ...) before any figure
        front.write_row(
            r, 0, ["Warning", "size (places, or £ beyond the limit)", "years"], fmt["header"]
        )
        r += 1
        for w in warn.itertuples(index=False):
            front.write_string(r, 0, str(w.message), fmt["wrap"])
            if w.size is not None and math.isfinite(float(w.size)):
                front.write_number(r, 1, float(w.size), fmt["#,##0"])
            front.write_string(r, 2, str(w.years))
            r += 1
        r += 1
    front.write_row(r, 0, ["Headline figure", "value", "unit"], fmt["header"])
    head_row = r
    r += 1
    for key, value in headline_figures(s, results.tables).items():
        label, unit = HEADLINE[key]
        front.write_string(r, 0, label)
        if value is None:
            front.write_string(r, 1, "–")
        elif isinstance(value, int | float | np.integer | np.floating):
            num_fmt = {"GBP": "£#,##0;[Red]-£#,##0", "share": "0.0%", "plans": "#,##0",
                       "places": "#,##0"}.get(unit, "0")  # fmt: skip
            front.write_number(r, 1, float(value), fmt[num_fmt])
        else:
            front.write_string(r, 1, str(value))
        front.write_string(r, 2, unit)
        r += 1
    r += 1
    front.write_row(r, 0, ["Assumption", "value"], fmt["header"])
    r += 1
    for label, value in _assumptions(results):
        front.write_string(r, 0, label)
        if isinstance(value, int | float) and not isinstance(value, bool):
            front.write_number(r, 1, value)
        else:
            front.write_string(r, 1, "–" if value is None else str(value), fmt["wrap"])
        r += 1
    r += 1
    front.write_row(r, 0, ["The full tables", "file in this folder"], fmt["header"])
    r += 1
    front.write_string(
        r,
        0,
        "This workbook holds summaries for people; every row of every table is in:",
        fmt["wrap"],
    )
    r += 1
    for name in files:
        front.write_string(r, 0, name.split(".")[0])
        front.write_string(r, 1, name)
        r += 1
    absent = _absent_tables(results)
    if absent:
        r += 1
        front.write_string(
            r, 0, "Tables not produced by this run: " + ", ".join(absent), fmt["italic"]
        )
    front.freeze_panes(head_row + 1, 0)
    front.activate()
    return front


def _frame_sheet(
    wb: Any,
    name: str,
    df: pd.DataFrame,
    fmt: dict[str, Any],
    title: str,
    note: str = "",
    value_format: str | None = None,
) -> Any:
    """A small summary table on its own sheet: title, a note, labelled headers, number formats.

    Columns that are contract columns get their unit's format; other (pivoted) columns get
    ``value_format``. Identifiers are written as the scenario's display names by the caller."""
    ws = wb.add_worksheet(name[:31])
    ws.write_string(0, 0, title, fmt["subtitle"])
    if note:
        ws.write_string(1, 0, note, fmt["italic"])
    head = 3
    for j, col in enumerate(df.columns):
        known = labels.is_contract_column(str(col))
        text = labels.column_label(str(col)) if known else str(col)
        ws.write_string(head, j, text, fmt["header"])
        f = _excel_format(str(col)) if known else None
        f = f or (value_format if pd.api.types.is_numeric_dtype(df[col]) else None)
        if str(col) in ("year", "financial_year", "year_open", "year_decided"):
            f = "0"
        ws.set_column(j, j, max(12, min(34, len(text) + 2)), fmt.get(f) if f else None)
        values = df[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            for i, v in enumerate(values.to_numpy(dtype=float), start=head + 1):
                if math.isfinite(v):
                    ws.write_number(i, j, v)
                elif not math.isnan(v):
                    ws.write_string(i, j, "unlimited" if v > 0 else "-inf")
        else:
            for i, v in enumerate(values.tolist(), start=head + 1):
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    ws.write_string(i, j, str(v))
    ws.set_row(head, 45)
    ws.freeze_panes(head + 1, 0)
    return ws


_ID_COLUMNS = (
    "variant",
    "locality",
    "provider_locality",
    "setting",
    "funding_source",
    "cost_line",
    "need",
)


def _named(df: pd.DataFrame, names: labels.Labels) -> pd.DataFrame:
    """Rows in reading order (unmitigated before optimised, settings and localities in the
    scenario's order) with identifier columns as the scenario's display names."""
    out = df.copy()
    order = {
        "variant": list(VARIANTS),
        "setting": list(names.settings),
        "locality": list(names.localities),
        "provider_locality": list(names.localities),
    }
    keys = [c for c in out.columns if c in _ID_COLUMNS or c in ("year", "financial_year")]
    if keys:

        def rank(col: pd.Series) -> pd.Series:
            known = order.get(str(col.name))
            if not known:
                return col
            return col.map(lambda v: known.index(v) if v in known else len(known))

        out = out.sort_values(keys, key=rank, kind="stable")
    for col in out.columns:
        if col in _ID_COLUMNS:
            out[col] = out[col].map(lambda v, c=col: names.of(c, v))
    return out


def _pivot(
    df: pd.DataFrame, index: list[str], column: str, value: str, names: labels.Labels
) -> pd.DataFrame:
    """``value`` summed by ``index`` rows and one column per ``column`` value (display names)."""
    pv = df.pivot_table(index=index, columns=column, values=value, aggfunc="sum", sort=True)
    pv = pv.rename(columns=lambda c: names.of(column, c))
    pv["Total"] = pv.sum(axis=1, min_count=1)
    pv.columns.name = None
    return _named(pv.reset_index(), names)


def finance_sheet(wb: Any, results: Results, fmt: dict[str, Any], names: labels.Labels) -> None:
    """Income, spend, balance and deficit against the plan by financial year and plan."""
    fin = results.tables.get("finance")
    if fin is None or fin.empty or "financial_year" not in fin:
        return
    cols = [c for c in FINANCE_SHEET_COLUMNS if c in fin.columns]
    df = _named(fin.sort_values(["variant", "financial_year"])[cols], names)
    # finance.csv's plans are the central forecast's average over the financial year, not a P50
    df = df.rename(columns={"plans": "Plans (central forecast, financial-year average)"})
    _frame_sheet(wb, "Finance", df, fmt, "High Needs Block and DSG deficit by financial year",
                 "Money at outturn prices. Columns without P10, P50 or P90 are the central "
                 "forecast (one run at the central parameters); P10/P50/P90 are across Monte "
                 "Carlo paths where the run has them. Every column is in finance.csv.")  # fmt: skip


FINANCE_SHEET_COLUMNS = (
    "financial_year",
    "financial_year_label",
    "variant",
    "hnb_income_gbp",
    "placement_spend_gbp",
    "other_hnb_spend_gbp",
    "hnb_spend_gbp",
    "in_year_balance_gbp",
    "safety_valve_gbp",
    "la_contributions_gbp",
    "cumulative_deficit_gbp",
    "cumulative_deficit_gbp_p10",
    "cumulative_deficit_gbp_p50",
    "cumulative_deficit_gbp_p90",
    "plan_cumulative_deficit_gbp",
    "gap_to_plan_gbp",
    "prob_meet_plan",
    "plans",
    "avg_cost_per_plan_gbp",
)


def plans_sheet(wb: Any, results: Results, fmt: dict[str, Any], names: labels.Labels) -> None:
    """EHCPs by January census year and home locality (P50 of each cell), with the LA total and
    its own P10-P90 where the run has Monte Carlo paths."""
    dem = results.tables.get("demand")
    if dem is None or dem.empty or not {"year", "locality", "plans"} <= set(dem.columns):
        return
    pv = _pivot(dem, ["year"], "locality", "plans", names)
    totals = _demand_totals(results.summary)
    if totals is not None:
        pv = pv.merge(
            totals.rename(columns={"plans": "LA total (P50 of the total)"}), on="year", how="left"
        )
        pv = pv.rename(columns={"plans_p10": "LA total, P10", "plans_p90": "LA total, P90"})
    _frame_sheet(wb, "Plans", pv, fmt, "EHCPs by January census year and home locality",
                 "Each locality's P50; quantiles do not add, so the LA total is the P50 of the "
                 "total over paths. By need and phase: demand.csv.", "#,##0")  # fmt: skip


def placements_sheet(wb: Any, results: Results, fmt: dict[str, Any], names: labels.Labels) -> None:
    """Children in place by plan, January census year and setting, a column per provider locality."""
    pl = results.tables.get("placements")
    need = {"year", "setting", "places", "variant"}
    if pl is None or pl.empty or not need <= set(pl.columns):
        return
    col = "provider_locality" if "provider_locality" in pl.columns else "locality"
    if col not in pl.columns:
        pv = _named(
            pl.groupby(["variant", "year", "setting"], as_index=False)["places"].sum(), names
        )
    else:
        pv = _pivot(pl, ["variant", "year", "setting"], col, "places", names)
    _frame_sheet(wb, "Placements", pv, fmt,
                 "Children in place by plan, year and setting, by provider locality",
                 "By home locality, need and phase: placements.csv.", "#,##0")  # fmt: skip


def sufficiency_sheet(wb: Any, results: Results, fmt: dict[str, Any], names: labels.Labels) -> None:
    """The gap (demand minus committed capacity) and what one more place saves, by year, setting
    and provider locality, for capacity-limited settings."""
    suf = results.tables.get("sufficiency")
    need = {"year", "setting", "provider_locality", "gap_places"}
    if suf is None or suf.empty or not need <= set(suf.columns):
        return
    limited = suf
    if "capacity_places" in suf.columns:
        limited = suf[np.isfinite(suf["capacity_places"].astype(float))]
    gap = _pivot(limited, ["year", "setting"], "provider_locality", "gap_places", names)
    _frame_sheet(wb, "Sufficiency gap", gap, fmt,
                 "Places demanded minus committed capacity (positive = more demand than the "
                 "places committed today; the optimised plan's new places, in Build plan, meet it)",
                 "Capacity-limited settings; the full table, with the plan's new_capacity_places, "
                 "is sufficiency.csv. Children left without a suitable place are in Summary.",
                 "#,##0;[Red]-#,##0")  # fmt: skip
    if "shadow_price_gbp" in suf.columns:
        price = _pivot(limited, ["year", "setting"], "provider_locality", "shadow_price_gbp", names)
        price = price.drop(columns="Total")
        _frame_sheet(wb, "Value of a place", price, fmt,
                     "What one more place would save that year (£, the LP's shadow price)",
                     "Zero where there are spare places.", "£#,##0")  # fmt: skip


def builds_sheet(wb: Any, results: Results, fmt: dict[str, Any], names: labels.Labels) -> None:
    """The build plan, one row per build (a short table)."""
    b = results.tables.get("builds")
    if b is None:
        return
    _frame_sheet(wb, "Build plan", _named(b, names), fmt, "New places the optimised plan opens",
                 "" if not b.empty else "The optimised plan builds no new places.")  # fmt: skip


def costs_sheet(wb: Any, results: Results, fmt: dict[str, Any], names: labels.Labels) -> None:
    """Cost by financial year, plan and funding source (and cost line), summed over settings."""
    c = results.tables.get("costs")
    if c is None or c.empty or not {"year", "variant", "cost_gbp"} <= set(c.columns):
        return
    keys = ["variant"] + [k for k in ("funding_source", "cost_line") if k in c.columns]
    pv = c.pivot_table(index=keys, columns="year", values="cost_gbp", aggfunc="sum", sort=True)
    pv["Total"] = pv.sum(axis=1)
    pv.columns = [str(int(y)) if y != "Total" else y for y in pv.columns]
    pv = _named(pv.reset_index(), names)
    _frame_sheet(wb, "Costs", pv, fmt, "Cost by financial year (columns: financial years from April)",
                 "By setting and year: costs.csv.", "£#,##0;[Red]-£#,##0")  # fmt: skip


def saving_sheet(wb: Any, results: Results, fmt: dict[str, Any], names: labels.Labels) -> None:
    """The optimised plan's saving by cause (rows) and funding source (columns)."""
    saving = saving_by_cause_table(results.summary)
    if saving is None:
        return
    _frame_sheet(wb, "Saving by cause", _named(saving, names), fmt,
                 "Saving of the optimised plan by cause and funding source",
                 "Unmitigated minus optimised spend over the forecast. Routing and post-16 compare "
                 "today's pattern with the plan re-solved with no builds; builds is what the new "
                 "places add after their capital and place funding.",
                 "£#,##0;[Red]-£#,##0")  # fmt: skip


# The sheets for people, in order, after Summary and Charts: one function each, so a new summary
# is one more function here.
SUMMARY_SHEETS: tuple[Callable[[Any, Results, dict[str, Any], labels.Labels], None], ...] = (
    finance_sheet,
    plans_sheet,
    placements_sheet,
    sufficiency_sheet,
    builds_sheet,
    saving_sheet,
    costs_sheet,
)


def table_files(results: Results, fmt: str = "csv") -> list[str]:
    """The table files a run's folder holds (what the workbook points to)."""
    return [f"{t}.{fmt}" for t in TABLE_ORDER if results.tables.get(t) is not None]


def write_xlsx(
    results: Results, path: Path, table_format: str = "csv", full_tables: bool = False
) -> list[str]:
    """``report.xlsx``: a front sheet (headline figures, assumptions, where the tables are), native
    charts and small summary sheets (pivots by year, setting and locality). The full tidy tables
    stay in the CSV/Parquet files; ``full_tables`` adds them too, as in ``write_tables_xlsx``."""
    import xlsxwriter

    notes: list[str] = []
    names = labels.Labels.from_scenario(results.resolved.scenario)
    wb = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True})
    try:
        fmt = _formats(wb)
        files = table_files(results, table_format)
        if full_tables:
            files = [*files, "tables.xlsx"]
        _summary_sheet(wb, results, fmt, files)
        charts_ws = wb.add_worksheet("Charts")
        for sheet in SUMMARY_SHEETS:
            sheet(wb, results, fmt, names)
        _chart_sheet(wb, charts_ws, results, fmt, names)
    finally:
        wb.close()
    return notes


def write_tables_xlsx(results: Results, path: Path) -> list[str]:
    """``tables.xlsx`` (``--full-workbook``): every tidy table as a sheet, written row by row in
    xlsxwriter's constant-memory mode (flat memory whatever the table size)."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "nan_inf_to_errors": True})
    try:
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1})
        for name in TABLE_ORDER:
            df = results.tables.get(name)
            if df is None:
                continue
            ws = wb.add_worksheet(name[:31])
            ws.write_row(0, 0, [header_of(str(c), name) for c in df.columns], head)
            rows = df.iloc[:EXCEL_MAX_ROWS].astype(object)
            rows = rows.where(pd.notna(rows), None)
            for i, rec in enumerate(rows.itertuples(index=False, name=None), start=1):
                ws.write_row(i, 0, rec)
            ws.freeze_panes(1, 0)
    finally:
        wb.close()
    return []


def _place_chart(ws: Any, row: int, ch: Any, title: str, x_title: str, y_title: str) -> int:
    """Title, axes (y in thousands separators), legend on top and size of a Charts sheet chart;
    insert it at ``row`` and return the row below it."""
    ch.set_title({"name": title})
    ch.set_x_axis({"name": x_title})
    ch.set_y_axis({"name": y_title, "num_format": "#,##0"})
    ch.set_legend({"position": "top"})
    ch.set_size({"width": 760, "height": 400})
    ws.insert_chart(row, 0, ch)
    return row + 21


def _chart_sheet(
    wb: Any, charts_ws: Any, results: Results, fmt: dict[str, Any], names: labels.Labels
) -> None:
    """Native Excel charts (deficit against plan; placement mix per plan) from a chart_data sheet."""
    data = wb.add_worksheet("chart_data")
    charts_ws.write_string(0, 0, "Charts (data on the chart_data sheet)", fmt["title"])
    row_at = 0
    chart_row = 2
    fin = results.tables.get("finance")
    if (
        fin is not None
        and {"financial_year", "variant", "cumulative_deficit_gbp"} <= set(fin.columns)
        and not fin.empty
    ):
        pv = _finance_pivot(fin)
        data.write_row(row_at, 0, ["financial_year", *pv.columns], fmt["header"])
        for i, (fy, vals) in enumerate(pv.iterrows(), start=1):
            data.write_number(row_at + i, 0, int(fy))
            for j, v in enumerate(vals.tolist(), start=1):
                if v is not None and math.isfinite(float(v)):
                    data.write_number(row_at + i, j, float(v) / 1e6)
        first, last = row_at + 1, row_at + len(pv)
        ch = wb.add_chart({"type": "line"})
        for j, col in enumerate(pv.columns, start=1):
            plan = col == "Safety Valve plan"
            band = col.endswith(("P10", "P90"))
            style: dict[str, Any] = {"marker": {"type": "circle"}}
            if plan:
                style = {
                    "marker": {"type": "diamond"},
                    "line": {"dash_type": "dash", "color": "black"},
                }
            elif band:
                style = {"marker": {"type": "none"}, "line": {"width": 0.75, "dash_type": "round_dot", "color": "#D62728"}}  # fmt: skip
            ch.add_series(
                {
                    "name": ["chart_data", row_at, j],
                    "categories": ["chart_data", first, 0, last, 0],
                    "values": ["chart_data", first, j, last, j],
                    **style,
                }
            )
        chart_row = _place_chart(
            charts_ws, chart_row, ch, "Cumulative DSG deficit vs Safety Valve plan",
            "financial year (from April)", "£m at 31 March (positive = deficit)",
        )  # fmt: skip
        row_at = last + 2
    else:
        charts_ws.write_string(chart_row, 0, "No finance table: no deficit chart.", fmt["italic"])
        chart_row += 2

    pl = results.tables.get("placements")
    if (
        pl is not None
        and {"year", "setting", "places", "variant"} <= set(pl.columns)
        and not pl.empty
    ):
        mix = charts.placement_mix(pl)
        settings = charts._ordered(mix["setting"], tuple(charts.SETTING_COLOURS))
        colours = charts.setting_colours(settings)
        for variant in charts._ordered(mix["variant"], VARIANTS):
            pv = (
                mix[mix["variant"] == variant]
                .pivot_table(index="year", columns="setting", values="places", aggfunc="sum")
                .reindex(columns=settings)
                .fillna(0.0)
                .sort_index()
            )
            data.write_row(
                row_at, 0, [f"year ({variant})", *[names.setting(s) for s in settings]],
                fmt["header"],
            )  # fmt: skip
            for i, (yr, vals) in enumerate(pv.iterrows(), start=1):
                data.write_number(row_at + i, 0, int(yr))
                data.write_row(row_at + i, 1, [float(v) for v in vals.tolist()])
            first, last = row_at + 1, row_at + len(pv)
            ch = wb.add_chart({"type": "column", "subtype": "stacked"})
            for j, s_name in enumerate(settings, start=1):
                ch.add_series(
                    {
                        "name": ["chart_data", row_at, j],
                        "categories": ["chart_data", first, 0, last, 0],
                        "values": ["chart_data", first, j, last, j],
                        "fill": {"color": colours[s_name]},
                        "gap": 40,
                    }
                )
            chart_row = _place_chart(
                charts_ws,
                chart_row,
                ch,
                f"Placement mix, {variant}",
                "January census year",
                "places",
            )
            row_at = last + 2
    else:
        charts_ws.write_string(
            chart_row, 0, "No placements table: no placement-mix chart.", fmt["italic"]
        )


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif;margin:0 auto;
max-width:1180px;padding:1.5rem;color:#222}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:2px solid #DDEBF7;padding-bottom:.2rem}
.disclaimer{color:#666;font-style:italic} .note{background:#FFF8E1;border-left:4px solid #F2A900;
padding:.6rem 1rem;margin:.8rem 0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #DDD;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#DDEBF7} td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #DDD;border-radius:6px;
padding:.6rem 1rem;min-width:200px}.card .v{font-size:1.5rem;font-weight:600}.card .l{color:#555;font-size:.85rem}
"""


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _html_table(
    rows: Sequence[Sequence[Any]], header: Sequence[str], numeric: Sequence[bool] = ()
) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for j, v in enumerate(row):
            cls = ' class="num"' if j < len(numeric) and numeric[j] else ""
            cells.append(f"<td{cls}>{_esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_header(column: str) -> str:
    """A table header in words: a contract column's label, a headline figure's label, else the
    name made readable (``capital_gbp`` -> ``Capital (£)``)."""
    if labels.is_contract_column(column):
        return labels.column_label(column)
    if column in HEADLINE:
        return HEADLINE[column][0]
    return labels.humanise(column)


def _df_html(df: pd.DataFrame, max_rows: int = 200, names: labels.Labels | None = None) -> str:
    """A table for the HTML report: headers in words, money in £ (-£5 for a negative), shares in
    per cent, identifiers as the scenario's names where ``names`` is given."""
    shown = (_named(df, names) if names is not None else df).head(max_rows)
    rows = []
    for rec in shown.itertuples(index=False):
        out = []
        for col, v in zip(shown.columns, rec, strict=True):
            unit = unit_of(str(col))
            if str(col) in HEADLINE and isinstance(v, int | float | np.number):
                out.append(_display(v, HEADLINE[str(col)][1]))  # as report.html's headlines
            elif isinstance(v, float | np.floating) and math.isfinite(v):
                out.append(
                    f"{'-' if v < 0 else ''}£{abs(v):,.0f}" if unit == "GBP"
                    else f"{v:.1%}" if unit == "share"
                    else f"{v:,.0f}" if "year" not in unit else str(int(v))
                )  # fmt: skip
            else:
                out.append("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
        rows.append(out)
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in shown.columns]
    more = (
        f"<p class='disclaimer'>First {max_rows} of {len(df):,} rows.</p>"
        if len(df) > max_rows
        else ""
    )
    return _html_table(rows, [_html_header(str(c)) for c in shown.columns], numeric) + more


def _figure_section(
    title: str, make: Callable[[], go.Figure], div_id: str, errors: list[str], intro: str = ""
) -> str:
    """A report section: the chart, or a note saying why there is none (never an exception).
    Absent data is a note in the page; a chart that fails is also added to ``errors``."""
    try:
        fig = make()
        body = fig.to_html(
            include_plotlyjs=False, full_html=False, div_id=div_id, config={"displaylogo": False}
        )
    except charts.ChartDataError as e:  # data absent: a note for the reader, not a warning
        body = f"<div class='note'>{_esc(e)}</div>"
    except Exception as e:  # a chart bug must not cost the reader the rest of the report
        errors.append(f"{title}: chart failed ({type(e).__name__}: {e})")
        body = f"<div class='note'>This chart could not be drawn ({_esc(type(e).__name__)}: {_esc(e)}).</div>"
    intro_html = f"<p>{_esc(intro)}</p>" if intro else ""
    return f"<section><h2>{_esc(title)}</h2>{intro_html}{body}</section>"


def _page(title: str, body: str) -> str:
    """A complete offline HTML page: plotly.js inlined once in the head, no external resources."""
    from plotly.offline import get_plotlyjs

    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_esc(title)}</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        f"{body}</body></html>\n"
    )


def _warnings_html(summary: Mapping[str, Any]) -> str:
    """The run's warnings (limits breached, unmet places, ...) as a highlighted list, or nothing."""
    warn = warnings_table(summary)
    if not len(warn):
        return ""
    items = "".join(f"<li>{_esc(w.message)}</li>" for w in warn.itertuples(index=False))
    return f"<section class='warnings'><h2>Warnings</h2><div class='note'><ul>{items}</ul></div></section>"


def _cards(h: Mapping[str, Any]) -> str:
    picks = (
        "plans_horizon",
        "cumulative_deficit_horizon_unmitigated_gbp",
        "cumulative_deficit_horizon_optimised_gbp",
        "gap_to_plan_final_optimised_gbp",
        "saving_gbp",
        "p_meet_safety_valve_optimised",
        "places_built",
    )
    out = []
    for k in picks:
        label, unit = HEADLINE[k]
        out.append(f"<div class='card'><div class='v'>{_esc(_display(h.get(k), unit))}</div>"
                   f"<div class='l'>{_esc(label)}</div></div>")  # fmt: skip
    return "<div class='cards'>" + "".join(out) + "</div>"


def render_html(results: Results) -> tuple[str, list[str]]:
    """``report.html`` text and the notes for charts that could not be drawn."""
    notes: list[str] = []
    s = results.summary
    t = results.tables
    h = headline_figures(s, t)
    names = labels.Labels.from_scenario(results.resolved.scenario)
    parts = [
        f"<h1>{_esc(s.get('scenario', results.resolved.scenario.meta.name))}</h1>",
        f"<p class='disclaimer'>{_esc(DISCLAIMER)}</p>",
        _cards(h),
        _warnings_html(s),
        "<h2>Headline figures</h2>",
        _html_table(
            [(HEADLINE[k][0], _display(v, HEADLINE[k][1]), HEADLINE[k][1]) for k, v in h.items()],
            ["figure", "value", "unit"],
            [False, True, False],
        ),
    ]
    totals = _demand_totals(s)
    parts.append(
        _figure_section(
            "EHCP forecast",
            lambda: charts.ehcp_fan_chart(t.get("demand"), totals=totals),  # type: ignore[arg-type]
            "ehcp_fan",
            notes,
            "Plans counted each January: the P50 line with the P10-P90 band across Monte Carlo paths.",
        )
    )
    parts.append(
        _figure_section(
            "Placement mix over time",
            lambda: charts.placement_mix_chart(t.get("placements"), labels=names),  # type: ignore[arg-type]
            "placement_mix",
            notes,
            "Children in place by setting: today's mix (unmitigated) against the optimised plan.",
        )
    )
    parts.append(
        _figure_section(
            "Deficit against the Safety Valve plan",
            lambda: charts.deficit_chart(t.get("finance")),  # type: ignore[arg-type]
            "deficit",
            notes,
            "Cumulative DSG deficit at 31 March of each financial year, with P10-P90 bands where "
            "the run has Monte Carlo paths.",
        )
    )
    parts.append(
        _figure_section(
            "Sufficiency by locality",
            lambda: charts.sufficiency_chart(t.get("sufficiency"), labels=names),  # type: ignore[arg-type]
            "sufficiency",
            notes,
            "Places demanded against capacity in each provider locality in the last year.",
        )
    )
    parts.append(
        _figure_section(
            "Build plan",
            lambda: charts.build_plan_chart(t.get("builds"), labels=names),  # type: ignore[arg-type]
            "builds",
            notes,
            "New places the optimised plan opens, by year, setting and provider locality.",
        )
    )
    builds = t.get("builds")
    if builds is not None and not builds.empty:
        parts.append(_df_html(builds, names=names))
    saving = saving_by_cause_table(s)
    if saving is not None:
        parts.append("<h2>Saving of the optimised plan by cause and funding source</h2>")
        parts.append(
            "<p>Unmitigated minus optimised spend over the forecast, in pounds. Routing and "
            "post-16 compare today's pattern with the plan re-solved with no builds; builds is "
            "what the new places add after their capital and place funding.</p>"
        )
        parts.append(_df_html(saving, names=names))
    proc = t.get("process")
    if proc is not None and not proc.empty:
        parts.append("<h2>Statutory process by financial year</h2>")
        parts.append(
            "<p>Requests, decisions, assessments and plans issued by the statutory pipeline "
            "(deterministic flows; P10/P90 of plans issued and the 20-week share where the run "
            "has paths). Years up to the last published one are fitted to SEN2 (in-sample).</p>"
        )
        cols = [
            c
            for c in (
                "month",
                "basis",
                "requests",
                "decisions",
                "assessments_completed",
                "plans_issued",
                "plans_issued_p10",
                "plans_issued_p90",
                "share_within_20_weeks",
                "share_within_20_weeks_p10",
                "share_within_20_weeks_p90",
                "open_assessments",
                "overdue_assessments",
                "reviews_overdue",
                "tribunal_appeals",
            )
            if c in proc.columns
        ]
        fy = proc[proc["period"] == "financial_year"][cols].rename(
            columns={"month": "financial_year"}
        )
        parts.append(_df_html(fy.round(3)))
    parts.append("<h2>Assumptions</h2>")
    parts.append(
        _html_table(
            [(k, "–" if v is None else v) for k, v in _assumptions(results)],
            ["assumption", "value"],
        )
    )
    absent = _absent_tables(results)
    if absent:
        parts.append(
            f"<p class='disclaimer'>Tables not produced by this run: {_esc(', '.join(absent))}.</p>"
        )
    return _page(f"sendplan: {s.get('scenario', '')}", "\n".join(parts)), notes


def _by_year(value: Any) -> dict[int, float] | None:
    """A ``{year: number}`` mapping (keys may be strings after JSON) as ints and floats."""
    if not isinstance(value, Mapping) or not value:
        return None
    try:
        return {int(k): float(v) for k, v in value.items() if v is not None}
    except (TypeError, ValueError):
        return None


def _demand_totals(summary: Mapping[str, Any]) -> pd.DataFrame | None:
    """County totals by year from summary["demand"]: ``plans`` (P50 of the total over paths, or the
    deterministic count with one path) and ``plans_p10``/``plans_p90`` where there are paths."""
    dem = summary.get("demand")
    if not isinstance(dem, Mapping):
        return None
    plans = _by_year(dem.get("plans"))
    if not plans:
        return None
    df = pd.DataFrame({"year": sorted(plans), "plans": [plans[y] for y in sorted(plans)]})
    for q in ("p10", "p90"):
        band = _by_year(dem.get(f"plans_{q}"))
        if band:
            df[f"plans_{q}"] = [band.get(y, np.nan) for y in df["year"]]
    return df


# --------------------------------------------------------------------------- entry points


def write_reports(
    results: Results, folder: Path, full_workbook: bool = False, table_format: str = "csv"
) -> list[str]:
    """Write ``report.xlsx`` and ``report.html`` into ``folder`` (and ``tables.xlsx``, every table
    in full, with ``full_workbook``); return warnings, never raise (a report that fails is left
    out and named in the warnings, the run's tables still stand)."""
    warnings: list[str] = []

    def xlsx(results: Results, path: Path) -> list[str]:
        return write_xlsx(results, path, table_format, full_workbook)

    writers: list[tuple[str, Callable[[Results, Path], list[str]]]] = [
        ("report.xlsx", xlsx),
        ("report.html", _html_writer),
    ]
    if full_workbook:
        writers.append(("tables.xlsx", write_tables_xlsx))
    for name, writer in writers:
        target = Path(folder) / name
        try:
            warnings.extend(writer(results, target))
        except Exception as e:
            warnings.append(f"{name} not written: {type(e).__name__}: {e}")
            try:
                target.unlink(missing_ok=True)
            except OSError:
                pass
    return warnings


def _html_writer(results: Results, path: Path) -> list[str]:
    text, notes = render_html(results)
    path.write_text(text, encoding="utf-8")
    return [f"report.html: {n}" for n in notes]


# --------------------------------------------------------------------------- batch comparison


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary sibling and rename, so a reader never sees half a file."""
    atomic_write(path, write)


def write_comparison_csv(comparison: pd.DataFrame, path: Path) -> None:
    """comparison.csv, byte-stable: fixed column order, rows in input order, repr floats."""
    _atomic_write(path, lambda p: comparison.to_csv(p, index=False, lineterminator="\n"))


def write_comparison_xlsx(
    comparison: pd.DataFrame,
    problems: Sequence[tuple[str, str, str]],
    path: Path,
    swept: Sequence[str] = (),
) -> None:
    """comparison.xlsx: the comparison sheet (units in headers, formats), a native bar chart of the
    deficit at the horizon by scenario, and the problems (scenarios that failed and why)."""
    import xlsxwriter

    def write(p: Path) -> None:
        wb = xlsxwriter.Workbook(str(p), {"nan_inf_to_errors": True})
        try:
            fmt = {"header": wb.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True}),
                   "title": wb.add_format({"bold": True, "font_size": 14})}  # fmt: skip
            for f in ("£#,##0;[Red]-£#,##0", "#,##0.0", "0.0%", "0", "0.00"):
                fmt[f] = wb.add_format({"num_format": f})
            ws = _write_table_sheet(wb, "comparison", comparison, fmt)
            ws.freeze_panes(1, 2)
            cols = [c for c in ("cumulative_deficit_horizon_unmitigated_gbp",
                                "cumulative_deficit_horizon_optimised_gbp",
                                "plan_cumulative_deficit_horizon_gbp") if c in comparison.columns]  # fmt: skip
            n = len(comparison)
            if n and cols and comparison[cols].notna().any().any():
                ch = wb.add_chart({"type": "column"})
                slug_col = list(comparison.columns).index("slug")
                for c in cols:
                    j = list(comparison.columns).index(c)
                    ch.add_series({"name": ["comparison", 0, j], "categories": ["comparison", 1, slug_col, n, slug_col],
                                   "values": ["comparison", 1, j, n, j]})  # fmt: skip
                ch.set_title({"name": "Cumulative DSG deficit at the horizon"})
                ch.set_y_axis({"name": "£", "num_format": '£#,##0,,"m"'})
                ch.set_size({"width": 900, "height": 420})
                cs = wb.add_worksheet("chart")
                cs.insert_chart(1, 0, ch)
            pr = wb.add_worksheet("problems")
            pr.set_column(0, 0, 50)
            pr.set_column(1, 1, 12)
            pr.set_column(2, 2, 100)
            pr.write_row(0, 0, ["input", "status", "reason"], fmt["header"])
            for i, row in enumerate(problems, start=1):
                pr.write_row(i, 0, list(row))
            if not problems:
                pr.write_string(1, 0, "No problems: every scenario ran.")
            pr.freeze_panes(1, 0)
        finally:
            wb.close()

    _atomic_write(path, write)


_HEADLINE_NAMES = {k: v[0] for k, v in HEADLINE.items()}


def _short_labels(df: pd.DataFrame, swept: Sequence[str]) -> pd.Series:
    """Bar labels: a sweep's values by the last part of each key (``growth=0.1, ...``), else slugs."""
    if not swept or df.empty:
        return df["slug"].astype(str) if "slug" in df.columns else pd.Series(dtype=str)
    parts = [k.rsplit(".", 1)[-1] + "=" + df[k].astype(str) for k in swept]
    out = parts[0]
    for p in parts[1:]:
        out = out + ", " + p
    return out


def render_comparison_html(
    comparison: pd.DataFrame, problems: Sequence[tuple[str, str, str]], swept: Sequence[str] = ()
) -> str:
    """comparison.html: headline table, bar charts by scenario and, for a sweep, figures against the
    swept values. Self-contained like report.html."""
    notes: list[str] = []
    parts = [
        "<h1>sendplan: scenario comparison</h1>",
        "<p class='disclaimer'>Illustrative model output: each scenario's assumptions are on the "
        "front sheet of its report.xlsx and in its report.html; they are not official forecasts. "
        f"Generated {_esc(_dt.date.today().isoformat())}.</p>",
    ]
    ok = comparison[comparison["status"] == "ok"] if "status" in comparison.columns else comparison
    ok = ok.assign(label=_short_labels(ok, swept))
    parts.append(
        _figure_section(
            "Cumulative DSG deficit at the horizon",
            lambda: charts.comparison_chart(
                ok,
                [
                    c
                    for c in (
                        "cumulative_deficit_horizon_unmitigated_gbp",
                        "cumulative_deficit_horizon_optimised_gbp",
                        "plan_cumulative_deficit_horizon_gbp",
                    )
                    if c in ok.columns
                ],
                label="label",
                series_names=_HEADLINE_NAMES,
            ),
            "cmp_deficit",
            notes,
        )
    )
    parts.append(
        _figure_section(
            "Deficit above the Safety Valve plan at its last year",
            lambda: charts.comparison_chart(
                ok,
                [
                    c
                    for c in (
                        "gap_to_plan_final_unmitigated_gbp",
                        "gap_to_plan_final_optimised_gbp",
                    )
                    if c in ok.columns
                ],  # fmt: skip
                title="Cumulative deficit minus the Safety Valve plan at the plan's last year "
                "(positive = above plan)",
                label="label",
                series_names=_HEADLINE_NAMES,
            ),
            "cmp_gap",
            notes,
        )
    )
    parts.append(
        _figure_section(
            "Total cost and saving",
            lambda: charts.comparison_chart(
                ok,
                [
                    c
                    for c in (
                        "total_cost_unmitigated_gbp",
                        "total_cost_optimised_gbp",
                        "saving_gbp",
                    )
                    if c in ok.columns
                ],
                title="Total cost over the forecast and the saving of the optimised plan",
                label="label",
                series_names=_HEADLINE_NAMES,
            ),
            "cmp_cost",
            notes,
        )
    )
    if swept:
        x = swept[0]
        colour = swept[1] if len(swept) > 1 else None
        for k, value in enumerate(
            ("cumulative_deficit_horizon_optimised_gbp", "saving_gbp", "plans_horizon")
        ):
            parts.append(
                _figure_section(
                    f"{value} by {x}",
                    lambda value=value: charts.sweep_chart(ok, x, value, colour),
                    f"sweep_{k}",
                    notes,
                )
            )
    parts.append("<h2>Comparison table</h2>")
    parts.append(_df_html(comparison, max_rows=5000))
    parts.append("<h2>Problems</h2>")
    if problems:
        parts.append(_html_table(list(problems), ["input", "status", "reason"]))
    else:
        parts.append("<p>No problems: every scenario ran.</p>")
    return _page("sendplan: scenario comparison", "\n".join(parts))


def write_comparison(
    comparison: pd.DataFrame,
    problems: Sequence[tuple[str, str, str]],
    out: Path,
    swept: Sequence[str] = (),
) -> list[str]:
    """Write OUT/comparison.csv (always) and OUT/comparison.xlsx/.html (best effort; warnings)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_comparison_csv(comparison, out / "comparison.csv")
    warnings: list[str] = []
    try:
        write_comparison_xlsx(comparison, problems, out / "comparison.xlsx", swept)
    except Exception as e:
        warnings.append(f"comparison.xlsx not written: {type(e).__name__}: {e}")
    try:
        text = render_comparison_html(comparison, problems, swept)
        _atomic_write(out / "comparison.html", lambda p: p.write_text(text, encoding="utf-8"))
    except Exception as e:
        warnings.append(f"comparison.html not written: {type(e).__name__}: {e}")
    return warnings
