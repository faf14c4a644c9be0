"""EHCP demand: a cohort stock-flow model over year x age (0-25) x primary need x locality.

Each January count of plans ages one year: a share ceases (by age; every plan ends after 25) and
new plans join at the rate per head the scenario gives (requests x conversion x growth), plus any
one-off backlog clearance. Parameters are calibrated to the January history (``model.calibrate``)
and Monte Carlo paths draw growth, incidence and cessation and add Poisson noise to the flows.

Year convention (docs/decisions/0002-demand-terms.md): ``year`` is the January census year, so
``stock[t]`` is the SEN2 count in January of ``years[t]`` and the flows of ``years[t]`` are the plans
that started or ceased between January ``years[t] - 1`` and January ``years[t]``. Ages are at 31
August of the academic year the count falls in.

Identity (every cell, every year t >= 1, deterministic and per path)::

    stock[t, a + 1] = stock[t - 1, a] - ceased[t, a] + new[t, a + 1]     for a = 0..24
    stock[t, 0]     = new[t, 0]
    ceased[t, 25]   = stock[t - 1, 25]                                    (all plans end after 25)

so ``ceased[t, a]`` counts plans aged ``a`` in January t-1 that ended before January t, and
``stock[t].sum() == stock[t - 1].sum() - ceased[t].sum() + new[t].sum()``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .calibrate import calibrate, flow_targets, history_targets
from .cohort import (
    A,
    DemandInputs,
    Params,
    growth_factor,
    project,
)
from .domain import AGE_PHASE, PHASE_LAST_AGES, PHASE_STARTS, academic_year
from .errors import Problem, ScenarioError
from .machine import available_cpus
from .poisson import POISSON_MAX_STEPS
from .scenario import MAX_AGE, PHASES, Scenario

CHUNK_PATHS = 64  # paths simulated together: ~1.3 MB per float32 work array, in cache


# --------------------------------------------------------------------------- inputs


def _problem(source: str, path: str, msg: str) -> ScenarioError:
    return ScenarioError([Problem(source, path, msg)])


def population(scn: Scenario, years: list[int]) -> np.ndarray:
    """Resident population [T, A, L] aged 0-25: base by locality x age shares x growth since base."""
    pop = scn.population
    locs = scn.locality_ids
    base = np.array([pop.base_0_25.get(lid, 0.0) for lid in locs], dtype=float)
    growth = np.array([pop.growth_by_locality.get(lid, pop.growth) for lid in locs])
    k = np.array(years, dtype=float) - scn.meta.base_year
    factor = (1.0 + growth)[None, :] ** k[:, None]  # [T, L]
    shares = np.asarray(pop.age_shares, dtype=float)
    return factor[:, None, :] * shares[None, :, None] * base[None, None, :]


def _lever_multipliers(scn: Scenario, years: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers [T, A, N, L] on the new-plan rate and on cessation from ``demand.levers``.

    A lever scales its rate for the chosen ages/needs/localities for years ``from_year``..``to_year``
    (flows into those January counts); with ``ramp_years`` = R the change phases in linearly, 1/R
    of it in ``from_year`` and all of it from ``from_year + R - 1``. Levers multiply together.
    """
    dm = scn.demand
    needs, locs = list(dm.needs), scn.locality_ids
    shape = (len(years), A, len(needs), len(locs))
    new_mult, ces_mult = np.ones(shape), np.ones(shape)
    yrs = np.array(years, dtype=float)
    for lev in dm.levers:
        on = yrs >= lev.from_year
        if lev.to_year is not None:
            on &= yrs <= lev.to_year
        frac = np.ones_like(yrs)
        if lev.ramp_years > 0:
            frac = np.clip((yrs - lev.from_year + 1) / lev.ramp_years, 0.0, 1.0)
        f = np.where(on, 1.0 + (lev.factor - 1.0) * frac, 1.0)  # [T]
        mask = np.ones((A, len(needs), len(locs)), dtype=bool)
        if lev.ages is not None:
            mask &= np.isin(np.arange(A), lev.ages)[:, None, None]
        if lev.needs is not None:
            mask &= np.isin(needs, lev.needs)[None, :, None]
        if lev.localities is not None:
            mask &= np.isin(locs, lev.localities)[None, None, :]
        target = ces_mult if lev.rate == "cessation" else new_mult
        target *= np.where(mask[None], f[:, None, None, None], 1.0)
    return new_mult, ces_mult


