"""cvxpy models on a set of constraints, in reduced and lifted coordinates.

Scores depend on W only between span(inputs) and span(targets, competitors):
W = Q_Y M Q_X^T with orthonormal bases loses nothing, and ||W||_F = ||M||_F.
Each input's scores then depend on z_i = M x~_i only, so the model lifts
Z = X~ M^T as its own variable: constraint k of input i touches z_i alone, a
sparse row of r_Y entries instead of a dense row of r_Y r_X.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from feasibility.core.instances import Instance
from feasibility.core.tolerances import RANK_RTOL

PROGRAMS = ("socp", "lp")
#: row_space_basis accumulates A^T A over blocks of this many rows, so that the
#: products it forms stay bounded however many rows (constraints) A has
GRAM_BLOCK_ROWS = 65536


def row_space_basis(A: np.ndarray, rtol: float = RANK_RTOL) -> np.ndarray | None:
    """Orthonormal basis (columns) of the span of the rows of A; None if full."""
    N, d = A.shape
    if N >= d:
        return _gram_basis([A], d, rtol)
    _, s, vt = np.linalg.svd(A, full_matrices=False)
    keep = s > rtol * max(s.max(), np.finfo(float).tiny)
    return vt[keep].T


def _gram_basis(blocks, d: int, rtol: float) -> np.ndarray | None:
    """row_space_basis from the eigenvectors of A^T A, summed over row blocks of A."""
    gram = np.zeros((d, d))
    for A in blocks:
        for start in range(0, len(A), GRAM_BLOCK_ROWS):  # bounded memory for many rows
            block = A[start:start + GRAM_BLOCK_ROWS]
            gram += block.T @ block
    values, vectors = np.linalg.eigh(gram)
    keep = values > (rtol**2) * max(values.max(), np.finfo(float).tiny)
    if keep.all():
        return None
    return vectors[:, keep]


def _scored_span_basis(instance: Instance) -> np.ndarray | None:
    """row_space_basis of a decoupled instance's targets and competitors together."""
    if instance.m + instance.n * instance.n_slots < instance.d_out:
        return row_space_basis(np.concatenate(
            [instance.targets, np.asarray(instance.competitors).reshape(-1, instance.d_out)]))
    # never joined into one array (the competitors may be DrawnCompetitors)
    blocks = (block.reshape(-1, instance.d_out) for _, block in instance.competitor_blocks())
    return _gram_basis(itertools.chain([instance.targets], blocks), instance.d_out, RANK_RTOL)


@dataclass(frozen=True, eq=False)
class ReducedInstance:
    """An instance expressed in orthonormal bases of its input and target spans."""

    instance: Instance
    basis_in: np.ndarray | None   # d_in x r_in, None = identity
    basis_out: np.ndarray | None  # d_out x r_out, None = identity
    inputs: np.ndarray = field(repr=False)  # n x r_in

    @classmethod
    def of(cls, instance: Instance) -> "ReducedInstance":
        basis_in = row_space_basis(instance.inputs)
        basis_out = row_space_basis(instance.targets)
        # decoupled competitors widen the targets' span, unless that holds every
        # direction already: they are not read then (decoupled d = 192: a pass
        # that draws them all, ~3 min a probe)
        if instance.decoupled and basis_out is not None:
            basis_out = _scored_span_basis(instance)
        inputs = instance.inputs if basis_in is None else instance.inputs @ basis_in
        return cls(instance, basis_in, basis_out, inputs)

    @property
    def r_in(self) -> int:
        return self.inputs.shape[1]

    @property
    def r_out(self) -> int:
        return self.instance.d_out if self.basis_out is None else self.basis_out.shape[1]

    def directions(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Reduced u_k / ||a_k||_F for constraints (rows, slots); zero rows stay zero."""
        u = self.instance.differences(rows, slots)
        norms = self.instance.constraint_norms()[rows, slots]
        u /= np.where(norms > 0, norms, 1.0)[:, None]  # u is differences' own array
        return u if self.basis_out is None else u @ self.basis_out

    def memory(self, M: np.ndarray) -> np.ndarray:
        """W = Q_Y M Q_X^T in the original coordinates."""
        W = M if self.basis_out is None else self.basis_out @ M
        return W if self.basis_in is None else W @ self.basis_in.T


@dataclass(eq=False)
class RestrictedProgram:
    """A cvxpy problem over the constraints (rows[k], slots[k]) only."""

    kind: str
    problem: cp.Problem
    M: cp.Variable
    margin_constraint: cp.Constraint
    kappa: cp.Variable | None
    rows: np.ndarray
    slots: np.ndarray


def restricted_program(reduced: ReducedInstance, rows: np.ndarray, slots: np.ndarray,
                       kind: str = "socp") -> RestrictedProgram:
    """Build the max-margin SOCP or the separation LP on the given constraints.

    socp: maximise kappa s.t. <a_k/||a_k||, W> >= kappa, ||W||_F <= 1; its
          optimum is kappa* of the restricted set, the duals of the margin
          constraints a certificate lambda (they sum to 1).
    lp:   find W with <a_k/||a_k||, W> >= 1 (W free): feasible iff kappa* > 0;
          when infeasible the duals are a Farkas ray.
    """
    if kind not in PROGRAMS:
        raise ValueError(f"unknown program {kind!r}")
    used, local = np.unique(rows, return_inverse=True)
    g = reduced.directions(rows, slots)
    K, r = g.shape
    n_used = len(used)
    # vec(Z) in column-major order: entry (i, l) sits at l * n_used + i
    G = sp.csr_matrix((g.ravel(), (np.repeat(np.arange(K), r),
                                   (np.arange(r)[None, :] * n_used + local[:, None]).ravel())),
                      shape=(K, n_used * r))
    M = cp.Variable((r, reduced.r_in), name="M")
    Z = cp.Variable((n_used, r), name="Z")
    lifted = Z == reduced.inputs[used] @ M.T
    scores = G @ cp.vec(Z, order="F")
    if kind == "socp":
        kappa = cp.Variable(name="kappa")
        margin = scores >= kappa
        problem = cp.Problem(cp.Maximize(kappa), [lifted, margin, cp.norm(M, "fro") <= 1])
    else:
        kappa = None
        margin = scores >= 1
        problem = cp.Problem(cp.Minimize(0), [lifted, margin])
    return RestrictedProgram(kind, problem, M, margin, kappa, np.asarray(rows), np.asarray(slots))


def dense_lp(instance: Instance) -> tuple[cp.Problem, cp.Variable, cp.Constraint]:
    """The naive model, kept as the benchmark baseline: one dense row over
    vec(W) per constraint, p^2 d^2 coefficients, all margins >= 1."""
    rows, slots = np.nonzero(instance.slot_mask())
    u = instance.differences(rows, slots)
    A = (u[:, :, None] * instance.inputs[rows][:, None, :]).reshape(len(rows), -1)
    w = cp.Variable(instance.d_out * instance.d_in, name="vecW")
    constraint = A @ w >= 1
    return cp.Problem(cp.Minimize(0), [constraint]), w, constraint
