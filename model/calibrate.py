"""Fit the demand model's incidence, growth and cessation to the January history of EHCP counts.

What is fitted (``demand.calibration.fit``): an incidence multiplier on the new-plan rate, the
annual growth of that rate, and a multiplier on cessation rates. The fit is a penalised
(maximum a posteriori) least squares solved with ``scipy.optimize.least_squares``:

- data residuals ``(model - observed) / sd`` with ``sd = sqrt(observed + (OBS_REL_SD x observed)^2)``:
  counting noise for small detail rows plus about 1% structural error on large totals;
- weak priors centred on the scenario's own values (PRIOR_SD): with three January counts Devon's
  history cannot separate more joiners from fewer leavers, and an unpenalised fit then runs to
  absurd corners (a quarter of plans ceasing each year). The priors only bite where the data are
  silent; a long history overrides them (tests recover known parameters from synthetic history).

Which model value a history year is compared with:

- the base year is the starting stock (``demand.history[base_year]``), not a target; where it is
  missing (or before ``ignore_before``) its level is fitted too, or, with nothing to fit, set to the
  equilibrium the base year's flows would sustain;
- later years are compared with the deterministic projection itself (so the reported error at
  Devon's 2025 is the projection's own error);
- earlier years are back-cast: ``total[t-1] = (total[t] - new[t]) / (1 - mean cessation)`` with the
  base-year age/need/locality mix (``model.demand.backcast_totals``); detail rows there use that mix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from .demand import (
    DemandInputs,
    Params,
    backcast_totals,
    equilibrium_level,
    project,
)
from .scenario import Scenario

OBS_REL_SD = 0.01  # structural error of the model on a January count (share of the count)
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

    @property
    def is_total(self) -> bool:
        return self.age is None and self.need is None and self.locality is None


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
    )  # year, age, need, locality, observed_plans, model_plans, error_plans, error_pct
    rmse_pct: float | None
    max_abs_error_pct: float | None
    success: bool = True
    message: str = ""
    evaluations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

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


def target_years(targets: list[Target]) -> list[int]:
    return sorted({t.year for t in targets})


def _mask(inputs: DemandInputs, tg: Target) -> np.ndarray:
    """Weights [A, N, L] selecting the cells a target counts."""
    A, N, L = inputs.split.shape
    m = np.ones((A, N, L))
    if tg.age is not None:
        m *= (np.arange(A) == tg.age)[:, None, None]
    if tg.need is not None:
        m *= (np.array(inputs.needs) == tg.need)[None, :, None]
    if tg.locality is not None:
        m *= (np.array(inputs.localities) == tg.locality)[None, None, :]
    return m


class _Model:
    """Model values at the targets for a parameter set: projection forward, back-cast before."""

    def __init__(self, inputs: DemandInputs, targets: list[Target]) -> None:
        self.inputs = inputs
        self.targets = targets
        self.b = inputs.base_index
        self.idx = np.array([inputs.years.index(t.year) for t in targets], dtype=int)
        self.masks = np.stack([_mask(inputs, t) for t in targets]) if targets else np.zeros((0,))
        self.split_share = (
            (self.masks * inputs.split[None]).sum(axis=(1, 2, 3)) if targets else np.zeros(0)
        )
        self.last = int(self.idx.max()) if targets else self.b

    def values(self, params: Params, level: float) -> np.ndarray:
        if not self.targets:
            return np.zeros(0)
        inp = self.inputs
        out = np.empty(len(self.targets))
        fwd = self.idx >= self.b
        if fwd.any():
            sub = inp.window(0, self.last)
            stock, _, _ = project(sub, params, level * inp.split, first=self.b)
            sel = stock[self.idx[fwd]]  # [k, A, N, L]
            out[fwd] = (sel * self.masks[fwd]).sum(axis=(1, 2, 3))
        if (~fwd).any():
            totals = backcast_totals(inp, params, level)
            out[~fwd] = totals[self.idx[~fwd]] * self.split_share[~fwd]
        return out


def _params_from(x: np.ndarray, names: list[str], given: Params) -> tuple[Params, float | None]:
    vals = dict(zip(names, x, strict=True))
    p = Params(
        incidence=float(np.exp(vals["incidence"])) if "incidence" in vals else given.incidence,
        growth=float(vals["growth"]) if "growth" in vals else given.growth,
        cessation=float(np.exp(vals["cessation"])) if "cessation" in vals else given.cessation,
    )
    level = float(np.exp(vals["level"])) if "level" in vals else None
    return p, level


def calibrate(scn: Scenario, inputs: DemandInputs) -> CalibrationResult:
    """Fit the parameters named in ``demand.calibration.fit`` to the history (see module doc).

    ``inputs`` must span every history year and the base year. Parameters not fitted stay as
    given (incidence 1, the scenario's growth, cessation 1). With calibration disabled nothing is
    fitted, but the fit error of the given parameters is still reported.
    """
    dm = scn.demand
    cal = dm.calibration
    given = Params(incidence=1.0, growth=dm.growth, cessation=1.0)
    targets = history_targets(scn)
    base = inputs.base_year
    base_total = next((t.plans for t in targets if t.is_total and t.year == base), None)
    if base_total is not None:
        targets = [t for t in targets if not (t.is_total and t.year == base)]
    model = _Model(inputs, targets)

    names = [n for n in PARAM_ORDER if n in cal.fit] if cal.enabled and targets else []
    fit_level = base_total is None and cal.enabled and bool(targets)
    if fit_level:
        names.append("level")
    params, level, success, message, nfev = given, base_total, True, "nothing to fit", 0
    if names:
        obs = np.array([t.plans for t in targets])
        sd = np.sqrt(np.maximum(obs, 1.0) + (OBS_REL_SD * obs) ** 2)
        centre = {"incidence": 0.0, "growth": given.growth, "cessation": 0.0}
        prior_names = [n for n in names if n in PRIOR_SD]
        prior_c = np.array([centre[n] for n in prior_names])
        prior_sd = np.array([PRIOR_SD[n] for n in prior_names])
        n_prior = len(prior_names)

        def residuals(x: np.ndarray) -> np.ndarray:
            p, lv = _params_from(x, names, given)
            lv = base_total if lv is None else lv
            r = (model.values(p, lv) - obs) / sd
            return np.concatenate([r, (x[:n_prior] - prior_c) / prior_sd])

        x0 = np.array(
            [
                {"incidence": 0.0, "growth": given.growth, "cessation": 0.0}.get(n, 0.0)
                for n in names
            ]
        )
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
            xtol=1e-12,
            ftol=1e-12,
            gtol=1e-12,
            max_nfev=500,
        )
        params, lv = _params_from(sol.x, names, given)
        level = base_total if lv is None else lv
        success, message, nfev = bool(sol.success), str(sol.message), int(sol.nfev)
    if level is None:
        level = equilibrium_level(inputs, params)
    source = "history" if base_total is not None else ("fitted" if fit_level else "equilibrium")

    table = pd.DataFrame(
        {
            "year": [t.year for t in targets],
            "age": pd.array([t.age for t in targets], dtype="Int64"),
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
    err = table["error_pct"].dropna().to_numpy()
    return CalibrationResult(
        params=params,
        given=given,
        start_level=float(level),
        start_source=source,
        fitted=[n for n in names],
        enabled=cal.enabled,
        targets=table,
        rmse_pct=float(np.sqrt(np.mean(err**2))) if err.size else None,
        max_abs_error_pct=float(np.abs(err).max()) if err.size else None,
        success=success,
        message=message,
        evaluations=nfev,
    )
