"""The demand Monte Carlo's year step, compiled with numba (decision 0002, "Monte Carlo speed").

One call moves a chunk of paths one year: each cell's leaver and joiner means, its Poisson draws,
leavers capped at the plans there were, the stock aged one year and the phase sums, path by path
so each path's work stays in the L1/L2 cache instead of a dozen numpy passes over the chunk.

The draws are the ones the earlier numpy code made, bit for bit: uniforms from the chunk's SFC64
stream (the generator is stepped here, the same recurrence as numpy's ``SFC64``), P(X = 0) from
numpy's float32 exp (computed by the caller on ``neg_means``' output: numba's exp rounds
differently), the inverse CDF in the same float32 order, and means above POISSON_DIRECT_MAX
left to numpy's ``Generator.poisson`` after the year's uniforms (``fix_big`` puts them in).

Imported only when Monte Carlo paths run (``model.demand._kernels``): importing numba costs about
0.4 s, which ``validate`` and ``init`` should not pay. Compiled kernels are cached on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from .poisson import POISSON_DENSE_STEPS, POISSON_DIRECT_MAX, POISSON_MAX_STEPS
from .scenario import MAX_AGE

LEAVE = MAX_AGE  # leaver rows (ages 0-24) come first in a path's block of flows
_SCALE = np.float32(2.0**-24)
_DIRECT_MAX = np.float32(POISSON_DIRECT_MAX)
_DENSE = np.float32(POISSON_DENSE_STEPS)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_LOW32 = np.uint64(0xFFFFFFFF)


def _compiled(fn: Callable[..., Any]) -> Any:
    """``fn`` compiled (nogil: chunk threads run it at once), cached on disk where writable."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # nowhere writable to cache it: compile in every process
        return njit(nogil=True)(fn)


@njit(inline="always")
def _sfc64_next(s: np.ndarray) -> np.uint64:
    """Next 64-bit output of SFC64 with state ``s`` = (a, b, c, counter), numpy's recurrence."""
    a, b, c, n = s[0], s[1], s[2], s[3]
    out = a + b + n
    s[0] = b ^ (b >> np.uint64(11))
    s[1] = c + (c << np.uint64(3))
    s[2] = ((c << np.uint64(24)) | (c >> np.uint64(40))) + out
    s[3] = n + np.uint64(1)
    return out


def sfc64_raw(state: np.ndarray, out: np.ndarray) -> None:
    """``out.size`` raw words from SFC64 ``state`` (uint64[4], advanced): ``random_raw``'s values
    (the tests check the kernel's generator against numpy's with it)."""
    for i in range(out.size):
        out[i] = _sfc64_next(state)


@njit
def _uniforms24(state: np.ndarray, d0: int, m: int, word: np.uint64, bits: np.ndarray) -> np.uint64:
    """Top 24 bits of the 32-bit halves for draws d0..d0+m-1 of a year into ``bits`` (int32).

    Draw d uses half d % 2 (low first) of raw word d // 2, as ``random_raw(...).view(uint32)``
    does on a little-endian machine; ``word`` is the word drawn last (its high half may be next).
    SFC64 is stepped on locals (numpy's recurrence) and ``state`` written back at the end.
    """
    a, b, c, n = state[0], state[1], state[2], state[3]
    one, s3, s11, s24, s40 = np.uint64(1), np.uint64(3), np.uint64(11), np.uint64(24), np.uint64(40)
    k = 0
    if d0 & 1 and m > 0:  # the high half of the last word
        bits[0] = np.int32(word >> s40)
        k = 1
    while k + 1 < m:  # two draws per word
        word = a + b + n
        n += one
        a = b ^ (b >> s11)
        b = c + (c << s3)
        c = ((c << s24) | (c >> s40)) + word
        bits[k] = np.int32((word & _LOW32) >> np.uint64(8))
        bits[k + 1] = np.int32(word >> s40)
        k += 2
    if k < m:  # a low half; its high half is the next block's first draw
        word = a + b + n
        n += one
        a = b ^ (b >> s11)
        b = c + (c << s3)
        c = ((c << s24) | (c >> s40)) + word
        bits[k] = np.int32((word & _LOW32) >> np.uint64(8))
    state[0], state[1], state[2], state[3] = a, b, c, n
    return word


