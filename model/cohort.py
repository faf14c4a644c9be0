"""The deterministic cohort stock-flow model the demand stage projects and calibration fits.

    N[t+1, a+1, n, l] = N[t, a, n, l] x (1 - cease[a, n]) + new[t+1, a+1, n, l]

``Params`` are the fitted rate multipliers, ``DemandInputs`` the scenario's rates laid out by year;
``project`` runs the model forward, ``backcast_totals`` and ``equilibrium_level`` backwards and to a
steady state. Imports nothing from the stages, so ``demand`` and ``calibrate`` both build on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenario import AGES, MAX_AGE

A = len(AGES)  # 26 single years of age, 0..25


@dataclass(frozen=True)
class Params:
    """The calibrated (or given) parameters of the rate model.

    incidence: multiplier on the new-plan rate per head (1 = requests x conversion as given);
    growth: annual growth of the new-plan rate per head after the base year;
    cessation: multiplier on every cessation rate below age 25 (capped so no rate exceeds 1);
    persistence, long_run: the growth in the k-th year after the base year is
    ``long_run + (growth - long_run) x persistence**(k - 1)`` (1 = no taper; before the base year the
    rate is back-cast at the constant ``growth``).
    """

    incidence: float = 1.0
    growth: float = 0.0
    cessation: float = 1.0
    persistence: float = 1.0
    long_run: float = 0.0


def growth_factor(
    growth: np.ndarray | float, exponent: np.ndarray, persistence: float, long_run: float
) -> np.ndarray:
    """Multiplier [P, T] (or [T] for a scalar growth) of the new-plan rate from its base-year value.

    ``exponent[t]`` is years since the base year (negative before it: constant growth back-cast);
    after it each year's growth reverts toward ``long_run`` by ``persistence`` a year.
    """
    g = np.atleast_1d(np.asarray(growth, dtype=float))[:, None]  # [P, 1]
    k = np.asarray(exponent, dtype=float)
    kmax = int(max(0.0, np.ceil(k.max()))) if k.size else 0
    j = np.arange(kmax)
    g_j = long_run + (g - long_run) * persistence**j  # [P, J]: growth in years 1..kmax
    cum = np.concatenate([np.zeros((g.shape[0], 1)), np.cumsum(np.log1p(g_j), axis=1)], axis=1)
    after = np.exp(cum[:, np.clip(np.round(k), 0, kmax).astype(int)])  # whole years
    before = (1.0 + g) ** np.minimum(k, 0.0)
    out = np.where(k[None, :] > 0, after, before)
    return out[0] if np.ndim(growth) == 0 else out


@dataclass
class DemandInputs:
    """Scenario rates laid out on a span of years (before, at and after the base year), float64.

    ``rate[t, a, n, l]`` are new plans a year at incidence 1 and growth 0 (population x requests x
    conversion x age, need and locality weights x levers); ``growth_exp[t]`` is the exponent of
    (1 + growth); ``q[t, a, n, l]`` the cessation rate applying to plans aged ``a`` in January
    ``years[t] - 1`` (age 25 = 1); ``backlog[t]`` the one-off extra plans joining in ``years[t]``;
    ``split[a, n, l]`` the base-year stock split (sums to 1).
    """

    years: list[int]
    base_year: int
    needs: list[str]
    localities: list[str]
    population: np.ndarray  # [T, A, L] people
    rate: np.ndarray  # [T, A, N, L] new plans a year before incidence and growth multipliers
    growth_exp: np.ndarray  # [T] exponent applied to (1 + growth)
    q: np.ndarray  # [T, A, N, L] cessation rate (share per year) at multiplier 1
    backlog: np.ndarray  # [T, A, N, L] plans
    split: np.ndarray  # [A, N, L] share of the base-year stock
    new_split: np.ndarray  # [A, N, L] share of base-year new plans (where backlog plans go)

    @property
    def base_index(self) -> int:
        return self.years.index(self.base_year)

    def window(self, first: int, last: int) -> DemandInputs:
        """The same inputs on ``years[first..last]`` (indices, inclusive)."""
        s = slice(first, last + 1)
        return DemandInputs(
            years=self.years[s],
            base_year=self.base_year,
            needs=self.needs,
            localities=self.localities,
            population=self.population[s],
            rate=self.rate[s],
            growth_exp=self.growth_exp[s],
            q=self.q[s],
            backlog=self.backlog[s],
            split=self.split,
            new_split=self.new_split,
        )

    def new_mean(self, params: Params) -> np.ndarray:
        """Expected new plans [T, A, N, L] (backlog included) for one set of parameters."""
        g = growth_factor(params.growth, self.growth_exp, params.persistence, params.long_run)
        return self.rate * (params.incidence * g)[:, None, None, None] + self.backlog

    def cessation(self, params: Params) -> np.ndarray:
        """Cessation rates [T, A, N, L] with the multiplier applied; age 25 always 1."""
        q = np.minimum(self.q * params.cessation, 1.0)
        q[:, MAX_AGE] = 1.0
        return q


def project(
    inputs: DemandInputs, params: Params, start: np.ndarray, first: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic projection from ``start`` [A, N, L] at year index ``first`` to the last year.

    Returns (stock, new, ceased), each [T, A, N, L] float64 over ``inputs.years``; entries before
    ``first`` are zero and the flows at ``first`` are zero (the start stock is taken as given).
    """
    T = len(inputs.years)
    mean_new = inputs.new_mean(params)
    q = inputs.cessation(params)
    stock = np.zeros((T,) + start.shape)
    new = np.zeros_like(stock)
    ceased = np.zeros_like(stock)
    stock[first] = start
    for t in range(first + 1, T):
        ceased[t] = stock[t - 1] * q[t]
        new[t] = mean_new[t]
        stock[t, 1:] = stock[t - 1, :-1] - ceased[t, :-1] + new[t, 1:]
        stock[t, 0] = new[t, 0]
    return stock, new, ceased


def backcast_totals(inputs: DemandInputs, params: Params, level: float) -> np.ndarray:
    """County totals [T] before the base year by inverting the aggregate flow, from ``level``.

    total[t-1] = (total[t] - new[t]) / (1 - qbar[t]), with qbar the cessation rate averaged over the
    base-year stock split: the base-year age/need/locality mix is assumed for earlier years.
    Entries from the base year on are ``level`` at the base year and zero after (use ``project``).
    """
    b = inputs.base_index
    out = np.zeros(len(inputs.years))
    out[b] = level
    mean_new = inputs.new_mean(params).sum(axis=(1, 2, 3))
    q = inputs.cessation(params)
    for t in range(b, 0, -1):
        qbar = float((q[t] * inputs.split).sum())
        out[t - 1] = max(0.0, (out[t] - mean_new[t]) / max(1.0 - qbar, 1e-9))
    return out


def equilibrium_level(inputs: DemandInputs, params: Params) -> float:
    """Stock the base year's inflow and cessation would sustain if both stayed constant."""
    b = inputs.base_index
    n = inputs.new_mean(params)[b] - inputs.backlog[b]
    s = 1.0 - inputs.cessation(params)[b]
    stock = np.zeros_like(n)
    stock[0] = n[0]
    for a in range(1, A):
        stock[a] = n[a] + stock[a - 1] * s[a - 1]
    return float(stock.sum())
