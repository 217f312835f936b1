"""How an instance is decided: cvxpy programs, the structured interior-point
method, closed-form fast paths, and the active-set loop that certifies."""

import logging

#: the parent of the solvers' progress logs (active_set's record per IPM
#: iteration, first_order's per descent step) at DEBUG, a solve resumed from its
#: checkpoint at INFO: where capacity's heartbeat listens (capacity/progress.py)
solver_log = logging.getLogger(__name__)
