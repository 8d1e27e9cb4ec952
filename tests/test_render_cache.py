"""Render computes what is needed, once: the model's inputs, the baseline's and features.extra, each clip's work
keyed by content in the render cache, shards byte-identical to a from-scratch render."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline import audio, features, render, render_cache
from pipeline.audio import AudioConfig
from pipeline.errors import ParamsError
from pipeline.features import FeatureConfig
from pipeline.speech import speech_of
from tests.test_render import PARAMS, params, project  # noqa: F401  (project: 4 good files and a broken one)


def cnn(**over):
    """The cnn (image only) with the crossval baseline (eGeMAPS) on, small images."""
    return dict(params(**over), model="cnn", crossval=dict(PARAMS["crossval"], baseline=True))


def shard_bytes() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(render.SHARDS.glob("*.parquet"))}


def test_render_computes_the_models_inputs_the_baseline_and_extras_nothing_else():
    base = dict(PARAMS, crossval={"baseline": True}, features=dict(PARAMS["features"], extra=[]))
    assert render.needed_kinds(dict(base, model="functionals")) == ("compare", "egemaps")
    assert render.needed_kinds(dict(base, model="cnn")) == ("egemaps",)
    assert render.needed_kinds(dict(base, model="cnn", crossval={"baseline": False})) == ()
    assert render.needed_kinds(dict(base, model="mlp", features=dict(base["features"], extra=["mfcc"]))) == \
        ("mfcc", "utterance", "egemaps")
    with pytest.raises(ParamsError, match="model"):
        render.needed_kinds(dict(base, model="nope"))


def test_a_model_reading_several_inputs_gets_them_all(monkeypatch):
    from pipeline import zoo

    monkeypatch.setattr(zoo.get("cnn"), "INPUTS", ("image", "compare"), raising=False)
    assert zoo.input_kinds("cnn") == ("image", "compare")
    base = dict(PARAMS, model="cnn", crossval={"baseline": False}, features=dict(PARAMS["features"], extra=[]))
    assert render.needed_kinds(base) == ("compare",)
    with pytest.raises(ValueError, match="input_kinds"):
        zoo.input_kind("cnn")


def test_another_model_computes_only_its_own_inputs_from_the_cache(project):
    first = render.run(params())  # the default model (functionals): ComParE, and eGeMAPS for the baseline
    assert first["computed"] == {"image": 4, "compare": 4, "egemaps": 4} and first["cached"]["image"] == 0
    second = render.run(cnn())  # what `dvc exp run -S model=cnn` runs: no openSMILE feature computed
    assert second["computed"] == {"image": 0, "egemaps": 0} and second["cached"] == {"image": 4, "egemaps": 4}
    third = render.run(dict(params(extra=["mfcc"]), model="mlp"))  # a new kind: computed, the rest cached
    assert third["computed"] == {"image": 0, "mfcc": 4, "utterance": 4, "egemaps": 0}
    assert json.loads(render.REPORT.read_text())["computed"]["mfcc"] == 4


def test_adding_a_corpus_computes_only_its_clips_and_shards_equal_a_from_scratch_render(project):
    render.run(cnn())
    before = shard_bytes()
    plan = pd.read_parquet(render.PLAN)
    tess = plan.iloc[[2, 3]].assign(corpus="tess", display="TESS", utt_id=["OAF_back_sad", "OAF_bean_angry"],
                                    item_id=["tess_OAF_back_sad", "tess_OAF_bean_angry"], speaker="tess:OAF")
    tess["path"] = [str(project / "audio" / "a1.wav"), str(project / "audio" / "a0.wav")]
    sf_copy = project / "audio" / "t0.wav"
    shutil.copy(project / "audio" / "a2.wav", sf_copy)
    tess = pd.concat([tess, plan.iloc[[3]].assign(corpus="tess", display="TESS", utt_id="OAF_cat_angry",
                                                   item_id="tess_OAF_cat_angry", speaker="tess:OAF",
                                                   path=str(sf_copy))])
    pd.concat([plan, tess]).to_parquet(render.PLAN)
    report = render.run(cnn(extra=[]))
    # the new corpus's clips are byte-identical recordings of the first corpus's: nothing to compute at all
    assert report["computed"] == {"image": 0, "egemaps": 0} and report["images"] == {"ravdess": 3, "cremad": 1,
                                                                                     "tess": 3}
    incremental = shard_bytes()
    assert {k: v for k, v in incremental.items() if not k.startswith("tess")} == before
    shutil.rmtree(render_cache.CACHE_DIR)
    scratch = render.run(cnn(extra=[]))
    # byte-identical recordings within one run are computed once
    assert scratch["computed"] == {"image": 4, "egemaps": 4} and scratch["cached"] == {"image": 3, "egemaps": 3}
    assert shard_bytes() == incremental


def test_a_new_recording_is_computed_and_nothing_else(project):
    render.run(cnn())
    plan = pd.read_parquet(render.PLAN)
    path = project / "audio" / "new.wav"
    import soundfile as sf

    sf.write(path, 0.3 * np.sin(np.arange(24000) / 7.0).astype(np.float32), 16000)
    new = plan.iloc[[3]].assign(corpus="tess", display="TESS", utt_id="OAF_new", item_id="tess_OAF_new",
                                path=str(path), speaker="tess:OAF")
    pd.concat([plan, new]).to_parquet(render.PLAN)
    report = render.run(cnn())
    assert report["computed"] == {"image": 1, "egemaps": 1} and report["cached"] == {"image": 4, "egemaps": 4}


def test_a_changed_setting_recomputes_only_the_outputs_that_depend_on_it(project):
    render.run(dict(params(extra=["mfcc"]), model="cnn"))
    assert render.run(dict(params(extra=["mfcc"], colormap="magma"), model="cnn"))["computed"] == \
        {"image": 4, "mfcc": 0, "egemaps": 0}
    assert render.run(dict(params(extra=["mfcc"], colormap="magma", n_mfcc=20), model="cnn"))["computed"] == \
        {"image": 0, "mfcc": 4, "egemaps": 0}
    longer = dict(params(extra=["mfcc"], colormap="magma", n_mfcc=20), model="cnn",
                  audio=dict(PARAMS["audio"], duration=2.0))
    # functionals over the speech never see the window: a new duration leaves them cached
    assert render.run(longer)["computed"] == {"image": 4, "mfcc": 4, "egemaps": 0}


def test_every_feature_setting_is_in_the_key_of_the_outputs_it_changes():
    named = {f for fields in features.DEPENDS_ON.values() for f in fields} | set(features.NOT_AN_OUTPUT_SETTING)
    assert {f.name for f in dataclasses.fields(FeatureConfig)} == named, \
        "a FeatureConfig field is in no output's DEPENDS_ON list (features.py): the render cache would ignore it"
    assert set(features.DEPENDS_ON) == {"image", *features.EXTRA_KINDS}
    acfg, fcfg = AudioConfig(), FeatureConfig()

    def keys(a=acfg, f=fcfg, code="c", source="s", augmentation=""):
        return {k: render_cache.entry_key(k, source, augmentation, a, f, code) for k in features.DEPENDS_ON}

    base = keys()
    assert len(set(base.values())) == len(base)
    assert keys(f=dataclasses.replace(fcfg, image_width=32)) == dict(base, image=keys(
        f=dataclasses.replace(fcfg, image_width=32))["image"])
    changed = keys(f=dataclasses.replace(fcfg, n_mfcc=13))
    assert {k for k in base if changed[k] != base[k]} == {"mfcc", "vector", "utterance"}
    changed = keys(a=dataclasses.replace(acfg, duration=2.0))
    assert {k for k in base if changed[k] != base[k]} == {"image", "mfcc", "vector", "utterance"}
    changed = keys(f=dataclasses.replace(fcfg, functionals_on="window"))
    assert {k for k in base if changed[k] != base[k]} == {"compare"}  # eGeMAPS: the recording as read
    for other in (keys(code="d"), keys(source="t"), keys(augmentation='{"pitch_shift": {"semitones": 1.0}}'),
                  keys(a=dataclasses.replace(acfg, top_db=20.0))):
        assert all(other[k] != base[k] for k in base)
    # the same record written with its keys in another order is the same augmentation
    assert keys(augmentation='{"b": 1, "a": 2}') == keys(augmentation='{"a": 2, "b": 1}')


def test_the_code_fingerprint_follows_the_code_and_libraries(monkeypatch, tmp_path):
    base = render_cache.code_fingerprint()
    assert render_cache.code_fingerprint() == base
    monkeypatch.setattr(render_cache, "LIBRARIES", render_cache.LIBRARIES + ("pytest",))
    assert render_cache.code_fingerprint() != base


def test_the_cache_is_a_few_parquet_files_and_merges_when_there_are_many(tmp_path, monkeypatch):
    monkeypatch.setattr(render_cache, "PART_ROWS", 5)
    monkeypatch.setattr(render_cache, "ROW_GROUP", 2)
    root = tmp_path / "cache"
    cache = render_cache.RenderCache(root)
    for i in range(12):
        cache.put(f"k{i}", "egemaps" if i % 2 else "image",
                  np.full(3, i, np.float32) if i % 2 else f"png{i}".encode())
    cache.close()
    assert len(list(root.glob("*.parquet"))) == 3 and not list(root.glob(".*"))
    again = render_cache.RenderCache(root)
    assert again.get("k7", "egemaps").tolist() == [7, 7, 7] and again.get("k4", "image") == b"png4"
    assert "k12" not in again
    monkeypatch.setattr(render_cache, "MAX_FILES", 2)
    again.put("k12", "image", b"png12")
    again.close()  # 4 files > 2: merged into as few as PART_ROWS allows
    merged = render_cache.RenderCache(root)
    assert len(merged.files) == 3 and len(merged.index) == 13
    assert merged.get("k12", "image") == b"png12" and merged.get("k1", "egemaps").tolist() == [1, 1, 1]


def test_functionals_are_taken_over_the_trimmed_speech_not_the_padding(project):
    render.run(dict(params(), model="functionals"))
    table = pd.read_parquet(render.SHARDS / "ravdess-00000.parquet")
    acfg = AudioConfig.from_params(PARAMS)
    row = table[table["item_id"] == "ravdess_03-01-04-01-01-01-13"].iloc[0]  # a 2-s file: 1 s of padding
    speech = speech_of(row["source_path"], acfg)
    window = audio.fit(speech, acfg.n_samples)
    assert len(speech) < len(window)
    np.testing.assert_array_equal(row["x_compare"], features.smile_functionals(speech, 16000, "compare"))
    over_window = features.smile_functionals(window, 16000, "compare")
    assert not np.allclose(row["x_compare"], over_window)
    # functionals_on: window keeps the old way (the padded or cut window)
    render.run(dict(params(functionals_on="window"), model="functionals"))
    table = pd.read_parquet(render.SHARDS / "ravdess-00000.parquet")
    row = table[table["item_id"] == "ravdess_03-01-04-01-01-01-13"].iloc[0]
    np.testing.assert_array_equal(row["x_compare"], over_window)


def test_the_baselines_egemaps_is_taken_over_the_recording_as_read(project):
    """The field computes eGeMAPS on the files as they come (their rate, their level, their silences): the
    crossval baseline gets that, not our trimmed, peak-normalised 16-kHz speech."""
    from pipeline.speech import recording_of

    render.run(dict(params(), model="cnn"))
    table = pd.read_parquet(render.SHARDS / "ravdess-00000.parquet")
    row = table[table["item_id"] == "ravdess_03-01-04-01-01-01-13"].iloc[0]
    samples, sr = recording_of(row["source_path"])
    np.testing.assert_array_equal(row["x_egemaps"], features.smile_functionals(samples, sr, "egemaps"))
    speech = speech_of(row["source_path"], AudioConfig.from_params(PARAMS))
    assert not np.allclose(row["x_egemaps"], features.smile_functionals(speech, 16000, "egemaps"))


def test_shards_without_the_baselines_column_say_so_and_blame_no_model(project):
    from pipeline.dataset import load_rows
    from pipeline.errors import UserError

    render.run(dict(params(), model="cnn", crossval={"baseline": False}))
    with pytest.raises(UserError, match="x_egemaps.*the crossval baseline reads.*re-run render"):
        load_rows("egemaps", needed_by="the crossval baseline")
