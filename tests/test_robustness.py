"""Bad input: one line on stderr, exit status 2, no traceback, no file touched.

Each case of the README's bad-input table is built here from scratch; hopeless but
legitimate instances (duplicate targets, zero vectors) are proved, not refused.
"""
import builtins
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feasibility import INFEASIBLE, InputError, Instance, decide, generate, load
from feasibility.cli.main import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(capsys, folder, *argv, match=None):
    """Exit 2, one line on stderr, nothing on stdout, every file as it was."""
    before = snapshot(folder)
    code, out, err = run(capsys, *argv)
    assert code == 2, (argv, err)
    assert out == "" and len(err.strip().splitlines()) == 1, (argv, err)
    assert err.startswith("feasibility: error: ") and "Traceback" not in err
    if match:
        assert match in err, (match, err)
    assert snapshot(folder) == before, "a file was created, changed or removed"
    return err


# -- instance files -----------------------------------------------------------------
def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def bad_instance_files(tmp: Path) -> dict:
    """name -> (path, a fragment of the expected message)."""
    eye = np.eye(3)
    good = _npz(tmp / "good.npz", inputs=eye, targets=eye)
    data = good.read_bytes()
    cases = {"missing file": (tmp / "nope.npz", "no such file"),
             "directory": (tmp / "folder.npz", "is a directory"),
             "unknown suffix": (tmp / "facts.txt", "unknown file type")}
    (tmp / "folder.npz").mkdir()
    (tmp / "facts.txt").write_text("1 2 3\n")
    for fraction in (0.0, 0.1, 0.5, 0.9):
        path = tmp / f"truncated-{fraction}.npz"
        path.write_bytes(data[:int(len(data) * fraction)])
        cases[f"npz truncated to {fraction:.0%}"] = (path, "not a readable .npz")
    (tmp / "last-byte.npz").write_bytes(data[:-1])
    cases["npz missing its last byte"] = (tmp / "last-byte.npz", "not a readable .npz")
    (tmp / "garbage.npz").write_bytes(b"PK\x03\x04garbage")
    cases["zip header then garbage"] = (tmp / "garbage.npz", "not a readable .npz")
    np.save(tmp / "single.npy", eye)
    (tmp / "single.npy").rename(tmp / "single.npz")
    cases[".npy renamed .npz"] = (tmp / "single.npz", "single array")
    (tmp / "pickle.npz").write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.")
    cases["pickle"] = (tmp / "pickle.npz", "not a readable .npz")
    cases["unknown key"] = (_npz(tmp / "k1.npz", inputs=eye, outputs=eye), "unknown keys")
    cases["missing key"] = (_npz(tmp / "k2.npz", inputs=eye), "missing keys ['targets']")
    shape = {
        "inputs vs targets": (dict(inputs=eye, targets=np.eye(4, 3)), "assignment missing"),
        "inputs 1-D": (dict(inputs=np.ones(3), targets=eye), "2-D"),
        "inputs 3-D": (dict(inputs=np.ones((3, 3, 1)), targets=eye), "2-D"),
        "scalar inputs": (dict(inputs=np.float64(1), targets=eye), "2-D"),
        "assignment length": (dict(inputs=eye, targets=eye, assignment=[0, 1]), "shape (3,)"),
        "assignment 2-D": (dict(inputs=eye, targets=eye, assignment=np.zeros((3, 1), int)),
                           "shape (3,)"),
        "assignment out of range": (dict(inputs=eye, targets=eye, assignment=[0, 1, 3]),
                                    "[0, 3)"),
        "assignment negative": (dict(inputs=eye, targets=eye, assignment=[0, -1, 2]), "[0, 3)"),
        "assignment fractional": (dict(inputs=eye, targets=eye, assignment=[0, 1.5, 2]),
                                  "integers"),
        "assignment NaN": (dict(inputs=eye, targets=eye, assignment=[0, np.nan, 2]),
                           "integers"),
        "competitors rows": (dict(inputs=eye, targets=eye, competitors=np.ones((2, 2, 3))),
                             "competitors"),
        "competitors width": (dict(inputs=eye, targets=eye, competitors=np.ones((3, 2, 4))),
                              "competitors"),
        "competitors 2-D": (dict(inputs=eye, targets=eye, competitors=np.ones((3, 3))), "3-D"),
        "one target only": (dict(inputs=np.eye(1), targets=np.eye(1)), "two targets"),
        "NaN input": (dict(inputs=np.where(eye > 0, np.nan, 0), targets=eye), "NaN"),
        "inf target": (dict(inputs=eye, targets=np.full((3, 3), np.inf)), "infinite"),
        "-inf competitor": (dict(inputs=eye, targets=eye,
                                 competitors=np.full((3, 2, 3), -np.inf)), "infinite"),
        "empty inputs": (dict(inputs=np.zeros((0, 3)), targets=np.zeros((0, 3))), "empty"),
        "zero-width inputs": (dict(inputs=np.zeros((3, 0)), targets=eye), "empty"),
        "no competitors": (dict(inputs=eye, targets=eye, competitors=np.zeros((3, 0, 3))),
                           "empty"),
        "string dtype": (dict(inputs=np.array([["1", "2"], ["3", "4"]]), targets=np.eye(2)),
                         "real numbers"),
        "bytes dtype": (dict(inputs=np.array([[b"1", b"2"]]), targets=np.eye(2)),
                        "real numbers"),
        "complex dtype": (dict(inputs=eye * 1j, targets=eye), "real numbers"),
        "datetime dtype": (dict(inputs=np.zeros((2, 2), "datetime64[s]"), targets=np.eye(2)),
                           "real numbers"),
        "structured dtype": (dict(inputs=np.zeros(2, [("a", float)]), targets=np.eye(2)),
                             "real numbers"),
        "overflowing values": (dict(inputs=eye * 1e200, targets=eye), "overflow"),
        "underflowing values": (dict(inputs=eye * 1e-200, targets=eye), "underflow"),
        # a row's magnitude is its largest |entry|, not its largest entry
        "overflowing negative values": (dict(inputs=eye * -1e200, targets=eye), "overflow"),
        "underflowing negative values": (dict(inputs=eye * -1e-200, targets=eye), "underflow"),
    }
    for k, (name, (arrays, message)) in enumerate(shape.items()):
        cases[name] = (_npz(tmp / f"shape{k}.npz", **arrays), message)
    objects = tmp / "object.npz"
    np.savez(objects, inputs=np.array([[1, "a"]], dtype=object), targets=np.eye(2))
    cases["object dtype"] = (objects, "Object arrays")
    csvs = {
        "csv without header": ("1,0,1,0\n0,1,0,1\n", "header"),
        "csv wrong header": ("a,b,c\n1,2,3\n", "header"),
        "csv header gap": ("x0,x2,y0\n1,2,3\n", "header"),
        "csv header repeated": ("x0,x0,y0\n1,2,3\n", "header"),
        "csv header prefix only": ("xylophone,y0\n1,2\n", "header"),
        "csv no targets": ("x0,x1\n1,2\n", "header"),
        "csv semicolons": ("x0;y0\n1;2\n", "header"),
        "csv ragged short": ("x0,x1,y0\n1,2,3\n1,2\n", "line 3 has 2 fields"),
        "csv ragged long": ("x0,y0\n1,2\n1,2,3\n", "line 3 has 3 fields"),
        "csv text": ("x0,y0\n1,hello\n2,3\n", "line 2, column y0: not a number"),
        "csv empty field": ("x0,y0\n1,\n2,3\n", "not a number"),
        "csv NaN": ("x0,y0\nnan,1\n2,3\n", "NaN"),
        "csv inf": ("x0,y0\n1,inf\n2,3\n", "infinite"),
        "csv empty": ("", "empty CSV"),
        "csv header only": ("x0,y0\n", "no data rows"),
        "csv truncated mid-row": ("x0,x1,y0,y1\n1,0,1,0\n0,1,0", "line 3 has 3 fields"),
    }
    for k, (name, (text, message)) in enumerate(csvs.items()):
        path = tmp / f"bad{k}.csv"
        path.write_text(text)
        cases[name] = (path, message)
    (tmp / "binary.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    cases["csv binary"] = (tmp / "binary.csv", "cannot read")
    return cases


def test_every_bad_instance_file_gets_one_line_and_status_2(tmp_path, capsys):
    cases = bad_instance_files(tmp_path)
    assert len(cases) > 50
    for name, (path, message) in cases.items():
        err = assert_refused(capsys, tmp_path, "check", path, match=message)
        assert str(path.name) in err, name


@pytest.mark.parametrize("command", [["audit"], ["capacity", "--jobs", "1", "--file"]])
def test_other_commands_refuse_bad_files_the_same_way(tmp_path, capsys, command):
    cases = bad_instance_files(tmp_path)
    extra = [] if command[0] == "audit" else ["--out", tmp_path / "out.csv"]
    for name in ("missing file", "npz truncated to 50%", "unknown key", "inputs vs targets",
                 "NaN input", "empty inputs", "complex dtype", "csv ragged short", "csv text"):
        path, message = cases[name]
        assert_refused(capsys, tmp_path, *command, path, *extra, match=message)


def test_unreadable_file(tmp_path, capsys, monkeypatch):
    """chmod 000 does not stop root, so the refusal to open is simulated as well."""
    for name in ("locked.npz", "locked.csv"):
        path = tmp_path / name
        if name.endswith(".npz"):
            np.savez(path, inputs=np.eye(2), targets=np.eye(2))
        else:
            path.write_text("x0,y0\n1,0\n0,1\n")
        real_open = builtins.open

        def refuse(file, *args, **kwargs):
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refuse)
        try:
            assert_refused(capsys, tmp_path, "check", path, match="Permission denied")
        finally:
            monkeypatch.setattr(builtins, "open", real_open)


