"""Demand stage: stock-flow identities, rates per head, levers, Monte Carlo reproducibility and bands,
the exact Poisson sampler, and the Devon default against the January 2025 SEN2 count."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from model import cohort
from model import demand as dm
from model.domain import AGE_PHASE
from model.io import ScenarioError, default_scenario_path, read_yaml_file, validate_mapping
from model.poisson import POISSON_DENSE_STEPS, POISSON_DIRECT_MAX, POISSON_MAX_STEPS
from model.scenario import MAX_AGE, PHASE_AGES, PHASES, Scenario

DEVON = read_yaml_file(default_scenario_path())


def scenario(edit: Any = None, **demand: Any) -> Scenario:
    """The Devon default with a typed growth of 10% and no pooled prior (the model as the scenario
    states it), ``demand`` keys replaced and an optional edit of the whole mapping."""
    m = copy.deepcopy(DEVON)
    m["demand"]["growth"] = 0.10
    m["demand"].update(demand)
    m["demand"]["calibration"] = {"growth_prior": "none", **m["demand"].get("calibration", {})}
    if edit is not None:
        edit(m)
    return validate_mapping(m, "test.yaml")


def quiet(**demand: Any) -> Scenario:
    """Devon without calibration or uncertainty: the model exactly as the scenario states it."""
    demand.setdefault("calibration", {"enabled": False})
    demand.setdefault(
        "uncertainty",
        {
            "growth_sd": 0,
            "incidence_cv": 0,
            "cessation_cv": 0,
            "poisson": False,
            "parameters": "given",
        },
    )
    return scenario(**demand)


@pytest.fixture(scope="module")
def devon() -> Scenario:
    return scenario()


@pytest.fixture(scope="module")
def devon_run(devon: Scenario) -> dm.DemandResult:
    """Devon's demand stage as a run has it: its joiners are the statutory pipeline's plans."""
    from model.process import pipeline_for

    return dm.run_demand(devon, 200, 7, pipeline=pipeline_for(devon, 200, 7, "test.yaml"))


def assert_identity(stock: np.ndarray, new: np.ndarray, ceased: np.ndarray) -> None:
    """stock[t, a+1] = stock[t-1, a] - ceased[t, a] + new[t, a+1]; stock[t, 0] = new[t, 0]."""
    np.testing.assert_allclose(
        stock[1:, 1:], stock[:-1, :-1] - ceased[1:, :-1] + new[1:, 1:], rtol=1e-12, atol=1e-9
    )
    np.testing.assert_allclose(stock[1:, 0], new[1:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ceased[1:, MAX_AGE], stock[:-1, MAX_AGE], rtol=1e-12, atol=1e-12)
    totals = stock.sum(axis=(1, 2, 3))
    flows = new.sum(axis=(1, 2, 3)) - ceased.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(totals[1:], totals[:-1] + flows[1:], rtol=1e-12)


# --------------------------------------------------------------------------- Devon default


def test_devon_fit_is_in_sample_and_the_base_year_is_the_count(devon_run: dm.DemandResult) -> None:
    """In-sample, not validation: January 2025 is one of the counts calibration fits, so being
    close to it only shows the fit converged. The base year is the January 2024 count exactly."""
    i = devon_run.years.index(2025)
    assert abs(devon_run.stock[i].sum() / 9848 - 1) < 0.03
    fitted = devon_run.calibration.targets
    # ignore_before 2023: 2019-2022 are held out; 2024 (the start) is compared one step on
    assert set(fitted["year"]) == {2023, 2024, 2025}
    assert devon_run.stock[0].sum() == pytest.approx(8873)
    assert devon_run.path_stock[:, 0].sum(axis=(1, 2, 3)) == pytest.approx(8873, rel=1e-5)


def test_devon_back_cast_of_held_out_2022_count(devon: Scenario, devon_run) -> None:
    """Out of sample: the fit never sees January 2019-2022 (SEN2's older basis). Back-cast from
    2024 with the fitted rates, January 2022 lands within 2% of the published 7,926. Earlier
    years do not (2019: about 7,060 against 5,162): Devon's 2019-2021 surge is not a constant
    growth path, which the README's comparison table reports."""
    years = list(range(2019, devon.years[-1] + 1))
    inp = dm.prepare(devon, years)
    back = cohort.backcast_totals(inp, devon_run.calibration.params, 8873.0)
    assert back[years.index(2022)] == pytest.approx(7926, rel=0.02)
    assert back[years.index(2019)] > 5162 * 1.2  # the miss the README states


def test_devon_base_year_new_plans_match_the_rate_per_head(devon: Scenario) -> None:
    # 219,800 residents x 8.3 requests per 1,000 x 0.51257 conversion (SEN2 2023: 1,101 new plans
    # / 2,148 requests) = 935.1 plans a year
    inp = dm.prepare(devon, devon.years)
    pop = sum(devon.population.base_0_25.values())
    assert pop == 219_800
    assert inp.rate[0].sum() == pytest.approx(pop * 8.3 / 1000 * 0.51257)
    by_age = inp.rate[0].sum(axis=(1, 2))
    shares = np.array(devon.demand.new_age_shares)  # given to 4 decimals: sum 1.0004
    np.testing.assert_allclose(by_age / by_age.sum(), shares / shares.sum(), atol=1e-12)
    # growth 10% a year on the rate per head, population growth 0.3% a year
    new = inp.new_mean(dm.Params(1.0, 0.10, 1.0))
    assert new[3].sum() - inp.backlog[3].sum() == pytest.approx(
        pop * 8.3 / 1000 * 0.51257 * 1.10**3 * 1.003**3
    )
    # Devon's backlog clearance comes from its statutory pipeline (process), not demand.backlog
    assert inp.backlog.sum() == 0


def test_devon_identity_and_no_negatives(devon_run: dm.DemandResult) -> None:
    assert_identity(devon_run.stock, devon_run.new, devon_run.ceased)
    assert devon_run.stock.shape[1] == MAX_AGE + 1 == 26
    for arr in (devon_run.stock, devon_run.new, devon_run.ceased, devon_run.path_stock):
        assert arr.min() >= 0


def test_devon_bands_are_ordered_and_needs_add_up(devon_run: dm.DemandResult) -> None:
    t = devon_run.tables()["demand"]
    assert list(t.columns) == [
        "year",
        "academic_year",
        "locality",
        "need",
        "phase",
        "plans",
        "plans_p10",
        "plans_p90",
    ]
    assert (t["plans_p10"] <= t["plans"] + 1e-9).all()
    assert (t["plans"] <= t["plans_p90"] + 1e-9).all()
    assert t.loc[t["year"] == 2025, "academic_year"].iloc[0] == "2024/25"
    assert len(t) == 11 * 8 * 12 * 5
    h = devon_run.headline()
    for y in h["plans"]:
        assert h["plans_p10"][y] <= h["plans"][y] <= h["plans_p90"][y]
    # the spread widens with the horizon
    assert (
        h["plans_p90"]["2034"] - h["plans_p10"]["2034"]
        > h["plans_p90"]["2026"] - h["plans_p10"]["2026"]
    )


def test_tables_sum_over_need_to_totals(devon: Scenario) -> None:
    res = dm.run_demand(devon, 1, 0)
    t = res.tables()["demand"]
    assert "plans_p10" not in t.columns  # one path: deterministic, no bands
    by_year = t.groupby("year")["plans"].sum()
    np.testing.assert_allclose(by_year.to_numpy(), res.stock.sum(axis=(1, 2, 3)), rtol=1e-9)
    # totals by (year, locality, phase) equal the sum of the stock over need and the phase's ages
    g = t.groupby(["year", "locality", "phase"])["plans"].sum()
    for (year, loc, phase), v in g.sample(25, random_state=1).items():
        lo, hi = PHASE_AGES[phase]
        ti, li = res.years.index(year), res.localities.index(loc)
        assert v == pytest.approx(res.stock[ti, lo : hi + 1, :, li].sum(), rel=1e-9)
    f = res.tables()["demand_flows"]
    lhs = f["plans_end"]
    rhs = (
        f["plans_start"]
        + f["new_plans"]
        - f["ceased_plans"]
        - f["aged_out_plans"]
        + f["aged_in_plans"]
    )
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-9)
    assert f["backlog_plans"].sum() == 0  # Devon's backlog comes from the process section
    assert f.loc[f["phase"] == "post19", "aged_out_plans"].sum() == 0
    assert f.loc[f["phase"] == "early_years", "aged_in_plans"].sum() == 0
    assert f.groupby("year")["new_plans"].sum().to_numpy() == pytest.approx(
        res.new[1:].sum(axis=(1, 2, 3))
    )


