"""Warm starts between runs: the last optimal simplex basis of each solve, matched by meaning.

When a run differs from the last only in bounds and right-hand sides (committed places, delays, a
cap on the independent share, build limits), the last optimal basis stays dual feasible and the
dual simplex needs hundreds of iterations instead of ten thousand: on the Devon LP 0.18 s against
1.09 s after extra resource-base places (decision 0004). When only costs changed (a unit cost,
inflation), it stays primal feasible instead, and the primal simplex starts from it: 0-24
iterations against 10,700 from scratch on the Devon LP (the dual simplex from it took longer than
from scratch). When both changed, as after a demand change (what an entrant's placement costs
depends on how long plans last), neither holds, but the dual simplex from it still needs about
1,000-2,000 iterations instead of 12,000 on the LP with its fallbacks substituted out (decision
0004), so it starts from it unless many columns it had basic are gone.

Columns and rows are matched by what they are (block name and index codes), not by position:
pruning keeps different columns when a lever changes what is worth placing where. Columns new to
this model start at a bound and new rows with their slack basic; HiGHS is told the basis is "alien"
and makes it valid (the count of basic variables may no longer fit, or the set be singular).
"""

from __future__ import annotations

import copy
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .linear import Block, LinearModel

# HiGHS's basis statuses (highspy.HighsBasisStatus)
LOWER, BASIC, UPPER, ZERO = 0, 1, 2, 3
# After costs and bounds both changed, a basis is used only if at most this share of the columns it
# had basic are gone: a growth change drops 11 of Devon's 21,041 (cells with no entrants left);
# pruning that removes the settings the last plan used drops far more, and little is left to start
# from.
GONE_BASIC_SHARE = 0.01


def _keys(blk: Block, labels: dict[str, list[str]]) -> np.ndarray:
    """One int64 per member of a block: its index codes as one number (labels fix the radix)."""
    if not blk.dims:
        return np.zeros(blk.size, np.int64)
    sizes = [len(labels[d]) for d in blk.dims]
    return np.ravel_multi_index([blk.codes[d] for d in blk.dims], sizes).astype(np.int64)


@dataclass(frozen=True)
class Basis:
    """One solved model's basis, with what each status belongs to, the column costs and the
    bounds it was optimal for."""

    labels: dict[str, list[str]]
    # block -> keys, status, cost, lower and upper bounds (columns) or row bounds (rows)
    cols: dict[str, tuple[np.ndarray, ...]]
    rows: dict[str, tuple[np.ndarray, ...]]
    cold_seconds: float  # what this role's solve took from scratch (branch and bound's estimate)


class Start(NamedTuple):
    """HiGHS statuses to start a solve from, and which simplex to start it with."""

    col: np.ndarray
    row: np.ndarray
    # only costs changed: the basis is still primal feasible, so the primal simplex starts from
    # it (else the dual simplex does: only bounds changed, or both)
    primal: bool


