"""A cheap approximate max-margin memory over all constraints: where the active
set starts when nothing better is known.

kappa* = min over the simplex of ||sum_ij lam_ij a_ij / ||a_ij|| ||_F (the dual
of the max-margin program), and the W = sum lam a_hat of a near-optimal lam has
the binding constraints among its tightest. Entropic mirror descent on that
simplex needs one adjoint and one margin pass per step (~4 n n_slots d flops,
no solver), and is run on every constraint, where the active set sees only its
share: the Hebbian memory's tightest constraints miss binding ones, and each
round that adds them restarts the IPM (coupled d = 96 seed 3, p = 1125: 5 rounds
from the Hebbian memory, 1 round and 176 s from this one after 300 steps, 20 s).
"""

from __future__ import annotations

import logging

import numpy as np

from feasibility.core.instances import Instance
from feasibility.solvers.selection import smallest_per_row

#: steps of mirror descent; the seed only needs the tightest constraints right,
#: not kappa* (which the IPM brackets)
MIRROR_STEPS = 300
#: the step is eta_t = MIRROR_STEP_SCALE sqrt(d_in d_out) / (||W_t|| sqrt(t + 1)):
#: normalised margins spread over ~1 / sqrt(d_in d_out) near the optimum, and
#: steps much past that oscillate. Share of the binding constraints among each
#: input's tightest (coupled, seed 0): d = 64, 40 per input, 99.98% at 0.31,
#: 50-58% at 0.47, 26-31% at 0.78; d = 96, 60 per input, 98.9% at 0.1, 99.98%
#: at 0.2, 100% at 0.3; the Hebbian memory's: 73% and 80%
MIRROR_STEP_SCALE = 0.2

#: a record per step, at DEBUG (at d = 192 the descent over 13 million
#: constraints takes minutes before the IPM starts: capacity's heartbeat shows it)
step_log = logging.getLogger(__name__)


def mirror_descent_memory(instance: Instance, steps: int = MIRROR_STEPS,
                          step_scale: float = MIRROR_STEP_SCALE) -> np.ndarray | None:
    """The d_out x d_in memory W = sum_ij lam_ij a_ij / ||a_ij|| of the mirror
    descent's iterate with the largest normalised min margin, or None where every
    constraint is zero (no direction to combine).

    Not certified, and not meant to be: the caller recomputes its margins like
    any other memory's and uses its tightest constraints as an active set.
    """
    norms = instance.constraint_norms()
    live = instance.slot_mask() & (norms > 0)
    if not live.any():
        return None
    inverse = np.zeros_like(norms)
    inverse[live] = 1.0 / norms[live]
    # log-weights, so that no constraint's weight underflows for good
    log_lam = np.where(live, 0.0, -np.inf)
    scale = step_scale * np.sqrt(instance.d_in * instance.d_out)
    best, best_kappa = None, -np.inf
    for step in range(steps):
        lam = np.exp(log_lam - log_lam.max())
        W = instance.combination(lam * (inverse / lam.sum()))
        norm = float(np.linalg.norm(W))
        if norm == 0.0:
            break
        # the gradient of ||W||^2 / 2 in lam: each constraint's normalised margin
        own, scores = instance.scores(W)
        gradient = (own[:, None] - scores) * inverse
        kappa = float(gradient[live].min()) / norm
        if kappa > best_kappa:
            best, best_kappa = W, kappa
        if step_log.isEnabledFor(logging.DEBUG):
            step_log.debug("p=%d: mirror descent step %d of %d, best normalised margin %.3e",
                           instance.n, step + 1, steps, best_kappa)
        log_lam -= (scale / (norm * np.sqrt(step + 1.0))) * gradient
    return best


def tightest_competitors(instance: Instance, margins: np.ndarray, per_input: int) -> Instance:
    """The decoupled instance restricted to each input's `per_input` competitors
    of smallest `margins` (n x n_slots), stored: a descent over drawn competitors
    would draw them all twice a step (decoupled d = 192: ~80 s a pass)."""
    # every slot of a decoupled instance is a constraint: each row keeps as many
    rows, slots = np.nonzero(smallest_per_row(margins, per_input, instance.slot_mask()))
    competitors = np.asarray(instance.competitors[rows, slots]).reshape(
        instance.n, -1, instance.d_out)
    return Instance(instance.inputs, instance.targets, instance.assignment,
                    competitors=competitors)