# --------------------------------------------------------------------------- properties


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    growth=st.floats(-0.3, 0.5),
    cessation=st.floats(0.0, 1.0),
    late=st.floats(0.0, 1.0),
    backlog=st.floats(0, 2000),
    factor=st.floats(0.0, 3.0),
    poisson=st.booleans(),
    cv=st.floats(0, 0.5),
)
def test_properties_hold_for_any_rates(
    growth: float,
    cessation: float,
    late: float,
    backlog: float,
    factor: float,
    poisson: bool,
    cv: float,
) -> None:
    scn = scenario(
        lambda m: m["meta"].update(horizon_years=4),
        growth=growth,
        cessation_rate=cessation,
        cessation_by_age={18: late, 24: late},
        backlog=[{"year": 2026, "plans": backlog}],
        levers=[{"rate": "cessation", "factor": factor, "from_year": 2026, "ages": [16, 17, 18]}],
        uncertainty={
            "growth_sd": cv / 5,
            "incidence_cv": cv,
            "cessation_cv": cv,
            "poisson": poisson,
        },
    )
    res = dm.run_demand(scn, 24, 3)
    assert_identity(res.stock, res.new, res.ceased)
    assert res.stock.min() >= 0 and res.ceased.min() >= 0 and res.new.min() >= 0
    assert res.path_stock.min() >= 0
    assert res.path_stock.shape == (24, 5, 26, 12, 8)
    # every plan ends after age 25: nothing aged 25 survives into the next year
    assert (res.ceased[1:, MAX_AGE] == res.stock[:-1, MAX_AGE]).all()
    t = res.tables()["demand"]
    assert (t["plans_p10"] <= t["plans"] + 1e-6).all() and (
        t["plans"] <= t["plans_p90"] + 1e-6
    ).all()
    np.testing.assert_allclose(
        res.path_phase.sum(axis=(2, 3, 4)), res.path_stock.sum(axis=(2, 3, 4)), rtol=1e-5
    )
    if poisson:
        # per path and cell: stock[t, a+1] - stock[t-1, a] = new - ceased, whole plans, and the
        # leavers never exceed the plans there were (the base year's shares are fractional)
        # (years 2027 and 2028: the 2026 backlog arrives spread in fractions). Where every plan
        # there ceased (leavers capped at the plans there were) only whole new plans remain.
        cur = res.path_stock[:, 3:, 1:]
        step = cur - res.path_stock[:, 2:-1, :-1]
        whole = np.isclose(step, np.round(step), atol=2e-3) | np.isclose(
            cur, np.round(cur), atol=2e-3
        )
        assert whole.all()
        assert (res.path_stock[:, 1:, 1:] >= 0).all()


