"""Streamlit front end for sendplan: a thin layer over model.io, model.engine and model.reports.

Run with ``streamlit run app.py`` (or ``make app``). Every lever edits the scenario mapping, which is
re-validated through model.io, so the YAML the app offers for download is exactly what it ran and
``sendplan run FILE`` reproduces the view. The levers are one form applied with one button; the
demand stage is cached on the sections it reads, so lever changes that do not touch demand re-run
only placements, the LP and finance. A lever whose whole-unit plan, rounded from the LP, is outside
the plan gap answers first with that plan (said so on the page) while branch and bound refines it
in the background; the page shows the refined plan by itself. Only the open view is
drawn. An unedited scenario's results are kept on disk for the next server's first load.

Environment variables (for quick starts and tests; users normally leave them unset):
SENDPLAN_APP_PATHS and SENDPLAN_APP_HORIZON set the initial Monte Carlo paths and horizon levers;
SENDPLAN_APP_CACHE the folder for kept results (default ~/.cache/sendplan/app).
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from model import charts, labels, reports
from model.alerts import warnings_of
from model.calibrate import growth_source
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
    growth_taper,
    levers_from,
    name_edits,
)
from model.montecarlo import PathCache
from model.refine import REFINEMENTS
from model.stages import listening
from model.sufficiency.solve import PROVISIONAL, WARM_NOTE
from model.sufficiency.warm import WarmStarts

ROOT = Path(__file__).resolve().parent
SCENARIO_DIR = ROOT / "scenarios"
MAX_PINS = 4
LEVER_PREFIX = "lv_"
PATH_CHOICES = (1, 20, 50, 100, 200, 500, 1000, 2000)
SOURCES = ("Devon default (embedded)", "A file in scenarios/", "Upload a YAML file")
# Results of unedited scenarios kept between servers, so a restart's first load is quick.
APP_CACHE = Path(
    os.environ.get("SENDPLAN_APP_CACHE") or Path.home() / ".cache" / "sendplan" / "app"
)


# --------------------------------------------------------------------------- loading and running


@st.cache_resource(max_entries=16, show_spinner=False)
def _load_base(kind: str, ref: str, text: str | None, stamp: float) -> ResolvedScenario:
    """The chosen scenario, validated (``stamp``, a file's mtime, refreshes the cache on edits)."""
    if kind == "embedded":
        return load_scenario(None)
    if kind == "file":
        return load_scenario(str(SCENARIO_DIR / ref))
    return load_scenario_text(text or "", ref, scenario_dir=SCENARIO_DIR)


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


RUNS_KEPT = 4  # runs kept in memory across sessions (a run holds about 70 MB)


@st.cache_resource(show_spinner=False)
def _path_cache() -> PathCache:
    """The server's kept placement demand of one demand stage's Monte Carlo paths (240 MB for
    Devon at 200 paths; never above montecarlo.AHEAD_BYTES): a lever that keeps demand re-uses it
    instead of computing it again."""
    return PathCache()


@st.cache_resource(show_spinner=False)
def _run_store() -> dict[str, Any]:
    """The server's kept runs, most recent last, and the lock that guards them."""
    return {"lock": threading.Lock(), "runs": OrderedDict()}


FIRST = "|first"  # a run store key's suffix for a lever's first answer (branch and bound deferred)


def _kept(key: str, warm: WarmStarts | None) -> Results | None:
    """The kept run for ``key``: refined if it is, else its first answer; its bases go to
    ``warm`` (the next lever changes that run)."""
    store = _run_store()
    with store["lock"]:
        for k in (key, key + FIRST):
            kept = store["runs"].get(k)
            if kept is not None:
                store["runs"].move_to_end(k)
                if warm is not None:
                    warm.adopt(kept[1])
                return kept[0]
    return None


def _keep(key: str, res: Results, bases: dict[str, Any], store: dict[str, Any]) -> None:
    """Keep a run (and its LP bases) under ``key`` in ``store`` (``_run_store``'s), dropping the
    oldest beyond RUNS_KEPT."""
    with store["lock"]:
        store["runs"][key] = (res, bases)
        store["runs"].move_to_end(key)
        while len(store["runs"]) > RUNS_KEPT:
            store["runs"].popitem(last=False)


def provisional(res: Results) -> bool:
    """The run is a lever's first answer: its whole-unit plan rounded, branch and bound deferred."""
    return (res.summary.get("optimisation") or {}).get("status") == PROVISIONAL


def _refine(key: str, resolved: ResolvedScenario, demand: Any, warm: WarmStarts | None) -> None:
    """Queue the run with branch and bound that refines ``key``'s first answer (REFINEMENTS), from
    a copy of that answer's LP bases: its relaxation and rounding start where they ended."""
    bases = warm.snapshot() if warm is not None else {}
    # the server's objects, taken here: the worker thread is outside any script run
    store, cache = _run_store(), _path_cache()

    def refine() -> None:
        own = WarmStarts()
        own.adopt(bases)
        # (the robustness check, which no view shows, waits for a download: complete_robustness)
        res = run_scenario(resolved, demand=demand, warm=own, path_cache=cache, robustness=False)
        _keep(key, res, own.snapshot(), store)
        with store["lock"]:
            store["runs"].pop(key + FIRST, None)

    REFINEMENTS.submit(key, refine)


def _run(
    sha: str,
    name: str,
    resolved: ResolvedScenario,
    demand: Any,
    persist: bool = False,
    progress: Callable[[str], None] | None = None,
    warm: WarmStarts | None = None,
) -> Results:
    """Placements, the LP, costs and finance for one resolved scenario (kept by its sha256 and
    file name) on the cached demand stage; the same run_scenario the CLI calls. ``persist``
    keeps the tables on disk for the next server; ``progress`` hears each stage and solver step;
    ``warm`` holds this session's last LP bases.

    A lever's run (not ``persist``) answers first without branch and bound: where the rounded
    plan is outside policy.mip_gap that answer is provisional and a run with branch and bound
    refines it in the background (``_refine``); the page shows the refined run once it is kept.
    It also leaves the robustness check (summary.json only) to the downloads. An unedited
    scenario runs whole, as the CLI runs it.

    Kept in ``_run_store`` rather than by st.cache_resource: a cached function's elements are
    replayed on later calls, which a progress line drawn outside it cannot be."""
    key = f"{sha}|{name}"
    kept = _kept(key, warm)
    if kept is not None:
        if provisional(kept) and REFINEMENTS.get(key) is None:  # cancelled when the user left it
            _refine(key, resolved, demand, warm)
        return kept
    with listening(progress):
        # a scenario as written (persisted for the next server) is solved from scratch, as the CLI
        # solves it; a lever's run starts from the last run's bases where only places or limits
        # changed (decision 0004), and every run leaves its bases for the next
        if warm is not None and persist:
            warm = warm.recording_only()
        # a lever's answer leaves out the robustness check, which no view shows: the downloads
        # run it (write_outputs: engine.complete_robustness)
        res = run_scenario(
            resolved,
            demand=demand,
            warm=warm,
            path_cache=_path_cache(),
            branch_and_bound=persist,
            robustness=persist,
        )
    if persist:
        _to_disk(res, warm)
    first = provisional(res)
    bases = warm.snapshot() if warm is not None else {}
    _keep(key + FIRST if first else key, res, bases, _run_store())
    if first:
        _refine(key, resolved, demand, warm)
    return res


def _code_fingerprint() -> str:
    """sha256 of the package's code and data: results cached on disk are only reused by the code
    that made them."""
    import hashlib

    import model

    h = hashlib.sha256()
    root = Path(model.__file__).parent
    for f in sorted(root.rglob("*")):
        if (
            f.is_file()
            and f.suffix in (".py", ".yaml", ".csv", ".gz")
            and "__pycache__" not in f.parts
        ):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _disk_folder(sha: str) -> Path:
    return APP_CACHE / f"{sha[:24]}-{_code_fingerprint()}"


@st.cache_resource(max_entries=4, show_spinner=False)
def _from_disk(sha: str, _resolved: ResolvedScenario) -> Results | None:
    """An unedited scenario's results as an earlier server wrote them (tables as Parquet,
    summary.json), if the same code made them for the same resolved scenario; else None."""
    import json

    folder = _disk_folder(sha) / _resolved.slug
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        tables = {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}
    except (OSError, ValueError, ImportError):
        return None
    if summary.get("scenario_sha256") != sha or not tables:
        return None
    mps = folder / "model.mps"
    return Results(
        resolved=_resolved,
        tables=tables,
        summary=summary,
        mps_text=mps.read_text(encoding="utf-8") if mps.exists() else None,
    )


BASES_FILE = "lp_bases.pkl"  # beside a cached run: its LP bases, for the next server's levers


def _bases_path(resolved: ResolvedScenario) -> Path:
    """Where a cached run of ``resolved`` keeps its LP bases (beside its tables)."""
    return _disk_folder(resolved.sha256) / resolved.slug / BASES_FILE


def _lp_warm(opt: dict[str, Any]) -> bool:
    """The run's LP started from the last run's basis (summary.json's optimisation notes say so)."""
    return WARM_NOTE in (opt.get("notes") or [])


def _to_disk(res: Results, warm: WarmStarts | None = None) -> None:
    """Keep a run's tables (and its LP bases) for the next server start (best effort: a cache
    never fails a run)."""
    try:
        APP_CACHE.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_outputs(res, _disk_folder(res.resolved.sha256), fmt="parquet", reports=False)
        if warm is not None:
            warm.save(_bases_path(res.resolved))
    except Exception:  # a read-only home, a full disk: the app works without the cache
        pass


REFINE_POLL_SECONDS = 1.0  # how often a first answer's page looks for its refined run


@st.fragment(run_every=REFINE_POLL_SECONDS)
def refinement_notice(key: str) -> None:
    """Say the plan shown is a first answer being refined, and redraw the page once it is."""
    future = REFINEMENTS.get(key)
    if future is None or (future.done() and not future.cancelled() and not future.exception()):
        st.rerun()  # refined (the run store has it), or cancelled elsewhere (_run queues it again)
    if future.done():
        why = "cancelled" if future.cancelled() else f"{type(future.exception()).__name__}"
        st.warning(
            f"The build plan could not be refined ({why}): the first answer below stands, "
            "rounded from the LP without branch and bound."
        )
        return
    st.info(
        "**First answer.** The whole-unit build plan shown is rounded from the LP, short of the "
        "plan gap asked for (the warning below says how far). Branch and bound is refining it "
        "in the background; this page shows the refined plan by itself when it is ready."
    )


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
            st.info("No scenario files in scenarios/.")
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
            "only embedded:devon or a file in scenarios/)",
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


def lever_defaults(scn: Any) -> dict[str, Any]:
    """Every lever widget's starting value for ``scn``, by widget key (the scenario's own values;
    SENDPLAN_APP_PATHS / SENDPLAN_APP_HORIZON override the run levers' start)."""
    now = levers_from(scn)
    first = scn.meta.base_year + 1
    out: dict[str, Any] = {
        "growth": round(now.growth * 100, 2),
        "requests": float(now.requests_per_1000),
        "cap_on": now.max_independent_share is not None,
        "cap": round(
            (now.max_independent_share if now.max_independent_share is not None else 0.1) * 100, 1
        ),
        "plan_for": float(now.plan_for),
        "mip_gap": float(now.mip_gap),
        "inflation": round(now.inflation * 100, 2),
    }
    for y, p in sorted((dict(now.backlog) or {first: 0.0}).items()):
        out[f"backlog_{y}"] = float(p)
    if RESOURCE_BASE in scn.settings:
        for loc in scn.geography.localities:
            out[f"rb_places_{loc.id}"] = 0.0
            out[f"rb_year_{loc.id}"] = first
    for name in delayable_projects(scn):
        out[f"delay_{name}"] = int(now.delays.get(name, 0))
    for s, v in now.unit_cost_gbp.items():
        out[f"cost_{s}"] = float(v)
    if scn.process is not None:
        out.update(_process_starts(scn, now))
    env_paths, env_horizon = _env_int("SENDPLAN_APP_PATHS"), _env_int("SENDPLAN_APP_HORIZON")
    out["paths"] = env_paths if env_paths and env_paths >= 1 else now.paths
    out["horizon"] = env_horizon if env_horizon and 1 <= env_horizon <= 30 else now.horizon_years
    return {f"{LEVER_PREFIX}{k}": v for k, v in out.items()}


def _reset_levers_on_new_base(base: ResolvedScenario, name: str) -> None:
    """Widgets show the chosen scenario's values: when the base changes, every lever is set to the
    new scenario's value through the Session State API, which also updates the browser's copy (a
    widget merely recreated would keep, and on the next touch resend, the old scenario's value)."""
    # A new source counts as a new base even with the same text (scenarios/devon.yaml is a copy
    # of the embedded default): the user chose another starting point.
    ident = f"{st.session_state.get('source', SOURCES[0])}:{name}:{base.sha256}"
    defaults = lever_defaults(base.scenario)
    if st.session_state.get("_lever_base") != ident:
        for k in [k for k in st.session_state if str(k).startswith(LEVER_PREFIX)]:
            del st.session_state[k]
        st.session_state["_lever_base"] = ident
    for k, v in defaults.items():
        if k not in st.session_state:
            st.session_state[k] = v


def lever_panel(base: ResolvedScenario) -> Levers:
    """The sidebar levers, in a form applied with one button (so no slider step queues a run);
    every widget takes its value from session state, set from the base scenario."""
    scn = base.scenario
    now = levers_from(scn)
    lev = levers_from(scn)
    first, last = scn.meta.base_year + 1, scn.meta.base_year + scn.meta.horizon_years
    k = LEVER_PREFIX
    sb = st.sidebar
    sb.header("Levers")
    form = sb.form("levers", border=False)
    form.form_submit_button("Apply", type="primary", width="stretch", key="apply")
    form.caption("Changes take effect when you press Apply.")

    with form.expander("EHCP demand", expanded=True):
        lo, hi = min(-10.0, now.growth * 100), max(30.0, now.growth * 100)
        persistence, long_run = growth_taper(scn)
        taper = (
            "and stays there"
            if persistence >= 1
            else f"then tapers towards {long_run:.1%} a year, keeping {persistence:.0%} of the "
            "growth above that each year (demand.growth_persistence, demand.growth_long_run)"
        )
        lev.growth = (
            st.slider(
                "EHCP growth, first year (new-plan rate, % a year)",
                lo,
                hi,
                step=0.5,
                key=f"{k}growth",
                help="demand.growth: growth of the new-plan rate per head in the first year after "
                f"the base year; it {taper}. The start is "
                + (
                    "learned from all LAs' SEN2 returns"
                    if growth_source(scn) == "pooled"
                    else "the scenario's"
                )
                + "; moving the lever moves that start, and the taper stays.",
            )
            / 100
        )
        lev.requests_per_1000 = st.number_input(
            "Assessment requests per 1,000 aged 0-25",
            min_value=0.0,
            step=0.1,
            format="%.2f",
            key=f"{k}requests",
            help="demand.requests_per_1000: EHC needs assessment requests a year per 1,000 residents",
        )
        backlog = dict(now.backlog) or {first: 0.0}
        lev.backlog = {
            y: st.number_input(
                f"Backlog clearance: extra plans in {y}",
                min_value=0.0,
                step=50.0,
                format="%.0f",
                key=f"{k}backlog_{y}",
                help="demand.backlog: one-off extra plans from clearing the assessment backlog",
            )
            for y in sorted(backlog)
        }

    if scn.process is not None:
        with form.expander("Statutory process"):
            _process_levers(scn, now, lev, first, last)

    if RESOURCE_BASE in scn.settings:
        with form.expander(f"Extra {scn.settings[RESOURCE_BASE].name} places"):
            st.caption(
                "Committed places added to the pipeline, by locality and the January they open. "
                "The optimiser may still build more."
            )
            years = list(range(first, last + 1))
            extra = []
            for loc in scn.geography.localities:
                c1, c2 = st.columns([3, 2])
                places = c1.number_input(
                    f"{loc.name}: places",
                    min_value=0.0,
                    step=float(scn.costs.build_unit_places.get(RESOURCE_BASE, 12) or 12),
                    format="%.0f",
                    key=f"{k}rb_places_{loc.id}",
                )
                if st.session_state.get(f"{k}rb_year_{loc.id}") not in years:
                    st.session_state[f"{k}rb_year_{loc.id}"] = first
                year = c2.selectbox("opening", years, key=f"{k}rb_year_{loc.id}")
                extra.append(ExtraPlaces(loc.id, int(year), float(places)))
            lev.extra_places = extra

    projects = delayable_projects(scn)
    if projects:
        with form.expander("Special schools in the pipeline"):
            opens = {p.name: p.open_year for p in scn.capacity.pipeline}
            for name in projects:
                lev.delays[name] = int(
                    st.number_input(
                        f"{name}: delay (years)",
                        min_value=0,
                        max_value=30,
                        step=1,
                        key=f"{k}delay_{name}",
                        help=f"Planned to open in January {opens[name]} before this delay",
                    )
                )

    with form.expander("Policy"):
        cap_on = st.checkbox("Cap the independent share", key=f"{k}cap_on")
        share = st.slider(
            "Most placed children in independent settings (%), if capped",
            0.0,
            50.0,
            step=0.5,
            key=f"{k}cap",
            help="The cap applies each year to the optimised plan",
        )
        lev.max_independent_share = share / 100 if cap_on else None
        quantiles = sorted({0.5, 0.75, 0.9, float(now.plan_for)})
        lev.plan_for = st.select_slider(
            "Plan new places for demand at",
            options=quantiles,
            format_func=lambda q: f"P{round(q * 100):d}",
            key=f"{k}plan_for",
            help="The Monte Carlo quantile of demand the build plan must serve "
            "(P50 = central forecast; P90 = build for the high case)",
        )
        lev.mip_gap = st.select_slider(
            "Whole-unit build plan within",
            options=sorted({0.005, 0.01, 0.02, 0.05, float(now.mip_gap)}),
            format_func=lambda g: f"{g:.1%} of the cheapest possible",
            key=f"{k}mip_gap",
            help="How much more than the best bound (the cheapest any plan could cost) the plan "
            "rounded to whole units may cost before branch and bound searches for a better one. "
            "A looser gap answers sooner where branch and bound would run (e.g. under a tight "
            "cap); the gap reached is shown with the Build plan",
        )

    with form.expander("Costs"):
        lev.inflation = (
            st.slider(
                "Unit-cost inflation (% a year)",
                min(-5.0, now.inflation * 100),
                max(15.0, now.inflation * 100),
                step=0.25,
                key=f"{k}inflation",
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
                step=500.0,
                format="%.0f",
                key=f"{k}cost_{s}",
            )
            for s in now.unit_cost_gbp
        }

    with form.expander("Run"):
        choices = sorted({*PATH_CHOICES, now.paths, int(st.session_state[f"{k}paths"])})
        lev.paths = int(
            st.select_slider(
                "Monte Carlo paths",
                choices,
                key=f"{k}paths",
                help="More paths give smoother P10/P90 bands and take longer",
            )
        )
        lev.horizon_years = int(st.slider("Years projected", 1, 30, key=f"{k}horizon"))
    return lev


def _process_months(scn: Any) -> list[str]:
    """The months the process levers offer: the base year's January to the horizon's December."""
    first, last = scn.meta.base_year + 1, scn.meta.base_year + scn.meta.horizon_years
    return [f"{y}-{m:02d}" for y in range(first - 1, last) for m in range(1, 13)]


def _process_starts(scn: Any, now: Levers) -> dict[str, Any]:
    """The process levers' starting values (by widget key without the prefix): the scenario's own
    first FTE change, clearance, requests change and refusal target, else neutral values."""
    pr = scn.process
    first, last = scn.meta.base_year + 1, scn.meta.base_year + scn.meta.horizon_years
    months = _process_months(scn)
    out: dict[str, Any] = {}
    for key, team, current in (
        ("pr_assess", pr.assessment, now.assessment_fte_by_month),
        ("pr_review", pr.reviews.team, now.review_fte_by_month),
    ):
        month, fte = next(iter(current.items()), (months[12], float(team.fte)))
        out[f"{key}_fte"] = float(fte)
        out[f"{key}_month"] = month if month in months else months[12]
    cases, _, by = now.clearance[0] if now.clearance else (0.0, months[12], months[17])
    out["pr_clear"], out["pr_clear_by"] = float(cases), by if by in months else months[17]
    factor, year, _ = now.requests_changes[0] if now.requests_changes else (1.0, first + 1, 0)
    out["pr_req"] = round((factor - 1.0) * 100, 1)
    out["pr_req_year"] = max(first, min(last, int(year)))
    t_year, target = next(iter(now.refusal_targets.items()), (first + 1, float(pr.refusal_share)))
    out["pr_refusal"] = round(target * 100, 1)
    out["pr_refusal_year"] = max(first, min(last, int(t_year)))
    return out


def _process_levers(scn: Any, now: Levers, lev: Levers, first: int, last: int) -> None:
    """Caseworker and review FTE from a month, a backlog-clearance plan, requests, refusals (inside
    the levers' form: applied with the others; their starting values come from lever_defaults)."""
    months = _process_months(scn)
    start = _process_starts(scn, now)
    k = LEVER_PREFIX
    years = list(range(first, last + 1))
    st.caption(
        "process: requests -> decision to assess -> assessment -> plan issued, by month; plans "
        "issued join the next January count."
    )

    def fte_from(
        label: str, current: dict[str, float], key: str, help_key: str
    ) -> dict[str, float]:
        """FTE from a month on: unchanged widgets keep the scenario's own table."""
        c1, c2 = st.columns([3, 2])
        fte = c1.number_input(
            f"{label} FTE", min_value=0.0, step=1.0, format="%.1f", key=f"{k}{key}_fte"
        )
        month = c2.selectbox("from", months, key=f"{k}{key}_month", help=help_key)
        if (month, float(fte)) == (start[f"{key}_month"], start[f"{key}_fte"]):
            return dict(current)
        return {**current, month: float(fte)}

    lev.assessment_fte_by_month = fte_from(
        "Assessment caseworker",
        now.assessment_fte_by_month,
        "pr_assess",
        "process.assessment.fte_by_month",
    )
    lev.review_fte_by_month = fte_from(
        "Annual review", now.review_fte_by_month, "pr_review", "process.reviews.team.fte_by_month"
    )
    c1, c2 = st.columns([3, 2])
    cases = c1.number_input(
        "Backlog clearance: extra cases",
        min_value=0.0,
        step=50.0,
        format="%.0f",
        key=f"{k}pr_clear",
        help="process.backlog_clearance: clear N cases by month M",
    )
    by = c2.selectbox("by", months, key=f"{k}pr_clear_by")
    lev.clearance = [(float(cases), months[12], by)] if cases > 0 else []
    if now.clearance and cases == start["pr_clear"] and by == start["pr_clear_by"]:
        lev.clearance = list(now.clearance)
    c1, c2 = st.columns([3, 2])
    change = c1.slider(
        "Change in requests (%)",
        -50.0,
        50.0,
        step=1.0,
        key=f"{k}pr_req",
        help="process.requests_changes: e.g. early help or ordinarily available provision",
    )
    year = c2.selectbox("from", years, key=f"{k}pr_req_year")
    ramp = now.requests_changes[0][2] if now.requests_changes else 0
    lev.requests_changes = [(1.0 + change / 100.0, int(year), int(ramp))] if change else []
    if now.requests_changes and change == start["pr_req"] and year == start["pr_req_year"]:
        lev.requests_changes = list(now.requests_changes)
    c1, c2 = st.columns([3, 2])
    target = c1.slider(
        "Refusal-rate target (% of decisions)",
        0.0,
        90.0,
        step=0.5,
        key=f"{k}pr_refusal",
        help="process.refusal_targets",
    )
    t_year = c2.selectbox("from", years, key=f"{k}pr_refusal_year")
    lev.refusal_targets = dict(now.refusal_targets)
    moved = abs(target - start["pr_refusal"]) > 1e-9  # the slider shows one decimal
    if moved or (now.refusal_targets and t_year != start["pr_refusal_year"]):
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


def run_warnings(res: Results) -> None:
    """What the run found that a reader must not miss: limits breached, unmet places, ... (the
    same list the CLI prints and the reports show), each with its size and years."""
    for w in warnings_of(res.summary):
        st.warning(w.message, icon="⚠️")


def _gbp_m(v: float | None) -> str:
    return "n/a" if v is None else f"£{v / 1e6:,.1f}m"


def card_figures(res: Results, h: dict[str, Any] | None = None) -> dict[str, Any]:
    """The headline cards' figures, all on one basis and the deficit and its gap at one date
    (``h``: the run's ``reports.headline_figures``, when the caller has them).

    Basis: the P50 across Monte Carlo paths when the run has more than one path, else the
    deterministic forecast, for plans and money alike. Date: the deficit, its gap to the Safety
    Valve plan and the chance of meeting the plan are all at 31 March of the plan's last financial
    year within the forecast (the forecast's last year where there is no plan).
    """
    h = reports.headline_figures(res.summary, res.tables) if h is None else h
    paths = int(res.summary.get("paths") or 1)
    fin = res.tables.get("finance")
    q = "_p50" if paths > 1 and fin is not None and "cumulative_deficit_gbp_p50" in fin else ""
    basis = f"P50 of {paths:,} paths" if paths > 1 else "deterministic"
    out: dict[str, Any] = {
        "basis": basis,
        "tag": "P50" if paths > 1 else "1 path",  # the basis in a card's label
        "plans": h.get("plans_horizon"),
        "plans_base": h.get("plans_base"),
        "plans_p10": h.get("plans_horizon_p10"),
        "plans_p90": h.get("plans_horizon_p90"),
        "horizon_year": h.get("horizon_year"),
        "base_year": h.get("base_year"),
        "saving_gbp": h.get("saving_gbp"),
        "places_built": h.get("places_built"),
        "capital_cost_gbp": h.get("capital_cost_gbp"),
        "fy": None,
        "variant": None,
    }
    if fin is None or fin.empty or "cumulative_deficit_gbp" not in fin:
        return out
    variant = "optimised" if (fin["variant"] == "optimised").any() else "unmitigated"
    out["variant"] = variant
    rows = fin[fin["variant"] == variant].set_index("financial_year").sort_index()
    plan = rows.get("plan_cumulative_deficit_gbp")
    planned = plan.dropna() if plan is not None else pd.Series(dtype=float)
    fy = int(planned.index.max()) if not planned.empty else int(rows.index.max())
    out["fy"] = fy
    out["deficit_gbp"] = float(rows.loc[fy, f"cumulative_deficit_gbp{q}"])
    out["plan_gbp"] = float(planned.loc[fy]) if fy in planned.index else None
    out["gap_gbp"] = None if out["plan_gbp"] is None else out["deficit_gbp"] - out["plan_gbp"]
    if "prob_meet_plan" in rows and pd.notna(rows.loc[fy, "prob_meet_plan"]):
        out["p_meet"] = float(rows.loc[fy, "prob_meet_plan"])
        un = fin[(fin["variant"] == "unmitigated") & (fin["financial_year"] == fy)]
        if variant == "optimised" and not un.empty and pd.notna(un["prob_meet_plan"].iloc[0]):
            out["p_meet_unmitigated"] = float(un["prob_meet_plan"].iloc[0])
    return out


def headline_cards(c: dict[str, Any]) -> None:
    """Four cards answering the first questions: plans, deficit vs plan, saving, chance of the
    plan; each says its basis (P50 or deterministic) and its date."""
    c1, c2, c3, c4 = st.columns(4)
    basis, tag = c["basis"], c["tag"]
    plans, base = c.get("plans"), c.get("plans_base")
    band = f"Plans counted in January {c.get('horizon_year')}, {basis}."
    if c.get("plans_p10") is not None and c.get("plans_p90") is not None:
        band += f" P10-P90 {c['plans_p10']:,.0f} to {c['plans_p90']:,.0f}."
    c1.metric(
        f"EHCPs, January {c.get('horizon_year') or ''} ({tag})",
        "n/a" if plans is None else f"{plans:,.0f}",
        None
        if plans is None or base is None
        else f"{plans - base:+,.0f} since January {c.get('base_year')}",
        delta_color="off",
        help=band,
        border=True,
    )
    fy, gap = c.get("fy"), c.get("gap_gbp")
    variant = labels.VARIANT_LABELS.get(c.get("variant") or "", "")
    c2.metric(
        f"DSG deficit, March {fy + 1 if fy else ''} ({tag})",
        _gbp_m(c.get("deficit_gbp")),
        None
        if gap is None
        else f"{'-' if gap < 0 else '+'}{_gbp_m(abs(gap))} vs plan, March {fy + 1}",
        delta_color="inverse",
        help=f"DSG deficit at 31 March {fy + 1 if fy else ''} ({variant}, {basis}) and its gap "
        f"to the Safety Valve plan on the same date (plan {_gbp_m(c.get('plan_gbp'))}); "
        "positive = above plan. The date is the plan's last year within the forecast.",
        border=True,
    )
    built = c.get("places_built")
    c3.metric(
        "Saving (central forecast)",
        _gbp_m(c.get("saving_gbp")),
        None
        if built is None
        else f"{built:,.0f} new places, capital {_gbp_m(c.get('capital_cost_gbp'))}",
        delta_color="off",
        delta_arrow="off",
        help="Total cost over the forecast, unmitigated minus optimised plan (all funding "
        "sources), on the central forecast the plan is costed on",
        border=True,
    )
    p, p_un = c.get("p_meet"), c.get("p_meet_unmitigated")
    c4.metric(
        f"On plan by March {fy + 1 if fy else ''}",
        "n/a" if p is None else f"{p:.0%}",
        None if p is None or p_un is None else f"unmitigated {p_un:.0%}",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="Chance of meeting the Safety Valve plan: the share of Monte Carlo paths whose "
        f"cumulative deficit is on or below the plan at 31 March {fy + 1 if fy else ''} "
        f"({variant}); n/a with one path",
    )
    when = f"31 March {fy + 1}, the end of the Safety Valve plan within the forecast" if fy else ""
    st.caption(
        "Cards: "
        + (
            f"the {basis.replace('paths', 'Monte Carlo paths')}"
            if tag == "P50"
            else "the deterministic forecast (one path)"
        )
        + (
            f"; the deficit, its gap to the plan and the chance of meeting it at {when}"
            if when
            else ""
        )
        + "; the saving of the optimised plan is the central forecast's (as costs.csv)."
    )


def _county_totals(res: Results) -> pd.DataFrame | None:
    """Plans by year for the whole LA with the demand stage's own P10/P90 of the total (the same
    figures report.html charts); None where the stage reports none."""
    return reports._demand_totals(res.summary)


def _names(res: Results) -> labels.Labels:
    """Display names of the run's localities and settings (the scenario's own)."""
    return labels.Labels.from_scenario(res.resolved.scenario)


def show_table(df: pd.DataFrame, names: labels.Labels, caption: str | None = None) -> None:
    """A table for people: display names, labelled columns, £ and thousands separators."""
    if caption:
        st.caption(caption)
    st.dataframe(names.styled(df), hide_index=True, width="stretch")


def demand_view(res: Results) -> None:
    dem = _table(res, "demand")
    if dem is None:
        _not_produced("demand")
        return
    names = _names(res)
    totals = _county_totals(res)
    _chart(lambda: charts.ehcp_fan_chart(dem, totals=totals))
    flows = _table(res, "demand_flows")
    c1, c2 = st.columns(2)
    with c1:
        shown = totals if totals is not None else charts.plans_by_year(dem)
        show_table(
            shown,
            names,
            "Plans by January census year, all localities (P50 and P10-P90 of the total)",
        )
    with c2:
        if flows is not None:
            cols = [c for c in flows.columns if c.endswith("_plans")]
            show_table(
                flows.groupby("year")[cols].sum().reset_index(),
                names,
                "Flows of plans by year, all localities (deterministic)",
            )


def process_view(res: Results) -> None:
    """The statutory pipeline: KPIs by financial year, plans issued by month, open cases by age."""
    proc = _table(res, "process")
    if proc is None:
        st.info("This scenario has no `process` section: new plans come from the fixed rate.")
        return
    names = _names(res)

    def labelled(df: pd.DataFrame) -> pd.DataFrame:
        # charts for people: labelled series, never raw column names
        return df.rename(columns=labels.column_label)

    fy = proc[proc["period"] == "financial_year"].set_index("month")
    monthly = proc[proc["period"] == "month"].set_index("month")
    first = fy[fy["basis"] == "projected"].head(1)
    if not first.empty:
        row = first.iloc[0]
        march = f"March {int(str(row.name)[:4]) + 1}"  # the end of financial year 2025-26
        st.caption(
            f"The first projected financial year, {row.name} (central forecast; the charts "
            "below run to the horizon)"
        )
        c = st.columns(4)
        c[0].metric(f"Plans issued {row.name}", f"{row['plans_issued']:,.0f}")
        c[1].metric(f"Issued within 20 weeks, {row.name}", f"{row['share_within_20_weeks']:.0%}")
        c[2].metric(f"Assessments over 20 weeks, {march}", f"{row['overdue_assessments']:,.0f}")
        c[3].metric(f"Overdue annual reviews, {march}", f"{row['reviews_overdue']:,.0f}")
    st.caption(
        "Requests and plans issued a month (years up to the last published one are fitted to "
        "SEN2: in-sample)"
    )
    st.line_chart(labelled(monthly[["requests", "assessments_completed", "plans_issued"]]))
    # full width: beside each other, Streamlit's legends are cut off
    st.caption("Open cases by time since the request (end of month)")
    bands = [
        "open_under_6_weeks",
        "open_6_to_20_weeks",
        "open_20_to_52_weeks",
        "open_over_52_weeks",
    ]
    # numbered, so the legend (which Streamlit sorts by name) runs from the youngest cases
    ages = {b: f"{i + 1}. {labels.column_label(b)}" for i, b in enumerate(bands)}
    st.area_chart(monthly[bands].rename(columns=ages))
    st.caption(
        "Plans issued within 20 weeks, % by financial year (central forecast; P10 and P90 "
        "of the paths where paths > 1). The teams' FTE follow the central forecast's requests: "
        "in a path whose requests outgrow them, cases wait longer for a decision every month "
        "and then every plan is late, so the P10 can fall to 0%."
    )
    cols = [
        c
        for c in (
            "share_within_20_weeks",
            "share_within_20_weeks_p10",
            "share_within_20_weeks_p90",
        )
        if c in fy.columns
    ]
    # the central line dark, the band's edges light: neither hides the other
    shades = {"share_within_20_weeks": "#1f4e79"}
    st.line_chart(
        labelled(fy[cols] * 100),
        y_label="%",
        color=[shades.get(c, "#8fb8de") for c in cols],
    )
    st.caption("Annual reviews: due, held and overdue (end of month)")
    st.line_chart(
        labelled(
            monthly.loc[
                monthly["reviews_due"] > 0, ["reviews_due", "reviews_held", "reviews_overdue"]
            ]
        )
    )
    keep = [c for c in fy.columns if c not in ("period", "year", "financial_year")]
    with st.expander("Process by financial year"):
        table = fy[keep].rename_axis("financial_year").reset_index()
        show_table(table, names)


def placements_view(res: Results) -> None:
    pl = _table(res, "placements")
    if pl is None:
        _not_produced("placements")
        return
    share = st.toggle("Show shares of placed children", key="mix_share")
    _chart(lambda: charts.placement_mix_chart(pl, share=share, labels=_names(res)))


# the workbook's Finance sheet, less the year code its label already says
FINANCE_COLUMNS = tuple(c for c in reports.FINANCE_SHEET_COLUMNS if c != "financial_year")


def finance_view(res: Results) -> None:
    fin = _table(res, "finance")
    if fin is None:
        _not_produced("finance")
        return
    _chart(lambda: charts.deficit_chart(fin))
    _chart(lambda: charts.balance_chart(fin))
    with st.expander("Finance table (the main columns; all of them are in the CSV download)"):
        show_table(fin[[c for c in FINANCE_COLUMNS if c in fin.columns]], _names(res))


def sufficiency_view(res: Results) -> None:
    suf = _table(res, "sufficiency")
    if suf is None:
        _not_produced("sufficiency")
        return
    names = _names(res)
    years = sorted(int(y) for y in suf["year"].unique())
    year = st.select_slider("January census year", years, value=years[-1], key="suff_year")
    c1, c2 = st.columns(2)
    with c1:
        _chart(lambda: charts.sufficiency_heatmap(suf, year, "gap_places", labels=names))
    with c2:
        _chart(lambda: charts.sufficiency_heatmap(suf, year, "shadow_price_gbp", labels=names))
    _chart(lambda: charts.sufficiency_chart(suf, year, labels=names))


def builds_view(res: Results, resolved: ResolvedScenario) -> None:
    b = res.tables.get("builds")
    if b is None:
        _not_produced("builds")
        return
    opt = res.summary.get("optimisation") or {}
    if opt.get("integer_builds") and opt.get("mip_gap") is not None:
        st.caption(
            f"Whole units; the plan costs at most {opt['mip_gap']:.2%} more than the cheapest "
            f"possible (target {opt.get('mip_gap_target', 0):.2%}; solver {opt.get('solver')}: "
            f"{opt.get('status')}, {opt.get('solve_seconds', 0):.1f} s)."
            + (
                " Solved from the last run's basis: where several plans are optimal to the LP, "
                "`sendplan run` on this scenario may give another within the same gap."
                if _lp_warm(opt)
                else ""
            )
        )
    names = _names(res)
    if b.empty:
        st.info("The optimised plan builds no new places.")
    else:
        show_table(b, names)
        _chart(lambda: charts.build_plan_chart(b, labels=names))
    locs = pd.DataFrame(
        [loc.model_dump() for loc in resolved.scenario.geography.localities],
        columns=["id", "name", "lat", "lon"],
    )
    _chart(lambda: charts.build_locality_map(b, locs, labels=names))
    saving = reports.saving_by_cause_table(res.summary)
    if saving is not None:
        show_table(saving, names, "Saving of the optimised plan by cause and funding source")


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


def _pin(res: Results, default: str) -> None:
    """Pin the current run (a button callback, so the label box can be emptied for the next pin)."""
    pins: list[dict[str, Any]] = st.session_state.setdefault("pins", [])
    if len(pins) >= MAX_PINS:
        return
    base = str(st.session_state.get("pin_label") or "").strip() or default
    used = {p["label"] for p in pins}
    name, k = base, 2
    while name in used:
        name, k = f"{base} ({k})", k + 1
    pins.append(_pin_payload(res, name))
    st.session_state["pin_label"] = ""  # the next pin gets its own label, not this one


def _unpin(label: str | None = None) -> None:
    pins = st.session_state.get("pins", [])
    st.session_state["pins"] = [] if label is None else [p for p in pins if p["label"] != label]


def compare_view(res: Results) -> None:
    pins: list[dict[str, Any]] = st.session_state.setdefault("pins", [])
    c1, c2, c3 = st.columns([3, 1, 1])
    default = str(res.summary.get("scenario", "scenario"))  # the name says what was edited
    c1.text_input(
        "Label for the current scenario (empty: its name)", key="pin_label", placeholder=default
    )
    c2.button(
        "Pin current scenario",
        key="pin",
        disabled=len(pins) >= MAX_PINS,
        on_click=_pin,
        args=(res, default),
    )
    c3.button("Clear pins", key="unpin_all", disabled=not pins, on_click=_unpin)
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
    st.dataframe(
        shown,
        width="stretch",
        column_config={p["label"]: st.column_config.TextColumn(width="medium") for p in pins},
    )
    st.caption("Pinned: " + "; ".join(f"**{i + 1}.** {p['label']}" for i, p in enumerate(pins)))
    remove = st.selectbox("Remove a pin", ["(none)"] + [p["label"] for p in pins], key="unpin")
    if remove != "(none)":
        _unpin(remove)
        del st.session_state["unpin"]
        st.rerun()

    def stacked(name: str) -> pd.DataFrame | None:
        parts = [p["tables"][name].assign(scenario=p["label"]) for p in pins if name in p["tables"]]
        return pd.concat(parts, ignore_index=True) if parts else None

    names = {c: reports.HEADLINE[c][0] for c in reports.HEADLINE}
    _chart(lambda: charts.comparison_chart(comp, series_names=names))
    # One line per scenario (P50; bands of several scenarios overlap into mud: see each run's own
    # view) and the optimised plan only against the Safety Valve plan.
    _chart(
        lambda: charts.ehcp_fan_chart(
            stacked("demand"), totals=stacked("demand_totals"), bands=False
        )
    )
    _chart(lambda: charts.deficit_chart(stacked("finance"), variants=("optimised",), bands=False))


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


def source_label(name: str) -> str:
    """Where the scenario came from, as the user chose it (never a path on the server)."""
    source = st.session_state.get("source", SOURCES[0])
    if source == SOURCES[1]:
        return f"scenarios/{name}"
    if source == SOURCES[2]:
        return f"the uploaded file {name}"
    return "the embedded Devon default"


def scenario_view(
    base: ResolvedScenario, edited: ResolvedScenario, yaml_text: str, source: str
) -> None:
    edits = [
        e for e in describe_edits(base.resolved, edited.resolved) if not e.startswith("meta.name")
    ]
    if edits:
        st.markdown(f"**{len(edits)} edit(s) to {source}:**")
        st.code("\n".join(edits), language=None)
        st.markdown(f"Runs and downloads as **{edited.scenario.meta.name}**.")
    else:
        st.markdown(f"No edits: this is {source} as it stands.")
    st.caption(f"sha256 of the resolved scenario: `{edited.sha256}`")
    with st.expander("The scenario as YAML (what the download contains)"):
        st.code(yaml_text, language="yaml")


# --------------------------------------------------------------------------- page


# The views (tabs), in order; the tests open and screenshot each of these.
VIEWS = (
    "EHCP demand",
    "Statutory process",
    "Placement mix",
    "Deficit vs plan",
    "Sufficiency",
    "Build plan",
    "Compare",
    "Downloads",
    "Scenario",
)


@st.cache_resource(show_spinner=False)
def _freeze_startup_objects() -> int:
    """Once per server: load the solver, the compiled kernels and plotly, then move every object
    alive (modules, functions, classes: about 180,000) out of the garbage collector's sight.
    They live as long as the server, yet each full collection walked them all: 0.13-0.15 s in
    nearly every lever's answer. Returns how many objects were frozen."""
    import gc

    import highspy  # noqa: F401
    import plotly.graph_objects  # noqa: F401

    import model.demand_kernel  # noqa: F401
    import model.placement_kernel  # noqa: F401

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def main() -> None:
    st.set_page_config(page_title="sendplan", layout="wide")
    _freeze_startup_objects()
    base, name = choose_scenario()
    _reset_levers_on_new_base(base, name)
    lev = lever_panel(base)
    edited_map = apply_levers(base.resolved, base.scenario, lev)
    edits = describe_edits(base.resolved, edited_map)
    edited_map = name_edits(edited_map, base.resolved)
    yaml_text = dump_yaml(edited_map)
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
        f"{scn.meta.base_year + scn.meta.horizon_years} · {scn.run.paths:,} Monte Carlo paths"
        + ". Illustrative model output, not official forecasts."
    )
    try:
        # An unedited scenario's results may be on disk from an earlier server: the first load.
        t0 = time.perf_counter()
        res = None if edits else _from_disk(edited.sha256, edited)
        warm = st.session_state.setdefault("warm_starts", WarmStarts())
        if res is not None and st.session_state.get("warm_bases_of") != edited.sha256:
            # its LP bases too (once, not on every rerun): the first lever then starts warm
            warm.load(_bases_path(edited))
        st.session_state["warm_bases_of"] = edited.sha256
        key = f"{edited.sha256}|{run_name}"
        # a refinement of a first answer the user has moved on from is not wanted any more
        if st.session_state.get("refining") not in (None, key):
            REFINEMENTS.cancel(st.session_state.pop("refining"))
        t_demand = 0.0
        if res is None:
            with st.spinner("Simulating EHCP demand..."):
                demand = _demand_stage(demand_key(edited.resolved), edited)
            t_demand = time.perf_counter() - t0
            with st.spinner(
                "Placing children, solving the sufficiency LP and costing both plans..."
            ):
                step = st.empty()  # the stage and solver step, while they run
                try:
                    res = _run(
                        edited.sha256,
                        run_name,
                        edited,
                        demand,
                        persist=not edits,
                        progress=lambda text: step.caption(f"Now: {text}"),
                        warm=warm,
                    )
                finally:  # a failed run leaves its error, not a stale step
                    step.empty()
    except ScenarioError as e:
        _show_problems(e, run_name)
        st.stop()
    except Exception as e:  # a failing run is reported in one line, never a traceback
        st.error(f"The run failed: {type(e).__name__}: {e}")
        st.stop()

    h = reports.headline_figures(res.summary, res.tables)
    cards = card_figures(res, h)
    st.session_state["headline"] = h
    st.session_state["cards"] = cards
    st.session_state["scenario_yaml"] = yaml_text
    st.session_state["scenario_sha256"] = edited.sha256
    opt = res.summary.get("optimisation") or {}
    t_draw = time.perf_counter()
    if provisional(res):  # said before the figures it qualifies
        st.session_state["refining"] = key
        refinement_notice(key)
    else:
        st.session_state.pop("refining", None)
    headline_cards(cards)
    run_warnings(res)

    # Lazy tabs: only the open view is drawn (a lever answers without drawing a dozen charts the
    # user is not looking at); switching view reruns from the cached run.
    draws: dict[str, Callable[[], None]] = {
        "EHCP demand": lambda: demand_view(res),
        "Statutory process": lambda: process_view(res),
        "Placement mix": lambda: placements_view(res),
        "Deficit vs plan": lambda: finance_view(res),
        "Sufficiency": lambda: sufficiency_view(res),
        "Build plan": lambda: builds_view(res, edited),
        "Compare": lambda: compare_view(res),
        "Downloads": lambda: downloads_view(res, yaml_text, run_name),
        "Scenario": lambda: scenario_view(base, edited, yaml_text, source_label(name)),
    }
    tabs = st.tabs(list(VIEWS), key="view", on_change="rerun")
    for tab, draw in zip(tabs, (draws[v] for v in VIEWS), strict=True):
        with tab:
            if tab.open is not False:
                draw()
    st.session_state["timings"] = {  # for the app benchmark: where an answer's time goes
        "demand_seconds": t_demand,  # the demand stage (0 when cached)
        "run_seconds": res.summary.get("run_seconds"),  # the engine, as it timed itself
        "solve_seconds": opt.get("solve_seconds"),
        "draw_seconds": time.perf_counter() - t_draw,  # cards, warnings and the open view
        "lp_warm": _lp_warm(opt),  # started from the last run's basis
    }


if __name__ == "__main__":  # streamlit (and AppTest) run the script as __main__; tests import it
    main()
