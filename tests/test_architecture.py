"""The layering DESIGN.md asks for: no import circles among model modules, stages that never
import the engine or the writers, one low domain module, and typed stage results."""

from __future__ import annotations

import ast
import copy
import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import model
from model.costs import builds_capacity, fy_weights, placement_spend_fy, transport_cost_per_place
from model.io import validate_mapping
from model.montecarlo import (
    PathCache,
    builds_spend,
    path_batches,
    path_hnb_spend,
    path_indices,
    path_sample,
    run_paths,
    unmitigated_spend,
)
from model.placements import (
    _demand_batch,
    allocate,
    capacity_array,
    carried_entrants,
    desired_unmitigated,
    planned_fraction,
    spill_pairs,
)
from model.results import StageResults
from model.sufficiency.robust import plan_pattern

ROOT = Path(model.__file__).parent
# the modules that sequence stages, write outputs or face users: no stage may import them
UPPER = {"model.engine", "model.reports", "model.charts", "model.batch", "model.cli", "app"}
STAGES = (
    "model.process",
    "model.demand",
    "model.calibrate",
    "model.cohort",
    "model.placements",
    "model.montecarlo",
    "model.costs",
    "model.finance",
    "model.sufficiency",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every model module's imports of other model modules, at any depth of its code (module
    level, inside functions and under TYPE_CHECKING alike)."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
            else:
                continue
            deps.update(t for t in targets if t in files and t != name)
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None when the graph is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return stack[stack.index(w) :] + [w]
            if w not in state and (found := visit(w)):
                return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_model_modules_import_one_another_without_a_circle() -> None:
    graph = _imports()
    assert len(graph) > 20  # the parse found the package
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_stages_never_import_the_engine_or_the_writers() -> None:
    graph = _imports()
    for name, deps in graph.items():
        if name.startswith(STAGES):
            assert not deps & UPPER, f"{name} imports {sorted(deps & UPPER)}"


def test_the_domain_module_imports_no_stage() -> None:
    graph = _imports()
    for low in ("model.domain", "model.errors", "model.cohort", "model.scenario"):
        stages = {d for d in graph[low] if d.startswith(STAGES) or d in UPPER}
        assert not stages, f"{low} imports {sorted(stages)}"


def test_no_stage_reaches_into_another_stages_private_helpers() -> None:
    """``_by_phase_need`` was shared between costs and placements; helpers stages share are public
    now, in model.domain. (Within the sufficiency package its modules share theirs; the Monte
    Carlo runner is the placement stage's batch form, so it uses ``_demand_batch``.)"""
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        if not name.startswith(STAGES):
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and package != "model":
                continue  # a module of the same package (model.sufficiency)
            if isinstance(node, ast.ImportFrom) and node.level:
                private = [a.name for a in node.names if a.name.startswith("_")]
                private = [p for p in private if p not in ("_demand_batch", "__version__")]
                assert not private, f"{name} imports private {private} from {node.module}"


def test_run_scenario_returns_typed_stage_results(devon_run) -> None:
    st = devon_run.stages
    assert isinstance(st, StageResults)
    for f in dataclasses.fields(st):
        value = getattr(st, f.name)
        assert dataclasses.is_dataclass(value) and not isinstance(value, type), f.name
    # the tables and summary.json are assembled from them
    assert devon_run.tables["builds"] is st.sufficiency.builds
    assert devon_run.summary["finance"]["optimised"] == st.optimised.headline
    assert devon_run.summary["optimisation"]["saving_gbp"] == st.saving.comparison["saving_gbp"]
    assert devon_run.artefacts["unmitigated"] is st.placements.unmitigated


# --------------------------------------------------------------------------- shared Monte Carlo paths


