"""What a long run says while it runs: a record per IPM iteration in the solver's
log, and capacity's heartbeat lines from it (a probe at d = 192 is hours)."""

import logging
import threading
from pathlib import Path

import pandas as pd
import pytest

import feasibility.capacity.progress as progress
from feasibility import decide, generate
from feasibility.capacity.batch import CapacityTask, run_capacity_grid
from feasibility.capacity.bisection import capacity_guess
from feasibility.capacity.journal import probes_path
from feasibility.capacity.progress import solver_heartbeat
from feasibility.core.memory import peak_resident_bytes
from feasibility.solvers import solver_log
from feasibility.solvers.active_set import iteration_log
from feasibility.solvers.first_order import mirror_descent_memory, step_log


def logged_iteration(message: str) -> int:
    return int(message.split("IPM iteration ")[1].split()[0])


def bracket_of(message: str) -> tuple[float, float | None]:
    lower, upper = message.split("kappa* in [")[1].split("]")[0].split(", ")
    return float(lower), None if upper == "?" else float(upper)


def test_the_iteration_log_has_one_record_per_ipm_iteration(caplog):
    """In a notebook, logging at DEBUG shows every IPM iteration of a decision:
    numbered from 1 in each round, as many as the rounds report, with a bracket
    on kappa* that only ever tightens."""
    instance = generate("coupled", 12, int(capacity_guess(12)), seed=2)
    with caplog.at_level(logging.DEBUG, logger=iteration_log.name):
        decision = decide(instance, fast_path=False, kappa_rtol=0.02)
    messages = [r.getMessage() for r in caplog.records if r.name == iteration_log.name]
    counts = [s.iterations for s in decision.statuses if s.solver == "ipm"]
    assert sum(counts) == len(messages) > 5
    assert [logged_iteration(m) for m in messages] == [k for c in counts
                                                       for k in range(1, c + 1)]
    assert all(m.startswith(f"p={instance.n}: ") for m in messages)
    brackets = [bracket_of(m) for m in messages]
    lowers = [lower for lower, _ in brackets]
    uppers = [upper for _, upper in brackets if upper is not None]
    assert lowers == sorted(lowers) and uppers == sorted(uppers, reverse=True)
    assert lowers[-1] <= decision.margin_lower


def test_the_mirror_descent_logs_each_step(caplog):
    """The descent that starts the active set (minutes at d = 192) has a record
    per step, numbered, with the best normalised margin so far, which never falls."""
    instance = generate("decoupled", 10, 30, seed=4)
    with caplog.at_level(logging.DEBUG, logger=step_log.name):
        mirror_descent_memory(instance, steps=25)
    messages = [r.getMessage() for r in caplog.records if r.name == step_log.name]
    assert [int(m.split("step ")[1].split()[0]) for m in messages] == list(range(1, 26))
    assert all(m.startswith("p=30: mirror descent ") and " of 25," in m for m in messages)
    best = [float(m.rsplit(" ", 1)[1]) for m in messages]
    assert best == sorted(best)


def heartbeats(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "IPM iteration" in line]


def test_a_capacity_run_beats_from_inside_each_solve(tmp_path, monkeypatch, capsys):
    """Each probe the IPM solved gets heartbeat lines after the task's label,
    with the peak memory; none with --quiet, none where the solves are shorter
    than HEARTBEAT_SECONDS; and the solver's log is left as it was found."""
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.0)
    out = tmp_path / "capacity.csv"
    run_capacity_grid([CapacityTask("coupled", 12, 1)], out, executor="serial")
    lines = heartbeats(capsys)
    probes = pd.read_csv(probes_path(out))
    solved = set(probes.p[probes.rounds > 0])
    assert solved and {int(line.split("p=")[1].split(":")[0]) for line in lines} == solved
    assert all(line.strip().startswith("coupled d=12 seed=1: p=") and "peak memory" in line
               for line in lines)
    assert solver_log.handlers == [] and solver_log.level == logging.NOTSET

    run_capacity_grid([CapacityTask("coupled", 12, 1)], tmp_path / "quiet.csv",
                      executor="serial", quiet=True)
    assert heartbeats(capsys) == []
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 3600.0)
    run_capacity_grid([CapacityTask("coupled", 12, 1)], tmp_path / "fast.csv",
                      executor="serial")
    assert heartbeats(capsys) == []


def test_the_heartbeat_keeps_to_its_own_thread(capsys):
    """Tasks that share a process as threads keep their own labels: a record
    from another thread is not shown under this one's."""
    with solver_heartbeat("mine", every=0.0):
        step_log.debug("from here")
        other = threading.Thread(target=step_log.debug, args=("from elsewhere",))
        other.start()
        other.join()
    err = capsys.readouterr().err
    assert "mine: from here" in err and "elsewhere" not in err
    assert solver_log.handlers == [] and solver_log.level == logging.NOTSET


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_peak_memory_is_the_kernels_high_water_mark_in_bytes():
    """The heartbeat's peak memory is what the kernel reports as this process's
    high-water mark (VmHWM, in kB), in bytes (the two are sampled at slightly
    different moments: they differ by pages, not by a factor)."""
    status = Path("/proc/self/status").read_text()
    high_water = 1024 * int(next(line for line in status.splitlines()
                                 if line.startswith("VmHWM:")).split()[1])
    assert abs(peak_resident_bytes() - high_water) < 0.05 * high_water
