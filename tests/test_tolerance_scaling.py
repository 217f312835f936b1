"""tau keeps its meaning at large d: fixed where the committed results were made,
shrinking past it faster than the drop of kappa* per added fact, recorded per row."""

import numpy as np

import feasibility.capacity.batch as batch
from feasibility.core.tolerances import (
    INFEASIBILITY_TOLERANCE,
    TOLERANCE_FIXED_UP_TO_D,
    capacity_tolerance,
)


def test_tau_is_unchanged_where_the_committed_results_were_computed():
    assert all(capacity_tolerance(d) == INFEASIBILITY_TOLERANCE
               for d in range(2, TOLERANCE_FIXED_UP_TO_D + 1))


def test_tau_shrinks_with_d_as_the_kappa_drop_per_fact_does():
    dims = np.array([96, 128, 192, 256, 512])
    taus = np.array([capacity_tolerance(int(d)) for d in dims])
    assert np.all(np.diff(taus) < 0)
    # the drop per fact measured at d = 16..48 falls like d^-3: the ratio
    # drop / tau must not fall below its value at d = 96
    np.testing.assert_allclose(taus * dims ** 3, taus[0] * 96 ** 3, rtol=1e-12)


def test_each_capacity_row_states_the_tau_its_bisection_used(monkeypatch):
    used = []
    real = batch.capacity_bisection

    def bisection(*args, **kwargs):
        used.append(kwargs["tolerance"])
        return real(*args, **kwargs)

    monkeypatch.setattr(batch, "capacity_tolerance", lambda d: 3e-7)  # as at d ~ 140
    monkeypatch.setattr(batch, "capacity_bisection", bisection)
    row = batch.run_capacity_task(batch.CapacityTask("coupled", 6, 0))
    assert used == [3e-7] and row["tolerance"] == 3e-7
    assert row["status"] == "exact"


# -- the boundary check: p* + 1 decided again at tau / 100 --------------------------------
def search(seed=3, guess=20, **kwargs):
    from feasibility import generate
    from feasibility.capacity.bisection import capacity_bisection
    return capacity_bisection(generate("coupled", 8, 45, seed), guess=guess, **kwargs)


def test_the_probe_above_a_feasible_p_is_decided_at_the_tighter_tolerance_at_once():
    """The probe that closes the bracket is the boundary check too: no solve more."""
    plain = search()
    bound = plain.kappa_bound_above   # what the search's certificate at p* + 1 reached
    assert plain.status == "exact" and 0 < bound <= INFEASIBILITY_TOLERANCE
    assert plain.probes[-1].p == plain.p_infeasible == plain.p_star + 1
    checked = search(boundary_tolerance=bound / 1000)
    assert not any(probe.boundary for probe in checked.probes)
    assert [probe.p for probe in checked.probes] == [probe.p for probe in plain.probes]
    assert checked.probes[-1].margin_upper <= bound / 1000
    assert checked.boundary_verdict == "infeasible" and checked.kappa_bound_above <= bound / 1000
    assert checked.p_star == plain.p_star                            # p* itself untouched
    row = checked.row()
    assert row["solves"] == plain.row()["solves"] and row["boundary_seconds"] == 0


def test_a_bracket_closed_by_an_earlier_probe_has_p_star_plus_one_decided_again():
    """Here the first probe is p* + 1 itself, decided before any p was feasible:
    the boundary check decides it again at the tighter tolerance."""
    plain = search()
    bound = plain.kappa_bound_above
    first = search(guess=plain.p_infeasible)
    assert first.probes[0].p == first.p_infeasible and first.p_star == plain.p_star
    checked = search(guess=plain.p_infeasible, boundary_tolerance=first.kappa_bound_above / 1000)
    extra = [probe for probe in checked.probes if probe.boundary]
    assert len(extra) == 1 and extra[0].p == plain.p_infeasible
    assert extra[0].verdict == "infeasible" and extra[0].margin_upper <= bound / 1000
    assert checked.boundary_verdict == "infeasible"
    assert checked.p_star == plain.p_star
    row = checked.row()
    assert row["solves"] == first.row()["solves"] and row["boundary_seconds"] > 0


def test_a_certificate_already_tight_enough_costs_no_solve():
    plain = search()
    checked = search(boundary_tolerance=2 * plain.kappa_bound_above)
    assert not any(probe.boundary for probe in checked.probes)
    assert checked.boundary_verdict == "infeasible" and checked.row()["boundary_seconds"] == 0


def test_the_boundary_check_exposes_a_p_star_that_depends_on_tau():
    """At tau = 1e-2 (d = 8) a certificate reaches tau at p* + 1 before any W with a
    positive margin is found for seed 1: the search says p* = 23 where kappa* > 0 at
    24. Where 24 is the first probe, the boundary check at 1e-8 finds it feasible
    and the row says so; where 24 is probed right above a feasible 23, it is decided
    at 1e-8 at once and the search goes on to the p* of the tighter tolerance."""
    loose = search(seed=1, tolerance=1e-2)
    exact = search(seed=1)
    assert loose.p_star < exact.p_star
    early = search(seed=1, guess=loose.p_infeasible, tolerance=1e-2, boundary_tolerance=1e-8)
    assert early.probes[0].p == loose.p_infeasible and early.p_star == loose.p_star
    assert early.boundary_verdict == "feasible"
    closing = search(seed=1, tolerance=1e-2, boundary_tolerance=1e-8)
    assert closing.p_star == exact.p_star and closing.boundary_verdict == "infeasible"
    assert search(seed=1, boundary_tolerance=1e-8).boundary_verdict == "infeasible"


def test_rows_check_the_boundary_from_the_d_it_is_asked_for(monkeypatch):
    assert batch.boundary_tolerance(64) is None
    assert batch.boundary_tolerance(128) == capacity_tolerance(128) / 100
    row = batch.run_capacity_task(batch.CapacityTask("coupled", 6, 0))
    assert row["boundary_verdict"] is None and row["boundary_tolerance"] is None
    monkeypatch.setattr(batch, "boundary_tolerance", lambda d: 1e-9)
    row = batch.run_capacity_task(batch.CapacityTask("coupled", 6, 0))
    assert row["boundary_tolerance"] == 1e-9 and row["boundary_verdict"] == "infeasible"
    assert row["kappa_bound_above"] <= 1e-9


def test_a_closing_probe_left_undetermined_at_the_tighter_tolerance_still_closes_at_tau(
        monkeypatch):
    """The search goes on the closing probe's verdict at its own tolerance: a
    certificate that reached tau but not tau / 100 closes the bracket, and only
    the boundary verdict says undetermined."""
    import dataclasses

    import feasibility.capacity.bisection as bisection
    plain = search()
    tight = plain.kappa_bound_above / 1000
    real = bisection.decide

    def short_of_the_tighter_tolerance(*args, **kwargs):
        decision = real(*args, **kwargs)
        if kwargs.get("tolerance") == tight and decision.verdict == "infeasible":
            # as if the solver had stopped between tau / 100 and tau
            return dataclasses.replace(decision, verdict=bisection.Verdict.UNDETERMINED,
                                       margin_upper=INFEASIBILITY_TOLERANCE / 2)
        return decision

    monkeypatch.setattr(bisection, "decide", short_of_the_tighter_tolerance)
    checked = search(boundary_tolerance=tight)
    assert checked.status == "exact" and checked.p_star == plain.p_star
    assert checked.boundary_verdict == "undetermined"
    assert [probe.boundary for probe in checked.probes] == \
        [False] * len(plain.probes) + [True]
