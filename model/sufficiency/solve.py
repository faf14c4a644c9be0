"""Solve a ``LinearModel``: HiGHS through highspy (one ``passModel`` call) or CBC through PuLP.

Both return a ``Solution`` with column values and row duals in the same id order, so read-back
does not care which solver ran. HiGHS solves each LP with the placement cells' fallbacks
substituted out (fallback.py: exact, and mapped back); branch and bound gets the whole model. With whole-unit (integer) builds, HiGHS solves in four steps
(decision 0004): the LP relaxation (a lower bound), whole units rounded from it (a feasible plan,
re-solved with the builds fixed), branch and bound warm-started from that plan only while its
gap to the bound exceeds ``policy.mip_gap`` (and time allows it past its root), and duals from the LP with the builds fixed (shadow
prices). Every solve shares one time budget, ``run.time_limit_seconds``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pulp
import scipy.sparse as sp

from ..stages import RunCancelled, cancel_event, cancelled
from .fallback import Substitution, substitute
from .linear import LinearModel, PulpModel, to_pulp
from .warm import ScopedWarmStarts, capture, starting_basis

# Integer builds stop at this relative gap (policy.mip_gap) unless a scenario says otherwise. Most
# of the objective is placement cost no build can change, so the gap is stated against the whole
# objective, as HiGHS and CBC report it; the gap achieved is in the summary.
MIP_REL_GAP = 0.01
MIN_SECONDS = 0.05  # a solve given less time than this is not started
# Branch and bound starts by re-solving the relaxation at its root, after HiGHS's MIP presolve: that
# took 2.3x the relaxation's own solve (4.6 s against 2.0 s on Devon under an independent-share cap;
# 29.7 s against 13.1 s at 32 localities, where 30 s then ended it with nothing found). It is
# started only with at least this many times the relaxation's seconds left (decision 0004).
ROOT_FACTOR = 3.0
SIMPLEX_PRIMAL = 4  # HiGHS's simplex_strategy for the primal simplex
PROVISIONAL = "provisional"  # a rounded plan outside the gap, branch and bound deferred
DEFERRED_NOTE = (
    "branch and bound deferred: the rounded plan stands, outside policy.mip_gap, as a first "
    "answer (the app's, while a run with branch and bound refines it)"
)
WARM_NOTE = (
    "warm-started from the last run's basis (the same localities, years and settings): an "
    "LP with several optimal solutions may reach another of them, and so round to another "
    "whole-unit plan within the same gap"
)


@dataclass
class Solution:
    solver: str
    # optimal | time_limit | provisional (branch and bound deferred: solve_highs) | infeasible |
    # unbounded | error | time_limit_no_solution
    status: str
    objective: float
    x: np.ndarray  # column values
    dual: np.ndarray  # row duals: change in objective per unit increase of the row's bound
    seconds: float
    notes: list[str] = field(default_factory=list)
    mip_gap: float | None = None
    lp_bound: float | None = None  # integer builds: the LP relaxation's objective
    stages: dict[str, float] = field(default_factory=dict)  # seconds per solve step
    # integer builds: the best proven lower bound (relaxation, whole-unit Lagrangian bound or
    # branch and bound); mip_gap is measured against it
    best_bound: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "time_limit", PROVISIONAL) and np.isfinite(self.objective)


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
        S.kInterrupt: "interrupted",  # stopped by our callback with a plan in hand
    }.get(st, "error")


def new_highs() -> object:
    """A silent ``highspy.Highs``: HiGHS prints its banner to the C-level stdout on the first
    construction in a process, which would clutter `sendplan run` output and progress bars."""
    import highspy

    with _STDOUT_LOCK:  # threads constructing at once would restore each other's stdout
        return _quiet_highs(highspy)


_STDOUT_LOCK = threading.Lock()


def _quiet_highs(highspy: Any) -> object:
    """``highspy.Highs()`` with the C-level stdout sent to the null device meanwhile."""
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
    relax: bool = False,
) -> object:
    """A ``highspy.Highs`` holding the whole model (no substitution: branch and bound's, and the
    reference the tests and the LP benchmark compare with), passed as one column-wise sparse
    matrix; ``relax`` drops integrality. LPs are solved through ``lp_model``."""
    h = new_highs()
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    cost, lo, up, integ = m.column_arrays()
    a = m.coo().tocsc()
    a.sum_duplicates()
    _pass_model(h, cost, lo, up, a, *m.row_bounds(), np.zeros_like(integ) if relax else integ)
    return h


def column_bounds(
    m: LinearModel, fixed: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The columns' lower and upper bounds, with ``fixed`` (column ids, values) pinned."""
    _, lo, up, _ = m.column_arrays()
    if fixed is not None:
        idx, val = fixed
        lo, up = lo.copy(), up.copy()
        lo[idx] = val
        up[idx] = val
    return lo, up


