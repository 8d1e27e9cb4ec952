"""End to end: `dvc repro` on a small demo configuration in a temporary copy of the repo."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

# The `repo` fixture (one `dvc repro`, session-scoped: test_remote.py reuses it; no test changes it) and its
# helpers live in conftest.py; re-exported here for the modules that import them from this one.
from tests.conftest import IGNORE, REPO, SMALL, _merge, _run, own_copy  # noqa: E402,F401

# TensorFlow's C++ start-up chatter on a CPU machine (tests/test_backend.py): predict and export show none
TF_NOISE = re.compile(r"cuInit|oneDNN|cudart|absl::InitializeLog|cpu_feature_guard|XNNPACK|^[IWE]0000 ",
                      re.MULTILINE)


def test_repro_writes_every_stage_output(repo):
    root, _ = repo
    ingest = json.loads((root / "metrics/ingest.json").read_text())
    assert ingest["used_demo"] and ingest["corpora"]["demo"]["kept"] == 6 * 4 * 7
    assert ingest["corpora"]["demo"]["release"]["verdict"] == "no reference checksums"
    from pipeline.dataset import load_split

    shards, split_file = root / "data/processed/shards", root / "data/processed/split.parquet"
    names = sorted(p.name for p in shards.glob("*.parquet"))
    assert names and all(re.fullmatch(r"demo-\d{5}\.parquet", n) for n in names), names  # per corpus, no split
    sizes = {s: len(load_split(s, "image", root=shards, split_file=split_file)) for s in ("train", "val", "test")}
    assert all(sizes.values()), sizes
    card = json.loads((root / "models/card.json").read_text())  # the model card
    assert card["model"] == "fusion" and list(card["inputs"]) == ["image", "compare"] and card["audio"]["duration"] == 3.0
    assert card["inputs"]["image"]["shape"] == [64, 301, 1] and card["inputs"]["image"]["scale"] == {"static": [-100, 60]}
    assert {spec["normalisation"]["mode"] for spec in card["inputs"].values()} == {"speaker"}
    assert 0.0 <= card["fusion"]["image_weight"] <= 1.0  # chosen on the validation speakers
    cv = json.loads((root / "metrics/cv.json").read_text())
    assert cv["cv"]["folds"] == 3 and cv["cv"]["runs"] == 3 and 0 <= cv["cv"]["uar_pooled"] <= 1
    assert list(cv)[:4] == ["cv", "cv_enrolled10", "cv_enrolled5", "cv_cold"]  # the three ways a user meets it
    assert 0 <= cv["baseline"]["uar_pooled"] <= 1 and 0 <= cv["baseline_spknorm"]["uar_mean"] <= 1
    folds = pd.read_csv(root / "metrics/cv/folds.csv")
    assert sorted(folds["fold"].unique()) == [0, 1, 2]
    pooled = pd.read_csv(root / "metrics/cv/predictions.csv")
    mine = pooled[(pooled["system"] == "fusion") & (pooled["mode"] == "transductive")]
    assert len(mine) == 6 * 4 * 7 and mine["speaker"].nunique() == 6  # every speaker tested once
    # each input alone, trained as in the fusion, on the same folds and seeds
    assert {"cnn_pooled (fusion branch)", "functionals (fusion branch)"} <= set(pooled["system"])
    for picture in ("uar_by_mode.png", "uar_per_fold.png", "confusion_by_mode.png"):  # pipeline/cv_pictures.py
        assert (root / "metrics/cv" / picture).stat().st_size > 1000, picture
    metrics = json.loads((root / "metrics/metrics.json").read_text())["test"]
    for key in ("accuracy", "uar", "macro_f1", "weighted_f1", "loss"):
        assert 0.0 <= metrics[key] <= (1.0 if key != "loss" else 100.0)
    assert (root / "models/model.keras").exists()
    # the shipped model (predict's and export's default): every labelled speaker and clip, crossval's recipe
    manifest = pd.read_parquet(root / "data/processed/manifest.parquet")
    final = json.loads((root / "models/final/card.json").read_text())
    assert final["trained_on"] == {"speakers": manifest["speaker"].nunique(), "clips": len(manifest)}
    assert final["final"]["described_by"]["file"] == "metrics/cv.json" and final["final"]["recipe"]["epochs"] == 1
    assert final["final"]["described_by"]["uar_pooled"]["cold"] == cv["cv_cold"]["uar_pooled"]
    assert card["trained_on"]["speakers"] < final["trained_on"]["speakers"]  # the single split's model saw fewer
    assert set(final["calibration"]["temperature"]) == {"speaker", "enrolled", "cold"}  # crossval's validation speakers
    assert 0 <= cv["cv_cold"]["ece"] <= 1
    assert (root / "metrics/confusion_matrix.png").stat().st_size > 1000
    report = (root / "metrics/report.md").read_text()
    assert "| accuracy (WA)" in report and "- demo: no reference checksums" in report
    # the report's timeline (issue 38): a test speaker's clips, one per emotion, joined and scored as predict
    # --segments scores a recording, each segment beside its clip's truth
    assert (root / "metrics/examples/timeline.png").stat().st_size > 1000
    timeline = report.split("## A recording's timeline")[1].split("\n## ")[0]
    assert "](examples/timeline.png)" in timeline and "| segment (s) | predicted | confidence | clip (s) |" in timeline
    assert timeline.count(".wav`") == 7  # one clip per emotion of the demo corpus
    preds = (root / "metrics/predictions.csv").read_text().splitlines()
    assert preds[0].startswith("name,corpus,speaker,actual,predicted")


def _predict(root, env, *args):
    return subprocess.run([sys.executable, "-m", "pipeline", "predict", *map(str, args)], cwd=root, env=env,
                          capture_output=True, text=True)


def test_predict_agrees_with_evaluate_and_reports_bad_inputs(repo, tmp_path):
    """predict --speakers one on every test file of one speaker normalises them on that speaker's statistics, as
    evaluate does (files no longer than the window: one window, exactly evaluate's clip); by default a file gets
    no speaker statistics (the cold path), and each row says which it got."""
    root, env = repo
    evaluated = pd.read_csv(root / "metrics/predictions.csv")
    speaker = sorted(evaluated["speaker"].unique())[0]
    evaluated = evaluated[evaluated["speaker"] == speaker]
    manifest = pd.read_parquet(root / "data/processed/manifest.parquet")
    short = set(manifest.loc[manifest["duration"] <= 3.0, "path"])
    bad_text = tmp_path / "notes.wav"
    bad_text.write_text("not audio")
    proc = _predict(root, env, "--json", "--model", "models/model.keras", "--speakers", "one", *evaluated["path"],
                    "missing.wav", bad_text)  # evaluate's model: the train stage's
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(evaluated) + 2
    compared = 0
    for row, (_, ev) in zip(rows, evaluated.iterrows()):
        assert row["path"] == ev["path"] and row["normalisation"] == f"speaker ({len(evaluated)} clips)"
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        if ev["path"] in short:
            assert row["windows"] == 1 and row["emotion"] == ev["predicted"]
            assert row["confidence"] == pytest.approx(ev["confidence"], abs=2e-4)
            compared += 1
    assert compared >= 6
    assert "no such file" in rows[-2]["error"] and "unreadable" in rows[-1]["error"]
    assert f"2 of {len(evaluated) + 2} files could not be scored" in proc.stderr
    assert not TF_NOISE.search(proc.stderr), proc.stderr
    cold = _predict(root, env, "--csv", "--model", "models/model.keras", evaluated["path"].iloc[0])
    assert cold.returncode == 0 and cold.stdout.splitlines()[1].split(",")[4] == "population"


def test_predict_windows_long_recordings_at_any_rate_and_channel_count(repo, tmp_path):
    import soundfile as sf
    import soxr

    root, env = repo
    clips = [sf.read(p, dtype="float32") for p in sorted((root / "data/demo").rglob("*.wav"))[:4]]
    sr = clips[0][1]
    speech = np.concatenate([c for c, _ in clips])  # about 8 s
    long_flac = tmp_path / "long_44k_stereo.flac"
    stereo = soxr.resample(np.stack([speech, 0.5 * speech], axis=1), sr, 44100)
    sf.write(long_flac, stereo, 44100, subtype="PCM_24", format="FLAC")
    short_8k = tmp_path / "short_8k.wav"
    sf.write(short_8k, soxr.resample(clips[0][0], sr, 8000), 8000, subtype="PCM_U8")
    proc = _predict(root, env, "--json", "--per-window", tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, proc.stdout.splitlines())}
    long, short = rows["long_44k_stereo.flac"], rows["short_8k.wav"]
    assert long["windows"] >= 4 and len(long["per_window"]) == long["windows"]
    from pipeline import model_card

    # the file's probabilities: its windows' mean (the model's own), scaled by the card's temperature
    card = json.loads((root / "models/final/card.json").read_text())
    labels = list(long["probabilities"])
    mean = np.mean([[w[k] for k in labels] for w in long["per_window"]], axis=0)
    calibrated = model_card.calibrate(mean[None], card, [long["normalisation"]])[0]
    assert dict(zip(labels, calibrated)) == pytest.approx(long["probabilities"], abs=1e-5)
    assert long["emotion"] == labels[int(mean.argmax())]
    assert short["windows"] == 1 and short["emotion"] in short["probabilities"]
    table = _predict(root, env, "--per-window", long_flac)
    assert table.returncode == 0 and "window 1.5s" in table.stdout


def test_predict_fails_only_when_every_input_fails(repo):
    root, env = repo
    proc = _predict(root, env, "missing.wav", "also-missing.flac")
    assert proc.returncode == 2
    assert "error: every input failed" in proc.stderr and "Traceback" not in proc.stderr


def test_export_round_trips_to_savedmodel_and_tflite(repo, tmp_path):
    root, env = repo
    out = tmp_path / "export"
    proc = _run([sys.executable, "-m", "pipeline", "export", "--out", str(out), "--check", "8"], root, env)
    assert "same top class on 100%" in proc.stdout and "the bundle's own predict" in proc.stdout
    assert not TF_NOISE.search(proc.stderr), proc.stderr
    import tensorflow as tf

    from pipeline import model_card, runtime
    from pipeline.dataset import load_split

    card = json.loads((out / "card.json").read_text())
    assert card["labels"] and card["audio"]["sample_rate"] == 16000 and card["opensmile"]["version"]
    data = load_split("test", ("image", "compare"), root=root / "data/processed/shards",
                      split_file=root / "data/processed/split.parquet")
    x, _ = model_card.model_inputs({k: v[:8] for k, v in data.inputs.items()}, card)  # cold: one file each
    keras_probs = runtime.load(root / "models/final/model.keras", ("image", "compare")).predict(x)  # the default
    assert tf.saved_model.contains_saved_model(str(out / "saved_model"))
    for exported, atol in (("saved_model", 1e-5), ("model.tflite", 1e-4)):
        got = runtime.load(out / exported, ("image", "compare")).predict(x)
        np.testing.assert_allclose(got, keras_probs, atol=atol)
    assert (out / "pipeline" / "predict.py").read_text() == (REPO / "pipeline" / "predict.py").read_text()
    # the bundle alone (a clean process in its folder) finds the speech of a recording and scores each segment
    wav = sorted((root / "data/demo").rglob("*.wav"))[0]
    clean = dict(env, PYTHONPATH=str(out))  # the bundle's pipeline, not this repository's
    seg = subprocess.run([sys.executable, "-m", "pipeline.predict", "--model", "model.tflite", "--segments", "--json",
                          "--min-confidence", "0.99", str(wav)], cwd=out, env=clean, capture_output=True, text=True)
    assert seg.returncode == 0, seg.stderr
    rows = [json.loads(line) for line in seg.stdout.splitlines()]
    assert rows and all(0 <= r["start"] < r["end"] for r in rows) and {r["emotion"] for r in rows} <= {"uncertain"} | set(card["labels"])


def test_experiment_with_another_model_renders_only_its_input_and_diffs(repo, tmp_path):
    root, env = own_copy(repo, tmp_path)  # the experiment retrains: on a copy, so other tests see the shared model
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"] = "mlp"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = _run([sys.executable, "-m", "dvc", "status", "--json"], root, env).stdout
    # inventory always runs (milliseconds: it lists data/raw, links followed, which DVC's hash does not follow);
    # render, because the shards hold the chosen model's input; crosscorpus trains the model too (a note on one corpus)
    assert set(json.loads(status)) == {"inventory", "render", "train", "evaluate", "crossval", "final", "crosscorpus"}
    _run(["git", "checkout", "params.yaml"], root, env)

    log = _run([sys.executable, "-m", "dvc", "exp", "run", "-n", "try-mlp", "-S", "model=mlp",
                "-S", "train.epochs=2"], root, env).stdout
    ran = set(re.findall(r"Running stage '(\w+)'", log))
    assert ran == {"inventory", "render", "train", "evaluate", "crossval", "final", "crosscorpus"}, log
    rendered = json.loads((root / "metrics/render.json").read_text())
    # mlp's utterance statistics are new; the image and the baseline's eGeMAPS come from the render cache
    assert rendered["computed"] == {"image": 0, "utterance": rendered["cached"]["image"], "egemaps": 0}, rendered
    diff = json.loads(_run([sys.executable, "-m", "dvc", "metrics", "diff", "--json"], root, env).stdout)
    assert diff["metrics/metrics.json"]["test.model"] == {"old": "fusion", "new": "mlp"}
    shown = json.loads(_run([sys.executable, "-m", "dvc", "exp", "show", "--json"], root, env).stdout)
    found = [exp for rev in shown for exp in (rev.get("experiments") or [])
             if exp.get("name") == "try-mlp"]
    assert found, "experiment try-mlp missing from dvc exp show"
    metrics = found[0]["revs"][0]["data"]["metrics"]["metrics/metrics.json"]["data"]["test"]
    assert metrics["model"] == "mlp" and 0.0 <= metrics["uar"] <= 1.0
    header = _run([sys.executable, "-m", "dvc", "exp", "show", "--csv"], root, env).stdout.splitlines()[0].split(",")
    metrics = header[header.index("parent") + 1:]
    assert metrics[0].startswith("cv.") and "cv.val_uar_mean" in metrics, header  # the headline leads
    assert metrics.index("cv.val_uar_mean") < metrics.index("test.uar") < metrics.index("train.accuracy")
    assert [c for c in header if ":" in c] == []  # no name shared by two files, so no file-path prefixes
