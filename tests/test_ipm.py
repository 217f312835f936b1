"""The structured interior-point method against explicit dense linear algebra and cvxpy."""
import cvxpy as cp
import numpy as np
import pytest

import feasibility.solvers.ipm as ipm
from feasibility.core.status import EngineStatus
from feasibility.solvers.ipm import (
    KroneckerColumns,
    NewtonSolver,
    RefinementStalled,
    min_norm_point,
)
from feasibility.solvers.packed import to_rfp


def random_columns(K=40, p=7, r_out=3, r_in=4, seed=0, grouped=False):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((K, r_out))
    x = rng.standard_normal((p, r_in))
    owner = rng.integers(0, p, size=K)
    return KroneckerColumns(g, x, np.sort(owner) if grouped else owner)


def dense(columns):
    return np.stack([np.kron(columns.g[k], columns.x[columns.owner[k]])
                     for k in range(columns.g.shape[0])], axis=1)


@pytest.mark.parametrize("grouped", [False, True])
def test_structured_products_match_the_dense_matrix(grouped):
    """Columns in any order, or grouped by input as the active-set loop passes
    them (then the directions are used as they are, not copied)."""
    cols = random_columns(grouped=grouped)
    assert np.shares_memory(cols.g, cols.g_sorted) == grouped
    A = dense(cols)
    rng = np.random.default_rng(1)
    lam = rng.random(A.shape[1])
    W = rng.standard_normal((3, 4))
    assert np.allclose(cols.apply(lam).ravel(), A @ lam)
    assert np.allclose(cols.apply_transpose(W), A.T @ W.ravel())
    assert np.allclose(cols.gram(), A.T @ A)
    c = rng.random(A.shape[1])
    H = np.eye(A.shape[0]) + (A * c) @ A.T
    assert np.allclose(cols.weighted_outer(c), H)
    assert np.allclose(cols.weighted_outer(c, packed=True), to_rfp(H))
    assert np.allclose(cols.weighted_outer(c, dtype=np.float32), H, rtol=1e-5)
    t = rng.standard_normal(A.shape[0])
    assert np.allclose(cols.newton_product(cols.input_blocks(c), t), H @ t)
    assert np.allclose(cols.direct_newton_product(c, t), H @ t)
    assert np.allclose(cols.newton_product(cols.input_blocks(c, np.float32), t), H @ t,
                       rtol=1e-5)


def test_single_precision_newton_solves_are_refined_to_double_accuracy():
    cols = random_columns(K=400, p=30, r_out=6, r_in=7, seed=6)
    rng = np.random.default_rng(7)
    c = rng.random(400) * 10
    b = rng.standard_normal(42)
    H = cols.weighted_outer(c)
    exact = np.linalg.solve(H, b)
    t = NewtonSolver(cols, c, single=True).solve(b)
    assert t.dtype == np.float64
    assert np.linalg.norm(H @ t - b) <= 1e-10 * np.linalg.norm(b)
    assert np.allclose(t, exact, rtol=1e-9, atol=1e-12)


def test_single_precision_gives_up_on_an_ill_conditioned_system():
    cols = random_columns(K=400, p=30, r_out=6, r_in=7, seed=8)
    # a few huge weights (the binding constraints late in a solve): H has
    # eigenvalues ~1e12 on their span and ~1 elsewhere, beyond float32
    c = np.full(400, 1e-3)
    c[:10] = 1e12
    with pytest.raises((RefinementStalled, np.linalg.LinAlgError)):
        NewtonSolver(cols, c, single=True).solve(np.ones(42))


