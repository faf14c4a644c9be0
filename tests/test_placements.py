"""Placement demand and the unmitigated forecast: exact identities and a hand-computed example."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from model.io import ScenarioError, validate_mapping
from model.placements import (
    PlacementPlan,
    capacity_array,
    placement_demand,
    unmitigated,
)
from model.scenario import PHASES, Scenario

FLAT = [1 / 26] * 26


def tiny_mapping() -> dict[str, Any]:
    """Two localities (a, b), one need, two settings: capacity-limited `special` and the uncapped
    `independent` overflow. Years 2024 (base), 2025, 2026."""
    both = {"special": 0.5, "independent": 0.5}
    return {
        "meta": {"name": "tiny", "base_year": 2024, "horizon_years": 2, "price_base_year": 2024},
        "geography": {
            "localities": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
            "distances_km": {"a": {"a": 5, "b": 20}, "b": {"a": 20, "b": 5}},
        },
        "population": {"base_0_25": {"a": 1000, "b": 1000}, "age_shares": FLAT},
        "demand": {
            "needs": ["X"],
            "stock_age_shares": FLAT,
            "need_shares": {"X": 1.0},
            "requests_per_1000": 1.0,
            "conversion_rate": 0.5,
            "new_age_shares": FLAT,
        },
        "settings": {
            "special": {"name": "Special", "phases": list(PHASES)},
            "independent": {
                "name": "Independent",
                "phases": list(PHASES),
                "capacity_limited": False,
                "overflow": True,
                "state_funded": False,
            },
        },
        "bands": {"any": {"settings": ["special", "independent"]}},
        "placements": {
            "mix": {ph: {"default": dict(both)} for ph in PHASES},
            "band_shares": {ph: {"default": {"any": 1.0}} for ph in PHASES},
        },
        "capacity": {
            "existing": {"special": {"a": 10, "b": 13}},
            "pipeline": [
                {
                    "name": "new special a",
                    "setting": "special",
                    "locality": "a",
                    "places": 10,
                    "open_year": 2026,
                }
            ],
        },
        "costs": {
            "unit_cost_gbp": {"special": 20000, "independent": 50000},
            "inflation": 0.10,
            "transport": {
                "share_transported": {"special": 0.5, "independent": 1.0},
                "fixed_gbp": 1000,
                "per_km_gbp": 100,
                "extra_km": {"independent": 10},
            },
            "capital_per_place_gbp": {"special": 60000},
            "lead_time_years": {"special": 2},
        },
        "finance": {
            "opening_deficit_gbp": 100000,
            "hnb_income_gbp": 1000000,
            "safety_valve_instalments_gbp": {2024: 50000},
            "plan_cumulative_deficit_gbp": {2024: 500000, 2025: 1000000},
        },
    }


def tiny(mapping: dict[str, Any] | None = None) -> Scenario:
    return validate_mapping(copy.deepcopy(mapping or tiny_mapping()), "tiny.yaml")


def tiny_demand() -> tuple[np.ndarray, np.ndarray]:
    """Stock [T=3, A=26, N=1, L=2]: one primary cohort aged 7 in 2024.

    2024: a 16, b 20.  2025 (age 8): all stay, new plans a 10, b 4 -> a 26, b 24.
    2026 (age 9): a quarter cease (survivors a 19.5, b 18), new plans a 6 -> a 25.5, b 18.
    """
    stock = np.zeros((3, 26, 1, 2))
    new = np.zeros((3, 26, 1, 2))
    stock[0, 7, 0] = [16, 20]
    new[1, 8, 0] = [10, 4]
    stock[1, 8, 0] = [26, 24]
    new[2, 9, 0] = [6, 0]
    stock[2, 9, 0] = [25.5, 18]
    return stock, new


def test_hand_computed_two_locality_two_setting_example() -> None:
    """Worked by hand (special = s, independent = i; capacity s: a 10, b 13; +10 at a from 2026).

    2024 legacy, mix 50/50 at home: a s 8 i 8; b s 10 i 10 (fits capacity).
    2025: legacy persists (no cessation). Spare s: a 10-8 = 2, b 13-10 = 3.
      Entrants a 10 -> want s 5, i 5; b 4 -> want s 2, i 2.
      Home: a s 2 (of 5), b s 2 -> spare b 1.  Spill a->b (20 km): 1.  Overflow to i at a: 2.
      Places: a->a s 10, a->b s 1, a->a i 8+5+2 = 15; b->b s 12, i 12.
    2026: a quarter cease, every cohort keeps 0.75: a->a s 7.5, a->b s 0.75, a->a i 11.25;
      b s 9, i 9. Capacity a 20 -> spare 12.5; entrants a 6 -> s 3, i 3 all at home.
      Places: a->a s 10.5, a->b s 0.75, a->a i 14.25; b s 9, i 9.
    """
    scn = tiny()
    stock, new = tiny_demand()
    pdem = placement_demand(scn, stock, new)
    plan = unmitigated(scn, pdem)
    s, i = scn.setting_ids.index("special"), scn.setting_ids.index("independent")
    pr = PHASES.index("primary")
    got = plan.places[:, :, :, 0, pr, :]  # [T, home, provider, setting]
    expected = np.zeros((3, 2, 2, 2))
    expected[0, 0, 0, [s, i]] = [8, 8]
    expected[0, 1, 1, [s, i]] = [10, 10]
    expected[1, 0, 0, [s, i]] = [10, 15]
    expected[1, 0, 1, s] = 1
    expected[1, 1, 1, [s, i]] = [12, 12]
    expected[2, 0, 0, [s, i]] = [10.5, 14.25]
    expected[2, 0, 1, s] = 0.75
    expected[2, 1, 1, [s, i]] = [9, 9]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # other phases are empty; entrants are the new plans; nothing left unmet
    assert plan.places.sum() == pytest.approx(expected.sum())
    np.testing.assert_allclose(pdem.entrants_by_kind[:, :, 0, pr, 0], [[0, 0], [10, 4], [6, 0]])
    np.testing.assert_allclose(pdem.persistence[1, 2, :, 0, pr], [0.75, 0.75])
    np.testing.assert_allclose(pdem.legacy_persistence[:, :, 0, pr], [[1, 1], [1, 1], [0.75, 0.75]])
    assert plan.unmet.sum() == 0


def test_transfer_age_needs_a_new_place() -> None:
    """A child reaching a transfer age (11: secondary) leaves the primary placement and is an entrant."""
    scn = tiny()
    stock = np.zeros((3, 26, 1, 2))
    new = np.zeros_like(stock)
    stock[0, 10, 0] = [4, 6]
    stock[1, 11, 0] = [4, 6]  # all survive into year 7
    stock[2, 12, 0] = [4, 6]
    pdem = placement_demand(scn, stock, new)
    sec, pr = PHASES.index("secondary"), PHASES.index("primary")
    np.testing.assert_allclose(pdem.entrants_by_kind[1, :, 0, sec, 1], [4, 6])  # transfers
    np.testing.assert_allclose(pdem.legacy[1, :, 0, pr].sum(-1), [0, 0])  # primary places freed
    np.testing.assert_allclose(pdem.persistence[1, 2, :, 0, sec], [1, 1])


def synthetic_stock_flow(
    scn: Scenario, growth: float = 0.08, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A cohort stock-flow shaped like the Devon default, independent of the demand stage."""
    rng = np.random.default_rng(seed)
    T, A, N, L = len(scn.years), 26, len(scn.demand.needs), len(scn.locality_ids)
    pop = np.array([scn.population.base_0_25[loc] for loc in scn.locality_ids])
    need = np.array([scn.demand.need_shares[n] for n in scn.demand.needs])
    ages = np.array(scn.demand.stock_age_shares)
    new_ages = np.array(scn.demand.new_age_shares)
    cease = np.full(A, scn.demand.cessation_rate)
    for a, v in scn.demand.cessation_by_age.items():
        cease[a] = v
    cease[-1] = 1.0
    stock = np.zeros((T, A, N, L))
    new = np.zeros_like(stock)
    stock[0] = 8873 * ages[:, None, None] * need[None, :, None] * (pop / pop.sum())[None, None, :]
    for t in range(1, T):
        noise = rng.uniform(0.9, 1.1, (A, N, L))
        new[t] = (
            1100
            * (1 + growth) ** t
            * new_ages[:, None, None]
            * need[None, :, None]
            * (pop / pop.sum())[None, None, :]
            * noise
        )
        stock[t, 1:] = stock[t - 1, :-1] * (1 - cease[:-1, None, None])
        stock[t] += new[t]
    return stock, new


