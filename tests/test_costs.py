"""Costs: hand-computed placement, transport and capital lines; distances; financial-year conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_placements import tiny, tiny_demand, tiny_mapping

from model.costs import (
    cost_table,
    distances_km,
    fy_weights,
    price_index,
    unit_cost_array,
)
from model.placements import placement_demand, unmitigated
from model.scenario import PHASES

# Places in the hand-worked example of tests/test_placements.py (primary phase):
#   2024: s 18 (a 8, b 10), i 18          (AY label 2024, price index 1.1^-1)
#   2025: s 23 (a->a 10, a->b 1, b 12), i 27 (a 15, b 12)   (index 1)
#   2026: s 20.25 (a->a 10.5, a->b 0.75, b 9), i 23.25 (a 14.25, b 9)   (index 1.1)
SPECIAL, INDEP = 20000, 50000


@pytest.fixture(scope="module")
def tiny_costs() -> pd.DataFrame:
    scn = tiny()
    stock, new = tiny_demand()
    return cost_table(scn, unmitigated(scn, placement_demand(scn, stock, new)))


def line(costs: pd.DataFrame, fy: int, cost_line: str, setting: str) -> float:
    m = (costs["year"] == fy) & (costs["cost_line"] == cost_line) & (costs["setting"] == setting)
    assert m.sum() == 1
    return float(costs.loc[m, "cost_gbp"].iloc[0])


def test_price_index_prices_an_academic_year_at_the_fy_it_starts_in() -> None:
    # AY label 2025 (Sep 2024 - Aug 2025) is at FY 2024-25 prices, the price base.
    np.testing.assert_allclose(price_index(tiny()), [1 / 1.1, 1.0, 1.1])


def test_fy_conversion_is_5_12_plus_7_12() -> None:
    np.testing.assert_allclose(fy_weights(3), [[5 / 12, 7 / 12, 0], [0, 5 / 12, 7 / 12]])


def test_hand_computed_placement_costs(tiny_costs) -> None:
    c = tiny_costs
    # FY 2024-25 = 5/12 x AY 2024 (at 1/1.1) + 7/12 x AY 2025 (at 1)
    assert line(c, 2024, "placements", "special") == pytest.approx(
        5 / 12 * 18 * SPECIAL / 1.1 + 7 / 12 * 23 * SPECIAL
    )
    assert line(c, 2024, "placements", "independent") == pytest.approx(
        5 / 12 * 18 * INDEP / 1.1 + 7 / 12 * 27 * INDEP
    )
    # FY 2025-26 = 5/12 x AY 2025 + 7/12 x AY 2026 (at 1.1)
    assert line(c, 2025, "placements", "special") == pytest.approx(
        5 / 12 * 23 * SPECIAL + 7 / 12 * 20.25 * SPECIAL * 1.1
    )
    assert line(c, 2025, "placements", "independent") == pytest.approx(
        5 / 12 * 27 * INDEP + 7 / 12 * 23.25 * INDEP * 1.1
    )
    places = c[(c["year"] == 2024) & (c["cost_line"] == "placements")]["places"].sum()
    assert places == pytest.approx(5 / 12 * 36 + 7 / 12 * 50)  # FY-average plans


def test_hand_computed_transport_costs(tiny_costs) -> None:
    """Transport = places x share x (1000 + 100/km x (distance + extra)); a-a 5 km, a-b 20 km,
    independent +10 km; special 50% transported, independent 100%."""
    c = tiny_costs
    sp_2024 = 18 * 0.5 * (1000 + 100 * 5)
    sp_2025 = (10 + 12) * 0.5 * (1000 + 100 * 5) + 1 * 0.5 * (1000 + 100 * 20)
    sp_2026 = (10.5 + 9) * 0.5 * 1500 + 0.75 * 0.5 * 3000
    assert line(c, 2024, "transport", "special") == pytest.approx(
        5 / 12 * sp_2024 / 1.1 + 7 / 12 * sp_2025
    )
    assert line(c, 2025, "transport", "special") == pytest.approx(
        5 / 12 * sp_2025 + 7 / 12 * sp_2026 * 1.1
    )
    ind = lambda n: n * 1.0 * (1000 + 100 * (5 + 10))  # noqa: E731
    assert line(c, 2024, "transport", "independent") == pytest.approx(
        5 / 12 * ind(18) / 1.1 + 7 / 12 * ind(27)
    )
    assert set(c.loc[c["cost_line"] == "transport", "funding_source"]) == {"general_fund"}


def test_pipeline_capital_spread_over_lead_time(tiny_costs) -> None:
    """10 special places x 60,000 opening in academic year 2026 (Sep 2025), lead 2 years:
    spent over FY 2024-25 and 2025-26."""
    c = tiny_costs
    assert line(c, 2024, "capital_pipeline", "special") == pytest.approx(300000)
    assert line(c, 2025, "capital_pipeline", "special") == pytest.approx(300000)
    assert set(c.loc[c["cost_line"].str.startswith("capital"), "funding_source"]) == {"capital"}


def test_builds_capital_adds_up_to_builds_table() -> None:
    scn = tiny()
    stock, new = tiny_demand()
    plan = unmitigated(scn, placement_demand(scn, stock, new))
    builds = pd.DataFrame(
        {
            "year_decided": [2024],
            "year_open": [2026],
            "provider_locality": ["b"],
            "setting": ["special"],
            "places": [5],
            "capital_cost_gbp": [250000.0],
        }
    )
    c = cost_table(scn, plan, builds)
    cap = c[c["cost_line"] == "capital_builds"]
    assert cap["cost_gbp"].sum() == pytest.approx(250000)
    assert list(cap["year"]) == [2024, 2025]


def test_every_line_has_a_funding_source_and_financial_year_basis(tiny_costs) -> None:
    c = tiny_costs
    assert set(c["funding_source"]) <= {"hnb", "general_fund", "capital"}
    assert (c["year_basis"] == "financial_year").all()
    assert list(c.loc[c["year"] == 2024, "financial_year"].unique()) == ["2024-25"]
    assert set(c["year"]) == {2024, 2025}  # base_year .. base_year + horizon - 1


def test_need_and_band_multipliers_scale_unit_costs() -> None:
    m = tiny_mapping()
    m["costs"]["need_multiplier"] = {"X": 1.5}
    m["bands"] = {"a": {"settings": ["special", "independent"]}, "b": {"settings": ["independent"]}}
    for ph in m["placements"]["band_shares"]:
        m["placements"]["band_shares"][ph] = {"default": {"a": 0.75, "b": 0.25}}
    m["costs"]["band_multiplier"] = {"b": 2.0}
    uc = unit_cost_array(tiny(m))  # [T, L, N, P, S]
    # special only meets band a: 20000 x 1.5; independent: bands a 75% x 1 + b 25% x 2 = 1.25
    np.testing.assert_allclose(uc[1, 0, 0, 1], [20000 * 1.5, 50000 * 1.5 * 1.25])


def test_distances_from_coordinates_use_road_factor() -> None:
    m = tiny_mapping()
    del m["geography"]["distances_km"]
    m["geography"]["localities"] = [
        {"id": "a", "name": "A", "lat": 50.0, "lon": -3.5},
        {"id": "b", "name": "B", "lat": 51.0, "lon": -3.5},
    ]
    m["geography"]["road_factor"] = 1.3
    m["geography"]["within_locality_km"] = 7.0
    d = distances_km(tiny(m))
    assert d.loc["a", "b"] == pytest.approx(111.195 * 1.3, rel=1e-3)  # one degree of latitude
    assert d.loc["b", "a"] == d.loc["a", "b"]
    assert d.loc["a", "a"] == 7.0
    given = distances_km(tiny())
    assert given.loc["a", "b"] == 20 and given.loc["b", "b"] == 5


def test_place_funding_plus_top_up_charges_empty_commissioned_places() -> None:
    """Special place funding 8,000 of the 20,000 unit cost (top-up 12,000 per pupil).

    Commissioned special places: a 10, b 13 (a 20 from 2026). In use (hand-worked example):
      2024: a 8, b 10 -> empty 2 + 3 = 5          (AY 2024 at prices 1/1.1)
      2025: a 10, b 12 + 1 from a = 13 -> empty 0 (prices 1)
      2026: a 10.5, b 9 + 0.75 = 9.75 -> empty 9.5 + 3.25 = 12.75   (prices 1.1)
    Empty places cost their place funding: FY 2024-25 = 5/12 x 5 x 8,000 / 1.1 + 7/12 x 0
    = 15,151.52; FY 2025-26 = 5/12 x 0 + 7/12 x 12.75 x 8,000 x 1.1 = 65,450.
    A filled place still costs 20,000 (8,000 place funding + 12,000 top-up), so the placements
    line is unchanged."""
    m = tiny_mapping()
    m["costs"]["place_funding_gbp"] = {"special": 8000}
    scn = tiny(m)
    stock, new = tiny_demand()
    c = cost_table(scn, unmitigated(scn, placement_demand(scn, stock, new)))
    assert line(c, 2024, "vacant_places", "special") == pytest.approx(5 / 12 * 5 * 8000 / 1.1)
    assert line(c, 2025, "vacant_places", "special") == pytest.approx(7 / 12 * 12.75 * 8000 * 1.1)
    vac = c[c["cost_line"] == "vacant_places"].set_index("year")["places"]
    assert vac.loc[2024] == pytest.approx(5 / 12 * 5)  # FY-average empty places
    assert set(c.loc[c["cost_line"] == "vacant_places", "funding_source"]) == {"hnb"}
    assert line(c, 2024, "placements", "special") == pytest.approx(
        5 / 12 * 18 * SPECIAL / 1.1 + 7 / 12 * 23 * SPECIAL
    )
    # independent is unlimited: funded per pupil, never an empty-place line
    assert (c.loc[c["cost_line"] == "vacant_places", "setting"] == "special").all()


def test_costs_by_phase_and_day_or_residential() -> None:
    """Independent: day 50,000 in primary (60,000 in post-16), 10% residential at 120,000:
    primary 0.9 x 50,000 + 0.1 x 120,000 = 57,000; post-16 0.9 x 60,000 + 12,000 = 66,000."""
    from model.costs import phase_unit_cost

    m = tiny_mapping()
    m["costs"]["unit_cost_by_phase_gbp"] = {"independent": {"post16": 60000}}
    m["costs"]["residential_share"] = {"independent": 0.1}
    m["costs"]["residential_unit_cost_gbp"] = {"independent": 120000}
    scn = tiny(m)
    cost = phase_unit_cost(scn)
    i, s = scn.setting_ids.index("independent"), scn.setting_ids.index("special")
    assert cost[PHASES.index("primary"), i] == pytest.approx(57000)
    assert cost[PHASES.index("post16"), i] == pytest.approx(66000)
    assert cost[PHASES.index("post16"), s] == pytest.approx(20000)
    # the placement line charges it: 2024-25 independent = 5/12 x 18 x 57,000 / 1.1 + 7/12 x 27 x 57,000
    stock, new = tiny_demand()
    c = cost_table(scn, unmitigated(scn, placement_demand(scn, stock, new)))
    assert line(c, 2024, "placements", "independent") == pytest.approx(
        5 / 12 * 18 * 57000 / 1.1 + 7 / 12 * 27 * 57000
    )


def test_place_funding_above_the_unit_cost_is_a_scenario_error() -> None:
    from model.io import ScenarioError

    m = tiny_mapping()
    m["costs"]["place_funding_gbp"] = {"special": 25000}
    with pytest.raises(ScenarioError, match="place_funding_gbp.special"):
        tiny(m)
