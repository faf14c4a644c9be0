"""App levers as scenario edits: untouched levers change nothing, each lever writes its own key,
and every edited mapping validates through model.io like a file the CLI reads."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model.io import dump_yaml, load_scenario, load_scenario_text
from model.levers import (
    APP_SOURCE,
    ExtraPlaces,
    apply_levers,
    delayable_projects,
    demand_key,
    describe_edits,
    edit_summary,
    growth_taper,
    levers_from,
    name_edits,
)
from model.pooling import pooled_prior


@pytest.fixture(scope="module")
def base():
    return load_scenario(None)


def _validate(data):
    return load_scenario_text(dump_yaml(data), "edited.yaml")


def test_untouched_levers_leave_the_mapping_and_its_hash_unchanged(base) -> None:
    lev = levers_from(base.scenario)
    out = apply_levers(base.resolved, base.scenario, lev)
    assert out == base.resolved
    assert out is not base.resolved
    assert _validate(out).sha256 == base.sha256


def test_levers_read_the_devon_values(base) -> None:
    lev = levers_from(base.scenario)
    # Devon types no growth: the lever starts at the rate pooled across LAs (SEN2 2019-2024)
    assert lev.growth == pytest.approx(pooled_prior(2024).growth, abs=1e-4)
    assert 0.08 < lev.growth < 0.12
    assert lev.requests_per_1000 == pytest.approx(8.3)
    assert lev.backlog == {}  # Devon's backlog clearance is in the process section
    assert lev.delays == {"Special school Tavistock/Ivybridge": 0, "Special school Cranbrook": 0}
    assert lev.max_independent_share is None
    assert lev.unit_cost_gbp["independent"] == 61669  # day placement (residential costed apart)
    assert lev.paths == 200 and lev.horizon_years == 10


def test_demand_levers_edit_demand_keys(base) -> None:
    lev = dataclasses.replace(
        levers_from(base.scenario), growth=0.14, requests_per_1000=9.0, backlog={2025: 500.0}
    )
    scn = _validate(apply_levers(base.resolved, base.scenario, lev)).scenario
    assert scn.demand.growth == pytest.approx(0.14)
    assert scn.demand.requests_per_1000 == pytest.approx(9.0)
    assert [(b.year, b.plans) for b in scn.demand.backlog] == [(2025, 500.0)]
    # Clearing the backlog to zero removes the row rather than leaving a zero.
    none = dataclasses.replace(levers_from(base.scenario), backlog={2025: 0.0})
    assert _validate(apply_levers(base.resolved, base.scenario, none)).scenario.demand.backlog == []


def test_the_growth_lever_keeps_the_learned_taper_so_lower_growth_means_fewer_plans(
    base,
) -> None:
    """Typing the growth replaces only the starting rate: a rate below the learned one gives fewer
    plans every year (a constant rate in place of the learned, tapering one used to give more)."""
    from model.demand import run_demand

    learned = levers_from(base.scenario).growth
    prior = pooled_prior(base.scenario.meta.base_year)
    assert growth_taper(base.scenario) == (prior.persistence, prior.long_run)
    assert prior.persistence < 1  # Devon's learned growth tapers

    def plans(growth: float) -> np.ndarray:
        lev = dataclasses.replace(levers_from(base.scenario), growth=growth)
        scn = _validate(apply_levers(base.resolved, base.scenario, lev)).scenario
        return run_demand(scn, 1, 1).stock.sum(axis=(1, 2, 3))

    at_learned = run_demand(base.scenario, 1, 1).stock.sum(axis=(1, 2, 3))
    # the learned rate typed back (to the lever's 4 decimals) gives the learned forecast
    np.testing.assert_allclose(plans(learned), at_learned, rtol=1e-3)
    lower, higher = plans(learned - 0.02), plans(learned + 0.02)
    assert (lower[1:] < at_learned[1:]).all() and (higher[1:] > at_learned[1:]).all()
    # a scenario that types its growth keeps its own taper: the lever writes the growth alone
    typed = load_scenario(None, ["demand.growth=0.1"])
    lev = dataclasses.replace(levers_from(typed.scenario), growth=0.08)
    out = apply_levers(typed.resolved, typed.scenario, lev)
    assert describe_edits(typed.resolved, out) == ["demand.growth: 0.1 -> 0.08"]
    # the edit names the growth alone; the taper written beside it is part of that edit
    lev = dataclasses.replace(levers_from(base.scenario), growth=0.08)
    assert edit_summary(base.resolved, apply_levers(base.resolved, base.scenario, lev)) == (
        "growth 0.08"
    )


def test_extra_resource_base_places_become_pipeline_items(base) -> None:
    lev = levers_from(base.scenario)
    lev.extra_places = [ExtraPlaces("exeter", 2027, 24), ExtraPlaces("torridge", 2026, 0)]
    data = apply_levers(base.resolved, base.scenario, lev)
    scn = _validate(data).scenario
    n0 = len(base.scenario.capacity.pipeline)
    assert len(scn.capacity.pipeline) == n0 + 1  # zero places add nothing
    item = scn.capacity.pipeline[-1]
    assert (item.setting, item.locality, item.places, item.open_year) == (
        "resource_base",
        "exeter",
        24.0,
        2027,
    )
    assert item.name == "App: resource_base Exeter 2027" and item.source == APP_SOURCE
    # The base list is untouched (the edit works on a copy).
    assert len(base.resolved["capacity"]["pipeline"]) == n0


def test_special_school_delay_folds_into_the_pipeline_and_resets(base) -> None:
    assert delayable_projects(base.scenario) == [
        "Special school Tavistock/Ivybridge",
        "Special school Cranbrook",
    ]
    lev = levers_from(base.scenario)
    lev.delays["Special school Cranbrook"] = 2
    scn = _validate(apply_levers(base.resolved, base.scenario, lev)).scenario
    cran = next(p for p in scn.capacity.pipeline if p.name == "Special school Cranbrook")
    assert scn.capacity.open_year(cran) == 2029
    # A scenario that already delays a school: setting the lever to 0 removes the delay.
    delayed = load_scenario("scenarios/special_schools_delayed.yaml")
    lev2 = levers_from(delayed.scenario)
    assert lev2.delays["Special school Cranbrook"] == 2
    lev2.delays["Special school Cranbrook"] = 0
    data = apply_levers(delayed.resolved, delayed.scenario, lev2)
    assert data["capacity"]["delays"] == {"Special school Tavistock/Ivybridge": 2}
    scn2 = _validate(data).scenario
    cran2 = next(p for p in scn2.capacity.pipeline if p.name == "Special school Cranbrook")
    assert scn2.capacity.open_year(cran2) == 2027


def test_policy_cost_and_run_levers(base) -> None:
    lev = levers_from(base.scenario)
    lev.max_independent_share = 0.08
    lev.plan_for = 0.9
    lev.mip_gap = 0.02
    lev.unit_cost_gbp = {**lev.unit_cost_gbp, "independent": 70000.0}
    lev.inflation = 0.05
    lev.paths = 20
    lev.horizon_years = 5
    data = apply_levers(base.resolved, base.scenario, lev)
    scn = _validate(data).scenario
    assert scn.policy.max_independent_share == pytest.approx(0.08)
    assert scn.policy.plan_for == pytest.approx(0.9)
    assert scn.policy.mip_gap == pytest.approx(0.02)
    assert scn.costs.unit_cost_gbp["independent"] == 70000
    assert scn.costs.unit_cost_gbp["special"] == 25000  # others untouched
    assert scn.costs.inflation == pytest.approx(0.05)
    assert scn.run.paths == 20 and scn.meta.horizon_years == 5
    assert scn.years == [2024, 2025, 2026, 2027, 2028, 2029]
    # Removing the cap again writes an explicit null, which validates as "no cap".
    lev2 = levers_from(scn)
    lev2.max_independent_share = None
    again = _validate(apply_levers(data, scn, lev2)).scenario
    assert again.policy.max_independent_share is None


def test_demand_key_tracks_only_demand_inputs(base) -> None:
    k0 = demand_key(base.resolved)
    cost = levers_from(base.scenario)
    cost.unit_cost_gbp = {**cost.unit_cost_gbp, "special": 30000.0}
    cost.delays["Special school Cranbrook"] = 1
    cost.max_independent_share = 0.1
    cost.plan_for = 0.9
    cost.mip_gap = 0.05
    cost.extra_places = [ExtraPlaces("exeter", 2026, 12)]
    assert demand_key(apply_levers(base.resolved, base.scenario, cost)) == k0
    for change in ({"growth": 0.12}, {"paths": 50}, {"horizon_years": 6}, {"backlog": {2026: 9.0}}):
        lev = dataclasses.replace(levers_from(base.scenario), **change)
        assert demand_key(apply_levers(base.resolved, base.scenario, lev)) != k0, change


def test_describe_edits_names_each_changed_key(base) -> None:
    lev = levers_from(base.scenario)
    lev.growth = 0.14
    lev.extra_places = [ExtraPlaces("exeter", 2027, 24)]
    lines = describe_edits(base.resolved, apply_levers(base.resolved, base.scenario, lev))
    persistence, long_run = growth_taper(base.scenario)
    assert lines == [
        "capacity.pipeline: + App: resource_base Exeter 2027",
        "demand.growth: (absent) -> 0.14",
        f"demand.growth_long_run: (absent) -> {long_run}",
        f"demand.growth_persistence: (absent) -> {persistence}",
    ]
    assert describe_edits(base.resolved, base.resolved) == []


def test_an_edited_scenario_is_named_after_its_edits(base) -> None:
    lev = levers_from(base.scenario)
    lev.growth = 0.14
    lev.horizon_years = 4
    lev.unit_cost_gbp = {**lev.unit_cost_gbp, "independent": 70000.0}
    edited = apply_levers(base.resolved, base.scenario, lev)
    assert edit_summary(base.resolved, edited) == "independent cost 70000, growth 0.14, years 4"
    named = name_edits(edited, base.resolved)
    assert named["meta"]["name"] == (
        "Devon (illustrative default), edited: independent cost 70000, growth 0.14, years 4"
    )
    assert _validate(named).scenario.meta.name == named["meta"]["name"]
    # The name is not a demand input: renaming never re-runs the demand stage.
    assert demand_key(named) == demand_key(edited)
    # Untouched levers: the scenario keeps its own name (and its hash).
    assert name_edits(base.resolved, base.resolved) == base.resolved


def test_process_levers_write_the_process_keys(base) -> None:
    lev = dataclasses.replace(
        levers_from(base.scenario),
        assessment_fte_by_month={"2025-04": 60.0},
        review_fte_by_month={"2026-01": 40.0},
        clearance=[(300.0, "2025-01", "2025-06")],
        requests_changes=[(0.8, 2026, 2)],
        refusal_targets={2026: 0.45},
    )
    out = apply_levers(base.resolved, base.scenario, lev)
    pr = _validate(out).scenario.process
    assert pr.assessment.fte_by_month == {"2025-04": 60.0}
    assert pr.reviews.team.fte_by_month == {"2026-01": 40.0}
    assert [(c.cases, c.from_month, c.by_month) for c in pr.backlog_clearance] == [
        (300.0, "2025-01", "2025-06")
    ]
    assert [(c.factor, c.from_year, c.ramp_years) for c in pr.requests_changes] == [(0.8, 2026, 2)]
    assert pr.refusal_targets == {2026: 0.45}
    # everything else in the process section is as it was, and the demand cache key moves
    assert pr.assessment.fte == base.scenario.process.assessment.fte
    assert demand_key(out) != demand_key(base.resolved)
    # the levers read back what they wrote
    back = levers_from(_validate(out).scenario)
    assert back.clearance == lev.clearance and back.refusal_targets == lev.refusal_targets
    # the edits read in words, whole (the Scenario tab's list shortens only past 200 characters)
    summary = edit_summary(base.resolved, out)
    assert summary == (
        "assessment FTE 2025-04: 60, backlog clearance 1 item, refusal target 2026: 0.45, "
        "change in requests 1 item, review FTE 2026-01: 40"
    )
    (line,) = [x for x in describe_edits(base.resolved, out) if "requests_changes" in x]
    assert "..." not in line and "'factor': 0.8" in line


def test_a_month_that_is_not_yyyy_mm_is_bad_input(base) -> None:
    lev = dataclasses.replace(levers_from(base.scenario), assessment_fte_by_month={"2025-13": 1.0})
    with pytest.raises(Exception) as err:
        _validate(apply_levers(base.resolved, base.scenario, lev))
    assert "process.assessment.fte_by_month" in str(err.value)
