"""`capacity --file F --dims ...`: principal-component projections of a user's file."""
import numpy as np
import pandas as pd
import pytest

from feasibility import InputError, Instance, save
from feasibility.capacity import projection
from feasibility.capacity.projection import Projection, measured_gaussian_p_c, parse_dims, surrogate
from feasibility.cli.main import main
from feasibility.core.instances import first_contested_prefix
from feasibility.core.synthetic import embedding_like


def test_input_axes_are_uncentred_and_keep_the_common_component():
    inst = embedding_like(60, 20, seed=0)
    projection = Projection.fit(inst)
    mean = inst.inputs.mean(axis=0)
    # real-looking inputs share a large common component: it leads the uncentred PCA
    assert abs(projection.input_axes[:, 0] @ mean) / np.linalg.norm(mean) > 0.95
    energy = [projection.kept(d)[0] for d in (1, 5, 10, 20)]
    assert energy == sorted(energy) and energy[-1] == pytest.approx(1.0)


def test_a_common_shift_of_the_targets_changes_nothing():
    inst = embedding_like(25, 10, seed=1)
    shifted = Instance(inst.inputs, inst.targets + 3.0, name="shifted")
    a, b = Projection.fit(inst).apply(inst, 4), Projection.fit(shifted).apply(shifted, 4)
    W = np.random.default_rng(0).standard_normal((4, 4))
    # centred targets: the same projected facts, whatever the shift
    assert np.allclose(a.targets, b.targets) and np.allclose(a.raw_margins(W), b.raw_margins(W))


def test_projection_is_fitted_once_so_prefixes_stay_nested():
    inst = embedding_like(30, 12, seed=2)
    projected = Projection.fit(inst).apply(inst, 5)
    prefix = projected.prefix(10)
    assert np.array_equal(prefix.inputs, projected.inputs[:10])
    assert projected.d_in == projected.d_out == 5


def test_shared_answers_limit_the_output_components():
    inst = embedding_like(30, 12, answers=3, seed=3)
    projected = Projection.fit(inst).apply(inst, 8)
    assert projected.d_in == 8 and projected.d_out == 2  # 3 centred answers span 2
    assert Projection.fit(inst).kept(8)[1] == pytest.approx(1.0)


def test_surrogate_keeps_the_answers_and_nests():
    inst = embedding_like(20, 6, answers=3, seed=5)
    random = surrogate(inst, 4, 2, seed=1)
    assert np.array_equal(random.assignment, inst.assignment)
    assert (random.d_in, random.d_out, random.m) == (4, 2, 3)
    assert np.array_equal(surrogate(inst, 4, 2, seed=1).inputs, random.inputs)


def test_single_answer_prefixes_are_skipped():
    inst = Instance(np.eye(5, 4) + 0.1, np.eye(3, 4), np.array([1, 1, 1, 0, 2]))
    assert first_contested_prefix(inst) == 4


def test_dims_are_validated():
    assert parse_dims([8, 4, 8]) == [4, 8]
    with pytest.raises(InputError):
        parse_dims([0, 4])


@pytest.fixture
def gaussian_files(tmp_path, monkeypatch):
    """A summary (p_c at d = 8 over 8 seeds) and per-seed rows (d = 6 and 8, fewer
    seeds) in place of the committed results/reference files."""
    summary = tmp_path / "capacity-summary.csv"
    pd.DataFrame({"model": ["coupled", "decoupled"], "d": [8, 8], "seeds": [8, 8],
                  "exact": [8, 8], "p_c": [24.5, 27.0]}).to_csv(summary, index=False)
    per_seed = tmp_path / "gaussian-reference.csv"
    pd.DataFrame({"model": ["coupled"] * 5 + ["decoupled"],
                  "d": [6, 6, 6, 8, 8, 6],
                  "p_star": [10, 13, 99, 20, 22, 50],
                  "status": ["exact", "exact", "at_least_p_max", "exact", "exact", "exact"],
                  }).to_csv(per_seed, index=False)
    monkeypatch.setattr(projection, "GAUSSIAN_FILES", (str(per_seed), str(summary)))
    return summary, per_seed


def test_measured_gaussian_capacities_are_read_from_results(gaussian_files):
    found = measured_gaussian_p_c()
    # d = 6: the median of the coupled seeds whose bracket closed (10 and 13), decoupled
    # rows and a seed stopped at p_max left out
    assert found[6] == (11.5, "gaussian-reference.csv, 2 seeds")
    # d = 8: the summary's 8 seeds win over 2 per-seed rows, whatever the file order
    assert found[8] == (24.5, "capacity-summary.csv, 8 seeds")
    assert set(found) == {6, 8}


def test_the_committed_reference_has_the_gaussian_p_c_at_d_8():
    """The one check on the committed files: the lookup finds results/reference."""
    found = measured_gaussian_p_c()
    assert found[8] == (23.0, "capacity-summary.csv, 8 seeds")


