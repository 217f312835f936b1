"""Capacity: the largest p whose prefix instance is certified feasible.

The family is nested (the constraints of the prefix of size p are a subset of
those of size p + 1), so feasibility is monotone in p and the per-seed capacity
p* is found exactly by keeping an explicit bracket: ``lower`` is the largest p
certified feasible, ``upper`` the smallest p certified infeasible. An
undetermined probe is never counted as either: the search stops and reports
the bracket it had.

p* is defined at a tolerance tau (an infeasible verdict bounds kappa* by tau,
not by 0), so it is only meaningful where kappa* drops by much more than tau
per fact. ``boundary_tolerance`` checks that on every row that asks for it: the
closing infeasible p = p* + 1 must be certified at the tighter tolerance too,
and the row records the verdict and the certified bound. The probe right above
the largest feasible p, the one that closes the bracket if it is infeasible, is
decided at that tolerance from the start (a few IPM iterations more); only
where the bracket closed elsewhere is p* + 1 decided again (seeded with the
last probe's W). p* itself stays certified at p*; monotonicity carries any
infeasible verdict at p* + 1 to every larger p.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from feasibility.core.certify import FEASIBLE, INFEASIBLE, classify
from feasibility.core.instances import Instance
from feasibility.core.status import CapacityStatus, FastPath, Verdict
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE
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
    #: a re-decision of the closing infeasible p at the boundary tolerance, not a
    #: step of the search (see capacity_bisection's boundary_tolerance)
    boundary: bool = False
    #: what the structured fast path did here: where it was tried and failed, the
    #: search skips it at larger p, and a resumed search must know that too
    fast_path: FastPath = FastPath.NOT_TRIED

    def describe(self) -> str:
        """One line for a log: p, verdict, the certified bracket on kappa*, cost."""
        what = "boundary check" if self.boundary else "probe"
        bounds = ", ".join(f"{name} {value:.3e}" for name, value in
                           (("kappa* >=", self.margin_lower), ("<=", self.margin_upper))
                           if value is not None)
        rounds = f"{self.rounds} round{'s' if self.rounds != 1 else ''}"
        return (f"{what} p={self.p} {self.verdict}"
                + (f" ({bounds})" if bounds else "")
                + f", {self.solver}, {rounds}, {self.seconds:.1f}s")


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
    #: the certified upper bound on kappa* at p_infeasible (the best of the search's
    #: probe there and the boundary check's)
    kappa_bound_above: float | None = None
    #: the tolerance of the boundary check and its verdict at p_infeasible (None: not run)
    boundary_tolerance: float | None = None
    boundary_verdict: Verdict | None = None

    def row(self) -> dict:
        """solves and rounds: the search's; seconds: the whole task, of which
        boundary_seconds the boundary check (0 where the search's probe sufficed)."""
        search = [probe for probe in self.probes if not probe.boundary]
        check = [probe.seconds for probe in self.probes if probe.boundary]
        return {"p_star": self.p_star, "p_feasible": self.p_feasible,
                "p_infeasible": self.p_infeasible, "status": self.status,
                "kappa_at_p_star": self.kappa_at_p_star, "solves": len(search),
                "rounds": sum(probe.rounds for probe in search),
                "seconds": round(self.seconds, 3),
                "kappa_bound_above": self.kappa_bound_above,
                "boundary_tolerance": self.boundary_tolerance,
                "boundary_verdict": self.boundary_verdict,
                "boundary_seconds": (sum(check) if check else 0.0)
                if self.boundary_tolerance is not None else None}

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
#: the guess of each model is this fraction of c(d)'s p: the decoupled p* is
#: 0.97-0.99 of the coupled one at every d measured (0.980 at d = 96, 0.989 at
#: d = 128, 4 seeds each), and a first probe above p* gives the secant nothing
#: (decoupled d = 96: the coupled guess was infeasible on 3 seeds of 3, the next
#: step down on 2). Summed over d = 24-128 it halves the guess's relative error
#: (9% against 17%), though at d = 128 the coupled guess, itself 0.7% low, is nearer
GUESS_FRACTION = {"coupled": 1.0, "decoupled": 0.98}
#: the smallest instance has two facts
SMALLEST_P = 2
#: the first step of the walk from the guess is guess / FIRST_STEP_DIVISOR:
#: ~1.5% of p, about the spread of p* between seeds at d = 64 and 96
FIRST_STEP_DIVISOR = 64
#: a probe that a solver decides feasible goes on until its certified bracket on
#: kappa* is this tight (a few IPM iterations more), so that kappa(p) can place
#: the next probe: near p* kappa*(p) is nearly linear (a secant through two
#: probes 8 facts apart predicted p* within 0.3-4.5 facts at d = 16-48)
KAPPA_RTOL = 0.02
KAPPA_ESTIMATE_SPREAD = 2.0
#: with one such probe only, kappa*(p) is taken to fall by
#: 1 / (KAPPA_SLOPE_SCALE sqrt(d_in d_out) p) per fact: the measured drops near p*
#: (1.3e-3 at d = 16, 3.5e-4 at 24, 1.4e-4 at 32, 6.9e-5 at 48) are within a
#: factor 1.6 of 1 / (d p*); a line through each capacity-xl seed's feasible
#: probes (d = 96-192, 17 seeds) puts the scale at 0.47-1.21, median 0.70. A
#: replay of those searches on such lines (benchmarks/search_replay.py) took
#: 0.5-0.65 fewer solves a seed at 0.7 than at 1.0, the fewest of 0.5-1.0
KAPPA_SLOPE_SCALE = 0.7
#: ... and a feasible probe's bracket on kappa* is also tight enough once it is
#: no wider than that drop over this many facts (kappa_resolution): its middle
#: then places the secant's zero to a quarter of a fact, where KAPPA_RTOL alone
#: asks for ~0.04 near p* (d = 192, p = 3668: kappa* = 4.9e-6, the drop 2.3e-6
#: a fact) and the last 9 of 26 IPM iterations went to closing that bracket
KAPPA_RESOLUTION_FACTS = 0.5


def capacity_guess(d: int, model: str = "coupled") -> int:
    """A starting point for the search: the p solving p ln p = c(d) d^2, times
    the model's GUESS_FRACTION (1 for a model not listed there).

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
    return max(int(round(p * GUESS_FRACTION.get(model, 1.0))), SMALLEST_P)


def kappa_estimate(probe: Probe) -> float | None:
    """kappa* of a feasible probe: the middle of its certified bracket where that
    is within a factor KAPPA_ESTIMATE_SPREAD; None elsewhere (a fast path's W has
    no upper bound). Near tau the IPM's accuracy, not KAPPA_RTOL, sets the
    width (7% at kappa* = 1.4e-6, d = 64), yet there it is a small fraction of
    a fact: the secant's error is width / slope."""
    lower, upper = probe.margin_lower, probe.margin_upper
    if (probe.verdict != FEASIBLE or lower is None or upper is None or lower <= 0
            or lower * KAPPA_ESTIMATE_SPREAD < upper):
        return None
    return 0.5 * (lower + upper)


def kappa_slope(p: int, order: int) -> float:
    """The drop of kappa* per added fact near p that the search assumes,
    1 / (KAPPA_SLOPE_SCALE sqrt(order) p), order = d_in d_out."""
    return 1.0 / (KAPPA_SLOPE_SCALE * math.sqrt(order) * p)


def kappa_resolution(p: int, order: int) -> float:
    """The width of a bracket on kappa* at p that is worth KAPPA_RESOLUTION_FACTS
    facts to the secant (a probe's kappa_atol)."""
    return KAPPA_RESOLUTION_FACTS * kappa_slope(p, order)


def secant_zero(points: Mapping[int, float]) -> float | None:
    """Where the line through the two largest p of {p: kappa} reaches kappa = 0
    (None with fewer than two points or a kappa that does not fall with p)."""
    if len(points) < 2:
        return None
    (p1, k1), (p2, k2) = sorted(points.items())[-2:]
    if not k1 > k2 > 0:
        return None
    return p2 + k2 * (p2 - p1) / (k1 - k2)


def secant_prediction(points: Mapping[int, float], lower: int, upper: int | None,
                      order: int) -> int | None:
    """The p to probe next inside (lower, upper): the last p before the zero of
    kappa(p) (the secant's, or with one point the line of slope
    1 / (KAPPA_SLOPE_SCALE sqrt(order) p) through it; order = d_in d_out), or
    lower + 1 when that is lower itself; None (bisect) when the line puts p* at
    or past a certified infeasible p, or nothing is known of kappa at lower."""
    zero = secant_zero(points)
    if zero is None and lower in points:
        zero = lower + points[lower] / kappa_slope(lower, order)
    if zero is None:
        return None
    candidate = math.floor(zero)
    if upper is not None and candidate >= upper:
        return None
    return max(candidate, lower + 1)


def transfer_active_set(active: np.ndarray | None, instance: Instance) -> np.ndarray | None:
    """Carry an active-set mask to another prefix: slot labels are stable."""
    if active is None:
        return None
    shape = (instance.n, instance.n_slots)
    out = np.zeros(shape, dtype=bool)
    rows, cols = min(shape[0], active.shape[0]), min(shape[1], active.shape[1])
    out[:rows, :cols] = active[:rows, :cols]
    return out


def bracket_search(probe, p_min: int, p_max: int, guess: int, step: int,
                   predict=None) -> tuple[int, int | None, CapacityStatus]:
    """Largest p in [p_min, p_max] with probe(p) == FEASIBLE, for a monotone probe.

    Walks from the guess in doubling steps (the first one `step`) until the
    verdict flips, then bisects the closed bracket. Returns (lower, upper,
    status): lower is the largest p certified feasible (p_min - 1 if none),
    upper the smallest certified infeasible (None if none); status is 'exact',
    'at_least_p_max' (p_max feasible) or 'undetermined' (a probe was, and the
    search stopped there: it never counts as infeasible).
    ``predict(lower, upper)``: a p strictly between them (upper None: above
    lower) to probe next instead of the midpoint, or None; above the walk's
    next step it is cut to that step. Only the number of probes depends on it.
    """
    lower, upper = p_min - 1, None
    p = min(max(guess, p_min), p_max)
    while True:
        verdict = probe(p)
        if verdict == FEASIBLE:
            lower = p
            if p == p_max:
                return lower, upper, CapacityStatus.AT_LEAST_P_MAX
        elif verdict == INFEASIBLE:
            upper = p
        else:
            return lower, upper, CapacityStatus.UNDETERMINED
        if upper is not None and upper - lower <= 1:
            return lower, upper, CapacityStatus.EXACT
        if lower < p_min:  # nothing feasible yet: walk down
            p = max(upper - step, p_min)
            step *= 2
            continue
        predicted = predict(lower, upper) if predict is not None else None
        if upper is None:  # walk up, no further than the walk's step
            p = min(p_max if predicted is None else predicted, lower + step, p_max)
            step *= 2
        else:
            p = predicted if predicted is not None else (lower + upper) // 2


def capacity_bisection(full: Instance, guess: int | None = None, p_min: int = SMALLEST_P,
                       solver: str | None = None, margin: float = 0.0,
                       reuse_active_set: bool = True, on_probe=None,
                       known: Mapping[int, Probe] | None = None, secant: bool = True,
                       seed_memory: bool = True, memory: np.ndarray | None = None,
                       boundary_tolerance: float | None = None,
                       known_boundary: Probe | None = None, checkpoints=None,
                       **decide_kwargs) -> CapacityResult:
    """Largest certified-feasible prefix of `full` (p_max = full.n facts).

    ``full``: an Instance, or anything with its n, decoupled, assignment and
    prefix(p) (``core.instances.GeneratedFamily`` draws each prefix on demand).
    ``guess``: where to start; steps of guess/64, doubling, bracket p*, then
    bisection closes the bracket. ``on_probe(probe, weights)`` is called after
    each solve, with the probe's W where it seeds the next probes (a solver's
    feasible W; None elsewhere).
    ``known``: probes certified by an earlier, interrupted run of the same search
    (``capacity.journal``), reused instead of solved again; a p that a known probe
    implies (p below a certified feasible one, or above a certified infeasible
    one: prefixes are nested) is not solved either, so that a search resumed by
    code that probes elsewhere (another guess, another slope) loses none of them.
    ``secant``: feasible probes bracket kappa* to KAPPA_RTOL (or to
    kappa_resolution, where that is wider) and, once two have,
    the next probe goes where their secant puts p* (secant_prediction) instead
    of the midpoint. ``seed_memory``: each probe's active set starts from the
    tightest constraints of the last probe's W (decide's seed_memory), not the
    Hebbian memory's. p* is the same either way; only which probes are solved,
    and how fast, differs. ``memory``: the W that seeds the first probe solved
    (a resumed run passes the last W its journal kept, ProbeJournal.memory).
    ``boundary_tolerance``: once the bracket is closed, the certificate at
    p_infeasible must also hold at this tighter tolerance. A probe at p where
    p - 1 is certified feasible (the one that closes the bracket if infeasible)
    is decided at it directly, and its verdict at the search's tolerance is what
    the search goes on; where the bracket closed at a probe that does not show
    it, p_infeasible is decided again at it (one solve, seeded with the last
    probe's W and active set). The verdict at the tighter tolerance goes in the
    result (boundary_verdict): infeasible says that p* does not depend on the
    tolerance between the two, anything else that it may.
    ``known_boundary``: that check's probe from an interrupted run, reused.
    ``checkpoints(p, boundary)``: where the solve at p (the boundary check's,
    if boundary) keeps its progress while it runs, and resumes from
    (decide's checkpoint; ProbeJournal.checkpoint).
    The result's seconds count the reused probes' own seconds too: the time
    the search took, over however many runs.
    """
    known = dict(known or {})
    tolerance = decide_kwargs.get("tolerance", INFEASIBILITY_TOLERANCE)
    start = time.monotonic()
    p_max = full.n
    guess = min(max(guess or p_max, p_min), p_max)
    kappa: dict[int, float | None] = {}
    points: dict[int, float] = {}  # p -> kappa* of the feasible probes that bracket it
    feasible: set[int] = set()
    probes: list[Probe] = []
    reused: list[float] = []  # seconds of the probes an interrupted run had certified
    if secant:
        decide_kwargs.setdefault("kappa_rtol", KAPPA_RTOL)
    # slot labels survive prefixes only when targets are not relabelled
    stable = full.decoupled or np.array_equal(full.assignment, np.arange(full.n))
    active = None
    # the structured fast path finds W only well inside the feasible phase; once it
    # failed at some p it is not tried again at larger p (saves ~10 s a probe at d = 64).
    # It stays on below p* even though its W brings no kappa* for the secant: on real
    # files it is what decides the probes below p* (0.2 s where the IPM takes ~190 s)
    fast_path_failed_at = math.inf

    def probe(p: int) -> Verdict:
        nonlocal active, memory
        certified = known.get(p) or implying_probe(known.values(), p)
        if certified is not None:
            if certified.p not in kappa:   # each counted once, as if asked for
                reused.append(certified.seconds)
                finish(certified)
            return certified.verdict
        instance = full.prefix(p)
        aims = {"kappa_atol": kappa_resolution(p, full.d_in * full.d_out)} if secant else {}
        # the probe that closes the bracket if infeasible is also the boundary
        # check's: deciding it at the tighter tolerance now saves deciding it
        # twice (one whole solve at d >= 96, ~15 min at d = 128)
        closing = boundary_tolerance is not None and p - 1 in feasible
        decision = decide(instance, margin, solver,
                          active=transfer_active_set(active, instance) if reuse_active_set and stable
                          else None, fast_path=p < fast_path_failed_at,
                          seed_memory=memory if seed_memory else None,
                          checkpoint=checkpoints(p, False) if checkpoints is not None else None,
                          **{**aims, **decide_kwargs,
                             **({"tolerance": boundary_tolerance} if closing else {})})
        if decision.weights is not None or decision.certificate is not None:
            active = _grow(active, instance, decision)
        # a solver's W binds nearly what the next optimum binds, and its tightest
        # constraints seed the next active set; a closed-form or fast-path W does
        # not (coupled d = 96 seed 0: p = 1116 took 6 rounds, 2,466 s, from the
        # fast path's W at 1108), and the next probe starts afresh instead
        seed = decision.weights if decision.rounds > 0 else None
        if seed is not None:
            memory = seed
        # the search goes on its own tolerance's verdict: where the tighter one
        # left it undetermined, the certificate may still reach tau
        verdict = classify(decision.margin_lower, decision.margin_upper, margin, tolerance) \
            if closing else decision.verdict
        record = Probe(p, verdict, decision.margin_lower, decision.margin_upper,
                       decision.solver, decision.rounds, round(decision.seconds, 3),
                       fast_path=decision.fast_path)
        if on_probe is not None:
            on_probe(record, seed)
        return finish(record)

    def finish(record: Probe) -> Verdict:
        nonlocal fast_path_failed_at
        if record.fast_path == FastPath.UNDECIDED:
            fast_path_failed_at = min(fast_path_failed_at, record.p)
        probes.append(record)
        kappa[record.p] = record.margin_lower
        if record.verdict == FEASIBLE:
            feasible.add(record.p)
        estimate = kappa_estimate(record)
        if estimate is not None:
            points[record.p] = estimate
        return record.verdict

    def predict(lower: int, upper: int | None) -> int | None:
        return secant_prediction(points, lower, upper, full.d_in * full.d_out)

    lower, upper, status = bracket_search(probe, p_min, p_max, guess,
                                          max(1, guess // FIRST_STEP_DIVISOR),
                                          predict if secant else None)
    p_star = lower if status == CapacityStatus.EXACT else None
    closing = [probe for probe in probes if probe.p == upper and probe.margin_upper is not None]
    bound = min((probe.margin_upper for probe in closing), default=None)
    boundary_verdict = None
    if boundary_tolerance is not None and status == CapacityStatus.EXACT:
        if bound is not None and bound <= margin + boundary_tolerance:
            boundary_verdict = INFEASIBLE
        else:
            check = known_boundary if known_boundary is not None and known_boundary.p == upper \
                else _decide_boundary(full.prefix(upper), margin, solver, boundary_tolerance,
                                      active if reuse_active_set and stable else None,
                                      memory if seed_memory else None,
                                      checkpoints(upper, True) if checkpoints is not None
                                      else None, decide_kwargs)
            if known_boundary is check:
                reused.append(check.seconds)
            elif on_probe is not None:
                on_probe(check, None)
            probes.append(check)
            boundary_verdict = check.verdict
            if check.margin_upper is not None:
                bound = check.margin_upper if bound is None else min(bound, check.margin_upper)
    return CapacityResult(p_star, lower, upper, status, kappa.get(lower), tuple(probes),
                          time.monotonic() - start + sum(reused), kappa_bound_above=bound,
                          boundary_tolerance=boundary_tolerance,
                          boundary_verdict=boundary_verdict)


def implying_probe(probes, p: int) -> Probe | None:
    """The certified probe that implies p's verdict: the nearest feasible one at
    or above p, or infeasible at or below it (None if none does). A W storing a
    prefix stores every shorter one, and a certificate of infeasibility for a
    prefix is one for every longer prefix (its constraints are among theirs)."""
    above = [probe for probe in probes if probe.verdict == FEASIBLE and probe.p >= p]
    if above:
        return min(above, key=lambda probe: probe.p)
    below = [probe for probe in probes if probe.verdict == INFEASIBLE and probe.p <= p]
    return max(below, key=lambda probe: probe.p, default=None)


def _decide_boundary(instance, margin, solver, tolerance, active, memory, checkpoint,
                     decide_kwargs) -> Probe:
    """capacity_bisection's boundary check: the closing infeasible prefix decided
    again at the tighter tolerance."""
    decision = decide(instance, margin, solver, active=transfer_active_set(active, instance),
                      fast_path=False, seed_memory=memory, checkpoint=checkpoint,
                      **{**decide_kwargs, "tolerance": tolerance})
    return Probe(instance.n, decision.verdict, decision.margin_lower, decision.margin_upper,
                 decision.solver, decision.rounds, round(decision.seconds, 3), boundary=True)


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