def _robust_reference(scn, demand, pattern, max_paths, chunk):
    """The robustness check as it ran before the paths were shared: its own paths, in its own
    chunks, with its own unmitigated allocation."""
    idx = path_indices(np.asarray(demand.path_stock).shape[0], max_paths)
    ps, pn = path_sample(demand, idx)
    cap_plan, cap_now, pairs = capacity_array(scn, pattern.build_places), capacity_array(scn), None
    pairs = spill_pairs(scn)
    tr, w = transport_cost_per_place(scn), fy_weights(len(scn.years)).sum(0)
    out: dict[str, list] = {k: [] for k in ("plan", "now", "unmet", "ind", "ind_now")}
    for lo in range(0, ps.shape[0], chunk):
        arr = _demand_batch(scn, ps[lo : lo + chunk], pn[lo : lo + chunk])
        ent = arr["entrants"]
        carried = carried_entrants(arr, arr["planned"])
        keep = planned_fraction(ent, carried)[..., None]
        desired = np.einsum("ktlnpb,tlnpbs->ktlnps", ent * keep, pattern.share) + carried
        left = np.einsum("ktlnpb,tlnpb->ktlnp", ent * keep, pattern.unmet_share)
        f = pattern.first_decision
        desired[:, :f] = desired_unmitigated(arr)[:, :f]
        left[:, :f] = 0.0
        common = (
            arr["overflow"],
            pairs,
            arr["overflow_chain"],
            arr["serves_need"],
            arr["chain_ok"],
        )
        pers = arr["persistence"]
        places, _, unmet = allocate(desired, pers, arr["legacy"], cap_plan, *common)
        base, _, _ = allocate(desired_unmitigated(arr), pers, arr["legacy"], cap_now, *common)
        for key, pl, ext in (("plan", places, pattern.build_places), ("now", base, None)):
            hnb = placement_spend_fy(scn, pl, ext).sum(-1)
            out[key].append(hnb + np.einsum("ktlmnps,tlms->kt", pl, tr) @ w)
        out["unmet"].append(np.einsum("ketlnp,kelnp->kt", pers, left + unmet)[:, -1])
        ind = pattern.independent
        out["ind"].append(places[:, -1][..., ind].sum(axis=(1, 2, 3, 4, 5)))
        out["ind_now"].append(base[:, -1][..., ind].sum(axis=(1, 2, 3, 4, 5)))
    got = {k: np.concatenate(v) for k, v in out.items()}
    got["plan"] = got["plan"] + pattern.capital_gbp
    return idx, got


def test_shared_paths_give_the_figures_separate_runs_gave(devon_run) -> None:
    """One pass over the paths (each chunk's placement demand once, the unmitigated allocation
    once) equals the finance bands and the robustness check run each on its own paths; with
    path sets that overlap only in part and chunks that cut across them."""
    scn = devon_run.resolved.scenario
    demand = devon_run.stages.demand
    suff = devon_run.stages.sufficiency
    extra = builds_capacity(scn, suff.builds)
    pattern = plan_pattern(scn, suff.model.inputs, suff.allocation, suff.builds)
    runs = run_paths(scn, demand, extra, pattern, max_finance_paths=12, max_robust_paths=7, chunk=5)
    assert runs is not None and runs.robust is not None
    fin = path_indices(np.asarray(demand.path_stock).shape[0], 12)
    ps, pn = path_sample(demand, fin)
    np.testing.assert_array_equal(runs.finance_paths, fin)
    np.testing.assert_array_equal(runs.unmitigated_hnb_spend, path_hnb_spend(scn, ps, pn, chunk=5))
    np.testing.assert_array_equal(
        runs.with_builds_hnb_spend, path_hnb_spend(scn, ps, pn, extra, chunk=5)
    )
    idx, ref = _robust_reference(scn, demand, pattern, 7, 5)
    r = runs.robust
    np.testing.assert_array_equal(r.paths, idx)
    # the reference is the earlier code, which summed the full places array: the same figures up
    # to the last bit of a sum (the kernel now sums as it allocates, in another order)
    for got, key in (
        (r.plan_cost_gbp, "plan"),
        (r.unplaced_last, "unmet"),
        (r.independent_last, "ind"),
        (r.unmitigated_cost_gbp, "now"),
        (r.independent_unmitigated_last, "ind_now"),
    ):
        np.testing.assert_allclose(got, ref[key], rtol=1e-12, err_msg=key)
    # the robustness check on its own (as ``evaluate_paths`` runs it) gives the same figures
    alone = run_paths(scn, demand, pattern=pattern, finance=False, max_robust_paths=7, chunk=5)
    assert alone is not None and alone.robust is not None
    np.testing.assert_array_equal(alone.robust.plan_cost_gbp, r.plan_cost_gbp)
    np.testing.assert_allclose(alone.robust.unmitigated_cost_gbp, ref["now"], rtol=1e-12)


