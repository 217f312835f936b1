"""Instances: the facts to store. Generation (seeded, nested), files, validation.

An instance is n inputs x_i (rows of ``inputs``), m targets y_j (rows of
``targets``), an assignment t(i) and, optionally, per-input competitors
c_ik (``competitors``, n x k x d_out). Input i must score its own target
y_t(i) above every *competitor*: the other targets y_j, j != t(i), or, when
``competitors`` is given, its own c_i1..c_ik (the decoupled model).

This module needs no solver: it is pure numpy.
"""

from __future__ import annotations

import csv
import os
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_info

from feasibility.core.errors import InputError
from feasibility.core.files import save_npz_atomic
from feasibility.core.memory import physical_memory

MODELS = ("coupled", "decoupled")
DISTRIBUTIONS = ("gaussian", "sphere")
NPZ_KEYS = {"inputs", "targets", "assignment", "competitors", "subjects", "answers"}
#: optional text keys: one subject per fact, one answer per target (from `embed`)
TEXT_KEYS = ("subjects", "answers")

# -- RNG streams: every random draw of the package, in one table --------------
# Each draw comes from np.random.default_rng([key, TAG, ...]); the tag, the
# second word, keeps the purposes apart. NumPy's SeedSequence pads a short key
# with zeros ([k, 2] draws what [k, 2, 0, 0] draws), so two keys can coincide
# only where their tags do. Changing any value here changes committed results.
#: generate: x_i then y_i of fact i, from [seed, 0, d, i]
FACT_STREAM = 0
#: generate, decoupled model: c_i1, c_i2, ... of fact i, from [seed, 1, d, i]
COMPETITOR_STREAM = 1
#: file_order: the shuffle k >= 1 of a file's facts, from [k, 2]
SHUFFLE_STREAM = 2
#: science.twolayer: the frozen first layer, from [seed, 3, d_in, h]
TWOLAYER_STREAM = 3
#: capacity.projection: random facts of a file's shape, from [shuffle, 3, d_in, d_out].
#: The same tag as TWOLAYER_STREAM (kept: results/twolayer.csv and the *-dims.csv
#: reproduce from it). The two keys coincide when h = d_out and seed = shuffle;
#: they cannot collide in a run: the first layer is drawn only by the twolayer
#: experiment, the surrogate only by a file's dims run, no command does both, and
#: each is independent of what it meets (facts: tags 0 and 1; a file: no RNG).
SURROGATE_STREAM = 3
#: core.synthetic.embedding_like: spectra and draws, from [seed, 7, d, n, answers]
EMBEDDING_LIKE_STREAM = 7
RNG_STREAMS = {"fact": FACT_STREAM, "competitor": COMPETITOR_STREAM,
               "shuffle": SHUFFLE_STREAM, "twolayer": TWOLAYER_STREAM,
               "surrogate": SURROGATE_STREAM, "embedding_like": EMBEDDING_LIKE_STREAM}


#: Entries must be 0 or have magnitude in [MIN_MAGNITUDE, MAX_MAGNITUDE] (per
#: row: its largest entry). Norms and products of norms are squared in float64,
#: so values outside this range would overflow to inf or underflow to 0 and make
#: the certificates wrong. Verdicts do not depend on scale: rescale the data.
MIN_MAGNITUDE, MAX_MAGNITUDE = 1e-100, 1e100


