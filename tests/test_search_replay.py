"""The search finds p* whatever slope of kappa*(p) it assumes: replays of the
committed capacity-xl searches (benchmarks/search_replay.py) on lines of kappa*
with noise, each of which must close at the seed's p* and p* + 1."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import search_replay  # noqa: E402  (benchmarks/ is not a package)

from feasibility.capacity import bisection  # noqa: E402


@pytest.mark.parametrize("scale", [0.3, 0.7, 1.5])
def test_a_replayed_search_closes_at_p_star_whatever_slope_it_assumes(monkeypatch, scale):
    monkeypatch.setattr(bisection, "KAPPA_SLOPE_SCALE", bisection.KAPPA_SLOPE_SCALE)
    known = search_replay.seeds()
    assert len(known) >= 16 and all(drop > 0 for *_, drop in known)
    rng = np.random.default_rng(0)
    for model, d, seed, p_star, drop in known:
        # replay asserts the search's bracket is (p*, p* + 1): both certified
        assert search_replay.replay(model, d, p_star, drop, scale, 1.0, rng) >= 2