def test_the_run_reports_the_shared_paths_in_both_variants_bands(devon_run) -> None:
    """The unmitigated finance bands come from the same per-path spend as the artefact the batch
    runner reads, over every path of a 20-path run."""
    st = devon_run.stages
    assert st.paths is not None
    np.testing.assert_array_equal(st.unmitigated.path_hnb_spend, st.paths.unmitigated_hnb_spend)
    fin = devon_run.tables["finance"]
    u = fin[fin["variant"] == "unmitigated"]
    np.testing.assert_allclose(
        u["hnb_spend_gbp_p50"], np.quantile(st.paths.unmitigated_hnb_spend, 0.5, axis=0)
    )
    assert devon_run.summary["optimisation"]["robustness"]["paths_evaluated"] == 20


def test_without_builds_the_optimised_bands_reuse_the_unmitigated_allocation(devon_run) -> None:
    scn = devon_run.resolved.scenario
    demand = devon_run.stages.demand
    runs = run_paths(scn, demand, None, None, max_finance_paths=6, chunk=4)
    assert runs is not None and runs.robust is None
    assert runs.with_builds_hnb_spend is runs.unmitigated_hnb_spend
    ps, pn = path_sample(demand, runs.finance_paths)
    np.testing.assert_array_equal(runs.unmitigated_hnb_spend, path_hnb_spend(scn, ps, pn, chunk=4))


def _plan_on_paths(run: Any) -> tuple[Any, Any, Any, Any, Any]:
    """A run's scenario, demand stage and optimiser result, with its builds' places [T, S, L] and
    its plan's pattern: what run_paths takes."""
    scn, suff = run.resolved.scenario, run.stages.sufficiency
    extra = builds_capacity(scn, suff.builds)
    pattern = plan_pattern(scn, suff.model.inputs, suff.allocation, suff.builds)
    return scn, run.stages.demand, suff, extra, pattern


def _assert_same_runs(got: Any, plain: Any) -> None:
    """Two PathRuns with exactly the same finance bands and robustness check."""
    assert got is not None and plain is not None
    np.testing.assert_array_equal(got.unmitigated_hnb_spend, plain.unmitigated_hnb_spend)
    np.testing.assert_array_equal(got.with_builds_hnb_spend, plain.with_builds_hnb_spend)
    for f in ("plan_cost_gbp", "unmitigated_cost_gbp", "unplaced_last", "independent_last"):
        np.testing.assert_array_equal(getattr(got.robust, f), getattr(plain.robust, f))


def test_paths_computed_ahead_of_the_plan_give_the_same_figures(devon_run) -> None:
    """The engine computes the plan-free part of the paths (placement demand, today's pattern)
    beside the LP: the finance bands and the robustness check come out exactly as without it, and
    batches cut for other settings are ignored rather than misused."""
    scn, demand, suff, extra, pattern = _plan_on_paths(devon_run)
    kw = {"max_finance_paths": 12, "max_robust_paths": 7, "chunk": 5}
    plain = run_paths(scn, demand, extra, pattern, **kw)
    ahead = path_batches(scn, demand, **kw)
    assert ahead is not None and len(ahead.batches) == 3  # 12 finance paths in chunks of 5
    # the unmitigated variant's finance bands, read off the batches before any plan
    assert plain is not None
    np.testing.assert_array_equal(unmitigated_spend(scn, ahead), plain.unmitigated_hnb_spend)
    for got in (
        run_paths(scn, demand, extra, pattern, ahead=ahead, **kw),
        run_paths(scn, demand, extra, pattern, ahead=path_batches(scn, demand, chunk=4), **kw),
    ):
        _assert_same_runs(got, plain)


