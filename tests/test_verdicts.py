import numpy as np
import pytest

from feasibility import (
    FEASIBLE,
    INFEASIBLE,
    Instance,
    decide,
    generate,
    installed_solvers,
    max_margin,
)
from feasibility.core.certify import (
    FarkasCertificate,
    margin_lower_bound,
    margin_upper_bound,
    zero_constraint_certificate,
)
from feasibility.solvers.active_set import SOLVERS, hebbian_memory


def assert_certified(instance, decision):
    """Re-check the evidence from scratch, outside the solver (Decision.verify)."""
    assert decision.verify(instance), decision.evidence_problems(instance)


def test_orthonormal_inputs_are_feasible(orthonormal_instance):
    decision = decide(orthonormal_instance)
    assert decision.verdict == FEASIBLE
    assert_certified(orthonormal_instance, decision)


def test_shared_input_with_different_targets_is_infeasible(shared_input_instance):
    decision = decide(shared_input_instance)
    assert decision.verdict == INFEASIBLE
    assert_certified(shared_input_instance, decision)


def test_duplicate_targets_are_proved_infeasible():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((4, 3))
    Y[2] = Y[0]
    inst = Instance(rng.standard_normal((4, 3)), Y)
    decision = decide(inst)
    assert decision.verdict == INFEASIBLE
    assert decision.margin_upper == 0.0
    assert_certified(inst, decision)


def test_zero_input_is_proved_infeasible():
    X = np.eye(4)
    X[1] = 0
    inst = Instance(X, np.eye(4))
    decision = decide(inst)
    assert decision.verdict == INFEASIBLE
    assert_certified(inst, decision)


def test_hand_made_certificate_bounds():
    """Two opposite constraints: lambda = (1/2, 1/2) gives the zero matrix."""
    inst = Instance(np.array([[1.0, 0.0], [1.0, 0.0]]), np.eye(2))
    cert = FarkasCertificate(np.array([0, 1]), np.array([1, 0]), np.array([0.5, 0.5]))
    assert margin_upper_bound(inst, cert) == pytest.approx(0.0, abs=1e-15)
    single = FarkasCertificate(np.array([0]), np.array([1]), np.array([1.0]))
    assert margin_upper_bound(inst, single) == pytest.approx(1.0)


@pytest.mark.parametrize("model", ["coupled", "decoupled"])
def test_feasibility_is_monotone_along_the_nested_family(model):
    full = generate(model, 6, 30, seed=0)
    verdicts = [decide(full.prefix(p)).verdict for p in range(4, 31, 2)]
    assert set(verdicts) <= {FEASIBLE, INFEASIBLE}
    first_infeasible = verdicts.index(INFEASIBLE)
    assert all(v == FEASIBLE for v in verdicts[:first_infeasible])
    assert all(v == INFEASIBLE for v in verdicts[first_infeasible:])
    assert first_infeasible > 0


@pytest.mark.parametrize("p", [14, 17, 22])
def test_scaling_and_permuting_leave_verdict_and_margin(p):
    inst = generate("coupled", 6, p, seed=5)
    base = max_margin(inst)
    rng = np.random.default_rng(p)
    X = inst.inputs * rng.uniform(0.1, 10, size=(inst.n, 1))
    scaled = max_margin(Instance(X, inst.targets * 3.0))
    order = rng.permutation(inst.n)
    permuted = max_margin(inst.permuted(order))
    assert base.verdict == scaled.verdict == permuted.verdict
    if base.verdict == FEASIBLE:
        for other in (scaled, permuted):
            assert other.margin_lower == pytest.approx(base.margin_lower, rel=5e-3)


def test_lp_and_socp_agree_on_positive_margin():
    for p in (10, 14, 18):
        inst = generate("decoupled", 6, p, seed=1)
        socp = max_margin(inst, rtol=1e-4)
        lp = decide(inst, solver="clarabel", program="lp", escalate=False)
        assert socp.verdict == lp.verdict
        if lp.verdict == FEASIBLE:
            # any W's margin is a lower bound on the SOCP optimum
            assert lp.margin_lower <= socp.margin_upper * (1 + 1e-6)
            assert socp.margin_lower > 0


# -- known answers, by construction, that the Hebbian memory does not decide -------------
def vertex_targets(n, d_in, d_out, seed):
    """Feasible: linearly independent inputs make each z_i = W x_i free, and distinct
    unit targets are each a vertex of their hull (y_t.y_t > y_t.y_j). The inputs are
    strongly correlated, so the Hebbian memory fails and a solver must work."""
    rng = np.random.default_rng(seed)
    X = 1.0 + 0.3 * rng.standard_normal((n, d_in))
    Y = rng.standard_normal((n, d_out))
    return Instance(X, Y / np.linalg.norm(Y, axis=1, keepdims=True))


def parallel_inputs(seed):
    """Infeasible: x_4 = 2.5 x_1 with different targets (lambda = 1/2 on the
    opposite constraints (1, 4) and (4, 1) sums to 0); no zero constraint."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 5))
    X[4] = 2.5 * X[1]
    return Instance(X, rng.standard_normal((8, 5)))


def target_inside_hull(seed):
    """Infeasible: orthonormal inputs, y_3 = (y_0 + y_1)/2 cannot beat both."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    Y = rng.standard_normal((6, 3))
    Y[3] = (Y[0] + Y[1]) / 2
    return Instance(q[:6], Y)


KNOWN = [(vertex_targets(10, 12, 3, 0), FEASIBLE), (vertex_targets(30, 40, 4, 1), FEASIBLE),
         (parallel_inputs(1), INFEASIBLE), (target_inside_hull(2), INFEASIBLE)]


def test_the_known_answers_need_a_solver():
    for inst, _ in KNOWN:
        assert margin_lower_bound(inst, hebbian_memory(inst)) < 0
        assert zero_constraint_certificate(inst) is None


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_installed_solver_certifies_the_known_answers(solver):
    if solver not in installed_solvers():
        pytest.skip(f"{solver} not installed")
    for inst, expected in KNOWN:
        # the mirror-descent start alone stores the vertex targets: the solver must run
        decision = decide(inst, solver=solver, escalate=False, mirror_descent=False)
        assert decision.verdict == expected, decision.reason
        assert decision.solver == solver and decision.statuses  # its own evidence
        assert_certified(inst, decision)


def test_margin_above_kappa_star_is_infeasible():
    inst = generate("coupled", 6, 7, 0)
    best = max_margin(inst, rtol=1e-4)
    assert best.verdict == FEASIBLE
    above = decide(inst, margin=best.margin_upper * 1.1)
    below = decide(inst, margin=best.margin_lower * 0.9)
    assert above.verdict == INFEASIBLE and below.verdict == FEASIBLE
    assert_certified(inst, above)
    assert_certified(inst, below)


def test_reduction_to_spans_keeps_high_dimensional_files_exact():
    """Embeddings in a 3-dimensional subspace of R^200: same verdict and kappa*."""
    rng = np.random.default_rng(0)
    low = generate("coupled", 3, 4, 0)
    Qx, _ = np.linalg.qr(rng.standard_normal((200, 3)))
    Qy, _ = np.linalg.qr(rng.standard_normal((150, 3)))
    high = Instance(low.inputs @ Qx.T, low.targets @ Qy.T)
    a, b = max_margin(low, rtol=1e-5), max_margin(high, rtol=1e-5)
    assert a.verdict == b.verdict == FEASIBLE
    assert b.margin_lower == pytest.approx(a.margin_lower, rel=1e-3)
    assert b.weights.shape == (150, 200)