def test_ragged_nested_lists_are_refused_through_the_api():
    with pytest.raises(InputError, match="rectangular"):
        Instance([[1.0, 2.0], [3.0]], np.eye(2))


# -- legitimate, hopeless instances: proved, not refused ---------------------------------
@pytest.mark.parametrize("name, inputs, targets", [
    ("duplicate targets", np.eye(3), np.array([[1.0, 0, 0], [0, 1, 0], [1, 0, 0]])),
    ("all targets equal", np.eye(3), np.ones((3, 3))),
    ("a zero input", np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 1]]), np.eye(3)),
    ("all zero", np.zeros((3, 3)), np.zeros((3, 3))),
])
def test_hopeless_instances_are_proved_infeasible(tmp_path, capsys, name, inputs, targets):
    path = _npz(tmp_path / "hopeless.npz", inputs=inputs, targets=targets)
    code, out, err = run(capsys, "check", path, "--json", "--save-certificate",
                         tmp_path / "cert.npz")
    assert code == 0 and err == "", name
    record = json.loads(out)
    assert record["verdict"] == INFEASIBLE and record["margin_upper"] == 0.0
    cert = np.load(tmp_path / "cert.npz")
    assert cert["weights"].sum() == pytest.approx(1.0) and (cert["weights"] >= 0).all()


