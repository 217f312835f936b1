"""Deciding one instance: an active set of constraints, solved in cvxpy, checked
against all constraints with one matrix product, escalated until certified.

Few constraints bind at the optimum (the competitors near the extreme-value
threshold). The loop solves the program on an active set, recomputes every
margin of the W it returns, adds the violated constraints and repeats. Any W is
a certified lower bound on kappa* and the duals of any restricted solve are a
certified upper bound (a certificate for a subset is one for the whole), so
the loop stops as soon as the bracket decides the verdict.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
from threadpoolctl import threadpool_limits

from feasibility.core import certify
from feasibility.core.certify import FEASIBLE, INFEASIBLE, UNDETERMINED, FarkasCertificate
from feasibility.core.errors import InputError
from feasibility.core.instances import Instance
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE, MAX_ACTIVE_SET_ROUNDS
from feasibility.solvers import structured
from feasibility.solvers.ipm import SMALL_NEWTON, KroneckerColumns, min_norm_point
from feasibility.solvers.programs import PROGRAMS, ReducedInstance, restricted_program
from feasibility.solvers.selection import smallest_per_row

#: user-facing solver name -> (cvxpy name, programs it can certify, options);
#: "ipm" is the project's structured interior-point method (feasibility/ipm.py)
#: on the dual "minnorm" program, the others run the cvxpy models.
SOLVERS = {
    "ipm": (None, ("minnorm",), {}),
    "clarabel": (cp.CLARABEL, ("socp", "lp"), {}),
    "ecos": (cp.ECOS, ("socp",), {"max_iters": 500}),
    "scs": (cp.SCS, ("socp", "lp"), {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000}),
    "highs": (cp.HIGHS, ("lp",), {"highs_options": {"presolve": "off", "solver": "simplex"}}),
}
#: measured fastest among the solvers that certify (see BENCHMARKS.md)
DEFAULT_SOLVER = "ipm"
#: tried in this order after the chosen solver leaves the verdict undetermined
ESCALATION = (("ipm", "minnorm"), ("clarabel", "socp"), ("highs", "lp"), ("ecos", "socp"), ("scs", "socp"))

SOLUTION_PRESENT = {cp.OPTIMAL, cp.OPTIMAL_INACCURATE}
INFEASIBLE_STATUSES = {cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE}

# The IPM's cost per iteration is set by the Newton matrix (size r_out r_in),
# nearly independent of the number of constraints K, so it starts from the
# tightest constraints of the Hebbian memory up to a memory budget: most
# probes then need one round. At least this many per input, more per round.
INITIAL_PER_INPUT = 24
# cvxpy's solvers pay for every constraint in their KKT system: few at a time
CONIC_PER_INPUT = 6
ACTIVE_SET_BUDGET = 250_000
ADDED_PER_INPUT = 32
# the IPM ends a round early once its relative duality gap is below this and
# constraints outside the active set are violated
CUT_GAP = 1e-1


def installed_solvers() -> list[str]:
    available = set(cp.installed_solvers())
    return [name for name, (cvx, _, _) in SOLVERS.items() if cvx is None or cvx in available]


def check_solver(name: str | None, program: str | None = None) -> tuple[str, str]:
    """Validate a solver/program pair, filling in defaults."""
    name = (name or DEFAULT_SOLVER).lower()
    if name not in SOLVERS:
        raise InputError(f"unknown solver {name!r}: choose one of {', '.join(SOLVERS)}")
    if name not in installed_solvers():
        raise InputError(f"solver {name!r} is not installed "
                         f"(installed: {', '.join(installed_solvers())})")
    programs = SOLVERS[name][1]
    program = (program or programs[0]).lower()
    if program not in PROGRAMS + ("minnorm",):
        raise InputError(f"unknown program {program!r}: choose one of {', '.join(PROGRAMS)}")
    if program not in programs:
        raise InputError(f"solver {name!r} cannot certify the {program} program "
                         f"(it can: {', '.join(programs)})")
    return name, program


@dataclass(frozen=True, eq=False)
class Decision:
    """A verdict and its evidence: a W, a Farkas certificate, or the reason."""

    verdict: str
    margin_lower: float | None
    margin_upper: float | None
    margin: float
    tolerance: float
    solver: str
    program: str
    solvers_tried: tuple[str, ...]
    statuses: tuple[str, ...]
    rounds: int
    active_constraints: int
    constraints: int
    seconds: float
    reason: str
    weights: np.ndarray | None = field(default=None, repr=False)
    certificate: FarkasCertificate | None = field(default=None, repr=False)

    def row(self) -> dict:
        """Flat record (arrays stay out: save them with ``save_weights``)."""
        return {"verdict": self.verdict, "margin_lower": self.margin_lower,
                "margin_upper": self.margin_upper, "margin": self.margin,
                "tolerance": self.tolerance, "solver": self.solver, "program": self.program,
                "solvers_tried": "+".join(self.solvers_tried),
                "statuses": "+".join(self.statuses), "rounds": self.rounds,
                "active_constraints": self.active_constraints,
                "constraints": self.constraints, "seconds": self.seconds,
                "reason": self.reason}


@dataclass
class _Bracket:
    """Best certified bounds so far, with the evidence that gives them."""

    lower: float | None = None
    upper: float | None = None
    weights: np.ndarray | None = None
    certificate: FarkasCertificate | None = None
    lower_by: str = ""
    upper_by: str = ""

    def offer_weights(self, instance, W, by, scaled=None):
        value = certify.margin_lower_bound(instance, W, scaled)
        if value is not None and (self.lower is None or value > self.lower):
            self.lower, self.weights, self.lower_by = value, W, by
        return value

    def offer_certificate(self, instance, cert, by):
        value = certify.margin_upper_bound(instance, cert)
        if value is not None and (self.upper is None or value < self.upper):
            self.upper, self.certificate, self.upper_by = value, cert, by
        return value


def hebbian_memory(instance: Instance) -> np.ndarray:
    """W_H = sum_i y_t(i) x_i^T: no solver, and the seed of the active set."""
    return instance.own_targets().T @ instance.inputs


def _restricted_ipm(instance, reduced, active, bracket, done, margin, tolerance):
    """One restricted solve by the structured IPM, certifying as it goes.

    The round ends early ("cut") once the iterate is moderately converged and
    already violates constraints outside the active set: an exact solve of a
    set about to grow would be wasted work. Returns (result, new constraints).
    """
    rows, slots = np.nonzero(active)
    used, local = np.unique(rows, return_inverse=True)
    columns = KroneckerColumns(reduced.directions(rows, slots), reduced.inputs[used], local)
    mask = instance.slot_mask()
    found = {}

    def check(lam, W_reduced, rel_gap):
        # ||A lam|| is the bound the certificate would give: certify it (a
        # K-sized recomputation) only when it could decide the verdict
        if np.linalg.norm(W_reduced) <= 2 * (margin + tolerance):
            bracket.offer_certificate(instance, FarkasCertificate(rows, slots, lam), "ipm")
        W = reduced.memory(W_reduced)
        scaled = certify.scaled_margins(instance, W)
        bracket.offer_weights(instance, W, "ipm", scaled)
        if done(bracket):
            return "stopped"
        if rel_gap < CUT_GAP:
            norm2 = float(np.sum(W_reduced**2))
            violated = (scaled < norm2 * (1 - CUT_GAP)) & mask & ~active
            if violated.any():
                found["new"] = smallest_per_row(scaled, ADDED_PER_INPUT, violated)
                return "cut"
        found["scaled"], found["norm2"] = scaled, float(np.sum(W_reduced**2))
        return None

    # half the certificate's bound, leaving room for its recomputation
    result = min_norm_point(columns, callback=check, target=(margin + tolerance) / 2)
    bracket.offer_certificate(instance, FarkasCertificate(rows, slots, result.lam), "ipm")
    if "new" not in found and result.status == "optimal":
        scaled, norm2 = found["scaled"], found["norm2"]
        violated = (scaled < norm2 * (1 - 1e-6)) & mask & ~active
        if violated.any():
            found["new"] = smallest_per_row(scaled, ADDED_PER_INPUT, violated)
    return result, found.get("new")


def _solve_active_set(instance, reduced, active, solver, program, bracket, done,
                      statuses, deadline, margin, tolerance):
    """Run the cutting-plane loop with one solver; returns the rounds used."""
    cvx_name, _, options = SOLVERS[solver]
    mask = instance.slot_mask()
    rounds = 0
    while rounds < MAX_ACTIVE_SET_ROUNDS:
        if done(bracket):
            return rounds, ""
        if deadline is not None and time.monotonic() > deadline:
            return rounds, "time limit reached"
        rounds += 1
        rows, slots = np.nonzero(active)
        if solver == "ipm":
            result, new = _restricted_ipm(instance, reduced, active, bracket, done,
                                          margin, tolerance)
            statuses.append(f"ipm:{result.status}({result.iterations})")
            if done(bracket):
                return rounds, ""
            if new is None:
                if result.status == "numerical_error":
                    return rounds, "ipm: numerical error"
                if result.status == "target":
                    return rounds, "ipm: its certificate did not verify in the full space"
                return rounds, ("ipm converged on its active set but the bracket "
                                "is within solver accuracy of the margin")
            active |= new
            continue
        model = restricted_program(reduced, rows, slots, program)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.problem.solve(solver=cvx_name, **options)
            status = model.problem.status
        except (cp.error.SolverError, ValueError) as exc:
            # ValueError: cvxpy cannot unpack a solver's "unknown" status
            statuses.append(f"{solver}:error")
            return rounds, f"{solver} failed: {str(exc).splitlines()[0]}"
        statuses.append(f"{solver}:{status}")
        duals = model.margin_constraint.dual_value
        if duals is not None:
            bracket.offer_certificate(
                instance, FarkasCertificate.from_duals(rows, slots, duals), solver)
        if status not in SOLUTION_PRESENT or model.M.value is None:
            if status in INFEASIBLE_STATUSES:
                continue_reason = "restricted program infeasible but its certificate is too weak"
                return rounds, continue_reason
            return rounds, f"{solver} returned status {status}"
        W = reduced.memory(model.M.value)
        bracket.offer_weights(instance, W, solver)
        scaled = certify.scaled_margins(instance, W)
        if program == "socp":
            threshold = float(model.kappa.value) - 1e-9 * max(1.0, abs(model.kappa.value))
        else:
            threshold = 1.0 - 1e-7
        violated = (scaled < threshold) & mask & ~active
        if not violated.any():
            return rounds, (f"{solver} converged on its active set but the bracket "
                            f"is within solver accuracy of the margin")
        active |= smallest_per_row(scaled, CONIC_PER_INPUT, violated)
    return rounds, f"no verdict after {MAX_ACTIVE_SET_ROUNDS} rounds"


def decide(instance: Instance, margin: float = 0.0, solver: str | None = None,
           program: str | None = None, tolerance: float = INFEASIBILITY_TOLERANCE,
           escalate: bool = True, active: np.ndarray | None = None,
           time_limit: float | None = None, bracket_rtol: float | None = None,
           fast_path: bool = True) -> Decision:
    """Decide whether one linear memory stores all facts at normalised margin >= `margin`.

    Returns a Decision whose verdict is certified (see certify.classify); the
    chosen solver runs first, then, if the verdict is still undetermined and
    `escalate` is set, the others in ESCALATION order.
    ``active``: optional n x n_slots boolean mask of constraints to start from.
    ``bracket_rtol``: keep going after the verdict until the bracket on kappa*
    is that tight, lower >= (1 - rtol) upper (the max-margin; SOCP only).
    ``fast_path``: False skips feasibility.structured (a caller that saw it fail
    on a smaller prefix of the same facts need not pay for it again).
    """
    if not np.isfinite(margin) or margin < 0:
        raise InputError(f"margin must be a finite number >= 0, got {margin}")
    solver, program = check_solver(solver, program)
    if instance.d_in * instance.d_out < SMALL_NEWTON:
        # small products: one BLAS thread (see ipm.SMALL_NEWTON)
        with threadpool_limits(1, user_api="blas"):
            return _decide(instance, margin, solver, program, tolerance, escalate, active,
                           time_limit, bracket_rtol, fast_path)
    return _decide(instance, margin, solver, program, tolerance, escalate, active,
                   time_limit, bracket_rtol, fast_path)


def _decide(instance, margin, solver, program, tolerance, escalate, active, time_limit,
            bracket_rtol, fast_path):
    start = time.monotonic()
    deadline = None if time_limit is None else start + time_limit
    bracket = _Bracket()
    statuses: list[str] = []
    tried: list[str] = []
    rounds_total = 0
    reason = ""
    mask = instance.slot_mask()

    def done(b: _Bracket) -> bool:
        verdict = certify.classify(b.lower, b.upper, margin, tolerance)
        if bracket_rtol is None or verdict == INFEASIBLE:
            return verdict != UNDETERMINED
        return (b.lower is not None and b.upper is not None
                and b.lower >= (1 - bracket_rtol) * b.upper)

    zero_cert = certify.zero_constraint_certificate(instance)
    if zero_cert is not None:
        bracket.offer_certificate(instance, zero_cert, "exact")
    hebbian = hebbian_memory(instance)
    hebbian_margins = certify.scaled_margins(instance, hebbian)
    bracket.offer_weights(instance, hebbian, "hebbian", hebbian_margins)
    if not done(bracket) and bracket_rtol is None and fast_path:
        # closed-form memories and separable structure of real files first
        # (feasibility/structured.py); it steps aside where it does not pay

        if structured.worth_trying(instance):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            evidence = structured.fast_path(instance, margin, tolerance, left)
            tried.append(f"structured/{evidence.method or 'none'}")
            if evidence.weights is not None:
                bracket.offer_weights(instance, evidence.weights, "structured")
            if evidence.certificate is not None:
                bracket.offer_certificate(instance, evidence.certificate, "structured")

    if active is None or active.shape != mask.shape:
        active = np.zeros_like(mask)
    active = active & mask
    if not done(bracket):
        per_input = (max(INITIAL_PER_INPUT, ACTIVE_SET_BUDGET // instance.n)
                     if solver == "ipm" else CONIC_PER_INPUT)
        active |= smallest_per_row(hebbian_margins, per_input, mask)
        reduced = ReducedInstance.of(instance)
        chain = [(solver, program)]
        if escalate:
            chain += [(s, p) for s, p in ESCALATION
                      if (s, p) != (solver, program) and s in installed_solvers()]
        for name, kind in chain:
            tried.append(f"{name}/{kind}")
            rounds, reason = _solve_active_set(instance, reduced, active, name, kind, bracket,
                                               done, statuses, deadline, margin, tolerance)
            rounds_total += rounds
            if done(bracket):
                break
            if deadline is not None and time.monotonic() > deadline:
                break
    verdict = certify.classify(bracket.lower, bracket.upper, margin, tolerance)
    by = {FEASIBLE: bracket.lower_by, INFEASIBLE: bracket.upper_by}.get(verdict, "")
    if verdict == FEASIBLE:
        reason = f"W with normalised margin {bracket.lower:.3e} (recomputed in numpy)"
    elif verdict == INFEASIBLE:
        reason = (f"Farkas certificate with ||sum lambda a_hat|| = {bracket.upper:.3e} "
                  f"<= margin + tolerance (recomputed in numpy)")
    else:
        reason = reason or "no solver produced a decisive bound"
    return Decision(
        verdict=verdict, margin_lower=bracket.lower, margin_upper=bracket.upper,
        margin=float(margin), tolerance=float(tolerance), solver=by or solver,
        program=program, solvers_tried=tuple(tried), statuses=tuple(statuses),
        rounds=rounds_total, active_constraints=int(active.sum()),
        constraints=instance.n_constraints, seconds=time.monotonic() - start,
        reason=reason, weights=bracket.weights, certificate=bracket.certificate)


def max_margin(instance: Instance, solver: str | None = None, rtol: float = 1e-3,
               **kwargs) -> Decision:
    """Bracket kappa*, the continuous order parameter, to relative width `rtol`.

    The active set runs past the verdict until lower >= (1 - rtol) upper;
    both ends stay certified. Infeasible instances return at once (kappa* <= tau).
    """
    solver, program = check_solver(solver)
    if program == "lp":
        raise InputError("max_margin needs a solver of the socp or minnorm program")
    return decide(instance, 0.0, solver, program, bracket_rtol=rtol, **kwargs)
