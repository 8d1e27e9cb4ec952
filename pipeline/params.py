"""Load params.yaml and check the sections a stage reads, before any work.

Every check raises ParamsError naming the key and the allowed values, so a typo in
params.yaml fails in a second with one line instead of a traceback an hour in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ParamsError

PARAMS_FILE = Path("params.yaml")


def load(path: Path | str = PARAMS_FILE, check: bool = True) -> dict:
    """params.yaml as a dict; with `check`, every section is checked first (see check_all)."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(str(path), "file not found (run from the repository root)")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(str(path), f"not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ParamsError(str(path), "must be a mapping of sections")
    if check:
        check_all(params)
    return params


# Checks load() runs on every params file, added by the CLI (pipeline.cli.PARAMS_CHECKS: each stage's
# section readers), so this utility does not import the stages that use it.
_CHECKS: list = []


def add_check(check) -> None:
    """Have load() run `check(params)` (which raises ParamsError) on every params file it reads."""
    if check not in _CHECKS:
        _CHECKS.append(check)


def check_all(params: dict) -> None:
    """Run every check added with add_check (under the CLI: every stage's, see pipeline.cli)."""
    for check in _CHECKS:
        check(params)


def section(params: dict, name: str, keys=None, prefix: str | None = None, retired: dict | None = None,
            what: str = "key") -> dict:
    """params[name], a mapping ({} when absent). `keys`: every key the section may hold, declared by the reader
    that reads them (adding a key is adding it there); any other key raises ParamsError naming it, the closest
    known key and the list. `prefix`: the enclosing section (train for train.augment). `retired`: {old key: what
    to write instead}, for keys that have moved. `what` the keys are, for the message (key, corpus, model)."""
    full = f"{prefix}.{name}" if prefix else name
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParamsError(full, f"must be a mapping, got {value!r}")
    if keys is not None:
        check_keys(value, full, keys, retired, what)
    return value


def check_keys(mapping: dict, prefix: str, keys, retired: dict | None = None, what: str = "key") -> None:
    """ParamsError for the first key of `mapping` not in `keys` (a typo keeps no default silently)."""
    for key in mapping:
        if key in keys:
            continue
        if retired and key in retired:
            raise ParamsError(f"{prefix}.{key}", retired[key])
        raise ParamsError(f"{prefix}.{key}", unknown(key, keys, f"{prefix} takes", what))


def unknown(key, known, takes: str, what: str = "key") -> str:
    """'unknown key (did you mean speaker_norm?); train takes: epochs, ...'."""
    import difflib

    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown {what}{hint}; {takes}: {', '.join(map(str, known)) or 'none'}"


def choice(sec: dict, key: str, prefix: str, allowed, default=None) -> Any:
    value = sec.get(key, default)
    if value not in allowed:
        raise ParamsError(f"{prefix}.{key}", f"{value!r} is not one of: {', '.join(map(str, allowed))}")
    return value


def number(sec: dict, key: str, prefix: str, default=None, lo=None, hi=None, integer=False,
           lo_open=False, hi_open=False, allow_none=False) -> Any:
    value = sec.get(key, default)
    if value is None and allow_none:
        return None
    if isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as a string, and so does `dvc exp run -S`
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            pass
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise ParamsError(f"{prefix}.{key}", f"must be {kind}, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ParamsError(f"{prefix}.{key}", f"must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ParamsError(f"{prefix}.{key}", f"must be {'<' if hi_open else '<='} {hi}, got {value!r}")
    return value


def boolean(sec: dict, key: str, prefix: str, default=False) -> bool:
    value = sec.get(key, default)
    if not isinstance(value, bool):
        raise ParamsError(f"{prefix}.{key}", f"must be true or false, got {value!r}")
    return value


def string_list(sec: dict, key: str, prefix: str, allowed=None) -> list[str]:
    value = sec.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParamsError(f"{prefix}.{key}", f"must be a list of names, got {value!r}")
    if allowed is not None:
        for v in value:
            if v not in allowed:
                raise ParamsError(f"{prefix}.{key}", f"{v!r} is not one of: {', '.join(allowed)}")
    return value


def seed_list(sec: dict, key: str, prefix: str, default=(42,)) -> tuple[int, ...]:
    """A list of training seeds (a bare integer is a list of one), each in 0..2**32-1."""
    seeds = sec.get(key, list(default))
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2 ** 32 for s in seeds)):
        raise ParamsError(f"{prefix}.{key}", f"must be a non-empty list of integer seeds in 0..2**32-1 "
                                             f"(training seeds), got {seeds!r}")
    return tuple(seeds)


def workers(sec: dict, prefix: str) -> int:
    """`<prefix>.workers`: processes for per-file work; 0 = one per CPU this process may use."""
    return number(sec, "workers", prefix, default=0, lo=0, integer=True) or available_cpus()


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: taskset, a cpuset, a batch scheduler's share),
    not the machine's count (os.cpu_count), which over-subscribes a process given part of a machine."""
    import os

    if hasattr(os, "process_cpu_count"):  # Python 3.13+: the affinity mask (and PYTHON_CPU_COUNT)
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1
