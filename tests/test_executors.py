"""Executors give identical rows; the progress display suits its stream."""
import io
import socket
import sys

import pandas as pd
import pytest

from feasibility.capacity import batch
from feasibility.capacity.progress import Progress
from feasibility.cli.main import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


GRID = ["capacity", "--model", "coupled,decoupled", "--d", "4,5", "--seeds", "2", "--quiet"]


def rows(path):
    return pd.read_csv(path).drop(columns=["seconds"])


def test_dask_cluster_on_loopback_gives_the_serial_rows(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    code, _, _ = run(capsys, *GRID, "--executor", "serial", "--out", tmp_path / "serial.csv")
    assert code == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        code, _, err = run(capsys, *GRID, "--executor", "dask", "--scheduler", address,
                           "--out", tmp_path / "dask.csv")
    assert code == 0, err
    pd.testing.assert_frame_equal(rows(tmp_path / "serial.csv"), rows(tmp_path / "dask.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "serial-summary.csv")
                                  .drop(columns="seconds_per_seed"),
                                  pd.read_csv(tmp_path / "dask-summary.csv")
                                  .drop(columns="seconds_per_seed"))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    pytest.importorskip("distributed")
    for address in (f"tcp://127.0.0.1:{_closed_port()}", "nonsense://x", "tcp://127.0.0.1"):
        code, out, err = run(capsys, *GRID, "--executor", "dask", "--scheduler", address,
                             "--out", tmp_path / "x.csv")
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert "cannot reach the Dask scheduler" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_missing_dask_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    code, _, err = run(capsys, *GRID, "--executor", "dask", "--scheduler",
                       "tcp://127.0.0.1:8786", "--out", tmp_path / "x.csv")
    assert code == 2 and "pip install 'feasibility[dask]'" in err
    assert len(err.strip().splitlines()) == 1


class RecordingParallel:
    """joblib.Parallel's interface, run in this process; remembers n_jobs."""
    seen = []

    def __init__(self, n_jobs, return_as):
        RecordingParallel.seen.append(n_jobs)

    def __call__(self, calls):
        outputs = (function(*args, **kwargs) for function, args, kwargs in calls)

        class Outputs:
            def __iter__(self):
                return outputs

            def close(self):
                pass

        return Outputs()


@pytest.mark.parametrize("argv", [
    ["capacity", "--d", "4", "--seeds", "2", "--quiet", "--out", "{dir}/x.csv"],
    ["spectra", "--d", "4", "--p", "5", "--seeds", "2", "--out", "{dir}/s.csv"],
])
def test_local_executor_uses_every_core_by_default(tmp_path, monkeypatch, capsys, argv):
    RecordingParallel.seen = []
    monkeypatch.setattr(batch.joblib, "Parallel", RecordingParallel)
    monkeypatch.setattr(batch, "default_jobs", lambda: 7)
    assert main([a.format(dir=tmp_path) for a in argv]) == 0
    assert RecordingParallel.seen == [7]


# -- progress ------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stream = Terminal()
    progress = Progress(total=4, done=1, quiet=False, stream=stream)
    assert progress.mode == "bar"
    assert "1/4" in stream.getvalue() and "eta --:--" in stream.getvalue()
    progress.update("coupled d=4 seed=1")
    progress.update("coupled d=4 seed=2")
    progress.close()
    text = stream.getvalue()
    frames = text.split("\r")
    assert len(frames) == 4 and text.endswith("\n")  # redrawn in place, one final newline
    last = frames[-1]
    assert "[" + "#" * 18 in last and "3/4" in last and "75%" in last
    assert "elapsed " in last and "eta " in last and "eta --:--" not in last
    assert "coupled d=4 seed=2" in last


@pytest.mark.parametrize("ci, terminal", [("true", True), (None, False)])
def test_progress_is_line_based_in_ci_or_off_a_terminal(monkeypatch, ci, terminal):
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    stream = Terminal() if terminal else io.StringIO()
    progress = Progress(total=3, done=0, quiet=False, stream=stream)
    assert progress.mode == "lines" and stream.getvalue() == ""
    progress.update("a")
    progress.update("b")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 2
    assert lines[1].startswith("[2/3] b") and "eta" in lines[1]


def test_quiet_silences_progress(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CI", raising=False)
    stream = Terminal()
    progress = Progress(total=3, done=0, quiet=True, stream=stream)
    progress.update("a")
    progress.close()
    assert progress.mode == "off" and stream.getvalue() == ""
    argv = ["capacity", "--d", "4", "--seeds", "2", "--jobs", "1", "--out", tmp_path / "x.csv"]
    _, _, err = run(capsys, *argv)
    assert "[1/2]" in err and "[2/2]" in err  # stderr is not a terminal here: lines
    (tmp_path / "x.csv").unlink()
    _, _, err = run(capsys, *argv, "--quiet")
    assert "[1/2]" not in err and err.strip().splitlines() == [err.strip()]
