"""The facts that fit: drop the facts that certificates name until the rest is
certified feasible.

Each round works on the facts kept so far (with the answers they use):

1. exact conflicts first, all at once and without a solver: facts whose
   inputs are parallel (identical, after an uncased encoder) with different
   answers. In each such group the first fact in file order is kept with
   every fact sharing its answer; each other fact is dropped, named by the
   two-point certificate lambda = 1/2 on (first, its answer) and (it, the
   first's answer), which is checked by feasibility.core.certify on the kept
   set before the drop;
2. cone conflicts, without a solver: the facts that the pseudo-inverse memory
   (feasibility.solvers.structured, the first of its ridge family) gets wrong
   are candidates; a candidate whose input is a nonnegative combination
   (NNLS, to rounding) of the inputs of facts sharing the answer that beats
   it is dropped, named by the certificate lambda ~ ||a_(i,A)|| on (i, A) and
   w_k ||a_(k,t(i))|| on each (k, t(i)), checked by certify. At full
   dimension this is what a solver's certificate would name, found in
   seconds instead of the minutes of an LP over m x d unknowns;
3. otherwise `decide` on the kept facts: feasible ends the search (its W,
   margins recomputed in numpy, is the certified verdict of what is kept);
   infeasible names the facts of its certificate's support (narrowed to the
   fewest of its constraints that still verify), and the heaviest one (ties:
   the last in file order) is dropped; undetermined stops, and
   nothing is dropped without a certificate.

A certificate for the kept set is a certificate for the whole file (its
constraints are a subset), so every dropped fact is named by a verified Farkas
certificate, and no fact is dropped that none named. Dropping one fact per
certificate is a greedy choice: the kept set is certified feasible, not
proved to be the largest one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.optimize as opt

from feasibility.core import certify
from feasibility.core.certify import FEASIBLE, INFEASIBLE, FarkasCertificate
from feasibility.core.errors import InputError
from feasibility.core.files import write_text_atomic
from feasibility.core.instances import Instance
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE
from feasibility.solvers.active_set import Decision, decide
from feasibility.solvers.structured import Whitened, parallel_groups, ridge_memories
from feasibility.tools.explain import (
    CONE,
    CONE_RTOL,
    IDENTICAL,
    PARALLEL,
    sparsest_within,
)

Progress = Callable[[str], None]

#: how a dropped fact was named
BY_EXACT, BY_SOLVER = "exact conflict", "solver certificate"
#: the cone pass tests at most this many candidates of the pseudo-inverse memory
#: and of each other ridge memory, worst margin first
CONE_CANDIDATES, CONE_CANDIDATES_OTHERS = 2000, 250
REPORT_COLUMNS = ["fact", "subject", "answer", "round", "named_by", "kind", "proved_by",
                  "certificate_bound", "certificate_facts", "weight"]


@dataclass(frozen=True)
class Dropped:
    """A fact left out, and the verified certificate that named it."""

    fact: int                 # index in the original file (from 0)
    subject: str | None
    answer: str | None
    round: int
    named_by: str             # BY_EXACT or BY_SOLVER
    kind: str                 # the exact conflict's kind, or the solver's name
    proved_by: str
    certificate_bound: float  # ||sum lambda a_hat|| of that certificate, recomputed
    certificate_facts: tuple[int, ...]  # every fact it names (original indices)
    weight: float             # this fact's share of the certificate's lambda

    def describe(self) -> str:
        subject = repr(self.subject) if self.subject is not None else "input"
        others = [k for k in self.certificate_facts if k != self.fact]
        shown = ", ".join(str(k) for k in others[:6]) + (", ..." if len(others) > 6 else "")
        return (f"round {self.round}: fact {self.fact} ({subject} -> {self.answer!r}), "
                f"{self.kind} [{self.named_by}, bound {self.certificate_bound:.2e}, "
                f"weight {self.weight:.3g}; with facts {shown or '-'}]")


@dataclass(frozen=True, eq=False)
class PruneResult:
    """The kept facts, what was dropped and why, and the verdict on what is kept."""

    n_facts: int
    kept_facts: np.ndarray
    kept: Instance
    dropped: tuple[Dropped, ...]
    decision: Decision
    solver_rounds: int
    seconds: float
    stopped: str = ""
    rounds_log: tuple[str, ...] = field(default=(), repr=False)

    @property
    def complete(self) -> bool:
        return self.decision.verdict == FEASIBLE

    def lines(self) -> list[str]:
        verdict = self.decision.verdict
        head = (f"kept {self.kept.n} of {self.n_facts} facts, dropped {len(self.dropped)} "
                f"({sum(d.named_by == BY_EXACT for d in self.dropped)} by exact conflicts, "
                f"{sum(d.named_by == BY_SOLVER for d in self.dropped)} by solver certificates; "
                f"{self.solver_rounds} verdicts, {self.seconds:.1f}s)")
        out = [head, f"kept facts: {verdict} ({self.decision.reason})"]
        if self.stopped:
            out.append(f"stopped: {self.stopped}")
        out.append("dropped facts, each with the certificate that named it "
                   "(fact index from 0):" if self.dropped else "nothing dropped")
        out += [f"  {drop.describe()}" for drop in self.dropped]
        return out

    def record(self) -> dict:
        return {"n_facts": self.n_facts, "kept": int(self.kept.n),
                "dropped": [asdict(drop) for drop in self.dropped],
                "kept_verdict": self.decision.row(), "solver_rounds": self.solver_rounds,
                "seconds": self.seconds, "stopped": self.stopped}


def prune_progress(message: str) -> None:
    print(f"feasibility: prune: {message}", file=sys.stderr, flush=True)


# -- the rounds ------------------------------------------------------------------------
def prune(instance: Instance, solver: str | None = None, max_rounds: int | None = None,
          tolerance: float = INFEASIBILITY_TOLERANCE,
          progress: Progress | None = None) -> PruneResult:
    """Drop certificate-named facts until the kept ones are certified feasible.

    ``max_rounds``: at most this many solver verdicts that end in a drop
    (None: no limit); the result then says where it stopped.
    """
    start = time.monotonic()
    keep = np.arange(instance.n)
    dropped: list[Dropped] = []
    solver_rounds, round_number, stopped = 0, 0, ""
    while True:
        round_number += 1
        if not instance.decoupled and len(np.unique(instance.assignment[keep])) < 2:
            raise InputError("prune: the kept facts share one answer: nothing left to separate")
        current = instance.subset(keep)
        exact = [] if instance.decoupled else exact_drops(instance, current, keep, round_number,
                                                          tolerance)
        if not exact and not instance.decoupled:
            exact = cone_drops(instance, current, keep, round_number, tolerance)
        if exact:
            dropped += exact
            keep = np.setdiff1d(keep, [drop.fact for drop in exact])
            _say(progress, f"round {round_number}: {len(exact)} facts dropped by exact "
                           f"conflicts ({exact[0].kind}), {len(keep)} kept")
            continue
        decision = decide(current, solver=solver, tolerance=tolerance)
        solver_rounds += 1
        if decision.verdict != INFEASIBLE:
            if decision.verdict != FEASIBLE:
                stopped = f"the kept facts are undetermined ({decision.reason}): nothing dropped"
            break
        if max_rounds is not None and solver_rounds > max_rounds:
            stopped = f"--max-rounds {max_rounds} reached; the kept facts are still infeasible"
            break
        drop = solver_drop(instance, current, decision, keep, round_number)
        dropped.append(drop)
        keep = np.setdiff1d(keep, [drop.fact])
        _say(progress, f"{drop.describe()}; {len(keep)} kept")
    return PruneResult(instance.n, keep, current, tuple(dropped), decision, solver_rounds,
                       time.monotonic() - start, stopped)


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def exact_drops(instance: Instance, current: Instance, keep: np.ndarray, round_number: int,
                tolerance: float) -> list[Dropped]:
    """Step 1 of the module docstring, each drop's certificate verified on `current`."""
    drops = []
    for group in parallel_groups(current.inputs, np.arange(current.n)):
        first = int(group[0])
        t_first = int(current.assignment[first])
        for k in group[1:]:
            k = int(k)
            t_k = int(current.assignment[k])
            if t_k == t_first:
                continue
            cert = FarkasCertificate(np.array([first, k]), np.array([t_k, t_first]),
                                     np.array([0.5, 0.5]))
            bound = certify.margin_upper_bound(current, cert)
            if bound is None or bound > tolerance:
                continue  # not proved: leave it to the solver
            identical = np.array_equal(current.inputs[first], current.inputs[k])
            drops.append(_dropped(instance, keep, k, round_number, BY_EXACT,
                                  IDENTICAL if identical else PARALLEL, "exact", bound,
                                  (first, k), 0.5))
    return drops


