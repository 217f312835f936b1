"""decide's control: its time limit, escalation to the next solver, and a verdict
pinned near the transition, where the tolerance decides what can be proved."""
from dataclasses import replace

import numpy as np
import pytest

from feasibility import FEASIBLE, INFEASIBLE, UNDETERMINED, decide, generate, max_margin
from feasibility.capacity.bisection import capacity_bisection
from feasibility.core.certify import classify
from feasibility.core.status import EngineStatus, RoundStatus
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE
from feasibility.solvers import active_set
from feasibility.solvers.active_set import SOLVERS, RoundOutcome, installed_solvers


@pytest.fixture
def needs_a_solver():
    """Coupled d=6, p=20 (seed 0): infeasible, and neither the Hebbian memory nor a
    zero constraint decides it."""
    inst = generate("coupled", 6, 20, 0)
    decision = decide(inst)
    assert decision.verdict == INFEASIBLE and decision.rounds > 0
    return inst


def test_a_time_limit_of_zero_stops_before_any_round(needs_a_solver):
    decision = decide(needs_a_solver, time_limit=0.0)
    assert decision.verdict == UNDETERMINED
    assert decision.rounds == 0 and decision.statuses == ()
    assert decision.reason == "time limit reached"
    assert decision.verify(needs_a_solver)  # the bounds it has are still certified


def test_the_time_limit_is_checked_between_rounds(needs_a_solver, monkeypatch):
    """Rounds that take 10 s each (a fake clock) and never decide: a 25 s limit
    stops the loop after the third, and no other solver is tried."""
    clock = {"now": 0.0}
    monkeypatch.setattr(active_set.time, "monotonic", lambda: clock["now"])

    def stalling(ctx, active):
        clock["now"] += 10.0
        return RoundOutcome(RoundStatus(ctx.solver, EngineStatus.CUT, 1), active.copy())

    monkeypatch.setitem(SOLVERS, "ipm", SOLVERS["ipm"]._replace(round=stalling))
    decision = decide(needs_a_solver, time_limit=25.0)
    assert decision.rounds == 3 and decision.solvers_tried == ("ipm/minnorm",)
    assert decision.verdict == UNDETERMINED and decision.reason == "time limit reached"
    assert decision.seconds == 30.0


def failing_round(ctx, active):
    return RoundOutcome(RoundStatus(ctx.solver, EngineStatus.NUMERICAL_ERROR), None,
                        f"{ctx.solver}: injected failure")


def test_a_failing_solver_escalates_to_the_next(needs_a_solver, monkeypatch):
    if "clarabel" not in installed_solvers():
        pytest.skip("clarabel not installed")
    monkeypatch.setitem(SOLVERS, "ipm", SOLVERS["ipm"]._replace(round=failing_round))
    alone = decide(needs_a_solver, escalate=False)
    assert alone.verdict == UNDETERMINED and alone.reason == "ipm: injected failure"
    assert [str(s) for s in alone.statuses] == ["ipm:numerical_error"]
    escalated = decide(needs_a_solver)
    assert escalated.solvers_tried[:2] == ("ipm/minnorm", "clarabel/socp")
    assert escalated.verdict == INFEASIBLE and escalated.solver == "clarabel"
    assert escalated.statuses[0] == RoundStatus("ipm", EngineStatus.NUMERICAL_ERROR)
    assert escalated.verify(needs_a_solver)


def test_escalation_runs_the_whole_chain_when_every_solver_fails(needs_a_solver, monkeypatch):
    for name in SOLVERS:
        monkeypatch.setitem(SOLVERS, name, SOLVERS[name]._replace(round=failing_round))
    decision = decide(needs_a_solver)
    tried = [entry.split("/")[0] for entry in decision.solvers_tried]
    assert tried == [name for name, _ in active_set.ESCALATION if name in installed_solvers()]
    assert decision.verdict == UNDETERMINED and decision.verify(needs_a_solver)


def near_critical_instance():
    """The largest feasible prefix of coupled d=6, seed 3 (p* found by bisection)."""
    full = generate("coupled", 6, 30, 3)
    result = capacity_bisection(full)
    assert result.status == "exact"
    return full, result.p_star


