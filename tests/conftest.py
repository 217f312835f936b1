import numpy as np
import pytest

from feasibility import Instance, generate


@pytest.fixture
def orthonormal_instance():
    """Orthonormal inputs, distinct targets: W = sum y_i x_i^T separates exactly."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    return Instance(q[:8], rng.standard_normal((8, 5)))


@pytest.fixture
def shared_input_instance():
    """Two facts with the same input vector but different targets."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 4))
    X[3] = X[1]
    return Instance(X, rng.standard_normal((6, 4)))


@pytest.fixture
def near_critical():
    """Coupled d=8 family: p* of seed 0 sits between 20 and 30."""
    return generate("coupled", 8, 40, 0)


@pytest.fixture
def start_per_input(monkeypatch):
    """Call with n: the IPM's active set starts from each input's n tightest
    constraints (no ACTIVE_SET_BUDGET, no START_SHARE), so that small instances
    take the rounds a start that misses binding constraints takes."""
    from feasibility.solvers import active_set

    def start(per_input: int) -> None:
        monkeypatch.setattr(active_set, "INITIAL_PER_INPUT", per_input)
        monkeypatch.setattr(active_set, "ACTIVE_SET_BUDGET", 0)
        monkeypatch.setattr(active_set, "START_SHARE", 0.0)
    return start
