"""A probe cut short goes on from its checkpoint: the same active set, the same IPM
iterate, the same rounds after it, and a verdict certified as any other."""

import dataclasses
import logging

import numpy as np
import pytest

import feasibility.capacity.bisection as bisection
import feasibility.solvers.active_set as active_set
import feasibility.solvers.first_order as first_order
import feasibility.solvers.structured as structured
from feasibility import generate
from feasibility.capacity.batch import CapacityTask, run_capacity_task
from feasibility.capacity.journal import ProbeCheckpoint, ProbeJournal
from feasibility.core.certify import FEASIBLE, INFEASIBLE, FarkasCertificate
from feasibility.core.status import FastPath
from feasibility.solvers.active_set import DecisionProgress, decide
from feasibility.solvers.ipm import IPMState, KroneckerColumns, min_norm_point

# coupled d = 12 seed 0: feasible at p = 45 after 5 rounds (4-14 IPM iterations
# each) from 2 constraints per input; infeasible at p = 50 after 2
OPTIONS = dict(fast_path=False, mirror_descent=False, kappa_rtol=0.02)


@pytest.fixture
def every_iteration(monkeypatch, start_per_input):
    """Checkpoints at every IPM iteration, from a start that takes several rounds."""
    monkeypatch.setattr(active_set, "CHECKPOINT_SECONDS", 0.0)
    start_per_input(2)


class KilledStore(ProbeCheckpoint):
    """A ProbeCheckpoint whose process is stopped right after its n-th save."""

    def __init__(self, path, kill_after: int):
        super().__init__(path)
        self.kill_after, self.saves = kill_after, 0

    def save(self, progress):
        super().save(progress)
        self.saves += 1
        if self.saves == self.kill_after:
            raise KeyboardInterrupt


def spy_starts(monkeypatch) -> list:
    """The start each IPM round of active_set is given (None: from scratch)."""
    starts = []
    real = active_set.min_norm_point

    def spied(columns, **kwargs):
        starts.append(kwargs.get("start"))
        return real(columns, **kwargs)

    monkeypatch.setattr(active_set, "min_norm_point", spied)
    return starts


def test_min_norm_point_goes_on_from_a_saved_iterate_as_it_would_have():
    rng = np.random.default_rng(3)
    columns = KroneckerColumns(rng.standard_normal((90, 3)), rng.standard_normal((9, 4)),
                               rng.integers(0, 9, size=90))
    states = []
    whole = min_norm_point(columns, on_state=states.append)
    assert whole.iterations > 6 and [s.iteration for s in states] == list(
        range(1, whole.iterations + 1))
    resumed = min_norm_point(columns, start=states[5])
    assert resumed.iterations == whole.iterations and resumed.status == whole.status
    np.testing.assert_allclose(resumed.lam, whole.lam, rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="iterate of 89 constraints"):
        min_norm_point(columns, start=IPMState(states[5].lam[1:], 0.0, states[5].s[1:], 6,
                                               False))


# p = 44's fourth and last round (saves 26-36) is begun past the verdict, which
# ends the decision with its bracket on kappa* wider than asked (ROUNDS_PAST_VERDICT)
@pytest.mark.parametrize("p,verdict,kill_after", [(45, FEASIBLE, 3), (45, FEASIBLE, 20),
                                                  (44, FEASIBLE, 28), (50, INFEASIBLE, 9)])
def test_a_decision_cut_short_goes_on_from_its_checkpoint(tmp_path, monkeypatch, caplog,
                                                          every_iteration, p, verdict,
                                                          kill_after):
    instance = generate("coupled", 12, p, 0)
    with caplog.at_level(logging.DEBUG, logger=active_set.iteration_log.name):
        reference = decide(instance, **OPTIONS)
    assert reference.verdict == verdict and reference.rounds >= 2
    walked = [r.getMessage() for r in caplog.records if "IPM iteration" in r.getMessage()]
    caplog.clear()

    path = tmp_path / "probe.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        decide(instance, checkpoint=KilledStore(path, kill_after), **OPTIONS)
    saved = ProbeCheckpoint(path).load()
    assert saved is not None and saved.state.iteration >= 1
    # as if the interrupted run had taken hours
    saved = dataclasses.replace(saved, seconds=5000.0)
    ProbeCheckpoint(path).save(saved)

    starts = spy_starts(monkeypatch)
    with caplog.at_level(logging.DEBUG, logger=active_set.iteration_log.name):
        resumed = decide(instance, checkpoint=ProbeCheckpoint(path), **OPTIONS)
    # the iteration log goes on with the IPM's count and the decision's clock
    first = next(r.getMessage() for r in caplog.records if "IPM iteration" in r.getMessage()
                 and "resumed" not in r.getMessage())
    assert f"IPM iteration {saved.state.iteration} on " in first
    # ... and the bracket the uninterrupted decision had there
    there = [line for line in walked if f"IPM iteration {saved.state.iteration} on "
             f"{len(saved.rows):,} constraints" in line]
    assert len(there) == 1 and there[0].split("kappa*")[1] == first.split("kappa*")[1]
    assert float(first.split(" after ")[1].split(" s,")[0].replace(",", "")) >= 5000
    # the round under way went on from the saved iterate, on the saved active set
    assert starts[0] is not None and starts[0].iteration == saved.state.iteration
    np.testing.assert_array_equal(starts[0].lam, saved.state.lam)
    assert all(start is None for start in starts[1:])
    # ... and walked the rounds the uninterrupted decision walked, to its verdict
    assert list(map(str, resumed.statuses)) == list(map(str, reference.statuses))[saved.rounds:]
    assert resumed.rounds == reference.rounds
    assert resumed.verdict == reference.verdict and resumed.verify(instance)
    # ... with the bracket it had when it stopped, so that it ends with the same one
    assert resumed.margin_lower == pytest.approx(reference.margin_lower, rel=1e-8)
    assert resumed.margin_upper == pytest.approx(reference.margin_upper, rel=1e-8)
    assert 5000 <= resumed.seconds < 5000 + 60


