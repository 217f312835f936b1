"""Audit: every installed solver, on every program it supports, on one instance.

Each run is ``decide(..., solver=s, program=q, escalate=False)``: its verdict is
certified in numpy (a W or a Farkas certificate), so two certified verdicts can
only clash when kappa* sits within the tolerance above the margin (a W with
margin in (margin, margin + tau] and a certificate at margin + tau are both
true) or when something is wrong. A clash is never folded into one answer: the
report says who said what, whether the certified bounds are still consistent
(best lower <= best upper), and ``agree`` is False. An undetermined run is
reported as such and does not count as a disagreement.

``decide`` stops as soon as the verdict is proved: when the Hebbian memory
already separates the facts, or a constraint is zero (duplicate targets, a zero
input), no solver needs to run and the record says so (``certified_by``).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import asdict, dataclass

from feasibility.core.certify import FEASIBLE, INFEASIBLE, UNDETERMINED
from feasibility.core.errors import InputError
from feasibility.core.instances import Instance
from feasibility.core.status import EngineStatus, RoundStatus, Verdict
from feasibility.core.tolerances import INFEASIBILITY_TOLERANCE
from feasibility.solvers.active_set import SOLVERS, decide, installed_solvers


@dataclass(frozen=True)
class AuditRecord:
    """One solver on one program: what it returned, and what was certified."""

    solver: str
    program: str
    statuses: tuple[RoundStatus, ...]
    verdict: Verdict
    margin_lower: float | None
    margin_upper: float | None
    seconds: float
    rounds: int = 0
    certified_by: str = ""  # whose evidence: this solver, 'hebbian' or 'mirror-descent' (no solve needed), 'exact'
    reason: str = ""

    def row(self) -> dict:
        return {**asdict(self), "statuses": [str(status) for status in self.statuses]}

    def status_summary(self) -> str:
        """'optimal x3, infeasible' from the rounds' statuses."""
        counts = Counter(round_.outcome for round_ in self.statuses)
        return ", ".join(f"{status} x{count}" if count > 1 else status
                         for status, count in counts.items()) or "-"


#: AuditReport.verdict when two runs certify different verdicts
DISAGREEMENT = "disagreement"
#: pooled bounds still bracket kappa* when lower <= upper (1 + this) + BOUNDS_ATOL:
#: two solvers' bounds at the same kappa* may differ by their float64 rounding
BOUNDS_RTOL, BOUNDS_ATOL = 1e-9, 1e-15