def prepare(scn: Scenario, years: list[int], source: str = "scenario") -> DemandInputs:
    """Lay the scenario's demand rates out on ``years`` (consecutive, containing the base year).

    Per-head rate of new plans at age a, need n, locality l (before incidence and growth)::

        requests_per_1000 / 1000 x conversion_rate x w_age[a] x need_share[n] x w_loc[l]
        w_age[a] = new_age_shares[a] / population.age_shares[a]
        w_loc[l] = prevalence[l] / sum_l'(population share[l'] x prevalence[l'])

    so base-year new plans total population x requests x conversion, spread over ages exactly as
    ``new_age_shares`` and over localities by population x prevalence (prevalence moves plans
    between localities without changing the county total).
    """
    dm, base_year = scn.demand, scn.meta.base_year
    needs, locs = list(dm.needs), scn.locality_ids
    pop = population(scn, years)
    base_pop = np.array([scn.population.base_0_25.get(lid, 0.0) for lid in locs], dtype=float)
    if base_pop.sum() <= 0:
        raise _problem(
            source, "population.base_0_25", "the 0-25 population is zero: no rates per head"
        )
    age_sh = np.asarray(scn.population.age_shares, dtype=float)
    new_age = np.asarray(dm.new_age_shares, dtype=float)
    new_age = new_age / new_age.sum() if new_age.sum() > 0 else new_age  # shares may miss 1 by 1e-3
    for a in range(A):
        if new_age[a] > 0 and age_sh[a] <= 0:
            raise _problem(
                source,
                f"demand.new_age_shares.{a}",
                f"new plans at age {a} but population.age_shares.{a} is 0 (no one to give them to)",
            )
    w_age = np.divide(new_age, age_sh, out=np.zeros(A), where=age_sh > 0)
    prev = np.array([dm.locality_prevalence.get(lid, 1.0) for lid in locs], dtype=float)
    pop_share = base_pop / base_pop.sum()
    norm = float((pop_share * prev).sum())
    if norm <= 0:
        raise _problem(
            source, "demand.locality_prevalence", "every populated locality has prevalence 0"
        )
    w_loc = prev / norm
    loc_share = pop_share * w_loc  # share of plans by locality (sums to 1)

    def need_vec(shares: dict[str, float]) -> np.ndarray:
        v = np.array([shares.get(n, 0.0) for n in needs], dtype=float)
        return v / v.sum() if v.sum() > 0 else v

    need_stock = need_vec(dm.need_shares)
    need_new = need_vec(dm.new_need_shares) if dm.new_need_shares is not None else need_stock
    if dm.growth_end_year is not None and dm.growth_end_year < base_year:
        raise _problem(
            source,
            "demand.growth_end_year",
            f"{dm.growth_end_year} is before meta.base_year {base_year}",
        )

    new_mult, ces_mult = _lever_multipliers(scn, years)
    per_head = dm.requests_per_1000 / 1000.0 * dm.conversion_rate
    rate = (
        pop[:, :, None, :]
        * (per_head * w_age)[None, :, None, None]
        * need_new[None, None, :, None]
        * w_loc[None, None, None, :]
        * new_mult
    )
    yrs = np.array(years, dtype=float)
    end = np.inf if dm.growth_end_year is None else dm.growth_end_year
    growth_exp = np.minimum(yrs, end) - base_year

    q_age = np.full(A, dm.cessation_rate)
    for age, v in dm.cessation_by_age.items():
        q_age[age] = v
    q = q_age[None, :, None, None] * ces_mult
    q[:, MAX_AGE] = 1.0

    new_split = new_age[:, None, None] * need_new[None, :, None] * loc_share[None, None, :]
    new_split = new_split / new_split.sum() if new_split.sum() > 0 else new_split
    backlog = np.zeros_like(rate)
    for row in dm.backlog:
        if row.year in years:
            backlog[years.index(row.year)] += row.plans * new_split
    stock_age = np.asarray(dm.stock_age_shares, dtype=float)
    split = stock_age[:, None, None] * need_stock[None, :, None] * loc_share[None, None, :]
    split = split / split.sum()
    return DemandInputs(
        years=list(years),
        base_year=base_year,
        needs=needs,
        localities=locs,
        population=pop,
        rate=rate,
        growth_exp=growth_exp,
        q=q,
        backlog=backlog,
        split=split,
        new_split=new_split,
    )


