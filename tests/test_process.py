"""The statutory pipeline: a queue worked by hand, conservation, Devon's fit and backlog clearance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from model.engine import run_scenario
from model.io import load_scenario
from model.process import ProcessInputs, pipeline_for, prepare, serve_oldest_first, simulate
from model.scenario import Scenario


def small_queue(months: int = 4) -> ProcessInputs:
    """10 requests a month, 8 decisions a month, 3 assessments a month, plans from age 1."""
    z = np.zeros(months)
    return ProcessInputs(
        first_year=2024,
        base_year=2024,
        last_history_year=2024,
        requests=z + 10.0,
        decision_capacity=z + 8.0,
        assessment_capacity=z + 3.0,
        clearance=z,
        refusal=z + 0.2,
        withdrawn=z + 0.1,
        issue=z + 0.5,
        review_capacity=z,
        min_age=1,
        complex_extra=3,
        complex_share=0.0,
        priority_share=0.0,
        open_decisions=0.0,
        open_assessments=0.0,
    )


def test_serve_oldest_first_takes_the_oldest_cases_up_to_capacity() -> None:
    queue = np.array([[5.0, 2.0, 0.0, 4.0]])  # ages 0..3
    served = serve_oldest_first(queue, np.array([5.0]))
    assert served.tolist() == [[0.0, 1.0, 0.0, 4.0]]


def test_small_queue_by_hand() -> None:
    """Month by month, worked on paper (agreed = decided x (1 - 0.2 refused - 0.1 withdrawn)).

    m0: 10 arrive, 8 decided (age 0), 2 wait; 5.6 agreed; nothing old enough to complete.
    m1: the 2 (age 1) and 6 new decided, 4 wait; assessments age 1: 5.6 + 1.4 = 7.0, age 0: 4.2;
        3 completed from age 1 (1.5 plans, 1.5 not), leaving 4.0 + 4.2 = 8.2 open.
    m2: 4 (age 1) + 4 new decided, 6 wait; agreed 2.8 + 2.8; open age 2: 4.0, age 1: 4.2 + 2.8,
        age 0: 2.8; 3 completed from age 2, leaving 1.0 + 7.0 + 2.8 = 10.8.
    m3: 6 (age 1) + 2 new decided, 8 wait; agreed 4.2 + 1.4; open age 3: 1.0, age 2: 7.0,
        age 1: 2.8 + 4.2, age 0: 1.4; 3 completed (1.0 at age 3, 2.0 at age 2): 13.4 open.
    """
    f = {k: v[0] for k, v in simulate(small_queue()).items()}
    np.testing.assert_allclose(f["decisions"], [8, 8, 8, 8])
    np.testing.assert_allclose(f["open_decisions"], [2, 4, 6, 8])
    np.testing.assert_allclose(f["assessments_agreed"], [5.6, 5.6, 5.6, 5.6])
    np.testing.assert_allclose(f["assessments_completed"], [0, 3, 3, 3])
    np.testing.assert_allclose(f["plans_issued"], [0, 1.5, 1.5, 1.5])
    np.testing.assert_allclose(f["open_assessments"], [5.6, 8.2, 10.8, 13.4])
    # every plan so far was issued within four months of its request
    np.testing.assert_allclose(f["plans_issued_within_20_weeks"], f["plans_issued"])


def test_everything_that_enters_leaves_or_is_still_open() -> None:
    inp = small_queue(40)  # long enough for cases to wait more than 20 weeks and a year
    inp.open_assessments = 30.0
    inp.complex_share = 0.3
    inp.priority_share = 0.1
    f = simulate(inp, np.linspace(0.5, 1.5, 3)[:, None] * np.ones((3, 40)))
    entered = f["requests"].cumsum(axis=1) + 30.0
    left = (f["refusals"] + f["withdrawn"] + f["plans_issued"] + f["plans_not_issued"]).cumsum(
        axis=1
    )
    still_open = f["open_decisions"] + f["open_assessments"]
    np.testing.assert_allclose(entered, left + still_open, rtol=1e-12)
    bands = sum(
        f[k]
        for k in (
            "open_under_6_weeks",
            "open_6_to_20_weeks",
            "open_20_to_52_weeks",
            "open_over_52_weeks",
        )
    )
    np.testing.assert_allclose(bands, still_open, rtol=1e-12)
    # a queue growing by 2.6 a month: late plans appear and the 20-week share falls
    assert f["plans_issued_within_20_weeks"][:, -1].sum() < f["plans_issued"][:, -1].sum()
    assert (f["open_over_52_weeks"][:, -1] > 0).all()


def test_the_calibrations_issued_only_run_gives_the_same_plans_issued() -> None:
    """The calibration asks only for plans issued and those within 20 weeks: the same values,
    bit for bit, as the full simulation's, on a grid of backlogs, complex and priority shares."""
    inp = small_queue(40)
    grid = {
        "open_assessments": np.array([0.0, 12.0, 30.0, 60.0]),
        "complex_share": np.array([0.0, 0.3, 0.3, 0.6]),
        "priority_share": np.array([0.0, 0.0, 0.1, 0.2]),
    }
    full = simulate(inp, np.ones((4, 40)), **grid)
    only = simulate(inp, np.ones((4, 40)), **grid, issued_only=True)
    assert set(only) == {"plans_issued", "plans_issued_within_20_weeks"}
    for name, values in only.items():
        assert np.array_equal(values, full[name]), name


