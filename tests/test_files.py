"""One atomic write for every file the package writes whole."""
import os

import numpy as np
import pandas as pd
import pytest

from feasibility.core import files


def test_the_bytes_are_synced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(files.os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b)))
    path = files.write_atomic(tmp_path / "a.bin", lambda handle: handle.write(b"new"))
    assert path.read_bytes() == b"new"
    assert events[:2] == ["fsync", "replace"]


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")

    def half_then_fail(handle):
        handle.write(b"ne")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


def test_csv_is_what_pandas_writes(tmp_path):
    frame = pd.DataFrame({"model": ["coupled", "decoupled"], "p": [25, 31.5]})
    files.write_csv_atomic(frame, tmp_path / "a.csv")
    frame.to_csv(tmp_path / "b.csv", index=False)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_arrays_round_trip(tmp_path):
    W = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(np.load(files.save_npy_atomic(W, tmp_path / "w.npy")), W)
    for compressed in (False, True):
        path = files.save_npz_atomic(tmp_path / f"c{compressed}.npz", compressed, rows=W[0])
        with np.load(path) as data:
            np.testing.assert_array_equal(data["rows"], W[0])
