"""A real `feasibility capacity` run, killed by SIGINT, SIGTERM and SIGKILL and
started again each time, ends with exactly the rows of an uninterrupted run."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from feasibility.capacity.batch import CAPACITY_COLUMNS, SUMMARY_COLUMNS
from feasibility.cli.main import main

GRID = ["capacity", "--model", "coupled", "--d", "4,5,6", "--seeds", "4", "--quiet"]
TOTAL = 12
KEY = ["model", "d", "seed", "distribution"]
#: the CLI as a terminal starts it, with a pause after each row it appends.
#: A shell starts a background job with SIGINT ignored, and Python then installs no
#: KeyboardInterrupt handler: run from such a job (nohup ... &), the SIGINT case
#: exited 0 instead of 130, so the child restores Python's own handler. A new row
#: is the cue to send the signal, and this grid's rows take milliseconds: the pause
#: keeps a loaded machine from finishing the grid before the signal lands.
ROW_PAUSE = 2.0
PAUSED_CLI = f"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from feasibility.capacity.batch import ResumableCSV
append = ResumableCSV.append
def paused(self, row):
    append(self, row)
    time.sleep({ROW_PAUSE})
ResumableCSV.append = paused
from feasibility.cli.main import main
sys.exit(main())
"""


def complete_rows(path):
    """Rows of the complete lines of the CSV (a kill may leave a partial last line)."""
    if not path.exists():
        return []
    text = path.read_text()
    text = text[:text.rfind("\n") + 1]
    lines = list(csv.reader(text.splitlines()))
    if not lines:
        return []
    assert lines[0] == CAPACITY_COLUMNS
    assert all(len(line) == len(CAPACITY_COLUMNS) for line in lines[1:])
    return lines[1:]


def group_members(pgid):
    """Processes in process group `pgid` (Linux /proc), the leader included."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_for_group_exit(pgid, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    return False


def interrupted_run(out, jobs, sig, tmp_path):
    """Start the grid, wait for a new row, send `sig`; return (code, stderr, rows).

    With jobs > 1 the signal goes as soon as the worker processes exist (waiting
    for them to import the solvers and finish a task would double the test's time).
    """
    before = len(complete_rows(out))

    def ready():
        if jobs > 1:  # the leader, loky's resource tracker and the workers
            return len(group_members(process.pid)) >= 2 + jobs
        return len(complete_rows(out)) > before

    process = subprocess.Popen(
        [sys.executable, "-c", PAUSED_CLI, *GRID, "--jobs", str(jobs), "--out", str(out)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own process group: workers can be found after
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert process.poll() is None, f"run ended before the kill: {process.stderr.read()}"
            assert time.monotonic() < deadline, "no row written in 120 s"
            time.sleep(0.01)
        if sig == signal.SIGINT:
            os.killpg(process.pid, sig)  # as Ctrl-C on a terminal: the whole group
        else:
            os.kill(process.pid, sig)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert wait_for_group_exit(process.pid), f"workers still running after {sig.name}"
    return process.returncode, err, complete_rows(out)


def test_killed_runs_resume_to_exactly_the_uninterrupted_rows(tmp_path, capsys):
    reference = tmp_path / "reference.csv"
    assert main([*GRID, "--jobs", "1", "--out", str(reference)]) == 0
    capsys.readouterr()
    expected = pd.read_csv(reference).drop(columns="seconds")
    expected_rows = {tuple(row) for row in expected.astype(str).itertuples(index=False)}
    assert len(expected) == TOTAL

    out = tmp_path / "cap.csv"
    summary = tmp_path / "cap-summary.csv"
    kept: list = []
    for sig, jobs, code in ((signal.SIGINT, 1, 130), (signal.SIGTERM, 2, 143),
                            (signal.SIGKILL, 1, -signal.SIGKILL)):
        returncode, err, rows = interrupted_run(out, jobs, sig, tmp_path)
        assert returncode == code, (sig.name, err)
        if sig != signal.SIGKILL:  # handled: one line, no traceback, no joblib noise
            assert len(err.strip().splitlines()) == 1, err
            assert "run the same command again to resume" in err
        assert len(kept) <= len(rows) < TOTAL, (sig.name, len(rows))
        if jobs == 1:
            assert len(rows) > len(kept)
        keys = [tuple(row[:4]) for row in rows]
        assert len(set(keys)) == len(keys), f"a row was repeated after {sig.name}"
        assert [tuple(row) for row in rows[:len(kept)]] == kept, "a finished row was lost"
        kept = [tuple(row) for row in rows]
        frame = pd.read_csv(out).drop(columns="seconds").astype(str)
        assert {tuple(r) for r in frame.itertuples(index=False)} <= expected_rows
        assert not summary.exists(), "an interrupted run wrote a summary"
        if sig != signal.SIGKILL:
            assert not list(tmp_path.glob("*.partial")), "a temporary file was left behind"

    assert main([*GRID, "--jobs", "1", "--out", str(out)]) == 0  # the same command again
    capsys.readouterr()
    final = pd.read_csv(out)
    assert not final.duplicated(subset=KEY).any()
    pd.testing.assert_frame_equal(final.drop(columns="seconds"), expected)
    got = pd.read_csv(summary)
    assert list(got.columns) == SUMMARY_COLUMNS and len(got) == 3
    pd.testing.assert_frame_equal(
        got.drop(columns="seconds_per_seed"),
        pd.read_csv(tmp_path / "reference-summary.csv").drop(columns="seconds_per_seed"))


def test_a_kill_during_the_final_rewrite_leaves_the_old_file(tmp_path, monkeypatch):
    """The final rewrite goes through a temporary file: interrupted, it changes nothing."""
    import feasibility.capacity.batch as batch
    import feasibility.core.files as files

    out = tmp_path / "cap.csv"
    assert main(["capacity", "--d", "4", "--seeds", "2", "--jobs", "1", "--quiet",
                 "--out", str(out)]) == 0
    before = out.read_bytes()
    real_replace = os.replace

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted)
    frame = pd.read_csv(out)
    with pytest.raises(KeyboardInterrupt):
        batch.write_csv_atomic(frame.iloc[::-1], out)
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert out.read_bytes() == before
    assert not list(tmp_path.glob("*.partial"))


def test_an_error_raised_while_a_signal_is_handled_still_reads_as_the_signal(monkeypatch,
                                                                            capsys):
    """SIGTERM landing while joblib starts its workers: joblib's clean-up raised
    'cannot join thread before it is started' over the Terminated (seen once in CI)."""
    import importlib

    cli = importlib.import_module("feasibility.cli.main")   # the module, not main()

    def start_workers(args):
        try:
            raise cli.Terminated()
        finally:
            raise RuntimeError("cannot join thread before it is started")

    monkeypatch.setitem(cli.COMMANDS, "capacity", start_workers)
    assert cli.main(["capacity", "--out", "x.csv"]) == 143
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["feasibility: terminated (SIGTERM); finished rows and probes are kept, and "
                   "a probe under way resumes from its last checkpoint: run the same command "
                   "again to resume"]

    def a_bug(args):
        raise RuntimeError("a bug")

    monkeypatch.setitem(cli.COMMANDS, "capacity", a_bug)
    with pytest.raises(RuntimeError, match="a bug"):   # not an interruption: not hidden
        cli.main(["capacity", "--out", "x.csv"])
