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

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Protocol

import cvxpy as cp
import numpy as np
from threadpoolctl import threadpool_limits

from feasibility.core import certify
from feasibility.core.certify import (
    FEASIBLE,
    INFEASIBLE,
    UNDETERMINED,
    CertifiedBracket,
    FarkasCertificate,
)
from feasibility.core.errors import InputError
from feasibility.core.instances import Instance
from feasibility.core.memory import physical_memory
from feasibility.core.status import EngineStatus, FastPath, RoundStatus, Verdict, engine_status
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE, MAX_ACTIVE_SET_ROUNDS
from feasibility.solvers import first_order, structured
from feasibility.solvers.ipm import SMALL_NEWTON, IPMState, KroneckerColumns, min_norm_point
from feasibility.solvers.programs import PROGRAMS, ReducedInstance, restricted_program
from feasibility.solvers.selection import smallest_per_row

#: a record per IPM iteration, at DEBUG: which p, which iteration, how many
#: constraints, the bracket on kappa* so far. Silent unless asked for
#: (logging.basicConfig(level=logging.DEBUG) in a notebook; capacity's
#: progress shows one a minute: capacity/progress.py's solver_heartbeat)
iteration_log = logging.getLogger(__name__)

#: measured fastest among the solvers that certify (see BENCHMARKS.md)
DEFAULT_SOLVER = "ipm"
#: tried in this order after the chosen solver leaves the verdict undetermined
ESCALATION = (("ipm", "minnorm"), ("clarabel", "socp"), ("highs", "lp"), ("ecos", "socp"), ("scs", "socp"))

SOLUTION_PRESENT = {EngineStatus.OPTIMAL, EngineStatus.OPTIMAL_INACCURATE}
INFEASIBLE_STATUSES = {EngineStatus.INFEASIBLE, EngineStatus.INFEASIBLE_INACCURATE}

# The IPM's cost per iteration is set by the Newton matrix (size r_out r_in),
# nearly independent of the number of constraints K, so it starts from the
# tightest constraints of a memory (_starting_margins) up to a memory budget:
# most probes then need one round. At least this many per input, more per round.
INITIAL_PER_INPUT = 24
# cvxpy's solvers pay for every constraint in their KKT system: few at a time
CONIC_PER_INPUT = 6
#: the budget, in constraints. More would save rounds only where the start
#: misses binding constraints (a bisection's first probe): the first probe of
#: coupled d = 96 seed 3 took 5 rounds, 617 s, 2.3 GiB from 250k constraints
#: and 3 rounds, 508 s, 3.9 GiB from 600k, but each iteration cost 14% more,
#: which every later probe (seeded by the last W: one round) would pay
ACTIVE_SET_BUDGET = 250_000
#: ...and at least this share of each input's constraints, where the budget gives
#: fewer (d > 128): from the budget's 135-137 per input of ~1,850 competitors
#: (7.3-7.5%) d = 128's probes took one round; from its 68 of 3,660 (1.9%) the
#: first d = 192 probe (coupled seed 0, p = 3661) had no verdict after two rounds
#: of ~70 min, each for binding constraints the start had missed (48, then 5);
#: from 179 (this share, capped below) it took one round, 23 IPM iterations.
#: Past d = 96 a constraint costs little beside the Newton matrix (K r_out^2
#: flops for the blocks against D^3 / 3)
START_SHARE = 0.07
#: ...within this fraction of physical memory for the start's directions and
#: their scaled copy (START_BYTES_PER_DIRECTION r_out bytes a constraint): on
#: 23.5 GiB, 179 per input at d = 192 (+1.25 GB), 83 at d = 256 (+1.0 GB, on
#: top of the float32 form's 14.0 GiB peak)
START_MEMORY_FRACTION = 0.08
START_BYTES_PER_DIRECTION = 16
#: below this fraction of each input's constraints in the start, the start is
#: taken from a mirror-descent memory over the constraints, not the Hebbian one:
#: coupled d = 96 (20% of them): 1 round against 5; d = 64 (80%): the Hebbian
#: start needs 1 round too, and the descent costs 4 s (coupled) to 11 s
#: (decoupled: it reads the p^2 d competitors twice a step) for nothing
MIRROR_START_FRACTION = 0.5
#: over drawn competitors (decoupled, d >= 192 here) that descent runs on each
#: input's DESCENT_SUBSET_SHARE Hebbian-tightest competitors, stored for it
#: within DESCENT_SUBSET_MEMORY_FRACTION of memory and freed before the IPM
#: starts; over all of them its 600 passes would take hours. Decoupled d = 192
#: seed 0, p = 3533: from the Hebbian start (186 an input, 5.3%) the first probe
#: took 4 rounds of ~25 min (657,138 -> 659,485 constraints); the descent on 529
#: an input (15%, 2.7 GiB, 300 steps in 5 min beside that probe) put 99.8% of the
#: 1,909 constraints round 2 added among its 186 tightest an input, and all of
#: them among 372, where the Hebbian order needed 30% of an input's for 99.4%
DESCENT_SUBSET_SHARE = 0.15
DESCENT_SUBSET_MEMORY_FRACTION = 0.15
#: ...where that subset holds at least this many times the start's constraints;
#: from fewer the Hebbian memory starts it (decoupled d = 16, 8 of 55 an input to
#: start: a descent on 9 an input held 122 of the 254 binding constraints in its
#: start, the Hebbian memory 145; on 17, 186; on 28, 215)
DESCENT_SUBSET_OVER_START = 2
ADDED_PER_INPUT = 32
# the IPM ends a round early once its relative duality gap is below this and
# constraints outside the active set are violated
CUT_GAP = 1e-1
#: an iterate's W is checked on every constraint (over drawn competitors a pass
#: that draws them all again: decoupled d = 192, 13-25% of an IPM iteration)
#: only where that may raise the bracket's lower bound, or cut the round: its
#: normalised margin on a few constraints, which bounds the one on all from
#: above, must exceed the bound less LOWER_BOUND_SLACK (far above the rounding
#: between the two computations). The few: the active set, and the
#: WATCHED_SLOTS tightest outside it in each of the WATCHED_ROWS tightest rows
#: of the last check on all (at d = 192 the active set alone, round 1's 5th
#: iterate: -1.2e-3 against -3.1e-3 on all, the bound -1.9e-3)
LOWER_BOUND_SLACK = 1e-9
WATCHED_ROWS = 32
WATCHED_SLOTS = 64
#: the IPM's ||A lam|| is the bound its certificate would give, before the
#: K-sized recomputation in certify: recompute only when ||A lam|| is within
#: this factor of deciding (margin + tolerance); the two differ by rounding
CERTIFY_WITHIN = 2.0
#: the IPM aims its certificate at this fraction of margin + tolerance, leaving
#: room for the rounding of its recomputation
IPM_TARGET_FRACTION = 0.5
#: after an optimal IPM round, a constraint outside the set is violated when its
#: scaled margin falls below ||W||^2 (what every binding constraint has at the
#: min-norm point) by more than this relative amount, the IPM's own accuracy
IPM_VIOLATION_RTOL = 1e-6
#: the same for cvxpy's SOCP (margins >= kappa, relative to max(1, |kappa|))
#: and LP (margins >= 1, absolute): about 100x the solvers' default accuracy
#: (1e-8), so that a constraint the solver meant to satisfy is not re-added
SOCP_VIOLATION_RTOL = 1e-9
LP_VIOLATION_ATOL = 1e-7
#: kappa_rtol (a bisection's probes) keeps a decided probe going for kappa*, but
#: for at most this many active-set rounds: far below p* one probe (d = 128,
#: p = 1790, kappa* = 7.2e-5) spent 4 rounds and 38 min there
ROUNDS_PAST_VERDICT = 1
#: max_margin's default relative width of the bracket on kappa*
MAX_MARGIN_RTOL = 1e-3
#: a decision given a checkpoint saves where it stands at most once this many
#: seconds (none in its first ones): every IPM iteration at d = 192 (2-3 min
#: each, one save ~25-50 MB: 32 bytes a constraint, 24 more for the bracket's
#: certificate), none in a test-sized probe
CHECKPOINT_SECONDS = 60.0


