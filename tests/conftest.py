"""Shared fixtures: one `dvc repro` of a small demo configuration, reused by every end-to-end test module."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.backend import load_opensmile_first

# Tests render (openSMILE) and train (TensorFlow) in one process: openSMILE's library must be loaded first
load_opensmile_first()

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".venv", ".git", "data", "models", "metrics", "dvclive", "__pycache__",
                                ".pytest_cache", "bench", "*.egg-info", "tmp", "cache")

SMALL = {
    "demo": {"voices": 6, "sentences": 4, "seed": 7},
    "features": {"image_height": 32, "image_width": 32, "shard_rows": 50, "workers": 2},
    "model": "cnn",
    "train": {"epochs": 1, "batch_size": 16},
    "balance": {"method": "oversample", "seed": 1},
    "split": {"folds": 3},
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def _run(args, cwd, env, timeout=None):
    """Run a command; fail the test with its output tail unless it exits 0."""
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def git_repo(root: Path, env: dict, message: str = "init") -> None:
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                ["git", "config", "user.name", "t"], ["git", "add", "-A"], ["git", "commit", "-qm", message]):
        _run(cmd, root, env)


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """A temporary copy of the repo with SMALL params after `dvc repro` (about a minute on 2 cores, once)."""
    root = tmp_path_factory.mktemp("repo") / "ser"
    shutil.copytree(REPO, root, ignore=IGNORE)
    (root / "data" / "raw").mkdir(parents=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(_merge(params, SMALL), sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", KERAS_BACKEND="tensorflow")
    git_repo(root, env)
    _run([sys.executable, "-m", "dvc", "repro"], root, env)
    return root, env
