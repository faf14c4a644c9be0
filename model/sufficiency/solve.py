"""Solve a ``LinearModel``: HiGHS through highspy (one ``passModel`` call) or CBC through PuLP.

Both return a ``Solution`` with column values and row duals in the same id order, so read-back
does not care which solver ran. With integer builds the MIP is solved first, then the LP with the
builds fixed at the optimum is solved again for the duals (shadow prices).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pulp

from .linear import LinearModel, PulpModel, to_pulp

# Integer builds: stop at a 0.1% relative gap. Most of the objective is placement cost no build can
# change, so 0.1% (about GBP 2m on Devon's) is finer than one build unit's capital; the gap achieved
# is reported in the summary.
MIP_REL_GAP = 1e-3


@dataclass
class Solution:
    solver: str
    status: str  # optimal | time_limit | infeasible | unbounded | error
    objective: float
    x: np.ndarray  # column values
    dual: np.ndarray  # row duals: change in objective per unit increase of the row's bound
    seconds: float
    notes: list[str] = field(default_factory=list)
    mip_gap: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "time_limit") and np.isfinite(self.objective)


def highs_available() -> bool:
    try:
        import highspy  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    return True


def _highs_status(h: object) -> str:
    import highspy

    st = h.getModelStatus()  # type: ignore[attr-defined]
    S = highspy.HighsModelStatus
    return {
        S.kOptimal: "optimal",
        S.kTimeLimit: "time_limit",
        S.kIterationLimit: "time_limit",
        S.kInfeasible: "infeasible",
        S.kUnboundedOrInfeasible: "infeasible",
        S.kUnbounded: "unbounded",
        S.kModelEmpty: "optimal",
    }.get(st, "error")


def new_highs() -> object:
    """A silent ``highspy.Highs``: HiGHS prints its banner to the C-level stdout on the first
    construction in a process, which would clutter `sendplan run` output and progress bars."""
    import highspy

    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no usable stdout file descriptor: nothing to protect
        h = highspy.Highs()
    else:
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


def highs_model(
    m: LinearModel,
    time_limit: float | None = None,
    mip_rel_gap: float = MIP_REL_GAP,
    fixed: dict[int, float] | None = None,
    relax: bool = False,
) -> object:
    """A ``highspy.Highs`` holding the model, passed as one column-wise sparse matrix."""
    import highspy

    h = new_highs()
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    cost, lo, up, integ = m.column_arrays()
    if fixed:
        idx = np.fromiter(fixed.keys(), np.int64)
        val = np.fromiter(fixed.values(), float)
        lo, up = lo.copy(), up.copy()
        lo[idx] = val
        up[idx] = val
    rlo, rup = m.row_bounds()
    a = m.coo().tocsc()
    a.sum_duplicates()
    integrality = np.zeros(m.n_cols, np.int32)
    if not relax:
        integrality[integ] = int(highspy.HighsVarType.kInteger)
    status = h.passModel(
        m.n_cols,
        m.n_rows,
        int(a.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        cost,
        _inf(lo),
        _inf(up),
        _inf(rlo),
        _inf(rup),
        a.indptr[:-1].astype(np.int32),
        a.indices.astype(np.int32),
        a.data,
        integrality,
    )
    if status != highspy.HighsStatus.kOk:
        raise RuntimeError(f"HiGHS refused the model: {status}")
    return h


def _inf(v: np.ndarray) -> np.ndarray:
    """Infinite bounds in HiGHS's own representation."""
    import highspy

    out = np.asarray(v, float).copy()
    out[np.isposinf(out)] = highspy.kHighsInf
    out[np.isneginf(out)] = -highspy.kHighsInf
    return out