@dataclass(frozen=True, eq=False)
class DecisionProgress:
    """Where an unfinished decision stood: the active set of the round under way
    and, within it, the IPM's iterate. A decision resumed from it (``decide``'s
    checkpoint) solves on the same active set from the same iterate, and so walks
    on as the interrupted one would have: at d = 192 a probe takes an hour or
    more, and a process that ends mid-probe loses at most one IPM iteration."""

    rows: np.ndarray
    slots: np.ndarray
    state: IPMState
    #: the active-set rounds finished before the one under way, and how many of
    #: them began once the verdict was settled (ROUNDS_PAST_VERDICT)
    rounds: int
    rounds_past_verdict: int
    #: the decision's seconds up to this save, over every run
    seconds: float
    #: what was being decided: a checkpoint of another question is not resumed
    margin: float
    tolerance: float
    #: the bracket's evidence so far (a W and who offered it, a certificate and
    #: who): offered again on resume, so that the bracket goes on as it stood
    weights: np.ndarray | None = None
    lower_by: str = ""
    certificate: FarkasCertificate | None = None
    upper_by: str = ""
    #: what the structured fast path did before the first save (None: not
    #: recorded, as in checkpoints saved before it was); a resumed decision does
    #: not run it again (at d = 192 it takes minutes and decides nothing there)
    fast_path: FastPath | None = None


class CheckpointStore(Protocol):
    """Where a decision keeps its DecisionProgress (capacity.journal's ProbeCheckpoint)."""

    def load(self) -> DecisionProgress | None: ...

    def save(self, progress: DecisionProgress) -> None: ...


