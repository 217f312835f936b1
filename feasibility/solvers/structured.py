"""Fast certified verdicts for large instances, from the structure real files have.

The active set of feasibility.solve works on the reduced memory M, r_out x r_in
unknowns: fine at d <= 32, hopeless at the r = 384..768 of real sentence
embeddings. This module answers most real files without it. It never certifies
anything itself: every W and every Farkas certificate it finds goes through
feasibility.certify (margin_lower_bound over all constraints,
margin_upper_bound), and whatever it cannot decide is left to the active set.

Whitened coordinates. Margins compare targets only through differences
y_t - y_j, so the targets may be centred, Y_c = Y - 1 ybar^T: that shifts each
column of the score matrix by a constant and changes no margin. With thin SVDs
X = U_X S_X V_X^T (inputs, n x d_in, rank r_x) and Y_c = U_Y S_Y V_Y^T (centred
targets, m x d_out, rank r_y <= m - 1), every memory's centred score matrix is

    S = Y_c W X^T = U_Y B U_X^T,   B = S_Y V_Y^T W V_X S_X   (r_y x r_x, free),

and W = V_Y S_Y^-1 B S_X^-1 V_X^T maps any B back. Feasibility only asks that
every column i of S be uniquely maximal at row t(i); it does not change under
invertible maps of inputs or targets, so B is the well-conditioned unknown.
Scores on anything outside the two spans are zero: the reduction loses
nothing.

Paths, cheapest first (coupled instances: targets plus an assignment):

1. exact certificates: a zero constraint (duplicate target, zero input) or two
   facts with parallel inputs and different targets (lambda = 1/2 on the two
   opposite constraints).
2. closed-form memories: the ridge family W(a, b) = V_Y f_a(S_Y) U_Y^T E U_X
   f_b(S_X) V_X^T with f_a(s) = s / (s^2 + (a s_max)^2), which runs from the
   pseudo-inverse memory pinv(Y_c) E pinv(X)^T (a = b = 0: S = P_Y E P_X, E up
   to a shift per column when the inputs are linearly independent and the
   targets affinely independent) to the (centred) Hebbian one (a, b ->
   infinity). E is the m x n assignment matrix.
3. inputs linearly independent (n = r_x): z_i = W x_i is free, so the problem
   splits into one small LP per distinct target t: is y_t a vertex that some
   direction separates from the other targets? Each LP gives a direction or
   weights lambda with sum_j lambda_j (y_t - y_j) = 0: a certificate.
4. targets affinely independent (r_y = m - 1, e.g. few shared answers): U_Y
   then spans all of 1-perp, so A = U_Y B is any matrix up to a shift per
   column, and the problem is multiclass linear separability (through the
   origin) of the whitened inputs by class t(i), m r_x unknowns: softmax
   regression (L-BFGS) for a separating A, then an active-set LP (HiGHS)
   whose duals are the certificate when none exists.
5. otherwise: softmax regression on B itself (bounded size), feasible side only.

Decoupled instances (explicit competitors) get step 1's zero constraints only.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.optimize as opt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from feasibility.core import certify
from feasibility.core.certify import (
    FEASIBLE,
    INFEASIBLE,
    UNDETERMINED,
    CertifiedBracket,
    FarkasCertificate,
)
from feasibility.core.instances import Instance
from feasibility.core.status import Verdict
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE, RANK_RTOL
from feasibility.solvers.selection import smallest_per_row

#: ridge strengths (fractions of the largest singular value) tried by step 2;
#: inf is the Hebbian end of the family. Ordered: most often decisive first.
RIDGE_GRID = ((0.0, 0.0), (0.0, 1e-2), (1e-2, 0.0), (1e-2, 1e-2), (0.0, 1e-1),
              (1e-1, 1e-1), (np.inf, 0.0), (0.0, np.inf))
#: softmax regression: L-BFGS iterations per chunk, chunks at most
SOFTMAX_CHUNK, SOFTMAX_CHUNKS = 25, 12
#: ... stopping early when a chunk lowers the loss by less than this (relative)
SOFTMAX_STALL = 1e-3
#: score matrices with fewer entries run the softmax on one BLAS thread
SMALL_SCORES = 200_000
#: step 5 only below this many unknowns in B (memory ~ 3 copies of B)
MAX_GENERAL_UNKNOWNS = 2_000_000
#: LP optimum at or below this counts as "no separating direction"
LP_ZERO = 1e-9
#: active-set LP: constraints per input to start with and to add per round
LP_INITIAL_PER_INPUT, LP_ADDED_PER_INPUT, LP_MAX_ROUNDS = 3, 3, 40
#: seconds one multiclass LP may take: on 5,000 facts x 384 dimensions with 168
#: answers one HiGHS solve ran past 11 minutes (issue 13) where the active set,
#: which it only precedes, needs its own time anyway
LP_SECONDS = 120.0
#: HiGHS needs a positive limit; below this a deadline already passed
LP_MIN_SECONDS = 1.0
#: relative singular values below this are dropped (Gram-matrix rounding)
GRAM_RTOL = 1e-6
#: worth_trying: below this many reduced unknowns the active set is as fast
FAST_PATH_MIN_UNKNOWNS = 512
#: inputs this close to parallel (1 - cosine) count as one input
PARALLEL_EPS = 1e-13
#: parallel candidates are first grouped by unit coordinates rounded to this
#: many decimals (far coarser than PARALLEL_EPS's ~1e-7 angle, so parallel
#: pairs share a key unless a coordinate straddles a rounding edge: a missed
#: pair costs speed, never soundness)
PARALLEL_KEY_DECIMALS = 8
#: _polish's NNLS enforces sum(mu) = 1 through one extra row weighted this much
#: above the largest entry: the sum is then met to ~1e-8 before renormalising
NNLS_SUM_WEIGHT = 1e4
#: L-BFGS stops inside a chunk only at a vanishing gradient or loss change: the
#: chunks, not these, bound the work (separable losses fall towards 0)
SOFTMAX_GTOL, SOFTMAX_FTOL = 1e-10, 1e-12


@dataclass(frozen=True, eq=False)
class Evidence:
    """What the fast path found, with bounds recomputed by feasibility.certify.

    verdict is certify.classify of the bounds: FEASIBLE or INFEASIBLE only when
    the evidence proves it; UNDETERMINED means "use the active set".
    """

    verdict: Verdict
    method: str
    margin_lower: float | None
    margin_upper: float | None
    seconds: float
    steps: tuple[str, ...] = ()
    weights: np.ndarray | None = field(default=None, repr=False)
    certificate: FarkasCertificate | None = field(default=None, repr=False)

    def verify(self, instance: Instance, margin: float = 0.0,
               tolerance: float = INFEASIBILITY_TOLERANCE) -> bool:
        """Recompute the bounds of the W and the certificate, and the verdict
        they give at this margin and tolerance (certify.evidence_problems)."""
        return not certify.evidence_problems(instance, self.verdict, self.margin_lower,
                                             self.margin_upper, self.weights,
                                             self.certificate, margin, tolerance)


@dataclass(frozen=True, eq=False)
class Whitened:
    """Thin SVDs of the inputs and of the targets (see module docstring)."""

    u_x: np.ndarray  # n x r_x
    s_x: np.ndarray
    v_x: np.ndarray  # d_in x r_x
    u_y: np.ndarray  # m x r_y
    s_y: np.ndarray
    v_y: np.ndarray  # d_out x r_y

    @classmethod
    def of(cls, instance: Instance, rtol: float = RANK_RTOL) -> "Whitened":
        centred = instance.targets - instance.targets.mean(axis=0)
        return cls(*_thin_svd(instance.inputs, rtol), *_thin_svd(centred, rtol))

    @property
    def r_x(self) -> int:
        return len(self.s_x)

    @property
    def r_y(self) -> int:
        return len(self.s_y)

    def memory(self, B: np.ndarray) -> np.ndarray:
        """W (d_out x d_in) whose centred score matrix is U_Y B U_X^T."""
        return (self.v_y / self.s_y) @ B @ (self.v_x / self.s_x).T


def _thin_svd(A: np.ndarray, rtol: float):
    """U, s, V of A = U diag(s) V^T, from the eigenvectors of the smaller Gram matrix.

    Measured on this machine at 1000 x 768: LAPACK's SVD 4.5 s, Gram plus
    eigh ('evr') 0.6 s. Eigenvalues carry ~1e-16 relative rounding, so a
    singular value counts only above max(rtol, GRAM_RTOL) s_max (GRAM_RTOL =
    1e-6); the arrays need not be exact, certify checks what they give.
    """
    n, d = A.shape
    wide = n < d
    values, vectors = sla.eigh(A @ A.T if wide else A.T @ A, driver="evr")
    values, vectors = values[::-1], vectors[:, ::-1]
    cut = max(rtol, GRAM_RTOL) ** 2 * max(values[0], np.finfo(float).tiny)
    keep = values > cut
    s = np.sqrt(values[keep])
    if wide:
        u = vectors[:, keep]
        return u, s, (A.T @ u) / s
    v = vectors[:, keep]
    return (A @ v) / s, s, v


class _LoggedBracket(CertifiedBracket):
    """The certified bracket, logging each offer and its recomputed bound (Evidence.steps)."""

    def __init__(self, instance: Instance):
        super().__init__(instance)
        self.steps: list[str] = []

    def offer_weights(self, W, by, scaled=None):
        value = super().offer_weights(W, by, scaled)
        self.steps.append(f"{by}: margin {'-' if value is None else f'{value:.3e}'}")
        return value

    def offer_certificate(self, certificate, by):
        value = super().offer_certificate(certificate, by)
        self.steps.append(f"{by}: certificate {'-' if value is None else f'{value:.3e}'}")
        return value


def worth_trying(instance: Instance) -> bool:
    """Whether fast_path is likely to pay for itself before the active set.

    Measured (coupled Gaussian, one near-critical probe each side, 2 cores):
    whole bisections at d = 16, 24, 32 take as long with it as without (the
    active set needs 0.2-3.5 s a probe there); at 48^2 and 64^2 it proves the
    feasible probes in 0.3-4.6 s against 60-150 s and costs under 8% on the
    infeasible ones; from 384^2 on it is the only option. The 106-fact,
    6-answer file (106 x 5 unknowns): 0.3 s against 2.5 s.
    """
    if instance.decoupled:
        return False
    unknowns = min(instance.n, instance.d_in) * min(instance.m - 1, instance.d_out)
    return unknowns >= FAST_PATH_MIN_UNKNOWNS


def fast_path(instance: Instance, margin: float = 0.0,
              tolerance: float = INFEASIBILITY_TOLERANCE,
              time_limit: float | None = None) -> Evidence:
    """Try the structured paths in order; stop at the first certified verdict.

    Returns Evidence whose verdict is UNDETERMINED when no path decided: the
    caller then runs the active set (the evidence's bounds still hold).
    """
    start = time.monotonic()
    deadline = None if time_limit is None else start + time_limit
    best = _LoggedBracket(instance)

    def decided():
        return best.verdict(margin, tolerance) != UNDETERMINED

    def finish():
        verdict = best.verdict(margin, tolerance)
        method = {FEASIBLE: best.lower_by, INFEASIBLE: best.upper_by}.get(verdict, "")
        return Evidence(verdict, method, best.lower, best.upper, time.monotonic() - start,
                        tuple(best.steps), best.weights, best.certificate)

    def out_of_time():
        return deadline is not None and time.monotonic() > deadline

    cert = certify.zero_constraint_certificate(instance)
    if cert is not None:
        best.offer_certificate(cert, "zero-constraint")
        if decided():
            return finish()
    if instance.decoupled:
        return finish()
    cert = parallel_conflict_certificate(instance)
    if cert is not None:
        best.offer_certificate(cert, "parallel-inputs")
        if decided():
            return finish()

    white = Whitened.of(instance)
    for method, W in ridge_memories(instance, white):
        best.offer_weights(W, method)
        if decided() or out_of_time():
            return finish()

    if white.r_x == instance.n:
        W, cert = split_by_target(instance, white, deadline)
        if W is not None:
            best.offer_weights(W, "vertex-lp")
        if cert is not None:
            best.offer_certificate(cert, "vertex-lp")
        if decided() or out_of_time():
            return finish()

    if white.r_y == instance.m - 1:
        A0 = _class_means(instance, white)
        A = softmax_separator(instance.assignment, white.u_x, None, A0, deadline)
        if A is not None:
            best.offer_weights(white.memory(white.u_y.T @ A), "multiclass-softmax")
            if decided() or out_of_time():
                return finish()
        W, cert = multiclass_lp(instance, white, A if A is not None else A0, deadline)
        if W is not None:
            best.offer_weights(W, "multiclass-lp")
        if cert is not None:
            best.offer_certificate(cert, "multiclass-lp")
        return finish()

    if white.r_x * white.r_y <= MAX_GENERAL_UNKNOWNS:
        B0 = white.u_y.T @ _class_means(instance, white)
        B = softmax_separator(instance.assignment, white.u_x, white.u_y, B0, deadline)
        if B is not None:
            best.offer_weights(white.memory(B), "softmax")
    return finish()


# -- 1. exact certificates ---------------------------------------------------------
def parallel_groups(inputs: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """Groups (two or more, each in file order; groups ordered by their first
    member) of `rows` whose inputs point the same way.

    Candidates by unit vectors rounded to PARALLEL_KEY_DECIMALS, then an exact
    cosine test against the group's first member (so rounding never joins two
    different directions). Zero inputs belong to no group.
    """
    norms = np.linalg.norm(inputs[rows], axis=1)
    rows = rows[norms > 0]
    if len(rows) < 2:
        return []
    unit = inputs[rows] / norms[norms > 0, None]
    _, label = np.unique(np.round(unit, PARALLEL_KEY_DECIMALS), axis=0, return_inverse=True)
    label = label.ravel()
    groups = []
    for value in np.flatnonzero(np.bincount(label) > 1):
        members = np.flatnonzero(label == value)
        same = 1.0 - unit[members] @ unit[members[0]] <= PARALLEL_EPS
        if same.sum() > 1:
            groups.append(np.sort(rows[members[same]]))
    return sorted(groups, key=lambda group: group[0])


def parallel_conflict_certificate(instance: Instance) -> FarkasCertificate | None:
    """Two facts whose inputs point the same way but whose targets differ.

    Constraints (i, t(k)) and (k, t(i)) are then opposite: a_{i,t(k)} =
    (y_t(i) - y_t(k)) x_i^T = -a_{k,t(i)} / c, so lambda = 1/2 on each sums to 0.
    The first such pair in file order: a group's first fact, and the first
    fact of its group with another answer.
    """
    assignment = instance.assignment
    for group in parallel_groups(instance.inputs, np.arange(instance.n)):
        i = group[0]
        others = group[assignment[group] != assignment[i]]
        if len(others):
            k = others[0]
            return FarkasCertificate(np.array([i, k]), np.array([assignment[k], assignment[i]]),
                                     np.array([0.5, 0.5]))
    return None


# -- 2. closed-form memories -----------------------------------------------------
def _class_means(instance: Instance, white: Whitened) -> np.ndarray:
    """E U_X: per target, the sum of the whitened inputs assigned to it (m x r_x)."""
    sums = np.zeros((instance.m, white.r_x))
    np.add.at(sums, instance.assignment, white.u_x)
    return sums


def _ridge(s: np.ndarray, fraction: float) -> np.ndarray:
    """s f(s) for f(s) = s / (s^2 + (fraction s_max)^2); inf -> s^2 (Hebbian)."""
    if np.isinf(fraction):
        return s**2 / s[0] ** 2
    return s**2 / (s**2 + (fraction * s[0]) ** 2)


def ridge_memories(instance: Instance, white: Whitened):
    """Yield (name, W) along the ridge family, pseudo-inverse first (module doc, 2)."""
    K = white.u_y.T @ _class_means(instance, white)  # U_Y^T E U_X
    for a, b in RIDGE_GRID:
        B = _ridge(white.s_y, a)[:, None] * K * _ridge(white.s_x, b)[None, :]
        yield f"ridge(a={a:g},b={b:g})", white.memory(B)


# -- 3. inputs linearly independent: one LP per target --------------------------------
def _separating_lp(G: np.ndarray):
    """max tau s.t. G c >= tau (rows of G unit), |c|_inf <= 1, tau <= 1.

    Returns (c, tau, lam): lam >= 0 sums to 1 on the rows with
    ||G^T lam||_1 = tau when tau < 1 (the LP dual), so tau ~ 0 makes lam a
    certificate that no c separates.
    """
    K, r = G.shape
    cost = np.zeros(r + 1)
    cost[-1] = -1.0
    A_ub = np.hstack([-G, np.ones((K, 1))])
    bounds = [(-1.0, 1.0)] * r + [(None, 1.0)]
    result = opt.linprog(cost, A_ub=A_ub, b_ub=np.zeros(K), bounds=bounds, method="highs")
    if result.status != 0:
        return None, None, None
    lam = np.clip(-np.asarray(result.ineqlin.marginals), 0.0, None)
    total = lam.sum()
    return result.x[:r], float(result.x[-1]), (lam / total if total > 0 else None)


def _polish(vectors: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Minimum-norm point of the hull of the support of lam (rows of `vectors`).

    min ||vectors^T mu||, mu >= 0, sum mu = 1, by NNLS with a heavy row for the
    sum: drives the LP's ~1e-9 dual residual to rounding level.
    """
    support = np.flatnonzero(lam > 0)
    V = vectors[support].T
    heavy = NNLS_SUM_WEIGHT * max(1.0, float(np.abs(V).max()))
    mu, _ = opt.nnls(np.vstack([V, heavy * np.ones((1, len(support)))]),
                     np.r_[np.zeros(V.shape[0]), heavy])
    out = np.zeros_like(lam)
    if mu.sum() > 0:
        out[support] = mu / mu.sum()
        if np.linalg.norm(V @ mu / mu.sum()) < np.linalg.norm(V @ lam[support]):
            return out
    return lam


