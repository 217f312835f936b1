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