@pytest.fixture(scope="module")
def devon_case() -> tuple[Scenario, Any, PlacementPlan]:
    """The Devon default through the real demand stage (deterministic)."""
    from model.demand import run_demand
    from model.io import load_scenario

    scn = load_scenario(None).scenario
    dem = run_demand(scn, 1, scn.run.seed)
    pdem = placement_demand(scn, dem.stock, dem.new)
    return scn, pdem, unmitigated(scn, pdem)


def test_in_place_stock_identity_is_exact(devon_case) -> None:
    """legacy + entrants x persistence == plans by (year, locality, need, phase)."""
    scn, pdem, plan = devon_case
    np.testing.assert_allclose(pdem.in_place_check(), pdem.stock, rtol=1e-10, atol=1e-9)
    assert pdem.stock.sum() > 0


def test_entrant_kinds_and_bands_add_up(devon_case) -> None:
    _, pdem, _ = devon_case
    np.testing.assert_allclose(pdem.entrants.sum(-1), pdem.entrants_by_kind.sum(-1), atol=1e-9)
    assert (pdem.entrants_by_kind > -1e-9).all()
    assert pdem.entrants_by_kind[..., 2].sum() > 0  # breakdowns happen in the Devon default
    assert (pdem.entrants[0] == 0).all()
    T = len(pdem.years)
    diag = pdem.persistence[np.arange(T), np.arange(T)]
    assert (diag == 1).all()
    assert (pdem.persistence >= 0).all() and (pdem.persistence <= 1 + 1e-12).all()
    assert (pdem.persistence[np.tril_indices(T, -1)] == 0).all()