@pytest.mark.parametrize("big", [1e4, 1e5])
def test_where_refinement_stalls_the_mixed_form_goes_on_by_conjugate_gradients(monkeypatch,
                                                                                big):
    """Weights ~1e4-1e5 on a few constraints (condition 1e6-1e7): refinement of
    the float32 factor converges too slowly and stalls, conjugate gradients on
    the same factor and the float64 blocks' product reach REFINEMENT_FLOOR,
    and no float64 matrix is needed."""
    cols = random_columns(K=400, p=30, r_out=6, r_in=7, seed=6)
    c = np.full(400, 1e-3)
    c[:10] = big
    b = np.random.default_rng(0).standard_normal(42)
    H = cols.weighted_outer(c)
    monkeypatch.setattr(ipm, "MIXED_KRYLOV", False)
    with pytest.raises(RefinementStalled):
        NewtonSolver(cols, c, single=True).solve(b)
    monkeypatch.setattr(ipm, "MIXED_KRYLOV", True)
    solver = NewtonSolver(cols, c, single=True)
    t = solver.solve(b)
    assert solver.factor.L.dtype == np.float32 and solver.shift == 0.0
    assert np.linalg.norm(H @ t - b) <= ipm.REFINEMENT_FLOOR * np.linalg.norm(b)
    np.testing.assert_allclose(t, np.linalg.solve(H, b), rtol=1e-7, atol=1e-7 * np.abs(t).max())
    # ...and where they do not reach it either (no step allowed, and at 1e5 the
    # refined solution is not within it), the float64 matrix is still made
    monkeypatch.setattr(ipm, "KRYLOV_STEPS", 0)
    if big >= 1e5:
        with pytest.raises(RefinementStalled):
            NewtonSolver(cols, c, single=True).solve(b)


def test_the_mixed_form_takes_a_conjugate_gradient_solution_within_the_krylov_floor(
        monkeypatch):
    """Where refinement stalls and conjugate gradients leave a residual between
    REFINEMENT_FLOOR and KRYLOV_FLOOR, the mixed form takes that solution, as the
    float32 form does, instead of making the float64 matrix (d = 64 near p*: 4
    and 1 float64 factorisations a solve instead of 7 and 5, same bounds)."""
    cols = random_columns(K=400, p=30, r_out=6, r_in=7, seed=7)
    c = np.full(400, 1e-3)
    c[:10] = 3e4
    b = np.random.default_rng(0).standard_normal(42)
    H = cols.weighted_outer(c)
    monkeypatch.setattr(ipm, "KRYLOV_STEPS", 0)  # the refined solution as it stands
    solver = NewtonSolver(cols, c, single=True)
    t = solver.solve(b)
    residual = np.linalg.norm(H @ t - b) / np.linalg.norm(b)
    assert ipm.REFINEMENT_FLOOR < residual <= ipm.KRYLOV_FLOOR
    assert solver.factor.L.dtype == np.float32
    np.testing.assert_allclose(t, np.linalg.solve(H, b), rtol=1e-4, atol=1e-4 * np.abs(t).max())


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_min_norm_point_in_single_precision_matches_double(monkeypatch, seed):
    """Float32 factors while refinement converges, float64 after: same optimum."""
    cols = random_columns(K=300, p=25, r_out=5, r_in=6, seed=seed)
    double = min_norm_point(cols)
    monkeypatch.setattr(ipm, "SINGLE_PRECISION_FROM", 0)
    single = min_norm_point(cols)
    assert single.status == double.status == "optimal"
    assert np.linalg.norm(single.W) == pytest.approx(np.linalg.norm(double.W), rel=1e-6, abs=1e-9)
    assert abs(single.iterations - double.iterations) <= 2


def test_the_float32_matrix_is_released_before_the_float64_one_is_made(monkeypatch):
    """At the switch to float64 both Newton matrices alive at once would be 8 GB at
    d = 192, packed; the float32 one must be gone when the float64 one is allocated."""
    import weakref

    cols = random_columns(K=300, p=25, r_out=5, r_in=6, seed=10)
    monkeypatch.setattr(ipm, "SINGLE_PRECISION_FROM", 0)
    single_arrays, alive_at_switch = [], []
    real_init, real_solve = NewtonSolver.__init__, NewtonSolver.solve

    def init(self, columns, c, single, workspace=None, krylov=False):
        if not single:
            alive_at_switch.append(any(ref() is not None for ref in single_arrays))
        real_init(self, columns, c, single, workspace, krylov)
        if single:
            single_arrays.append(weakref.ref(self.factor.L))

    def solve(self, b):
        if self.single and len(single_arrays) >= 3:   # stall on the third iteration
            raise RefinementStalled
        return real_solve(self, b)

    monkeypatch.setattr(NewtonSolver, "__init__", init)
    monkeypatch.setattr(NewtonSolver, "solve", solve)
    result = min_norm_point(cols)
    assert result.status == "optimal" and len(single_arrays) == 3
    assert alive_at_switch and not any(alive_at_switch)


