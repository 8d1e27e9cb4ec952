"""Committed results come from the committed code: for every stage, dvc.lock's record of each code dependency
(pipeline/...) and of the params the stage reads must equal what DVC computes from the working tree now (DVC's
own hashing, folders included), so the outputs dvc.lock names (on the team's remote: every output is DVC-cached,
metrics included, see dvc.yaml) are the ones this code and these params make.

A change to a stage's code or params without `dvc repro` (or `make repro`) and committing dvc.lock with it fails
here, naming the stage and what changed. Data dependencies and outputs (data/, models/, metrics/) are DVC's,
not git's, and are not checked.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = "pipeline/"


def stale_entries(root: Path) -> list[str]:
    """'stage: what differs' for each stage whose lock does not match the working tree's code and params."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    problems = []
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            if stage.always_changed:  # inventory: runs every time, milliseconds
                continue
            if stage.cmd_changed:
                problems.append(f"{stage.name}: cmd is not the one that ran ({stage.cmd!r})")
            checked = [dep for dep in stage.deps if isinstance(dep, ParamsDependency) or dep.def_path.startswith(CODE)]
            for entry in checked:
                for path, status in entry.workspace_status().items():
                    if isinstance(status, dict):  # params: {key: modified | new | deleted}
                        status = ", ".join(f"{key} {what}" for key, what in status.items())
                    problems.append(f"{stage.name}: {path} {status}")
    return problems


def test_dvc_lock_matches_the_committed_code_and_params():
    pytest.importorskip("dvc.repo")
    problems = stale_entries(ROOT)
    assert not problems, ("dvc.lock does not record the committed code and params (run `make repro`, then "
                          "commit dvc.lock and push its outputs):\n  " + "\n  ".join(problems))