def test_placements_equal_plans_needing_a_place(devon_case) -> None:
    """Every plan has exactly one place in every year (no overflow setting is missing in Devon)."""
    _, pdem, plan = devon_case
    np.testing.assert_allclose(plan.places.sum(axis=(2, 5)), pdem.stock, rtol=1e-10, atol=1e-8)
    assert plan.unmet.sum() == 0


def test_no_capacity_limited_setting_above_capacity(devon_case) -> None:
    scn, pdem, plan = devon_case
    occ = plan.occupancy()  # [T, S, L']
    limited = pdem.capacity_limited
    assert limited.sum() >= 3
    over = occ[:, limited, :] - pdem.capacity[:, limited, :]
    assert over.max() <= 1e-6
    # ...while the overflow setting does take the excess
    ind = scn.setting_ids.index("independent")
    assert plan.by_setting()[-1, ind] > plan.by_setting()[0, ind]


def test_legacy_follows_todays_mix_at_home(devon_case) -> None:
    scn, pdem, plan = devon_case
    L = len(pdem.localities)
    off_diag = ~np.eye(L, dtype=bool)
    assert plan.places[0][off_diag].sum() == 0
    np.testing.assert_allclose(plan.places[0].sum(1), pdem.legacy[0], atol=1e-9)


def test_table_rows_are_places_in_place(devon_case) -> None:
    scn, pdem, plan = devon_case
    df = plan.table()
    for col in (
        "year",
        "locality",
        "provider_locality",
        "need",
        "phase",
        "setting",
        "places",
        "variant",
    ):
        assert col in df
    assert (df["variant"] == "unmitigated").all()
    by_year = df.groupby("year")["places"].sum()
    np.testing.assert_allclose(by_year.to_numpy(), pdem.stock.sum(axis=(1, 2, 3)), rtol=1e-9)


def test_capacity_counts_pipeline_from_its_delayed_opening() -> None:
    m = tiny_mapping()
    cap = capacity_array(tiny(m))
    np.testing.assert_allclose(cap[:, 0, 0], [10, 10, 20])  # special at a: +10 from 2026
    assert np.isinf(cap[:, 1]).all()  # independent is not capacity limited
    m["capacity"]["delays"] = {"new special a": 1}
    np.testing.assert_allclose(capacity_array(tiny(m))[:, 0, 0], [10, 10, 10])
    m["capacity"]["max_occupancy"] = 0.9
    np.testing.assert_allclose(capacity_array(tiny(m))[:, 0, 1], [11.7, 11.7, 11.7])


def test_spill_respects_max_travel() -> None:
    """With a 10 km travel limit a's child cannot take b's spare place: all 3 overflow at a."""
    m = tiny_mapping()
    m["policy"] = {"max_travel_km": 10}
    scn = tiny(m)
    stock, new = tiny_demand()
    plan = unmitigated(scn, placement_demand(scn, stock, new))
    pr = PHASES.index("primary")
    assert plan.places[1, 0, 1, 0, pr].sum() == 0
    assert plan.places[1, 0, 0, 0, pr, 1] == pytest.approx(16)  # 8 legacy + 5 wanted + 3 overflow


