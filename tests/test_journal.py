"""Per-probe journals: an interrupted bisection resumes with its certified probes,
none lost, none repeated, and ends where an uninterrupted one ends."""

import numpy as np
import pandas as pd
import pytest

import feasibility.capacity.batch as batch
import feasibility.capacity.bisection as bisection
from feasibility import generate, save
from feasibility.capacity.batch import (
    FILE_COLUMNS,
    CapacityTask,
    run_capacity_grid,
    run_capacity_task,
    run_file_capacity,
)
from feasibility.capacity.journal import ProbeJournal, journal_folder, probes_path

FULL = dict(model="coupled", d=8, p=45, seed=3)
KEY = ("coupled", "8", "3", "gaussian")


def full():
    return generate(FULL["model"], FULL["d"], FULL["p"], FULL["seed"])


def counting_decide(monkeypatch, fail_after=None):
    calls = []
    real = bisection.decide

    def decide(instance, *args, **kwargs):
        if fail_after is not None and len(calls) >= fail_after:
            raise KeyboardInterrupt
        calls.append(instance.n)
        return real(instance, *args, **kwargs)

    monkeypatch.setattr(bisection, "decide", decide)
    return calls


def test_an_interrupted_search_resumes_with_its_probes(tmp_path, monkeypatch):
    reference = bisection.capacity_bisection(full(), guess=20)
    assert reference.status == "exact" and len(reference.probes) >= 4

    journal = ProbeJournal(tmp_path, KEY)
    calls = counting_decide(monkeypatch, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        bisection.capacity_bisection(full(), guess=20, on_probe=journal.record,
                                     known=journal.recorded()[0])
    assert sorted(journal.recorded()[0]) == sorted(calls) and len(calls) == 2

    monkeypatch.undo()
    calls = counting_decide(monkeypatch)
    resumed = bisection.capacity_bisection(full(), guess=20, on_probe=journal.record,
                                           known=journal.recorded()[0])
    first_two = [probe.p for probe in reference.probes[:2]]
    assert not set(calls) & set(first_two)               # nothing repeated
    assert [probe.p for probe in resumed.probes] == [probe.p for probe in reference.probes]
    assert resumed.p_star == reference.p_star and resumed.status == reference.status
    # the time of the search over both runs: the reused probes' seconds count
    assert resumed.seconds >= sum(probe.seconds for probe in resumed.probes) - 1e-3
    assert sorted(journal.recorded()[0]) == sorted(probe.p for probe in reference.probes)


@pytest.mark.parametrize("guess", [5, 30, 44])
def test_a_search_resumed_from_another_guess_solves_nothing_its_journal_implies(
        tmp_path, monkeypatch, guess):
    """Code that probes elsewhere (another guess, another assumed slope of kappa)
    resumes a journal as well: a p below a certified feasible probe or above a
    certified infeasible one is answered by it, each journaled probe counted once.
    With p* and p* + 1 journaled nothing is solved; from a journal cut after two
    probes, nothing journaled is solved again."""
    journal = ProbeJournal(tmp_path, KEY)
    reference = bisection.capacity_bisection(full(), guess=20, on_probe=journal.record)
    calls = counting_decide(monkeypatch)
    resumed = bisection.capacity_bisection(full(), guess=guess, known=journal.recorded()[0])
    assert calls == [] and resumed.p_star == reference.p_star
    used = [probe.p for probe in resumed.probes]
    assert len(used) == len(set(used)) and {reference.p_star, reference.p_star + 1} <= set(used)
    assert resumed.seconds >= sum(probe.seconds for probe in resumed.probes) - 1e-3

    cut = ProbeJournal(tmp_path / "cut", KEY)
    for probe in reference.probes[:2]:
        cut.record(probe)
    resumed = bisection.capacity_bisection(full(), guess=guess, known=cut.recorded()[0])
    assert resumed.p_star == reference.p_star
    assert not set(calls) & {probe.p for probe in reference.probes[:2]}


def test_a_line_cut_by_a_kill_is_redone(tmp_path, monkeypatch):
    journal = ProbeJournal(tmp_path, KEY)
    reference = bisection.capacity_bisection(full(), guess=20, on_probe=journal.record)
    lines = journal.path.read_text().splitlines(keepends=True)
    journal.path.write_text("".join(lines[:-1]) + lines[-1][:17])   # last line half written
    calls = counting_decide(monkeypatch)
    resumed = bisection.capacity_bisection(full(), guess=20, known=journal.recorded()[0])
    assert calls == [reference.probes[-1].p]
    assert resumed.p_star == reference.p_star


def test_a_journal_of_another_task_is_not_used(tmp_path):
    journal = ProbeJournal(tmp_path, KEY)
    bisection.capacity_bisection(full(), guess=20, on_probe=journal.record)
    other = ProbeJournal(tmp_path, ("coupled", "8", "4", "gaussian"))
    other.path.write_text(journal.path.read_text())   # same lines, wrong key
    assert other.recorded()[0] == {}


def test_a_grid_gathers_every_probe_into_one_table(tmp_path):
    out = tmp_path / "capacity.csv"
    tasks = [CapacityTask("coupled", 8, seed) for seed in range(2)]
    frame = run_capacity_grid(tasks, out, executor="serial", quiet=True)
    probes = pd.read_csv(probes_path(out))
    assert not journal_folder(out).exists()
    assert len(probes) == frame["solves"].sum()
    for _, row in frame.iterrows():
        mine = probes[probes.seed == row.seed]
        assert mine.loc[mine.verdict == "feasible", "p"].max() == row.p_star
        assert mine.loc[mine.verdict == "infeasible", "p"].min() == row.p_infeasible


def test_a_resumed_task_seeds_its_first_solve_with_the_last_kept_memory(tmp_path, monkeypatch):
    """The W of the last feasible probe outlives an interruption: the resumed task's
    first solve starts its active set from it, as the uninterrupted run's would."""
    task = CapacityTask("coupled", 12, 1)
    reference = run_capacity_task(task)
    real = bisection.decide
    seeds, kept = [], []

    def decide(instance, *args, **kwargs):
        if len(seeds) == 2 and not resumed:
            raise KeyboardInterrupt
        seeds.append(kwargs.get("seed_memory"))
        decision = real(instance, *args, **kwargs)
        if decision.weights is not None:
            kept.append(decision.weights)
        return decision

    resumed = False
    monkeypatch.setattr(bisection, "decide", decide)
    with pytest.raises(KeyboardInterrupt):
        run_capacity_task(task, journal=str(tmp_path))
    assert kept and len(ProbeJournal(tmp_path, task.key).recorded()[0]) == 2
    np.testing.assert_array_equal(ProbeJournal(tmp_path, task.key).memory(), kept[-1])

    resumed, last, seeds[:] = True, kept[-1], []
    row = run_capacity_task(task, journal=str(tmp_path))
    np.testing.assert_array_equal(seeds[0], last)
    assert row["p_star"] == reference["p_star"] and row["status"] == reference["status"]


def test_a_resumed_task_reuses_its_boundary_check(tmp_path, monkeypatch):
    """The boundary check is journaled like a probe: a rerun after it repeats no solve,
    and it never stands in for the search's own probe at the same p."""
    task = CapacityTask("coupled", 8, 3)
    first = run_capacity_task(task, journal=str(tmp_path), boundary_tolerance=1e-12)
    journal = ProbeJournal(tmp_path, task.key)
    check = journal.recorded()[1]
    assert check is not None and check.p == first["p_infeasible"]
    assert journal.recorded()[0][check.p] != check    # the search's probe is kept apart
    calls = counting_decide(monkeypatch)
    again = run_capacity_task(task, journal=str(tmp_path), boundary_tolerance=1e-12)
    solved = sum(probe.seconds for probe in journal.recorded()[0].values()) + check.seconds
    assert calls == [] and again["seconds"] >= solved - 1e-3   # rows round to ms
    assert {k: again[k] for k in ("p_star", "boundary_verdict", "kappa_bound_above")} == \
        {k: first[k] for k in ("p_star", "boundary_verdict", "kappa_bound_above")}


def test_a_resumed_search_knows_where_the_fast_path_failed(tmp_path, monkeypatch):
    """Where the fast path failed the search skips it at larger p; a resumed search
    reads that from its journal, so it tries the fast path where the uninterrupted
    one did and nowhere else."""
    import feasibility.solvers.structured as structured
    from feasibility.core.status import FastPath

    monkeypatch.setattr(structured, "FAST_PATH_MIN_UNKNOWNS", 0)   # tried at d = 10
    instance = generate("coupled", 10, 60, 3)
    reference = bisection.capacity_bisection(instance, guess=20)
    outcomes = [(probe.p, probe.verdict, probe.fast_path) for probe in reference.probes]
    failed = [k for k, probe in enumerate(reference.probes)
              if probe.fast_path == FastPath.UNDECIDED]
    # a probe after the failures, above them, that the fast path must skip
    last = reference.probes[-1]
    assert len(failed) >= 2 and last.p > reference.probes[failed[-1]].p
    assert last.fast_path == FastPath.NOT_TRIED

    journal = ProbeJournal(tmp_path, ("coupled", "10", "3", "gaussian"))
    counting_decide(monkeypatch, fail_after=len(reference.probes) - 1)
    with pytest.raises(KeyboardInterrupt):
        bisection.capacity_bisection(instance, guess=20, on_probe=journal.record,
                                     known=journal.recorded()[0])
    monkeypatch.undo()
    monkeypatch.setattr(structured, "FAST_PATH_MIN_UNKNOWNS", 0)
    resumed = bisection.capacity_bisection(instance, guess=20, on_probe=journal.record,
                                           known=journal.recorded()[0])
    assert [(probe.p, probe.verdict, probe.fast_path) for probe in resumed.probes] == outcomes


def test_a_running_grid_reports_each_probe_as_it_is_solved(tmp_path, monkeypatch, capsys):
    """A seed at d = 128 takes hours: each solved probe gets a line on stderr, none
    for probes reused from the journal on resume, none with quiet."""
    out = tmp_path / "capacity.csv"
    tasks = [CapacityTask("coupled", 8, 3)]
    monkeypatch.setattr(batch, "REPORTED_PROBE_SECONDS", 0.0)  # d = 8 probes are fast
    calls = counting_decide(monkeypatch, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_capacity_grid(tasks, out, executor="serial")
    reported = [line for line in capsys.readouterr().err.splitlines() if "probe p=" in line]
    assert len(reported) == 2
    for line, p in zip(reported, calls):
        assert line.strip().startswith(f"coupled d=8 seed=3: probe p={p} ")
        assert "feasible" in line and "round" in line

    monkeypatch.undo()
    monkeypatch.setattr(batch, "REPORTED_PROBE_SECONDS", 0.0)
    calls = counting_decide(monkeypatch)
    run_capacity_grid(tasks, out, executor="serial")
    reported = [line for line in capsys.readouterr().err.splitlines() if "probe p=" in line]
    probes = pd.read_csv(probes_path(out))
    assert len(probes) == 2 + len(reported) and len(reported) == len(calls) > 0
    assert [int(line.split("probe p=")[1].split()[0]) for line in reported] == calls
    # what each line says is what the probes table records
    solved = probes.set_index("p").loc[calls]
    for line, (_, probe) in zip(reported, solved.iterrows()):
        assert f" {probe.verdict} (" in line and f"{probe.margin_upper:.3e}" in line

    quiet = tmp_path / "quiet.csv"
    run_capacity_grid(tasks, quiet, executor="serial", quiet=True)
    assert "probe p=" not in capsys.readouterr().err
    # fast probes are left to the row's own line
    monkeypatch.setattr(batch, "REPORTED_PROBE_SECONDS", 60.0)
    run_capacity_grid(tasks, tmp_path / "fast.csv", executor="serial")
    assert "probe p=" not in capsys.readouterr().err


def test_an_interrupted_file_run_resumes_with_its_probes(tmp_path, monkeypatch):
    """A user's file is journaled like a Gaussian grid: a run interrupted after two
    solves, run again, repeats none of them and ends with the rows and the probes
    table of an uninterrupted run."""
    path = tmp_path / "facts.npz"
    save(full(), path)
    reference_out = tmp_path / "reference.csv"
    reference = run_file_capacity(path, 1, reference_out, executor="serial", quiet=True)
    assert reference.solves.sum() >= 6 and set(reference.status) == {"exact"}

    out = tmp_path / "facts.csv"
    counting_decide(monkeypatch, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_file_capacity(path, 1, out, executor="serial", quiet=True)
    assert len(list(journal_folder(out).glob("*.jsonl"))) == 1
    monkeypatch.undo()
    calls = counting_decide(monkeypatch)
    rows = run_file_capacity(path, 1, out, executor="serial", quiet=True)
    assert len(calls) == reference.solves.sum() - 2
    settled = [column for column in FILE_COLUMNS if column != "seconds"]
    pd.testing.assert_frame_equal(rows[settled], reference[settled])

    def probes(of):
        table = pd.read_csv(probes_path(of))
        return sorted(zip(table.file_sha256, table.shuffle, table.p, table.verdict))

    assert probes(out) == probes(reference_out) and not journal_folder(out).exists()
