"""Independent checks of a memory W and of a Farkas certificate, in plain numpy.

Nothing here trusts a solver (numpy and scipy.sparse only): a lower bound on the max-margin kappa* is the
normalised margin of a concrete W, recomputed over *all* constraints; an upper
bound is the norm of a convex combination of normalised constraints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from feasibility.core.instances import Instance
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE, MARGIN_FLOOR

FEASIBLE, INFEASIBLE, UNDETERMINED = "feasible", "infeasible", "undetermined"
VERDICTS = (FEASIBLE, INFEASIBLE, UNDETERMINED)


def scaled_margins(instance: Instance, W: np.ndarray) -> np.ndarray:
    """n x n_slots matrix of <a_ij, W> / ||a_ij||_F (not divided by ||W||_F).

    +inf where (i, slot) is not a constraint; 0 for a zero constraint a_ij = 0
    (duplicate targets, a zero input), which no W can make positive.
    """
    raw = instance.raw_margins(np.asarray(W, dtype=np.float64))
    norms = instance.constraint_norms()
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(norms > 0, raw / np.where(norms > 0, norms, 1.0), 0.0)
    scaled[~instance.slot_mask()] = np.inf
    return scaled


def margin_lower_bound(instance: Instance, W: np.ndarray | None,
                       scaled: np.ndarray | None = None) -> float | None:
    """The normalised margin min_ij <a_ij, W> / (||a_ij|| ||W||): kappa* >= it.

    ``scaled``: scaled_margins(instance, W) if the caller has it already.
    """
    if W is None:
        return None
    W = np.asarray(W, dtype=np.float64)
    if W.shape != (instance.d_out, instance.d_in) or not np.all(np.isfinite(W)):
        return None
    norm = np.linalg.norm(W)
    if norm == 0:
        return None
    if scaled is None:
        scaled = scaled_margins(instance, W)
    return float(scaled.min() / norm)


@dataclass(frozen=True, eq=False)
class FarkasCertificate:
    """Weights lambda >= 0 on constraints (rows[k], slots[k]), summing to 1."""

    rows: np.ndarray
    slots: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_duals(cls, rows, slots, duals) -> "FarkasCertificate | None":
        duals = np.clip(np.asarray(duals, dtype=np.float64).ravel(), 0.0, None)
        total = duals.sum()
        if not np.isfinite(total) or total <= 0:
            return None
        keep = duals > 0
        return cls(np.asarray(rows)[keep], np.asarray(slots)[keep], duals[keep] / total)


def margin_upper_bound(instance: Instance, certificate: FarkasCertificate | None) -> float | None:
    """||sum_k lambda_k a_k/||a_k|| ||_F: kappa* <= it for any lambda in the simplex.

    Computed as ||V^T Xhat||_F with V_i = sum_k lambda_k u_k/||u_k|| over the
    constraints of input i and Xhat the unit-norm inputs.
    """
    if certificate is None or len(certificate.weights) == 0:
        return None
    rows, slots, lam = certificate.rows, certificate.slots, certificate.weights
    if np.any(lam < 0) or not np.isclose(lam.sum(), 1.0, rtol=0, atol=1e-12):
        return None
    if not instance.slot_mask()[rows, slots].all():
        return None
    u = instance.differences(rows, slots)
    u_norm = np.linalg.norm(u, axis=1)
    x_norm = np.linalg.norm(instance.inputs, axis=1)
    # a zero constraint contributes the zero matrix
    ok = (u_norm > 0) & (x_norm[rows] > 0)
    group = sp.csr_matrix((lam[ok] / u_norm[ok], (rows[ok], np.flatnonzero(ok))),
                          shape=(instance.n, len(rows)))
    V = group @ u
    x_hat = instance.inputs / np.where(x_norm > 0, x_norm, 1.0)[:, None]
    return float(np.linalg.norm(V.T @ x_hat))


def zero_constraint_certificate(instance: Instance) -> FarkasCertificate | None:
    """A one-point certificate when some a_ij = 0 (duplicate target, zero input)."""
    norms = np.where(instance.slot_mask(), instance.constraint_norms(), np.inf)
    rows, slots = np.nonzero(norms == 0)
    if len(rows) == 0:
        return None
    return FarkasCertificate(rows[:1], slots[:1], np.ones(1))


def classify(lower: float | None, upper: float | None, margin: float = 0.0,
             tolerance: float = INFEASIBILITY_TOLERANCE) -> str:
    """The verdict that a bracket [lower, upper] on kappa* proves at this margin.

    feasible: some W reaches normalised margin >= margin (and > MARGIN_FLOOR);
    infeasible: no W exceeds margin + tolerance; otherwise undetermined.
    """
    if lower is not None and lower >= margin and lower > MARGIN_FLOOR:
        return FEASIBLE
    if upper is not None and upper <= margin + tolerance:
        return INFEASIBLE
    return UNDETERMINED
