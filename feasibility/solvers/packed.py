"""Symmetric matrices in rectangular full packed (RFP) storage, and their Cholesky factor.

The IPM's Newton matrix has order D = r_out r_in (d² at the largest active
sets) and only its lower triangle matters: held as a square it costs D² numbers,
4.3 GB in float64 at d = 128 and 34 GB at d = 256. LAPACK's RFP format keeps the
triangle in one array of D (D + 1) / 2 numbers, shaped so that the factorisation
(?pftrf) runs on full-storage kernels: at order 9,216 spftrf took 3.86 s against
spotrf's 3.96 s on this project's 2-core machine (BENCHMARKS.md).

The format used here is LAPACK's TRANSR = 'N', UPLO = 'L', seen from numpy as a
C-order array R of shape ``rfp_shape(n)``. With n1 = ceil(n / 2), n2 = n - n1
and s = 1 for even n, 0 for odd n:

- row i < n1 of the upper triangle, A[i, i:], is R[i, i + s:];
- row i >= n1 of A's trailing n2 x n2 block's lower triangle, A[i, n1:i + 1],
  is R[i - n1 + 1 - s, :i - n1 + 1].

So the factor L = [[L11, 0], [L21, L22]] lies in R as three views: L11^T is the
upper triangle of R[:, s:s + n1], L21^T is R[:, s + n1:], L22 the lower
triangle of R[1 - s:1 - s + n2, :n2].

Solves go block by block over those views instead of through ?pftrs, which for
one right-hand side took four times as long as the two trsv of a full factor
(83 ms against 22 ms at order 9,216): the products with off-diagonal panels are
numpy products on views of R (no copy), the SOLVE_BLOCK-wide diagonal blocks
are copied once per factorisation and solved by trsv.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la

#: order of the diagonal blocks of a blocked triangular solve: their copies take
#: n SOLVE_BLOCK numbers (33 MB at n = 16,384 in float32). At order 9,216 in
#: float32 one solve took 24 ms with 512, 26 with 256, 29 with 128 (two trsv of
#: the full factor: 25 ms)
SOLVE_BLOCK = 512


def rfp_split(n: int) -> tuple[int, int]:
    """(n1, s): the order of the leading block, and 1 for even n (0 for odd)."""
    return n - n // 2, 1 - n % 2


def rfp_shape(n: int) -> tuple[int, int]:
    """Shape of the C-order array that holds a symmetric n x n matrix in RFP."""
    n1, s = rfp_split(n)
    return n1, n + s


def rfp_diagonal(n: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Index arrays of A's diagonal in its RFP array, for the leading and trailing blocks."""
    n1, s = rfp_split(n)
    top, bottom = np.arange(n1), np.arange(n - n1)
    return (top, top + s), (bottom + 1 - s, bottom)


def rfp_blocks(R: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (L11, L21^T, L22) of a factor (or of A's triangle) held in R: L11 and
    L22 read as lower triangles (their other triangles hold the rest of R)."""
    n1, s = rfp_split(n)
    n2 = n - n1
    return R[:, s:s + n1].T, R[:, s + n1:], R[1 - s:1 - s + n2, :n2]


def set_rfp_row(R: np.ndarray, n: int, i: int, row: np.ndarray, start: int = 0):
    """Put into R what RFP keeps of row i of a symmetric n x n matrix, given as
    ``row`` = A[i, start:] (start <= i, and start <= n1 for the trailing rows)."""
    n1, s = rfp_split(n)
    if i < n1:
        R[i, i + s:] = row[i - start:]
    else:
        R[i - n1 + 1 - s, :i - n1 + 1] = row[n1 - start:i - start + 1]


def to_rfp(A: np.ndarray) -> np.ndarray:
    """A symmetric matrix (its upper triangle and the lower one of its trailing
    block are read) in RFP: a reference for tests and small matrices."""
    n = A.shape[0]
    R = np.empty(rfp_shape(n), dtype=A.dtype)
    for i in range(n):
        set_rfp_row(R, n, i, A[i])
    return R


class PackedCholesky:
    """Cholesky factor of a symmetric positive definite matrix given in RFP
    storage (``rfp_shape(n)``, C order, float32 or float64), factorised in place."""

    def __init__(self, R: np.ndarray, n: int):
        pftrf = la.get_lapack_funcs("pftrf", (R,))
        factor, info = pftrf(n, R.reshape(-1), transr="N", uplo="L", overwrite_a=1)
        if info != 0:
            raise la.LinAlgError(f"{info}-th leading minor not positive definite")
        #: the factor, in R's memory (a contiguous array of the right dtype is not copied)
        self.L = factor.reshape(R.shape)
        self.n = n
        L11, self.L21T, L22 = rfp_blocks(self.L, n)
        self.triangles = [(L, _diagonal_blocks(L)) for L in (L11, L22)]
        self._trsv = la.get_blas_funcs("trsv", (self.L,))

    def solve(self, b: np.ndarray) -> np.ndarray:
        """(L L^T)^{-1} b, in the factor's dtype."""
        x = b.astype(self.L.dtype)
        (L11, diagonal11), (L22, diagonal22) = self.triangles
        n1 = len(L11)
        top, bottom = x[:n1], x[n1:]
        self._forward(L11, diagonal11, top)
        if len(bottom):
            bottom -= self.L21T.T @ top
            self._forward(L22, diagonal22, bottom)
            self._backward(L22, diagonal22, bottom)
            top -= self.L21T @ bottom
        self._backward(L11, diagonal11, top)
        return x

    def _forward(self, L, diagonal, x):
        """x <- L^{-1} x in place, L lower triangular, by blocks."""
        for k, block in zip(range(0, len(L), SOLVE_BLOCK), diagonal):
            end = k + len(block)
            if k:
                x[k:end] -= L[k:end, :k] @ x[:k]
            x[k:end] = self._trsv(block, x[k:end], lower=1)

    def _backward(self, L, diagonal, x):
        """x <- L^{-T} x in place, by blocks from the last."""
        starts = range(0, len(L), SOLVE_BLOCK)
        for k, block in reversed(list(zip(starts, diagonal))):
            end = k + len(block)
            if end < len(L):
                x[k:end] -= L[end:, k:end].T @ x[end:]
            x[k:end] = self._trsv(block, x[k:end], lower=1, trans=1)


def _diagonal_blocks(L: np.ndarray) -> list[np.ndarray]:
    """Copies of the SOLVE_BLOCK-wide diagonal blocks of a lower-triangular view,
    in Fortran order (what trsv takes without a copy of its own)."""
    return [np.asfortranarray(np.tril(L[k:k + SOLVE_BLOCK, k:k + SOLVE_BLOCK]))
            for k in range(0, len(L), SOLVE_BLOCK)]