def _as_float_array(value, name: str, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InputError(f"{name}: not a rectangular array ({str(exc).splitlines()[0]})") from None
    if array.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected real numbers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-D array, got shape {array.shape}")
    if array.size == 0:
        raise InputError(f"{name}: empty array (shape {array.shape})")
    # a read-only view: prefixes share memory with their family, and the
    # caller's own array is never modified
    array = array.astype(np.float64, copy=False).view()
    # reductions only, no temporary the size of the array (decoupled competitors
    # are p^2 d floats): a sum is finite unless some entry is not, or it
    # overflowed, and only then is each entry checked
    with np.errstate(over="ignore", invalid="ignore"):
        total = array.sum()
    if not np.isfinite(total) and not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise InputError(f"{name}: contains NaN or infinite values "
                         f"(first at index {tuple(int(k) for k in bad)})")
    peak = np.maximum(array.max(axis=-1), -array.min(axis=-1))
    if peak.max() > MAX_MAGNITUDE:
        raise InputError(f"{name}: values of magnitude {peak.max():.3g} > {MAX_MAGNITUDE:g} "
                         f"would overflow; rescale (verdicts do not depend on scale)")
    small = (peak > 0) & (peak < MIN_MAGNITUDE)
    if small.any():
        raise InputError(f"{name}: a nonzero row with largest magnitude {peak[small].min():.3g}"
                         f" < {MIN_MAGNITUDE:g} would underflow; rescale (verdicts do not "
                         f"depend on scale)")
    return array


def _pick(texts: tuple[str, ...] | None, index) -> tuple[str, ...] | None:
    return None if texts is None else tuple(texts[int(k)] for k in index)


@dataclass(frozen=True, eq=False)
class Instance:
    """A validated set of facts. Arrays are float64 and read-only."""

    inputs: np.ndarray
    targets: np.ndarray
    assignment: np.ndarray | None = None
    competitors: np.ndarray | None = None
    name: str = ""
    #: optional texts (from `embed`): subject of each fact (n), answer of each target (m)
    subjects: tuple[str, ...] | None = None
    answers: tuple[str, ...] | None = None
    # not an __init__ field: dataclasses.replace(instance, inputs=...) starts an
    # empty cache instead of sharing the old instance's constraint norms
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        inputs = _as_float_array(self.inputs, "inputs", 2)
        targets = _as_float_array(self.targets, "targets", 2)
        n, m = len(inputs), len(targets)
        if self.assignment is None:
            if n != m:
                raise InputError(
                    f"assignment missing: needs as many inputs as targets, got {n} and {m}")
            assignment = np.arange(n)
        else:
            raw = np.asarray(self.assignment)
            if raw.dtype.kind not in "biu" and not (
                    raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw))):
                raise InputError(f"assignment: expected integers, got dtype {raw.dtype}")
            if raw.shape != (n,):
                raise InputError(f"assignment: expected shape ({n},), got {raw.shape}")
            assignment = raw.astype(np.int64)
            if assignment.min() < 0 or assignment.max() >= m:
                raise InputError(f"assignment: values must lie in [0, {m}), "
                                 f"got range [{assignment.min()}, {assignment.max()}]")
        competitors = None
        if self.draws_competitors:
            competitors = self.competitors  # drawn from the generator's streams: finite
        elif self.competitors is not None:
            competitors = _as_float_array(self.competitors, "competitors", 3)
        if competitors is not None:
            if competitors.shape[0] != n or competitors.shape[2] != targets.shape[1]:
                raise InputError(f"competitors: expected shape ({n}, k, {targets.shape[1]}), "
                                 f"got {competitors.shape}")
        elif m < 2:
            raise InputError("needs at least two targets (or explicit competitors): "
                             "with one target there is nothing to separate")
        for array in (inputs, targets, assignment, competitors):
            if isinstance(array, np.ndarray):
                array.setflags(write=False)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "assignment", assignment)
        object.__setattr__(self, "competitors", competitors)
        object.__setattr__(self, "subjects", _texts(self.subjects, "subjects", n))
        object.__setattr__(self, "answers", _texts(self.answers, "answers", m))

    # -- shape ---------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.inputs.shape[0]

    @property
    def m(self) -> int:
        return self.targets.shape[0]

    @property
    def d_in(self) -> int:
        return self.inputs.shape[1]

    @property
    def d_out(self) -> int:
        return self.targets.shape[1]

    @property
    def decoupled(self) -> bool:
        return self.competitors is not None

    @property
    def draws_competitors(self) -> bool:
        """Whether each pass draws the competitors again (DrawnCompetitors)."""
        return isinstance(self.competitors, DrawnCompetitors)

    @property
    def n_slots(self) -> int:
        """Competitor slots per input: m target slots (own one masked), or k."""
        return self.competitors.shape[1] if self.decoupled else self.m

    @property
    def n_constraints(self) -> int:
        return self.n * (self.n_slots if self.decoupled else self.m - 1)

    # -- constraints ---------------------------------------------------------
    def own_targets(self) -> np.ndarray:
        return self.targets[self.assignment]

    def slot_mask(self) -> np.ndarray:
        """n x n_slots boolean: True where (i, slot) is a constraint."""
        mask = np.ones((self.n, self.n_slots), dtype=bool)
        if not self.decoupled:
            mask[np.arange(self.n), self.assignment] = False
        return mask

    def differences(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """u_k = y_t(i) - competitor, one row per constraint (rows[k], slots[k])."""
        u = self.targets[self.assignment[rows]]  # a new array: subtract in place
        u -= self.competitors[rows, slots] if self.decoupled else self.targets[slots]
        return u

    def constraint_norms(self) -> np.ndarray:
        """n x n_slots matrix of ||a_ij||_F = ||x_i|| ||y_t(i) - c_ij|| (cached)."""
        if "norms" not in self._cache:
            own = self.own_targets()
            if self.decoupled:
                dist = np.concatenate([np.linalg.norm(own[rows, None, :] - block, axis=2)
                                       for rows, block in self.competitor_blocks()])
            else:
                sq = np.sum(self.targets**2, axis=1)
                gram = self.targets @ self.targets.T
                d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * gram, 0.0)
                # the Gram form cancels for nearly equal targets: recompute those
                # distances directly, so that only identical targets give 0
                close = np.nonzero(d2 <= 1e-6 * (sq[:, None] + sq[None, :]))
                diff = self.targets[close[0]] - self.targets[close[1]]
                d2[close] = np.einsum("ij,ij->i", diff, diff)
                # exact zeros for identical targets, not rounding noise
                _, label = np.unique(self.targets, axis=0, return_inverse=True)
                d2[label[:, None] == label[None, :]] = 0.0
                dist = np.sqrt(d2)[self.assignment]
            self._cache["norms"] = np.linalg.norm(self.inputs, axis=1)[:, None] * dist
        return self._cache["norms"]

    def scores(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each input's own score y_t(i)^T W x_i (n) and its score against every
        slot (n x n_slots; meaningful only where slot_mask() is True).

        One matrix product over all constraints: Z = X W^T, then scores.
        """
        Z = self.inputs @ np.asarray(W, dtype=np.float64).T
        own = np.einsum("ij,ij->i", Z, self.own_targets())
        if self.decoupled:
            return own, np.concatenate([np.einsum("ir,ikr->ik", Z[rows], block)
                                        for rows, block in self.competitor_blocks()])
        return own, Z @ self.targets.T

    def raw_margins(self, W: np.ndarray) -> np.ndarray:
        """n x n_slots matrix of <a_ij, W>; +inf where (i, slot) is no constraint."""
        own, scores = self.scores(W)
        margins = own[:, None] - scores
        margins[~self.slot_mask()] = np.inf
        return margins

    def combination(self, weights: np.ndarray) -> np.ndarray:
        """sum_ij weights_ij a_ij, a d_out x d_in memory, for an n x n_slots
        matrix of weights that is zero where slot_mask() is False: the adjoint
        of raw_margins, <W, combination(w)> = sum_ij w_ij <a_ij, W>."""
        weights = np.asarray(weights, dtype=np.float64)
        U = self.own_targets() * weights.sum(axis=1)[:, None]
        if self.decoupled:
            for rows, block in self.competitor_blocks():
                U[rows] -= np.einsum("ik,ikr->ir", weights[rows], block)
        else:
            U -= weights @ self.targets
        return U.T @ self.inputs

    def competitor_blocks(self):
        """(rows, competitors of those rows) pairs covering a decoupled instance,
        COMPETITOR_BLOCK_BYTES at a time: views where the competitors are stored
        (so that no pass makes a temporary their size: at d = 96, p = 1,110 the
        norms' differences did, 0.9 GB), drawn in turn where they are
        DrawnCompetitors."""
        if self.draws_competitors:
            return self.competitors.blocks()
        return ((rows, self.competitors[rows])
                for rows in _row_blocks(self.n, self.competitors.shape[1], self.d_out))

    # -- families ------------------------------------------------------------
    def prefix(self, p: int) -> "Instance":
        """The first p facts, with the targets they use (relabelled in order).

        In the decoupled shape (k = n - 1 competitors) input i keeps its first
        p - 1 competitors, so the family is nested: the constraints of the
        prefix of size p are a subset of those of size p + 1.
        """
        if not 1 <= p <= self.n:
            raise InputError(f"prefix size must lie in [1, {self.n}], got {p}")
        rows = np.arange(p)
        competitors = None
        if self.decoupled:
            k = self.competitors.shape[1]
            keep = p - 1 if k == self.n - 1 else k
            if keep < 1:
                raise InputError("a decoupled prefix needs p >= 2")
            competitors = self.competitors[:p, :keep]
            return Instance(self.inputs[:p], self.targets[self.assignment[:p]], None,
                            competitors, self.name, *self._texts_of(rows,
                                                                     self.assignment[rows]))
        return self.subset(rows)

    def subset(self, rows: np.ndarray) -> "Instance":
        """The facts `rows`, in that order, with the targets they use (relabelled
        in order of their labels); decoupled facts keep all their competitors."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.decoupled:
            return Instance(self.inputs[rows], self.targets[self.assignment[rows]], None,
                            self.competitors[rows], self.name,
                            *self._texts_of(rows, self.assignment[rows]))
        if np.array_equal(self.assignment[rows], rows) and np.array_equal(
                rows, np.arange(len(rows))):
            # the first facts of a one-target-per-fact instance: no relabelling
            return Instance(self.inputs[rows], self.targets[rows], None, None, self.name,
                            *self._texts_of(rows, rows))
        used = np.unique(self.assignment[rows])
        relabel = np.searchsorted(used, self.assignment[rows])
        return Instance(self.inputs[rows], self.targets[used], relabel, None, self.name,
                        *self._texts_of(rows, used))

    def permuted(self, order: np.ndarray) -> "Instance":
        """The same facts in another order (targets keep their labels)."""
        order = np.asarray(order)
        competitors = None if self.competitors is None else self.competitors[order]
        if competitors is not None:
            return Instance(self.inputs[order], self.targets[self.assignment[order]],
                            None, competitors, self.name,
                            *self._texts_of(order, self.assignment[order]))
        return Instance(self.inputs[order], self.targets, self.assignment[order], None,
                        self.name, *self._texts_of(order, np.arange(self.m)))

    def _texts_of(self, rows, targets) -> tuple:
        """(subjects of these facts, answers of these targets), None where absent."""
        return _pick(self.subjects, rows), _pick(self.answers, targets)

    def describe(self) -> dict:
        return {"n": self.n, "m": self.m, "d_in": self.d_in, "d_out": self.d_out,
                "competitors_per_input": self.n_slots - (0 if self.decoupled else 1),
                "constraints": self.n_constraints}


# -- generation ------------------------------------------------------------------
def check_family(models: str | Sequence[str] = (), distribution: str | None = None,
                 seed: int | None = None, seed_name: str = "seed") -> None:
    """Refuse, with InputError, what ``generate`` cannot draw: a model outside
    MODELS (one name or a list), a distribution outside DISTRIBUTIONS, a negative
    seed. Arguments left out are not checked; ``seed_name`` names the seed in the
    message (the CLI says --seed0).

    Every command and grid validates here, so all of them refuse the same input
    with the same words.
    """
    for model in [models] if isinstance(models, str) else models:
        if model not in MODELS:
            raise InputError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    if distribution is not None and distribution not in DISTRIBUTIONS:
        raise InputError(f"unknown distribution {distribution!r}: "
                         f"choose one of {', '.join(DISTRIBUTIONS)}")
    if seed is not None and int(seed) < 0:
        raise InputError(f"{seed_name} must be a non-negative integer, got {seed}")


def _draw(rng: np.random.Generator, shape, d: int, distribution: str) -> np.ndarray:
    z = rng.standard_normal(shape)
    if distribution == "sphere":
        return z / np.linalg.norm(z, axis=-1, keepdims=True)
    return z / np.sqrt(d)


def competitor_rows(d: int, seed: int, i: int, k: int,
                    distribution: str = "gaussian") -> np.ndarray:
    """The first k decoupled competitors of fact i (k x d), from fact i's own
    stream: what ``generate('decoupled', ...)`` holds, without building the whole
    instance (p x p x d floats is 3.5 GB at d = 256, p = 1300)."""
    return _draw(np.random.default_rng([seed, COMPETITOR_STREAM, d, i]), (k, d), d,
                 distribution)


#: a generated decoupled prefix stores its competitors (p (p - 1) d float64)
#: where they take at most this fraction of physical memory, and draws them
#: from their streams at each pass where they would take more: at d = 192
#: (p* ~ 3,900) they would be 23 GB. Stored is faster: a pass over drawn ones
#: costs ~4 ms a fact at p = 1,818, d = 128 (7 s against 0.3 s; the IPM makes
#: one an iteration). On 24 GiB every committed search (d <= 128, 3.4 GB at
#: most) stores them
STORED_COMPETITORS_FRACTION = 0.25
#: a pass over decoupled competitors takes this many bytes of them at a time
COMPETITOR_BLOCK_BYTES = 2**26


def _row_blocks(n: int, k: int, d: int):
    """Slices of consecutive facts, COMPETITOR_BLOCK_BYTES of their k
    competitors of dimension d at a time, covering n facts."""
    step = max(1, COMPETITOR_BLOCK_BYTES // (8 * k * d))
    return (slice(start, min(start + step, n)) for start in range(0, n, step))


@dataclass(frozen=True, eq=False)
class DrawnCompetitors:
    """The first k decoupled competitors of generated facts `facts`, an
    n x k x d array in all but storage: each read draws them again from the
    facts' own streams (``competitor_rows``), so they are the values
    ``generate`` stores, bit for bit, in p d (not p^2 d) bytes.

    A pass over all of them (Instance.scores, raw_margins, combination) draws
    n k d normals, block by block. Indexing follows numpy where Instance uses
    it: ``[rows, slots]`` (two integer arrays) returns those competitors as a
    len(rows) x d array; ``[rows]`` and ``[:p, :k]`` return DrawnCompetitors;
    ``np.asarray`` draws the whole array.
    """

    d: int
    seed: int
    facts: np.ndarray
    k: int
    distribution: str = "gaussian"

    ndim = 3

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.facts), self.k, self.d)

    def _rows(self, index, k: int | None = None, threads: int = 1) -> np.ndarray:
        """The competitors of rows `index` (their first k), drawn by `threads`."""
        k = self.k if k is None else k
        index = list(index)
        out = np.empty((len(index), k, self.d))

        def draw(rows):
            for row in rows:
                out[row] = competitor_rows(self.d, self.seed, int(self.facts[index[row]]), k,
                                           self.distribution)

        threads = min(len(index), threads)
        if threads <= 1:
            draw(range(len(index)))
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(draw, np.array_split(np.arange(len(index)), threads)))
        return out

    def blocks(self):
        """(rows, their competitors) for consecutive blocks of COMPETITOR_BLOCK_BYTES."""
        threads = _blas_threads()
        for rows in _row_blocks(len(self.facts), self.k, self.d):
            yield rows, self._rows(range(rows.start, rows.stop), threads=threads)

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and all(
                isinstance(part, slice) for part in key):
            rows, slots = key
            if slots.start not in (None, 0) or slots.step not in (None, 1):
                raise IndexError("DrawnCompetitors keep each fact's first k competitors")
            k = len(range(self.k)[slots])
            return DrawnCompetitors(self.d, self.seed, self.facts[rows], k, self.distribution)
        if isinstance(key, tuple) and len(key) == 2:
            rows, slots = (np.asarray(part, dtype=np.int64) for part in key)
            if rows.shape != slots.shape or rows.ndim != 1:
                raise IndexError("DrawnCompetitors[rows, slots] takes two 1-D integer arrays")
            if len(rows) and (slots.min() < 0 or slots.max() >= self.k):
                raise IndexError(f"competitor slot out of range [0, {self.k})")
            out = np.empty((len(rows), self.d))
            # each fact's stream is drawn once, up to the last slot asked of it
            # (its first competitors do not depend on how many are drawn)
            order = np.argsort(rows, kind="stable")
            used, starts = np.unique(rows[order], return_index=True)
            for row, wanted in zip(used, np.split(order, starts[1:])):
                drawn = self._rows([row], int(slots[wanted].max()) + 1)[0]
                out[wanted] = drawn[slots[wanted]]
            return out
        if np.ndim(key) == 0 and not isinstance(key, slice):
            return self._rows([range(len(self.facts))[key]])[0]
        return DrawnCompetitors(self.d, self.seed, self.facts[key], self.k, self.distribution)

    def __len__(self) -> int:
        return len(self.facts)

    def __array__(self, dtype=None, copy=None):
        array = self._rows(range(len(self.facts)), threads=_blas_threads())
        return array if dtype is None else array.astype(dtype, copy=False)


