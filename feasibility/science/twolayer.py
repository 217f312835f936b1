"""Linear two-layer memories W = B A with hidden width h (A: h x d_in, B: d_out x h).

Frozen A (certified). With A fixed the scores y^T B (A x) are the one-layer
problem on the inputs A x_i, so the verdict is the core's certified verdict on
that instance (``frozen_instance``), and its W = B A is checked like any other.

Trained A and B (heuristic). rank(B A) <= h is not a convex constraint.
``train`` alternates two convex problems, each a linear program in one factor:
minimise the hinge loss sum_k max(0, 1 - <a_k/||a_k||, B A>) over B (A fixed),
then over A (B fixed), starting from the rank-h truncation of a separating
one-layer W. Every step lowers the same loss. The outcome is certified only
one way: "feasible" when the product B A, recomputed in numpy over all
constraints, separates the facts (certify.margin_lower_bound > floor).
An "infeasible" claim comes only from the full-rank relaxation: if no d x d
W separates the facts (the core's Farkas certificate), no B A does. When the
alternation fails and the relaxation is feasible the verdict is
"undetermined": the heuristic's failure proves nothing.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from feasibility.capacity import batch
from feasibility.capacity.bisection import capacity_bisection, capacity_guess
from feasibility.core import certify
from feasibility.core.certify import FEASIBLE, INFEASIBLE, UNDETERMINED
from feasibility.core.errors import InputError
from feasibility.core.instances import TWOLAYER_STREAM, Instance, check_family, generate
from feasibility.core.status import CapacityStatus
from feasibility.core.tolerances import MARGIN_FLOOR
from feasibility.solvers.active_set import decide
from feasibility.solvers.console import solver_output_to_stderr

#: alternating rounds (one B step and one A step each) before giving up
TRAIN_ROUNDS = 12
#: stop when a round lowers the hinge loss by less than this fraction
TRAIN_RTOL = 1e-4


def random_first_layer(d_in: int, h: int, seed: int) -> np.ndarray:
    """A frozen first layer: h x d_in with N(0, 1/d_in) entries, from
    ``default_rng([seed, TWOLAYER_STREAM, d_in, h])`` (a stream the instances
    never use; see core.instances for the table of streams)."""
    if h < 1:
        raise InputError(f"hidden width h must be >= 1, got {h}")
    rng = np.random.default_rng([int(seed), TWOLAYER_STREAM, int(d_in), int(h)])
    return rng.standard_normal((h, d_in)) / math.sqrt(d_in)


def frozen_instance(instance: Instance, A: np.ndarray) -> Instance:
    """The one-layer instance whose memories are the second layers B: inputs A x_i."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[1] != instance.d_in:
        raise InputError(f"first layer must be h x {instance.d_in}, got shape {A.shape}")
    return Instance(instance.inputs @ A.T, instance.targets, instance.assignment,
                    instance.competitors, name=f"{instance.name}-frozen-h{A.shape[0]}")


def decide_frozen(instance: Instance, A: np.ndarray, **kwargs):
    """Certified verdict for W = B A with A fixed; returns (decision, W or None).

    W = B A is re-checked on the original instance: a separating B gives a
    separating W (the scores are the same numbers)."""

    decision = decide(frozen_instance(instance, A), **kwargs)
    W = None
    if decision.verdict == FEASIBLE:
        W = decision.weights @ np.asarray(A, dtype=float)
    return decision, W


# -- trained A and B: alternating convex solves ------------------------------------------
def _hinge_step(instance: Instance, left: np.ndarray | None, right: np.ndarray | None,
                shape: tuple[int, int]):
    """Minimise sum_k max(0, 1 - <a_k/||a_k||, L M R>) over M (an LP).

    For the B step L = I, R = A (M = B); for the A step L = B, R = I (M = A).
    Constraint k of input i: (u_k/||a_k||)^T L M R x_i, lifted through
    z_i = M (R x_i) so that each row touches r entries only.
    """
    rows, slots = np.nonzero(instance.slot_mask())
    norms = instance.constraint_norms()[rows, slots]
    keep = norms > 0
    rows, slots, norms = rows[keep], slots[keep], norms[keep]
    u = instance.differences(rows, slots) / norms[:, None]          # K x d_out
    g = u if left is None else u @ left                              # K x r_out
    inputs = instance.inputs if right is None else instance.inputs @ right.T   # n x r_in
    K, r_out = g.shape
    n = instance.n
    G = sp.csr_matrix((g.ravel(), (np.repeat(np.arange(K), r_out),
                                   (np.arange(r_out)[None, :] * n + rows[:, None]).ravel())),
                      shape=(K, n * r_out))
    M = cp.Variable(shape, name="M")
    Z = cp.Variable((n, r_out), name="Z")
    slack = cp.Variable(K, nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.sum(slack)),
                         [Z == inputs @ M.T, G @ cp.vec(Z, order="F") + slack >= 1])
    with warnings.catch_warnings(), solver_output_to_stderr():
        warnings.simplefilter("ignore")
        for solver, options in ((cp.HIGHS, {"highs_options": {"output_flag": False,
                                                               "log_to_console": False}}),
                                (cp.CLARABEL, {})):
            try:
                problem.solve(solver=solver, **options)
            except (cp.error.SolverError, ValueError):
                continue
            if M.value is not None:
                return np.array(M.value)
    return None


