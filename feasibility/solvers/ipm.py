"""A structured interior-point method for the max-margin problem on an active set.

Why hand-written: the restricted problem is the minimum-norm point of the
convex hull of K normalised constraints a_k = g_k (x) x_i(k) (a Kronecker
product per constraint). Its Newton systems are

    K-space:  (A^T A + D) with A^T A = (G G^T) o (X_I X_I^T)          (K x K)
    D-space:  I + sum_i B_i (x) x_i x_i^T,  B_i = sum_{k in i} c_k g_k g_k^T  (r_out r_in square)

and the D-space matrix costs one GEMM of p r^4 flops, where a general sparse
LDL (Clarabel on the lifted cvxpy model) pays p r^5 for the same Schur
complement. Measured at d = 24, p = 120: 0.3 s per Clarabel iteration against
~0.01 s here. The method never certifies anything itself: its lambda and its
W = A lambda go to feasibility.certify like any solver's output.

Problem (always feasible and bounded):

    minimise 1/2 ||A lam||^2   subject to lam >= 0, sum(lam) = 1.

Its optimum is kappa_A^2 where kappa_A is the max-margin of the active set;
w = A lam is the max-margin direction (when kappa_A > 0) and lam is the
certificate. Primal-dual path following (Mehrotra predictor-corrector) from a
feasible start, so only complementarity has to be driven to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from feasibility.core.status import EngineStatus
from feasibility.solvers.packed import (
    PackedCholesky,
    rfp_diagonal,
    rfp_shape,
    rfp_split,
    set_rfp_row,
)

MAX_ITERATIONS = 80
#: Newton systems smaller than this are factorised on one BLAS thread
SMALL_NEWTON = 2048
#: starting slacks s = q - nu are at least this fraction of max |q|: on the
#: scale of the problem, where a unit slack cost 2-3 iterations to shed
START_SLACK = 0.1
#: fraction of the step to the boundary
STEP_FRACTION = 0.99
#: Gondzio centrality correctors per iteration (each one back-substitution);
#: 2 took 16% fewer iterations than none on near-critical d = 32, 48 probes
CORRECTORS = 2
#: with a target (min_norm_point), proximal steps are tried once ||A lam||
#: is within this factor of it; at most PURIFY_STEPS of them per iteration
PURIFY_FROM = 1e3
PURIFY_STEPS = 2
#: Newton matrices of at least this order are first factorised in float32
#: (Cholesky 2.6x faster at order 9216) and the solves refined in float64;
#: once refinement stalls (late iterations, ill-conditioned) conjugate gradients
#: take over (MIXED_KRYLOV), and once they do too the method goes on in float64
SINGLE_PRECISION_FROM = 4096
#: refinement stops at this relative residual of the Newton system, or at a
#: residual below REFINEMENT_FLOOR that no longer halves (the rounding floor
#: of the float64 product, which rises with the conditioning) ...
REFINEMENT_TOLERANCE = 1e-11
REFINEMENT_FLOOR = 1e-9
#: ... and gives up after this many corrections
REFINEMENT_STEPS = 6
#: a refinement step that does not at least halve the residual has stalled
REFINEMENT_CONTRACTION = 0.5
#: where only a float32 Newton matrix fits (the "float32" form), its factor
#: preconditions conjugate gradients on the exact float64 product, which stop
#: after KRYLOV_STEPS iterations; a factorisation that fails is made again of
#: H + CHOLESKY_SHIFT max(diag H) I, positive definite in float32 where H is not
KRYLOV_STEPS = 50
CHOLESKY_SHIFT = 1e-6
#: the "mixed" form tries the same conjugate gradients (on the float64 blocks'
#: product) where refinement stalls, before it goes on in float64: coupled
#: d = 192, p = 3661, float64 for 1 of 23 iterations (the session before, from
#: iteration 16 of 17, at 5-7 min each against 3-4.5 min with CG); d = 64 near
#: p*, 2 of 7-9 float64 factorisations a solve saved
MIXED_KRYLOV = True
#: ... and in both forms a solution is taken whose residual is within
#: KRYLOV_FLOOR of |b|: an inexact direction costs iterations, not the result
#: (the IPM recomputes its residuals from lambda each iteration, and the
#: certificate is checked outside). Coupled d = 64, p* + 1: late solves reached
#: 1e-8, not REFINEMENT_FLOOR, and the solve ended with the float64 one's
#: certificate. In the mixed form, taking them (instead of going on in float64
#: below REFINEMENT_FLOOR) made coupled d = 64 seed 0's solves at p* and p* + 1
#: 4 and 1 float64 factorisations of 25 and 22 instead of 7 and 5 (decoupled: 2
#: and 1 instead of 2 and 4), with the same IPM iterations and bounds to 4 digits
KRYLOV_FLOOR = 1e-6
#: the forms of the Newton system: "gram" (K x K, float64), "mixed" (D-space,
#: float32 factors refined in float64, then CG, float64 once neither suffices),
#: "float32" (D-space, float32 factors and conjugate gradients only), and
#: "auto": "gram" where K <= D, else "mixed"
NEWTON_FORMS = ("auto", "gram", "mixed", "float32")
#: optimal when the duality gap lam.s <= GAP_ATOL + GAP_RTOL lam.Q lam (the
#: objective is ||A lam||^2 = kappa_A^2, so the gap is relative to the squared
#: margin: ~1e-5 relative on kappa_A) and sum(lam) = 1 to SIMPLEX_ATOL
GAP_ATOL = 1e-14
GAP_RTOL = 1e-10
SIMPLEX_ATOL = 1e-12
#: guards divisions by an objective or a scale that may be exactly zero
TINY = 1e-300
#: Gondzio correctors (Gondzio 1996's usual constants): the trial step is
#: GONDZIO_STEP_GROWTH alpha + GONDZIO_STEP_EXTRA; complementarity products are
#: pushed into [GONDZIO_LOW, GONDZIO_HIGH] sigma mu; a corrector is kept only
#: if it gains GONDZIO_ACCEPT of the way to the trial step
GONDZIO_STEP_GROWTH, GONDZIO_STEP_EXTRA = 1.5, 0.1
GONDZIO_LOW, GONDZIO_HIGH = 0.1, 10.0
GONDZIO_ACCEPT = 0.1


class KroneckerColumns:
    """Columns a_k = vec(g_k x_i(k)^T) (C order) without forming them."""

    def __init__(self, g: np.ndarray, x: np.ndarray, owner: np.ndarray):
        self.g, self.x, self.owner = g, x, np.asarray(owner)
        p = len(x)
        # the columns grouped by input (stable, so a sorted owner stays as is):
        # sums over each input's constraints are then one sparse product, and
        # per-input products are contiguous slices
        self.order = np.argsort(self.owner, kind="stable")
        self.indptr = np.r_[0, np.cumsum(np.bincount(self.owner, minlength=p))]
        self.blocks = [(i, self.indptr[i], self.indptr[i + 1]) for i in range(p)
                       if self.indptr[i + 1] > self.indptr[i]]
        # the active-set loop passes its columns grouped already: no copy of
        # the K x r_out directions, the largest array besides the Newton matrix
        grouped = bool(np.all(self.owner[1:] >= self.owner[:-1]))
        self.g_sorted = g if grouped else g[self.order]

    @property
    def shape(self) -> tuple[int, int]:
        return self.g.shape[1] * self.x.shape[1], self.g.shape[0]

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """(r_out, r_in): a point of the D-space as a matrix, like A lam."""
        return self.g.shape[1], self.x.shape[1]

    def apply(self, lam: np.ndarray) -> np.ndarray:
        """A lam as an r_out x r_in matrix: sum_k lam_k g_k x_i(k)^T."""
        weights = sp.csr_matrix((lam[self.order], self.order, self.indptr),
                                shape=(len(self.x), len(lam)))
        return (weights @ self.g).T @ self.x

    def apply_transpose(self, W: np.ndarray) -> np.ndarray:
        """A^T w: <a_k, W> = g_k^T W x_i(k) for every column."""
        Z = self.x @ W.T  # p_used x r_out, z_i = W x_i
        grouped = np.empty(len(self.g))
        for i, start, stop in self.blocks:
            grouped[start:stop] = self.g_sorted[start:stop] @ Z[i]
        out = np.empty_like(grouped)
        out[self.order] = grouped
        return out

    def gram(self) -> np.ndarray:
        xx = self.x @ self.x.T
        return (self.g @ self.g.T) * xx[np.ix_(self.owner, self.owner)]

    def input_blocks(self, c: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        """B_i = sum_{k in i} c_k g_k g_k^T, one r_out x r_out block per input,
        summed in float64 and held in `dtype` (float32 where they only assemble
        a float32 matrix: 1.6 GB less at d = 256).

        The result is a buffer of this object, overwritten by the next call.
        Large arrays allocated afresh at every IPM iteration are mapped page by
        page by the kernel as they are first written; at d = 64 that cost 14%
        of a solve, so the blocks and the scaled rows are not temporaries.
        """
        r_out = self.g.shape[1]
        B = self._buffer("blocks", (self.x.shape[0], r_out, r_out), dtype)
        if len(self.blocks) < self.x.shape[0]:
            B[...] = 0.0
        scaled = np.multiply(self.g_sorted, c[self.order, None],
                             out=self._buffer("scaled", self.g_sorted.shape, np.float64))
        for i, start, stop in self.blocks:
            np.matmul(self.g_sorted[start:stop].T, scaled[start:stop], out=B[i])
        return B

    def _buffer(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """A named scratch array kept across calls (see input_blocks).

        One of another shape or dtype is released before its replacement is
        allocated: at the switch to float64 the float32 "outer" product is 1.4 GB
        at d = 192, and both alive at once would add it to the peak.
        """
        buffers = self.__dict__.setdefault("_buffers", {})
        array = buffers.get(name)
        if array is None or array.shape != shape or array.dtype != np.dtype(dtype):
            array = buffers[name] = None
            array = buffers[name] = np.empty(shape, dtype=dtype)
        return array

    def weighted_outer(self, c: np.ndarray, packed: bool = False,
                       dtype: type = np.float64, out: np.ndarray | None = None,
                       blocks: np.ndarray | None = None, shift: float = 0.0,
                       panels: bool = False) -> np.ndarray:
        """(1 + shift) I + sum_k c_k a_k a_k^T, assembled through its Kronecker structure.

        Entry [(a, b), (c, e)] is sum_i B_i[a, c] x_i[b] x_i[e]; both factors are
        symmetric, so one GEMM over their packed upper triangles (a quarter of
        the flops of the full p r^4 product) and one gather build it.
        ``packed``: the matrix in RFP storage (``packed.rfp_shape(D)``, half the
        memory; what PackedCholesky factorises), gathered block row by block row,
        instead of the D x D square.
        ``dtype``: of the GEMM and the result (the B_i are summed in float64).
        ``out``: an array of that shape and dtype to fill. Reusing one across calls
        matters at large D: a fresh array is mapped page by page as it is
        first written, which cost as much as the GEMM itself at D = 9216.
        ``blocks``: the B_i, if the caller already has them (``input_blocks(c)``).
        ``panels`` (with ``packed``): the GEMM block row by block row instead of
        whole. The whole product of the packed B_i and x_i x_i^T holds D^2 / 4
        numbers (4.3 GB in float32 at d = 256, half the packed matrix); its panels
        r_out r_in^2 / 2, for a GEMM about 20% slower at d = 128 (BENCHMARKS.md).
        """
        r_out, r_in = self.g.shape[1], self.x.shape[1]
        B = self.input_blocks(c) if blocks is None else blocks
        upper_out, index_out = _packing(r_out)
        index_in = _packing(r_in)[1]
        packed_x = self._packed_outer_x(dtype)
        packed_B = self._buffer("packed_blocks", (len(upper_out[0]), len(B)), dtype)
        packed_B[...] = B[:, upper_out[0], upper_out[1]].T
        panels = panels and packed
        if panels:
            T = self._buffer("panel", (r_out, packed_x.shape[1]), dtype)
        else:
            T = np.matmul(packed_B, packed_x,
                          out=self._buffer("outer", (len(upper_out[0]), packed_x.shape[1]), dtype))
        D = r_out * r_in
        if not packed:
            if out is None:
                out = np.empty((D, D), dtype=dtype)
            out.reshape(r_out, r_in, r_out, r_in)[...] = T[index_out[:, None, :, None],
                                                            index_in[None, :, None, :]]
            out[np.diag_indices_from(out)] += 1.0 + shift
            return out
        if out is None:
            out = np.empty(rfp_shape(D), dtype=dtype)
        n1 = rfp_split(D)[0]
        for a in range(r_out):
            # block row a of the matrix, block columns first..last - 1: to the right
            # of the diagonal where RFP keeps rows of the upper triangle, from
            # column n1 to the diagonal where it keeps the trailing block's lower one
            top = a * r_in < n1
            first, last = (a, r_out) if top else (n1 // r_in, a + 1)
            pairs = index_out[a, first:last]
            if panels:
                block = np.matmul(packed_B[pairs], packed_x, out=T[:len(pairs)])
            else:
                block = T[pairs]
            rows = block[:, index_in].transpose(1, 0, 2).reshape(r_in, -1)
            for i, row in enumerate(rows, start=a * r_in):
                set_rfp_row(out, D, i, row, start=first * r_in)
        for diagonal in rfp_diagonal(D):
            out[diagonal] += 1.0 + shift
        return out

    def _packed_outer_x(self, dtype) -> np.ndarray:
        """Packed upper triangles of the x_i x_i^T, one row per input (cached)."""
        cache = self.__dict__.setdefault("_packed_x", {})
        dtype = np.dtype(dtype)
        if dtype not in cache:
            upper = _packing(self.x.shape[1])[0]
            cache[dtype] = (self.x[:, upper[0]] * self.x[:, upper[1]]).astype(dtype)
        return cache[dtype]

    def newton_product(self, blocks: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(I + sum_k c_k a_k a_k^T) t without the matrix, from the B_i of c:
        t + vec(sum_i B_i W x_i x_i^T) with W = t as an r_out x r_in matrix."""
        W = t.reshape(self.matrix_shape)
        Z = self.x @ W.T  # row i: W x_i
        return t + (np.matmul(blocks, Z[:, :, None])[:, :, 0].T @ self.x).ravel()

    def direct_newton_product(self, c: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The same product in float64 from the columns themselves, t + A (c * A^T t),
        for where the B_i are held in float32 (about as many flops: 2 K r_out +
        2 p r_out r_in against 3 p r_out^2 r_in)."""
        return t + self.apply(c * self.apply_transpose(t.reshape(self.matrix_shape))).ravel()


class Cholesky:
    """Cholesky factor of a symmetric positive definite matrix, solved by two
    triangular solves (LAPACK potrs is 2-5x slower for one right-hand side).

    Takes the matrix's lower triangle in Fortran order (or, the same memory,
    its upper triangle in C order) and factorises it in place.
    """

    def __init__(self, lower_fortran: np.ndarray):
        self.L, _ = la.cho_factor(lower_fortran, lower=True, overwrite_a=True,
                                  check_finite=False)
        self._trsv = la.blas.get_blas_funcs("trsv", (self.L,))

    def solve(self, b: np.ndarray) -> np.ndarray:
        y = self._trsv(self.L, b.astype(self.L.dtype, copy=False), lower=1)
        return self._trsv(self.L, y, lower=1, trans=1)


class RefinementStalled(Exception):
    """A float32 factor no longer gives float64 accuracy: go on in float64
    (or, in the "float32" form, give the iteration up)."""


class NewtonSolver:
    """Solves (I + A diag(c) A^T) t = b: a float64 Cholesky, or a float32 one
    whose solutions are refined against the exact product in float64, or (with
    ``krylov``, where a float64 matrix would not fit) a float32 one that
    preconditions conjugate gradients on that product."""

    def __init__(self, columns: KroneckerColumns, c: np.ndarray, single: bool,
                 workspace: dict | None = None, krylov: bool = False):
        """``workspace``: dtype -> the Newton matrix in RFP storage, kept by the caller
        across iterations."""
        dtype = np.dtype(np.float32 if single or krylov else np.float64)
        if workspace is None:
            workspace = {}
        D = columns.shape[0]
        if dtype not in workspace:
            workspace.clear()  # float32 is not used again once float64 is needed
            workspace[dtype] = np.empty(rfp_shape(D), dtype=dtype)
        # in float32 where they only assemble the float32 matrix: CG's exact
        # product then comes from the columns (direct_newton_product)
        self.blocks = columns.input_blocks(c, np.float32 if krylov else np.float64)
        self.columns, self.c = columns, c
        self.single, self.krylov = single, krylov
        self.shift = 0.0
        try:
            self.factor = self._factorise(workspace[dtype])
        except la.LinAlgError:
            if not krylov:
                raise
            # max diag H = 1 + max over (a, b) of sum_i B_i[a, a] x_i[b]^2
            diagonal = np.einsum("iaa,ib->ab", self.blocks, columns.x ** 2)
            self.shift = CHOLESKY_SHIFT * (1.0 + float(diagonal.max()))
            self.factor = self._factorise(workspace[dtype])

    def _factorise(self, out: np.ndarray) -> PackedCholesky:
        H = self.columns.weighted_outer(self.c, packed=True, dtype=out.dtype, out=out,
                                        blocks=self.blocks, shift=self.shift,
                                        panels=self.krylov)
        return PackedCholesky(H, self.columns.shape[0])

    def solve(self, b: np.ndarray) -> np.ndarray:
        t = self.factor.solve(b).astype(np.float64)
        if self.krylov:
            return self._conjugate_gradients(b, t, self._direct_product)
        if not self.single:
            return t
        scale = np.linalg.norm(b)
        previous = np.inf
        for step in range(REFINEMENT_STEPS + 1):
            residual = b - self._blocks_product(t)
            size = np.linalg.norm(residual)
            if size <= REFINEMENT_TOLERANCE * scale:
                return t
            if size > REFINEMENT_CONTRACTION * previous:
                if size <= REFINEMENT_FLOOR * scale:
                    return t
                break
            previous = size
            if step < REFINEMENT_STEPS:
                t += self.factor.solve(residual)
        if not MIXED_KRYLOV:
            raise RefinementStalled
        # where refinement stalls, conjugate gradients on the same factor still
        # converge: the float64 matrix (twice the memory, factorisation 2x slower)
        # is made only where they do not reach KRYLOV_FLOOR either
        return self._conjugate_gradients(b, t, self._blocks_product)

    def _blocks_product(self, t: np.ndarray) -> np.ndarray:
        return self.columns.newton_product(self.blocks, t)

    def _direct_product(self, t: np.ndarray) -> np.ndarray:
        return self.columns.direct_newton_product(self.c, t)

    def _conjugate_gradients(self, b: np.ndarray, t: np.ndarray, product) -> np.ndarray:
        """Conjugate gradients on the exact float64 `product`, preconditioned by
        the float32 factor, from t; the solution if its true relative residual
        is within KRYLOV_FLOOR."""
        D = len(b)
        newton = spla.LinearOperator((D, D), matvec=product, dtype=np.float64)
        preconditioner = spla.LinearOperator(
            (D, D), matvec=lambda v: self.factor.solve(v).astype(np.float64), dtype=np.float64)
        t, _ = spla.cg(newton, b, x0=t, rtol=REFINEMENT_TOLERANCE, maxiter=KRYLOV_STEPS,
                       M=preconditioner)
        # cg's own residual is a recurrence: judge the solution by the true one
        if np.linalg.norm(b - product(t)) <= KRYLOV_FLOOR * np.linalg.norm(b):
            return t
        raise RefinementStalled


@lru_cache(maxsize=8)
def _packing(r: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Upper-triangle (row, col) indices of an r x r matrix and the r x r map
    from (row, col) to the packed position of (min, max)."""
    upper = np.triu_indices(r)
    index = np.empty((r, r), dtype=np.intp)
    index[upper] = index[upper[1], upper[0]] = np.arange(len(upper[0]))
    return upper, index


