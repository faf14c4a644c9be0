"""The placement cells' fallbacks substituted out of the LP (model/sufficiency/fallback.py): the
same optimum, its duals and its basis, on a hand-solved case and on random placement LPs."""

from __future__ import annotations

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from model.sufficiency.fallback import Substitution, substitute
from model.sufficiency.solve import _pass_model, _run_highs, new_highs

INF = np.inf

# Four entry cells (rows A-D: their assignments + fallback = entrants) and four capacity rows.
# Columns: A special x0 (20) | A independent x1 (50, fallback) | B mainstream x2 (10, fallback,
# alone) | C resource base x3 (15) | C independent x4 (50, fallback) | D special x5 (20) | D
# resource base x6 (15) | D independent x7 (50, fallback).
COST = np.array([20, 50, 10, 15, 50, 20, 15, 50], float)
ROWS = [  # (coefficients by column, lower, upper)
    ({0: 1, 1: 1}, 10, 10),  # A: 10 entrants
    ({2: 1}, 5, 5),  # B: 5
    ({3: 1, 4: 1}, 3, 3),  # C: 3
    ({5: 1, 6: 1, 7: 1}, 7, 7),  # D: 7
    ({0: 1}, -INF, 4),  # special places for A: 4
    ({3: 1}, -INF, 8),  # resource-base places for C: 8
    ({5: 1}, -INF, 2),  # special places for D: 2
    ({6: 1}, -INF, 3),  # resource-base places for D: 3
]


def _hand_model() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    terms = np.array([(i, j, v) for i, (c, _, _) in enumerate(ROWS) for j, v in c.items()])
    a = sp.csr_matrix((terms[:, 2], (terms[:, 0], terms[:, 1])), shape=(len(ROWS), len(COST)))
    return a, np.array([r[1] for r in ROWS], float), np.array([r[2] for r in ROWS], float)


def _solve(cost, lo, up, a, rlo, rup, offset=0.0, basis=None):
    """HiGHS on one model, without presolve (so a basis given is used as it is)."""
    h = new_highs()
    h.setOptionValue("presolve", "off")
    _pass_model(h, cost, lo, up, sp.csc_matrix(a), rlo, rup, np.zeros(len(cost), bool), offset)
    if basis is not None:
        enum = [highspy.HighsBasisStatus(i) for i in range(5)]
        hb = highspy.HighsBasis()
        hb.col_status = [enum[i] for i in basis[0].tolist()]
        hb.row_status = [enum[i] for i in basis[1].tolist()]
        hb.valid = True
        assert h.setBasis(hb) == highspy.HighsStatus.kOk
    status, obj, x, y = _run_highs(h)
    b = h.getBasis()
    statuses = (
        np.array([s.value for s in b.col_status], np.int8),
        np.array([s.value for s in b.row_status], np.int8),
    )
    return status, obj, x, y, statuses, h.getInfo().simplex_iteration_count


def _reduced(sub: Substitution, basis=None):
    return _solve(
        sub.reduced_cost,
        sub.reduced_lo,
        sub.reduced_up,
        sub.reduced_a,
        sub.reduced_rlo,
        sub.reduced_rup,
        sub.offset,
        basis,
    )


def test_the_hand_case_keeps_its_optimum_and_its_duals() -> None:
    """By hand: A places 4 in special (its 4 places) and 6 independent; B 5 in mainstream; C all
    3 in the resource base (8 places); D 2 special, 3 resource base, 2 independent: 4 x 20 + 6 x
    50 + 5 x 10 + 3 x 15 + 2 x 20 + 3 x 15 + 2 x 50 = 660. The duals (GBP per child or place): a
    child more in A or D goes independent (50), in B to mainstream (10), in C to the resource base
    (15); a special place is worth 30 and a full resource-base place at D 35, C's spare ones 0.

    Substituted: every row's fallback goes; B's row with it (nothing left), A's and C's become
    bounds on their one other column (special <= 10, resource base <= 3), D's a row (special +
    resource base <= 7): 4 columns and 5 rows left, against a constant of 1,050."""
    a, rlo, rup = _hand_model()
    lo, up = np.zeros(len(COST)), np.full(len(COST), INF)
    sub = substitute(COST, lo, up, a, rlo, rup, np.zeros(len(COST), bool))
    assert sub.f_col.tolist() == [1, 2, 4, 7]
    assert sub.bound_col.tolist() == [0, 3] and sub.reduced_up.tolist() == [10, 3, INF, INF]
    assert sub.reduced_a.shape == (5, 4) and sub.offset == 1_050
    assert sub.reduced_cost.tolist() == [-30, -35, -30, -35]
    status, obj, x, y, _, _ = _reduced(sub)
    assert status == "optimal" and obj == pytest.approx(660)
    assert sub.point(x).tolist() == pytest.approx([4, 6, 5, 3, 0, 2, 3, 2])
    assert sub.duals(x, y).tolist() == pytest.approx([50, 10, 15, 50, -30, 0, -30, -35])
    # the same as HiGHS on the whole model
    full = _solve(COST, lo, up, a, rlo, rup)
    assert full[1] == pytest.approx(660) and full[3].tolist() == pytest.approx(sub.duals(x, y))


