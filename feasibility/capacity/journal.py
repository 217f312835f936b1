"""Per-probe journals: a bisection that takes hours resumes with the probes it finished.

The batch CSV keeps one row per finished task; a task interrupted half-way would
redo every probe. While a task runs, each certified probe (p, verdict, certified
bracket on kappa*) is appended to its own journal, one JSON line, synced to disk.
A rerun of the task reads the journal and reuses those probes instead of solving
them again: monotonicity in p makes a certified verdict at p valid whatever the
path that reached it, and the search is deterministic, so it walks the same probes.
A line cut by a kill is ignored (that probe is redone); none is repeated.
Beside it the last W that seeds later probes (a solver's feasible W) is kept
(``.npy``, replaced atomically): the resumed search seeds its first solve with
it, as it would have. A probe that runs for minutes also keeps where it stands
(``.pP.checkpoint.npz``: its active set and IPM iterate, solvers.active_set's
DecisionProgress), replaced atomically at most once a minute and removed once
the probe is recorded: the resumed probe goes on from there, not from the start
(a probe at d = 192 takes one to two hours, at d = 256 longer than a session).

When a grid ends, its journals are gathered into one tidy CSV beside the output
(``OUT-probes.csv``: the task's key columns, then one row per probe) and removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pandas as pd

from feasibility.capacity.bisection import Probe
from feasibility.core.certify import FarkasCertificate
from feasibility.core.files import save_npy_atomic, save_npz_atomic, write_csv_atomic
from feasibility.core.status import FastPath, Verdict
from feasibility.solvers.active_set import DecisionProgress
from feasibility.solvers.ipm import IPMState

PROBE_COLUMNS = [f.name for f in fields(Probe)]


def journal_folder(out: str | os.PathLike) -> Path:
    """Where the running tasks of a grid writing `out` keep their journals."""
    out = Path(out)
    return out.with_name(out.name + ".probes")


def probes_path(out: str | os.PathLike) -> Path:
    """The tidy CSV of every probe of a grid writing `out`."""
    out = Path(out)
    return out.with_name(f"{out.stem}-probes.csv")


class ProbeJournal:
    """The append-only record of one task's certified probes."""

    def __init__(self, folder: str | os.PathLike, key: tuple):
        name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(part)) for part in key)
        self.key = key
        self.path = Path(folder) / f"{name}.jsonl"
        self.memory_path = self.path.with_suffix(".npy")

    def recorded(self) -> tuple[dict[int, Probe], Probe | None]:
        """The search's probes recorded so far, by p (a line cut by a kill is
        skipped), and the boundary check's probe if it was recorded."""
        probes = self._probes()
        return ({probe.p: probe for probe in probes if not probe.boundary},
                next((probe for probe in probes if probe.boundary), None))

    def _probes(self) -> list[Probe]:
        if not self.path.exists():
            return []
        found = []
        for record in map(_parsed, self.path.read_text().splitlines()):
            if record is None or list(record.get("key", ())) != list(self.key):
                continue
            fields_ = {c: record[c] for c in PROBE_COLUMNS if c in record}
            # a line written before probes carried fast_path keeps the default
            # (not tried): the resumed search then tries the fast path again
            if "fast_path" in fields_:
                fields_["fast_path"] = FastPath(fields_["fast_path"])
            try:
                found.append(Probe(**{**fields_, "verdict": Verdict(fields_["verdict"])}))
            except (ValueError, TypeError, KeyError):
                continue
        return found

    def memory(self) -> np.ndarray | None:
        """The last seeding W recorded (None if none, or unreadable)."""
        try:
            return np.load(self.memory_path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None

    def record(self, probe: Probe, weights: np.ndarray | None = None):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if weights is not None:
            # written before the probe's line, so a kept W is never older than the journal
            save_npy_atomic(weights, self.memory_path)
        line = json.dumps({"key": list(self.key), **asdict(probe),
                           "verdict": str(probe.verdict)}) + "\n"
        with open(self.path, "a") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        # after the line: a kill between the two leaves a checkpoint nobody resumes
        self.checkpoint(probe.p, probe.boundary).path.unlink(missing_ok=True)

    def checkpoint(self, p: int, boundary: bool = False) -> ProbeCheckpoint:
        """Where the solve of the probe at p (or the boundary check there) keeps its
        progress while it runs (capacity_bisection's ``checkpoints``)."""
        suffix = f".p{p}{'-boundary' if boundary else ''}.checkpoint.npz"
        return ProbeCheckpoint(self.path.with_name(self.path.stem + suffix))


class ProbeCheckpoint:
    """One probe's DecisionProgress in one .npz (solvers.active_set's CheckpointStore)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def load(self) -> DecisionProgress | None:
        """The progress saved (None if none, or unreadable: the probe starts afresh)."""
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                state = IPMState(saved["lam"], float(saved["nu"]), saved["s"],
                                 int(saved["iteration"]), bool(saved["single"]))
                # (checkpoints saved before they carried the bracket's evidence have none)
                has_weights = "weights" in saved.files
                has_certificate = "certificate_rows" in saved.files
                certificate = FarkasCertificate(
                    saved["certificate_rows"], saved["certificate_slots"],
                    saved["certificate_weights"]) if has_certificate else None
                return DecisionProgress(
                    saved["rows"], saved["slots"], state, int(saved["rounds"]),
                    int(saved["rounds_past_verdict"]), float(saved["seconds"]),
                    float(saved["margin"]), float(saved["tolerance"]),
                    saved["weights"] if has_weights else None,
                    str(saved["lower_by"]) if has_weights else "",
                    certificate, str(saved["upper_by"]) if has_certificate else "",
                    FastPath(str(saved["fast_path"])) if "fast_path" in saved.files
                    else None)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def save(self, progress: DecisionProgress):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = progress.state
        optional = {}   # what a progress may lack
        if progress.weights is not None:
            optional |= dict(weights=progress.weights, lower_by=progress.lower_by)
        if progress.certificate is not None:
            certificate = progress.certificate
            optional |= dict(certificate_rows=certificate.rows,
                             certificate_slots=certificate.slots,
                             certificate_weights=certificate.weights,
                             upper_by=progress.upper_by)
        if progress.fast_path is not None:
            optional["fast_path"] = str(progress.fast_path)
        save_npz_atomic(
            self.path, rows=progress.rows, slots=progress.slots, lam=state.lam, s=state.s,
            nu=state.nu, iteration=state.iteration, single=state.single,
            rounds=progress.rounds, rounds_past_verdict=progress.rounds_past_verdict,
            seconds=progress.seconds, margin=progress.margin, tolerance=progress.tolerance,
            **optional)


def gather(out: str | os.PathLike, key_columns: list[str]) -> Path | None:
    """Fold the journals of a finished grid into OUT-probes.csv and remove them."""
    folder = journal_folder(out)
    if not folder.exists():
        return None
    frames = []
    target = probes_path(out)
    if target.exists() and target.stat().st_size > 0:
        frames.append(pd.read_csv(target, dtype=str))
    for path in sorted(folder.glob("*.jsonl")):
        rows = [_parsed(line) for line in path.read_text().splitlines()]
        # journal lines written before probes carried the flag are the search's;
        # what the fast path did at them was not recorded (empty)
        rows = [{**dict(zip(key_columns, row["key"])), "boundary": False, "fast_path": "",
                 **row} for row in rows if row]
        if rows:
            frames.append(pd.DataFrame(rows)[key_columns + PROBE_COLUMNS].astype(str))
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        # (an OUT-probes.csv gathered before probes carried the flag has no such column)
        frame["boundary"] = (frame["boundary"].fillna(str(False)) if "boundary" in frame
                             else str(False))
        frame["fast_path"] = (frame["fast_path"].fillna("") if "fast_path" in frame
                              else "")
        frame = frame.drop_duplicates(key_columns + ["p", "boundary"])
        write_csv_atomic(frame, target)
    shutil.rmtree(folder, ignore_errors=True)
    return target if frames else None


def _parsed(line: str) -> dict | None:
    """One journal line, or None for a line cut by a kill."""
    try:
        return json.loads(line)
    except ValueError:
        return None