def test_zero_uncertainty_paths_equal_the_deterministic_run() -> None:
    res = dm.run_demand(quiet(calibration={"enabled": True}), 40, 11)
    assert res.path_stock.dtype == np.float32
    for p in range(40):
        np.testing.assert_allclose(res.path_stock[p], res.stock, rtol=2e-5, atol=1e-3)
    t = res.tables()["demand"]
    np.testing.assert_allclose(t["plans_p10"], t["plans_p90"], rtol=2e-5, atol=1e-3)


def test_one_path_is_the_deterministic_run(devon: Scenario) -> None:
    res = dm.run_demand(devon, 1, 5)
    np.testing.assert_allclose(res.path_stock[0], res.stock, rtol=1e-6)


def test_same_seed_identical_different_seed_different(devon: Scenario) -> None:
    a = dm.run_demand(devon, 150, 42, threads=2)
    b = dm.run_demand(devon, 150, 42, threads=1)
    c = dm.run_demand(devon, 150, 43, threads=2)
    assert np.array_equal(a.path_stock, b.path_stock)
    assert a.tables()["demand"].equals(b.tables()["demand"])
    assert a.headline() == b.headline()
    assert not np.array_equal(a.path_stock, c.path_stock)
    assert a.headline()["plans"] != c.headline()["plans"]