@dataclass
class HighsLP:
    """A ``highspy.Highs`` holding an LP with the placement cells' fallbacks substituted out
    (fallback.py), and the substitution that maps its solutions and bases back to the model."""

    h: object
    sub: Substitution
    time_limit: float | None = None


# HiGHS's presolve on the substituted LP: off. Substitution already did most of what it would
# (Devon: 9,305 rows left against its 7,687), and its further reductions made the dual simplex
# slower, not faster: 5.7 s against 0.75 s on Devon, 29 s against 4.4 s at 16 localities
# (decision 0004, "The fallback substituted out").
LP_PRESOLVE = "off"


def lp_model(
    m: LinearModel,
    time_limit: float | None = None,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
) -> HighsLP:
    """The LP relaxation of ``m`` (``fixed``: column ids and values pinned) for HiGHS, with each
    placement cell's fallback substituted out."""
    h = new_highs()
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("presolve", LP_PRESOLVE)
    cost, _, _, integ = m.column_arrays()
    lo, up = column_bounds(m, fixed)
    rlo, rup = m.row_bounds()
    r = substitute(cost, lo, up, m.csr(), rlo, rup, np.zeros_like(integ))
    _pass_model(
        h,
        r.reduced_cost,
        r.reduced_lo,
        r.reduced_up,
        r.reduced_a,
        r.reduced_rlo,
        r.reduced_rup,
        np.zeros(len(r.reduced_cost), bool),
        r.offset,
    )
    return HighsLP(h, r, time_limit)


def _run_lp(lp: HighsLP) -> tuple[str, float, np.ndarray, np.ndarray]:
    """``_run_highs`` on a substituted LP, its point and duals mapped back to the whole model
    (not started with under MIN_SECONDS of its time limit left: HiGHS would answer a model that
    substitution emptied at once, whatever its limit)."""
    r = lp.sub
    if lp.time_limit is not None and lp.time_limit < MIN_SECONDS:
        nan = np.full(len(r.keep_col), np.nan)
        return "time_limit_no_solution", np.nan, nan, np.full(len(r.keep_row), np.nan)
    status, obj, x, dual = _run_highs(lp.h)
    if not len(r.reduced_cost) and status == "optimal":
        # every column substituted out: HiGHS calls the model empty and reports no duals (its
        # rows, if any, hold no column, so their duals are zero)
        dual = np.zeros(len(r.reduced_rup))
    if np.isfinite(obj):  # the fallbacks' constant counted (HiGHS drops it for an empty model)
        obj = r.offset + float(r.reduced_cost @ x)
    full_dual = r.duals(x, dual) if np.isfinite(dual).all() else np.full(len(r.keep_row), np.nan)
    return status, obj, r.point(x), full_dual


