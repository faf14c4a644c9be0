"""Monte Carlo demand paths through the placement allocation, run once and shared.

Two stages read the same paths: finance (P10/P50/P90 of HNB spend, on the unmitigated pattern, with
committed capacity and again with the optimiser's builds added) and the robustness check of the
fixed build plan (the optimised pattern, and the unmitigated pattern beside it for the saving).
``run_paths`` goes through the paths once, a chunk at a time: each chunk's placement demand
(``placements._demand_batch``) is computed once and handed to every allocation that needs it, and
the unmitigated allocation with committed capacity runs once for both the finance bands and the
robustness baseline. Results are per path, so they do not depend on how paths are grouped.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .costs import (
    fy_weights,
    other_hnb_spend,
    provider_spend_fy,
    transport_cost_per_place,
)
from .machine import available_memory
from .placements import (
    PATH_ARRAYS,
    PathPlaces,
    _demand_batch,
    allocate_totals,
    batch_constants,
    capacity_array,
    carried_entrants,
    desired_unmitigated,
    path_chunk,
    paths_fingerprint,
    planned_fraction,
    shared_arrays,
    spill_pairs,
)
from .scenario import PHASES, Scenario

MAX_FINANCE_PATHS = 200  # Monte Carlo paths run through placements and finance (evenly subsampled)
MAX_ROBUST_PATHS = 100  # paths the robustness check evaluates (evenly spaced; paths are i.i.d.)
MAX_PENDING = 2  # tasks waiting for run_paths' second thread when nothing was computed ahead
# What path_batches may keep of placement demand computed ahead: 1 GiB whatever memory is free, or
# up to a quarter of the memory available when it starts (``ahead_budget``). What it keeps is about
# four float64 values per path and (entry year, year, locality, need, phase) cell, persistence and
# the places it gives (measured for 200 paths: 330 MB at 8 localities, 680 MB at 16, 1.45 GB at 32),
# and one more for the places with the builds of a second plan added (PathCache, BUILDS_KEPT)
AHEAD_BYTES = 2**30
AHEAD_MEMORY_SHARE = 0.25
AHEAD_VALUES_PER_CELL = 5


def ahead_budget() -> int:
    """Bytes ``path_batches`` may keep: AHEAD_BYTES, or AHEAD_MEMORY_SHARE of the memory the
    machine has available now if more (computed ahead, the paths' plan-free work runs beside the
    LP instead of after it: 64 localities took 69.6 s against 76.1 s, with 7.1 GB at most in use
    against 4.2 GB; decision 0008)."""
    free = available_memory()
    return AHEAD_BYTES if free is None else max(AHEAD_BYTES, int(AHEAD_MEMORY_SHARE * free))


def path_indices(n_paths: int, max_paths: int = MAX_FINANCE_PATHS) -> np.ndarray:
    """Paths used for finance bands: all of them, or ``max_paths`` evenly spaced (paths are i.i.d.)."""
    if n_paths <= max_paths:
        return np.arange(n_paths)
    return np.unique(np.linspace(0, n_paths - 1, max_paths).round().astype(int))


def derive_path_new(path_stock: np.ndarray, stock: np.ndarray, new: np.ndarray) -> np.ndarray:
    """New plans per path when the demand stage gives only path stocks: each path's survivors follow
    the deterministic survival ratio of its cell, so its extra stock shows up as extra new plans."""
    P, T = path_stock.shape[:2]
    out = np.zeros(path_stock.shape, dtype=float)
    out[:, :, 0] = path_stock[:, :, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        prev = stock[:-1, :-1]
        r = np.where(
            prev > 0,
            np.clip((stock[1:, 1:] - new[1:, 1:]) / np.where(prev > 0, prev, 1.0), 0, 1),
            0.0,
        )
    out[:, 1:, 1:] = np.maximum(path_stock[:, 1:, 1:] - path_stock[:, :-1, :-1] * r[None], 0.0)
    out[:, 0] = 0.0
    return out


def n_paths(demand: Any) -> int:
    """Monte Carlo paths a DemandResult carries (0 when it has none beyond the central forecast)."""
    ps = getattr(demand, "path_stock", None)
    n = 0 if ps is None else int(np.asarray(ps).shape[0])
    return n if n > 1 else 0


def path_sample(demand: Any, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stock and new plans [K, T, A, N, L] (float) of the paths ``idx`` of a DemandResult."""
    ps = np.asarray(demand.path_stock)[idx].astype(float)
    pn = getattr(demand, "path_new", None)
    pn = (
        np.asarray(pn)[idx].astype(float)
        if pn is not None
        else derive_path_new(ps, np.asarray(demand.stock, float), np.asarray(demand.new, float))
    )
    return ps, pn