@njit
def _inverse_cdf(
    mean: np.ndarray,
    p0: np.ndarray,
    bits: np.ndarray,
    out: np.ndarray,
    inv: np.ndarray,
    big: np.ndarray,
    big_mean: np.ndarray,
    n_big: int,
    offset: int,
    p_at: np.ndarray,
    cdf_at: np.ndarray,
    tail: np.ndarray,
) -> int:
    """Inverse-CDF Poisson draws (float32) for ``mean``; means above POISSON_DIRECT_MAX get 0 here
    and their index (+ ``offset``) and mean go in ``big``, ``big_mean`` from ``n_big`` on.

    Uniform u = bits x 2**-24; X is the number of k with u > P(X <= k - 1), stepped with the float32
    recurrence p = p x mean x (1 / k), cdf = cdf + p (``inv[k]`` = 1 / k). A first branch-free pass
    (vectorised) takes POISSON_DENSE_STEPS steps on every draw, keeping p and cdf after them in
    ``p_at``, ``cdf_at`` (scratch), and marks large means as if they had passed them all; the draws
    that passed them all are listed in ``tail`` without branching (a branch per draw mispredicts
    on the few), and only those walk on (from the values a walk from 0 reaches there).
    Returns the new count of large means.
    """
    m = mean.size
    for i in range(m):
        u = np.float32(bits[i]) * _SCALE
        lam = mean[i]
        cdf = p0[i]
        p = cdf * lam
        x = np.int32(u > cdf)
        cdf = cdf + p
        for k in range(2, POISSON_DENSE_STEPS + 1):
            x += np.int32(u > cdf)
            p = p * lam
            p = p * inv[k]
            cdf = cdf + p
        if lam > _DIRECT_MAX:
            x = POISSON_DENSE_STEPS
        out[i] = x
        p_at[i] = p
        cdf_at[i] = cdf
    n_tail = 0
    for i in range(m):
        tail[n_tail] = i
        n_tail += np.intp(out[i] == _DENSE)
    for j in range(n_tail):
        i = tail[j]
        lam = mean[i]
        if lam > _DIRECT_MAX:  # numpy's sampler, after the year's uniforms
            out[i] = 0.0
            big[n_big] = offset + i
            big_mean[n_big] = lam
            n_big += 1
            continue
        u = np.float32(bits[i]) * _SCALE  # X >= POISSON_DENSE_STEPS: walk on
        cdf = cdf_at[i]
        p = p_at[i]
        x = POISSON_DENSE_STEPS
        while u > cdf:  # X > x
            x += 1
            if x > POISSON_MAX_STEPS:
                break
            p = p * lam
            p = p * inv[x]
            cdf = cdf + p
        out[i] = x
    return n_big


def draw_flat(
    mean: np.ndarray,
    p0: np.ndarray,
    raw: np.ndarray,
    out: np.ndarray,
    inv: np.ndarray,
    big: np.ndarray,
    big_mean: np.ndarray,
) -> int:
    """Draws for a flat array of means from given raw 64-bit words (``poisson_f32``'s kernel);
    returns the count of large means left in ``big``."""
    m = mean.size
    bits = np.empty(m, dtype=np.int32)
    for d in range(m):
        w = raw[d >> 1]
        bits[d] = np.int32(w >> np.uint64(40)) if d & 1 else np.int32((w & _LOW32) >> np.uint64(8))
    p_at, cdf_at = np.empty(m, dtype=np.float32), np.empty(m, dtype=np.float32)
    tail = np.empty(m, dtype=np.intp)
    return _inverse_cdf(mean, p0, bits, out, inv, big, big_mean, 0, 0, p_at, cdf_at, tail)


@njit(inline="always")
def _leave_rate(q: np.float32, kc: np.float32) -> np.float32:
    """A cell's leaving rate on a path: its cessation rate x the path's multiplier, at most 1 (a
    cessation lever can push it past 1)."""
    f = q * kc
    return _ONE if f > _ONE else f


@njit(inline="always")
def _cell_stock(
    a: int,
    before: np.float32,
    ces: np.float32,
    cap: bool,
    joiners: np.float32,
    backlog: np.float32,
    has_backlog: bool,
) -> np.float32:
    """Plans aged ``a`` this January: joiners (+ backlog) plus, above age 0, the ``before`` plans a
    year younger a year earlier less their ``ces`` leavers (capped at ``before`` when drawn).
    Same float32 order as numpy's (prev - ceased) + new."""
    new = joiners + backlog if has_backlog else joiners
    if a == 0:
        return new
    if cap and ces > before:  # no more leavers than plans
        ces = before
    return (before - ces) + new


