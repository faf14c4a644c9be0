"""Fit the demand model's incidence, growth and cessation to the history of EHCP counts and flows.

What is fitted (``demand.calibration.fit``): an incidence multiplier on the new-plan rate, the
annual growth of that rate, and a multiplier on cessation rates, to the January counts
(``demand.history``, ``history_detail``) and the yearly flows (``demand.flow_history``: new plans
by age, ceased plans) jointly. The fit is a penalised (maximum a posteriori) least squares solved
with ``scipy.optimize.least_squares`` (docs/decisions/0006-calibration-and-uncertainty.md):

- data residuals ``(model - observed) / sd`` with ``sd = sqrt(observed + (rel x observed)^2)``:
  counting (Poisson) noise plus overdispersion, ``rel`` the structural error of a January count
  (OBS_REL_SD, or the pooled ``stock_rel_sd``) or of a year's flow (FLOW_REL_SD, or the pooled
  ``new_plans_cv``);
- priors: with ``calibration.growth_prior: pooled`` (the default) growth is always fitted, centred
  on the growth pooled across all LAs with the cross-LA spread as its sd, and the cessation
  multiplier is centred on the national net cessation rate (``model.pooling``); otherwise weak
  priors centred on the scenario's own values (PRIOR_SD). The priors bite where the data are
  silent; a long history overrides them (tests recover known parameters from synthetic history).
- the fitted uncertainty is the Laplace approximation: the inverse of J'J at the optimum in the
  fitted coordinates (log incidence, growth, log cessation); Monte Carlo paths draw from it.

Flows: the SEN2 flow of calendar year Y (plans started or ceased in Y) is the model's flow into
January Y + 1 (docs/decisions/0002-demand-terms.md); an age band sums the model's ages in it.

Which model value a history year is compared with:

- the base year is the starting stock (``demand.history[base_year]``), not a target; where it is
  missing (or before ``ignore_before``) its level is fitted too, or, with nothing to fit, set to the
  equilibrium the base year's flows would sustain;
- later years are compared with the deterministic projection itself (so the reported error at
  Devon's 2025 is the projection's own error);
- earlier years are back-cast: ``total[t-1] = (total[t] - new[t]) / (1 - mean cessation)`` with the
  base-year age/need/locality mix (``model.cohort.backcast_totals``); detail rows there use that mix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from .cohort import (
    DemandInputs,
    Params,
    backcast_totals,
    equilibrium_level,
    project,
)
from .errors import Problem, ScenarioError
from .pooling import PooledPrior, pooled_prior
from .scenario import MAX_AGE, Scenario

OBS_REL_SD = 0.01  # structural error of the model on a January count (share of the count)
FLOW_REL_SD = 0.15  # year-to-year overdispersion of a flow without a pooled estimate (share)
PRIOR_SD = {"incidence": 0.5, "growth": 0.10, "cessation": 0.5}  # log-multiplier / absolute growth
BOUNDS = {
    "incidence": (np.log(0.05), np.log(20.0)),
    "growth": (-0.5, 1.0),  # the schema's range for demand.growth
    "cessation": (np.log(0.05), np.log(20.0)),
    "level": (0.0, np.log(1e8)),
}
PARAM_ORDER = ("incidence", "growth", "cessation")


@dataclass(frozen=True)
class Target:
    """One January count to fit: the county total, or a detail row (one age, need or locality)."""

    year: int
    plans: float
    age: int | None = None
    need: str | None = None
    locality: str | None = None
    flow: str | None = None  # None: a January count; "new" / "ceased": the flow into January year
    age_max: int | None = None  # flows: last age of the band starting at ``age``

    @property
    def is_total(self) -> bool:
        return (
            self.flow is None and self.age is None and self.need is None and self.locality is None
        )


@dataclass
class CalibrationResult:
    """Fitted parameters, the starting level and how well the model reproduces the history."""

    params: Params
    given: Params
    start_level: float
    start_source: str  # "history", "fitted" or "equilibrium"
    fitted: list[str]
    enabled: bool
    targets: (
        pd.DataFrame
    )  # year, measure, age, age_max, need, locality, observed/model/error_plans, error_pct
    rmse_pct: float | None  # over the January counts (flows are noisier; see ``targets``)
    max_abs_error_pct: float | None
    success: bool = True
    message: str = ""
    evaluations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # over ``fitted``
    growth_source: str = "given"  # "pooled" or "given"
    prior: PooledPrior | None = None

    def sd(self) -> dict[str, float]:
        """Standard errors of the fitted coordinates (log incidence, growth, log cessation)."""
        d = np.sqrt(np.maximum(np.diag(self.covariance), 0.0)) if self.covariance.size else []
        return {n: float(v) for n, v in zip(self.fitted, d, strict=False)}

    def summary(self) -> dict[str, Any]:
        """JSON-ready: fitted and given parameters, start level and fit error (percent)."""
        rows = self.targets.replace({np.nan: None}).to_dict(orient="records")
        return {
            "enabled": self.enabled,
            "fitted": list(self.fitted),
            "parameters": {k: round(v, 6) for k, v in asdict(self.params).items()},
            "given": {k: round(v, 6) for k, v in asdict(self.given).items()},
            "start_level_plans": round(self.start_level, 1),
            "start_source": self.start_source,
            "fit_rmse_pct": None if self.rmse_pct is None else round(self.rmse_pct, 3),
            "fit_max_abs_error_pct": None
            if self.max_abs_error_pct is None
            else round(self.max_abs_error_pct, 3),
            "success": self.success,
            "message": self.message,
            "evaluations": self.evaluations,
            "growth_source": self.growth_source,
            "growth_prior": None if self.prior is None else self.prior.summary(),
            "standard_errors": {k: round(v, 6) for k, v in self.sd().items()},
            "targets": [
                {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                for r in rows
            ],
        }


def history_targets(scn: Scenario) -> list[Target]:
    """January counts from ``demand.history`` and ``history_detail``, after ``ignore_before``."""
    cal = scn.demand.calibration
    keep = (lambda y: True) if cal.ignore_before is None else (lambda y: y >= cal.ignore_before)
    out = [Target(int(y), float(v)) for y, v in sorted(scn.demand.history.items()) if keep(y)]
    for row in scn.demand.history_detail:
        if keep(row.year):
            out.append(Target(row.year, row.plans, row.age, row.need, row.locality))
    return out


def flow_targets(scn: Scenario) -> list[Target]:
    """Flows from ``demand.flow_history`` as targets on the January they flow into (year + 1).

    Age bands of a year and flow whose all-ages total is given are left out: an LA's flows swing
    together from year to year, so the bands would count the same evidence a score of times.
    """
    cal = scn.demand.calibration
    rows = list(getattr(scn.demand, "flow_history", []))
    totals = {(r.year, r.flow) for r in rows if r.age_min is None}
    out = []
    for row in rows:
        year = int(row.year) + 1
        if cal.ignore_before is not None and year - 1 < cal.ignore_before:
            continue
        if row.age_min is not None and (row.year, row.flow) in totals:
            continue
        lo = row.age_min
        hi = row.age_max if row.age_max is not None else (MAX_AGE if lo is not None else None)
        out.append(Target(year, float(row.plans), age=lo, flow=row.flow, age_max=hi))
    return out


def _mask(inputs: DemandInputs, tg: Target) -> np.ndarray:
    """Weights [A, N, L] selecting the cells a target counts."""
    A, N, L = inputs.split.shape
    m = np.ones((A, N, L))
    if tg.age is not None:
        hi = tg.age if tg.flow is None or tg.age_max is None else tg.age_max
        m *= ((np.arange(A) >= tg.age) & (np.arange(A) <= hi))[:, None, None]
    if tg.need is not None:
        m *= (np.array(inputs.needs) == tg.need)[None, :, None]
    if tg.locality is not None:
        m *= (np.array(inputs.localities) == tg.locality)[None, None, :]
    return m


class _Model:
    """Model values at the targets: January counts projected forward and back-cast before the base
    year; new plans from the rate; ceased plans from the stock a year earlier x cessation.

    A county total up to the base year whose previous January is in ``observed`` is compared with
    one step of the aggregate flow from that observed count (``observed[t-1] x (1 - qbar) + new``,
    qbar over the base-year mix): a conditional likelihood, so a single odd year does not bend the
    whole back-cast path.
    """

    def __init__(
        self,
        inputs: DemandInputs,
        targets: list[Target],
        observed: dict[int, float] | None = None,
        transfer_share: float = 0.0,
    ) -> None:
        self.inputs = inputs
        # SEN2 ceased plans include transfers to other LAs; the model's leavers are net of the
        # transfers in, which nationally balance them: gross ceased = leavers / (1 - share)
        self.ceased_scale = 1.0 / (1.0 - transfer_share)
        self.targets = targets
        self.b = inputs.base_index
        self.idx = np.array([inputs.years.index(t.year) for t in targets], dtype=int)
        obs = observed or {}
        self.kind = np.array(
            [
                3
                if t.is_total and t.year <= inputs.base_year and t.year - 1 in obs
                else {None: 0, "new": 1, "ceased": 2}[t.flow]
                for t in targets
            ],
            dtype=int,
        )
        self.prev = np.array([obs.get(t.year - 1, np.nan) for t in targets])
        self.masks = np.stack([_mask(inputs, t) for t in targets]) if targets else np.zeros((0,))
        self.split_share = (
            (self.masks * inputs.split[None]).sum(axis=(1, 2, 3)) if targets else np.zeros(0)
        )
        self.last = int(self.idx.max()) if targets else self.b
        self.need_back = bool(
            ((self.idx < self.b) | ((self.kind == 2) & (self.idx <= self.b))).any()
        )

    def values(self, params: Params, level: float) -> np.ndarray:
        if not self.targets:
            return np.zeros(0)
        inp = self.inputs
        out = np.empty(len(self.targets))
        stock_t, new_t, ceased_t = self.kind == 0, self.kind == 1, self.kind == 2
        fwd = self.idx > self.b
        need_proj = (fwd & ~new_t).any() or (stock_t & (self.idx == self.b)).any()
        if need_proj:
            sub = inp.window(0, self.last)
            stock, _, ceased = project(sub, params, level * inp.split, first=self.b)
            sel = stock_t & (self.idx >= self.b)
            if sel.any():
                out[sel] = (stock[self.idx[sel]] * self.masks[sel]).sum(axis=(1, 2, 3))
            sel = ceased_t & fwd
            if sel.any():
                out[sel] = (ceased[self.idx[sel]] * self.masks[sel]).sum(axis=(1, 2, 3))
                out[sel] *= self.ceased_scale
        step = self.kind == 3
        if new_t.any() or step.any():
            mean_new = inp.new_mean(params)
            out[new_t] = (mean_new[self.idx[new_t]] * self.masks[new_t]).sum(axis=(1, 2, 3))
        if step.any():
            t = self.idx[step]
            qbar = (inp.cessation(params)[t] * inp.split[None]).sum(axis=(1, 2, 3))
            out[step] = self.prev[step] * (1.0 - qbar) + mean_new[t].sum(axis=(1, 2, 3))
        if self.need_back:
            totals = backcast_totals(inp, params, level)
            sel = stock_t & (self.idx < self.b)
            out[sel] = totals[self.idx[sel]] * self.split_share[sel]
            sel = ceased_t & ~fwd
            if sel.any():
                q = inp.cessation(params)[self.idx[sel]]  # [k, A, N, L]
                share = (q * inp.split[None] * self.masks[sel]).sum(axis=(1, 2, 3))
                out[sel] = totals[self.idx[sel] - 1] * share * self.ceased_scale
        return out


def _params_from(x: np.ndarray, names: list[str], given: Params) -> tuple[Params, float | None]:
    vals = dict(zip(names, x, strict=True))
    p = Params(
        incidence=float(np.exp(vals["incidence"])) if "incidence" in vals else given.incidence,
        growth=float(vals["growth"]) if "growth" in vals else given.growth,
        cessation=float(np.exp(vals["cessation"])) if "cessation" in vals else given.cessation,
        persistence=given.persistence,
        long_run=given.long_run,
    )
    level = float(np.exp(vals["level"])) if "level" in vals else None
    return p, level


def growth_source(scn: Scenario) -> str:
    """'pooled' (learned across LAs, the default) or 'given' (``demand.growth`` as typed)."""
    dm = scn.demand
    if dm.calibration.growth_prior == "none" or "growth" in dm.model_fields_set:
        return "given"
    return "pooled" if dm.calibration.enabled else "given"


def growth_path(scn: Scenario, prior: PooledPrior | None) -> tuple[float, float, float]:
    """(first-year growth, persistence, long-run growth) of the new-plan rate: as typed, or (with
    a pooled ``prior`` and no typed growth) the prior's, each taper key the scenario's if typed."""
    dm = scn.demand
    if prior is None or growth_source(scn) == "given":
        return dm.growth, dm.growth_persistence, dm.growth_long_run
    typed = dm.model_fields_set
    return (
        prior.growth,
        dm.growth_persistence if "growth_persistence" in typed else prior.persistence,
        dm.growth_long_run if "growth_long_run" in typed else prior.long_run,
    )


def _given(scn: Scenario, prior: PooledPrior | None) -> Params:
    growth, persistence, long_run = growth_path(scn, prior)
    return Params(1.0, growth, 1.0, persistence, long_run)


def calibrate(scn: Scenario, inputs: DemandInputs, file: str = "scenario") -> CalibrationResult:
    """Fit the parameters named in ``demand.calibration.fit`` to the history (see module doc).

    ``inputs`` must span every history and flow year and the base year; ``file`` names the
    scenario in a ScenarioError (the pooled prior needs a base year from 2020). Parameters not fitted stay
    as given (incidence 1, the scenario's or the pooled growth, cessation 1). With calibration
    disabled nothing is fitted, but the fit error of the given parameters is still reported.
    """
    dm = scn.demand
    cal = dm.calibration
    source = growth_source(scn)
    use_prior = cal.growth_prior == "pooled" and cal.enabled
    try:
        prior = pooled_prior(inputs.base_year) if use_prior else None
    except ValueError as e:  # a base year before the SEN2 series has no pooled prior
        raise ScenarioError(
            [
                Problem(
                    file,
                    "demand.calibration.growth_prior",
                    f"{e}: set growth_prior: none",
                )
            ]
        ) from None
    given = _given(scn, prior)
    targets = history_targets(scn) + flow_targets(scn)
    base = inputs.base_year
    observed = {t.year: t.plans for t in targets if t.is_total}
    base_total = observed.get(base)
    # the base-year count is the starting stock; it is also a target (one step on from the
    # January before) when that January is known
    targets = [
        t for t in targets if not (t.is_total and t.year == base and base - 1 not in observed)
    ]
    model = _Model(inputs, targets, observed, 0.0 if prior is None else prior.transfer_share)

    # a typed growth is an assumption: kept as typed (the pooled prior still sets the noise
    # levels and the centre of cessation); a learned one is always fitted
    fit_names = (
        set(cal.fit) - {"growth"} if source == "given" and prior is not None else set(cal.fit)
    )
    if source == "pooled":
        fit_names.add("growth")
    names = [n for n in PARAM_ORDER if n in fit_names] if cal.enabled and targets else []
    fit_level = base_total is None and cal.enabled and bool(targets)
    if fit_level:
        names.append("level")
    params, level, success, message, nfev = given, base_total, True, "nothing to fit", 0
    cov = np.zeros((0, 0))
    centre = {"incidence": 0.0, "growth": given.growth, "cessation": 0.0}
    spread = dict(PRIOR_SD)
    if prior is not None:
        if source == "pooled":
            spread["growth"] = prior.growth_sd
        qbar = float((inputs.cessation(given)[inputs.base_index] * inputs.split).sum())
        if qbar > 0:
            centre["cessation"] = float(np.log(prior.net_cessation / qbar))
            spread["cessation"] = prior.net_cessation_sd / prior.net_cessation
    if names:
        obs = np.array([t.plans for t in targets])
        is_flow = np.array([t.flow is not None for t in targets])
        stock_rel = OBS_REL_SD if prior is None else prior.stock_rel_sd
        flow_rel = FLOW_REL_SD if prior is None else prior.new_plans_cv
        rel = np.where(is_flow, flow_rel, stock_rel)
        sd = np.sqrt(np.maximum(obs, 1.0) + (rel * obs) ** 2)
        prior_names = [n for n in names if n in PRIOR_SD]
        prior_c = np.array([centre[n] for n in prior_names])
        prior_sd = np.array([spread[n] for n in prior_names])
        n_prior = len(prior_names)

        def residuals(x: np.ndarray) -> np.ndarray:
            p, lv = _params_from(x, names, given)
            lv = base_total if lv is None else lv
            r = (model.values(p, lv) - obs) / sd
            return np.concatenate([r, (x[:n_prior] - prior_c) / prior_sd])

        x0 = np.array([centre.get(n, 0.0) for n in names])
        if fit_level:
            x0[-1] = np.log(max(equilibrium_level(inputs, given), 1.0))
        lo = np.array([BOUNDS[n][0] for n in names])
        hi = np.array([BOUNDS[n][1] for n in names])
        x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
        sol = least_squares(
            residuals,
            x0,
            bounds=(lo, hi),
            method="trf",
            x_scale="jac",
            xtol=1e-10,
            ftol=1e-10,
            gtol=1e-10,
            max_nfev=500,
        )
        params, lv = _params_from(sol.x, names, given)
        level = base_total if lv is None else lv
        success, message, nfev = bool(sol.success), str(sol.message), int(sol.nfev)
        cov = laplace_covariance(sol.jac)
    if level is None:
        level = equilibrium_level(inputs, params)
    start = "history" if base_total is not None else ("fitted" if fit_level else "equilibrium")

    table = pd.DataFrame(
        {
            "year": [t.year for t in targets],
            "measure": [
                {None: "plans", "new": "new_plans", "ceased": "ceased_plans"}[t.flow]
                for t in targets
            ],
            "age": pd.array([t.age for t in targets], dtype="Int64"),
            "age_max": pd.array([t.age_max for t in targets], dtype="Int64"),
            "need": [t.need for t in targets],
            "locality": [t.locality for t in targets],
            "observed_plans": [t.plans for t in targets],
        }
    )
    table["model_plans"] = model.values(params, level)
    table["error_plans"] = table["model_plans"] - table["observed_plans"]
    table["error_pct"] = (
        100.0 * table["error_plans"] / table["observed_plans"].where(table["observed_plans"] > 0)
    )
    err = table.loc[table["measure"] == "plans", "error_pct"].dropna().to_numpy()
    return CalibrationResult(
        params=params,
        given=given,
        start_level=float(level),
        start_source=start,
        fitted=[n for n in names],
        enabled=cal.enabled,
        targets=table,
        rmse_pct=float(np.sqrt(np.mean(err**2))) if err.size else None,
        max_abs_error_pct=float(np.abs(err).max()) if err.size else None,
        success=success,
        message=message,
        evaluations=nfev,
        covariance=cov,
        growth_source=source,
        prior=prior,
    )


def laplace_covariance(jac: np.ndarray) -> np.ndarray:
    """Posterior covariance of the fitted coordinates: (J'J)^-1 of the weighted residuals."""
    jtj = np.asarray(jac, dtype=float).T @ np.asarray(jac, dtype=float)
    return np.linalg.pinv(jtj, rcond=1e-12)