class _Checkpoint:
    """A decision's link to its store: the progress it resumes from, and when it saves."""

    def __init__(self, store: CheckpointStore, margin: float, tolerance: float,
                 started: float, shape: tuple[int, int], p: int, bracket: CertifiedBracket):
        saved = store.load()
        if saved is not None and not (
                saved.margin == margin and saved.tolerance == tolerance
                and len(saved.rows) == len(saved.slots)
                and (len(saved.rows) == 0 or (saved.rows.max() < shape[0]
                                              and saved.slots.max() < shape[1]))):
            iteration_log.info("p=%d: its checkpoint is of another margin, tolerance or "
                               "prefix: solved afresh", p)
            saved = None
        self.p, self.bracket = p, bracket
        self.store, self.saved, self.started = store, saved, started
        self._evidence = saved
        self.margin, self.tolerance = margin, tolerance
        self.rounds_before = saved.rounds if saved is not None else 0
        #: kept by _solve_active_set: rounds finished, and begun past the verdict
        self.rounds, self.past = self.rounds_before, 0
        self._resumed_past = saved.rounds_past_verdict if saved is not None else 0
        self.seconds_before = saved.seconds if saved is not None else 0.0
        #: what the fast path did, saved with the progress (the decision sets it
        #: once it has run the fast path or not)
        self.fast_path: FastPath | None = None
        self.last_save = started

    def take_state(self, rows: np.ndarray, slots: np.ndarray) -> IPMState | None:
        """The saved iterate, once, for a round on exactly the active set it was saved on."""
        saved, self.saved = self.saved, None
        if saved is None:
            return None
        if not (np.array_equal(saved.rows, rows) and np.array_equal(saved.slots, slots)):
            iteration_log.info("p=%d: its checkpoint's active set is not this round's: "
                               "the round starts afresh", self.p)
            return None
        iteration_log.info("p=%d: resumed from its checkpoint: round %d, IPM iteration %d "
                           "on %s constraints, %s s before", self.p, saved.rounds + 1,
                           saved.state.iteration, f"{len(rows):,}", f"{saved.seconds:,.0f}")
        return saved.state

    def restore_bracket(self) -> None:
        """Offer the saved evidence to the bracket (recomputed there, like any)."""
        saved, self._evidence = self._evidence, None
        if saved is not None and saved.weights is not None:
            self.bracket.offer_weights(saved.weights, saved.lower_by)
        if saved is not None and saved.certificate is not None:
            self.bracket.offer_certificate(saved.certificate, saved.upper_by)

    def take_past(self) -> int:
        """Rounds begun past the verdict before the resume (the first engine's, once)."""
        past, self._resumed_past = self._resumed_past, 0
        return past

    def saver(self, rows: np.ndarray, slots: np.ndarray):
        """The IPM's on_state for a round on (rows, slots)."""
        def save(state: IPMState):
            now = time.monotonic()
            if now - self.last_save < CHECKPOINT_SECONDS:
                return
            bracket = self.bracket
            self.store.save(DecisionProgress(
                rows, slots, state, self.rounds, self.past,
                self.seconds_before + now - self.started, self.margin, self.tolerance,
                bracket.weights, bracket.lower_by, bracket.certificate, bracket.upper_by,
                self.fast_path))
            self.last_save = time.monotonic()
        return save


@dataclass(frozen=True, eq=False)
class Decision:
    """A verdict and its evidence: a W, a Farkas certificate, or the reason."""

    verdict: Verdict
    margin_lower: float | None
    margin_upper: float | None
    margin: float
    tolerance: float
    solver: str
    program: str
    solvers_tried: tuple[str, ...]
    statuses: tuple[RoundStatus, ...]
    rounds: int
    active_constraints: int
    constraints: int
    seconds: float
    reason: str
    weights: np.ndarray | None = field(default=None, repr=False)
    certificate: FarkasCertificate | None = field(default=None, repr=False)
    #: whether the structured fast path ran, and whether it decided
    fast_path: FastPath = FastPath.NOT_TRIED

    def row(self) -> dict:
        """Flat record (arrays stay out: save them with ``save_weights``)."""
        return {"verdict": self.verdict, "margin_lower": self.margin_lower,
                "margin_upper": self.margin_upper, "margin": self.margin,
                "tolerance": self.tolerance, "solver": self.solver, "program": self.program,
                "solvers_tried": "+".join(self.solvers_tried),
                "statuses": "+".join(map(str, self.statuses)), "rounds": self.rounds,
                "active_constraints": self.active_constraints,
                "constraints": self.constraints, "seconds": self.seconds,
                "reason": self.reason}

    def evidence_problems(self, instance: Instance) -> list[str]:
        """What does not hold in this record, recomputed in numpy from `instance`
        (see certify.evidence_problems); empty when the evidence proves the verdict."""
        return certify.evidence_problems(instance, self.verdict, self.margin_lower,
                                         self.margin_upper, self.weights, self.certificate,
                                         self.margin, self.tolerance)

    def verify(self, instance: Instance) -> bool:
        """Recompute the evidence outside every solver: the margin of W over all
        constraints, the certificate's bound, and that classify gives the verdict."""
        return not self.evidence_problems(instance)


def hebbian_memory(instance: Instance) -> np.ndarray:
    """W_H = sum_i y_t(i) x_i^T: no solver, and the seed of the active set."""
    return instance.own_targets().T @ instance.inputs


@dataclass(frozen=True, eq=False)
class RoundContext:
    """What every round of the active-set loop sees, whichever engine runs it."""

    instance: Instance
    reduced: ReducedInstance
    solver: str
    program: str
    bracket: CertifiedBracket
    done: Callable[[CertifiedBracket], bool]
    margin: float
    tolerance: float
    #: past the verdict, the engines aim at lower >= (1 - rtol) upper or at
    #: upper - lower <= atol (both None: verdict only; see bracket_tight)
    rtol: float | None = None
    atol: float | None = None
    #: rounds allowed to start once the verdict is settled (None: until done)
    rounds_past_verdict: int | None = None
    #: time.monotonic() when the decision began, less the seconds of the runs it
    #: resumed from (the iteration log's clock)
    started: float = 0.0
    #: where the IPM's rounds save their iterate, and the one they resume from
    checkpoint: _Checkpoint | None = None


@dataclass(frozen=True, eq=False)
class RoundOutcome:
    """One restricted solve: its status and the constraints to add next; no
    constraints (None) ends this engine's loop, with `reason` if undecided."""

    status: RoundStatus
    new: np.ndarray | None
    reason: str = ""