def _pass_model(
    h: object,
    cost: np.ndarray,
    lo: np.ndarray,
    up: np.ndarray,
    a: sp.csc_matrix,
    rlo: np.ndarray,
    rup: np.ndarray,
    integer: np.ndarray,
    offset: float = 0.0,
) -> None:
    """Hand HiGHS a minimisation in one ``passModel`` call: column-wise matrix ``a``, bounds,
    ``integer`` [columns] bool for whole-number columns and a constant ``offset``."""
    import highspy

    integrality = np.where(integer, int(highspy.HighsVarType.kInteger), 0).astype(np.int32)
    status = h.passModel(  # type: ignore[attr-defined]
        a.shape[1],
        a.shape[0],
        int(a.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        float(offset),
        np.asarray(cost, float),
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
    feasible = status == "optimal" or (
        status in ("time_limit", "interrupted") and info.primal_solution_status == 2
    )
    if status == "time_limit" and not feasible:
        status = "time_limit_no_solution"
    obj = info.objective_function_value if feasible else np.nan
    return status, float(obj), x, dual


def _warm_start(
    lp: HighsLP,
    m: LinearModel,
    warm: ScopedWarmStarts | None,
    role: str,
    bounds: tuple[np.ndarray, np.ndarray],
    both: bool = True,
) -> float | None:
    """Give HiGHS the last basis of this solve role where it helps (warm.py says when, ``both``
    as there), with the simplex that can start from it; returns the seconds that role took from
    scratch (None: not warm-started). ``bounds``: the model's column bounds as ``lp`` was built
    with them."""
    basis = warm.get(role) if warm is not None else None
    start = starting_basis(m, basis, bounds, both) if basis is not None else None
    if basis is None or start is None:
        return None
    import highspy

    h = lp.h
    col, row = lp.sub.reduced_basis(start.col, start.row)
    enum = [highspy.HighsBasisStatus(i) for i in range(5)]
    hb = highspy.HighsBasis()
    hb.col_status = [enum[i] for i in col.tolist()]
    hb.row_status = [enum[i] for i in row.tolist()]
    hb.valid = True
    # "alien": HiGHS makes a valid basis of it (columns and rows new or gone can leave the wrong
    # count of basic variables, or a singular set); measured at no cost when it was valid already
    hb.alien = True
    if h.setBasis(hb) != highspy.HighsStatus.kOk:  # type: ignore[attr-defined]
        return None  # from scratch, with HiGHS's own choice of simplex
    if start.primal:  # only costs changed: the basis is primal feasible, not dual feasible
        h.setOptionValue("simplex_strategy", SIMPLEX_PRIMAL)  # type: ignore[attr-defined]
    return basis.cold_seconds


def _cross_over(lp: HighsLP, x: np.ndarray, row_dual: np.ndarray) -> bool:
    """Give ``lp`` the basis HiGHS's crossover makes of the point ``x`` (feasible for its model)
    with the duals ``row_dual`` of a nearby LP and the reduced costs they give; False where HiGHS
    has no crossover or refuses (``lp`` then solves from scratch)."""
    import highspy

    h = lp.h
    if not hasattr(h, "crossover") or not np.isfinite(row_dual).all():
        return False
    r = lp.sub
    xr, yr = r.reduced_point(np.asarray(x, float), np.asarray(row_dual, float))
    sol = highspy.HighsSolution()
    sol.col_value = xr.tolist()
    sol.row_value = (r.reduced_a @ xr).tolist()
    sol.row_dual = yr.tolist()
    sol.col_dual = (r.reduced_cost - r.reduced_a.T @ yr).tolist()
    sol.value_valid = sol.dual_valid = True
    status = h.crossover(sol)  # type: ignore[attr-defined]
    ok = status in (highspy.HighsStatus.kOk, highspy.HighsStatus.kWarning)
    return ok and bool(h.getBasis().valid)  # type: ignore[attr-defined]


def _solve_lp(
    lp: HighsLP,
    m: LinearModel,
    warm: ScopedWarmStarts | None,
    role: str,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
    both: bool = True,
) -> tuple[str, float, np.ndarray, np.ndarray, float | None]:
    """``_run_lp`` from the last basis of ``role`` where it helps, keeping this one's basis for
    the next run; the last item is what ``_warm_start`` returned. ``fixed``: the columns ``lp``
    has pinned (``lp_model``'s); ``both``: as in ``warm.starting_basis``."""
    t0 = time.perf_counter()
    bounds = column_bounds(m, fixed) if warm is not None else None  # what lp holds, to keep
    scratch = _warm_start(lp, m, warm, role, bounds, both) if warm is not None else None
    out = _run_lp(lp)
    if warm is not None and out[0] == "optimal":
        b = lp.h.getBasis()  # type: ignore[attr-defined]
        if b.valid:
            col, row = lp.sub.basis(
                np.array([s.value for s in b.col_status], np.int8),
                np.array([s.value for s in b.row_status], np.int8),
            )
            seconds = scratch if scratch is not None else time.perf_counter() - t0
            warm.put(role, capture(m, col, row, seconds, bounds))
    return (*out, scratch)


def integer_columns(m: LinearModel) -> np.ndarray:
    return np.concatenate(
        [b.ids for b in m.variables.values() if b.integer] or [np.zeros(0, np.int64)]
    )


def _pure_mask(a: sp.csr_matrix, icols: np.ndarray) -> np.ndarray:
    """[rows] bool: the row of matrix ``a`` has every coefficient on an integer column."""
    is_int = np.zeros(a.shape[1], bool)
    is_int[icols] = True
    pattern = (a != 0).astype(np.int64)
    on_int = pattern @ is_int.astype(np.int64)
    on_cont = pattern @ (~is_int).astype(np.int64)
    return (on_cont == 0) & (on_int > 0)


@dataclass(frozen=True)
class ModelArrays:
    """What the rounding and the whole-unit bound read of a model, built once per solve: its
    matrix, column and row bounds, costs, integer columns and the rows holding only those."""

    a: sp.csr_matrix
    cost: np.ndarray
    lo: np.ndarray
    up: np.ndarray
    rlo: np.ndarray
    rup: np.ndarray
    icols: np.ndarray
    pure: np.ndarray  # [rows] bool: every coefficient on an integer column


def model_arrays(m: LinearModel) -> ModelArrays:
    icols = integer_columns(m)
    a = m.csr()
    cost, lo, up, _ = m.column_arrays()
    return ModelArrays(a, cost, lo, up, *m.row_bounds(), icols, _pure_mask(a, icols))


def pure_integer_rows(
    m: LinearModel, arrays: ModelArrays | None = None
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose every coefficient is on an integer column (build limits, capital budget).

    Returns their matrix restricted to the integer columns, lower and upper bounds, and the
    integer column ids. Every other row has a continuous column (an unmet or slack variable, or a
    placement) that keeps it feasible whatever whole-unit builds are chosen, so a rounding that
    keeps these rows within bounds gives a feasible plan. ``arrays``: ``model_arrays(m)``, if built.
    """
    r = arrays or model_arrays(m)
    return r.a[r.pure][:, r.icols].tocsr(), r.rlo[r.pure], r.rup[r.pure], r.icols


# A reduced cost this far on the wrong side of zero counts as zero: HiGHS's own dual feasibility
# tolerance is 1e-7 on its scaled model; the Devon LPs show at most 4e-10 GBP per unit of a column.
DUAL_TOLERANCE = 1e-6


def whole_unit_bound(
    m: LinearModel,
    dual: np.ndarray,
    seconds: float | None = None,
    arrays: ModelArrays | None = None,
) -> float | None:
    """A lower bound on every whole-unit plan's objective from LP row duals (Lagrangian).

    Every row but the build-only ones (build limits, capital budget) is priced at ``dual``; what
    is left splits into the placement columns, each at the cheaper end of its bounds at its
    reduced cost, and a small integer program over the builds alone: whole units, within the
    build-only rows, at their reduced costs. Weak duality makes the sum a bound on the whole-unit
    optimum for any duals of the right signs. With the relaxation's duals it is never below the
    relaxation's objective, and above it by what whole units cost under the build limits and the
    budget (the relaxation spends a budget on fractions of a school; whole units cannot). None
    when the duals give no finite bound or the builds' program is not solved within ``seconds``
    to a finite bound (decision 0004). ``arrays``: ``model_arrays(m)``, if built.
    """
    r = arrays or model_arrays(m)
    a, lo, up, rlo, rup, icols, pure = r.a, r.lo, r.up, r.rlo, r.rup, r.icols, r.pure
    if not len(icols) or not np.isfinite(dual).all():
        return None
    rows, d = _priced(r, np.where(pure, 0.0, np.asarray(dual, float)))
    cont = np.ones(m.n_cols, bool)
    cont[icols] = False
    dc = np.where(np.abs(d[cont]) <= DUAL_TOLERANCE, 0.0, d[cont])
    columns = _cheaper_end(dc, lo[cont], up[cont])
    if columns is None:
        return None
    db = d[icols]
    if not pure.any():  # no build-only rows: each build at the cheaper end of its bounds
        builds = _cheaper_end(db, lo[icols], up[icols])
        return None if builds is None else rows + columns + builds
    h = new_highs()
    h.setOptionValue("mip_rel_gap", 1e-6)
    if seconds is not None:
        h.setOptionValue("time_limit", float(max(seconds, MIN_SECONDS)))
    whole = np.ones(len(icols), bool)
    _pass_model(h, db, lo[icols], up[icols], a[pure][:, icols].tocsc(), rlo[pure], rup[pure], whole)
    h.run()  # type: ignore[attr-defined]
    if _highs_status(h) not in ("optimal", "time_limit"):
        return None
    # its proven bound, not its best plan: a bound even when stopped short
    total = rows + columns + float(h.getInfo().mip_dual_bound)  # type: ignore[attr-defined]
    return total if np.isfinite(total) else None


def _priced(r: ModelArrays, dual: np.ndarray) -> tuple[float, np.ndarray]:
    """The rows priced at ``dual``, kept to the right signs (>= rows at duals >= 0, <= rows at
    duals <= 0), each at its active bound; and every column's reduced cost at those prices. For
    any x within the rows, objective = that value + sum reduced cost x x, or more (weak duality)."""
    y = np.where(np.isposinf(r.rup), np.maximum(dual, 0.0), dual)
    y = np.where(np.isneginf(r.rlo), np.minimum(y, 0.0), y)
    priced = y != 0  # each at its active bound (finite: the signs above make it so)
    rows = float(y[priced] @ np.where(y > 0, r.rlo, r.rup)[priced])
    return rows, r.cost - r.a.T @ y


def tightened_builds(
    r: ModelArrays, dual: np.ndarray, incumbent: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounds on the builds (integer columns) that every plan costing no more than ``incumbent``
    keeps: reduced-cost tightening at the relaxation's row duals ``dual``.

    With L = the priced rows + every column at the cheaper end of its bounds (a lower bound on any
    plan's objective), a build at reduced cost d > 0 above its lower bound by u units adds d x u:
    so u <= (incumbent - L) / d, whole units rounded down (and the same from the upper bound for d
    < 0). Branch and bound given these bounds needs no restart to fix the builds its incumbent
    rules out (decision 0004). None when the duals give no finite bound.
    """
    if not len(r.icols) or not np.isfinite(dual).all():
        return None
    rows, d = _priced(r, np.asarray(dual, float))
    d = np.where(np.abs(d) <= DUAL_TOLERANCE, 0.0, d)
    columns = _cheaper_end(d, r.lo, r.up)
    if columns is None:
        return None
    spare = incumbent - (rows + columns)
    if spare < -1e-9 * abs(incumbent):  # a bound above the plan in hand: not to be trusted
        return None
    di, lo, up = d[r.icols], r.lo[r.icols], r.up[r.icols]
    at = np.flatnonzero(di)  # builds off their cheaper end would cost this much a unit
    room = np.floor(max(spare, 0.0) / np.abs(di[at]) + 1e-6)
    rises = di[at] > 0  # at the lower end (the rest at a finite upper end)
    up_ids, down_ids = at[rises], at[~rises]
    lower, upper = lo.copy(), up.copy()
    upper[up_ids] = np.minimum(up[up_ids], lo[up_ids] + room[rises])
    lower[down_ids] = np.maximum(lo[down_ids], up[down_ids] - room[~rises])
    return lower, upper


def _cheaper_end(d: np.ndarray, lo: np.ndarray, up: np.ndarray) -> float | None:
    """min of sum d x over lo <= x <= up: each column at the end its reduced cost ``d`` favours
    (None when that end is infinite)."""
    nz = d != 0
    end = np.where(d[nz] > 0, lo[nz], up[nz])
    return float(d[nz] @ end) if np.isfinite(end).all() else None


def round_builds(m: LinearModel, x: np.ndarray, arrays: ModelArrays | None = None) -> np.ndarray:
    """Whole units from an LP relaxation: every build rounded down, then the fractions added back
    one unit at a time, largest first, up to the relaxation's total (rounded up), while the build
    limits and the capital budget hold. Returns the unit count of each integer column.
    ``arrays``: ``model_arrays(m)``, if built."""
    arrays = arrays or model_arrays(m)
    a, rlo, rup, icols = pure_integer_rows(m, arrays)
    lo, up = arrays.lo, arrays.up
    z = np.maximum(np.floor(x[icols] + 1e-6), lo[icols])
    act = a @ z
    while (act > rup + 1e-6).any() and z.any():  # solver noise above a limit: drop the last unit
        j = int(np.argmax(z))
        z[j] -= 1
        act = a @ z
    frac = np.clip(x[icols] - z, 0.0, None)
    extra = int(np.ceil(frac.sum() - 1e-6))
    a_csc = a.tocsc()
    added = 0
    for j in np.argsort(-frac, kind="stable"):  # a loop over build candidates only
        if added >= extra or frac[j] <= 1e-6:
            break
        if z[j] + 1 > up[icols][j] + 1e-9:
            continue
        col = a_csc[:, j].toarray().ravel()
        if (act + col <= rup + 1e-6).all():
            z[j] += 1
            act = act + col
            added += 1
    return z


class _Clock:
    """One time budget shared by every solve of a model (``run.time_limit_seconds``)."""

    def __init__(self, limit: float | None):
        self.t0 = time.perf_counter()
        self.limit = limit

    def left(self, cap: float | None = None) -> float | None:
        """Seconds left (None = no limit), at most ``cap``."""
        rest = None if self.limit is None else self.limit - (time.perf_counter() - self.t0)
        if cap is not None:
            rest = cap if rest is None else min(rest, cap)
        return None if rest is None else max(rest, 0.0)

    def seconds(self) -> float:
        return time.perf_counter() - self.t0


def _fixed_builds_model(
    m: LinearModel, icols: np.ndarray, units: np.ndarray, seconds: float | None
) -> HighsLP:
    """The LP with the builds pinned at whole units.

    Not warm-started from the relaxation's basis: that was no faster than a solve from scratch at
    8 localities and slower at 16 (decision 0004). The last run's pinned basis is another matter
    (``warm``): few builds and bounds differ.
    """
    return lp_model(m, seconds, fixed=(icols, np.asarray(units, float)))


def _relative_gap(upper: float, lower: float) -> float:
    return max(upper - lower, 0.0) / max(abs(upper), 1e-9)


def solve_highs(
    m: LinearModel,
    time_limit: float | None = None,
    mip_gap: float = MIP_REL_GAP,
    mip_time_limit: float | None = None,
    stage: Callable[[str], None] | None = None,
    warm: ScopedWarmStarts | None = None,
    on_rounded: Callable[[np.ndarray, np.ndarray], None] | None = None,
    branch_and_bound: bool = True,
) -> Solution:
    """Solve with HiGHS within ``time_limit`` seconds in all.

    A model with integer columns (whole-unit builds) is solved to ``mip_gap`` (relative to the LP
    relaxation or the branch-and-bound bound): the relaxation, a rounded whole-unit plan re-
    solved with its builds fixed, then branch and bound below that plan's cost for at most
    ``mip_time_limit`` seconds only if the rounded plan is not yet within the gap and that leaves
    it ROOT_FACTOR times the relaxation's seconds. ``stage`` hears each step's name. ``warm``
    keeps each LP's basis for the next run and starts from the last one where it helps (warm.py).
    ``on_rounded(icols, units)`` hears each whole-unit plan before its LP is re-solved (work that
    needs only the builds can start while it is): the rounded plan, then branch and bound's if it
    betters it. Without ``branch_and_bound`` a rounded plan outside the gap stands with status
    PROVISIONAL (the app's first answer to a lever; a run with it refines the plan).
    """
    say = stage or (lambda _text: None)
    clock = _Clock(time_limit)
    icols = integer_columns(m)
    _, lo, up, _ = m.column_arrays()
    if not len(icols) or np.array_equal(lo[icols], up[icols]):
        # no whole-unit decision left (none, or every build pinned): one LP solve
        say("solving the LP")
        lp = lp_model(m, clock.left())
        status, obj, x, dual, warmed = _solve_lp(lp, m, warm, "lp")
        return Solution(
            "highs",
            status,
            obj,
            x,
            dual,
            clock.seconds(),
            [WARM_NOTE] if warmed is not None else [],
            stages={"lp": clock.seconds()},
        )
    stages: dict[str, float] = {}
    say("LP relaxation of the build plan")
    lp = lp_model(m, clock.left())
    status, lp_bound, x_lp, dual, warm_lp = _solve_lp(lp, m, warm, "relaxation")
    stages["relaxation"] = clock.seconds()
    if status != "optimal":
        status = "time_limit_no_solution" if status.startswith("time_limit") else status
        return Solution("highs", status, np.nan, x_lp, dual, clock.seconds(), stages=stages)
    arrays = model_arrays(m)  # one matrix for the rounding and both bounds below
    units = round_builds(m, x_lp, arrays)
    if on_rounded is not None:
        on_rounded(icols, units)
    say("rounding the build plan to whole units")
    lp = _fixed_builds_model(m, icols, units, clock.left())
    pinned = (icols, np.asarray(units, float))
    st_r, obj_r, x_r, dual_r, warm_r = _solve_lp(lp, m, warm, "pinned", pinned)
    stages["rounded"] = clock.seconds() - sum(stages.values())
    if st_r != "optimal":
        status = "time_limit_no_solution" if st_r.startswith("time_limit") else "error"
        return Solution("highs", status, np.nan, x_r, dual_r, clock.seconds(), stages=stages)
    # whole units under the build limits and the budget lift the relaxation's bound: priced at
    # the relaxation's duals and at the rounded plan's own (decision 0004)
    t_b = time.perf_counter()
    # (each builds' program given at most the relaxation's time: it is a bound even stopped short)
    most = max(1.0, stages["relaxation"])
    lifted = [
        b
        for y in (dual, dual_r)
        if (b := whole_unit_bound(m, y, clock.left(most), arrays)) is not None
    ]
    stages["whole_unit_bound"] = time.perf_counter() - t_b
    # A bound above a plan in hand is noise in the sums if within a millionth, and is otherwise
    # not trusted (it would claim a gap of nothing); the relaxation's bound always stands.
    trusted = [b for b in lifted if b <= obj_r + 1e-6 * abs(obj_r)]
    bound = min(max([lp_bound, *trusted]), obj_r)
    gap = _relative_gap(obj_r, bound)
    notes = [
        f"whole-unit builds rounded from the LP relaxation: {gap:.3%} above the best bound "
        f"(the relaxation's {_relative_gap(obj_r, lp_bound):.3%}, lifted by pricing whole units "
        "within the build limits and the capital budget at the LP's duals)",
        "duals from the LP with integer builds fixed at the plan",
    ]
    if warm_lp is not None or warm_r is not None:
        notes.append(WARM_NOTE)

    def result(status: str, obj: float, x: np.ndarray, dual: np.ndarray, best: float) -> Solution:
        return Solution(
            "highs",
            status,
            obj,
            x,
            dual,
            clock.seconds(),
            notes,
            _relative_gap(obj, best),
            lp_bound,
            stages,
            best,
        )

    if gap <= mip_gap:
        notes.append(f"within policy.mip_gap ({mip_gap:.2%}): no branch and bound needed")
        return result("optimal", obj_r, x_r, dual_r, bound)
    if not branch_and_bound:
        notes.append(DEFERRED_NOTE)
        return result(PROVISIONAL, obj_r, x_r, dual_r, bound)
    seconds = clock.left(mip_time_limit)
    # (a warm-started relaxation's seconds say nothing of the root's: its time from scratch does)
    need = ROOT_FACTOR * (warm_lp if warm_lp is not None else stages["relaxation"])
    if seconds is not None and seconds < max(MIN_SECONDS, need):
        notes.append(
            "no time left for branch and bound: the rounded plan stands"
            if seconds < MIN_SECONDS
            # it could not get past its root in time: nothing to gain but the wait
            else f"branch and bound not started: its root alone (HiGHS's MIP presolve and the "
            f"relaxation again) takes about 2.3 times the relaxation's {stages['relaxation']:.1f} "
            f"s, too long for the {seconds:.1f} s left; with {need:.0f} s or more "
            "(policy.mip_time_limit_seconds) it runs. The rounded plan stands"
        )
        return result("time_limit", obj_r, x_r, dual_r, bound)
    say(f"branch and bound from the rounded plan (gap {gap:.2%}, target {mip_gap:.2%})")
    t_bb = time.perf_counter()
    hb = highs_model(m, seconds, mip_gap)
    tight = tightened_builds(arrays, dual, obj_r)
    if tight is not None:  # no plan beyond these bounds beats the rounded one
        hb.changeColsBounds(len(icols), icols.astype(np.int32), *tight)  # type: ignore[attr-defined]
    # the rounded plan's cost bounds the search; it is not handed over as a starting solution:
    # HiGHS 1.16 can value a given solution below its own cost (after its MIP presolve), then
    # stop at it as if optimal and miss better plans (decision 0004)
    hb.setOptionValue("objective_bound", float(obj_r))  # type: ignore[attr-defined]
    # a whole-unit plan is in hand: feasibility jump, a heuristic whose job is a first feasible
    # plan, only delays the root (1.5 s of 6.6 s under the app's cap; decision 0004)
    hb.setOptionValue("mip_heuristic_run_feasibility_jump", False)  # type: ignore[attr-defined]
    _stop_within_gap(hb, bound, mip_gap, obj_r)
    st_b, obj_b, x_b, _ = _run_highs(hb)
    if cancelled():  # stopped for it: nothing after branch and bound is wanted
        raise RunCancelled("branch and bound")
    info = hb.getInfo()  # type: ignore[attr-defined]
    stages["branch_and_bound"] = time.perf_counter() - t_bb
    best_bound = (
        max(bound, float(info.mip_dual_bound)) if np.isfinite(info.mip_dual_bound) else bound
    )
    if st_b == "infeasible":  # no plan cheaper than the rounded one (which is feasible): it is best
        best_bound = obj_r
    x, obj, dual = x_r, obj_r, dual_r
    if st_b in ("optimal", "time_limit", "interrupted") and np.isfinite(obj_b) and obj_b < obj_r:
        better = np.round(x_b[icols])
        if not np.array_equal(better, units):
            if on_rounded is not None:  # its builds' work starts beside the re-solve, as before
                on_rounded(icols, better)
            lp = _fixed_builds_model(m, icols, better, clock.left())
            # started from branch and bound's own point and the rounded plan's duals, through
            # crossover (unless the last run's basis of this role is primal or dual feasible:
            # one that is neither is further away than crossover's: _solve_lp)
            crossed = _cross_over(lp, x_b, dual_r)
            # its own role: the rounded plan's basis stays "pinned", the one the next run's
            # rounding is nearest (the same rounding, when only the gap changes)
            st_f, obj_f, x_f, dual_f, _ = _solve_lp(
                lp, m, warm, "branch_pinned", (icols, np.asarray(better, float)), both=not crossed
            )
            if st_f == "optimal":
                x, obj, dual = x_f, obj_f, dual_f
            else:  # no time for the duals: keep the better plan, duals unknown
                x, obj, dual = x_b, obj_b, np.full(m.n_rows, np.nan)
                notes[1] = "no time left for the duals of the fixed LP: shadow prices unknown"
    best_bound = min(best_bound, obj)
    gap = _relative_gap(obj, best_bound)
    done = st_b == "optimal" or gap <= mip_gap + 1e-12
    status = "optimal" if done else "time_limit"
    if not done:
        why = (
            "policy.mip_time_limit_seconds"
            if seconds == mip_time_limit
            else "run.time_limit_seconds"
        )
        notes.append(f"branch and bound stopped at {why}: gap {gap:.3%} (target {mip_gap:.2%})")
    stages["total"] = clock.seconds()
    return result(status, obj, x, dual, best_bound)


def _stop_within_gap(h: object, bound: float, mip_gap: float, plan: float = np.inf) -> None:
    """Have branch and bound stop once the best plan, its own or the one in hand (cost ``plan``),
    is within ``mip_gap`` of the better of its own bound and ``bound`` (the whole-unit bound it
    cannot see), not only of its own, or once its run is cancelled (the next stage report then
    ends the run)."""
    import highspy

    # taken here: HiGHS may call back on another thread, outside this run's context
    cancel = cancel_event()

    def check(_kind: int, _msg: str, out: Any, into: Any, _user: Any) -> None:
        best = max(bound, out.mip_dual_bound)
        upper = min(plan, out.objective_function_value)
        if np.isfinite(upper) and _relative_gap(upper, best) <= mip_gap:
            into.user_interrupt = True
        elif cancel is not None and cancel.is_set():  # the run was cancelled (stages.cancellable)
            into.user_interrupt = True

    h.setCallback(check, None)  # type: ignore[attr-defined]
    h.startCallback(highspy.cb.HighsCallbackType.kCallbackMipInterrupt)  # type: ignore[attr-defined]


def solve_cbc(
    m: LinearModel,
    pm: PulpModel | None = None,
    time_limit: float | None = None,
    mip_gap: float = MIP_REL_GAP,
    stage: Callable[[str], None] | None = None,
) -> Solution:
    """Solve with CBC through PuLP (the fallback) within ``time_limit`` seconds in all; duals via
    the fixed-integer LP re-solve. CBC through PuLP reports no gap, so the summary's is None."""
    clock = _Clock(time_limit)
    pm = pm or to_pulp(m)
    icols = integer_columns(m)
    if stage is not None:
        stage("solving with CBC")
    status, obj, x, dual = _run_cbc(pm, clock.left(), mip_gap)
    notes: list[str] = []
    if len(icols) and status in ("optimal", "time_limit"):
        notes.append(f"CBC stops at policy.mip_gap ({mip_gap:.2%}) but reports no gap achieved")
        saved = [
            (pm.variables[i].lowBound, pm.variables[i].upBound, pm.variables[i].cat) for i in icols
        ]
        for i in icols.tolist():
            v = pm.variables[i]
            v.lowBound = v.upBound = float(round(x[i]))
            v.cat = pulp.LpContinuous
        left = clock.left()
        if left is None or left >= MIN_SECONDS:
            st2, obj2, x2, dual = _run_cbc(pm, left, mip_gap)
        else:
            st2, dual = "time_limit", np.full(m.n_rows, np.nan)
        for i, (lo, up, cat) in zip(icols.tolist(), saved, strict=True):
            v = pm.variables[i]
            v.lowBound, v.upBound, v.cat = lo, up, cat
        if st2 == "optimal":
            x, obj = x2, obj2
            notes.append("duals from the LP with integer builds fixed at the MIP optimum")
    return Solution("cbc", status, obj, x, dual, clock.seconds(), notes)


def _run_cbc(
    pm: PulpModel, time_limit: float | None, mip_gap: float = MIP_REL_GAP
) -> tuple[str, float, np.ndarray, np.ndarray]:
    with warnings.catch_warnings():  # PuLP 3.x announces a 4.0 rename of its bundled CBC
        warnings.simplefilter("ignore", DeprecationWarning)
        limit = None if time_limit is None else max(float(time_limit), 1.0)  # CBC takes seconds
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=limit, gapRel=mip_gap)
        pm.problem.solve(solver)
    st = pulp.LpStatus[pm.problem.status]
    status = {
        "Optimal": "optimal",
        "Infeasible": "infeasible",
        "Unbounded": "unbounded",
        "Not Solved": "time_limit",
    }.get(st, "error")
    if status == "optimal" and pm.problem.sol_status == pulp.LpSolutionIntegerFeasible:
        status = "time_limit"  # stopped at the time limit with a whole-unit plan in hand
    x = np.array([v.varValue if v.varValue is not None else np.nan for v in pm.variables])
    # PuLP/CBC report pi as d(objective)/d(rhs), the same convention as HiGHS's row_dual.
    dual = np.array([c.pi if c.pi is not None else np.nan for c in pm.constraints])
    obj = pulp.value(pm.problem.objective)
    if status == "time_limit" and not np.isfinite(x).all():
        status = "time_limit_no_solution"
    return status, float(obj) if obj is not None else np.nan, x, dual
