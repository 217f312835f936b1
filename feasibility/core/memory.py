"""This machine's physical memory: what the memory budgets are fractions of."""

from __future__ import annotations

import os


def physical_memory() -> int:
    """Bytes of physical memory; 2^63 where the system cannot say (no budget binds)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**63