def test_a_near_critical_verdict_depends_on_the_tolerance():
    """kappa* of the last feasible prefix is certified inside (1e-6, 1e-3): its Farkas
    certificate proves 'infeasible at tolerance 1e-3' but nothing at the default 1e-6,
    where the verdict is 'feasible'. A 1000x larger default tolerance flips it."""
    full, p_star = near_critical_instance()
    inst = full.prefix(p_star)
    bracket = max_margin(inst, rtol=1e-2)
    assert bracket.verify(inst)
    assert 0 < bracket.margin_lower <= bracket.margin_upper
    assert 1e-6 < bracket.margin_upper < 1e-3
    assert classify(None, bracket.margin_upper) == UNDETERMINED
    assert classify(None, bracket.margin_upper,
                    tolerance=1000 * INFEASIBILITY_TOLERANCE) == INFEASIBLE
    only_certificate = replace(bracket, verdict=INFEASIBLE, weights=None, margin_lower=None)
    assert not only_certificate.verify(inst)
    assert replace(only_certificate, tolerance=1e-3).verify(inst)
    decision = decide(inst)
    assert decision.verdict == FEASIBLE and decision.verify(inst)
    beyond = decide(full.prefix(p_star + 1))
    assert beyond.verdict == INFEASIBLE and beyond.verify(full.prefix(p_star + 1))


def test_a_new_engine_is_one_row_of_the_table(needs_a_solver, monkeypatch):
    """An engine is its round function (here: cvxpy's default solver through the
    conic round) and a start size; the shared loop needs no edit."""
    conic = SOLVERS["clarabel"]
    monkeypatch.setitem(SOLVERS, "mine", conic._replace(cvxpy_name=None, options={}))
    assert "mine" in installed_solvers()
    decision = decide(needs_a_solver, solver="mine", escalate=False)
    assert decision.verdict == INFEASIBLE and decision.solver == "mine"
    assert decision.solvers_tried == ("mine/socp",)
    assert {s.solver for s in decision.statuses} == {"mine"}
    assert decision.verify(needs_a_solver)


def test_kappa_rtol_tightens_a_solver_s_feasible_verdict_but_keeps_a_closed_form_one():
    """capacity's probes: where the IPM decides feasible it goes on until kappa* is
    bracketed to kappa_rtol; a verdict the Hebbian memory settles stays as it is."""
    instance = generate("coupled", 10, 24, 1)
    loose = decide(instance, fast_path=False)
    tight = decide(instance, fast_path=False, kappa_rtol=0.02)
    assert loose.verdict == tight.verdict == FEASIBLE
    assert tight.margin_upper is not None
    assert tight.margin_lower >= 0.98 * tight.margin_upper
    assert tight.verify(instance)
    # the plain decision stops at its first decisive bound, far from kappa*
    assert loose.margin_upper is None or loose.margin_lower < 0.98 * loose.margin_upper
    easy = generate("coupled", 10, 6, 2)          # the Hebbian memory stores these 6 facts
    settled = decide(easy, kappa_rtol=0.02)
    assert settled.verdict == FEASIBLE and settled.rounds == 0 and settled.solver == "hebbian"
    assert decide(easy, bracket_rtol=0.02).rounds > 0   # max_margin's bracket does go on
    # an infeasible verdict needs no kappa*
    beyond = generate("coupled", 4, 40, 0)
    assert decide(beyond, kappa_rtol=0.02).verdict == INFEASIBLE


def test_kappa_atol_ends_a_feasible_bracket_once_it_is_that_narrow():
    """capacity's probes ask for kappa* to a fraction of a fact: past a solver's
    feasible verdict a bracket no wider than kappa_atol is tight enough even
    where kappa_rtol asks for more. It never ends a decision whose bracket does
    not decide the verdict."""
    instance = generate("coupled", 10, 24, 1)
    tight = decide(instance, fast_path=False, kappa_rtol=1e-4)
    atol = 0.2 * tight.margin_lower
    early = decide(instance, fast_path=False, kappa_rtol=1e-4, kappa_atol=atol)
    assert tight.verdict == early.verdict == FEASIBLE and early.verify(instance)
    assert early.margin_upper - early.margin_lower <= atol
    assert early.margin_lower < (1 - 1e-4) * early.margin_upper      # atol ended it, not rtol
    assert early.margin_lower <= tight.margin_upper and tight.margin_lower <= early.margin_upper
    # an infeasible instance: a bracket [negative, positive] narrower than
    # kappa_atol decides nothing, and the decision goes on to its certificate
    beyond = generate("coupled", 4, 40, 0)
    assert decide(beyond, fast_path=False, kappa_rtol=0.02, kappa_atol=10.0).verdict == INFEASIBLE


