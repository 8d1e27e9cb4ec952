"""Where the data stages' per-file work runs: the local process pool, or a Dask cluster when one is named.

`compute.scheduler` in params.yaml (or DASK_SCHEDULER_ADDRESS) names a running Dask scheduler,
e.g. tcp://10.0.0.5:8786; null = the local pool (pipeline.parallel). Either way `imap` yields results in
the order of the items, so the stage, not the engine, fixes the output: render builds its shard plan from the
sorted plan and writes every shard here, on the machine that runs `dvc repro` (DVC 3 has no external outputs),
from rows the workers send back. Shard names and bytes are the same whichever engine rendered them.

Workers read the input files by the path in the plan, from the repository directory of this process:
the repository (at least data/) must be at the same path on every worker, e.g. a shared mount.
A task renders a batch of `compute.batch_files` files: a file is ~3 ms of work for the image alone, ~0.1-0.3 s
with the openSMILE functionals (docs/performance.md), and only the clips the render cache lacks are sent at
all; a Dask task costs milliseconds of scheduling and round trip (~11 ms measured by bench/bench_dask.py on a
loaded 2-core machine), so one image-only file per task would spend more on the engine than on the work.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from pipeline.errors import ParamsError, UserError
from pipeline.params import number, section

ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"
RETRIES = 2  # a task whose worker died (or raised) is re-run this many times before the stage fails
_PREFIXES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")


@dataclass(frozen=True)
class ComputeConfig:
    scheduler: str | None  # Dask scheduler address; None = local process pool
    batch_files: int  # files per Dask task

    @classmethod
    def from_params(cls, params: dict) -> "ComputeConfig":
        sec = section(params, "compute", keys=("scheduler", "batch_files"))
        address = sec.get("scheduler")
        if address is None:
            address = os.environ.get(ENV_SCHEDULER) or None
        if address is not None and (not isinstance(address, str) or not address.startswith(_PREFIXES)):
            raise ParamsError("compute.scheduler", f"must be null or a Dask scheduler address such as "
                                                   f"tcp://host:8786, got {address!r}")
        return cls(scheduler=address,
                   batch_files=number(sec, "batch_files", "compute", default=64, lo=1, integer=True))

    def describe(self, workers: int) -> str:
        return f"Dask cluster {self.scheduler}" if self.scheduler else f"{workers} local processes"


def imap(func: Callable, items: Iterable, workers: int, desc: str, compute: ComputeConfig | None = None,
         unit: str = "file", chunksize: int = 8, initializer=None, initargs=()) -> Iterator:
    """Ordered map of func over items: on the Dask cluster `compute` names, else in `workers` local processes.

    func and initializer must be importable module-level functions; func should return its errors (the
    stages quarantine them) rather than raise: a raised exception fails the stage on either engine.
    """
    if compute is None or compute.scheduler is None:
        from pipeline.parallel import imap as local_imap

        yield from local_imap(func, items, workers, desc, unit=unit, chunksize=chunksize,
                              initializer=initializer, initargs=initargs)
        return
    yield from _dask_imap(func, list(items), compute, desc, unit, initializer, initargs)


def _dask_imap(func, items: list, compute: ComputeConfig, desc: str, unit: str, initializer, initargs) -> Iterator:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UserError(f"compute.scheduler is {compute.scheduler} but Dask is not installed: "
                        f"pip install -e '.[dask]'") from None
    from tqdm import tqdm

    if not items:
        return
    try:
        client = Client(compute.scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise UserError(f"cannot reach the Dask scheduler {compute.scheduler} (compute.scheduler or "
                        f"{ENV_SCHEDULER}): {exc}") from None
    size = compute.batch_files
    n_batches = -(-len(items) // size)
    # At most `window` batches between submitted and yielded: enough tasks to keep every worker thread busy,
    # and a bound on the results held here waiting for an earlier batch (results are yielded in order), so
    # memory stays flat whatever the corpus size and however long one slow batch holds the others back.
    window = max(2, 2 * sum(client.nthreads().values()))
    bar = tqdm(total=len(items), desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5)
    context = (os.getcwd(), initializer, initargs)
    run_id = uuid.uuid4().hex[:12]
    index_of: dict[str, int] = {}  # task key -> batch number, tasks in flight only
    ready: dict[int, list] = {}  # finished batches waiting for an earlier one
    submitted = next_index = 0

    def batch(index: int) -> list:
        return items[index * size:(index + 1) * size]

    def top_up(done) -> None:
        nonlocal submitted
        while submitted < n_batches and submitted - next_index < window:
            key = f"{func.__name__}-{run_id}-{submitted}"
            index_of[key] = submitted
            done.add(client.submit(_run_batch, func, batch(submitted), context, key=key, retries=RETRIES))
            submitted += 1

    try:
        done = as_completed([], loop=client.loop)
        top_up(done)
        for future in done:
            index = index_of.pop(future.key)
            ready[index] = future.result()  # re-raises a task's error after its retries
            bar.update(len(ready[index]))
            future.release()
            while next_index in ready:
                yield from ready.pop(next_index)
                next_index += 1
            top_up(done)
    finally:
        bar.close()
        client.close()


_INITIALISED: set = set()


def _run_batch(func, batch: list, context: tuple) -> list:
    """On a worker: run func over one batch, in the driver's working directory, with BLAS on one thread."""
    from pipeline.parallel import pin_blas_threads

    cwd, initializer, initargs = context
    previous = os.getcwd()
    os.chdir(cwd)  # the plan's relative paths are relative to the repository root; back after the batch
    try:
        token = (getattr(initializer, "__qualname__", None), repr(initargs))
        if token not in _INITIALISED:  # once per worker process per configuration, as the pool's initializer
            pin_blas_threads()
            if initializer is not None:
                initializer(*initargs)
            _INITIALISED.add(token)
        return [func(item) for item in batch]
    finally:
        os.chdir(previous)
