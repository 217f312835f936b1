"""This machine's physical memory (what the memory budgets are fractions of) and
this process's peak use of it."""

from __future__ import annotations

import os
import sys


def physical_memory() -> int:
    """Bytes of physical memory; 2^63 where the system cannot say (no budget binds)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**63


def peak_resident_bytes() -> int | None:
    """This process's peak resident memory (max RSS) in bytes; None where the
    system cannot say."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return peak if sys.platform == "darwin" else peak * 1024