def _blas_threads() -> int:
    """The threads BLAS may use in this process (threadpoolctl's view; 1 if none):
    as many draw DrawnCompetitors in parallel (numpy draws without the GIL;
    2.1x on 2 cores)."""
    return max([pool["num_threads"] for pool in threadpool_info()
                if pool.get("user_api") == "blas"] or [1])


def generate(model: str, d: int, p: int, seed: int, distribution: str = "gaussian") -> Instance:
    """A random instance, reproducible bit for bit from (d, seed, distribution).

    RNG scheme: fact i draws x_i then y_i from
    ``default_rng([seed, 0, d, i])`` and, in the decoupled model, its
    competitors c_i1, c_i2, ... in order from ``default_rng([seed, 1, d, i])``.
    Streams are per fact, so the instance of size p is exactly the prefix of any
    larger one with the same seed, and the coupled and decoupled models share
    their inputs and targets (common random numbers).
    """
    return _generated(model, d, p, seed, distribution, store_competitors=True)


def _generated(model: str, d: int, p: int, seed: int, distribution: str,
               store_competitors: bool) -> Instance:
    """generate's instance, its decoupled competitors stored or DrawnCompetitors."""
    check_family(model, distribution, seed)
    if int(d) < 1 or int(p) < 2:
        raise InputError(f"need d >= 1 and p >= 2, got d={d}, p={p}")
    d, p, seed = int(d), int(p), int(seed)
    X = np.empty((p, d))
    Y = np.empty((p, d))
    for i in range(p):
        fact = _draw(np.random.default_rng([seed, FACT_STREAM, d, i]), (2, d), d, distribution)
        X[i], Y[i] = fact
    C = None
    if model == "decoupled":
        C = DrawnCompetitors(d, seed, np.arange(p), p - 1, distribution)
        if store_competitors:
            C = np.asarray(C)
    return Instance(X, Y, None, C, name=f"{model}-d{d}-p{p}-seed{seed}-{distribution}")


