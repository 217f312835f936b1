"""feasibility: certified verdicts on what a linear associative memory can store.

Python API (the `feasibility` command is a thin layer over it)::

    from feasibility import generate, load, decide, max_margin
    from feasibility.capacity import capacity_bisection
    inst = generate("coupled", d=16, p=60, seed=0)
    decision = decide(inst)            # verdict + certified bracket on kappa*

Layers, each importing only from those above it in this list:

    core      instances, files, certificates, statuses, tolerances (numpy only, no cvxpy)
    solvers   the programs, the IPM, the structured fast paths, the active set
    capacity  bisection on p, the batch runner and its executors, projections
    science   Hebbian baseline, spectra, mechanism, two-layer, top-k, figures
    tools     audit across solvers, text embedding
    cli       the command line
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from feasibility.core.certify import FEASIBLE, INFEASIBLE, UNDETERMINED
from feasibility.core.errors import FeasibilityError, InputError
from feasibility.core.instances import Instance, generate, load, save
from feasibility.core.status import CapacityStatus, Verdict
from feasibility.solvers.active_set import (
    Decision,
    decide,
    hebbian_memory,
    installed_solvers,
    max_margin,
)

__all__ = ["FEASIBLE", "INFEASIBLE", "UNDETERMINED", "Verdict", "CapacityStatus",
           "FeasibilityError", "InputError",
           "Instance", "generate", "load", "save", "Decision", "decide", "hebbian_memory",
           "installed_solvers", "max_margin"]
__version__ = "0.2.0"

#: modules of the flat 0.1 layout -> where they live now; importing an old name
#: still works and warns (DeprecationWarning), so notebooks keep running.
MOVED_MODULES = {
    "feasibility.errors": "feasibility.core.errors",
    "feasibility.tolerances": "feasibility.core.tolerances",
    "feasibility.instances": "feasibility.core.instances",
    "feasibility.certify": "feasibility.core.certify",
    "feasibility.synthetic": "feasibility.core.synthetic",
    "feasibility.programs": "feasibility.solvers.programs",
    "feasibility.ipm": "feasibility.solvers.ipm",
    "feasibility.structured": "feasibility.solvers.structured",
    "feasibility.solve": "feasibility.solvers.active_set",
    "feasibility.batch": "feasibility.capacity.batch",
    "feasibility.spec": "feasibility.capacity.spec",
    "feasibility.projection": "feasibility.capacity.projection",
    "feasibility.analysis": "feasibility.science.analysis",
    "feasibility.twolayer": "feasibility.science.twolayer",
    "feasibility.topk": "feasibility.science.topk",
    "feasibility.figures": "feasibility.science.figures",
    "feasibility.audit": "feasibility.tools.audit",
    "feasibility.embed": "feasibility.tools.embed",
    "feasibility.science_cli": "feasibility.cli.science",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an import of an old module name with the module at its new place."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} is deprecated: import {new}", DeprecationWarning,
                      stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