def test_zero_target_vector_is_a_valid_target():
    """y = 0 is a target like any other: here one W separates all three facts."""
    decision = decide(Instance(np.eye(3), np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])))
    assert decision.verdict == "feasible"


def test_nearly_equal_targets_are_not_duplicates():
    """Targets 1e-9 apart are distinct: the Gram form of their distance cancels to 0."""
    targets = np.array([[1.0, 0, 0], [1.0, 1e-9, 0], [0, 0, 1.0]])
    instance = Instance(np.eye(3), targets)
    assert instance.constraint_norms()[0, 1] == pytest.approx(1e-9)
    assert decide(instance).verdict == "feasible"


def test_integer_and_boolean_files_are_converted(tmp_path, capsys):
    path = _npz(tmp_path / "ints.npz", inputs=np.eye(3, dtype=np.int8),
                targets=np.eye(3, dtype=bool), assignment=np.arange(3, dtype=np.uint16))
    instance = load(path)
    assert instance.inputs.dtype == instance.targets.dtype == np.float64
    code, out, _ = run(capsys, "check", path, "--json")
    assert code == 0 and json.loads(out)["verdict"] == "feasible"


def test_csv_with_byte_order_mark_and_shuffled_header(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("y0,x1,x0,y1\n1,0,1,0\n0,1,0,1\n", encoding="utf-8-sig")
    instance = load(path)
    assert np.array_equal(instance.inputs, [[1, 0], [0, 1]])
    assert np.array_equal(instance.targets, [[1, 0], [0, 1]])


# -- nothing already written is damaged ---------------------------------------------------
def test_failed_commands_leave_existing_outputs_alone(tmp_path, capsys):
    bad = _npz(tmp_path / "bad.npz", inputs=np.full((3, 3), np.nan), targets=np.eye(3))
    (tmp_path / "W.npy").write_bytes(b"precious weights")
    (tmp_path / "C.npz").write_bytes(b"precious certificate")
    (tmp_path / "inst.npz").write_bytes(b"precious instance")
    assert_refused(capsys, tmp_path, "check", bad, "--save-weights", tmp_path / "W.npy",
                   "--save-certificate", tmp_path / "C.npz")
    assert_refused(capsys, tmp_path, "generate", "--model", "coupled", "--d", 3, "--p", 1,
                   "-o", tmp_path / "inst.npz")
    out = tmp_path / "cap.csv"
    out.write_text("precious,results\n1,2\n")
    (tmp_path / "cap-summary.csv").write_text("precious summary\n")
    for argv in (["--d", "1"], ["--seeds", "0"], ["--model", "hopfield"], ["--d", "4,4"],
                 ["--seed0", "-1"], ["--distribution", "cauchy"], ["--jobs", "0"],
                 ["--executor", "threads"], ["--executor", "dask"],
                 ["--scheduler", "tcp://127.0.0.1:1"], ["--shuffles", "2"],
                 ["--file", bad], ["--file", bad, "--d", "4"], ["--d", "4"]):
        assert_refused(capsys, tmp_path, "capacity", *argv, "--out", out)


def test_capacity_refuses_a_csv_it_did_not_write(tmp_path, capsys):
    from feasibility.capacity.batch import CAPACITY_COLUMNS

    out = tmp_path / "cap.csv"
    header = ",".join(CAPACITY_COLUMNS)
    values = "coupled,4,0,gaussian,24,9,9,10,exact,0.1,4,6,0.1,default,1e-06".split(",")
    row = ",".join(values + [""] * (len(CAPACITY_COLUMNS) - len(values)))
    for text, message in ((header + "\n" + row + "\nthis line is not a row\n" + row + "\n",
                           "line 3 has 1 fields"),
                          ("\x00\xff binary\n", "not a CSV written by feasibility"),
                          ("a,b\n1,2\n", "other columns")):
        out.write_bytes(text.encode("latin-1"))
        assert_refused(capsys, tmp_path, "capacity", "--d", 4, "--seeds", 1, "--jobs", 1,
                       "--out", out, match=message)


def test_a_second_run_on_the_same_output_is_refused(tmp_path, capsys):
    from feasibility.capacity.batch import _OutputLock

    out = tmp_path / "cap.csv"
    with _OutputLock(out):
        assert_refused(capsys, tmp_path, "capacity", "--d", 4, "--seeds", 1, "--jobs", 1,
                       "--quiet", "--out", out, match="being written by another run")


def test_an_output_written_before_new_columns_resumes_with_its_rows(tmp_path, capsys,
                                                                    monkeypatch):
    """A CSV whose columns are a leading part of today's (an earlier version's) keeps
    its rows, gains the new columns empty, drops a line cut by a kill, and stays
    locked against a second run."""
    import feasibility.capacity.batch as batch

    out = tmp_path / "cap.csv"
    args = ["capacity", "--d", "4", "--seeds", 2, "--jobs", 1, "--executor", "serial",
            "--quiet", "--out", out]
    assert run(capsys, *args)[0] == 0
    fresh = pd.read_csv(out)
    older = batch.CAPACITY_COLUMNS[:15]
    fresh[older].iloc[:1].to_csv(out, index=False)   # seed 0 only, as an older version wrote it
    with open(out, "a") as handle:
        handle.write("coupled,4,1,gauss")            # and a line cut by a kill
    locked, task = [], batch.run_capacity_task

    def run_task(*args, **kwargs):   # what a second run would find while this one works
        try:
            batch._OutputLock(out).__enter__()
            locked.append(False)
        except InputError:
            locked.append(True)
        return task(*args, **kwargs)

    monkeypatch.setattr(batch, "run_capacity_task", run_task)
    assert run(capsys, *args)[0] == 0
    assert locked == [True]
    resumed = pd.read_csv(out)
    assert list(resumed.columns) == batch.CAPACITY_COLUMNS and len(resumed) == 2
    assert resumed.loc[0, "seconds"] == fresh.loc[0, "seconds"]    # kept, not recomputed
    assert resumed["p_star"].tolist() == fresh["p_star"].tolist()


def test_duplicate_rows_in_the_output_are_dropped(tmp_path, capsys):
    out = tmp_path / "cap.csv"
    args = ["capacity", "--d", "4", "--seeds", 2, "--jobs", 1, "--quiet", "--out", out]
    assert run(capsys, *args)[0] == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines + lines[1:]))  # as if two runs had appended the same rows
    assert run(capsys, *args)[0] == 0
    assert out.read_text().splitlines(keepends=True) == lines


