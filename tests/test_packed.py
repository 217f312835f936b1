"""Rectangular full packed storage: LAPACK's layout, a factor made in place, solves."""
import numpy as np
import pytest
import scipy.linalg as la

from feasibility.solvers import packed
from feasibility.solvers.ipm import KroneckerColumns
from feasibility.solvers.packed import PackedCholesky, rfp_shape, to_rfp


def spd(n, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    return (M @ M.T + n * np.eye(n)).astype(dtype)


@pytest.mark.parametrize("n", [1, 2, 3, 6, 7, 12, 13])
def test_the_layout_is_lapacks(n):
    """to_rfp puts each entry where LAPACK's own conversion (?trttf) does."""
    A = spd(n, n)
    lapack, info = la.lapack.dtrttf(np.asfortranarray(A), transr="N", uplo="L")
    assert info == 0
    R = to_rfp(A)
    assert R.shape == rfp_shape(n) and R.size == n * (n + 1) // 2
    np.testing.assert_array_equal(R.ravel(), lapack)


@pytest.mark.parametrize("dtype,tolerance", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("n", [1, 2, 9, 10, 23, 24])
def test_packed_solves_match_the_matrix(monkeypatch, n, dtype, tolerance):
    """Blocks of 4 so that every path of the blocked solves runs; the factor
    is made in the array given, not in a copy (half the memory is the point)."""
    monkeypatch.setattr(packed, "SOLVE_BLOCK", 4)
    A = spd(n, 100 + n, dtype)
    R = to_rfp(A)
    factor = PackedCholesky(R, n)
    assert np.shares_memory(factor.L, R) and factor.L.dtype == dtype
    b = np.random.default_rng(n).standard_normal(n)
    x = factor.solve(b)
    assert x.dtype == dtype
    assert np.linalg.norm(A.astype(float) @ x - b) <= tolerance * np.linalg.norm(b)


def test_a_matrix_that_is_not_positive_definite_is_refused():
    A = spd(8, 0)
    A[5, 5] = -1.0
    with pytest.raises(la.LinAlgError):
        PackedCholesky(to_rfp(A), 8)


@pytest.mark.parametrize("panels", [False, True])
@pytest.mark.parametrize("r_out,r_in", [(3, 4), (4, 3), (5, 3), (3, 5), (1, 6), (7, 1)])
def test_the_newton_matrix_is_assembled_straight_into_rfp(r_out, r_in, panels):
    """Every split of the order n = r_out r_in between block rows (n even or odd,
    the leading block ending inside a block row or at its end), from the whole
    GEMM or from one panel of it per block row."""
    rng = np.random.default_rng(r_out * 10 + r_in)
    K, p = 50, 8
    columns = KroneckerColumns(rng.standard_normal((K, r_out)),
                               rng.standard_normal((p, r_in)), rng.integers(0, p, K))
    c = rng.random(K)
    square = columns.weighted_outer(c)
    np.testing.assert_allclose(columns.weighted_outer(c, packed=True, panels=panels),
                               to_rfp(square), rtol=1e-12, atol=1e-12)
    shifted = square + 0.5 * np.eye(r_out * r_in)
    np.testing.assert_allclose(columns.weighted_outer(c, shift=0.5), shifted, rtol=1e-12)
    np.testing.assert_allclose(columns.weighted_outer(c, packed=True, panels=panels, shift=0.5),
                               to_rfp(shifted), rtol=1e-12, atol=1e-12)