@dataclass(frozen=True)
class GeneratedFamily:
    """The nested family generate(model, d, p, seed) for p <= p_max, each prefix
    drawn when asked for: what a capacity bisection needs of its `full` instance
    (n, decoupled, assignment, prefix) without holding the largest one. The
    decoupled competitors of p_max facts would take p_max^2 d 8 bytes (9 GB at
    d = 128), of the prefix probed p^2 d 8 (3.5 GB at p* = 1,850)."""

    model: str
    d: int
    p_max: int
    seed: int
    distribution: str = "gaussian"

    def __post_init__(self):
        check_family(self.model, self.distribution, self.seed)

    @property
    def n(self) -> int:
        return self.p_max

    @property
    def decoupled(self) -> bool:
        return self.model == "decoupled"

    @property
    def assignment(self) -> np.ndarray:
        return np.arange(self.p_max)

    @property
    def d_in(self) -> int:
        return self.d

    @property
    def d_out(self) -> int:
        return self.d

    def prefix(self, p: int) -> Instance:
        """generate(model, d, p, seed, distribution), its decoupled competitors
        drawn on demand where storing them would pass STORED_COMPETITORS_FRACTION
        of physical memory."""
        if not 2 <= p <= self.p_max:
            raise InputError(f"prefix size must be in [2, {self.p_max}], got {p}")
        stored = 8 * p * (p - 1) * self.d <= STORED_COMPETITORS_FRACTION * physical_memory()
        return _generated(self.model, self.d, p, self.seed, self.distribution, stored)