@dataclass(frozen=True, eq=False)
class IPMState:
    """The iterate at the top of an iteration: all the method carries from one
    iteration to the next, so that a run stopped there goes on from it exactly
    (a probe of hours outlives its process; see solvers/active_set.py)."""

    lam: np.ndarray
    nu: float
    s: np.ndarray
    iteration: int
    #: whether the Newton matrix is still factorised in float32 (the "mixed"
    #: form goes on in float64 once float32 no longer suffices, and stays there)
    single: bool


@dataclass
class IPMResult:
    lam: np.ndarray
    W: np.ndarray          # A lam, reduced coordinates
    iterations: int
    status: EngineStatus   # OPTIMAL | TARGET | STOPPED | MAX_ITERATIONS | NUMERICAL_ERROR,
                           # or what the callback returned
    gap: float


def min_norm_point(columns: KroneckerColumns, callback=None, tol: float = GAP_ATOL,
                   max_iterations: int = MAX_ITERATIONS,
                   target: float | None = None, form: str = "auto",
                   start: IPMState | None = None,
                   on_state: Callable[[IPMState], None] | None = None) -> IPMResult:
    """Minimum-norm point of conv{a_k}: the max-margin problem's dual.

    ``callback(lam, W, rel_gap)`` may return a status string to stop early
    (the caller certifies whatever it needs from the current iterate, which is
    always a valid lambda); rel_gap is the duality gap over the objective.
    ``target``: the caller only needs a lambda with ||A lam|| <= target (a
    Farkas certificate). Once the iterate is within PURIFY_FROM of it, each
    iteration also tries a proximal step on its factorised Newton matrix and
    returns with status "target" when that reaches it.
    ``form``: of the Newton system, one of NEWTON_FORMS ("float32" where the
    float64 D-space matrix would not fit in memory).
    ``start``: an iterate ``on_state`` was given by an earlier run on the same
    columns, form and target; the run goes on from it as that one would have.
    ``on_state(state)``: called at the top of every iteration with the iterate.
    """
    if form not in NEWTON_FORMS:
        raise ValueError(f"unknown Newton form {form!r}; one of {NEWTON_FORMS}")
    D, K = columns.shape
    # Multithreaded BLAS on small factorizations loses more to thread
    # synchronisation than it gains, and collapses (30x measured) when the
    # other cores are busy: one thread below SMALL_NEWTON.
    limits = threadpool_limits(1, user_api="blas") if min(D, K) < SMALL_NEWTON else None
    try:
        return _min_norm_point(columns, callback, tol, max_iterations, target, form, D, K,
                               start, on_state)
    finally:
        if limits is not None:
            limits.restore_original_limits()


