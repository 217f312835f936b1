"""The structured interior-point method against explicit dense linear algebra and cvxpy."""
import cvxpy as cp
import numpy as np
import pytest

from feasibility.ipm import KroneckerColumns, min_norm_point


def random_columns(K=40, p=7, r_out=3, r_in=4, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((K, r_out))
    x = rng.standard_normal((p, r_in))
    owner = rng.integers(0, p, size=K)
    return KroneckerColumns(g, x, owner)


def dense(columns):
    return np.stack([np.kron(columns.g[k], columns.x[columns.owner[k]])
                     for k in range(columns.g.shape[0])], axis=1)


def test_structured_products_match_the_dense_matrix():
    cols = random_columns()
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
    upper = np.triu_indices_from(H)
    assert np.allclose(cols.weighted_outer(c, upper_only=True)[upper], H[upper])


@pytest.mark.parametrize("K,seed", [(5, 0), (12, 1), (60, 2), (200, 3)])
def test_min_norm_point_matches_cvxpy(K, seed):
    """Both the K-space (K <= D) and the D-space (K > D) Newton systems."""
    cols = random_columns(K=K, seed=seed)
    A = dense(cols)
    lam = cp.Variable(K, nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(A @ lam)), [cp.sum(lam) == 1])
    problem.solve(solver=cp.CLARABEL)
    result = min_norm_point(cols)
    assert result.status == "optimal"
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