def test_cli_dims_writes_rows_reference_and_figure(tmp_path, capsys, gaussian_files):
    path = tmp_path / "facts.npz"
    save(embedding_like(24, 10, answers=4, seed=4), path)
    out = tmp_path / "dims.csv"
    code = main(["capacity", "--file", str(path), "--dims", "3,8", "--shuffles", "1",
                 "--executor", "serial", "--quiet", "--out", str(out)])
    assert code == 0
    rows = pd.read_csv(out)
    assert len(rows) == 4 and set(rows["d"]) == {3, 8}
    assert set(rows["status"]) <= {"exact", "at_least_p_max"}
    assert set(rows["random_status"]) <= {"exact", "at_least_p_max"}
    assert rows.loc[rows["d"] == 8, "gaussian_source"].str.contains("capacity-summary").all()
    assert rows.loc[rows["d"] == 3, "gaussian_source"].str.contains("computed").all()
    assert (tmp_path / "dims.png").stat().st_size > 1000
    assert (tmp_path / "dims-gaussian.csv").exists()
    capsys.readouterr()


def test_cli_dims_needs_a_file(tmp_path, capsys):
    code = main(["capacity", "--dims", "4", "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "--dims" in err and "--file" in err and len(err.splitlines()) == 1


def test_file_and_dims_runs_report_each_probe_as_it_is_solved(tmp_path, capsys, monkeypatch,
                                                              gaussian_files):
    """Like a Gaussian grid's (test_journal), a file's slow probes get a line each,
    named by file, d, ordering and part (the file's facts or their surrogate)."""
    from feasibility.capacity import batch

    monkeypatch.setattr(batch, "REPORTED_PROBE_SECONDS", 0.0)  # these probes are fast
    path = tmp_path / "facts.npz"
    save(embedding_like(24, 10, answers=4, seed=4), path)

    def probe_lines(*options):
        out = tmp_path / f"run{len(list(tmp_path.glob('run*.csv')))}.csv"
        code = main(["capacity", "--file", str(path), *options, "--executor", "serial",
                     "--out", str(out)])
        assert code == 0
        return pd.read_csv(out), [line.strip() for line in capsys.readouterr().err.splitlines()
                                  if ": probe p=" in line]

    rows, lines = probe_lines("--shuffles", "1")
    for _, row in rows.iterrows():
        mine = [line for line in lines if line.startswith(f"facts.npz shuffle {row.shuffle}: ")]
        assert len(mine) == row.solves > 0
    assert len(lines) == rows.solves.sum()

    rows, lines = probe_lines("--dims", "8")
    file_part = [line for line in lines if line.startswith("facts.npz d=8 shuffle 0: ")]
    surrogate = [line for line in lines if line.startswith("facts.npz d=8 shuffle 0 surrogate: ")]
    assert len(file_part) == rows.solves[0] > 0 and surrogate
    assert len(file_part) + len(surrogate) == len(lines)

    assert probe_lines("--shuffles", "1", "--quiet")[1] == []
    assert probe_lines("--dims", "8", "--quiet")[1] == []


def test_a_finished_dims_run_is_extended_with_its_rows_reused(tmp_path, capsys, gaussian_files,
                                                              monkeypatch):
    """A finished --dims file (Gaussian columns filled in) is read back by a run that
    adds a d: the row it has is kept as it was, only the new d is solved, and every
    probe solved is in OUT-probes.csv under its part (or, for the Gaussian p_c that
    d = 3 needs, in OUT-gaussian-probes.csv)."""
    import feasibility.capacity.bisection as bisection

    path = tmp_path / "facts.npz"
    save(embedding_like(24, 10, answers=4, seed=4), path)
    out = tmp_path / "dims.csv"
    options = ["--executor", "serial", "--quiet", "--out", str(out)]
    assert main(["capacity", "--file", str(path), "--dims", "8", *options]) == 0
    first = pd.read_csv(out)
    solved, real = [], bisection.decide

    def decide(instance, *args, **kwargs):
        solved.append(instance.n)
        return real(instance, *args, **kwargs)

    monkeypatch.setattr(bisection, "decide", decide)
    assert main(["capacity", "--file", str(path), "--dims", "3,8", *options]) == 0
    capsys.readouterr()
    rows = pd.read_csv(out)
    assert list(rows.d) == [3, 8]
    pd.testing.assert_frame_equal(rows[rows.d == 8].reset_index(drop=True), first)
    probes = pd.read_csv(out.with_name("dims-probes.csv"))
    assert set(probes.part) == {"file", "surrogate"}
    gaussian = pd.read_csv(out.with_name("dims-gaussian-probes.csv"))
    assert len(probes[probes.d == 3]) + len(gaussian) == len(solved)
    for _, row in rows.iterrows():
        assert (probes.query("d == @row.d and part == 'file'").shape[0] == row.solves)


def test_a_changed_file_is_not_answered_with_the_old_files_rows(tmp_path, capsys,
                                                                 gaussian_files):
    """Rows and journals are named by the file's content, not only its name: a
    rerun on the same --out after the file changed is refused in one line, and
    the rows already written are left as they were."""
    path = tmp_path / "facts.npz"
    for options in (["--shuffles", "1"], ["--dims", "8"]):
        save(embedding_like(24, 10, answers=4, seed=4), path)
        out = tmp_path / f"run{len(options[0])}.csv"
        command = ["capacity", "--file", str(path), *options, "--executor", "serial",
                   "--quiet", "--out", str(out)]
        assert main(command) == 0
        written = out.read_bytes()
        assert main(command) == 0 and out.read_bytes() == written    # same file: all reused
        capsys.readouterr()
        save(embedding_like(24, 10, answers=4, seed=5), path)
        assert main(command) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "another facts.npz" in err
        assert out.read_bytes() == written