def _restricted_ipm(ctx: RoundContext, active, form: str):
    """One restricted solve by the structured IPM, certifying as it goes.

    The round ends early ("cut") once the iterate is moderately converged and
    already violates constraints outside the active set: an exact solve of a
    set about to grow would be wasted work. Returns (result, new constraints).
    """
    instance, reduced, bracket = ctx.instance, ctx.reduced, ctx.bracket
    decisive = ctx.margin + ctx.tolerance
    rows, slots = np.nonzero(active)
    used, local = np.unique(rows, return_inverse=True)
    columns = KroneckerColumns(reduced.directions(rows, slots), reduced.inputs[used], local)
    mask = instance.slot_mask()
    found = {}
    outside = None  # the tightest constraints outside at the last check on all
    checkpoint = ctx.checkpoint
    start = checkpoint.take_state(rows, slots) if checkpoint is not None else None
    # the IPM's own count, which a resumed round goes on with
    iterations = start.iteration - 1 if start is not None else 0

    def check_all(W_reduced):
        """W's scaled margins on every constraint, offered to the bracket."""
        nonlocal outside
        W = reduced.memory(W_reduced)
        scaled = certify.scaled_margins(instance, W)
        bracket.offer_weights(W, "ipm", scaled)
        found["scaled"], found["norm2"] = scaled, float(np.sum(W_reduced**2))
        outside = tightest_columns(reduced, scaled, mask & ~active)

    def check(lam, W_reduced, rel_gap):
        nonlocal iterations
        iterations += 1
        found.pop("scaled", None)
        # ||A lam|| is the bound lam would certify: recompute it only where it can
        # decide the verdict, or close the bracket as far as asked (rtol, atol)
        norm = float(np.linalg.norm(W_reduced))
        cutting = rel_gap < CUT_GAP
        if cutting or may_raise_lower(bracket.lower, [columns, outside], W_reduced, norm):
            check_all(W_reduced)
        if norm <= CERTIFY_WITHIN * decisive or (
                bracket.lower is not None
                and bracket_tight(bracket.lower, norm, ctx.rtol, ctx.atol)):
            bracket.offer_certificate(FarkasCertificate(rows, slots, lam), "ipm")
        if iteration_log.isEnabledFor(logging.DEBUG):
            iteration_log.debug(
                "p=%d: IPM iteration %d on %s constraints after %s s, relative gap %.1e, "
                "kappa* in [%s, %s]", instance.n, iterations, f"{len(rows):,}",
                f"{time.monotonic() - ctx.started:,.0f}", rel_gap, _bound(bracket.lower),
                _bound(bracket.upper))
        if ctx.done(bracket):
            return EngineStatus.STOPPED
        if cutting:
            scaled = found["scaled"]
            violated = (scaled < found["norm2"] * (1 - CUT_GAP)) & mask & ~active
            if violated.any():
                found["new"] = smallest_per_row(scaled, ADDED_PER_INPUT, violated)
                return EngineStatus.CUT
        return None

    result = min_norm_point(
        columns, callback=check, target=IPM_TARGET_FRACTION * decisive, form=form,
        start=start, on_state=checkpoint.saver(rows, slots) if checkpoint is not None else None)
    bracket.offer_certificate(FarkasCertificate(rows, slots, result.lam), "ipm")
    if "new" not in found and result.status == EngineStatus.OPTIMAL:
        if "scaled" not in found:  # the last iterate was not checked on all constraints
            check_all(result.W)
        scaled, norm2 = found["scaled"], found["norm2"]
        violated = (scaled < norm2 * (1 - IPM_VIOLATION_RTOL)) & mask & ~active
        if violated.any():
            found["new"] = smallest_per_row(scaled, ADDED_PER_INPUT, violated)
    return result, found.get("new")


def may_raise_lower(lower: float | None, watched: list[KroneckerColumns | None],
                    W_reduced: np.ndarray, norm: float) -> bool:
    """Whether W's normalised margin on all constraints may exceed the bracket's
    `lower`: its margin on the `watched` constraints (None: none), an upper
    bound on that, is above lower - LOWER_BOUND_SLACK."""
    if lower is None:
        return True
    if norm == 0:
        return False
    smallest = min(float(columns.apply_transpose(W_reduced).min())
                   for columns in watched if columns is not None)
    return smallest / norm > lower - LOWER_BOUND_SLACK


def tightest_columns(reduced: ReducedInstance, scaled: np.ndarray,
                     eligible: np.ndarray) -> KroneckerColumns | None:
    """The WATCHED_SLOTS eligible constraints of smallest `scaled` margin in each
    of the WATCHED_ROWS rows whose smallest is least (None where none is eligible)."""
    smallest = np.min(scaled, axis=1, where=eligible, initial=np.inf)  # no n x slots copy
    rows = np.argsort(smallest, kind="stable")[:WATCHED_ROWS]
    rows = rows[np.isfinite(smallest[rows])]
    if rows.size == 0:
        return None
    picked = smallest_per_row(scaled[rows], WATCHED_SLOTS, eligible[rows])
    local, slots = np.nonzero(picked)
    return KroneckerColumns(reduced.directions(rows[local], slots), reduced.inputs[rows], local)