def test_movers_leave_and_re_enter_at_their_destination() -> None:
    """A 10% breakdown of special placements to independent in primary: 10% of the surviving
    in-place children become movers and go to independent."""
    m = tiny_mapping()
    m["placements"]["movers"] = {"primary": {"special": {"independent": 0.2}}}
    scn = tiny(m)
    stock, new = tiny_demand()
    pdem = placement_demand(scn, stock, new)
    pr = PHASES.index("primary")
    # mix-average breakdown rate: 0.5 (share in special) x 0.2 = 0.1 of survivors
    np.testing.assert_allclose(pdem.mover_rate[0, pr], 0.1)
    np.testing.assert_allclose(pdem.entrants_by_kind[1, :, 0, pr, 2], [1.6, 2.0])
    np.testing.assert_allclose(pdem.in_place_check(), pdem.stock, atol=1e-12)
    plan = unmitigated(scn, pdem)
    np.testing.assert_allclose(plan.places.sum(axis=(2, 5)), pdem.stock, atol=1e-12)
    assert plan.entrant_places[1, :, :, 0, pr, 1].sum() >= 1.6 + 2.0


def test_movers_into_a_setting_no_band_lists_are_carried_in_both_variants() -> None:
    """AP (costing 1) is in no band: nobody chooses it, so breakdowns into it are carried there
    by the optimiser exactly as today's pattern puts them, not re-placed, however cheap."""
    from model.sufficiency import optimise

    m = tiny_mapping()
    m["settings"]["ap"] = {"name": "AP", "phases": ["primary"], "capacity_limited": False}
    m["costs"]["unit_cost_gbp"]["ap"] = 1
    m["placements"]["movers"] = {"primary": {"special": {"ap": 0.1}}}
    m["policy"] = {"first_decision_year": 2025}
    scn = tiny(m)
    stock, new = tiny_demand()
    pdem = placement_demand(scn, stock, new)
    ap, pr = scn.setting_ids.index("ap"), PHASES.index("primary")
    assert pdem.mover_destination[0, pr, ap] == pytest.approx(1.0)
    assert not pdem.planned[ap]
    before = unmitigated(scn, pdem)
    after = optimise(scn, pdem, before=before).plan
    assert before.places[..., ap].sum() > 0
    np.testing.assert_allclose(after.places[..., ap], before.places[..., ap], atol=1e-9)


def test_identity_and_capacity_hold_on_noisy_monte_carlo_paths() -> None:
    """Poisson-noisy demand paths: places still equal plans and capacity still binds, per path."""
    from model.demand import run_demand
    from model.io import load_scenario
    from model.montecarlo import derive_path_new
    from model.placements import _demand_batch, allocate, desired_unmitigated, spill_pairs

    scn = load_scenario(None).scenario
    dem = run_demand(scn, 6, 11)
    ps = dem.path_stock.astype(float)
    arr = _demand_batch(scn, ps, derive_path_new(ps, dem.stock, dem.new))
    places, _, unmet = allocate(
        desired_unmitigated(arr),
        arr["persistence"],
        arr["legacy"],
        arr["capacity"],
        arr["overflow"],
        spill_pairs(scn),
    )
    plans = ps.sum(axis=(2, 3, 4))  # [P, T]
    np.testing.assert_allclose(places.sum(axis=(2, 3, 4, 5, 6)), plans, rtol=1e-9)
    assert unmet.sum() == 0
    occ = places.sum(axis=(2, 4, 5)).transpose(0, 1, 3, 2)  # [P, T, S, L']
    lim = arr["capacity_limited"]
    assert (occ[:, :, lim] <= arr["capacity"][None][:, :, lim] + 1e-6).all()
    assert len({round(float(p[-1]), 3) for p in plans}) == 6  # the paths really differ


def test_inclusion_moves_a_capped_cumulative_share_of_entrants_between_bands() -> None:
    """KPI 14 lever: 10% a year of `high` entrants move to `low` from 2025, capped at 15%."""
    m = tiny_mapping()
    m["bands"] = {
        "low": {"settings": ["special", "independent"]},
        "high": {"settings": ["independent"]},
    }
    for ph in PHASES:
        m["placements"]["band_shares"][ph] = {"default": {"low": 0.6, "high": 0.4}}
    m["policy"] = {
        "inclusion": [
            {
                "from_band": "high",
                "to_band": "low",
                "share_per_year": 0.10,
                "from_year": 2025,
                "max_share": 0.15,
            }
        ]
    }
    scn = tiny(m)
    stock, new = tiny_demand()
    pdem = placement_demand(scn, stock, new)
    pr = PHASES.index("primary")
    got = pdem.entrants[:, 0, 0, pr, :]  # locality a: 10 new in 2025, 6 in 2026
    np.testing.assert_allclose(got[1], [10 * (0.6 + 0.4 * 0.10), 10 * 0.4 * 0.90])
    np.testing.assert_allclose(got[2], [6 * (0.6 + 0.4 * 0.15), 6 * 0.4 * 0.85])


# --------------------------------------------------------------------------- post-16 mechanics