def split_by_target(instance: Instance, white: Whitened, deadline: float | None = None):
    """Step 3: inputs independent, so column i of S = U_Y C is free per input.

    Returns (W, certificate): W when every used target is separable, else a
    certificate from the first target that is not (either may be None).
    """
    U = white.u_y
    columns = np.zeros((white.r_y, instance.m))
    for t in np.unique(instance.assignment):
        if deadline is not None and time.monotonic() > deadline:
            return None, None
        others = np.flatnonzero(np.arange(instance.m) != t)
        diff = U[t] - U[others]
        length = np.linalg.norm(diff, axis=1)
        if np.any(length == 0):
            return None, None  # a duplicate target: step 1 has its certificate
        G = diff / length[:, None]
        direct = U[t] / max(np.linalg.norm(U[t]), np.finfo(float).tiny)
        if np.all(G @ direct > 0):  # S column = U U_t: maximal at t (leverage)
            columns[:, t] = direct
            continue
        c, tau, lam = _separating_lp(G)
        if c is None:
            return None, None
        if tau > LP_ZERO:
            columns[:, t] = c
            continue
        if lam is None:
            return None, None
        lam = _polish(G, lam)
        i = int(np.flatnonzero(instance.assignment == t)[0])
        # sum lam_j G_j = 0 in whitened coordinates is sum (lam_j/len_j) a_ij = 0
        weights = lam / length
        weights = weights * instance.constraint_norms()[i, others]
        keep = weights > 0
        return None, FarkasCertificate(np.full(int(keep.sum()), i), others[keep],
                                       weights[keep] / weights[keep].sum())
    C = columns[:, instance.assignment]  # r_y x n
    return white.memory(C @ white.u_x), None  # U_X square: B U_X^T = C


