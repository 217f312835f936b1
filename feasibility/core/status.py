"""Typed statuses: verdicts, capacity outcomes, engine statuses.

Each is a string-valued enum: a member *is* its text (``Verdict.FEASIBLE ==
"feasible"``, same hash), so CSV and JSON columns read exactly as before and a
row from an old file compares equal to a member. Code branches on members,
never on text it parses back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TextEnum(str, Enum):
    """A str-valued enum that prints as its value (Python 3.10 has no StrEnum).

    str() and format() give the value, so f-strings, csv and pandas write
    "feasible", not "Verdict.FEASIBLE".
    """

    __str__ = str.__str__
    __format__ = str.__format__


class Verdict(TextEnum):
    """What a certified bracket on kappa* proves (certify.classify)."""

    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNDETERMINED = "undetermined"


class CapacityStatus(TextEnum):
    """How a bisection on p ended (capacity.bisection.bracket_search)."""

    EXACT = "exact"                     # p* certified feasible, p* + 1 certified infeasible
    AT_LEAST_P_MAX = "at_least_p_max"   # every prefix up to p_max is feasible: censored
    UNDETERMINED = "undetermined"       # a probe was undetermined: the search stopped there
    BELOW_P_MIN = "below_p_min"         # even the smallest prefix allowed is infeasible (top-k)


class FastPath(TextEnum):
    """What the structured fast path did for one decision."""

    NOT_TRIED = "not_tried"     # switched off, not worth trying, or already decided
    DECIDED = "decided"         # its evidence decided the verdict
    UNDECIDED = "undecided"     # tried and left the verdict to the active set


class EngineStatus(TextEnum):
    """How one restricted solve ended: the IPM's own statuses, cvxpy's (same
    text as cvxpy.settings), and the two the active set adds."""

    # the structured IPM (solvers.ipm) and its callback
    OPTIMAL = "optimal"
    TARGET = "target"                   # its lambda reached the requested bound
    STOPPED = "stopped"                 # the caller's bracket was decided mid-solve
    CUT = "cut"                         # ended early to grow the active set
    MAX_ITERATIONS = "max_iterations"
    NUMERICAL_ERROR = "numerical_error"
    MEMORY_LIMIT = "memory_limit"       # its Newton matrix would not fit: not started
    # cvxpy's statuses
    OPTIMAL_INACCURATE = "optimal_inaccurate"
    INFEASIBLE = "infeasible"
    INFEASIBLE_INACCURATE = "infeasible_inaccurate"
    UNBOUNDED = "unbounded"
    UNBOUNDED_INACCURATE = "unbounded_inaccurate"
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    USER_LIMIT = "user_limit"
    SOLVER_ERROR = "solver_error"
    # the solver raised instead of returning a status
    ERROR = "error"
    EXCEPTION = "exception"


def engine_status(text: str) -> EngineStatus | str:
    """The member for a solver's status text; an unknown text is kept as it is
    (a status new to a solver must be reported, not crash the run)."""
    try:
        return EngineStatus(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class RoundStatus:
    """One restricted solve: which engine, how it ended, and its iterations if
    it counts them. str() is the text the CSV and JSON columns always had:
    'clarabel:optimal', 'ipm:optimal(23)'."""

    solver: str
    status: EngineStatus | str
    iterations: int | None = None

    @property
    def outcome(self) -> str:
        """The status with its iteration count: 'optimal(23)', 'infeasible'."""
        count = "" if self.iterations is None else f"({self.iterations})"
        return f"{self.status}{count}"

    def __str__(self) -> str:
        return f"{self.solver}:{self.outcome}"
