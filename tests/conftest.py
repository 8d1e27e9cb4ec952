"""Shared fixtures: one `dvc repro` of a small demo configuration, reused by every end-to-end test module.

No test changes the shared repo (its teardown checks): a test that must (an experiment, a remote, a retrained
model) works on its own copy, own_copy(repo, tmp_path), so no test depends on which ran before it."""
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
    "features": {"shard_rows": 50, "workers": 2},
    "model": "fusion",  # the fused recipe end to end: a spectrogram CNN and the functionals, late fusion
    "models": {"cnn_pooled": {"filters": [8, 16]}},
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


def _changes(root: Path, env: dict) -> list[str]:
    """What git sees changed in the repo (params, dvc.lock, metrics/, stray files; data/ and models/ are
    DVC's, whose state dvc.lock and metrics/ record)."""
    return _run(["git", "status", "--porcelain"], root, env).stdout.splitlines()


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """A temporary copy of the repo with SMALL params after `dvc repro` (about a minute on 2 cores, once), its
    results committed. Read-only for the tests: one that changes it fails at the end of the session."""
    root = tmp_path_factory.mktemp("repo") / "ser"
    shutil.copytree(REPO, root, ignore=IGNORE)
    (root / "data" / "raw").mkdir(parents=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(_merge(params, SMALL), sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", KERAS_BACKEND="tensorflow")
    git_repo(root, env)
    _run([sys.executable, "-m", "dvc", "repro"], root, env)
    _run(["git", "add", "-A"], root, env)
    _run(["git", "commit", "-qm", "results of dvc repro"], root, env)
    model = (root / "models/model.keras").read_bytes()
    yield root, env
    assert not _changes(root, env), f"a test changed the shared repo (use own_copy): {_changes(root, env)}"
    assert (root / "models/model.keras").read_bytes() == model, "a test retrained the shared repo's model"


def own_copy(repo, dest: Path) -> tuple[Path, dict]:
    """A private copy of the session's reproduced repo (git history, DVC cache, outputs) for a test that
    changes it; DVC's scratch (.dvc/tmp: locks, its hash cache of the original's files) stays behind."""
    root, env = repo
    copy = Path(dest) / "ser"
    shutil.copytree(root, copy, symlinks=True,
                    ignore=lambda folder, names: ["tmp"] if Path(folder).name == ".dvc" else [])
    return copy, env
