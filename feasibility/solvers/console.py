"""Keeping native solvers' console output off stdout."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def solver_output_to_stderr():
    """Send what native solvers print on file descriptor 1 (HiGHS prints a banner)
    to stderr, so that stdout carries only the report (``audit --json | jq``)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 1)
        os.close(saved)