def hinge_loss(instance: Instance, W: np.ndarray) -> float:
    scaled = certify.scaled_margins(instance, W)
    mask = instance.slot_mask()
    return float(np.sum(np.maximum(0.0, 1.0 - scaled[mask])))


@dataclass(frozen=True)
class TwoLayerResult:
    verdict: str
    h: int
    kappa_lower: float | None      # normalised margin of B A (certified when > floor)
    full_rank_verdict: str
    rounds: int
    loss: float | None
    reason: str
    seconds: float
    B: np.ndarray | None = None
    A: np.ndarray | None = None

    def row(self) -> dict:
        out = asdict(self)
        out.pop("B")
        out.pop("A")
        return out


def train(instance: Instance, h: int, rounds: int = TRAIN_ROUNDS, solver=None,
          init: np.ndarray | None = None) -> TwoLayerResult:
    """Look for W = B A of rank <= h separating the facts (see module docstring)."""

    if h < 1:
        raise InputError(f"hidden width h must be >= 1, got {h}")
    start = time.monotonic()
    full = decide(instance, solver=solver)
    if full.verdict == INFEASIBLE:
        return TwoLayerResult(INFEASIBLE, h, None, INFEASIBLE, 0, None,
                              "no full-rank W separates the facts (Farkas certificate of the "
                              "relaxation), so no B A does", time.monotonic() - start)
    if full.verdict != FEASIBLE:
        return TwoLayerResult(UNDETERMINED, h, None, full.verdict, 0, None,
                              "the full-rank relaxation is undetermined",
                              time.monotonic() - start)
    W0 = full.weights if init is None else init
    W = full.weights
    if h >= min(instance.d_in, instance.d_out):
        # factor the separating one-layer W exactly through width h
        if h >= instance.d_in:
            A = np.eye(h, instance.d_in)
            B = W @ A.T
        else:
            B = np.eye(instance.d_out, h)
            A = B.T @ W
        kappa = certify.margin_lower_bound(instance, B @ A)
        return TwoLayerResult(FEASIBLE, h, kappa, FEASIBLE, 0, 0.0,
                              "h >= rank of any W: B A is the separating one-layer W",
                              time.monotonic() - start, B, A)
    U, s, Vt = np.linalg.svd(W0, full_matrices=False)
    root = np.sqrt(s[:h])
    B, A = U[:, :h] * root, root[:, None] * Vt[:h]
    best_kappa = certify.margin_lower_bound(instance, B @ A)
    loss = hinge_loss(instance, B @ A)
    done_rounds = 0
    previous = math.inf
    for done_rounds in range(1, rounds + 1):
        if best_kappa is not None and best_kappa > MARGIN_FLOOR:
            break
        new_B = _hinge_step(instance, None, A, (instance.d_out, h))
        if new_B is not None:
            B = new_B
        new_A = _hinge_step(instance, B, None, (h, instance.d_in))
        if new_A is not None:
            A = new_A
        W = B @ A
        best_kappa = certify.margin_lower_bound(instance, W)
        loss = hinge_loss(instance, W)
        if best_kappa is not None and best_kappa > MARGIN_FLOOR:
            break
        if not previous - loss > TRAIN_RTOL * max(previous, 1e-12) and math.isfinite(previous):
            break
        previous = loss
    if best_kappa is not None and best_kappa > MARGIN_FLOOR:
        return TwoLayerResult(FEASIBLE, h, best_kappa, FEASIBLE, done_rounds, loss,
                              f"B A with normalised margin {best_kappa:.3e} "
                              f"(recomputed in numpy)", time.monotonic() - start, B, A)
    return TwoLayerResult(UNDETERMINED, h, best_kappa, FEASIBLE, done_rounds, loss,
                          "alternation found no separating B A; the full-rank relaxation "
                          "is feasible, so nothing is proved", time.monotonic() - start, B, A)


