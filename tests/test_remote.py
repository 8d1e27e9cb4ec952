"""A shared DVC remote with the run-cache: one machine pushes, another pulls and re-runs nothing.

The remote is a WebDAV server (wsgidav on cheroot, the way dvc-webdav tests itself) on 127.0.0.1 at a free
port, inside this test, stopped when it ends. The pushing side is a copy of the session's reproduced demo repo
(configuring a remote changes it).
"""
import json
import re
import shutil
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.conftest import _run as run_ok, git_repo, own_copy

pytestmark = pytest.mark.slow

DVC = [sys.executable, "-m", "dvc"]
ALWAYS = {"inventory"}  # always_changed: a listing of data/raw, milliseconds; what follows re-runs only if it differs
TIMEOUT = 180  # seconds per dvc command: a hung transfer fails the test instead of the suite


@contextmanager
def webdav_server(directory: Path):
    """Anonymous read-write WebDAV over `directory` on a free loopback port; yields its webdav:// URL."""
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    app = WsgiDAVApp({"host": "127.0.0.1", "port": 0, "provider_mapping": {"/": str(directory)},
                      "simple_dc": {"user_mapping": {"*": True}}, "verbose": 1,
                      "logging": {"enable": False}})
    server = wsgi.Server(bind_addr=("127.0.0.1", 0), wsgi_app=app)
    server.prepare()  # binds: the OS picks the port
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"webdav://127.0.0.1:{server.bind_addr[1]}/"
    finally:
        server.stop()
        thread.join(timeout=10)


def _clone_as_git_would(src: Path, dest: Path, env: dict) -> None:
    """What a colleague gets from git: the files `git add -A` would commit (code, params, dvc.lock,
    metrics/), none of DVC's data or cache."""
    listed = run_ok(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], src, env).stdout
    for name in filter(None, listed.split("\0")):
        if (src / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / name, dest / name)
    git_repo(dest, env, "from the team's git")
    (dest / "data" / "raw").mkdir(parents=True, exist_ok=True)  # as `make repro` does: git keeps no empty dir


def test_pull_with_run_cache_then_repro_recomputes_nothing(repo, tmp_path):
    pusher, env = own_copy(repo, tmp_path / "team")
    assert set(json.loads(run_ok([*DVC, "status", "--json"], pusher, env).stdout)) <= ALWAYS
    stages = set(yaml.safe_load((pusher / "dvc.yaml").read_text())["stages"]) - ALWAYS
    puller = tmp_path / "colleague"
    _clone_as_git_would(pusher, puller, env)
    (tmp_path / "remote").mkdir()
    with webdav_server(tmp_path / "remote") as url:
        for side in (pusher, puller):  # --local: the URL (a random port) stays out of the committed config
            run_ok([*DVC, "remote", "add", "--local", "-f", "-d", "team", url], side, env)
        run_ok([*DVC, "push", "--run-cache"], pusher, env, timeout=TIMEOUT)
        assert list((tmp_path / "remote" / "runs").iterdir()), "no run-cache entry reached the remote"

        run_ok([*DVC, "pull", "--run-cache"], puller, env, timeout=TIMEOUT)
    log = run_ok([*DVC, "repro"], puller, env, timeout=TIMEOUT).stdout
    assert set(re.findall(r"Running stage '(\w+)'", log)) <= ALWAYS, log
    assert set(re.findall(r"Stage '(\w+)' didn't change", log)) == stages, log
    assert set(json.loads(run_ok([*DVC, "status", "--json"], puller, env).stdout)) <= ALWAYS
    assert (puller / "models/model.keras").read_bytes() == (pusher / "models/model.keras").read_bytes()
    shards = sorted(p.relative_to(pusher) for p in (pusher / "data/processed/shards").rglob("*.parquet"))
    assert shards == sorted(p.relative_to(puller) for p in (puller / "data/processed/shards").rglob("*.parquet"))
    assert shards

    # The run-cache itself: a lock file that does not record a run (a colleague's experiment, another branch)
    # still finds it by command, dependencies and params. DVC keeps no run-cache for a stage with a
    # `cache: false` output that is not a metric or plot (dvc#8738) and pushes no `cache: false` output, so
    # every output of every stage (metrics and reports included) is DVC-cached: the stages that matter
    # (render, train) come back from the team's run-cache, not only the demo.
    expected = {"demo": sorted(p.relative_to(pusher) for p in (pusher / "data/demo").rglob("*.wav")),
                "render": {p.name: p.read_bytes() for p in (pusher / "data/processed/shards").glob("*.parquet")},
                "train": (pusher / "models/model.keras").read_bytes()}
    lock = yaml.safe_load((puller / "dvc.lock").read_text())
    for stage in ("demo", "render", "train"):
        del lock["stages"][stage]
    (puller / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    for path in ("data/demo", "data/processed/shards", "models", "metrics/render.json", "metrics/train/metrics.json"):
        target = puller / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    log = run_ok([*DVC, "repro"], puller, env, timeout=TIMEOUT).stdout
    for stage in ("demo", "render", "train"):
        assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in log, log
    assert set(re.findall(r"Running stage '(\w+)'", log)) <= ALWAYS, log
    wavs = sorted(p.relative_to(puller) for p in (puller / "data/demo").rglob("*.wav"))
    assert wavs == expected["demo"]
    assert {p.name: p.read_bytes() for p in (puller / "data/processed/shards").glob("*.parquet")} == expected["render"]
    assert (puller / "models/model.keras").read_bytes() == expected["train"]
    for summary in ("metrics/render.json", "metrics/train/metrics.json"):  # a summary, a metric: both DVC-cached
        assert (puller / summary).read_bytes() == (pusher / summary).read_bytes()
    # every stage but inventory (always changed) has a run-cache entry to share
    saved = {yaml.safe_load(f.read_text())["cmd"] for f in (tmp_path / "remote" / "runs").rglob("*") if f.is_file()}
    commands = {s["cmd"] for name, s in yaml.safe_load((pusher / "dvc.yaml").read_text())["stages"].items()
                if name not in ALWAYS}
    assert commands <= saved, commands - saved
