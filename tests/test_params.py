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


PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def _mappings(node: dict, prefix: str = ""):
    """The dotted path of every mapping in params.yaml (sections, nested sections, per-corpus and per-model)."""
    for key, value in node.items():
        if isinstance(value, dict):
            path = f"{prefix}{key}"
            yield path
            yield from _mappings(value, path + ".")


def _with(path: str, key, value) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    node = params
    for part in filter(None, path.split(".")):
        node = node[part]
    node[key] = value
    return params


def _split_stage(tmp_path, monkeypatch, capsys, params: dict) -> tuple[int, str]:
    """`python -m pipeline split` (pipeline.cli.main, in this process) in a folder holding only params.yaml."""
    from pipeline import cli

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    code = cli.main(["split"])
    return code, capsys.readouterr().err


def test_the_committed_params_pass_every_check():
    from pipeline.cli import check_every_section

    check_every_section(PARAMS)


@pytest.mark.parametrize("path", ["", *_mappings(PARAMS)])
def test_a_misspelt_key_in_any_section_is_an_error_naming_it(path):
    """Every mapping of params.yaml, top level to models.<name> and data.options.<corpus>: an unknown key
    there fails the checks every stage runs first, naming it (it used to keep the default silently)."""
    from pipeline.cli import check_every_section
    from pipeline.errors import ParamsError

    with pytest.raises(ParamsError) as info:
        check_every_section(_with(path, "zz_typo", 1))
    assert info.value.key == f"{path}.zz_typo".lstrip("."), str(info.value)


@pytest.mark.parametrize("path,key,message", [
    ("", "trian", "trian: unknown section (did you mean train?); params.yaml has: audio, augment"),
    ("data", "min_duraton", "data.min_duraton: unknown key (did you mean min_duration?); data takes: raw_dir"),
    ("data.options", "ravdes", "data.options.ravdes: unknown corpus (did you mean ravdess?)"),
    ("data.options.ravdess", "include_songs", "data.options.ravdess.include_songs: unknown option (did you mean "
                                              "include_song?)"),
    ("data.label_map", "crema", "data.label_map.crema: unknown corpus (did you mean cremad?)"),
    ("demo", "voice", "demo.voice: unknown key (did you mean voices?)"),
    ("split", "fold_count", "split.fold_count: unknown key"),
    ("crossval", "seed", "crossval.seed: unknown key (did you mean seeds?)"),
    ("balance", "methd", "balance.methd: unknown key (did you mean method?)"),
    ("augment", "pitchshift", "augment.pitchshift: unknown key (did you mean pitch_shift?)"),
    ("augment.time_stretch", "min", "augment.time_stretch.min: unknown key"),
    ("audio", "sample_rte", "audio.sample_rte: unknown key (did you mean sample_rate?)"),
    ("features", "nmels", "features.nmels: unknown key (did you mean n_mels?)"),
    ("compute", "batch", "compute.batch: unknown key"),
    ("train", "normalsation", "train.normalsation: unknown key (did you mean normalisation?); train takes: epochs"),
    ("train.augment", "noise", "train.augment.noise: unknown key (did you mean noise_std?)"),
    ("models", "vgg", "models.vgg: unknown model (did you mean vgg19?)"),
    ("models.cnn", "filter", "models.cnn.filter: unknown hyper-parameter (did you mean filters?)"),
])
def test_a_typo_in_each_section_fails_the_split_stage_naming_the_key(tmp_path, monkeypatch, capsys, path, key,
                                                                      message):
    code, err = _split_stage(tmp_path, monkeypatch, capsys, _with(path, key, False))
    assert code == 2 and f"error: params.yaml: {message}" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # before any work


@pytest.mark.parametrize("path,key,value,message", [
    ("train", "class_weights", "false", "train.class_weights: must be true or false, got 'false'"),
    ("train", "normalisation", True, "train.normalisation: True is not one of: speaker, population, utterance, none"),
    ("crossval", "refit", 1, "crossval.refit: must be true or false, got 1"),
    ("crossval", "seeds", ["1"], "crossval.seeds: must be a non-empty list of integer seeds"),
    ("crossval", "seeds", [-1], "crossval.seeds: must be a non-empty list of integer seeds"),
    ("features", "export_png", "yes", "features.export_png: must be true or false, got 'yes'"),
    ("features", "shard_rows", 0, "features.shard_rows: must be >= 1"),
    ("data.options.ravdess", "include_song", "no", "data.options.ravdess.include_song: must be true or false"),
    ("data.options.esd", "languages", ["klingon"], "data.options.esd.languages: 'klingon' is not one of"),
    ("data", "workers", -1, "data.workers: must be >= 0"),
    ("demo", "voices", 2.5, "demo.voices: must be an integer, got 2.5"),
    ("split", "val_speakers", [{"ravdess": 1}], "split.val_speakers: must be a list of names"),
    ("split", "test_corpus", "iemocap", "split.test_corpus: 'iemocap' is not one of: null, ravdess"),
    ("compute", "batch_files", True, "compute.batch_files: must be an integer, got True"),
    ("train", "seed", -1, "train.seed: must be >= 0"),
    ("train", "augment", [0.1], "train.augment: must be a mapping, got [0.1]"),
    ("", "augment", "none", "augment: must be a mapping, got 'none'"),
])
def test_a_wrong_type_or_impossible_value_fails_the_split_stage_naming_the_key(tmp_path, monkeypatch, capsys, path,
                                                                                key, value, message):
    code, err = _split_stage(tmp_path, monkeypatch, capsys, _with(path, key, value))
    assert code == 2 and f"error: params.yaml: {message}" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_typo_fails_python_m_pipeline_split_in_a_second(tmp_path):
    import time

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with("train", "normalsation", "speaker")))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "split"], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    seconds = time.monotonic() - start
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: params.yaml: train.normalsation: unknown key (did you mean normalisation?); train takes: epochs, "
        "batch_size, learning_rate, schedule, normalisation, normalisation_scale, normalisation_shrinkage, "
        "normalisation_population, normalisation_cold, cold_share, cold_offsets, patience, "
        "reduce_lr_patience, "
        "class_weights, prior_correction, seed, mixed_precision, distribution, augment"], proc.stderr
    assert seconds < 10, f"{seconds:.1f} s"  # a second or two (imports); no stage work
