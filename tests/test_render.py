"""The render stage: plan rows -> Parquet shards with names, images, metadata and extras; bad files quarantined."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from pipeline import paths, render
from pipeline.augment import Augmenter
from pipeline.features import decode_png
from pipeline.shards import ShardWriter, read_metadata

PARAMS = yaml.safe_load(open("params.yaml"))


def speech_like(seconds: float, sr: int, f0: float = 180.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * f0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def plan_row(path, corpus, display, utt_id, label, split, speaker, gender="female", text_id="t1", copy=0,
             augmentation=""):
    return {"path": str(path), "corpus": corpus, "display": display, "utt_id": utt_id, "label": label,
            "split": split, "speaker": f"{corpus}:{speaker}", "gender": gender, "text_id": text_id,
            "item_id": f"{corpus}_{utt_id}" + (f"_aug{copy:02d}" if copy else ""), "augmented": bool(copy),
            "copy": copy, "augmentation": augmentation}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    audio = tmp_path / "audio"
    audio.mkdir()
    for i, sr in enumerate((16000, 44100, 8000)):
        sf.write(audio / f"a{i}.wav", speech_like(1.0 + i, sr, 150 + 40 * i), sr)
    (audio / "broken.wav").write_bytes(b"RIFF\x00\x00")
    aug = json.dumps(Augmenter.from_params(PARAMS).sample(1, "ravdess_a0_aug01"))
    rows = [plan_row(audio / "a0.wav", "ravdess", "RAVDESS", "03-01-05-01-01-01-12", "angry", "train", "12"),
            plan_row(audio / "a0.wav", "ravdess", "RAVDESS", "03-01-05-01-01-01-12", "angry", "train", "12",
                     copy=1, augmentation=aug),
            plan_row(audio / "a1.wav", "ravdess", "RAVDESS", "03-01-04-01-01-01-13", "sad", "test", "13"),
            # CREMA-D without VideoDemographics.csv: no gender; pandas reads the missing strings back as NaN
            plan_row(audio / "a2.wav", "cremad", "CREMA-D", "1001_DFA_ANG_XX", "angry", "train", "1001",
                     gender=None, text_id=None),
            plan_row(audio / "broken.wav", "cremad", "CREMA-D", "1002_DFA_SAD_XX", "sad", "val", "1002")]
    render.PLAN.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(render.PLAN)
    return tmp_path


def params(**features):
    base = dict(PARAMS["features"], workers=1, image="papers", channels="colormap", image_height=32, image_width=32)
    return dict(PARAMS, features=dict(base, **features))


def test_shards_hold_named_images_metadata_and_extras(project):
    report = render.run(params(extra=["mfcc", "vector", "utterance"]))  # + the model's (compare), the baseline's
    assert report["images"] == {"ravdess": 3, "cremad": 1} and report["quarantined"] == 1
    quarantine = pd.read_csv(render.QUARANTINE)
    assert quarantine["path"].str.endswith("broken.wav").all() and quarantine["stage"].eq("render").all()
    shards = sorted(p.relative_to(render.SHARDS).as_posix() for p in render.SHARDS.rglob("*.parquet"))
    assert shards == ["cremad-00000.parquet", "ravdess-00000.parquet"]  # per corpus, whatever the split
    table = pq.read_table(render.SHARDS / "ravdess-00000.parquet").to_pandas()
    assert "split" not in table.columns  # joined from split.parquet when loaded: a new fold re-renders nothing
    assert list(table["name"]) == ["RAVDESS_Sad_03-01-04-01-01-01-13.png", "RAVDESS_Angry_03-01-05-01-01-01-12.png",
                                   "RAVDESS_Angry_03-01-05-01-01-01-12_aug01.png"]
    assert list(table["augmented"]) == [False, False, True] and table["augmentation"].iloc[2].startswith("{")
    assert set(table["speaker"]) == {"ravdess:12", "ravdess:13"}
    for png in table["image"]:
        assert decode_png(png).shape == (32, 32, 3)
    assert not np.array_equal(decode_png(table["image"][1]), decode_png(table["image"][2]))
    meta = read_metadata(render.SHARDS / "ravdess-00000.parquet")
    assert meta["image_shape"] == [32, 32, 3] and meta["channels"] == "colormap"
    assert meta["features"]["image_height"] == 32 and meta["audio"]["sample_rate"] == 16000  # for the model card
    assert set(meta["extras_shapes"]) == {"compare", "egemaps", "mfcc", "vector", "utterance"}
    assert meta["extras_shapes"]["compare"] == [6373] and meta["extras_shapes"]["egemaps"] == [88]
    assert len(table["x_utterance"][0]) == meta["extras_shapes"]["utterance"][0]
    assert np.isfinite(np.stack(table["x_compare"])).all()
    cremad = pq.read_table(render.SHARDS / "cremad-00000.parquet").to_pylist()[0]
    assert cremad["gender"] is None and cremad["text_id"] is None and cremad["name"].startswith("CREMA-D_Angry")


@pytest.mark.parametrize("channels,depth", [("gray", 1), ("delta", 3)])
def test_channel_modes_and_png_export(project, channels, depth):
    render.run(params(channels=channels, extra=[], export_png=True))
    table = pq.read_table(render.SHARDS / "ravdess-00000.parquet").to_pandas()
    assert "x_mfcc" not in table.columns
    assert decode_png(table["image"][0]).shape == (32, 32, depth)
    exported = render.PNG_DIR / "ravdess" / "RAVDESS_Sad_03-01-04-01-01-01-13.png"
    assert exported.read_bytes() == table["image"][0]


def test_adding_a_corpus_leaves_the_other_shards_byte_identical(project):
    render.run(params(extra=[]))
    before = (render.SHARDS / "ravdess-00000.parquet").read_bytes()
    plan = pd.read_parquet(render.PLAN)
    extra = plan.iloc[[2]].assign(corpus="tess", display="TESS", utt_id="OAF_back_sad", item_id="tess_OAF_back_sad",
                                  speaker="tess:OAF", split="train")
    pd.concat([plan, extra]).to_parquet(render.PLAN)
    render.run(params(extra=[]))
    assert (render.SHARDS / "tess-00000.parquet").exists()
    assert (render.SHARDS / "ravdess-00000.parquet").read_bytes() == before


def test_another_fold_leaves_the_render_plan_byte_identical(tmp_path, monkeypatch):
    """balance writes what to render, not where it goes: DVC then skips render for a new fold or split seed."""
    from pipeline import balance

    monkeypatch.chdir(tmp_path)
    rows = [dict(plan_row(f"{i}.wav", "emodb", "EMODB", f"0{i}a01Wa", "angry", "train", f"0{i}"), fold=i % 2)
            for i in range(4)]
    for row in rows:
        for key in ("item_id", "augmented", "copy", "augmentation"):
            row.pop(key)
    split = pd.DataFrame(rows)
    paths.SPLIT_FILE.parent.mkdir(parents=True)
    plans = []
    for test_fold in (0, 1):
        split.assign(split=np.where(split["fold"] == test_fold, "test", "train")).to_parquet(paths.SPLIT_FILE)
        balance.run(dict(PARAMS, balance={"method": "none"}))
        plans.append(paths.RENDER_PLAN.read_bytes())
    assert plans[0] == plans[1]
    assert "split" not in pd.read_parquet(paths.RENDER_PLAN).columns


def test_shards_are_cut_at_shard_rows_and_streamed_in_row_groups(project, monkeypatch):
    monkeypatch.setattr(ShardWriter, "ROW_GROUP", 1)
    plan = pd.read_parquet(render.PLAN)
    many = pd.concat([plan.iloc[[2]].assign(utt_id=f"03-01-04-01-01-01-{i:02d}", item_id=f"ravdess_{i}")
                      for i in range(5)])
    many.to_parquet(render.PLAN)
    render.run(params(shard_rows=2, extra=[]))
    shards = sorted(render.SHARDS.glob("*.parquet"))
    assert [p.name for p in shards] == ["ravdess-00000.parquet", "ravdess-00001.parquet", "ravdess-00002.parquet"]
    assert [pq.ParquetFile(p).metadata.num_rows for p in shards] == [2, 2, 1]
    assert pq.ParquetFile(shards[0]).metadata.num_row_groups == 2
    assert not list(render.SHARDS.rglob(".*.tmp"))
