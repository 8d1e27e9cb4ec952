"""One public corpus of two speakers (TESS has two) dropped into data/raw/: `dvc repro` runs to the end with the
defaults. split.folds auto gives it two folds; training has no validation speaker (one speaker trains, the other
is tested), which train, evaluate and crossval handle."""
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tests.conftest import IGNORE, REPO, _run, git_repo

pytestmark = pytest.mark.slow

EMOTIONS = {"angry": (220.0, 7.0), "sad": (140.0, 2.0), "happy": (260.0, 5.0), "neutral": (170.0, 3.5)}
WORDS = ("back", "bean", "chair", "dog", "food", "wire")


def build_tess_like(root: Path) -> int:
    """TESS's layout (<speaker>_<emotion>/<speaker>_<word>_<emotion>.wav, 24.414 kHz), two speakers, four
    emotions as pitch and syllable-rate profiles: 48 short files."""
    rng = np.random.default_rng(0)
    sr = 24414
    n = 0
    for speaker, shift in (("OAF", 0.9), ("YAF", 1.15)):
        for emotion, (f0, rate) in EMOTIONS.items():
            folder = root / "TESS Toronto emotional speech set data" / f"{speaker}_{emotion}"
            folder.mkdir(parents=True)
            for word in WORDS:
                t = np.arange(int(rng.uniform(1.0, 1.6) * sr)) / sr
                pitch = f0 * shift * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
                voice = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / sr) / k for k in range(1, 6))
                envelope = np.clip(np.sin(np.pi * rate * t), 0, None)
                y = 0.3 * voice * envelope + 0.01 * rng.standard_normal(len(t))
                sf.write(folder / f"{speaker}_{word}_{emotion}.wav", y.astype(np.float32), sr, subtype="PCM_16")
                n += 1
    return n


def test_repro_with_only_a_two_speaker_corpus_runs_to_the_end_with_the_defaults(tmp_path):
    root = tmp_path / "ser"
    shutil.copytree(REPO, root, ignore=IGNORE)
    files = build_tess_like(root / "data" / "raw" / "tess")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", KERAS_BACKEND="tensorflow")
    git_repo(root, env)
    log = _run([sys.executable, "-m", "dvc", "repro"], root, env, timeout=900)
    assert "split.folds auto" in log.stderr + log.stdout
    split = json.loads((root / "metrics/split.json").read_text())
    assert split["folds"]["k"] == 2 and split["folds"]["auto"]
    assert split["splits"]["val"]["files"] == 0 and len(split["splits"]["test"]["speakers"]) == 1
    cv = json.loads((root / "metrics/cv.json").read_text())
    assert cv["cv"]["folds"] == 2 and 0 <= cv["cv"]["uar_pooled"] <= 1 and "baseline" in cv
    tested = pd.read_csv(root / "metrics/cv/predictions.csv")
    mine = tested[(tested["system"] == "fusion") & (tested["mode"] == "transductive")]
    assert len(mine) == files and sorted(mine["speaker"].unique()) == ["tess:OAF", "tess:YAF"]
    assert 0 <= json.loads((root / "metrics/metrics.json").read_text())["test"]["uar"] <= 1