def bracket_tight(lower: float, upper: float, rtol: float | None,
                  atol: float | None) -> bool:
    """Whether [lower, upper] is as tight as asked: lower >= (1 - rtol) upper,
    or upper - lower <= atol (an aim that is None asks nothing)."""
    return ((rtol is not None and lower >= (1 - rtol) * upper)
            or (atol is not None and upper - lower <= atol))


def _bound(value: float | None) -> str:
    """One end of a bracket for the iteration log (None: no bound yet)."""
    return "?" if value is None else f"{value:.3e}"


#: the IPM gives its Newton matrix at most this fraction of physical memory: in
#: float64 (packed, d = 192: 5.4 GB; d = 256: 17 GB) where it fits, else in float32
NEWTON_MEMORY_FRACTION = 0.5

#: why an IPM round that added no constraint ended without a verdict
IPM_STALL_REASONS = {
    EngineStatus.NUMERICAL_ERROR: "ipm: numerical error",
    EngineStatus.TARGET: "ipm: its certificate did not verify in the full space",
}


def newton_memory_budget() -> int:
    """Bytes the IPM may give its Newton matrix: NEWTON_MEMORY_FRACTION of this
    machine's physical memory (no limit where that cannot be read)."""
    return int(NEWTON_MEMORY_FRACTION * physical_memory())


def newton_forms(reduced: ReducedInstance, constraints: int) -> dict[str, int]:
    """The forms the IPM's Newton matrix can take on an active set of K constraints,
    fastest first, with the bytes of their largest array: the K x K Gram form
    ("gram", float64) where K is no more than the D = r_out r_in unknowns; the
    D-space form packed (D (D + 1) / 2 numbers), in the float64 it ends in
    ("mixed"), or kept in float32 to the end ("float32": d = 256 in 8.6 GB
    instead of 17, for conjugate gradients at each solve; ipm.NEWTON_FORMS)."""
    D = reduced.r_out * reduced.r_in
    packed = D * (D + 1) // 2
    forms = {"gram": 8 * constraints ** 2} if constraints <= D else {}
    return forms | {"mixed": 8 * packed, "float32": 4 * packed}


def newton_form(reduced: ReducedInstance, constraints: int) -> tuple[str | None, int]:
    """The fastest Newton form within newton_memory_budget(), and its bytes
    (None, and the fewest bytes of any form, where none fits)."""
    forms = newton_forms(reduced, constraints)
    budget = newton_memory_budget()
    fitting = [form for form, need in forms.items() if need <= budget]
    if not fitting:
        return None, min(forms.values())
    return fitting[0], forms[fitting[0]]


def _ipm_round(ctx: RoundContext, active) -> RoundOutcome:
    """The structured IPM on the active set (the "minnorm" program)."""
    form, need = newton_form(ctx.reduced, int(active.sum()))
    if form is None:
        # a 5,000-fact file of 1024-d embeddings with 168 answers has D = 172,032:
        # 59 GB in float32, packed. Stop here, with one line, rather than be killed.
        return RoundOutcome(RoundStatus("ipm", EngineStatus.MEMORY_LIMIT), None,
                            f"ipm: its Newton matrix would need {need / 2**30:.1f} GiB, more "
                            f"than {NEWTON_MEMORY_FRACTION:.0%} of this machine's memory "
                            f"(order {ctx.reduced.r_out * ctx.reduced.r_in:,}); try "
                            f"`feasibility prune` or `capacity --file --dims`")
    result, new = _restricted_ipm(ctx, active, form)
    status = RoundStatus("ipm", engine_status(result.status), result.iterations)
    if ctx.done(ctx.bracket):
        return RoundOutcome(status, None)
    if new is None:
        return RoundOutcome(status, None, IPM_STALL_REASONS.get(
            result.status, "ipm converged on its active set but the bracket "
                           "is within solver accuracy of the margin"))
    return RoundOutcome(status, new)


def _conic_round(ctx: RoundContext, active) -> RoundOutcome:
    """A cvxpy solver on the restricted SOCP or LP: its duals are a certificate,
    its W a lower bound, and the constraints W violates join the active set."""
    instance, solver = ctx.instance, ctx.solver
    engine = SOLVERS[solver]
    rows, slots = np.nonzero(active)
    model = restricted_program(ctx.reduced, rows, slots, ctx.program)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.problem.solve(solver=engine.cvxpy_name, **engine.options)
        status = engine_status(model.problem.status)
    except (cp.error.SolverError, ValueError) as exc:
        # ValueError: cvxpy cannot unpack a solver's "unknown" status
        return RoundOutcome(RoundStatus(solver, EngineStatus.ERROR), None,
                            f"{solver} failed: {str(exc).splitlines()[0]}")
    record = RoundStatus(solver, status)
    duals = model.margin_constraint.dual_value
    if duals is not None:
        ctx.bracket.offer_certificate(FarkasCertificate.from_duals(rows, slots, duals), solver)
    if status not in SOLUTION_PRESENT or model.M.value is None:
        if status in INFEASIBLE_STATUSES:
            return RoundOutcome(record, None, "restricted program infeasible but its "
                                              "certificate is too weak")
        return RoundOutcome(record, None, f"{solver} returned status {status}")
    W = ctx.reduced.memory(model.M.value)
    ctx.bracket.offer_weights(W, solver)
    scaled = certify.scaled_margins(instance, W)
    if ctx.program == "socp":
        kappa = float(model.kappa.value)
        threshold = kappa - SOCP_VIOLATION_RTOL * max(1.0, abs(kappa))
    else:
        threshold = 1.0 - LP_VIOLATION_ATOL
    violated = (scaled < threshold) & instance.slot_mask() & ~active
    if not violated.any():
        return RoundOutcome(record, None, f"{solver} converged on its active set but the "
                                          f"bracket is within solver accuracy of the margin")
    return RoundOutcome(record, smallest_per_row(scaled, CONIC_PER_INPUT, violated))


