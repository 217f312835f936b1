"""Batch specifications: a `feasibility capacity` run written down as JSON.

A specification is one JSON object whose keys are the long options of
``feasibility capacity`` (lists where the option takes a comma-separated list)::

    {"description": "make run's grid",
     "model": ["coupled", "decoupled"], "d": [8, 12, 16], "seeds": 8, "seed0": 0,
     "distribution": "gaussian", "jobs": 2, "out": "results/capacity.csv"}

Keys: description (free text), model, d, seeds, seed0, distribution, file,
shuffles, dims, out, reference, solver, jobs, executor, scheduler, quiet. Relative paths
are read from the current directory, as on the command line. An option given
on the command line overrides the specification's value. Unknown keys, values
of the wrong type and impossible values (seeds < 1, d < 2, an unknown model,
...) are refused with one line naming the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path

from feasibility.capacity.batch import EXECUTORS
from feasibility.core.errors import InputError
from feasibility.core.instances import check_family

#: what `capacity` uses when neither the command line nor a specification says
DEFAULTS = {"model": ["coupled"], "d": [8, 12, 16], "seeds": 8, "seed0": 0,
            "distribution": "gaussian", "file": None, "shuffles": 0, "dims": None,
            "out": None, "solver": None, "jobs": None, "executor": "local",
            "scheduler": None, "reference": None}
#: keys that describe a random grid, and keys that only apply to --file
GRID_KEYS = ("model", "d", "seeds", "seed0", "distribution", "reference")
FILE_ONLY_KEYS = ("shuffles", "dims")
SPEC_KEYS = ("description", *DEFAULTS, "quiet")


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(value, where):
    values = [value] if _integer(value) else value
    if not isinstance(values, list) or not values or not all(_integer(v) for v in values):
        raise InputError(f"{where}: expected an integer or a non-empty list of integers, "
                         f"got {json.dumps(value)}")
    return values


def _name_list(value, where):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: expected a name or a non-empty list of names, "
                         f"got {json.dumps(value)}")
    return value


def _in_family(where: str, **family):
    """check_family's refusal, prefixed with where in the file it was found."""
    try:
        check_family(**family)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _check_value(key: str, value, where: str):
    """Type and range of one specification value; returns it normalised."""

    def need(condition, expected):
        if not condition:
            raise InputError(f"{where}: expected {expected}, got {json.dumps(value)}")

    if key == "description":
        need(isinstance(value, str), "a string")
    elif key == "model":
        value = _name_list(value, where)
        _in_family(where, models=value)
        need(len(set(value)) == len(value), "each model once")
    elif key in ("d", "dims"):
        value = _int_list(value, where)
        need(all(v >= 2 for v in value), "dimensions >= 2")
        need(len(set(value)) == len(value), "each dimension once")
    elif key in ("seeds", "jobs"):
        need(value is None and key == "jobs" or _integer(value) and value >= 1,
             "an integer >= 1")
    elif key in ("seed0", "shuffles"):
        need(_integer(value) and value >= 0, "an integer >= 0")
    elif key == "distribution":
        need(isinstance(value, str), "a string")
        _in_family(where, distribution=value)
    elif key == "executor":
        need(value in EXECUTORS, f"one of {', '.join(EXECUTORS)}")
    elif key == "out":
        need(isinstance(value, str) and value.lower().endswith(".csv"), "a path ending in .csv")
    elif key == "reference":
        need(value is None or isinstance(value, str) and value.lower().endswith(".csv"),
             "a path ending in .csv, or null")
    elif key == "file":
        need(isinstance(value, str) and value, "a path to a .npz or .csv instance file")
    elif key in ("solver", "scheduler"):
        need(value is None or isinstance(value, str) and value, "a name or null")
    elif key == "quiet":
        need(isinstance(value, bool), "true or false")
    return value


def _no_duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise InputError(f"key {key!r} appears twice")
        seen[key] = value
    return seen


def _no_constants(name):
    raise InputError(f"{name} is not a number JSON allows")


def load_spec(path) -> dict:
    """Read and validate a specification; returns the keys it sets."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a JSON specification")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    try:
        spec = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno})") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    if not isinstance(spec, dict):
        raise InputError(f"{path}: expected a JSON object {{\"key\": value, ...}}, "
                         f"got a {type(spec).__name__}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown keys {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(SPEC_KEYS)}")
    checked = {key: _check_value(key, value, f"{path}: {key!r}") for key, value in spec.items()}
    if checked.get("file") is not None:
        clash = [key for key in GRID_KEYS if key in checked]
        if clash:
            raise InputError(f"{path}: 'file' bisects over a file's facts; remove "
                             f"{', '.join(map(repr, clash))} (random grids only)")
    return checked


def resolve_capacity_args(args):
    """Fill `capacity`'s options: command line, then --spec FILE, then DEFAULTS.

    Options left at None by the parser are taken from the specification; the
    result is validated as a whole (one line, exit 2, on any conflict).
    """
    spec = load_spec(args.spec) if getattr(args, "spec", None) else {}
    explicit = {key for key in DEFAULTS if getattr(args, key, None) is not None}
    explicit |= {key for key in spec if key in DEFAULTS}
    for key, default in DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, spec.get(key, default))
    args.quiet = bool(getattr(args, "quiet", False) or spec.get("quiet", False))
    if args.out is None:
        raise InputError("capacity needs --out FILE.csv (or \"out\" in the --spec file)")
    if args.file is not None:
        clash = [key for key in GRID_KEYS if key in explicit]
        if clash:
            raise InputError(f"--file bisects over a file's facts; remove "
                             f"{', '.join('--' + key for key in clash)} (random grids only)")
    else:
        stray = [key for key in FILE_ONLY_KEYS if key in explicit]
        if stray:
            raise InputError(f"{', '.join('--' + key for key in stray)}: only with --file "
                             f"(for random instances use --d and --seeds)")
    if args.executor == "dask" and not args.scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    if args.scheduler and args.executor != "dask":
        raise InputError(f"--scheduler applies to --executor dask only "
                         f"(executor is {args.executor!r})")
    for key in ("seeds", "shuffles"):
        value = getattr(args, key)
        if not _integer(value) or value < (1 if key == "seeds" else 0):
            raise InputError(f"--{key} must be >= {1 if key == 'seeds' else 0}, got {value}")
    check_family(args.model, args.distribution, args.seed0, seed_name="--seed0")
    return args


__all__ = ["DEFAULTS", "SPEC_KEYS", "load_spec", "resolve_capacity_args"]
