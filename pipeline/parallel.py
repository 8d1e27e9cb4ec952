"""Process-parallel map over files with a progress bar.

On small machines many small matrix products are much slower with multi-threaded BLAS,
so each worker pins BLAS to one thread and we parallelise across files instead.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from typing import Callable, Iterable, Iterator

from tqdm import tqdm

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_blas_threads() -> None:
    for var in _BLAS_VARS:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # threadpoolctl is optional; the env vars cover libraries loaded later
        pass


def _init(initializer, initargs):
    pin_blas_threads()
    if initializer is not None:
        initializer(*initargs)


def imap(func: Callable, items: Iterable, workers: int, desc: str, total: int | None = None,
         unit: str = "file", chunksize: int = 8, initializer=None, initargs=()) -> Iterator:
    """Ordered map of func over items, in `workers` processes (1 = in this process)."""
    items = list(items) if total is None else items
    total = len(items) if total is None else total
    bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5)
    try:
        if workers <= 1:
            _init(initializer, initargs)
            for item in items:
                yield func(item)
                bar.update()
            return
        ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
        with ctx.Pool(workers, initializer=_init, initargs=(initializer, initargs)) as pool:
            for result in pool.imap(func, items, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()
