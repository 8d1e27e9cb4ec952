"""Committed results come from the committed code: for every stage whose outputs are committed to git (under
metrics/), dvc.lock's record of each code dependency (pipeline/...), of the params the stage reads and of those
outputs must equal what DVC computes from the working tree now (DVC's own hashing, folders included).

A change to a stage's code or params without `dvc repro` (or `make repro`) and committing dvc.lock and
metrics/ with it fails here, naming the stage and what changed. Data dependencies (data/, models/) are DVC's,
not git's, and are not checked.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.paths import METRICS

ROOT = Path(__file__).resolve().parents[1]
CODE = "pipeline/"


def stale_entries(root: Path) -> list[str]:
    """'stage: what differs' for each committed-output stage whose lock does not match the working tree."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    problems = []
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            committed = [out for out in stage.outs if out.def_path.startswith(f"{METRICS.as_posix()}/")]
            if not committed:
                continue
            if stage.cmd_changed:
                problems.append(f"{stage.name}: cmd is not the one that ran ({stage.cmd!r})")
            checked = [dep for dep in stage.deps if isinstance(dep, ParamsDependency) or dep.def_path.startswith(CODE)]
            for entry in checked + committed:
                for path, status in entry.workspace_status().items():
                    if isinstance(status, dict):  # params: {key: modified | new | deleted}
                        status = ", ".join(f"{key} {what}" for key, what in status.items())
                    problems.append(f"{stage.name}: {path} {status}")
    return problems


def test_dvc_lock_matches_the_committed_code_params_and_metrics():
    pytest.importorskip("dvc.repo")
    problems = stale_entries(ROOT)
    assert not problems, ("dvc.lock does not record the committed code, params and metrics (run `make repro`, "
                          "then commit dvc.lock and metrics/):\n  " + "\n  ".join(problems))