def _min_norm_point(columns, callback, tol, max_iterations, target, form, D, K, start,
                    on_state):
    use_gram = form == "gram" or (form == "auto" and K <= D)
    krylov = form == "float32"
    Q = columns.gram() if use_gram else None

    def Qmul(v):
        return Q @ v if use_gram else columns.apply_transpose(columns.apply(v))

    single = not use_gram and not krylov and D >= SINGLE_PRECISION_FROM
    if start is not None:
        if start.lam.shape != (K,) or start.s.shape != (K,):
            raise ValueError(f"start: an iterate of {start.lam.shape[0]} constraints, "
                             f"these columns have {K}")
        lam, nu, s, first = start.lam.copy(), float(start.nu), start.s.copy(), start.iteration
        single = single and start.single
    else:
        lam = np.full(K, 1.0 / K)
        q = Qmul(lam)
        nu = q.min() - START_SLACK * max(np.abs(q).max(), TINY)
        s = q - nu
        first = 1
    ones = np.ones(K)
    status, gap, it = EngineStatus.MAX_ITERATIONS, np.inf, first - 1
    workspace: dict = {}
    for it in range(first, max_iterations + 1):
        if on_state is not None:
            on_state(IPMState(lam, nu, s, it, single))
        q = Qmul(lam)
        r_d = q - nu * ones - s
        r_p = lam.sum() - 1.0
        mu = lam @ s / K
        objective = lam @ q
        gap = lam @ s
        if callback is not None:
            stop = callback(lam / lam.sum(), columns.apply(lam / lam.sum()),
                            gap / max(objective, TINY))
            if stop:
                status = stop
                break
        if gap <= tol + GAP_RTOL * objective and abs(r_p) < SIMPLEX_ATOL:
            status = EngineStatus.OPTIMAL
            break
        dg = s / lam
        try:
            while True:
                try:
                    solve = _kkt_solver(columns, Q, dg, single, workspace, krylov)
                    step = _newton_step(solve, lam, s, r_d, r_p, mu, K)
                    break
                except (RefinementStalled, la.LinAlgError):
                    if not single:
                        raise
                    single = False  # float32 no longer suffices: the rest in float64
                    # let the float32 factor go before the float64 matrix is made:
                    # at d = 192 they are 5.4 and 10.9 GB
                    solve = None
        except (la.LinAlgError, ValueError, RefinementStalled):
            status = EngineStatus.NUMERICAL_ERROR
            break
        if target is not None and objective <= (PURIFY_FROM * target) ** 2 * lam.sum() ** 2:
            purified = _proximal_certificate(solve, columns, lam, s, target)
            if purified is not None:
                lam, status = purified, EngineStatus.TARGET
                break
        dlam, dnu, ds, alpha = step
        alpha = min(1.0, STEP_FRACTION * alpha)
        lam = lam + alpha * dlam
        nu = nu + alpha * dnu
        s = s + alpha * ds
        if not (np.all(np.isfinite(lam)) and np.all(lam > 0) and np.all(s > 0)):
            status = EngineStatus.NUMERICAL_ERROR
            break
    lam = np.clip(lam, 0.0, None)
    lam = lam / lam.sum()
    return IPMResult(lam, columns.apply(lam), it, status, float(gap))


