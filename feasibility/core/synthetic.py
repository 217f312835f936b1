"""Synthetic files that look like real sentence embeddings, for benchmarks and tests.

Real embeddings differ from the N(0, I/d) of the capacity experiments in three
ways that matter to a solver: a decaying spectrum, a large common component
(unrelated sentences of all-MiniLM-L6-v2 have mean cosine ~0.4-0.5), and, with
shared answers, inputs that cluster by answer. ``embedding_like`` reproduces
the three, reproducibly from a seed:

- a vector is normalise(mu + Q (sqrt(lambda_k) g_k)) with g ~ N(0, I),
  lambda_k = k^-1 / sum(k^-1) (k = 1..d), Q a random rotation and mu a fixed
  unit vector scaled so that the mean cosine of two vectors is ~0.45;
- one target per fact (``answers=None``): inputs and targets are drawn
  independently, fact by fact;
- ``answers=k``: k answer vectors; fact i has answer i mod k, and its input is
  normalise(mu + centroid_t + noise), centroid and noise drawn from the
  spectrum model with weights 1 and ``spread``.
"""

from __future__ import annotations

import numpy as np

from feasibility.core.instances import EMBEDDING_LIKE_STREAM, Instance

#: |mu|^2 relative to the unit-trace random part: mean cosine ~ 0.45
COMMON = 0.9


def _spectrum_model(rng: np.random.Generator, d: int):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scale = np.sqrt(1.0 / np.arange(1, d + 1))
    scale /= np.linalg.norm(scale)
    mu = rng.standard_normal(d)
    mu *= np.sqrt(COMMON) / np.linalg.norm(mu)

    def draw(count: int) -> np.ndarray:
        return (rng.standard_normal((count, d)) * scale) @ q.T

    return mu, draw


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def embedding_like(n: int, d: int, answers: int | None = None, seed: int = 0,
                   spread: float = 0.7) -> Instance:
    """n facts with d-dimensional inputs and targets (see module docstring)."""
    rng = np.random.default_rng([seed, EMBEDDING_LIKE_STREAM, d, n, answers or 0])
    mu_x, draw_x = _spectrum_model(rng, d)
    mu_y, draw_y = _spectrum_model(rng, d)
    if answers is None:
        X = _unit(mu_x + draw_x(n))
        Y = _unit(mu_y + draw_y(n))
        return Instance(X, Y, name=f"embedding-like-n{n}-d{d}-seed{seed}")
    assignment = np.arange(n) % answers
    centroids = draw_x(answers)
    X = _unit(mu_x + centroids[assignment] + spread * draw_x(n))
    Y = _unit(mu_y + draw_y(answers))
    return Instance(X, Y, assignment, name=f"embedding-like-n{n}-d{d}-k{answers}-seed{seed}")
