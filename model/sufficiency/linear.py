"""A small sparse LP container: named blocks of variables and constraints plus COO coefficients.

The ``define_*`` functions fill it with numpy arrays (no Python loop over cells); ``to_pulp``
turns it into the PuLP problem (the modelling layer users inspect, export as MPS or hand to CBC)
and ``csc`` gives the same matrix to HiGHS in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pulp
import scipy.sparse as sp

INF = float("inf")


@dataclass
class Block:
    """A family of variables or constraints: ids ``start .. start + size`` and their index codes."""

    name: str
    dims: tuple[str, ...]
    codes: dict[str, np.ndarray]  # dimension -> integer code of each member
    start: int
    size: int
    lower: np.ndarray
    upper: np.ndarray
    cost: np.ndarray | None = None  # variables only
    integer: bool = False  # variables only

    @property
    def ids(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.size)


@dataclass
class LinearModel:
    """Variables, constraints and coefficients of one LP, with labels for every dimension."""

    labels: dict[str, list[str]]  # dimension -> labels (codes index into these)
    variables: dict[str, Block] = field(default_factory=dict)
    constraints: dict[str, Block] = field(default_factory=dict)
    ids: dict[str, np.ndarray] = field(default_factory=dict)  # dense lookups the builder keeps
    n_cols: int = 0
    n_rows: int = 0
    _rows: list[np.ndarray] = field(default_factory=list)
    _cols: list[np.ndarray] = field(default_factory=list)
    _vals: list[np.ndarray] = field(default_factory=list)

    # -- building ------------------------------------------------------------------------------
    def add_variables(
        self,
        name: str,
        codes: dict[str, np.ndarray],
        cost: np.ndarray,
        lower: float | np.ndarray = 0.0,
        upper: float | np.ndarray = INF,
        integer: bool = False,
    ) -> np.ndarray:
        """Add a block of variables, one per row of ``codes``; returns their column ids."""
        size = len(cost)
        blk = Block(
            name=name,
            dims=tuple(codes),
            codes={k: np.asarray(v, np.int64) for k, v in codes.items()},
            start=self.n_cols,
            size=size,
            lower=np.broadcast_to(np.asarray(lower, float), (size,)).copy(),
            upper=np.broadcast_to(np.asarray(upper, float), (size,)).copy(),
            cost=np.asarray(cost, float),
            integer=integer,
        )
        self.variables[name] = blk
        self.n_cols += size
        return blk.ids

    def add_constraints(
        self,
        name: str,
        codes: dict[str, np.ndarray],
        lower: float | np.ndarray,
        upper: float | np.ndarray,
    ) -> np.ndarray:
        """Add a block of rows ``lower <= a.x <= upper``; returns their row ids."""
        size = len(next(iter(codes.values()))) if codes else 1
        blk = Block(
            name=name,
            dims=tuple(codes),
            codes={k: np.asarray(v, np.int64) for k, v in codes.items()},
            start=self.n_rows,
            size=size,
            lower=np.broadcast_to(np.asarray(lower, float), (size,)).copy(),
            upper=np.broadcast_to(np.asarray(upper, float), (size,)).copy(),
        )
        self.constraints[name] = blk
        self.n_rows += size
        return blk.ids

    def add_terms(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float) -> None:
        """Add coefficients a[rows, cols] += vals."""
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        self._rows.append(rows)
        self._cols.append(cols)
        self._vals.append(np.broadcast_to(np.asarray(vals, float), rows.shape).copy())

    # -- views -----------------------------------------------------------------------------------
    def column_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Objective, lower bounds, upper bounds and integrality of every column, in id order."""
        blocks = list(self.variables.values())
        cost = np.concatenate([b.cost for b in blocks]) if blocks else np.zeros(0)
        lo = np.concatenate([b.lower for b in blocks]) if blocks else np.zeros(0)
        up = np.concatenate([b.upper for b in blocks]) if blocks else np.zeros(0)
        integ = (
            np.concatenate([np.full(b.size, b.integer) for b in blocks])
            if blocks
            else np.zeros(0, bool)
        )
        return cost, lo, up, integ

    def row_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        blocks = list(self.constraints.values())
        if not blocks:
            return np.zeros(0), np.zeros(0)
        return (
            np.concatenate([b.lower for b in blocks]),
            np.concatenate([b.upper for b in blocks]),
        )

    def coo(self) -> sp.coo_matrix:
        if not self._rows:
            return sp.coo_matrix((self.n_rows, self.n_cols))
        return sp.coo_matrix(
            (np.concatenate(self._vals), (np.concatenate(self._rows), np.concatenate(self._cols))),
            shape=(self.n_rows, self.n_cols),
        )

    def csr(self) -> sp.csr_matrix:
        m = self.coo().tocsr()
        m.sum_duplicates()
        return m

    @property
    def nnz(self) -> int:
        return int(sum(len(r) for r in self._rows))

    # -- names (used for PuLP and model.mps) -----------------------------------------------------
    def names(self, blk: Block) -> list[str]:
        """Readable unique names, e.g. ``route_2027_exeter_ASD_primary_special_teignbridge``."""
        parts = [np.asarray(self.labels[d], dtype=object)[blk.codes[d]] for d in blk.dims]
        if not parts:
            return [blk.name]
        out = np.full(blk.size, blk.name, dtype=object)
        for p in parts:
            out = out + "_" + p.astype(str).astype(object)
        return out.tolist()


