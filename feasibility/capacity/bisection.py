"""Capacity: the largest p whose prefix instance is certified feasible.

The family is nested (the constraints of the prefix of size p are a subset of
those of size p + 1), so feasibility is monotone in p and the per-seed capacity
p* is found exactly by keeping an explicit bracket: ``lower`` is the largest p
certified feasible, ``upper`` the smallest p certified infeasible. An
undetermined probe is never counted as either: the search stops and reports
the bracket it had.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from feasibility.core.certify import FEASIBLE, INFEASIBLE
from feasibility.core.instances import Instance
from feasibility.core.status import CapacityStatus, FastPath, Verdict
from feasibility.solvers.active_set import decide


@dataclass(frozen=True)
class Probe:
    """One certified decision on the prefix of size p."""

    p: int
    verdict: Verdict
    margin_lower: float | None
    margin_upper: float | None
    solver: str
    rounds: int
    seconds: float


@dataclass(frozen=True)
class CapacityResult:
    """p_star = p_feasible when the bracket closed (status 'exact')."""

    p_star: int | None
    p_feasible: int
    p_infeasible: int | None
    status: CapacityStatus
    kappa_at_p_star: float | None
    probes: tuple[Probe, ...] = field(repr=False)
    seconds: float = 0.0

    def row(self) -> dict:
        return {"p_star": self.p_star, "p_feasible": self.p_feasible,
                "p_infeasible": self.p_infeasible, "status": self.status,
                "kappa_at_p_star": self.kappa_at_p_star, "solves": len(self.probes),
                "rounds": sum(probe.rounds for probe in self.probes),
                "seconds": round(self.seconds, 3)}

    def probe_rows(self) -> list[dict]:
        return [asdict(probe) for probe in self.probes]


#: capacity_guess's c(d) = ASYMPTOTE + EXCESS (EXCESS_AT / d)^EXCESS_POWER: the
#: asymptote p_c ln p_c / d^2 -> 1/2 (Giorlandino, Goldt, Maillard 2026) plus a
#: finite-size excess fitted to the measured coupled ratios (1.06 at d = 16,
#: 0.96 at 32, 0.89 at 64, 0.86 at 96; decoupled 1-3% lower)
GUESS_ASYMPTOTE = 0.5
GUESS_EXCESS, GUESS_EXCESS_AT, GUESS_EXCESS_POWER = 0.56, 16.0, 0.25
#: Newton steps on p ln p = target: quadratic convergence from target/ln(target)
#: needs ~5; the cap only bounds a pathological d
GUESS_NEWTON_STEPS = 50
#: the smallest instance has two facts
SMALLEST_P = 2
#: the first step of the walk from the guess is guess / FIRST_STEP_DIVISOR:
#: ~1.5% of p, about the spread of p* between seeds at d = 64 and 96
FIRST_STEP_DIVISOR = 64


def capacity_guess(d: int) -> int:
    """A starting point for the search: the p solving p ln p = c(d) d^2.

    c(d) = 1/2 + 0.56 (16/d)^0.25 follows the measured coupled p_c ln p_c / d^2
    down to the asymptote 1/2 (see GUESS_ASYMPTOTE). Only the number of probes
    depends on it, never the answer.
    """
    ratio = GUESS_ASYMPTOTE + GUESS_EXCESS * (GUESS_EXCESS_AT / max(d, 1)) ** GUESS_EXCESS_POWER
    target = ratio * float(d) ** 2
    # start at target / ln(target), ln taken at >= 3 so that it is >= 1
    p = max(target / max(math.log(max(target, 3.0)), 1.0), float(SMALLEST_P))
    for _ in range(GUESS_NEWTON_STEPS):  # Newton on p ln p - target
        p = max(p - (p * math.log(p) - target) / (math.log(p) + 1.0), float(SMALLEST_P))
    return max(int(round(p)), SMALLEST_P)


def transfer_active_set(active: np.ndarray | None, instance: Instance) -> np.ndarray | None:
    """Carry an active-set mask to another prefix: slot labels are stable."""
    if active is None:
        return None
    shape = (instance.n, instance.n_slots)
    out = np.zeros(shape, dtype=bool)
    rows, cols = min(shape[0], active.shape[0]), min(shape[1], active.shape[1])
    out[:rows, :cols] = active[:rows, :cols]
    return out


def bracket_search(probe, p_min: int, p_max: int, guess: int, step: int
                   ) -> tuple[int, int | None, CapacityStatus]:
    """Largest p in [p_min, p_max] with probe(p) == FEASIBLE, for a monotone probe.

    Walks from the guess in doubling steps (the first one `step`) until the
    verdict flips, then bisects the closed bracket. Returns (lower, upper,
    status): lower is the largest p certified feasible (p_min - 1 if none),
    upper the smallest certified infeasible (None if none); status is 'exact',
    'at_least_p_max' (p_max feasible) or 'undetermined' (a probe was, and the
    search stopped there: it never counts as infeasible).
    """
    lower, upper = p_min - 1, None
    p = min(max(guess, p_min), p_max)
    while True:
        verdict = probe(p)
        if verdict == FEASIBLE:
            lower = p
            if p == p_max:
                return lower, upper, CapacityStatus.AT_LEAST_P_MAX
            if upper is not None:
                break
            p = min(p + step, p_max)
        elif verdict == INFEASIBLE:
            upper = p
            if p == p_min or lower >= p_min:
                break
            p = max(p - step, p_min)
        else:
            return lower, upper, CapacityStatus.UNDETERMINED
        step *= 2
    while upper - lower > 1:
        p = (lower + upper) // 2
        verdict = probe(p)
        if verdict == FEASIBLE:
            lower = p
        elif verdict == INFEASIBLE:
            upper = p
        else:
            return lower, upper, CapacityStatus.UNDETERMINED
    return lower, upper, CapacityStatus.EXACT


def capacity_bisection(full: Instance, guess: int | None = None, p_min: int = SMALLEST_P,
                       solver: str | None = None, margin: float = 0.0,
                       reuse_active_set: bool = True, on_probe=None,
                       known: Mapping[int, Probe] | None = None, **decide_kwargs
                       ) -> CapacityResult:
    """Largest certified-feasible prefix of `full` (p_max = full.n facts).

    ``guess``: where to start; steps of guess/64, doubling, bracket p*, then
    bisection closes the bracket. ``on_probe(probe)`` is called after each solve.
    ``known``: probes certified by an earlier, interrupted run of the same search
    (``capacity.journal``), reused instead of solved again.
    """
    known = dict(known or {})
    start = time.monotonic()
    p_max = full.n
    guess = min(max(guess or p_max, p_min), p_max)
    kappa: dict[int, float | None] = {}
    probes: list[Probe] = []
    # slot labels survive prefixes only when targets are not relabelled
    stable = full.decoupled or np.array_equal(full.assignment, np.arange(full.n))
    active = None
    # the structured fast path finds W only well inside the feasible phase; once it
    # failed at some p it is not tried again at larger p (saves ~10 s a probe at d = 64)
    fast_path_failed_at = math.inf

    def probe(p: int) -> Verdict:
        nonlocal active, fast_path_failed_at
        if p in known:
            probes.append(known[p])
            kappa[p] = known[p].margin_lower
            return known[p].verdict
        instance = full.prefix(p)
        decision = decide(instance, margin, solver,
                          active=transfer_active_set(active, instance) if reuse_active_set and stable
                          else None, fast_path=p < fast_path_failed_at, **decide_kwargs)
        if decision.fast_path == FastPath.UNDECIDED:
            fast_path_failed_at = min(fast_path_failed_at, p)
        if decision.weights is not None or decision.certificate is not None:
            active = _grow(active, instance, decision)
        record = Probe(p, decision.verdict, decision.margin_lower, decision.margin_upper,
                       decision.solver, decision.rounds, round(decision.seconds, 3))
        probes.append(record)
        kappa[p] = decision.margin_lower
        if on_probe is not None:
            on_probe(record)
        return decision.verdict

    lower, upper, status = bracket_search(probe, p_min, p_max, guess,
                                          max(1, guess // FIRST_STEP_DIVISOR))
    p_star = lower if status == CapacityStatus.EXACT else None
    return CapacityResult(p_star, lower, upper, status, kappa.get(lower), tuple(probes),
                          time.monotonic() - start)


def _grow(active, instance, decision):
    """Remember the constraints a probe found binding (its certificate's support)."""
    mask = transfer_active_set(active, instance) if active is not None else np.zeros(
        (instance.n, instance.n_slots), dtype=bool)
    if decision.certificate is not None:
        mask[decision.certificate.rows, decision.certificate.slots] = True
    if active is not None and active.shape[0] > mask.shape[0]:
        keep = active.copy()
        keep[:mask.shape[0], :mask.shape[1]] |= mask
        return keep
    return mask
