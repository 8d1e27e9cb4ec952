"""Real speech end to end: `dvc repro` on three EmoDB speakers from ../shared (linked, never copied), with a
2-fold speaker cross-validation, then predict on a test speaker agrees with evaluate."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.test_e2e import IGNORE, REPO, _merge, _run

EMODB = REPO.parent / "shared" / "corpora" / "emodb" / "wav"
SPEAKERS = ("03", "08", "09")  # one male, two female; ~135 files, 6 emotions (boredom dropped)
SMALL = {
    "train": {"epochs": 1},
    "split": {"folds": 2},
    "features": {"workers": 2, "extra": ["compare", "egemaps"]},
}


@pytest.fixture(scope="module")
def emodb_repo(tmp_path_factory):
    if not EMODB.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{EMODB} is missing: CI must have the shared EmoDB copy beside the clone")
        pytest.skip(f"no EmoDB copy at {EMODB}")
    root = tmp_path_factory.mktemp("emodb") / "ser"
    shutil.copytree(REPO, root, ignore=IGNORE)
    corpus = root / "data" / "raw" / "EmoDB" / "wav"  # any folder name: recognised by its layout
    corpus.mkdir(parents=True)
    for wav in sorted(EMODB.glob("*.wav")):
        if wav.name[:2] in SPEAKERS:
            (corpus / wav.name).symlink_to(wav)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(_merge(params, SMALL), sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", KERAS_BACKEND="tensorflow")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                ["git", "config", "user.name", "t"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        _run(cmd, root, env)
    _run([sys.executable, "-m", "dvc", "repro"], root, env)
    return root, env


@pytest.mark.slow
def test_real_speech_runs_the_default_recipe_and_cross_validation(emodb_repo):
    root, _ = emodb_repo
    ingest = json.loads((root / "metrics/ingest.json").read_text())
    assert not ingest["used_demo"] and set(ingest["corpora"]) == {"emodb"}
    emodb = ingest["corpora"]["emodb"]
    assert emodb["kept"] + emodb["dropped"] == emodb["found"] and emodb["dropped_by_label"]["l"] > 0
    assert not (root / "data/demo").is_dir() or not list((root / "data/demo").rglob("*.wav"))  # demo not made
    card = json.loads((root / "models/card.json").read_text())
    assert card["model"] == "fusion" and list(card["inputs"]) == ["image", "compare"]
    assert {card["inputs"][k]["normalisation"]["mode"] for k in card["inputs"]} == {"speaker"}
    assert 0.0 <= card["fusion"]["image_weight"] <= 1.0
    cv = json.loads((root / "metrics/cv.json").read_text())
    assert cv["cv"]["folds"] == 2 and 0 <= cv["cv"]["uar_pooled"] <= 1
    pooled = pd.read_csv(root / "metrics/cv/predictions.csv")
    tested = pooled[(pooled["system"] == "fusion") & (pooled["mode"] == "transductive")]
    assert sorted(tested["speaker"].unique()) == [f"emodb:{s}" for s in SPEAKERS]  # each speaker tested once
    assert len(tested) == emodb["kept"]
    summary = json.loads((root / "metrics/cv/summary.json").read_text())
    assert set(summary["systems"]["fusion"]["transductive"]["breakdown"]["gender"]) == {"female", "male"}
    assert {"cv_cold", "cv_enrolled5", "cv_enrolled10"} <= set(cv)  # the three ways a user meets the model


@pytest.mark.slow
def test_predict_on_a_test_speaker_agrees_with_evaluate(emodb_repo):
    """predict --speakers one normalises the given files on their own statistics, as evaluate does a test speaker:
    scoring exactly that speaker's test files gives evaluate's labels and confidences."""
    root, env = emodb_repo
    evaluated = pd.read_csv(root / "metrics/predictions.csv")
    speaker = sorted(evaluated["speaker"].unique())[0]
    mine = evaluated[evaluated["speaker"] == speaker]
    proc = subprocess.run([sys.executable, "-m", "pipeline", "predict", "--json", "--model", "models/model.keras",
                           "--speakers", "one", *mine["path"]],  # evaluate's model: the train stage's
                          cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in rows] == list(mine["path"])
    assert {r["normalisation"] for r in rows} == {f"speaker ({len(mine)} clips)"}
    assert [r["emotion"] for r in rows] == list(mine["predicted"])
    assert [round(r["confidence"], 3) for r in rows] == pytest.approx([round(c, 3) for c in mine["confidence"]],
                                                                       abs=2e-3)


def _json_rows(proc) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_predict_on_one_file_is_cross_validations_cold_prediction(emodb_repo, tmp_path):
    """A user's one file of a stranger: predict with a fold model gives exactly what cross-validation scored as
    that file's cold prediction (no statistics of the speaker), to 1e-5."""
    root, env = emodb_repo
    _run([sys.executable, "-m", "pipeline", "crossval", "--keep-models", str(tmp_path / "models"),
          "--out", str(tmp_path / "cv")], root, env)
    pred = pd.read_csv(tmp_path / "cv" / "predictions.csv")
    cold = pred[(pred["system"] == "fusion") & (pred["mode"] == "cold") & (pred["fold"] == 0)].iloc[0]
    model = tmp_path / "models" / f"fold0_seed{int(cold['seed'])}" / "model.keras"
    (row,) = _json_rows(subprocess.run([sys.executable, "-m", "pipeline", "predict", "--json", "--model", str(model),
                                        cold["path"]], cwd=root, env=env, capture_output=True, text=True))
    assert row["normalisation"] == "population"
    for label, p in row["probabilities"].items():
        assert p == pytest.approx(cold[f"p_{label}"], abs=1e-5), label


@pytest.mark.slow
def test_the_exported_bundle_predicts_as_predict_without_the_repository(emodb_repo, tmp_path):
    root, env = emodb_repo
    bundle = tmp_path / "bundle"
    _run([sys.executable, "-m", "pipeline", "export", "--out", str(bundle), "--check", "4"], root, env)
    card = json.loads((bundle / "card.json").read_text())
    assert card["opensmile"]["feature_sets"] == {"compare": "ComParE_2016"} and card["opensmile"]["version"]
    path = str((root / pd.read_csv(root / "metrics/predictions.csv")["path"].iloc[0]).resolve())
    (here,) = _json_rows(subprocess.run([sys.executable, "-m", "pipeline", "predict", "--json", path], cwd=root,
                                        env=env, capture_output=True, text=True))
    alone = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    alone["PYTHONPATH"] = str(bundle)  # the bundle's own code, not this repository's
    where = subprocess.run([sys.executable, "-c", "import pipeline; print(pipeline.__file__)"], cwd=bundle, env=alone,
                           capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(bundle)), where.stdout
    for model in ("saved_model", "model.tflite"):
        (there,) = _json_rows(subprocess.run([sys.executable, "-m", "pipeline.predict", "--json", "--model", model,
                                              path], cwd=bundle, env=alone, capture_output=True, text=True))
        assert there["normalisation"] == here["normalisation"] == "population"
        for label, p in here["probabilities"].items():
            assert there["probabilities"][label] == pytest.approx(p, abs=1e-5), (model, label)
