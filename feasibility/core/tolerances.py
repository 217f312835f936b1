"""Named tolerances. Every verdict states the ones it used.

Margins are *normalised*: for a constraint a_ij = (y_t(i) - y_j) x_i^T and a
memory W != 0 the margin is <a_ij, W> / (||a_ij||_F ||W||_F), which is invariant
under rescaling an input, a target difference or W. The max-margin kappa* is the
supremum over W of the smallest such margin; by duality it is the distance from
the origin to the convex hull of the normalised constraints a_ij / ||a_ij||_F.
"""

#: An instance is proved *infeasible at tolerance tau* when a certificate
#: lambda >= 0, sum(lambda) = 1, gives ||sum lambda_ij a_ij/||a_ij|| ||_F <= tau:
#: then no W separates the facts with normalised margin above tau.
INFEASIBILITY_TOLERANCE = 1e-6

#: Up to this d the capacity runs use INFEASIBILITY_TOLERANCE itself (every
#: committed result was computed so); above it tau shrinks, see capacity_tolerance.
TOLERANCE_FIXED_UP_TO_D = 96
#: tau must stay well below the drop of kappa* per added fact near p*, or p*
#: depends on which certificate a solver happens to find. That drop was measured
#: at 1.3e-3, 3.5e-4, 1.4e-4, 6.9e-5 for d = 16, 24, 32, 48 (DESIGN.md), close
#: to d^-3; extrapolated ~9e-6 at d = 96, i.e. ~9 tau. Shrinking tau as d^-3
#: keeps that ratio at every larger d.
TOLERANCE_DECAY_POWER = 3

#: From this d on, every capacity row also checks that its p* does not depend on
#: tau: p* + 1 must be certified infeasible at tau / BOUNDARY_TIGHTENING too
#: (capacity_bisection's boundary_tolerance: the probe right above a feasible p
#: is decided at it from the start; one solve more only where the bracket closed
#: at another probe whose certificate does not reach it). Below it the drop of kappa*
#: per fact is >= 9 tau (the measurements above) and rows skip the check.
BOUNDARY_CHECK_FROM_D = 96
BOUNDARY_TIGHTENING = 100

#: A W proves feasibility only if its recomputed normalised margin exceeds this
#: floor, far above the float64 rounding of the recomputation (~1e-15 sqrt(d)).
MARGIN_FLOOR = 1e-12

#: Relative rank cut-off when reducing W to the spans of inputs and targets.
RANK_RTOL = 1e-10

#: Cutting-plane loop: at most this many restricted solves per verdict.
MAX_ACTIVE_SET_ROUNDS = 60

#: A Farkas certificate's weights must sum to 1 within this (absolute): the
#: bound ||sum lambda a_hat|| scales with sum(lambda), so weights summing to s
#: would understate kappa*'s bound by the factor s. 1e-12 leaves room for the
#: rounding of normalising ~1e4 duals (~K eps) and nothing more.
CERTIFICATE_SUM_ATOL = 1e-12


def capacity_tolerance(d: int) -> float:
    """The tau of the capacity runs at dimension d: 1e-6 up to d = 96, then
    1e-6 (96/d)^3 (4.2e-7 at d = 128, 1.25e-7 at 192, 5.3e-8 at 256)."""
    if d <= TOLERANCE_FIXED_UP_TO_D:
        return INFEASIBILITY_TOLERANCE
    return INFEASIBILITY_TOLERANCE * (TOLERANCE_FIXED_UP_TO_D / d) ** TOLERANCE_DECAY_POWER


def boundary_tolerance(d: int) -> float | None:
    """The tolerance at which capacity rows of dimension d check p* + 1 again
    (None below BOUNDARY_CHECK_FROM_D: no check)."""
    if d < BOUNDARY_CHECK_FROM_D:
        return None
    return capacity_tolerance(d) / BOUNDARY_TIGHTENING