def test_poisson_flows_add_spread_with_fixed_parameters() -> None:
    # Moderate leaving rates: with rates near 0.5 in cells holding under one plan, leavers drawn
    # above a cell's stock are capped at it, which lifts the mean (Devon's SEN2-derived 0.43 a
    # year at 19-24 does, by about 0.6% after six years).
    noisy = dm.run_demand(
        quiet(
            uncertainty={"growth_sd": 0, "incidence_cv": 0, "cessation_cv": 0, "poisson": True},
            cessation_by_age={15: 0.10, 17: 0.15, 18: 0.30, 21: 0.20, 24: 0.50},
        ),
        400,
        1,
    )
    tot = noisy.path_stock.sum(axis=(2, 3, 4), dtype=np.float64)
    det = noisy.stock.sum(axis=(1, 2, 3))
    # mean across paths stays near the deterministic path; the spread of the first step is
    # sqrt(new + ceased) when both are Poisson. Leavers are drawn as Poisson and capped at the
    # cell's stock, which lifts the mean a little where cells are small and cessation high
    # (about 0.7% with Devon's 42.5% a year at 19-24): hence 1%, not exact.
    np.testing.assert_allclose(tot.mean(axis=0), det, rtol=1e-2)
    flows = noisy.new[1].sum() + noisy.ceased[1, :MAX_AGE].sum()
    assert tot[:, 1].std() == pytest.approx(np.sqrt(flows), rel=0.15)


# --------------------------------------------------------------------------- levers


def _run(**demand: Any) -> dm.DemandResult:
    return dm.run_demand(quiet(**demand), 1, 0)


@settings(max_examples=20, deadline=None)
@given(
    rate=st.sampled_from(["requests", "conversion", "new_plans", "cessation"]),
    factor=st.floats(0.0, 3.0).filter(lambda f: abs(f - 1) > 0.05),
    from_year=st.integers(2025, 2030),
    ramp=st.integers(0, 3),
    # Ages 4-24: Devon's SEN2 data has no new plans at 0-2 and no leavers at 0-3, where a lever
    # (rightly) changes nothing.
    ages=st.lists(st.integers(4, 24), min_size=1, max_size=8, unique=True),
)
def test_any_lever_moves_stock_one_way_and_only_from_its_year(
    rate: str, factor: float, from_year: int, ramp: int, ages: list[int]
) -> None:
    base = _base_run()
    lev = _run(
        levers=[
            {
                "rate": rate,
                "factor": factor,
                "from_year": from_year,
                "ramp_years": ramp,
                "ages": ages,
            }
        ]
    )
    i = base.years.index(from_year)
    np.testing.assert_array_equal(lev.stock[:i], base.stock[:i])
    more_plans = (factor > 1) != (rate == "cessation")
    diff = lev.stock[i:] - base.stock[i:]
    if more_plans:
        assert diff.min() >= -1e-9 and diff.sum() > 0
    else:
        assert diff.max() <= 1e-9 and diff.sum() < 0


_BASE: list[dm.DemandResult] = []


def _base_run() -> dm.DemandResult:
    if not _BASE:
        _BASE.append(_run())
    return _BASE[0]


def test_request_lever_lowers_new_plans_only_from_its_year_and_ages() -> None:
    base = _run()
    lev = _run(
        levers=[{"rate": "requests", "factor": 0.5, "from_year": 2028, "ages": [0, 1, 2, 3, 4]}]
    )
    i = base.years.index(2028)
    np.testing.assert_array_equal(lev.stock[:i], base.stock[:i])
    np.testing.assert_allclose(lev.new[i, :5], 0.5 * base.new[i, :5])
    np.testing.assert_allclose(lev.new[i, 5:], base.new[i, 5:])
    assert lev.stock[i:].sum() < base.stock[i:].sum()