def test_the_builds_finance_started_at_the_rounding_gives_the_same_figures(devon_run) -> None:
    """The engine starts the finance paths' spend with the builds added (``builds_spend``) when
    the LP's rounding names the builds, while the LP re-solves; handed to run_paths, the finance
    bands and the robustness check (whose batches its two threads then share) come out exactly as
    when run_paths allocates them itself. The engine hands it over only for the plan's own places:
    one unit more anywhere and run_paths computes them itself."""
    from model.engine import _Beside

    scn, demand, suff, extra, pattern = _plan_on_paths(devon_run)
    kw = {"max_finance_paths": 12, "max_robust_paths": 7, "chunk": 5}
    ahead = path_batches(scn, demand, **kw)
    assert ahead is not None and extra is not None
    plain = run_paths(scn, demand, extra, pattern, ahead=ahead, **kw)
    with ThreadPoolExecutor(max_workers=1) as pool:
        beside = _Beside(scn, pool, pool.submit(lambda: ahead))
        beside.start(suff.builds)
        assert beside.job_for(extra + np.eye(*extra.shape[1:])[None]) is None
        # not started yet (the thread is busy): run_paths does it, the job is dropped
        busy = threading.Event()
        pool.submit(busy.wait)
        try:  # a failed check must fail the test, not leave the pool's thread waiting for ever
            beside.start(suff.builds)
            queued = beside.job
            assert beside.job_for(extra) is None and queued is not None
            assert queued[1].future.cancelled()
        finally:
            busy.set()
        beside.start(suff.builds)
        assert beside.job is not None
        beside.job[1].future.result()
        job = beside.job_for(extra)
        assert job is not None
        got = run_paths(scn, demand, extra, pattern, ahead=ahead, builds_ahead=job, **kw)
    np.testing.assert_array_equal(job.result(), builds_spend(scn, ahead, extra))
    _assert_same_runs(got, plain)
    # the builds' places change the spend (the check above could not pass by accident)
    more = builds_spend(scn, ahead, extra * 2)
    assert not np.array_equal(more, job.result())


def test_the_builds_finance_shared_with_a_waiting_thread_gives_the_same_figures(devon_run) -> None:
    """A thread that comes to wait for the builds' spend takes the batches not yet started
    (``SharedBuildsSpend.help``): here a helper takes them all before the owner looks, and the
    owner returns the helper's figures, exactly those of one thread doing every batch."""
    scn, demand, _, extra, _ = _plan_on_paths(devon_run)
    ahead = path_batches(scn, demand, max_finance_paths=12, max_robust_paths=7, chunk=5)
    assert ahead is not None and extra is not None
    taken: list[int] = []

    def helped(work: Any) -> None:
        helper = threading.Thread(target=work.help)
        helper.start()
        helper.join()
        taken.append(work._next)  # batches the helper took

    shared = builds_spend(scn, ahead, extra, on_start=helped)
    assert taken == [len(ahead.batches)]
    np.testing.assert_array_equal(shared, builds_spend(scn, ahead, extra))
    assert np.abs(shared).sum() > 0


def test_paths_are_computed_ahead_when_the_paths_they_sample_fit(devon_run, monkeypatch) -> None:
    """The memory guard counts the paths the finance bands and the check sample, not every path:
    a many-path run keeps only those, so it is computed ahead whenever they fit in AHEAD_BYTES,
    or in a quarter of the memory available where that is more."""
    from model import montecarlo
    from model.scenario import PHASES

    scn = devon_run.resolved.scenario
    demand = devon_run.stages.demand
    n = np.asarray(demand.path_stock).shape[0]
    kw = {"max_finance_paths": 6, "max_robust_paths": 3, "chunk": 4}
    kept = len(np.union1d(path_indices(n, 6), path_indices(n, 3)))
    assert kept < n
    cells = len(scn.years) ** 2 * len(scn.locality_ids) * len(scn.demand.needs) * len(PHASES)
    need = 8 * montecarlo.AHEAD_VALUES_PER_CELL * cells * kept
    monkeypatch.setattr(montecarlo, "available_memory", lambda: None)  # free memory unknown
    monkeypatch.setattr(montecarlo, "AHEAD_BYTES", need)  # too little for every path
    ahead = path_batches(scn, demand, **kw)
    assert ahead is not None and sum(len(b[0]["entrants"]) for b in ahead.batches) == kept
    monkeypatch.setattr(montecarlo, "AHEAD_BYTES", need - 1)
    assert path_batches(scn, demand, **kw) is None
    # a quarter of the memory available counts where it is more
    monkeypatch.setattr(montecarlo, "available_memory", lambda: 4 * need)
    assert path_batches(scn, demand, **kw) is not None
    monkeypatch.setattr(montecarlo, "available_memory", lambda: 4 * need - 4)
    assert path_batches(scn, demand, **kw) is None


