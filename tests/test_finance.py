"""Finance: HNB income vs spend, the cumulative DSG deficit, Monte Carlo bands, variants."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_placements import synthetic_stock_flow, tiny, tiny_demand, tiny_mapping

from model.costs import cost_table, other_hnb_spend
from model.finance import (
    add_variant,
    derive_path_new,
    finance_table,
    hnb_allocation,
    path_hnb_spend,
    path_indices,
    variant_tables,
)
from model.placements import placement_demand, unmitigated


def tiny_run(mapping=None):
    scn = tiny(mapping)
    stock, new = tiny_demand()
    plan = unmitigated(scn, placement_demand(scn, stock, new))
    return scn, plan, cost_table(scn, plan)


def test_hnb_cost_lines_add_up_to_hnb_spend() -> None:
    scn, plan, costs = tiny_run()
    fin = finance_table(scn, costs)
    hnb = costs[costs["funding_source"] == "hnb"].groupby("year")["cost_gbp"].sum()
    np.testing.assert_allclose(fin["hnb_spend_gbp"], hnb.loc[fin["financial_year"]].to_numpy())
    # transport and capital are reported in costs.csv but never charged to the HNB
    assert costs.loc[costs["funding_source"] != "hnb", "cost_gbp"].sum() > 0
    np.testing.assert_allclose(
        fin["hnb_spend_gbp"], fin["placement_spend_gbp"] + fin["other_hnb_spend_gbp"]
    )


def test_hand_computed_in_year_and_cumulative_deficit() -> None:
    """FY 2024-25 spend = 5/12 x 1,260,000 / 1.1 + 7/12 x 1,810,000 (see test_costs);
    income 1,000,000; opening deficit 100,000; DfE instalment 50,000 after the in-year result."""
    scn, plan, costs = tiny_run()
    fin = finance_table(scn, costs).set_index("financial_year")
    spend_2024 = 5 / 12 * 1_260_000 / 1.1 + 7 / 12 * 1_810_000
    spend_2025 = 5 / 12 * 1_810_000 + 7 / 12 * 1_567_500 * 1.1
    assert fin.loc[2024, "hnb_spend_gbp"] == pytest.approx(spend_2024)
    assert fin.loc[2024, "in_year_balance_gbp"] == pytest.approx(1_000_000 - spend_2024)
    assert fin.loc[2024, "cumulative_deficit_gbp"] == pytest.approx(
        100_000 + spend_2024 - 1_000_000 - 50_000
    )
    assert fin.loc[2025, "cumulative_deficit_gbp"] == pytest.approx(
        100_000 + spend_2024 + spend_2025 - 2_000_000 - 50_000
    )
    # the plan's own in-year result, before contributions: 500k - 100k opening + 50k DfE
    assert fin.loc[2024, "plan_in_year_balance_gbp"] == pytest.approx(-450_000)
    assert fin.loc[2024, "gap_to_plan_gbp"] == pytest.approx(
        fin.loc[2024, "cumulative_deficit_gbp"] - 500_000
    )
    # average cost per plan: placement spend / FY-average plans (5/12 x 36 + 7/12 x 50)
    assert fin.loc[2024, "avg_cost_per_plan_gbp"] == pytest.approx(
        spend_2024 / (5 / 12 * 36 + 7 / 12 * 50)
    )


def test_cumulative_deficit_is_opening_plus_in_year_results_net_of_contributions() -> None:
    m = tiny_mapping()
    m["meta"]["horizon_years"] = 2
    m["finance"]["la_contributions_gbp"] = {2025: 70_000}
    m["finance"]["block_transfers_gbp"] = {2024: 20_000}
    scn, plan, costs = tiny_run(m)
    fin = finance_table(scn, costs)
    contrib = fin["safety_valve_gbp"] + fin["la_contributions_gbp"]
    expected = scn.finance.opening_deficit_gbp + np.cumsum(-fin["in_year_balance_gbp"] - contrib)
    np.testing.assert_allclose(fin["cumulative_deficit_gbp"], expected)
    np.testing.assert_allclose(
        fin["in_year_balance_gbp"], fin["hnb_income_gbp"] - fin["hnb_spend_gbp"]
    )
    assert fin.loc[0, "hnb_income_gbp"] == pytest.approx(1_020_000)  # block transfer is income
    assert fin.loc[1, "la_contributions_gbp"] == 70_000


def test_income_grows_from_the_latest_known_allocation() -> None:
    m = tiny_mapping()
    m["meta"]["horizon_years"] = 4
    m["finance"]["hnb_income_growth"] = 0.05
    m["finance"]["hnb_income_by_year"] = {2026: 2_000_000}
    np.testing.assert_allclose(
        hnb_allocation(tiny(m)), [1_000_000, 1_050_000, 2_000_000, 2_100_000]
    )


def test_a_path_equal_to_the_forecast_costs_the_same() -> None:
    """The Monte Carlo route (batched allocation, per-path costs) reproduces the deterministic run."""
    from model.io import load_scenario

    scn = load_scenario(None).scenario
    stock, new = synthetic_stock_flow(scn)
    plan = unmitigated(scn, placement_demand(scn, stock, new))
    costs = cost_table(scn, plan)
    det = finance_table(scn, costs)["hnb_spend_gbp"].to_numpy()
    got = path_hnb_spend(scn, stock[None], new[None])
    np.testing.assert_allclose(got[0], det, rtol=1e-10)
    # with new plans derived from the stock alone, the same
    derived = derive_path_new(stock[None], stock, new)
    np.testing.assert_allclose(derived[0, 1:], new[1:], atol=1e-9)


def test_more_demand_on_a_path_means_more_overflow_cost_per_plan() -> None:
    """Capacity makes cost convex in demand: a path with 15% more plans costs more than 15% more."""
    from model.io import load_scenario

    scn = load_scenario(None).scenario
    stock, new = synthetic_stock_flow(scn)
    scale = np.ones(len(scn.years))
    scale[1:] = 1.15  # the base year is observed; later years run 15% higher
    paths = np.stack([stock, stock * scale[:, None, None, None]])
    pnew = derive_path_new(paths, stock, new)
    spend = path_hnb_spend(scn, paths, pnew)
    placements = spend - other_hnb_spend(scn)[None]
    assert placements[1, -1] / placements[0, -1] > 1.15


def test_monte_carlo_bands_and_probability_of_meeting_the_plan() -> None:
    scn, plan, costs = tiny_run()
    stock, new = tiny_demand()
    factors = np.linspace(0.8, 1.2, 9)
    paths = stock[None] * factors[:, None, None, None, None]
    paths[:, 0] = stock[0]
    demand = SimpleNamespace(stock=stock, new=new, path_stock=paths.astype(np.float32))
    res = variant_tables(scn, plan, None, demand)
    fin = res.finance
    for col in ("hnb_spend_gbp", "in_year_balance_gbp", "cumulative_deficit_gbp"):
        assert (fin[f"{col}_p10"] <= fin[f"{col}_p50"] + 1e-6).all()
        assert (fin[f"{col}_p50"] <= fin[f"{col}_p90"] + 1e-6).all()
    # the plan (500k at March 2025) is met only by paths whose deficit is at or below it
    spend = path_hnb_spend(scn, paths, derive_path_new(paths, stock, new))
    cum = 100_000 + spend[:, 0] - 1_000_000 - 50_000
    assert fin.loc[0, "prob_meet_plan"] == pytest.approx((cum <= 500_000).mean())
    assert 0 < fin.loc[0, "prob_meet_plan"] < 1
    assert res.headline["paths_used"] == 9
    assert res.headline["prob_meet_plan"]["2024-25"] == pytest.approx(
        fin.loc[0, "prob_meet_plan"], abs=1e-3
    )


def test_path_subsample_is_even_and_capped() -> None:
    assert list(path_indices(5, 200)) == [0, 1, 2, 3, 4]
    idx = path_indices(10_000, 200)
    assert len(idx) == 200 and idx[0] == 0 and idx[-1] == 9_999


def test_optimised_variant_slots_in_beside_unmitigated() -> None:
    """The LP's plan goes through the same tables; with the same places its finance is identical."""
    scn, plan, costs = tiny_run()
    stock, new = tiny_demand()
    demand = SimpleNamespace(stock=stock, new=new, path_stock=np.stack([stock, stock * 1.1]))
    tables: dict[str, pd.DataFrame] = {}
    summary: dict = {}
    add_variant(tables, summary, variant_tables(scn, plan, None, demand))
    opt = dataclasses.replace(plan, variant="optimised")
    add_variant(tables, summary, variant_tables(scn, opt, None, demand))
    fin = tables["finance"].set_index(["variant", "financial_year"])
    for col in ("hnb_spend_gbp", "cumulative_deficit_gbp", "cumulative_deficit_gbp_p90"):
        np.testing.assert_allclose(fin.loc["optimised", col], fin.loc["unmitigated", col])
    assert set(tables["placements"]["variant"]) == {"unmitigated", "optimised"}
    assert set(summary["finance"]) == {"unmitigated", "optimised"}


