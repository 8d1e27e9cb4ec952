"""A bad value anywhere in params.yaml fails the first stage that runs, before any work, naming its key."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("section,key,value,message", [
    (None, "model", "resnet", "params.yaml: model: 'resnet' is not one of: cnn, lstm"),
    ("split", "val_ratio", 1.5, "params.yaml: split.val_ratio: must be < 1"),
    ("features", "channels", "rgb", "params.yaml: features.channels: 'rgb' is not one of: colormap, delta, gray"),
    ("train", "epochs", "ten", "params.yaml: train.epochs: must be an integer"),
    ("data", "corpora", ["ravdess", "iemocap"], "params.yaml: data.corpora: unknown corpus 'iemocap'"),
])
def test_bad_param_fails_the_first_stage_naming_the_key(tmp_path, section, key, value, message):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (params if section is None else params[section])[key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "pipeline", "ingest"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()
