"""Stable seeds derived from a params seed and a name (a corpus, an item id).

Python's hash() is salted per process, so not that: a sha256 of the parts gives the same generator on
every machine and every run, and lets each corpus or item draw independently of the others.
"""
from __future__ import annotations

import hashlib

import numpy as np


def stable_seed(seed: int, *parts: str) -> int:
    digest = hashlib.sha256(":".join([str(seed), *map(str, parts)]).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def stable_rng(seed: int, *parts: str) -> np.random.Generator:
    return np.random.default_rng(stable_seed(seed, *parts))