def _variant(resolved: Any, edit: Callable[[dict[str, Any]], None]) -> Any:
    """The scenario with ``edit`` applied to a copy of its resolved mapping."""
    data = copy.deepcopy(resolved.resolved)
    edit(data)
    return validate_mapping(data, "variant.yaml")


def _later_places(data: dict[str, Any]) -> None:
    # 24 resource-base places in Exeter from 2027: capacity after the base year only
    data["capacity"].setdefault("pipeline", []).append(
        {"name": "extra", "setting": "resource_base", "locality": "exeter", "places": 24.0,
         "open_year": 2027}
    )  # fmt: skip


def test_placement_demand_kept_for_the_next_run_gives_the_same_figures(devon_run) -> None:
    """A PathCache keeps the paths' placement demand for a next run on the same demand stage
    (the app's levers): places opening after the base year and a cap keep it, and that run's
    finance bands and robustness check are exactly those of a run computing it again."""
    demand = devon_run.stages.demand
    suff = devon_run.stages.sufficiency
    kw = {"max_finance_paths": 12, "max_robust_paths": 7, "chunk": 5}
    cache = PathCache()
    assert path_batches(devon_run.resolved.scenario, demand, cache=cache, **kw) is not None
    assert cache.hits == 0

    def places_and_cap(d: dict[str, Any]) -> None:
        _later_places(d)
        d.setdefault("policy", {})["max_independent_share"] = 0.08

    lever = _variant(devon_run.resolved, places_and_cap)
    extra = builds_capacity(lever, suff.builds)
    pattern = plan_pattern(lever, suff.model.inputs, suff.allocation, suff.builds)
    kept = path_batches(lever, demand, cache=cache, **kw)
    assert cache.hits == 1
    got = run_paths(lever, demand, extra, pattern, ahead=kept, **kw)
    plain = run_paths(lever, demand, extra, pattern, **kw)
    _assert_same_runs(got, plain)


def _count_allocations(monkeypatch) -> list[int]:
    """A list that grows by one at each allocation of today's pattern on a batch's paths."""
    from model import montecarlo

    calls: list[int] = []
    real = montecarlo._allocate_unmitigated

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(montecarlo, "_allocate_unmitigated", counted)
    return calls


def test_todays_places_are_kept_for_levers_that_keep_committed_places(
    devon_run, monkeypatch
) -> None:
    """With the placement demand, a PathCache keeps today's pattern within committed capacity on
    the finance paths: a cap with dearer independent places allocates nothing again (its spend is
    costed again, at the new price), while places opening in a later year allocate it again; both
    runs' finance bands and robustness check are exactly those of a run computing everything."""
    demand = devon_run.stages.demand
    suff = devon_run.stages.sufficiency
    kw = {"max_finance_paths": 12, "max_robust_paths": 7, "chunk": 5}
    cache = PathCache()
    path_batches(devon_run.resolved.scenario, demand, cache=cache, **kw)
    calls = _count_allocations(monkeypatch)

    def cap_and_price(d: dict[str, Any]) -> None:
        d.setdefault("policy", {})["max_independent_share"] = 0.08
        d["costs"]["unit_cost_gbp"]["independent"] *= 1.1

    for edit, allocations in ((cap_and_price, 0), (_later_places, 3)):
        lever = _variant(devon_run.resolved, edit)
        calls.clear()
        kept = path_batches(lever, demand, cache=cache, **kw)
        assert len(calls) == allocations  # 12 finance paths in 3 batches of 5
        extra = builds_capacity(lever, suff.builds)
        pattern = plan_pattern(lever, suff.model.inputs, suff.allocation, suff.builds)
        got = run_paths(lever, demand, extra, pattern, ahead=kept, **kw)
        plain = run_paths(lever, demand, extra, pattern, **kw)
        _assert_same_runs(got, plain)


