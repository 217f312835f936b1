"""The fast path: every verdict it gives is certified and agrees with the active set."""
import numpy as np
import pytest

from feasibility import FEASIBLE, INFEASIBLE, UNDETERMINED, Instance, decide, generate
from feasibility.core import certify
from feasibility.core.synthetic import embedding_like
from feasibility.solvers import structured
from feasibility.solvers.structured import Whitened, fast_path


def assert_certified(instance, evidence):
    """The fast path's W and certificate recomputed, and the verdict they give."""
    assert evidence.verify(instance)
    if evidence.verdict == FEASIBLE:
        assert certify.margin_lower_bound(instance, evidence.weights) > certify.MARGIN_FLOOR
    elif evidence.verdict == INFEASIBLE:
        assert certify.margin_upper_bound(instance, evidence.certificate) <= 1e-6


def test_whitened_coordinates_give_the_score_matrix():
    inst = embedding_like(30, 12, seed=1)
    white = Whitened.of(inst)
    B = np.random.default_rng(0).standard_normal((white.r_y, white.r_x))
    W = white.memory(B)
    centred = inst.targets - inst.targets.mean(axis=0)  # margins see differences only
    S = centred @ W @ inst.inputs.T
    assert np.allclose(S, white.u_y @ B @ white.u_x.T, atol=1e-9)


def test_independent_inputs_and_targets_are_separated_by_the_pseudo_inverse():
    inst = embedding_like(40, 64, seed=2)
    evidence = fast_path(inst)
    assert evidence.verdict == FEASIBLE and evidence.method.startswith("ridge(a=0,b=0)")
    assert_certified(inst, evidence)


def test_parallel_inputs_with_different_targets_are_a_pair_certificate():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 6))
    X[4] = 2.5 * X[1]
    inst = Instance(X, rng.standard_normal((5, 6)))
    evidence = fast_path(inst)
    assert evidence.verdict == INFEASIBLE and evidence.method == "parallel-inputs"
    assert sorted(evidence.certificate.rows) == [1, 4]
    assert_certified(inst, evidence)


def test_target_inside_the_hull_is_proved_infeasible_by_its_vertex_lp():
    """Orthonormal inputs: the problem splits per target; y_3 = (y_0 + y_1) / 2."""
    q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((9, 9)))
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -0.3], [0.5, 0.5]])
    inst = Instance(q[:4], Y)
    evidence = fast_path(inst)
    assert evidence.verdict == INFEASIBLE and evidence.method == "vertex-lp"
    assert set(evidence.certificate.rows) == {3}
    assert_certified(inst, evidence)


def test_vertex_lp_separates_targets_in_convex_position():
    """A hexagon of alternating radii 1 and 1.5: every target is a vertex."""
    q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((12, 12)))
    angles = np.linspace(0, 2 * np.pi, 7)[:-1]
    radii = np.array([1.0, 1.5, 1.0, 1.5, 1.0, 1.5])
    Y = np.c_[radii * np.cos(angles), radii * np.sin(angles)]
    inst = Instance(q[:6], Y)
    W, cert = structured.split_by_target(inst, Whitened.of(inst))
    assert cert is None
    assert certify.margin_lower_bound(inst, W) > 0
    # radii 1 and 3: the radius-1 targets fall inside the hull, and the LP says so
    radii = np.tile([1.0, 3.0], 3)
    Y = np.c_[radii * np.cos(angles), radii * np.sin(angles)]
    inst = Instance(q[:6], Y)
    W, cert = structured.split_by_target(inst, Whitened.of(inst))
    assert W is None and certify.margin_upper_bound(inst, cert) <= 1e-6


def test_multiclass_lp_certifies_an_xor_pattern():
    """Two answers, inputs +-e1 for one and +-e2 for the other: no linear separation."""
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    inst = Instance(X, np.eye(2), np.array([0, 0, 1, 1]))
    evidence = fast_path(inst)
    assert evidence.verdict == INFEASIBLE and evidence.method == "multiclass-lp"
    assert_certified(inst, evidence)


def test_multiclass_lp_on_overlapping_classes_in_few_dimensions():
    inst = embedding_like(200, 6, answers=5, seed=6, spread=3.0)
    evidence = fast_path(inst)
    assert evidence.verdict == INFEASIBLE
    assert_certified(inst, evidence)


def parallel_pair(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 8))
    X[7] = 0.5 * X[2]
    return Instance(X, rng.standard_normal((12, 8)))