def capture(
    m: LinearModel,
    col_status: np.ndarray,
    row_status: np.ndarray,
    cold_seconds: float,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> Basis:
    """The basis HiGHS returned for ``m``, by block; ``bounds``: the column bounds it was solved
    with, where they were not ``m``'s own (builds pinned)."""
    lo, up = bounds if bounds is not None else m.column_arrays()[1:3]
    rlo, rup = m.row_bounds()
    cols = {
        n: (
            _keys(b, m.labels),
            col_status[(s := slice(b.start, b.start + b.size))],
            np.asarray(b.cost),
            lo[s],
            up[s],
        )
        for n, b in m.variables.items()
    }
    rows = {
        n: (_keys(b, m.labels), row_status[(s := slice(b.start, b.start + b.size))], rlo[s], rup[s])
        for n, b in m.constraints.items()
    }
    return Basis({k: list(v) for k, v in m.labels.items()}, cols, rows, cold_seconds)


def _matched(
    blocks: dict[str, Block], old: dict[str, Any], labels: dict[str, list[str]], fill: np.ndarray
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Statuses for ``blocks`` from ``old`` where a member was there before (else ``fill``), and
    per block the positions matched (new, old)."""
    status = fill.copy()
    where: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, b in blocks.items():
        if name not in old or not b.size:
            continue
        pos = pd.Index(old[name][0]).get_indexer(_keys(b, labels))
        new = np.flatnonzero(pos >= 0)
        status[b.start + new] = old[name][1][pos[new]]
        where[name] = (new, pos[new])
    return status, where


def starting_basis(
    m: LinearModel,
    basis: Basis,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    both: bool = True,
) -> Start | None:
    """Statuses for ``m`` (solved with column ``bounds``, else its own) from an earlier model's
    ``basis``, or None when it would not help: other dimensions (localities, years, settings), or
    costs and bounds both changed and ``both`` is False or over GONE_BASIC_SHARE of the columns the
    basis had basic are gone."""
    if {k: list(v) for k, v in m.labels.items()} != basis.labels:
        return None
    lo, up = bounds if bounds is not None else m.column_arrays()[1:3]
    rlo, rup = m.row_bounds()
    # a new column starts at a finite bound (free ones at zero); a new row with its slack basic
    col, where = _matched(m.variables, basis.cols, m.labels, _new_column_status(lo, up))
    row, where_rows = _matched(
        m.constraints, basis.rows, m.labels, np.full(m.n_rows, BASIC, np.int8)
    )
    same_costs = all(
        np.array_equal(m.variables[name].cost[new], basis.cols[name][2][old])
        for name, (new, old) in where.items()
    )
    primal = not same_costs
    if primal and not _same_point(m, basis, where, where_rows, lo, up, rlo, rup):
        if not both:
            return None
        # costs changed and the point did not survive (bounds changed too, as after a demand
        # lever): the basis is neither primal nor dual feasible, yet the dual simplex from it beats
        # a start from scratch on the substituted LP (decision 0004), unless many columns it had
        # basic are gone (pruned)
        lost = sum(int((basis.cols[n][1][gone] == BASIC).sum()) for n, gone in _gone(basis, where))
        if lost > GONE_BASIC_SHARE * sum(int((c[1] == BASIC).sum()) for c in basis.cols.values()):
            return None
        primal = False
    # a nonbasic status at a bound that is now infinite moves to the other end (or zero)
    col = _at_finite_bound(col, lo, up)
    row = _at_finite_bound(row, rlo, rup)
    return Start(col, row, primal=primal)


def _gone(
    basis: Basis, where: dict[str, tuple[np.ndarray, np.ndarray]]
) -> list[tuple[str, np.ndarray]]:
    """Per block of the last basis, which of its columns the new model no longer has."""
    out = []
    for name, (keys, *_rest) in basis.cols.items():
        gone = np.ones(len(keys), bool)
        gone[where.get(name, (None, np.zeros(0, int)))[1]] = False
        out.append((name, gone))
    return out


def _same_point(
    m: LinearModel,
    basis: Basis,
    where: dict[str, tuple[np.ndarray, np.ndarray]],
    where_rows: dict[str, tuple[np.ndarray, np.ndarray]],
    lo: np.ndarray,
    up: np.ndarray,
    rlo: np.ndarray,
    rup: np.ndarray,
) -> bool:
    """Whether ``basis`` gives ``m`` the same primal point, so it is still primal feasible: the
    same rows, with the same bounds; shared columns keep their bounds; a column gone was
    nonbasic at zero; a new column starts at a bound of zero (so the basic set is the same)."""
    old_rows = sum(len(r[0]) for r in basis.rows.values())
    if not m.n_rows == old_rows == sum(len(new) for new, _ in where_rows.values()):
        return False
    for name, (new, old) in where_rows.items():
        s = m.constraints[name].start + new
        _, _, olo, oup = basis.rows[name]
        if not (np.array_equal(rlo[s], olo[old]) and np.array_equal(rup[s], oup[old])):
            return False
    matched = np.zeros(m.n_cols, bool)
    for name, gone in _gone(basis, where):
        _, status, _, olo, oup = basis.cols[name]
        new, old = where.get(name, (np.zeros(0, int), np.zeros(0, int)))
        s = m.variables[name].start + new if name in m.variables else new
        if not (np.array_equal(lo[s], olo[old]) and np.array_equal(up[s], oup[old])):
            return False
        matched[s] = True
        if (status[gone] == BASIC).any() or np.any(
            _nonbasic_value(status[gone], olo[gone], oup[gone]) != 0
        ):
            return False
    fresh = ~matched
    start = _nonbasic_value(_new_column_status(lo[fresh], up[fresh]), lo[fresh], up[fresh])
    return not np.any(start != 0)


def _new_column_status(lo: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Where a column the last basis does not have starts: at a finite bound, a free one at zero."""
    return np.where(np.isfinite(lo), LOWER, np.where(np.isfinite(up), UPPER, ZERO)).astype(np.int8)


def _nonbasic_value(status: np.ndarray, lo: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The value of nonbasic columns at ``status``: their lower or upper bound, or zero."""
    return np.where(status == LOWER, lo, np.where(status == UPPER, up, 0.0))


def _at_finite_bound(status: np.ndarray, lo: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Nonbasic statuses moved off infinite bounds."""
    status = status.copy()
    bad_lo = (status == LOWER) & ~np.isfinite(lo)
    status[bad_lo] = np.where(np.isfinite(up[bad_lo]), UPPER, ZERO)
    bad_up = (status == UPPER) & ~np.isfinite(up)
    status[bad_up] = np.where(np.isfinite(lo[bad_up]), LOWER, ZERO)
    return status


class WarmStarts:
    """The last optimal basis of each solve role ("plan:relaxation", "plan:pinned", ...), kept
    between runs by a caller that re-runs with small changes (the app's levers). Thread-safe: the
    engine solves two LPs at once. ``recording_only()`` shares the bases but starts every solve
    from scratch (a run that must match the CLI's exactly still leaves its bases for the next)."""

    def __init__(self) -> None:
        self._bases: dict[str, Basis] = {}
        self._lock = threading.Lock()
        self._start = True

    def get(self, role: str) -> Basis | None:
        if not self._start:
            return None
        with self._lock:
            return self._bases.get(role)

    def put(self, role: str, basis: Basis) -> None:
        with self._lock:
            self._bases[role] = basis

    def snapshot(self) -> dict[str, Basis]:
        """The bases as they are now (each is immutable): to keep beside a run's results."""
        with self._lock:
            return dict(self._bases)

    def adopt(self, bases: dict[str, Basis]) -> bool:
        """Take the bases of a run shown from a cache: the next lever changes that run, so its
        bases are the ones to start from. False if there were none."""
        if not bases:
            return False
        with self._lock:
            self._bases.clear()
            self._bases.update(bases)
        return True

    def save(self, path: Path) -> None:
        """Write the bases to ``path`` (a pickle: only for a folder this process owns, like the
        app's results cache, so that the first lever after a restart starts warm too)."""
        with open(path, "wb") as f:
            pickle.dump(self.snapshot(), f, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, path: Path) -> bool:
        """``adopt`` the bases ``save`` wrote; False if none were taken (a missing or damaged file
        included: a cache never fails a run)."""
        try:
            with open(path, "rb") as f:
                bases = pickle.load(f)
        except Exception:
            return False
        if not isinstance(bases, dict) or not all(
            isinstance(b, Basis) and all(len(c) == 5 for c in b.cols.values())
            for b in bases.values()
        ):  # not a store of bases, or one written before the bounds were kept
            return False
        return self.adopt(bases)

    def recording_only(self) -> WarmStarts:
        """The same bases, kept but never started from."""
        view = copy.copy(self)
        view._start = False
        return view

    def scoped(self, tag: str) -> ScopedWarmStarts:
        """This store seen by one LP of a run (the plan, the central re-solve, the no-build LP)."""
        return ScopedWarmStarts(self, tag)


@dataclass(frozen=True)
class ScopedWarmStarts:
    """A ``WarmStarts`` whose roles are prefixed by one LP's tag."""

    store: WarmStarts
    tag: str

    def get(self, role: str) -> Basis | None:
        return self.store.get(f"{self.tag}:{role}")

    def put(self, role: str, basis: Basis) -> None:
        self.store.put(f"{self.tag}:{role}", basis)