@njit
def _path_means(
    prev: np.ndarray,
    q_t: np.ndarray,
    kc: np.float32,
    rate_t: np.ndarray,
    nf: np.float32,
    mean: np.ndarray,
) -> None:
    """One path's means into ``mean`` [(25 + 26) x C]: leavers min(q x kc, 1) x plans a year
    earlier (ages 0-24), then joiners rate x the path's incidence and growth (ages 0-25)."""
    n_cells = prev.shape[1]
    for a in range(LEAVE):
        row = a * n_cells
        for c in range(n_cells):
            mean[row + c] = _leave_rate(q_t[a, c], kc) * prev[a, c]
    for a in range(LEAVE + 1):
        row = (LEAVE + a) * n_cells
        for c in range(n_cells):
            mean[row + c] = rate_t[a, c] * nf


@njit
def _neg_path_means(
    prev: np.ndarray,
    q_t: np.ndarray,
    kc: np.float32,
    rate_t: np.ndarray,
    nf: np.float32,
    out: np.ndarray,
) -> None:
    """``_path_means`` negated, for numpy's exp (negation is exact: exp(out) = exp(-mean))."""
    _path_means(prev, q_t, kc, rate_t, nf, out)
    for k in range(out.size):
        out[k] = -out[k]


def neg_means(
    stock: np.ndarray,
    t: int,
    p_lo: int,
    n_paths: int,
    q_t: np.ndarray,
    kc: np.ndarray,
    rate_t: np.ndarray,
    nf_t: np.ndarray,
    out: np.ndarray,
) -> None:
    """-mean of every draw of paths p_lo.. in year ``t`` into ``out`` [paths x 51 x C], for the
    caller's numpy exp (the first year's; ``year_step`` writes each next year's)."""
    width = (2 * LEAVE + 1) * stock.shape[3]
    for i in range(n_paths):
        blk = out[i * width : (i + 1) * width]
        _neg_path_means(stock[p_lo + i, t - 1], q_t, kc[i], rate_t, nf_t[i], blk)


@njit
def _update_path(
    prev: np.ndarray,
    cur: np.ndarray,
    flows: np.ndarray,
    cap: bool,
    backlog_t: np.ndarray,
    has_backlog: bool,
) -> None:
    """One path's stock this January from last January's and its flows [(25 + 26) x C]: joiners
    (+ backlog) at each age plus, above age 0, the plans a year younger a year earlier less their
    leavers (capped at those plans when the leavers were drawn). Same float32 order as numpy's
    (prev - ceased) + new."""
    n_cells = prev.shape[1]
    for a in range(LEAVE + 1):
        new_row, ces_row = (LEAVE + a) * n_cells, (a - 1) * n_cells
        out, younger = cur[a], prev[a - 1]  # at age 0 (prev[-1]) younger is not read
        for c in range(n_cells):
            before = younger[c] if a > 0 else _ZERO
            ces = flows[ces_row + c] if a > 0 else _ZERO
            out[c] = _cell_stock(
                a, before, ces, cap, flows[new_row + c], backlog_t[a, c], has_backlog
            )