def post16_mapping(fe_places: dict[str, float]) -> dict[str, Any]:
    """Two needs (X, Y); special full (no places); FE designated for need X only, with
    `fe_places`; NEET carried (planned: false, free); post-16 overflow chain [fe] before
    independent. Post-16 mix: special 80%, NEET 20%."""
    m = tiny_mapping()
    m["demand"]["needs"] = ["X", "Y"]
    m["demand"]["need_shares"] = {"X": 0.5, "Y": 0.5}
    m["settings"]["fe"] = {"name": "FE", "phases": ["post16", "post19"], "needs": ["X"]}
    m["settings"]["neet"] = {
        "name": "NEET",
        "phases": ["post16", "post19"],
        "capacity_limited": False,
        "planned": False,
    }
    m["bands"] = {"any": {"settings": ["special", "fe", "independent"]}}
    m["placements"]["mix"]["post16"] = {"default": {"special": 0.8, "neet": 0.2}}
    m["placements"]["overflow"] = {"post16": ["fe"]}
    m["capacity"] = {"existing": {"special": {"a": 0, "b": 0}, "fe": fe_places}}
    m["costs"]["unit_cost_gbp"].update({"fe": 10000, "neet": 0})
    m["costs"]["lead_time_years"] = {}
    m["costs"]["capital_per_place_gbp"] = {}
    m["policy"] = {"first_decision_year": 2025}
    return m


def post16_demand() -> tuple[np.ndarray, np.ndarray]:
    """10 new plans of each need at age 16 in locality a in 2025; they stay in 2026 (age 17)."""
    stock = np.zeros((3, 26, 2, 2))
    new = np.zeros((3, 26, 2, 2))
    stock[1, 16, :, 0] = new[1, 16, :, 0] = 10
    stock[2, 17, :, 0] = 10
    return stock, new


def test_post16_overflow_goes_to_fe_before_independent() -> None:
    """By hand, 2025, locality a: each need wants special 8 and NEET 2. Special has no places.
    X (FE takes X): FE at home 4, then FE in b 3, then independent 1. Y (not FE's need):
    independent 8. NEET 2 of each need, carried at home at no cost."""
    scn = tiny(post16_mapping({"a": 4, "b": 3}))
    plan = unmitigated(scn, placement_demand(scn, *post16_demand()))
    p16 = PHASES.index("post16")
    S = {s: i for i, s in enumerate(scn.setting_ids)}
    got = plan.places[1, 0, :, :, p16, :]  # [provider, need, setting] for home a in 2025
    expected = np.zeros_like(got)
    expected[0, 0, S["fe"]] = 4
    expected[1, 0, S["fe"]] = 3
    expected[0, 0, S["independent"]] = 1
    expected[0, 1, S["independent"]] = 8
    expected[0, :, S["neet"]] = 2
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert plan.unmet.sum() == 0


def test_a_need_sent_to_a_setting_not_designated_for_it_is_a_scenario_error() -> None:
    m = post16_mapping({"a": 4})
    m["placements"]["mix"]["post16"] = {"default": {"fe": 0.8, "neet": 0.2}}
    with pytest.raises(ScenarioError, match="placements.mix.post16.default.fe"):
        tiny(m)


def test_overflow_chain_setting_must_serve_the_phase() -> None:
    m = post16_mapping({"a": 4})
    m["placements"]["overflow"] = {"primary": ["fe"]}
    with pytest.raises(ScenarioError, match="placements.overflow.primary.0"):
        tiny(m)


def test_capacity_growth_compounds_from_the_base_year() -> None:
    m = post16_mapping({"a": 100})
    m["capacity"]["growth"] = {"fe": 0.1}
    cap = capacity_array(tiny(m))
    fe = tiny(m).setting_ids.index("fe")
    np.testing.assert_allclose(cap[:, fe, 0], [100, 110, 121])


def test_independent_post16_above_the_specialist_market_is_a_warning() -> None:
    """The post-16 example sends 1 X and 8 Y to independent in 2025 (they stay in 2026);
    a specialist post-16 market of 5 places in 2024 growing 10% a year (5.5 in 2025, 6.05 in
    2026) is exceeded by 3.5 places in 2025 and 2.95 in 2026."""
    from model.placements import market_limit_warnings

    m = post16_mapping({"a": 4, "b": 3})
    m["capacity"]["market_limits"] = [
        {
            "name": "specialist post-16 places",
            "settings": ["independent"],
            "phases": ["post16", "post19"],
            "places": 5,
            "growth": 0.1,
        }
    ]
    scn = tiny(m)
    plan = unmitigated(scn, placement_demand(scn, *post16_demand()))
    (w,) = market_limit_warnings(scn, plan)
    assert w["kind"] == "market_limit"
    assert w["size"] == pytest.approx(3.5)
    assert w["years"] == [2025, 2026]
    assert "specialist post-16 places" in w["message"]
    m["capacity"]["market_limits"][0]["places"] = 9
    scn = tiny(m)
    assert (
        market_limit_warnings(scn, unmitigated(scn, placement_demand(scn, *post16_demand()))) == []
    )