def _run_highs(h: object) -> tuple[str, float, np.ndarray, np.ndarray]:
    h.run()  # type: ignore[attr-defined]
    status = _highs_status(h)
    sol = h.getSolution()  # type: ignore[attr-defined]
    info = h.getInfo()  # type: ignore[attr-defined]
    x = np.asarray(sol.col_value, float)
    dual = (
        np.asarray(sol.row_dual, float) if sol.dual_valid else np.full(len(sol.row_value), np.nan)
    )
    # a stopped solve counts only with a feasible point (a MIP incumbent; simplex rarely has one)
    feasible = status == "optimal" or (status == "time_limit" and info.primal_solution_status == 2)
    if status == "time_limit" and not feasible:
        status = "time_limit_no_solution"
    obj = info.objective_function_value if feasible else np.nan
    return status, float(obj), x, dual


def integer_columns(m: LinearModel) -> np.ndarray:
    return np.concatenate(
        [b.ids for b in m.variables.values() if b.integer] or [np.zeros(0, np.int64)]
    )


def solve_highs(m: LinearModel, time_limit: float | None = None) -> Solution:
    """Solve with HiGHS; a MIP is re-solved as an LP with its integers fixed, for duals."""
    t0 = time.perf_counter()
    h = highs_model(m, time_limit)
    status, obj, x, dual = _run_highs(h)
    notes: list[str] = []
    gap = None
    icols = integer_columns(m)
    if len(icols) and status in ("optimal", "time_limit"):
        gap = float(h.getInfo().mip_gap)  # type: ignore[attr-defined]
        fixed = dict(zip(icols.tolist(), np.round(x[icols]).tolist(), strict=True))
        h2 = highs_model(m, time_limit, fixed=fixed, relax=True)
        st2, obj2, x2, dual = _run_highs(h2)
        if st2 == "optimal":
            x, obj = x2, obj2
            notes.append("duals from the LP with integer builds fixed at the MIP optimum")
    return Solution("highs", status, obj, x, dual, time.perf_counter() - t0, notes, gap)


def solve_cbc(
    m: LinearModel, pm: PulpModel | None = None, time_limit: float | None = None
) -> Solution:
    """Solve with CBC through PuLP (the fallback); duals via the fixed-integer LP re-solve."""
    t0 = time.perf_counter()
    pm = pm or to_pulp(m)
    icols = integer_columns(m)
    status, obj, x, dual = _run_cbc(pm, time_limit)
    notes: list[str] = []
    if len(icols) and status in ("optimal", "time_limit"):
        saved = [
            (pm.variables[i].lowBound, pm.variables[i].upBound, pm.variables[i].cat) for i in icols
        ]
        for i in icols.tolist():
            v = pm.variables[i]
            v.lowBound = v.upBound = float(round(x[i]))
            v.cat = pulp.LpContinuous
        st2, obj2, x2, dual = _run_cbc(pm, time_limit)
        for i, (lo, up, cat) in zip(icols.tolist(), saved, strict=True):
            v = pm.variables[i]
            v.lowBound, v.upBound, v.cat = lo, up, cat
        if st2 == "optimal":
            x, obj = x2, obj2
            notes.append("duals from the LP with integer builds fixed at the MIP optimum")
    return Solution("cbc", status, obj, x, dual, time.perf_counter() - t0, notes)


def _run_cbc(pm: PulpModel, time_limit: float | None) -> tuple[str, float, np.ndarray, np.ndarray]:
    with warnings.catch_warnings():  # PuLP 3.x announces a 4.0 rename of its bundled CBC
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=MIP_REL_GAP)
        pm.problem.solve(solver)
    st = pulp.LpStatus[pm.problem.status]
    status = {
        "Optimal": "optimal",
        "Infeasible": "infeasible",
        "Unbounded": "unbounded",
        "Not Solved": "time_limit",
    }.get(st, "error")
    x = np.array([v.varValue if v.varValue is not None else np.nan for v in pm.variables])
    # PuLP/CBC report pi as d(objective)/d(rhs), the same convention as HiGHS's row_dual.
    dual = np.array([c.pi if c.pi is not None else np.nan for c in pm.constraints])
    obj = pulp.value(pm.problem.objective)
    return status, float(obj) if obj is not None else np.nan, x, dual