def with_joiners(
    inputs: DemandInputs,
    years: list[int],
    joiners: np.ndarray,
    cessation_multiplier: np.ndarray | None = None,
    lever_multiplier: np.ndarray | None = None,
) -> DemandInputs:
    """The same inputs with new plans into ``years[1:]`` fixed to ``joiners[1:]`` (a pipeline's).

    Each year's joiners keep that year's age, need and locality spread of the rate; they are held
    in ``backlog`` (added as given, not scaled by incidence or growth) and the rate is zeroed, so
    calibration fits only cessation against them. ``lever_multiplier`` [T, A, N, L] (the
    ``demand.levers`` on new plans, already in the rate) still scales them cell by cell;
    ``cessation_multiplier`` [len(years)] scales cessation below age 25 into each year (annual
    reviews held or missed).
    """
    rate, backlog, q = inputs.rate.copy(), inputs.backlog.copy(), inputs.q.copy()
    for k, y in enumerate(years[1:], start=1):
        t = inputs.years.index(y)
        plain = (
            rate[t]
            if lever_multiplier is None
            else rate[t] / np.where(lever_multiplier[t] > 0, lever_multiplier[t], 1.0)
        )
        total = plain.sum()
        shape = rate[t] / total if total > 0 else inputs.new_split
        backlog[t] = joiners[k] * shape
        rate[t] = 0.0
        if cessation_multiplier is not None:
            q[t, :MAX_AGE] = np.minimum(q[t, :MAX_AGE] * cessation_multiplier[k], 1.0)
    return DemandInputs(
        years=inputs.years,
        base_year=inputs.base_year,
        needs=inputs.needs,
        localities=inputs.localities,
        population=inputs.population,
        rate=rate,
        growth_exp=inputs.growth_exp,
        q=q,
        backlog=backlog,
        split=inputs.split,
        new_split=inputs.new_split,
    )


# --------------------------------------------------------------------------- deterministic model


# --------------------------------------------------------------------------- Monte Carlo


_KERNELS: Any = None
_KERNELS_LOCK = threading.Lock()


def _kernels() -> Any:
    """``model.demand_kernel`` (the compiled year step), imported on first use.

    Importing numba costs about 0.4 s and compiling the kernels about 2 s once, then they load
    from numba's disk cache; ``validate`` and ``init`` never pay either.
    """
    global _KERNELS
    with _KERNELS_LOCK:
        if _KERNELS is None:
            from . import demand_kernel

            _KERNELS = demand_kernel
    return _KERNELS


# 1 / k in float32 (1 / 1 exactly 1), as the steps multiply by it
_INV_K = np.array([0.0] + [1.0 / k for k in range(1, POISSON_MAX_STEPS + 1)], dtype=np.float32)
_PHASE_LO = PHASE_STARTS.astype(np.intp)
_PHASE_HI = PHASE_LAST_AGES.astype(np.intp)
_PHASE_OF_AGE = AGE_PHASE.astype(np.intp)


def poisson_f32(lam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exact Poisson draws (float32 counts) with means ``lam``; ``lam`` is left unchanged.

    Inverse CDF on one float32 uniform per draw: X is the number of k with u > P(X <= k - 1).
    The uniforms are the top 24 bits of each 32-bit half of the generator's raw 64-bit output,
    times 2**-24 (on SFC64 exactly ``Generator.random(dtype=np.float32)``); P(X = 0) = exp(-mean)
    is numpy's float32 exp; the steps (p = p x mean x 1/k, cdf += p, in float32, at most
    POISSON_MAX_STEPS) run in the compiled kernel the Monte Carlo uses. Means above
    POISSON_DIRECT_MAX use numpy's sampler, after all the uniforms are taken.
    """
    lam32 = np.array(lam, dtype=np.float32, copy=True, order="C")
    flat = lam32.reshape(-1)
    out = np.empty_like(flat)
    raw = rng.bit_generator.random_raw((flat.size + 1) // 2)
    big, big_mean = np.empty(flat.size, dtype=np.intp), np.empty(flat.size)
    n_big = _kernels().draw_flat(flat, np.exp(-flat), raw, out, _INV_K, big, big_mean)
    if n_big:
        out[big[:n_big]] = rng.poisson(big_mean[:n_big])
    return out.reshape(lam32.shape)


@dataclass
class PathDraws:
    """Per-path parameters: the calibrated values scaled by the scenario's uncertainty draws."""

    incidence: np.ndarray  # [P] multiplier on the new-plan rate
    growth: np.ndarray  # [P] annual growth of the new-plan rate
    cessation: np.ndarray  # [P] multiplier on cessation rates
    persistence: float = 1.0  # taper of growth toward long_run (shared by every path)
    long_run: float = 0.0
    year_factor: np.ndarray | None = None  # [P, T] one-year shocks on the new-plan rate (mean 1)


