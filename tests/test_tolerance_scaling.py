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
def search(seed=3, **kwargs):
    from feasibility import generate
    from feasibility.capacity.bisection import capacity_bisection
    return capacity_bisection(generate("coupled", 8, 45, seed), guess=20, **kwargs)


def test_the_boundary_check_certifies_p_star_plus_one_at_the_tighter_tolerance():
    plain = search()
    bound = plain.kappa_bound_above   # what the search's certificate at p* + 1 reached
    assert plain.status == "exact" and 0 < bound <= INFEASIBILITY_TOLERANCE
    checked = search(boundary_tolerance=bound / 1000)
    extra = [probe for probe in checked.probes if probe.boundary]
    assert len(extra) == 1 and extra[0].p == plain.p_infeasible
    assert extra[0].verdict == "infeasible" and extra[0].margin_upper <= bound / 1000
    assert checked.boundary_verdict == "infeasible" and checked.kappa_bound_above <= bound / 1000
    assert checked.p_star == plain.p_star                            # p* itself untouched
    row = checked.row()
    assert row["solves"] == plain.row()["solves"] and row["boundary_seconds"] > 0


def test_a_certificate_already_tight_enough_costs_no_solve():
    plain = search()
    checked = search(boundary_tolerance=2 * plain.kappa_bound_above)
    assert not any(probe.boundary for probe in checked.probes)
    assert checked.boundary_verdict == "infeasible" and checked.row()["boundary_seconds"] == 0


def test_the_boundary_check_exposes_a_p_star_that_depends_on_tau():
    """At tau = 1e-2 (d = 8) a certificate reaches tau at p* + 1 before any W with a
    positive margin is found for seed 1: the search says p* = 23 where kappa* > 0 at
    24. Checked at 1e-8, p = 24 comes out feasible, and the row says so."""
    loose = search(seed=1, tolerance=1e-2, boundary_tolerance=1e-8)
    exact = search(seed=1)
    assert loose.p_star < exact.p_star
    assert loose.boundary_verdict == "feasible"
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