def cone_drops(instance: Instance, current: Instance, keep: np.ndarray, round_number: int,
               tolerance: float) -> list[Dropped]:
    """Step 2 of the module docstring, each drop's certificate verified on `current`
    and using only facts not dropped before it in this round."""
    gone: set[int] = set()
    drops = []
    for i, rival in cone_candidates(current):
        if i in gone:
            continue
        cert = cone_certificate(current, i, rival, gone)
        if cert is None:
            continue
        bound = certify.margin_upper_bound(current, cert)
        if bound is None or bound > tolerance:
            continue
        gone.add(i)
        drops.append(_dropped(instance, keep, i, round_number, BY_EXACT, CONE, "exact",
                              bound, tuple(int(k) for k in np.unique(cert.rows)),
                              float(cert.weights[cert.rows == i].sum())))
    return drops


def cone_candidates(current: Instance) -> list[tuple[int, int]]:
    """(fact, the answer that beats it) for each fact that a memory of the ridge
    family (pseudo-inverse to Hebbian) gets wrong: different memories fail on
    different members of a clash, and one of them fails on the member in the
    cone. The pseudo-inverse memory's CONE_CANDIDATES worst, then each other
    memory's CONE_CANDIDATES_OTHERS worst (one far from separating, like the
    Hebbian one, must not crowd out the rest), each pair once."""
    mask = current.slot_mask()
    found: dict[tuple[int, int], None] = {}
    for k, (_, W) in enumerate(ridge_memories(current, Whitened.of(current))):
        cap = CONE_CANDIDATES if k == 0 else CONE_CANDIDATES_OTHERS
        own, scores = current.scores(W)
        scores = np.where(mask, scores, -np.inf)
        rival, margin = scores.argmax(axis=1), own - scores.max(axis=1)
        wrong = np.flatnonzero(margin <= 0)
        for i in wrong[np.argsort(margin[wrong], kind="stable")][:cap]:
            found.setdefault((int(i), int(rival[i])), None)
    return list(found)