def test_overflow_chain_takes_only_children_it_can_meet() -> None:
    """As the post-16 example, but FE meets no specialist band while special does: a child who
    wanted special may need a special school, so FE is not their next option and all 8 X who
    wanted special go to independent (FE's 7 places stay empty)."""
    m = post16_mapping({"a": 4, "b": 3})
    m["bands"] = {
        "general": {"settings": ["special", "fe", "independent"]},
        "specialist": {"settings": ["special", "independent"]},
    }
    m["placements"]["band_shares"] = {ph: {"default": {"general": 1.0}} for ph in PHASES}
    scn = tiny(m)
    plan = unmitigated(scn, placement_demand(scn, *post16_demand()))
    p16, S = PHASES.index("post16"), {s: i for i, s in enumerate(scn.setting_ids)}
    got = plan.places[1, 0, :, :, p16, :].sum(axis=0)  # [need, setting] for home a in 2025
    np.testing.assert_allclose(got[:, S["fe"]], [0, 0])
    np.testing.assert_allclose(got[:, S["independent"]], [8, 8])


def test_provider_limit_keeps_home_and_the_nearest_only() -> None:
    """Three localities in a line (a-b 10 km, b-c 10 km, a-c 20 km): with two providers each, a
    may use a and b, c may use c and b, b its nearer neighbour a (tie broken by order)."""
    from model.placements import provider_mask, spill_pairs

    m = tiny_mapping()
    m["geography"]["localities"].append({"id": "c", "name": "C"})
    m["geography"]["distances_km"] = {
        "a": {"a": 5, "b": 10, "c": 20},
        "b": {"a": 10, "b": 5, "c": 10},
        "c": {"a": 20, "b": 10, "c": 5},
    }
    m["population"]["base_0_25"]["c"] = 1000
    m["policy"] = {"max_provider_localities": 2}
    scn = tiny(m)
    d = np.array([[5, 10, 20], [10, 5, 10], [20, 10, 5]], float)
    mask = provider_mask(scn, d)
    assert mask.tolist() == [[True, True, False], [True, True, False], [False, True, True]]
    assert sorted(spill_pairs(scn)) == [(0, 1), (1, 0), (2, 1)]
    m["policy"] = {}
    assert len(spill_pairs(tiny(m))) == 6  # no limit: every pair


def test_provider_limit_of_one_keeps_children_at_home_in_the_lp() -> None:
    """tiny: a's child would take b's spare place; with one provider locality (home) the LP
    cannot route across, so a's children stay at a (or overflow) and nothing is placed a -> b."""
    from model.sufficiency import optimise

    m = tiny_mapping()
    stock, new = tiny_demand()
    free = tiny(m)
    assert unmitigated(free, placement_demand(free, stock, new)).places[:, 0, 1].sum() > 0
    m["policy"] = {"max_provider_localities": 1}
    scn = tiny(m)
    pdem = placement_demand(scn, stock, new)
    plan = unmitigated(scn, pdem)
    assert plan.places[:, 0, 1].sum() == 0  # nobody from a placed at b
    after = optimise(scn, pdem, before=plan).plan
    assert after.places[:, 0, 1].sum() == pytest.approx(0.0, abs=1e-9)
    assert after.places[:, 1, 0].sum() == pytest.approx(0.0, abs=1e-9)


def test_path_chunk_keeps_a_batch_of_paths_within_its_memory_budget() -> None:
    """Devon (8 localities) batches 25 paths; 64 localities a dozen: a path then holds
    8 x (2 x 11 x 11 x 64 x 12 x 5 + 3 x 11 x 64 x 12 x 5 x 9 + 11 x 64 x 64 x 9) bytes = 19.8 MB,
    and 13 of them fit in 256 MB (one at a time, as when the full placement array was kept per
    path, made 200 batches of one and most of a 64-locality run's time)."""
    from model.io import load_scenario
    from model.placements import PATH_CHUNK_BYTES, path_bytes, path_chunk

    scn = load_scenario(None).scenario
    assert path_chunk(scn) == 25
    assert path_bytes(scn) == 8 * (2 * 11 * 11 * 8 * 12 * 5 + 3 * 11 * 8 * 12 * 5 * 9 + 11 * 64 * 9)
    per_path_64 = 8 * (2 * 11 * 11 * 64 * 12 * 5 + 3 * 11 * 64 * 12 * 5 * 9 + 11 * 64 * 64 * 9)
    assert PATH_CHUNK_BYTES // per_path_64 == 13


