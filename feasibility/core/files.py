"""Files written atomically: a reader sees the old file or the new one, never half of one.

Every file the package writes whole (instances, weights, certificates, CSV tables,
figures) goes through ``write_atomic``: the bytes go to ``PATH.PID.partial`` in the
same folder, are synced to disk, then renamed over PATH. An interruption leaves
PATH as it was, and the partial file is removed unless the process was killed
outright (a rerun overwrites it: the name holds the process id, so two writers
never share one). Appending rows one by one is another matter: see
``capacity.batch.ResumableCSV``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

#: hex digits of a file's SHA-256 kept in result rows: enough to tell two versions
#: of one file apart, short enough to read in a CSV
DIGEST_LENGTH = 16


def content_digest(path: str | os.PathLike) -> str:
    """The leading DIGEST_LENGTH hex digits of the SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:DIGEST_LENGTH]


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary binary file, sync it, rename it over `path`."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path):
    """Make the rename itself durable (POSIX); where a folder cannot be opened, skip."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """A text (UTF-8), such as a JSON record or a CSV built in memory."""
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_csv_atomic(frame, path: str | os.PathLike) -> Path:
    """A pandas DataFrame as CSV, without its index."""
    return write_atomic(path, lambda handle: frame.to_csv(handle, index=False))


def save_npy_atomic(array: np.ndarray, path: str | os.PathLike) -> Path:
    return write_atomic(path, lambda handle: np.save(handle, array))


def save_npz_atomic(path: str | os.PathLike, compressed: bool = False, **arrays) -> Path:
    save = np.savez_compressed if compressed else np.savez
    return write_atomic(path, lambda handle: save(handle, **arrays))