def draw_paths(
    params: Params,
    scn: Scenario,
    paths: int,
    rng: np.random.Generator,
    calibration: Any = None,
    years: int = 0,
    seed: int | None = None,
) -> PathDraws:
    """Draw each path's growth, incidence and cessation (a path keeps them for the whole horizon).

    With ``uncertainty.parameters: fitted`` and a calibration that fitted them, the fitted
    parameters are drawn jointly from its Laplace approximation (normal in log incidence, growth and
    log cessation), plus, with the pooled prior, its ``path_spread`` (the cross-LA spread of growth
    and its centre's error, and of net cessation) and lognormal shocks on each of the ``years``
    years' new plans: one-year (``new_plans_transient_cv``) and lasting, a random walk in the level
    (``new_plans_walk_sd``), both zero-mean in the log; parameters not fitted, or all with
    ``given``, use growth_sd (normal) and
    incidence_cv / cessation_cv (lognormal, mean 1). Zero spreads give every path the calibrated
    values. Growth draws are floored at -0.99.

    With a learned growth each of the ``years`` years also adds the pooled ``national_growth_sd``
    shock to its growth, kept in the level afterwards (``pooling.national_factors``, part of
    ``year_factor``): a national shock, drawn from ``seed`` alone so that every LA run with the
    same seed shares it (from ``rng`` without a seed).
    """
    unc = scn.demand.uncertainty
    z = rng.standard_normal((3, paths))

    def lognormal(cv: float, zz: np.ndarray) -> np.ndarray:
        s2 = np.log1p(cv * cv)
        return np.exp(np.sqrt(s2) * zz - s2 / 2.0)

    incidence = params.incidence * lognormal(unc.incidence_cv, z[1])
    growth = params.growth + unc.growth_sd * z[0]
    cessation = params.cessation * lognormal(unc.cessation_cv, z[2])
    year_factor = None
    cov = getattr(calibration, "covariance", np.zeros((0, 0)))
    names = [
        n for n in getattr(calibration, "fitted", []) if n in ("incidence", "growth", "cessation")
    ]
    if unc.parameters == "fitted" and cov.size and names:
        idx = [calibration.fitted.index(n) for n in names]
        sub = cov[np.ix_(idx, idx)]
        w, v = np.linalg.eigh((sub + sub.T) / 2.0)
        root = v * np.sqrt(np.clip(w, 0.0, None))  # sub = root @ root.T (pinv may be singular)
        dx = root @ rng.standard_normal((len(names), paths))  # [k, P]
        for i, n in enumerate(names):
            if n == "incidence":
                incidence = params.incidence * np.exp(dx[i])
            elif n == "growth":
                growth = params.growth + dx[i]
            else:
                cessation = params.cessation * np.exp(dx[i])
        prior = getattr(calibration, "prior", None)
        if prior is not None and years > 1:
            # an LA's new plans swing from year to year beyond counting noise: a part that lasts
            # one year, zero-mean in the log as estimated (the median path is the fitted one)
            cv = prior.new_plans_transient_cv
            z_year = rng.standard_normal((paths, years))
            year_factor = np.exp(cv * z_year)
            year_factor[:, 0] = 1.0
        if prior is not None:  # the pooled prior's spread of the future around the fit
            extra = prior.path_spread()
            zz = rng.standard_normal((3, paths))
            if "growth" in names:
                growth = growth + extra["growth"] * zz[0]
            if "incidence" in names:
                incidence = incidence * np.exp(extra["incidence"] * zz[1])
            if "cessation" in names:
                cessation = cessation * np.exp(extra["cessation"] * zz[2])
        if year_factor is not None and prior.new_plans_walk_sd > 0:
            # and a part that persists: a random walk in the level (drawn last, so the draws
            # above are those of a prior without it)
            z_walk = rng.standard_normal((paths, years))
            z_walk[:, 0] = 0.0
            year_factor *= np.exp(prior.new_plans_walk_sd * np.cumsum(z_walk, axis=1))
        if year_factor is not None and "growth" in names and prior.national_growth_sd > 0:
            # the national rate's own year-to-year swing, common to every LA
            from .pooling import national_factors

            nat_seed = int(rng.integers(2**63)) if seed is None else seed
            year_factor *= national_factors(prior.national_growth_sd, paths, years, nat_seed)
    return PathDraws(
        incidence=incidence,
        growth=np.maximum(growth, -0.99),
        cessation=cessation,
        persistence=params.persistence,
        long_run=params.long_run,
        year_factor=year_factor,
    )


@dataclass
class _MonteCarlo:
    """Shared read-only state of one Monte Carlo run (float32 copies of the rates, cells
    flattened: C = needs x localities)."""

    rate: np.ndarray  # [T, A, C] new plans a year at incidence 1, growth 0
    q: np.ndarray  # [T, 25, C] cessation rates below age 25 at multiplier 1
    backlog: np.ndarray  # [T, A, C]
    has_backlog: np.ndarray  # [T] bool
    new_factor: np.ndarray  # [T, P] incidence x (1 + growth)^exp per path
    ces_factor: np.ndarray  # [P] cessation multiplier per path
    start: np.ndarray  # [A, C]
    poisson: bool
    stock: np.ndarray  # [P, T, A, C] output
    phase: np.ndarray  # [P, T, PH, C] output: stock summed over each phase's ages