# --------------------------------------------------------------------------- compiled cohorts


def reference_cohorts(
    stock: np.ndarray, new: np.ndarray, mover_rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The numpy cohorts the kernel replaced (``placements._cohorts`` and the phase sums and
    persistence ``_demand_batch`` took of it), step for step: the oracle, same four arrays."""
    from model.domain import AGE_PHASE, IS_TRANSFER_AGE, phase_sum
    from model.placements import _TINY

    K, T, A, N, L = stock.shape
    m_age = mover_rate[:, AGE_PHASE].T * ~IS_TRANSFER_AGE[:, None]  # [A, N]
    transfer = IS_TRANSFER_AGE[:, None, None]
    kinds = np.zeros((K, T, A, N, L, 3))
    inplace = np.zeros((K, T, T, len(PHASES), N, L))
    cur = np.zeros((K, T, A, N, L))  # cohort e at the current year
    cur[:, 0] = stock[:, 0]
    inplace[:, :, 0] = phase_sum(cur, 2)
    for t in range(1, T):
        prev_tot = stock[:, t - 1, :-1]  # [K, A-1, N, L] at ages 0..24
        surv = stock[:, t, 1:] - new[:, t, 1:]  # survivors now at ages 1..25
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(prev_tot > _TINY, np.clip(surv / prev_tot, 0.0, 1.0), 0.0)
        shifted = np.zeros((K, t + 1, A, N, L))
        shifted[:, :t, 1:] = cur[:, :t, :-1] * r[:, None]
        surv_tot = shifted.sum(1)  # [K, A, N, L]
        keep = shifted * (~transfer) * (1.0 - m_age[:, :, None])
        movers = surv_tot * (~transfer) * m_age[:, :, None]
        transfers = surv_tot * transfer
        entrants = stock[:, t] - keep.sum(1)
        keep[:, t] = entrants
        cur[:, : t + 1] = keep
        kinds[:, t, ..., 0] = entrants - transfers - movers
        kinds[:, t, ..., 1] = transfers
        kinds[:, t, ..., 2] = movers
        inplace[:, : t + 1, t] = phase_sum(keep, 2)
    inpl = inplace.transpose(0, 1, 2, 5, 4, 3)  # [K, E, T, L, N, P]
    entered = np.einsum("kEElnp->kElnp", inpl)
    with np.errstate(invalid="ignore", divide="ignore"):
        pers = np.where(entered[:, :, None] > _TINY, inpl / entered[:, :, None], 0.0)
    eye = np.eye(T, dtype=bool)[None, :, :, None, None, None]
    pers = np.where(eye, 1.0, pers)
    pers = np.where(np.tri(T, dtype=bool).T[None, :, :, None, None, None], pers, 0.0)
    return phase_sum(kinds, 2), inplace, pers.transpose(0, 1, 2, 5, 4, 3), phase_sum(stock, 2)


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Exactly equal, signed zeros included (every Monte Carlo figure is built on these)."""
    assert got.shape == want.shape
    assert np.array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def devon_mover_rate(scn: Scenario) -> np.ndarray:
    """The Devon default's mover (placement breakdown) rates [N, P], as ``_demand_batch`` uses."""
    from model.domain import by_phase_need, suitability
    from model.placements import _mover_arrays

    needs, bands = list(scn.demand.needs), list(scn.bands)
    mix = by_phase_need(scn.placements.mix, needs, scn.setting_ids)
    shares = by_phase_need(scn.placements.band_shares, needs, bands)
    return _mover_arrays(scn, mix, shares, suitability(scn))[0]


@pytest.fixture(scope="module")
def devon_paths() -> tuple[Scenario, Any, np.ndarray, np.ndarray]:
    """50 Monte Carlo paths of the Devon default, as the Monte Carlo runner samples them."""
    from model.demand import run_demand
    from model.io import load_scenario
    from model.montecarlo import path_sample

    scn = load_scenario(None).scenario
    dem = run_demand(scn, 50, scn.run.seed)
    ps, pn = path_sample(dem, np.arange(50))
    return scn, dem, ps, pn


def test_phases_are_short_enough_for_the_kernels_phase_sums() -> None:
    """numpy's reduceat adds a phase's ages after the first in order only while there are fewer
    than 8 of them (then it sums pairwise); the kernel's phase sums assume that."""
    from model.scenario import PHASE_AGES

    assert max(hi - lo for lo, hi in PHASE_AGES.values()) < 8


def test_compiled_cohorts_equal_numpy_on_devon_monte_carlo_paths(devon_paths) -> None:
    """A batch of 25 paths, one path alone and the central forecast: every array bit for bit."""
    from model.placements import _cohorts

    scn, dem, ps, pn = devon_paths
    m_rate = devon_mover_rate(scn)
    assert m_rate.max() > 0  # breakdowns happen in the Devon default
    central = (np.asarray(dem.stock, float)[None], np.asarray(dem.new, float)[None])
    for stock, new in [(ps[:25], pn[:25]), (ps[37:38], pn[37:38]), central]:
        got = _cohorts(stock, new, m_rate)
        for g, w in zip(got, reference_cohorts(stock, new, m_rate), strict=True):
            assert_same_bits(g, w)
        assert got[0][:, 1:, ..., 2].sum() > 0  # some placements break down


def test_demand_batch_with_compiled_cohorts_is_unchanged(devon_paths, monkeypatch) -> None:
    """What the Monte Carlo runner reads from a batch: the same values, shapes and memory layout
    (later sums over these arrays add in an order that follows the layout)."""
    import model.placements as placements

    scn, _, ps, pn = devon_paths
    got = placements._demand_batch(scn, ps[25:50], pn[25:50])
    monkeypatch.setattr(placements, "_cohorts", reference_cohorts)
    want = placements._demand_batch(scn, ps[25:50], pn[25:50])
    assert got.keys() == want.keys()
    for key, w in want.items():
        if isinstance(w, np.ndarray):
            assert_same_bits(got[key], w)
            assert got[key].strides == w.strides, key


def test_cohorts_hold_the_stock_and_entrants_on_noisy_paths(devon_paths) -> None:
    """Sum over cohorts == stock in every year, and each year's entrants by kind add up to the
    cohort entering that year (up to rounding), on Poisson-noisy paths."""
    from model.placements import _cohorts

    scn, _, ps, pn = devon_paths
    kinds, inplace, pers, stock_p = _cohorts(ps[:25], pn[:25], devon_mover_rate(scn))
    np.testing.assert_allclose(inplace.sum(1), stock_p, rtol=1e-12, atol=1e-9)
    T = stock_p.shape[1]
    entering = inplace[:, np.arange(T), np.arange(T)]  # [K, T, P, N, L]
    np.testing.assert_allclose(kinds.sum(-1)[:, 1:], entering[:, 1:], rtol=1e-12, atol=1e-9)
    assert (pers[:, np.arange(T), np.arange(T)] == 1).all()
    assert (pers >= -1e-12).all() and (pers <= 1 + 1e-12).all()  # shares, up to rounding


@pytest.mark.parametrize("K, N, L, seed", [(1, 1, 1, 0), (1, 3, 2, 1), (4, 2, 3, 2), (9, 1, 4, 3)])
def test_compiled_cohorts_equal_numpy_on_random_stock(K: int, N: int, L: int, seed: int) -> None:
    """Random stock and new plans of mixed magnitudes: empty cells, cells below the survival
    guard, more new plans than stock (negative survivors), survival above 1, signed zeros, and
    mover rates from 0 to 1."""
    from model.domain import phase_sum
    from model.placements import _TINY, _cohorts
    from model.scenario import PHASE_AGES

    rng = np.random.default_rng(seed)
    T, A = 6, 26
    shape = (K, T, A, N, L)
    stock = rng.uniform(0, 50, shape) * 10.0 ** rng.integers(-3, 4, shape)
    stock[rng.random(shape) < 0.15] = 0.0
    stock[rng.random(shape) < 0.05] = -0.0
    stock[rng.random(shape) < 0.05] = _TINY * rng.uniform(0.1, 1.0)
    new = stock * rng.uniform(0, 1.3, shape)
    new[rng.random(shape) < 0.2] = 0.0
    mover_rate = rng.uniform(0, 0.4, (N, len(PHASES)))
    mover_rate[0, :2] = [0.0, 1.0]  # no breakdowns; every placement breaks down
    got = _cohorts(stock, new, mover_rate)
    for g, w in zip(got, reference_cohorts(stock, new, mover_rate), strict=True):
        assert_same_bits(g, w)
    # the data do tell orders of addition apart: ages summed in order give other bits
    in_order = np.stack([stock[:, :, lo : hi + 1].sum(2) for lo, hi in PHASE_AGES.values()], 2)
    assert not np.array_equal(in_order, phase_sum(stock, 2))