# --------------------------------------------------------------------------- levers (Devon default)


def devon_run(overrides: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Unmitigated places by setting [T, S] and finance on the Devon default (real demand stage)."""
    from model.demand import run_demand
    from model.io import load_scenario

    scn = load_scenario(None, overrides).scenario
    dem = run_demand(scn, 1, scn.run.seed)
    plan = unmitigated(scn, placement_demand(scn, dem.stock, dem.new))
    return plan.by_setting(), finance_table(scn, cost_table(scn, plan))


def test_more_resource_base_capacity_lowers_independent_placements_and_cost() -> None:
    base_places, base_fin = devon_run([])
    more = [f"capacity.existing.resource_base.{loc}=200" for loc in ("exeter", "east_devon")]
    places, fin = devon_run(more)
    ind = 3  # settings order in the Devon default: mainstream, resource_base, special, independent
    assert places[-1, ind] < base_places[-1, ind] - 100
    assert (fin["hnb_spend_gbp"] <= base_fin["hnb_spend_gbp"] + 1e-6).all()
    assert fin["hnb_spend_gbp"].sum() < base_fin["hnb_spend_gbp"].sum()
    assert fin["cumulative_deficit_gbp"].iloc[-1] < base_fin["cumulative_deficit_gbp"].iloc[-1]


def test_delaying_a_special_school_raises_independent_placements_and_cost() -> None:
    base_places, base_fin = devon_run([])
    places, fin = devon_run(["capacity.delays={Special school Cranbrook: 3}"])
    ind = 3
    opened = 2027 - 2024  # index of the year the school was due to open
    assert (places[opened : opened + 3, ind] > base_places[opened : opened + 3, ind] + 50).all()
    # spend is higher in the financial years the school is late (2026-27 .. 2028-29); once it
    # opens, later years differ only by who got which place, so compare the total
    late = slice(opened - 1, opened + 2)
    assert (fin["hnb_spend_gbp"][late] > base_fin["hnb_spend_gbp"][late] + 1e6).all()
    assert fin["cumulative_deficit_gbp"].iloc[-1] > base_fin["cumulative_deficit_gbp"].iloc[-1]


# --------------------------------------------------------------------------- Devon, end to end


def devon_finance(overrides: list[str] | None = None) -> pd.DataFrame:
    """Deterministic unmitigated finance of the Devon default through the real demand stage."""
    from model.demand import run_demand
    from model.io import load_scenario
    from model.process import run_process, stock_start

    scn = load_scenario(None, overrides or []).scenario
    # Devon's new plans come from its statutory pipeline (the backlog clearance included)
    pipeline = run_process(scn, scn.years, 1, scn.run.seed, stock_start(scn), "devon")
    dem = run_demand(scn, 1, scn.run.seed, pipeline=pipeline)
    plan = unmitigated(scn, placement_demand(scn, dem.stock, dem.new))
    return finance_table(scn, cost_table(scn, plan)).set_index("financial_year")


def test_devon_default_lands_near_the_published_figures() -> None:
    """Committee report (early 2025): about 17,000 per plan; 51.6m in-year deficit increase in
    2024-25 before contributions against the plan's 31.2m; 132.0m cumulative at 31 March 2025."""
    fy = devon_finance().loc[2024]
    assert fy["avg_cost_per_plan_gbp"] == pytest.approx(17_000, rel=0.10)
    assert fy["cumulative_deficit_gbp"] == pytest.approx(132.0e6, rel=0.05)
    assert -fy["in_year_balance_gbp"] == pytest.approx(51.6e6, rel=0.05)
    assert -fy["plan_in_year_balance_gbp"] == pytest.approx(31.2e6, rel=1e-9)
    assert fy["gap_to_plan_gbp"] > 0  # behind the Safety Valve trajectory, as reported


def test_higher_demand_growth_raises_the_deficit() -> None:
    base = devon_finance(["demand.growth=0.10"])
    high = devon_finance(["demand.growth=0.14"])
    assert (high["hnb_spend_gbp"].iloc[1:] > base["hnb_spend_gbp"].iloc[1:]).all()
    assert (high["cumulative_deficit_gbp"] >= base["cumulative_deficit_gbp"] - 1e-6).all()
    assert high["cumulative_deficit_gbp"].iloc[-1] > base["cumulative_deficit_gbp"].iloc[-1] * 1.1


def test_run_scenario_writes_the_finance_contract() -> None:
    from model.engine import run_scenario
    from model.io import load_scenario

    res = run_scenario(load_scenario(None), paths=20, seed=7)
    cols = {
        "placements": [
            "year",
            "locality",
            "provider_locality",
            "need",
            "phase",
            "setting",
            "places",
            "variant",
        ],
        "costs": ["year", "setting", "funding_source", "variant", "cost_gbp"],
        "finance": [
            "financial_year",
            "variant",
            "hnb_income_gbp",
            "hnb_spend_gbp",
            "in_year_balance_gbp",
            "cumulative_deficit_gbp",
            "plan_cumulative_deficit_gbp",
            "cumulative_deficit_gbp_p10",
            "cumulative_deficit_gbp_p90",
            "prob_meet_plan",
        ],
    }
    for name, need in cols.items():
        assert set(need) <= set(res.tables[name].columns), name
        assert set(res.tables[name]["variant"]) == {"unmitigated", "optimised"}  # LP: issue 5
    head = res.summary["finance"]["unmitigated"]
    assert head["paths_used"] == 20
    assert set(head["prob_meet_plan"]) == set(head["cumulative_deficit_gbp"])
    assert res.artefacts["unmitigated"].variant == "unmitigated"
    # placements in place each year equal the demand stage's plans
    plans = res.artefacts["demand"].stock.sum(axis=(1, 2, 3))
    pl = res.tables["placements"]
    for variant in ("unmitigated", "optimised"):
        by_year = pl[pl["variant"] == variant].groupby("year")["places"].sum().to_numpy()
        np.testing.assert_allclose(by_year, plans, rtol=1e-9)