@dataclass(frozen=True)
class AuditReport:
    records: tuple[AuditRecord, ...]
    margin: float
    tolerance: float

    @property
    def decided(self) -> tuple[AuditRecord, ...]:
        return tuple(r for r in self.records if r.verdict != UNDETERMINED)

    @property
    def agree(self) -> bool:
        """Certified verdicts other than 'undetermined' are all equal."""
        return len({r.verdict for r in self.decided}) <= 1

    @property
    def verdict(self) -> str:
        """The common certified verdict, 'undetermined' if none, or 'disagreement'."""
        verdicts = {r.verdict for r in self.decided}
        if len(verdicts) > 1:
            return DISAGREEMENT
        return verdicts.pop() if verdicts else UNDETERMINED

    @property
    def margin_lower(self) -> float | None:
        """Best certified lower bound on kappa* over all runs."""
        values = [r.margin_lower for r in self.records if r.margin_lower is not None]
        return max(values) if values else None

    @property
    def margin_upper(self) -> float | None:
        """Best certified upper bound on kappa* over all runs."""
        values = [r.margin_upper for r in self.records if r.margin_upper is not None]
        return min(values) if values else None

    @property
    def consistent(self) -> bool:
        """The pooled certified bounds still bracket kappa* (best lower <= best upper)."""
        lower, upper = self.margin_lower, self.margin_upper
        return lower is None or upper is None or lower <= upper * (1 + BOUNDS_RTOL) + BOUNDS_ATOL

    def disagreement(self) -> str:
        """One line naming who certified what; empty when they agree."""
        if self.agree:
            return ""
        sides = {v: [f"{r.solver}/{r.program}" for r in self.decided if r.verdict == v]
                 for v in (FEASIBLE, INFEASIBLE)}
        text = "; ".join(f"{', '.join(names)} certif{'y' if len(names) > 1 else 'ies'} {v}"
                         for v, names in sides.items() if names)
        if self.consistent:
            why = (f"the bounds are consistent: kappa* lies in [{self.margin_lower:.3g}, "
                   f"{self.margin_upper:.3g}], within the tolerance {self.tolerance:g} "
                   f"above the margin {self.margin:g}, where both statements hold")
        else:
            why = (f"the certified bounds contradict each other (lower "
                   f"{self.margin_lower:.6g} > upper {self.margin_upper:.6g}): a bug, "
                   f"please report it with this instance")
        return f"DISAGREEMENT: {text}; {why}"

    def row(self) -> dict:
        return {"agree": self.agree, "verdict": self.verdict, "margin": self.margin,
                "tolerance": self.tolerance, "margin_lower": self.margin_lower,
                "margin_upper": self.margin_upper, "consistent": self.consistent,
                "disagreement": self.disagreement() or None,
                "records": [r.row() for r in self.records]}

    def table(self) -> str:
        """A fixed-width table, one line per run, and the agreement line."""
        def number(value):
            return "-" if value is None else f"{value:.6g}"

        header = ("solver", "program", "verdict", "kappa_lower", "kappa_upper", "by",
                  "rounds", "seconds", "statuses")
        rows = [(r.solver, r.program, r.verdict, number(r.margin_lower),
                 number(r.margin_upper), r.certified_by or "-", str(r.rounds),
                 f"{r.seconds:.2f}", r.status_summary()) for r in self.records]
        widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header) - 1)]
        lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths)), row[-1]])
                 for row in [header, *rows]]
        if not self.agree:
            lines.append(self.disagreement())
        elif self.decided:
            undetermined = len(self.records) - len(self.decided)
            lines.append(f"agree: {len(self.decided)} of {len(self.records)} runs certify "
                         f"{self.verdict}"
                         + (f", {undetermined} undetermined" if undetermined else "")
                         + f"; kappa* in [{number(self.margin_lower)}, "
                           f"{number(self.margin_upper)}]")
        else:
            lines.append(f"agree: no run could certify a verdict "
                         f"({len(self.records)} undetermined)")
        return "\n".join(lines)


def solver_programs() -> list[tuple[str, str]]:
    """Every (installed solver, program it can certify), in SOLVERS order."""
    installed = set(installed_solvers())
    return [(name, program) for name, engine in SOLVERS.items()
            if name in installed for program in engine.programs]


def audit(instance: Instance, margin: float = 0.0,
          tolerance: float = INFEASIBILITY_TOLERANCE) -> AuditReport:
    """Run each installed solver on each program it supports, without escalation."""
    if not math.isfinite(margin) or margin < 0:
        raise InputError(f"margin must be a finite number >= 0, got {margin}")
    records = []
    for solver, program in solver_programs():
        start = time.monotonic()
        try:
            decision = decide(instance, margin, solver=solver, program=program,
                              tolerance=tolerance, escalate=False)
        except InputError:
            raise
        except Exception as exc:  # a solver crash is a finding, not the end of the audit
            detail = str(exc).splitlines()[0] if str(exc) else ""
            records.append(AuditRecord(solver, program,
                                       (RoundStatus(solver, EngineStatus.EXCEPTION),),
                                       UNDETERMINED, None, None, time.monotonic() - start,
                                       0, "", f"{type(exc).__name__}: {detail}"))
            continue
        records.append(AuditRecord(solver, program, tuple(decision.statuses), decision.verdict,
                                   decision.margin_lower, decision.margin_upper,
                                   decision.seconds, decision.rounds,
                                   decision.solver if decision.verdict != UNDETERMINED else "",
                                   decision.reason))
    return AuditReport(tuple(records), float(margin), float(tolerance))
