"""Data stages on a Dask cluster: the same shards, byte for byte, as the local process pool; bad files
quarantined the same way; a worker that dies mid-task is replaced and its task re-run."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from pipeline import ingest, render, render_cache
from pipeline.compute import ComputeConfig, imap
from pipeline.errors import ParamsError
from tests.test_render import params, project  # noqa: F401  (project: a plan of 4 good files and a broken one)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as local:
        yield local.scheduler_address


def _outputs(root: Path) -> dict[str, bytes]:
    files = sorted((root / render.SHARDS).rglob("*.parquet")) + [root / render.QUARANTINE]
    return {str(f.relative_to(root)): f.read_bytes() for f in files}


def test_render_on_dask_writes_the_local_pools_shards_byte_for_byte(project, cluster):
    local = params(shard_rows=2)
    local["features"]["workers"] = 2  # the process pool, not the in-process loop
    render.run(local)
    expected = _outputs(project)
    assert len(expected) >= 4 and "broken.wav" in expected[str(render.QUARANTINE)].decode()
    for path in (project / render.SHARDS).rglob("*.parquet"):
        path.unlink()
    shutil.rmtree(project / render_cache.CACHE_DIR)  # so the cluster computes every clip again
    report = render.run(dict(local, compute={"scheduler": cluster, "batch_files": 2}))
    assert _outputs(project) == expected
    assert report["quarantined"] == 1 and sum(report["images"].values()) == 4
    assert report["computed"]["image"] == 4 and report["cached"]["image"] == 0


def test_ingest_per_file_work_on_dask_matches_the_local_pool(project, cluster):
    audio = sorted((project / "audio").glob("*.wav"))
    jobs = [(str(p), 0.25, -60.0) for p in audio] + [(str(audio[0]),)]  # inspect each; one hashed only
    local = list(imap(ingest._work, jobs, 2, desc="local"))
    on_dask = list(imap(ingest._work, jobs, 2, desc="dask", compute=ComputeConfig(cluster, batch_files=3)))
    assert on_dask == local
    assert "error" in local[audio.index(project / "audio/broken.wav")]
    assert local[-1] == {"content_hash": local[0]["content_hash"]}


def _die_once(item):
    """Kills its worker process the first time it sees item 0 (a crashed worker, not an exception)."""
    marker, value = item
    if value == 0 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return value * value


def test_a_task_whose_worker_dies_is_rerun(cluster, tmp_path):
    items = [(str(tmp_path / "died"), v) for v in range(6)]
    out = list(imap(_die_once, items, 2, desc="dask", compute=ComputeConfig(cluster, batch_files=2)))
    assert out == [v * v for v in range(6)] and (tmp_path / "died").exists()


def test_scheduler_param_and_environment(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert ComputeConfig.from_params({}).scheduler is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786")
    assert ComputeConfig.from_params({}).scheduler == "tcp://10.0.0.5:8786"
    assert ComputeConfig.from_params({"compute": {"scheduler": "tcp://h:1"}}).scheduler == "tcp://h:1"
    with pytest.raises(ParamsError, match="compute.scheduler"):
        ComputeConfig.from_params({"compute": {"scheduler": "host-without-scheme"}})
    with pytest.raises(ParamsError, match="compute.batch_files"):
        ComputeConfig.from_params({"compute": {"batch_files": 0}})


def _slow_head(item):
    """Item 0 waits until `enough` other items have started (or `wait` seconds); every item marks its start."""
    folder, value, enough, wait = item
    Path(folder, f"started-{value}").touch()
    if value == 0:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(os.listdir(folder)) <= enough:
            time.sleep(0.02)
    return value


def test_dask_keeps_a_bounded_number_of_batches_in_flight_behind_a_slow_one(cluster, tmp_path):
    """Results come back in order, so while the first batch is slow the others wait here: with a batch
    submitted for each one finished, every batch of the corpus was run and held in memory behind it."""
    window = 2 * 2  # twice the cluster's worker threads
    items = [(str(tmp_path), v, 3 * window, 3.0) for v in range(60)]
    results = imap(_slow_head, items, 2, desc="dask", compute=ComputeConfig(cluster, batch_files=1))
    assert next(results) == 0
    started = len(os.listdir(tmp_path))  # when the slow head finished: at most a window had been submitted
    assert started <= window, f"{started} batches submitted while the first was still running"
    assert [0, *results] == list(range(60))


def test_workers_zero_uses_the_cpus_this_process_may_use(monkeypatch):
    """`workers: 0` (data, demo, features) and predict's pool: one process per CPU in this process's affinity
    mask (taskset, a cpuset, a batch job's share), not os.cpu_count(), the whole machine."""
    from pipeline import params, predict
    from pipeline.demo_corpus import read_params

    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    everyone = os.sched_getaffinity(0)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    seen = []

    def fake_imap(func, jobs, workers, desc, **kwargs):
        seen.append(workers)
        return iter(())

    monkeypatch.setattr("pipeline.parallel.imap", fake_imap)
    os.sched_setaffinity(0, {min(everyone)})
    try:
        assert params.workers({"workers": 0}, "data") == 1
        assert read_params({"demo": {"workers": 0}})["workers"] == 1
        assert params.workers({"workers": 3}, "features") == 3  # an explicit count is kept
        list(predict.prepared_chunks([Path(f"{i}.wav") for i in range(predict.PARALLEL_FROM)], None, None, "image"))
        assert seen == [1]
    finally:
        os.sched_setaffinity(0, everyone)
