"""Listwise retrieval: the tail-average margin (TAM) criterion, certified.

Criterion ``tam:K``: every input's correct score beats the *mean of its K
largest* competitor scores,

    tam_i(W) = s_i,own - (1/K) sum_largest_K(s_i,c over competitors c) > 0.

Since the mean of the K largest is at least the K-th largest, tam_i > 0 puts
the correct target among the top K candidates (listwise retrieval); ``tam:1``
is top-1 retrieval. ``tam:F`` with 0 < F < 1 uses K_i = ceil(F n_i) for n_i
competitors (a fixed fraction of the list). sum_largest is convex, so the set
of W meeting the criterion at margin kappa is convex. The normalised TAM
margin of W is min_i tam_i(W) / (||x_i|| ||W||_F) and kappa*_tam its sup.

Certificates, recomputed in numpy:

- feasible: a W whose normalised TAM margin, over all competitors, is > 1e-12.
- infeasible: weights mu_ic >= 0 on (input, competitor) pairs, sum mu = 1,
  each mu_ic <= (1/K_i) sum_c' mu_ic' (a capped simplex per input). For every
  W with ||W||_F <= 1, min_i tam_i/||x_i|| <= sum_ic mu_ic <a_ic, W>/||x_i||
  <= ||sum_ic mu_ic a_ic/||x_i|| ||_F, with a_ic = (y_own - c) x_i^T, because
  tam_i = min over the capped simplex of the weighted margins. So that norm is
  an upper bound on kappa*_tam, and <= tau = 1e-6 proves "infeasible at tau".
- otherwise "undetermined", never a guess.

The solver sees sum_largest in its epigraph form (what cvxpy's sum_largest
compiles to): t_i + (1/K) sum_c u_ic with u_ic >= s_ic - t_i, u >= 0. The duals
of u_ic >= s_ic - t_i are the mu above, so every solve yields both bounds.
Few competitors matter (the top of each list), so the model runs on an active
set that grows with the true top-K lists of each returned W; a relaxation
(fewer competitors) certifies infeasibility for the whole set too.

Capacity: with K fixed and p > K the family is nested (a longer list can only
raise the mean of its K largest), so bisection on p is exact. With a fraction
the criterion changes with p and the bisection result is reported with
``nested = False``: a transition point, not a proven maximum.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field, fields

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from feasibility.capacity import batch
from feasibility.capacity.bisection import bracket_search, capacity_guess, transfer_active_set
from feasibility.core.certify import FEASIBLE, INFEASIBLE, UNDETERMINED, CertifiedBracket
from feasibility.core.errors import InputError
from feasibility.core.instances import Instance, check_family, generate
from feasibility.core.status import CapacityStatus, Verdict
from feasibility.core.tolerances import CERTIFICATE_SUM_ATOL, INFEASIBILITY_TOLERANCE
from feasibility.solvers.active_set import hebbian_memory

#: relative slack allowed on the caps mu_ic <= (1/K) sum mu_i (float rounding);
#: the upper bound is inflated by exactly what that slack can cost
CAP_SLACK = 1e-12
#: active-set rounds per decision
MAX_ROUNDS = 40
#: competitors per input beyond K in the first active set, and added per round
EXTRA_INITIAL, EXTRA_ADDED = 4, 4
#: ... or K/EXTRA_ADDED_SHARE of them when that is more (long tails need more)
EXTRA_ADDED_SHARE = 4
#: bisection steps on the capped-simplex projection's threshold: the bracket
#: starts at most max(v) - min(v) + cap wide and halves each step, 2^-100 of it
#: is below float64 resolution
CAPPED_SIMPLEX_STEPS = 100
#: tam_capacity's default p_max: this many times capacity_guess(d), room for
#: tam:K's capacity, which grows to ~d^2 (Barnfield et al. 2026) instead of d^2/ln
P_MAX_OVER_GUESS = 12
#: its first step is guess / FIRST_STEP_DIVISOR (coarser than top-1's: fewer seeds)
FIRST_STEP_DIVISOR = 8


@dataclass(frozen=True)
class Criterion:
    """top-1 (K = 1), tam:K (K fixed) or tam:F (K = ceil(F n_i))."""

    name: str
    k: int | None = None
    fraction: float | None = None

    @property
    def nested(self) -> bool:
        return self.fraction is None

    def tail(self, n_competitors: np.ndarray | int) -> np.ndarray:
        """K_i for inputs with n_i competitors (never more than n_i, at least 1)."""
        n = np.asarray(n_competitors)
        if self.fraction is not None:
            k = np.ceil(self.fraction * n).astype(int)
        else:
            k = np.full(n.shape, self.k, dtype=int)
        return np.clip(k, 1, np.maximum(n, 1))

    def __str__(self) -> str:
        return self.name


def parse_criterion(text: str) -> Criterion:
    """'top1', 'tam:K' (integer K >= 1) or 'tam:F' (0 < F < 1)."""
    raw = str(text).strip().lower()
    if raw in ("top1", "top-1", "tam:1"):
        return Criterion("top1" if raw != "tam:1" else "tam:1", k=1)
    if raw.startswith("tam:"):
        value = raw[4:]
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number >= 1 and number == int(number) and "." not in value:
            return Criterion(f"tam:{int(number)}", k=int(number))
        if math.isfinite(number) and 0 < number < 1:
            return Criterion(f"tam:{value}", fraction=number)
    raise InputError(f"unknown criterion {text!r}: use top1, tam:K (integer K >= 1) "
                     f"or tam:F (a fraction 0 < F < 1)")


# -- numpy side: the criterion and its certificates --------------------------------------
def _scores(instance: Instance, W: np.ndarray):
    """Own scores and competitor scores, -inf where there is no competitor."""
    own, scores = instance.scores(W)
    return own, np.where(instance.slot_mask(), scores, -np.inf)


def tam_values(instance: Instance, W: np.ndarray, criterion: Criterion) -> np.ndarray:
    """tam_i(W) = correct score - mean of the K_i largest competitor scores."""
    own, scores = _scores(instance, W)
    counts = instance.slot_mask().sum(axis=1)
    ks = criterion.tail(counts)
    ordered = -np.sort(-scores, axis=1)            # descending, -inf (no slot) last
    csum = np.cumsum(np.where(np.isfinite(ordered), ordered, 0.0), axis=1)
    top_mean = csum[np.arange(instance.n), ks - 1] / ks
    return own - top_mean


def tam_lower_bound(instance: Instance, W: np.ndarray | None,
                    criterion: Criterion) -> float | None:
    """min_i tam_i(W) / (||x_i|| ||W||_F): kappa*_tam >= it (None for a useless W)."""
    if W is None:
        return None
    W = np.asarray(W, dtype=float)
    if W.shape != (instance.d_out, instance.d_in) or not np.all(np.isfinite(W)):
        return None
    norm = np.linalg.norm(W)
    if norm == 0:
        return None
    x_norm = np.linalg.norm(instance.inputs, axis=1)
    values = tam_values(instance, W, criterion)
    # a zero input scores 0 everywhere: its TAM margin is 0 whatever W is
    scaled = np.where(x_norm > 0, values / np.where(x_norm > 0, x_norm, 1.0), 0.0)
    return float(scaled.min() / norm)


@dataclass(frozen=True, eq=False)
class TamCertificate:
    """Weights mu >= 0 on (rows[k], slots[k]), summing to 1, capped per input."""

    rows: np.ndarray
    slots: np.ndarray
    weights: np.ndarray


def tam_upper_bound(instance: Instance, certificate: TamCertificate | None,
                    criterion: Criterion) -> float | None:
    """||sum mu_ic a_ic / ||x_i|| ||_F (+ the cap slack's worth): kappa*_tam <= it."""
    if certificate is None or len(certificate.weights) == 0:
        return None
    rows, slots, mu = certificate.rows, certificate.slots, certificate.weights
    if np.any(mu < 0) or not np.isclose(mu.sum(), 1.0, rtol=0, atol=CERTIFICATE_SUM_ATOL):
        return None
    mask = instance.slot_mask()
    if not mask[rows, slots].all() or len(set(zip(rows.tolist(), slots.tolist()))) != len(rows):
        return None
    ks = criterion.tail(mask.sum(axis=1))
    per_input = np.zeros(instance.n)
    np.add.at(per_input, rows, mu)
    if np.any(mu > per_input[rows] / ks[rows] * (1 + CAP_SLACK)):
        return None
    u = instance.differences(rows, slots)
    x_norm = np.linalg.norm(instance.inputs, axis=1)
    x_hat = instance.inputs / np.where(x_norm > 0, x_norm, 1.0)[:, None]
    V = np.zeros((instance.n, instance.d_out))
    np.add.at(V, rows, mu[:, None] * u)
    bound = float(np.linalg.norm(V.T @ x_hat))
    # caps met only to (1 + CAP_SLACK)/K: at most CAP_SLACK max||u|| more
    return bound + CAP_SLACK * float(np.linalg.norm(u, axis=1).max())


def _project_capped_simplex(v: np.ndarray, cap: float) -> np.ndarray:
    """Euclidean projection of v onto {0 <= w <= cap, sum w = 1} (needs cap * len >= 1)."""
    lo, hi = v.min() - cap, v.max()
    for _ in range(CAPPED_SIMPLEX_STEPS):
        theta = 0.5 * (lo + hi)
        if np.clip(v - theta, 0.0, cap).sum() > 1.0:
            lo = theta
        else:
            hi = theta
    w = np.clip(v - 0.5 * (lo + hi), 0.0, cap)
    return w / w.sum()


def certificate_from_duals(instance: Instance, rows, slots, duals,
                           criterion: Criterion) -> TamCertificate | None:
    """Turn the duals of u_ic >= s_ic - t_i into a capped-simplex certificate."""
    nu = np.clip(np.asarray(duals, dtype=float).ravel(), 0.0, None)
    if not np.all(np.isfinite(nu)) or nu.sum() <= 0:
        return None
    rows, slots = np.asarray(rows), np.asarray(slots)
    ks = criterion.tail(instance.slot_mask().sum(axis=1))
    mu = np.zeros_like(nu)
    for i in np.unique(rows):
        at = np.nonzero(rows == i)[0]
        total = nu[at].sum()
        if total <= 0:
            continue
        if len(at) * (1.0 / ks[i]) < 1.0:   # fewer active pairs than K: cannot cap
            return None
        mu[at] = total * _project_capped_simplex(nu[at] / total, 1.0 / ks[i])
    keep = mu > 0
    mu = mu[keep] / mu[keep].sum()
    return TamCertificate(rows[keep], slots[keep], mu)


class TamBracket(CertifiedBracket):
    """The certified bracket on kappa*_tam: the record of certify.CertifiedBracket
    with the TAM bounds of this module (a different kappa, the same evidence)."""

    def __init__(self, instance: Instance, criterion: Criterion):
        super().__init__(instance)
        self.criterion = criterion

    def lower_bound(self, W, scaled=None) -> float | None:
        return tam_lower_bound(self.instance, W, self.criterion)

    def upper_bound(self, certificate) -> float | None:
        return tam_upper_bound(self.instance, certificate, self.criterion)


# -- the solver side -------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TamDecision:
    verdict: Verdict
    criterion: str
    margin_lower: float | None
    margin_upper: float | None
    rounds: int
    active_pairs: int
    seconds: float
    reason: str
    weights: np.ndarray | None = field(default=None, repr=False)
    certificate: TamCertificate | None = field(default=None, repr=False)
    active: np.ndarray | None = field(default=None, repr=False)

    def row(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("weights", "certificate", "active")}


def _restricted_tam(instance: Instance, active: np.ndarray, ks: np.ndarray):
    """max kappa s.t. own_i - t_i - (1/K_i) sum_{c active} u_ic >= kappa, u_ic >= s_ic - t_i,
    u >= 0, ||W||_F <= 1, on unit-norm inputs (so kappa is the normalised TAM margin)."""
    rows, slots = np.nonzero(active)
    used, local = np.unique(rows, return_inverse=True)
    n_used, d_out = len(used), instance.d_out
    x_norm = np.linalg.norm(instance.inputs[used], axis=1)
    x_hat = instance.inputs[used] / np.where(x_norm > 0, x_norm, 1.0)[:, None]
    comp = (instance.competitors[rows, slots] if instance.decoupled
            else instance.targets[slots])                    # P x d_out
    P = len(rows)
    W = cp.Variable((d_out, instance.d_in), name="W")
    Z = cp.Variable((n_used, d_out), name="Z")
    t = cp.Variable(n_used, name="t")
    u = cp.Variable(P, nonneg=True, name="u")
    kappa = cp.Variable(name="kappa")
    # s_k = comp_k . z_{local_k}: a sparse row over vec(Z) (column-major)
    cols = (np.arange(d_out)[None, :] * n_used + local[:, None]).ravel()
    S = sp.csr_matrix((comp.ravel(), (np.repeat(np.arange(P), d_out), cols)),
                      shape=(P, n_used * d_out))
    own_t = instance.own_targets()[used]
    O = sp.csr_matrix((own_t.ravel(), (np.repeat(np.arange(n_used), d_out),
                                       (np.arange(d_out)[None, :] * n_used
                                        + np.arange(n_used)[:, None]).ravel())),
                      shape=(n_used, n_used * d_out))
    avg = sp.csr_matrix((1.0 / ks[used][local], (local, np.arange(P))), shape=(n_used, P))
    pick = sp.csr_matrix((np.ones(P), (np.arange(P), local)), shape=(P, n_used))
    zvec = cp.vec(Z, order="F")
    tail = u + pick @ t - S @ zvec >= 0
    margin = O @ zvec - t - avg @ u >= kappa
    problem = cp.Problem(cp.Maximize(kappa),
                         [Z == x_hat @ W.T, tail, margin, cp.norm(W, "fro") <= 1])
    return problem, W, tail, rows, slots


#: measured on the TAM model (d = 12, p = 80, 6320 pairs): ECOS 0.5 s, Clarabel 5 s
TAM_SOLVERS = (cp.ECOS, cp.CLARABEL)


def _solve(problem) -> str | None:
    """Solve with the first solver that returns a solution; its name, or None."""
    for solver in TAM_SOLVERS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem.solve(solver=solver)
        except (cp.error.SolverError, ValueError):
            continue
        if problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return solver
    return None


def decide_tam(instance: Instance, criterion: Criterion | str = "tam:1",
               tolerance: float = INFEASIBILITY_TOLERANCE, max_rounds: int = MAX_ROUNDS,
               active: np.ndarray | None = None) -> TamDecision:
    """Certified verdict on the TAM criterion (see the module docstring).

    ``active``: optional n x n_slots mask of (input, competitor) pairs to start
    from (e.g. the final one of a smaller prefix); the decision's own final
    mask is in ``TamDecision.active``.
    """

    if isinstance(criterion, str):
        criterion = parse_criterion(criterion)
    start = time.monotonic()
    mask = instance.slot_mask()
    counts = mask.sum(axis=1)
    ks = criterion.tail(counts)
    bracket = TamBracket(instance, criterion)
    W = hebbian_memory(instance)
    rounds = 0
    reason = ""

    def verdict():
        # margin 0: feasible needs lower > MARGIN_FLOOR, infeasible upper <= tolerance
        return bracket.verdict(0.0, tolerance)

    bracket.offer_weights(W, "hebbian")
    _, scores = _scores(instance, W)
    order = np.argsort(-scores, axis=1)
    start_mask = np.zeros_like(mask)
    if active is not None and active.shape == mask.shape:
        start_mask |= active
    active = start_mask
    take = np.minimum(ks + EXTRA_INITIAL, counts)
    for i in range(instance.n):
        active[i, order[i, :take[i]]] = True
    active &= mask
    while verdict() == UNDETERMINED and rounds < max_rounds:
        rounds += 1
        problem, Wv, tail, rows, slots = _restricted_tam(instance, active, ks)
        status = _solve(problem)
        if status is None:
            reason = "ECOS and Clarabel both failed on the restricted problem"
            break
        if tail.dual_value is not None:
            bracket.offer_certificate(
                certificate_from_duals(instance, rows, slots, tail.dual_value, criterion),
                status)
        W = None if Wv.value is None else np.array(Wv.value)
        bracket.offer_weights(W, status)
        if verdict() != UNDETERMINED or W is None:
            if W is None:
                reason = f"{status} returned status {problem.status}"
            break
        # grow: each input's true top K_i + EXTRA_ADDED competitors under this W
        _, scores = _scores(instance, W)
        order = np.argsort(-scores, axis=1)
        grown = active.copy()
        take = np.minimum(ks + np.maximum(EXTRA_ADDED, ks // EXTRA_ADDED_SHARE), counts)
        for i in range(instance.n):
            grown[i, order[i, :take[i]]] = True
        grown &= mask
        if not (grown & ~active).any():
            reason = "active set converged: the bracket is within solver accuracy of 0"
            break
        active = grown
    final = verdict()
    if final == FEASIBLE:
        reason = f"W with normalised TAM margin {bracket.lower:.3e} (recomputed in numpy)"
    elif final == INFEASIBLE:
        reason = (f"capped-simplex certificate with norm {bracket.upper:.3e} <= tolerance "
                  f"(recomputed in numpy)")
    else:
        reason = reason or f"no verdict after {rounds} rounds"
    return TamDecision(final, str(criterion), bracket.lower, bracket.upper, rounds,
                       int(active.sum()), time.monotonic() - start, reason,
                       bracket.weights if final == FEASIBLE else None,
                       bracket.certificate if final == INFEASIBLE else None, active)


# -- capacity ---------------------------------------------------------------------------
TOPK_COLUMNS = ["model", "d", "seed", "criterion", "nested", "p_min", "p_max", "p_star",
                "p_feasible", "p_infeasible", "status", "probes", "seconds"]


def tam_capacity(model: str, d: int, seed: int, criterion: Criterion | str,
                 distribution: str = "gaussian", p_max: int | None = None) -> dict:
    """Largest prefix p meeting the criterion (exact for top1 and tam:K, p > K)."""

    if isinstance(criterion, str):
        criterion = parse_criterion(criterion)
    check_family(model)
    start = time.monotonic()
    p_max = int(p_max or P_MAX_OVER_GUESS * capacity_guess(d))
    full = generate(model, d, p_max, seed, distribution)
    p_min = 2 if criterion.fraction is not None else criterion.k + 1
    if p_min > p_max:
        raise InputError(f"p_max = {p_max} leaves no room above K = {criterion.k}")

    remembered = {"mask": None}   # active pairs carry over: slot labels are stable
    probes = []

    def probe(p):
        probes.append(p)
        instance = full.prefix(p)
        decision = decide_tam(instance, criterion,
                              active=transfer_active_set(remembered["mask"], instance))
        if decision.active is not None:
            remembered["mask"] = decision.active
        return decision.verdict

    guess = max(p_min, capacity_guess(d))
    lower, upper, status = bracket_search(probe, p_min, p_max, guess,
                                          max(1, guess // FIRST_STEP_DIVISOR))
    if status == CapacityStatus.EXACT and lower < p_min:
        status = CapacityStatus.BELOW_P_MIN
    return {"model": model, "d": d, "seed": seed, "criterion": str(criterion),
            "nested": criterion.nested, "p_min": p_min, "p_max": p_max,
            "p_star": lower if status == CapacityStatus.EXACT else None, "p_feasible": lower,
            "p_infeasible": upper, "status": status, "probes": len(probes),
            "seconds": round(time.monotonic() - start, 3)}


@dataclass(frozen=True)
class TopkTask:
    model: str
    d: int
    seed: int
    criterion: str
    distribution: str = "gaussian"

    @property
    def key(self) -> tuple:
        return (self.model, str(self.d), str(self.seed), self.criterion)


def run_topk_task(task: TopkTask, solver=None) -> dict:
    return tam_capacity(task.model, task.d, task.seed, task.criterion, task.distribution)


def run_topk_grid(models, dims, seeds: int, criteria, out, seed0: int = 0,
                  distribution: str = "gaussian", jobs=None, quiet=False):

    parsed = [parse_criterion(c) for c in criteria]
    base = batch.capacity_tasks(models, dims, seeds, seed0, distribution)
    tasks = [TopkTask(t.model, t.d, t.seed, str(c), distribution) for c in parsed for t in base]
    return batch.run_tasks(tasks, out, TOPK_COLUMNS, ["model", "d", "seed", "criterion"],
                           run_topk_task, jobs=jobs, quiet=quiet,
                           label=lambda r: f"{r['criterion']} {r['model']} d={r['d']} "
                                           f"seed={r['seed']} p*={r['p_star']} "
                                           f"({r['seconds']:.1f}s)")