def test_a_scratch_buffer_is_released_before_its_replacement_is_made(monkeypatch):
    """The float32 assembly buffers (the "outer" product is 1.4 GB at d = 192)
    must be gone when their float64 replacements are allocated."""
    import weakref

    cols = random_columns(K=300, p=25, r_out=5, r_in=6, seed=10)
    cols.weighted_outer(np.ones(300), dtype=np.float32)
    single = {array.shape: weakref.ref(array) for name, array in cols._buffers.items()
              if name in ("outer", "packed_blocks")}
    assert len(single) == 2 and all(ref().dtype == np.float32 for ref in single.values())
    predecessor_alive, real_empty = {}, np.empty

    def empty(shape, dtype=float, *args, **kwargs):
        if tuple(np.atleast_1d(shape)) in single and np.dtype(dtype) == np.float64:
            predecessor_alive[tuple(shape)] = single[tuple(shape)]() is not None
        return real_empty(shape, dtype, *args, **kwargs)

    monkeypatch.setattr(np, "empty", empty)
    H = cols.weighted_outer(np.ones(300), dtype=np.float64)
    monkeypatch.undo()
    assert H.dtype == np.float64
    assert predecessor_alive == {shape: False for shape in single}


def test_block_row_panels_never_hold_the_whole_product():
    """The "float32" form's assembly: one panel of r_out rows, not the D^2 / 4
    numbers of the whole GEMM (4.3 GB in float32 at d = 256)."""
    cols = random_columns(K=300, p=25, r_out=5, r_in=6, seed=10)
    cols.weighted_outer(np.ones(300), packed=True, dtype=np.float32, panels=True)
    assert "outer" not in cols._buffers and cols._buffers["panel"].shape[0] == 5


def test_the_float32_form_solves_by_conjugate_gradients_to_double_accuracy():
    cols = random_columns(K=400, p=30, r_out=6, r_in=7, seed=6)
    c = np.random.default_rng(7).random(400) * 10
    b = np.random.default_rng(8).standard_normal(42)
    H = cols.weighted_outer(c)
    solver = NewtonSolver(cols, c, single=False, krylov=True)
    assert solver.factor.L.dtype == np.float32 and solver.shift == 0.0
    t = solver.solve(b)
    assert t.dtype == np.float64
    assert np.linalg.norm(H @ t - b) <= 1e-10 * np.linalg.norm(b)


def test_a_float32_factor_that_fails_is_shifted_and_still_solves():
    """Weights ~1e6 on a few constraints: float32 Cholesky breaks down (the
    mixed form would go on in float64); the "float32" form factorises
    H + shift I instead, and conjugate gradients on H make up the difference."""
    cols = random_columns(K=400, p=30, r_out=6, r_in=7, seed=8)
    c = np.full(400, 1e-3)
    c[:10] = 1e6
    b = np.random.default_rng(0).standard_normal(42)
    with pytest.raises(np.linalg.LinAlgError):
        NewtonSolver(cols, c, single=True)
    solver = NewtonSolver(cols, c, single=False, krylov=True)
    H = cols.weighted_outer(c)
    assert solver.shift == pytest.approx(ipm.CHOLESKY_SHIFT * H.diagonal().max())
    t = solver.solve(b)
    assert np.linalg.norm(H @ t - b) <= ipm.KRYLOV_FLOOR * np.linalg.norm(b)
    np.testing.assert_allclose(t, np.linalg.solve(H, b), rtol=1e-6, atol=1e-6 * np.abs(t).max())


def separable_columns(K, p, r_out, r_in, seed):
    """Columns with g_k[0], x_i[0] > 0: E_00 separates them, so the minimum-norm
    point is away from 0 and the late Newton systems are ill-conditioned."""
    rng = np.random.default_rng(seed)
    g, x = rng.standard_normal((K, r_out)), rng.standard_normal((p, r_in))
    g[:, 0], x[:, 0] = np.abs(g[:, 0]) + 0.5, np.abs(x[:, 0]) + 0.5
    return KroneckerColumns(g, x, rng.integers(0, p, size=K))


