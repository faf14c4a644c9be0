"""One Python API over the whole pipeline: the CLI, the batch runner and the app all call ``run_scenario``.

``run_scenario`` is the only place that sequences the stages, each a plain function in its own
module returning a typed result: process -> demand -> placements (unmitigated) -> sufficiency LP
(optimised) -> Monte Carlo paths (shared by finance and the robustness check) -> costs and finance
of each variant -> saving. The tables and summary.json are assembled here from those results;
no stage writes into another's output. ``write_outputs`` is the only writer and is atomic.

Two pieces of work that need no plan run on a second thread while HiGHS (which releases the GIL)
solves the optimiser's LP on the first: the plan-free part of the Monte Carlo paths, then the
saving's no-build LP (its stage reports muted). Every figure is the same as run one after the
other (tests).
"""

from __future__ import annotations

import contextvars
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .alerts import RunWarning, limit_warnings
from .costs import builds_capacity, cost_table
from .demand import run_demand
from .finance import VariantResult, variant_tables
from .io import ResolvedScenario, atomic_folder, non_finite_paths, write_json
from .montecarlo import (
    BuildsJob,
    PathBatches,
    PathCache,
    SharedBuildsSpend,
    builds_spend,
    path_batches,
    run_paths,
    unmitigated_spend,
)
from .placements import PlacementPlan, market_limit_warnings, run_placements
from .process import pipeline_for
from .reports import write_reports
from .results import TABLE_ORDER, Results, StageResults
from .scenario import Scenario
from .stages import report_stage, unreported
from .sufficiency import (
    SufficiencyModel,
    cause_pieces,
    no_build_plan,
    optimise_scenario,
    saving,
)
from .sufficiency.robust import plan_pattern, robustness_summary
from .sufficiency.warm import WarmStarts

__all__ = [
    "TABLE_ORDER",
    "BLANK_WHERE_NOT_APPLICABLE",
    "NonFiniteOutput",
    "Results",
    "StageResults",
    "check_finite",
    "run_scenario",
    "write_outputs",
]

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


