"""One Python API over the whole pipeline: the CLI, the batch runner and the app all call ``run_scenario``.

Stages (each a plain function in its own module): demand -> placements (unmitigated) -> sufficiency LP
(optimised) -> costs -> finance. ``write_outputs`` is the only writer and is atomic.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .io import ResolvedScenario, atomic_folder, non_finite_paths, write_json
from .stages import report_stage

# Output tables in the order people read them; each is written as <name>.csv (or .parquet).
TABLE_ORDER = (
    "demand",
    "demand_flows",
    "placements",
    "sufficiency",
    "builds",
    "costs",
    "finance",
    "process",
)

# The stage that produces each table, for messages about values that are not finite.
TABLE_STAGE = {
    "demand": "demand",
    "demand_flows": "demand",
    "placements": "placements",
    "sufficiency": "sufficiency",
    "builds": "sufficiency",
    "costs": "costs",
    "finance": "finance",
}
# Columns left blank where they do not apply (README, "What a run writes"): places on cost lines
# that are not per place, the Safety Valve comparison where the scenario gives no plan, and the
# backlog's plans in the last financial year (the pipeline runs only to the December before the
# horizon's January count), general fund reserves a scenario does not give, and shares of a month
# in which nothing was issued or decided.
BLANK_WHERE_NOT_APPLICABLE = {
    "costs": ("places",),
    "finance": (
        "plan_cumulative_deficit_gbp",
        "plan_in_year_balance_gbp",
        "gap_to_plan_gbp",
        "prob_meet_plan",
        "backlog_plans_issued",
        "general_fund_reserves_gbp",
        "reserves_after_exposure_gbp",
    ),
    # a share of nothing: no plans issued, or no decisions made, in that month
    "process": (
        "share_within_20_weeks",
        "share_within_20_weeks_p10",
        "share_within_20_weeks_p50",
        "share_within_20_weeks_p90",
        "share_decided_within_6_weeks",
    ),
}


class NonFiniteOutput(RuntimeError):
    """A stage produced NaN or infinity: the run fails (exit 1) rather than write a wrong number."""


def check_finite(results: Results) -> None:
    """Raise NonFiniteOutput naming the stage and column (or summary key) of any NaN or infinity.

    Infinity is never allowed; NaN only in the columns documented as blank where not applicable.
    """
    import numpy as np

    for name, df in results.tables.items():
        numeric = df.select_dtypes(include="number")
        if numeric.empty:
            continue
        values = numeric.to_numpy(dtype=float)
        bad_inf = np.isinf(values).any(axis=0)
        bad_nan = np.isnan(values).any(axis=0)
        blank_ok = set(BLANK_WHERE_NOT_APPLICABLE.get(name, ()))
        for j, col in enumerate(numeric.columns):
            if bad_inf[j] or (bad_nan[j] and col not in blank_ok):
                what = "infinity" if bad_inf[j] else "NaN"
                raise NonFiniteOutput(
                    f"the {TABLE_STAGE.get(name, name)} stage wrote {what} into {name}.{col}"
                )
    bad = non_finite_paths(results.summary)
    if bad:
        raise NonFiniteOutput(f"summary.json: {bad[0]} is not a finite number")


@dataclass
class Results:
    """Everything one scenario run produced: tidy tables, headline summary, optional LP export."""

    resolved: ResolvedScenario
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    mps_text: str | None = None
    artefacts: dict[str, Any] = field(
        default_factory=dict
    )  # in-memory stage results for the app and reports


def run_scenario(
    resolved: ResolvedScenario,
    *,
    paths: int | None = None,
    seed: int | None = None,
    solver: str | None = None,
    export_lp: bool = False,
    demand: Any = None,
) -> Results:
    """Run every stage for one validated scenario and return its tables and summary (writes nothing).

    ``demand``: a DemandResult already computed for this scenario's demand inputs with the same
    paths and seed (the app caches that stage); None runs the demand stage here, as the CLI does.
    """
    scn = resolved.scenario
    paths = scn.run.paths if paths is None else paths
    seed = scn.run.seed if seed is None else seed
    solver = solver or scn.run.solver
    t0 = time.perf_counter()
    res = Results(resolved=resolved)
    res.summary = {
        "scenario": scn.meta.name,
        "slug": resolved.slug,
        "source": resolved.source,
        "scenario_sha256": resolved.sha256,
        "overrides": list(resolved.overrides),
        "package_version": __version__,
        "python_version": platform.python_version(),
        "seed": seed,
        "paths": paths,
        "base_year": scn.meta.base_year,
        "horizon_years": scn.meta.horizon_years,
        "year_convention": "year = January census year (2025 = academic year 2024/25); "
        "financial_year = starting calendar year (2024 = April 2024 to March 2025)",
        "warnings": [],  # model.alerts: every stage appends what people must not miss
    }
    # --- stage blocks: each engine issue adds its stage here --------------------------------
    # demand (issue 3): EHCP stock by year x age x need x locality, calibrated, with MC paths
    from .demand import run_demand

    # statutory process: requests -> assessments -> plans issued by month, ahead of demand; the
    # plans it issues become the cohort model's joiners (only when the scenario has the section)
    from .process import pipeline_for

    pipeline = pipeline_for(scn, paths, seed, resolved.source)
    if pipeline is not None:
        res.tables.update(pipeline.tables())
        res.summary["process"] = pipeline.headline()
        res.artefacts["process"] = pipeline
    if demand is None:
        report_stage(f"demand: {paths} Monte Carlo paths")
        demand = run_demand(scn, paths, seed, source=resolved.source, pipeline=pipeline)
    res.tables.update(demand.tables())
    res.summary["demand"] = demand.headline()
    res.artefacts["demand"] = demand
    # placements, costs and finance (issue 4): the unmitigated variant (today's mix, pipeline only)
    from .finance import add_variant, variant_tables
    from .placements import placement_demand, unmitigated

    report_stage("placements, costs and finance (unmitigated)")
    pdemand = placement_demand(scn, demand.stock, demand.new)
    plan_u = unmitigated(scn, pdemand)
    result_u = variant_tables(scn, plan_u, None, demand)
    add_variant(res.tables, res.summary, result_u)
    res.artefacts["unmitigated_path_hnb_spend"] = result_u.path_hnb_spend
    res.artefacts["placement_demand"] = pdemand
    res.artefacts["unmitigated"] = plan_u
    # sufficiency LP (issue 5): the optimised variant through costs and finance; sufficiency.csv,
    # builds.csv, summary["optimisation"], the saving in summary["headlines"], model.mps
    from .sufficiency import add_optimised_variant

    report_stage("optimiser")
    add_optimised_variant(res, scn, demand, pdemand, plan_u, solver=solver, export_lp=export_lp)
    # placements beyond what a provider market holds are allowed but reported
    from .placements import market_limit_warnings

    for plan in (plan_u, res.artefacts["sufficiency"].plan):
        res.summary.setdefault("warnings", []).extend(market_limit_warnings(scn, plan))
    if pipeline is not None and "finance" in res.tables:
        # when the backlog's costs land: plans issued after 20 weeks in each financial year
        late = pipeline.by_financial_year("plans_issued_over_20_weeks")
        fin = res.tables["finance"]
        fin["backlog_plans_issued"] = fin["financial_year"].map(late)
    # The public contract (DESIGN.md) names these at the top level of summary.json.
    opt = res.summary.get("optimisation", {})
    for key in ("solver", "status", "objective_gbp", "build_seconds", "solve_seconds"):
        res.summary[key] = opt.get(key)
    res.summary["run_seconds"] = round(time.perf_counter() - t0, 3)
    return res


def write_outputs(
    results: Results, out_root: Path | str, fmt: str = "csv", reports: bool | str = True
) -> Path:
    """Write one scenario's folder ``OUT/<slug>/`` atomically: all or nothing.

    ``reports`` adds report.xlsx and report.html (model.reports; a report that fails is skipped
    and named in summary["report_warnings"], it never fails the run); ``reports="full"`` also
    writes tables.xlsx, every table in full (``sendplan run --full-workbook``).
    """
    check_finite(results)
    target = Path(out_root) / results.resolved.slug
    with atomic_folder(target) as tmp:
        (tmp / "scenario.resolved.yaml").write_text(
            results.resolved.resolved_yaml, encoding="utf-8"
        )
        for name in TABLE_ORDER:
            df = results.tables.get(name)
            if df is None:
                continue
            if fmt == "parquet":
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            else:
                df.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
        if results.mps_text is not None:
            (tmp / "model.mps").write_text(results.mps_text, encoding="utf-8")
        if reports:  # people-facing reports (issue 6): model.reports never raises
            report_stage("reports")
            from .reports import write_reports

            report_warnings = write_reports(
                results, tmp, full_workbook=reports == "full", table_format=fmt
            )
            if report_warnings:
                results.summary["report_warnings"] = report_warnings
        write_json(tmp / "summary.json", results.summary)
    return target