def _descent_subset(instance: Instance, initial: int) -> int:
    """Competitors per input that the start's descent stores where they are drawn:
    DESCENT_SUBSET_SHARE of each input's, within DESCENT_SUBSET_MEMORY_FRACTION of
    memory, but DESCENT_SUBSET_OVER_START times the start's `initial` where that
    fits and the share is fewer; never more than there are."""
    fits = int(DESCENT_SUBSET_MEMORY_FRACTION * physical_memory()
               // (8 * instance.d_out * instance.n))
    share = int(np.ceil(DESCENT_SUBSET_SHARE * instance.n_slots))
    return min(instance.n_slots, fits, max(share, DESCENT_SUBSET_OVER_START * initial))


def _ipm_initial(instance: Instance) -> int:
    """Constraints per input in the IPM's starting active set: ACTIVE_SET_BUDGET
    shared out, or START_SHARE of each input's own where that is more and fits
    START_MEMORY_FRACTION of memory; never under INITIAL_PER_INPUT."""
    share = int(np.ceil(START_SHARE * instance.n_constraints / instance.n))
    fits = int(START_MEMORY_FRACTION * physical_memory()
               // (START_BYTES_PER_DIRECTION * instance.d_out * instance.n))
    return max(INITIAL_PER_INPUT, ACTIVE_SET_BUDGET // instance.n, min(share, fits))


def _conic_initial(instance: Instance) -> int:
    return CONIC_PER_INPUT


class Engine(NamedTuple):
    """One solver the active set can run: adding an engine is adding a row to
    SOLVERS with its round function; the loop (_solve_active_set) stays closed."""

    cvxpy_name: str | None
    programs: tuple[str, ...]           # the programs it can certify, default first
    options: dict
    round: Callable[[RoundContext, np.ndarray], RoundOutcome]
    initial_per_input: Callable[[Instance], int]   # tightest constraints to start from


#: ECOS stops after 100 iterations by default; near-critical probes can need more
ECOS_MAX_ITERS = 500
#: SCS's default accuracy (1e-4, absolute and relative) is far above the 1e-6
#: tolerance a certificate must reach; as a first-order method it then needs
#: more than its default 100,000 iterations
SCS_EPS, SCS_MAX_ITERS = 1e-9, 200_000

#: user-facing solver name -> Engine; "ipm" is the project's structured
#: interior-point method (solvers/ipm.py) on the dual "minnorm" program, the
#: others run the cvxpy models.
SOLVERS = {
    "ipm": Engine(None, ("minnorm",), {}, _ipm_round, _ipm_initial),
    "clarabel": Engine(cp.CLARABEL, ("socp", "lp"), {}, _conic_round, _conic_initial),
    "ecos": Engine(cp.ECOS, ("socp",), {"max_iters": ECOS_MAX_ITERS}, _conic_round,
                   _conic_initial),
    "scs": Engine(cp.SCS, ("socp", "lp"),
                  {"eps_abs": SCS_EPS, "eps_rel": SCS_EPS, "max_iters": SCS_MAX_ITERS},
                  _conic_round, _conic_initial),
    "highs": Engine(cp.HIGHS, ("lp",), {"highs_options": {"presolve": "off",
                                                          "solver": "simplex"}},
                    _conic_round, _conic_initial),
}


def installed_solvers() -> list[str]:
    available = set(cp.installed_solvers())
    return [name for name, engine in SOLVERS.items()
            if engine.cvxpy_name is None or engine.cvxpy_name in available]


def check_solver(name: str | None, program: str | None = None) -> tuple[str, str]:
    """Validate a solver/program pair, filling in defaults."""
    name = (name or DEFAULT_SOLVER).lower()
    if name not in SOLVERS:
        raise InputError(f"unknown solver {name!r}: choose one of {', '.join(SOLVERS)}")
    if name not in installed_solvers():
        raise InputError(f"solver {name!r} is not installed "
                         f"(installed: {', '.join(installed_solvers())})")
    programs = SOLVERS[name].programs
    program = (program or programs[0]).lower()
    if program not in PROGRAMS + ("minnorm",):
        raise InputError(f"unknown program {program!r}: choose one of {', '.join(PROGRAMS)}")
    if program not in programs:
        raise InputError(f"solver {name!r} cannot certify the {program} program "
                         f"(it can: {', '.join(programs)})")
    return name, program


def _solve_active_set(ctx: RoundContext, active, statuses, deadline):
    """Run the cutting-plane loop with one engine; returns (rounds used, reason)."""
    engine_round = SOLVERS[ctx.solver].round
    checkpoint = ctx.checkpoint
    rounds = 0
    past = checkpoint.take_past() if checkpoint is not None else 0
    # a resumed round goes on as the interrupted one was: it passed these gates
    # when it began, and its bracket has grown since
    going_on = checkpoint is not None and checkpoint.saved is not None
    while rounds < MAX_ACTIVE_SET_ROUNDS:
        if not going_on and ctx.done(ctx.bracket):
            return rounds, ""
        if (not going_on and ctx.rounds_past_verdict is not None
                and ctx.bracket.verdict(ctx.margin, ctx.tolerance) != UNDETERMINED):
            if past >= ctx.rounds_past_verdict:
                return rounds, ""
            past += 1
        going_on = False
        if deadline is not None and time.monotonic() > deadline:
            return rounds, "time limit reached"
        rounds += 1
        if checkpoint is not None:
            checkpoint.past = past
        outcome = engine_round(ctx, active)
        if checkpoint is not None:
            checkpoint.rounds += 1
        statuses.append(outcome.status)
        if outcome.new is None:
            return rounds, outcome.reason
        active |= outcome.new
    return rounds, f"no verdict after {MAX_ACTIVE_SET_ROUNDS} rounds"


def decide(instance: Instance, margin: float = 0.0, solver: str | None = None,
           program: str | None = None, tolerance: float = INFEASIBILITY_TOLERANCE,
           escalate: bool = True, active: np.ndarray | None = None,
           time_limit: float | None = None, bracket_rtol: float | None = None,
           fast_path: bool = True, kappa_rtol: float | None = None,
           kappa_atol: float | None = None, seed_memory: np.ndarray | None = None,
           mirror_descent: bool = True, checkpoint: CheckpointStore | None = None) -> Decision:
    """Decide whether one linear memory stores all facts at normalised margin >= `margin`.

    Returns a Decision whose verdict is certified (see certify.classify); the
    chosen solver runs first, then, if the verdict is still undetermined and
    `escalate` is set, the others in ESCALATION order.
    ``active``: optional n x n_slots boolean mask of constraints to start from.
    ``bracket_rtol``: keep going after the verdict until the bracket on kappa*
    is that tight, lower >= (1 - rtol) upper (the max-margin; SOCP only).
    ``fast_path``: False skips feasibility.structured (a caller that saw it fail
    on a smaller prefix of the same facts need not pay for it again).
    ``kappa_rtol``: like bracket_rtol where a solver decides the verdict
    feasible, but a verdict that the Hebbian memory or the fast path settles is
    final (capacity's probes: kappa* where it costs a few IPM iterations more).
    ``kappa_atol``: with it, such a bracket is also tight enough once
    upper - lower <= kappa_atol (a bisection asks for kappa* to a fraction of
    a fact, which near p* is a far wider bracket than kappa_rtol's).
    ``seed_memory``: a d_out x d_in memory whose tightest constraints start the
    active set (a bisection passes the W of its last probe: the optimal memory
    of a nearby p binds nearly the same constraints, so a probe needs one round
    where it took 3-4 at d = 96). Without one, the start is the tightest
    constraints of a mirror-descent memory where the start holds under
    MIRROR_START_FRACTION of them (solvers/first_order.py; over all constraints,
    or where the competitors are drawn on demand over each input's
    DESCENT_SUBSET_SHARE Hebbian-tightest ones), of the Hebbian memory elsewhere.
    ``mirror_descent``: False starts from the Hebbian memory there too (the
    engine before it; benchmarks compare the two).
    ``checkpoint``: where the decision saves its progress (DecisionProgress) at
    most once every CHECKPOINT_SECONDS, and what it resumes from: a saved
    active set stands for the start (it holds it), and the IPM round on exactly
    that set goes on from the saved iterate. The verdict is certified from scratch either way;
    rounds and seconds count the interrupted runs' too.
    """
    if not np.isfinite(margin) or margin < 0:
        raise InputError(f"margin must be a finite number >= 0, got {margin}")
    solver, program = check_solver(solver, program)
    if seed_memory is not None:
        seed_memory = np.asarray(seed_memory, dtype=np.float64)
        if seed_memory.shape != (instance.d_out, instance.d_in):
            raise InputError(f"seed_memory: expected shape {(instance.d_out, instance.d_in)}, "
                             f"got {seed_memory.shape}")

    def run() -> Decision:
        return _decide(instance, margin, solver, program, tolerance, escalate, active,
                       time_limit, bracket_rtol, fast_path, kappa_rtol, kappa_atol,
                       seed_memory, mirror_descent, checkpoint)
    if instance.d_in * instance.d_out < SMALL_NEWTON:
        # small products: one BLAS thread (see ipm.SMALL_NEWTON)
        with threadpool_limits(1, user_api="blas"):
            return run()
    return run()


def _decide(instance, margin, solver, program, tolerance, escalate, active, time_limit,
            bracket_rtol, fast_path, kappa_rtol, kappa_atol, seed_memory, mirror_descent,
            store):
    start = time.monotonic()
    deadline = None if time_limit is None else start + time_limit
    bracket = CertifiedBracket(instance)
    statuses: list[RoundStatus] = []
    tried: list[str] = []
    rounds_total = 0
    reason = ""
    fast = FastPath.NOT_TRIED
    mask = instance.slot_mask()

    rtol = bracket_rtol if bracket_rtol is not None else kappa_rtol
    atol = kappa_atol if bracket_rtol is None else None

    def settled(b: CertifiedBracket) -> bool:
        return b.verdict(margin, tolerance) != UNDETERMINED

    def done(b: CertifiedBracket) -> bool:
        verdict = b.verdict(margin, tolerance)
        # a bracket as tight as asked that straddles the margin decides nothing
        if (rtol is None and atol is None) or verdict != FEASIBLE:
            return verdict != UNDETERMINED
        return (b.lower is not None and b.upper is not None
                and bracket_tight(b.lower, b.upper, rtol, atol))

    # what ends the decision before any solver runs: a settled verdict, unless
    # bracket_rtol asks for kappa* itself
    final = done if bracket_rtol is not None else settled

    zero_cert = certify.zero_constraint_certificate(instance)
    if zero_cert is not None:
        bracket.offer_certificate(zero_cert, "exact")
    hebbian = hebbian_memory(instance)
    hebbian_margins = certify.scaled_margins(instance, hebbian)
    bracket.offer_weights(hebbian, "hebbian", hebbian_margins)
    checkpoint = None
    if store is not None and not final(bracket):
        checkpoint = _Checkpoint(store, margin, tolerance, start, mask.shape, instance.n,
                                 bracket)
    resumed = checkpoint is not None and checkpoint.saved is not None
    if resumed and checkpoint.saved.fast_path is not None:
        # the interrupted decision ran it (or chose not to) before its first save
        fast = checkpoint.saved.fast_path
    elif not final(bracket) and bracket_rtol is None and fast_path:
        # closed-form memories and separable structure of real files first
        # (solvers/structured.py); it steps aside where it does not pay
        if structured.worth_trying(instance):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            evidence = structured.fast_path(instance, margin, tolerance, left)
            tried.append(f"structured/{evidence.method or 'none'}")
            if evidence.weights is not None:
                bracket.offer_weights(evidence.weights, "structured")
            if evidence.certificate is not None:
                bracket.offer_certificate(evidence.certificate, "structured")
            fast = FastPath.DECIDED if settled(bracket) else FastPath.UNDECIDED
    if checkpoint is not None:
        checkpoint.fast_path = fast

    if active is None or active.shape != mask.shape:
        active = np.zeros_like(mask)
    active = active & mask
    if resumed:
        active[checkpoint.saved.rows, checkpoint.saved.slots] = True
    # what the runs this one resumes had spent
    rounds_before = checkpoint.rounds_before if checkpoint is not None else 0
    seconds_before = checkpoint.seconds_before if checkpoint is not None else 0.0
    if not final(bracket):
        initial = SOLVERS[solver].initial_per_input(instance)
        descend = mirror_descent and initial < MIRROR_START_FRACTION * mask.sum(axis=1).max()
        # a resumed decision's active set holds the start it was made from (at
        # d = 192 the descent over drawn competitors takes minutes)
        seeding = None if resumed else _starting_margins(
            instance, bracket, seed_memory, hebbian_margins, descend, initial)
    if not final(bracket):  # a mirror-descent memory can settle it
        if seeding is not None:
            active |= smallest_per_row(seeding, initial, mask)
        if resumed:  # only now: a verdict it settles must not end the decision before
            checkpoint.restore_bracket()  # the rounds the interrupted one was making
        reduced = ReducedInstance.of(instance)
        chain = [(solver, program)]
        if escalate:
            chain += [(s, p) for s, p in ESCALATION
                      if (s, p) != (solver, program) and s in installed_solvers()]
        for name, kind in chain:
            tried.append(f"{name}/{kind}")
            ctx = RoundContext(instance, reduced, name, kind, bracket, done, margin, tolerance,
                               rtol, atol,
                               ROUNDS_PAST_VERDICT if bracket_rtol is None else None,
                               start - seconds_before, checkpoint)
            rounds, reason = _solve_active_set(ctx, active, statuses, deadline)
            rounds_total += rounds
            # kappa_rtol: the next engine is not run for a tighter bracket alone
            if final(bracket):
                break
            if deadline is not None and time.monotonic() > deadline:
                break
    verdict = bracket.verdict(margin, tolerance)
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
        rounds=rounds_total + rounds_before, active_constraints=int(active.sum()),
        constraints=instance.n_constraints, seconds=time.monotonic() - start + seconds_before,
        reason=reason, weights=bracket.weights, certificate=bracket.certificate,
        fast_path=fast)


def _starting_margins(instance, bracket, seed_memory, hebbian_margins, descend, initial):
    """The margins whose tightest constraints start the active set: the seed
    memory's; else, with `descend` (the start holds under MIRROR_START_FRACTION
    of each input's constraints), those of a mirror-descent memory over all of
    them, or over drawn competitors over each input's Hebbian-tightest share
    (_descent_subset; offered to the bracket, like any W); else the Hebbian memory's."""
    if seed_memory is not None:
        return certify.scaled_margins(instance, seed_memory)
    subset = _descent_subset(instance, initial) if descend and instance.draws_competitors \
        else None
    if descend and (subset is None or subset >= DESCENT_SUBSET_OVER_START * initial):
        descended = instance if subset is None else first_order.tightest_competitors(
            instance, hebbian_margins, subset)
        approximate = first_order.mirror_descent_memory(descended)
        del descended
        if approximate is not None:
            margins = certify.scaled_margins(instance, approximate)
            bracket.offer_weights(approximate, "mirror-descent", margins)
            return margins
    return hebbian_margins


def max_margin(instance: Instance, solver: str | None = None,
               rtol: float = MAX_MARGIN_RTOL,
               **kwargs) -> Decision:
    """Bracket kappa*, the continuous order parameter, to relative width `rtol`.

    The active set runs past the verdict until lower >= (1 - rtol) upper;
    both ends stay certified. Infeasible instances return at once (kappa* <= tau).
    """
    solver, program = check_solver(solver)
    if program == "lp":
        raise InputError("max_margin needs a solver of the socp or minnorm program")
    return decide(instance, 0.0, solver, program, bracket_rtol=rtol, **kwargs)