def test_a_resumed_decision_does_not_make_its_start_again(tmp_path, monkeypatch,
                                                         every_iteration):
    """The saved active set holds the start: the mirror descent that made it (minutes
    at d = 192) is not run again, and the decision walks on as before."""
    descents = []
    real = first_order.mirror_descent_memory
    monkeypatch.setattr(first_order, "mirror_descent_memory",
                        lambda instance: descents.append(instance.n) or real(instance))
    instance = generate("coupled", 12, 45, 0)
    options = {**OPTIONS, "mirror_descent": True}
    reference = decide(instance, **options)
    path = tmp_path / "probe.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        decide(instance, checkpoint=KilledStore(path, 12), **options)
    assert descents == [45, 45]
    saved = ProbeCheckpoint(path).load()
    resumed = decide(instance, checkpoint=ProbeCheckpoint(path), **options)
    assert descents == [45, 45]
    assert list(map(str, resumed.statuses)) == list(map(str, reference.statuses))[saved.rounds:]
    assert resumed.verdict == reference.verdict and resumed.verify(instance)


def test_a_resumed_decision_does_not_run_the_fast_path_again(tmp_path, monkeypatch,
                                                            every_iteration):
    """The fast path ran before the first save and decided nothing: the resumed
    decision does not run it again (minutes at d = 192) and reports what it did."""
    monkeypatch.setattr(structured, "worth_trying", lambda instance: True)
    tries = []
    real = structured.fast_path
    monkeypatch.setattr(structured, "fast_path",
                        lambda instance, *args: tries.append(instance.n) or real(instance, *args))
    instance = generate("coupled", 12, 45, 0)
    options = {**OPTIONS, "fast_path": True}
    path = tmp_path / "probe.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        decide(instance, checkpoint=KilledStore(path, 3), **options)
    saved = ProbeCheckpoint(path).load()
    assert tries == [45] and saved.fast_path == FastPath.UNDECIDED
    resumed = decide(instance, checkpoint=ProbeCheckpoint(path), **options)
    assert tries == [45] and resumed.fast_path == FastPath.UNDECIDED
    assert resumed.verdict == FEASIBLE and resumed.verify(instance)
    # a checkpoint that does not say (saved before checkpoints could) runs it as before
    ProbeCheckpoint(path).save(dataclasses.replace(saved, fast_path=None))
    again = decide(instance, checkpoint=ProbeCheckpoint(path), **options)
    assert tries == [45, 45] and again.fast_path == FastPath.UNDECIDED
    assert again.verdict == FEASIBLE and again.verify(instance)


def test_a_checkpoint_of_another_question_is_not_resumed(tmp_path, monkeypatch,
                                                         every_iteration):
    instance = generate("coupled", 12, 45, 0)
    path = tmp_path / "probe.checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        decide(instance, checkpoint=KilledStore(path, 3), **OPTIONS)
    starts = spy_starts(monkeypatch)
    decision = decide(instance, tolerance=1e-7, checkpoint=ProbeCheckpoint(path), **OPTIONS)
    assert starts[0] is None and decision.verdict == FEASIBLE and decision.verify(instance)
    # a checkpoint made on a larger prefix (constraints this one lacks) is not either
    starts.clear()
    smaller = generate("coupled", 12, 40, 0)
    assert decide(smaller, checkpoint=ProbeCheckpoint(path), **OPTIONS).verify(smaller)
    assert starts[0] is None
    # ... nor one whose slots this instance lacks
    saved = ProbeCheckpoint(path).load()
    ProbeCheckpoint(path).save(DecisionProgress(
        np.zeros(1, dtype=int), np.full(1, 10**6), saved.state, 0, 0, 1.0, 0.0, 1e-6))
    starts.clear()
    assert decide(smaller, checkpoint=ProbeCheckpoint(path), **OPTIONS).verify(smaller)
    assert starts[0] is None