def test_bases_map_both_ways_to_the_optimum() -> None:
    """The whole model's optimal basis, mapped to the substituted model, is optimal there (no
    iteration), and the substituted model's, mapped back, is optimal for the whole model."""
    a, rlo, rup = _hand_model()
    lo, up = np.zeros(len(COST)), np.full(len(COST), INF)
    sub = substitute(COST, lo, up, a, rlo, rup, np.zeros(len(COST), bool))
    *_, full_basis, _ = _solve(COST, lo, up, a, rlo, rup)
    *_, reduced_basis, _ = _reduced(sub)
    status, obj, *_, iterations = _reduced(sub, sub.reduced_basis(*full_basis))
    assert (status, iterations) == ("optimal", 0) and obj == pytest.approx(660)
    status, obj, *_, iterations = _solve(COST, lo, up, a, rlo, rup, basis=sub.basis(*reduced_basis))
    assert (status, iterations) == ("optimal", 0) and obj == pytest.approx(660)


def test_rows_without_a_fallback_are_left_as_they_are() -> None:
    """A column in two rows, a negative right-hand side, an inequality, a bounded or whole-number
    column: none is a fallback, and nothing is substituted."""
    a = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    cost = np.array([1.0, 2.0, 3.0])
    lo, up = np.zeros(3), np.array([INF, INF, 5.0])
    sub = substitute(
        cost, lo, up, a, np.array([4.0, -1.0, 0.0]), np.array([4.0, -1.0, 2.0]), np.zeros(3, bool)
    )
    assert len(sub.f_col) == 0 and sub.reduced_a.shape == (3, 3) and sub.offset == 0
    whole = np.array([True, False, False])
    sub = substitute(
        cost, lo, np.full(3, INF), a, np.array([2.0, 2.0, 0.0]), np.array([2.0, 2.0, 9.0]), whole
    )
    assert sub.f_col.tolist() == [2]  # row 1's third column; row 0 has only whole or shared ones


@pytest.mark.parametrize("seed", range(12))
def test_random_placement_lps_keep_their_optimum(seed: int) -> None:
    """Random placement LPs (cells with a fallback, unmet where dearer, and capacity-limited
    settings at shared providers, some tight): the substituted model's optimum is the whole
    model's, its point is feasible there at that cost, and its duals prove it (dual feasible,
    complementary, with the same objective)."""
    rng = np.random.default_rng(seed)
    cells, providers = 30, 4
    rows, cols, vals, cost = [], [], [], []

    def column(entries: dict[int, float], c: float) -> None:
        j = len(cost)
        cost.append(c)
        for i, v in entries.items():
            rows.append(i)
            cols.append(j)
            vals.append(v)

    cap_row = {k: cells + k for k in range(providers)}
    for i in range(cells):
        for k in rng.choice(providers, size=rng.integers(0, 3), replace=False):
            column({i: 1.0, cap_row[k]: float(rng.uniform(0.5, 1.0))}, float(rng.uniform(10, 40)))
        column({i: 1.0}, float(rng.uniform(40, 60)))  # the fallback
        if rng.random() < 0.3:
            column({i: 1.0}, float(rng.uniform(55, 90)))  # unmet, dearer
    n_rows = cells + providers
    a = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, len(cost)))
    entrants = np.round(rng.uniform(0, 20, cells))
    places = rng.uniform(5, 40, providers)
    rlo = np.r_[entrants, np.full(providers, -INF)]
    rup = np.r_[entrants, places]
    cost = np.array(cost)
    lo, up = np.zeros(len(cost)), np.full(len(cost), INF)
    sub = substitute(cost, lo, up, a, rlo, rup, np.zeros(len(cost), bool))
    assert len(sub.f_col) == cells
    _, best, *_ = _solve(cost, lo, up, a, rlo, rup)
    status, obj, x, y, *_ = _reduced(sub)
    assert status == "optimal" and obj == pytest.approx(best, rel=1e-9)
    xf, yf = sub.point(x), sub.duals(x, y)
    act = a @ xf
    assert (act >= rlo - 1e-7).all() and (act <= rup + 1e-7).all() and (xf >= -1e-9).all()
    assert cost @ xf == pytest.approx(best, rel=1e-9)
    d = cost - a.T @ yf
    assert (d >= -1e-7).all() and np.abs(d[xf > 1e-7]).max(initial=0) < 1e-7
    assert (yf[cells:] <= 1e-9).all()  # a place more never costs more
    assert yf @ np.where(yf > 0, rlo, rup) == pytest.approx(best, rel=1e-9)


@pytest.mark.slow
def test_the_devon_lp_keeps_its_optimum(devon_run) -> None:
    """The Devon default's LP relaxation: about 14,000 fallbacks substituted out, and the same
    optimum as HiGHS (with its own presolve) on the whole model; the point mapped back is feasible
    at that cost and the duals mapped back prove it (the same dual objective)."""
    from model.sufficiency.solve import _run_lp, highs_model, lp_model

    m = devon_run.stages.sufficiency.model.lp
    _, whole, _, _ = _run_highs(highs_model(m, relax=True))
    lp = lp_model(m)
    assert len(lp.sub.f_col) > 10_000 and lp.sub.reduced_a.shape[0] < m.n_rows / 2
    status, obj, x, y = _run_lp(lp)
    assert status == "optimal" and obj == pytest.approx(whole, rel=1e-9)
    cost, lo, up, _ = m.column_arrays()
    rlo, rup = m.row_bounds()
    act = m.csr() @ x
    assert (act >= rlo - 1e-6).all() and (act <= rup + 1e-6).all()
    assert (x >= lo - 1e-9).all() and (x <= up + 1e-9).all()
    assert cost @ x == pytest.approx(whole, rel=1e-9)
    assert y @ np.where(y > 0, rlo, rup) == pytest.approx(whole, rel=1e-9)