@pytest.mark.parametrize("seed", [20, 21, 22])
def test_min_norm_point_in_the_float32_form_matches_double(monkeypatch, seed):
    """No float64 Newton matrix is ever made, and the optimum is the same."""
    cols = separable_columns(K=600, p=40, r_out=6, r_in=8, seed=seed)
    double = min_norm_point(cols, form="mixed")
    dtypes = []
    real_init = NewtonSolver.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        dtypes.append(self.factor.L.dtype)

    monkeypatch.setattr(NewtonSolver, "__init__", init)
    single = min_norm_point(cols, form="float32")
    assert single.status == double.status == "optimal"
    assert np.linalg.norm(double.W) > 1e-2
    assert np.linalg.norm(single.W) == pytest.approx(np.linalg.norm(double.W), rel=1e-6)
    assert dtypes and set(dtypes) == {np.dtype(np.float32)}
    # nor float64 blocks B_i (3.3 GB at d = 256): CG's product comes from the columns
    assert cols._buffers["blocks"].dtype == np.float32


def test_the_float32_form_gives_up_rather_than_take_an_inaccurate_direction(monkeypatch):
    """With too few Krylov steps to reach KRYLOV_FLOOR the solve raises, and the
    IPM ends "numerical_error" (an undetermined round), never a wrong optimum."""
    monkeypatch.setattr(ipm, "KRYLOV_STEPS", 1)
    cols = random_columns(K=400, p=30, r_out=6, r_in=7, seed=8)
    c = np.full(400, 1e-3)
    c[:10] = 1e8
    with pytest.raises(RefinementStalled):
        NewtonSolver(cols, c, single=False, krylov=True).solve(np.ones(42))
    result = min_norm_point(separable_columns(K=600, p=40, r_out=6, r_in=8, seed=20),
                            form="float32")
    assert result.status == EngineStatus.NUMERICAL_ERROR


def test_an_unknown_newton_form_is_refused():
    with pytest.raises(ValueError, match="unknown Newton form"):
        min_norm_point(random_columns(), form="float16")


@pytest.mark.parametrize("K,seed", [(5, 0), (12, 1), (60, 2), (200, 3)])
def test_min_norm_point_matches_cvxpy(K, seed):
    """Both the K-space (K <= D) and the D-space (K > D) Newton systems."""
    cols = random_columns(K=K, seed=seed)
    A = dense(cols)
    lam = cp.Variable(K, nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(A @ lam)), [cp.sum(lam) == 1])
    problem.solve(solver=cp.CLARABEL)
    result = min_norm_point(cols)
    assert result.status is EngineStatus.OPTIMAL and result.status == "optimal"
    assert result.lam.min() >= 0 and result.lam.sum() == pytest.approx(1)
    assert np.linalg.norm(result.W) == pytest.approx(np.sqrt(problem.value), abs=1e-6)


def test_min_norm_point_is_zero_when_the_origin_is_in_the_hull():
    cols = random_columns(K=8, seed=4)
    opposite = KroneckerColumns(np.concatenate([cols.g, -cols.g]), cols.x,
                                np.concatenate([cols.owner, cols.owner]))
    assert np.linalg.norm(min_norm_point(opposite).W) < 1e-6


def test_callback_stops_early_with_a_valid_lambda():
    cols = random_columns(K=30, seed=5)
    seen = []

    def stop_at_third(lam, W, gap):
        seen.append(lam.sum())
        return "stopped" if len(seen) == 3 else None

    result = min_norm_point(cols, callback=stop_at_third)
    assert result.status == "stopped" and result.iterations == 3
    assert np.allclose(seen, 1.0)


def test_target_stops_with_a_lambda_that_reaches_it():
    """Origin in the hull: the proximal step reaches a small ||A lam|| in fewer
    iterations than the path alone, and the returned lambda is a valid one."""
    cols = random_columns(K=60, p=5, r_out=3, r_in=3, seed=13)
    opposite = KroneckerColumns(np.concatenate([cols.g, -cols.g[:20]]), cols.x,
                                np.concatenate([cols.owner, cols.owner[:20]]))
    target = 1e-9
    full = min_norm_point(opposite, callback=lambda lam, W, gap: (
        "stopped" if np.linalg.norm(W) <= target else None))
    early = min_norm_point(opposite, target=target)
    assert full.status == "stopped" and early.status == "target"
    assert early.lam.min() >= 0 and early.lam.sum() == pytest.approx(1)
    assert np.linalg.norm(early.W) <= target
    assert early.iterations < full.iterations
