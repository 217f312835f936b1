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
from feasibility.core.status import Verdict
from feasibility.core.tolerances import (
    CERTIFICATE_SUM_ATOL,
    INFEASIBILITY_TOLERANCE,
    MARGIN_FLOOR,
)

FEASIBLE, INFEASIBLE, UNDETERMINED = Verdict.FEASIBLE, Verdict.INFEASIBLE, Verdict.UNDETERMINED
VERDICTS = tuple(Verdict)
#: a recomputed bound must match the recorded one this closely (relative): both
#: come from the same float64 formulas, so only a changed W, certificate or
#: bound leaves more than rounding between them
RECOMPUTE_RTOL = 1e-9


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


def weights_on_simplex(weights: np.ndarray) -> bool:
    """lambda >= 0 and sum(lambda) = 1 (to CERTIFICATE_SUM_ATOL): the only
    weights for which ||sum lambda a_hat|| bounds kappa*."""
    weights = np.asarray(weights, dtype=np.float64)
    return bool(np.all(np.isfinite(weights)) and np.all(weights >= 0)
                and np.isclose(weights.sum(), 1.0, rtol=0, atol=CERTIFICATE_SUM_ATOL))


def on_constraints(instance: Instance, rows: np.ndarray, slots: np.ndarray) -> bool:
    """Every (rows[k], slots[k]) is a constraint: in range and not an input's
    own target (whose a_ii = 0 would make any bound 0)."""
    rows, slots = np.asarray(rows), np.asarray(slots)
    if rows.shape != slots.shape or rows.ndim != 1:
        return False
    if not (np.issubdtype(rows.dtype, np.integer) and np.issubdtype(slots.dtype, np.integer)):
        return False
    if np.any(rows < 0) or np.any(rows >= instance.n) or np.any(slots < 0) \
            or np.any(slots >= instance.n_slots):
        return False
    # the pairs alone, without the n x n_slots mask: this runs at every offer
    return bool(instance.decoupled or np.all(slots != instance.assignment[rows]))


def margin_upper_bound(instance: Instance, certificate: FarkasCertificate | None) -> float | None:
    """||sum_k lambda_k a_k/||a_k|| ||_F: kappa* <= it for any lambda in the simplex.

    Computed as ||V^T Xhat||_F with V_i = sum_k lambda_k u_k/||u_k|| over the
    constraints of input i and Xhat the unit-norm inputs.
    """
    if certificate is None or len(certificate.weights) == 0:
        return None
    rows, slots, lam = certificate.rows, certificate.slots, certificate.weights
    if not weights_on_simplex(lam):
        return None
    if not on_constraints(instance, rows, slots):
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
             tolerance: float = INFEASIBILITY_TOLERANCE) -> Verdict:
    """The verdict that a bracket [lower, upper] on kappa* proves at this margin.

    feasible: some W reaches normalised margin >= margin (and > MARGIN_FLOOR);
    infeasible: no W exceeds margin + tolerance; otherwise undetermined.
    """
    if lower is not None and lower >= margin and lower > MARGIN_FLOOR:
        return FEASIBLE
    if upper is not None and upper <= margin + tolerance:
        return INFEASIBLE
    return UNDETERMINED


class CertifiedBracket:
    """The best certified bounds on kappa* so far, each with its evidence.

    Solvers offer a W or a certificate; the bracket recomputes its bound here
    (never trusting the offerer's number) and keeps it only if it tightens the
    bracket. ``lower_by`` / ``upper_by`` name who supplied the kept evidence.
    Subclasses change only the two bound functions (science.topk bounds a
    different kappa with the same record).
    """

    def __init__(self, instance: Instance):
        self.instance = instance
        self.lower: float | None = None
        self.upper: float | None = None
        self.weights: np.ndarray | None = None
        self.certificate = None
        self.lower_by = ""
        self.upper_by = ""

    def lower_bound(self, W, scaled: np.ndarray | None = None) -> float | None:
        return margin_lower_bound(self.instance, W, scaled)

    def upper_bound(self, certificate) -> float | None:
        return margin_upper_bound(self.instance, certificate)

    def offer_weights(self, W, by: str, scaled: np.ndarray | None = None) -> float | None:
        """Recompute W's lower bound; keep W if it is the best so far. Returns the bound."""
        value = self.lower_bound(W, scaled)
        if value is not None and (self.lower is None or value > self.lower):
            self.lower, self.weights, self.lower_by = value, W, by
        return value

    def offer_certificate(self, certificate, by: str) -> float | None:
        """Recompute the certificate's upper bound; keep it if it is the best so far."""
        value = self.upper_bound(certificate)
        if value is not None and (self.upper is None or value < self.upper):
            self.upper, self.certificate, self.upper_by = value, certificate, by
        return value

    def verdict(self, margin: float = 0.0,
                tolerance: float = INFEASIBILITY_TOLERANCE) -> Verdict:
        return classify(self.lower, self.upper, margin, tolerance)


def _same_bound(recomputed: float | None, recorded: float | None) -> bool:
    if recomputed is None or recorded is None:
        return recomputed is None and recorded is None
    return bool(np.isclose(recomputed, recorded, rtol=RECOMPUTE_RTOL, atol=0.0))


def evidence_problems(instance: Instance, verdict, margin_lower: float | None,
                      margin_upper: float | None, weights: np.ndarray | None,
                      certificate: FarkasCertificate | None, margin: float,
                      tolerance: float) -> list[str]:
    """What is wrong with a recorded verdict and its evidence (empty: nothing).

    Recomputes, in numpy, the normalised margin of ``weights`` over all
    constraints and the bound of ``certificate`` (whose weights must lie on
    the simplex and sit on constraints), checks that each matches the bound
    recorded beside it, and that ``verdict`` is what classify says of them.
    """
    problems = []
    if verdict not in VERDICTS:
        problems.append(f"unknown verdict {verdict!r}")
    lower = margin_lower_bound(instance, weights) if weights is not None else None
    if weights is not None and lower is None:
        problems.append("W is not a usable memory (shape, NaN/inf or zero)")
    if not _same_bound(lower, margin_lower):
        problems.append(f"recorded lower bound {margin_lower} but W gives {lower}")
    upper = margin_upper_bound(instance, certificate) if certificate is not None else None
    if certificate is not None and upper is None:
        problems.append("certificate is malformed (weights off the simplex or "
                        "pairs that are no constraint)")
    if not _same_bound(upper, margin_upper):
        problems.append(f"recorded upper bound {margin_upper} but the certificate gives {upper}")
    follows = classify(lower, upper, margin, tolerance)
    if follows != verdict:
        problems.append(f"verdict {verdict!r} does not follow from the evidence ({follows})")
    return problems
