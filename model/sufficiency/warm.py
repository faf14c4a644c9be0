"""Warm starts between runs: the last optimal simplex basis of each solve, matched by meaning.

When a run differs from the last only in bounds and right-hand sides (committed places, delays, a
cap on the independent share, build limits), the last optimal basis stays dual feasible and the
dual simplex needs hundreds of iterations instead of ten thousand: on the Devon LP 0.18 s against
1.09 s after extra resource-base places (decision 0004). After a cost change it is no longer dual
feasible and HiGHS's presolve, which it skips when given a basis, is worth more (a warm start took
three times as long), so a solve whose shared columns cost differently starts from scratch; a
demand change moves the costs too (what an entrant's placement costs depends on how long plans
last).

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
from typing import Any

import numpy as np
import pandas as pd

from .linear import Block, LinearModel

# HiGHS's basis statuses (highspy.HighsBasisStatus)
LOWER, BASIC, UPPER, ZERO = 0, 1, 2, 3


def _keys(blk: Block, labels: dict[str, list[str]]) -> np.ndarray:
    """One int64 per member of a block: its index codes as one number (labels fix the radix)."""
    if not blk.dims:
        return np.zeros(blk.size, np.int64)
    sizes = [len(labels[d]) for d in blk.dims]
    return np.ravel_multi_index([blk.codes[d] for d in blk.dims], sizes).astype(np.int64)


@dataclass(frozen=True)
class Basis:
    """One solved model's basis, with what each status belongs to and the column costs."""

    labels: dict[str, list[str]]
    cols: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # block -> keys, status, cost
    rows: dict[str, tuple[np.ndarray, np.ndarray]]  # block -> keys, status
    cold_seconds: float  # what this role's solve took from scratch (branch and bound's estimate)


def capture(
    m: LinearModel, col_status: np.ndarray, row_status: np.ndarray, cold_seconds: float
) -> Basis:
    """The basis HiGHS returned for ``m``, by block."""
    cols = {
        n: (_keys(b, m.labels), col_status[b.start : b.start + b.size], np.asarray(b.cost))
        for n, b in m.variables.items()
    }
    rows = {
        n: (_keys(b, m.labels), row_status[b.start : b.start + b.size])
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


def starting_basis(m: LinearModel, basis: Basis) -> tuple[np.ndarray, np.ndarray] | None:
    """Column and row statuses for ``m`` from an earlier model's ``basis``, or None when it would
    not help: other dimensions (localities, years, settings), or a shared column's cost changed."""
    if {k: list(v) for k, v in m.labels.items()} != basis.labels:
        return None
    _, lo, up, _ = m.column_arrays()
    rlo, rup = m.row_bounds()
    # a new column starts at a finite bound (free ones at zero); a new row with its slack basic
    fill = np.where(np.isfinite(lo), LOWER, np.where(np.isfinite(up), UPPER, ZERO))
    col, where = _matched(m.variables, basis.cols, m.labels, fill.astype(np.int8))
    for name, (new, old) in where.items():
        b = m.variables[name]
        if not np.array_equal(b.cost[new], basis.cols[name][2][old]):
            return None
    row, _ = _matched(m.constraints, basis.rows, m.labels, np.full(m.n_rows, BASIC, np.int8))
    # a nonbasic status at a bound that is now infinite moves to the other end (or zero)
    col = _at_finite_bound(col, lo, up)
    row = _at_finite_bound(row, rlo, rup)
    return col, row


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
        if not isinstance(bases, dict) or not all(isinstance(b, Basis) for b in bases.values()):
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
