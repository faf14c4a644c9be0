"""The placement stage's loops, compiled with numba (decision 0008): the allocation and the cohorts.

``placements.allocate`` places entrants on a fixed pattern, limited by capacity, for a batch of
Monte Carlo paths. Each year depends on the last (places still in use leave less spare), and spare
places are consumed nearest locality first, so the work is a sequence of small dependent steps: as
numpy calls it spent most of a run in interpreter overhead. Here the same steps run compiled, one
path at a time (paths are independent), with the same arithmetic per cell.

``placements._cohorts`` splits each path's stock into placement cohorts by entry year, year by
year: as numpy over a batch of paths that was a dozen temporaries over [paths, cohorts, ages,
needs, localities] a year plus phase sums. ``cohort_paths`` does it one path at a time, in place,
bit for bit the numpy code's results (every Monte Carlo figure depends on them), so every addition
comes in numpy's order: a sum over cohorts starts from 0.0 and adds them in entry order (numpy's
reduction over a non-last axis), and a phase sum is the phase's first age plus the sum, in order,
of the others (``np.add.reduceat`` along ages: the first element, then the rest as one pairwise
sum, which adds in order while there are fewer than 8).

Imported only when placement demand or an allocation is computed: importing numba costs about
0.4 s, which ``validate`` and ``init`` should not pay. Compiled kernels are cached on disk (numba's
cache).
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
    pair_slot: np.ndarray,
    used: np.ndarray,
) -> None:
    """Fill spare places [S, L'] for ``want`` [L, N, P, S]: at home first, pro rata when short,
    then elsewhere in ``pairs`` order (nearest first). Placements go into ``new`` [slots, N, P, S]
    (slot l is home l's own locality, ``pair_slot[q]`` pair q's) and come off ``spare``; ``want``
    is left holding who is still unplaced (zero for settings without a capacity limit, which take
    everyone at home). ``used`` [slots] marks the pairs used.
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
                    new[lo, n, p, s] += h
                    placed += h
                    want[lo, n, p, s] = want[lo, n, p, s] - h if limited[s] else 0.0
            spare[s, lo] -= placed
    for q in range(pairs.shape[0]):
        i, j, slot = pairs[q, 0], pairs[q, 1], pair_slot[q]
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
                    new[slot, n, p, s] += moved
                    want[i, n, p, s] -= moved
            spare[s, j] -= take
            used[slot] = True


_fill = _compiled(_fill_cells)


def _pair_slots(L: int, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Slots for the (home, provider) pairs anyone can be placed across: slot l is home l's own
    locality, then each new pair of ``pairs`` in turn. Returns each slot's home and provider,
    each pair's slot, and the slots in (home, provider) order (sums over homes keep that order)."""
    slot = np.full((L, L), -1, np.int64)
    home = np.empty(L + pairs.shape[0], np.int64)
    prov = np.empty(L + pairs.shape[0], np.int64)
    for lo in range(L):
        slot[lo, lo] = lo
        home[lo] = lo
        prov[lo] = lo
    n = L
    pair_slot = np.empty(pairs.shape[0], np.int64)
    for q in range(pairs.shape[0]):
        i, j = pairs[q, 0], pairs[q, 1]
        if slot[i, j] < 0:
            slot[i, j] = n
            home[n] = i
            prov[n] = j
            n += 1
        pair_slot[q] = slot[i, j]
    order = np.empty(n, np.int64)
    k = 0
    for lo in range(L):
        for m in range(L):
            if slot[lo, m] >= 0:
                order[k] = slot[lo, m]
                k += 1
    return home[:n], prov[:n], pair_slot, order


_slots = _compiled(_pair_slots)


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
    ``pairs`` [Q, 2], ``limited`` [S]: settings with a capacity limit), except ``desired`` and
    ``legacy`` [K, T, N, P, L, S] and ``persistence`` [K, E, T, P, N, L]: the memory order the
    placement demand builds them in, so a batch's arrays are read where they are, not copied.
    Outputs, all zero on entry, each written only when it has K paths (shape [0, ...] skips it):
    places in use and entrant placements [K, T, L, L', N, P, S]; places in use by provider
    [K, T, L', N, P, S] and by (home, provider, setting) [K, T, L, L', S], which is all finance
    and the robustness check need; unmet [K, T, L, N, P] always.

    Scratch is kept per pair a child can be placed across (home, and ``pairs``), not per pair of
    localities, so work and memory grow with localities, not their square (195 MB a call at 64
    localities, cleared every call, before); it is cleared pair by pair, only where the last path
    used it. Every sum adds in (home, provider) order, as over a [L, L'] array."""
    K, T, N, P, L, S = desired.shape  # [K, T, N, P, L, S], as the docstring says
    C = chain.shape[1]
    home, prov, pair_slot, order = _slots(L, pairs)
    Q = home.size
    spare = np.zeros((S, L))
    resid = np.zeros((L, N, P, S))
    want = np.zeros((L, N, P, S))
    elig = np.zeros((L, N, P, S))
    asked = np.zeros((L, N, P))
    occupied = np.zeros((S, L))
    used = np.zeros((T, Q), dtype=np.bool_)  # pairs placed into, by year
    ever = np.zeros(Q, dtype=np.bool_)  # pairs with anyone in place so far
    hist = np.zeros((T, Q, N, P, S))  # this path's entrant placements by year
    pl = np.zeros((Q, N, P, S))  # this path's places in use in the current year
    full = places.shape[0] == K
    keep = alloc.shape[0] == K
    totals = by_provider.shape[0] == K
    for k in range(K):
        # clear what the previous path left, pair by pair
        for t in range(T):
            for q in range(Q):
                if used[t, q]:
                    hist[t, q] = 0.0
                    used[t, q] = False
        for q in range(Q):
            if ever[q]:
                pl[q] = 0.0
                ever[q] = False
        for t in range(T):
            new = hist[t]
            # places still in use: legacy at home, plus earlier entrants still in their placement
            for q in range(Q):
                if ever[q]:
                    pl[q] = 0.0
            for lo in range(L):
                used[t, lo] = True
                ever[lo] = True
                for n in range(N):
                    for p in range(P):
                        for s in range(S):
                            pl[lo, n, p, s] = legacy[k, t, n, p, lo, s]
            for e in range(t):
                for q in range(Q):
                    if not used[e, q]:
                        continue
                    lo = home[q]
                    for n in range(N):
                        for p in range(P):
                            w = persistence[k, e, t, p, n, lo]
                            if w == 0.0:
                                continue
                            for s in range(S):
                                pl[q, n, p, s] += hist[e, q, n, p, s] * w
            occupied[:] = 0.0
            for q in order:
                if not ever[q]:
                    continue
                m = prov[q]
                for n in range(N):
                    for p in range(P):
                        for s in range(S):
                            occupied[s, m] += pl[q, n, p, s]
            for s in range(S):
                for m in range(L):
                    spare[s, m] = max(cap[k, t, s, m] - occupied[s, m], 0.0)
            # 1-2. the wanted setting: spare places at home, then elsewhere nearest first
            for n in range(N):
                for p in range(P):
                    for lo in range(L):
                        for s in range(S):
                            resid[lo, n, p, s] = desired[k, t, n, p, lo, s]
            _fill(resid, spare, new, limited, pairs, pair_slot, used[t])
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
                _fill(want, spare, new, limited, pairs, pair_slot, used[t])
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
                            new[lo, n, p, overflow[p]] += left
                        else:
                            unmet[k, t, lo, n, p] = left
            for q in range(Q):
                if not used[t, q]:
                    continue
                ever[q] = True
                for n in range(N):
                    for p in range(P):
                        for s in range(S):
                            pl[q, n, p, s] += new[q, n, p, s]
            for q in order:
                if not ever[q]:
                    continue
                lo, m = home[q], prov[q]
                if full:
                    places[k, t, lo, m] = pl[q]
                if keep and used[t, q]:
                    alloc[k, t, lo, m] = new[q]
                if totals:
                    for n in range(N):
                        for p in range(P):
                            for s in range(S):
                                v = pl[q, n, p, s]
                                by_provider[k, t, m, n, p, s] += v
                                by_pair[k, t, lo, m, s] += v


allocate_paths = _compiled(_allocate_paths)


# --------------------------------------------------------------------------- cohorts


def _phase_sums(x: np.ndarray, out: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """``out`` [P, C] = phase sums of ``x`` [A, C] (ages lo[p]..hi[p]), as ``np.add.reduceat``
    adds them: the first age, plus the others summed in order."""
    C = x.shape[1]
    for p in range(lo.size):
        a0, a1 = lo[p], hi[p]
        if a1 == a0:
            for c in range(C):
                out[p, c] = x[a0, c]
            continue
        for c in range(C):
            out[p, c] = x[a0 + 1, c]
        for a in range(a0 + 2, a1 + 1):
            for c in range(C):
                out[p, c] += x[a, c]
        for c in range(C):
            out[p, c] = x[a0, c] + out[p, c]


_phase = _compiled(_phase_sums)


def _cohort_paths(
    stock: np.ndarray,
    new: np.ndarray,
    m_age: np.ndarray,
    stay: np.ndarray,
    moves: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    tiny: float,
    kinds: np.ndarray,
    inplace: np.ndarray,
    persistence: np.ndarray,
    stock_phase: np.ndarray,
) -> None:
    """Placement cohorts of each path k; C = needs x localities, P phases (ages lo[p]..hi[p]).

    stock, new [K, T, A, C]; m_age [A, C] mover rate by age (0 at transfer ages); stay [A] 1.0
    where a survivor keeps a placement by age (0.0 at transfer ages), ``moves`` [A] its opposite.
    Outputs, zero on entry: entrants by kind (new, transfer, mover) [K, T, P, C, 3]; in place
    [K, E, T, P, C] (cohort entered in year e, still placed in year t); persistence [K, E, T, P, C]
    (in place / entered, 1 on the diagonal, 0 before entry); the stock's phase sums [K, T, P, C].
    """
    K, T, A, C = stock.shape
    cur = np.zeros((T, A, C))  # every cohort entered so far, last year
    nxt = np.zeros((T, A, C))  # the same, this year
    rate = np.zeros((A, C))  # survival from (t-1, a) to (t, a+1)
    surv = np.zeros((A, C))  # survivors of all cohorts, by age
    kept = np.zeros((A, C))  # survivors still in their placement, all cohorts
    by_age = np.zeros((A, C * 3))  # this year's entrants by age and kind
    no_move = np.zeros((A, C))  # share of survivors who do not break down
    for a in range(A):
        for c in range(C):
            no_move[a, c] = 1.0 - m_age[a, c]
    for k in range(K):
        cur[0] = stock[k, 0]
        _phase(cur[0], inplace[k, 0, 0], lo, hi)
        _phase(stock[k, 0], stock_phase[k, 0], lo, hi)
        for t in range(1, T):
            for a in range(A - 1):
                for c in range(C):
                    prev = stock[k, t - 1, a, c]
                    r = 0.0
                    if prev > tiny:
                        r = (stock[k, t, a + 1, c] - new[k, t, a + 1, c]) / prev
                        if r < 0.0:
                            r = 0.0
                        elif r > 1.0:
                            r = 1.0
                    rate[a, c] = r
            surv[:] = 0.0
            kept[:] = 0.0
            # cohorts entered before t age one year, added up in entry order
            for e in range(t):
                was, now = cur[e], nxt[e]
                for a in range(1, A):
                    s_a = stay[a]
                    for c in range(C):
                        sh = was[a - 1, c] * rate[a - 1, c]
                        surv[a, c] += sh
                        kp = sh * s_a * no_move[a, c]
                        kept[a, c] += kp
                        now[a, c] = kp
                for c in range(C):  # nobody ages into age 0
                    kp = 0.0 * stay[0] * no_move[0, c]
                    surv[0, c] += 0.0
                    kept[0, c] += kp
                    now[0, c] = kp
            # the cohort entering now has no survivors yet: zeros, added as numpy's sums did
            for a in range(A):
                for c in range(C):
                    surv[a, c] += 0.0
                    kept[a, c] += 0.0 * stay[a] * no_move[a, c]
            for a in range(A):
                for c in range(C):
                    entrants = stock[k, t, a, c] - kept[a, c]
                    movers = surv[a, c] * stay[a] * m_age[a, c]
                    transfers = surv[a, c] * moves[a]
                    by_age[a, 3 * c] = entrants - transfers - movers
                    by_age[a, 3 * c + 1] = transfers
                    by_age[a, 3 * c + 2] = movers
                    nxt[t, a, c] = entrants
            cur, nxt = nxt, cur
            for e in range(t + 1):
                _phase(cur[e], inplace[k, e, t], lo, hi)
            _phase(by_age, kinds[k, t].reshape((lo.size, C * 3)), lo, hi)
            _phase(stock[k, t], stock_phase[k, t], lo, hi)
        for e in range(T):
            for t in range(e, T):
                for p in range(lo.size):
                    for c in range(C):
                        entered = inplace[k, e, e, p, c]
                        if t == e:
                            persistence[k, e, t, p, c] = 1.0
                        elif entered > tiny:
                            persistence[k, e, t, p, c] = inplace[k, e, t, p, c] / entered


cohort_paths = _compiled(_cohort_paths)