def _proximal_certificate(solve, columns, lam, s, target):
    """Near the end of an infeasible solve the iterate's ||A lam|| falls only
    ~1.5x per iteration (the optimum, 0, is degenerate), while a proximal step
    min ||A mu||^2 + ||mu - lam||^2_{diag(s/lam)} on the Newton matrix already
    factorised, mu = solve(s / lam * lam) = solve(s), cuts it by orders of
    magnitude. Returns mu (clipped to >= 0) if ||A mu|| <= target sum(mu)."""
    mu = lam
    for _ in range(PURIFY_STEPS):
        try:
            mu = np.clip(solve(s / lam * mu), 0.0, None)
        except RefinementStalled:
            return None
        total = mu.sum()
        if total > 0 and np.linalg.norm(columns.apply(mu)) <= target * total:
            return mu
    return None


def _kkt_solver(columns, Q, dg, single, workspace, krylov=False):
    """u -> (A^T A + diag(dg))^{-1} u: by the K x K matrix Q + diag(dg) when the
    caller has the Gram matrix Q, else through the D-space matrix I + A diag(c) A^T."""
    if Q is not None:
        N = Q.copy()
        N[np.diag_indices_from(N)] += dg
        return Cholesky(N.T).solve
    c = 1.0 / dg
    newton = NewtonSolver(columns, c, single, workspace, krylov)
    shape = columns.matrix_shape

    def solve(b):
        y = c * b
        t = newton.solve(columns.apply(y).ravel())
        return y - c * columns.apply_transpose(t.reshape(shape))
    return solve


