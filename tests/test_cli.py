"""The command line is a contract: these tests call it in-process on tmp folders."""
import json

import numpy as np
import pandas as pd
import pytest

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
    assert {"p_c", "p_c_log_p_c_over_d2"} <= set(summary.columns)
    assert "p_c" in stdout


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


@pytest.mark.parametrize("argv", [
    ["check", "{inst}", "--solver", "gurobi-free"],
    ["check", "{inst}", "--solver", "highs", "--program", "socp"],
    ["check", "{inst}", "--margin", "nan"],
    ["check", "{inst}", "--margin", "-1"],
    ["capacity", "--model", "hopfield", "--d", "4", "--out", "{dir}/x.csv"],
    ["capacity", "--d", "4,x", "--out", "{dir}/x.csv"],
    ["capacity", "--d", "4", "--seeds", "0", "--out", "{dir}/x.csv"],
    ["capacity", "--d", "4", "--out", "{dir}/missing/x.csv"],
    ["generate", "--model", "coupled", "--d", "3", "--p", "1", "-o", "{dir}/g.npz"],
    ["nonsense"],
])
def test_bad_options_get_one_line_and_status_2(tmp_path, capsys, argv):
    inst = tmp_path / "inst.npz"
    np.savez(inst, inputs=np.eye(3), targets=np.eye(3))
    argv = [a.format(inst=inst, dir=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_existing_output_with_other_columns_is_not_touched(tmp_path, capsys):
    out = tmp_path / "mine.csv"
    out.write_text("a,b\n1,2\n")
    code, _, err = run(capsys, "capacity", "--d", "4", "--seeds", 1, "--quiet", "--out", out)
    assert code == 2 and out.read_text() == "a,b\n1,2\n"
