"""Runs that would exhaust the machine stop with one line instead of being killed:
the IPM refuses a Newton matrix that cannot fit, a fast-path LP has a time limit,
and a worker killed under a grid is reported with the rows it finished kept."""

import os
import signal
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import scipy.optimize

import feasibility.solvers.active_set as active_set
import feasibility.solvers.structured as structured
from feasibility import decide, generate
from feasibility.capacity.batch import run_tasks
from feasibility.core.errors import WorkerLost
from feasibility.core.status import EngineStatus
from feasibility.core.synthetic import embedding_like


def test_the_ipm_refuses_a_newton_matrix_that_cannot_fit(monkeypatch):
    instance = generate("coupled", 8, 30, seed=0)
    reduced = active_set.ReducedInstance.of(instance)
    forms = active_set.newton_forms(reduced, instance.n_constraints)
    # D = 64 unknowns, 870 constraints: the D-space form, packed; 50 constraints: the Gram form too
    assert forms == {"mixed": 8 * 64 * 65 // 2, "float32": 4 * 64 * 65 // 2}
    assert list(active_set.newton_forms(reduced, 50)) == ["gram", "mixed", "float32"]
    assert active_set.newton_forms(reduced, 50)["gram"] == 8 * 50**2
    # the fastest form that fits: gram for K <= D, else float64 if it fits, else float32
    monkeypatch.setattr(active_set, "newton_memory_budget", lambda: forms["mixed"])
    assert active_set.newton_form(reduced, 40) == ("gram", 8 * 40**2)
    assert active_set.newton_form(reduced, 50) == ("mixed", forms["mixed"])
    assert active_set.newton_form(reduced, 870) == ("mixed", forms["mixed"])
    monkeypatch.setattr(active_set, "newton_memory_budget", lambda: forms["mixed"] - 1)
    assert active_set.newton_form(reduced, 50) == ("float32", forms["float32"])
    monkeypatch.setattr(active_set, "newton_memory_budget", lambda: forms["float32"] - 1)
    alone = decide(instance, solver="ipm", escalate=False, fast_path=False)
    assert alone.verdict == "undetermined" and "GiB" in alone.reason
    assert [s.status for s in alone.statuses] == [EngineStatus.MEMORY_LIMIT]
    # the other engines are not bound by it: escalation still certifies
    escalated = decide(instance, solver="ipm", fast_path=False)
    assert escalated.verdict != "undetermined" and escalated.verify(instance)
    monkeypatch.setattr(active_set, "newton_memory_budget", lambda: forms["float32"])
    assert decide(instance, solver="ipm", escalate=False, fast_path=False).verdict \
        == escalated.verdict


@pytest.mark.parametrize("model,d,p", [("coupled", 24, 110), ("coupled", 24, 118),
                                       ("decoupled", 32, 185)])
def test_where_float64_does_not_fit_the_ipm_decides_in_float32(monkeypatch, model, d, p):
    """A budget between the float32 and the float64 D-space matrix: the same
    certified verdict, with no float64 D-space matrix (d = 256 in 8.6 GB, not 17)."""
    instance = generate(model, d, p, seed=0)
    reference = decide(instance, solver="ipm", escalate=False, fast_path=False)
    forms = active_set.newton_forms(active_set.ReducedInstance.of(instance),
                                    instance.n_constraints)
    monkeypatch.setattr(active_set, "newton_memory_budget", lambda: forms["mixed"] - 1)
    used = []
    real = active_set.min_norm_point

    def min_norm_point(columns, **kwargs):
        used.append(kwargs["form"])
        return real(columns, **kwargs)

    monkeypatch.setattr(active_set, "min_norm_point", min_norm_point)
    decision = decide(instance, solver="ipm", escalate=False, fast_path=False)
    assert decision.verdict == reference.verdict != "undetermined"
    assert decision.verify(instance)
    assert "float32" in used and "mixed" not in used


def test_the_budget_is_a_fraction_of_this_machine(monkeypatch):
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert active_set.newton_memory_budget() == int(active_set.NEWTON_MEMORY_FRACTION * physical)


def test_a_fast_path_lp_has_a_time_limit(monkeypatch):
    seen = []
    real = scipy.optimize.linprog

    def linprog(*args, **kwargs):
        seen.append(kwargs.get("options", {}).get("time_limit"))
        return real(*args, **kwargs)

    monkeypatch.setattr(structured.opt, "linprog", linprog)
    instance = embedding_like(60, 16, 6, seed=1)
    white = structured.Whitened.of(instance)
    A0 = np.zeros((instance.m, white.r_x))
    structured.multiclass_lp(instance, white, A0)
    structured.multiclass_lp(instance, white, A0, deadline=time.monotonic() + 5.0)
    assert seen and seen[0] == structured.LP_SECONDS
    assert all(structured.LP_MIN_SECONDS <= limit <= structured.LP_SECONDS for limit in seen)
    assert min(seen) <= 5.0


@dataclass(frozen=True)
class Task:
    number: int

    @property
    def key(self):
        return (str(self.number),)


def finish_or_die(task, solver):
    if task.number == 1:
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer does
    return {"number": task.number, "value": task.number * 10}


def test_a_killed_worker_is_one_line_and_the_finished_rows_stay(tmp_path):
    out = tmp_path / "grid.csv"
    with pytest.raises(WorkerLost, match="rows finished are kept") as caught:
        run_tasks([Task(0), Task(1)], out, ["number", "value"], ["number"], finish_or_die,
                  jobs=2, quiet=True)
    assert len(str(caught.value).splitlines()) == 1
    assert pd.read_csv(out).to_dict("records") == [{"number": 0, "value": 0}]