# -- batch specifications -----------------------------------------------------------------
BAD_SPECS = {
    "unknown key": ('{"models": ["coupled"], "out": "x.csv"}', "unknown keys 'models'"),
    "not an object": ('[1, 2]', "expected a JSON object"),
    "not JSON": ('{"d": [4]', "not valid JSON"),
    "empty file": ('', "not valid JSON"),
    "duplicate key": ('{"seeds": 2, "seeds": 3, "out": "x.csv"}', "appears twice"),
    "NaN": ('{"seeds": NaN, "out": "x.csv"}', "NaN"),
    "seeds 0": ('{"seeds": 0, "out": "x.csv"}', "'seeds'"),
    "seeds bool": ('{"seeds": true, "out": "x.csv"}', "'seeds'"),
    "seeds float": ('{"seeds": 2.0, "out": "x.csv"}', "'seeds'"),
    "d below 2": ('{"d": [1], "out": "x.csv"}', "'d'"),
    "d string": ('{"d": "8", "out": "x.csv"}', "'d'"),
    "d empty": ('{"d": [], "out": "x.csv"}', "'d'"),
    "d repeated": ('{"d": [4, 4], "out": "x.csv"}', "'d'"),
    "unknown model": ('{"model": ["hopfield"], "out": "x.csv"}',
                      "'model': unknown model 'hopfield': choose one of coupled, decoupled"),
    "negative seed0": ('{"seed0": -1, "out": "x.csv"}', "'seed0'"),
    "jobs 0": ('{"jobs": 0, "out": "x.csv"}', "'jobs'"),
    "unknown distribution": ('{"distribution": "cauchy", "out": "x.csv"}',
                             "'distribution': unknown distribution 'cauchy'"),
    "distribution not a string": ('{"distribution": ["gaussian"], "out": "x.csv"}',
                                  "'distribution': expected a string"),
    "reference not csv": ('{"reference": "r.txt", "out": "x.csv"}', "'reference'"),
    "file and reference": ('{"file": "f.npz", "reference": "r.csv", "out": "x.csv"}',
                           "remove 'reference'"),
    "unknown executor": ('{"executor": "threads", "out": "x.csv"}', "'executor'"),
    "out not csv": ('{"out": "x.txt"}', "'out'"),
    "no out": ('{"d": [4]}', "needs --out"),
    "quiet string": ('{"quiet": "yes", "out": "x.csv"}', "'quiet'"),
    "file and grid": ('{"file": "f.npz", "d": [4], "out": "x.csv"}', "remove 'd'"),
    "shuffles without file": ('{"shuffles": 2, "out": "x.csv"}', "only with --file"),
    "dask without scheduler": ('{"executor": "dask", "out": "x.csv"}', "needs --scheduler"),
    "scheduler without dask": ('{"scheduler": "tcp://127.0.0.1:1", "out": "x.csv"}',
                               "applies to --executor dask only"),
}


