"""The model card (models/card.json): a model carries the settings its input was made with."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline import model_card
from pipeline.errors import UserError

AUDIO = {"sample_rate": 16000, "duration": 3.0, "top_db": 30.0, "peak_normalise": True}
FEATURES = {"n_fft": 1024, "hop_length": 256, "n_mels": 128, "fmin": 0.0, "fmax": 8000.0, "image_height": 64,
            "image_width": 64, "channels": "colormap", "colormap": "viridis", "n_mfcc": 40,
            "extra": ["compare", "mfcc"]}


RNG = np.random.default_rng(0)
TRAIN = RNG.normal(2.0, 3.0, (30, 3)).astype(np.float32)  # the training population: not the identity


def card(mode: str = "speaker", **features):
    from pipeline.normalisation import SpeakerNormaliser

    norm = SpeakerNormaliser(layout="vector", mode=mode)
    if mode != "none":
        norm.fit(TRAIN)
    return model_card.make("functionals", ["angry", "sad"], {"compare": ((3,), norm)},
                           {"audio": AUDIO, "features": dict(FEATURES, **features)})


def test_configs_rebuild_the_training_settings_and_only_the_models_column():
    audio, feats = model_card.configs(card(n_mels=64))
    assert audio.sample_rate == 16000 and feats.n_mels == 64 and feats.extra == ("compare",)


def test_shards_made_otherwise_are_refused_naming_the_setting():
    settings = {"audio": AUDIO, "features": dict(FEATURES, n_mels=64, extra=["compare"])}
    with pytest.raises(UserError, match=r"features\.n_mels 64 \(model: 128\)"):
        model_card.check_matches(card(), settings, "the test shards")
    model_card.check_matches(card(), {"audio": AUDIO, "features": dict(FEATURES, extra=[])}, "shards")  # extras differ only


def test_crossval_refuses_shards_rendered_otherwise_than_params_naming_the_setting():
    """crossval (and bench/crossval_grid.py's overrides) must not score inputs that params.yaml did not make."""
    import dataclasses

    import yaml

    from pipeline.audio import AudioConfig
    from pipeline.features import FeatureConfig
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    rendered = {"audio": dataclasses.asdict(AudioConfig.from_params(params)),
                "features": dataclasses.asdict(FeatureConfig.from_params(params))}
    model_card.check_rendered_as_params(params, rendered)
    model_card.check_rendered_as_params(params, {**rendered, "features": {**rendered["features"], "extra": ["mfcc"]}})
    params["features"]["n_mels"] = 40
    with pytest.raises(UserError, match=r"features\.n_mels 64 \(params: 40\).*dvc repro render"):
        model_card.check_rendered_as_params(params, rendered)


def test_a_card_without_settings_says_retrain(tmp_path):
    old = tmp_path / "card.json"
    old.write_text(json.dumps({"labels": ["angry"], "model": "cnn", "input": "image", "input_shape": [64, 64, 3],
                               "audio": AUDIO, "features": FEATURES}))  # a version 2 card: no normalisation
    with pytest.raises(UserError, match="older version.*re-train"):
        model_card.read(old)
    with pytest.raises(UserError, match="train a model first"):
        model_card.read(tmp_path / "missing.json")


def test_a_model_with_only_the_old_labels_json_card_says_retrain(tmp_path):
    """models/labels.json was the card's name before: evaluate, predict and export read models/card.json and
    tell the user holding only the old file to re-train, not that no model was trained."""
    from pipeline.paths import CARD, CARD_NAME

    assert CARD.name == CARD_NAME == "card.json"
    (tmp_path / "labels.json").write_text(json.dumps(card()))
    with pytest.raises(UserError, match=r"card\.json not found, only .*labels\.json.*re-train it"):
        model_card.read(tmp_path / CARD_NAME)


def test_inputs_are_normalised_as_the_card_says_and_say_how():
    x = np.concatenate([RNG.normal(5, 2, (20, 3)), RNG.normal(-3, 0.5, (20, 3))]).astype(np.float32)
    speakers = np.array(["a"] * 20 + ["b"] * 20, dtype=object)
    back = json.loads(json.dumps(card()))  # what train writes and predict reads
    z, used = model_card.model_inputs({"compare": x}, back, speakers=speakers)
    for s in ("a", "b"):
        assert np.allclose(z["compare"][speakers == s].mean(axis=0), 0, atol=1e-5)
        assert np.allclose(z["compare"][speakers == s].std(axis=0), 1, atol=1e-3)
    assert set(used) == {"speaker (20 clips)"}
    cold, used = model_card.model_inputs({"compare": x}, back)  # no speaker: the training population's
    np.testing.assert_allclose(cold["compare"], np.clip((x - TRAIN.mean(0)) / (TRAIN.std(0) + 1e-6), -5, 5),
                               rtol=1e-5, atol=1e-5)
    assert set(used) == {"population"}
    plain, used = model_card.model_inputs({"compare": x}, card("none"), speakers=speakers)
    np.testing.assert_array_equal(plain["compare"], x)
    assert set(used) == {"none"}


def test_with_shrinkage_the_card_learns_k_from_the_training_speakers_and_five_enrolled_clips_count():
    from types import SimpleNamespace

    from pipeline.train import build_card

    rng = np.random.default_rng(3)
    speakers = np.repeat([f"s{i}" for i in range(6)], 12).astype(object)
    x = (rng.normal(0, 2, (6, 3))[np.repeat(np.arange(6), 12)] + rng.normal(0, 1, (72, 3))).astype(np.float32)
    settings = {"audio": AUDIO, "features": FEATURES}
    made = {}
    for shrink in (False, True):
        cfg = SimpleNamespace(model="functionals", normalisation="speaker", normalisation_scale="population",
                              normalisation_shrinkage=shrink, prior_correction=False,
                              normalisation_population="clips", normalisation_cold="population", cold_share=0.0)
        made[shrink] = json.loads(json.dumps(build_card(cfg, ("compare",), ["angry", "sad"],
                                                        SimpleNamespace(inputs={"compare": x}, speakers=speakers),
                                                        settings)))
    norm = made[True]["inputs"]["compare"]["normalisation"]
    assert norm["shrinkage"] and len(norm["prior_clips"]) == 3 and min(norm["prior_clips"]) > 0
    assert made[False]["inputs"]["compare"]["normalisation"]["prior_clips"] is None
    new = np.array(["new"] * 15, dtype=object)  # a new speaker: 5 clips enrol, 10 are scored
    scored = {"compare": (rng.normal(4, 1, (15, 3))).astype(np.float32)}
    plain = model_card.inputs_by_mode(scored, new, made[False], seed=0)["enrolled5"][1]["compare"]
    shrunk = model_card.inputs_by_mode(scored, new, made[True], seed=0)["enrolled5"][1]["compare"]
    cold = model_card.inputs_by_mode(scored, new, made[True], seed=0)["cold"][1]["compare"]
    np.testing.assert_allclose(plain, cold[~model_card.enrolment_draw(new, 5, 0)], rtol=1e-6)  # 5 < min_clips: ignored
    assert np.abs(shrunk.mean(axis=0)).max() < np.abs(plain.mean(axis=0)).min()  # the speaker's offset mostly gone


def test_shrinkage_with_too_few_training_speakers_says_so(caplog):
    from types import SimpleNamespace

    from pipeline.train import build_card

    x = np.random.default_rng(4).normal(0, 1, (24, 3)).astype(np.float32)
    cfg = SimpleNamespace(model="functionals", normalisation="speaker", normalisation_scale="population",
                          normalisation_shrinkage=True, prior_correction=False, normalisation_population="clips",
                          normalisation_cold="population", cold_share=0.0)
    with caplog.at_level("WARNING"):
        made = build_card(cfg, ("compare",), ["angry", "sad"],
                          SimpleNamespace(inputs={"compare": x}, speakers=np.repeat(["a", "b"], 12).astype(object)),
                          {"audio": AUDIO, "features": FEATURES})
    assert made["inputs"]["compare"]["normalisation"]["prior_clips"] is None
    assert "fewer than 3 training speakers" in caplog.text and "under 10 clips" in caplog.text