def run_scenario(
    resolved: ResolvedScenario,
    *,
    paths: int | None = None,
    seed: int | None = None,
    solver: str | None = None,
    export_lp: bool = False,
    demand: Any = None,
    warm: WarmStarts | None = None,
    path_cache: PathCache | None = None,
    branch_and_bound: bool = True,
    robustness: bool = True,
) -> Results:
    """Run every stage for one validated scenario and return its tables and summary (writes nothing).

    ``demand``: a DemandResult already computed for this scenario's demand inputs with the same
    paths and seed (the app caches that stage), with its statutory pipeline if it ran one; None
    runs the demand stage here, as the CLI does. ``warm``: the LPs' bases from the caller's last
    run, used where the LP has the same dimensions (warm.py says when) and updated (the app keeps
    one per session; the CLI solves from scratch). ``path_cache``: where the placement demand of the
    Monte Carlo paths is kept for the next run on the same ``demand`` (the app keeps one for the
    server). ``branch_and_bound``: False lets a whole-unit plan rounded from the LP stand even
    outside ``policy.mip_gap`` (status provisional, with a warning: the app's first answer to a
    lever, refined by a second run with it; decision 0004). ``robustness``: False leaves the
    robustness check out (summary.json says it is deferred) for ``complete_robustness`` to run
    when the outputs are written: the app's lever answers, which show nothing of it.
    """
    scn = resolved.scenario
    paths = scn.run.paths if paths is None else paths
    seed = scn.run.seed if seed is None else seed
    solver = solver or scn.run.solver
    t0 = time.perf_counter()
    # statutory process: requests -> assessments -> plans issued by month, ahead of demand; the
    # plans it issues become the cohort model's joiners (only when the scenario has the section)
    # (a demand stage given here ran it already: the same paths and seed)
    pipeline = (
        demand.pipeline
        if demand is not None and demand.pipeline is not None
        else pipeline_for(scn, paths, seed, resolved.source)
    )
    # demand: EHCP stock by year x age x need x locality, calibrated, with Monte Carlo paths
    if demand is None:
        report_stage(f"demand: {paths} Monte Carlo paths")
        demand = run_demand(scn, paths, seed, source=resolved.source, pipeline=pipeline)
    # placements: who needs a place when, and the unmitigated forecast (today's mix, pipeline only)
    report_stage("placements (unmitigated)")
    placed = run_placements(scn, demand.stock, demand.new)
    # sufficiency LP: the optimised plan and builds (its robustness is checked on the paths below).
    # Work that needs no plan runs on a second thread meanwhile (HiGHS releases the GIL): what no
    # plan changes on the Monte Carlo paths (their placement demand, today's pattern within
    # committed capacity), the unmitigated variant's costs and finance, the builds' finance on
    # the paths once the LP has rounded them, then the saving's no-build LP.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sendplan-ahead") as pool:
        ahead = pool.submit(
            contextvars.copy_context().run, partial(path_batches, cache=path_cache), scn, demand
        )
        # the unmitigated variant's costs and finance need only those batches (queued after them)
        unmit_ahead = pool.submit(
            contextvars.copy_context().run,
            _unmitigated_ahead,
            scn,
            placed.unmitigated,
            demand,
            ahead,
        )
        # the builds' finance on the paths, once the LP's rounding names the builds, and the
        # saving's no-build LP (not where nothing may be built: the plan is then its own)
        beside = _Beside(scn, pool, ahead)
        # the optimiser's LP as built: the no-build LP is the same LP with its builds pinned at
        # zero, so it is not built twice
        central: Future[SufficiencyModel | None] = Future()
        if scn.policy.buildable:
            beside.no_build_plan(
                partial(
                    no_build_plan,
                    scn,
                    placed.demand,
                    placed.unmitigated,
                    solver,
                    warm,
                    central,
                )
            )
        report_stage("optimiser")
        try:
            suff = optimise_scenario(
                scn,
                demand,
                placed.demand,
                solver,
                export_lp,
                robust=False,
                before=placed.unmitigated,
                warm=warm,
                on_builds=beside.start,
                branch_and_bound=branch_and_bound,
                on_model=central.set_result,
            )
        finally:  # a failed or cancelled optimiser never leaves the no-build LP waiting
            if not central.done():
                central.set_result(None)
        batches = ahead.result()
        # Monte Carlo paths, run once for the finance bands of both variants and the robustness
        # check
        report_stage(f"Monte Carlo paths ({'finance, robustness' if robustness else 'finance'})")
        t_paths = time.perf_counter()
        extra = builds_capacity(scn, suff.builds)
        runs = run_paths(
            scn,
            demand,
            extra,
            plan_pattern(scn, suff.model.inputs, suff.allocation, suff.builds)
            if robustness
            else None,
            ahead=batches,
            builds_ahead=beside.job_for(extra),
            # the batches computed ahead were cut for the check's paths too
            robust_paths=True if batches is not None else None,
        )
        paths_seconds = round(time.perf_counter() - t_paths, 3)
        # costs and finance of each variant
        report_stage("costs and finance")
        pieces: dict[str, pd.Series] = {}  # the saving's, computed on the second thread
        ahead_unmit = unmit_ahead.result()
        if ahead_unmit is not None:
            unmit, pieces["unmitigated"] = ahead_unmit
        else:
            unmit = variant_tables(
                scn,
                placed.unmitigated,
                None,
                demand,
                path_spend=runs.unmitigated_hnb_spend if runs is not None else None,
            )
        opt = variant_tables(
            scn,
            suff.plan,
            suff.builds,
            demand,
            path_spend=runs.with_builds_hnb_spend if runs is not None else None,
        )
        report_stage("saving by cause")
        # a plan that builds nothing is its own no-build plan
        built = bool(scn.policy.buildable) and suff.allocation.build_places.any()
        routing_only = suff.plan
        if built:
            routing_only, pieces["no_builds"] = beside.no_build()
    # the saving: both variants' costs, and the plan without builds for its causes
    costs = pd.concat([unmit.costs, opt.costs], ignore_index=True)
    saved = saving(scn, costs, placed.unmitigated, suff, routing_only, pieces)
    stages = StageResults(pipeline, demand, placed, suff, runs, unmit, opt, saved)
    res = Results(resolved=resolved, stages=stages, mps_text=suff.mps_text)
    res.tables = _tables(stages)
    res.summary = _summary(resolved, stages, paths, seed, paths_seconds, not robustness)
    res.artefacts = _artefacts(stages)
    res.summary["run_seconds"] = round(time.perf_counter() - t0, 3)
    return res