@pytest.mark.parametrize("d,p,seed", [(8, 18, 0), (8, 20, 1), (10, 28, 0), (10, 30, 2)])
def test_a_seed_memory_starts_the_active_set_at_its_binding_constraints(start_per_input, d, p,
                                                                        seed):
    """With 8 constraints per input to start from, the Hebbian memory's tightest
    miss binding ones (3-4 rounds); the optimal memory's tightest hold them all."""
    start_per_input(8)
    instance = generate("coupled", d, p, seed)
    hebbian_seeded = decide(instance, fast_path=False, kappa_rtol=1e-3, mirror_descent=False)
    optimum = max_margin(instance, solver="ipm", rtol=1e-6)
    seeded = decide(instance, fast_path=False, kappa_rtol=1e-3, seed_memory=optimum.weights)
    assert hebbian_seeded.verdict == seeded.verdict == FEASIBLE
    assert seeded.verify(instance)
    assert hebbian_seeded.rounds > 1
    assert seeded.rounds == 1
    with pytest.raises(Exception, match="seed_memory: expected shape"):
        decide(instance, fast_path=False, seed_memory=optimum.weights[:3])


def test_a_probe_goes_on_for_kappa_at_most_rounds_past_verdict_rounds(monkeypatch,
                                                                      start_per_input):
    """kappa_rtol asks for kappa* past the verdict, but once the verdict is
    settled only ROUNDS_PAST_VERDICT more active-set rounds start. With 2
    constraints per input to start from and 1 added a round, the uncapped probe
    runs many rounds past its verdict; the verdict is the same either way
    (from the Hebbian start: the mirror-descent one settles it in 0-1 rounds)."""
    start_per_input(2)
    monkeypatch.setattr(active_set, "ADDED_PER_INPUT", 1)
    instance = generate("coupled", 12, 32, 0)
    rounds = {}
    for cap in (None, 0, 1):
        monkeypatch.setattr(active_set, "ROUNDS_PAST_VERDICT", cap)
        decision = decide(instance, fast_path=False, kappa_rtol=0.02, mirror_descent=False)
        assert decision.verdict == FEASIBLE and decision.verify(instance)
        rounds[cap] = decision.rounds
    # cap 0: the round that settled the verdict is the last one
    assert rounds[1] == rounds[0] + 1 < rounds[None]


def _first_round_start(monkeypatch, instance) -> np.ndarray:
    """Each input's constraints in the IPM's first round (the start), per input."""
    seen = []
    ipm = SOLVERS["ipm"]

    def spy(ctx, active):
        if not seen:
            seen.append(active.sum(axis=1))
        return ipm.round(ctx, active)
    monkeypatch.setitem(SOLVERS, "ipm", ipm._replace(round=spy))
    decision = decide(instance, fast_path=False, mirror_descent=False)
    assert decision.verdict != UNDETERMINED and decision.verify(instance)
    return seen[0]


def test_the_start_holds_a_share_of_each_input_s_constraints_within_its_memory(
        monkeypatch, start_per_input):
    """Where ACTIVE_SET_BUDGET gives an input few of its constraints (d > 128),
    the start holds START_SHARE of them; no more than START_MEMORY_FRACTION of
    memory holds (START_BYTES_PER_DIRECTION d_out bytes a constraint); and never
    fewer than INITIAL_PER_INPUT."""
    instance = generate("coupled", 8, 60, 0)        # 59 competitors an input
    slots = instance.slot_mask().sum(axis=1)
    start_per_input(2)
    monkeypatch.setattr(active_set, "START_SHARE", 0.2)
    start = _first_round_start(monkeypatch, instance)
    assert np.all(start >= 0.2 * slots) and np.all(start < 0.2 * slots + 1)

    # memory for 5 directions an input
    per_direction = active_set.START_BYTES_PER_DIRECTION * instance.d_out
    monkeypatch.setattr(active_set, "physical_memory",
                        lambda: 5 * instance.n * per_direction / active_set.START_MEMORY_FRACTION)
    start = _first_round_start(monkeypatch, instance)
    assert np.all(start == 5)
    assert start.sum() * per_direction <= (active_set.START_MEMORY_FRACTION
                                           * active_set.physical_memory())
    # ...but no fewer than the floor, whatever the memory
    monkeypatch.setattr(active_set, "INITIAL_PER_INPUT", 7)
    assert np.all(_first_round_start(monkeypatch, instance) == 7)
    # and the budget, where it gives more, as before
    monkeypatch.setattr(active_set, "ACTIVE_SET_BUDGET", 20 * instance.n)
    assert np.all(_first_round_start(monkeypatch, instance) == 20)


