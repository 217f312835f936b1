"""Picking constraints for an active set."""

from __future__ import annotations

import numpy as np


def smallest_per_row(values: np.ndarray, count: int, eligible: np.ndarray) -> np.ndarray:
    """Boolean mask of up to `count` smallest eligible entries in each row."""
    masked = np.where(eligible, values, np.inf)
    count = min(count, values.shape[1])
    idx = np.argpartition(masked, count - 1, axis=1)[:, :count]
    picked = np.zeros_like(eligible)
    np.put_along_axis(picked, idx, True, axis=1)
    return picked & eligible