def _newton_step(solve, lam, s, r_d, r_p, mu, K):
    """Mehrotra predictor-corrector direction with Gondzio correctors, and the
    largest step along it; `solve` applies the inverse of Q + diag(s / lam)."""
    ones = np.ones(K)
    v = solve(ones)

    def direction(rc):
        h = -r_d + rc / lam
        u = solve(h)
        dnu = (-r_p - u.sum()) / v.sum()
        dlam = u + dnu * v
        ds = (rc - s * dlam) / lam
        return dlam, dnu, ds

    dlam, dnu, ds = direction(-lam * s)
    alpha = _step(lam, dlam, s, ds, 1.0)
    mu_aff = (lam + alpha * dlam) @ (s + alpha * ds) / K
    sigma = (mu_aff / mu) ** 3
    rc = -lam * s - dlam * ds + sigma * mu
    dlam, dnu, ds = direction(rc)
    alpha = _step(lam, dlam, s, ds, 1.0)
    for _ in range(CORRECTORS):
        # Gondzio: push the trial point's outlying complementarity products
        # back into [GONDZIO_LOW, GONDZIO_HIGH] sigma mu; one back-substitution each
        trial = min(1.0, GONDZIO_STEP_GROWTH * alpha + GONDZIO_STEP_EXTRA)
        products = (lam + trial * dlam) * (s + trial * ds)
        target = sigma * mu
        push = np.clip(products, GONDZIO_LOW * target, GONDZIO_HIGH * target) - products
        push = np.maximum(push, -GONDZIO_HIGH * target)
        candidate = direction(rc + push)
        alpha_c = _step(lam, candidate[0], s, candidate[2], 1.0)
        if alpha_c < alpha + GONDZIO_ACCEPT * (trial - alpha):
            break
        (dlam, dnu, ds), alpha, rc = candidate, alpha_c, rc + push
    return dlam, dnu, ds, alpha


def _step(x, dx, s, ds, fraction):
    """Largest step in (0, 1] keeping x and s positive, times `fraction`."""
    ratios = [1.0]
    for value, delta in ((x, dx), (s, ds)):
        neg = delta < 0
        if neg.any():
            ratios.append(float(np.min(-value[neg] / delta[neg])))
    return min(1.0, fraction * min(ratios))
