"""Streamlit front end for sendplan: a thin layer over model.io, model.engine and model.reports.

Run with ``streamlit run app.py`` (or ``make app``). Every lever edits the scenario mapping, which is
re-validated through model.io, so the YAML the app offers for download is exactly what it ran and
``sendplan run FILE`` reproduces the view. The demand stage is cached on the sections it reads;
lever changes that do not touch demand re-run only placements, the LP and finance.

Environment variables (for quick starts and tests; users normally leave them unset):
SENDPLAN_APP_PATHS and SENDPLAN_APP_HORIZON set the initial Monte Carlo paths and horizon levers.
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from model import charts, reports
from model.engine import Results, run_scenario, write_outputs
from model.io import (
    MAX_FILE_BYTES,
    Problem,
    ResolvedScenario,
    ScenarioError,
    dump_yaml,
    load_scenario,
    load_scenario_text,
)
from model.levers import (
    RESOURCE_BASE,
    ExtraPlaces,
    Levers,
    apply_levers,
    delayable_projects,
    demand_key,
    describe_edits,
    levers_from,
)

ROOT = Path(__file__).resolve().parent
SCENARIO_DIR = ROOT / "scenarios"
MAX_PINS = 4
LEVER_PREFIX = "lv_"
PATH_CHOICES = (1, 20, 50, 100, 200, 500, 1000, 2000)
SOURCES = ("Devon default (embedded)", "A file in scenarios/", "Upload a YAML file")


# --------------------------------------------------------------------------- loading and running


@st.cache_resource(max_entries=16, show_spinner=False)
def _load_base(kind: str, ref: str, text: str | None, stamp: float) -> ResolvedScenario:
    """The chosen scenario, validated (``stamp``, a file's mtime, refreshes the cache on edits)."""
    if kind == "embedded":
        return load_scenario(None)
    if kind == "file":
        return load_scenario(str(SCENARIO_DIR / ref))
    return load_scenario_text(text or "", ref)


@st.cache_resource(max_entries=32, show_spinner=False)
def _validate_edited(text: str, name: str) -> ResolvedScenario:
    """The edited mapping, dumped and read back exactly as ``sendplan run`` would read the file."""
    return load_scenario_text(text, name)


@st.cache_resource(max_entries=4, show_spinner=False)
def _demand_stage(key: str, _resolved: ResolvedScenario) -> Any:
    """The demand stage alone, keyed by the sections it reads (model.levers.demand_key)."""
    from model.demand import run_demand
    from model.process import pipeline_for

    scn = _resolved.scenario
    # the statutory pipeline (where the scenario has one) supplies the new plans
    pipeline = pipeline_for(scn, scn.run.paths, scn.run.seed, _resolved.source)
    return run_demand(scn, scn.run.paths, scn.run.seed, source=_resolved.source, pipeline=pipeline)


@st.cache_resource(max_entries=4, show_spinner=False)  # a run holds about 70 MB
def _run(sha: str, name: str, _resolved: ResolvedScenario, _demand: Any) -> Results:
    """Placements, the LP, costs and finance for one resolved scenario (keyed by its sha256 and
    file name) on the cached demand stage; the same run_scenario the CLI calls."""
    return run_scenario(_resolved, demand=_demand)


def _show_problems(err: ScenarioError, what: str) -> None:
    lines = "\n".join(str(p) for p in err.problems)
    n = len(err.problems)
    st.error(
        f"**{what}: {n} problem{'s' if n != 1 else ''}**, nothing was run.\n\n```text\n{lines}\n```"
    )


def _env_int(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


# --------------------------------------------------------------------------- sidebar: scenario


def choose_scenario() -> tuple[ResolvedScenario, str]:
    """Sidebar scenario picker; returns the validated base scenario and the file name it runs as."""
    st.sidebar.header("Scenario")
    source = st.sidebar.radio("Start from", SOURCES, key="source")
    if source == SOURCES[1]:
        files = sorted(p.name for p in SCENARIO_DIR.glob("*.y*ml"))
        if not files:
            st.info(f"No scenario files in {SCENARIO_DIR}.")
            st.stop()
        name = st.sidebar.selectbox("Scenario file", files, key="scenario_file")
        path = SCENARIO_DIR / name
        try:
            return _load_base("file", name, None, path.stat().st_mtime), name
        except ScenarioError as e:
            _show_problems(e, f"scenarios/{name}")
            st.stop()
    if source == SOURCES[2]:
        up = st.sidebar.file_uploader(
            f"Scenario YAML (up to {MAX_FILE_BYTES // (1024 * 1024)} MB; `extends` may name "
            "only embedded:devon)",
            type=["yaml", "yml"],
            key="upload",
        )
        if up is None:
            st.info("Upload a scenario YAML file in the sidebar to run it.")
            st.stop()
        raw = up.getvalue()
        try:
            if len(raw) > MAX_FILE_BYTES:
                # Checked on the bytes before decoding; load_scenario_text checks the text again.
                raise ScenarioError(
                    [Problem(up.name, "", f"file is larger than {MAX_FILE_BYTES // 1048576} MB")]
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ScenarioError(
                    [Problem(up.name, "", "cannot read file as UTF-8 text")]
                ) from None
            return _load_base("upload", up.name, text, 0.0), up.name
        except ScenarioError as e:
            _show_problems(e, up.name)
            st.stop()
    return _load_base("embedded", "devon", None, 0.0), "devon.yaml"


# --------------------------------------------------------------------------- sidebar: levers


def _reset_levers_on_new_base(base: ResolvedScenario, name: str) -> None:
    """Widgets start from the chosen scenario's values: forget lever state when the base changes."""
    ident = f"{name}:{base.sha256}"
    if st.session_state.get("_lever_base") != ident:
        for k in [k for k in st.session_state if str(k).startswith(LEVER_PREFIX)]:
            del st.session_state[k]
        st.session_state["_lever_base"] = ident


def lever_panel(base: ResolvedScenario) -> Levers:
    """The sidebar levers, initialised from the base scenario; returns the chosen values."""
    scn = base.scenario
    now = levers_from(scn)
    lev = levers_from(scn)
    first, last = scn.meta.base_year + 1, scn.meta.base_year + scn.meta.horizon_years
    sb = st.sidebar
    sb.header("Levers")

    with sb.expander("EHCP demand", expanded=True):
        lo, hi = min(-10.0, now.growth * 100), max(30.0, now.growth * 100)
        lev.growth = (
            st.slider(
                "EHCP growth (new-plan rate, % a year)",
                lo,
                hi,
                round(now.growth * 100, 2),
                0.5,
                key=f"{LEVER_PREFIX}growth",
                help="demand.growth: annual growth of the new-plan rate per head after the base year",
            )
            / 100
        )
        lev.requests_per_1000 = st.number_input(
            "Assessment requests per 1,000 aged 0-25",
            min_value=0.0,
            value=float(now.requests_per_1000),
            step=0.1,
            format="%.2f",
            key=f"{LEVER_PREFIX}requests",
            help="demand.requests_per_1000: EHC needs assessment requests a year per 1,000 residents",
        )
        backlog = dict(now.backlog) or {first: 0.0}
        lev.backlog = {
            y: st.number_input(
                f"Backlog clearance: extra plans in {y}",
                min_value=0.0,
                value=float(p),
                step=50.0,
                format="%.0f",
                key=f"{LEVER_PREFIX}backlog_{y}",
                help="demand.backlog: one-off extra plans from clearing the assessment backlog",
            )
            for y, p in sorted(backlog.items())
        }

    if scn.process is not None:
        with sb.expander("Statutory process"):
            _process_levers(scn, now, lev, first, last)

    if RESOURCE_BASE in scn.settings:
        with sb.expander("Extra resource-base places"):
            st.caption(
                "Committed places added to the pipeline (capacity.pipeline), by locality and the "
                "January they open. The optimiser may still build more."
            )
            years = list(range(first, last + 1))
            extra = []
            for loc in scn.geography.localities:
                c1, c2 = st.columns([3, 2])
                places = c1.number_input(
                    f"{loc.name}: places",
                    min_value=0.0,
                    value=0.0,
                    step=float(scn.costs.build_unit_places.get(RESOURCE_BASE, 12) or 12),
                    format="%.0f",
                    key=f"{LEVER_PREFIX}rb_places_{loc.id}",
                )
                year = c2.selectbox(
                    "opening", years, index=0, key=f"{LEVER_PREFIX}rb_year_{loc.id}"
                )
                extra.append(ExtraPlaces(loc.id, int(year), float(places)))
            lev.extra_places = extra

    projects = delayable_projects(scn)
    if projects:
        with sb.expander("Special schools in the pipeline"):
            opens = {p.name: p.open_year for p in scn.capacity.pipeline}
            for name in projects:
                lev.delays[name] = int(
                    st.number_input(
                        f"{name}: delay (years)",
                        min_value=0,
                        max_value=30,
                        value=int(now.delays.get(name, 0)),
                        step=1,
                        key=f"{LEVER_PREFIX}delay_{name}",
                        help=f"capacity.delays: planned to open in {opens[name]} before this delay",
                    )
                )

    with sb.expander("Policy"):
        cap_on = st.checkbox(
            "Cap the independent share",
            value=now.max_independent_share is not None,
            key=f"{LEVER_PREFIX}cap_on",
        )
        share = st.slider(
            "Most placed children in independent settings (%)",
            0.0,
            50.0,
            round(
                (now.max_independent_share if now.max_independent_share is not None else 0.1) * 100,
                1,
            ),
            0.5,
            key=f"{LEVER_PREFIX}cap",
            disabled=not cap_on,
            help="policy.max_independent_share, each year, for the optimised plan",
        )
        lev.max_independent_share = share / 100 if cap_on else None
        quantiles = sorted({0.5, 0.75, 0.9, float(now.plan_for)})
        lev.plan_for = st.select_slider(
            "Plan new places for demand at",
            options=quantiles,
            value=float(now.plan_for),
            format_func=lambda q: f"P{round(q * 100):d}",
            key=f"{LEVER_PREFIX}plan_for",
            help="policy.plan_for: the Monte Carlo quantile of demand the build plan must serve "
            "(P50 = central forecast; P90 = build for the high case)",
        )

    with sb.expander("Costs"):
        lev.inflation = (
            st.slider(
                "Unit-cost inflation (% a year)",
                min(-5.0, now.inflation * 100),
                max(15.0, now.inflation * 100),
                round(now.inflation * 100, 2),
                0.25,
                key=f"{LEVER_PREFIX}inflation",
            )
            / 100
        )
        st.caption(
            f"Cost per place per year at {scn.meta.price_base_year}-{(scn.meta.price_base_year + 1) % 100:02d} prices"
        )
        lev.unit_cost_gbp = {
            s: st.number_input(
                f"{scn.settings[s].name if s in scn.settings else s} (£)",
                min_value=0.0,
                value=float(v),
                step=500.0,
                format="%.0f",
                key=f"{LEVER_PREFIX}cost_{s}",
            )
            for s, v in now.unit_cost_gbp.items()
        }

    with sb.expander("Run"):
        env_paths, env_horizon = _env_int("SENDPLAN_APP_PATHS"), _env_int("SENDPLAN_APP_HORIZON")
        start_paths = env_paths if env_paths and env_paths >= 1 else now.paths
        choices = sorted({*PATH_CHOICES, now.paths, start_paths})
        lev.paths = int(
            st.select_slider(
                "Monte Carlo paths",
                choices,
                value=start_paths,
                key=f"{LEVER_PREFIX}paths",
                help="run.paths: more paths give smoother P10/P90 bands and take longer",
            )
        )
        start_h = env_horizon if env_horizon and 1 <= env_horizon <= 30 else now.horizon_years
        lev.horizon_years = int(
            st.slider(
                "Years projected",
                1,
                30,
                start_h,
                key=f"{LEVER_PREFIX}horizon",
                help="meta.horizon_years",
            )
        )
    return lev


def _process_levers(scn: Any, now: Levers, lev: Levers, first: int, last: int) -> None:
    """Caseworker and review FTE from a month, a backlog-clearance plan, requests, refusals."""
    pr = scn.process
    months = [f"{y}-{m:02d}" for y in range(first - 1, last) for m in range(1, 13)]
    st.caption(
        "process: requests -> decision to assess -> assessment -> plan issued, by month; plans "
        "issued join the next January count."
    )

    def fte_from(label: str, team: Any, current: dict[str, float], key: str) -> dict[str, float]:
        """FTE from a month on: unchanged widgets keep the scenario's own table."""
        c1, c2 = st.columns([3, 2])
        start = next(iter(current.items()), (months[12], float(team.fte)))
        fte = c1.number_input(
            f"{label} FTE", 0.0, None, float(start[1]), 1.0, format="%.1f", key=f"{key}_fte"
        )
        month = c2.selectbox(
            "from",
            months,
            index=months.index(start[0]) if start[0] in months else 12,
            key=f"{key}_month",
            help=f"process.{'assessment' if 'assess' in key else 'reviews.team'}.fte_by_month",
        )
        if (month, float(fte)) == (start[0], float(start[1])):
            return dict(current)
        return {**current, month: float(fte)}

    lev.assessment_fte_by_month = fte_from(
        "Assessment caseworker",
        pr.assessment,
        now.assessment_fte_by_month,
        f"{LEVER_PREFIX}pr_assess",
    )
    lev.review_fte_by_month = fte_from(
        "Annual review", pr.reviews.team, now.review_fte_by_month, f"{LEVER_PREFIX}pr_review"
    )
    c1, c2 = st.columns([3, 2])
    cases0, _, by0 = now.clearance[0] if now.clearance else (0.0, months[12], months[17])
    cases = c1.number_input(
        "Backlog clearance: extra cases",
        0.0,
        None,
        float(cases0),
        50.0,
        format="%.0f",
        key=f"{LEVER_PREFIX}pr_clear",
        help="process.backlog_clearance: clear N cases by month M",
    )
    by = c2.selectbox(
        "by",
        months,
        index=months.index(by0) if by0 in months else 17,
        key=f"{LEVER_PREFIX}pr_clear_by",
    )
    lev.clearance = [(float(cases), months[12], by)] if cases > 0 else []
    if now.clearance and cases == cases0 and by == by0:
        lev.clearance = list(now.clearance)
    c1, c2 = st.columns([3, 2])
    f0, y0, r0 = now.requests_changes[0] if now.requests_changes else (1.0, first + 1, 0)
    change = c1.slider(
        "Change in requests (%)",
        -50.0,
        50.0,
        round((f0 - 1.0) * 100, 1),
        1.0,
        key=f"{LEVER_PREFIX}pr_req",
        help="process.requests_changes: e.g. early help or ordinarily available provision",
    )
    year = c2.selectbox(
        "from",
        list(range(first, last + 1)),
        index=max(0, min(last, y0) - first),
        key=f"{LEVER_PREFIX}pr_req_year",
    )
    lev.requests_changes = [(1.0 + change / 100.0, int(year), int(r0))] if change else []
    c1, c2 = st.columns([3, 2])
    t0 = next(iter(now.refusal_targets.items()), (first + 1, float(pr.refusal_share)))
    target = c1.slider(
        "Refusal-rate target (% of decisions)",
        0.0,
        90.0,
        round(t0[1] * 100, 1),
        0.5,
        key=f"{LEVER_PREFIX}pr_refusal",
        help="process.refusal_targets",
    )
    t_year = c2.selectbox(
        "from",
        list(range(first, last + 1)),
        index=max(0, min(last, t0[0]) - first),
        key=f"{LEVER_PREFIX}pr_refusal_year",
    )
    lev.refusal_targets = dict(now.refusal_targets)
    moved = abs(target - round(t0[1] * 100, 1)) > 1e-9  # the slider shows one decimal
    if moved or (now.refusal_targets and t_year != t0[0]):
        lev.refusal_targets = {int(t_year): target / 100.0}


# --------------------------------------------------------------------------- views


def _chart(make: Callable[[], Any]) -> None:
    """Draw a chart from model.charts, or the reason it cannot be drawn as an info note."""
    try:
        fig = make()
    except charts.ChartDataError as e:
        st.info(str(e))
        return
    st.plotly_chart(fig, width="stretch")


def _table(res: Results, name: str) -> pd.DataFrame | None:
    df = res.tables.get(name)
    return df if df is not None and not df.empty else None


def _not_produced(name: str) -> None:
    st.info(f"The {name} table is not produced by this version of the engine yet.")


def _gbp_m(v: float | None) -> str:
    return "n/a" if v is None else f"£{v / 1e6:,.1f}m"


def headline_cards(h: dict[str, Any]) -> None:
    """Four cards answering the first questions: plans, deficit vs plan, saving, chance of the plan
    (figures from model.reports.headline_figures)."""
    c1, c2, c3, c4 = st.columns(4)
    plans, base = h.get("plans_horizon"), h.get("plans_base")
    band = "P50 of the Monte Carlo paths (deterministic with one path)"
    if h.get("plans_horizon_p10") is not None and h.get("plans_horizon_p90") is not None:
        band += f"; P10-P90 {h['plans_horizon_p10']:,.0f} to {h['plans_horizon_p90']:,.0f}"
    c1.metric(
        f"EHCPs, January {h.get('horizon_year') or ''}",
        "n/a" if plans is None else f"{plans:,.0f}",
        None
        if plans is None or base is None
        else f"{plans - base:+,.0f} since {h.get('base_year')}",
        delta_color="off",
        help=band,
        border=True,
    )
    optimised = h.get("cumulative_deficit_horizon_optimised_gbp") is not None
    variant = "optimised" if optimised else "unmitigated"
    deficit = h.get(f"cumulative_deficit_horizon_{variant}_gbp")
    fy = h.get("horizon_financial_year")
    gap = h.get(f"gap_to_plan_final_{variant}_gbp")
    final = h.get("safety_valve_final_fy")
    c2.metric(
        f"Cumulative deficit, March {fy + 1 if fy else ''}",
        _gbp_m(deficit),
        None if gap is None else f"{'-' if gap < 0 else '+'}{_gbp_m(abs(gap))} vs plan, FY {final}",
        delta_color="inverse",
        help=f"DSG deficit at 31 March ending financial year {fy}, {variant} "
        f"(unmitigated {_gbp_m(h.get('cumulative_deficit_horizon_unmitigated_gbp'))}). The "
        "delta is the gap to the Safety Valve plan in the plan's last financial year "
        f"(plan {_gbp_m(h.get('plan_cumulative_deficit_final_gbp'))}); positive = above plan.",
        border=True,
    )
    built = h.get("places_built")
    c3.metric(
        "Saving of the optimised plan",
        _gbp_m(h.get("saving_gbp")),
        None
        if built is None
        else f"{built:,.0f} new places, capital {_gbp_m(h.get('capital_cost_gbp'))}",
        delta_color="off",
        delta_arrow="off",
        help="Total cost over the forecast, unmitigated minus optimised plan (all funding sources)",
        border=True,
    )
    p_opt = h.get("p_meet_safety_valve_optimised")
    p_un = h.get("p_meet_safety_valve_unmitigated")
    p = p_opt if p_opt is not None else p_un
    c4.metric(
        "Chance of meeting the trajectory",
        "n/a" if p is None else f"{p:.0%}",
        None if p_opt is None or p_un is None else f"unmitigated {p_un:.0%}",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="Share of Monte Carlo paths whose cumulative deficit is on or below the Safety "
        "Valve plan"
        + (f" at the end of financial year {final}" if final else "")
        + (", optimised plan" if p_opt is not None else ", unmitigated forecast"),
    )


def _county_totals(res: Results) -> pd.DataFrame | None:
    """Plans by year for the whole LA with the demand stage's own P10/P90 of the total (the same
    figures report.html charts); None where the stage reports none."""
    return reports._demand_totals(res.summary)


def demand_view(res: Results) -> None:
    dem = _table(res, "demand")
    if dem is None:
        _not_produced("demand")
        return
    totals = _county_totals(res)
    _chart(lambda: charts.ehcp_fan_chart(dem, totals=totals))
    flows = _table(res, "demand_flows")
    c1, c2 = st.columns(2)
    with c1:
        st.caption("Plans by January census year, all localities (P50 and P10-P90 of the total)")
        shown = totals if totals is not None else charts.plans_by_year(dem)
        st.dataframe(shown.round(0), hide_index=True, width="stretch")
    with c2:
        if flows is not None:
            cols = [c for c in flows.columns if c.endswith("_plans")]
            st.caption("Flows of plans by year, all localities (new, backlog, ceased, ageing)")
            st.dataframe(
                flows.groupby("year")[cols].sum().round(0).reset_index(),
                hide_index=True,
                width="stretch",
            )


def process_view(res: Results) -> None:
    """The statutory pipeline: KPIs by financial year, plans issued by month, open cases by age."""
    proc = _table(res, "process")
    if proc is None:
        st.info("This scenario has no `process` section: new plans come from the fixed rate.")
        return
    fy = proc[proc["period"] == "financial_year"].set_index("month")
    monthly = proc[proc["period"] == "month"].set_index("month")
    first = fy[fy["basis"] == "projected"].head(1)
    if not first.empty:
        row = first.iloc[0]
        c = st.columns(4)
        c[0].metric(f"Plans issued {row.name}", f"{row['plans_issued']:,.0f}")
        c[1].metric("Within 20 weeks", f"{row['share_within_20_weeks']:.0%}")
        c[2].metric("Assessments over 20 weeks (March)", f"{row['overdue_assessments']:,.0f}")
        c[3].metric("Overdue annual reviews (March)", f"{row['reviews_overdue']:,.0f}")
    st.caption(
        "Requests and plans issued a month (years up to the last published one are fitted to "
        "SEN2: in-sample)"
    )
    st.line_chart(monthly[["requests", "assessments_completed", "plans_issued"]])
    c1, c2 = st.columns(2)
    with c1:
        st.caption("Open cases by time since the request (end of month)")
        bands = [
            "open_under_6_weeks",
            "open_6_to_20_weeks",
            "open_20_to_52_weeks",
            "open_over_52_weeks",
        ]
        st.area_chart(monthly[bands])
    with c2:
        st.caption("Share of plans issued within 20 weeks, by financial year")
        cols = [
            c
            for c in (
                "share_within_20_weeks",
                "share_within_20_weeks_p10",
                "share_within_20_weeks_p90",
            )
            if c in fy.columns
        ]
        st.line_chart(fy[cols])
    st.caption("Annual reviews: due, held and overdue (end of month)")
    st.line_chart(
        monthly.loc[monthly["reviews_due"] > 0, ["reviews_due", "reviews_held", "reviews_overdue"]]
    )
    keep = [c for c in fy.columns if c not in ("period", "year", "financial_year")]
    with st.expander("Process by financial year"):
        st.dataframe(fy[keep].round(3), width="stretch")


def placements_view(res: Results) -> None:
    pl = _table(res, "placements")
    if pl is None:
        _not_produced("placements")
        return
    share = st.toggle("Show shares of placed children", key="mix_share")
    _chart(lambda: charts.placement_mix_chart(pl, share=share))


def finance_view(res: Results) -> None:
    fin = _table(res, "finance")
    if fin is None:
        _not_produced("finance")
        return
    _chart(lambda: charts.deficit_chart(fin))
    _chart(lambda: charts.balance_chart(fin))
    with st.expander("Finance table"):
        st.dataframe(fin, hide_index=True, width="stretch")


def sufficiency_view(res: Results) -> None:
    suf = _table(res, "sufficiency")
    if suf is None:
        _not_produced("sufficiency")
        return
    years = sorted(int(y) for y in suf["year"].unique())
    year = st.select_slider("January census year", years, value=years[-1], key="suff_year")
    c1, c2 = st.columns(2)
    with c1:
        _chart(lambda: charts.sufficiency_heatmap(suf, year, "gap_places"))
    with c2:
        _chart(lambda: charts.sufficiency_heatmap(suf, year, "shadow_price_gbp"))
    _chart(lambda: charts.sufficiency_chart(suf, year))


def builds_view(res: Results, resolved: ResolvedScenario) -> None:
    b = res.tables.get("builds")
    if b is None:
        _not_produced("builds")
        return
    if b.empty:
        st.info("The optimised plan builds no new places.")
    else:
        money = [c for c in b.columns if c.endswith("_gbp")]
        st.dataframe(
            b.round({c: 0 for c in money} | {"places": 1, "units": 2}),
            hide_index=True,
            width="stretch",
        )
        _chart(lambda: charts.build_plan_chart(b))
    locs = pd.DataFrame(
        [loc.model_dump() for loc in resolved.scenario.geography.localities],
        columns=["id", "name", "lat", "lon"],
    )
    _chart(lambda: charts.build_locality_map(b, locs))


# --------------------------------------------------------------------------- compare


def _pin_payload(res: Results, label: str) -> dict[str, Any]:
    """What a pinned scenario keeps: its summary and the small tables the comparison draws."""
    tables: dict[str, pd.DataFrame] = {}
    totals = _county_totals(res)
    if totals is not None:
        tables["demand_totals"] = totals
    for name, shrink in (
        ("demand", charts.plans_by_year),
        ("placements", charts.placement_mix),
        ("finance", None),
        ("costs", None),
        ("builds", None),
    ):
        df = res.tables.get(name)
        if df is None:
            continue
        try:
            tables[name] = shrink(df) if shrink is not None else df.copy()
        except charts.ChartDataError:
            continue
    return {"label": label, "summary": copy.deepcopy(res.summary), "tables": tables}


def _auto_label(name: str, edits: list[str], limit: int = 70) -> str:
    """A pin label from the scenario name and its lever edits (``growth=0.14, ...``)."""
    parts = []
    for line in edits:
        key, _, change = line.partition(": ")
        new = change.rpartition(" -> ")[2] if " -> " in change else change
        parts.append(f"{key.rsplit('.', 1)[-1]}={new}")
    label = f"{name}: {', '.join(parts)}" if parts else name
    return label if len(label) <= limit else label[: limit - 3] + "..."


def compare_view(res: Results, edits: list[str]) -> None:
    pins: list[dict[str, Any]] = st.session_state.setdefault("pins", [])
    c1, c2, c3 = st.columns([3, 1, 1])
    default = _auto_label(str(res.summary.get("scenario", "scenario")), edits)
    label = c1.text_input(
        "Label for the current scenario", key="pin_label", placeholder=default
    ).strip()
    if c2.button("Pin current scenario", key="pin", disabled=len(pins) >= MAX_PINS):
        used = {p["label"] for p in pins}
        base = label or default
        name, k = base, 2
        while name in used:
            name, k = f"{base} ({k})", k + 1
        pins.append(_pin_payload(res, name))
        st.rerun()
    if c3.button("Clear pins", key="unpin_all", disabled=not pins):
        pins.clear()
        st.rerun()
    if not pins:
        st.info(f"Pin up to {MAX_PINS} scenarios (levers set as you like) to compare them here.")
        return
    st.caption(f"{len(pins)} of {MAX_PINS} pinned")
    rows = []
    for p in pins:
        row = reports.comparison_row(p["summary"], p["tables"])
        row["slug"] = p["label"]
        rows.append(row)
    comp = pd.DataFrame(rows)
    figures = [c for c in reports.HEADLINE if c in comp.columns and comp[c].notna().any()]
    # Formatted as report.html formats headline figures (GBP in millions, shares as percentages).
    shown = pd.DataFrame(
        {
            p["label"]: [reports._display(row[c], reports.HEADLINE[c][1]) for c in figures]
            for p, row in zip(pins, rows, strict=True)
        },
        index=[reports.HEADLINE[c][0] for c in figures],
    )
    st.dataframe(shown, width="stretch")
    remove = st.selectbox("Remove a pin", ["(none)"] + [p["label"] for p in pins], key="unpin")
    if remove != "(none)":
        st.session_state["pins"] = [p for p in pins if p["label"] != remove]
        del st.session_state["unpin"]
        st.rerun()

    def stacked(name: str) -> pd.DataFrame | None:
        parts = [p["tables"][name].assign(scenario=p["label"]) for p in pins if name in p["tables"]]
        return pd.concat(parts, ignore_index=True) if parts else None

    _chart(lambda: charts.comparison_chart(comp))
    _chart(lambda: charts.ehcp_fan_chart(stacked("demand"), totals=stacked("demand_totals")))
    _chart(lambda: charts.deficit_chart(stacked("finance")))


# --------------------------------------------------------------------------- downloads


def _csv_zip(res: Results) -> bytes:
    """The CLI's output folder (tables, summary.json, scenario.resolved.yaml) as one zip."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_outputs(res, tmp, reports=False)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.iterdir()):
                zf.write(f, f"{folder.name}/{f.name}")
        return buf.getvalue()


def _xlsx(res: Results) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.xlsx"
        reports.write_xlsx(res, path)
        return path.read_bytes()


def downloads_view(res: Results, yaml_text: str, file_name: str) -> None:
    st.download_button(
        "Scenario YAML (run it with `sendplan run FILE`)",
        yaml_text,
        file_name=file_name,
        mime="application/x-yaml",
        key="dl_yaml",
        on_click="ignore",
    )
    st.download_button(
        "Tables as CSV (zip of the output folder)",
        lambda: _csv_zip(res),
        file_name=f"{res.resolved.slug}-tables.zip",
        mime="application/zip",
        key="dl_csv",
        on_click="ignore",
    )
    st.download_button(
        "report.xlsx",
        lambda: _xlsx(res),
        file_name=f"{res.resolved.slug}-report.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="dl_xlsx",
        on_click="ignore",
    )


def scenario_view(base: ResolvedScenario, edited: ResolvedScenario, yaml_text: str) -> None:
    edits = describe_edits(base.resolved, edited.resolved)
    if edits:
        st.markdown(f"**{len(edits)} edit(s) to {base.source}:**")
        st.code("\n".join(edits), language=None)
    else:
        st.markdown(f"No edits: this is {base.source} as it stands.")
    st.caption(f"sha256 of the resolved scenario: `{edited.sha256}`")
    with st.expander("The scenario as YAML (what the download contains)"):
        st.code(yaml_text, language="yaml")


# --------------------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(page_title="sendplan", layout="wide")
    base, name = choose_scenario()
    _reset_levers_on_new_base(base, name)
    lev = lever_panel(base)
    edited_map = apply_levers(base.resolved, base.scenario, lev)
    yaml_text = dump_yaml(edited_map)
    edits = describe_edits(base.resolved, edited_map)
    run_name = f"{Path(name).stem}-edited.yaml" if edits else name
    try:
        edited = _validate_edited(yaml_text, run_name)
    except ScenarioError as e:
        _show_problems(e, "The levers give an invalid scenario")
        st.stop()

    scn = edited.scenario
    st.title("sendplan")
    st.caption(
        f"{scn.meta.name} · base year {scn.meta.base_year} · projected to January "
        f"{scn.meta.base_year + scn.meta.horizon_years} · {scn.run.paths} Monte Carlo paths"
        + (f" · {len(edits)} lever edit(s)" if edits else "")
        + ". Illustrative model output, not official forecasts."
    )
    try:
        with st.spinner("Simulating EHCP demand..."):
            demand = _demand_stage(demand_key(edited.resolved), edited)
        with st.spinner("Placing children, solving the sufficiency LP and costing both plans..."):
            res = _run(edited.sha256, run_name, edited, demand)
    except ScenarioError as e:
        _show_problems(e, run_name)
        st.stop()
    except Exception as e:  # a failing run is reported in one line, never a traceback
        st.error(f"The run failed: {type(e).__name__}: {e}")
        st.stop()

    h = reports.headline_figures(res.summary, res.tables)
    st.session_state["headline"] = h
    st.session_state["scenario_yaml"] = yaml_text
    st.session_state["scenario_sha256"] = edited.sha256
    headline_cards(h)

    tabs = st.tabs(
        [
            "EHCP demand",
            "Statutory process",
            "Placement mix",
            "Deficit vs plan",
            "Sufficiency",
            "Build plan",
            "Compare",
            "Downloads",
            "Scenario",
        ]
    )
    with tabs[0]:
        demand_view(res)
    with tabs[1]:
        process_view(res)
    with tabs[2]:
        placements_view(res)
    with tabs[3]:
        finance_view(res)
    with tabs[4]:
        sufficiency_view(res)
    with tabs[5]:
        builds_view(res, edited)
    with tabs[6]:
        compare_view(res, edits)
    with tabs[7]:
        downloads_view(res, yaml_text, run_name)
    with tabs[8]:
        scenario_view(base, edited, yaml_text)


if __name__ == "__main__":  # streamlit (and AppTest) run the script as __main__; tests import it
    main()