class _ChunkWork:
    """One thread's scratch for ``_simulate_chunk``, reused from chunk to chunk."""

    def __init__(self, n_cells: int) -> None:
        width = (2 * MAX_AGE + 1) * n_cells  # a path's leavers (0-24) and joiners (0-25)
        size = CHUNK_PATHS * width
        self.p0 = np.empty(size, dtype=np.float32)  # P(X = 0) of each draw
        self.flows = np.empty(size, dtype=np.float32)  # the draws
        self.big = np.empty(size, dtype=np.intp)  # draws left to numpy's sampler
        self.big_mean = np.empty(size, dtype=np.float64)
        self.mean = np.empty(width, dtype=np.float32)  # one path's means
        self.bits = np.empty(width, dtype=np.int32)  # one path's uniforms x 2**24
        self.p_at = np.empty(width, dtype=np.float32)  # inverse-CDF steps taken on every draw
        self.cdf_at = np.empty(width, dtype=np.float32)
        self.tail = np.empty(width, dtype=np.intp)  # draws that walk on past those steps


class _Stream:
    """A chunk's SFC64 generator, stepped in the kernel on a copy of its state (``state``) and by
    numpy's Poisson sampler, one stream: the state is handed over each way between them."""

    def __init__(self, seed: np.random.SeedSequence) -> None:
        self.rng = np.random.Generator(np.random.SFC64(seed))
        self._sfc = self.rng.bit_generator.state
        self.state = np.array(self._sfc["state"]["state"], dtype=np.uint64)

    def poisson(self, means: np.ndarray) -> np.ndarray:
        """numpy's Poisson draws (int64) from where the kernel left the stream."""
        bitgen = self.rng.bit_generator
        self._sfc["state"]["state"] = self.state
        bitgen.state = self._sfc
        draws = self.rng.poisson(means)
        self._sfc = bitgen.state
        self.state[:] = self._sfc["state"]["state"]
        return draws


def _simulate_year(
    mc: _MonteCarlo, t: int, p0: int, p1: int, stream: _Stream, work: _ChunkWork
) -> None:
    """Year ``t`` of paths p0..p1-1: ``mc.stock[p0:p1, t]`` and its phase sums from year t - 1.

    One compiled call over the chunk (``demand_kernel.year_step``): means, draws, leavers capped
    at the plans there were, ageing and phase sums, path by path. Around it stays in numpy only
    what must match numpy bit for bit: P(X = 0) by its float32 exp, and its Poisson sampler for the
    few means above POISSON_DIRECT_MAX, drawn after the year's uniforms (``demand_kernel.fix_big``
    then puts them in). With Poisson noise ``work.flows`` holds the year's draws afterwards, and
    ``work.p0`` next year's negated means (so years run in order from t = 1).
    """
    kern = _kernels()
    n_paths = p1 - p0
    p_zero = work.p0[: n_paths * work.mean.size]
    kc, nf = mc.ces_factor[p0:p1], mc.new_factor[t, p0:p1]
    has_next = t + 1 < mc.stock.shape[1]
    tn = t + 1 if has_next else t
    if mc.poisson:
        if t == 1:  # later years' negated means come from the year before's step
            kern.neg_means(mc.stock, t, p0, n_paths, mc.q[t], kc, mc.rate[t], nf, p_zero)
        np.exp(p_zero, out=p_zero)  # numpy's float32 exp: the draws depend on its rounding
    has_backlog = bool(mc.has_backlog[t])
    n_big = kern.year_step(
        mc.stock, mc.phase, t, p0, n_paths, mc.q[t], kc, mc.rate[t], nf, mc.backlog[t],
        has_backlog, mc.poisson, p_zero, stream.state, work.flows, work.big, work.big_mean,
        work.mean, work.bits, work.p_at, work.cdf_at, work.tail, _INV_K, _PHASE_LO, _PHASE_HI,
        mc.q[tn], mc.rate[tn], mc.new_factor[tn, p0:p1], has_next,
    )  # fmt: skip
    if n_big:
        draws = stream.poisson(work.big_mean[:n_big])
        kern.fix_big(
            mc.stock, mc.phase, t, p0, work.big[:n_big], draws, work.flows, mc.backlog[t],
            has_backlog, _PHASE_LO, _PHASE_HI, _PHASE_OF_AGE, p_zero, mc.q[tn], kc, has_next,
        )  # fmt: skip


def _simulate_chunk(
    mc: _MonteCarlo, p0: int, p1: int, seed: np.random.SeedSequence, work: _ChunkWork
) -> None:
    """Simulate paths p0..p1-1 into ``mc.stock`` and ``mc.phase`` (float32, in place), from the
    base-year stock, with their own generator from ``seed``."""
    stream = _Stream(seed)
    _kernels().start_paths(mc.stock, mc.phase, p0, p1 - p0, mc.start, _PHASE_LO, _PHASE_HI)
    for t in range(1, mc.stock.shape[1]):
        _simulate_year(mc, t, p0, p1, stream, work)