def _allocate_unmitigated(arr: dict[str, Any], cap: np.ndarray, pairs: list) -> PathPlaces:
    """Places of today's pattern within capacity ``cap`` (overflow kept), summed as paths need."""
    return allocate_totals(
        desired_unmitigated(arr),
        arr["persistence"],
        arr["legacy"],
        cap,
        arr["overflow"],
        pairs,
        arr["overflow_chain"],
        arr["serves_need"],
        arr["chain_ok"],
    )


def path_hnb_spend(
    scn: Scenario,
    path_stock: np.ndarray,
    path_new: np.ndarray,
    extra_capacity: np.ndarray | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """[P, F] HNB spend per Monte Carlo path on the unmitigated pattern (capacity and overflow kept).

    In chunks of paths (``path_chunk`` unless given); ``extra_capacity`` [T, S, L] adds places
    (e.g. the LP's builds).
    """
    chunk = chunk or path_chunk(scn)
    cap = capacity_array(scn, extra_capacity)
    pairs = spill_pairs(scn)
    other = other_hnb_spend(scn)
    out = []
    for lo in range(0, path_stock.shape[0], chunk):
        arr = _demand_batch(scn, path_stock[lo : lo + chunk], path_new[lo : lo + chunk])
        places = _allocate_unmitigated(arr, cap, pairs)
        out.append(provider_spend_fy(scn, places.by_provider, extra_capacity) + other[None])
    return np.concatenate(out, axis=0)


# --------------------------------------------------------------------------- the shared run


@dataclass
class PlanPattern:
    """What the optimised plan does with a path's entrants (from the LP's solution).

    share [T, L, N, P, B, S] and unmet_share [T, L, N, P, B]: where each band's entrants go;
    build_places [T, S, L] places the builds add from their opening year.
    """

    share: np.ndarray
    unmet_share: np.ndarray
    first_decision: int  # year index from which placements follow the plan
    build_places: np.ndarray
    independent: np.ndarray  # [S] bool: settings counted as independent places
    capital_gbp: float  # capital of the builds (added to every path's cost)


@dataclass
class RobustPaths:
    """The fixed build plan across Monte Carlo paths, one value per path evaluated."""

    paths: np.ndarray  # path indices
    plan_cost_gbp: np.ndarray  # HNB placements + transport + capital, optimised pattern
    unmitigated_cost_gbp: np.ndarray  # HNB placements + transport, unmitigated pattern
    unplaced_last: np.ndarray  # children without a place in the last year
    independent_last: np.ndarray  # independent places in the last year, optimised pattern
    independent_unmitigated_last: np.ndarray  # the same, unmitigated pattern


@dataclass
class PathRuns:
    """The Monte Carlo paths' results that finance and the robustness check report."""

    finance_paths: np.ndarray  # path indices of the finance bands
    unmitigated_hnb_spend: np.ndarray | None  # [P, F] committed capacity, today's pattern
    with_builds_hnb_spend: np.ndarray | None  # [P, F] today's pattern with the builds added
    # (the same array as unmitigated_hnb_spend when there are no builds)
    robust: RobustPaths | None


def _take(arr: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """The paths ``rows`` (a mask or indices) of a demand batch (shared arrays kept as they are)."""
    return {k: (v[rows] if k in PATH_ARRAYS else v) for k, v in arr.items()}


def _join(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Demand batches of different paths as one batch (paths in order)."""
    if len(parts) == 1:
        return parts[0]
    out = dict(parts[0])
    for k in PATH_ARRAYS:
        out[k] = np.concatenate([p[k] for p in parts], axis=0)
    return out


class _Queue:
    """Paths waiting to be allocated together, in the order they came, ``chunk`` at a time: the
    same groups of paths as a run over these paths alone would allocate."""

    def __init__(self, chunk: int, run: Any):
        self.chunk, self.run = chunk, run
        self.pos: list[np.ndarray] = []
        self.arr: list[dict[str, Any]] = []

    def add(self, pos: np.ndarray, arr: dict[str, Any]) -> None:
        if len(pos):
            self.pos.append(pos)
            self.arr.append(arr)
            self.drain(final=False)

    def drain(self, final: bool) -> None:
        while self.pos and (final or sum(len(p) for p in self.pos) >= self.chunk):
            pos, arr = np.concatenate(self.pos), _join(self.arr)
            n = min(self.chunk, len(pos))
            self.pos, self.arr = (
                ([pos[n:]], [_take(arr, np.arange(n, len(pos)))]) if n < len(pos) else ([], [])
            )
            self.run(pos[:n], _take(arr, np.arange(n)) if n < len(pos) else arr)


# Sets of places with a plan's builds added kept: a cap lever's rounded plan and branch and
# bound's better one, so relaxing the plan gap next finds the rounded plan's (91 MB a set for Devon
# at 200 paths)
BUILDS_KEPT = 2


class PathCache:
    """The placement demand of the last run's Monte Carlo paths, kept for a next run on the same
    demand stage (the app's levers): computing it is about a third of ``path_batches``' work.
    With it, today's pattern within committed capacity on the finance paths (the places, not
    their cost), for the committed places it was allocated in.

    One entry, for one demand stage object (held weakly) and the scenario constants its arrays
    depend on (``placements.paths_fingerprint``): a lever that changes places from a later year,
    limits or costs finds it; one that changes the mix, bands, base-year capacity or demand does
    not, and replaces it. Its places are kept for the capacity they were allocated in: today's
    committed places (one set), and those with a plan's builds added (the last BUILDS_KEPT sets);
    for levers that change neither those places nor who may travel where (a cost, a plan gap, a
    cap that keeps the builds). Thread-safe; the arrays are only read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[weakref.ref[Any], tuple[Any, ...], str, list[dict[str, Any]]] | None
        self._entry = None
        # (capacity fingerprint, each batch's places), most recently used last: today's (False),
        # and with the builds of the last plans added (True)
        self._places: dict[bool, list[tuple[str, list[PathPlaces | None]]]] = {}
        self.hits = 0

    def _matches(self, demand: Any, key: tuple[Any, ...], fingerprint: str) -> bool:
        e = self._entry
        return e is not None and e[0]() is demand and e[1] == key and e[2] == fingerprint

    def get(
        self, demand: Any, key: tuple[Any, ...], fingerprint: str
    ) -> list[dict[str, Any]] | None:
        """The kept per-path arrays of each batch, if made for this demand object, batches and
        fingerprint; else None."""
        with self._lock:
            if not self._matches(demand, key, fingerprint):
                return None
            self.hits += 1
            return self._entry[3]  # type: ignore[index]

    def put(
        self, demand: Any, key: tuple[Any, ...], fingerprint: str, arrays: list[dict[str, Any]]
    ) -> None:
        """Keep ``arrays`` (one dict of PATH_ARRAYS per batch), replacing what was kept (nothing
        is kept for a demand stage that cannot be referenced weakly)."""
        try:
            ref = weakref.ref(demand)
        except TypeError:
            return
        with self._lock:
            self._entry = (ref, key, fingerprint, arrays)
            self._places = {}

    def places(
        self, demand: Any, key: tuple[Any, ...], fingerprint: str, capacity: str
    ) -> list[PathPlaces | None] | None:
        """Each batch's places of today's pattern on its finance paths, if kept for this entry
        and this capacity (``committed_fingerprint``); else None."""
        with self._lock:
            if not self._matches(demand, key, fingerprint):
                return None
            for kept in self._places.values():
                for i, (c, p) in enumerate(kept):
                    if c == capacity:
                        kept.append(kept.pop(i))  # the most recently used is kept longest
                        return p
            return None

    def put_places(
        self,
        demand: Any,
        key: tuple[Any, ...],
        fingerprint: str,
        capacity: str,
        places: list[PathPlaces | None],
        builds: bool = False,
    ) -> None:
        """Keep ``places`` with this entry, for this capacity: today's committed places (replacing
        the last), or with ``builds`` added (replacing the least recently used of BUILDS_KEPT)."""
        with self._lock:
            if self._matches(demand, key, fingerprint):
                kept = [e for e in self._places.get(builds, []) if e[0] != capacity]
                kept.append((capacity, places))
                self._places[builds] = kept[-(BUILDS_KEPT if builds else 1) :]


@dataclass(frozen=True)
class KeptPlaces:
    """Where ``path_batches``' batches may keep and find today's pattern's places on their
    finance paths with a plan's builds added: a PathCache entry's handle."""

    cache: PathCache
    demand: Any
    key: tuple[Any, ...]
    fingerprint: str

    def get(self, capacity: str) -> list[PathPlaces | None] | None:
        return self.cache.places(self.demand, self.key, self.fingerprint, capacity)

    def put(self, capacity: str, places: list[PathPlaces | None]) -> None:
        """Keep the places with a plan's builds added."""
        self.cache.put_places(self.demand, self.key, self.fingerprint, capacity, places, True)


def committed_fingerprint(capacity: np.ndarray, pairs: list[tuple[int, int]]) -> str:
    """sha256 of what today's pattern is allocated in besides the batch constants: the places
    [T, S, L] in every year (committed, or with builds added) and the (home, provider) pairs
    children may travel across."""
    h = hashlib.sha256(np.ascontiguousarray(capacity, float).tobytes())
    h.update(np.asarray(pairs, np.int64).tobytes())
    return h.hexdigest()


@dataclass
class PathBatches:
    """The part of ``run_paths`` no plan changes, computed ahead (the engine runs it beside the
    LP): for each batch of paths, its placement demand and today's pattern within committed
    capacity on its finance paths (places and HNB spend; None when it has none)."""

    key: tuple[Any, ...]  # what the batches were cut for: paths, path sets and chunk
    batches: list[tuple[dict[str, Any], PathPlaces | None, np.ndarray | None]]
    kept: KeptPlaces | None = None  # where the builds' places may be kept (a PathCache's entry)


def _batches(
    n: int, finance: bool, robust: bool, max_finance: int, max_robust: int, chunk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Finance and robustness path indices, their union, and where each batch of the union ends:
    after every ``chunk``-th finance path, so each batch holds one finance chunk exactly."""
    fin_idx = path_indices(n, max_finance) if finance else np.arange(0)
    rob_idx = path_indices(n, max_robust) if robust else np.arange(0)
    union = np.union1d(fin_idx, rob_idx)
    fin_rows = np.flatnonzero(np.isin(union, fin_idx))
    ends = [
        int(fin_rows[min(lo + chunk, len(fin_rows)) - 1]) + 1
        for lo in range(0, len(fin_rows), chunk)
    ]
    if not ends:
        ends = list(range(chunk, len(union), chunk))
    return fin_idx, rob_idx, union, [e for e in ends if e < len(union)] + [len(union)]


def path_batches(
    scn: Scenario,
    demand: Any,
    finance: bool = True,
    robust: bool = True,
    max_finance_paths: int = MAX_FINANCE_PATHS,
    max_robust_paths: int = MAX_ROBUST_PATHS,
    chunk: int | None = None,
    cache: PathCache | None = None,
) -> PathBatches | None:
    """``run_paths``' plan-free work ahead of the plan: the batches it will cut, their placement
    demand and today's allocation of the finance paths. None without paths, or when keeping them
    would take more than ``ahead_budget()`` (``run_paths`` then computes them as it goes). ``cache``:
    where the placement demand of an earlier run on this demand stage may be kept (and is left)."""
    chunk = chunk or path_chunk(scn)
    n = n_paths(demand)
    if not n:
        return None
    key = (n, finance, robust, max_finance_paths, max_robust_paths, chunk)
    kept = len(_batches(*key)[2])  # the paths the finance bands and the check sample, not all
    cells = len(scn.years) ** 2 * len(scn.locality_ids) * len(scn.demand.needs) * len(PHASES)
    if 8 * AHEAD_VALUES_PER_CELL * cells * kept > ahead_budget():
        return None
    consts = batch_constants(scn)
    if cache is None:
        return PathBatches(key, list(_plan_free(scn, demand, key, consts)))
    fingerprint = paths_fingerprint(consts)
    committed = committed_fingerprint(consts["capacity"], spill_pairs(scn))
    kept_arrays = cache.get(demand, key, fingerprint)
    kept_places = cache.places(demand, key, fingerprint, committed) if kept_arrays else None
    batches = list(_plan_free(scn, demand, key, consts, kept_arrays, kept_places))
    if kept_arrays is None:
        cache.put(demand, key, fingerprint, [_path_part(arr) for arr, _, _ in batches])
    if kept_places is None:
        cache.put_places(demand, key, fingerprint, committed, [b for _, b, _ in batches])
    return PathBatches(key, batches, KeptPlaces(cache, demand, key, fingerprint))


def _path_part(arr: dict[str, Any]) -> dict[str, Any]:
    """A batch's per-path arrays (what PathCache keeps)."""
    return {k: arr[k] for k in PATH_ARRAYS}


def unmitigated_spend(scn: Scenario, ahead: PathBatches) -> np.ndarray | None:
    """[P, F] each finance path's HNB spend on today's pattern within committed capacity, from the
    batches computed ahead: what ``run_paths`` reports as ``unmitigated_hnb_spend`` for the same
    settings (None without finance paths), so the unmitigated variant's finance need not wait for
    the plan."""
    fin_idx, _, union, ends = _batches(*ahead.key)
    if not len(fin_idx):
        return None
    in_fin = np.isin(union, fin_idx)
    spend_now = np.zeros((len(union), len(scn.years) - 1))
    for rows, (_, _, spend) in zip(_rows(ends), ahead.batches, strict=True):
        if spend is not None:
            spend_now[rows[in_fin[rows]]] = spend
    return spend_now[in_fin] + other_hnb_spend(scn)[None]


def _rows(ends: list[int]) -> Iterator[np.ndarray]:
    """The rows (positions in the union of path sets) of each batch, given where each ends."""
    start = 0
    for end in ends:
        yield np.arange(start, end)
        start = end


def _plan_free(
    scn: Scenario,
    demand: Any,
    key: tuple[Any, ...],
    consts: dict[str, Any] | None = None,
    kept: list[dict[str, Any]] | None = None,
    kept_places: list[PathPlaces | None] | None = None,
) -> Iterator[tuple[dict[str, Any], PathPlaces | None, np.ndarray | None]]:
    """Batch by batch (as ``_batches`` cuts them for ``key``): the placement demand, and today's
    pattern within committed capacity on the batch's finance paths with its HNB placement spend.
    ``kept``: each batch's per-path arrays from a PathCache (the scenario's constants added);
    ``kept_places``: each batch's places of today's pattern from it (their spend is costed
    again: costs may have changed)."""
    fin_idx, _, union, ends = _batches(*key)
    in_fin = np.isin(union, fin_idx)
    consts = batch_constants(scn) if consts is None else consts
    cap_now, pairs = consts["capacity"], spill_pairs(scn)  # committed capacity
    shared = shared_arrays(consts)
    for i, rows in enumerate(_rows(ends)):
        # a batch's paths at a time (each path's new plans depend on that path alone): a run
        # holds one batch of float64 paths, not every sampled path (700 MB at 64 localities)
        arr = (
            shared | kept[i]
            if kept is not None
            else _demand_batch(scn, *path_sample(demand, union[rows]), consts)
        )
        f = in_fin[rows]
        if not f.any():
            yield arr, None, None
            continue
        base = (
            kept_places[i]
            if kept_places is not None
            else _allocate_unmitigated(arr if f.all() else _take(arr, f), cap_now, pairs)
        )
        assert base is not None  # kept for every batch with finance paths
        yield arr, base, provider_spend_fy(scn, base.by_provider, None)


class _BuildsAdded:
    """Today's pattern with the builds' places added on each batch's finance paths: their HNB
    spend by financial year, written into ``out``'s rows (positions in the union of path sets)."""

    def __init__(
        self,
        scn: Scenario,
        builds_capacity: np.ndarray | None,
        in_fin: np.ndarray,
        out: np.ndarray,
    ):
        self.scn, self.extra, self.in_fin, self.out = scn, builds_capacity, in_fin, out
        self.cap = capacity_array(scn, builds_capacity) if builds_capacity is not None else None
        self.pairs = spill_pairs(scn)

    def __call__(
        self, rows: np.ndarray, arr: dict[str, Any], places: PathPlaces | None = None
    ) -> PathPlaces:
        """A batch's spend, from ``places`` where given (allocated in this capacity before)."""
        f = self.in_fin[rows]
        if places is None:
            places = _allocate_unmitigated(arr if f.all() else _take(arr, f), self.cap, self.pairs)
        self.out[rows[f]] = provider_spend_fy(self.scn, places.by_provider, self.extra)
        return places


class SharedBuildsSpend:
    """``builds_spend``'s work batch by batch, shared: the thread running it and any thread that
    would otherwise wait for it (``help``) each take the next batch nobody has taken, writing its
    own rows, so the figures are the same however the batches fall."""

    def __init__(self, scn: Scenario, ahead: PathBatches, builds_capacity: np.ndarray) -> None:
        fin_idx, _, union, ends = _batches(*ahead.key)
        self.out = np.zeros((len(union), len(scn.years) - 1))
        self._add = _BuildsAdded(scn, builds_capacity, np.isin(union, fin_idx), self.out)
        self._capacity = committed_fingerprint(self._add.cap, self._add.pairs)
        self._cache = ahead.kept
        self._kept = ahead.kept.get(self._capacity) if ahead.kept is not None else None
        self._rows, self._batches = list(_rows(ends)), ahead.batches
        self.places: list[PathPlaces | None] = [None] * len(self._rows)
        self._next = self._finished = 0
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def _take(self) -> int | None:
        with self._cond:
            if self._next >= len(self._rows) or self._error is not None:
                return None
            self._next += 1
            return self._next - 1

    def help(self) -> None:
        """Compute batches until none is left to take (a batch with no finance path has none)."""
        while (i := self._take()) is not None:
            try:
                arr, base, _ = self._batches[i]
                if base is not None:
                    kept = self._kept[i] if self._kept is not None else None
                    self.places[i] = self._add(self._rows[i], arr, kept)
            except BaseException as e:  # raised by run() in the thread that owns the work
                with self._cond:
                    self._error = e
                raise
            finally:
                with self._cond:
                    self._finished += 1
                    self._cond.notify_all()

    def run(self) -> np.ndarray:
        """Every batch's spend (helping until none is left, then waiting for those taken), its
        places kept in the PathCache for a next run with the same builds."""
        self.help()
        with self._cond:
            self._cond.wait_for(lambda: self._finished >= self._next)
            if self._error is not None:
                raise self._error
        if self._cache is not None and self._kept is None:
            self._cache.put(self._capacity, self.places)
        return self.out


def builds_spend(
    scn: Scenario,
    ahead: PathBatches,
    builds_capacity: np.ndarray,
    on_start: Callable[[SharedBuildsSpend], None] | None = None,
) -> np.ndarray:
    """Each path's HNB spend (rows: the union of path sets ``ahead`` was cut for; zero off the
    finance paths) on today's pattern with ``builds_capacity`` [T, S, L] added: what ``run_paths``
    computes for its with-builds finance, here as soon as the builds are known (the engine starts
    it while the LP re-solves with them pinned). Where ``ahead`` came with a PathCache, the places
    are kept for a next run with the same builds (a cost or plan-gap lever costs them again).
    ``on_start`` is handed the work first, for another thread to share (``SharedBuildsSpend``)."""
    work = SharedBuildsSpend(scn, ahead, builds_capacity)
    if on_start is not None:
        on_start(work)
    return work.run()


class BuildsJob:
    """``builds_spend`` running on another thread, which the thread that needs it helps finish:
    ``work`` is set to its SharedBuildsSpend as it starts (None where it has nothing to share)."""

    def __init__(self, future: Future[np.ndarray], work: Future[SharedBuildsSpend | None]):
        self.future, self.work = future, work

    def result(self) -> np.ndarray:
        work = self.work.result()
        if work is not None:
            work.help()
        return self.future.result()


def run_paths(
    scn: Scenario,
    demand: Any,
    builds_capacity: np.ndarray | None = None,
    pattern: PlanPattern | None = None,
    finance: bool = True,
    max_finance_paths: int = MAX_FINANCE_PATHS,
    max_robust_paths: int = MAX_ROBUST_PATHS,
    chunk: int | None = None,
    ahead: PathBatches | None = None,
    builds_ahead: BuildsJob | Future[np.ndarray] | None = None,
    robust_paths: bool | None = None,
) -> PathRuns | None:
    """Run the Monte Carlo paths through the placement allocation once for every consumer.

    ``finance``: HNB spend per path on the unmitigated pattern with committed capacity and, when
    ``builds_capacity`` [T, S, L] is given, with those places added (``path_hnb_spend``).
    ``pattern``: the optimised plan's pattern for the robustness check (``RobustPaths``), whose
    baseline (the unmitigated pattern, committed capacity) is the finance bands' allocation on
    the paths both use. Paths go through in order, and each allocation sees the same groups of
    ``chunk`` paths as it would alone, so every figure equals a separate run's. None when the
    demand has no Monte Carlo paths. ``chunk``: paths allocated at once (``path_chunk`` unless given).
    ``ahead``: the plan-free part already computed (``path_batches`` with the same settings).
    ``builds_ahead``: the finance paths' spend with the builds added, being computed elsewhere
    from ``ahead`` (``builds_spend`` with the same ``builds_capacity``; a BuildsJob is helped).
    ``robust_paths``: the batches cut as for the robustness check's paths too (default: when
    ``pattern`` is given), so a run that defers the check (no pattern) still uses the batches
    computed ahead for one with it.
    """
    chunk = chunk or path_chunk(scn)
    n = n_paths(demand)
    if not n:
        return None
    robust_paths = pattern is not None if robust_paths is None else robust_paths
    key = (n, finance, robust_paths, max_finance_paths, max_robust_paths, chunk)
    fin_idx, rob_idx, union, ends = _batches(*key)
    # the plan-free work: computed ahead for these settings, or now, batch by batch
    plan_free = (
        ahead.batches if ahead is not None and ahead.key == key else _plan_free(scn, demand, key)
    )
    in_fin = np.isin(union, fin_idx)
    in_rob = np.isin(union, rob_idx)
    other = other_hnb_spend(scn)
    F = len(scn.years) - 1
    spend_now = np.zeros((len(union), F))
    spend_builds = np.zeros((len(union), F))
    has_builds = builds_capacity is not None
    add_builds = _BuildsAdded(scn, builds_capacity, in_fin, spend_builds)

    # A second thread shares the work (the allocation kernel releases the GIL); each task writes
    # its own rows, so the figures are the same either way. With the batches computed ahead, it
    # takes the builds' allocations (finance) all at once, beside the robustness check's, unless
    # they were computed already, when the two threads share the robustness check's batches.
    # Without, this thread cuts each batch and allocates today's pattern, and the second takes
    # the batch's builds' allocations and the robustness check's, at most MAX_PENDING tasks
    # waiting, so only a few batches are held at once (the memory path_batches would not keep).
    beside = ahead is not None and ahead.key == key and has_builds
    computed = beside and builds_ahead is not None
    pending: deque[Future[None]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sendplan-builds") as pool:

        def offload(fn: Callable[..., None], *args: Any) -> None:
            if len(pending) >= MAX_PENDING:
                pending.popleft().result()
            pending.append(pool.submit(fn, *args))

        def share(fn: Callable[..., None], *args: Any) -> None:
            # the second thread takes a batch whenever it is free; this one takes the rest
            if pending and not pending[-1].done():
                fn(*args)
            else:
                pending.append(pool.submit(fn, *args))

        if beside and not computed:  # the builds' finance, all batches at once (kept if cached)
            builds_ahead = pool.submit(builds_spend, scn, ahead, builds_capacity)
        via = share if computed else None if beside else offload
        robust = (
            _RobustRun(scn, pattern, len(rob_idx), chunk, via=via) if pattern is not None else None
        )
        for rows, (arr, base, spend) in zip(_rows(ends), plan_free, strict=True):
            f, r = in_fin[rows], in_rob[rows]
            rob_pos = np.searchsorted(rob_idx, union[rows])
            if base is not None:
                # today's pattern within committed capacity: the unmitigated finance bands and
                # the robustness check's baseline, from one allocation
                spend_now[rows[f]] = spend
                if robust is not None:
                    both = r[f]
                    robust.baseline(rob_pos[f][both], base.take(both), spend_now[rows[f]][both])
                if has_builds and not beside:
                    offload(add_builds, rows, arr)
            if robust is not None:
                only = r & ~f  # robustness paths the finance bands do not use
                robust.baseline_queue.add(rob_pos[only], _take(arr, only))
                robust.plan_queue.add(rob_pos[r], arr if r.all() else _take(arr, r))
        if robust is not None:
            robust.baseline_queue.drain(final=True)
            robust.plan_queue.drain(final=True)
        for done in pending:
            done.result()
        if beside:
            spend_builds[:] = builds_ahead.result()  # type: ignore[union-attr]
    now = spend_now[in_fin] + other[None] if finance else None
    # without builds, today's pattern with the builds added is the same allocation as without
    with_builds = spend_builds[in_fin] + other[None] if has_builds else now
    return PathRuns(
        finance_paths=fin_idx,
        unmitigated_hnb_spend=now,
        with_builds_hnb_spend=with_builds if finance else None,
        robust=robust.result(rob_idx) if robust is not None else None,
    )


class _RobustRun:
    """The robustness check's allocations and per-path figures (by position in its paths)."""

    def __init__(
        self,
        scn: Scenario,
        pattern: PlanPattern,
        n: int,
        chunk: int,
        via: Callable[..., None] | None = None,
    ):
        """``via(fn, *args)``: how the plan's allocations run (another thread's queue), if not here."""
        self.scn, self.pattern = scn, pattern
        self.cap_now = capacity_array(scn)
        self.cap_plan = capacity_array(scn, pattern.build_places)
        self.pairs = spill_pairs(scn)
        self.tr = transport_cost_per_place(scn)  # [T, L, L', S]
        self.w = fy_weights(len(scn.years)).sum(0)
        self.cost_plan, self.cost_now = np.zeros(n), np.zeros(n)
        self.unmet_last, self.indep_last, self.indep_now_last = (
            np.zeros(n),
            np.zeros(n),
            np.zeros(n),
        )
        self.plan_queue = _Queue(
            chunk, self._evaluate if via is None else partial(via, self._evaluate)
        )
        self.baseline_queue = _Queue(chunk, self._baseline_alone)

    def _cost(self, places: PathPlaces, hnb_fy: np.ndarray) -> np.ndarray:
        """HNB placements + transport per path, summed over the reported financial years."""
        trans = np.einsum("ktlms,tlms->kt", places.by_pair, self.tr) @ self.w
        return hnb_fy.sum(-1) + trans

    def baseline(self, pos: np.ndarray, base: PathPlaces, hnb_fy: np.ndarray) -> None:
        """The unmitigated pattern on these paths (places and HNB spend by financial year)."""
        if len(pos):
            self.cost_now[pos] = self._cost(base, hnb_fy)
            ind = self.pattern.independent
            self.indep_now_last[pos] = base.by_pair[:, -1][..., ind].sum(axis=(1, 2, 3))

    def _baseline_alone(self, pos: np.ndarray, arr: dict[str, Any]) -> None:
        base = _allocate_unmitigated(arr, self.cap_now, self.pairs)
        self.baseline(pos, base, provider_spend_fy(self.scn, base.by_provider, None))

    def _evaluate(self, pos: np.ndarray, arr: dict[str, Any]) -> None:
        pt = self.pattern
        f = pt.first_decision
        ent = arr["entrants"]  # [K, T, L, N, P, B]
        # plans carried where nobody plans (EHE, NEET, ...) stay there; the rest follow the plan
        today = desired_unmitigated(arr)
        carried = carried_entrants(arr, arr["planned"], today)
        keep = planned_fraction(ent, carried)[..., None]
        desired = np.einsum("ktlnpb,tlnpbs->ktlnps", ent * keep, pt.share) + carried
        left = np.einsum("ktlnpb,tlnpb->ktlnp", ent * keep, pt.unmet_share)
        # before the first decision year nothing is decided: today's pattern, as unmitigated
        desired[:, :f] = today[:, :f]
        left[:, :f] = 0.0
        pers = arr["persistence"]
        places = allocate_totals(
            desired,
            pers,
            arr["legacy"],
            self.cap_plan,
            arr["overflow"],
            self.pairs,
            arr["overflow_chain"],
            arr["serves_need"],
            arr["chain_ok"],
        )
        waiting = np.einsum("ketlnp,kelnp->kt", pers, left + places.unmet)
        hnb = provider_spend_fy(self.scn, places.by_provider, pt.build_places)
        self.cost_plan[pos] = self._cost(places, hnb)
        self.unmet_last[pos] = waiting[:, -1]
        self.indep_last[pos] = places.by_pair[:, -1][..., pt.independent].sum(axis=(1, 2, 3))

    def result(self, paths: np.ndarray) -> RobustPaths:
        return RobustPaths(
            paths=paths,
            plan_cost_gbp=self.cost_plan + self.pattern.capital_gbp,
            unmitigated_cost_gbp=self.cost_now,
            unplaced_last=self.unmet_last,
            independent_last=self.indep_last,
            independent_unmitigated_last=self.indep_now_last,
        )