def test_cessation_lever_raises_leavers_for_chosen_group_only() -> None:
    base = _run()
    lev = _run(
        levers=[
            {
                "rate": "cessation",
                "factor": 2.0,
                "from_year": 2027,
                "ages": [19, 20, 21, 22, 23, 24],
                "needs": ["SEMH"],
            }
        ]
    )
    i, n = base.years.index(2027), base.needs.index("SEMH")
    np.testing.assert_array_equal(lev.stock[:i], base.stock[:i])
    np.testing.assert_allclose(lev.ceased[i, 19:25, n], 2 * base.ceased[i, 19:25, n])
    other = [k for k in range(len(base.needs)) if k != n]
    np.testing.assert_allclose(lev.stock[:, :, other], base.stock[:, :, other])
    assert lev.stock[i:, :, n].sum() < base.stock[i:, :, n].sum()


def test_new_plans_lever_by_locality_with_a_ramp_and_end_year() -> None:
    base = _run()
    lev = _run(
        levers=[
            {
                "rate": "new_plans",
                "factor": 1.6,
                "from_year": 2026,
                "to_year": 2030,
                "ramp_years": 3,
                "localities": ["exeter"],
            }
        ]
    )
    li = base.localities.index("exeter")
    ratio = lev.new[:, :, :, li].sum(axis=(1, 2)) / np.maximum(
        base.new[:, :, :, li].sum(axis=(1, 2)), 1e-12
    )
    want = {2025: 1.0, 2026: 1.2, 2027: 1.4, 2028: 1.6, 2030: 1.6, 2031: 1.0}
    for year, r in want.items():
        i = base.years.index(year)
        # 2025 carries the backlog (not scaled by rate levers), so compare the rate part there
        assert ratio[i] == pytest.approx(r) if year != 2025 else ratio[i] == pytest.approx(1.0)
    others = [k for k in range(8) if k != li]
    np.testing.assert_allclose(lev.stock[..., others], base.stock[..., others])


def test_conversion_lever_and_growth_end_year() -> None:
    base = _run()
    lev = _run(levers=[{"rate": "conversion", "factor": 0.8, "from_year": 2025}])
    np.testing.assert_allclose(
        lev.new[1:] - lev.backlog[1:], 0.8 * (base.new[1:] - base.backlog[1:])
    )
    flat = _run(growth_end_year=2027)
    inp = dm.prepare(quiet(growth_end_year=2027), list(range(2024, 2035)))
    per_head = inp.rate.sum(axis=(1, 2, 3)) / inp.population.sum(axis=(1, 2))
    new = flat.new.sum(axis=(1, 2, 3)) - flat.backlog.sum(axis=(1, 2, 3))
    rate = new / inp.population.sum(axis=(1, 2)) / per_head
    assert rate[3] == pytest.approx(1.1**3)
    assert rate[-1] == pytest.approx(1.1**3)  # flat after growth_end_year


def test_locality_prevalence_moves_plans_without_changing_the_county_total() -> None:
    base = _run()
    prev = _run(locality_prevalence={"torridge": 1.5, "exeter": 0.8})
    assert prev.new[1:].sum() == pytest.approx(base.new[1:].sum())
    t, e = base.localities.index("torridge"), base.localities.index("exeter")
    assert prev.stock[0, ..., t].sum() > base.stock[0, ..., t].sum()
    assert prev.stock[0, ..., e].sum() < base.stock[0, ..., e].sum()
    assert prev.stock[0].sum() == pytest.approx(base.stock[0].sum())


def test_need_shares_for_new_plans_and_phases() -> None:
    res = _run(new_need_shares={"ASD": 0.5, "SEMH": 0.5})
    n_asd = res.needs.index("ASD")
    assert res.new[1:, :, n_asd].sum() / (res.new[1:].sum() - res.backlog[1:].sum()) > 0.45
    assert PHASES[0] == "early_years" and AGE_PHASE[11] == PHASES.index("secondary")


@pytest.mark.parametrize("paths", [1, 2, 7, 100])
def test_quantiles_over_paths_match_numpy(paths: int) -> None:
    arr = np.random.default_rng(paths).poisson(5.0, (paths, 3, 4)).astype(np.float32)
    got = dm.quantiles_over_paths(arr, (0.1, 0.5, 0.9))
    np.testing.assert_allclose(got, np.quantile(arr, [0.1, 0.5, 0.9], axis=0), rtol=1e-6)


# --------------------------------------------------------------------------- Poisson sampler