def cone_certificate(current: Instance, i: int, rival: int,
                     gone: set[int]) -> FarkasCertificate | None:
    """x_i = sum w_k x_k over facts k with answer `rival` (none in `gone`), as a
    certificate: a_(i,rival) + sum w_k a_(k,t(i)) = (y_t(i) - y_rival)(x_i - sum w_k x_k)^T = 0."""
    others = np.flatnonzero(current.assignment == rival)
    others = others[~np.isin(others, list(gone))]
    x = current.inputs[i]
    if len(others) == 0 or not np.any(x):
        return None
    w, residual = opt.nnls(current.inputs[others].T, x)
    if residual > CONE_RTOL * np.linalg.norm(x) or not np.any(w > 0):
        return None
    used = others[w > 0]
    norms = current.constraint_norms()
    t = int(current.assignment[i])
    rows = np.r_[i, used]
    slots = np.r_[rival, np.full(len(used), t)]
    lam = np.r_[norms[i, rival], w[w > 0] * norms[used, t]]
    if not np.all(lam > 0):
        return None
    return FarkasCertificate(rows, slots, lam / lam.sum())


def solver_drop(instance: Instance, current: Instance, decision: Decision, keep: np.ndarray,
                round_number: int) -> Dropped:
    """The heaviest fact of the certificate that proved `current` infeasible
    (ties: the last in file order), narrowed first to the fewest of its
    constraints that still verify (explain.sparsest_within)."""
    limit = decision.margin + decision.tolerance
    bound = certify.margin_upper_bound(current, decision.certificate)
    if bound is None or bound > limit:
        raise InputError("prune: the solver's certificate did not verify")  # never expected
    cert, bound = sparsest_within(current, decision.certificate, limit)
    weight = np.bincount(cert.rows, weights=cert.weights, minlength=current.n)
    named = np.unique(cert.rows)
    heaviest = named[weight[named] == weight[named].max()].max()
    return _dropped(instance, keep, int(heaviest), round_number, BY_SOLVER, decision.solver,
                    decision.solver, bound, tuple(int(k) for k in named),
                    float(weight[heaviest]))


def _dropped(instance, keep, local, round_number, named_by, kind, proved_by, bound,
             named_local, weight) -> Dropped:
    """A Dropped record in the original file's numbering."""
    fact = int(keep[local])
    answer_index = int(instance.assignment[fact])
    return Dropped(fact, instance.subjects[fact] if instance.subjects else None,
                   instance.answers[answer_index] if instance.answers else str(answer_index),
                   round_number, named_by, kind, proved_by, float(bound),
                   tuple(int(keep[k]) for k in named_local), float(weight))


# -- files -------------------------------------------------------------------------------
def write_prune_report(result: PruneResult, path: str | os.PathLike) -> Path:
    """CSV (one row per dropped fact) or JSON (the whole record), atomically."""
    path = Path(path)
    handle = io.StringIO(newline="")
    if path.suffix.lower() == ".json":
        json.dump(result.record(), handle, indent=1)
    else:
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        for drop in result.dropped:
            row = asdict(drop)
            row["certificate_facts"] = " ".join(str(k) for k in drop.certificate_facts)
            writer.writerow(row)
    return write_text_atomic(handle.getvalue(), path)
