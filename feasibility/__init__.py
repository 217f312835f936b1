"""feasibility: certified verdicts on what a linear associative memory can store.

Python API (the `feasibility` command is a thin layer over it)::

    from feasibility import generate, load, decide, max_margin, capacity_bisection
    inst = generate("coupled", d=16, p=60, seed=0)
    decision = decide(inst)            # verdict + certified bracket on kappa*
"""

from .certify import FEASIBLE, INFEASIBLE, UNDETERMINED
from .errors import FeasibilityError, InputError
from .instances import Instance, generate, load, save
from .solve import Decision, decide, hebbian_memory, installed_solvers, max_margin

__all__ = ["FEASIBLE", "INFEASIBLE", "UNDETERMINED", "FeasibilityError", "InputError",
           "Instance", "generate", "load", "save", "Decision", "decide", "hebbian_memory",
           "installed_solvers", "max_margin"]
__version__ = "0.1.0"