def test_a_checkpoint_round_trips_and_an_unreadable_one_is_ignored(tmp_path):
    rng = np.random.default_rng(0)
    state = IPMState(rng.random(7), -0.25, rng.random(7), 12, True)
    certificate = FarkasCertificate(np.arange(4), np.arange(1, 5), rng.dirichlet(np.ones(4)))
    progress = DecisionProgress(np.arange(7), rng.integers(0, 5, 7), state, 3, 1, 4321.5,
                                0.0, 1e-6, rng.standard_normal((3, 2)), "hebbian",
                                certificate, "ipm", FastPath.UNDECIDED)
    store = ProbeCheckpoint(tmp_path / "a.checkpoint.npz")
    store.save(progress)
    back = store.load()
    for name in ("rows", "slots", "weights"):
        np.testing.assert_array_equal(getattr(back, name), getattr(progress, name))
    for name in ("lam", "s"):
        np.testing.assert_array_equal(getattr(back.state, name), getattr(state, name))
    for name in ("rows", "slots", "weights"):
        np.testing.assert_array_equal(getattr(back.certificate, name),
                                      getattr(certificate, name))
    assert (back.state.nu, back.state.iteration, back.state.single) == (-0.25, 12, True)
    assert (back.rounds, back.rounds_past_verdict, back.seconds, back.margin,
            back.tolerance, back.lower_by, back.upper_by,
            back.fast_path) == (3, 1, 4321.5, 0.0, 1e-6, "hebbian", "ipm", FastPath.UNDECIDED)
    # without evidence (and as saved before checkpoints carried it and the fast path)
    store.save(dataclasses.replace(progress, weights=None, certificate=None, fast_path=None))
    back = store.load()
    assert back.weights is None and back.certificate is None and back.state.iteration == 12
    assert back.fast_path is None
    store.path.write_bytes(store.path.read_bytes()[:100])     # cut by a kill
    assert store.load() is None
    assert ProbeCheckpoint(tmp_path / "none.npz").load() is None


def test_a_probe_recorded_drops_its_checkpoint_and_only_its_own(tmp_path):
    journal = ProbeJournal(tmp_path, ("coupled", "12", "0", "gaussian"))
    progress = DecisionProgress(np.arange(3), np.arange(3),
                                IPMState(np.ones(3), 0.0, np.ones(3), 2, False),
                                0, 0, 1.0, 0.0, 1e-6)
    for p, boundary in ((45, False), (45, True), (46, False)):
        journal.checkpoint(p, boundary).save(progress)
    journal.record(bisection.Probe(45, FEASIBLE, 0.1, 0.2, "ipm", 1, 1.0))
    assert journal.checkpoint(45).load() is None
    assert journal.checkpoint(45, True).load() is not None
    assert journal.checkpoint(46).load() is not None


def test_a_task_stopped_mid_probe_resumes_there_and_ends_as_it_would_have(
        tmp_path, monkeypatch, every_iteration, capsys):
    task = CapacityTask("coupled", 12, 0)
    reference = run_capacity_task(task)
    saves = []
    real_save = ProbeCheckpoint.save

    def save_then_stop(self, progress):
        real_save(self, progress)
        saves.append(self.path.name)
        if len(saves) == 40:     # in the second of 4 probes (32, 18, 34, 26 saves)
            raise KeyboardInterrupt

    monkeypatch.setattr(ProbeCheckpoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_capacity_task(task, journal=str(tmp_path))
    journal = ProbeJournal(tmp_path, task.key)
    finished = journal.recorded()[0]
    cut = list(tmp_path.glob("*.checkpoint.npz"))
    assert len(cut) == 1 and cut[0].name == saves[-1]
    assert finished and all(f".p{p}." not in cut[0].name for p in finished)

    monkeypatch.setattr(ProbeCheckpoint, "save", real_save)
    saved = ProbeCheckpoint(cut[0]).load()
    starts = spy_starts(monkeypatch)
    capsys.readouterr()
    row = run_capacity_task(task, journal=str(tmp_path), progress=True)
    assert starts[0] is not None                     # the probe cut short went on
    # ... and said so, though the heartbeat shows no IPM iteration of so short a solve
    said = capsys.readouterr().err
    p = int(cut[0].name.split(".p")[1].split(".")[0])
    assert (f"coupled d=12 seed=0: p={p}: resumed from its checkpoint: round "
            f"{saved.rounds + 1}, IPM iteration {saved.state.iteration} on ") in said
    assert not [line for line in said.splitlines()
                if "IPM iteration" in line and "resumed" not in line]
    for column in ("p_star", "p_infeasible", "status", "solves", "rounds"):
        assert row[column] == reference[column], column
    assert not list(tmp_path.glob("*.checkpoint.npz"))