class _Beside:
    """The plan's work on the engine's second thread: the finance paths' spend with the builds
    added (``builds_spend``), started when the LP's rounding names its whole-unit builds so it
    runs while the LP is re-solved with them pinned, and the saving's no-build LP, needed only at
    the end. Whenever the thread is free it takes the builds' spend if it is waiting, else the
    no-build LP: so a quick (warm) no-build LP fills the wait for the rounding, and never holds
    up the spend. The spend is used only if the plan keeps exactly those builds (branch and bound
    may better them)."""

    def __init__(
        self, scn: Scenario, pool: ThreadPoolExecutor, ahead: Future[PathBatches | None]
    ) -> None:
        self.scn, self.pool, self.ahead = scn, pool, ahead
        self.job: tuple[np.ndarray, BuildsJob] | None = None
        self._no_build: Future[tuple[PlacementPlan, pd.Series]] | None = None
        self._waiting: list[tuple[Future[Any], Callable[[], Any]]] = []  # the first runs first
        self._lock = threading.Lock()

    def _queue(self, fn: Callable[[], Any], first: bool) -> Future[Any]:
        """A future for ``fn``, run by the next free turn of the thread (before work queued
        without ``first``)."""
        out: Future[Any] = Future()
        with self._lock:
            self._waiting.insert(0 if first else len(self._waiting), (out, fn))
        self.pool.submit(contextvars.copy_context().run, self._turn)
        return out

    def _turn(self) -> None:
        with self._lock:
            out, fn = self._waiting.pop(0)
        if out.set_running_or_notify_cancel():
            try:
                out.set_result(fn())
            except BaseException as e:  # handed to whoever waits on it
                out.set_exception(e)

    def no_build_plan(self, fn: Callable[[], PlacementPlan]) -> None:
        """Queue the no-build LP ``fn`` (its stage reports muted), and its plan's pieces of the
        saving by cause."""
        self._no_build = self._queue(partial(unreported, partial(self._costed, fn)), first=False)

    def _costed(self, fn: Callable[[], PlacementPlan]) -> tuple[PlacementPlan, pd.Series]:
        plan = fn()
        return plan, cause_pieces(self.scn, plan, cost_table(self.scn, plan, None))

    def start(self, builds: pd.DataFrame) -> None:
        """The LP's rounded builds (builds.csv rows): queue their spend ahead of other work."""
        extra = builds_capacity(self.scn, builds)
        if self.job is not None:
            self.job[1].future.cancel()  # a later rounding (another LP) replaces it
            self.job = None
        if extra is not None:
            work: Future[SharedBuildsSpend | None] = Future()
            job = self._queue(partial(self._spend, extra, work), first=True)
            self.job = (extra, BuildsJob(job, work))

    def _spend(self, extra: np.ndarray, work: Future[SharedBuildsSpend | None]) -> np.ndarray:
        """The builds' spend, its batches shared with the thread that comes to wait for it
        (``work`` hears them as it starts)."""
        try:
            batches = self.ahead.result()
            if batches is None:  # nothing computed ahead: run_paths computes it all, not this
                work.set_result(None)
                return np.zeros(0)
            return builds_spend(self.scn, batches, extra, on_start=work.set_result)
        except BaseException as e:
            if not work.done():
                work.set_exception(e)
            raise

    def job_for(self, extra: np.ndarray | None) -> BuildsJob | None:
        """The spend's job if it is for exactly these places and has started (None: run_paths
        computes it, with its own two threads, while this one goes on to the no-build LP); the
        thread that waits for it takes batches not yet started."""
        if self.job is None:
            return None
        places, job = self.job
        # cancel() refuses a job already running or done: that one is handed over
        if extra is not None and np.array_equal(places, extra) and not job.future.cancel():
            return job
        job.future.cancel()
        return None

    def no_build(self) -> tuple[PlacementPlan, pd.Series]:
        """The no-build LP's plan and its pieces of the saving by cause."""
        assert self._no_build is not None, "no no-build LP was queued"
        return self._no_build.result()


def _unmitigated_ahead(
    scn: Scenario, unmitigated: PlacementPlan, demand: Any, ahead: Future[PathBatches | None]
) -> tuple[VariantResult, pd.Series] | None:
    """The unmitigated variant's tables from the paths' batches computed ahead, with its pieces
    of the saving by cause (None when they were not: the variant then waits for ``run_paths``,
    as before)."""
    batches = ahead.result()
    if batches is None:
        return None
    spend = unmitigated_spend(scn, batches)
    unmit = variant_tables(scn, unmitigated, None, demand, path_spend=spend)
    return unmit, cause_pieces(scn, unmitigated, unmit.costs)


def _tables(st: StageResults) -> dict[str, pd.DataFrame]:
    """The output tables from the stages' results (written in TABLE_ORDER)."""
    tables: dict[str, pd.DataFrame] = {}
    if st.process is not None:
        tables.update(st.process.tables())
    tables.update(st.demand.tables())
    for name in ("placements", "costs", "finance"):
        tables[name] = pd.concat(
            [getattr(st.unmitigated, name), getattr(st.optimised, name)], ignore_index=True
        )
    tables["sufficiency"] = st.sufficiency.sufficiency
    tables["builds"] = st.sufficiency.builds
    if st.process is not None:
        # when the backlog's costs land: plans issued after 20 weeks in each financial year
        late = st.process.by_financial_year("plans_issued_over_20_weeks")
        fin = tables["finance"]
        fin["backlog_plans_issued"] = fin["financial_year"].map(late)
    return tables