# -- capacities against h -------------------------------------------------------------------
TWOLAYER_COLUMNS = ["model", "d", "h", "h_over_d", "seed", "p_max", "p_full", "p_frozen",
                    "frozen_status", "p_trained", "trained_not_found_at", "trained_probes",
                    "seconds"]


def _search_trained(full: Instance, h: int, lower: int, upper: int | None, solver=None):
    """Largest p in (lower, upper) where the alternation certifies a rank-h B A.

    ``lower`` is certified feasible for rank h (the frozen-A capacity),
    ``upper`` certified infeasible for any W (the one-layer capacity + 1).
    Bisection treats "not found" as an upper end, which certifies nothing:
    the result is a certified lower bound on the rank-h capacity.
    """
    probes, not_found = 0, None
    hi = upper if upper is not None else full.n + 1
    lo = lower
    while hi - lo > 1:
        p = (lo + hi) // 2
        probes += 1
        result = train(full.prefix(p), h, solver=solver)
        if result.verdict == FEASIBLE:
            lo = p
        else:
            hi = p
            not_found = p if result.verdict == UNDETERMINED else not_found
    return lo, not_found, probes


def twolayer_capacity(model: str, d: int, h: int, seed: int, distribution: str = "gaussian",
                      trained: bool = True, solver=None, p_max: int | None = None) -> dict:
    """One row: full-rank, frozen-A (certified) and trained (certified lower bound)
    capacities of a d x d memory factored through width h."""

    check_family(model)
    if d < 2 or h < 1:
        raise InputError(f"need d >= 2 and h >= 1, got d={d}, h={h}")
    start = time.monotonic()
    p_max = int(p_max or 3 * capacity_guess(d))
    full = generate(model, d, p_max, seed, distribution)
    one = capacity_bisection(full, guess=capacity_guess(d), solver=solver)
    A = random_first_layer(d, h, seed)
    guess = max(2, int(capacity_guess(d) * min(1.0, h / d)))
    frozen = capacity_bisection(frozen_instance(full, A), guess=guess, solver=solver)
    row = {"model": model, "d": d, "h": h, "h_over_d": h / d, "seed": seed, "p_max": p_max,
           "p_full": one.p_star, "p_frozen": frozen.p_star, "frozen_status": frozen.status,
           "p_trained": None, "trained_not_found_at": None, "trained_probes": 0}
    if h >= d:
        # any d x d W is B A with h >= d: the rank-h capacity is the one-layer one
        row["p_trained"] = one.p_star
    elif trained and one.status == CapacityStatus.EXACT and frozen.status == CapacityStatus.EXACT:
        lo, not_found, probes = _search_trained(full, h, frozen.p_star, one.p_star + 1, solver)
        row.update(p_trained=lo, trained_not_found_at=not_found, trained_probes=probes)
    row["seconds"] = round(time.monotonic() - start, 3)
    return row


@dataclass(frozen=True)
class TwoLayerTask:
    model: str
    d: int
    h: int
    seed: int
    distribution: str = "gaussian"
    trained: bool = True

    @property
    def key(self) -> tuple:
        return (self.model, str(self.d), str(self.h), str(self.seed))


def run_twolayer_task(task: TwoLayerTask, solver=None) -> dict:
    return twolayer_capacity(task.model, task.d, task.h, task.seed, task.distribution,
                             task.trained, solver)


def run_twolayer_grid(models, d: int, widths, seeds: int, out, seed0: int = 0,
                      distribution: str = "gaussian", trained: bool = True, solver=None,
                      jobs=None, quiet=False):

    for h in widths:
        if h < 1:
            raise InputError(f"hidden widths must be >= 1, got {h}")
    base = batch.capacity_tasks(models, [d], seeds, seed0, distribution)
    tasks = [TwoLayerTask(t.model, t.d, h, t.seed, distribution, trained)
             for h in widths for t in base]
    return batch.run_tasks(tasks, out, TWOLAYER_COLUMNS, ["model", "d", "h", "seed"],
                           run_twolayer_task, solver=solver, jobs=jobs, quiet=quiet,
                           label=lambda r: f"two-layer {r['model']} d={r['d']} h={r['h']} "
                                           f"seed={r['seed']} frozen={r['p_frozen']} "
                                           f"trained={r['p_trained']} ({r['seconds']:.1f}s)")