def test_the_builds_places_are_kept_beside_todays_for_levers_that_keep_both(
    devon_run, monkeypatch
) -> None:
    """A PathCache also keeps today's pattern with the plan's builds added (the builds' finance on
    the paths), beside today's own: a dearer independent place with the same builds allocates
    neither again, and the spend, costed again at the new price, is exactly a run's without the
    cache; other builds allocate theirs again, kept beside the first builds' (a cap's rounded plan
    and branch and bound's), and a third set replaces the least recently used."""
    scn, demand, suff = (
        devon_run.resolved.scenario,
        devon_run.stages.demand,
        devon_run.stages.sufficiency,
    )
    kw = {"max_finance_paths": 12, "max_robust_paths": 7, "chunk": 5}
    extra = builds_capacity(scn, suff.builds)
    cache = PathCache()
    before = builds_spend(scn, path_batches(scn, demand, cache=cache, **kw), extra)
    calls = _count_allocations(monkeypatch)

    def dearer(d: dict[str, Any]) -> None:
        d["costs"]["unit_cost_gbp"]["independent"] *= 1.1

    lever = _variant(devon_run.resolved, dearer)
    kept = path_batches(lever, demand, cache=cache, **kw)
    got = builds_spend(lever, kept, extra)
    assert calls == []  # today's places and the builds' both kept
    plain = builds_spend(lever, path_batches(lever, demand, **kw), extra)
    np.testing.assert_array_equal(got, plain)
    assert (got >= before).all() and (got > before).any()  # costed again at the dearer price
    calls.clear()
    builds_spend(lever, kept, extra * 0.5)
    assert len(calls) == 3  # 12 finance paths in 3 batches of 5
    calls.clear()
    kept = path_batches(lever, demand, cache=cache, **kw)
    builds_spend(lever, kept, extra)
    builds_spend(lever, kept, extra * 0.5)
    assert calls == []  # today's places and both builds' kept
    builds_spend(lever, kept, extra * 0.25)
    assert len(calls) == 3
    calls.clear()
    builds_spend(lever, kept, extra * 0.5)  # the most recently used before it: still kept
    assert calls == []
    builds_spend(lever, kept, extra)  # the least recently used: replaced
    assert len(calls) == 3


def test_placement_demand_is_not_kept_across_what_changes_it(devon_run) -> None:
    """The mix, an inclusion shift, base-year capacity, other batches or another demand stage
    each miss the kept placement demand, which the miss replaces."""
    scn, demand = devon_run.resolved.scenario, devon_run.stages.demand
    kw = {"max_finance_paths": 6, "max_robust_paths": 3, "chunk": 4}

    def mix(d: dict[str, Any]) -> None:
        row = d["placements"]["mix"]["secondary"]["default"]
        row["independent"], row["special"] = row["independent"] - 0.01, row["special"] + 0.01

    def inclusion(d: dict[str, Any]) -> None:
        d["policy"]["inclusion"] = [
            {"from_band": "specialist", "to_band": "resourced", "share_per_year": 0.02,
             "max_share": 0.1, "from_year": 2026}
        ]  # fmt: skip

    def base_year_places(d: dict[str, Any]) -> None:
        d["capacity"]["existing"]["special"]["exeter"] += 50

    for edit in (mix, inclusion, base_year_places):
        cache = PathCache()
        path_batches(scn, demand, cache=cache, **kw)
        changed = _variant(devon_run.resolved, edit)
        path_batches(changed, demand, cache=cache, **kw)
        assert cache.hits == 0, edit.__name__
        path_batches(changed, demand, cache=cache, **kw)  # the miss kept the changed one's
        assert cache.hits == 1, edit.__name__
    cache = PathCache()
    path_batches(scn, demand, cache=cache, **kw)
    path_batches(scn, demand, cache=cache, **{**kw, "chunk": 3})
    other = copy.copy(demand)  # equal arrays, another demand stage object
    path_batches(scn, other, cache=cache, **{**kw, "chunk": 3})
    assert cache.hits == 0