def _monte_carlo(
    inputs: DemandInputs,
    draws: PathDraws,
    start: np.ndarray,
    poisson: bool,
    joiners: np.ndarray | None,
) -> _MonteCarlo:
    """The float32 rates, per-path factors and empty outputs ``simulate_paths`` works on."""
    P, T = draws.incidence.size, len(inputs.years)
    cell = inputs.rate.shape[1:]
    n_cells = int(np.prod(cell[1:]))
    new_factor = draws.incidence[:, None] * growth_factor(
        draws.growth, inputs.growth_exp, draws.persistence, draws.long_run
    )
    rate, backlog = inputs.rate, inputs.backlog
    if joiners is not None:
        total = backlog.reshape(T, -1).sum(axis=1)
        rate = backlog / np.where(total > 0, total, 1.0)[:, None, None, None]
        backlog, new_factor = np.zeros_like(backlog), np.asarray(joiners, dtype=float)
    elif draws.year_factor is not None:
        # yearly new-plan shocks; the pipeline's joiners carry their own spread
        new_factor = new_factor * draws.year_factor

    def flat(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.reshape(a.shape[:2] + (n_cells,)), dtype=np.float32)

    return _MonteCarlo(
        rate=flat(rate),
        q=flat(inputs.q[:, :MAX_AGE]),
        backlog=flat(backlog),
        has_backlog=backlog.reshape(T, -1).any(axis=1),
        new_factor=np.ascontiguousarray(new_factor.astype(np.float32).T),
        ces_factor=draws.cessation.astype(np.float32),
        start=start.reshape(cell[0], n_cells).astype(np.float32),
        poisson=poisson,
        stock=np.empty((P, T, cell[0], n_cells), dtype=np.float32),
        phase=np.empty((P, T, len(PHASES), n_cells), dtype=np.float32),
    )


