"""How many facts fit: bisection on p, the batch runner with its executors,
resumable CSV and progress, and projections of real embedding files."""

from feasibility.capacity.bisection import (
                                            CapacityResult,
                                            bracket_search,
                                            capacity_bisection,
                                            capacity_guess,
                                            transfer_active_set,
)

__all__ = ["CapacityResult", "bracket_search", "capacity_bisection", "capacity_guess",
           "transfer_active_set"]