@pytest.mark.parametrize("instance,method", [
    (generate("coupled", 8, 12, seed=0), "ridge(a=0,b=0)"),   # inputs nearly independent
    (generate("coupled", 8, 24, seed=0), "softmax"),           # 24 facts in 8 dimensions
    (parallel_pair(9), "parallel-inputs"),
])
def test_fast_path_agrees_with_the_active_set(instance, method):
    """The fast path decides these (no 'undetermined' escape), and the active set
    without it certifies the same verdict."""
    evidence = fast_path(instance)
    assert evidence.verdict != UNDETERMINED and evidence.method == method
    assert_certified(instance, evidence)
    decision = decide(instance, fast_path=False)
    assert decision.verdict == evidence.verdict and decision.verify(instance)
    assert decision.fast_path == "not_tried"


def test_an_undecided_fast_path_still_gives_certified_bounds():
    """Coupled d=8, p=30 is infeasible; the fast path's softmax finds no W: its
    bounds must still bracket what the active set certifies."""
    inst = generate("coupled", 8, 30, seed=0)
    evidence = fast_path(inst)
    assert evidence.verdict == UNDETERMINED and evidence.method == ""
    assert evidence.verify(inst)
    decision = decide(inst, fast_path=False)
    assert decision.verdict == INFEASIBLE and decision.verify(inst)
    if evidence.margin_lower is not None:
        assert evidence.margin_lower <= decision.margin_upper


def test_many_to_one_agrees_with_the_active_set():
    inst = embedding_like(40, 5, answers=4, seed=7, spread=1.0)
    evidence = fast_path(inst)
    assert evidence.verdict != UNDETERMINED
    assert_certified(inst, evidence)
    assert decide(inst).verdict == evidence.verdict


def test_decide_uses_the_fast_path_where_it_pays_and_falls_back():
    inst = embedding_like(60, 80, seed=8)
    assert structured.worth_trying(inst) and not structured.worth_trying(generate("coupled", 8, 20, 0))
    decision = decide(inst)
    assert decision.verdict == FEASIBLE and decision.solver == "structured"
    assert decision.fast_path == "decided" and decision.verify(inst)
    assert certify.margin_lower_bound(inst, decision.weights) == pytest.approx(
        decision.margin_lower)
    # without it the active set reaches the same verdict
    assert decide(inst, fast_path=False).solver != "structured"
    assert decide(inst, fast_path=False).verdict == FEASIBLE
    # a margin no W reaches: the fast path cannot decide, the active set does
    hard = decide(generate("coupled", 4, 6, 0), margin=0.9)
    assert hard.solver != "structured"


def test_decoupled_instances_are_left_to_the_active_set():
    """Only step 1 (zero constraints) applies to explicit competitors: no W, no
    certificate otherwise, and decide does not even try it."""
    inst = generate("decoupled", 24, 40, 0)
    twin = generate("coupled", 24, 40, 0)                 # same size: worth trying
    assert structured.worth_trying(twin) and not structured.worth_trying(inst)
    small = generate("decoupled", 6, 10, 0)
    evidence = fast_path(small)
    assert evidence.verdict == UNDETERMINED and evidence.steps == ()
    assert evidence.weights is None and evidence.certificate is None
    decision = decide(small)
    assert decision.fast_path == "not_tried" and decision.verify(small)
    # a zero input is a zero constraint: the one thing it proves for them
    X = small.inputs.copy()
    X[3] = 0
    zero = Instance(X, small.targets, competitors=small.competitors)
    evidence = fast_path(zero)
    assert evidence.verdict == INFEASIBLE and evidence.method == "zero-constraint"
    assert_certified(zero, evidence)


def test_a_parallel_clash_behind_a_shared_answer_is_certified():
    """Facts 0, 1, 2 share one direction; 0 and 1 share an answer, 2 has another:
    the exact certificate pairs 0 with 2 and proves infeasibility by itself."""
    base = generate("coupled", 6, 8, seed=4)
    inputs = base.inputs.copy()
    inputs[1], inputs[2] = 2.0 * inputs[0], 0.5 * inputs[0]
    instance = Instance(inputs, base.targets, np.r_[0, 0, np.arange(1, 7)])
    cert = structured.parallel_conflict_certificate(instance)
    assert cert is not None and set(cert.rows) == {0, 2}
    assert certify.margin_upper_bound(instance, cert) <= 1e-12
    assert structured.parallel_groups(instance.inputs, np.arange(instance.n))[0].tolist() \
        == [0, 1, 2]