def simulate_paths(
    inputs: DemandInputs,
    draws: PathDraws,
    start: np.ndarray,
    *,
    poisson: bool,
    seed: np.random.SeedSequence,
    threads: int | None = None,
    joiners: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo stock [P, T, A, N, L] and phase sums [P, T, PH, N, L] (float32) from the base year.

    ``inputs`` must start at the base year. Paths run in chunks of CHUNK_PATHS, each with its own
    generator spawned from ``seed``, so results do not depend on the number of threads.
    ``joiners`` [P, T]: each path's new plans from the statutory pipeline (inputs from
    ``with_joiners``): they replace incidence and growth and are spread like ``inputs.backlog``.
    """
    if inputs.base_index != 0:
        raise ValueError("simulate_paths needs inputs that start at the base year")
    mc = _monte_carlo(inputs, draws, start, poisson, joiners)
    (P, T), cell = mc.stock.shape[:2], inputs.rate.shape[1:]
    n_cells = mc.stock.shape[3]
    bounds = [(p0, min(p0 + CHUNK_PATHS, P)) for p0 in range(0, P, CHUNK_PATHS)]
    seeds = seed.spawn(len(bounds))
    # Threads for the CPUs the process may really use (a container's quota, not the host's count).
    n_threads = max(1, min(threads or available_cpus(), len(bounds)))

    def worker(w: int) -> None:
        work = _ChunkWork(n_cells)
        for i in range(w, len(bounds), n_threads):
            _simulate_chunk(mc, *bounds[i], seeds[i], work)

    if n_threads == 1:
        worker(0)
    else:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(pool.map(worker, range(n_threads)))
    return mc.stock.reshape((P, T) + cell), mc.phase.reshape((P, T, len(PHASES)) + cell[1:])


# --------------------------------------------------------------------------- results


def quantiles_over_paths(arr: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """Quantiles (numpy's default linear method) over the leading path axis: [len(probs), ...].

    Partitions one transposed copy instead of ``np.quantile(axis=0)``, which is slower on
    10,000 paths x 50,000 cells.
    """
    P = arr.shape[0]
    cols = np.ascontiguousarray(arr.reshape(P, -1).T)  # [cells, P]
    pos = np.asarray(probs, dtype=float) * (P - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, P - 1)
    cols.partition(np.unique(np.concatenate([lo, hi])), axis=1)
    frac = pos - lo
    out = cols[:, lo] * (1.0 - frac) + cols[:, hi] * frac  # [cells, len(probs)] float64
    return out.T.reshape((len(probs),) + arr.shape[1:])


@dataclass
class DemandResult:
    """Demand stage output: deterministic arrays [T, A, N, L] and Monte Carlo paths (float32).

    ``stock[t]`` is the January count of ``years[t]`` (index 0 = base year); ``new[t]`` the plans
    that joined since January ``years[t] - 1`` at their age in ``years[t]`` (backlog included, index
    0 zeros); ``ceased[t]`` the plans that ended since January ``years[t] - 1``, at their age in
    ``years[t] - 1``; see the module docstring for the identity. ``path_stock`` [P, T, A, N, L]
    float32 is one stock per Monte Carlo path (P = 1: the deterministic stock).
    """

    years: list[int]
    needs: list[str]
    localities: list[str]
    stock: np.ndarray
    new: np.ndarray
    ceased: np.ndarray
    backlog: np.ndarray
    path_stock: np.ndarray
    path_phase: np.ndarray  # [P, T, PH, N, L] float32: path_stock summed over each phase's ages
    paths: int
    seed: int
    params: Params
    calibration: Any  # model.calibrate.CalibrationResult
    # the statutory pipeline whose plans joined (model.process.ProcessResult; None without one):
    # kept so a caller reusing this stage does not run the pipeline again
    pipeline: Any = field(default=None, repr=False)
    _quantiles: np.ndarray | None = field(default=None, repr=False)

    @property
    def phases(self) -> list[str]:
        return list(PHASES)

    def phase_quantiles(self) -> np.ndarray:
        """P10, P50, P90 [3, T, PH, N, L] of plans by year, phase, need and locality over paths."""
        if self._quantiles is None:
            q = quantiles_over_paths(self.path_phase, (0.1, 0.5, 0.9))
            self._quantiles = q.reshape((3,) + self.path_phase.shape[1:])
        return self._quantiles

    def path_totals(self) -> np.ndarray:
        """County total plans [P, T] per path."""
        return self.path_phase.sum(axis=(2, 3, 4), dtype=np.float64)

    def _frame(self, years: list[int], values: dict[str, np.ndarray]) -> pd.DataFrame:
        """Long table over (year, locality, need, phase) from arrays [T, PH, N, L]."""
        T, PH, N, L = len(years), len(PHASES), len(self.needs), len(self.localities)
        yy, pp, nn, ll = np.meshgrid(
            np.arange(T), np.arange(PH), np.arange(N), np.arange(L), indexing="ij"
        )
        order = np.lexsort((pp.ravel(), nn.ravel(), ll.ravel(), yy.ravel()))
        yr = np.asarray(years)[yy.ravel()[order]]
        df = pd.DataFrame(
            {
                "year": yr,
                "academic_year": [academic_year(int(y)) for y in yr],
                "locality": np.asarray(self.localities)[ll.ravel()[order]],
                "need": np.asarray(self.needs)[nn.ravel()[order]],
                "phase": np.asarray(PHASES)[pp.ravel()[order]],
            }
        )
        for name, arr in values.items():
            df[name] = np.asarray(arr, dtype=np.float64).ravel()[order]
        return df

    def tables(self) -> dict[str, pd.DataFrame]:
        """``demand`` and ``demand_flows`` tables (see their columns in the docstrings below).

        demand: year, academic_year, locality, need, phase, plans, and where paths > 1 plans_p10,
        plans_p90. ``plans`` is the P50 across paths of each row where paths > 1 (so rows need not
        add up to the P50 county total, which ``headline`` gives), else the deterministic count.

        demand_flows (deterministic, projected years only): plans_start (January of the year
        before, by phase of the age then), new_plans (backlog_plans included), ceased_plans (at
        the age before ceasing), aged_out_plans / aged_in_plans (survivors crossing into the next
        phase by growing a year older) and plans_end, with
        plans_end = plans_start + new_plans - ceased_plans - aged_out_plans + aged_in_plans.
        """
        det = np.add.reduceat(self.stock, PHASE_STARTS, axis=1)
        cols: dict[str, np.ndarray] = {}
        if self.paths > 1:
            q = self.phase_quantiles()
            cols = {"plans": q[1], "plans_p10": q[0], "plans_p90": q[2]}
        else:
            cols = {"plans": det}
        demand = self._frame(self.years, cols)

        surv = (
            self.stock[:-1, :MAX_AGE] - self.ceased[1:, :MAX_AGE]
        )  # [T-1, 25, N, L] at age in t-1
        tops = PHASE_LAST_AGES
        out_ = np.zeros((len(self.years) - 1, len(PHASES)) + self.stock.shape[2:])
        in_ = np.zeros_like(out_)
        for i, top in enumerate(tops[:-1]):
            out_[:, i] = surv[:, top]
            in_[:, i + 1] = surv[:, top]
        flows = self._frame(
            self.years[1:],
            {
                "plans_start": det[:-1],
                "new_plans": np.add.reduceat(self.new[1:], PHASE_STARTS, axis=1),
                "backlog_plans": np.add.reduceat(self.backlog[1:], PHASE_STARTS, axis=1),
                "ceased_plans": np.add.reduceat(self.ceased[1:], PHASE_STARTS, axis=1),
                "aged_out_plans": out_,
                "aged_in_plans": in_,
                "plans_end": det[1:],
            },
        )
        return {"demand": demand, "demand_flows": flows}

    def headline(self) -> dict[str, Any]:
        """Figures for summary.json: January plans by year (P50, P10, P90), growth, calibration."""
        det = self.stock.sum(axis=(1, 2, 3))
        ys = [str(y) for y in self.years]

        def by_year(v: np.ndarray) -> dict[str, float]:
            return {y: round(float(x), 1) for y, x in zip(ys, v, strict=True)}

        out: dict[str, Any] = {"paths": self.paths, "seed": self.seed}
        if self.paths > 1:
            tot = self.path_totals()
            p10, p50, p90 = np.quantile(tot, [0.1, 0.5, 0.9], axis=0)
            out["basis"] = f"P50 of the county total over {self.paths} Monte Carlo paths"
            central = p50
            out["plans"] = by_year(p50)
            out["plans_p10"] = by_year(p10)
            out["plans_p90"] = by_year(p90)
        else:
            out["basis"] = "deterministic (1 path)"
            central = det
            out["plans"] = by_year(det)
        out["plans_deterministic"] = by_year(det)
        growth = central[1:] / np.where(central[:-1] > 0, central[:-1], np.nan) - 1.0
        out["growth_rate"] = {y: round(float(g), 4) for y, g in zip(ys[1:], growth, strict=True)}
        n_years = len(self.years) - 1
        out["average_growth_rate"] = (
            round(float((central[-1] / central[0]) ** (1.0 / n_years) - 1.0), 4)
            if n_years and central[0] > 0
            else None
        )
        flows = {"new_plans": self.new, "ceased_plans": self.ceased, "backlog_plans": self.backlog}
        for name, arr in flows.items():
            v = arr.sum(axis=(1, 2, 3))[1:]
            out[name] = {y: round(float(x), 1) for y, x in zip(ys[1:], v, strict=True)}
        out["calibration"] = self.calibration.summary()
        return out


def span_years(scn: Scenario) -> list[int]:
    """Years the rates are laid out on: every history year kept, the base year and the horizon."""
    hist = [t.year for t in history_targets(scn)]
    hist += [y for t in flow_targets(scn) for y in (t.year - 1, t.year)]
    years = scn.years
    return list(range(min(hist + [years[0]]), max(hist + [years[-1]]) + 1))


def run_demand(
    scn: Scenario,
    paths: int,
    seed: int,
    *,
    threads: int | None = None,
    source: str = "scenario",
    pipeline: Any = None,
) -> DemandResult:
    """Calibrate, project deterministically and simulate ``paths`` Monte Carlo paths (1 = none).

    The same scenario and seed give identical results whatever ``threads`` is; ``source`` names the
    scenario file in any ScenarioError. ``pipeline`` (a ``model.process.ProcessResult``): new plans
    into each projected January are the plans it issued the calendar year before (per path too).
    """
    if paths < 1:
        raise ValueError("paths must be at least 1")
    full = prepare(scn, span_years(scn), source)
    if pipeline is not None:
        new_mult, _ = _lever_multipliers(scn, full.years)
        full = with_joiners(
            full, scn.years, pipeline.joiners, pipeline.cessation_multiplier, new_mult
        )
    cal = calibrate(scn, full, source)
    inputs = full.window(full.base_index, full.years.index(scn.years[-1]))
    start = cal.start_level * inputs.split
    stock, new, ceased = project(inputs, cal.params, start)
    if paths > 1:
        ss_draws, ss_noise = np.random.SeedSequence(seed).spawn(2)
        draws = draw_paths(
            cal.params,
            scn,
            paths,
            np.random.default_rng(ss_draws),
            cal,
            len(inputs.years),
            seed=seed,
        )
        path_stock, path_phase = simulate_paths(
            inputs,
            draws,
            start,
            poisson=scn.demand.uncertainty.poisson,
            seed=ss_noise,
            threads=threads,
            joiners=None if pipeline is None else pipeline.joiners_paths,
        )
    else:
        path_stock = stock[None].astype(np.float32)
        path_phase = np.add.reduceat(path_stock, PHASE_STARTS, axis=2)
    return DemandResult(
        years=list(inputs.years),
        needs=list(inputs.needs),
        localities=list(inputs.localities),
        stock=stock,
        new=new,
        ceased=ceased,
        backlog=inputs.backlog.copy() if pipeline is None else np.zeros_like(inputs.backlog),
        path_stock=path_stock,
        path_phase=path_phase,
        paths=paths,
        seed=seed,
        params=cal.params,
        calibration=cal,
        pipeline=pipeline,
    )
