"""The command line is a contract: these tests call it in-process on tmp folders."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import feasibility.capacity.progress as progress
from feasibility import generate, save
from feasibility.capacity.bisection import capacity_guess
from feasibility.cli.main import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_then_check_json(tmp_path, capsys):
    path = tmp_path / "inst.npz"
    assert run(capsys, "generate", "--model", "decoupled", "--d", 5, "--p", 9,
               "--seed", 1, "-o", path)[0] == 0
    code, out, _ = run(capsys, "check", path, "--json", "--save-weights", tmp_path / "W.npy")
    record = json.loads(out)
    assert code == 0
    for key in ("verdict", "n", "m", "d_in", "d_out", "margin_lower", "margin_upper",
                "tolerance", "solver", "seconds"):
        assert key in record
    assert record["verdict"] == "feasible" and record["n"] == 9 and record["d_in"] == 5
    assert np.load(tmp_path / "W.npy").shape == (5, 5)


def test_check_and_prune_say_how_a_long_solve_goes_on_stderr_only(tmp_path, capsys,
                                                                  monkeypatch):
    """A large file's solve takes hours: check and prune show its IPM iterations
    on stderr after the file's name (progress.HEARTBEAT_SECONDS apart, here 0);
    stdout stays the report, and --json keeps stderr quiet too."""
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.0)
    path = tmp_path / "near.npz"
    save(generate("coupled", 12, capacity_guess(12), seed=2), path)
    for command in ("check", "prune"):
        code, out, err = run(capsys, command, path)
        beats = [line for line in err.splitlines() if "IPM iteration" in line]
        assert code == 0 and beats and "IPM iteration" not in out
        assert all(line.strip().startswith(f"near.npz: p={capacity_guess(12)}: ")
                   for line in beats)
        code, out, err = run(capsys, command, path, "--json")
        assert code == 0 and "IPM iteration" not in err and json.loads(out)


def test_check_infeasible_exits_zero_with_certificate(tmp_path, capsys):
    X = np.ones((2, 3))
    np.savez(tmp_path / "clash.npz", inputs=X, targets=np.eye(2, 3))
    code, out, _ = run(capsys, "check", tmp_path / "clash.npz", "--json",
                       "--save-certificate", tmp_path / "cert.npz")
    assert code == 0 and json.loads(out)["verdict"] == "infeasible"
    assert np.load(tmp_path / "cert.npz")["weights"].sum() == pytest.approx(1)


def test_capacity_grid_writes_rows_and_summary(tmp_path, capsys):
    out = tmp_path / "cap.csv"
    code, stdout, _ = run(capsys, "capacity", "--model", "coupled,decoupled", "--d", "4,5",
                          "--seeds", 2, "--jobs", 1, "--quiet", "--out", out)
    assert code == 0
    rows = pd.read_csv(out)
    assert len(rows) == 8 and set(rows["status"]) == {"exact"}
    summary = pd.read_csv(tmp_path / "cap-summary.csv")
    assert len(summary) == 4
    for _, line in summary.iterrows():   # each summary line is its seeds' rows, summarised
        seeds = rows[(rows["model"] == line["model"]) & (rows["d"] == line["d"])]
        assert line["seeds"] == line["exact"] == 2
        assert line["p_c"] == seeds["p_star"].median()
        assert (line["p_star_min"], line["p_star_max"]) == (seeds["p_star"].min(),
                                                            seeds["p_star"].max())
        assert line["p_c_log_p_c_over_d2"] == pytest.approx(
            line["p_c"] * np.log(line["p_c"]) / line["d"] ** 2)
    assert "p_c" in stdout and "p_c_log_p_c_over_d2" in stdout


def test_capacity_resumes_without_repeating_rows(tmp_path, capsys):
    out = tmp_path / "cap.csv"
    args = ["capacity", "--model", "coupled", "--d", "4", "--seeds", 3, "--jobs", 1,
            "--quiet", "--out", out]
    assert run(capsys, *args)[0] == 0
    full = pd.read_csv(out)
    # simulate a kill: keep the header and one row, plus half a line
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[1] + lines[2][:7])
    assert run(capsys, *args)[0] == 0
    again = pd.read_csv(out)
    pd.testing.assert_frame_equal(full.drop(columns=["seconds"]),
                                  again.drop(columns=["seconds"]))


def test_capacity_of_a_file(tmp_path, capsys):
    path = tmp_path / "facts.npz"
    run(capsys, "generate", "--model", "coupled", "--d", 5, "--p", 20, "-o", path)
    out = tmp_path / "file.csv"
    code, _, _ = run(capsys, "capacity", "--file", path, "--shuffles", 2, "--jobs", 1,
                     "--quiet", "--out", out)
    rows = pd.read_csv(out)
    assert code == 0 and list(rows["shuffle"]) == [0, 1, 2]
    assert (rows["p_star"] >= 2).all() and (rows["p_star"] < 20).all()


def _bad_files(tmp_path):
    good = dict(inputs=np.eye(3), targets=np.eye(3))
    cases = {}
    cases["missing"] = tmp_path / "nope.npz"
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")
    cases["truncated"] = tmp_path / "trunc.npz"
    np.savez(tmp_path / "keys.npz", inputs=np.eye(3), answers=np.eye(3))
    cases["wrong keys"] = tmp_path / "keys.npz"
    np.savez(tmp_path / "shape.npz", inputs=np.eye(3), targets=np.eye(4))
    cases["shape mismatch"] = tmp_path / "shape.npz"
    np.savez(tmp_path / "nan.npz", inputs=np.full((3, 3), np.nan), targets=np.eye(3))
    cases["nan"] = tmp_path / "nan.npz"
    np.savez(tmp_path / "inf.npz", inputs=np.eye(3), targets=np.full((3, 3), np.inf))
    cases["inf"] = tmp_path / "inf.npz"
    np.savez(tmp_path / "empty.npz", inputs=np.zeros((0, 3)), targets=np.zeros((0, 3)))
    cases["empty"] = tmp_path / "empty.npz"
    np.savez(tmp_path / "range.npz", **good, assignment=np.array([0, 1, 5]))
    cases["assignment out of range"] = tmp_path / "range.npz"
    (tmp_path / "text.csv").write_text("x0,y0\n1,hello\n")
    cases["non-numeric csv"] = tmp_path / "text.csv"
    (tmp_path / "ragged.csv").write_text("x0,x1,y0\n1,2,3\n1,2\n")
    cases["ragged csv"] = tmp_path / "ragged.csv"
    (tmp_path / "x.txt").write_text("1 2 3\n")
    cases["unknown type"] = tmp_path / "x.txt"
    return cases


def test_bad_files_get_one_line_and_status_2(tmp_path, capsys):
    for name, path in _bad_files(tmp_path).items():
        code, out, err = run(capsys, "check", path)
        assert code == 2, name
        assert out == "" and len(err.strip().splitlines()) == 1, name
        assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["check", "{inst}", "--solver", "gurobi-free"], "unknown solver 'gurobi-free'"),
    (["check", "{inst}", "--solver", "highs", "--program", "socp"],
     "'highs' cannot certify the socp program"),
    (["check", "{inst}", "--margin", "nan"], "--margin: expected a finite number, got 'nan'"),
    (["check", "{inst}", "--margin", "-1"], "margin must be a finite number >= 0, got -1"),
    (["capacity", "--model", "hopfield", "--d", "4", "--out", "{dir}/x.csv"],
     "unknown model 'hopfield': choose one of coupled, decoupled"),
    (["capacity", "--d", "4", "--distribution", "cauchy", "--out", "{dir}/x.csv"],
     "unknown distribution 'cauchy': choose one of gaussian, sphere"),
    (["capacity", "--d", "4", "--seed0", "-1", "--out", "{dir}/x.csv"],
     "--seed0 must be a non-negative integer, got -1"),
    (["capacity", "--d", "4,x", "--out", "{dir}/x.csv"],
     "--d: expected comma-separated integers, got '4,x'"),
    (["capacity", "--d", "4", "--seeds", "0", "--out", "{dir}/x.csv"],
     "--seeds must be >= 1, got 0"),
    (["capacity", "--d", "4", "--out", "{dir}/missing/x.csv"], "missing: no such directory"),
    (["capacity", "--d", "4", "--out", "{dir}/x.csv", "--reference", "{dir}/none.csv"],
     "none.csv: no such reference file"),
    (["capacity", "--d", "4", "--out", "{dir}/x.csv", "--reference", "{inst}"],
     "inst.npz: not a readable CSV"),
    (["capacity", "--file", "{inst}", "--out", "{dir}/x.csv", "--reference", "{dir}/r.csv"],
     "remove --reference (random grids only)"),
    (["generate", "--model", "coupled", "--d", "3", "--p", "1", "-o", "{dir}/g.npz"],
     "need d >= 1 and p >= 2, got d=3, p=1"),
    (["generate", "--model", "hopfield", "--d", "3", "--p", "4", "-o", "{dir}/g.npz"],
     "unknown model 'hopfield': choose one of coupled, decoupled"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_bad_options_get_one_line_naming_the_problem_and_status_2(tmp_path, capsys, argv,
                                                                    message):
    inst = tmp_path / "inst.npz"
    np.savez(inst, inputs=np.eye(3), targets=np.eye(3))
    argv = [a.format(inst=inst, dir=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("feasibility: error: ") and err.count("\n") == 1
    assert message in err, err
    assert not (tmp_path / "x.csv").exists()  # refused before any work


def test_existing_output_with_other_columns_is_not_touched(tmp_path, capsys):
    out = tmp_path / "mine.csv"
    out.write_text("a,b\n1,2\n")
    code, _, err = run(capsys, "capacity", "--d", "4", "--seeds", 1, "--quiet", "--out", out)
    assert code == 2 and out.read_text() == "a,b\n1,2\n"
    assert "exists with other columns" in err


# -- comparison with the committed reference ------------------------------------------
REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference" / "capacity.csv"


def test_a_fresh_run_reproduces_the_committed_reference_seeds(tmp_path, capsys):
    """The one check against committed results: two seeds of make run's grid, rerun."""
    code, out, _ = run(capsys, "capacity", "--model", "coupled", "--d", 8, "--seeds", 2,
                       "--jobs", 1, "--quiet", "--out", tmp_path / "cap.csv",
                       "--reference", REFERENCE)
    assert code == 0
    assert f"per-seed p*: 2 of 2 seeds agree with {REFERENCE}" in out


def test_a_differing_seed_is_shown_and_exits_1(tmp_path, capsys):
    out = tmp_path / "cap.csv"
    argv = ["capacity", "--model", "coupled", "--d", 4, "--seeds", 3, "--jobs", 1, "--quiet",
            "--out", out]
    assert run(capsys, *argv)[0] == 0
    reference = pd.read_csv(out)
    p_star = int(reference.loc[1, "p_star"])
    reference.loc[1, "p_star"] = p_star + 1        # seed 1 "was" one fact more
    reference = reference.drop(index=2)            # seed 2 is not in the reference
    reference.to_csv(tmp_path / "reference.csv", index=False)
    code, stdout, _ = run(capsys, *argv, "--reference", tmp_path / "reference.csv")
    assert code == 1
    assert "per-seed p*: 1 of 2 seeds agree with" in stdout and "(1 seeds not in it)" in stdout
    # the differing seed, this run's values beside the reference's
    assert stdout.splitlines()[-1].split() == ["coupled", "4", "1", "gaussian", str(p_star),
                                               str(p_star + 1), "exact", "exact"]