# --------------------------------------------------------------------------- PuLP layer


@dataclass
class PulpModel:
    """The PuLP problem for a ``LinearModel``; ``variables[i]`` / ``constraints[r]`` are column / row i."""

    problem: pulp.LpProblem
    variables: list[pulp.LpVariable]
    constraints: list[pulp.LpConstraint]


def to_pulp(model: LinearModel, name: str = "sendplan_sufficiency") -> PulpModel:
    """Build the PuLP problem: one LpVariable per column, dict-built LpAffineExpressions per row.

    Rows are assembled from the CSR matrix (one ``zip`` per row over a slice), so the cost is linear
    in the number of non-zeros.
    """
    prob = pulp.LpProblem(name, pulp.LpMinimize)
    cost, lo, up, integ = model.column_arrays()
    names: list[str] = []
    for blk in model.variables.values():
        names.extend(model.names(blk))
    cont, intg = pulp.LpContinuous, pulp.LpInteger
    lo_l = [None if not np.isfinite(v) else float(v) for v in lo]
    up_l = [None if not np.isfinite(v) else float(v) for v in up]
    vars_ = [
        prob.add_variable(nm, a, b, intg if i else cont)
        for nm, a, b, i in zip(names, lo_l, up_l, integ.tolist(), strict=True)
    ]
    nz = np.flatnonzero(cost)
    prob.setObjective(
        pulp.LpAffineExpression(
            zip([vars_[i] for i in nz.tolist()], cost[nz].tolist(), strict=True)
        )
    )

    a = model.csr()
    rlo, rup = model.row_bounds()
    row_names: list[str] = []
    for blk in model.constraints.values():
        row_names.extend(model.names(blk))
    var_arr = np.empty(len(vars_), dtype=object)
    var_arr[:] = vars_
    col_vars = var_arr[a.indices].tolist()
    vals = a.data.tolist()
    ptr = a.indptr.tolist()
    cons: list[pulp.LpConstraint] = []
    EQ, LE, GE = pulp.LpConstraintEQ, pulp.LpConstraintLE, pulp.LpConstraintGE
    for r, nm in enumerate(row_names):
        lo_r, up_r = rlo[r], rup[r]
        if lo_r == up_r:
            sense, rhs = EQ, lo_r
        elif np.isfinite(up_r):
            if np.isfinite(lo_r):
                raise ValueError(f"ranged row {nm} is not supported by the PuLP export")
            sense, rhs = LE, up_r
        else:
            sense, rhs = GE, lo_r
        expr = pulp.LpAffineExpression(
            zip(col_vars[ptr[r] : ptr[r + 1]], vals[ptr[r] : ptr[r + 1]], strict=True)
        )
        c = pulp.LpConstraint(expr, sense, nm, float(rhs))
        prob.addConstraint(c)
        cons.append(c)
    return PulpModel(problem=prob, variables=vars_, constraints=cons)
