"""The compiled allocation equals the numpy one it replaced, and a hand-worked case.

``reference_allocate`` below is the earlier all-numpy ``placements.allocate``, kept here as the
oracle: same inputs, same places, entrant placements and unmet, on random cases that exercise
spills, the overflow chain, designated needs, unlimited settings and phases with no overflow.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.placements import allocate


def reference_allocate(
    desired: np.ndarray,
    persistence: np.ndarray,
    legacy: np.ndarray,
    capacity: np.ndarray,
    overflow: np.ndarray,
    pairs: list[tuple[int, int]],
    chain: np.ndarray | None = None,
    serves: np.ndarray | None = None,
    chain_ok: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numpy allocation the kernel replaced, step for step (the oracle)."""
    K, T, L, N, P, S = desired.shape
    cap = np.broadcast_to(capacity, (K, *capacity.shape[-3:]))  # [K, T, S, L']
    limited = ~np.isinf(cap[0, 0, :, 0])  # [S]
    diag = np.arange(L)
    chain = np.full((P, 0), -1) if chain is None else np.asarray(chain)
    serves = np.ones((N, S), bool) if serves is None else np.asarray(serves, bool)
    chain_ok = np.ones((S, S), bool) if chain_ok is None else np.asarray(chain_ok, bool)
    alloc = np.zeros((K, T, L, L, N, P, S))
    places = np.zeros((K, T, L, L, N, P, S))
    unmet = np.zeros((K, T, L, N, P))

    def fill(want: np.ndarray, spare: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Fill spare places at home (pro rata when short), then elsewhere nearest first;
        adds the placements to ``new`` and takes them from ``spare``; returns what is left."""
        home_want = want.sum(axis=(2, 3)).transpose(0, 2, 1)  # [K, S, L]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(home_want > spare, spare / np.where(home_want > 0, home_want, 1.0), 1.0)
        frac[:, ~limited] = 1.0
        home = want * frac.transpose(0, 2, 1)[:, :, None, None, :]
        new[:, diag, diag] += home
        spare -= home.sum(axis=(2, 3)).transpose(0, 2, 1)
        residual = want - home
        residual[..., ~limited] = 0.0
        if residual.any():
            for i, j in pairs:
                need_ij = residual[:, i].sum(axis=(1, 2))  # [K, S]
                take = np.minimum(need_ij, spare[:, :, j])
                with np.errstate(invalid="ignore", divide="ignore"):
                    f = np.where(need_ij > 0, take / np.where(need_ij > 0, need_ij, 1.0), 0.0)
                moved = residual[:, i] * f[:, None, None, :]
                new[:, i, j] += moved
                residual[:, i] -= moved
                spare[:, :, j] -= take
        return residual

    for t in range(T):
        inplace = np.zeros((K, L, L, N, P, S))
        inplace[:, diag, diag] = legacy[:, t]
        if t > 0:
            inplace += np.einsum("kelmnps,kelnp->klmnps", alloc[:, :t], persistence[:, :t, t])
        occupied = inplace.sum(axis=(1, 3, 4)).transpose(0, 2, 1)  # [K, S, L']
        spare = np.maximum(cap[:, t] - occupied, 0.0)  # [K, S, L']; inf where unlimited
        new = np.zeros((K, L, L, N, P, S))
        # 1-2. the wanted setting: spare places at home, then in other localities nearest first
        resid = fill(desired[:, t].copy(), spare, new)  # [K, L, N, P, S] by wanted setting
        # 3. the phase's overflow chain, in order: each setting takes the needs it is designated
        # for, from wanted settings whose bands it can meet
        for c in range(chain.shape[1]):
            elig = np.zeros((K, L, N, P, S))  # residual (by wanted setting) this step may take
            want = np.zeros((K, L, N, P, S))
            for p in range(P):
                cs = chain[p, c]
                if cs >= 0:
                    elig[..., p, :] = resid[..., p, :] * chain_ok[:, cs] * serves[:, cs][:, None]
                    want[..., p, cs] = elig[..., p, :].sum(-1)
            if want.any():
                asked = want.sum(-1)
                placed = asked - fill(want, spare, new).sum(-1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = np.where(asked > 0, placed / np.where(asked > 0, asked, 1.0), 0.0)
                resid = resid - elig * share[..., None]
        left = resid.sum(-1)  # [K, L, N, P]
        # 4. overflow at home
        to_overflow = np.zeros((K, L, N, P, S))
        for p in range(P):
            if overflow[p] >= 0:
                to_overflow[..., p, overflow[p]] = left[..., p]
            else:
                unmet[:, t, :, :, p] = left[..., p]
        new[:, diag, diag] += to_overflow
        alloc[:, t] = new
        places[:, t] = inplace + new
    return places, alloc, unmet


def _random_case(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    K, T, L, N, P, S = 3, 5, int(rng.integers(1, 5)), 3, 2, 4
    desired = rng.gamma(2.0, 3.0, (K, T, L, N, P, S)) * (rng.random((K, T, L, N, P, S)) < 0.7)
    pers = np.zeros((K, T, T, L, N, P))
    for e in range(T):
        for t in range(e + 1, T):
            pers[:, e, t] = rng.uniform(0.5, 1.0, (K, L, N, P)) ** (t - e)
    legacy = (
        rng.gamma(2.0, 4.0, (K, T, L, N, P, S))
        * np.linspace(1.0, 0.2, T)[None, :, None, None, None, None]
    )
    cap = rng.uniform(5.0, 60.0, (T, S, L))
    cap[:, S - 1] = np.inf  # the last setting takes everyone (independent)
    overflow = np.array([S - 1, -1])  # the second phase has no overflow setting: unmet
    pairs = [(i, j) for i in range(L) for j in range(L) if i != j]
    rng.shuffle(pairs)
    chain = np.array([[1, 2], [2, -1]])
    serves = rng.random((N, S)) < 0.8
    chain_ok = rng.random((S, S)) < 0.8
    return desired, pers, legacy, cap, overflow, [tuple(p) for p in pairs], chain, serves, chain_ok


@pytest.mark.parametrize("seed", range(8))
def test_kernel_equals_the_numpy_allocation(seed: int) -> None:
    case = _random_case(seed)
    got = allocate(*case)
    want = reference_allocate(*case)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9)
    assert got[2].sum() > 0 or case[3].min() > 1e9  # the no-overflow phase leaves some unmet


def test_kernel_equals_numpy_on_devon_paths_with_tight_capacity() -> None:
    """Devon's own arrays on six noisy paths, capacity cut to 60% so children spill and chain."""
    from model.demand import run_demand
    from model.io import load_scenario
    from model.montecarlo import derive_path_new
    from model.placements import _demand_batch, desired_unmitigated, spill_pairs

    scn = load_scenario(None).scenario
    dem = run_demand(scn, 6, 3)
    ps = dem.path_stock.astype(float)
    arr = _demand_batch(scn, ps, derive_path_new(ps, dem.stock, dem.new))
    case = (
        desired_unmitigated(arr),
        arr["persistence"],
        arr["legacy"],
        arr["capacity"] * 0.6,
        arr["overflow"],
        spill_pairs(scn),
        arr["overflow_chain"],
        arr["serves_need"],
        arr["chain_ok"],
    )
    got, want = allocate(*case), reference_allocate(*case)
    moved = got[1].sum(axis=(0, 1, 4, 5, 6))  # [L, L'] entrants placed away from home
    assert moved.sum() - np.trace(moved) > 1.0  # the spill really happens
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-7)