def _summary(
    resolved: ResolvedScenario,
    st: StageResults,
    paths: int,
    seed: int,
    paths_seconds: float,
    robustness_deferred: bool = False,
) -> dict[str, Any]:
    """summary.json from the stages' results (keys documented in the README)."""
    scn = resolved.scenario
    summary: dict[str, Any] = {
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
    }
    if st.process is not None:
        summary["process"] = st.process.headline()
    summary["demand"] = st.demand.headline()
    variants = (st.unmitigated, st.optimised)
    summary["finance"] = {v.variant: v.headline for v in variants}
    headlines: dict[str, Any] = {
        f"general_fund_exposure_horizon_{v.variant}_gbp": v.headline[
            "general_fund_exposure_horizon_gbp"
        ]
        for v in variants
    }
    robustness = robustness_summary(
        st.paths, st.sufficiency.model.inputs.years[-1], robustness_deferred
    )
    if st.paths is not None and not robustness_deferred:
        robustness["seconds"] = paths_seconds  # the shared paths run (finance bands included)
    opt = {**st.sufficiency.summary, "robustness": robustness, **st.saving.summary()}
    summary["optimisation"] = opt
    for key in ("saving_gbp", "places_built", "independent_place_years_avoided"):
        headlines[key] = opt[key]
    summary["headlines"] = headlines
    # what people must not miss, in stage order (model.alerts)
    warnings: list[RunWarning | dict[str, object]] = [
        *st.unmitigated.warnings,
        *st.optimised.warnings,
        *limit_warnings(opt),
        *st.placements.warnings,
        *market_limit_warnings(scn, st.sufficiency.plan),
    ]
    summary["warnings"] = [w.to_dict() if isinstance(w, RunWarning) else w for w in warnings]
    # The public contract (DESIGN.md) names these at the top level of summary.json.
    for key in ("solver", "status", "objective_gbp", "build_seconds", "solve_seconds"):
        summary[key] = opt.get(key)
    return summary


def _artefacts(st: StageResults) -> dict[str, Any]:
    """The stage results the app, the batch runner and the reports read, by name."""
    out: dict[str, Any] = {}
    if st.process is not None:
        out["process"] = st.process
    out["demand"] = st.demand
    out["unmitigated_path_hnb_spend"] = st.unmitigated.path_hnb_spend
    out["placement_demand"] = st.placements.demand
    out["unmitigated"] = st.placements.unmitigated
    out["sufficiency"] = st.sufficiency
    return out


def complete_robustness(results: Results) -> None:
    """Run the robustness check a run deferred (``run_scenario(robustness=False)``) and put it in
    its summary, as the run would have: the same paths in the same groups, so the same figures
    (``run_paths``). Nothing to do for a run that has it, or without its stage results."""
    opt = results.summary.get("optimisation") or {}
    st = results.stages
    if not (opt.get("robustness") or {}).get("deferred") or st is None or st.paths is None:
        return
    scn, suff = results.resolved.scenario, st.sufficiency
    report_stage("robustness check (deferred)")
    t0 = time.perf_counter()
    runs = run_paths(
        scn,
        st.demand,
        None,  # no finance bands: those the run has
        plan_pattern(scn, suff.model.inputs, suff.allocation, suff.builds),
        finance=False,
    )
    robustness = robustness_summary(runs, suff.model.inputs.years[-1])
    robustness["seconds"] = round(time.perf_counter() - t0, 3)  # the check alone
    st.paths.robust = runs.robust if runs is not None else None
    opt["robustness"] = robustness


def write_outputs(
    results: Results, out_root: Path | str, fmt: str = "csv", reports: bool | str = True
) -> Path:
    """Write one scenario's folder ``OUT/<slug>/`` atomically: all or nothing.

    ``reports`` adds report.xlsx and report.html (model.reports; a report that fails is skipped
    and named in summary["report_warnings"], it never fails the run); ``reports="full"`` also
    writes tables.xlsx, every table in full (``sendplan run --full-workbook``).
    """
    complete_robustness(results)  # a lever's answer deferred it: its folder has it all
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
        if reports:  # people-facing reports: model.reports never raises
            report_stage("reports")
            report_warnings = write_reports(
                results, tmp, full_workbook=reports == "full", table_format=fmt
            )
            if report_warnings:
                results.summary["report_warnings"] = report_warnings
        write_json(tmp / "summary.json", results.summary)
    return target