@pytest.mark.parametrize("model,d,p", [("decoupled", 16, 55), ("coupled", 16, 60),
                                       ("coupled", 12, 40)])
@pytest.mark.parametrize("cut", [True, False])
def test_an_iterate_is_checked_on_all_constraints_only_where_it_may_raise_the_bound(
        monkeypatch, start_per_input, model, d, p, cut):
    """From a start that misses binding constraints, each round's early iterates
    are worse on the watched constraints than the bracket's lower bound already
    is: skipping their check on all constraints (a pass that draws every
    competitor where they are drawn) leaves the decision as it was, bound for
    bound, in fewer passes. Without cuts (CUT_GAP 0) every round runs to its
    optimum, whose constraints to add come from a check of its last iterate."""
    start_per_input(1)
    if not cut:
        monkeypatch.setattr(active_set, "CUT_GAP", 0.0)
    instance = generate(model, d, p, 0)
    passes = {"n": 0}
    scaled_margins = active_set.certify.scaled_margins

    def counted(*args):
        passes["n"] += 1
        return scaled_margins(*args)
    monkeypatch.setattr(active_set.certify, "scaled_margins", counted)
    runs = {}
    for watching in (True, False):
        if not watching:
            monkeypatch.setattr(active_set, "may_raise_lower", lambda *args: True)
        passes["n"] = 0
        decision = decide(instance, fast_path=False, kappa_rtol=0.02, mirror_descent=False)
        assert decision.verdict != UNDETERMINED and decision.verify(instance)
        runs[watching] = (decision.verdict, decision.rounds, decision.margin_lower,
                          decision.margin_upper, decision.active_constraints, passes["n"])
    assert runs[True][1] > 1
    assert runs[True][:5] == runs[False][:5]
    assert runs[True][5] < runs[False][5]



def test_a_w_that_raises_the_bound_is_never_skipped():
    """The watched constraints' margin bounds the margin on all from above, so a
    W whose margin on all exceeds the bracket's lower bound is always checked:
    random memories, the active set a random subset, the rows outside those
    that tightest_columns picks from the last check."""
    rng = np.random.default_rng(0)
    instance = generate("decoupled", 8, 30, 0)
    reduced = active_set.ReducedInstance.of(instance)
    mask = instance.slot_mask()
    for _ in range(20):
        active = mask & (rng.random(mask.shape) < 0.3)
        rows, slots = np.nonzero(active)
        used, local = np.unique(rows, return_inverse=True)
        columns = active_set.KroneckerColumns(reduced.directions(rows, slots),
                                              reduced.inputs[used], local)
        last = rng.standard_normal((reduced.r_out, reduced.r_in))
        outside = active_set.tightest_columns(
            reduced, active_set.certify.scaled_margins(instance, reduced.memory(last)),
            mask & ~active)
        W = last + 0.3 * rng.standard_normal(last.shape)
        norm = float(np.linalg.norm(W))
        on_all = active_set.certify.margin_lower_bound(instance, reduced.memory(W))
        for lower in (on_all - 1e-6, on_all - 1e-3):
            assert active_set.may_raise_lower(lower, [columns, outside], W, norm)
        assert active_set.may_raise_lower(None, [columns, outside], W, norm)


def test_tightest_columns_are_the_smallest_outside_in_the_tightest_rows(monkeypatch):
    """WATCHED_SLOTS constraints of smallest scaled margin among the eligible in
    each of the WATCHED_ROWS rows whose smallest eligible is least; each column's
    product with W is that constraint's scaled margin."""
    monkeypatch.setattr(active_set, "WATCHED_ROWS", 3)
    monkeypatch.setattr(active_set, "WATCHED_SLOTS", 4)
    rng = np.random.default_rng(1)
    instance = generate("decoupled", 8, 25, 0)
    reduced = active_set.ReducedInstance.of(instance)
    W = rng.standard_normal((reduced.r_out, reduced.r_in))
    scaled = active_set.certify.scaled_margins(instance, reduced.memory(W))
    eligible = instance.slot_mask() & (rng.random(scaled.shape) < 0.5)
    columns = active_set.tightest_columns(reduced, scaled, eligible)
    masked = np.where(eligible, scaled, np.inf)
    rows = np.argsort(masked.min(axis=1))[:3]
    expected = np.sort(np.sort(masked[rows], axis=1)[:, :4].ravel())
    assert np.allclose(np.sort(columns.apply_transpose(W)), expected, rtol=1e-12, atol=1e-12)
    assert active_set.tightest_columns(reduced, scaled, np.zeros_like(eligible)) is None