@pytest.fixture(scope="module")
def devon() -> Scenario:
    return load_scenario(None).scenario


def test_devon_base_period_fitted_in_sample_within_tolerance(devon: Scenario) -> None:
    """SEN2 2019-2024: plans issued within 2% each year; 20-week share within 15 points each year
    and 3 points pooled. These are the figures the pipeline was fitted to (in-sample)."""
    pr = devon.process
    assert pr is not None
    inp = prepare(devon)
    f = simulate(inp)
    cal = inp.calendar_years
    issued_m, within_m, issued_p, within_p = 0.0, 0.0, 0.0, 0.0
    for y, published in pr.issued_history.items():
        got = f["plans_issued"][0, cal == y].sum()
        ok = f["plans_issued_within_20_weeks"][0, cal == y].sum()
        assert got == pytest.approx(published, rel=0.02), y
        assert ok / got == pytest.approx(pr.within_20_weeks_history[y], abs=0.15), y
        issued_m, within_m = issued_m + got, within_m + ok
        issued_p += published
        within_p += published * pr.within_20_weeks_history[y]
    assert within_m / issued_m == pytest.approx(within_p / issued_p, abs=0.03)


def _small_devon(devon_dict: dict[str, Any], **process: Any) -> Any:
    """Devon over four years with assessment capacity just above the inflow (132 a month)."""
    devon_dict["meta"]["horizon_years"] = 4
    devon_dict["run"]["paths"] = 1
    devon_dict["process"]["assessment"]["fte"] = 33.0
    devon_dict["process"].update(process)
    return devon_dict