@pytest.mark.parametrize("lam", [0.02, 0.4, 1.7, 6.0, 11.5, 40.0])
def test_poisson_sampler_matches_the_distribution(lam: float) -> None:
    rng = np.random.Generator(np.random.SFC64(9))
    x = dm.poisson_f32(np.full(400_000, lam, dtype=np.float32), rng)
    assert x.dtype == np.float32 and (x == np.round(x)).all() and x.min() >= 0
    assert x.mean() == pytest.approx(lam, rel=0.02, abs=0.002)
    assert x.var() == pytest.approx(lam, rel=0.03, abs=0.002)
    # chi-square on the pmf over the bulk of the distribution
    ks = np.arange(int(lam + 6 * np.sqrt(lam) + 3))
    obs = np.bincount(x.astype(int), minlength=ks.size)[: ks.size]
    exp = stats.poisson.pmf(ks, lam) * x.size
    keep = exp > 20
    chi2 = (((obs - exp) ** 2) / exp)[keep].sum()
    assert chi2 < stats.chi2.ppf(0.999, keep.sum() - 1)


def test_poisson_sampler_mixed_means_and_reproducible() -> None:
    lam = np.random.default_rng(0).lognormal(-1, 1.5, 100_000).astype(np.float32)
    a = dm.poisson_f32(lam, np.random.Generator(np.random.SFC64(1)))
    b = dm.poisson_f32(lam, np.random.Generator(np.random.SFC64(1)))
    assert np.array_equal(a, b)
    assert a.sum() == pytest.approx(lam.sum(), rel=0.01)
    assert dm.poisson_f32(np.zeros(10, np.float32), np.random.default_rng(0)).sum() == 0