def test_hand_worked_spill_then_overflow() -> None:
    """Two localities, one setting of 10 places each (the other unlimited). Year 0: home A wants
    15 and B wants 8: A fills its 10, B its 8, 2 of A's spill to B's 2 spare places, 3 overflow.
    Year 1: half of year 0's entrants remain; A wants 4 more, B none: A has 5 in use so 4 fit."""
    K, T, L, N, P, S = 1, 2, 2, 1, 1, 2
    desired = np.zeros((K, T, L, N, P, S))
    desired[0, 0, 0, 0, 0, 0], desired[0, 0, 1, 0, 0, 0] = 15.0, 8.0
    desired[0, 1, 0, 0, 0, 0] = 4.0
    pers = np.zeros((K, T, T, L, N, P))
    pers[0, 0, 1] = 0.5
    legacy = np.zeros((K, T, L, N, P, S))
    cap = np.array([[[10.0, 10.0], [np.inf, np.inf]]] * T)  # [T, S, L']
    places, alloc, unmet = allocate(desired, pers, legacy, cap, np.array([1]), [(0, 1), (1, 0)])
    a0 = alloc[0, 0, :, :, 0, 0]  # [L, L', S]
    assert a0[0, 0, 0] == pytest.approx(10.0) and a0[1, 1, 0] == pytest.approx(8.0)
    assert a0[0, 1, 0] == pytest.approx(2.0)  # A's children in B's spare places
    assert a0[0, 0, 1] == pytest.approx(3.0)  # the rest to the unlimited overflow at home
    assert places[0, 1, 0, 0, 0, 0, 0] == pytest.approx(5.0 + 4.0)  # 5 remaining + 4 new
    assert places[0, 1, 0, 1, 0, 0, 0] == pytest.approx(1.0)  # half of the 2 still in B
    assert unmet.sum() == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_totals_are_the_sums_of_the_full_allocation(seed: int) -> None:
    """``allocate_totals`` keeps only places by provider and by (home, provider, setting): they
    equal the full places summed, path by path, though each path reuses the last one's scratch
    (the first path here spills everywhere, the next ones far less)."""
    from model.placements import allocate_totals

    case = list(_random_case(seed))
    case[0] = case[0].copy()
    case[0][0] *= 5.0  # path 0 overfills every capacity: children spill across every pair
    places, _, unmet = allocate(*case)
    tot = allocate_totals(*case)
    np.testing.assert_allclose(tot.by_provider, places.sum(axis=2), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(tot.by_pair, places.sum(axis=(4, 5)), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(tot.unmet, unmet, rtol=1e-12, atol=1e-9)
    # and path by path alone: no path sees another's placements
    for k in range(places.shape[0]):
        one = allocate_totals(*[c[k : k + 1] if i < 3 else c for i, c in enumerate(case)])
        np.testing.assert_allclose(one.by_pair[0], tot.by_pair[k], rtol=1e-12, atol=1e-9)