def test_bad_specifications_get_one_line_and_status_2(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    for name, (text, message) in BAD_SPECS.items():
        spec.write_text(text)
        assert_refused(capsys, tmp_path, "capacity", "--spec", spec, match=message)
    assert_refused(capsys, tmp_path, "capacity", "--spec", tmp_path / "nope.json",
                   match="no such file")


def test_specification_runs_its_grid_and_the_command_line_overrides_it(tmp_path, capsys):
    spec = tmp_path / "grid.json"
    spec.write_text(json.dumps({"description": "tiny", "model": ["coupled"], "d": [4],
                                "seeds": 2, "jobs": 1, "quiet": True,
                                "out": str(tmp_path / "from-spec.csv")}))
    code, out, err = run(capsys, "capacity", "--spec", spec)
    assert code == 0 and err.startswith("wrote")
    import pandas as pd
    rows = pd.read_csv(tmp_path / "from-spec.csv")
    assert list(rows["seed"]) == [0, 1] and set(rows["d"]) == {4}
    code, _, _ = run(capsys, "capacity", "--spec", spec, "--seeds", 1, "--out",
                     tmp_path / "override.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / "override.csv")) == 1


def test_example_specification_is_make_runs_grid():
    from feasibility.capacity.spec import load_spec

    root = Path(__file__).resolve().parents[1]
    spec = load_spec(root / "instances" / "small-grid.json")
    assert spec["model"] == ["coupled", "decoupled"] and spec["d"] == [8, 12, 16]
    assert spec["seeds"] == 8 and spec["out"] == "results/capacity.csv"
    assert spec["reference"] == "results/reference/capacity.csv"
    assert (root / spec["reference"]).is_file()
    makefile = (root / "Makefile").read_text()
    assert "--model coupled,decoupled --d 8,12,16 --seeds 8" in makefile
    assert "--out results/capacity.csv --reference $(REFERENCE)/capacity.csv" in makefile
    assert "REFERENCE := results/reference" in makefile


# -- reproducibility ---------------------------------------------------------------------
#: sha256 of the float64 little-endian bytes of inputs, targets (and competitors) of
#: generate(model, d=5, p=7, seed=3, distribution): the RNG scheme in README.md. A
#: change here changes every published number: it must be deliberate.
GOLDEN = {
    ("coupled", "gaussian"): "0f4c588cbb75ff6d9b5a06609af4b16da76a113b6a0e7d8f77c52d3b649ab976",
    ("coupled", "sphere"): "c551a2312c179ce83b0b677a1f724548750e8d12e1d9ffc37fda3af53cfea958",
    ("decoupled", "gaussian"): "b5b81bf82997c09a95a646e06912d1e7f8f470a67844abfe04fcd14204e74577",
    ("decoupled", "sphere"): "eec9a8b8a8928f18c0b4faa4bc0ff6ec50176672eda9f8ae711e1dc4596757b2",
}


def fingerprint(instance) -> str:
    digest = hashlib.sha256()
    for array in (instance.inputs, instance.targets, instance.competitors):
        if array is not None:
            digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("model, distribution", sorted(GOLDEN))
def test_same_seed_same_instance_bit_for_bit(model, distribution):
    instance = generate(model, 5, 7, seed=3, distribution=distribution)
    assert fingerprint(instance) == GOLDEN[model, distribution]


def test_rng_scheme_is_the_documented_one():
    """x_i then y_i from default_rng([seed, 0, d, i]); competitors from [seed, 1, d, i]."""
    seed, d, p = 3, 5, 7
    instance = generate("decoupled", d, p, seed)
    for i in range(p):
        xy = np.random.default_rng([seed, 0, d, i]).standard_normal((2, d)) / np.sqrt(d)
        assert np.array_equal(instance.inputs[i], xy[0])
        assert np.array_equal(instance.targets[i], xy[1])
        c = np.random.default_rng([seed, 1, d, i]).standard_normal((p - 1, d)) / np.sqrt(d)
        assert np.array_equal(instance.competitors[i], c)