@njit
def _phase_sum(cur: np.ndarray, ph_out: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """One path's phase sums [PH, C] of its stock [A, C]: ages lo..hi added in order, as numpy's
    sum over that axis does (float32, so the order fixes the result)."""
    n_cells = cur.shape[1]
    for ph in range(lo.size):
        for c in range(n_cells):
            ph_out[ph, c] = cur[lo[ph], c]
        for a in range(lo[ph] + 1, hi[ph] + 1):
            for c in range(n_cells):
                ph_out[ph, c] += cur[a, c]


def start_paths(
    stock: np.ndarray,
    phase: np.ndarray,
    p_lo: int,
    n_paths: int,
    start: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> None:
    """Base-year stock (the same on every path) and its phase sums for paths p_lo.."""
    for i in range(n_paths):
        cur = stock[p_lo + i, 0]
        cur[:, :] = start
        _phase_sum(cur, phase[p_lo + i, 0], lo, hi)


def year_step(
    stock: np.ndarray,
    phase: np.ndarray,
    t: int,
    p_lo: int,
    n_paths: int,
    q_t: np.ndarray,
    kc: np.ndarray,
    rate_t: np.ndarray,
    nf_t: np.ndarray,
    backlog_t: np.ndarray,
    has_backlog: bool,
    poisson: bool,
    p0: np.ndarray,
    state: np.ndarray,
    flows: np.ndarray,
    big: np.ndarray,
    big_mean: np.ndarray,
    mean: np.ndarray,
    bits: np.ndarray,
    p_at: np.ndarray,
    cdf_at: np.ndarray,
    tail: np.ndarray,
    inv: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    q_next: np.ndarray,
    rate_next: np.ndarray,
    nf_next: np.ndarray,
    has_next: bool,
) -> int:
    """Year ``t`` of paths p_lo..p_lo+n_paths-1: stock[:, t] and phase[:, t] from stock[:, t-1].

    ``stock`` [P, T, A, C], ``phase`` [P, T, PH, C] (C = needs x localities); ``kc``, ``nf_t`` the
    chunk's cessation multipliers and joiner factors. With ``poisson``, draws come from SFC64
    ``state`` (advanced) with P(X = 0) in ``p0`` and are kept in ``flows`` [paths x 51 x C]; draws
    with means above POISSON_DIRECT_MAX are left at 0, their indices and means put in ``big`` and
    ``big_mean``, and the cells they touch computed again by ``fix_big``. Returns their count.
    ``mean``, ``bits``, ``p_at``, ``cdf_at``, ``tail`` [51 x C] are scratch. With ``has_next``
    (and Poisson noise), each path's block of ``p0`` is then overwritten with year t + 1's negated
    means (rates ``q_next``, ``rate_next``, ``nf_next``) while its new stock is in cache, for the
    caller's exp before the next call.
    """
    n_cells = stock.shape[3]
    width = (2 * LEAVE + 1) * n_cells
    n_big = 0
    word = np.uint64(0)
    for i in range(n_paths):
        p = p_lo + i
        prev, cur = stock[p, t - 1], stock[p, t]
        _path_means(prev, q_t, kc[i], rate_t, nf_t[i], mean)
        if poisson:
            base = i * width
            word = _uniforms24(state, base, width, word, bits)
            fl = flows[base : base + width]
            n_big = _inverse_cdf(
                mean, p0[base : base + width], bits, fl, inv, big, big_mean, n_big, base,
                p_at, cdf_at, tail,
            )  # fmt: skip
            _update_path(prev, cur, fl, True, backlog_t, has_backlog)
            if has_next:  # this path's P(X = 0) for this year are used: next year's go there
                _neg_path_means(cur, q_next, kc[i], rate_next, nf_next[i], p0[base : base + width])
        else:
            _update_path(prev, cur, mean, False, backlog_t, has_backlog)
        _phase_sum(cur, phase[p, t], lo, hi)
    return n_big


def fix_big(
    stock: np.ndarray,
    phase: np.ndarray,
    t: int,
    p_lo: int,
    big: np.ndarray,
    draws: np.ndarray,
    flows: np.ndarray,
    backlog_t: np.ndarray,
    has_backlog: bool,
    lo: np.ndarray,
    hi: np.ndarray,
    phase_of_age: np.ndarray,
    p0: np.ndarray,
    q_next: np.ndarray,
    kc: np.ndarray,
    has_next: bool,
) -> None:
    """Put numpy's draws for the large means ``big`` in ``flows`` and recompute the stock cells
    and phase sums they touch (a leaver at age a moves age a + 1, a joiner at a moves age a), and
    with ``has_next`` next year's negated leaver mean at that cell in ``p0`` (``year_step``'s)."""
    n_cells = stock.shape[3]
    width = (2 * LEAVE + 1) * n_cells
    for k in range(big.size):
        flows[big[k]] = np.float32(draws[k])
    for k in range(big.size):
        i, r = big[k] // width, big[k] % width
        row, c = r // n_cells, r % n_cells
        a = row + 1 if row < LEAVE else row - LEAVE
        p, base = p_lo + i, i * width
        before = stock[p, t - 1, a - 1, c] if a > 0 else _ZERO
        ces = flows[base + (a - 1) * n_cells + c] if a > 0 else _ZERO
        new = _cell_stock(
            a, before, ces, True, flows[base + (LEAVE + a) * n_cells + c], backlog_t[a, c],
            has_backlog,
        )  # fmt: skip
        stock[p, t, a, c] = new
        if has_next and a < LEAVE:
            p0[base + a * n_cells + c] = -(_leave_rate(q_next[a, c], kc[i]) * new)
        ph = phase_of_age[a]
        acc = stock[p, t, lo[ph], c]
        for b in range(lo[ph] + 1, hi[ph] + 1):
            acc += stock[p, t, b, c]
        phase[p, t, ph, c] = acc


sfc64_raw = _compiled(sfc64_raw)
draw_flat = _compiled(draw_flat)
neg_means = _compiled(neg_means)
start_paths = _compiled(start_paths)
year_step = _compiled(year_step)
fix_big = _compiled(fix_big)