# -- 4. targets affinely independent: multiclass separation ----------------------------
def _margins_by_column(S: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """S[t(i), i] - max_{j != t(i)} S[j, i] for each column i."""
    cols = np.arange(S.shape[1])
    own = S[assignment, cols].copy()
    S = S.copy()
    S[assignment, cols] = -np.inf
    return own - S.max(axis=0)


def softmax_separator(assignment, u_x, u_y, P0, deadline=None):
    """Minimise the softmax cross-entropy of S = [U_Y] P U_X^T over P by L-BFGS.

    u_y None: S = P U_X^T (P = A, multiclass); else S = U_Y P U_X^T (P = B).
    Returns the first iterate whose every column is strictly maximal at t(i)
    (checked again in original coordinates by the caller), or None.
    """
    n = u_x.shape[0]
    shape = P0.shape
    cols = np.arange(n)

    def scores(P):
        S = P @ u_x.T
        return S if u_y is None else u_y @ S

    def loss(flat):
        P = flat.reshape(shape)
        S = scores(P)
        S = S - S.max(axis=0)
        expS = np.exp(S)
        total = expS.sum(axis=0)
        value = float(np.sum(np.log(total) - S[assignment, cols])) / n
        G = expS / total
        G[assignment, cols] -= 1.0
        G /= n
        if u_y is not None:
            G = u_y.T @ G
        return value, (G @ u_x).ravel()

    # small products: threaded OpenBLAS is 10-40x slower on a loaded machine
    small = n * (P0.shape[0] if u_y is None else u_y.shape[0]) < SMALL_SCORES
    with threadpool_limits(1, user_api="blas") if small else contextlib.nullcontext():
        return _minimise_softmax(loss, scores, P0, assignment, deadline)


def _minimise_softmax(loss, scores, P0, assignment, deadline):
    """L-BFGS in chunks from P0 (the class-mean direction), scaled so the softmax
    is not flat; stops at the first separating iterate, or when stalled."""
    shape = P0.shape
    S0 = scores(P0)
    spread = float(np.std(S0)) or 1.0
    x = (P0 / spread).ravel()
    previous = np.inf
    for _ in range(SOFTMAX_CHUNKS):
        P = x.reshape(shape)
        if np.all(_margins_by_column(scores(P), assignment) > 0):
            return P
        if deadline is not None and time.monotonic() > deadline:
            return None
        result = opt.minimize(loss, x, jac=True, method="L-BFGS-B",
                              options={"maxiter": SOFTMAX_CHUNK, "gtol": SOFTMAX_GTOL,
                                       "ftol": SOFTMAX_FTOL})
        # converged or stalled: on separable facts the loss keeps falling towards 0
        stalled = previous - result.fun < SOFTMAX_STALL * max(1.0, abs(result.fun))
        x, previous = result.x, float(result.fun)
        if result.nit < SOFTMAX_CHUNK or stalled:
            break
    P = x.reshape(shape)
    return P if np.all(_margins_by_column(scores(P), assignment) > 0) else None


def _multiclass_rows(u_x, assignment, rows, slots, m):
    """Sparse LP rows g_k = (e_t - e_j) (x) u_i / ||.|| over vec(A) (C order)."""
    r = u_x.shape[1]
    x = u_x[rows]
    scale = 1.0 / (np.sqrt(2.0) * np.maximum(np.linalg.norm(x, axis=1), np.finfo(float).tiny))
    K = len(rows)
    t = assignment[rows]
    data = np.concatenate([x * scale[:, None], -x * scale[:, None]], axis=1)
    cols = np.concatenate([t[:, None] * r + np.arange(r), slots[:, None] * r + np.arange(r)],
                          axis=1)
    return sp.csr_matrix((data.ravel(), (np.repeat(np.arange(K), 2 * r), cols.ravel())),
                         shape=(K, m * r)), scale


def multiclass_lp(instance: Instance, white: Whitened, A_start: np.ndarray, deadline=None):
    """Step 4's LP on an active set: max tau s.t. (A_t(i) - A_j) u_i / nu >= tau,
    |A|_inf <= 1, tau <= 1. Returns (W, certificate), either may be None."""

    m, r, n = instance.m, white.r_x, instance.n
    u_x, assignment = white.u_x, instance.assignment
    mask = instance.slot_mask()

    def margins(A):
        return np.where(mask, (A @ u_x.T)[assignment, np.arange(n)][:, None] - (u_x @ A.T), np.inf)

    active = smallest_per_row(margins(A_start), LP_INITIAL_PER_INPUT, mask)
    for _ in range(LP_MAX_ROUNDS):
        if deadline is not None and time.monotonic() > deadline:
            return None, None
        rows, slots = np.nonzero(active)
        G, scale = _multiclass_rows(u_x, assignment, rows, slots, m)
        K = len(rows)
        cost = np.zeros(m * r + 1)
        cost[-1] = -1.0
        A_ub = sp.hstack([-G, sp.csr_matrix(np.ones((K, 1)))], format="csr")
        bounds = [(-1.0, 1.0)] * (m * r) + [(None, 1.0)]
        # one HiGHS solve is not interruptible from Python (not even by SIGTERM):
        # bound it, so that the fast path stays fast and leaves the rest to the active set
        left = LP_SECONDS if deadline is None else min(LP_SECONDS, deadline - time.monotonic())
        result = opt.linprog(cost, A_ub=A_ub, b_ub=np.zeros(K), bounds=bounds, method="highs",
                             options={"time_limit": max(LP_MIN_SECONDS, left)})
        if result.status != 0:
            return None, None
        A, tau = result.x[:-1].reshape(m, r), float(result.x[-1])
        if tau <= LP_ZERO:
            lam = np.clip(-np.asarray(result.ineqlin.marginals), 0.0, None)
            if lam.sum() <= 0:
                return None, None
            lam = lam / lam.sum()
            support = np.flatnonzero(lam > 0)
            dense = G[support].toarray()
            sub = np.zeros(len(support))
            sub[:] = lam[support]
            sub = _polish(dense, sub)
            # sum lam_k g_k = 0 in whitened coordinates -> sum (lam_k scale_k) a_k = 0
            rs, ss = rows[support], slots[support]
            weights = sub * scale[support] * instance.constraint_norms()[rs, ss]
            keep = weights > 0
            return None, FarkasCertificate(rs[keep], ss[keep], weights[keep] / weights[keep].sum())
        current = margins(A)
        violated = (current <= 0) & mask & ~active
        if not violated.any():
            return white.memory(white.u_y.T @ A), None
        active |= smallest_per_row(current, LP_ADDED_PER_INPUT, violated)
    return None, None

