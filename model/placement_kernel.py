"""The placement stage's year-by-year allocation, compiled with numba (decision 0008).

``placements.allocate`` places entrants on a fixed pattern, limited by capacity, for a batch of
Monte Carlo paths. Each year depends on the last (places still in use leave less spare), and spare
places are consumed nearest locality first, so the work is a sequence of small dependent steps: as
numpy calls it spent most of a run in interpreter overhead. Here the same steps run compiled, one
path at a time (paths are independent), with the same arithmetic per cell.

Imported only when an allocation runs: importing numba costs about 0.4 s, which ``validate`` and
``init`` should not pay. Compiled kernels are cached on disk (numba's cache).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit


def _compiled(fn: Callable[..., Any]) -> Any:
    """``fn`` compiled (nogil, numpy's float semantics), cached on disk where there is somewhere
    writable to cache it, else compiled in every process."""
    try:
        return njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:
        return njit(nogil=True, error_model="numpy")(fn)


def _fill_cells(
    want: np.ndarray,
    spare: np.ndarray,
    new: np.ndarray,
    limited: np.ndarray,
    pairs: np.ndarray,
    used: np.ndarray,
) -> None:
    """Fill spare places [S, L'] for ``want`` [L, N, P, S]: at home first, pro rata when short,
    then elsewhere in ``pairs`` order (nearest first). Placements go into ``new`` [L, L', N, P, S]
    and come off ``spare``; ``want`` is left holding who is still unplaced (zero for settings
    without a capacity limit, which take everyone at home). ``used`` [L, L'] marks the pairs used.
    """
    L, N, P, S = want.shape
    for s in range(S):
        for lo in range(L):
            home_want = 0.0
            for n in range(N):
                for p in range(P):
                    home_want += want[lo, n, p, s]
            frac = 1.0
            if limited[s] and home_want > spare[s, lo] and home_want > 0.0:
                frac = spare[s, lo] / home_want
            placed = 0.0
            for n in range(N):
                for p in range(P):
                    h = want[lo, n, p, s] * frac
                    new[lo, lo, n, p, s] += h
                    placed += h
                    want[lo, n, p, s] = want[lo, n, p, s] - h if limited[s] else 0.0
            spare[s, lo] -= placed
    for q in range(pairs.shape[0]):
        i, j = pairs[q, 0], pairs[q, 1]
        for s in range(S):
            if not limited[s]:
                continue
            need = 0.0
            for n in range(N):
                for p in range(P):
                    need += want[i, n, p, s]
            if need <= 0.0:
                continue
            take = min(need, spare[s, j])
            if take <= 0.0:
                continue
            f = take / need
            for n in range(N):
                for p in range(P):
                    moved = want[i, n, p, s] * f
                    new[i, j, n, p, s] += moved
                    want[i, n, p, s] -= moved
            spare[s, j] -= take
            used[i, j] = True


_fill = _compiled(_fill_cells)


def _allocate_paths(
    desired: np.ndarray,
    persistence: np.ndarray,
    legacy: np.ndarray,
    cap: np.ndarray,
    limited: np.ndarray,
    overflow: np.ndarray,
    pairs: np.ndarray,
    chain: np.ndarray,
    serves: np.ndarray,
    chain_ok: np.ndarray,
    places: np.ndarray,
    alloc: np.ndarray,
    unmet: np.ndarray,
    by_provider: np.ndarray,
    by_pair: np.ndarray,
) -> None:
    """Allocate each path k; arguments as ``placements.allocate`` (``cap`` [K, T, S, L'],
    ``pairs`` [Q, 2], ``limited`` [S]: settings with a capacity limit). Outputs, all zero on
    entry, each written only when it has K paths (shape [0, ...] skips it): places in use and
    entrant placements [K, T, L, L', N, P, S]; places in use by provider [K, T, L', N, P, S] and by
    (home, provider, setting) [K, T, L, L', S], which is all finance and the robustness check
    need; unmet [K, T, L, N, P] always.

    Work and memory per path grow with the (home, provider) pairs anyone is placed across, not
    with every pair: scratch is cleared pair by pair, only where the last path used it."""
    K, T, L, N, P, S = desired.shape
    C = chain.shape[1]
    spare = np.zeros((S, L))
    resid = np.zeros((L, N, P, S))
    want = np.zeros((L, N, P, S))
    elig = np.zeros((L, N, P, S))
    asked = np.zeros((L, N, P))
    occupied = np.zeros((S, L))
    used = np.zeros((T, L, L), dtype=np.bool_)  # pairs (home, provider) placed into, by year
    ever = np.zeros((L, L), dtype=np.bool_)  # pairs with anyone in place so far
    hist = np.zeros((T, L, L, N, P, S))  # this path's entrant placements by year
    pl = np.zeros((L, L, N, P, S))  # this path's places in use in the current year
    full = places.shape[0] == K
    keep = alloc.shape[0] == K
    totals = by_provider.shape[0] == K
    for k in range(K):
        # clear what the previous path left, pair by pair
        for t in range(T):
            for lo in range(L):
                for m in range(L):
                    if used[t, lo, m]:
                        hist[t, lo, m] = 0.0
                        used[t, lo, m] = False
        for lo in range(L):
            for m in range(L):
                if ever[lo, m]:
                    pl[lo, m] = 0.0
                    ever[lo, m] = False
        for t in range(T):
            new = hist[t]
            # places still in use: legacy at home, plus earlier entrants still in their placement
            for lo in range(L):
                for m in range(L):
                    if ever[lo, m]:
                        pl[lo, m] = 0.0
            for lo in range(L):
                used[t, lo, lo] = True
                ever[lo, lo] = True
                pl[lo, lo] = legacy[k, t, lo]
            for e in range(t):
                for lo in range(L):
                    for m in range(L):
                        if not used[e, lo, m]:
                            continue
                        for n in range(N):
                            for p in range(P):
                                w = persistence[k, e, t, lo, n, p]
                                if w == 0.0:
                                    continue
                                for s in range(S):
                                    pl[lo, m, n, p, s] += hist[e, lo, m, n, p, s] * w
            occupied[:] = 0.0
            for lo in range(L):
                for m in range(L):
                    if not ever[lo, m]:
                        continue
                    for n in range(N):
                        for p in range(P):
                            for s in range(S):
                                occupied[s, m] += pl[lo, m, n, p, s]
            for s in range(S):
                for m in range(L):
                    spare[s, m] = max(cap[k, t, s, m] - occupied[s, m], 0.0)
            # 1-2. the wanted setting: spare places at home, then elsewhere nearest first
            resid[:] = desired[k, t]
            _fill(resid, spare, new, limited, pairs, used[t])
            # 3. the phase's overflow chain, in order: each setting takes the needs it is
            # designated for, from wanted settings whose bands it can meet
            for c in range(C):
                want[:] = 0.0
                elig[:] = 0.0
                asked[:] = 0.0
                any_want = False
                for p in range(P):
                    cs = chain[p, c]
                    if cs < 0:
                        continue
                    for lo in range(L):
                        for n in range(N):
                            tot = 0.0
                            if serves[n, cs]:
                                for s in range(S):
                                    if chain_ok[s, cs]:
                                        v = resid[lo, n, p, s]
                                        elig[lo, n, p, s] = v
                                        tot += v
                            want[lo, n, p, cs] = tot
                            asked[lo, n, p] = tot
                            if tot > 0.0:
                                any_want = True
                if not any_want:
                    continue
                _fill(want, spare, new, limited, pairs, used[t])
                for lo in range(L):
                    for n in range(N):
                        for p in range(P):
                            a = asked[lo, n, p]
                            if a <= 0.0:
                                continue
                            left = 0.0
                            for s in range(S):
                                left += want[lo, n, p, s]
                            share = (a - left) / a
                            for s in range(S):
                                resid[lo, n, p, s] -= elig[lo, n, p, s] * share
            # 4. whoever is still left goes to the phase's overflow setting at home, or is unmet
            for lo in range(L):
                for n in range(N):
                    for p in range(P):
                        left = 0.0
                        for s in range(S):
                            left += resid[lo, n, p, s]
                        if overflow[p] >= 0:
                            new[lo, lo, n, p, overflow[p]] += left
                        else:
                            unmet[k, t, lo, n, p] = left
            for lo in range(L):
                for m in range(L):
                    if not used[t, lo, m]:
                        continue
                    ever[lo, m] = True
                    for n in range(N):
                        for p in range(P):
                            for s in range(S):
                                pl[lo, m, n, p, s] += new[lo, m, n, p, s]
            for lo in range(L):
                for m in range(L):
                    if not ever[lo, m]:
                        continue
                    if full:
                        places[k, t, lo, m] = pl[lo, m]
                    if keep and used[t, lo, m]:
                        alloc[k, t, lo, m] = new[lo, m]
                    if totals:
                        for n in range(N):
                            for p in range(P):
                                for s in range(S):
                                    v = pl[lo, m, n, p, s]
                                    by_provider[k, t, m, n, p, s] += v
                                    by_pair[k, t, lo, m, s] += v


allocate_paths = _compiled(_allocate_paths)