def test_faster_backlog_clearance_moves_plans_and_spend_earlier(
    devon_dict: dict[str, Any], write_yaml: Any
) -> None:
    """Clearing 300 more cases in the first half of 2025 issues the same plans in total, earlier.

    Without the plan the backlog takes until 2027 to clear at 132 assessments a month (growing
    10% a year); with it, it clears in 2025. No plan is created or lost.
    """
    slow = load_scenario(write_yaml(_small_devon(devon_dict), "slow.yaml"))
    plan = [{"cases": 300, "from_month": "2025-01", "by_month": "2025-06", "label": "test"}]
    fast = load_scenario(write_yaml(_small_devon(devon_dict, backlog_clearance=plan), "fast.yaml"))
    rs, rf = run_scenario(slow), run_scenario(fast)
    ps, pf = rs.artefacts["process"], rf.artefacts["process"]
    # the total: the same requests and decisions, and by 2027 both have cleared the backlog,
    # so the same plans are issued over the four years; only their timing differs
    np.testing.assert_allclose(pf.det["assessments_agreed"], ps.det["assessments_agreed"])
    assert pf.det["plans_issued"].sum() == pytest.approx(ps.det["plans_issued"].sum(), abs=0.5)
    # the direction: more plans issued in 2025, so more plans join in January 2026
    assert pf.joiners[2] > ps.joiners[2] + 50
    assert pf.joiners[3] < ps.joiners[3]
    fs = rs.tables["finance"].query("variant == 'unmitigated'").set_index("financial_year")
    ff = rf.tables["finance"].query("variant == 'unmitigated'").set_index("financial_year")
    assert ff.loc[2025, "plans"] > fs.loc[2025, "plans"]
    assert ff.loc[2025, "hnb_spend_gbp"] > fs.loc[2025, "hnb_spend_gbp"]
    # the late plans land in 2024-25 (the plan's first quarter) instead of later years
    assert ff.loc[2024, "backlog_plans_issued"] > fs.loc[2024, "backlog_plans_issued"]
    assert ff.loc[2025, "backlog_plans_issued"] < fs.loc[2025, "backlog_plans_issued"]
    assert (ff["hnb_spend_gbp"] >= fs["hnb_spend_gbp"] - 1.0).all()


def test_scenario_without_process_runs_as_before(
    devon_dict: dict[str, Any], write_yaml: Any
) -> None:
    """No process section: joiners from the fixed rate, no process table."""
    devon_dict.pop("process")
    devon_dict["meta"]["horizon_years"] = 2
    devon_dict["run"]["paths"] = 1
    res = run_scenario(load_scenario(write_yaml(devon_dict)))
    assert "process" not in res.tables and "process" not in res.summary
    assert "backlog_plans_issued" not in res.tables["finance"]


def test_requests_carry_the_national_shock_the_demand_stage_draws(
    devon: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Devon's requests follow the pooled growth, so each path also takes the national shock of
    each unpublished year: the same draws (``pooling.national_factors`` from the run's seed) as
    the demand stage, published years untouched."""
    from dataclasses import replace

    from model import pooling
    from model import process as pm

    inp = prepare(devon)
    with_shock = pm.request_factors(devon, inp, 400, 11)
    prior = pooling.pooled_prior(devon.meta.base_year)
    assert prior.national_growth_sd > 0.03
    monkeypatch.setattr(pooling, "pooled_prior", lambda as_of: replace(prior, national_growth_sd=0))
    without = pm.request_factors(devon, inp, 400, 11)
    k = np.maximum(inp.calendar_years - inp.last_history_year, 0)
    nat = pooling.national_factors(prior.national_growth_sd, 400, int(k.max()) + 1, 11)
    np.testing.assert_allclose(with_shock / without, np.where(k > 0, nat[:, k], 1.0), rtol=1e-9)
    # a random walk in the log: the spread grows with the years ahead
    last = np.log(nat[:, -1]).std()
    assert last == pytest.approx(prior.national_growth_sd * np.sqrt(k.max()), rel=0.15)
    # the same seed gives every LA the same national future; a prefix of years is stable
    np.testing.assert_array_equal(
        nat[:, :3], pooling.national_factors(prior.national_growth_sd, 400, 3, 11)
    )


def test_process_tables_are_built_once_and_handed_out_as_copies(devon: Scenario) -> None:
    """A run reads the pipeline's tables three times (and the app re-uses the stage): they are
    built once, and what one caller changes in its copy no other caller sees."""
    res = pipeline_for(devon, 5, 1, "embedded")
    assert res is not None
    first = res.tables()["process"]
    total = first["plans_issued"].sum()
    first["plans_issued"] = 0.0  # a caller's own copy
    again = res.tables()["process"]
    assert again["plans_issued"].sum() == pytest.approx(total) and total > 0
    assert res.by_financial_year("plans_issued") == {
        int(y): float(v)
        for y, v in again[again["period"] == "financial_year"][["year", "plans_issued"]].to_numpy()
    }