# -- files -----------------------------------------------------------------------
def load(path: str | os.PathLike) -> Instance:
    """Read and validate an instance from ``.npz`` or ``.csv``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a .npz or .csv file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path)
    raise InputError(f"{path}: unknown file type {suffix!r}, expected .npz or .csv")


def _texts(value, name: str, count: int) -> tuple[str, ...] | None:
    """None, or `count` strings (a tuple: hashable, read-only)."""
    if value is None:
        return None
    texts = np.asarray(value)
    if texts.dtype.kind not in "US" or texts.shape != (count,):
        raise InputError(f"{name}: expected {count} strings, got dtype {texts.dtype} "
                         f"and shape {texts.shape}")
    return tuple(str(text) for text in texts.tolist())


def _load_npz(path: Path) -> Instance:
    try:
        with open(path, "rb") as handle:
            data = np.load(handle, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise InputError(f"{path}: holds a single array (.npy format), expected an "
                                 f".npz archive with keys 'inputs' and 'targets'")
            keys = set(data.files)
            unknown = keys - NPZ_KEYS
            if unknown:
                raise InputError(f"{path}: unknown keys {sorted(unknown)}; "
                                 f"expected {sorted(NPZ_KEYS)}")
            missing = {"inputs", "targets"} - keys
            if missing:
                raise InputError(f"{path}: missing keys {sorted(missing)}")
            arrays = {key: data[key] for key in keys}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile,
            zlib.error) as exc:
        raise InputError(f"{path}: not a readable .npz file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'truncated'})") from None
    try:
        return Instance(arrays["inputs"], arrays["targets"], arrays.get("assignment"),
                        arrays.get("competitors"), name=path.stem,
                        subjects=arrays.get("subjects"), answers=arrays.get("answers"))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _load_csv(path: Path) -> Instance:
    """CSV form: a header naming columns x0..x{D-1} then y0..y{E-1}; one fact per row.

    Facts whose target rows are identical share one target (many-to-one).
    """
    try:
        # utf-8-sig: a byte-order mark (as spreadsheets write) is not part of the header
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    if not rows:
        raise InputError(f"{path}: empty CSV")
    header = [name.strip() for name in rows[0][1]]
    x_cols, y_cols = _csv_columns(header)
    if x_cols is None:
        shown = ",".join(header[:6]) + ("..." if len(header) > 6 else "")
        raise InputError(f"{path}: the first line must be a header naming the columns "
                         f"x0..x{{D-1}} and y0..y{{E-1}} (comma-separated), got {shown!r}")
    body = rows[1:]
    if not body:
        raise InputError(f"{path}: no data rows after the header")
    values = np.empty((len(body), len(header)))
    for k, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise InputError(f"{path}: line {line} has {len(row)} fields, header has {len(header)}")
        for column, text in enumerate(row):
            try:
                values[k, column] = float(text)
            except ValueError:
                raise InputError(f"{path}: line {line}, column {header[column]}: "
                                 f"not a number: {text[:40]!r}") from None
    X, Yfacts = values[:, x_cols], values[:, y_cols]
    targets, assignment = np.unique(Yfacts, axis=0, return_inverse=True)
    if len(targets) == len(Yfacts):
        targets, assignment = Yfacts, None
    try:
        return Instance(X, targets, assignment, None, name=path.stem)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _csv_columns(header: list[str]) -> tuple[list[int] | None, list[int] | None]:
    """Column positions of x0..x{D-1} and y0..y{E-1}, each named exactly once."""
    index: dict[str, dict[int, int]] = {"x": {}, "y": {}}
    for position, name in enumerate(header):
        if len(name) < 2 or name[0] not in index or not name[1:].isdigit():
            return None, None
        number = int(name[1:])
        if number in index[name[0]]:
            return None, None
        index[name[0]][number] = position
    if any(sorted(found) != list(range(len(found))) or not found for found in index.values()):
        return None, None
    return ([index["x"][k] for k in range(len(index["x"]))],
            [index["y"][k] for k in range(len(index["y"]))])


def save(instance: Instance, path: str | os.PathLike) -> Path:
    """Write ``.npz`` (atomically: a reader never sees half a file)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise InputError(f"{path}: instances are written as .npz")
    arrays = {"inputs": instance.inputs, "targets": instance.targets,
              "assignment": instance.assignment}
    if instance.competitors is not None:
        arrays["competitors"] = np.asarray(instance.competitors)
    arrays.update(text_arrays(instance))
    return save_npz_atomic(path, **arrays)


def text_arrays(instance: Instance) -> dict[str, np.ndarray]:
    """The texts an instance carries, as unicode arrays for .npz (no pickling)."""
    texts = {key: getattr(instance, key) for key in TEXT_KEYS}
    return {key: np.array(value, dtype=str) for key, value in texts.items() if value}


def first_contested_prefix(instance: Instance) -> int:
    """The smallest p whose prefix has two distinct answers.

    Shorter prefixes share one answer: nothing to separate, no constraint,
    trivially stored (and not an Instance). The bisection starts here.
    """
    differs = np.flatnonzero(instance.assignment != instance.assignment[0])
    if len(differs) == 0:
        raise InputError("all facts share one answer: nothing to separate")
    return max(2, int(differs[0]) + 1)


def file_order(n: int, shuffle: int) -> np.ndarray:
    """Shuffle k >= 1 is default_rng([k, 2]).permutation(n); 0 is file order."""
    return np.arange(n) if shuffle == 0 else np.random.default_rng(
        [shuffle, SHUFFLE_STREAM]).permutation(n)