def _poisson_reference(lam: np.ndarray, rng: np.random.Generator, raw: bool = False) -> np.ndarray:
    """Plain numpy inverse CDF with the sampler's float32 recurrence, every draw to the end.

    The uniforms: ``Generator.random`` (float32), or with ``raw`` the top 24 bits of each half of
    ``random_raw``'s words, as the year step takes them (the same values on SFC64; an odd count
    leaves the generator in a different state, as the last word's high half goes unused).
    """
    if raw:
        bits = rng.bit_generator.random_raw((lam.size + 1) // 2).view(np.uint32)[: lam.size]
        u = (bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
    else:
        u = rng.random(lam.size, dtype=np.float32)  # on SFC64: the same uniforms as the raw bits
    cdf = np.exp(-lam)
    p = cdf.copy()
    x = np.zeros(lam.size, dtype=np.float32)
    for k in range(1, POISSON_MAX_STEPS + 2):
        x += u > cdf  # X >= k
        if k > POISSON_MAX_STEPS:
            break
        p = p * lam
        p = p * np.float32(1.0 / k)
        cdf = cdf + p
    big = np.flatnonzero(lam > POISSON_DIRECT_MAX)
    x[big] = rng.poisson(lam[big].astype(np.float64))
    return x


def test_poisson_kernel_matches_a_numpy_reference_bit_for_bit() -> None:
    means = [np.geomspace(0.02, 40, 30_000), np.zeros(500), np.full(3000, 0.3)]
    means += [np.full(2000, v) for v in (5.9, 11.99, 12.0, 12.01)]
    lam = np.random.default_rng(3).permutation(np.concatenate(means)).astype(np.float32)
    lam = lam[:-1]  # odd length: the last raw word's high half goes unused
    got_rng, ref_rng = (np.random.Generator(np.random.SFC64(11)) for _ in range(2))
    got = dm.poisson_f32(lam, got_rng)
    ref = _poisson_reference(lam, ref_rng)
    assert np.array_equal(got, ref)
    assert got.max() > POISSON_DENSE_STEPS  # the per-draw tail ran
    assert got_rng.bit_generator.random_raw() == ref_rng.bit_generator.random_raw()


# --------------------------------------------------------------------------- compiled year step


def _small_inputs(n_needs: int = 3, n_locs: int = 5) -> tuple[cohort.DemandInputs, np.ndarray]:
    """Devon's inputs on its projection years cut to n_needs x n_locs cells (15: odd, so a path's
    draws start on either half of a raw word), joiner rates x 30 and a base stock of 9,000 so some
    means pass POISSON_DIRECT_MAX, a backlog year, and cessation 0.95 at 18 so cessation x the
    path's multiplier passes 1 (capped)."""
    scn = scenario(backlog=[{"year": 2026, "plans": 300}])
    inp = dm.prepare(scn, scn.years)

    def cut(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[..., :n_needs, :n_locs])

    q = cut(inp.q)
    q[:, 18] = 0.95
    inp = dataclasses.replace(
        inp,
        needs=inp.needs[:n_needs],
        localities=inp.localities[:n_locs],
        population=inp.population[..., :n_locs],
        rate=cut(inp.rate) * 30.0,
        q=q,
        backlog=cut(inp.backlog),
        split=cut(inp.split),
        new_split=cut(inp.new_split),
    )
    return inp, 9000.0 * inp.split / inp.split.sum()


def _small_draws(paths: int) -> dm.PathDraws:
    r = np.random.default_rng(paths)
    return dm.PathDraws(
        incidence=r.lognormal(0.0, 0.2, paths),
        growth=r.normal(0.05, 0.03, paths),
        cessation=r.lognormal(0.0, 0.3, paths),
    )


def _reference_year(
    mc: Any, t: int, p0: int, p1: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year ``t`` of paths p0..p1-1 in plain numpy, the code the compiled step replaced: the stock
    [n, A, C], the draws (or means) [n, 25 + 26, C] and the means, from ``mc.stock[p0:p1, t - 1]``."""
    prev = mc.stock[p0:p1, t - 1]
    kc = mc.ces_factor[p0:p1, None, None]
    lam_c = np.minimum(mc.q[t][None] * kc, np.float32(1.0)) * prev[:, :MAX_AGE]
    lam_n = mc.rate[t][None] * mc.new_factor[t, p0:p1, None, None]
    lam = np.concatenate([lam_c, lam_n], axis=1)
    if mc.poisson:
        flows = _poisson_reference(lam.reshape(-1), rng, raw=True).reshape(lam.shape)
        ces = np.minimum(flows[:, :MAX_AGE], prev[:, :MAX_AGE])
    else:
        flows, ces = lam, lam_c
    new = flows[:, MAX_AGE:]
    if mc.has_backlog[t]:
        new = new + mc.backlog[t]
    cur = np.empty_like(prev)
    cur[:, 0] = new[:, 0]
    cur[:, 1:] = (prev[:, :MAX_AGE] - ces) + new[:, 1:]
    return cur, flows, lam


def _reference_phase(stock: np.ndarray) -> np.ndarray:
    """Phase sums [..., PH, C] of stock [..., A, C], numpy's sum over each phase's ages."""
    return np.stack([stock[..., lo : hi + 1, :].sum(axis=-2) for lo, hi in PHASE_AGES.values()], -2)


def _reference_paths(
    inputs: cohort.DemandInputs, draws: dm.PathDraws, start: np.ndarray, poisson: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``simulate_paths`` in plain numpy: chunk by chunk, year by year (stock, phase flattened)."""
    mc = dm._monte_carlo(inputs, draws, start, poisson, None)
    P, T = mc.stock.shape[:2]
    bounds = [(p0, min(p0 + dm.CHUNK_PATHS, P)) for p0 in range(0, P, dm.CHUNK_PATHS)]
    for (p0, p1), ss in zip(bounds, np.random.SeedSequence(seed).spawn(len(bounds)), strict=True):
        rng = np.random.Generator(np.random.SFC64(ss))
        mc.stock[p0:p1, 0] = mc.start
        for t in range(1, T):
            mc.stock[p0:p1, t] = _reference_year(mc, t, p0, p1, rng)[0]
    return mc.stock, _reference_phase(mc.stock)


def test_kernel_sfc64_is_numpys_stream() -> None:
    rng = np.random.Generator(np.random.SFC64(21))
    state = np.array(rng.bit_generator.state["state"]["state"], dtype=np.uint64)
    got = np.empty(1001, dtype=np.uint64)
    dm._kernels().sfc64_raw(state, got)
    assert np.array_equal(got, rng.bit_generator.random_raw(1001))
    assert np.array_equal(state, rng.bit_generator.state["state"]["state"])


@pytest.mark.parametrize("poisson", [True, False])
@pytest.mark.parametrize("chunk", [(0, 64), (64, 67)])
def test_year_step_matches_the_numpy_reference_bit_for_bit(
    poisson: bool, chunk: tuple[int, int]
) -> None:
    """Each year of one chunk (64 paths; 3 paths, an odd count of draws) against plain numpy from
    the same stock a year earlier, with the stock-flow identity and leavers within the stock."""
    inputs, start = _small_inputs()
    mc = dm._monte_carlo(inputs, _small_draws(67), start, poisson, None)
    p0, p1 = chunk
    ss = np.random.SeedSequence(4)
    stream, ref_rng = dm._Stream(ss), np.random.Generator(np.random.SFC64(ss))
    work = dm._ChunkWork(mc.stock.shape[3])
    mc.stock[p0:p1, 0] = mc.start
    large = capped = 0
    for t in range(1, mc.stock.shape[1]):
        cur, flows, lam = _reference_year(mc, t, p0, p1, ref_rng)
        dm._simulate_year(mc, t, p0, p1, stream, work)
        assert np.array_equal(mc.stock[p0:p1, t], cur)
        assert np.array_equal(mc.phase[p0:p1, t], _reference_phase(cur))
        if not poisson:
            continue
        drawn = work.flows[: flows.size].reshape(flows.shape)
        assert np.array_equal(drawn, flows)
        # stock[t, a + 1] = stock[t - 1, a] - ceased[a] + new[a + 1], stock[t, 0] = new[0]
        prev = mc.stock[p0:p1, t - 1]
        ceased = np.minimum(drawn[:, :MAX_AGE], prev[:, :MAX_AGE])
        new = drawn[:, MAX_AGE:] + mc.backlog[t]
        assert np.array_equal(mc.stock[p0:p1, t, 1:], (prev[:, :MAX_AGE] - ceased) + new[:, 1:])
        assert np.array_equal(mc.stock[p0:p1, t, 0], new[:, 0])
        assert (drawn == np.round(drawn)).all() and drawn.min() >= 0
        assert (mc.stock[p0:p1, t, 1:] >= new[:, 1:]).all()  # no more leavers than plans
        large += int((lam > POISSON_DIRECT_MAX).sum())
        capped += int((drawn[:, :MAX_AGE] > prev[:, :MAX_AGE]).sum())
    if poisson:
        assert large > 0 and capped > 0  # numpy's sampler and the cap both ran
        assert np.array_equal(stream.state, ref_rng.bit_generator.state["state"]["state"])


@pytest.mark.parametrize("poisson", [True, False])
def test_paths_match_the_numpy_reference_whatever_the_threads(poisson: bool) -> None:
    inputs, start = _small_inputs()
    draws = _small_draws(131)  # three chunks, the last of 3 paths
    ref_stock, ref_phase = _reference_paths(inputs, draws, start, poisson, 8)
    for threads in (1, 2):
        stock, phase = dm.simulate_paths(
            inputs, draws, start, poisson=poisson, seed=np.random.SeedSequence(8), threads=threads
        )
        assert np.array_equal(stock.reshape(ref_stock.shape), ref_stock)
        assert np.array_equal(phase.reshape(ref_phase.shape), ref_phase)


# --------------------------------------------------------------------------- bad input


def test_new_plans_at_an_age_without_population_is_a_scenario_error() -> None:
    def edit(m: dict[str, Any]) -> None:
        shares = list(m["population"]["age_shares"])
        shares[5], shares[6] = 0.0, shares[5] + shares[6]  # Devon issues plans at age 5
        m["population"]["age_shares"] = shares

    with pytest.raises(ScenarioError) as e:  # caught by validation, before the stage runs
        dm.run_demand(scenario(edit), 1, 0, source="x.yaml")
    assert "test.yaml: demand.new_age_shares.5:" in str(e.value)


def test_growth_end_year_before_base_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="demand.growth_end_year: 2020 is before"):
        dm.run_demand(scenario(growth_end_year=2020), 1, 0)


def test_engine_puts_demand_in_results() -> None:
    from model.engine import run_scenario
    from model.io import load_scenario

    res = run_scenario(load_scenario(None), paths=2, seed=1)
    assert {"demand", "demand_flows"} <= set(res.tables)
    assert res.summary["demand"]["plans"]["2024"] == pytest.approx(8873)
    assert isinstance(res.artefacts["demand"], dm.DemandResult)
